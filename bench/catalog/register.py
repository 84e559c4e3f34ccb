#!/usr/bin/env python3
"""Register/deregister throughput, closed loop, C keep-alive connections, bounded by duration.

Usage: register.py --system lotse|etcd --url URL --pid PID --op OP --conns 16 [--duration 5]
                   [--warmup 0.5] [--tag T] [--state FILE] [--label X]
OPs (each request is one instance = one node with one service and one check, see watch.py):
  lotse  register        PUT /v1/catalog/register  {Node, Address, Service{..}, Check{..}}
         deregister      PUT /v1/catalog/deregister {Node}: removes the node, its service, its check
                         (the nodes the `register` run with the same --tag and --state registered)
         agent-register  PUT /v1/agent/service/register {ID, Name, Port, Tags, Meta,
                         Check{CheckID, Name, TTL: 1h, Status: passing}}
  etcd   register        POST /v3/kv/put {key: /services/tp/<id>, value: the same JSON as Lotse's body}
         deregister      POST /v3/kv/deleterange {key} of the keys the register run wrote
Connection c sends its own sequence tp-<tag>-c<c>-<seq>; the register run writes how far each
connection got to --state so the deregister run removes exactly those (it stops early, flagged
`exhausted=1`, if it runs out before --duration). Requests completed during the first --warmup
seconds are not counted; latencies are raw per-request (closed loop, Python client: they include
the client's own time, ~15-25 us per request). Prints one RESULT line.
"""
import argparse, asyncio, base64, json, os, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from httpproto import Conn, request, cpu_ticks, proc_status, TICK, pct

ap = argparse.ArgumentParser()
ap.add_argument("--system", choices=["lotse", "etcd"], required=True)
ap.add_argument("--url", required=True)
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--op", choices=["register", "deregister", "agent-register"], required=True)
ap.add_argument("--conns", type=int, default=16)
ap.add_argument("--duration", type=float, default=5.0)
ap.add_argument("--warmup", type=float, default=0.5)
ap.add_argument("--tag", default="a")
ap.add_argument("--state", default="")
ap.add_argument("--label", default="")
args = ap.parse_args()
assert 0.1 <= args.duration <= 120
HOST, PORT = args.url.removeprefix("http://").rstrip("/").split(":")
PORT = int(PORT)
HOSTHDR = f"{HOST}:{PORT}"
now = time.monotonic


def name(c, s):
    return f"tp-{args.tag}-c{c}-{s:07d}"


def reg_json(c, s):
    # the same document json.dumps would give, formatted directly (json.dumps costs ~10 us here)
    n = name(c, s)
    addr = f"127.2.{c % 250}.{s % 250 + 1}"
    return ('{"Node": "%s", "Address": "%s", "Service": {"ID": "web-%s", "Service": "web-tp", '
            '"Tags": ["v1", "http"], "Address": "%s", "Port": 8080, "Meta": {"version": "1.4.2"}}, '
            '"Check": {"CheckID": "service:web-%s", "Name": "web HTTP", "Status": "passing", '
            '"ServiceID": "web-%s", "Output": "HTTP GET http://%s:8080/health: 200 OK"}}'
            % (n, addr, n, addr, n, n, addr))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def make(c, s):
    if args.system == "lotse":
        if args.op == "register":
            return request("PUT", "/v1/catalog/register", HOSTHDR, reg_json(c, s).encode())
        if args.op == "deregister":
            return request("PUT", "/v1/catalog/deregister", HOSTHDR, b'{"Node": "%s"}' % name(c, s).encode())
        n = name(c, s)
        return request("PUT", "/v1/agent/service/register", HOSTHDR, json.dumps(
            {"ID": f"web-{n}", "Name": "web-agent", "Port": 8080, "Tags": ["v1", "http"],
             "Meta": {"version": "1.4.2"},
             "Check": {"CheckID": f"service:web-{n}", "Name": "web TTL", "TTL": "1h",
                       "Status": "passing"}}).encode())
    key = b64(f"/services/tp/{name(c, s)}")
    if args.op == "register":
        return request("POST", "/v3/kv/put", HOSTHDR,
                       b'{"key": "%s", "value": "%s"}' % (key.encode(), b64(reg_json(c, s)).encode()))
    if args.op == "deregister":
        return request("POST", "/v3/kv/deleterange", HOSTHDR, b'{"key": "%s"}' % key.encode())
    raise SystemExit("etcd has no agent-register")


