"""Transaction HTTP API (`PUT /v1/txn`), KV operations, asserted against Consul's behaviour.

References (Consul source, read not copied):
  * agent/txn_endpoint.go        - convertOps (400 "Failed to parse body: ...", 413 for > maxTxnOps = 128,
                                   413 for oversized values), Txn (409 with the response body on conflict)
  * agent/consul/txn_endpoint.go - preCheck / kvsPreApply ("Must provide key")
  * agent/consul/state/txn.go    - txnKVS (per-verb results, error texts, Value blanked except for get),
                                   txnDispatch (every failing op is reported), TxnRW (rollback)
  * agent/consul/state/kvs.go    - lock / unlock / check-session / check-index error texts
  * agent/structs/txn.go         - TxnResponse {Results, Errors}, TxnResult KV `json:",omitempty"`
  * developer.hashicorp.com/consul/api-docs/txn
"""
import base64
import json
import uuid

import pytest

MAX_TXN_OPS = 128
ENTRY_KEYS = ["LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"]


# ----------------------------------------------------------------------------- helpers

def uniq(tag="txn"):
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def op(verb, key, value=None, **fields):
    kv = {"Verb": verb, "Key": key}
    if value is not None:
        kv["Value"] = b64(value)
    kv.update(fields)
    return {"KV": kv}


def txn(agent, ops, query=""):
    body = ops if isinstance(ops, (bytes, str)) else json.dumps(ops)
    return agent.put("/v1/txn" + ("?" + query if query else ""), data=body)


def txn_ok(agent, ops, query=""):
    r = txn(agent, ops, query)
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert body["Errors"] is None, body
    return body["Results"]


def txn_conflict(agent, ops, query=""):
    """Runs a txn that must be rolled back; returns its Errors."""
    r = txn(agent, ops, query)
    assert r.status_code == 409, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["Results"] is None, body
    assert isinstance(body["Errors"], list) and body["Errors"], body
    for err in body["Errors"]:
        assert list(err.keys()) == ["OpIndex", "What"], err
    return body["Errors"]


def kv_put(agent, key, value=b"", query=""):
    r = agent.put("/v1/kv/" + key + ("?" + query if query else ""), data=value)
    assert r.status_code == 200 and r.json() is True, r.text


def kv_get(agent, key):
    """The stored entry, or None if the key is missing."""
    r = agent.get("/v1/kv/" + key)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()[0]


def kv_value(agent, key):
    e = kv_get(agent, key)
    assert e is not None, f"{key} missing"
    return base64.b64decode(e["Value"]) if e["Value"] is not None else b""


@pytest.fixture
def session(agent):
    r = agent.put("/v1/session/create", data=json.dumps({"Name": uniq("txn-session")}))
    assert r.status_code == 200, r.text
    sid = r.json()["ID"]
    yield sid
    agent.put(f"/v1/session/destroy/{sid}")


@pytest.fixture
def session2(agent):
    r = agent.put("/v1/session/create", data=json.dumps({"Name": uniq("txn-session2")}))
    assert r.status_code == 200, r.text
    sid = r.json()["ID"]
    yield sid
    agent.put(f"/v1/session/destroy/{sid}")


# ----------------------------------------------------------------------------- set / get

def test_set_returns_entry_without_value(agent):
    key = uniq("set")
    r = txn(agent, [op("set", key, b"hello", Flags=5)])
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body.keys()) == ["Results", "Errors"]
    assert body["Errors"] is None
    assert len(body["Results"]) == 1
    result = body["Results"][0]
    assert list(result.keys()) == ["KV"]  # Node/Service/Check are omitempty
    kv = result["KV"]
    assert list(kv.keys()) == ENTRY_KEYS  # no Session key when unlocked
    assert kv["Key"] == key
    assert kv["Flags"] == 5
    assert kv["LockIndex"] == 0
    assert kv["Value"] is None  # values are blanked for every verb but get/get-tree
    assert kv["CreateIndex"] == kv["ModifyIndex"] > 0
    stored = kv_get(agent, key)
    assert base64.b64decode(stored["Value"]) == b"hello"
    assert stored["Flags"] == 5
    assert stored["ModifyIndex"] == kv["ModifyIndex"]


