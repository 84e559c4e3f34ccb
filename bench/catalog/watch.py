#!/usr/bin/env python3
"""Watch fan-out: W blocking watchers on one service of N instances, one instance flaps.

Usage (run.sh starts the servers and calls this once per system and size):
  watch.py --system lotse --url http://127.0.0.1:19500 --pid PID --n 1000 [--watchers 1000]
           [--flaps 3] [--variants default,passing] [--per-node 1] [--budget-s 40] [--label X]
  watch.py --system etcd  --url http://127.0.0.1:19511 --pid PID --n 1000 ...

Lotse (Consul API):
 1. registers N instances of `web` with PUT /v1/catalog/register, --per-node instances per node
    (default 1: node-00000 .. node-<N-1>), each with one service check `service:<id>` passing;
    16 connections;
 2. GET /v1/health/service/web once: X-Consul-Index, answer size, N rows;
 3. opens W connections (raw asyncio, HTTP/1.1, one per watcher) and parks
    GET /v1/health/service/web?index=<X>&wait=60s on each; waits until the agent's
    `lotse.http.blocking_queries` gauge reaches W;
 4. per flap: PUT /v1/catalog/register of one instance with its check `critical` (event 1), then
    the same with `passing` (event 2). For each event: time from the write's response until each
    watcher has the whole new answer (index > its last one); every watcher re-issues its query
    with the new index the moment it has the answer; `repark_all_ms` = from the write's response
    until the gauge is back at W (polled every 2 ms once every watcher has its answer).
    Agent CPU (utime+stime ticks) and client CPU from just before the write until re-parked.
    Watcher 0 keeps its body and checks it (the flapped instance's check has the new status;
    `?passing`: N-1 rows while critical).
 5. variant `passing`: the same watchers switch to GET /v1/health/service/web?passing&index=..
    (their request after the last event of the previous variant already is the new query, so no
    connection is closed: a closed connection stays parked in Lotse until its wait ends).
etcd (v3 JSON gateway):
 1. N keys /services/web/<id>, value = the same JSON as Lotse's register body; 16 connections;
 2. W connections, each POST /v3/watch {"create_request":{"key":"/services/web/","range_end":
    "/services/web0"}} (a chunked stream, one JSON message per line); waits for every "created";
 3. per flap: put of one key with the check critical, then passing (`default`); or delete then put
    (`passing`: the instance disappears and comes back). Time from the write's response until
    each watcher has the event (header revision >= the write's). No re-park: the stream stays.
Prints RESULT lines (one per event, one summary per variant) on stdout, progress on stderr.
The whole run is bounded: --deadline-s (default 280 s) aborts it; each event waits <= 55 s.
"""
import argparse, asyncio, base64, json, os, random, statistics, sys, time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from httpproto import (Conn, Simple, connect, request, cpu_ticks, proc_status, reset_hwm, TICK, pct)

ap = argparse.ArgumentParser()
ap.add_argument("--system", choices=["lotse", "etcd"], required=True)
ap.add_argument("--url", required=True)
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--n", type=int, required=True)
ap.add_argument("--watchers", type=int, default=1000)
ap.add_argument("--flaps", type=int, default=3)
ap.add_argument("--variants", default="default,passing")
ap.add_argument("--per-node", type=int, default=1)
ap.add_argument("--budget-s", type=float, default=40.0,
                help="no new flap of a variant starts after this many seconds in it (>= 1 flap)")
ap.add_argument("--event-timeout", type=float, default=55.0)
ap.add_argument("--wait", default="60s")
ap.add_argument("--reg-conns", type=int, default=16)
ap.add_argument("--connect-batch", type=int, default=200)
ap.add_argument("--settle", type=float, default=0.2, help="pause between events (s)")
ap.add_argument("--deadline-s", type=float, default=280.0)
ap.add_argument("--label", default="")
ap.add_argument("--rss-cap-mb", type=float, default=6000,
                help="Lotse: stop parking more watchers once the agent's RSS would pass this (the run "
                     "goes on with fewer, flagged watchers_capped=1); the run aborts if RSS passes 1.6x it")