class Loop:
    def __init__(self, limits):
        self.limits = limits          # per conn: max seq (deregister) or None
        self.seq = [0] * args.conns
        self.ok = 0
        self.err = 0
        self.codes = {}
        self.lat = []
        self.t_send = [0.0] * args.conns
        self.t_start = self.t_end = 0.0
        self.stop = False
        self.exhausted_at = None
        self.active = args.conns
        self.all_done = asyncio.get_running_loop().create_future()
        self.body_bytes = 0
        self.per_sec = [0] * (int(args.duration) + 2)   # completions per second of the measured window

    def send(self, conn):
        c = conn.tag
        s = self.seq[c]
        if self.stop or (self.limits is not None and s >= self.limits[c]):
            if not self.stop and self.exhausted_at is None:
                self.exhausted_at = now()
            self.active -= 1
            if self.active == 0 and not self.all_done.done():
                self.all_done.set_result(None)
            return
        req = make(c, s)
        if not self.body_bytes:
            self.body_bytes = len(req)
        self.seq[c] = s + 1
        self.t_send[c] = now()
        conn.write(req)

    def on_response(self, conn, st, h, bl, body, t):
        if t >= self.t_start and (self.exhausted_at is None or t <= self.exhausted_at) and t <= self.t_end:
            self.codes[st] = self.codes.get(st, 0) + 1
            if 200 <= st < 300:
                self.ok += 1
                self.per_sec[min(int(t - self.t_start), len(self.per_sec) - 1)] += 1
                self.lat.append(t - self.t_send[conn.tag])
            else:
                self.err += 1
        if not (200 <= st < 300) and self.err <= 3 and body is not None:
            print(f"register: {st} {bytes(body)[:200]!r}", file=sys.stderr)
        self.send(conn)


async def main():
    limits = None
    state = {}
    if args.state and os.path.exists(args.state):
        state = json.load(open(args.state))
    key = f"{args.system}-{args.tag}"
    if args.op == "deregister":
        limits = state.get(key)
        if not limits or len(limits) != args.conns:
            raise SystemExit(f"register: no register state for {key} with {args.conns} conns in {args.state}")
    lp = Loop(limits)
    loop = asyncio.get_running_loop()
    conns = []
    for c in range(args.conns):
        _, p = await loop.create_connection(lambda c=c: Conn(on_response=lp.on_response, keep_body=True, tag=c),
                                            HOST, PORT)
        conns.append(p)
    c0, g0 = cpu_ticks(args.pid), time.process_time()
    t0 = now()
    lp.t_start = t0 + args.warmup
    lp.t_end = lp.t_start + args.duration
    for p in conns:
        lp.send(p)
    await asyncio.sleep(args.warmup)
    m0, gm0, tm0 = cpu_ticks(args.pid), time.process_time(), now()
    while now() < lp.t_end and lp.exhausted_at is None:
        await asyncio.sleep(min(0.02, max(0.0, lp.t_end - now())))
    m1, gm1, tm1 = cpu_ticks(args.pid), time.process_time(), now()
    lp.stop = True
    try:
        await asyncio.wait_for(lp.all_done, 30)
    except asyncio.TimeoutError:
        pass
    if args.op == "register" and args.state:
        state[key] = lp.seq
        json.dump(state, open(args.state, "w"))
    end = lp.exhausted_at or lp.t_end
    dur = max(end - lp.t_start, 1e-9)
    lat = sorted(x * 1000 for x in lp.lat)
    wall = tm1 - tm0
    print("RESULT bench=catalog_tput " + " ".join(f"{k}={v}" for k, v in dict(
        system=args.system, label=args.label or args.system, op=args.op, conns=args.conns,
        dur_s=f"{dur:.2f}", ok=lp.ok, err=lp.err, codes=",".join(f"{k}:{v}" for k, v in sorted(lp.codes.items())),
        per_s=f"{lp.ok / dur:.0f}", p50_ms=f"{pct(lat, 50):.3f}", p99_ms=f"{pct(lat, 99):.3f}",
        max_ms=f"{(lat[-1] if lat else float('nan')):.3f}", req_bytes=lp.body_bytes,
        srv_cpu_cores=f"{(m1 - m0) / TICK / wall:.2f}", client_cpu_cores=f"{(gm1 - gm0) / wall:.2f}",
        srv_cpu_us_per_op=f"{(m1 - m0) / TICK * 1e6 / max(lp.ok, 1):.0f}",
        client_cpu_us_per_op=f"{(gm1 - gm0) * 1e6 / max(lp.ok, 1):.0f}",
        rss_kb=proc_status(args.pid)["VmRSS"], exhausted=int(lp.exhausted_at is not None),
        sent=sum(lp.seq), per_sec=",".join(str(x) for x in lp.per_sec[:max(1, int(dur + 0.999))])).items()),
          flush=True)
    for p in conns:
        p.close()

asyncio.run(main())
