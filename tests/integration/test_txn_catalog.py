"""Catalog operations in `PUT /v1/txn` (Node, Service, Check), asserted against Consul.

References (Consul source, read not copied):
  * agent/txn_endpoint.go         - convertOps: api.TxnNodeOp {Verb, Node}, api.TxnServiceOp
                                    {Verb, Node, Service}, api.TxnCheckOp {Verb, Check}; a node's
                                    Datacenter defaults to the agent's; only some service/check
                                    fields are copied; a txn of gets only takes the read path
  * agent/consul/txn_endpoint.go  - preCheck: "unknown node operation: X" (and service/check),
                                    nodePreApply ("Must provide node"), servicePreApply, checkPreApply
  * agent/consul/state/txn.go     - txnNode / txnService / txnCheck: results {"Node"}, {"Service"},
                                    {"Check"}, none for deletes; "node %q doesn't exist",
                                    "failed to set node %q, index is stale", ... ; all ops run and
                                    every failure is reported; any failure rolls everything back
  * agent/consul/state/catalog.go - ensure*CASTxn: index 0 = only if absent; ErrMissingNode /
                                    ErrMissingService texts
"""
import base64
import json
import re
import uuid

import pytest

NODE_KEYS = ["ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta", "CreateIndex",
             "ModifyIndex"]
SERVICE_KEYS = ["ID", "Service", "Tags", "Address", "Meta", "Port", "Weights",
                "EnableTagOverride", "Proxy", "Connect", "PeerName", "CreateIndex", "ModifyIndex"]
CHECK_KEYS = ["Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName",
              "ServiceTags", "Type", "Interval", "Timeout", "ExposedPort", "Definition",
              "CreateIndex", "ModifyIndex"]


def uniq(tag):
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def txn(agent, ops):
    return agent.put("/v1/txn", data=json.dumps(ops))


def ok(agent, ops):
    r = txn(agent, ops)
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert body["Errors"] is None
    return body["Results"]


def conflict(agent, ops):
    r = txn(agent, ops)
    assert r.status_code == 409, (r.status_code, r.text)
    body = r.json()
    assert body["Results"] is None
    return [(e["OpIndex"], e["What"]) for e in body["Errors"]]


def node_op(verb, name, **node):
    return {"Node": {"Verb": verb, "Node": {"Node": name, **node}}}


def service_op(verb, node, **service):
    return {"Service": {"Verb": verb, "Node": node, "Service": service}}


def check_op(verb, node, check_id, **check):
    return {"Check": {"Verb": verb, "Check": {"Node": node, "CheckID": check_id, **check}}}


def kv_op(verb, key, value=None, **extra):
    kv = {"Verb": verb, "Key": key, **extra}
    if value is not None:
        kv["Value"] = base64.b64encode(value).decode()
    return {"KV": kv}


# ----------------------------------------------------------------------------- verbs and shapes

def test_set_node_service_and_check_in_one_transaction(agent):
    node, svc = uniq("n"), uniq("svc")
    results = ok(agent, [
        node_op("set", node, Address="10.3.0.1", Meta={"k": "v"}),
        service_op("set", node, Service=svc, Port=5432),
        check_op("set", node, "", Name="db-up", ServiceID=svc, Status="passing"),
    ])
    assert [list(r) for r in results] == [["Node"], ["Service"], ["Check"]]
    n, s, c = results[0]["Node"], results[1]["Service"], results[2]["Check"]
    assert list(n) == NODE_KEYS and list(s) == SERVICE_KEYS and list(c) == CHECK_KEYS
    assert (n["Node"], n["Datacenter"], n["Meta"]) == (node, "dc1", {"k": "v"})
    assert n["CreateIndex"] == n["ModifyIndex"] > 0
    # The state store's objects: nil slices and maps stay null.
    assert (s["ID"], s["Tags"], s["Meta"], s["Port"]) == (svc, None, None, 5432)
    assert s["Weights"] == {"Passing": 1, "Warning": 1}
    assert s["Proxy"] == {"Mode": "", "MeshGateway": {}, "Expose": {}}
    assert (c["CheckID"], c["ServiceName"], c["Status"], c["ServiceTags"]) == (
        "db-up", svc, "passing", None)
    # And the catalog shows them.
    [entry] = agent.get(f"/v1/health/service/{svc}").json()
    assert entry["Node"]["Node"] == node
    assert [x["CheckID"] for x in entry["Checks"]] == ["db-up"]