ap.add_argument("--rss-abort-mb", type=float, default=0, help="abort when the agent's RSS passes this "
                "(default 1.6 x --rss-cap-mb)")
ap.add_argument("--park-batch", type=int, default=100)
args = ap.parse_args()
HOST, PORT = args.url.removeprefix("http://").rstrip("/").split(":")
PORT = int(PORT)
HOSTHDR = f"{HOST}:{PORT}"
W = args.watchers
N = args.n
DEADLINE = time.monotonic() + args.deadline_s
now = time.monotonic


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def node_of(i):
    return i // args.per_node


def sid(i):
    return f"web-{i:05d}"


def reg_obj(i, status="passing"):
    k = node_of(i)
    addr = f"127.1.{k // 250}.{k % 250 + 1}"
    return {"Node": f"node-{k:05d}", "Address": addr,
            "Service": {"ID": sid(i), "Service": "web", "Tags": ["v1", "http"], "Address": addr,
                        "Port": 8080 + i % 1000, "Meta": {"version": "1.4.2"}},
            "Check": {"CheckID": f"service:{sid(i)}", "Name": "web HTTP", "Status": status,
                      "ServiceID": sid(i), "Output": f"HTTP GET http://{addr}:8080/health: 200 OK"}}


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def etcd_key(i):
    return f"/services/web/{sid(i)}"


# ---------------------------------------------------------------- shared bookkeeping
class Mon:
    """Samples the server's VmRSS every 20 ms (max per window)."""
    def __init__(self, pid):
        self.pid, self.max = pid, 0
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        while True:
            try:
                self.max = max(self.max, proc_status(self.pid)["VmRSS"])
            except OSError:
                return
            if args.system == "lotse" and self.max > (args.rss_abort_mb or args.rss_cap_mb * 1.6) * 1024:
                log(f"watch: agent RSS {self.max} kB passed the abort limit; aborting the run")
                print(f"RESULT bench=catalog_watch_abort system={args.system} n={N} watchers={W} "
                      f"rss_kb={self.max}", flush=True)
                os._exit(4)
            await asyncio.sleep(0.02)

    def take(self):
        m, self.max = self.max, proc_status(self.pid)["VmRSS"]
        return m


def fmt(x):
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def result(kind, **kv):
    base = dict(bench=kind, system=args.system, label=args.label or args.system, n=N, watchers=W,
                per_node=args.per_node)
    base.update(kv)
    print("RESULT " + " ".join(f"{k}={fmt(v)}" for k, v in base.items()), flush=True)


async def parallel_writes(items, make_req, conns):
    """Sends make_req(i) for every i in items over `conns` keep-alive connections, closed loop."""
    errs = []
    async def worker(part):
        s = Simple(await connect(HOST, PORT))
        for i in part:
            st, _, body, _ = await s.call(make_req(i))
            if st != 200:
                errs.append((i, st, body[:200]))
                if len(errs) > 5:
                    break
        s.conn.close()
    await asyncio.gather(*(worker(items[j::conns]) for j in range(conns)))
    if errs:
        raise SystemExit(f"watch: writes failed: {errs[:3]}")


