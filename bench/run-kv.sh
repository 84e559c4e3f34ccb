#!/usr/bin/env bash
# Lotse KV vs etcd 3.4 (one member), same generator, same flags, interleaved, >=2 repeats.
#
# Usage:
#   bench/run-kv.sh [--install] [--repeat 2] [--duration 9] [--warmup 1] [--conns 1,16,64,256]
#                   [--get-conns 64] [--keys 10000] [--value-size 128] [--out FILE] [--no-build]
#
#   --install     apt-get update + apt-get install -y etcd-server etcd-client wrk, with a
#                 policy-rc.d that blocks service autostart (nothing is installed otherwise).
#   --duration    measured seconds per run (default 9; + 1 s warm-up = 10 s per run).
#   --out         results file (default /tmp/lotse-bench/kv-<timestamp>.txt); every RESULT
#                 line, plus INFO lines (Lotse group-commit counters per put run) and DERIVED
#                 lines (ratios), goes there.
#   --no-build    skip `cargo build --release -p lotse`.
#
# Env: KVLOAD (default /tmp/kvload-target/release/kvload; built there if missing),
#      SHARED_BENCH (default /work/shared/bench), LOTSE_BIN (default <repo>/target/release/lotse).
#
# What it runs (each line = one kv-bench.sh --gen kvload run; order alternates per repeat):
#   put  conns 1,16,64,256   Lotse (durable, -data-dir)  vs  etcd
#   get  conns 64            Lotse default, stale, consistent  vs  etcd linearizable, serializable
# Starts: lotse agent -server -bootstrap-expect 1 -data-dir <tmp> on :18500 (RPC 18300,
# serf 18301/18302, DNS 18600) and `etcd-cluster.sh start 1` (:24791, state in the tmp dir).
# Everything started here is stopped by PID on exit; temp dirs are removed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SB=${SHARED_BENCH:-/work/shared/bench}
export KVLOAD=${KVLOAD:-/tmp/kvload-target/release/kvload}
LOTSE_BIN=${LOTSE_BIN:-$ROOT/target/release/lotse}

install=0 repeat=2 dur=9 warmup=1 conns=1,16,64,256 gconns=64 keys=10000 vsize=128 out= build=1
while (($#)); do
  case $1 in
    --install) install=1; shift;;
    --repeat) repeat=$2; shift 2;;
    --duration) dur=$2; shift 2;;
    --warmup) warmup=$2; shift 2;;
    --conns) conns=$2; shift 2;;
    --get-conns) gconns=$2; shift 2;;
    --keys) keys=$2; shift 2;;
    --value-size) vsize=$2; shift 2;;
    --out) out=$2; shift 2;;
    --no-build) build=0; shift;;
    -h|--help) sed -n '2,27p' "$0"; exit 0;;
    *) echo "run-kv: unknown arg $1" >&2; exit 2;;
  esac
done
(( dur >= 1 && dur + warmup <= 600 )) || { echo "run-kv: duration must be 1..600 s" >&2; exit 2; }

if (( install )); then
  apt-get update
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client wrk
fi
command -v etcd >/dev/null || { echo "run-kv: etcd not found (run with --install)" >&2; exit 2; }

if [[ ! -x $KVLOAD ]]; then
  cargo build --release --manifest-path "$SB/kvload/Cargo.toml" --target-dir /tmp/kvload-target >&2
fi
if (( build )); then (cd "$ROOT" && cargo build --release -p lotse >&2); fi
[[ -x $LOTSE_BIN ]] || { echo "run-kv: no $LOTSE_BIN" >&2; exit 2; }

