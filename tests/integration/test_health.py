"""Health HTTP API (`/v1/health/*`), asserted against Consul's behaviour.

References (Consul source, read not copied; texts collected in /tmp/consul-ref/health.md):
  * agent/health_endpoint.go        - "Missing node name" / "Missing service name" /
                                      "Missing check state" (400); `[]` instead of null; ServiceTags
                                      and Service.Tags forced to []; `?passing` parsed with
                                      strconv.ParseBool *after* the read ("Invalid value for
                                      ?passing", 400, query headers already set); filterNonPassing
                                      drops an instance with any check not passing (warning too)
  * agent/consul/health_endpoint.go - ChecksInState does not validate the state: an unknown one
                                      matches nothing (200 [])
  * agent/consul/state/catalog.go   - node checks first, then the instance's; checks of a service
                                      exclude node-level checks
"""
import json
import threading
import time
import uuid

import pytest
import requests

CHECK_KEYS = ["Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName",
              "ServiceTags", "Type", "Interval", "Timeout", "ExposedPort", "Definition",
              "CreateIndex", "ModifyIndex"]


def uniq(tag):
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def register(agent, body):
    r = agent.put("/v1/catalog/register", data=json.dumps(body))
    assert r.status_code == 200, r.text


def get(agent, path, **kw):
    r = agent.get(path, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert int(r.headers["X-Consul-Index"]) >= 1
    return r


def instance(agent, svc, node_status, svc_status, tags=(), meta=None):
    """A node with a node-level check and one instance of `svc` with its own check."""
    node = uniq("n")
    register(agent, {
        "Node": node, "Address": "10.2.0.1", "NodeMeta": meta or {},
        "Service": {"Service": svc, "ID": f"{svc}-{node}", "Tags": list(tags), "Port": 80},
        "Checks": [
            {"CheckID": "node-check", "Status": node_status},
            {"CheckID": "svc-check", "ServiceID": f"{svc}-{node}", "Status": svc_status},
        ],
    })
    return node


# ----------------------------------------------------------------------------- shapes

def test_service_entries_have_node_service_and_checks_node_checks_first(agent):
    svc = uniq("svc")
    node = instance(agent, svc, "passing", "passing", tags=["v1"])
    [entry] = get(agent, f"/v1/health/service/{svc}").json()
    assert list(entry) == ["Node", "Service", "Checks"]
    assert entry["Node"]["Node"] == node
    assert entry["Service"]["Tags"] == ["v1"] and entry["Service"]["Meta"] is None
    assert [c["CheckID"] for c in entry["Checks"]] == ["node-check", "svc-check"]
    for c in entry["Checks"]:
        assert list(c) == CHECK_KEYS
    node_check, svc_check = entry["Checks"]
    assert (node_check["ServiceID"], node_check["ServiceTags"]) == ("", [])
    assert (svc_check["ServiceName"], svc_check["ServiceTags"]) == (svc, ["v1"])
    assert svc_check["Definition"] == {}


def test_node_checks_and_service_checks(agent):
    svc = uniq("svc")
    node = instance(agent, svc, "warning", "passing")
    checks = get(agent, f"/v1/health/node/{node}").json()
    assert [c["CheckID"] for c in checks] == ["node-check", "svc-check"]
    # The service's checks exclude node-level ones.
    checks = get(agent, f"/v1/health/checks/{svc}").json()
    assert [c["CheckID"] for c in checks] == ["svc-check"]
    assert get(agent, f"/v1/health/node/{uniq('nope')}").json() == []
    assert get(agent, f"/v1/health/checks/{uniq('nope')}").json() == []
    assert get(agent, f"/v1/health/service/{uniq('nope')}").json() == []


def test_the_agents_own_node_has_serf_health(agent):
    me = agent.get("/v1/agent/self").json()["Config"]["NodeName"]
    [serf] = [c for c in get(agent, f"/v1/health/node/{me}").json() if c["CheckID"] == "serfHealth"]
    assert (serf["Name"], serf["Status"], serf["Output"]) == (
        "Serf Health Status", "passing", "Agent alive and reachable")


# ----------------------------------------------------------------------------- passing / tags / meta

def test_passing_drops_instances_with_any_non_passing_check_warning_included(agent):
    svc = uniq("svc")
    good = instance(agent, svc, "passing", "passing")
    instance(agent, svc, "passing", "warning")
    instance(agent, svc, "critical", "passing")
    path = f"/v1/health/service/{svc}"
    assert len(get(agent, path).json()) == 3
    for q in ["passing", "passing=", "passing=true", "passing=1", "passing=T"]:
        rows = get(agent, f"{path}?{q}").json()
        assert [e["Node"]["Node"] for e in rows] == [good], q
    for q in ["passing=false", "passing=0", "passing=F"]:
        assert len(get(agent, f"{path}?{q}").json()) == 3, q


def test_a_bad_passing_value_is_400_after_the_read(agent):
    r = agent.get(f"/v1/health/service/{uniq('svc')}?passing=yes")
    assert (r.status_code, r.text) == (400, "Invalid value for ?passing")
    assert int(r.headers["X-Consul-Index"]) >= 1
    assert r.headers["X-Consul-KnownLeader"] == "true"


def test_tags_must_all_match_ignoring_case(agent):
    svc = uniq("svc")
    both = instance(agent, svc, "passing", "passing", tags=["Blue", "v2"])
    instance(agent, svc, "passing", "passing", tags=["v2"])
    path = f"/v1/health/service/{svc}"
    assert len(get(agent, path + "?tag=v2").json()) == 2
    rows = get(agent, path + "?tag=blue&tag=V2").json()
    assert [e["Node"]["Node"] for e in rows] == [both]


def test_node_meta_filters(agent):
    svc, rack = uniq("svc"), uniq("rack")
    node = instance(agent, svc, "passing", "critical", meta={"rack": rack})
    instance(agent, svc, "passing", "critical")
    rows = get(agent, f"/v1/health/service/{svc}", params={"node-meta": f"rack:{rack}"}).json()
    assert [e["Node"]["Node"] for e in rows] == [node]
    rows = get(agent, f"/v1/health/checks/{svc}", params={"node-meta": f"rack:{rack}"}).json()
    assert [c["Node"] for c in rows] == [node]
    rows = get(agent, "/v1/health/state/critical", params={"node-meta": f"rack:{rack}"}).json()
    assert [c["Node"] for c in rows] == [node]


def test_filter_on_entries_and_checks(agent):
    svc = uniq("svc")
    node = instance(agent, svc, "passing", "passing", tags=["x"])
    instance(agent, svc, "passing", "passing")
    rows = get(agent, f"/v1/health/service/{svc}",
               params={"filter": '"x" in Service.Tags'}).json()
    assert [e["Node"]["Node"] for e in rows] == [node]
    rows = get(agent, f"/v1/health/node/{node}", params={"filter": 'CheckID == "svc-check"'}).json()
    assert [c["CheckID"] for c in rows] == ["svc-check"]
    for path in [f"/v1/health/service/{svc}", f"/v1/health/node/{node}",
                 f"/v1/health/checks/{svc}", "/v1/health/state/any"]:
        r = agent.get(path, params={"filter": "Bogus == 1"})
        assert r.status_code == 400, (path, r.text)
        assert r.text.startswith("Failed to create boolean expression evaluator: ")


# ----------------------------------------------------------------------------- state

def test_state_lists_checks_by_status(agent):
    svc = uniq("svc")
    node = instance(agent, svc, "warning", "critical")
    mine = lambda rows: sorted(c["CheckID"] for c in rows if c["Node"] == node)  # noqa: E731
    assert mine(get(agent, "/v1/health/state/any").json()) == ["node-check", "svc-check"]
    assert mine(get(agent, "/v1/health/state/warning").json()) == ["node-check"]
    assert mine(get(agent, "/v1/health/state/critical").json()) == ["svc-check"]
    assert mine(get(agent, "/v1/health/state/passing").json()) == []


def test_state_validation_is_consuls(agent):
    r = agent.get("/v1/health/state/")
    assert (r.status_code, r.text) == (400, "Missing check state")
    # Consul does not validate the state: an unknown one matches nothing.
    r = get(agent, "/v1/health/state/bogus")
    assert r.json() == []


@pytest.mark.parametrize("path,text", [
    ("/v1/health/node/", "Missing node name"),
    ("/v1/health/checks/", "Missing service name"),
    ("/v1/health/service/", "Missing service name"),
])
def test_missing_names_are_400(agent, path, text):
    r = agent.get(path)
    assert (r.status_code, r.text) == (400, text)


@pytest.mark.parametrize("path", ["/v1/health/node/n", "/v1/health/checks/s",
                                  "/v1/health/state/any", "/v1/health/service/s"])
def test_health_endpoints_are_get_only(agent, path):
    r = requests.put(agent.url + path, timeout=10)
    assert (r.status_code, r.headers["Allow"]) == (405, "OPTIONS,GET")


# ----------------------------------------------------------------------------- blocking

def blocked(agent, path, idx, out):
    def run():
        out.append(agent.get(path, params={"index": idx, "wait": "10s"}, timeout=30))
    t = threading.Thread(target=run)
    t.start()
    return t


def test_health_service_wakes_on_its_checks_only(agent):
    svc, other = uniq("svc"), uniq("other")
    node = instance(agent, svc, "passing", "passing")
    instance(agent, other, "passing", "passing")
    r = get(agent, f"/v1/health/service/{svc}?passing")
    idx = int(r.headers["X-Consul-Index"])
    out = []
    t = blocked(agent, f"/v1/health/service/{svc}?passing", idx, out)
    time.sleep(0.3)
    # Another service's check flaps: no wake-up.
    register(agent, {"Node": uniq("n"), "Address": "10.2.0.9",
                     "Service": {"Service": other}})
    t.join(1.0)
    assert t.is_alive(), "woke for another service"
    register(agent, {"Node": node, "Address": "10.2.0.1",
                     "Check": {"CheckID": "svc-check", "ServiceID": f"{svc}-{node}",
                               "Status": "critical"}})
    t.join(5)
    assert not t.is_alive()
    assert out[0].json() == []  # no longer passing
    assert int(out[0].headers["X-Consul-Index"]) > idx


def test_health_node_wakes_on_a_check_of_the_node(agent):
    svc = uniq("svc")
    node = instance(agent, svc, "passing", "passing")
    idx = int(get(agent, f"/v1/health/node/{node}").headers["X-Consul-Index"])
    out = []
    t = blocked(agent, f"/v1/health/node/{node}", idx, out)
    time.sleep(0.3)
    register(agent, {"Node": node, "Address": "10.2.0.1",
                     "Check": {"CheckID": "node-check", "Status": "warning"}})
    t.join(5)
    assert not t.is_alive()
    statuses = {c["CheckID"]: c["Status"] for c in out[0].json()}
    assert statuses["node-check"] == "warning"