# ---------------------------------------------------------------- Lotse
class LotseWatchers:
    def __init__(self):
        self.path = "/v1/health/service/web"
        self.ws = []            # per watcher: [conn, index]
        self.ev = None          # current event: dict
        self.stray = 0          # answers outside an event
        self.timeouts = 0       # answers with an unchanged index (wait expired)
        self.errors = 0
        self.last_body = None   # watcher 0

    def req(self, idx):
        sep = "&" if "?" in self.path else "?"
        return request("GET", f"{self.path}{sep}index={idx}&wait={args.wait}", HOSTHDR)

    def on_response(self, conn, st, h, bl, body, t):
        i = conn.tag
        w = self.ws[i]
        new = int(h.get("x-consul-index", "0") or 0)
        if st != 200:
            self.errors += 1
            if self.errors <= 3:
                log(f"watch: watcher {i} got {st}")
        elif new > w[1]:
            ev = self.ev
            if ev is not None and ev["t"][i] is None:
                ev["t"][i] = t
                ev["bytes"][i] = bl + conn.head_len
                ev["answered"] += 1
                if ev["answered"] == W:
                    ev["done"].set()
            else:
                self.stray += 1
            if i == 0 and body is not None:
                self.last_body = bytes(body)
        else:
            self.timeouts += 1
        if new > w[1]:
            w[1] = new
        conn.write(self.req(w[1]))

    async def open(self, idx, ms, rss0):
        """Parks up to W watchers in batches; after each batch waits for the gauge and checks the
        agent's RSS: stops early when the next batch would pass --rss-cap-mb. Returns the count."""
        cap_kb = args.rss_cap_mb * 1024
        while len(self.ws) < W:
            b = min(args.park_batch, W - len(self.ws))
            base = len(self.ws)
            conns = await asyncio.gather(*(connect(HOST, PORT, on_response=self.on_response,
                                                   keep_body=(i == 0), tag=i)
                                           for i in range(base, base + b)))
            for c in conns:
                self.ws.append([c, idx])
                c.write(self.req(idx))
            tp, g = await wait_parked(ms, len(self.ws), timeout=120)
            if tp is None:
                raise SystemExit(f"watch: only {g} of {len(self.ws)} watchers parked after 120 s")
            rss = proc_status(args.pid)["VmRSS"]
            per = (rss - rss0) / len(self.ws)
            if len(self.ws) < W and rss + per * min(args.park_batch, W - len(self.ws)) > cap_kb:
                log(f"watch: {len(self.ws)} parked, agent RSS {rss/1024:.0f} MB ({per:.0f} kB each): "
                    f"the next batch would pass --rss-cap-mb {args.rss_cap_mb:.0f}; going on with "
                    f"{len(self.ws)} watchers")
                break
        return len(self.ws)


async def gauge(s):
    st, _, body, _ = await s.call(request("GET", "/v1/agent/metrics", HOSTHDR))
    if st != 200:
        return None
    for g in json.loads(body).get("Gauges", []):
        if g.get("Name") == "lotse.http.blocking_queries":
            return g.get("Value")
    return None


class Probe:
    """During an event: one more client sends a cheap read every 20 ms on its own connection
    (Lotse: GET /v1/kv/<missing key>, etcd: range of one missing key) and times it: how long
    does an unrelated request wait while the server fans out?"""
    def __init__(self, conn, req):
        self.s, self.req, self.lat, self.stop, self.task = Simple(conn), req, [], False, None

    def start(self):
        self.lat, self.stop = [], False
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        while not self.stop:
            t = now()
            await self.s.call(self.req, timeout=120)
            self.lat.append((now() - t) * 1000)
            await asyncio.sleep(0.02)

    async def finish(self):
        self.stop = True
        await self.task
        return dict(probe_n=len(self.lat), probe_p50_ms=pct(self.lat, 50),
                    probe_max_ms=max(self.lat or [float("nan")]))


async def wait_parked(ms, want, timeout=30.0, poll=0.002):
    t0 = now()
    g = None
    while now() - t0 < timeout:
        g = await gauge(ms)
        if g is None:                       # no gauge: fall back to "agent idle for 0.3 s"
            c0 = cpu_ticks(args.pid); await asyncio.sleep(0.3)
            if cpu_ticks(args.pid) - c0 <= 1:
                return now(), None
            continue
        if g >= want:
            return now(), g
        await asyncio.sleep(poll)
    return None, g


def check_body(body, variant, flapped, status):
    """Watcher 0's answer: does it show the flap?"""
    try:
        rows = json.loads(body)
    except Exception:
        return False
    if variant == "passing":
        return len(rows) == (N - 1 if status == "critical" else N)
    if len(rows) != N:
        return False
    for r in rows:
        if r.get("Service", {}).get("ID") == sid(flapped):
            return any(c.get("Status") == status for c in r.get("Checks", [])
                       if c.get("CheckID") == f"service:{sid(flapped)}")
    return False


