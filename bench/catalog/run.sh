#!/usr/bin/env bash
# Service catalog: watch fan-out (Lotse health blocking queries vs etcd prefix watches) and
# register/deregister throughput (Lotse durable and -dev vs etcd puts/deletes).
#
# Usage: bench/catalog/run.sh [--no-build] [--sizes 10,100,1000,5000] [--watchers 1000] [--flaps 3]
#            [--budget-s 12] [--variants default,passing] [--per-node 1] [--watch-mode durable|dev]
#            [--rss-cap-mb 6000] [--rss-abort-mb 9600]
#            [--conns 1,16,64] [--duration 5] [--agent-conns 16] [--only watch|tput] [--no-etcd]
#            [--out FILE]
#   --sizes       instances of `web` per watch run (one fresh server per size and system)
#   --flaps       flaps per variant (a flap = check critical, then passing: two fan-outs);
#   --budget-s    ... but no new flap starts after this many seconds in a variant (>= 1 flap)
#   --variants    default = /v1/health/service/web, passing = ...?passing (etcd: put vs delete+put)
#   --watch-mode  Lotse server for the watch runs: durable (default, like etcd) or -dev
#   --rss-cap-mb  Lotse parks watchers in batches of 100 and stops adding them when its RSS would
#                 pass this; etcd then gets the same watcher count (Lotse runs first per size);
#                 the run aborts if Lotse's RSS passes --rss-abort-mb (default 1.6 x the cap)
#   --conns, --duration   throughput runs: one closed-loop run per conns value and op, --duration
#                 seconds measured after 0.5 s warm-up
#   --only        run only the watch or only the throughput part; --no-etcd skips the peer
#   --out         results file (default /tmp/lotse-bench/catalog-<UTC>.txt)
# Ports (loopback only): Lotse HTTP 19500, RPC 19501, serf 19502/19503, DNS 19504; etcd client
# 19511, peer 19611 (shared etcd-cluster.sh, one member, state in the temp dir). Every process is
# started here and stopped by its PID on exit; the temp dir is removed. Env: LOTSE_BIN,
# SHARED_BENCH (default /work/shared/bench). Clients: watch.py, register.py (stdlib asyncio).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SB=${SHARED_BENCH:-/work/shared/bench}
LOTSE_BIN=${LOTSE_BIN:-$ROOT/target/release/lotse}

build=1 sizes=10,100,1000,5000 watchers=1000 flaps=3 budget=12 variants=default,passing per_node=1 rsscap=6000 rssabort=0
wmode=durable conns=1,16,64 dur=5 aconns=16 only= etcd=1 out=
while (($#)); do
  case $1 in
    --no-build) build=0; shift;;
    --sizes) sizes=$2; shift 2;; --watchers) watchers=$2; shift 2;; --flaps) flaps=$2; shift 2;;
    --budget-s) budget=$2; shift 2;; --variants) variants=$2; shift 2;;
    --per-node) per_node=$2; shift 2;; --watch-mode) wmode=$2; shift 2;; --rss-cap-mb) rsscap=$2; shift 2;;
    --rss-abort-mb) rssabort=$2; shift 2;;
    --conns) conns=$2; shift 2;; --duration) dur=$2; shift 2;; --agent-conns) aconns=$2; shift 2;;
    --only) only=$2; shift 2;; --no-etcd) etcd=0; shift;; --out) out=$2; shift 2;;
    -h|--help) sed -n '2,25p' "$0"; exit 0;;
    *) echo "catalog: unknown arg $1" >&2; exit 2;;
  esac
done
[[ $wmode == durable || $wmode == dev ]] || { echo "catalog: --watch-mode durable|dev" >&2; exit 2; }
(( watchers >= 1 && watchers <= 10000 )) || { echo "catalog: --watchers 1..10000" >&2; exit 2; }
awk "BEGIN{exit !($dur >= 1 && $dur <= 60)}" || { echo "catalog: --duration 1..60" >&2; exit 2; }

hard=$(ulimit -Hn); want=$(( watchers * 2 + 1000 )); (( want < 65536 )) && want=65536
if [[ $hard != unlimited ]] && (( want > hard )); then want=$hard; fi
ulimit -n "$want"
(( $(ulimit -n) >= watchers + 200 )) || { echo "catalog: ulimit -n $(ulimit -n) too low" >&2; exit 2; }
if (( etcd )); then command -v etcd >/dev/null || { echo "catalog: etcd not found (bench/run-kv.sh --install)" >&2; exit 2; }; fi

