#!/usr/bin/env bash
# 10,000 parked blocking queries on distinct keys: agent memory added, and PUT -> watcher wake latency.
#
# Usage: bench/parked-queries/run.sh [--n 10000] [--samples 20] [--durable] [--idle-conns] [--out FILE] [--no-build]
#   --idle-conns: attribution run, N connections that send nothing (no query parked).
#
# Starts `lotse agent -dev` (or, with --durable, `-server -bootstrap-expect 1 -data-dir <tmp>`)
# on HTTP 18500 (RPC 18300, serf 18301/18302, DNS 18600) with `ulimit -n` raised to the hard
# limit (>= 2*N+100 needed), runs parked.py against it (see its docstring), prints its RESULT
# line (appended to --out, default /tmp/lotse-bench/parked-<ts>.txt), stops the agent by PID
# and removes the temp dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LOTSE_BIN=${LOTSE_BIN:-$ROOT/target/release/lotse}
n=10000 samples=20 durable=0 out= build=1 extra=()
while (($#)); do
  case $1 in
    --n) n=$2; shift 2;; --samples) samples=$2; shift 2;; --durable) durable=1; shift;;
    --out) out=$2; shift 2;; --no-build) build=0; shift;;
    --idle-conns) extra=(--idle-conns); shift;;
    -h|--help) sed -n '2,10p' "$0"; exit 0;;
    *) echo "parked: unknown arg $1" >&2; exit 2;;
  esac
done
(( n >= 1 && n <= 50000 )) || { echo "parked: --n must be 1..50000" >&2; exit 2; }

hard=$(ulimit -Hn); want=$(( n * 2 + 1000 )); (( want < 65536 )) && want=65536
if [[ $hard != unlimited ]] && (( want > hard )); then want=$hard; fi
ulimit -n "$want"
(( $(ulimit -n) >= n + 200 )) || { echo "parked: ulimit -n $(ulimit -n) too low for $n connections" >&2; exit 2; }

if (( build )); then (cd "$ROOT" && cargo build --release -p lotse >&2); fi
mkdir -p /tmp/lotse-bench
out=${out:-/tmp/lotse-bench/parked-$(date -u +%Y%m%dT%H%M%SZ).txt}
TMP=$(mktemp -d /tmp/lotse-bench-parked.XXXXXX)
PID=
cleanup() {
  set +e
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PID" 2>/dev/null && kill -KILL "$PID"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10,000 connections from one IP: far above Consul's default of 200 per client (429 beyond it).
echo '{"limits": {"http_max_conns_per_client": 0}}' >"$TMP/limits.json"
PORTS=(-http-port 18500 -server-port 18300 -serf-lan-port 18301 -serf-wan-port 18302 -dns-port 18600
       -config-file "$TMP/limits.json")
if (( durable )); then
  mode=durable; "$LOTSE_BIN" agent -server -bootstrap-expect 1 -data-dir "$TMP/data" "${PORTS[@]}" >"$TMP/agent.log" 2>&1 &
else
  mode=dev; "$LOTSE_BIN" agent -dev "${PORTS[@]}" >"$TMP/agent.log" 2>&1 &
fi
PID=$!
for _ in $(seq 1 150); do
  b=$(curl -s -m 1 http://127.0.0.1:18500/v1/status/leader || true)
  [[ -n $b && $b != '""' ]] && break
  kill -0 "$PID" 2>/dev/null || { cat "$TMP/agent.log" >&2; exit 1; }
  sleep 0.1
done
echo "parked: agent pid $PID ($mode), nofile limit $(awk '/Max open files/{print $4}' /proc/$PID/limits)" >&2
timeout 300 python3 "$HERE/parked.py" --url http://127.0.0.1:18500 --pid "$PID" --n "$n" \
  --samples "$samples" --label "lotse-$mode" "${extra[@]}" | tee -a "$out"
grep -iE 'error|warn' "$TMP/agent.log" | head -5 >&2 || true
echo "parked: results appended to $out" >&2
