"""Catalog HTTP API (`/v1/catalog/*`), asserted against Consul's behaviour.

References (Consul source, read not copied; the exact texts are collected in
/tmp/consul-ref/catalog.md when this was written):
  * agent/catalog_endpoint.go         - handlers: "Missing node name" / "Missing service name" (400),
                                        `[]`/`{}` instead of null, ServiceTags forced to [], unknown
                                        node -> `null` (catalog/node) or {"Node":null,"Services":null}
  * agent/consul/catalog_endpoint.go  - Catalog.Register checks, in order: PeerName, node, node ID
                                        (go-uuid texts), address, servicePreApply (ID defaults to the
                                        name), checks (CheckID defaults to Name, Type from the
                                        definition), vetRegisterWithACL texts; all 500s
  * agent/consul/state/catalog.go     - idempotent registration, cascading deregistration, critical
                                        default status, per-service indexes
  * agent/structs/structs.go          - Node, ServiceNode, NodeService, HealthCheck field order and
                                        omitempty
  * agent/http.go                     - "Request decode failed: ..." (400), 405 + Allow, X-Consul-*
The `-dev` agent registers its own node (with `serfHealth`); these tests register other node names
so the agent's anti-entropy leaves them alone.
"""
import json
import threading
import time
import uuid

import pytest

NODE_KEYS = ["ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta", "CreateIndex",
             "ModifyIndex"]
SERVICE_NODE_KEYS = [
    "ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta", "ServiceKind",
    "ServiceID", "ServiceName", "ServiceTags", "ServiceAddress", "ServiceWeights", "ServiceMeta",
    "ServicePort", "ServiceSocketPath", "ServiceEnableTagOverride", "ServiceProxy",
    "ServiceConnect", "ServiceLocality", "CreateIndex", "ModifyIndex",
]
NODE_SERVICE_KEYS = ["ID", "Service", "Tags", "Address", "Meta", "Port", "Weights",
                     "EnableTagOverride", "Proxy", "Connect", "PeerName", "CreateIndex",
                     "ModifyIndex"]
ZERO_PROXY = {"Mode": "", "MeshGateway": {}, "Expose": {}}
NODE_ID = "40e4a748-2192-161a-0510-9bf59fe950b5"


# ----------------------------------------------------------------------------- helpers

def uniq(tag):
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def register(agent, body, status=200):
    r = agent.put("/v1/catalog/register", data=json.dumps(body))
    assert r.status_code == status, (r.status_code, r.text)
    if status == 200:
        assert r.json() is True
    return r


def deregister(agent, body):
    r = agent.put("/v1/catalog/deregister", data=json.dumps(body))
    assert r.status_code == 200, r.text
    assert r.json() is True


def get(agent, path, status=200, **kw):
    r = agent.get(path, **kw)
    assert r.status_code == status, (path, r.status_code, r.text)
    return r


def index(r):
    i = int(r.headers["X-Consul-Index"])
    assert i >= 1
    return i


def node_body(name, **extra):
    body = {"Node": name, "Address": "10.1.0.1"}
    body.update(extra)
    return body


def agent_node(agent):
    return get(agent, "/v1/agent/self").json()["Config"]["NodeName"]


# ----------------------------------------------------------------------------- register / read

