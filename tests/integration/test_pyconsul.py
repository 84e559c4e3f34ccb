"""A real Consul client (py-consul 1.8.0, import name `consul`) used unchanged against Lotse.

What py-consul sends and expects (site-packages/consul, read not copied):
  * kv.get -> GET /v1/kv/<key> [?index&wait][?recurse=1][?keys=True][?separator]; needs the
    X-Consul-Index header; a 404 becomes (index, None); Value is base64-decoded.
  * kv.put -> PUT /v1/kv/<key> [?cas][?flags][?acquire][?release]; the body is the raw value and
    the JSON `true`/`false` answer is returned.
  * kv.delete -> DELETE /v1/kv/<key> [?recurse=1][?cas].
  * session.create -> PUT /v1/session/create with lower-case keys ("name", "lockdelay": "<n>s",
    "behavior", "ttl": "<n>s") and reads {"ID"}; info/list/node read the X-Consul-Index header;
    info takes the first element of the array (None for []); renew raises consul.NotFound on 404.
  * txn.put -> PUT /v1/txn with a JSON list; a 409 (rolled back) raises ClientError.
Consul semantics asserted are those of agent/kvs_endpoint.go, agent/txn_endpoint.go,
agent/session_endpoint.go and agent/consul/state/kvs.go.
"""
import base64
import threading
import time
import uuid

import consul
import pytest
from consul.callback import CB
from consul.exceptions import ClientError


@pytest.fixture(scope="module")
def c(agent):
    return consul.Consul(host="127.0.0.1", port=agent.http_port)


def uk(prefix):
    return f"py/{prefix}/{uuid.uuid4().hex[:8]}"


def b64(s: bytes) -> str:
    return base64.b64encode(s).decode()


# ---------------------------------------------------------------------------- KV

def test_kv_put_get(c):
    key = uk("putget")
    assert c.kv.put(key, "hello") is True
    index, data = c.kv.get(key)
    assert int(index) > 0
    assert data["Key"] == key
    assert data["Value"] == b"hello"
    assert data["Flags"] == 0
    assert data["LockIndex"] == 0
    assert data["CreateIndex"] == data["ModifyIndex"] <= int(index)


def test_kv_get_missing_is_none(c):
    index, data = c.kv.get(uk("missing"))
    assert data is None
    assert int(index) > 0


def test_kv_flags_and_binary_value(c):
    key = uk("flags")
    raw = bytes(range(256))
    assert c.kv.put(key, raw, flags=42) is True
    _, data = c.kv.get(key)
    assert data["Flags"] == 42
    assert data["Value"] == raw


def test_kv_empty_value_is_none(c):
    # Consul stores an empty body as a nil value, served as JSON null.
    key = uk("empty")
    assert c.kv.put(key, "") is True
    _, data = c.kv.get(key)
    assert data["Value"] is None


def test_kv_recurse_keys_separator(c):
    base = uk("tree")
    for k in ["a", "b/1", "b/2", "c"]:
        assert c.kv.put(f"{base}/{k}", k) is True
    _, items = c.kv.get(base + "/", recurse=True)
    assert [i["Key"] for i in items] == [f"{base}/{k}" for k in ["a", "b/1", "b/2", "c"]]
    assert [i["Value"] for i in items] == [b"a", b"b/1", b"b/2", b"c"]
    _, keys = c.kv.get(base + "/", keys=True)
    assert keys == [f"{base}/{k}" for k in ["a", "b/1", "b/2", "c"]]
    _, keys = c.kv.get(base + "/", keys=True, separator="/")
    assert keys == [f"{base}/a", f"{base}/b/", f"{base}/c"]


