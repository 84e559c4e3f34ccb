#!/usr/bin/env bash
# DNS: Lotse's DNS interface (inline UDP loop, and hickory-server's UDP path) against NSD serving
# the same records as a static zone, measured with dnsperf in one interleaved run.
#
# Usage: bench/dns/run.sh [--no-build] [--duration 10] [--repeat 2] [--clients 4] [--threads 1]
#            [--outstanding 100] [--web 100] [--big 5000] [--modes plain,edns,tcp]
#            [--probe-qps 20000] [--no-hickory] [--quiet-variant] [--no-big] [--perf] [--quiet-wait 180]
#            [--only perf] [--out FILE]
#   --modes     transports of the main runs: plain = UDP without EDNS (dnsperf default),
#               edns = UDP with EDNS0, payload 4096 (dnsperf -e), tcp = dnsperf -m tcp
#   --probe-qps latency probe: the same dnsperf, rate-limited (dnsperf -Q) to this many q/s, for
#               p99 below saturation (A and SRV web, plain and edns); 0 = off
#   --perf      after the measurements, profile Lotse (perf record --call-graph dwarf, 5 s) during
#               a dnsperf run: inline A plain, A edns, SRV edns, big SRV edns, SRV tcp; hickory A
#               plain.
#               Prints the top of `perf report --no-children` and perf_fold.py's attribution
#   --quiet-wait before every run wait up to this many seconds for the shared box to be idle
#               (another user's build would otherwise take a core from the run); 0 = don't wait
#   --only perf set up and check as usual, then only the --perf profiles (implies --perf)
#   --out       results file (default bench/results/dns-<UTC date>.txt)
# What it does:
#   1. builds target/release/lotse (cargo build --release -p lotse) unless --no-build;
#   2. starts NSD 127.0.0.1:19553 (RRL off, EDNS payload up to 4096) with zone consul.:
#      web.service.consul 100 A + 100 SRV, _web._tcp.service.consul 100 SRV -> nodeN.node.dc1.consul.
#      (+ their A records), and the same for `big` with --big records (bigN.node.dc1.consul.);
#   3. starts `lotse agent -dev` three times: "lotse" (inline UDP loop; HTTP 19540, DNS 19544),
#      "lotse-hickory" (LOTSE_DNS_UDP=hickory; HTTP 19545, DNS 19549) and, with --quiet-variant,
#      for the main runs only, "lotse-hickory-quiet" (the same with -log-level warn; HTTP 19555,
#      DNS 19559: builds before the agent filtered hickory-server's two INFO lines per request
#      paid for them), and registers in each the same catalog through PUT /v1/txn (register.py:
#      one node per instance, passing check);
#   4. checks answer sets (NSD == Lotse over TCP) and reply shapes (dig: answers, bytes, TC);
#   5. dnsperf -c C -T T -q Q -l D, every run with -v (per-query latency -> p50/p99/p99.9),
#      servers interleaved, order reversed every repeat:
#        main  : A web.service.consul, SRV _web._tcp.service.consul, per --modes
#        probe : A and SRV web, plain and edns, at --probe-qps (p99 without queueing)
#        mixed : A web (plain) while a second dnsperf sends SRV _big._tcp (plain: "mixed"; with
#                EDNS 4096: "mixedE"); control: the second stream sends A web instead
#        big   : A big (plain), SRV _big._tcp (plain), SRV _big._tcp (edns)
#   RESULT lines carry srv_cpu_cores (the server process), srv_cpu_us_per_q, gen_cpu_cores
#   (dnsperf's own CPU) and box_busy_cores (non-idle CPU of the whole box from /proc/stat):
#   box - server - dnsperf = what else ran meanwhile (other users of this shared box).
#   6. prints RESULT / CHECK / DERIVED lines and a summary (summary.py) into --out.
# Every process is started here and stopped by its PID on exit; the temp dir is removed.
# Env: LOTSE_BIN, BENCH_TMP (parent of the temp dir, default /tmp).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LOTSE_BIN=${LOTSE_BIN:-$ROOT/target/release/lotse}