def test_get_returns_value(agent):
    key = uniq("get")
    kv_put(agent, key, b"\x00binary\xffvalue", "flags=11")
    results = txn_ok(agent, [op("get", key)])
    assert len(results) == 1
    kv = results[0]["KV"]
    assert kv["Key"] == key
    assert base64.b64decode(kv["Value"]) == b"\x00binary\xffvalue"
    assert kv["Flags"] == 11
    stored = kv_get(agent, key)
    assert kv["ModifyIndex"] == stored["ModifyIndex"]
    assert kv["CreateIndex"] == stored["CreateIndex"]


def test_get_missing_key_conflicts(agent):
    key = uniq("getmissing")
    errors = txn_conflict(agent, [op("get", key)])
    assert errors == [{"OpIndex": 0, "What": f'key "{key}" doesn\'t exist'}]


def test_get_tree_returns_all_entries_with_values(agent):
    root = uniq("gettree") + "/"
    for k in ["b", "a", "c/d"]:
        kv_put(agent, root + k, ("v" + k).encode())
    kv_put(agent, root[:-1] + "x", b"outside")
    results = txn_ok(agent, [op("get-tree", root)])
    assert [r["KV"]["Key"] for r in results] == [root + "a", root + "b", root + "c/d"]
    for r in results:
        assert base64.b64decode(r["KV"]["Value"]) == ("v" + r["KV"]["Key"][len(root):]).encode()


def test_get_tree_of_missing_prefix_is_empty_success(agent):
    r = txn(agent, [op("get-tree", uniq("emptytree") + "/")])
    assert r.status_code == 200
    body = r.json()
    assert body["Errors"] is None
    assert body["Results"] in ([], None)


def test_results_follow_op_order(agent):
    a, b, c = uniq("ord-a"), uniq("ord-b"), uniq("ord-c")
    kv_put(agent, c, b"old-c")
    results = txn_ok(agent, [op("set", a, b"1"), op("delete", c), op("set", b, b"2"), op("get", a)])
    # delete produces no result entry, so 3 results for 4 ops.
    assert [r["KV"]["Key"] for r in results] == [a, b, a]
    assert results[0]["KV"]["Value"] is None
    assert base64.b64decode(results[2]["KV"]["Value"]) == b"1"
    assert kv_get(agent, c) is None


# ----------------------------------------------------------------------------- delete verbs

def test_delete(agent):
    key = uniq("del")
    kv_put(agent, key, b"v")
    r = txn(agent, [op("delete", key)])
    assert r.status_code == 200
    body = r.json()
    assert body["Errors"] is None
    assert body["Results"] in ([], None)  # no result entries for deletes
    assert kv_get(agent, key) is None
    # Deleting a missing key succeeds.
    txn_ok(agent, [op("delete", key)])


def test_delete_tree(agent):
    root = uniq("deltree")
    keys = [root + "/a", root + "/b/c", root + "/b/d"]
    for k in keys:
        kv_put(agent, k, b"v")
    kv_put(agent, root + "-sibling", b"keep")
    results = txn_ok(agent, [op("delete-tree", root + "/")])
    assert results in ([], None)
    for k in keys:
        assert kv_get(agent, k) is None
    assert kv_value(agent, root + "-sibling") == b"keep"


def test_delete_cas(agent):
    key = uniq("delcas")
    kv_put(agent, key, b"v")
    idx = kv_get(agent, key)["ModifyIndex"]
    errors = txn_conflict(agent, [op("delete-cas", key, Index=idx + 7)])
    assert errors == [{"OpIndex": 0, "What": f'failed to delete key "{key}", index is stale'}]
    assert kv_get(agent, key) is not None
    results = txn_ok(agent, [op("delete-cas", key, Index=idx)])
    assert results in ([], None)
    assert kv_get(agent, key) is None
    # On a key that does not exist delete-cas succeeds (kvsDeleteCASTxn returns entry == nil).
    txn_ok(agent, [op("delete-cas", key, Index=idx)])


# ----------------------------------------------------------------------------- cas

