#!/usr/bin/env python3
"""10,000 parked blocking queries on distinct keys against a running Lotse (or Consul) agent.

Usage: parked.py --url http://127.0.0.1:18500 --pid AGENT_PID [--n 10000] [--samples 20]
                 [--prefix parked/] [--value-size 64] [--connect-batch 256] [--label X]

Steps (stdlib only: asyncio + raw sockets, HTTP/1.1):
 1. write N keys with PUT /v1/txn, 64 `set` ops per transaction;
 2. read every key once (GET /v1/kv/<key>, a few keep-alive connections) to learn its X-Consul-Index;
 3. sample the agent's VmRSS (rss_before), with only those few connections closed again;
 4. open N connections (connect in batches of --connect-batch) and send on each
    GET /v1/kv/<key_i>?index=<X-Consul-Index of key_i>&wait=5m;
 5. wait until parked: the agent's `lotse.http.blocking_queries` gauge (/v1/agent/metrics)
    reaches N (falls back to "agent CPU idle for 1 s" if the gauge is missing), no watcher
    has answered, then idle 2 s and sample VmRSS (rss_parked) and the agent's fd count;
 (--idle-conns: instead of 4-6, open N connections that send nothing, wait 2 s, report the
  RSS they added and exit; separates the per-connection cost from the per-parked-query cost.)
 6. --samples times: pick a parked key at random, PUT a new value to it on a separate
    connection, and time (a) the PUT's own response and (b) the arrival of the watcher's
    response (both from just before the PUT is sent). Counts any *other* watcher that answered
    (spurious wake-ups). 50 ms between samples.
Prints one RESULT line (key=value), stderr gets progress.
Deadline: the whole run aborts after 240 s (the blocking wait is 5 min, so nothing times out).
"""
import argparse, asyncio, base64, json, os, random, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--url", default="http://127.0.0.1:18500")
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--n", type=int, default=10000)
ap.add_argument("--samples", type=int, default=20)
ap.add_argument("--prefix", default="parked/")
ap.add_argument("--value-size", type=int, default=64)
ap.add_argument("--connect-batch", type=int, default=256)
ap.add_argument("--label", default="lotse")
ap.add_argument("--idle-conns", action="store_true",
                help="attribution run: open N keep-alive connections that send nothing, report RSS added, exit")
