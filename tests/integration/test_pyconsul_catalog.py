"""py-consul (1.8.0, import name `consul`) used unchanged against Lotse's agent, catalog and health APIs.

Run (after `cargo build -p lotse`; the venv as in the README):
    LOTSE_BIN=target/debug/lotse .venv/bin/pytest -q tests/integration/test_pyconsul_catalog.py
`scripts/test-all` runs it with the rest of tests/integration.

Everything goes through py-consul's own API objects, so the requests are exactly what the client
sends (site-packages/consul/api/{agent,catalog,health}.py and consul/check.py, read not copied):
  * agent.service.register -> PUT /v1/agent/service/register with lower-case keys ("name", "id",
    "address", "port", "tags", "meta", "weights", "enabletagoverride", "checks": [check, *extra]),
    `?replace-existing-checks=true`. The Check helpers give lower-case dicts: {"ttl": "10s"},
    {"http": url, "interval": i, "timeout": t}, {"tcp": "host:port", "interval": i},
    {"args": [...], "interval": i}.
  * agent.check.register -> PUT /v1/agent/check/register {"name", "id", "notes", "serviceid", **check}.
  * agent.check.ttl_pass/ttl_warn/ttl_fail -> PUT /v1/agent/check/{pass,warn,fail}/<id>[?note=].
  * agent.service.maintenance / agent.maintenance -> PUT ...?enable=True|False[&reason=] (Python's
    str(bool): Consul parses it with strconv.ParseBool, which accepts "True"/"False").
  * Every write answers through CB.boolean: 200 -> True, 404 -> False, other 4xx/5xx raise.
  * catalog.register / catalog.deregister -> PUT with lower-case top-level keys ("node",
    "address", "service", "check", "serviceid", "checkid") whose values are passed as given.
  * Every catalog/health read goes through CB.json(index=True): the X-Consul-Index header is
    required (ConsulException otherwise) and a 404 reads as (index, None).
Consul semantics asserted are those of agent/agent_endpoint.go, agent/agent.go (service check IDs
"service:<id>" / "service:<id>:<n>", default check name "Service '<name>' check", maintenance
checks "_service_maintenance:<id>" / "_node_maintenance"), agent/acl.go (unknown service or check
-> 404), agent/checks/check.go (TTL/HTTP/TCP/script outputs and statuses),
agent/catalog_endpoint.go and agent/health_endpoint.go (empty lists instead of null, `passing`
drops an instance with any non-passing check, several `tag`s must all match).
"""
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import consul
import pytest
from consul import Check
from consul.exceptions import BadRequest

from conftest import Agent, free_port

DEFAULT_SERVICE_MAINT = ("Maintenance mode is enabled for this service, but no reason was provided. "
                         "This is a default message.")
DEFAULT_NODE_MAINT = ("Maintenance mode is enabled for this node, but no reason was provided. "
                      "This is a default message.")


# ----------------------------------------------------------------------------- fixtures / helpers

def client(agent):
    return consul.Consul(host="127.0.0.1", port=agent.http_port)


@pytest.fixture(scope="module")
def c(agent):
    return client(agent)


@pytest.fixture(scope="module")
def node(c):
    return c.agent.self()["Config"]["NodeName"]


@pytest.fixture(scope="module")
def dc(c):
    return c.agent.self()["Config"]["Datacenter"]


@pytest.fixture(scope="module")
def script_agent():
    """An agent that allows script checks registered over the API (`-enable-script-checks`)."""
    a = Agent(["-dev", "-enable-script-checks"])
    yield a
    a.stop()


