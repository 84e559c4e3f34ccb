#!/usr/bin/env python3
"""RESULT/INFO lines of bench/run-cluster.sh -> DERIVED lines (stdout) and Markdown tables (stderr).

Usage: bench/cluster/summary.py RESULTS_FILE [--md]   (--md: tables on stdout, no DERIVED lines)
"""
import statistics
import sys


def parse(path):
    rows, infos = [], []
    for line in open(path):
        p = line.split()
        if not p or p[0] not in ("RESULT", "INFO"):
            continue
        d = {}
        for kv in p[1:]:
            if "=" in kv:
                k, v = kv.split("=", 1)
                d[k] = v
        (rows if p[0] == "RESULT" else infos).append(d)
    return rows, infos


def num(r, k):
    try:
        return float(r.get(k, "nan"))
    except ValueError:
        return float("nan")


def main():
    path = sys.argv[1]
    md_only = "--md" in sys.argv
    rows, infos = parse(path)
    derived, md = [], []
    kv = [r for r in rows if r.get("gen") == "kvload"]
    idx = {(r.get("label"), r.get("op"), r.get("mode"), r.get("conns"), r.get("run")): r for r in kv}

    # puts
    md += ["### Puts (Lotse: 3 servers, etcd: 3 members; ratio = Lotse / etcd, same repeat)", "",
           "| conns | run | Lotse rps | etcd rps | **rps ratio** | Lotse p50 / p99 ms | etcd p50 / p99 ms | p99 ratio | Lotse err | etcd err | Lotse CPU | etcd CPU |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    puts = sorted({(int(r["conns"]), r["run"]) for r in kv if r.get("op") == "put"})
    for c, run in puts:
        for where in ("", "@leader"):
            lo, et = idx.get(("lotse" + where, "put", "-", str(c), run)), idx.get(("etcd" + where, "put", "-", str(c), run))
            if not lo or not et:
                continue
            ratio = num(lo, "rps") / max(num(et, "rps"), 1e-9)
            p99r = num(lo, "p99_ms") / max(num(et, "p99_ms"), 1e-9)
            derived.append(f"DERIVED cmp=put{where.replace('@', '_to_')} conns={c} run={run} lotse_rps={lo['rps']} etcd_rps={et['rps']} rps_ratio={ratio:.2f} "
                           f"lotse_p50_ms={lo['p50_ms']} etcd_p50_ms={et['p50_ms']} lotse_p99_ms={lo['p99_ms']} etcd_p99_ms={et['p99_ms']} "
                           f"p99_ratio={p99r:.2f} lotse_err={lo['err']} etcd_err={et['err']} lotse_codes={lo.get('codes')} etcd_codes={et.get('codes')}")
            md.append(f"| {c}{' (to the leader)' if where else ''} | {run} | {float(lo['rps']):,.0f} | {float(et['rps']):,.0f} | **{ratio:.2f}** | {lo['p50_ms']} / {lo['p99_ms']} | "
                      f"{et['p50_ms']} / {et['p99_ms']} | {p99r:.2f} | {lo['err']} | {et['err']} | {lo.get('srv_cpu_cores', 'na')} | {et.get('srv_cpu_cores', 'na')} |")

    # reads
    md += ["", "### Reads at the get concurrency (prefilled key space)", "",
           "| Lotse mode vs etcd mode | conns | run | Lotse rps | etcd rps | **rps ratio** | Lotse p50 / p99 ms | etcd p50 / p99 ms | Lotse err / miss | etcd err / miss |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    gets = sorted({(int(r["conns"]), r["run"]) for r in kv if r.get("op") == "get"})
    for c, run in gets:
        for lm, em in (("default", "linearizable"), ("consistent", "linearizable"), ("stale", "serializable")):
            lo, et = idx.get(("lotse", "get", lm, str(c), run)), idx.get(("etcd", "get", em, str(c), run))
            if not lo or not et:
                continue
            ratio = num(lo, "rps") / max(num(et, "rps"), 1e-9)
            derived.append(f"DERIVED cmp=get lotse_mode={lm} etcd_mode={em} conns={c} run={run} lotse_rps={lo['rps']} etcd_rps={et['rps']} "
                           f"rps_ratio={ratio:.2f} lotse_p50_ms={lo['p50_ms']} etcd_p50_ms={et['p50_ms']} lotse_p99_ms={lo['p99_ms']} "
                           f"etcd_p99_ms={et['p99_ms']} lotse_err={lo['err']} etcd_err={et['err']} lotse_miss={lo.get('miss')} etcd_miss={et.get('miss')}")
            md.append(f"| {lm} vs {em} | {c} | {run} | {float(lo['rps']):,.0f} | {float(et['rps']):,.0f} | **{ratio:.2f}** | "
                      f"{lo['p50_ms']} / {lo['p99_ms']} | {et['p50_ms']} / {et['p99_ms']} | {lo['err']} / {lo.get('miss')} | {et['err']} / {et.get('miss')} |")

    # RSS after the load runs
    rss = [i for i in infos if i.get("kind") in ("rss", "rss_idle")]
    if rss:
        md += ["", "### RSS per server (kB)", "", "| system | member | role | idle after start (VmRSS) | after the load runs (VmRSS) | peak (VmHWM) |", "|---|---|---|---|---|---|"]
        for sys_ in ("lotse", "etcd"):
            after = {i["member"]: i for i in rss if i["kind"] == "rss" and i["label"] == sys_}
            idle = {i["member"]: i for i in rss if i["kind"] == "rss_idle" and i["label"] == sys_}
            for m in sorted(set(after) | set(idle)):
                a, b = after.get(m, {}), idle.get(m, {})
                md.append(f"| {sys_} | {m} | {a.get('role', b.get('role', '?'))} | {b.get('rss_kb', 'na')} | {a.get('rss_kb', 'na')} | {a.get('hwm_kb', 'na')} |")
            if after:
                tot = sum(int(i["rss_kb"]) for i in after.values())
                derived.append(f"DERIVED cmp=rss label={sys_} members={len(after)} rss_kb_sum={tot} rss_kb_max={max(int(i['rss_kb']) for i in after.values())} "
                               f"hwm_kb_max={max(int(i['hwm_kb']) for i in after.values())}")

    # failover
    fo = [r for r in rows if r.get("kind") == "failover"]
    if fo:
        md += ["", "### Failover (kill -9 of the leader → first successful write sent after the kill)", "",
               "| system | run | killed | writes to | new leader | **failover ms** | target saw new leader ms | first ok: writers / prober ms | failed writes (in flight at kill) | acked writes lost | back to healthy s |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in fo:
            md.append(f"| {r['label']} | {r['run']} | {r['killed']} | {r['target']} | {r['new_leader']} | **{r['failover_ms']}** | {r['leader_seen_ms']} | "
                      f"{r.get('first_ok_writers_ms', 'na')} / {r.get('first_ok_probe_ms', 'na')} | {r['post_err']} ({r.get('inflight_err', '?')}) | "
                      f"{r['acked_lost']} / {r['acked_checked']} | {r['recovered_s']} |")
        for sys_ in ("lotse", "etcd"):
            v = [float(r["failover_ms"]) for r in fo if r["label"] == sys_ and r["failover_ms"] != "na"]
            n_fail = sum(1 for r in fo if r["label"] == sys_ and r["failover_ms"] == "na")
            if v or n_fail:
                med = f"{statistics.median(v):.0f}" if v else "na"
                derived.append(f"DERIVED cmp=failover label={sys_} runs={len(v) + n_fail} no_success={n_fail} "
                               f"failover_ms_each={','.join(f'{x:.0f}' for x in v)} failover_ms_median={med}")
                md.append(f"| {sys_} | **median** | | | | **{med}** | | | | | |")

    # leader changes under load
    runs = [i for i in infos if i.get("kind") == "run"]
    changed = [i for i in runs if i.get("before_term") != i.get("after_term") or i.get("before_leader") != i.get("after_leader")]
    derived.append(f"DERIVED cmp=leader_changes_under_load runs={len(runs)} changed={len(changed)} "
                   + " ".join(f"{i['label']}:{i['op']}:{i['mode']}:c{i['conns']}:r{i['run']}" for i in changed))
    if md_only:
        print("\n".join(md))
    else:
        print("\n".join(derived))
        print("\n" + "\n".join(md) + "\n", file=sys.stderr)


if __name__ == "__main__":
    main()