async def lotse_main():
    t = now()
    await parallel_writes(list(range(N)), lambda i: request("PUT", "/v1/catalog/register", HOSTHDR,
                                                            json.dumps(reg_obj(i)).encode()),
                          args.reg_conns)
    reg_s = now() - t
    ms = Simple(await connect(HOST, PORT))
    sizes = {}
    for v, p in (("default", "/v1/health/service/web"), ("passing", "/v1/health/service/web?passing")):
        st, h, body, _ = await ms.call(request("GET", p, HOSTHDR))
        if st != 200:
            raise SystemExit(f"watch: GET {p} -> {st} {body[:200]!r}")
        rows = json.loads(body)
        if len(rows) != N:
            raise SystemExit(f"watch: GET {p} gave {len(rows)} rows, expected {N}")
        sizes[v] = (len(body), int(h.get("x-consul-index", 0)), h.get("content-encoding", "-"))
    idx0 = sizes["default"][1]
    log(f"watch[lotse n={N}]: registered in {reg_s:.2f}s ({N/reg_s:.0f}/s); answer {sizes['default'][0]} B "
        f"(passing {sizes['passing'][0]} B), index {idx0}")
    rss_before = proc_status(args.pid)
    lw = LotseWatchers()
    variants = args.variants.split(",")
    if variants[0] == "passing":
        lw.path = "/v1/health/service/web?passing"
    global W
    want = W
    t = now()
    W = await lw.open(idx0, ms, rss_before["VmRSS"])
    park_s = now() - t
    await asyncio.sleep(0.5)
    rss_parked = proc_status(args.pid)
    log(f"watch[lotse n={N}]: {W} watchers parked in {park_s:.2f}s, agent RSS "
        f"{rss_before['VmRSS']/1024:.0f} -> {rss_parked['VmRSS']/1024:.0f} MB")
    park_extra = dict(park_s=park_s, park_ms_per_watcher=park_s * 1000 / W,
                      rss_per_parked_kb=(rss_parked["VmRSS"] - rss_before["VmRSS"]) / W,
                      watchers_wanted=want, watchers_capped=int(W < want))
    mon = Mon(args.pid)
    wconn = Simple(await connect(HOST, PORT))
    probe = Probe(await connect(HOST, PORT), request("GET", "/v1/kv/catalog-bench-probe", HOSTHDR)
                  if args.system == "lotse" else request("POST", "/v3/kv/range", HOSTHDR,
                                                         json.dumps({"key": b64("probe")}).encode()))
    rng = random.Random(7)
    for vi, variant in enumerate(variants):
        if lw.stray or lw.timeouts:
            log(f"watch: before {variant}: stray={lw.stray} timeouts={lw.timeouts}")
        hwm_ok = reset_hwm(args.pid)
        mon.take()
        v_t0 = now()
        c_srv0, c_cli0 = cpu_ticks(args.pid), time.process_time()
        evs = []
        flap = 0
        while True:
            inst = rng.randrange(N)
            for status in ("critical", "passing"):
                more = flap + 1 < args.flaps and now() - v_t0 < args.budget_s and now() < DEADLINE - 60
                if status == "passing" and not more and vi + 1 < len(variants):
                    # the watchers' next query (after this event) is the next variant's
                    lw.path = "/v1/health/service/web" + ("?passing" if variants[vi + 1] == "passing" else "")
                ev = {"t": [None] * W, "bytes": [0] * W, "answered": 0, "done": asyncio.Event()}
                mon.take()
                s0, c0 = cpu_ticks(args.pid), time.process_time()
                lw.ev = ev
                t_send = now()
                probe.start()
                st, _, body, t_resp = await wconn.call(request("PUT", "/v1/catalog/register", HOSTHDR,
                                                               json.dumps(reg_obj(inst, status)).encode()))
                if st != 200:
                    raise SystemExit(f"watch: flap write -> {st} {body[:200]!r}")
                try:
                    await asyncio.wait_for(ev["done"].wait(), args.event_timeout)
                except asyncio.TimeoutError:
                    pass
                pr = await probe.finish()
                t_all = now()
                lw.ev = None
                tr, g = await wait_parked(ms, W, timeout=20)
                s1, c1 = cpu_ticks(args.pid), time.process_time()
                rss_max = mon.take()
                got = [x for x in ev["t"] if x is not None]
                lat = [(x - t_resp) * 1000 for x in got]
                lat_s = [(x - t_send) * 1000 for x in got]
                ok = check_body(lw.last_body, variant, inst, status) if lw.last_body else False
                e = dict(variant=variant, flap=flap + 1, to=status, instance=sid(inst),
                         write_ms=(t_resp - t_send) * 1000, answered=len(got), missed=W - len(got),
                         recv_min_ms=min(lat or [float("nan")]), recv_p50_ms=pct(lat, 50),
                         recv_p99_ms=pct(lat, 99), recv_max_ms=max(lat or [float("nan")]),
                         all_from_send_ms=(max(got) - t_send) * 1000 if got else float("nan"),
                         send_p50_ms=pct(lat_s, 50), send_p99_ms=pct(lat_s, 99),
                         repark_all_ms=(tr - t_resp) * 1000 if tr else float("nan"),
                         repark_from_send_ms=(tr - t_send) * 1000 if tr else float("nan"),
                         resp_bytes=int(statistics.median([b for b in ev["bytes"] if b] or [0])),
                         srv_cpu_ms=(s1 - s0) * 1000 / TICK, client_cpu_ms=(c1 - c0) * 1000,
                         rss_max_kb=rss_max, **pr, body_ok=int(ok))
                evs.append((e, lat, lat_s))
                result("catalog_watch_event", **e)
                lw.last_body = None
                await asyncio.sleep(args.settle)
            flap += 1
            if not more:
                break
        v_t1 = now()
        c_srv1, c_cli1 = cpu_ticks(args.pid), time.process_time()
        summarize(variant, evs, (c_srv1 - c_srv0) * 1000 / TICK, (c_cli1 - c_cli0) * 1000, v_t1 - v_t0,
                  rss_before=rss_before["VmRSS"], rss_parked=rss_parked["VmRSS"],
                  hwm=proc_status(args.pid)["VmHWM"] if hwm_ok else "na",
                  extra=dict(answer_bytes=sizes[variant][0], stray=lw.stray, timeouts=lw.timeouts,
                             errors=lw.errors, reg_per_s=N / reg_s, **park_extra))
    mon.task.cancel()
    for c, _ in lw.ws:
        c.close()


