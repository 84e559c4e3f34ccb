"""Service and check definitions in agent configuration files, through the real binary.

A `-dev` agent registers the `service`/`services`/`check`/`checks` blocks of its files at start,
replaces them on reload (SIGHUP or `PUT /v1/agent/reload`), keeps the running ones when the new
files are bad, and refuses to start with a bad definition.

The agent logs `registered the configured services and checks services=N checks=M` each time it
hands the configuration's definitions over; the tests assert that line as well as what
`/v1/agent/services`, `/v1/agent/checks` and `/v1/catalog/service/<name>` answer.
"""
import http.server
import json
import re
import signal
import threading
import time

import pytest

from conftest import Agent, free_port
from test_config import run_agent, wait_for_output


@pytest.fixture
def started():
    agents = []

    def start(args, env=None):
        a = Agent(args, env=env)
        agents.append(a)
        return a

    yield start
    for a in agents:
        a.stop()


@pytest.fixture
def health_server():
    """A local HTTP server answering 200 on every GET, for HTTP checks; yields its URL."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/health"
    srv.shutdown()
    srv.server_close()


def registered_counts(agent):
    """(services, checks) of every 'registered the configured services' log line, in order."""
    return [(int(s), int(c)) for s, c in re.findall(
        r"registered the configured services and checks services=(\d+) checks=(\d+)",
        agent.output())]


def wait_for_registrations(agent, n, timeout=10.0):
    """Waits until the agent has logged its n-th registration; returns the n-th counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = registered_counts(agent)
        if len(counts) >= n:
            return counts[n - 1]
        time.sleep(0.05)
    pytest.fail(f"fewer than {n} registrations logged:\n{agent.output()}")


def wait_for_services(agent, want, timeout=10.0):
    """Waits until /v1/agent/services holds exactly the IDs `want`; returns the body."""
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        r = agent.get("/v1/agent/services")
        assert r.status_code == 200, r.text
        body = r.json()
        if set(body) == set(want):
            return body
        time.sleep(0.1)
    pytest.fail(f"/v1/agent/services is {body}, want {sorted(want)}:\n{agent.output()}")


def wait_until(agent, path, pred, what, timeout=10.0):
    """Polls GET `path` until `pred(json)` holds; returns the JSON."""
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        r = agent.get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        if pred(body):
            return body
        time.sleep(0.1)
    pytest.fail(f"{path}: {what} never held (last: {body}):\n{agent.output()}")


def catalog_service(agent, name):
    """The /v1/catalog/service/<name> entries once anti-entropy has put any there."""
    return wait_until(agent, f"/v1/catalog/service/{name}", bool, f"{name} in the catalog")


def sighup(agent):
    agent.proc.send_signal(signal.SIGHUP)


def test_config_dir_services_are_registered(tmp_path, started, health_server):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "web.hcl").write_text(f"""
service {{
  name = "web"
  port = 8080
  tags = ["v1"]
  check {{
    http     = "{health_server}"
    interval = "1s"
  }}
}}
""")
    (d / "db.json").write_text(json.dumps({
        "services": [{"name": "db", "id": "db-1", "port": 5432,
                      "checks": [{"ttl": "30s", "name": "db ttl"}]}],
        "check": {"id": "node-mem", "name": "Memory", "ttl": "1m"},
    }))
    a = started(["-dev", "-config-dir", str(d)])
    assert wait_for_registrations(a, 1) == (2, 1), a.output()

    body = wait_for_services(a, {"web", "db-1"})
    assert body["web"]["Service"] == "web" and body["web"]["Port"] == 8080, body
    assert body["web"]["Tags"] == ["v1"], body
    assert body["db-1"]["Service"] == "db" and body["db-1"]["Port"] == 5432, body

    entries = catalog_service(a, "web")
    assert [e["ServiceID"] for e in entries] == ["web"], entries
    assert entries[0]["ServicePort"] == 8080, entries
    assert [e["ServiceID"] for e in catalog_service(a, "db")] == ["db-1"]

    # The HTTP check runs against the local server and passes; the TTL checks wait, critical.
    checks = wait_until(a, "/v1/agent/checks",
                        lambda b: b.get("service:web", {}).get("Status") == "passing",
                        "the web HTTP check passing")
    assert checks["service:web"]["ServiceID"] == "web", checks
    assert checks["service:db-1"]["Status"] == "critical", checks
    assert checks["node-mem"]["Name"] == "Memory" and checks["node-mem"]["ServiceID"] == "", checks


def test_sighup_adds_and_removes_services(tmp_path, started):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "a.hcl").write_text('service {\n  name = "a"\n}\n')
    a = started(["-dev", "-config-dir", str(d)])
    assert wait_for_registrations(a, 1) == (1, 0), a.output()
    wait_for_services(a, {"a"})

    # An API registration is not the configuration's: a reload leaves it alone.
    r = a.put("/v1/agent/service/register", json={"Name": "from-api"})
    assert r.status_code == 200, r.text

    (d / "a.hcl").unlink()
    (d / "b.json").write_text(json.dumps({"service": {"name": "b", "port": 9}}))
    (d / "c.hcl").write_text('services {\n  name = "c"\n}\nservices {\n  name = "d"\n}\n')
    sighup(a)
    assert wait_for_registrations(a, 2) == (3, 0), a.output()
    wait_for_output(a, "configuration reloaded")
    body = wait_for_services(a, {"b", "c", "d", "from-api"})
    assert body["b"]["Port"] == 9, body
    wait_until(a, "/v1/catalog/service/a", lambda e: e == [], "a gone from the catalog")

    # Removing every file removes every configured service.
    for f in d.iterdir():
        f.unlink()
    sighup(a)
    assert wait_for_registrations(a, 3) == (0, 0), a.output()
    wait_for_services(a, {"from-api"})


