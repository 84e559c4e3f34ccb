#!/usr/bin/env bash
# Lotse 3-server cluster vs etcd 3.4 3-member cluster: puts, reads per consistency mode, RSS per
# server, failover time after kill -9 of the leader. Same generator (kvload), same flags, same box,
# interleaved, >= 2 repeats. Loopback only.
#
# Usage:
#   bench/run-cluster.sh [--repeat 2] [--duration 8] [--warmup 1] [--conns 1,16,64,256]
#                        [--get-conns 64] [--keys 10000] [--value-size 128]
#                        [--failover-repeat 3] [--out FILE] [--no-build]
#
#   --duration         measured seconds per load run (1..29; + warm-up <= 30 s per run).
#   --failover-repeat  kills of the leader per system (0 = skip the failover part).
#   --out              results file (default /tmp/lotse-bench/cluster-<UTC>.txt): RESULT lines
#                      (kv-bench/kvload runs, failover), INFO lines (leader/term around every run,
#                      Lotse group-commit counters, RSS per server), DERIVED lines (ratios,
#                      medians). Server logs and raw generator output: ${out%.txt}-logs/.
#   --no-build         skip `cargo build --release -p lotse`.
#
# Env: KVLOAD (default /tmp/kvload-target/release/kvload; built there if missing),
#      SHARED_BENCH (default /work/shared/bench), LOTSE_BIN (default <repo>/target/release/lotse),
#      LOTSE_COMMIT (recorded instead of the repo's HEAD, for a LOTSE_BIN built elsewhere),
#      LOTSE_PORTS ("HTTP DNS SERVER SERF_LAN SERF_WAN", default "28500 28600 28300 28301 28302";
#      "8500 8600 8300 8301 8302" gives Consul's defaults; every server has its own address).
#
# What it starts:
#   Lotse: 3 x `lotse agent -server -bootstrap-expect 3 -node sN -data-dir <tmp>/sN
#          -bind 127.0.0.N -client 127.0.0.N -retry-join 127.0.0.M:<serf> (the two others)
#          -retry-interval 1s -config-file <tmp>/perf.json` ({"performance":{"raft_multiplier":1}}, no per-client connection limit),
#          N = 1..3; ready when all three name the same leader and /v1/status/peers lists 3.
#   etcd:  `etcd-cluster.sh start 3` (127.0.0.1:23791-23793, state in the tmp dir).
# What it runs (each load run = one kv-bench.sh --gen kvload run, --pids = the 3 servers):
#   put  conns 1,16,64,256      Lotse (URLs of all 3 servers)  vs  etcd (all 3 endpoints)
#   put  conns 1 to the leader  Lotse vs etcd (labels lotse@leader, etcd@leader)
#   get  conns 64 (prefilled)   Lotse default, consistent, stale  vs  etcd linearizable, serializable
#   RSS of every server (VmRSS, VmHWM) after the load runs
#   failover x3 per system: 4 writer threads -> one follower (one key per request, 1 s timeout),
#        kill -9 of the leader, time to the first successful write sent after the kill; the
#        killed member is restarted (same argv, same data) and the cluster waited healthy.
# kvload sends connection i to URL i mod 3; the URL lists are ordered followers first, leader
# last, so the 1-connection runs talk to a follower (forwarded writes) on both systems.
# Everything started here is stopped by PID on exit; temp dirs are removed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SB=${SHARED_BENCH:-/work/shared/bench}
export KVLOAD=${KVLOAD:-/tmp/kvload-target/release/kvload}
LOTSE_BIN=${LOTSE_BIN:-$ROOT/target/release/lotse}
read -r P_HTTP P_DNS P_SERVER P_SERF P_WAN <<<"${LOTSE_PORTS:-28500 28600 28300 28301 28302}"
CTL="python3 $HERE/cluster/ctl.py"

repeat=2 dur=8 warmup=1 conns=1,16,64,256 gconns=64 keys=10000 vsize=128 frepeat=3 out= build=1
while (($#)); do
  case $1 in
    --repeat) repeat=$2; shift 2;;
    --duration) dur=$2; shift 2;;
    --warmup) warmup=$2; shift 2;;
    --conns) conns=$2; shift 2;;
    --get-conns) gconns=$2; shift 2;;
    --keys) keys=$2; shift 2;;
    --value-size) vsize=$2; shift 2;;
    --failover-repeat) frepeat=$2; shift 2;;
    --out) out=$2; shift 2;;
    --no-build) build=0; shift;;
    -h|--help) sed -n '2,40p' "$0"; exit 0;;
    *) echo "run-cluster: unknown arg $1" >&2; exit 2;;
  esac