def summarize(variant, evs, srv_ms, cli_ms, wall, rss_before, rss_parked, hwm, extra):
    pooled = [x for _, lat, _ in evs for x in lat]
    pooled_s = [x for _, _, lat_s in evs for x in lat_s]
    alls = [e["recv_max_ms"] for e, _, _ in evs]
    alls_s = [e["all_from_send_ms"] for e, _, _ in evs]
    probe_max = max([e["probe_max_ms"] for e, _, _ in evs] or [float("nan")])
    rep = [e["repark_all_ms"] for e, _, _ in evs]
    evs = [(e, lat) for e, lat, _ in evs]
    k = max(len(evs), 1)
    result("catalog_watch", variant=variant, events=len(evs),
           recv_p50_ms=pct(pooled, 50), recv_p99_ms=pct(pooled, 99), recv_max_ms=max(pooled or [float("nan")]),
           all_p50_ms=statistics.median(alls) if alls else float("nan"),
           all_max_ms=max(alls or [float("nan")]),
           send_p50_ms=pct(pooled_s, 50), send_p99_ms=pct(pooled_s, 99),
           all_send_p50_ms=statistics.median(alls_s) if alls_s else float("nan"),
           all_send_max_ms=max(alls_s or [float("nan")]), probe_max_ms=probe_max,
           repark_all_p50_ms=statistics.median(rep) if rep else float("nan"),
           write_p50_ms=statistics.median([e["write_ms"] for e, _ in evs]) if evs else float("nan"),
           resp_bytes=int(statistics.median([e["resp_bytes"] for e, _ in evs])) if evs else 0,
           srv_cpu_ms_per_event=srv_ms / k, client_cpu_ms_per_event=cli_ms / k,
           srv_cpu_us_per_answer=srv_ms * 1000 / k / W, wall_s=wall,
           missed=sum(e["missed"] for e, _ in evs), body_ok=sum(e["body_ok"] for e, _ in evs),
           rss_before_kb=rss_before, rss_parked_kb=rss_parked,
           rss_max_kb=max([e["rss_max_kb"] for e, _ in evs] or [0]), hwm_kb=hwm, **extra)


