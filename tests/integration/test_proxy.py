"""`lotse connect proxy`: the built-in sidecar proxy, end to end with real processes.

Each test registers its own destination service with 2-3 instances of a tiny Python HTTP server
(proxy_upstream.py) in a `lotse agent -dev`, registers a client service whose sidecar lists the
upstreams (Consul's `Connect.SidecarService.Proxy.Upstreams` with `Config`), starts
`lotse connect proxy -sidecar-for <client>` and drives traffic through 127.0.0.1:<local_bind_port>.
State is read from the proxy's admin endpoint (`/upstreams`, `/stats/prometheus`).
"""
import base64
import concurrent.futures
import hashlib
import http.client
import json
import os
import socket
import time
from collections import Counter

import pytest
import requests

from conftest import Agent, free_port
from proxy_harness import Instance, ProxyProc, get, uniq, world  # noqa: F401 (world: fixture)

HTTP = {"protocol": "http"}


# ------------------------------------------------------------------------------ balancing

def test_traffic_is_spread_round_robin_over_instances(world):
    svc = uniq("echo")
    insts = world.instances(svc, 3)
    proxy, [port] = world.sidecar([(svc, HTTP)])
    proxy.wait_endpoints(svc, 3)
    seen = Counter(get(port, "/hello").json()["instance"] for _ in range(30))
    assert set(seen) == {i.id for i in insts}
    assert all(n == 10 for n in seen.values()), seen
    # Access logging is off unless asked for (-access-log), as in Consul's proxies.
    assert '"access"' not in proxy.output()


def test_traceparent_is_propagated_or_started(world):
    svc = uniq("trace")
    world.instances(svc, 1)
    proxy, [port] = world.sidecar([(svc, HTTP)], extra=["-access-log"])
    proxy.wait_endpoints(svc, 1)
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = get(port, "/t", headers={"traceparent": incoming})
    sent = r.json()["headers"]["traceparent"]
    assert sent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and sent.endswith("-01")
    assert sent.split("-")[2] != "00f067aa0ba902b7"  # the proxy is the new parent
    assert r.json()["headers"]["x-forwarded-for"] == "127.0.0.1"
    started = get(port, "/t").json()["headers"]["traceparent"]
    assert len(started) == 55 and started.split("-")[1] != "4bf92f3577b34da6a3ce929d0e0e4736"
    # One JSON access-log line per request, with the trace id.
    deadline = time.monotonic() + 5
    while "4bf92f3577b34da6a3ce929d0e0e4736" not in proxy.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(l) for l in proxy.output().splitlines() if '"access"' in l]
    assert any(l["fields"].get("trace_id") == "4bf92f3577b34da6a3ce929d0e0e4736"
               and l["fields"].get("status") == 200 for l in lines), lines


def test_admin_lists_upstreams_endpoints_and_metrics(world):
    svc = uniq("admin")
    insts = world.instances(svc, 2)
    proxy, [port] = world.sidecar([(svc, HTTP)])
    proxy.wait_endpoints(svc, 2)
    for _ in range(4):
        assert get(port, "/").status_code == 200
    listing = proxy.upstreams()
    assert listing["config_version"] >= 1
    assert listing["proxy_id"].endswith("-sidecar-proxy")
    up = proxy.upstream(svc)
    assert up["listener"] == f"127.0.0.1:{port}"
    assert up["protocol"] == "http" and up["policy"] == "round_robin"
    assert up["endpoints_version"] > 0 and up["discovery"]["stale"] is False
    assert sorted(e["id"] for e in up["endpoints"]) == sorted(i.id for i in insts)
    assert all(e["state"] == "healthy" and e["in_flight"] == 0 for e in up["endpoints"])
    assert proxy.metric("lotse_proxy_requests_total", upstream=svc, **{"class": "2xx"}) == 4
    assert proxy.metric("lotse_proxy_request_duration_seconds_count", upstream=svc) == 4
    assert proxy.metric("lotse_proxy_endpoints", upstream=svc, state="healthy") == 2


# ------------------------------------------------------------------------------ failures

def test_killed_instance_traffic_moves_within_retry_budget(world):
    svc = uniq("kill")
    a, b, c = world.instances(svc, 3)
    proxy, [port] = world.sidecar([(svc, HTTP)])
    proxy.wait_endpoints(svc, 3)
    assert get(port).status_code == 200
    b.kill()  # still registered and "passing": only the proxy can notice
    statuses = Counter()
    seen = Counter()
    for _ in range(60):
        r = get(port)
        statuses[r.status_code] += 1
        if r.status_code == 200:
            seen[r.json()["instance"]] += 1
    # Connect failures are retried on another instance; the budget (20% + 3/s) covers them.
    assert statuses == Counter({200: 60}), statuses
    assert set(seen) == {a.id, c.id}
    assert proxy.metric("lotse_proxy_retries_total", upstream=svc) >= 1
    dead = next(e for e in proxy.upstream(svc)["endpoints"] if e["id"] == b.id)
    assert dead["state"] == "ejected", dead  # 5 consecutive connect failures eject it


