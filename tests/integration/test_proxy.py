"""`lotse connect proxy`: the built-in sidecar proxy, end to end with real processes.

Each test registers its own destination service with 2-3 instances of a tiny Python HTTP server
(proxy_upstream.py) in a `lotse agent -dev`, registers a client service whose sidecar lists the
upstreams (Consul's `Connect.SidecarService.Proxy.Upstreams` with `Config`), starts
`lotse connect proxy -sidecar-for <client>` and drives traffic through 127.0.0.1:<local_bind_port>.
State is read from the proxy's admin endpoint (`/upstreams`, `/stats/prometheus`).
"""
import concurrent.futures
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from conftest import Agent, free_port, lotse_bin

HERE = Path(__file__).resolve().parent


def uniq(tag):
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Instance:
    """One proxy_upstream.py process, registered in the agent as an instance of `service`."""

    def __init__(self, agent, service, register=True):
        self.agent = agent
        self.service = service
        self.port = free_port()
        self.id = f"{service}-{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "proxy_upstream.py"),
                                      str(self.port), self.id])
        wait_port(self.port)
        if register:
            self.register()

    def register(self):
        r = self.agent.put("/v1/agent/service/register", data=json.dumps({
            "ID": self.id, "Name": self.service, "Address": "127.0.0.1", "Port": self.port}))
        assert r.status_code == 200, r.text

    def mode(self, mode):
        r = requests.get(f"http://127.0.0.1:{self.port}/_mode/{mode}", timeout=5)
        assert r.status_code == 200

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class ProxyProc:
    """A running `lotse connect proxy`, its admin address and log."""

    def __init__(self, agent, args, wait=True, command=("connect", "proxy")):
        self.admin_port = free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = Path(tempfile.mkstemp(prefix="lotse-proxy-", suffix=".log")[1])
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, LOTSE_HTTP_ADDR=agent.addr)
        env.pop("CONSUL_HTTP_ADDR", None)
        self.proc = subprocess.Popen(
            [lotse_bin(), *command, *args, "-admin-bind", f"127.0.0.1:{self.admin_port}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.admin + "/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"proxy not ready:\n{self.output()}")

    def output(self):
        return self.log_path.read_text(errors="replace")[-8000:]

    def upstreams(self):
        return requests.get(self.admin + "/upstreams", timeout=5).json()

    def upstream(self, name):
        return next(u for u in self.upstreams()["upstreams"] if u["name"] == name)

    def metrics(self):
        return requests.get(self.admin + "/stats/prometheus", timeout=5).text

    def metric(self, name, **labels):
        sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in self.metrics().splitlines():
            if line.startswith(f"{name}{{{sel}}} "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_endpoints(self, name, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            eps = self.upstream(name)["endpoints"]
            if len(eps) == n:
                return eps
            time.sleep(0.05)
        raise AssertionError(f"{name}: wanted {n} endpoints, have {self.upstream(name)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def world(agent):
    """Starts instances and proxies for one test and stops them after it."""
    started = {"instances": [], "proxies": []}

    class World:
        def instances(self, service, n):
            out = [Instance(agent, service) for _ in range(n)]
            started["instances"].extend(out)
            return out

        def instance(self, service, register=True):
            i = Instance(agent, service, register=register)
            started["instances"].append(i)
            return i

        def sidecar(self, upstreams, wait=True):
            """Registers a client service whose sidecar has `upstreams` ([(dest, config)]);
            starts a proxy for it. Returns (proxy, [local ports])."""
            client = uniq("client")
            ports = [free_port() for _ in upstreams]
            body = {
                "ID": client, "Name": client, "Port": free_port(),
                "Connect": {"SidecarService": {
                    "Port": free_port(), "Address": "127.0.0.1",
                    "Proxy": {"Upstreams": [
                        {"DestinationName": dest, "LocalBindPort": port, "Config": config}
                        for (dest, config), port in zip(upstreams, ports)]}}},
            }
            r = agent.put("/v1/agent/service/register", data=json.dumps(body))
            assert r.status_code == 200, r.text
            p = ProxyProc(agent, ["-sidecar-for", client], wait=wait)
            started["proxies"].append(p)
            return p, ports

        def proxy(self, args, wait=True, command=("connect", "proxy")):
            p = ProxyProc(agent, args, wait=wait, command=command)
            started["proxies"].append(p)
            return p

    yield World()
    for p in started["proxies"]:
        p.stop()
    for i in started["instances"]:
        i.kill()
        agent.put(f"/v1/agent/service/deregister/{i.id}")


def get(port, path="/", **kw):
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=kw.pop("timeout", 10), **kw)


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


def test_traceparent_is_propagated_or_started(world):
    svc = uniq("trace")
    world.instances(svc, 1)
    proxy, [port] = world.sidecar([(svc, HTTP)])
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


# ------------------------------------------------------------------------------ gateway

def test_gateway_routes_by_host_and_path_with_per_route_limits(world, tmp_path):
    api, web = uniq("api"), uniq("web")
    api_insts = world.instances(api, 2)
    web_inst = world.instances(web, 1)[0]
    port, strict_port = free_port(), free_port()
    config = tmp_path / "gateway.hcl"
    config.write_text(f"""
listener {{
  bind = "127.0.0.1:{port}"
  route {{
    name        = "api"
    host        = "api.test"
    path_prefix = "/api/"
    service     = "{api}"
    config {{
      rate_limit {{
        requests_per_second = 1
        burst               = 4
      }}
    }}
  }}
  route {{
    name    = "site"
    service = "{web}"
  }}
}}
listener {{
  bind = "127.0.0.1:{strict_port}"
  route {{
    name    = "assets"
    host    = "*.static.test"
    service = "{web}"
  }}
}}
""")
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("api", 2)
    gw.wait_endpoints("site", 1)
    gw.wait_endpoints("assets", 1)
    r = get(port, "/api/users", headers={"Host": "api.test"})
    assert r.status_code == 200 and r.json()["instance"] in {i.id for i in api_insts}
    assert r.json()["path"] == "/api/users"
    # Same path, other host: the catch-all route. Other path, same host: likewise.
    assert get(port, "/api/users", headers={"Host": "www.test"}).json()["instance"] == web_inst.id
    assert get(port, "/index.html", headers={"Host": "api.test"}).json()["instance"] == web_inst.id
    # Wildcard host; no route at all is 404.
    assert get(strict_port, "/a.css", headers={"Host": "img.static.test"}).json()["instance"] == web_inst.id
    nope = get(strict_port, "/a.css", headers={"Host": "static.test"})
    assert nope.status_code == 404 and nope.headers["x-lotse-proxy"] == "no-route"
    # The api route's bucket runs dry; the site route is not limited.
    codes = Counter(get(port, "/api/x", headers={"Host": "api.test"}).status_code for _ in range(10))
    assert codes[429] >= 5, codes
    assert all(get(port, "/", headers={"Host": "www.test"}).status_code == 200 for _ in range(10))
    assert gw.metric("lotse_proxy_rate_limited_total", upstream="api") == codes[429]
    assert gw.metric("lotse_proxy_requests_total", upstream="site", **{"class": "2xx"}) >= 12


def test_gateway_config_error_names_the_field(world, tmp_path):
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": [{"bind": f"127.0.0.1:{free_port()}",
                                                "route": [{"path_prefix": "/x"}]}]}))
    gw = world.proxy(["-config", str(config)], command=("gateway",), wait=False)
    assert gw.proc.wait(timeout=15) == 1
    assert "listener[0].route[0].service: required" in gw.output()


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
    deadline = time.monotonic() + 15
    while agent.get("/v1/agent/checks").json()[check_id]["Status"] != "passing":
        assert time.monotonic() < deadline, agent.get("/v1/agent/checks").json()[check_id]
        time.sleep(0.2)
    proxy.stop()
    assert check_id not in agent.get("/v1/agent/checks").json()


