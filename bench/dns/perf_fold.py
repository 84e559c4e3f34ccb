#!/usr/bin/env python3
"""Folds `perf script -F comm,tid,ip,sym` output (perf record --call-graph dwarf) into:
  * leaf: the function the CPU was in (self time), generics stripped;
  * in Lotse: the innermost Lotse-level frame of each sample (time spent in a Lotse function,
    including the library code it called), and
  * inclusive: share of samples with that Lotse frame anywhere on the stack.
A "Lotse-level frame" is a real function whose path starts with `lotse` or a plain-named
function inlined into one (e.g. `needed_extra` inside `lotse_dns::respond::...::encode_reply`).

Usage: perf script -i perf.data -F comm,tid,ip,sym | perf_fold.py [--top 15] [--prefix PERF]
"""
import argparse
import re
import sys
from collections import Counter


def strip_generics(s):
    m = re.match(r"^<(.+?) as .*>::([^<>]+)$", s)
    if m:  # "<Type<..> as Trait>::method" -> "Type::method"
        s = f"{m.group(1)}::{m.group(2)}"
    out, depth = [], 0
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out).strip()


def samples(lines):
    cur = None
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith(("\t", " ")):
            if cur is not None:
                yield cur
            cur = []
            continue
        m = re.match(r"\s*([0-9a-f]+)\s+(.*)$", line.rstrip("\n"))
        if m and cur is not None:
            cur.append((m.group(1), m.group(2)))
    if cur is not None:
        yield cur


def lotse_frames(frames):
    """Lotse-level frame names of one sample, innermost first."""
    out = []
    i = 0
    while i < len(frames):
        addr, real = frames[i]
        group = [real]
        j = i + 1
        while j < len(frames) and frames[j][0] == addr:
            group.append(frames[j][1])
            j += 1
        real_name = strip_generics(real)
        if real_name.startswith("lotse"):
            short = "::".join(real_name.split("::")[-2:])
            for inl in group[1:]:
                name = inl.replace(" (inlined)", "")
                if "<" not in name and "{" not in name and "::" not in name and name != real_name.split("::")[-1]:
                    out.append(f"{name} (inlined in {short})")
            out.append(real_name)
        i = j
    dedup = []
    for n in out:
        if not dedup or dedup[-1] != n:
            dedup.append(n)
    return dedup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--prefix", default="")
    a = ap.parse_args()
    leaf, inner, incl = Counter(), Counter(), Counter()
    n = 0
    for s in samples(sys.stdin):
        if not s:
            continue
        n += 1
        leaf[strip_generics(s[0][1])[:110]] += 1
        lf = lotse_frames(s)
        inner[lf[0] if lf else "(no Lotse frame: runtime, kernel, idle tasks)"] += 1
        for name in set(lf):
            incl[name] += 1
    p = a.prefix + " " if a.prefix else ""
    print(f"{p}samples={n}")
    for title, c in (("leaf (self)", leaf), ("innermost Lotse frame", inner), ("inclusive, Lotse frames", incl)):
        print(f"{p}-- {title}")
        for name, k in c.most_common(a.top):
            print(f"{p}{100.0 * k / max(n, 1):6.2f}%  {name}")


if __name__ == "__main__":
    main()
