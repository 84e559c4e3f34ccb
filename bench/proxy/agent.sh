# Sourced by bench/run-proxy.sh and bench/proxy-instructions.sh: the Lotse side of a proxy
# benchmark. Needs LOTSE_BIN, work (a scratch directory) and pids (the processes started,
# which stop_pids stops).
#
# `lotse agent -dev` on ports 18700-18703; service `up` = 127.0.0.1:18080 (the harness's
# upstream nginx); service `bench` whose sidecar has upstream `up` on 21000 with
# Config {"protocol": "http"}.

start_agent() {
  "$LOTSE_BIN" agent -dev -http-port 18700 -dns-port 18701 -server-port 18702 -serf-lan-port 18703 \
    >"$work/agent.log" 2>&1 & pids+=($!)
  local up=0
  for _ in $(seq 1 100); do
    curl -fs http://127.0.0.1:18700/v1/status/leader | grep -q : && { up=1; break; }
    sleep 0.1
  done
  ((up)) || { echo "bench: lotse agent did not elect itself (log: $work/agent.log)" >&2; return 1; }
  curl -fs -X PUT http://127.0.0.1:18700/v1/agent/service/register \
    -d '{"Name":"up","ID":"up-1","Address":"127.0.0.1","Port":18080}' >/dev/null
  curl -fs -X PUT http://127.0.0.1:18700/v1/agent/service/register -d '{
    "Name":"bench","ID":"bench-1","Port":18090,
    "Connect":{"SidecarService":{"Port":21001,"Proxy":{"Upstreams":[
      {"DestinationName":"up","LocalBindPort":21000,"Config":{"protocol":"http"}}]}}}}' >/dev/null
}

# The sidecar's arguments (admin on 19700).
SIDECAR_ARGS=(connect proxy -sidecar-for bench-1 -http-addr 127.0.0.1:18700 -admin-bind 127.0.0.1:19700)

wait_sidecar() {
  for _ in $(seq 1 "${1:-100}"); do curl -fs http://127.0.0.1:19700/ready >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# Stops what was started (by PID only): TERM, then KILL for what is left half a second later.
stop_pids() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
