"""The agent's check endpoints and check runners, asserted against Consul through the binary.

References (Consul source, read not copied):
  * agent/agent_endpoint.go: AgentChecks (map id -> structs.HealthCheck, ServiceTags never
    null), AgentRegisterCheck (400 "Missing check name", "Bad check status",
    "Invalid check: <msg>"; 404 `ServiceID "<id>" does not exist`; success 200 empty),
    AgentDeregisterCheck (404 `Unknown check ID "<id>". Ensure that the check ID is passed, not
    the check name.`), AgentCheckPass/Warn/Fail (?note -> Output), AgentCheckUpdate (strict
    body {Status, Output}: unknown field -> 400 `Request decode failed: json: unknown field
    "X"`, bad status -> 400 "Invalid check status: '<s>'"), agentCheckUpdate -> updateTTLCheck
    (500 `CheckID "<id>" does not have associated TTL`).
  * agent/structs/check_definition.go (ID defaults to Name), agent/structs/check_type.go
    (Validate texts).
  * agent/checks/check.go: CheckTTL (expiry -> critical "TTL expired"), CheckHTTP (2xx passing,
    else critical; Output "HTTP GET <url>: 200 OK Output: <body>"), CheckTCP, CheckMonitor (exit
    0 passing, 1 warning, else critical), StatusHandler (success_before_passing,
    failures_before_critical).
  * agent/agent.go: script checks refused from the API unless enable_script_checks.
"""
import http.server
import json
import socket
import threading
import time
import uuid

import pytest

from conftest import Agent


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def checks(agent):
    r = agent.get("/v1/agent/checks")
    assert r.status_code == 200, r.text
    return r.json()


def register_check(agent, body):
    r = agent.put("/v1/agent/check/register", data=json.dumps(body))
    assert (r.status_code, r.text) == (200, ""), f"{r.status_code} {r.text}"
    assert "Content-Type" not in r.headers


def put_err(agent, path, status, text, **kw):
    r = agent.put(path, **kw)
    assert (r.status_code, r.text) == (status, text), f"{r.status_code} {r.text!r}"


def wait_status(agent, cid, want, timeout=10.0):
    """Polls /v1/agent/checks until check `cid` has status `want`; returns the check."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = checks(agent).get(cid)
        if last and last["Status"] == want:
            return last
        time.sleep(0.1)
    pytest.fail(f"check {cid} is {last}, want {want}:\n{agent.output()}")


@pytest.fixture
def scripts_agent():
    a = Agent(["-dev", "-hcl", "enable_script_checks = true"])
    yield a
    a.stop()


@pytest.fixture
def http_target():
    """A local HTTP server answering 200 "ok"; yields (url, stop)."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    stopped = []

    def stop():
        if not stopped:
            stopped.append(True)
            srv.shutdown()
            srv.server_close()

    yield f"http://127.0.0.1:{srv.server_address[1]}/health", stop
    stop()