def test_failing_instance_is_ejected_then_readmitted(world):
    svc = uniq("eject")
    good1, bad, good2 = world.instances(svc, 3)
    cfg = {"protocol": "http", "passive_health_check": {
        "max_failures": 3, "base_ejection_time": "2s", "max_ejection_percent": 50}}
    proxy, [port] = world.sidecar([(svc, cfg)])
    proxy.wait_endpoints(svc, 3)
    bad.mode("fail")
    codes = [get(port).status_code for _ in range(30)]
    assert codes.count(500) == 3, codes  # three in a row, then ejected
    state = {e["id"]: e for e in proxy.upstream(svc)["endpoints"]}
    assert state[bad.id]["state"] == "ejected" and state[bad.id]["times_ejected"] == 1
    assert state[good1.id]["state"] == "healthy"
    assert proxy.metric("lotse_proxy_ejections_total", upstream=svc) == 1
    bad.mode("ok")
    time.sleep(2.3)
    seen = Counter(get(port).json()["instance"] for _ in range(30))
    assert seen[bad.id] >= 5, seen  # readmitted: back in the rotation
    assert {e["id"]: e["state"] for e in proxy.upstream(svc)["endpoints"]}[bad.id] == "healthy"


def test_success_rate_ejects_the_instance_that_stands_out(world):
    svc = uniq("rate")
    insts = world.instances(svc, 4)
    bad = insts[3]
    cfg = {"protocol": "http", "passive_health_check": {
        "max_failures": 0, "max_ejection_percent": 50, "interval": "1s",
        "success_rate": {"minimum_hosts": 4, "request_volume": 5, "stdev_factor": 1.0}}}
    proxy, [port] = world.sidecar([(svc, cfg)])
    proxy.wait_endpoints(svc, 4)
    get(port)  # opens the first interval
    time.sleep(1.1)
    get(port)  # closes it (nothing to judge yet) and opens the one measured below
    bad.mode("fail")
    codes = Counter(get(port).status_code for _ in range(24))
    assert codes[500] == 6, codes  # round robin, and consecutive failures eject nobody
    time.sleep(1.1)
    get(port)  # closes the interval: the test runs
    state = {e["id"]: e["state"] for e in proxy.upstream(svc)["endpoints"]}
    assert state == {i.id: ("ejected" if i is bad else "healthy") for i in insts}, state
    assert proxy.metric("lotse_proxy_ejections_total", upstream=svc) == 1
    assert all(get(port).status_code == 200 for _ in range(12))
    assert '"reason":"success_rate"' in proxy.output().replace(" ", "")


def test_retry_on_configured_status_hides_one_bad_instance(world):
    svc = uniq("retry")
    _, bad = world.instances(svc, 2)
    cfg = {"protocol": "http", "retries": {"num_retries": 2, "retry_on_status_codes": [500]},
           "passive_health_check": {"max_failures": 0}}
    proxy, [port] = world.sidecar([(svc, cfg)])
    proxy.wait_endpoints(svc, 2)
    bad.mode("fail")
    codes = Counter(get(port).status_code for _ in range(20))
    assert codes == Counter({200: 20}), codes
    assert proxy.metric("lotse_proxy_retries_total", upstream=svc) >= 5


def test_rate_limit_gives_429(world):
    svc = uniq("rate")
    world.instances(svc, 1)
    cfg = {"protocol": "http", "rate_limit": {"requests_per_second": 1, "burst": 5}}
    proxy, [port] = world.sidecar([(svc, cfg)])
    proxy.wait_endpoints(svc, 1)
    rs = [get(port) for _ in range(15)]
    codes = Counter(r.status_code for r in rs)
    assert 5 <= codes[200] <= 7 and codes[429] >= 8, codes
    limited = next(r for r in rs if r.status_code == 429)
    assert limited.headers["x-lotse-proxy"] == "rate-limited"
    assert proxy.metric("lotse_proxy_rate_limited_total", upstream=svc) == codes[429]


