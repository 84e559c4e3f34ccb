"""Sessions and session-backed KV locks, asserted against Consul's HTTP contract.

References (Consul source, read not copied):
  * agent/session_endpoint.go (HTTPHandlers.SessionCreate/Destroy/Renew/Get/List/SessionsForNode):
      - defaults: Node = agent NodeName, NodeChecks ["serfHealth"], LockDelay 15s, Behavior "release";
      - body decode failure -> 400 "Request decode failed: <err>";
      - renew of an unknown id -> 404 "Session id '<id>' not found";
      - info/list/node answer [] (never null) when nothing matches; destroy answers `true`.
  * agent/structs/structs.go (type Session, Session.UnmarshalJSON): JSON fields ID, Name, Node,
    LockDelay (nanoseconds), Behavior, TTL, NodeChecks, ServiceChecks, Checks (omitempty),
    CreateIndex, ModifyIndex; LockDelay accepts a duration string or a number, and any value
    below lockDelayMinThreshold (1000) is taken as seconds.
  * agent/consul/session_endpoint.go (Session.Apply): TTL must be 0 or within
    [SessionTTLMin=10s, SessionTTLMax=24h]; otherwise the RPC fails with
    "Invalid Session TTL '<ns>', must be between [10s=24h0m0s]"; an unparsable TTL fails with
    "Session TTL '<ttl>' invalid: ..."; a bad Behavior with "Invalid Behavior setting '<b>'".
    These are plain RPC errors, which agent/http.go maps to HTTP 500 with the message as body
    (only HTTPError/forbidden/rate-limit/method errors get other codes). Clients rely on it:
    python-consul's test suite maps a 500 with "Invalid Session TTL '3000000000', must be between
    [10s=24h0m0s]" to its InvalidSessionTTL exception. Consul's own test
    (agent/consul/session_endpoint_test.go) pins the exact messages for "5s" and "100000s".
    Destroying an unknown session is not an error (returns true).
  * agent/consul/state/session.go: a session on an unregistered node fails with
    "Missing node registration" (HTTP 500).
  * agent/consul/state/kvs.go (kvsLockTxn/kvsUnlockTxn): acquire of a free key sets Session and
    LockIndex+1 (1 for a new key); re-acquire by the holder keeps LockIndex; a key held by another
    session answers false; release by the holder clears Session; acquire with an unknown session
    fails with `invalid session "<id>"` (HTTP 500).
  * agent/consul/kvs_endpoint.go: acquire inside a key's lock-delay answers false; lock-delay is
    armed only when a session is invalidated (destroy/TTL), not on an explicit ?release.
  * agent/consul/session_ttl.go: TTL timers run for TTL * SessionTTLMultiplier (2).
"""
import re
import threading
import time
import uuid

import pytest
import requests

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

SESSION_KEYS = {
    "ID", "Name", "Node", "LockDelay", "Behavior", "TTL", "NodeChecks", "ServiceChecks",
    "CreateIndex", "ModifyIndex",
}


# ---------------------------------------------------------------------------- helpers

def node_name(agent):
    r = agent.get("/v1/agent/self")
    assert r.status_code == 200, r.text
    return r.json()["Config"]["NodeName"]


def create(agent, body=None, **kw):
    """PUT /v1/session/create; returns the session ID (asserting 200 + {"ID": uuid})."""
    if body is None:
        r = agent.put("/v1/session/create", **kw)
    else:
        r = agent.put("/v1/session/create", json=body, **kw)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    data = r.json()
    assert set(data) == {"ID"}, data
    assert UUID_RE.match(data["ID"]), data
    return data["ID"]


def info(agent, sid):
    r = agent.get(f"/v1/session/info/{sid}")
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()


def destroy(agent, sid):
    r = agent.put(f"/v1/session/destroy/{sid}")
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.json() is True
    return r


