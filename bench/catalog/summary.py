#!/usr/bin/env python3
"""RESULT lines of bench/catalog/run.sh -> DERIVED lines (stdout) and Markdown tables (stderr).

Usage: summary.py RESULTS_FILE
Watch: per size and variant, medians over events of: time until every watcher had the new
answer, from the write's response (`all`) and from just before the write was sent (`all_send`);
the pooled per-watcher p50/p99; agent CPU per event. Ratios are Lotse / etcd for the same size and
variant (same run). Growth: each size against the smallest size of the same system.
Throughput: instances/s per op and connections; Lotse / etcd for the same op and connections.
"""
import statistics, sys
from collections import defaultdict

rows = []
for line in open(sys.argv[1]):
    p = line.split()
    if p and p[0] == "RESULT":
        rows.append(dict(kv.split("=", 1) for kv in p[1:] if "=" in kv))


def f(r, k):
    try:
        return float(r.get(k, "nan"))
    except ValueError:
        return float("nan")


def med(v):
    v = [x for x in v if x == x]
    return statistics.median(v) if v else float("nan")


def r2(x):
    return "na" if x != x else (f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}")


# ---- watch
events = defaultdict(list)
summ = {}
for r in rows:
    if r.get("bench") == "catalog_watch_event":
        events[(r["system"], int(r["n"]), r["variant"])].append(r)
    elif r.get("bench") == "catalog_watch":
        summ[(r["system"], int(r["n"]), r["variant"])] = r

agg = {}
for key, evs in events.items():
    s = summ.get(key, {})
    agg[key] = dict(
        events=len(evs), w=int(f(s, "watchers")) if s else int(f(evs[0], "watchers")),
        capped=s.get("watchers_capped", "0") == "1",
        all=med([f(e, "recv_max_ms") for e in evs]),
        all_send=med([f(e, "all_from_send_ms") for e in evs]),
        p50=f(s, "recv_p50_ms"), p99=f(s, "recv_p99_ms"),
        sp50=f(s, "send_p50_ms"), sp99=f(s, "send_p99_ms"),
        repark=med([f(e, "repark_all_ms") for e in evs]),
        repark_send=med([f(e, "repark_from_send_ms") for e in evs]),
        write=med([f(e, "write_ms") for e in evs]),
        bytes=med([f(e, "resp_bytes") for e in evs]),
        cpu=f(s, "srv_cpu_ms_per_event"), ccpu=f(s, "client_cpu_ms_per_event"),
        rss_before=f(s, "rss_before_kb"), rss_parked=f(s, "rss_parked_kb"), rss_max=f(s, "rss_max_kb"),
        hwm=f(s, "hwm_kb"), park_ms=f(s, "park_ms_per_watcher"),
        probe=max([f(e, "probe_max_ms") for e in evs] or [float("nan")]),
        missed=sum(int(f(e, "missed")) for e in evs), body_ok=sum(int(f(e, "body_ok")) for e in evs))

