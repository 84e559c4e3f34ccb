#!/usr/bin/env python3
"""RESULT / CHECK lines of bench/dns/run.sh -> DERIVED lines and Markdown tables.

Usage: summary.py RESULTS_FILE
"""
import sys
from collections import defaultdict


def kv(line):
    d = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            d[k] = v
    return d


def f(x, nd=0):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return f"{v:,.{nd}f}".replace(",", " ") if nd == 0 else f"{v:.{nd}f}"


def other(r):
    """cores used by something else than the server and dnsperf during a run (None if unknown)."""
    try:
        return max(float(r["box_busy_cores"]) - float(r["srv_cpu_cores"]) - float(r["gen_cpu_cores"]), 0.0)
    except (KeyError, ValueError):
        return None


def cpu3(rs):
    """mean server / dnsperf / other cores (other = whole box - server - dnsperf)."""
    try:
        srv = sum(float(r["srv_cpu_cores"]) for r in rs) / len(rs)
        gen = sum(float(r["gen_cpu_cores"]) for r in rs) / len(rs)
        box = sum(float(r["box_busy_cores"]) for r in rs) / len(rs)
    except (KeyError, ValueError):
        return "-"
    return f"{srv:.2f} / {gen:.2f} / {max(box - srv - gen, 0):.2f}"