class _Target(BaseHTTPRequestHandler):
    CODES = {"/ok": 200, "/busy": 429, "/down": 503}

    def do_GET(self):  # noqa: N802 (http.server's name)
        code = self.CODES.get(self.path, 404)
        if self.path == "/needs-header":     # 200 only with the header a check is told to send
            code = 200 if self.headers.get("X-Probe") == "lotse" else 400
        body = f"target says {code}".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_target():
    """A local HTTP server: /ok -> 200, /busy -> 429, /down -> 503, /needs-header -> 200 only with
    `X-Probe: lotse` (else 400)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def tcp_target():
    """A listening TCP socket that accepts and closes connections; yields its port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)

    def serve():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield s.getsockname()[1]
    s.close()


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(fn, what, timeout=15.0, interval=0.1):
    """Polls fn() until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def status_of(c, check_id):
    chk = c.agent.checks().get(check_id)
    return chk and chk["Status"]


def wait_status(c, check_id, status, timeout=15.0):
    wait_until(lambda: status_of(c, check_id) == status, f"check {check_id} to be {status}", timeout)
    return c.agent.checks()[check_id]


def ids_of(entries):
    """Service IDs of /v1/health/service entries."""
    return sorted(e["Service"]["ID"] for e in entries)


def by_id(checks):
    return {ch["CheckID"]: ch for ch in checks}


class Watcher(threading.Thread):
    """Runs one blocking py-consul call in the background and records its answer and duration."""

    def __init__(self, call):
        super().__init__(daemon=True)
        self.call = call
        self.result = None
        self.error = None
        self.elapsed = None
        self.start()

    def run(self):
        t0 = time.monotonic()
        try:
            self.result = self.call()
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.error = e
        self.elapsed = time.monotonic() - t0

    def outcome(self, timeout=20):
        self.join(timeout)
        assert not self.is_alive(), "blocking query did not return"
        if self.error is not None:
            raise self.error
        return self.result


# ----------------------------------------------------------------------------- agent services

def test_agent_service_register_with_tags_meta_address_port(c, node, dc):
    name, sid = uid("web"), uid("web-1")
    assert c.agent.service.register(
        name, service_id=sid, address="10.1.2.3", port=8080, tags=["v1", "primary"],
        meta={"version": "1.2.3", "team": "core"}, weights={"Passing": 10, "Warning": 2},
        enable_tag_override=True,
    ) is True

    svc = c.agent.services()[sid]
    assert svc["ID"] == sid
    assert svc["Service"] == name
    assert svc["Tags"] == ["v1", "primary"]
    assert svc["Meta"] == {"version": "1.2.3", "team": "core"}
    assert svc["Address"] == "10.1.2.3"
    assert svc["Port"] == 8080
    assert svc["Weights"] == {"Passing": 10, "Warning": 2}
    assert svc["EnableTagOverride"] is True
    assert svc["Datacenter"] == dc

    # The handler syncs before answering: the catalog already shows the instance on this node.
    index, nodes = c.catalog.service(name)
    assert int(index) > 0
    assert len(nodes) == 1
    sn = nodes[0]
    assert sn["Node"] == node
    assert sn["Datacenter"] == dc
    assert sn["ServiceID"] == sid
    assert sn["ServiceName"] == name
    assert sn["ServiceTags"] == ["v1", "primary"]
    assert sn["ServiceAddress"] == "10.1.2.3"
    assert sn["ServicePort"] == 8080
    assert sn["ServiceMeta"] == {"version": "1.2.3", "team": "core"}
    assert sn["ServiceWeights"] == {"Passing": 10, "Warning": 2}
    assert sn["ServiceEnableTagOverride"] is True

    _, services = c.catalog.services()
    assert sorted(services[name]) == ["primary", "v1"]
    _, info = c.catalog.node(node)
    ns = info["Services"][sid]
    assert (ns["Service"], ns["Port"], ns["Address"], ns["Tags"]) == (name, 8080, "10.1.2.3", ["v1", "primary"])
    assert c.agent.service.deregister(sid) is True
    assert sid not in c.catalog.node(node)[1]["Services"]


def test_agent_service_defaults(c):
    name = uid("bare")
    # No service_id: the ID is the name. No tags/meta/port: [] / {} / 0, weights 1/1.
    assert c.agent.service.register(name) is True
    svc = c.agent.services()[name]
    assert svc["ID"] == name and svc["Service"] == name
    assert svc["Tags"] == []
    assert svc["Meta"] == {}
    assert svc["Port"] == 0
    assert svc["Address"] == ""
    assert svc["Weights"] == {"Passing": 1, "Warning": 1}
    assert svc["EnableTagOverride"] is False
    _, nodes = c.catalog.service(name)
    assert [n["ServiceID"] for n in nodes] == [name]
    assert nodes[0]["ServiceTags"] == []
    assert c.agent.service.deregister(name) is True


def test_agent_service_definition(c):
    name, sid = uid("def"), uid("def-1")
    c.agent.service.register(name, service_id=sid, port=9000, tags=["x"])
    svc = c.agent.service_definition(sid)
    assert svc["ID"] == sid
    assert svc["Service"] == name
    assert svc["Port"] == 9000
    assert svc["Tags"] == ["x"]
    assert isinstance(svc["ContentHash"], str) and svc["ContentHash"]
    # Unknown ID: Consul answers 404, which py-consul reads as None.
    assert c.agent.service_definition(uid("no-such")) is None
    c.agent.service.deregister(sid)


def test_agent_service_reregister_replaces_definition(c):
    name, sid = uid("rereg"), uid("rereg-1")
    c.agent.service.register(name, service_id=sid, port=1000, tags=["old"], meta={"gen": "1"})
    c.agent.service.register(name, service_id=sid, port=2000, tags=["new"], meta={"gen": "2"})
    svc = c.agent.services()[sid]
    assert (svc["Port"], svc["Tags"], svc["Meta"]) == (2000, ["new"], {"gen": "2"})
    _, nodes = c.catalog.service(name)
    assert len(nodes) == 1
    assert (nodes[0]["ServicePort"], nodes[0]["ServiceTags"]) == (2000, ["new"])
    _, services = c.catalog.services()
    assert services[name] == ["new"]
    c.agent.service.deregister(sid)


def test_agent_services_and_checks_filter(c):
    name = uid("flt")
    c.agent.service.register(name, service_id=name + "-a", tags=["blue"], check=Check.ttl("60s"))
    c.agent.service.register(name, service_id=name + "-b", tags=["green"])
    got = c.agent.services(filter_expr=f'Service == "{name}" and "blue" in Tags')
    assert list(got) == [name + "-a"]
    got = c.agent.checks(filter_expr=f'ServiceName == "{name}"')
    assert list(got) == [f"service:{name}-a"]
    c.agent.service.deregister(name + "-a")
    c.agent.service.deregister(name + "-b")


def test_agent_service_deregister(c):
    name, sid = uid("gone"), uid("gone-1")
    c.agent.service.register(name, service_id=sid, check=Check.ttl("60s"))
    assert f"service:{sid}" in c.agent.checks()
    assert c.agent.service.deregister(sid) is True
    assert sid not in c.agent.services()
    # Its checks go with it, locally and in the catalog.
    assert f"service:{sid}" not in c.agent.checks()
    assert c.catalog.service(name)[1] == []
    assert c.health.checks(name)[1] == []
    assert c.health.service(name)[1] == []
    assert name not in c.catalog.services()[1]
    # Unknown service: 404 (py-consul's False).
    assert c.agent.service.deregister(sid) is False


def test_agent_register_rejects_invalid_definitions(c):
    name = uid("bad")
    # Consul's handler answers 400 for each of these (py-consul: BadRequest), registering nothing.
    with pytest.raises(BadRequest):
        c.agent.service.register(name, address="0.0.0.0")          # "Invalid service address"
    with pytest.raises(BadRequest):
        c.agent.service.register(name, check={**Check.ttl("10s"), "status": "bogus"})
    with pytest.raises(BadRequest):
        c.agent.service.register(name, check={"interval": "10s"})  # no check type
    with pytest.raises(BadRequest):
        c.agent.check.register(name, check={"interval": "10s"})
    with pytest.raises(BadRequest):
        c.agent.check.register("", check=Check.ttl("10s"))         # "Missing check name"
    assert name not in c.agent.services()
    assert name not in c.agent.checks()


# ----------------------------------------------------------------------------- agent checks

def test_check_initial_status(c):
    name, sid = uid("init"), uid("init-1")
    # The check definition may carry its first status (py-consul passes the dict through).
    c.agent.service.register(name, service_id=sid, check={**Check.ttl("60s"), "status": "passing"})
    assert status_of(c, f"service:{sid}") == "passing"
    assert ids_of(c.health.service(name, passing=True)[1]) == [sid]
    cid = uid("init-warn")
    c.agent.check.register("starts warning", check_id=cid, service_id=sid,
                           check={**Check.ttl("60s"), "status": "warning"})
    assert status_of(c, cid) == "warning"
    assert c.health.service(name, passing=True)[1] == []
    c.agent.service.deregister(sid)


def test_service_ttl_check_pass_warn_fail(c, node):
    name, sid = uid("ttl"), uid("ttl-1")
    cid = f"service:{sid}"
    assert c.agent.service.register(name, service_id=sid, tags=["t1"], check=Check.ttl("60s")) is True

    chk = c.agent.checks()[cid]
    assert chk["Status"] == "critical"          # TTL checks start critical
    assert chk["Name"] == f"Service '{name}' check"
    assert chk["ServiceID"] == sid
    assert chk["ServiceName"] == name
    assert chk["ServiceTags"] == ["t1"]
    assert chk["Node"] == node
    assert chk["Type"] == "ttl"
    assert c.health.service(name, passing=True)[1] == []

    assert c.agent.check.ttl_pass(cid, notes="all good") is True
    chk = c.agent.checks()[cid]
    assert (chk["Status"], chk["Output"]) == ("passing", "all good")
    _, entries = c.health.service(name, passing=True)
    assert ids_of(entries) == [sid]
    assert by_id(entries[0]["Checks"])[cid]["Status"] == "passing"
    assert by_id(c.health.checks(name)[1])[cid]["Status"] == "passing"

    assert c.agent.check.ttl_warn(cid, notes="slow") is True
    chk = c.agent.checks()[cid]
    assert (chk["Status"], chk["Output"]) == ("warning", "slow")
    # `passing` drops an instance with a warning check; without it the instance is there.
    assert c.health.service(name, passing=True)[1] == []
    _, entries = c.health.service(name)
    assert ids_of(entries) == [sid]
    assert by_id(entries[0]["Checks"])[cid]["Status"] == "warning"
    assert cid in by_id(c.health.state("warning")[1])

    assert c.agent.check.ttl_fail(cid, notes="down") is True
    chk = c.agent.checks()[cid]
    assert (chk["Status"], chk["Output"]) == ("critical", "down")
    hc = by_id(c.health.checks(name)[1])[cid]
    assert (hc["Status"], hc["Output"], hc["Node"]) == ("critical", "down", node)
    assert cid in by_id(c.health.state("critical")[1])
    assert cid not in by_id(c.health.state("warning")[1])

    # No note: the output is empty again.
    assert c.agent.check.ttl_pass(cid) is True
    chk = c.agent.checks()[cid]
    assert (chk["Status"], chk["Output"]) == ("passing", "")
    c.agent.service.deregister(sid)


def test_ttl_check_expires_to_critical(c):
    name, sid = uid("expire"), uid("expire-1")
    cid = f"service:{sid}"
    c.agent.service.register(name, service_id=sid, check=Check.ttl("2s"))
    assert c.agent.check.ttl_pass(cid, notes="alive") is True
    assert status_of(c, cid) == "passing"
    chk = wait_status(c, cid, "critical", timeout=10)
    assert chk["Output"] == "TTL expired (last output before timeout follows): alive"
    assert c.health.service(name, passing=True)[1] == []
    c.agent.service.deregister(sid)


def test_ttl_update_and_deregister_of_unknown_check(c):
    # Consul: 404 "Unknown check ID"; py-consul's CB.boolean reads a 404 as False.
    missing = uid("no-such-check")
    assert c.agent.check.ttl_pass(missing) is False
    assert c.agent.check.ttl_warn(missing) is False
    assert c.agent.check.ttl_fail(missing) is False
    assert c.agent.check.deregister(missing) is False
    assert missing not in c.agent.checks()


def test_agent_check_register_and_deregister_on_service(c, node):
    name, sid = uid("chk"), uid("chk-1")
    c.agent.service.register(name, service_id=sid, tags=["a"], check=Check.ttl("60s"))
    extra = uid("extra")
    assert c.agent.check.register("Extra probe", check=Check.ttl("60s"), check_id=extra,
                                  notes="a second opinion", service_id=sid) is True
    chk = c.agent.checks()[extra]
    assert chk["Name"] == "Extra probe"
    assert chk["Notes"] == "a second opinion"
    assert chk["ServiceID"] == sid
    assert chk["ServiceName"] == name
    assert chk["ServiceTags"] == ["a"]
    assert chk["Status"] == "critical"
    assert chk["Type"] == "ttl"
    assert chk["Node"] == node
    assert sorted(by_id(c.health.checks(name)[1])) == sorted([f"service:{sid}", extra])

    assert c.agent.check.deregister(extra) is True
    assert extra not in c.agent.checks()
    assert sorted(by_id(c.health.checks(name)[1])) == [f"service:{sid}"]
    assert sid in c.agent.services()       # the service stays
    c.agent.service.deregister(sid)


def test_agent_check_register_id_defaults_to_name(c):
    name, sid = uid("chkname"), uid("chkname-1")
    c.agent.service.register(name, service_id=sid)
    check_name = uid("named-check")
    assert c.agent.check.register(check_name, check=Check.ttl("60s"), service_id=sid) is True
    chk = c.agent.checks()[check_name]
    assert chk["CheckID"] == check_name and chk["Name"] == check_name
    c.agent.service.deregister(sid)
    # A check of a service goes when the service goes.
    assert check_name not in c.agent.checks()


def test_agent_check_register_for_unknown_service_is_404(c):
    cid = uid("orphan")
    # Consul: 404 `ServiceID "..." does not exist` -> py-consul False, and nothing is registered.
    assert c.agent.check.register("orphan", check=Check.ttl("60s"), check_id=cid,
                                  service_id=uid("no-such-service")) is False
    assert cid not in c.agent.checks()


def test_node_level_check_affects_every_service_of_the_node(fresh_agent):
    c = client(fresh_agent)
    node = c.agent.self()["Config"]["NodeName"]
    name = uid("nodewide")
    c.agent.service.register(name, service_id=name + "-1")
    assert ids_of(c.health.service(name, passing=True)[1]) == [name + "-1"]

    cid = uid("disk")
    assert c.agent.check.register("Disk space", check=Check.ttl("60s"), check_id=cid,
                                  notes="root fs") is True
    chk = c.agent.checks()[cid]
    assert chk["ServiceID"] == "" and chk["ServiceName"] == ""
    assert chk["ServiceTags"] == []
    assert chk["Notes"] == "root fs"
    assert chk["Status"] == "critical"
    assert cid in by_id(c.health.node(node)[1])
    # A critical node check takes every instance on the node out of `passing`...
    assert c.health.service(name, passing=True)[1] == []
    _, entries = c.health.service(name)
    assert cid in by_id(entries[0]["Checks"])
    # ...but it is not a check of the service.
    assert cid not in by_id(c.health.checks(name)[1])

    assert c.agent.check.ttl_pass(cid) is True
    assert ids_of(c.health.service(name, passing=True)[1]) == [name + "-1"]
    assert c.agent.check.deregister(cid) is True
    assert cid not in by_id(c.health.node(node)[1])


def test_several_service_checks_and_replace_existing_checks(c):
    name, sid = uid("multi"), uid("multi-1")
    # Two checks in one registration: service:<id>:1 and service:<id>:2.
    c.agent.service.register(name, service_id=sid, check=Check.ttl("60s"),
                             extra_checks=[Check.ttl("60s")])
    mine = lambda: sorted(k for k, v in c.agent.checks().items() if v["ServiceID"] == sid)  # noqa: E731
    assert mine() == [f"service:{sid}:1", f"service:{sid}:2"]

    # Re-registered with one check: service:<id> is added, the others stay...
    c.agent.service.register(name, service_id=sid, check=Check.ttl("60s"))
    assert mine() == [f"service:{sid}", f"service:{sid}:1", f"service:{sid}:2"]

    # ...unless replace-existing-checks is asked for.
    c.agent.service.register(name, service_id=sid, check=Check.ttl("60s"), replace_existing_checks=True)
    assert mine() == [f"service:{sid}"]
    assert sorted(by_id(c.health.checks(name)[1])) == [f"service:{sid}"]
    c.agent.service.deregister(sid)


def test_http_checks(c, http_target):
    name, sid = uid("http"), uid("http-1")
    ok, busy, down = (f"{http_target}/{p}" for p in ("ok", "busy", "down"))
    assert c.agent.service.register(
        name, service_id=sid, port=80,
        check=Check.http(ok, "1s", timeout="2s"),
        extra_checks=[Check.http(busy, "1s"), Check.http(down, "1s")],
    ) is True
    ok_id, busy_id, down_id = (f"service:{sid}:{i}" for i in (1, 2, 3))

    chk = wait_status(c, ok_id, "passing")
    assert chk["Type"] == "http"
    assert chk["Output"] == f"HTTP GET {ok}: 200 OK Output: target says 200"
    chk = wait_status(c, busy_id, "warning")     # 429 is a warning
    assert chk["Output"] == f"HTTP GET {busy}: 429 Too Many Requests Output: target says 429"
    # Critical is also the initial status: wait for the first run's output.
    wait_until(lambda: c.agent.checks()[down_id]["Output"], "the /down check to have run")
    chk = c.agent.checks()[down_id]
    assert chk["Status"] == "critical"
    assert chk["Output"] == f"HTTP GET {down}: 503 Service Unavailable Output: target says 503"

    _, entries = c.health.service(name)
    statuses = {k: v["Status"] for k, v in by_id(entries[0]["Checks"]).items() if k.startswith("service:")}
    assert statuses == {ok_id: "passing", busy_id: "warning", down_id: "critical"}
    assert c.health.service(name, passing=True)[1] == []

    # A TTL update on a check that is not a TTL check is an error (Consul: 500 "does not have
    # associated TTL").
    with pytest.raises(consul.ConsulException):
        c.agent.check.ttl_pass(ok_id)
    c.agent.service.deregister(sid)


def test_http_check_sends_configured_headers(c, http_target):
    cid = uid("hdr")
    url = f"{http_target}/needs-header"
    assert c.agent.check.register("header check", check_id=cid,
                                  check=Check.http(url, "1s", header={"X-Probe": ["lotse"]})) is True
    chk = wait_status(c, cid, "passing")
    assert chk["Output"] == f"HTTP GET {url}: 200 OK Output: target says 200"
    assert c.agent.check.deregister(cid) is True


def test_tcp_checks(c, tcp_target):
    name, sid = uid("tcp"), uid("tcp-1")
    closed = free_port()
    c.agent.service.register(name, service_id=sid, port=tcp_target,
                             check=Check.tcp("127.0.0.1", tcp_target, "1s", timeout="1s"),
                             extra_checks=[Check.tcp("127.0.0.1", closed, "1s", timeout="1s")])
    chk = wait_status(c, f"service:{sid}:1", "passing")
    assert chk["Type"] == "tcp"
    assert chk["Output"] == f"TCP connect 127.0.0.1:{tcp_target}: Success"
    wait_until(lambda: c.agent.checks()[f"service:{sid}:2"]["Output"], "the closed-port check to run")
    chk = c.agent.checks()[f"service:{sid}:2"]
    assert chk["Status"] == "critical"
    assert f"127.0.0.1:{closed}" in chk["Output"]
    c.agent.service.deregister(sid)


def test_script_checks_refused_when_disabled(c):
    # `-dev` does not enable script checks; a remote registration that has one is refused.
    name = uid("script-off")
    with pytest.raises(consul.ConsulException):
        c.agent.service.register(name, check=Check.script(["sh", "-c", "true"], "1s"))
    assert name not in c.agent.services()
    with pytest.raises(consul.ConsulException):
        c.agent.check.register(name, check=Check.script(["sh", "-c", "true"], "1s"))
    assert name not in c.agent.checks()


def test_script_checks_when_enabled(script_agent):
    c = client(script_agent)
    name, sid = uid("script"), uid("script-1")
    assert c.agent.service.register(
        name, service_id=sid,
        check=Check.script(["sh", "-c", "echo script-ok"], "1s"),
        extra_checks=[Check.script(["sh", "-c", "echo degraded; exit 1"], "1s"),
                      Check.script(["sh", "-c", "echo broken; exit 2"], "1s")],
    ) is True
    chk = wait_status(c, f"service:{sid}:1", "passing")
    assert chk["Type"] == "script"
    assert chk["Output"].strip() == "script-ok"
    chk = wait_status(c, f"service:{sid}:2", "warning")
    assert chk["Output"].strip() == "degraded"
    chk = wait_until(lambda: c.agent.checks()[f"service:{sid}:3"]["Output"].strip() == "broken"
                     and c.agent.checks()[f"service:{sid}:3"], "the exit-2 script to have run")
    assert chk["Status"] == "critical"

    # A standalone script check through agent.check.register.
    cid = uid("script-node")
    assert c.agent.check.register("node script", check=Check.script(["sh", "-c", "echo fine"], "1s"),
                                  check_id=cid) is True
    chk = wait_status(c, cid, "passing")
    assert chk["Output"].strip() == "fine"
    c.agent.check.deregister(cid)
    c.agent.service.deregister(sid)


# ----------------------------------------------------------------------------- maintenance

def test_service_maintenance(c, node):
    name, sid = uid("maint"), uid("maint-1")
    mid = f"_service_maintenance:{sid}"
    c.agent.service.register(name, service_id=sid)
    assert ids_of(c.health.service(name, passing=True)[1]) == [sid]

    assert c.agent.service.maintenance(sid, True, reason="upgrading") is True
    chk = c.agent.checks()[mid]
    assert chk["Status"] == "critical"
    assert chk["Name"] == "Service Maintenance Mode"
    assert chk["Notes"] == "upgrading"
    assert chk["ServiceID"] == sid and chk["ServiceName"] == name
    assert chk["Node"] == node
    assert c.health.service(name, passing=True)[1] == []
    assert mid in by_id(c.health.checks(name)[1])
    assert mid in by_id(c.health.state("critical")[1])

    assert c.agent.service.maintenance(sid, False) is True
    assert mid not in c.agent.checks()
    assert ids_of(c.health.service(name, passing=True)[1]) == [sid]

    # No reason: Consul's default note.
    assert c.agent.service.maintenance(sid, True) is True
    assert c.agent.checks()[mid]["Notes"] == DEFAULT_SERVICE_MAINT
    # Deregistering the service removes its maintenance check too.
    c.agent.service.deregister(sid)
    assert mid not in c.agent.checks()

    # Unknown service: 404 -> False.
    assert c.agent.service.maintenance(uid("no-such"), True, reason="x") is False


def test_node_maintenance(fresh_agent):
    c = client(fresh_agent)
    node = c.agent.self()["Config"]["NodeName"]
    name = uid("nm")
    c.agent.service.register(name, service_id=name + "-1")
    assert ids_of(c.health.service(name, passing=True)[1]) == [name + "-1"]

    assert c.agent.maintenance(True, reason="kernel patching") is True
    chk = c.agent.checks()["_node_maintenance"]
    assert chk["Status"] == "critical"
    assert chk["Name"] == "Node Maintenance Mode"
    assert chk["Notes"] == "kernel patching"
    assert chk["ServiceID"] == ""
    assert chk["Node"] == node
    assert "_node_maintenance" in by_id(c.health.node(node)[1])
    assert "_node_maintenance" in by_id(c.health.state("critical")[1])
    assert c.health.service(name, passing=True)[1] == []

    assert c.agent.maintenance(False) is True
    assert "_node_maintenance" not in c.agent.checks()
    assert "_node_maintenance" not in by_id(c.health.node(node)[1])
    assert ids_of(c.health.service(name, passing=True)[1]) == [name + "-1"]

    assert c.agent.maintenance(True) is True
    assert c.agent.checks()["_node_maintenance"]["Notes"] == DEFAULT_NODE_MAINT
    assert c.agent.maintenance(False) is True


# ----------------------------------------------------------------------------- catalog

def test_catalog_datacenters(c, dc):
    assert c.catalog.datacenters() == [dc]
    # An explicit ?dc= of this datacenter works; an unknown one is an error (Consul: 500 "No path
    # to datacenter").
    assert c.catalog.nodes(dc=dc)[1]
    with pytest.raises(consul.ConsulException):
        c.catalog.nodes(dc=uid("nodc"))
    with pytest.raises(consul.ConsulException):
        c.health.service("consul", dc=uid("nodc"))


@pytest.mark.parametrize("mode", ["consistent", "stale"])
def test_catalog_and_health_reads_in_each_consistency_mode(agent, mode):
    c = consul.Consul(host="127.0.0.1", port=agent.http_port, consistency=mode)   # ?consistent=1 / ?stale=1
    name = uid(f"mode-{mode}")
    c.agent.service.register(name, service_id=name + "-1", tags=["m"])
    index, nodes = c.catalog.service(name)
    assert int(index) > 0 and [n["ServiceID"] for n in nodes] == [name + "-1"]
    assert c.catalog.services()[1][name] == ["m"]
    assert c.catalog.nodes()[1]
    assert ids_of(c.health.service(name)[1]) == [name + "-1"]
    c.agent.service.deregister(name + "-1")


def test_catalog_register_external_node(c, dc):
    node, name, sid = uid("ext"), uid("redis"), uid("redis-1")
    cid = f"service:{sid}"
    assert c.catalog.register(
        node, "10.9.8.7",
        service={"Service": name, "ID": sid, "Tags": ["master", "v1"], "Port": 6379,
                 "Address": "10.9.8.8", "Meta": {"role": "primary"}},
        check={"Node": node, "CheckID": cid, "Name": "Redis health check",
               "Notes": "Script based health check", "Status": "passing", "ServiceID": sid},
    ) is True

    index, nodes = c.catalog.nodes()
    assert int(index) > 0
    mine = [n for n in nodes if n["Node"] == node]
    assert len(mine) == 1
    assert mine[0]["Address"] == "10.9.8.7"
    assert mine[0]["Datacenter"] == dc

    _, services = c.catalog.services()
    assert sorted(services[name]) == ["master", "v1"]

    _, instances = c.catalog.service(name)
    assert len(instances) == 1
    sn = instances[0]
    assert (sn["Node"], sn["Address"], sn["Datacenter"]) == (node, "10.9.8.7", dc)
    assert (sn["ServiceID"], sn["ServiceName"]) == (sid, name)
    assert sn["ServiceTags"] == ["master", "v1"]
    assert (sn["ServiceAddress"], sn["ServicePort"]) == ("10.9.8.8", 6379)
    assert sn["ServiceMeta"] == {"role": "primary"}

    _, info = c.catalog.node(node)
    assert info["Node"]["Node"] == node
    assert info["Node"]["Address"] == "10.9.8.7"
    assert list(info["Services"]) == [sid]
    s = info["Services"][sid]
    assert (s["ID"], s["Service"], s["Port"], s["Address"]) == (sid, name, 6379, "10.9.8.8")
    assert s["Tags"] == ["master", "v1"]
    assert s["Meta"] == {"role": "primary"}

    _, checks = c.health.checks(name)
    assert len(checks) == 1
    hc = checks[0]
    assert (hc["Node"], hc["CheckID"], hc["Name"]) == (node, cid, "Redis health check")
    assert (hc["Status"], hc["Notes"]) == ("passing", "Script based health check")
    assert (hc["ServiceID"], hc["ServiceName"]) == (sid, name)
    assert hc["ServiceTags"] == ["master", "v1"]

    _, entries = c.health.service(name, passing=True)
    assert len(entries) == 1
    e = entries[0]
    assert e["Node"]["Node"] == node and e["Node"]["Address"] == "10.9.8.7"
    assert (e["Service"]["ID"], e["Service"]["Service"], e["Service"]["Port"]) == (sid, name, 6379)
    assert e["Service"]["Tags"] == ["master", "v1"]
    assert [ch["CheckID"] for ch in e["Checks"]] == [cid]

    _, node_checks = c.health.node(node)
    assert [ch["CheckID"] for ch in node_checks] == [cid]

    c.catalog.deregister(node)


def test_catalog_deregister_check_service_node(c):
    node, name, sid = uid("dereg"), uid("dereg-svc"), uid("dereg-1")
    cid = f"service:{sid}"
    c.catalog.register(node, "10.0.0.9", service={"Service": name, "ID": sid, "Port": 1},
                       check={"Node": node, "CheckID": cid, "Name": "c", "Status": "critical",
                              "ServiceID": sid})
    node_check = uid("node-check")
    c.catalog.register(node, "10.0.0.9", check={"Node": node, "CheckID": node_check,
                                                 "Name": "node", "Status": "passing"})
    assert sorted(by_id(c.health.node(node)[1])) == sorted([cid, node_check])

    # Only the check.
    assert c.catalog.deregister(node, check_id=cid) is True
    assert c.health.checks(name)[1] == []
    assert [n["ServiceID"] for n in c.catalog.service(name)[1]] == [sid]
    assert sorted(by_id(c.health.node(node)[1])) == [node_check]

    # The service (and the checks bound to it).
    c.catalog.register(node, "10.0.0.9", check={"Node": node, "CheckID": cid, "Name": "c",
                                                 "Status": "passing", "ServiceID": sid})
    assert c.catalog.deregister(node, service_id=sid) is True
    assert c.catalog.service(name)[1] == []
    assert c.health.checks(name)[1] == []
    assert name not in c.catalog.services()[1]
    _, info = c.catalog.node(node)
    assert info["Node"]["Node"] == node
    assert info["Services"] == {}
    assert sorted(by_id(c.health.node(node)[1])) == [node_check]

    # The whole node.
    assert c.catalog.deregister(node) is True
    assert c.catalog.node(node)[1] is None
    assert node not in [n["Node"] for n in c.catalog.nodes()[1]]
    assert c.health.node(node)[1] == []


def test_catalog_unknown_names(c):
    missing = uid("nothing")
    index, nodes = c.catalog.service(missing)
    assert int(index) > 0 and nodes == []
    assert c.catalog.node(missing)[1] is None
    assert c.health.service(missing)[1] == []
    assert c.health.checks(missing)[1] == []
    assert c.health.node(missing)[1] == []


def test_catalog_nodes_include_agent_and_are_sorted(c, node):
    extra = [uid("zz-sort"), uid("aa-sort")]
    for n in extra:
        c.catalog.register(n, "10.3.3.3")
    _, nodes = c.catalog.nodes()
    names = [n["Node"] for n in nodes]
    assert node in names
    assert set(extra) <= set(names)
    assert names == sorted(names, key=str.lower)
    me = next(n for n in nodes if n["Node"] == node)
    assert me["Address"]
    assert me["ID"]         # an agent registers its node ID
    for n in extra:
        c.catalog.deregister(n)


def test_fresh_server_catalog_lists_consul_service(fresh_agent):
    # A Consul server registers itself as the `consul` service; a fresh -dev agent shows only it.
    c = client(fresh_agent)
    node = c.agent.self()["Config"]["NodeName"]
    # Consul's leader registers it when it reconciles members, just after the election.
    deadline = time.monotonic() + 5
    while "consul" not in c.catalog.services()[1] and time.monotonic() < deadline:
        time.sleep(0.1)
    _, services = c.catalog.services()
    assert services == {"consul": []}
    _, instances = c.catalog.service("consul")
    assert [(i["Node"], i["ServiceID"], i["ServiceName"]) for i in instances] == [(node, "consul", "consul")]
    assert instances[0]["ServicePort"] == fresh_agent.server_port   # the server RPC port
    _, entries = c.health.service("consul", passing=True)
    assert len(entries) == 1 and entries[0]["Node"]["Node"] == node
    # The agent itself does not list it among its local services.
    assert "consul" not in c.agent.services()


# ----------------------------------------------------------------------------- health

def test_health_node_of_agent_has_serf_health(c, node):
    index, checks = c.health.node(node)
    assert int(index) > 0
    serf = by_id(checks)["serfHealth"]
    assert serf["Name"] == "Serf Health Status"
    assert serf["Status"] == "passing"
    assert serf["Output"] == "Agent alive and reachable"
    assert serf["Node"] == node
    assert serf["ServiceID"] == ""
    assert "serfHealth" in by_id(c.health.state("passing")[1])
    assert "serfHealth" in by_id(c.health.state("any")[1])


def test_health_service_passing_and_tags(c):
    name = uid("pool")
    n1, n2, n3, n4 = (uid(f"pool-node{i}") for i in range(1, 5))

    def reg(node, tags, status):
        sid = f"{name}-{node}"
        c.catalog.register(node, "10.5.5.5", service={"Service": name, "ID": sid, "Tags": tags, "Port": 1},
                           check={"Node": node, "CheckID": f"service:{sid}", "Name": "svc",
                                  "Status": status, "ServiceID": sid})
        return sid

    s1 = reg(n1, ["primary", "v1"], "passing")
    s2 = reg(n2, ["replica", "v1"], "warning")
    s3 = reg(n3, ["replica", "v2"], "critical")
    s4 = reg(n4, ["replica", "v2"], "passing")
    c.catalog.register(n4, "10.5.5.5", check={"Node": n4, "CheckID": "node-down", "Name": "Node down",
                                               "Status": "critical"})

    assert ids_of(c.health.service(name)[1]) == sorted([s1, s2, s3, s4])
    assert ids_of(c.health.service(name, passing=True)[1]) == [s1]
    assert ids_of(c.health.service(name, tag="replica")[1]) == sorted([s2, s3, s4])
    assert ids_of(c.health.service(name, tag=["replica", "v2"])[1]) == sorted([s3, s4])
    assert ids_of(c.health.service(name, tag="v1", passing=True)[1]) == [s1]
    assert c.health.service(name, tag="v2", passing=True)[1] == []

    # The node-level check shows on the instance of its node and is what makes it fail.
    entry = next(e for e in c.health.service(name)[1] if e["Service"]["ID"] == s4)
    assert by_id(entry["Checks"])["node-down"]["Status"] == "critical"
    assert by_id(entry["Checks"])["node-down"]["ServiceID"] == ""

    # catalog/service filters by tag but not by health.
    assert sorted(n["ServiceID"] for n in c.catalog.service(name, tag="v1")[1]) == sorted([s1, s2])
    assert sorted(n["ServiceID"] for n in c.catalog.service(name)[1]) == sorted([s1, s2, s3, s4])

    # A bexpr filter on the health entries and on the catalog instances.
    _, entries = c.health.service(name, filter_expr='"replica" in Service.Tags and Service.Tags contains "v2"')
    assert ids_of(entries) == sorted([s3, s4])
    _, nodes = c.catalog.service(name, filter_expr='"primary" in ServiceTags')
    assert [n["ServiceID"] for n in nodes] == [s1]

    # health/checks lists service checks only.
    assert sorted(by_id(c.health.checks(name)[1])) == sorted(f"service:{s}" for s in (s1, s2, s3, s4))
    for n in (n1, n2, n3, n4):
        c.catalog.deregister(n)


def test_health_state(c):
    node = uid("state")
    c.catalog.register(node, "10.6.6.6", check={"Node": node, "CheckID": "p", "Name": "p", "Status": "passing"})
    c.catalog.register(node, "10.6.6.6", check={"Node": node, "CheckID": "w", "Name": "w", "Status": "warning"})
    c.catalog.register(node, "10.6.6.6", check={"Node": node, "CheckID": "x", "Name": "x", "Status": "critical"})

    def mine(state):
        index, checks = c.health.state(state)
        assert int(index) > 0
        assert all(ch["Status"] == state for ch in checks) or state == "any"
        return sorted(ch["CheckID"] for ch in checks if ch["Node"] == node)

    assert mine("passing") == ["p"]
    assert mine("warning") == ["w"]
    assert mine("critical") == ["x"]
    assert mine("any") == ["p", "w", "x"]
    c.catalog.deregister(node)
    assert mine("any") == []


# ----------------------------------------------------------------------------- blocking queries

def test_health_service_blocking_wakes_when_instance_added(c):
    name = uid("blk")
    c.agent.service.register(name, service_id=name + "-1")
    index, entries = c.health.service(name)
    assert ids_of(entries) == [name + "-1"]

    w = Watcher(lambda: c.health.service(name, index=index, wait="10s"))
    time.sleep(0.5)
    assert w.is_alive(), "the blocking query returned before anything changed"
    c.agent.service.register(name, service_id=name + "-2", port=2)
    new_index, entries = w.outcome()
    assert int(new_index) > int(index)
    assert ids_of(entries) == [name + "-1", name + "-2"]
    assert 0.4 <= w.elapsed < 8, w.elapsed

    # And a catalog watcher wakes when one goes away.
    index, _ = c.catalog.service(name)
    w = Watcher(lambda: c.catalog.service(name, index=index, wait="10s"))
    time.sleep(0.3)
    c.agent.service.deregister(name + "-1")
    new_index, nodes = w.outcome()
    assert int(new_index) > int(index)
    assert [n["ServiceID"] for n in nodes] == [name + "-2"]
    c.agent.service.deregister(name + "-2")


def test_health_service_passing_blocking_wakes_when_check_passes(c):
    name, sid = uid("blkpass"), uid("blkpass-1")
    c.agent.service.register(name, service_id=sid, check=Check.ttl("60s"))
    index, entries = c.health.service(name, passing=True)
    assert entries == []
    w = Watcher(lambda: c.health.service(name, passing=True, index=index, wait="10s"))
    time.sleep(0.5)
    assert w.is_alive()
    c.agent.check.ttl_pass(f"service:{sid}")
    new_index, entries = w.outcome()
    assert int(new_index) > int(index)
    assert ids_of(entries) == [sid]
    c.agent.service.deregister(sid)


def test_catalog_services_blocking_wakes_on_new_service(c):
    index, services = c.catalog.services()
    name, node = uid("blkcat"), uid("blkcat-node")
    assert name not in services
    w = Watcher(lambda: c.catalog.services(index=index, wait="10s"))
    time.sleep(0.3)
    c.catalog.register(node, "10.7.7.7", service={"Service": name, "Tags": ["t"]})
    new_index, services = w.outcome()
    assert int(new_index) > int(index)
    assert services[name] == ["t"]
    c.catalog.deregister(node)


def test_health_service_blocking_times_out_with_same_index(c):
    name = uid("blkto")
    c.agent.service.register(name, service_id=name + "-1")
    index, entries = c.health.service(name)
    t0 = time.monotonic()
    new_index, again = c.health.service(name, index=index, wait="1s")
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 4, elapsed
    assert new_index == index
    assert ids_of(again) == ids_of(entries)
    c.agent.service.deregister(name + "-1")