args = ap.parse_args()
HOST, PORT = args.url.removeprefix("http://").rstrip("/").split(":")
PORT = int(PORT)
DEADLINE = time.monotonic() + 240


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def proc_status(pid):
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            d[k] = int(v.split()[0])
    d["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return d


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


async def read_response(r):
    """Reads one HTTP/1.1 response; returns (status, headers dict lowercased, body bytes)."""
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    h = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            h[k.strip().lower()] = v.strip()
    if "content-length" in h:
        body = await r.readexactly(int(h["content-length"]))
    elif h.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await r.readuntil(b"\r\n")
                break
            body += await r.readexactly(size)
            await r.readexactly(2)
    else:
        body = await r.read()
    return status, h, body


def req(method, path, body=b""):
    return (f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)


async def request(r, w, method, path, body=b""):
    w.write(req(method, path, body))
    await w.drain()
    return await read_response(r)


def key(i):
    return f"{args.prefix}{i:06d}"


async def metric_gauge(name):
    r, w = await asyncio.open_connection(HOST, PORT)
    try:
        st, _, body = await request(r, w, "GET", "/v1/agent/metrics")
        if st != 200:
            return None
        for g in json.loads(body).get("Gauges", []):
            if g.get("Name") == name:
                return g.get("Value")
        return None
    finally:
        w.close()


async def main():
    n = args.n
    val = base64.b64encode(bytes((97 + i % 26) for i in range(args.value_size))).decode()

    # 1. keys, 64 ops per transaction, 4 writers
    t = time.monotonic()
    async def writer(batches):
        r, w = await asyncio.open_connection(HOST, PORT)
        for b in batches:
            ops = [{"KV": {"Verb": "set", "Key": key(i), "Value": val}} for i in b]
            st, _, body = await request(r, w, "PUT", "/v1/txn", json.dumps(ops).encode())
            if st != 200:
                raise SystemExit(f"txn failed: {st} {body[:200]!r}")
        w.close()
    batches = [range(s, min(s + 64, n)) for s in range(0, n, 64)]
    await asyncio.gather(*(writer(batches[j::4]) for j in range(4)))
    log(f"parked: wrote {n} keys in {len(batches)} txns, {time.monotonic()-t:.1f}s")

    # 2. X-Consul-Index of every key
    idx = [0] * n
    async def reader(ids):
        r, w = await asyncio.open_connection(HOST, PORT)
        for i in ids:
            st, h, _ = await request(r, w, "GET", f"/v1/kv/{key(i)}")
            if st != 200:
                raise SystemExit(f"get {key(i)} -> {st}")
            idx[i] = int(h["x-consul-index"])
        w.close()
    await asyncio.gather(*(reader(range(j, n, 4)) for j in range(4)))
    await asyncio.sleep(1.0)
    before = proc_status(args.pid)
    log(f"parked: indexes {min(idx)}..{max(idx)}; agent before: {before}")

    if args.idle_conns:
        t = time.monotonic()
        idle = []
        async def open_idle(i):
            idle.append(await asyncio.open_connection(HOST, PORT))
        for s in range(0, n, args.connect_batch):
            await asyncio.gather(*(open_idle(i) for i in range(s, min(s + args.connect_batch, n))))
        await asyncio.sleep(2.0)
        st = proc_status(args.pid)
        added = st["VmRSS"] - before["VmRSS"]
        print(f"RESULT bench=idle_conns label={args.label} n={n} rss_before_kb={before['VmRSS']} "
              f"rss_conns_kb={st['VmRSS']} rss_added_kb={added} bytes_per_conn={added*1024/n:.0f} "
              f"fds={st['fds']} open_s={time.monotonic()-t:.1f}", flush=True)
        for _, w in idle: w.close()
        return

    # 3. park N queries
    conns = [None] * n
    answered = {}            # i -> (monotonic time, status)
    async def watcher(i, r):
        try:
            st, _, _ = await read_response(r)
            answered[i] = (time.monotonic(), st)
        except Exception as e:  # connection closed etc.
            answered[i] = (time.monotonic(), f"exc:{type(e).__name__}")
    tasks = []
    t = time.monotonic()
    async def open_one(i):
        r, w = await asyncio.open_connection(HOST, PORT)
        w.write(req("GET", f"/v1/kv/{key(i)}?index={idx[i]}&wait=5m"))
        await w.drain()
        conns[i] = (r, w)
        tasks.append(asyncio.ensure_future(watcher(i, r)))
    for s in range(0, n, args.connect_batch):
        await asyncio.gather(*(open_one(i) for i in range(s, min(s + args.connect_batch, n))))
    log(f"parked: {n} connections opened and requests sent in {time.monotonic()-t:.1f}s")

    # 4. wait until parked
    t = time.monotonic()
    gauge = None
    while time.monotonic() < DEADLINE:
        gauge = await metric_gauge("lotse.http.blocking_queries")
        if gauge is None:
            c0 = cpu_ticks(args.pid); await asyncio.sleep(1.0)
            if cpu_ticks(args.pid) - c0 <= 1:
                break
        elif gauge >= n:
            break
        else:
            await asyncio.sleep(0.2)
    park_s = time.monotonic() - t
    await asyncio.sleep(2.0)
    early = len(answered)
    parked = proc_status(args.pid)
    log(f"parked: gauge={gauge} after {park_s:.1f}s, answered early={early}; agent parked: {parked}")

    # 5. wake samples
    rng = random.Random(42)
    candidates = [i for i in range(n) if i not in answered]
    picks = rng.sample(candidates, min(args.samples, len(candidates)))
    r, w = await asyncio.open_connection(HOST, PORT)
    wake_ms, put_ms, spurious, missed = [], [], 0, 0
    for k, i in enumerate(picks):
        before_ans = set(answered)
        t0 = time.monotonic()
        st, _, body = await request(r, w, "PUT", f"/v1/kv/{key(i)}", f"v{k}".encode())
        t_put = time.monotonic()
        if st != 200:
            raise SystemExit(f"put -> {st} {body!r}")
        for _ in range(2000):          # <= 2 s
            if i in answered:
                break
            await asyncio.sleep(0.001 if time.monotonic() - t0 < 0.05 else 0.01)
        if i in answered:
            wake_ms.append((answered[i][0] - t0) * 1000)
            put_ms.append((t_put - t0) * 1000)
        else:
            missed += 1
        await asyncio.sleep(0.05)
        spurious += len(set(answered) - before_ans - {i})
    w.close()
    after = proc_status(args.pid)

    def q(v, p):
        if not v: return float("nan")
        v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
    added = parked["VmRSS"] - before["VmRSS"]
    print(f"RESULT bench=parked label={args.label} n={n} parked_gauge={gauge} park_s={park_s:.1f} "
          f"answered_early={early} rss_before_kb={before['VmRSS']} rss_parked_kb={parked['VmRSS']} "
          f"rss_added_kb={added} bytes_per_query={added*1024/n:.0f} "
          f"anon_before_kb={before.get('RssAnon','na')} anon_parked_kb={parked.get('RssAnon','na')} "
          f"hwm_kb={after['VmHWM']} fds_parked={parked['fds']} threads={parked.get('Threads','na')} "
          f"samples={len(wake_ms)} missed={missed} spurious_wakes={spurious} "
          f"wake_p50_ms={q(wake_ms,50):.2f} wake_p99_ms={q(wake_ms,99):.2f} wake_max_ms={max(wake_ms or [float('nan')]):.2f} "
          f"put_p50_ms={q(put_ms,50):.2f} put_p99_ms={q(put_ms,99):.2f} "
          f"wake_all_ms={','.join(f'{x:.2f}' for x in wake_ms)}", flush=True)
    for c in conns:
        if c: c[1].close()
    for tk in tasks: tk.cancel()
    await asyncio.sleep(0.2)


asyncio.run(main())