done
(( dur >= 1 && dur + warmup <= 30 )) || { echo "run-cluster: duration + warmup must be <= 30 s" >&2; exit 2; }
(( repeat >= 1 && repeat <= 5 && frepeat >= 0 && frepeat <= 5 )) || { echo "run-cluster: repeat 1..5, failover-repeat 0..5" >&2; exit 2; }
IFS=, read -r -a conn_arr <<<"$conns"
# wall-time budget: load runs (+ ~3 s of overhead each), failover (~25 s worst case each), setup
est=$(( repeat * (2 * ${#conn_arr[@]} + 7) * (dur + warmup + 3) + 2 * frepeat * 25 + 90 ))
(( est <= 1200 )) || { echo "run-cluster: estimated ${est}s > 20 min; lower --repeat/--duration" >&2; exit 2; }

command -v etcd >/dev/null || { echo "run-cluster: etcd not found (bench/run-kv.sh --install)" >&2; exit 2; }
if [[ ! -x $KVLOAD ]]; then
  cargo build --release --manifest-path "$SB/kvload/Cargo.toml" --target-dir /tmp/kvload-target >&2
fi
if (( build )); then (cd "$ROOT" && cargo build --release -p lotse >&2); fi
[[ -x $LOTSE_BIN ]] || { echo "run-cluster: no $LOTSE_BIN" >&2; exit 2; }

TMP=$(mktemp -d /tmp/lotse-bench-cluster.XXXXXX)
mkdir -p /tmp/lotse-bench "$TMP/logs"
out=${out:-/tmp/lotse-bench/cluster-$(date -u +%Y%m%dT%H%M%SZ).txt}
mkdir -p "$(dirname "$out")"
: >"$out"
export BENCH_LOG_DIR=$TMP/logs
ETCD_DIR=$TMP/etcd WATCHDOG=
cleanup() {
  set +e
  [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
  local f p pids=()
  for f in "$TMP"/lotse-s*.pid; do
    [[ -f $f ]] || continue
    p=$(cat "$f"); kill -0 "$p" 2>/dev/null && { kill -TERM "$p"; pids+=("$p"); }
  done
  for _ in $(seq 1 50); do
    local any=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
    (( any )) || break; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p"; done
  [[ -f $ETCD_DIR/pids ]] && "$SB/etcd-stop.sh" "$ETCD_DIR" >&2
  # keep the server logs and raw generator output next to the results
  cp "$TMP"/lotse-s*.log "$TMP/logs/" 2>/dev/null
  cp "$ETCD_DIR"/m*.log "$TMP/logs/" 2>/dev/null
  rm -rf "${out%.txt}-logs"; cp -r "$TMP/logs" "${out%.txt}-logs" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# hard bound on the whole run: 20 minutes
( trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep 1200 & sp=$!; wait "$sp"
  echo "INFO kind=watchdog_fired after_s=1200" >>"$out"; kill -TERM $$ ) >/dev/null 2>&1 </dev/null &
WATCHDOG=$!

# --- Lotse: 3 servers on 127.0.0.1..3 ----------------------------------------------------------
echo '{"performance": {"raft_multiplier": 1}, "limits": {"http_max_conns_per_client": 0}}' >"$TMP/perf.json"
members='{"lotse": ['
for n in 1 2 3; do
  joins=()
  for m in 1 2 3; do if (( m != n )); then joins+=(-retry-join "127.0.0.$m:$P_SERF"); fi; done
  mkdir -p "$TMP/s$n"
  "$LOTSE_BIN" agent -server -bootstrap-expect 3 -node "s$n" -data-dir "$TMP/s$n" \
    -bind "127.0.0.$n" -client "127.0.0.$n" -http-port "$P_HTTP" -dns-port "$P_DNS" \
    -server-port "$P_SERVER" -serf-lan-port "$P_SERF" -serf-wan-port "$P_WAN" \
    "${joins[@]}" -retry-interval 1s -config-file "$TMP/perf.json" \
    >"$TMP/lotse-s$n.log" 2>&1 </dev/null &
  echo $! >"$TMP/lotse-s$n.pid"; disown $!   # stopped by PID in cleanup; no job-status noise
  sep=; (( n > 1 )) && sep=,
  members+="$sep{\"name\": \"s$n\", \"url\": \"http://127.0.0.$n:$P_HTTP\", \"rpc\": \"127.0.0.$n:$P_SERVER\", \"log\": \"$TMP/lotse-s$n.log\", \"pidfile\": \"$TMP/lotse-s$n.pid\"}"
done
members+='], "etcd": ['
for n in 1 2 3; do
  sep=; (( n > 1 )) && sep=,
  members+="$sep{\"name\": \"m$n\", \"url\": \"http://127.0.0.1:$((23790 + n))\", \"log\": \"$ETCD_DIR/m$n.log\", \"pidfile\": \"$TMP/etcd-m$n.pid\"}"
done
members+="], \"etcd_pids_file\": \"$ETCD_DIR/pids\"}"
echo "$members" >"$TMP/members.json"
lotse_pids() { cat "$TMP"/lotse-s{1,2,3}.pid | tr '\n' ' ' | sed 's/ $//'; }

t_boot=$(date +%s.%N)
if ! lotse_leader=$($CTL "$TMP" wait lotse 60); then
  for n in 1 2 3; do echo "--- lotse-s$n.log (tail)" >&2; tail -20 "$TMP/lotse-s$n.log" >&2; done
  exit 1
fi
lotse_ready_s=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t_boot}")

# --- etcd: 3 members ---------------------------------------------------------------------------
ETCD_STATE_DIR=$ETCD_DIR "$SB/etcd-cluster.sh" start 3 >"$TMP/etcd.env"
read -r -a ep <<<"$(sed -n 's/^PIDS=//p' "$TMP/etcd.env")"
for n in 1 2 3; do echo "${ep[n-1]}" >"$TMP/etcd-m$n.pid"; done
etcd_pids() { cat "$TMP"/etcd-m{1,2,3}.pid | tr '\n' ' ' | sed 's/ $//'; }
etcd_leader=$($CTL "$TMP" wait etcd 30)

if [[ -n ${LOTSE_COMMIT:-} ]]; then dirty=na
else dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true); fi
LOTSE_URLS=$($CTL "$TMP" urls lotse)
ETCD_URLS=$($CTL "$TMP" urls etcd)
echo "INFO kind=setup lotse_pids=$(lotse_pids | tr ' ' ,) lotse_urls=$LOTSE_URLS lotse_leader=$lotse_leader lotse_ready_s=$lotse_ready_s raft_multiplier=1 etcd_pids=$(etcd_pids | tr ' ' ,) etcd_urls=$ETCD_URLS etcd_leader=$etcd_leader etcd=$(etcd --version | sed -n 's/etcd Version: //p') lotse_commit=${LOTSE_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo na)} lotse_bin=$LOTSE_BIN lotse_bin_mtime=$(date -u -r "$LOTSE_BIN" +%Y-%m-%dT%H:%M:%SZ) lotse_tree_dirty=$dirty dur_s=$dur warmup_s=$warmup keys=$keys vsize=$vsize gen=kvload" | tee -a "$out"
$CTL "$TMP" rss lotse | sed 's/kind=rss/kind=rss_idle/' | tee -a "$out"
$CTL "$TMP" rss etcd | sed 's/kind=rss/kind=rss_idle/' | tee -a "$out"

# one kv-bench run; $1=system(lotse|etcd) $2=op $3=mode $4=conns $5=run index [$6=leader: only
# the current leader's URL, label <sys>@leader]
one() {
  local sys=$1 op=$2 mode=$3 c=$4 r=$5 where=${6:-all} api urls pids line before= after= i0 i1 label=$1
  if [[ $sys == lotse ]]; then api=consul urls=$LOTSE_URLS pids=$(lotse_pids)
  else api=etcd urls=$ETCD_URLS pids=$(etcd_pids); fi
  if [[ $where == leader ]]; then   # the leader now (ctl's URL lists end with the leader)
    urls=$($CTL "$TMP" urls "$sys"); urls=${urls##*,}; label=$sys@leader
  fi
  i0=$($CTL "$TMP" info "$sys" 2>/dev/null || echo "leader=? term=?")
  [[ $sys == lotse && $op == put ]] && before=$($CTL "$TMP" raft 2>/dev/null || echo "0 0 0 0 0 0")
  local modeargs=(); [[ $mode != - ]] && modeargs=(--mode "$mode")
  line=$("$SB/kv-bench.sh" --api "$api" --urls "$urls" --op "$op" "${modeargs[@]}" --conns "$c" \
          --duration "$dur" --warmup "$warmup" --value-size "$vsize" --keys "$keys" --gen kvload \
          --prefill no --repeat 1 --pids "$pids" --label "$label" | sed "s/ run=1\$/ run=$r/")
  echo "$line" | tee -a "$out"
  i1=$($CTL "$TMP" info "$sys" 2>/dev/null || echo "leader=? term=?")
  local extra=""
  if [[ $sys == lotse && $op == put ]]; then
    after=$($CTL "$TMP" raft 2>/dev/null || echo "0 0 0 0 0 0")
    extra=$(python3 -c 'import sys
b=[int(x) for x in sys.argv[1].split()]; a=[int(x) for x in sys.argv[2].split()]
dc,de,dm,db,dx=a[0]-b[0],a[1]-b[1],a[2]-b[2],a[4]-b[4],a[5]-b[5]
print(f"log_commits={dc} log_entries={de} entries_per_commit={de/max(dc,1):.1f} commit_us_avg={dm/max(dc,1):.0f} batches={db} cmds_per_batch={dx/max(db,1):.1f}" if dc>=0 and a[3]==b[3] else "log_counters=na(leader changed)")' "$before" "$after")
  fi
  echo "INFO kind=run label=$label op=$op mode=$mode conns=$c run=$r before_${i0// / before_} after_${i1// / after_} $extra" | tee -a "$out"
}

t_start=$SECONDS
for r in $(seq 1 "$repeat"); do
  # alternate who goes first, so neither system always runs on a "warmer" box
  if (( r % 2 )); then order="lotse etcd"; else order="etcd lotse"; fi
  for c in "${conn_arr[@]}"; do
    for s in $order; do one "$s" put - "$c" "$r"; done
    # one connection straight to the leader too (the run above talks to a follower)
    if [[ $c == 1 ]]; then for s in $order; do one "$s" put - 1 "$r" leader; done; fi
  done
done

# reads: write every key once (both systems), then interleave the modes
"$KVLOAD" --api consul --urls "$LOTSE_URLS" --op put --keys "$keys" --value-size "$vsize" --prefix bench/ --conns 32 --duration 0 --prefill >&2
"$KVLOAD" --api etcd --urls "$ETCD_URLS" --op put --keys "$keys" --value-size "$vsize" --prefix bench/ --conns 32 --duration 0 --prefill >&2
for r in $(seq 1 "$repeat"); do
  if (( r % 2 )); then
    seq_="lotse:default etcd:linearizable lotse:consistent etcd:serializable lotse:stale"
  else
    seq_="lotse:stale etcd:serializable lotse:consistent etcd:linearizable lotse:default"
  fi
  for sm in $seq_; do one "${sm%%:*}" get "${sm#*:}" "$gconns" "$r"; done
done

# RSS per server after the load runs (before any failover restarts them)
sleep 2
$CTL "$TMP" rss lotse | tee -a "$out"
$CTL "$TMP" rss etcd | tee -a "$out"
echo "INFO kind=load_done bench_wall_s=$((SECONDS - t_start))" | tee -a "$out"

# failover: kill -9 of the leader, interleaved, who goes first alternates
for r in $(seq 1 "$frepeat"); do
  if (( r % 2 )); then order="lotse etcd"; else order="etcd lotse"; fi
  for s in $order; do
    $CTL "$TMP" failover "$s" "$r" --writers 4 --timeout 1.0 --max-wait 20 | tee -a "$out" || \
      echo "INFO kind=failover_failed label=$s run=$r" | tee -a "$out"
  done
done

echo "INFO kind=done bench_wall_s=$((SECONDS - t_start))" | tee -a "$out"
python3 "$HERE/cluster/summary.py" "$out" | tee -a "$out"
echo "run-cluster: results in $out (server logs, raw generator output in ${out%.txt}-logs/), bench wall $((SECONDS - t_start)) s" >&2
