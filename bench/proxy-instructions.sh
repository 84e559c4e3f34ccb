#!/usr/bin/env bash
# Instructions per request of the L7 sidecar, counted by valgrind (callgrind): a figure this
# shared, noisy box cannot move, for comparing builds where a few percent of CPU time is lost
# in the noise of wall-clock runs. Not a speed: memory stalls, system calls and the kernel's
# share are not in it (see run-proxy.sh for those).
#
# Usage: bench/proxy-instructions.sh [--seconds 10] [--conns 8] LABEL=BINARY [LABEL=BINARY ...]
#   e.g.  bench/proxy-instructions.sh before=/tmp/lotse-old after=target/release/lotse
#
# Setup as run-proxy.sh (bench/proxy/agent.sh; the upstream is the shared harness's nginx on
# 18080, started with --keep and stopped at the end). Each binary's sidecar runs under
# callgrind in turn; after a warm-up, counters are zeroed, wrk drives it, and the requests the
# sidecar answered (its admin metrics) divide the instructions counted. Prints one line per
# binary: `IR label=... requests=... instructions_per_request=...`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SB=${SHARED_BENCH:-/work/shared/bench}
secs=10 conns=8 bins=()
while (($#)); do
  case $1 in
    --seconds) secs=$2; shift 2;;
    --conns) conns=$2; shift 2;;
    *=*) bins+=("$1"); shift;;
    *) echo "proxy-instructions: unknown arg $1" >&2; exit 2;;
  esac
done
((${#bins[@]})) || { echo "usage: $0 LABEL=BINARY ..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "proxy-instructions: needs valgrind" >&2; exit 1; }
LOTSE_BIN=${bins[0]#*=}
work=$(mktemp -d /tmp/lotse-proxy-ir.XXXXXX)
pids=()
# shellcheck source=bench/proxy/agent.sh
source "$HERE/proxy/agent.sh"
cleanup() {
  stop_pids
  "$SB/proxy-bench.sh" --stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The harness's upstream nginx (and its HAProxy and nginx proxies, idle here), kept running.
"$SB/proxy-bench.sh" --conns 4 --duration 1 --repeat 1 --keep >/dev/null 2>&1
start_agent

answered() {
  curl -fs http://127.0.0.1:19700/metrics |
    awk '/^lotse_proxy_requests_total\{upstream="up"/{s+=$2} END{printf "%d", s}'
}

for entry in "${bins[@]}"; do
  label=${entry%%=*} bin=${entry#*=}
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$label" \
    "$bin" "${SIDECAR_ARGS[@]}" >"$work/proxy.$label.log" 2>&1 & proxy=$!; pids+=($proxy)
  wait_sidecar 600 || { echo "proxy-instructions: $label did not start" >&2; exit 1; }
  wrk -t1 -c"$conns" -d3s http://127.0.0.1:21000/ >/dev/null
  callgrind_control -z "$proxy" >/dev/null 2>&1
  r0=$(answered)
  wrk -t1 -c"$conns" -d"${secs}s" http://127.0.0.1:21000/ >/dev/null
  r1=$(answered)
  callgrind_control -d "$proxy" >/dev/null 2>&1
  kill -TERM "$proxy"; wait "$proxy" 2>/dev/null || true
  keep=(); for p in "${pids[@]}"; do [[ $p == "$proxy" ]] || keep+=("$p"); done; pids=("${keep[@]}")
  # callgrind_control -d wrote "<file>.1"; the dump at exit is "<file>" itself.
  dump="$work/cg.$label.1"
  [[ -s $dump ]] || { echo "proxy-instructions: no callgrind dump for $label" >&2; exit 1; }
  ir=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
  [[ $ir =~ ^[0-9]+$ ]] || { echo "proxy-instructions: callgrind_annotate failed for $label" >&2; exit 1; }
  n=$((r1 - r0))
  ((n > 0)) || { echo "proxy-instructions: $label answered no requests" >&2; exit 1; }
  echo "IR label=$label requests=$n instructions_per_request=$((ir / n))"
done