# ---------------------------------------------------------------- etcd
class EtcdWatchers:
    def __init__(self):
        self.ws = []            # per watcher: dict(buf, created, pending)
        self.ev = None
        self.stray = 0
        self.created = 0
        self.all_created = asyncio.Event()

    def on_data(self, conn, data, t):
        i = conn.tag
        w = self.ws[i]
        w["buf"] += data
        while True:
            j = w["buf"].find(b"\n")
            if j < 0:
                return
            line = bytes(w["buf"][:j])
            del w["buf"][:j + 1]
            if not line.strip():
                continue
            msg = json.loads(line).get("result", {})
            if msg.get("created"):
                self.created += 1
                if self.created == W:
                    self.all_created.set()
            if "events" in msg:
                rev = int(msg["header"]["revision"])
                ev = self.ev
                if ev is None:
                    self.stray += 1
                    continue
                ev["bytes"][i] += len(line) + 1
                if ev["t"][i] is not None:
                    continue
                if ev["target"] is None:
                    ev["pending"].append((i, rev, t))
                elif rev >= ev["target"]:
                    self.mark(ev, i, t)

    def mark(self, ev, i, t):
        ev["t"][i] = t
        ev["answered"] += 1
        if ev["answered"] == W:
            ev["done"].set()

    def set_target(self, ev, rev):
        ev["target"] = rev
        for i, r, t in ev["pending"]:
            if r >= rev and ev["t"][i] is None:
                self.mark(ev, i, t)

    async def open(self):
        body = json.dumps({"create_request": {"key": b64("/services/web/"),
                                              "range_end": b64("/services/web0")}}).encode()
        async def one(i):
            self.ws.append({"buf": bytearray()})
            return await connect(HOST, PORT, on_stream_data=self.on_data, tag=i)
        conns = []
        for s in range(0, W, args.connect_batch):
            conns += await asyncio.gather(*(one(i) for i in range(s, min(s + args.connect_batch, W))))
        for c in conns:
            c.write(request("POST", "/v3/watch", HOSTHDR, body))
        self.conns = conns