def test_cas(agent):
    key = uniq("cas")
    kv_put(agent, key, b"v1")
    e1 = kv_get(agent, key)
    errors = txn_conflict(agent, [op("cas", key, b"bad", Index=e1["ModifyIndex"] + 3)])
    assert errors == [{"OpIndex": 0, "What": f'failed to set key "{key}", index is stale'}]
    assert kv_value(agent, key) == b"v1"
    results = txn_ok(agent, [op("cas", key, b"v2", Index=e1["ModifyIndex"], Flags=2)])
    kv = results[0]["KV"]
    assert kv["Key"] == key
    assert kv["Value"] is None
    assert kv["Flags"] == 2
    assert kv["CreateIndex"] == e1["CreateIndex"]
    assert kv["ModifyIndex"] > e1["ModifyIndex"]
    assert kv_value(agent, key) == b"v2"


def test_cas_index_zero_means_create_only(agent):
    key = uniq("cas0")
    results = txn_ok(agent, [op("cas", key, b"new", Index=0)])
    assert results[0]["KV"]["Key"] == key
    assert kv_value(agent, key) == b"new"
    errors = txn_conflict(agent, [op("cas", key, b"again", Index=0)])
    assert errors == [{"OpIndex": 0, "What": f'failed to set key "{key}", index is stale'}]
    assert kv_value(agent, key) == b"new"


# ----------------------------------------------------------------------------- lock / unlock / check-session

def test_lock_and_unlock(agent, session, session2):
    key = uniq("lock")
    results = txn_ok(agent, [op("lock", key, b"held", Session=session)])
    kv = results[0]["KV"]
    assert kv["Key"] == key
    assert kv["LockIndex"] == 1
    assert kv["Session"] == session
    assert kv["Value"] is None
    stored = kv_get(agent, key)
    assert stored["Session"] == session
    assert stored["LockIndex"] == 1
    assert base64.b64decode(stored["Value"]) == b"held"

    # Re-locking with the holder is fine; another session cannot take it.
    txn_ok(agent, [op("lock", key, b"held2", Session=session)])
    errors = txn_conflict(agent, [op("lock", key, b"steal", Session=session2)])
    assert errors == [{"OpIndex": 0, "What": f'failed to lock key "{key}", lock is already held'}]
    assert kv_get(agent, key)["Session"] == session

    errors = txn_conflict(agent, [op("unlock", key, b"x", Session=session2)])
    assert errors == [{"OpIndex": 0, "What":
                       f'failed to unlock key "{key}", lock isn\'t held, or is held by another session'}]

    results = txn_ok(agent, [op("unlock", key, b"released", Session=session)])
    kv = results[0]["KV"]
    assert "Session" not in kv
    assert kv["LockIndex"] == 1
    stored = kv_get(agent, key)
    assert "Session" not in stored
    assert base64.b64decode(stored["Value"]) == b"released"


def test_plain_writes_keep_the_lock_holder(agent, session):
    # kvsSetTxn keeps the existing Session unless the op is lock/unlock.
    key = uniq("lockedput")
    txn_ok(agent, [op("lock", key, b"v1", Session=session)])
    kv_put(agent, key, b"v2")
    stored = kv_get(agent, key)
    assert stored["Session"] == session
    assert base64.b64decode(stored["Value"]) == b"v2"
    results = txn_ok(agent, [op("set", key, b"v3")])
    assert results[0]["KV"]["Session"] == session
    assert kv_get(agent, key)["Session"] == session


def test_plain_put_on_locked_key_keeps_holder_and_lock_index(agent, session):
    # Deliberate departure: Consul's kvsSetTxn resets LockIndex to the request's (0) on a plain
    # set, a side effect of its request struct. Lotse keeps the holder's LockIndex, so a lock's
    # generation count survives a value update by another writer.
    key = uniq("lockidx")
    txn_ok(agent, [op("lock", key, b"v1", Session=session)])
    assert kv_get(agent, key)["LockIndex"] == 1
    kv_put(agent, key, b"v2")
    stored = kv_get(agent, key)
    assert stored["Session"] == session
    assert stored["LockIndex"] == 1


def test_lock_requires_valid_session(agent):
    key = uniq("lockbad")
    bogus = str(uuid.uuid4())
    errors = txn_conflict(agent, [op("lock", key, b"v", Session=bogus)])
    assert errors == [{"OpIndex": 0, "What": f'invalid session "{bogus}"'}]
    errors = txn_conflict(agent, [op("lock", key, b"v")])
    assert errors == [{"OpIndex": 0, "What": "missing session"}]
    assert kv_get(agent, key) is None


