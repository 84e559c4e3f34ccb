#!/usr/bin/env bash
# Idle memory and time-to-ready of `lotse agent -dev` (plus a durable one-server agent and
# etcd 3.4 one member, for reference).
#
# Usage: bench/run-startup-memory.sh [--runs 15] [--rss-runs 3] [--idle 2] [--out FILE] [--no-build] [--no-etcd]
#
# ready: time from exec (just before fork/exec of the agent, measured in a Python loop) to the
#        first HTTP 200 on GET /v1/status/leader whose body is non-empty and not `""` (i.e. a
#        leader is known). Polled every 0.5 ms over a fresh loopback connection. Median, min,
#        max of --runs runs (fresh process and, for the durable agent, fresh data dir each run).
#        etcd (reference): exec -> first 200 `{"health":"true"}` on /health.
# rss:   VmRSS (and RssAnon/RssFile, VmHWM) of the process after --idle seconds of idling once
#        ready; median of --rss-runs fresh processes.
# Prints RESULT lines (also appended to --out, default /tmp/lotse-bench/startup-<ts>.txt).
# Ports: lotse HTTP 18500, RPC 18300, serf 18301/18302, DNS 18600; etcd 24791/24891.
# Every process is started here and stopped by PID; temp dirs are removed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LOTSE_BIN=${LOTSE_BIN:-$ROOT/target/release/lotse}
runs=15 rss_runs=3 idle=2 out= build=1 etcd=1
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2;; --rss-runs) rss_runs=$2; shift 2;; --idle) idle=$2; shift 2;;
    --out) out=$2; shift 2;; --no-build) build=0; shift;; --no-etcd) etcd=0; shift;;
    -h|--help) sed -n '2,17p' "$0"; exit 0;;
    *) echo "run-startup-memory: unknown arg $1" >&2; exit 2;;
  esac
done
(( runs >= 1 && runs <= 100 && rss_runs >= 1 && rss_runs <= 20 )) || { echo "bad --runs/--rss-runs" >&2; exit 2; }
if (( build )); then (cd "$ROOT" && cargo build --release -p lotse >&2); fi
[[ -x $LOTSE_BIN ]] || { echo "no $LOTSE_BIN" >&2; exit 2; }
mkdir -p /tmp/lotse-bench
out=${out:-/tmp/lotse-bench/startup-$(date -u +%Y%m%dT%H%M%SZ).txt}
TMP=$(mktemp -d /tmp/lotse-bench-startup.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The Python driver owns every child it starts (Popen) and kills it by PID in a finally block.
python3 - "$LOTSE_BIN" "$TMP" "$runs" "$rss_runs" "$idle" "$etcd" <<'EOF' | tee -a "$out"
import os, sys, time, socket, subprocess, statistics, shutil
lotse, tmp, runs, rss_runs, idle, do_etcd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6] == "1"
PORTS = ["-http-port", "18500", "-server-port", "18300", "-serf-lan-port", "18301",
         "-serf-wan-port", "18302", "-dns-port", "18600"]

def http_get(port, path, timeout=0.5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while True:
            d = s.recv(65536)
            if not d: break
            buf += d
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body

def port_free(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return False
    except OSError:
        return True

def status(pid):
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            d[k] = int(v.split()[0])
    return d

def stop(p):
    if p.poll() is None:
        p.terminate()
        try: p.wait(5)
        except subprocess.TimeoutExpired: p.kill(); p.wait()

def ready_ok(kind, code, body):
    if kind == "etcd": return code == 200 and b'"true"' in body
    return code == 200 and body.strip() not in (b"", b'""')

def launch(kind, i):
    if kind == "dev":
        argv, port = [lotse, "agent", "-dev"] + PORTS, 18500
    elif kind == "durable":
        d = os.path.join(tmp, f"lotse-{i}")
        argv, port = [lotse, "agent", "-server", "-bootstrap-expect", "1", "-data-dir", d] + PORTS, 18500
    else:
        d = os.path.join(tmp, f"etcd-{i}")
        argv, port = ["etcd", "--name", "m1", "--data-dir", d,
                      "--listen-client-urls", "http://127.0.0.1:24791", "--advertise-client-urls", "http://127.0.0.1:24791",
                      "--listen-peer-urls", "http://127.0.0.1:24891", "--initial-advertise-peer-urls", "http://127.0.0.1:24891",
                      "--initial-cluster", "m1=http://127.0.0.1:24891", "--logger", "zap", "--log-level", "warn"], 24791
    for _ in range(100):                       # previous process's port must be gone
        if port_free(port): break
        time.sleep(0.05)
    log = open(os.path.join(tmp, f"{kind}-{i}.log"), "wb")
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    path = "/health" if kind == "etcd" else "/v1/status/leader"
    deadline = t0 + 30
    while True:
        try:
            code, body = http_get(port, path)
            if ready_ok(kind, code, body):
                return p, (time.perf_counter() - t0) * 1000
        except OSError:
            pass
        if p.poll() is not None or time.perf_counter() > deadline:
            stop(p); raise SystemExit(f"{kind}: not ready (exit={p.returncode}); see {log.name}")
        time.sleep(0.0005)

kinds = ["dev", "durable"] + (["etcd"] if do_etcd and shutil.which("etcd") else [])
for kind in kinds:
    n = runs if kind != "etcd" else min(runs, 5)
    times = []
    for i in range(n):
        p, ms = launch(kind, f"r{i}")
        try: times.append(ms)
        finally: stop(p)
    label = {"dev": "lotse-dev", "durable": "lotse-durable", "etcd": "etcd"}[kind]
    print(f"RESULT bench=ready label={label} runs={n} ready_ms_median={statistics.median(times):.1f} "
          f"ready_ms_min={min(times):.1f} ready_ms_max={max(times):.1f} "
          f"all_ms={','.join(f'{t:.1f}' for t in times)}", flush=True)
    rs = []
    for i in range(rss_runs):
        p, _ = launch(kind, f"m{i}")
        try:
            time.sleep(idle)
            rs.append(status(p.pid))
        finally: stop(p)
    med = {k: int(statistics.median(r[k] for r in rs)) for k in rs[0]}
    print(f"RESULT bench=idle_rss label={label} runs={rss_runs} idle_s={idle:g} vmrss_kb={med['VmRSS']} "
          f"rss_anon_kb={med.get('RssAnon','na')} rss_file_kb={med.get('RssFile','na')} vmhwm_kb={med['VmHWM']} "
          f"threads={med.get('Threads','na')} all_vmrss_kb={','.join(str(r['VmRSS']) for r in rs)}", flush=True)
EOF
echo "run-startup-memory: results appended to $out" >&2