def kv_entry(agent, key):
    r = agent.get(f"/v1/kv/{key}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    entries = r.json()
    assert isinstance(entries, list) and len(entries) == 1
    return entries[0]


def acquire(agent, key, sid, value=b"v"):
    r = agent.put(f"/v1/kv/{key}", params={"acquire": sid}, data=value)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()


def release(agent, key, sid, value=b"v"):
    r = agent.put(f"/v1/kv/{key}", params={"release": sid}, data=value)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------- create

def test_create_with_empty_body_uses_consul_defaults(agent):
    sid = create(agent)
    sessions = info(agent, sid)
    assert isinstance(sessions, list) and len(sessions) == 1
    s = sessions[0]
    assert s["ID"] == sid
    assert s["Node"] == node_name(agent)
    assert s["Behavior"] == "release"
    assert s["LockDelay"] == 15_000_000_000
    assert s["NodeChecks"] == ["serfHealth"]
    assert s["Name"] == ""
    assert s["TTL"] == ""
    assert isinstance(s["CreateIndex"], int) and s["CreateIndex"] > 0
    assert s["ModifyIndex"] == s["CreateIndex"]


def test_session_json_has_exactly_consuls_fields(agent):
    # OSS Consul: EnterpriseMeta is empty and the deprecated Checks is omitempty and emptied by
    # fixupEmptySessionChecks when it holds only the default serfHealth.
    sid = create(agent, {"Name": "shape"})
    s = info(agent, sid)[0]
    assert set(s) == SESSION_KEYS, sorted(s)
    assert s["ServiceChecks"] is None


def test_create_response_content_type_is_json(agent):
    r = agent.put("/v1/session/create")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")


def test_create_with_name_ttl_and_delete_behavior(agent):
    sid = create(agent, {"Name": "my-service-lock", "TTL": "30s", "Behavior": "delete"})
    s = info(agent, sid)[0]
    assert s["Name"] == "my-service-lock"
    assert s["TTL"] == "30s"
    assert s["Behavior"] == "delete"


def test_create_accepts_lowercase_field_names(agent):
    # Go's encoding/json matches field names case-insensitively; py-consul sends lowercase keys.
    sid = create(agent, {"name": "lower", "lockdelay": "3s", "behavior": "delete", "ttl": "20s"})
    s = info(agent, sid)[0]
    assert (s["Name"], s["LockDelay"], s["Behavior"], s["TTL"]) == ("lower", 3_000_000_000, "delete", "20s")


@pytest.mark.parametrize("given,expected_ns", [
    ("1s", 1_000_000_000),
    ("250ms", 250_000_000),
    ("1m", 60_000_000_000),
    ("0s", 0),
    (5, 5_000_000_000),            # small numbers are seconds
    (30, 30_000_000_000),
    (2_000_000_000, 2_000_000_000),  # >= 1000: nanoseconds
    ("20ns", 20_000_000_000),      # a duration below 1000ns is scaled to seconds as well
])
def test_lock_delay_string_and_number(agent, given, expected_ns):
    sid = create(agent, {"LockDelay": given})
    assert info(agent, sid)[0]["LockDelay"] == expected_ns


@pytest.mark.parametrize("ttl", ["10s", "86400s", "24h", "0s"])
def test_ttl_within_range_is_accepted(agent, ttl):
    sid = create(agent, {"TTL": ttl})
    assert info(agent, sid)[0]["TTL"] == ttl


@pytest.mark.parametrize("ttl,ns", [("9s", 9_000_000_000), ("86401s", 86_401_000_000_000), ("1ms", 1_000_000)])
def test_ttl_out_of_range_is_rejected_with_consuls_message(agent, ttl, ns):
    r = agent.put("/v1/session/create", json={"TTL": ttl})
    # Consul: Session.Apply returns a plain error -> HTTP 500 with the message as the body.
    assert r.status_code == 500, f"{r.status_code} {r.text}"
    assert r.text.strip() == f"Invalid Session TTL '{ns}', must be between [10s=24h0m0s]"


def test_unparsable_ttl_is_rejected(agent):
    r = agent.put("/v1/session/create", json={"TTL": "soon"})
    assert r.status_code == 500, f"{r.status_code} {r.text}"
    assert r.text.startswith("Session TTL 'soon' invalid:"), r.text


def test_invalid_behavior_is_rejected(agent):
    r = agent.put("/v1/session/create", json={"Behavior": "explode"})
    assert r.status_code == 500, f"{r.status_code} {r.text}"
    assert r.text.strip() == "Invalid Behavior setting 'explode'"


@pytest.mark.parametrize("body", [b"{not json", b'{"Name": ', b'{"LockDelay": "fast"}'])
def test_invalid_body_is_400_request_decode_failed(agent, body):
    r = agent.put("/v1/session/create", data=body)
    assert r.status_code == 400, f"{r.status_code} {r.text}"
    assert r.text.startswith("Request decode failed: "), r.text


def test_unknown_node_is_missing_node_registration(agent):
    r = agent.put("/v1/session/create", json={"Node": "no-such-node-" + uuid.uuid4().hex[:6]})
    assert r.status_code == 500, f"{r.status_code} {r.text}"
    assert "Missing node registration" in r.text


def test_explicit_node_equal_to_agent_node(agent):
    node = node_name(agent)
    sid = create(agent, {"Node": node})
    assert info(agent, sid)[0]["Node"] == node


# ---------------------------------------------------------------------------- read

def test_info_unknown_session_is_empty_list(agent):
    r = agent.get(f"/v1/session/info/{uuid.uuid4()}")
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.json() == []
    assert int(r.headers["X-Consul-Index"]) > 0


def test_info_sets_query_meta_headers(agent):
    sid = create(agent)
    r = agent.get(f"/v1/session/info/{sid}")
    assert r.status_code == 200
    assert int(r.headers["X-Consul-Index"]) >= r.json()[0]["ModifyIndex"]
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert "X-Consul-LastContact" in r.headers


def test_list_contains_created_sessions(agent):
    a, b = create(agent, {"Name": "list-a"}), create(agent, {"Name": "list-b"})
    r = agent.get("/v1/session/list")
    assert r.status_code == 200
    assert int(r.headers["X-Consul-Index"]) > 0
    listed = {s["ID"]: s for s in r.json()}
    assert listed[a]["Name"] == "list-a" and listed[b]["Name"] == "list-b"
    assert set(listed[a]) == SESSION_KEYS


def test_list_on_empty_store_is_empty_array(fresh_agent):
    r = fresh_agent.get("/v1/session/list")
    assert r.status_code == 200
    assert r.text.strip() == "[]"


def test_node_sessions(agent):
    node = node_name(agent)
    sid = create(agent, {"Name": "node-list"})
    r = agent.get(f"/v1/session/node/{node}")
    assert r.status_code == 200
    assert sid in {s["ID"] for s in r.json()}
    assert all(s["Node"] == node for s in r.json())
    r = agent.get("/v1/session/node/nobody-here")
    assert r.status_code == 200
    assert r.json() == []


def test_session_list_blocking_query_wakes_on_create(agent):
    r = agent.get("/v1/session/list")
    idx = int(r.headers["X-Consul-Index"])
    box = {}

    def later():
        time.sleep(0.4)
        box["sid"] = create(agent, {"Name": "blocking"})

    t = threading.Thread(target=later)
    t.start()
    start = time.monotonic()
    r = agent.get("/v1/session/list", params={"index": idx, "wait": "10s"}, timeout=20)
    elapsed = time.monotonic() - start
    t.join()
    assert r.status_code == 200
    assert elapsed < 8, "blocking query did not wake on the session create"
    assert int(r.headers["X-Consul-Index"]) > idx
    assert box["sid"] in {s["ID"] for s in r.json()}


# ---------------------------------------------------------------------------- renew / destroy

def test_renew_returns_session_in_array(agent):
    sid = create(agent, {"TTL": "15s", "Name": "renew-me"})
    r = agent.put(f"/v1/session/renew/{sid}")
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["ID"] == sid and body[0]["TTL"] == "15s" and body[0]["Name"] == "renew-me"


def test_renew_unknown_session_is_404(agent):
    bogus = str(uuid.uuid4())
    r = agent.put(f"/v1/session/renew/{bogus}")
    assert r.status_code == 404, f"{r.status_code} {r.text}"
    assert r.text.strip() == f"Session id '{bogus}' not found"


def test_destroy_returns_true_and_removes(agent):
    sid = create(agent)
    r = destroy(agent, sid)
    assert r.text.strip() == "true"
    assert info(agent, sid) == []
    assert sid not in {s["ID"] for s in agent.get("/v1/session/list").json()}


def test_destroy_unknown_session_returns_true(agent):
    destroy(agent, str(uuid.uuid4()))


# ---------------------------------------------------------------------------- locks through KV

def test_acquire_contention_and_reacquire(agent):
    key = unique("locks/contend")
    s1, s2 = create(agent), create(agent)
    assert acquire(agent, key, s1, b"one") is True
    e = kv_entry(agent, key)
    assert e["Session"] == s1 and e["LockIndex"] == 1
    assert acquire(agent, key, s2, b"two") is False
    e = kv_entry(agent, key)
    assert e["Session"] == s1 and e["LockIndex"] == 1
    # The holder may acquire again: value updates, LockIndex stays.
    assert acquire(agent, key, s1, b"uno") is True
    e2 = kv_entry(agent, key)
    assert e2["Session"] == s1 and e2["LockIndex"] == 1
    assert e2["ModifyIndex"] > e["ModifyIndex"]
    assert agent.get(f"/v1/kv/{key}", params={"raw": ""}).content == b"uno"


def test_lock_index_increments_per_acquisition(agent):
    key = unique("locks/index")
    s1, s2 = create(agent), create(agent)
    for expected, sid in [(1, s1), (2, s2), (3, s1)]:
        assert acquire(agent, key, sid) is True
        assert kv_entry(agent, key)["LockIndex"] == expected
        assert release(agent, key, sid) is True
        e = kv_entry(agent, key)
        assert e["LockIndex"] == expected, "release must not change LockIndex"
        assert "Session" not in e, "Session is omitempty once released"


def test_release_by_non_holder_is_false(agent):
    key = unique("locks/relother")
    s1, s2 = create(agent), create(agent)
    assert acquire(agent, key, s1) is True
    assert release(agent, key, s2) is False
    assert kv_entry(agent, key)["Session"] == s1
    assert release(agent, key, s1) is True


def test_explicit_release_does_not_arm_lock_delay(agent):
    key = unique("locks/nodelay")
    s1 = create(agent, {"LockDelay": "30s"})
    s2 = create(agent)
    assert acquire(agent, key, s1) is True
    assert release(agent, key, s1) is True
    assert acquire(agent, key, s2) is True


def test_acquire_with_unknown_session_fails(agent):
    bogus = str(uuid.uuid4())
    r = agent.put(f"/v1/kv/{unique('locks/bogus')}", params={"acquire": bogus}, data=b"x")
    assert r.status_code == 500, f"{r.status_code} {r.text}"
    assert f'invalid session "{bogus}"' in r.text


def test_destroy_release_behavior_releases_keys(agent):
    key = unique("locks/rel")
    sid = create(agent, {"LockDelay": "0s"})
    assert acquire(agent, key, sid, b"keep") is True
    before = kv_entry(agent, key)
    destroy(agent, sid)
    e = kv_entry(agent, key)
    assert e is not None, "behavior=release must keep the key"
    assert "Session" not in e
    assert e["LockIndex"] == before["LockIndex"]
    assert e["ModifyIndex"] > before["ModifyIndex"]
    assert agent.get(f"/v1/kv/{key}", params={"raw": ""}).content == b"keep"


def test_destroy_delete_behavior_deletes_keys(agent):
    k1, k2 = unique("locks/del"), unique("locks/del")
    other = unique("locks/del-untouched")
    sid = create(agent, {"Behavior": "delete", "LockDelay": "0s"})
    assert acquire(agent, k1, sid) is True
    assert acquire(agent, k2, sid) is True
    assert agent.put(f"/v1/kv/{other}", data=b"x").json() is True
    destroy(agent, sid)
    assert agent.get(f"/v1/kv/{k1}").status_code == 404
    assert agent.get(f"/v1/kv/{k2}").status_code == 404
    assert agent.get(f"/v1/kv/{other}").status_code == 200


def test_lock_delay_after_destroy(agent):
    key = unique("locks/delay")
    holder = create(agent, {"LockDelay": "1s"})
    waiter = create(agent)
    assert acquire(agent, key, holder) is True
    t0 = time.monotonic()
    destroy(agent, holder)
    assert "Session" not in kv_entry(agent, key)
    # Within the lock-delay another session is refused (200 false), even though the key is free.
    assert acquire(agent, key, waiter) is False
    deadline = t0 + 6
    while time.monotonic() < deadline:
        if acquire(agent, key, waiter) is True:
            break
        time.sleep(0.05)
    else:
        pytest.fail("lock never became acquirable after a 1s lock-delay")
    assert time.monotonic() - t0 >= 0.95, "acquired before the lock-delay elapsed"
    assert kv_entry(agent, key)["Session"] == waiter


def test_lock_delay_zero_allows_immediate_acquire(agent):
    key = unique("locks/zero")
    holder = create(agent, {"LockDelay": 0})
    waiter = create(agent)
    assert acquire(agent, key, holder) is True
    destroy(agent, holder)
    assert acquire(agent, key, waiter) is True


def test_ttl_expiry_invalidates_and_renew_keeps_alive(agent):
    """One slow test: two 10s-TTL sessions, one renewed every 2s, the other left alone.

    Consul never expires a session before its TTL and expires it within TTL*2 (plus scheduling);
    the renewed one must survive past 2*TTL.
    """
    key = unique("locks/ttl")
    idle = create(agent, {"TTL": "10s", "LockDelay": "0s"})
    kept = create(agent, {"TTL": "10s"})
    assert acquire(agent, key, idle) is True
    t0 = time.monotonic()
    expired_at = None
    last_renew = 0.0
    while time.monotonic() - t0 < 23.5:
        now = time.monotonic()
        if now - last_renew >= 2:
            r = agent.put(f"/v1/session/renew/{kept}")
            assert r.status_code == 200, f"renew of a live session failed: {r.status_code} {r.text}"
            last_renew = now
        if expired_at is None and info(agent, idle) == []:
            expired_at = time.monotonic() - t0
        time.sleep(0.25)
    assert expired_at is not None, "a 10s TTL session was not invalidated within ~23s"
    assert expired_at >= 9.5, f"session expired after {expired_at:.1f}s, before its 10s TTL"
    assert info(agent, kept) != [], "a renewed session must stay alive"
    e = kv_entry(agent, key)
    assert e is not None and "Session" not in e, "expiry must release the lock (behavior release)"