def test_check_session(agent, session, session2):
    key = uniq("chksess")
    txn_ok(agent, [op("lock", key, b"v", Session=session)])
    results = txn_ok(agent, [op("check-session", key, Session=session)])
    assert results[0]["KV"]["Key"] == key
    assert results[0]["KV"]["Session"] == session
    assert results[0]["KV"]["Value"] is None
    errors = txn_conflict(agent, [op("check-session", key, Session=session2)])
    assert errors == [{"OpIndex": 0, "What":
                       f'failed session check for key "{key}", current session "{session}" != "{session2}"'}]
    missing = uniq("chksess-missing")
    errors = txn_conflict(agent, [op("check-session", missing, Session=session)])
    assert errors == [{"OpIndex": 0, "What": f'failed to check session, key "{missing}" doesn\'t exist'}]


# ----------------------------------------------------------------------------- check-index / check-not-exists

def test_check_index(agent):
    key = uniq("chkidx")
    kv_put(agent, key, b"v")
    idx = kv_get(agent, key)["ModifyIndex"]
    results = txn_ok(agent, [op("check-index", key, Index=idx)])
    assert results[0]["KV"]["Key"] == key
    assert results[0]["KV"]["ModifyIndex"] == idx
    assert results[0]["KV"]["Value"] is None
    errors = txn_conflict(agent, [op("check-index", key, Index=idx + 1)])
    assert errors == [{"OpIndex": 0, "What":
                       f'failed index check for key "{key}", current modify index {idx} != {idx + 1}'}]
    missing = uniq("chkidx-missing")
    errors = txn_conflict(agent, [op("check-index", missing, Index=idx)])
    assert errors == [{"OpIndex": 0, "What": f'failed to check index, key "{missing}" doesn\'t exist'}]


def test_check_not_exists(agent):
    key = uniq("chkne")
    r = txn(agent, [op("check-not-exists", key)])
    assert r.status_code == 200
    assert r.json()["Errors"] is None
    assert r.json()["Results"] in ([], None)  # no result entry for check-not-exists
    kv_put(agent, key, b"v")
    errors = txn_conflict(agent, [op("check-not-exists", key)])
    assert errors == [{"OpIndex": 0, "What": f'key "{key}" exists'}]


# ----------------------------------------------------------------------------- atomicity

def test_failing_op_rolls_back_all_earlier_ops(agent):
    new_a, new_b = uniq("rb-new-a"), uniq("rb-new-b")
    existing = uniq("rb-existing")
    tree = uniq("rb-tree")
    guard = uniq("rb-guard")
    kv_put(agent, existing, b"original")
    kv_put(agent, tree + "/x", b"tx")
    kv_put(agent, guard, b"g")
    before = {k: kv_get(agent, k) for k in [existing, tree + "/x", guard]}
    errors = txn_conflict(agent, [
        op("set", new_a, b"a"),
        op("set", existing, b"overwritten"),
        op("delete-tree", tree + "/"),
        op("cas", new_b, b"b", Index=0),
        op("check-not-exists", guard),  # fails: guard exists
        op("set", uniq("rb-after"), b"after"),
    ])
    assert errors == [{"OpIndex": 4, "What": f'key "{guard}" exists'}]
    assert kv_get(agent, new_a) is None
    assert kv_get(agent, new_b) is None
    for k, e in before.items():
        assert kv_get(agent, k) == e, k


def test_all_failing_ops_are_reported(agent):
    present = uniq("multi-present")
    kv_put(agent, present, b"v")
    idx = kv_get(agent, present)["ModifyIndex"]
    errors = txn_conflict(agent, [
        op("set", uniq("multi-ok"), b"ok"),
        op("check-index", present, Index=idx + 100),
        op("set", uniq("multi-ok2"), b"ok"),
        op("check-not-exists", present),
    ])
    assert errors == [
        {"OpIndex": 1, "What": f'failed index check for key "{present}", current modify index {idx} != {idx + 100}'},
        {"OpIndex": 3, "What": f'key "{present}" exists'},
    ]


def test_failed_txn_does_not_advance_key_indexes(agent):
    key = uniq("noadvance")
    kv_put(agent, key, b"v")
    before = kv_get(agent, key)
    txn_conflict(agent, [op("set", key, b"changed"), op("get", uniq("nope"))])
    assert kv_get(agent, key) == before