def test_register_node_service_and_check_then_read_every_shape(agent):
    node, svc = uniq("n"), uniq("web")
    register(agent, {
        "Datacenter": "dc1", "ID": NODE_ID.replace("40e4", uuid.uuid4().hex[:4]), "Node": node,
        "Address": "10.1.0.2", "TaggedAddresses": {"lan": "10.1.0.2"}, "NodeMeta": {"rack": "r1"},
        "Service": {"Service": svc, "Port": 8080, "Tags": ["v1"], "Meta": {"ver": "1"}},
        "Check": {"Name": "http-check", "ServiceID": svc, "Status": "passing",
                  "Definition": {"HTTP": "http://10.1.0.2:8080/", "Interval": "10s"}},
    })

    r = get(agent, f"/v1/catalog/service/{svc}")
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.headers["X-Consul-Effective-Consistency"] == "leader"
    [row] = r.json()
    assert list(row) == SERVICE_NODE_KEYS
    assert row["Node"] == node and row["Address"] == "10.1.0.2"
    assert row["NodeMeta"] == {"rack": "r1"} and row["TaggedAddresses"] == {"lan": "10.1.0.2"}
    assert (row["ServiceID"], row["ServiceName"], row["ServicePort"]) == (svc, svc, 8080)
    assert row["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert row["ServiceProxy"] == ZERO_PROXY and row["ServiceConnect"] == {}
    assert row["ServiceLocality"] is None and row["ServiceMeta"] == {"ver": "1"}
    assert row["CreateIndex"] == row["ModifyIndex"] == index(r)

    r = get(agent, f"/v1/catalog/node/{node}")
    body = r.json()
    assert list(body) == ["Node", "Services"]
    assert list(body["Node"]) == NODE_KEYS
    assert list(body["Services"]) == [svc]
    service = body["Services"][svc]
    assert list(service) == NODE_SERVICE_KEYS
    assert service["Meta"] == {"ver": "1"} and service["PeerName"] == ""

    body = get(agent, f"/v1/catalog/node-services/{node}").json()
    assert list(body) == ["Node", "Services"]
    assert [s["ID"] for s in body["Services"]] == [svc]

    [entry] = get(agent, f"/v1/health/service/{svc}").json()
    [check] = entry["Checks"]
    assert (check["CheckID"], check["Type"], check["Status"]) == ("http-check", "http", "passing")
    assert check["Definition"] == {"Interval": "10s", "HTTP": "http://10.1.0.2:8080/"}
    assert check["ServiceTags"] == ["v1"]


def test_nodes_lists_registered_nodes_and_the_agents_own(agent):
    node = uniq("n")
    register(agent, node_body(node))
    r = get(agent, "/v1/catalog/nodes")
    nodes = {n["Node"]: n for n in r.json()}
    assert node in nodes and agent_node(agent) in nodes
    assert list(nodes[node]) == NODE_KEYS
    assert nodes[node]["TaggedAddresses"] is None and nodes[node]["Meta"] is None
    own = nodes[agent_node(agent)]
    assert own["Meta"] == {"consul-network-segment": ""}
    assert set(own["TaggedAddresses"]) == {"lan", "lan_ipv4", "wan", "wan_ipv4"}


def test_lower_case_keys_are_read_as_go_does(agent):
    # py-consul sends lower-case top-level keys.
    node, svc = uniq("n"), uniq("svc")
    register(agent, {"node": node, "address": "10.1.0.3",
                     "service": {"service": svc, "port": 81},
                     "check": {"name": "c1", "serviceid": svc}})
    [row] = get(agent, f"/v1/catalog/service/{svc}").json()
    assert row["ServiceID"] == svc  # Service.ID defaults to the name
    [c] = get(agent, f"/v1/health/checks/{svc}").json()
    assert (c["CheckID"], c["Status"], c["Type"]) == ("c1", "critical", "")


def test_reregistering_the_same_thing_changes_no_index(agent):
    node, svc = uniq("n"), uniq("svc")
    body = node_body(node, Service={"Service": svc, "Port": 1})
    register(agent, body)
    before = get(agent, f"/v1/catalog/service/{svc}")
    register(agent, body)
    after = get(agent, f"/v1/catalog/service/{svc}")
    assert index(after) == index(before)
    assert after.json()[0]["ModifyIndex"] == before.json()[0]["ModifyIndex"]


def test_deregister_service_takes_its_checks_node_takes_everything(agent):
    node, svc = uniq("n"), uniq("svc")
    register(agent, node_body(node, Service={"Service": svc},
                              Checks=[{"CheckID": "svc-c", "ServiceID": svc},
                                      {"CheckID": "node-c"}]))
    assert {c["CheckID"] for c in get(agent, f"/v1/health/node/{node}").json()} == {"svc-c", "node-c"}
    deregister(agent, {"Node": node, "ServiceID": svc})
    assert get(agent, f"/v1/catalog/service/{svc}").json() == []
    assert [c["CheckID"] for c in get(agent, f"/v1/health/node/{node}").json()] == ["node-c"]
    deregister(agent, {"Node": node, "CheckID": "node-c"})
    assert get(agent, f"/v1/health/node/{node}").json() == []
    deregister(agent, {"Node": node})
    assert get(agent, f"/v1/catalog/node/{node}").json() is None
    # Deregistering what is not there is still `true`.
    deregister(agent, {"Node": node, "ServiceID": "nope"})
    deregister(agent, {"node": uniq("never")})


# ----------------------------------------------------------------------------- register errors

@pytest.mark.parametrize("body,text", [
    ({"Node": "x", "Address": "a", "Bogus": 1}, 'Request decode failed: json: unknown field "Bogus"'),
    ({"Node": "x", "Address": "a", "Service": {"Service": "s", "Name": "s"}},
     'Request decode failed: json: unknown field "Name"'),
    # Go names a number's literal only when it does not fit a numeric field.
    ({"Node": 7}, "Request decode failed: json: cannot unmarshal number into Go struct field "
                  "RegisterRequest.Node of type string"),
    ({"Node": "x", "Service": {"Service": "s", "Port": 1.5}},
     "Request decode failed: json: cannot unmarshal number 1.5 into Go struct field "
     "NodeService.Service.Port of type int"),
])
def test_register_decode_errors_are_400(agent, body, text):
    r = register(agent, body, status=400)
    assert r.text == text
    assert r.headers["Content-Type"].startswith("text/plain")


def test_register_empty_body_is_eof(agent):
    r = agent.put("/v1/catalog/register", data=b"")
    assert (r.status_code, r.text) == (400, "Request decode failed: EOF")


@pytest.mark.parametrize("body,text", [
    ({"Address": "10.0.0.1"}, "Must provide node"),
    ({"Node": "n-x", "ID": "nope"}, "Bad node ID: uuid string is wrong length"),
    ({"Node": "n-x"}, "Must provide address if SkipNodeUpdate is not set"),
    ({"Node": "n-x", "Address": "a", "PeerName": "p"}, "cannot register requests with PeerName in them"),
    ({"Node": "n-x", "Address": "a", "Datacenter": "dc9"}, "No path to datacenter"),
    ({"Node": "n-x", "Address": "a", "Service": {"ID": "s1"}},
     "Must provide service name (Service.Service) when service ID is provided"),
    ({"Node": "n-x", "Address": "a", "Service": {"Service": "s", "Address": "0.0.0.0"}},
     "Invalid service address"),
    ({"Node": "n-x", "Address": "a", "Check": {"CheckID": "c", "Node": "other"}},
     "Node 'other' for check 'c' doesn't match register request node 'n-x'"),
    ({"Node": "n-x", "Address": "a", "Check": {"CheckID": "c", "ServiceID": "ghost"}},
     "Unknown service ID 'ghost' for check ID 'c'"),
    ({"Node": "n-x", "Address": "a", "Service": {"Service": "p", "Kind": "connect-proxy"}},
     "2 errors occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\t"
     "* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n"),
])
def test_register_rpc_errors_are_500_with_consuls_text(agent, body, text):
    r = register(agent, body, status=500)
    assert r.text == text
    # Nothing was written.
    assert get(agent, "/v1/catalog/node/n-x").json() is None


def test_skip_node_update_keeps_the_node_record(agent):
    node, svc = uniq("n"), uniq("svc")
    register(agent, node_body(node, NodeMeta={"k": "v"}))
    register(agent, {"Node": node, "SkipNodeUpdate": True, "Service": {"Service": svc}})
    n = get(agent, f"/v1/catalog/node/{node}").json()["Node"]
    assert (n["Address"], n["Meta"]) == ("10.1.0.1", {"k": "v"})


def test_check_node_matches_case_insensitively(agent):
    node = uniq("Node")
    register(agent, node_body(node, Check={"CheckID": "c", "Node": node.lower()}))
    [c] = get(agent, f"/v1/health/node/{node}").json()
    assert c["Node"] == node


def test_deregister_needs_a_node_and_refuses_unknown_fields(agent):
    r = agent.put("/v1/catalog/deregister", data=json.dumps({"ServiceID": "x"}))
    assert (r.status_code, r.text) == (500, "Must provide node")
    r = agent.put("/v1/catalog/deregister", data=json.dumps({"Node": "x", "Service": "y"}))
    assert (r.status_code, r.text) == (400, 'Request decode failed: json: unknown field "Service"')
    # The obsolete Address is tolerated.
    deregister(agent, {"Node": uniq("n"), "Address": "1.2.3.4"})


# ----------------------------------------------------------------------------- list queries

def test_datacenters_is_the_agents(agent):
    r = get(agent, "/v1/catalog/datacenters")
    assert r.json() == ["dc1"]
    assert "X-Consul-Index" not in r.headers


def test_services_unions_tags_and_filters_by_node_meta(agent):
    svc, rack = uniq("svc"), uniq("rack")
    register(agent, node_body(uniq("n"), NodeMeta={"rack": rack},
                              Service={"Service": svc, "Tags": ["a", "b"]}))
    register(agent, node_body(uniq("n"), Service={"Service": svc, "Tags": ["b", "c"]}))
    r = get(agent, "/v1/catalog/services")
    assert sorted(r.json()[svc]) == ["a", "b", "c"]
    only = get(agent, "/v1/catalog/services", params={"node-meta": f"rack:{rack}"}).json()
    assert sorted(only[svc]) == ["a", "b"]
    none = get(agent, "/v1/catalog/services", params={"node-meta": "rack:nowhere"}).json()
    assert none == {}


def test_service_tags_must_all_match_ignoring_case(agent):
    svc = uniq("svc")
    register(agent, node_body(uniq("n"), Service={"Service": svc, "Tags": ["Primary", "v1"]}))
    register(agent, node_body(uniq("n"), Service={"Service": svc, "Tags": ["v1"]}))
    path = f"/v1/catalog/service/{svc}"
    assert len(get(agent, path, params={"tag": "v1"}).json()) == 2
    assert len(get(agent, path, params={"tag": "primary"}).json()) == 1
    assert len(get(agent, path + "?tag=PRIMARY&tag=v1").json()) == 1
    assert get(agent, path + "?tag=primary&tag=v2").json() == []


def test_service_node_meta_filters_are_anded(agent):
    svc = uniq("svc")
    register(agent, node_body(uniq("n"), NodeMeta={"a": "1", "b": "2"}, Service={"Service": svc}))
    register(agent, node_body(uniq("n"), NodeMeta={"a": "1"}, Service={"Service": svc}))
    path = f"/v1/catalog/service/{svc}"
    assert len(get(agent, path + "?node-meta=a:1").json()) == 2
    assert len(get(agent, path + "?node-meta=a:1&node-meta=b:2").json()) == 1
    assert get(agent, path + "?node-meta=a:2").json() == []


def test_filter_applies_and_a_bad_one_is_400(agent):
    svc = uniq("svc")
    register(agent, node_body(uniq("n"), Service={"Service": svc, "Port": 1, "Meta": {"env": "prod"}}))
    register(agent, node_body(uniq("n"), Service={"Service": svc, "Port": 2}))
    path = f"/v1/catalog/service/{svc}"
    rows = get(agent, path, params={"filter": 'ServiceMeta.env == "prod"'}).json()
    assert [r["ServicePort"] for r in rows] == [1]
    rows = get(agent, "/v1/catalog/services", params={"filter": f'ServiceName == "{svc}"'}).json()
    assert list(rows) == [svc]
    for p in [path, "/v1/catalog/nodes", "/v1/catalog/services", f"/v1/catalog/node/{uniq('n')}"]:
        r = agent.get(p, params={"filter": "Nope.Nope =="})
        assert r.status_code == 400, (p, r.text)
        assert r.text.startswith("Failed to create boolean expression evaluator: "), r.text
        assert r.headers["X-Consul-Index"] == "1"


def test_nodes_filter_and_node_meta(agent):
    node, rack = uniq("n"), uniq("rack")
    register(agent, node_body(node, NodeMeta={"rack": rack}))
    rows = get(agent, "/v1/catalog/nodes", params={"node-meta": f"rack:{rack}"}).json()
    assert [n["Node"] for n in rows] == [node]
    rows = get(agent, "/v1/catalog/nodes", params={"filter": f'Meta.rack == "{rack}"'}).json()
    assert [n["Node"] for n in rows] == [node]


def test_unknown_things_answer_like_consul(agent):
    r = get(agent, f"/v1/catalog/service/{uniq('nope')}")
    assert r.json() == [] and index(r) >= 1
    r = get(agent, f"/v1/catalog/node/{uniq('nope')}")
    assert r.text.strip() == "null" and index(r) >= 1
    r = get(agent, f"/v1/catalog/node-services/{uniq('nope')}")
    assert r.json() == {"Node": None, "Services": None}


def test_a_node_without_services(agent):
    node = uniq("n")
    register(agent, node_body(node))
    assert get(agent, f"/v1/catalog/node/{node}").json()["Services"] == {}
    assert get(agent, f"/v1/catalog/node-services/{node}").json()["Services"] is None


def test_node_found_by_id_prefix(agent):
    node, node_id = uniq("n"), str(uuid.uuid4())
    register(agent, node_body(node, ID=node_id))
    body = get(agent, f"/v1/catalog/node/{node_id[:13]}").json()
    assert body["Node"]["Node"] == node


@pytest.mark.parametrize("path,text", [
    ("/v1/catalog/service/", "Missing service name"),
    ("/v1/catalog/node/", "Missing node name"),
    ("/v1/catalog/node-services/", "Missing node name"),
])
def test_missing_names_are_400(agent, path, text):
    r = agent.get(path)
    assert (r.status_code, r.text) == (400, text)


def test_other_datacenters_cannot_be_reached(agent):
    r = agent.get("/v1/catalog/nodes?dc=dc9")
    assert (r.status_code, r.text) == (500, "No path to datacenter")
    assert r.headers["X-Consul-Index"] == "1"
    assert get(agent, "/v1/catalog/nodes?dc=dc1").json()


def test_near_and_consistency_modes_are_accepted(agent):
    svc = uniq("svc")
    register(agent, node_body(uniq("n"), Service={"Service": svc}))
    assert len(get(agent, f"/v1/catalog/service/{svc}?near=_agent").json()) == 1
    r = get(agent, f"/v1/catalog/service/{svc}?stale")
    assert r.headers["X-Consul-Effective-Consistency"] == "stale"
    r = get(agent, f"/v1/catalog/service/{svc}?consistent")
    assert r.headers["X-Consul-Effective-Consistency"] == "consistent"
    r = agent.get(f"/v1/catalog/service/{svc}?stale&consistent")
    assert r.status_code == 400


# ----------------------------------------------------------------------------- methods

@pytest.mark.parametrize("path,method,allow", [
    ("/v1/catalog/register", "GET", "OPTIONS,PUT"),
    ("/v1/catalog/deregister", "POST", "OPTIONS,PUT"),
    ("/v1/catalog/nodes", "PUT", "OPTIONS,GET"),
    ("/v1/catalog/services", "DELETE", "OPTIONS,GET"),
    ("/v1/catalog/service/web", "PUT", "OPTIONS,GET"),
    ("/v1/catalog/node/n1", "POST", "OPTIONS,GET"),
    ("/v1/catalog/node-services/n1", "PUT", "OPTIONS,GET"),
    ("/v1/catalog/datacenters", "PUT", "OPTIONS,GET"),
])
def test_wrong_methods_are_405_with_allow(agent, path, method, allow):
    import requests
    r = requests.request(method, agent.url + path, timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == allow
    assert r.text == f"method {method} not allowed"
    r = requests.request("OPTIONS", agent.url + path, timeout=10)
    assert (r.status_code, r.headers["Allow"], r.text) == (200, allow, "")


# ----------------------------------------------------------------------------- blocking

class Blocked:
    """A blocking GET running in a thread."""

    def __init__(self, agent, path, idx, wait="10s"):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(agent, path, idx, wait))
        self.thread.start()

    def _run(self, agent, path, idx, wait):
        self.result = agent.get(path, params={"index": idx, "wait": wait}, timeout=30)

    def done_within(self, seconds):
        self.thread.join(seconds)
        return not self.thread.is_alive()


def test_a_service_query_wakes_only_for_its_own_service(agent):
    svc, other = uniq("svc"), uniq("other")
    node = uniq("n")
    register(agent, node_body(node, Service={"Service": svc}))
    r = get(agent, f"/v1/catalog/service/{svc}")
    idx = index(r)
    b = Blocked(agent, f"/v1/catalog/service/{svc}", idx)
    time.sleep(0.3)
    register(agent, node_body(uniq("n"), Service={"Service": other}))
    register(agent, node_body(uniq("n")))
    assert not b.done_within(1.0), "woke for another service's change"
    t0 = time.monotonic()
    register(agent, node_body(node, Service={"Service": svc, "ID": "second"}))
    assert b.done_within(5)
    assert time.monotonic() - t0 < 2
    assert b.result.status_code == 200
    assert index(b.result) > idx
    assert len(b.result.json()) == 2


def test_a_service_query_wakes_on_a_check_change_of_its_instance(agent):
    svc, node = uniq("svc"), uniq("n")
    register(agent, node_body(node, Service={"Service": svc},
                              Check={"CheckID": "c", "ServiceID": svc, "Status": "passing"}))
    idx = index(get(agent, f"/v1/catalog/service/{svc}"))
    b = Blocked(agent, f"/v1/catalog/service/{svc}", idx)
    time.sleep(0.3)
    register(agent, node_body(node, Check={"CheckID": "c", "ServiceID": svc, "Status": "critical"}))
    assert b.done_within(5)
    assert index(b.result) > idx


def test_a_node_query_blocks_until_its_node_changes(agent):
    node = uniq("n")
    register(agent, node_body(node))
    idx = index(get(agent, f"/v1/catalog/node/{node}"))
    b = Blocked(agent, f"/v1/catalog/node/{node}", idx)
    time.sleep(0.3)
    register(agent, node_body(uniq("n")))
    assert not b.done_within(1.0)
    register(agent, node_body(node, Service={"Service": uniq("svc")}))
    assert b.done_within(5)
    assert len(b.result.json()["Services"]) == 1


def test_a_blocking_query_times_out_with_the_same_index(agent):
    svc = uniq("svc")
    register(agent, node_body(uniq("n"), Service={"Service": svc}))
    idx = index(get(agent, f"/v1/catalog/service/{svc}"))
    t0 = time.monotonic()
    r = get(agent, f"/v1/catalog/service/{svc}", params={"index": idx, "wait": "1s"})
    assert 0.9 < time.monotonic() - t0 < 3
    assert index(r) == idx


def test_nodes_and_services_lists_block_on_their_tables(agent):
    idx = index(get(agent, "/v1/catalog/services"))
    b = Blocked(agent, "/v1/catalog/services", idx)
    time.sleep(0.3)
    register(agent, node_body(uniq("n"), Service={"Service": uniq("svc")}))
    assert b.done_within(5) and index(b.result) > idx
    idx = index(get(agent, "/v1/catalog/nodes"))
    b = Blocked(agent, "/v1/catalog/nodes", idx)
    time.sleep(0.3)
    register(agent, node_body(uniq("n")))
    assert b.done_within(5) and index(b.result) > idx


# ----------------------------------------------------------------------------- metrics

def test_metrics_report_the_catalogs_size(agent):
    register(agent, node_body(uniq("n"), Service={"Service": uniq("svc")}))
    nodes = len(get(agent, "/v1/catalog/nodes").json())
    services = len(get(agent, "/v1/catalog/services").json())
    gauges = {g["Name"]: g["Value"] for g in get(agent, "/v1/agent/metrics").json()["Gauges"]}
    assert gauges["consul.state.nodes"] == nodes
    assert gauges["consul.state.services"] == services
    assert gauges["consul.state.service_instances"] >= services