build=1 dur=10 repeat=2 clients=4 threads=1 outstanding=100 nweb=100 nbig=5000 modes=plain,edns,tcp
hickory=1 quiet=0 big=1 perf=0 out= probe=20000 quiet_wait=180 only=
while (($#)); do
  case $1 in
    --no-build) build=0; shift;;
    --duration) dur=${2%s}; shift 2;; --repeat) repeat=$2; shift 2;; --clients) clients=$2; shift 2;;
    --threads) threads=$2; shift 2;; --outstanding) outstanding=$2; shift 2;;
    --web) nweb=$2; shift 2;; --big) nbig=$2; shift 2;; --modes) modes=$2; shift 2;;
    --probe-qps) probe=$2; shift 2;; --quiet-wait) quiet_wait=$2; shift 2;;
    --no-hickory) hickory=0; shift;;
    --quiet-variant) quiet=1; shift;; --no-big) big=0; shift;; --perf) perf=1; shift;;
    --out) out=$2; shift 2;; --only) only=$2; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0;;
    *) echo "dns: unknown arg $1" >&2; exit 2;;
  esac
done
(( dur >= 1 && dur <= 60 )) || { echo "dns: --duration 1..60" >&2; exit 2; }
case $only in "") ;; perf) perf=1;; *) echo "dns: --only perf" >&2; exit 2;; esac
(( repeat >= 1 && repeat <= 5 )) || { echo "dns: --repeat 1..5" >&2; exit 2; }
(( nweb >= 4 && nweb <= 254 )) || { echo "dns: --web 4..254" >&2; exit 2; }
(( nbig >= 10 && nbig <= 20000 )) || { echo "dns: --big 10..20000" >&2; exit 2; }
for t in nsd nsd-checkconf dnsperf dig curl python3; do
  command -v "$t" >/dev/null || { echo "dns: $t not found (apt-get install nsd dnsperf dnsutils curl)" >&2; exit 2; }
done
if (( perf )); then command -v perf >/dev/null || { echo "dns: perf not found" >&2; exit 2; }; fi

if (( build )); then (cd "$ROOT" && cargo build --release -p lotse >&2); fi
[[ -x $LOTSE_BIN ]] || { echo "dns: no $LOTSE_BIN" >&2; exit 2; }

out=${out:-$ROOT/bench/results/dns-$(date -u +%F).txt}
mkdir -p "$(dirname "$out")"
: >"$out"
TMP=$(mktemp -d "${BENCH_TMP:-/tmp}/lotse-bench-dns.XXXXXX")
NSD_PORT=19553
declare -A PORT=([nsd]=$NSD_PORT [lotse]=19544 [lotse-hickory]=19549 [lotse-hickory-quiet]=19559)
declare -A HTTP=([lotse]=19540 [lotse-hickory]=19545 [lotse-hickory-quiet]=19555)
declare -A SPID=()          # label -> server pid
NSD_PID=
BG_PIDS=()                  # background dnsperf / perf started here

log() { echo "$*" | tee -a "$out"; }
say() { echo "dns: $*" >&2; }