def test_kv_delete_and_recursive_delete(c):
    base = uk("del")
    for k in ["x", "y/1", "y/2"]:
        c.kv.put(f"{base}/{k}", "v")
    assert c.kv.delete(f"{base}/x") is True
    assert c.kv.get(f"{base}/x")[1] is None
    assert c.kv.delete(f"{base}/y", recurse=True) is True
    assert c.kv.get(base + "/", recurse=True)[1] is None
    # Deleting a missing key is still true.
    assert c.kv.delete(f"{base}/never") is True


def test_kv_cas(c):
    key = uk("cas")
    assert c.kv.put(key, "v1", cas=0) is True       # create-only
    assert c.kv.put(key, "v2", cas=0) is False      # exists already
    _, data = c.kv.get(key)
    assert c.kv.put(key, "v3", cas=data["ModifyIndex"] + 1000) is False
    assert c.kv.put(key, "v3", cas=data["ModifyIndex"]) is True
    _, data2 = c.kv.get(key)
    assert data2["Value"] == b"v3"
    assert data2["ModifyIndex"] > data["ModifyIndex"]
    assert c.kv.delete(key, cas=data["ModifyIndex"]) is False
    assert c.kv.delete(key, cas=data2["ModifyIndex"]) is True
    assert c.kv.get(key)[1] is None


def test_kv_blocking_get_wakes_on_write(c):
    key = uk("block")
    c.kv.put(key, "before")
    index, _ = c.kv.get(key)

    def later():
        time.sleep(0.5)
        c.kv.put(key, "after")

    t = threading.Thread(target=later)
    t.start()
    start = time.monotonic()
    new_index, data = c.kv.get(key, index=index, wait="5s")
    elapsed = time.monotonic() - start
    t.join()
    assert data["Value"] == b"after"
    assert int(new_index) > int(index)
    assert 0.3 <= elapsed < 4.5, elapsed


def test_kv_blocking_get_times_out_with_same_index(c):
    key = uk("block-timeout")
    c.kv.put(key, "still")
    index, _ = c.kv.get(key)
    start = time.monotonic()
    new_index, data = c.kv.get(key, index=index, wait="1s")
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 4, elapsed
    assert new_index == index
    assert data["Value"] == b"still"


# ---------------------------------------------------------------------------- sessions

def test_session_lifecycle(c):
    node = c.agent.self()["Config"]["NodeName"]
    sid = c.session.create(name="py-session", ttl=30, lock_delay=2, behavior="delete")
    index, s = c.session.info(sid)
    assert int(index) > 0
    assert s["ID"] == sid and s["Name"] == "py-session"
    assert s["TTL"] == "30s"
    assert s["LockDelay"] == 2_000_000_000
    assert s["Behavior"] == "delete"
    assert s["Node"] == node
    _, sessions = c.session.list()
    assert sid in [x["ID"] for x in sessions]
    _, sessions = c.session.node(node)
    assert sid in [x["ID"] for x in sessions]
    renewed = c.session.renew(sid)
    assert renewed["ID"] == sid
    assert c.session.destroy(sid) is True
    assert c.session.info(sid)[1] is None


def test_session_lock_delay_zero_from_client(c):
    # py-consul sends "lockdelay": "0s" -> LockDelay 0.
    sid = c.session.create(lock_delay=0)
    assert c.session.info(sid)[1]["LockDelay"] == 0
    c.session.destroy(sid)


def test_session_renew_unknown_raises_not_found(c):
    with pytest.raises(consul.NotFound):
        c.session.renew(str(uuid.uuid4()))


def test_session_create_bad_ttl_raises(c):
    # ttl must be 10..86400 on the client side too; bypass the client check with a raw body.
    with pytest.raises(consul.ConsulException):
        c.http.put(CB.json(is_id=True), "/v1/session/create", data='{"TTL": "5s"}')


# ---------------------------------------------------------------------------- locks