async def etcd_main():
    def put(i, status="passing"):
        return request("POST", "/v3/kv/put", HOSTHDR, json.dumps(
            {"key": b64(etcd_key(i)), "value": b64(json.dumps(reg_obj(i, status)))}).encode())
    t = now()
    await parallel_writes(list(range(N)), put, args.reg_conns)
    reg_s = now() - t
    ms = Simple(await connect(HOST, PORT))
    st, _, body, _ = await ms.call(request("POST", "/v3/kv/range", HOSTHDR, json.dumps(
        {"key": b64("/services/web/"), "range_end": b64("/services/web0")}).encode()))
    full = json.loads(body)
    full_len = len(body)
    if int(full.get("count", 0)) != N:
        raise SystemExit(f"watch: etcd range count {full.get('count')} != {N}")
    log(f"watch[etcd n={N}]: put in {reg_s:.2f}s ({N/reg_s:.0f}/s); full range answer {len(body)} B")
    rss_before = proc_status(args.pid)
    ew = EtcdWatchers()
    t = now()
    await ew.open()
    try:
        await asyncio.wait_for(ew.all_created.wait(), 30)
    except asyncio.TimeoutError:
        raise SystemExit(f"watch: only {ew.created}/{W} etcd watches created after 30 s")
    log(f"watch[etcd n={N}]: {W} watches created in {now() - t:.2f}s")
    await asyncio.sleep(0.5)
    rss_parked = proc_status(args.pid)
    mon = Mon(args.pid)
    wconn = Simple(await connect(HOST, PORT))
    probe = Probe(await connect(HOST, PORT), request("GET", "/v1/kv/catalog-bench-probe", HOSTHDR)
                  if args.system == "lotse" else request("POST", "/v3/kv/range", HOSTHDR,
                                                         json.dumps({"key": b64("probe")}).encode()))
    rng = random.Random(7)
    for variant in args.variants.split(","):
        hwm_ok = reset_hwm(args.pid)
        mon.take()
        v_t0 = now()
        c_srv0, c_cli0 = cpu_ticks(args.pid), time.process_time()
        evs = []
        flap = 0
        while True:
            inst = rng.randrange(N)
            more = flap + 1 < args.flaps and now() - v_t0 < args.budget_s and now() < DEADLINE - 60
            steps = (("critical", put(inst, "critical")), ("passing", put(inst))) if variant == "default" else \
                (("critical", request("POST", "/v3/kv/deleterange", HOSTHDR,
                                      json.dumps({"key": b64(etcd_key(inst))}).encode())), ("passing", put(inst)))
            for status, wreq in steps:
                ev = {"t": [None] * W, "bytes": [0] * W, "answered": 0, "done": asyncio.Event(),
                      "target": None, "pending": []}
                mon.take()
                s0, c0 = cpu_ticks(args.pid), time.process_time()
                ew.ev = ev
                t_send = now()
                probe.start()
                st, _, body, t_resp = await wconn.call(wreq)
                if st != 200:
                    raise SystemExit(f"watch: etcd write -> {st} {body[:200]!r}")
                ew.set_target(ev, int(json.loads(body)["header"]["revision"]))
                try:
                    await asyncio.wait_for(ev["done"].wait(), args.event_timeout)
                except asyncio.TimeoutError:
                    pass
                pr = await probe.finish()
                await asyncio.sleep(0.05)       # let trailing bytes arrive before CPU is read
                ew.ev = None
                s1, c1 = cpu_ticks(args.pid), time.process_time()
                rss_max = mon.take()
                got = [x for x in ev["t"] if x is not None]
                lat = [(x - t_resp) * 1000 for x in got]
                lat_s = [(x - t_send) * 1000 for x in got]
                e = dict(variant=variant, flap=flap + 1, to=status, instance=sid(inst),
                         write_ms=(t_resp - t_send) * 1000, answered=len(got), missed=W - len(got),
                         recv_min_ms=min(lat or [float("nan")]), recv_p50_ms=pct(lat, 50),
                         recv_p99_ms=pct(lat, 99), recv_max_ms=max(lat or [float("nan")]),
                         all_from_send_ms=(max(got) - t_send) * 1000 if got else float("nan"),
                         send_p50_ms=pct(lat_s, 50), send_p99_ms=pct(lat_s, 99),
                         repark_all_ms=0.0,
                         resp_bytes=int(statistics.median([b for b in ev["bytes"] if b] or [0])),
                         srv_cpu_ms=(s1 - s0) * 1000 / TICK, client_cpu_ms=(c1 - c0) * 1000,
                         rss_max_kb=rss_max, **pr, body_ok=int(len(got) == W))
                evs.append((e, lat, lat_s))
                result("catalog_watch_event", **e)
                await asyncio.sleep(args.settle)
            flap += 1
            if not more:
                break
        v_t1 = now()
        c_srv1, c_cli1 = cpu_ticks(args.pid), time.process_time()
        summarize(variant, evs, (c_srv1 - c_srv0) * 1000 / TICK, (c_cli1 - c_cli0) * 1000, v_t1 - v_t0,
                  rss_before=rss_before["VmRSS"], rss_parked=rss_parked["VmRSS"],
                  hwm=proc_status(args.pid)["VmHWM"] if hwm_ok else "na",
                  extra=dict(answer_bytes=full_len, stray=ew.stray, timeouts=0, errors=0,
                             reg_per_s=N / reg_s))
    mon.task.cancel()
    for c in ew.conns:
        c.close()


async def main():
    try:
        await asyncio.wait_for(lotse_main() if args.system == "lotse" else etcd_main(),
                               DEADLINE - now())
    except asyncio.TimeoutError:
        log("watch: deadline reached, aborting")
        sys.exit(3)
    await asyncio.sleep(0.1)

asyncio.run(main())