def test_overload_gives_fast_503(world):
    svc, svc2 = uniq("overload"), uniq("shed")
    world.instances(svc, 1)
    world.instances(svc2, 1)
    breaker = {"protocol": "http", "limits": {"max_concurrent_requests": 2}}
    shed = {"protocol": "http", "load_shed": {"max_in_flight": 1}}
    proxy, [port, shed_port] = world.sidecar([(svc, breaker), (svc2, shed)])
    proxy.wait_endpoints(svc, 1)
    proxy.wait_endpoints(svc2, 1)

    def timed(p):
        t = time.monotonic()
        r = get(p, "/slow?ms=1500")
        return r.status_code, r.headers.get("x-lotse-proxy"), time.monotonic() - t

    for p, limit, reason in [(port, 2, "overflow"), (shed_port, 1, "shed")]:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(timed, [p] * 8))
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 503]
        assert len(ok) == limit and len(refused) == 8 - limit, results
        assert all(r[1] == reason and r[2] < 1.0 for r in refused), results
    assert proxy.metric("lotse_proxy_overflow_total", upstream=svc) == 6
    assert proxy.metric("lotse_proxy_shed_total", upstream=svc2) == 7


def test_new_instance_is_picked_up_live_without_dropping_connections(world):
    svc = uniq("live")
    first = world.instances(svc, 1)[0]
    proxy, [port] = world.sidecar([(svc, HTTP)])
    proxy.wait_endpoints(svc, 1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert json.loads(resp.read())["instance"] == first.id
    second = world.instance(svc)
    proxy.wait_endpoints(svc, 2)
    seen = Counter()
    for _ in range(10):  # same client connection all along
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        seen[json.loads(resp.read())["instance"]] += 1
    conn.close()
    assert seen[second.id] >= 4 and seen[first.id] >= 4, seen


def test_agent_unreachable_keeps_last_endpoints():
    agent = Agent(["-dev"])
    inst = None
    proxy = None
    try:
        svc = uniq("stale")
        inst = Instance(agent, svc)
        client = uniq("client")
        port = free_port()
        r = agent.put("/v1/agent/service/register", data=json.dumps({
            "ID": client, "Name": client, "Connect": {"SidecarService": {"Proxy": {"Upstreams": [
                {"DestinationName": svc, "LocalBindPort": port, "Config": HTTP}]}}}}))
        assert r.status_code == 200, r.text
        proxy = ProxyProc(agent, ["-sidecar-for", client])
        proxy.wait_endpoints(svc, 1)
        agent.stop()
        deadline = time.monotonic() + 10
        while not proxy.upstream(svc)["discovery"]["stale"] and time.monotonic() < deadline:
            time.sleep(0.1)
        up = proxy.upstream(svc)
        assert up["discovery"]["stale"] is True and up["discovery"]["last_error"], up
        assert len(up["endpoints"]) == 1
        assert get(port).json()["instance"] == inst.id
        assert proxy.metric("lotse_proxy_discovery_stale", upstream=svc) == 1
        assert "agent unreachable" in proxy.output()
    finally:
        if proxy:
            proxy.stop()
        if inst:
            inst.kill()
        agent.stop()


# ------------------------------------------------------------------------------ bad input

def test_malformed_request_gets_400_and_the_listener_survives(world):
    svc = uniq("bad")
    world.instances(svc, 1)
    proxy, [port] = world.sidecar([(svc, HTTP)])
    proxy.wait_endpoints(svc, 1)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert get(port).status_code == 200


def test_upstream_closing_mid_response_does_not_wedge_the_proxy(world):
    svc = uniq("trunc")
    world.instances(svc, 1)
    proxy, [port] = world.sidecar([(svc, HTTP)])
    proxy.wait_endpoints(svc, 1)
    for _ in range(3):
        with pytest.raises(requests.exceptions.RequestException):
            r = get(port, "/truncate", timeout=5)
            r.content  # noqa: B018 - reading the short body must fail, not hang
            raise AssertionError(f"complete body from a truncated upstream: {r.content!r}")
    assert get(port).status_code == 200
    assert proxy.proc.poll() is None
    assert requests.get(proxy.admin + "/ready", timeout=5).status_code == 200


def test_config_error_names_the_field(world):
    svc = uniq("cfg")
    proxy, _ = world.sidecar([(svc, {"limits": {"max_connections": "lots"}})], wait=False)
    assert proxy.proc.wait(timeout=15) == 1
    assert "Proxy.Upstreams[0].Config.limits.max_connections" in proxy.output()


# ------------------------------------------------------------------------------ streaming, upgrades

def test_large_upload_streams_to_the_instance(world):
    """A body over max_request_body_bytes is streamed (not refused with 413, not buffered)."""
    svc = uniq("upload")
    world.instances(svc, 1)
    proxy, [port] = world.sidecar([(svc, {"protocol": "http", "max_request_body_bytes": 65536})])
    proxy.wait_endpoints(svc, 1)
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB, declared with Content-Length
    r = requests.post(f"http://127.0.0.1:{port}/up", data=big, timeout=30)
    assert r.status_code == 200, r.text[:200]
    assert r.json()["body_len"] == len(big)
    assert r.json()["body_sha256"] == hashlib.sha256(big).hexdigest()

    def chunks():  # no Content-Length: the proxy finds out while reading
        for _ in range(32):
            yield b"y" * 32768
    r = requests.post(f"http://127.0.0.1:{port}/up", data=chunks(), timeout=30)
    assert r.status_code == 200 and r.json()["body_len"] == 32 * 32768
    # Small bodies are still buffered (and retried) as before.
    assert requests.post(f"http://127.0.0.1:{port}/up", data=b"hi", timeout=10).json()["body"] == "hi"


def test_response_streams_and_a_stalled_stream_is_cut(world):
    svc = uniq("stream")
    world.instances(svc, 1)
    proxy, [port] = world.sidecar([(svc, {"protocol": "http", "stream_idle_timeout_ms": 1000})])
    proxy.wait_endpoints(svc, 1)
    # Chunks 400 ms apart: the first is read long before the last is written.
    start = time.monotonic()
    r = requests.get(f"http://127.0.0.1:{port}/stream?chunks=3&gap_ms=400", stream=True, timeout=10)
    lines = r.iter_lines()
    assert next(lines) == b"chunk-0"
    first = time.monotonic() - start
    assert [next(lines), next(lines)] == [b"chunk-1", b"chunk-2"]
    total = time.monotonic() - start
    assert first < 0.4 and total >= 0.8, (first, total)
    # Chunks 4 s apart: cut after 1 s of silence.
    start = time.monotonic()
    r = requests.get(f"http://127.0.0.1:{port}/stream?chunks=2&gap_ms=4000", stream=True, timeout=10)
    lines = r.iter_lines()
    assert next(lines) == b"chunk-0"
    with pytest.raises(requests.exceptions.RequestException):
        list(lines)
    took = time.monotonic() - start
    assert 0.9 <= took < 3.5, took
    assert proxy.metric("lotse_proxy_timeouts_total", upstream=svc) == 1
    assert get(port, "/after").status_code == 200


def test_stalled_request_body_gets_408_and_is_not_held_against_the_instance(world):
    svc = uniq("stall")
    world.instances(svc, 1)
    cfg = {"protocol": "http", "stream_idle_timeout_ms": 500,
           "passive_health_check": {"max_failures": 1}}
    proxy, [port] = world.sidecar([(svc, cfg)])
    proxy.wait_endpoints(svc, 1)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\n0123456789")
        start = time.monotonic()
        head = s.recv(200)
        took = time.monotonic() - start
    assert head.startswith(b"HTTP/1.1 408"), head
    assert 0.4 <= took < 3, took
    assert proxy.upstream(svc)["endpoints"][0]["state"] == "healthy"
    assert get(port, "/after").status_code == 200


def _ws_handshake(port, path="/ws", host="svc"):
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    expected = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    return s, head.decode().lower(), expected.lower()


def _echo(s, payload):
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    return got


def test_websocket_upgrade_through_the_sidecar(world):
    svc = uniq("ws")
    insts = world.instances(svc, 1)
    proxy, [port] = world.sidecar([(svc, HTTP)])
    proxy.wait_endpoints(svc, 1)
    s, head, accept = _ws_handshake(port)
    with s:
        assert head.startswith("http/1.1 101"), head
        assert "upgrade: websocket" in head and f"sec-websocket-accept: {accept}" in head, head
        assert f"x-instance: {insts[0].id}".lower() in head
        # A masked WebSocket text frame ("hello") and a larger binary payload, echoed byte for byte.
        frame = bytes([0x81, 0x85, 1, 2, 3, 4]) + bytes(b ^ [1, 2, 3, 4][i % 4] for i, b in enumerate(b"hello"))
        assert _echo(s, frame) == frame
        blob = os.urandom(200_000)
        assert _echo(s, blob) == blob
        # Open, it is a request in flight on its endpoint.
        assert proxy.upstream(svc)["requests_in_flight"] == 1
        assert proxy.metric("lotse_proxy_upgrades_total", upstream=svc) == 1
    deadline = time.monotonic() + 5
    while proxy.upstream(svc)["requests_in_flight"] != 0:
        assert time.monotonic() < deadline, proxy.upstream(svc)
        time.sleep(0.05)
    assert get(port, "/plain").status_code == 200


# ------------------------------------------------------------------------------ L4, ad hoc

def test_tcp_upstream_ad_hoc(world):
    svc = uniq("tcp")
    insts = world.instances(svc, 2)
    port = free_port()
    proxy = world.proxy(["-service", "web", "-upstream", f"{svc}:{port}"])
    proxy.wait_endpoints(svc, 2)
    assert proxy.upstream(svc)["protocol"] == "tcp"
    # A new connection per request (Connection: close): each is balanced on its own.
    seen = Counter(get(port, headers={"Connection": "close"}).json()["instance"] for _ in range(10))
    assert set(seen) == {i.id for i in insts}, seen
    assert proxy.metric("lotse_proxy_connections_total", upstream=svc) == 10


def test_sidecar_public_listener_reaches_the_local_service(world, agent):
    local = world.instance(uniq("local"), register=False)
    client = uniq("client")
    public = free_port()
    r = agent.put("/v1/agent/service/register", data=json.dumps({
        "ID": client, "Name": client, "Port": local.port,
        "Connect": {"SidecarService": {"Port": public, "Address": "127.0.0.1",
                                       "Proxy": {"Config": {"protocol": "http"}}}}}))
    assert r.status_code == 200, r.text
    proxy = world.proxy(["-sidecar-for", client])
    assert get(public, "/in").json()["instance"] == local.id


# ------------------------------------------------------------------------------ live config

def test_sidecar_registration_change_applies_live(world, agent):
    svc, svc2 = uniq("first"), uniq("second")
    world.instances(svc, 1)
    second = world.instances(svc2, 1)[0]
    client = uniq("client")
    port, port2 = free_port(), free_port()

    def register(upstreams):
        r = agent.put("/v1/agent/service/register", data=json.dumps({
            "ID": client, "Name": client,
            "Connect": {"SidecarService": {"Proxy": {"Upstreams": upstreams}}}}))
        assert r.status_code == 200, r.text

    first_up = {"DestinationName": svc, "LocalBindPort": port, "Config": HTTP}
    register([first_up])
    proxy = world.proxy(["-sidecar-for", client])
    proxy.wait_endpoints(svc, 1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().read()
    register([first_up, {"DestinationName": svc2, "LocalBindPort": port2, "Config": HTTP}])
    deadline = time.monotonic() + 15
    while proxy.upstreams()["config_version"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proxy.upstreams()["config_version"] == 2, proxy.output()
    proxy.wait_endpoints(svc2, 1)
    assert get(port2).json()["instance"] == second.id
    # The unchanged upstream kept its listener, state and open client connection.
    conn.request("GET", "/")
    assert conn.getresponse().status == 200
    conn.close()
    assert proxy.metric("lotse_proxy_requests_total", upstream=svc, **{"class": "2xx"}) == 2


def test_sidecar_registers_its_own_health_check(world, agent):
    proxy, _ = world.sidecar([(uniq("hc"), HTTP)])
    proxy_id = proxy.upstreams()["proxy_id"]
    check_id = f"lotse-proxy-ready:{proxy_id}"
    checks = agent.get("/v1/agent/checks").json()
    assert check_id in checks, checks
    assert checks[check_id]["ServiceID"] == proxy_id
    deadline = time.monotonic() + 25  # the first run comes within one interval (10s)
    while agent.get("/v1/agent/checks").json()[check_id]["Status"] != "passing":
        assert time.monotonic() < deadline, agent.get("/v1/agent/checks").json()[check_id]
        time.sleep(0.2)
    proxy.stop()
    assert check_id not in agent.get("/v1/agent/checks").json()




def test_ad_hoc_public_listener(world):
    local = world.instance(uniq("adhoc"), register=False)
    listen = free_port()
    world.proxy(["-service", "adhoc", "-listen", f"127.0.0.1:{listen}",
                 "-service-addr", f"127.0.0.1:{local.port}"])
    assert get(listen, "/x").json()["instance"] == local.id


def test_bad_flags_are_refused(world):
    p = world.proxy([], wait=False)
    assert p.proc.wait(timeout=15) == 1
    assert "One of -sidecar-for, -proxy-id or -service is required" in p.output()
    p = world.proxy(["-service", "x", "-upstream", "nope"], wait=False)
    assert p.proc.wait(timeout=15) == 1
    assert "expected NAME:PORT" in p.output()
