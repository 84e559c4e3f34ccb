"""Overload: the agent keeps answering while 10,000 blocking queries are parked on it and a
write flood runs, its memory stays bounded, and what it refuses it refuses with Consul's 429
(`limits.http_max_conns_per_client`) rather than by falling over.

Clients are raw asyncio sockets bound to many loopback source addresses (127.0.x.y), so that
10,000 connections fit under the default of 200 per client IP, as 50 real machines would."""
import asyncio
import json
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import Agent

TOO_MANY = b"Your IP is issuing too many concurrent connections, please rate limit your calls\n"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def metric(agent, name, kind="Counters"):
    snap = requests.get(agent.url + "/v1/agent/metrics", timeout=5).json()
    for m in snap[kind]:
        if m["Name"] == name:
            return m.get("Count", m.get("Value"))
    return None


async def http(reader, writer, method, path, body=b""):
    """One HTTP/1.1 request on an open connection: (status, body)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: lotse\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    return await http_response(reader)


async def http_response(reader):
    """Reads one response: (status, body); Lotse always sends a Content-Length."""
    raw = await reader.readuntil(b"\r\n\r\n")
    status = int(raw.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length:\s*(\d+)", raw)
    assert m, f"no Content-Length in {raw!r}"
    return status, await reader.readexactly(int(m.group(1)))


async def connect(agent, src):
    return await asyncio.open_connection(agent.host, agent.http_port, local_addr=(src, 0))


@pytest.fixture
def limited_agent():
    d = Path(tempfile.mkdtemp(prefix="lotse-limits-"))
    (d / "limits.json").write_text(json.dumps({"limits": {"http_max_conns_per_client": 5}}))
    a = Agent(["-dev", "-config-file", str(d / "limits.json")])
    yield a
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_a_client_over_its_connection_limit_gets_consuls_429(limited_agent):
    a = limited_agent

    # From an address of its own: the readiness checks' closed connections from 127.0.0.1 are
    # given back asynchronously and would race with the count.
    me = "127.0.0.5"

    async def scenario():
        held = [await connect(a, me) for _ in range(5)]
        # Every held connection works...
        for r, w in held:
            assert (await http(r, w, "GET", "/v1/status/leader"))[0] == 200
        # ...the sixth from the same address is answered 429 with Consul's words and closed...
        r, w = await connect(a, me)
        status, body = await http(r, w, "GET", "/v1/status/leader")
        assert (status, body) == (429, TOO_MANY)
        assert await r.read() == b"", "a refused connection is closed"
        w.close()
        # ...while another address has its own allowance.
        r, w = await connect(a, "127.0.0.2")
        assert (await http(r, w, "GET", "/v1/status/leader"))[0] == 200
        w.close()
        # A closed connection gives its slot back.
        held[0][1].close()
        await held[0][1].wait_closed()
        for _ in range(50):
            r, w = await connect(a, me)
            status, _ = await http(r, w, "GET", "/v1/status/leader")
            w.close()
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200, "the slot of a closed connection was never given back"
        for _, w in held[1:]:
            w.close()

    asyncio.run(scenario())
    # A standard client sees a plain 429, and the refusals are counted.
    held = [requests.Session() for _ in range(5)]
    try:
        # Session pools keep their connections open after these requests. (The slots of the
        # connections closed above come back as the agent notices the closes.)
        for s in held:
            for _ in range(100):
                got = s.get(a.url + "/v1/agent/self", timeout=5).status_code
                if got != 429:
                    break
                time.sleep(0.02)
            assert got == 200
        r = requests.get(a.url + "/v1/status/leader", timeout=5)
        assert r.status_code == 429 and r.content == TOO_MANY
    finally:
        for s in held:
            s.close()
    refused = None
    for _ in range(50):
        try:
            refused = metric(a, "lotse.http.conns_refused")
            break
        except requests.RequestException:
            time.sleep(0.05)  # our own closed sessions' slots come back a moment later
    assert refused is not None and refused >= 2, refused


def test_the_agent_raises_its_open_file_limit_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.fail(f"hard open-file limit {hard}: nothing to raise to on this machine")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        a = Agent(["-dev"])  # inherits the low soft limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        limits = Path(f"/proc/{a.proc.pid}/limits").read_text()
        row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert row.split()[3:5] == [str(hard), str(hard)], row
    finally:
        a.stop()


PARKED = 10_000
PER_IP = 200  # Consul's default http_max_conns_per_client


def test_ten_thousand_parked_queries_and_a_write_flood_leave_the_agent_responsive(server_factory):
    if raise_nofile() < PARKED + 2000:
        pytest.fail("needs an open-file hard limit above 12,000 for 10,000 parked queries")
    a = server_factory()
    keys = [f"parked/{i}" for i in range(100)]
    index = 0
    for k in keys:
        assert requests.put(f"{a.url}/v1/kv/{k}", data="v0", timeout=5).json() is True
    index = int(requests.get(f"{a.url}/v1/kv/{keys[-1]}", timeout=5).headers["X-Consul-Index"])
    rss_idle = rss_kb(a.proc.pid)

    async def scenario():
        report = {}
        parked = []  # (key, reader, writer, task)

        async def park(i):
            src = f"127.0.{1 + i // (PER_IP * 250)}.{10 + (i // PER_IP) % 250}"
            r, w = await connect(a, src)
            key = keys[i % len(keys)]
            w.write(f"GET /v1/kv/{key}?index={index}&wait=5m HTTP/1.1\r\nHost: lotse\r\n\r\n"
                    .encode())
            await w.drain()
            parked.append((key, r, w))

        for batch in range(0, PARKED, 500):
            await asyncio.gather(*(park(i) for i in range(batch, min(batch + 500, PARKED))))
        deadline = time.monotonic() + 60
        while metric(a, "lotse.http.blocking_queries", "Gauges") != PARKED:
            assert time.monotonic() < deadline, \
                f"parked: {metric(a, 'lotse.http.blocking_queries', 'Gauges')}"
            await asyncio.sleep(0.2)
        report["rss_parked"] = rss_kb(a.proc.pid)

        # One address already holds its 200: one more is refused, not queued.
        r, w = await connect(a, "127.0.1.10")
        status, body = await http(r, w, "GET", "/v1/status/leader")
        assert (status, body) == (429, TOO_MANY)
        w.close()

        # The flood: 150 connections writing as fast as they are answered, for 12 s, while a
        # prober asks for the leader on a fresh connection every 50 ms.
        stop = time.monotonic() + 12
        statuses, probes, rss = {}, [], []

        async def writer(n):
            r, w = await connect(a, "127.0.200.1")
            i = 0
            while time.monotonic() < stop:
                s, _ = await http(r, w, "PUT", f"/v1/kv/flood/{n}/{i % 50}", b"x" * 256)
                statuses[s] = statuses.get(s, 0) + 1
                i += 1
            w.close()

        async def prober():
            while time.monotonic() < stop:
                t0 = time.monotonic()
                r, w = await connect(a, "127.0.201.1")
                s, body = await http(r, w, "GET", "/v1/status/leader")
                probes.append((s, time.monotonic() - t0))
                w.close()
                rss.append((time.monotonic(), rss_kb(a.proc.pid)))
                await asyncio.sleep(0.05)

        await asyncio.gather(prober(), *(writer(n) for n in range(150)))
        report.update(statuses=statuses, probes=probes,
                      rss_middle=max(kb for t, kb in rss if stop - 8 <= t < stop - 4),
                      rss_last=max(kb for t, kb in rss if t >= stop - 4))

        # The parked queries are all still there and still wake: a write to one key answers
        # exactly its watchers, with the new value.
        assert metric(a, "lotse.http.blocking_queries", "Gauges") == PARKED
        woken_key = keys[7]
        assert requests.put(f"{a.url}/v1/kv/{woken_key}", data="v1", timeout=5).json() is True
        watchers = [(r, w) for k, r, w in parked if k == woken_key]
        answers = await asyncio.wait_for(
            asyncio.gather(*(http_response(r) for r, _ in watchers)), timeout=20)
        assert all(s == 200 and b'"Key":"parked/7"' in b for s, b in answers), answers[:2]
        report["woken"] = len(answers)
        for _, _, w in parked:
            w.close()
        return report

    rep = asyncio.run(scenario())
    print({k: v for k, v in rep.items() if k != "probes"},
          "probe max", max(t for _, t in rep["probes"]), "rss idle", rss_idle)
    # Every write was answered, and answered well (none was shed: 150 writers fit).
    assert set(rep["statuses"]) == {200}, rep["statuses"]
    assert rep["statuses"][200] > 500, rep["statuses"]
    # The agent answered every probe, promptly.
    assert len(rep["probes"]) >= 40 and all(s == 200 for s, _ in rep["probes"])
    slowest = max(t for _, t in rep["probes"])
    assert slowest < 2.0, f"slowest /v1/status/leader under load: {slowest:.3f} s"
    # Memory stays bounded: parked queries cost about 16 KB each in a release build
    # (bench/README.md; more in this debug build), and the flood levels off within about 7 s
    # (the same keys overwritten, the Raft log's in-memory tail at its cap): its last 4 s
    # grow little over the 4 s before. (A 40 s flood stayed within 5 MB of its 8 s level.)
    assert rep["rss_parked"] - rss_idle < 400_000, rep
    assert rep["rss_last"] < rep["rss_parked"] + 300_000, rep
    assert rep["rss_last"] < rep["rss_middle"] + 25_000, rep
    assert rep["woken"] == PARKED // len(keys)