desc() { local c; echo "$1"; for c in $(pgrep -P "$1" || true); do desc "$c"; done; }  # pid + descendants
stop_pid_tree() { # pid: TERM the pid (and descendants found now), KILL after 3 s
  local all p alive
  all=$(desc "$1" | xargs)
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 30); do
    alive=0; for p in $all; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break; sleep 0.1
  done
  for p in $all; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  wait "$1" 2>/dev/null || true
}
cleanup() {
  set +e
  local p
  for p in "${BG_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for l in lotse lotse-hickory lotse-hickory-quiet; do [[ -n ${SPID[$l]:-} ]] && stop_pid_tree "${SPID[$l]}"; done
  [[ -n $NSD_PID ]] && stop_pid_tree "$NSD_PID"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { ss -Hln "( sport = :$1 )" 2>/dev/null | grep -q .; }
for p in $NSD_PORT $(seq 19540 19549) $( ((quiet)) && seq 19555 19559); do
  if port_busy "$p"; then echo "dns: port $p is in use; not starting a second server" >&2; exit 1; fi
done

labels=(nsd lotse); (( hickory )) && labels+=(lotse-hickory)
main_labels=("${labels[@]}"); (( hickory && quiet )) && main_labels+=(lotse-hickory-quiet)
lver=$( ("$LOTSE_BIN" version 2>/dev/null || true) | sed -n 1p); lver=${lver:-na}
log "INFO bench=dns date=$(date -u +%FT%TZ) lotse_commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo na)$(git -C "$ROOT" diff --quiet -- crates 2>/dev/null || echo +dirty) crates_diff_sha1=$(git -C "$ROOT" diff HEAD -- crates 2>/dev/null | sha1sum | cut -c1-12) lotse_bin_mtime=$(date -u -r "$LOTSE_BIN" +%FT%TZ) lotse_version=\"$lver\" nsd=$(nsd -v 2>&1 | sed -n '1s/.*version //p') dnsperf=$(dnsperf -h 2>&1 | sed -n 's/^Version //p') nproc=$(nproc) loadavg=$(cut -d' ' -f1 /proc/loadavg) clients=$clients threads=$threads outstanding=$outstanding dur_s=$dur repeat=$repeat web=$nweb big=$nbig modes=$modes"
t_start=$SECONDS

# ------------------------------------------------------------------ NSD
specs=("web:$nweb:8080:node:web" "big:$nbig:9090:big:big")
mkdir -p "$TMP/nsd"
{
  echo '$ORIGIN consul.'
  echo '$TTL 0'
  echo '@        IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0'
  echo '@        IN NS  ns.consul.'
  echo 'ns       IN A   127.0.0.1'
  python3 "$HERE/register.py" --print-zone "${specs[@]}"
} >"$TMP/nsd/consul.zone"
cat >"$TMP/nsd/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$NSD_PORT
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$TMP/nsd"
  database: ""
  zonelistfile: "$TMP/nsd/zone.list"
  xfrdfile: "$TMP/nsd/xfrd.state"
  xfrdir: "$TMP/nsd"
  pidfile: "$TMP/nsd/nsd.pid"
  logfile: "$TMP/nsd/nsd.log"
  verbosity: 0
  hide-version: yes
  # NSD 4.6 caps UDP replies at 1232 bytes by default; allow what the client offers (<= 4096),
  # as Lotse does, so that EDNS 4096 replies carry the same 100 A records from both servers
  ipv4-edns-size: 4096
  ipv6-edns-size: 4096
  # response-rate-limiting is on by default (200 q/s per /24): off for benchmarking
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: consul
  zonefile: consul.zone
EOF
nsd-checkconf "$TMP/nsd/nsd.conf"
nsd -d -c "$TMP/nsd/nsd.conf" >"$TMP/nsd/stdout" 2>&1 &
NSD_PID=$!; SPID[nsd]=$NSD_PID
for _ in $(seq 1 100); do
  dig +time=1 +tries=1 -p "$NSD_PORT" @127.0.0.1 web.service.consul A +tcp +short 2>/dev/null | grep -q . && break
  kill -0 "$NSD_PID" 2>/dev/null || { cat "$TMP/nsd/stdout" >&2; exit 1; }
  sleep 0.1
done
sleep 0.5
say "nsd up (pid $NSD_PID, $(wc -l <"$TMP/nsd/consul.zone") zone lines)"

# ------------------------------------------------------------------ Lotse agents
start_lotse() { # label http_port [env...] [-- agent args...]
  local label=$1 h=$2; shift 2
  local envs=() args=(agent -dev -http-port "$h" -server-port $((h + 1)) -serf-lan-port $((h + 2))
              -serf-wan-port $((h + 3)) -dns-port $((h + 4)))
  while (($#)); do [[ $1 == -- ]] && { shift; args+=("$@"); break; }; envs+=("$1"); shift; done
  env "${envs[@]}" "$LOTSE_BIN" "${args[@]}" >"$TMP/$label.log" 2>&1 &
  SPID[$label]=$!
  local b=
  for _ in $(seq 1 150); do
    b=$(curl -s -m 1 "http://127.0.0.1:$h/v1/status/leader" || true)
    [[ -n $b && $b != '""' ]] && break
    kill -0 "${SPID[$label]}" 2>/dev/null || { cat "$TMP/$label.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $b && $b != '""' ]] || { echo "dns: $label has no leader after 15 s" >&2; exit 1; }
  python3 "$HERE/register.py" --url "http://127.0.0.1:$h" "${specs[@]}" | sed "s/^INFO /INFO label=$label /" | tee -a "$out"
}
start_lotse lotse "${HTTP[lotse]}"
(( hickory )) && start_lotse lotse-hickory "${HTTP[lotse-hickory]}" LOTSE_DNS_UDP=hickory
# (--quiet-variant) hickory-server logged two INFO lines per request (UDP and TCP) before the
# agent's filter put it at warn; this agent logs at warn only, to tell the cost of the UDP path
# from the cost of those log lines
(( hickory && quiet )) && start_lotse lotse-hickory-quiet "${HTTP[lotse-hickory-quiet]}" LOTSE_DNS_UDP=hickory -- -log-level warn
# the view is built on first use: one query each before checking
for l in "${labels[@]}"; do
  dig +time=2 +tries=1 -p "${PORT[$l]}" @127.0.0.1 web.service.consul A +tcp +short >/dev/null || true
  dig +time=2 +tries=1 -p "${PORT[$l]}" @127.0.0.1 big.service.consul A +tcp +short >/dev/null || true
done
log "INFO pids $(for l in "${main_labels[@]}"; do printf '%s=%s ' "$l" "${SPID[$l]}"; done)"

# ------------------------------------------------------------------ answer sets and reply shapes
# CHECK kind=same: the answer records over TCP (whole set) are the same as NSD's
rdata() { # port qname qtype -> sorted answer lines "TYPE RDATA" (TTL and owner dropped)
  dig +time=3 +tries=1 -p "$1" @127.0.0.1 "$2" "$3" +tcp +noall +answer | awk '{ $1=""; $2=""; $3=""; print }' | sed 's/^ *//' | sort
}
for l in "${labels[@]}"; do
  [[ $l == nsd ]] && continue
  for q in "web.service.consul A" "_web._tcp.service.consul SRV" "web.service.consul SRV"; do
    set -- $q
    a=$(rdata "$NSD_PORT" "$1" "$2" | md5sum | cut -c1-8); b=$(rdata "${PORT[$l]}" "$1" "$2" | md5sum | cut -c1-8)
    n=$(rdata "${PORT[$l]}" "$1" "$2" | wc -l)
    log "CHECK kind=same label=$l qname=$1 qtype=$2 answers=$n same_as_nsd=$([[ $a == "$b" ]] && echo yes || echo NO)"
  done
done
# CHECK kind=shape: one reply per server, query and transport
shape() { # label qname qtype mode
  local l=$1 qn=$2 qt=$3 m=$4 opt o
  case $m in
    plain) opt=(+noedns +ignore);; edns1232) opt=(+bufsize=1232 +ignore);;
    edns4096) opt=(+bufsize=4096 +ignore);; tcp) opt=(+tcp);;
  esac
  o=$(dig +time=3 +tries=1 -p "${PORT[$l]}" @127.0.0.1 "$qn" "$qt" "${opt[@]}" 2>&1 || true)
  awk -v l="$l" -v qn="$qn" -v qt="$qt" -v m="$m" -v nbig="$nbig" '
    /->>HEADER<<-/ { s=$0; sub(/.*status: /,"",s); sub(/,.*/,"",s); rc=s }
    /^;; flags:/ { f=$0; sub(/;; flags: /,"",f); sub(/;.*/,"",f); tc=(f ~ /(^| )tc( |$)/) ? 1 : 0
                  for (k=1;k<=NF;k++) { if ($k=="ANSWER:") an=$(k+1); if ($k=="ADDITIONAL:") ad=$(k+1); if ($k=="AUTHORITY:") au=$(k+1) }
                  gsub(/,/,"",an); gsub(/,/,"",ad); gsub(/,/,"",au) }
    /MSG SIZE  rcvd:/ { b=$NF }
    END {
      ok="-"
      if (qn ~ /big/) {
        if (m=="plain") ok=(b<=512 && tc==1) ? "yes" : "NO"
        else if (m=="edns1232") ok=(b<=1232 && tc==1) ? "yes" : "NO"
        else if (m=="tcp") ok=(b<=65535 && rc=="NOERROR" && an>0) ? "yes" : "NO"
      }
      printf "CHECK kind=shape label=%s qname=%s qtype=%s mode=%s rcode=%s answers=%s authority=%s additional=%s bytes=%s tc=%s ok=%s\n", l, qn, qt, m, rc, an+0, au+0, ad+0, b+0, tc, ok }' <<<"$o"
}
qnames=("web.service.consul A" "_web._tcp.service.consul SRV" "web.service.consul SRV")
(( big )) && qnames+=("big.service.consul A" "_big._tcp.service.consul SRV" "big.service.consul SRV")
for q in "${qnames[@]}"; do
  for m in plain edns1232 edns4096 tcp; do
    for l in "${labels[@]}"; do shape "$l" $q "$m" | tee -a "$out"; done
  done