sizes = sorted({k[1] for k in agg})
variants = sorted({k[2] for k in agg}, key=lambda v: (v != "default", v))
tab = ["| N | variant | system | watchers | events | every watcher has it, from write sent (ms) | from write answered (ms) | "
       "write answered after (ms) | per watcher p50 / p99 from sent (ms) | all re-parked, from sent (ms) | "
       "answer B/watcher | server CPU ms/event | server µs/answer | client CPU ms/event | server RSS idle / parked / peak (MB) | "
       "other read during fan-out, max (ms) | missed / bad |",
       "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for n in sizes:
    for v in variants:
        for sys_ in ("lotse", "etcd"):
            a = agg.get((sys_, n, v))
            if not a:
                continue
            tab.append(f"| {n} | {v} | {sys_} | {a['w']}{' (capped)' if a['capped'] else ''} | {a['events']} | "
                       f"**{r2(a['all_send'])}** | {r2(a['all'])} | {r2(a['write'])} | {r2(a['sp50'])} / {r2(a['sp99'])} | "
                       f"{r2(a['repark_send']) if sys_ == 'lotse' else '(stream)'} | {a['bytes']:.0f} | {r2(a['cpu'])} | "
                       f"{r2(a['cpu'] * 1000 / max(a['w'], 1))} | {r2(a['ccpu'])} | "
                       f"{a['rss_before']/1024:.0f} / {a['rss_parked']/1024:.0f} / {a['rss_max']/1024:.0f} | {r2(a['probe'])} | "
                       f"{a['missed']} / {a['events'] - a['body_ok']} |")
        lo, et = agg.get(("lotse", n, v)), agg.get(("etcd", n, v))
        if lo and et:
            print(f"DERIVED cmp=watch n={n} variant={v} watchers={lo['w']} all_send_ratio={lo['all_send']/et['all_send']:.2f} "
                  f"all_resp_ratio={lo['all']/et['all']:.2f} p50_send_ratio={lo['sp50']/et['sp50']:.2f} "
                  f"cpu_ratio={lo['cpu']/max(et['cpu'], 1e-9):.2f} bytes_ratio={lo['bytes']/max(et['bytes'], 1):.0f} "
                  f"lotse_all_send_ms={lo['all_send']:.1f} etcd_all_send_ms={et['all_send']:.1f} "
                  f"lotse_all_resp_ms={lo['all']:.1f} etcd_all_resp_ms={et['all']:.1f} "
                  f"lotse_cpu_ms={lo['cpu']:.0f} etcd_cpu_ms={et['cpu']:.0f}")
for sys_ in ("lotse", "etcd"):
    for v in variants:
        base = [n for n in sizes if (sys_, n, v) in agg]
        if len(base) < 2:
            continue
        b = agg[(sys_, base[0], v)]
        for n in base[1:]:
            a = agg[(sys_, n, v)]
            # per answer, so that a capped watcher count compares
            cb, ca = b["cpu"] / max(b["w"], 1), a["cpu"] / max(a["w"], 1)
            print(f"DERIVED growth system={sys_} variant={v} from_n={base[0]} to_n={n} size_x={n/base[0]:.0f} "
                  f"watchers={b['w']}->{a['w']} all_send_x={a['all_send']/b['all_send']:.1f} "
                  f"all_send_per_watcher_x={(a['all_send']/a['w'])/(b['all_send']/b['w']):.1f} "
                  f"cpu_per_answer_x={ca/max(cb, 1e-9):.1f} bytes_x={a['bytes']/max(b['bytes'], 1):.1f} "
                  f"cpu_us_per_answer={ca*1000:.0f} cpu_ns_per_instance_per_answer={ca*1e6/n:.0f} "
                  f"park_ms_per_watcher={a['park_ms']:.2f} rss_per_parked_kb={(a['rss_parked']-a['rss_before'])/max(a['w'],1):.0f}")
if len(tab) > 2:
    print("\n== watch fan-out (medians over events) ==\n" + "\n".join(tab) + "\n", file=sys.stderr)

# ---- throughput
tp = {}
for r in rows:
    if r.get("bench") == "catalog_tput":
        tp[(r["label"], r["op"], int(r["conns"]))] = r
tab = ["| label | op | conns | inst/s | p50 ms | p99 ms | server CPU (cores) | µs CPU/op | client CPU (cores) | err | vs etcd |",
       "|---|---|---|---|---|---|---|---|---|---|---|"]
for (lab, op, c), r in sorted(tp.items(), key=lambda x: (x[0][1], x[0][2], x[0][0])):
    e = tp.get(("etcd", op if op != "agent-register" else "register", c))
    ratio = f(r, "per_s") / f(e, "per_s") if e and lab != "etcd" and f(e, "per_s") > 0 else float("nan")
    if ratio == ratio:
        print(f"DERIVED cmp=tput label={lab} op={op} conns={c} per_s={r['per_s']} etcd_per_s={e['per_s']} "
              f"ratio={ratio:.2f} p99_ms={r['p99_ms']} etcd_p99_ms={e['p99_ms']}")
    tab.append(f"| {lab} | {op} | {c} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['srv_cpu_cores']} | "
               f"{r.get('srv_cpu_us_per_op', 'na')} | {r['client_cpu_cores']} | {r['err']}{' (ran out)' if r.get('exhausted') == '1' else ''} | "
               f"{r2(ratio) if ratio == ratio else ''} |")
if len(tab) > 2:
    print("\n== register / deregister throughput ==\n" + "\n".join(tab) + "\n", file=sys.stderr)