if (( build )); then (cd "$ROOT" && cargo build --release -p lotse >&2); fi
[[ -x $LOTSE_BIN ]] || { echo "catalog: no $LOTSE_BIN" >&2; exit 2; }

mkdir -p /tmp/lotse-bench
out=${out:-/tmp/lotse-bench/catalog-$(date -u +%Y%m%dT%H%M%SZ).txt}
: >"$out"
TMP=$(mktemp -d /tmp/lotse-bench-catalog.XXXXXX)
LPID= EDIR=$TMP/etcd EPID=
L=http://127.0.0.1:19500 E=http://127.0.0.1:19511

stop_lotse() { # $1 = phase label for the INFO line
  [[ -n $LPID ]] || return 0
  if kill -0 "$LPID" 2>/dev/null; then
    if [[ -n ${1:-} ]]; then
      echo "INFO end=$1 system=lotse cpu_s=$(awk '{printf "%.2f", ($14+$15)/100}' <(sed 's/.*) /x x /' /proc/$LPID/stat)) $(awk '/^VmRSS|^VmHWM/{printf "%s_kb=%s ", tolower(substr($1,1,length($1)-1)), $2}' /proc/$LPID/status)" | tee -a "$out"
    fi
    kill -TERM "$LPID"
    for _ in $(seq 1 50); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$LPID" 2>/dev/null && kill -KILL "$LPID"
    wait "$LPID" 2>/dev/null || true
  fi
  LPID=
  rm -rf "$TMP/lotse-data"
}
stop_etcd() {
  [[ -n $EPID ]] || return 0
  if [[ -n ${1:-} ]] && kill -0 "$EPID" 2>/dev/null; then
    echo "INFO end=$1 system=etcd cpu_s=$(awk '{printf "%.2f", ($14+$15)/100}' <(sed 's/.*) /x x /' /proc/$EPID/stat)) $(awk '/^VmRSS|^VmHWM/{printf "%s_kb=%s ", tolower(substr($1,1,length($1)-1)), $2}' /proc/$EPID/status)" | tee -a "$out"
  fi
  [[ -f $EDIR/pids ]] && "$SB/etcd-stop.sh" "$EDIR" >&2
  EPID=
}
cleanup() {
  set +e
  stop_lotse
  stop_etcd
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_lotse() { # $1 = durable|dev
  if curl -s -m 1 -o /dev/null "$L/v1/status/leader"; then
    echo "catalog: something already answers on $L; not starting a second agent" >&2; exit 1
  fi
  local args=(-http-port 19500 -server-port 19501 -serf-lan-port 19502 -serf-wan-port 19503 -dns-port 19504)
  if [[ $1 == durable ]]; then
    "$LOTSE_BIN" agent -server -bootstrap-expect 1 -data-dir "$TMP/lotse-data" "${args[@]}" >"$TMP/lotse.log" 2>&1 &
  else
    "$LOTSE_BIN" agent -dev "${args[@]}" >"$TMP/lotse.log" 2>&1 &
  fi
  LPID=$!
  local b=
  for _ in $(seq 1 150); do
    b=$(curl -s -m 1 "$L/v1/status/leader" || true)
    [[ -n $b && $b != '""' ]] && break
    kill -0 "$LPID" 2>/dev/null || { cat "$TMP/lotse.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $b && $b != '""' ]] || { echo "catalog: lotse has no leader after 15 s" >&2; exit 1; }
  kill -0 "$LPID" 2>/dev/null || { cat "$TMP/lotse.log" >&2; exit 1; }
  # the catalog must answer (the endpoints are new): one registration, removed again
  b=$(curl -s -m 5 -X PUT "$L/v1/catalog/register" -d '{"Node":"probe","Address":"127.0.0.1","Service":{"Service":"probe"}}' || true)
  [[ $b == true ]] || { echo "catalog: PUT /v1/catalog/register answered '$b'" >&2; exit 1; }
  curl -s -m 5 -X PUT "$L/v1/catalog/deregister" -d '{"Node":"probe"}' >/dev/null || true
}
start_etcd() {
  if curl -s -m 1 -o /dev/null "$E/health"; then
    echo "catalog: something already answers on $E; not starting a second etcd" >&2; exit 1
  fi
  ETCD_BASE_PORT=19510 ETCD_STATE_DIR=$EDIR "$SB/etcd-cluster.sh" start 1 >"$TMP/etcd.env" 2>/dev/null
  EPID=$(sed -n 's/^PIDS=//p' "$TMP/etcd.env")
}

lver=$("$LOTSE_BIN" version 2>/dev/null | head -1 || echo na)
echo "INFO bench=catalog date=$(date -u +%FT%TZ) lotse_commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo na)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty) lotse_version=\"$lver\" etcd=$( (( etcd )) && etcd --version | sed -n 's/etcd Version: //p' || echo none) python=$(python3 -c 'import platform;print(platform.python_version())') nproc=$(nproc) loadavg=$(cut -d' ' -f1 /proc/loadavg) sizes=$sizes watchers=$watchers flaps=$flaps budget_s=$budget per_node=$per_node watch_mode=$wmode rss_cap_mb=$rsscap conns=$conns dur_s=$dur" | tee -a "$out"
t_start=$SECONDS

# ------------------------------------------------------------------ watch fan-out
if [[ $only != tput ]]; then
  IFS=, read -r -a size_arr <<<"$sizes"
  for n in "${size_arr[@]}"; do
    # Lotse first: if its memory cap limits the watchers, etcd gets the same count
    common=(--n "$n" --flaps "$flaps" --budget-s "$budget" --variants "$variants" --per-node "$per_node")
    start_lotse "$wmode"
    echo "catalog: watch lotse ($wmode) n=$n" >&2
    timeout 400 python3 "$HERE/watch.py" --system lotse --url "$L" --pid "$LPID" --label "lotse-$wmode" \
      --watchers "$watchers" --rss-cap-mb "$rsscap" --rss-abort-mb "$rssabort" "${common[@]}" | tee -a "$out" "$TMP/w.txt" \
      || echo "INFO watch_failed system=lotse n=$n rc=$?" | tee -a "$out"
    stop_lotse "watch n=$n"
    weff=$(sed -n 's/^RESULT bench=catalog_watch system=lotse .* watchers=\([0-9]*\) .*/\1/p' "$TMP/w.txt" | tail -1)
    rm -f "$TMP/w.txt"
    if (( etcd )); then
      start_etcd
      echo "catalog: watch etcd n=$n watchers=${weff:-$watchers}" >&2
      timeout 400 python3 "$HERE/watch.py" --system etcd --url "$E" --pid "$EPID" --label etcd \
        --watchers "${weff:-$watchers}" "${common[@]}" | tee -a "$out" \
        || echo "INFO watch_failed system=etcd n=$n rc=$?" | tee -a "$out"
      stop_etcd "watch n=$n"
    fi
  done
fi
t_watch=$((SECONDS - t_start))

# ------------------------------------------------------------------ register/deregister throughput
if [[ $only != watch ]]; then
  IFS=, read -r -a conn_arr <<<"$conns"
  st=$TMP/tput-state.json
  tp() { # system url pid label op conns tag
    timeout $(( ${dur%.*} + 60 )) python3 "$HERE/register.py" --system "$1" --url "$2" --pid "$3" --label "$4" \
      --op "$5" --conns "$6" --tag "$7" --duration "$dur" --state "$st" | tee -a "$out" \
      || echo "INFO tput_failed system=$1 op=$5 conns=$6" | tee -a "$out"
  }
  # a fresh server for every connection count: the catalog (and Lotse's raft snapshot) grows
  # with every run, so runs in one server would not be comparable
  r=0
  for c in "${conn_arr[@]}"; do
    r=$((r + 1))
    if (( r % 2 )); then order="durable etcd dev"; else order="etcd durable dev"; fi
    for s in $order; do
      if [[ $s == etcd ]]; then
        (( etcd )) || continue
        start_etcd
        echo "catalog: tput etcd conns=$c" >&2
        tp etcd "$E" "$EPID" etcd register "$c" "e$c"
        tp etcd "$E" "$EPID" etcd deregister "$c" "e$c"
        stop_etcd "tput conns=$c"
      else
        start_lotse "$s"
        echo "catalog: tput lotse-$s conns=$c" >&2
        tp lotse "$L" "$LPID" "lotse-$s" register "$c" "$s$c"
        tp lotse "$L" "$LPID" "lotse-$s" deregister "$c" "$s$c"
        stop_lotse "tput $s conns=$c"
      fi
    done
  done
  for s in durable dev; do
    start_lotse "$s"
    echo "catalog: tput lotse-$s agent-register conns=$aconns" >&2
    tp lotse "$L" "$LPID" "lotse-$s" agent-register "$aconns" "a$s"
    stop_lotse "tput $s agent-register"
  done
fi
echo "INFO bench_wall_s=$((SECONDS - t_start)) watch_wall_s=$t_watch" | tee -a "$out"

python3 "$HERE/summary.py" "$out" | tee -a "$out"
echo "catalog: results in $out" >&2