TMP=$(mktemp -d /tmp/lotse-bench-kv.XXXXXX)
mkdir -p /tmp/lotse-bench
out=${out:-/tmp/lotse-bench/kv-$(date -u +%Y%m%dT%H%M%SZ).txt}
: >"$out"
export BENCH_LOG_DIR=$TMP/logs
LOTSE_PID= ETCD_DIR=$TMP/etcd
cleanup() {
  set +e
  if [[ -n $LOTSE_PID ]] && kill -0 "$LOTSE_PID" 2>/dev/null; then
    kill -TERM "$LOTSE_PID"
    for _ in $(seq 1 50); do kill -0 "$LOTSE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$LOTSE_PID" 2>/dev/null && kill -KILL "$LOTSE_PID"
  fi
  [[ -f $ETCD_DIR/pids ]] && "$SB/etcd-stop.sh" "$ETCD_DIR" >&2
  [[ -d $TMP/logs ]] && cp -r "$TMP/logs" "${out%.txt}-logs" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

L=http://127.0.0.1:18500
# 256 connections from one IP: above Consul's default of 200 per client (which answers 429).
echo '{"limits": {"http_max_conns_per_client": 0}}' >"$TMP/limits.json"
"$LOTSE_BIN" agent -server -bootstrap-expect 1 -data-dir "$TMP/lotse-data" -http-port 18500 \
  -server-port 18300 -serf-lan-port 18301 -serf-wan-port 18302 -dns-port 18600 \
  -config-file "$TMP/limits.json" \
  >"$TMP/lotse.log" 2>&1 &
LOTSE_PID=$!
for _ in $(seq 1 150); do
  b=$(curl -s -m 1 "$L/v1/status/leader" || true)
  [[ -n $b && $b != '""' ]] && break
  kill -0 "$LOTSE_PID" 2>/dev/null || { cat "$TMP/lotse.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $b && $b != '""' ]] || { echo "run-kv: lotse has no leader after 15 s" >&2; exit 1; }

ETCD_STATE_DIR=$ETCD_DIR "$SB/etcd-cluster.sh" start 1 >"$TMP/etcd.env"
ETCD_URLS=$(sed -n 's/^ENDPOINTS=//p' "$TMP/etcd.env")
ETCD_PIDS=$(sed -n 's/^PIDS=//p' "$TMP/etcd.env")
echo "INFO lotse_pid=$LOTSE_PID lotse_url=$L etcd_pids=$ETCD_PIDS etcd_urls=$ETCD_URLS etcd=$(etcd --version | sed -n 's/etcd Version: //p') lotse_commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo na) dur_s=$dur warmup_s=$warmup keys=$keys vsize=$vsize" | tee -a "$out"

raft() { # prints "commits entries micros" from /v1/agent/self
  curl -s -m 5 "$L/v1/agent/self" | python3 -c 'import json,sys
r=json.load(sys.stdin)["Stats"]["raft"]; print(r["log_commits"], r["log_entries_persisted"], r["log_commit_micros"])' 2>/dev/null || echo "0 0 0"
}

# one kv-bench run; $1=system(lotse|etcd) $2=op $3=mode $4=conns $5=run index
one() {
  local sys=$1 op=$2 mode=$3 c=$4 r=$5 api urls pids line before after
  if [[ $sys == lotse ]]; then api=consul urls=$L pids=$LOTSE_PID; else api=etcd urls=$ETCD_URLS pids=$ETCD_PIDS; fi
  [[ $sys == lotse && $op == put ]] && before=$(raft)
  local modeargs=(); [[ $mode != - ]] && modeargs=(--mode "$mode")
  line=$("$SB/kv-bench.sh" --api "$api" --urls "$urls" --op "$op" "${modeargs[@]}" --conns "$c" \
          --duration "$dur" --warmup "$warmup" --value-size "$vsize" --keys "$keys" --gen kvload \
          --prefill no --repeat 1 --pids "$pids" --label "$sys" | sed "s/ run=1\$/ run=$r/")
  echo "$line" | tee -a "$out"
  if [[ $sys == lotse && $op == put ]]; then
    after=$(raft)
    python3 - "$before" "$after" "$c" "$r" <<'EOF' | tee -a "$out"
import sys
b = [int(x) for x in sys.argv[1].split()]; a = [int(x) for x in sys.argv[2].split()]
dc, de, dm = a[0]-b[0], a[1]-b[1], a[2]-b[2]
print(f"INFO label=lotse op=put conns={sys.argv[3]} run={sys.argv[4]} log_commits={dc} log_entries={de} "
      f"entries_per_commit={de/max(dc,1):.1f} commit_us_avg={dm/max(dc,1):.0f}")
EOF
  fi
}

t_start=$SECONDS
IFS=, read -r -a conn_arr <<<"$conns"
for r in $(seq 1 "$repeat"); do
  # alternate who goes first, so neither system always runs on a "warmer" box
  if (( r % 2 )); then order="lotse etcd"; else order="etcd lotse"; fi
  for c in "${conn_arr[@]}"; do
    for s in $order; do one "$s" put - "$c" "$r"; done
  done
done

# reads: write every key once (both systems), then interleave the modes
"$KVLOAD" --api consul --urls "$L" --op put --keys "$keys" --value-size "$vsize" --prefix bench/ --conns 32 --duration 0 --prefill >&2
"$KVLOAD" --api etcd --urls "$ETCD_URLS" --op put --keys "$keys" --value-size "$vsize" --prefix bench/ --conns 32 --duration 0 --prefill >&2
for r in $(seq 1 "$repeat"); do
  if (( r % 2 )); then
    seq_="lotse:default etcd:linearizable lotse:stale etcd:serializable lotse:consistent"
  else
    seq_="etcd:serializable lotse:consistent etcd:linearizable lotse:stale lotse:default"
  fi
  for sm in $seq_; do one "${sm%%:*}" get "${sm#*:}" "$gconns" "$r"; done
done
echo "INFO lotse_rss_kb_end=$(awk '/^VmRSS/{print $2}' /proc/$LOTSE_PID/status) lotse_hwm_kb=$(awk '/^VmHWM/{print $2}' /proc/$LOTSE_PID/status) bench_wall_s=$((SECONDS - t_start))" | tee -a "$out"

# ratios: Lotse rps / etcd rps per (op, conns, run); gets: each Lotse mode vs each etcd mode
python3 - "$out" <<'EOF' | tee -a "$out"
import sys
rows = []
for line in open(sys.argv[1]):
    p = line.split()
    if p and p[0] == "RESULT":
        rows.append(dict(kv.split("=", 1) for kv in p[1:] if "=" in kv))
def f(r, k): return float(r.get(k, "nan"))
idx = {(r.get("label"), r.get("op"), r.get("mode"), r.get("conns"), r.get("run")): r for r in rows}
pairs = []
for (lab, op, mode, c, run), r in idx.items():
    if lab != "lotse": continue
    if op == "put":
        pairs.append(((0, int(c), "", run), f"put c={c}", r, idx.get(("etcd", "put", "-", c, run)), run))
    else:
        for em in ("linearizable", "serializable"):
            pairs.append(((1, int(c), mode + em, run), f"get c={c} lotse:{mode} vs etcd:{em}", r, idx.get(("etcd", "get", em, c, run)), run))
pairs.sort(key=lambda x: x[0])
tab = ["| comparison | run | Lotse rps | etcd rps | ratio | Lotse p99 ms | etcd p99 ms | Lotse CPU | etcd CPU |",
       "|---|---|---|---|---|---|---|---|---|"]
for _, name, l, e, run in pairs:
    if e is None: continue
    ratio = f(l, "rps") / max(f(e, "rps"), 1e-9)
    print(f"DERIVED cmp={name.replace(' ', '_')} run={run} lotse_rps={l['rps']} etcd_rps={e['rps']} "
          f"rps_ratio={ratio:.2f} lotse_p99_ms={l['p99_ms']} etcd_p99_ms={e['p99_ms']} "
          f"lotse_err={l['err']} etcd_err={e['err']} lotse_cpu={l.get('srv_cpu_cores','na')} etcd_cpu={e.get('srv_cpu_cores','na')}")
    tab.append(f"| {name} | {run} | {l['rps']} | {e['rps']} | {ratio:.2f} | {l['p99_ms']} | {e['p99_ms']} | "
               f"{l.get('srv_cpu_cores','na')} | {e.get('srv_cpu_cores','na')} |")
print("\n== summary: Lotse vs etcd, same run (ratio = Lotse rps / etcd rps) ==\n" + "\n".join(tab) + "\n", file=sys.stderr)
EOF
echo "run-kv: results in $out (raw logs in ${out%.txt}-logs/), bench wall $((SECONDS - t_start)) s" >&2