def test_ops_see_earlier_ops_in_same_txn(agent):
    fresh, existing = uniq("vis-fresh"), uniq("vis-existing")
    kv_put(agent, existing, b"v")
    # A key set earlier in the txn exists for a later check-not-exists ...
    errors = txn_conflict(agent, [op("set", fresh, b"v"), op("check-not-exists", fresh)])
    assert errors == [{"OpIndex": 1, "What": f'key "{fresh}" exists'}]
    assert kv_get(agent, fresh) is None
    # ... and a key deleted earlier in the txn no longer does.
    results = txn_ok(agent, [op("delete", existing), op("check-not-exists", existing),
                             op("set", fresh, b"x"), op("get", fresh)])
    assert [r["KV"]["Key"] for r in results] == [fresh, fresh]
    assert base64.b64decode(results[1]["KV"]["Value"]) == b"x"
    assert kv_get(agent, existing) is None


def test_all_writes_of_a_txn_share_one_index(agent):
    keys = [uniq("oneidx") for _ in range(3)]
    kv_put(agent, keys[2], b"old")
    before = kv_get(agent, keys[2])
    results = txn_ok(agent, [op("set", keys[0], b"a"), op("set", keys[1], b"b"), op("set", keys[2], b"c")])
    indexes = {r["KV"]["ModifyIndex"] for r in results}
    assert len(indexes) == 1, indexes
    (idx,) = indexes
    assert idx > before["ModifyIndex"]
    assert results[2]["KV"]["CreateIndex"] == before["CreateIndex"]
    assert [kv_get(agent, k)["ModifyIndex"] for k in keys] == [idx, idx, idx]


def test_read_only_txn(agent):
    a, b = uniq("ro-a"), uniq("ro-b")
    kv_put(agent, a, b"A")
    kv_put(agent, b, b"B")
    r = txn(agent, [op("get", a), op("get", b), op("check-not-exists", uniq("ro-c"))])
    assert r.status_code == 200
    body = r.json()
    assert body["Errors"] is None
    assert [base64.b64decode(x["KV"]["Value"]) for x in body["Results"]] == [b"A", b"B"]
    # Read-only transactions carry the leader/last-contact meta headers (api-docs/txn).
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.headers["X-Consul-LastContact"].isdigit()


def test_read_only_txn_rejects_stale_with_consistent(agent):
    a = uniq("ro-sc")
    kv_put(agent, a, b"A")
    r = txn(agent, [op("get", a)], "stale&consistent")
    assert r.status_code == 400
    assert r.text == "Cannot specify ?stale with ?consistent, conflicting semantics."


# ----------------------------------------------------------------------------- limits and validation

def test_max_ops_is_accepted(agent):
    root = uniq("maxops")
    ops = [op("set", f"{root}/{i:03d}", str(i).encode()) for i in range(MAX_TXN_OPS)]
    results = txn_ok(agent, ops)
    assert len(results) == MAX_TXN_OPS
    r = agent.get(f"/v1/kv/{root}/?keys")
    assert len(r.json()) == MAX_TXN_OPS


def test_too_many_ops_is_413(agent):
    root = uniq("toomany")
    ops = [op("set", f"{root}/{i:03d}", b"v") for i in range(MAX_TXN_OPS + 1)]
    r = txn(agent, ops)
    assert r.status_code == 413
    assert r.text == f"Transaction contains too many operations ({MAX_TXN_OPS + 1} > {MAX_TXN_OPS})"
    assert agent.get(f"/v1/kv/{root}/?keys").status_code == 404


def test_oversized_value_is_413(agent):
    key = uniq("bigval")
    r = txn(agent, [op("set", key, b"x" * (512 * 1024 + 1))])
    assert r.status_code == 413
    assert "too large" in r.text
    assert kv_get(agent, key) is None


