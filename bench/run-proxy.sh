#!/usr/bin/env bash
# Lotse's L7 sidecar vs HAProxy and nginx, in one run of the shared harness
# (/work/shared/bench/proxy-bench.sh: wrk against direct nginx, HAProxy, nginx-as-proxy and the
# extra target). Loopback only; everything started here is stopped by PID on exit.
#
# Usage: bench/run-proxy.sh [--conns 64] [--duration 10] [--repeat 2] [--access-log] [--floor]
#                           [--out FILE] [--no-build]
#   --access-log  run the sidecar with its JSON access log on (off by default, as in Consul)
#   --floor       also measure lotse-proxy's examples/bare_forward on 21100: the same hyper
#                 server and per-connection client on one thread, with none of the features
#                 (what the building blocks cost; the sidecar's excess over it is the features)
#   --out         results file (default /tmp/lotse-bench/proxy-<UTC>.txt)
#
# Lotse side: `lotse agent -dev` on ports 18700-18703, service `up` = 127.0.0.1:18080 (the
# harness's upstream nginx), service `bench` whose sidecar has upstream `up` on 21000 with
# Config {"protocol": "http"}, and `lotse connect proxy -sidecar-for bench-1`.
# Adds to the harness's output: INFO lotse_proxy cpu_s= (utime+stime over the whole harness
# run, which measures Lotse's proxy only in its own slots), rss_kb, hwm_kb, and
# DERIVED lotse_vs_haproxy run=i rps_ratio= added_p50_ms_lotse= added_p50_ms_haproxy=
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SB=${SHARED_BENCH:-/work/shared/bench}
LOTSE_BIN=${LOTSE_BIN:-$ROOT/target/release/lotse}
conns=64 dur=10 repeat=2 access=0 out= build=1 floor=0
while (($#)); do
  case $1 in
    --conns) conns=$2; shift 2;;
    --duration) dur=$2; shift 2;;
    --repeat) repeat=$2; shift 2;;
    --access-log) access=1; shift;;
    --floor) floor=1; shift;;
    --out) out=$2; shift 2;;
    --no-build) build=0; shift;;
    -h|--help) sed -n '2,20p' "$0"; exit 0;;
    *) echo "run-proxy: unknown arg $1" >&2; exit 2;;
  esac
done
out=${out:-/tmp/lotse-bench/proxy-$(date -u +%Y%m%dT%H%M%S).txt}
mkdir -p "$(dirname "$out")"
((build)) && (cd "$ROOT" && cargo build --release -p lotse >&2)
if ((build && floor)); then
  (cd "$ROOT" && cargo build --release -p lotse-proxy --example bare_forward >&2)
fi
FLOOR_BIN=${FLOOR_BIN:-$ROOT/target/release/examples/bare_forward}
work=$(mktemp -d /tmp/lotse-proxy-bench.XXXXXX)
pids=()
# shellcheck source=bench/proxy/agent.sh
source "$HERE/proxy/agent.sh"
cleanup() {
  stop_pids
  rm -rf "$work"
}
trap cleanup EXIT

start_agent
args=("${SIDECAR_ARGS[@]}")
((access)) && args+=(-access-log)
"$LOTSE_BIN" "${args[@]}" >"$work/proxy.log" 2>&1 & proxy=$!; pids+=($proxy)
wait_sidecar || { echo "run-proxy: the sidecar did not get ready:" >&2; tail -5 "$work/proxy.log" >&2; exit 1; }
extra=(--extra lotse=http://127.0.0.1:21000/)
if ((floor)); then
  "$FLOOR_BIN" 127.0.0.1:21100 127.0.0.1:18080 >"$work/floor.log" 2>&1 & floor_pid=$!; pids+=($floor_pid)
  extra+=(--extra floor=http://127.0.0.1:21100/)
fi

ticks() { read -r -a f < <(sed 's/.*) //' "/proc/$1/stat"); echo $((f[11] + f[12])); }
{
  echo "INFO commit=$(cd "$ROOT" && git rev-parse --short HEAD) conns=$conns dur_s=$dur repeat=$repeat access_log=$access date=$(date -u +%FT%TZ)"
  c0=$(ticks "$proxy"); f0=0; if ((floor)); then f0=$(ticks "$floor_pid"); fi
  "$SB/proxy-bench.sh" --conns "$conns" --duration "$dur" --repeat "$repeat" "${extra[@]}" 2>&1
  c1=$(ticks "$proxy")
  if ((floor)); then
    f1=$(ticks "$floor_pid")
    echo "INFO floor cpu_s=$(awk "BEGIN{printf \"%.2f\", ($f1-$f0)/100}")"
  fi
  rss=$(awk '/VmRSS/{print $2}' "/proc/$proxy/status"); hwm=$(awk '/VmHWM/{print $2}' "/proc/$proxy/status")
  echo "INFO lotse_proxy cpu_s=$(awk "BEGIN{printf \"%.2f\", ($c1-$c0)/100}") rss_kb=$rss hwm_kb=$hwm access_log_lines=$(grep -c '"access"' "$work/proxy.log" || true)"
} | tee "$out"
python3 "$HERE/proxy/summary.py" "$out" | tee -a "$out"
echo "results: $out" >&2
