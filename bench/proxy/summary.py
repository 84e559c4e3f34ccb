"""Ratios from a bench/run-proxy.sh results file: Lotse vs HAProxy per repeat, and the
proxy's CPU-seconds per 10,000 requests (its whole-run CPU over the requests it served). With
`--floor`, the same for the bare hyper forwarder, and Lotse against it."""
import re
import sys


def fields(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def main(path):
    results, cpu_s, floor_cpu_s = {}, None, None
    for line in open(path):
        f = fields(line)
        if line.startswith("RESULT") and "run" in f:
            results[(f.get("label"), f["run"])] = f
        if line.startswith("INFO lotse_proxy"):
            cpu_s = float(f["cpu_s"])
        if line.startswith("INFO floor"):
            floor_cpu_s = float(f["cpu_s"])
    runs = sorted({r for (_, r) in results})
    lotse_reqs = floor_reqs = 0
    for r in runs:
        h, l, fl = (results.get((n, r)) for n in ("haproxy", "lotse", "floor"))
        if h and l and fl:
            floor_reqs += int(fl["reqs"])
            print(f"DERIVED floor run={r} floor_vs_haproxy_rps={float(fl['rps']) / float(h['rps']):.3f} "
                  f"lotse_vs_floor_rps={float(l['rps']) / float(fl['rps']):.3f} floor_rps={fl['rps']}")
        d, h, l = (results.get((n, r)) for n in ("direct", "haproxy", "lotse"))
        if not (d and h and l):
            continue
        lotse_reqs += int(l["reqs"])
        print(f"DERIVED lotse_vs_haproxy run={r} rps_ratio={float(l['rps']) / float(h['rps']):.3f} "
              f"lotse_rps={l['rps']} haproxy_rps={h['rps']} "
              f"added_p50_ms_lotse={float(l['p50_ms']) - float(d['p50_ms']):.3f} "
              f"added_p50_ms_haproxy={float(h['p50_ms']) - float(d['p50_ms']):.3f} "
              f"haproxy_cpu_s_per_10k={float(h['proxy_cpu_cores']) * float(h['dur_s']) / int(h['reqs']) * 1e4:.3f}")
    if cpu_s is not None and lotse_reqs:
        print(f"DERIVED lotse_cpu_s_per_10k={cpu_s / lotse_reqs * 1e4:.3f} lotse_reqs={lotse_reqs}")
    if floor_cpu_s is not None and floor_reqs:
        print(f"DERIVED floor_cpu_s_per_10k={floor_cpu_s / floor_reqs * 1e4:.3f} floor_reqs={floor_reqs}")


if __name__ == "__main__":
    main(sys.argv[1])