done

# ------------------------------------------------------------------ dnsperf
cpu_ticks() { # label -> utime+stime (ticks) of the server process (+ descendants for NSD)
  local t=0 p f
  for p in ${WATCH[$1]}; do
    [[ -r /proc/$p/stat ]] || continue
    read -r -a f < <(sed 's/.*) //' "/proc/$p/stat"); t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
declare -A WATCH=()
for l in "${main_labels[@]}"; do WATCH[$l]=$(desc "${SPID[$l]}" | xargs); done
log "INFO watched_pids $(for l in "${main_labels[@]}"; do printf '%s="%s" ' "$l" "${WATCH[$l]}"; done)"

# dnsperf_start label qtype qname mode tag -> sets DP_PID, DP_LOG (runs in the background)
dnsperf_start() { # ... [max_qps]
  local l=$1 qt=$2 qn=$3 m=$4 tag=$5 qf extra=()
  qf="$TMP/q.$qt.$qn"; echo "$qn $qt" >"$qf"
  case $m in plain) ;; edns) extra=(-e);; tcp) extra=(-m tcp);; esac
  [[ -n ${6:-} ]] && extra+=(-Q "$6")
  DP_LOG="$TMP/dp.$l.$tag.$qt.$qn.$m.log"
  # (bash's `time` reports dnsperf's own CPU: gen_cpu_cores)
  { TIMEFORMAT='GEN_CPU_S %U %S %R'; time dnsperf -s 127.0.0.1 -p "${PORT[$l]}" -d "$qf" -l "$dur" \
      -c "$clients" -T "$threads" -q "$outstanding" -t 2 -v "${extra[@]}" >"$DP_LOG" 2>&1; } 2>>"$DP_LOG.time" &
  DP_PID=$!
  BG_PIDS+=("$DP_PID")
}
# dnsperf_result log label qtype qname mode tag run cpu_cores -> RESULT line
dnsperf_result() {
  local gen
  gen=$(awk '/^GEN_CPU_S/ && $4>0 {printf "%.2f", ($2+$3)/$4}' "$1.time" 2>/dev/null); rm -f "$1.time"
  awk -v gen="${gen:-na}" -v lbl="$2" -v qt="$3" -v qn="$4" -v m="$5" -v tag="$6" -v i="$7" -v scpu="$8" \
      -v c="$clients" -v th="$threads" -v q="$outstanding" '
    $1==">" { b=int($NF*1e6+0.5); h[b]++; n++; if (b>mxb) mxb=b; next }
    /Queries sent:/ {sent=$3} /Queries completed:/ {comp=$3} /Queries lost:/ {lost=$3}
    /Response codes:/ { for(k=1;k<=NF;k++) if($k=="NOERROR") noerr=$(k+1) }
    /Average packet size:/ { req=$5; sub(/,/,"",req); resp=$7 }
    /Run time \(s\):/ {rt=$4} /Queries per second:/ {qps=$4}
    # the first latency block only (TCP runs add one for connections)
    /Average Latency/ && !seen_avg++ {avg=$4*1000; gsub(/[(,]/,"",$6); gsub(/[),]/,"",$8); mn=$6*1000; mx=$8*1000}
    /Latency StdDev/ && !seen_sd++ {sd=$4*1000}
    END {
      p50=p99=p999=-1; cum=0
      for (b=0; b<=mxb && n>0; b++) { cum+=h[b]
        if (p50<0 && cum>=0.50*n) p50=b; if (p99<0 && cum>=0.99*n) p99=b; if (p999<0 && cum>=0.999*n) p999=b }
      cpuq = (comp>0) ? scpu*rt/comp*1e6 : 0
      printf "RESULT gen=dnsperf label=%s tag=%s qtype=%s qname=%s mode=%s clients=%s threads=%s outstanding=%s dur_s=%.2f sent=%s completed=%s lost=%s qps=%.0f avg_lat_ms=%.3f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f min_lat_ms=%.3f max_lat_ms=%.3f stddev_ms=%.3f noerror=%s req_bytes=%s resp_bytes=%s srv_cpu_cores=%s srv_cpu_us_per_q=%.2f gen_cpu_cores=%s run=%d\n", lbl, tag, qt, qn, m, c, th, q, rt, sent, comp, lost, qps, avg, p50/1000, p99/1000, p999/1000, mn, mx, sd, noerr, req, resp, scpu, cpuq, gen, i }' "$1"
}
cores() { awk "BEGIN{printf \"%.2f\", ($2-$1)/100/($4-$3)}"; }   # c0 c1 t0 t1
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }  # whole box, non-idle
# The box is shared: before each run, wait (at most --quiet-wait s) until the box is idle
# (< 0.25 cores busy over 1 s, i.e. nobody else compiling), so runs start on a quiet box.
wait_quiet() {
  local t0=$SECONDS b0 b1
  while :; do
    b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
    (( b1 - b0 < 25 )) && break
    if (( SECONDS - t0 >= quiet_wait )); then
      log "INFO box_not_quiet waited_s=$((SECONDS - t0)) busy_cores=$(awk "BEGIN{print ($b1-$b0)/100}")"; return 0
    fi
  done
  (( SECONDS - t0 > 2 )) && log "INFO waited_for_quiet_box_s=$((SECONDS - t0))"
  return 0
}
measure() { # label qtype qname mode tag run [max_qps]
  local c0 c1 t0 t1 b0 b1
  wait_quiet
  c0=$(cpu_ticks "$1"); b0=$(busy_ticks); t0=$(date +%s.%N)
  dnsperf_start "$1" "$2" "$3" "$4" "$5" "${7:-}"; wait "$DP_PID" || true; BG_PIDS=()
  c1=$(cpu_ticks "$1"); b1=$(busy_ticks); t1=$(date +%s.%N)
  dnsperf_result "$DP_LOG" "$1" "$2" "$3" "$4" "$5" "$6" "$(cores "$c0" "$c1" "$t0" "$t1")" \
    | sed "s/ run=/ box_busy_cores=$(cores "$b0" "$b1" "$t0" "$t1") run=/" | tee -a "$out"
  rm -f "$DP_LOG"
}
measure2() { # label tag run  qtype1 qname1 mode1  qtype2 qname2 mode2 : two streams at once
  local l=$1 tag=$2 i=$3 c0 c1 t0 t1 p1 p2 l1 l2 sc b0 b1 bb
  wait_quiet
  c0=$(cpu_ticks "$l"); b0=$(busy_ticks); t0=$(date +%s.%N)
  dnsperf_start "$l" "$4" "$5" "$6" "$tag-1"; p1=$DP_PID; l1=$DP_LOG
  dnsperf_start "$l" "$7" "$8" "$9" "$tag-2"; p2=$DP_PID; l2=$DP_LOG
  wait "$p1" || true; wait "$p2" || true; BG_PIDS=()
  c1=$(cpu_ticks "$l"); b1=$(busy_ticks); t1=$(date +%s.%N)
  sc=$(cores "$c0" "$c1" "$t0" "$t1")   # the server's CPU over both streams
  bb=$(cores "$b0" "$b1" "$t0" "$t1")
  dnsperf_result "$l1" "$l" "$4" "$5" "$6" "$tag-1" "$i" "$sc" | sed "s/ run=/ box_busy_cores=$bb run=/" | tee -a "$out"
  dnsperf_result "$l2" "$l" "$7" "$8" "$9" "$tag-2" "$i" "$sc" | sed "s/ run=/ box_busy_cores=$bb run=/" | tee -a "$out"
  rm -f "$l1" "$l2"
}
order_for() { # run [labels...] -> the labels (default: nsd lotse lotse-hickory), reversed on even runs
  local i=$1; shift; local ls=("$@"); ((${#ls[@]})) || ls=("${labels[@]}")
  if (( i % 2 )); then echo "${ls[@]}"; else printf '%s\n' "${ls[@]}" | tac | xargs; fi
}

IFS=, read -r -a mode_arr <<<"$modes"
[[ $only == perf ]] && repeat=0
for i in $(seq 1 "$repeat"); do
  say "repeat $i: main runs"
  for m in "${mode_arr[@]}"; do
    for q in "A web.service.consul" "SRV _web._tcp.service.consul"; do
      set -- $q
      for l in $(order_for "$i" "${main_labels[@]}"); do measure "$l" "$1" "$2" "$m" main "$i"; done
    done
  done
  if (( probe > 0 )); then
    say "repeat $i: latency probe at $probe q/s"
    for m in plain edns; do
      for q in "A web.service.consul" "SRV _web._tcp.service.consul"; do
        set -- $q
        for l in $(order_for "$i"); do measure "$l" "$1" "$2" "$m" probe "$i" "$probe"; done
      done
    done
  fi
  if (( big )); then
    say "repeat $i: big"
    for l in $(order_for "$i"); do
      measure2 "$l" control "$i" A web.service.consul plain A web.service.consul plain
      measure2 "$l" mixed "$i" A web.service.consul plain SRV _big._tcp.service.consul plain
      measure2 "$l" mixedE "$i" A web.service.consul plain SRV _big._tcp.service.consul edns
    done
    for q in "A big.service.consul plain" "SRV _big._tcp.service.consul plain" "SRV _big._tcp.service.consul edns"; do
      set -- $q
      for l in $(order_for "$i"); do measure "$l" "$1" "$2" "$3" big "$i"; done
    done
  fi
done
for l in "${main_labels[@]}"; do
  [[ -r /proc/${SPID[$l]}/status ]] && log "INFO end label=$l $(awk '/^VmRSS|^VmHWM/{printf "%s_kb=%s ", tolower(substr($1,1,length($1)-1)), $2}' "/proc/${SPID[$l]}/status")"
done

# ------------------------------------------------------------------ profile (optional)
if (( perf )); then
  for p in "lotse A web.service.consul plain" "lotse A web.service.consul edns" \
           "lotse SRV _web._tcp.service.consul edns" "lotse SRV _big._tcp.service.consul edns" \
           "lotse SRV _web._tcp.service.consul tcp" \
           "lotse-hickory A web.service.consul plain"; do
      set -- $p; l=$1; shift
      [[ -n ${SPID[$l]:-} ]] || continue
      say "perf $l $*"
      wait_quiet
      dnsperf_start "$l" "$1" "$2" "$3" perf
      sleep 2
      perf record --call-graph dwarf,16384 -F 499 -o "$TMP/perf.data" -p "${SPID[$l]}" -- sleep 5 >/dev/null 2>&1 || true
      wait "$DP_PID" || true; BG_PIDS=()
      dnsperf_result "$DP_LOG" "$l" "$1" "$2" "$3" perf 0 na | tee -a "$out"
      log "PERF label=$l qtype=$1 qname=$2 mode=$3 : perf record --call-graph dwarf -F 499 -p <pid> -- sleep 5 (from 2 s into a ${dur} s dnsperf run); perf report --no-children (top 25 >= 0.5 %), then perf_fold.py"
      perf report -i "$TMP/perf.data" --no-children --percent-limit 0.5 --stdio -g none 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | sed -n '1,25p' | sed 's/  */ /g; s/^/PERF   /' | tee -a "$out" || true
      perf script -i "$TMP/perf.data" -F comm,tid,ip,sym 2>/dev/null | python3 "$HERE/perf_fold.py" --top 12 --prefix "PERF  " | tee -a "$out" || true
      rm -f "$TMP/perf.data" "$DP_LOG"
  done
fi

log "INFO bench_wall_s=$((SECONDS - t_start))"
python3 "$HERE/summary.py" "$out" | tee -a "$out"
say "results in $out"