def test_put_agent_reload_applies_new_definitions(tmp_path, started):
    f = tmp_path / "svc.json"
    f.write_text(json.dumps({"service": {"name": "one"}}))
    a = started(["-dev", "-config-file", str(f)])
    wait_for_registrations(a, 1)
    f.write_text(json.dumps({"service": {"name": "two"}}))
    r = a.put("/v1/agent/reload")
    assert r.status_code == 200, r.text
    assert wait_for_registrations(a, 2) == (1, 0), a.output()
    wait_for_services(a, {"two"})


def test_lotse_reload_command_applies_new_definitions(tmp_path, started):
    f = tmp_path / "svc.json"
    f.write_text(json.dumps({"service": {"name": "first"}}))
    a = started(["-dev", "-config-file", str(f)])
    wait_for_registrations(a, 1)
    f.write_text(json.dumps({"service": {"name": "second"}}))
    p = a.cli("reload")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == "Configuration reload triggered\n"
    wait_for_services(a, {"second"})
    # A file the agent refuses: the command fails with the agent's reason.
    f.write_text('{"service": {"name": ')
    p = a.cli("reload")
    assert p.returncode == 1
    assert p.stderr.decode().startswith("Error reloading: ") and str(f) in p.stderr.decode()
    wait_for_services(a, {"second"})


def test_bad_file_on_reload_keeps_the_running_services(tmp_path, started):
    f = tmp_path / "svc.hcl"
    f.write_text('service {\n  name = "keep"\n  port = 1\n}\n')
    a = started(["-dev", "-config-file", str(f)])
    assert wait_for_registrations(a, 1) == (1, 0), a.output()

    # A definition the decoder refuses: the error names the file and the service.
    f.write_text('service {\n  name = "broken"\n  check {\n    http = "http://127.0.0.1:1/"\n  }\n}\n')
    sighup(a)
    out = wait_for_output(a, "reload failed")
    assert f'service \\"broken\\" in {f}' in out or f'service "broken" in {f}' in out, out
    assert "Interval must be > 0" in out, out

    # A syntax error is refused the same way.
    f.write_text('service {\n  name = \n}\n')
    sighup(a)
    deadline = time.monotonic() + 10
    while a.output().count("reload failed") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert a.output().count("reload failed") == 2, a.output()

    assert len(registered_counts(a)) == 1, a.output()
    assert a.proc.poll() is None, "the agent must keep running"
    body = wait_for_services(a, {"keep"})
    assert body["keep"]["Port"] == 1, body

    # PUT /v1/agent/reload answers the reason, and keeps the running services too.
    r = a.put("/v1/agent/reload")
    assert r.status_code == 500, r.text
    assert str(f) in r.text, r.text
    wait_for_services(a, {"keep"})


def test_bad_definition_at_start_stops_the_agent(tmp_path):
    f = tmp_path / "web.json"
    f.write_text(json.dumps({"service": {"name": "web", "check": {"notes": "no kind"}}}))
    code, out = run_agent(["-dev", "-http-port", str(free_port()), "-config-file", str(f)])
    assert code != 0, out
    assert f'config: service "web" in {f}: ' in out, out
    assert "TTL must be > 0 for TTL checks" in out, out


def test_script_check_needs_local_script_checks_enabled(tmp_path, started):
    f = tmp_path / "script.hcl"
    f.write_text('service {\n  name = "s"\n  check {\n    args     = ["/bin/true"]\n'
                 '    interval = "10s"\n  }\n}\n')
    code, out = run_agent(["-dev", "-http-port", str(free_port()), "-config-file", str(f)])
    assert code != 0, out
    assert "Scripts are disabled on this agent" in out, out
    # With local script checks allowed, the same file starts.
    a = started(["-dev", "-config-file", str(f), "-enable-local-script-checks"])
    assert wait_for_registrations(a, 1) == (1, 0), a.output()


def test_anti_entropy_timing_keys(tmp_path, started):
    f = tmp_path / "ae.hcl"
    f.write_text('ae_interval = "0s"\n')
    code, out = run_agent(["-dev", "-http-port", str(free_port()), "-config-file", str(f)])
    assert code != 0, out
    assert "ae_interval cannot be 0s. Must be positive" in out, out
    f.write_text('ae_interval = "10s"\ncheck_update_interval = "0s"\n'
                 'check_reap_interval = "5s"\n')
    a = started(["-dev", "-config-file", str(f)])
    wait_for_registrations(a, 1)
    assert "not implemented" not in a.output(), a.output()