MALFORMED_BODIES = [
    b"",
    b"not json",
    b"[",
    b'[{"KV": {"Verb": "set", "Key": "k"}',
    b'{"KV": {"Verb": "set", "Key": "k"}}',  # an object, not a list of ops
    b'"a string"',
    b"[1, 2, 3]",
    b'[{"KV": {"Verb": "set", "Key": "k", "Value": "%%% not base64 %%%"}}]',
    b'[{"KV": {"Verb": "set", "Key": "k", "Value": 12}}]',
    b'[{"KV": {"Verb": "set", "Key": "k", "Flags": -1}}]',
    b'[{"KV": {"Verb": "set", "Key": "k", "Flags": "7"}}]',
    b'[{"KV": {"Verb": "cas", "Key": "k", "Index": 1.5}}]',
    b'[{"KV": {"Verb": 3, "Key": "k"}}]',
    b'[{"KV": {"Verb": "set", "Key": ["k"]}}]',
    b'[{"KV": "set"}]',
    b"\xff\xfe\x00garbage",
    # lib.DecodeJSON uses DisallowUnknownFields (matching stays case-insensitive).
    b'[{"KV": {"Verb": "set", "Key": "k", "Bogus": 1}}]',
    b'[{"Frobnicate": {"Verb": "set", "Key": "k"}}]',
]


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_malformed_body_is_400(agent, body):
    r = txn(agent, body)
    assert r.status_code == 400, (body, r.status_code, r.text)


def test_malformed_body_error_text(agent):
    # convertOps: HTTPError{400, fmt.Sprintf("Failed to parse body: %v", err)} for every decode error.
    bad = {body: txn(agent, body).text for body in MALFORMED_BODIES}
    bad = {body: text for body, text in bad.items() if not text.startswith("Failed to parse body: ")}
    assert bad == {}


def test_malformed_body_writes_nothing(agent):
    key = uniq("malformed")
    body = json.dumps([op("set", key, b"v")])[:-5]
    r = txn(agent, body)
    assert r.status_code == 400
    assert kv_get(agent, key) is None


def test_request_keys_are_case_insensitive(agent):
    key = uniq("case")
    body = json.dumps([{"kv": {"verb": "set", "key": key, "value": b64("lower"), "flags": 3}}])
    r = txn(agent, body)
    assert r.status_code == 200, r.text
    assert r.json()["Results"][0]["KV"]["Key"] == key
    stored = kv_get(agent, key)
    assert base64.b64decode(stored["Value"]) == b"lower"
    assert stored["Flags"] == 3
    body = json.dumps([{"Kv": {"VERB": "cas", "KEY": key, "VALUE": b64("mixed"),
                                "INDEX": stored["ModifyIndex"]}}])
    r = txn(agent, body)
    assert r.status_code == 200, r.text
    assert kv_value(agent, key) == b"mixed"


def test_value_is_base64_decoded(agent):
    key = uniq("b64")
    raw = bytes(range(256))
    txn_ok(agent, [{"KV": {"Verb": "set", "Key": key, "Value": base64.b64encode(raw).decode()}}])
    assert kv_value(agent, key) == raw
    r = agent.get(f"/v1/kv/{key}?raw")
    assert r.content == raw


def test_null_or_missing_value_stores_empty(agent):
    a, b = uniq("nullval"), uniq("noval")
    txn_ok(agent, [{"KV": {"Verb": "set", "Key": a, "Value": None}},
                   {"KV": {"Verb": "set", "Key": b}}])
    assert kv_get(agent, a)["Value"] is None
    assert kv_get(agent, b)["Value"] is None


def test_missing_key_is_conflict(agent):
    errors = txn_conflict(agent, [op("set", "", b"v")])
    assert errors == [{"OpIndex": 0, "What": "Must provide key"}]


def test_unknown_verb_is_conflict(agent):
    key = uniq("verb")
    errors = txn_conflict(agent, [op("frobnicate", key, b"v")])
    assert errors == [{"OpIndex": 0, "What": 'unknown KV verb "frobnicate"'}]
    assert kv_get(agent, key) is None


def test_empty_op_list_succeeds(agent):
    r = txn(agent, [])
    assert r.status_code == 200
    body = r.json()
    assert body["Errors"] is None
    assert body["Results"] in ([], None)


def test_unknown_datacenter_is_500(agent):
    key = uniq("txndc")
    r = txn(agent, [op("set", key, b"v")], "dc=nope")
    assert r.status_code == 500
    assert r.text == "No path to datacenter"
    assert kv_get(agent, key) is None


def test_conflict_body_is_pretty_printed_on_request(agent):
    key = uniq("prettyconflict")
    r = txn(agent, [op("get", key)], "pretty")
    assert r.status_code == 409
    assert r.text == json.dumps(r.json(), indent=4) + "\n"