def test_gateway_validates_requests_and_checks_api_keys_from_kv(world, agent, tmp_path):
    svc = uniq("keyed")
    inst = world.instances(svc, 1)[0]
    prefix = f"{uniq('gw')}/keys"
    assert agent.put(f"/v1/kv/{prefix}/alice", data="alice-key").status_code == 200
    port = free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": {
        "bind": f"127.0.0.1:{port}",
        "allowed_methods": ["GET", "POST"],
        "max_header_bytes": 2048,
        "max_body_bytes": 64,
        "route": [
            {"name": "private", "path_prefix": "/private/", "service": svc,
             "api_keys_kv_prefix": prefix},
            {"name": "public", "service": svc},
        ]}}))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("public", 1)
    assert get(port, "/open").json()["instance"] == inst.id
    r = requests.delete(f"http://127.0.0.1:{port}/open", timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    assert get(port, "/open", headers={"x-big": "x" * 4000}).status_code == 431
    r = requests.post(f"http://127.0.0.1:{port}/open", data=b"y" * 100, timeout=10)
    assert r.status_code == 413
    assert requests.post(f"http://127.0.0.1:{port}/open", data=b"small", timeout=10).json()["body"] == "small"
    # API keys: none, wrong, right (either header); then revoked by deleting it from the KV.
    deadline = time.monotonic() + 10
    while get(port, "/private/x", headers={"X-API-Key": "alice-key"}).status_code != 200:
        assert time.monotonic() < deadline, gw.output()
        time.sleep(0.1)
    r = get(port, "/private/x")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert get(port, "/private/x", headers={"X-API-Key": "nope"}).status_code == 401
    assert get(port, "/private/x", headers={"Authorization": "Bearer alice-key"}).status_code == 200
    assert agent.delete(f"/v1/kv/{prefix}/alice").status_code == 200
    deadline = time.monotonic() + 10
    while get(port, "/private/x", headers={"X-API-Key": "alice-key"}).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _b64url(data: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: dict, claims: dict, sign) -> str:
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64url(sign(signing_input.encode()))}"


