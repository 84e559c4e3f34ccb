"""Anti-entropy, persistence and check-bound sessions, against real agents.

The agent's local services and checks are the truth: a full sync (every `ae_interval`, set to
1 s here) undoes whatever was changed behind its back through the catalog API. Registrations
made through the API survive a restart (and a kill -9) of a durable agent. A check that turns
critical invalidates the sessions bound to it, releasing their locks.
"""

import http.server
import threading
import time

import pytest

from conftest import Agent

FAST_AE = ["-hcl", 'ae_interval = "1s"']


def node_name(agent):
    return agent.get("/v1/agent/self").json()["Config"]["NodeName"]


def wait_for(predicate, timeout=8.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


def catalog_ids(agent, service):
    return sorted(e["ServiceID"] for e in agent.get(f"/v1/catalog/service/{service}").json())


def register(agent, body, **params):
    r = agent.put("/v1/agent/service/register", json=body, params=params)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def fast():
    a = Agent(["-dev", *FAST_AE])
    yield a
    a.stop()


def test_a_service_deleted_through_the_catalog_comes_back(fast):
    register(fast, {"Name": "ae-web", "ID": "ae-web-1", "Port": 80})
    assert catalog_ids(fast, "ae-web") == ["ae-web-1"]
    r = fast.put("/v1/catalog/deregister", json={"Node": node_name(fast), "ServiceID": "ae-web-1"})
    assert r.status_code == 200 and r.json() is True
    assert catalog_ids(fast, "ae-web") == []
    wait_for(lambda: catalog_ids(fast, "ae-web") == ["ae-web-1"], what="service restored")


def test_a_foreign_service_on_the_agents_node_is_removed(fast):
    r = fast.put("/v1/catalog/register", json={
        "Node": node_name(fast), "Address": "127.0.0.1",
        "Service": {"Service": "ae-stranger", "ID": "ae-stranger"},
    })
    assert r.status_code == 200
    assert catalog_ids(fast, "ae-stranger") == ["ae-stranger"]
    wait_for(lambda: catalog_ids(fast, "ae-stranger") == [], what="stranger removed")
    # The agent's own node record and serfHealth are not touched by that cleanup.
    checks = {c["CheckID"]: c for c in fast.get(f"/v1/health/node/{node_name(fast)}").json()}
    assert checks["serfHealth"]["Status"] == "passing"


def test_a_check_status_overwritten_in_the_catalog_is_restored(fast):
    register(fast, {"Name": "ae-ttl", "ID": "ae-ttl", "Check": {"CheckID": "ae-ttl-c", "TTL": "60s"}})
    assert fast.put("/v1/agent/check/pass/ae-ttl-c", params={"note": "fine"}).status_code == 200

    def catalog_status():
        checks = fast.get("/v1/health/checks/ae-ttl").json()
        return [(c["CheckID"], c["Status"], c["Output"]) for c in checks]

    assert catalog_status() == [("ae-ttl-c", "passing", "fine")]
    r = fast.put("/v1/catalog/register", json={
        "Node": node_name(fast), "Address": "127.0.0.1", "SkipNodeUpdate": True,
        "Check": {"CheckID": "ae-ttl-c", "Name": "x", "Status": "critical", "ServiceID": "ae-ttl"},
    })
    assert r.status_code == 200, r.text
    assert catalog_status()[0][1] == "critical"
    wait_for(lambda: catalog_status() == [("ae-ttl-c", "passing", "fine")], what="status restored")


def test_a_deregistered_node_comes_back_whole(fast):
    register(fast, {"Name": "ae-whole", "ID": "ae-whole"})
    name = node_name(fast)
    assert fast.put("/v1/catalog/deregister", json={"Node": name}).status_code == 200
    wait_for(lambda: catalog_ids(fast, "ae-whole") == ["ae-whole"], what="services back")
    wait_for(lambda: any(c["CheckID"] == "serfHealth"
                         for c in fast.get(f"/v1/health/node/{name}").json()),
             what="serfHealth back")


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        body = f"hit {type(self).hits}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_output_only_changes_wait_for_check_update_interval():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    a = Agent(["-dev", "-hcl", 'check_update_interval = "30s"'])
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/"
        register(a, {"Name": "ae-out", "Check": {"CheckID": "ae-out-c", "HTTP": url,
                                                  "Interval": "1s"}})

        def local_output():
            return a.get("/v1/agent/checks").json()["ae-out-c"]["Output"]

        def catalog_check():
            return a.get("/v1/health/checks/ae-out").json()[0]

        # The first result changes the status (critical → passing): synced at once.
        wait_for(lambda: catalog_check()["Status"] == "passing", what="passing in catalog")
        first = catalog_check()["Output"]
        # Later results only change the output: the agent has them, the catalog waits.
        wait_for(lambda: local_output() != first and "hit" in local_output(),
                 what="a newer output locally")
        time.sleep(1.5)
        assert catalog_check()["Output"] == first
        assert local_output() != first
    finally:
        a.stop()
        srv.shutdown()


def test_a_failing_check_invalidates_its_sessions_and_releases_their_locks(fast):
    register(fast, {"Name": "ae-locked", "ID": "ae-locked",
                    "Check": {"CheckID": "ae-lock-c", "TTL": "60s"}})
    assert fast.put("/v1/agent/check/pass/ae-lock-c").status_code == 200
    r = fast.put("/v1/session/create", json={
        "Name": "bound", "ServiceChecks": [{"ID": "ae-lock-c"}], "LockDelay": "0s"})
    assert r.status_code == 200, r.text
    sid = r.json()["ID"]
    assert fast.put("/v1/kv/ae/leader", params={"acquire": sid}, data=b"me").json() is True
    assert fast.get("/v1/kv/ae/leader").json()[0]["Session"] == sid

    # Warning does not invalidate.
    assert fast.put("/v1/agent/check/warn/ae-lock-c").status_code == 200
    assert fast.get(f"/v1/session/info/{sid}").json()
    # Critical does: the session goes and its lock is released, the key stays.
    assert fast.put("/v1/agent/check/fail/ae-lock-c", params={"note": "down"}).status_code == 200
    wait_for(lambda: not fast.get(f"/v1/session/info/{sid}").json(), what="session gone")
    entry = fast.get("/v1/kv/ae/leader").json()[0]
    assert "Session" not in entry or entry["Session"] in (None, "")
    # A session cannot be bound to a critical check.
    r = fast.put("/v1/session/create", json={"ServiceChecks": [{"ID": "ae-lock-c"}]})
    assert r.status_code == 500 and "critical" in r.text, r.text


def test_deregistering_the_check_invalidates_its_sessions(fast):
    register(fast, {"Name": "ae-gone", "ID": "ae-gone", "Check": {"CheckID": "ae-gone-c",
                                                                  "TTL": "60s",
                                                                  "Status": "passing"}})
    sid = fast.put("/v1/session/create", json={"ServiceChecks": [{"ID": "ae-gone-c"}]}).json()["ID"]
    assert fast.put("/v1/agent/service/deregister/ae-gone").status_code == 200
    wait_for(lambda: not fast.get(f"/v1/session/info/{sid}").json(), what="session gone")


@pytest.mark.parametrize("how", ["restart", "kill9"])
def test_api_registrations_survive_a_restart(server_factory, how):
    a = server_factory()
    register(a, {"Name": "keep", "ID": "keep-1", "Port": 7000, "Tags": ["v1"],
                 "Check": {"CheckID": "keep-ttl", "TTL": "60s", "Status": "passing"}})
    r = a.put("/v1/agent/check/register", json={"Name": "node-level", "TTL": "60s"})
    assert r.status_code == 200, r.text
    assert a.put("/v1/agent/maintenance", params={"enable": "true", "reason": "upgrading"}).status_code == 200
    register(a, {"Name": "drop", "ID": "drop-1"})
    assert a.put("/v1/agent/service/deregister/drop-1").status_code == 200

    if how == "kill9":
        a.kill9()
        a.log.close()
        a.start()
    else:
        a.restart()

    services = a.get("/v1/agent/services").json()
    assert set(services) == {"keep-1"}
    assert services["keep-1"]["Port"] == 7000 and services["keep-1"]["Tags"] == ["v1"]
    checks = a.get("/v1/agent/checks").json()
    assert {"keep-ttl", "node-level", "_node_maintenance"} <= set(checks)
    assert checks["_node_maintenance"]["Notes"] == "upgrading"
    # The first full sync keeps them in the catalog (an unknown service would be removed).
    wait_for(lambda: catalog_ids(a, "keep") == ["keep-1"], what="keep-1 in the catalog")
    assert catalog_ids(a, "drop") == []