@pytest.fixture
def tcp_target():
    """A TCP listener accepting (and closing) connections; yields (addr, stop)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    running = [True]

    def serve():
        while running[0]:
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()

    def stop():
        if running[0]:
            running[0] = False
            sock.close()

    yield f"127.0.0.1:{sock.getsockname()[1]}", stop
    stop()


# ---------------------------------------------------------------------------- register / list

def test_register_defaults_and_shape(agent):
    name = uid("mem")
    register_check(agent, {"Name": name, "TTL": "30s", "Notes": "watch it"})
    c = checks(agent)[name]  # ID defaults to the name
    node = agent.get("/v1/agent/self").json()["Config"]["NodeName"]
    assert c == {
        "Node": node, "CheckID": name, "Name": name, "Status": "critical", "Notes": "watch it",
        "Output": "", "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "ttl",
        "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": c["Definition"],
        "CreateIndex": c["CreateIndex"], "ModifyIndex": c["ModifyIndex"],
    }, c
    assert isinstance(c["Definition"], dict)
    r = agent.put(f"/v1/agent/check/deregister/{name}")
    assert (r.status_code, r.text) == (200, "")
    assert name not in checks(agent)
    put_err(agent, f"/v1/agent/check/deregister/{name}", 404,
            f'Unknown check ID "{name}". Ensure that the check ID is passed, not the check name.')


def test_pyconsul_style_check_bodies(agent):
    sid = uid("svc")
    assert agent.put("/v1/agent/service/register", json={"name": sid}).status_code == 200
    cid = uid("chk")
    # What py-consul's agent.check.register sends: lower-case keys, "serviceid".
    register_check(agent, {"name": "ttl check", "ttl": "10s", "id": cid, "notes": "n",
                           "serviceid": sid, "status": "warning"})
    c = checks(agent)[cid]
    assert (c["Name"], c["Status"], c["ServiceID"], c["ServiceName"], c["Notes"]) == \
        ("ttl check", "warning", sid, sid, "n")
    agent.put(f"/v1/agent/service/deregister/{sid}")
    assert cid not in checks(agent)


@pytest.mark.parametrize("body,status,text", [
    ("", 400, "Request decode failed: EOF"),
    ('{"TTL": "10s"}', 400, "Missing check name"),
    ('{"Name": "x", "TTL": "10s", "Status": "bad"}', 400, "Bad check status"),
    ('{"Name": "x"}', 400, "Invalid check: TTL must be > 0 for TTL checks"),
    ('{"Name": "x", "HTTP": "http://127.0.0.1:1/"}', 400,
     "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"),
    ('{"Name": "x", "TTL": "10s", "Nope": true}', 400,
     'Request decode failed: json: unknown field "Nope"'),
    ('{"Name": "x", "TTL": "10s", "ServiceID": "no-such-svc"}', 404,
     'ServiceID "no-such-svc" does not exist'),
    ('{"Name": "x", "Args": ["true"], "Interval": "10s"}', 500,
     "Scripts are disabled on this agent from remote calls; to enable, configure "
     "'enable_script_checks' to true"),
])
def test_register_errors_are_consuls(agent, body, status, text):
    put_err(agent, "/v1/agent/check/register", status, text, data=body)


def test_checks_filter(agent):
    a, b = uid("fa"), uid("fb")
    register_check(agent, {"Name": a, "TTL": "30s", "Status": "passing"})
    register_check(agent, {"Name": b, "TTL": "30s"})
    r = agent.get("/v1/agent/checks", params={"filter": f'Status == critical and Name == "{b}"'})
    assert r.status_code == 200 and set(r.json()) == {b}, r.text
    for c in (a, b):
        agent.put(f"/v1/agent/check/deregister/{c}")


# ---------------------------------------------------------------------------- TTL reports

def test_ttl_pass_warn_fail_update(agent):
    cid = uid("ttl")
    register_check(agent, {"Name": cid, "TTL": "30s"})
    for verb, status in (("pass", "passing"), ("warn", "warning"), ("fail", "critical")):
        r = agent.put(f"/v1/agent/check/{verb}/{cid}", params={"note": f"{verb} note"})
        assert (r.status_code, r.text) == (200, ""), r.text
        c = checks(agent)[cid]
        assert (c["Status"], c["Output"]) == (status, f"{verb} note")
    # No note: empty output.
    agent.put(f"/v1/agent/check/pass/{cid}")
    assert checks(agent)[cid]["Output"] == ""

    r = agent.put(f"/v1/agent/check/update/{cid}", json={"Status": "warning", "Output": "slow"})
    assert (r.status_code, r.text) == (200, "")
    assert (checks(agent)[cid]["Status"], checks(agent)[cid]["Output"]) == ("warning", "slow")
    r = agent.put(f"/v1/agent/check/update/{cid}", json={"status": "passing"})
    assert r.status_code == 200 and checks(agent)[cid]["Status"] == "passing"

    put_err(agent, f"/v1/agent/check/update/{cid}", 400, "Invalid check status: 'ok'",
            json={"Status": "ok"})
    put_err(agent, f"/v1/agent/check/update/{cid}", 400, "Invalid check status: ''",
            json={"Output": "x"})
    put_err(agent, f"/v1/agent/check/update/{cid}", 400,
            'Request decode failed: json: unknown field "Note"',
            json={"Status": "passing", "Note": "x"})
    put_err(agent, f"/v1/agent/check/update/{cid}", 400, "Request decode failed: EOF")
    unknown = 'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.'
    for verb in ("pass", "warn", "fail"):
        put_err(agent, f"/v1/agent/check/{verb}/nope", 404, unknown)
    put_err(agent, "/v1/agent/check/update/nope", 404, unknown, json={"Status": "passing"})
    agent.put(f"/v1/agent/check/deregister/{cid}")


def test_reports_on_a_non_ttl_check_are_500(agent, tcp_target):
    addr, _ = tcp_target
    cid = uid("tcp")
    register_check(agent, {"Name": cid, "TCP": addr, "Interval": "10s"})
    put_err(agent, f"/v1/agent/check/pass/{cid}", 500, f'CheckID "{cid}" does not have associated TTL')
    agent.put(f"/v1/agent/check/deregister/{cid}")


def test_long_notes_are_truncated(agent):
    cid = uid("big")
    register_check(agent, {"Name": cid, "TTL": "30s", "OutputMaxSize": 10})
    agent.put(f"/v1/agent/check/pass/{cid}", params={"note": "x" * 25})
    assert checks(agent)[cid]["Output"] == "x" * 10 + " ... (captured 10 of 25 bytes)"
    agent.put(f"/v1/agent/check/deregister/{cid}")


def test_ttl_expires_to_critical(agent):
    cid = uid("exp")
    register_check(agent, {"Name": cid, "TTL": "1s", "Status": "passing"})
    c = wait_status(agent, cid, "critical", timeout=5)
    assert c["Output"] == "TTL expired", c
    # A report revives it, and its output is quoted when it expires again.
    agent.put(f"/v1/agent/check/pass/{cid}", params={"note": "alive"})
    assert checks(agent)[cid]["Status"] == "passing"
    c = wait_status(agent, cid, "critical", timeout=5)
    assert c["Output"] == "TTL expired (last output before timeout follows): alive", c
    agent.put(f"/v1/agent/check/deregister/{cid}")


# ---------------------------------------------------------------------------- probes

def test_http_check_follows_the_server(agent, http_target):
    url, stop = http_target
    sid = uid("hweb")
    r = agent.put("/v1/agent/service/register",
                  json={"Name": sid, "Check": {"HTTP": url, "Interval": "1s"}})
    assert r.status_code == 200, r.text
    c = wait_status(agent, f"service:{sid}", "passing")
    assert c["Output"] == f"HTTP GET {url}: 200 OK Output: ok", c
    assert (c["Type"], c["Interval"]) == ("http", "1s")
    stop()
    wait_status(agent, f"service:{sid}", "critical", timeout=10)
    agent.put(f"/v1/agent/service/deregister/{sid}")


def test_tcp_check_follows_the_listener(agent, tcp_target):
    addr, stop = tcp_target
    cid = uid("tcpc")
    register_check(agent, {"Name": cid, "TCP": addr, "Interval": "1s"})
    c = wait_status(agent, cid, "passing")
    assert c["Type"] == "tcp" and addr in c["Output"], c
    stop()
    wait_status(agent, cid, "critical", timeout=10)
    agent.put(f"/v1/agent/check/deregister/{cid}")


def test_failures_before_critical_and_success_before_passing(agent, tcp_target):
    addr, stop = tcp_target
    cid = uid("thr")
    register_check(agent, {"Name": cid, "TCP": addr, "Interval": "1s",
                           "SuccessBeforePassing": 2, "FailuresBeforeCritical": 3})
    # The counters start at their thresholds: the first result counts at once.
    c = wait_status(agent, cid, "passing", timeout=6)
    stop()
    # Three failed probes (about 3 s) before critical; not critical after the first.
    t0 = time.monotonic()
    deadline = t0 + 12
    seen = []
    while time.monotonic() < deadline:
        s = checks(agent)[cid]["Status"]
        seen.append((round(time.monotonic() - t0, 1), s))
        if s == "critical":
            break
        time.sleep(0.2)
    assert seen[-1][1] == "critical", seen
    assert seen[-1][0] >= 1.5, f"critical too soon: {seen}"
    assert c["Status"] == "passing"
    agent.put(f"/v1/agent/check/deregister/{cid}")


def test_script_checks_run_when_enabled(scripts_agent):
    a = scripts_agent
    ok, warn, bad = uid("s-ok"), uid("s-warn"), uid("s-bad")
    register_check(a, {"Name": ok, "Args": ["sh", "-c", "echo fine"], "Interval": "1s"})
    register_check(a, {"Name": warn, "args": ["sh", "-c", "exit 1"], "interval": "1s"})
    register_check(a, {"Name": bad, "ScriptArgs": ["sh", "-c", "echo broken; exit 2"],
                       "Interval": "1s", "Status": "passing"})
    c = wait_status(a, ok, "passing")
    assert c["Type"] == "script" and "fine" in c["Output"], c
    wait_status(a, warn, "warning")
    c = wait_status(a, bad, "critical")
    assert "broken" in c["Output"], c
    # And through a service definition.
    r = a.put("/v1/agent/service/register",
              json={"Name": "scripted", "Check": {"Args": ["true"], "Interval": "1s"}})
    assert r.status_code == 200, r.text
    wait_status(a, "service:scripted", "passing")