def test_gateway_verifies_jwts_hs256_and_rs256(world, tmp_path):
    import hashlib
    import hmac
    import shutil

    svc = uniq("jwt")
    world.instances(svc, 1)
    jwt_cfg = {"hs256_secret": "top-secret", "issuer": "lotse-tests", "audience": "api"}
    rsa = shutil.which("openssl") is not None
    if rsa:
        key = tmp_path / "key.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                       capture_output=True)
        pub = tmp_path / "pub.pem"
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
                       check=True, capture_output=True)
        jwt_cfg["rs256_public_key_file"] = str(pub)
    port = free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": {"bind": f"127.0.0.1:{port}", "route": {
        "name": "jwt", "service": svc, "jwt": jwt_cfg}}}))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("jwt", 1)

    now = int(time.time())
    claims = {"iss": "lotse-tests", "aud": "api", "sub": "ann", "exp": now + 300}

    def hs(secret):
        return lambda m: hmac.new(secret, m, hashlib.sha256).digest()

    def call(token):
        return get(port, "/", headers={"Authorization": f"Bearer {token}"}).status_code

    assert call(_jwt({"alg": "HS256", "typ": "JWT"}, claims, hs(b"top-secret"))) == 200
    assert call(_jwt({"alg": "HS256"}, claims, hs(b"wrong"))) == 401
    assert call(_jwt({"alg": "HS256"}, dict(claims, exp=now - 3600), hs(b"top-secret"))) == 401
    assert call(_jwt({"alg": "HS256"}, dict(claims, aud="other"), hs(b"top-secret"))) == 401
    assert call(_jwt({"alg": "none"}, claims, lambda m: b"")) == 401
    assert get(port, "/").status_code == 401
    if rsa:
        def rs(m):
            return subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=m,
                                  check=True, capture_output=True).stdout
        assert call(_jwt({"alg": "RS256", "typ": "JWT"}, claims, rs)) == 200
        # Algorithm confusion: an HS256 token "signed" with the public key's bytes is refused.
        assert call(_jwt({"alg": "HS256"}, claims, hs(pub.read_bytes()))) == 401


def test_gateway_caches_shareable_gets(world, tmp_path):
    svc = uniq("cache")
    world.instances(svc, 1)
    port = free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": {"bind": f"127.0.0.1:{port}", "route": {
        "name": "cached", "service": svc,
        "cache": {"max_bytes": 1 << 20, "max_entry_bytes": 4096}}}}))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("cached", 1)
    first = get(port, "/cached?x=1")
    assert first.headers["x-lotse-cache"] == "miss"
    again = get(port, "/cached?x=1")
    assert again.headers["x-lotse-cache"] == "hit" and "age" in again.headers
    assert again.json()["n"] == first.json()["n"]  # served from memory, upstream not asked
    # Another query string is another entry; no-cache requests and uncacheable answers pass.
    assert get(port, "/cached?x=2").headers["x-lotse-cache"] == "miss"
    fresh = get(port, "/cached?x=1", headers={"Cache-Control": "no-cache"})
    assert "x-lotse-cache" not in fresh.headers and fresh.json()["n"] > first.json()["n"]
    plain = [get(port, "/plain").json()["n"] for _ in range(2)]
    assert plain[1] > plain[0]