def test_gets_take_the_read_path(agent):
    node, svc = uniq("n"), uniq("svc")
    ok(agent, [node_op("set", node, Address="10.3.0.2"),
               service_op("set", node, Service=svc, Tags=["a"]),
               check_op("set", node, "c1")])
    r = txn(agent, [node_op("get", node), service_op("get", node, ID=svc),
                    check_op("get", node, "c1")])
    assert r.status_code == 200, r.text
    assert int(r.headers["X-Consul-Index"]) >= 1
    assert r.headers["X-Consul-KnownLeader"] == "true"
    n, s, c = [list(x.values())[0] for x in r.json()["Results"]]
    assert (n["Node"], s["Tags"], c["Status"]) == (node, ["a"], "critical")


def test_get_errors_name_what_is_missing(agent):
    node = uniq("n")
    assert conflict(agent, [node_op("get", node), service_op("get", node, ID="s"),
                            check_op("get", node, "c")]) == [
        (0, f'node "{node}" doesn\'t exist'),
        (1, f'service "s" on node "{node}" doesn\'t exist'),
        (2, f'check "c" on node "{node}" doesn\'t exist'),
    ]


def test_cas_rules_and_stale_texts(agent):
    node = uniq("n")
    [r] = ok(agent, [node_op("cas", node, Address="10.3.0.3")])  # index 0: only if absent
    idx = r["Node"]["ModifyIndex"]
    assert conflict(agent, [
        node_op("cas", node, Address="10.3.0.4"),
        node_op("cas", node, Address="10.3.0.4", ModifyIndex=idx + 100),
        node_op("delete-cas", node, ModifyIndex=idx + 100),
    ]) == [
        (0, f'failed to set node "{node}", index is stale'),
        (1, f'failed to set node "{node}", index is stale'),
        (2, f'failed to delete node "{node}", index is stale'),
    ]
    [r] = ok(agent, [node_op("cas", node, Address="10.3.0.4", ModifyIndex=idx)])
    assert r["Node"]["Address"] == "10.3.0.4" and r["Node"]["CreateIndex"] == idx

    [s] = ok(agent, [service_op("cas", node, Service="web")])
    sidx = s["Service"]["ModifyIndex"]
    assert conflict(agent, [service_op("cas", node, Service="web"),
                            service_op("delete-cas", node, Service="web", ModifyIndex=1)]) == [
        (0, f'failed to set service "web" on node "{node}", index is stale'),
        (1, f'failed to delete service "web" on node "{node}", index is stale'),
    ]
    assert ok(agent, [service_op("delete-cas", node, Service="web", ModifyIndex=sidx)]) == []
    assert agent.get(f"/v1/catalog/node/{node}").json()["Services"] == {}

    [c] = ok(agent, [check_op("cas", node, "c1", Status="warning")])
    cidx = c["Check"]["ModifyIndex"]
    assert conflict(agent, [check_op("cas", node, "c1"),
                            check_op("delete-cas", node, "c1", ModifyIndex=cidx + 1)]) == [
        (0, f'failed to set check "c1" on node "{node}", index is stale'),
        (1, f'failed to delete check "c1" on node "{node}", index is stale'),
    ]
    ok(agent, [check_op("delete-cas", node, "c1", ModifyIndex=cidx)])
    latest = agent.get(f"/v1/catalog/node/{node}").json()["Node"]["ModifyIndex"]
    assert ok(agent, [node_op("delete-cas", node, ModifyIndex=latest)]) == []
    assert agent.get(f"/v1/catalog/node/{node}").json() is None


def test_deletes_cascade_and_succeed_on_nothing(agent):
    node, svc = uniq("n"), uniq("svc")
    ok(agent, [node_op("set", node, Address="10.3.0.5"), service_op("set", node, Service=svc),
               check_op("set", node, "c", ServiceID=svc)])
    assert ok(agent, [service_op("delete", node, Service=svc)]) == []
    assert agent.get(f"/v1/health/node/{node}").json() == []
    assert ok(agent, [node_op("delete", node), node_op("delete", uniq("never")),
                      check_op("delete", node, "nope")]) == []
    assert agent.get(f"/v1/catalog/node/{node}").json() is None


# ----------------------------------------------------------------------------- refusals

def test_pre_checks_refuse_bad_operations_with_consuls_texts(agent):
    node = uniq("n")
    assert conflict(agent, [
        node_op("bogus", node),
        node_op("set", ""),
        node_op("set", node, ID="not-a-uuid"),
        service_op("frob", node, Service="s"),
        service_op("set", node, ID="only-id"),
        service_op("set", node, Service="s", Address="::"),
        check_op("nope", node, "c"),
    ]) == [
        (0, "unknown node operation: bogus"),
        (1, "Must provide node"),
        (2, "Bad node ID: uuid string is wrong length"),
        (3, "unknown service operation: frob"),
        (4, "Must provide service name (Service.Service) when service ID is provided"),
        (5, "Invalid service address"),
        (6, "unknown check operation: nope"),
    ]