def main():
    res, checks = [], []
    for line in open(sys.argv[1]):
        if line.startswith("RESULT "):
            res.append(kv(line))
        elif line.startswith("CHECK "):
            checks.append(kv(line))
    labels = [l for l in ("nsd", "lotse", "lotse-hickory", "lotse-hickory-quiet")
              if any(r["label"] == l for r in res) or any(c.get("label") == l for c in checks)]
    short = {"nsd": "NSD", "lotse": "Lotse inline", "lotse-hickory": "Lotse hickory",
             "lotse-hickory-quiet": "Lotse hickory, log warn"}
    by = {}
    for r in res:
        by[(r["tag"], r["qtype"], r["qname"], r["mode"], r["label"], r["run"])] = r
    runs = sorted({r["run"] for r in res if r["run"] != "0"})
    out = []

    # ---------------------------------------------------------------- main
    if any(r["tag"] == "main" for r in res):
        out.append("### Main runs: 100 instances (q/s, p99 ms)")
        hdr = ["query", "mode", "run"]
        for l in labels:
            hdr += [f"{short[l]} q/s", "p99"]
        hdr += ["**Lotse / NSD**"] + (["hickory / NSD", "inline / hickory"] if "lotse-hickory" in labels else [])
        hdr += ["inline / hickory log warn"] if "lotse-hickory-quiet" in labels else []
        hdr += ["other CPU, max"]
        out.append("| " + " | ".join(hdr) + " |")
        out.append("|" + "---|" * len(hdr))
        cells = sorted({(r["qtype"], r["qname"], r["mode"]) for r in res if r["tag"] == "main"},
                       key=lambda c: (["plain", "edns", "tcp"].index(c[2]) if c[2] in ("plain", "edns", "tcp") else 9, c[0]))
        verdict = defaultdict(list)
        for qt, qn, m in cells:
            for i in runs:
                row = [f"{qt} {qn}", m, i]
                q = {}
                for l in labels:
                    r = by.get(("main", qt, qn, m, l, i))
                    if not r:
                        row += ["-", "-"]
                        continue
                    q[l] = float(r["qps"])
                    row += [f(r["qps"]), f(r["p99_ms"], 2)]
                    if l != "nsd":
                        verdict[(qt, m, l)].append((float(r["qps"]), float(r["p99_ms"]), q.get("nsd")))
                rat = lambda a, b: f"{q[a] / q[b]:.2f}" if a in q and b in q and q[b] > 0 else "-"
                row.append(f"**{rat('lotse', 'nsd')}**")
                if "lotse-hickory" in labels:
                    row += [rat("lotse-hickory", "nsd"), rat("lotse", "lotse-hickory")]
                if "lotse-hickory-quiet" in labels:
                    row += [rat("lotse", "lotse-hickory-quiet")]
                others = [other(by[k]) for k in by if k[:4] == ("main", qt, qn, m) and k[5] == i]
                others = [o for o in others if o is not None]
                row.append(f"{max(others):.2f}" if others else "-")
                out.append("| " + " | ".join(row) + " |")
                for a, b in (("lotse", "nsd"), ("lotse-hickory", "nsd"), ("lotse", "lotse-hickory"),
                             ("lotse-hickory-quiet", "nsd"), ("lotse", "lotse-hickory-quiet")):
                    if a in q and b in q and q[b] > 0:
                        print(f"DERIVED kind=ratio qtype={qt} mode={m} run={i} num={a} den={b} qps_ratio={q[a] / q[b]:.3f}")
        out.append("")
        out.append("Per-query detail (avg / p50 / p99 / p99.9 / max latency ms, server µs CPU per query, response bytes), mean of the runs:")
        out.append("")
        out.append("| query | mode | server | q/s (runs) | avg | p50 | p99 | p99.9 | max | µs CPU/query | server / dnsperf / other CPU (cores) | resp bytes | lost |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for qt, qn, m in cells:
            for l in labels:
                rs = [by[k] for k in by if k[:5] == ("main", qt, qn, m, l)]
                if not rs:
                    continue
                mean = lambda key: sum(float(r[key]) for r in rs) / len(rs)
                out.append(f"| {qt} | {m} | {short[l]} | {' / '.join(f(r['qps']) for r in rs)} | {mean('avg_lat_ms'):.2f} | "
                           f"{mean('p50_ms'):.2f} | {mean('p99_ms'):.2f} | {mean('p999_ms'):.2f} | {max(float(r['max_lat_ms']) for r in rs):.1f} | "
                           f"{mean('srv_cpu_us_per_q'):.1f} | {cpu3(rs)} | {rs[0]['resp_bytes']} | {sum(int(r['lost']) for r in rs)} |")
        out.append("")

        # ---------------------------------------------------------------- targets
        out.append("### Against the target (>= 0.80 x NSD q/s, p99 < 2 ms), per transport; worst run")
        out.append("| query | mode | server | worst ratio to NSD | worst p99 ms | verdict |")
        out.append("|---|---|---|---|---|---|")
        for (qt, m, l), vals in sorted(verdict.items(), key=lambda kv_: (kv_[0][1], kv_[0][0], kv_[0][2])):
            ratios = [a / n for a, _, n in vals if n]
            wr = min(ratios) if ratios else float("nan")
            wp = max(p for _, p, _ in vals)
            ok = "met" if wr >= 0.8 and wp < 2.0 else "**missed**"
            out.append(f"| {qt} | {m} | {short[l]} | {wr:.2f} | {wp:.2f} | {ok} |")
            print(f"DERIVED kind=target qtype={qt} mode={m} label={l} worst_ratio={wr:.3f} worst_p99_ms={wp:.3f} verdict={ok.strip('*')}")
        out.append("")

    # ---------------------------------------------------------------- probe, mixed
    if any(r["tag"] == "probe" for r in res):
        out.append("### Latency below saturation: the same dnsperf limited to a fixed rate (`-Q`)")
        out.append("| query | mode | server | q/s achieved (runs) | p50 ms | p99 ms | p99.9 ms | max ms | server CPU |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        pcells = sorted({(r["qtype"], r["qname"], r["mode"]) for r in res if r["tag"] == "probe"},
                        key=lambda c: (c[2] != "plain", c[0]))
        for qt, qn, m in pcells:
            for l in labels:
                rs = [by[("probe", qt, qn, m, l, i)] for i in runs if ("probe", qt, qn, m, l, i) in by]
                if not rs:
                    continue
                j = lambda key, nd=2: " / ".join(f(r[key], nd) for r in rs)
                out.append(f"| {qt} {qn} | {m} | {short[l]} | {j('qps', 0)} | {j('p50_ms')} | {j('p99_ms')} | "
                           f"{j('p999_ms')} | {j('max_lat_ms', 1)} | {j('srv_cpu_cores')} |")
                for r in rs:
                    print(f"DERIVED kind=probe qtype={qt} mode={m} label={l} run={r['run']} qps={r['qps']} p99_ms={r['p99_ms']}")
        out.append("")
    if any(r["tag"].startswith("mixed") for r in res):
        out.append("### Does `big` slow other lookups? A web (plain UDP) while a second dnsperf stream runs")
        out.append("2nd stream: control = A web (plain); with big = SRV _big._tcp plain UDP; with big EDNS = SRV _big._tcp with EDNS 4096. Ratio = web A q/s with big / control.")
        out.append("")
        out.append("| server | run | web A q/s: control | with big (ratio) | with big EDNS (ratio) | web A p99 ms: control / big / big EDNS | 2nd stream q/s: control / big / big EDNS | server CPU: control / big / big EDNS |")
        out.append("|---|---|---|---|---|---|---|---|")
        A, W = "A", "web.service.consul"
        for l in labels:
            for i in runs:
                c1 = by.get(("control-1", A, W, "plain", l, i))
                c2 = by.get(("control-2", A, W, "plain", l, i))
                m1 = by.get(("mixed-1", A, W, "plain", l, i))
                m2 = by.get(("mixed-2", "SRV", "_big._tcp.service.consul", "plain", l, i))
                e1 = by.get(("mixedE-1", A, W, "plain", l, i))
                e2 = by.get(("mixedE-2", "SRV", "_big._tcp.service.consul", "edns", l, i))
                if not c1:
                    continue
                def rr(x):
                    if not x or not float(c1["qps"]):
                        return "-", float("nan")
                    v = float(x["qps"]) / float(c1["qps"])
                    return f"{f(x['qps'])} (**{v:.2f}**)", v
                ms, mv = rr(m1)
                es, ev = rr(e1)
                print(f"DERIVED kind=mixed label={l} run={i} web_qps_control={c1['qps']} web_qps_big={m1['qps'] if m1 else '-'} ratio_big={mv:.3f} web_qps_bigedns={e1['qps'] if e1 else '-'} ratio_bigedns={ev:.3f}")
                g = lambda x, k, nd=0: f(x[k], nd) if x else "-"
                out.append(f"| {short[l]} | {i} | {f(c1['qps'])} | {ms} | {es} | {g(c1, 'p99_ms', 2)} / {g(m1, 'p99_ms', 2)} / {g(e1, 'p99_ms', 2)} | "
                           f"{g(c2, 'qps')} / {g(m2, 'qps')} / {g(e2, 'qps')} | {g(c1, 'srv_cpu_cores', 2)} / {g(m1, 'srv_cpu_cores', 2)} / {g(e1, 'srv_cpu_cores', 2)} |")
        out.append("")
    if any(r["tag"] == "big" for r in res):
        out.append("### `big` (5,000 instances) alone")
        out.append("| query | mode | server | q/s (runs) | p99 ms | µs CPU/query | resp bytes | **Lotse / NSD** (runs) |")
        out.append("|---|---|---|---|---|---|---|---|")
        bcells = sorted({(r["qtype"], r["qname"], r["mode"]) for r in res if r["tag"] == "big"})
        for qt, qn, m in bcells:
            for l in labels:
                rs = [by[(("big", qt, qn, m, l, i))] for i in runs if ("big", qt, qn, m, l, i) in by]
                if not rs:
                    continue
                rat = []
                for i in runs:
                    a, n = by.get(("big", qt, qn, m, l, i)), by.get(("big", qt, qn, m, "nsd", i))
                    if a and n and l != "nsd" and float(n["qps"]):
                        rat.append(f"{float(a['qps']) / float(n['qps']):.2f}")
                out.append(f"| {qt} {qn} | {m} | {short[l]} | {' / '.join(f(r['qps']) for r in rs)} | "
                           f"{' / '.join(f(r['p99_ms'], 2) for r in rs)} | {sum(float(r['srv_cpu_us_per_q']) for r in rs) / len(rs):.1f} | "
                           f"{rs[0]['resp_bytes']} | {' / '.join(rat) if rat else '-'} |")
        out.append("")

    # ---------------------------------------------------------------- shapes
    if checks:
        labels = [l for l in labels if any(c.get("label") == l for c in checks)]
        out.append("### Reply shapes (dig, one query each): answers / additional / bytes / TC")
        out.append("| query | mode | " + " | ".join(short[l] for l in labels) + " | 5,000 check |")
        out.append("|---|---|" + "---|" * len(labels) + "---|")
        sh = {}
        for c in checks:
            if c.get("kind") == "shape":
                sh[(c["qname"], c["qtype"], c["mode"], c["label"])] = c
        keys = []
        for c in checks:
            if c.get("kind") == "shape" and (c["qname"], c["qtype"], c["mode"]) not in keys:
                keys.append((c["qname"], c["qtype"], c["mode"]))
        for qn, qt, m in keys:
            row = [f"{qt} {qn}", m]
            oks = []
            for l in labels:
                c = sh.get((qn, qt, m, l))
                if not c:
                    row.append("-")
                    continue
                tc = " **TC**" if c["tc"] == "1" else ""
                rc = "" if c["rcode"] == "NOERROR" else f" {c['rcode']}"
                row.append(f"{c['answers']} / {c['additional']} / {c['bytes']} B{tc}{rc}")
                if c["ok"] != "-":
                    oks.append(f"{short[l]} {c['ok']}")
            row.append(", ".join(oks) if oks else "")
            out.append("| " + " | ".join(row) + " |")
        same = [c for c in checks if c.get("kind") == "same"]
        if same:
            out.append("")
            out.append("Answer sets over TCP equal to NSD's: " + ", ".join(
                f"{short[c['label']]} {c['qtype']} {c['qname']} ({c['answers']}): {c['same_as_nsd']}" for c in same))
        out.append("")
    print("\n".join("SUMMARY " + l if l else "SUMMARY" for l in out))


if __name__ == "__main__":
    main()