def test_lock_acquire_release(c):
    key = uk("lock")
    s1 = c.session.create(lock_delay=0)
    s2 = c.session.create(lock_delay=0)
    assert c.kv.put(key, "held", acquire=s1) is True
    assert c.kv.put(key, "stolen", acquire=s2) is False
    _, data = c.kv.get(key)
    assert data["Session"] == s1
    assert data["Value"] == b"held"
    assert data["LockIndex"] == 1
    assert c.kv.put(key, "free", release=s2) is False
    assert c.kv.put(key, "free", release=s1) is True
    _, data = c.kv.get(key)
    assert "Session" not in data
    assert data["Value"] == b"free"
    assert c.kv.put(key, "mine", acquire=s2) is True
    assert c.kv.get(key)[1]["LockIndex"] == 2
    c.session.destroy(s1)
    c.session.destroy(s2)
    _, data = c.kv.get(key)
    assert "Session" not in data


def test_session_delete_behavior_removes_locked_key(c):
    key = uk("ephemeral")
    sid = c.session.create(behavior="delete", lock_delay=0)
    assert c.kv.put(key, "tmp", acquire=sid) is True
    assert c.session.destroy(sid) is True
    assert c.kv.get(key)[1] is None


# ---------------------------------------------------------------------------- txn

def test_txn_set_and_get(c):
    base = uk("txn")
    ops = [{"KV": {"Verb": "set", "Key": f"{base}/{i}", "Value": b64(f"val{i}".encode())}} for i in range(5)]
    res = c.txn.put(ops)
    assert res["Errors"] is None
    assert len(res["Results"]) == 5
    for i, r in enumerate(res["Results"]):
        assert r["KV"]["Key"] == f"{base}/{i}"
        assert r["KV"]["ModifyIndex"] > 0
    # All writes of one transaction share one Raft index.
    assert len({r["KV"]["ModifyIndex"] for r in res["Results"]}) == 1
    res = c.txn.put([{"KV": {"Verb": "get", "Key": f"{base}/3"}}])
    assert res["Errors"] is None
    assert base64.b64decode(res["Results"][0]["KV"]["Value"]) == b"val3"
    _, items = c.kv.get(base + "/", recurse=True)
    assert [i["Value"] for i in items] == [f"val{i}".encode() for i in range(5)]


def test_txn_failed_cas_rolls_back(c):
    base = uk("txn-rollback")
    c.kv.put(f"{base}/existing", "orig")
    _, cur = c.kv.get(f"{base}/existing")
    ops = [
        {"KV": {"Verb": "set", "Key": f"{base}/new", "Value": b64(b"n")}},
        {"KV": {"Verb": "cas", "Key": f"{base}/existing", "Value": b64(b"changed"),
                "Index": cur["ModifyIndex"] + 999}},
    ]
    with pytest.raises(ClientError) as ei:
        c.txn.put(ops)
    assert str(ei.value).startswith("409"), str(ei.value)
    assert c.kv.get(f"{base}/new")[1] is None
    assert c.kv.get(f"{base}/existing")[1]["Value"] == b"orig"


def test_txn_lock_and_unlock(c):
    key = uk("txn-lock")
    sid = c.session.create(lock_delay=0)
    res = c.txn.put([{"KV": {"Verb": "lock", "Key": key, "Value": b64(b"L"), "Session": sid}}])
    assert res["Errors"] is None
    _, data = c.kv.get(key)
    assert data["Session"] == sid and data["LockIndex"] == 1
    res = c.txn.put([{"KV": {"Verb": "unlock", "Key": key, "Value": b64(b"U"), "Session": sid}}])
    assert res["Errors"] is None
    _, data = c.kv.get(key)
    assert "Session" not in data and data["Value"] == b"U"
    c.session.destroy(sid)


# ---------------------------------------------------------------------------- agent / status

def test_status_and_agent_through_client(c):
    leader = c.status.leader()
    assert isinstance(leader, str) and ":" in leader
    assert leader in c.status.peers()
    me = c.agent.self()
    assert me["Config"]["Datacenter"]
    names = [m["Name"] for m in c.agent.members()]
    assert me["Config"]["NodeName"] in names