def test_writes_on_missing_nodes_and_services_fail(agent):
    node = uniq("n")
    assert conflict(agent, [service_op("set", node, Service="s"),
                            check_op("set", node, "c")]) == [
        (0, "Missing node registration"),
        (1, "Missing node registration"),
    ]
    ok(agent, [node_op("set", node, Address="10.3.0.6")])
    assert conflict(agent, [check_op("set", node, "c", ServiceID="ghost")]) == [
        (0, "Missing service registration"),
    ]


@pytest.mark.parametrize("ops,text", [
    ([{"Node": {"Verb": "set", "Node": {"Node": "n", "Bogus": 1}}}], 'json: unknown field "Bogus"'),
    ([{"Service": {"Verb": "set", "Node": "n", "Extra": 1}}], 'json: unknown field "Extra"'),
    ([{"Check": {"Verb": "set", "Check": {"Node": "n", "Port": 1}}}], 'json: unknown field "Port"'),
    ([{"Node": {"Verb": "set", "Node": {"Node": 5}}}],
     "json: cannot unmarshal number into Go struct field "),
])
def test_undecodable_catalog_operations_are_400(agent, ops, text):
    r = txn(agent, ops)
    assert r.status_code == 400, r.text
    assert r.text.startswith("Failed to parse body: ") and text in r.text, r.text


def test_an_operation_with_nothing_set_is_dropped(agent):
    node = uniq("n")
    results = ok(agent, [{}, {"Node": None}, node_op("set", node, Address="10.3.0.7")])
    assert [list(r) for r in results] == [["Node"]]
    # Error indexes count only the operations kept.
    assert conflict(agent, [{}, node_op("get", uniq("nope"))])[0][0] == 0


# ----------------------------------------------------------------------------- atomicity

def test_a_failure_rolls_back_catalog_and_kv_changes(agent):
    node, svc, key = uniq("n"), uniq("svc"), uniq("txn-cat")
    errors = conflict(agent, [
        node_op("set", node, Address="10.3.0.8"),
        service_op("set", node, Service=svc),
        check_op("set", node, "c", ServiceID=svc, Status="passing"),
        kv_op("set", key, b"v"),
        kv_op("check-index", key, Index=999999),
    ])
    [(op_index, what)] = errors
    assert op_index == 4
    assert re.fullmatch(rf'failed index check for key "{key}", current modify index \d+ != 999999',
                        what), what
    assert agent.get(f"/v1/catalog/node/{node}").json() is None
    assert agent.get(f"/v1/catalog/service/{svc}").json() == []
    assert agent.get(f"/v1/kv/{key}").status_code == 404


def test_a_failure_brings_back_sessions_a_critical_check_would_have_destroyed(agent):
    node, key = uniq("n"), uniq("txn-lock")
    ok(agent, [node_op("set", node, Address="10.3.0.9"),
               check_op("set", node, "guard", Status="passing")])
    r = agent.put("/v1/session/create",
                  data=json.dumps({"Node": node, "NodeChecks": ["guard"], "LockDelay": "0s"}))
    assert r.status_code == 200, r.text
    sid = r.json()["ID"]
    assert agent.put(f"/v1/kv/{key}?acquire={sid}", data=b"x").json() is True

    conflict(agent, [check_op("set", node, "guard", Status="critical"),
                     node_op("get", uniq("nope"))])
    assert agent.get(f"/v1/session/info/{sid}").json()[0]["ID"] == sid
    assert agent.get(f"/v1/kv/{key}").json()[0]["Session"] == sid

    # Without the failing op the same write invalidates the session and releases the lock.
    ok(agent, [check_op("set", node, "guard", Status="critical")])
    assert agent.get(f"/v1/session/info/{sid}").json() == []
    assert "Session" not in agent.get(f"/v1/kv/{key}").json()[0]


def test_kv_and_catalog_operations_mix(agent):
    node, key = uniq("n"), uniq("txn-mix")
    results = ok(agent, [kv_op("set", key, b"v"), node_op("set", node, Address="10.3.1.1"),
                         kv_op("get", key)])
    assert [list(r) for r in results] == [["KV"], ["Node"], ["KV"]]
    assert base64.b64decode(results[2]["KV"]["Value"]) == b"v"
