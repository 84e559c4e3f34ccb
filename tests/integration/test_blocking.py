"""Blocking queries (`?index=` / `?wait=`) on the KV endpoint.

References:
  * developer.hashicorp.com/consul/api-docs/features/blocking - semantics, `wait` in Go duration syntax
    (e.g. "10s", "5m"), jitter of up to wait/16 added to the wait time, the response carries the new
    X-Consul-Index when woken and the same one when the wait expires.
  * agent/http.go parseWait - `time.ParseDuration` ("Invalid wait time") and `strconv.ParseUint`
    ("Invalid index"), both 400.
  * agent/consul/state/kvs.go - prefix (recurse / keys) indexes include tombstones, so deletes under a
    watched prefix advance its index; writes outside it do not.

Lotse deliberately does better than Consul for single keys: a watch on key A is not woken (and its
index does not move) when an unrelated key B changes.
"""
import base64
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests

POOL = ThreadPoolExecutor(max_workers=16)


# ----------------------------------------------------------------------------- helpers

def uniq(tag="blk"):
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def kv_path(key, query=""):
    return "/v1/kv/" + quote(key, safe="/") + ("?" + query if query else "")


def index_of(resp):
    return int(resp.headers["X-Consul-Index"])


def put(agent, key, value):
    r = agent.put(kv_path(key), data=value)
    assert r.status_code == 200 and r.json() is True, r.text


def delete(agent, key, query=""):
    r = agent.delete(kv_path(key, query))
    assert r.status_code == 200 and r.json() is True, r.text


def value_of(entry):
    return base64.b64decode(entry["Value"]) if entry["Value"] is not None else b""


class Parked:
    """A blocking GET running in the background."""

    def __init__(self, agent, path, timeout=30):
        self.url = agent.url + path
        self.started = time.monotonic()
        self.elapsed = None
        self.future = POOL.submit(self._run, timeout)

    def _run(self, timeout):
        r = requests.get(self.url, timeout=timeout)
        self.elapsed = time.monotonic() - self.started
        return r

    def parked_for(self, seconds):
        """Sleeps, then tells whether the request is still outstanding."""
        time.sleep(seconds)
        return not self.future.done()

    def result(self, timeout=15):
        return self.future.result(timeout=timeout)


def settle():
    """Gives a just-started blocking request time to reach the server and park."""
    time.sleep(0.3)


# ----------------------------------------------------------------------------- single key

def test_blocks_until_key_changes(agent):
    key = uniq("wake")
    put(agent, key, b"v1")
    r = agent.get(kv_path(key))
    h = index_of(r)
    p = Parked(agent, kv_path(key, f"index={h}&wait=5s"))
    assert p.parked_for(0.5), p.result().text
    put(agent, key, b"v2")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    [entry] = r.json()
    assert value_of(entry) == b"v2"
    assert index_of(r) >= entry["ModifyIndex"] > h
    assert p.elapsed < 4.0, "woken by the write, not by the wait timeout"


def test_times_out_after_wait_with_same_index(agent):
    key = uniq("timeout")
    put(agent, key, b"v")
    r = agent.get(kv_path(key))
    h = index_of(r)
    t0 = time.monotonic()
    r = agent.get(kv_path(key, f"index={h}&wait=1s"))
    elapsed = time.monotonic() - t0
    assert r.status_code == 200
    assert index_of(r) == h
    assert value_of(r.json()[0]) == b"v"
    assert 0.95 <= elapsed < 1.0 + 1.0 / 16 + 1.0, elapsed


def test_watch_on_key_is_not_woken_by_other_keys(agent):
    key = uniq("quiet")
    others = [key + "bar", key + "/child", uniq("unrelated")]  # incl. keys sharing A's prefix
    put(agent, key, b"a")
    for o in others:
        put(agent, o, b"first")
    r = agent.get(kv_path(key))
    h = index_of(r)
    a_index = r.json()[0]["ModifyIndex"]
    p = Parked(agent, kv_path(key, f"index={h}&wait=2s"))
    settle()
    for o in others:
        put(agent, o, b"second")
    delete(agent, others[-1])
    assert p.parked_for(1.0), "a write to another key woke the watch on A"
    r = p.result()
    assert r.status_code == 200
    assert p.elapsed >= 1.9, p.elapsed
    assert value_of(r.json()[0]) == b"a"
    assert index_of(r) == a_index, "the index of A must not move when other keys change"


def test_watch_wakes_on_delete(agent):
    key = uniq("delwake")
    put(agent, key, b"v")
    h = index_of(agent.get(kv_path(key)))
    p = Parked(agent, kv_path(key, f"index={h}&wait=5s"))
    assert p.parked_for(0.3)
    delete(agent, key)
    r = p.result()
    assert r.status_code == 404
    assert index_of(r) > h
    assert p.elapsed < 4.0


def test_watch_on_missing_key_wakes_when_created(agent):
    key = uniq("create")
    r = agent.get(kv_path(key))
    assert r.status_code == 404
    h = index_of(r)
    assert h > 0
    p = Parked(agent, kv_path(key, f"index={h}&wait=5s"))
    assert p.parked_for(0.5), p.result().status_code
    put(agent, key, b"born")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    [entry] = r.json()
    assert entry["Key"] == key
    assert value_of(entry) == b"born"
    assert p.elapsed < 4.0


def test_watch_on_missing_key_times_out_with_404(agent):
    key = uniq("stillmissing")
    r = agent.get(kv_path(key))
    h = index_of(r)
    t0 = time.monotonic()
    r = agent.get(kv_path(key, f"index={h}&wait=500ms"))
    elapsed = time.monotonic() - t0
    assert r.status_code == 404
    assert index_of(r) == h
    assert 0.45 <= elapsed < 1.5, elapsed


def test_raw_blocking_query(agent):
    key = uniq("rawwake")
    put(agent, key, b"v1")
    h = index_of(agent.get(kv_path(key, "raw")))
    p = Parked(agent, kv_path(key, f"raw&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    put(agent, key, b"v2")
    r = p.result()
    assert r.status_code == 200
    assert r.content == b"v2"
    assert index_of(r) > h


def test_all_watchers_of_a_key_wake(agent):
    key = uniq("many")
    put(agent, key, b"v1")
    h = index_of(agent.get(kv_path(key)))
    parked = [Parked(agent, kv_path(key, f"index={h}&wait=10s")) for _ in range(5)]
    settle()
    assert not any(p.future.done() for p in parked)
    put(agent, key, b"v2")
    for p in parked:
        r = p.result()
        assert r.status_code == 200
        assert index_of(r) > h
        assert value_of(r.json()[0]) == b"v2"
        assert p.elapsed < 5.0


# ----------------------------------------------------------------------------- prefix watches

def test_prefix_watch_wakes_on_put_under_prefix(agent):
    root = uniq("pfx") + "/"
    put(agent, root + "a", b"1")
    r = agent.get(kv_path(root, "recurse"))
    h = index_of(r)
    p = Parked(agent, kv_path(root, f"recurse&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    put(agent, root + "b/c", b"2")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    assert [e["Key"] for e in r.json()] == [root + "a", root + "b/c"]
    assert p.elapsed < 4.0


def test_prefix_watch_wakes_on_update_under_prefix(agent):
    root = uniq("pfxupd") + "/"
    put(agent, root + "a", b"1")
    put(agent, root + "b", b"1")
    h = index_of(agent.get(kv_path(root, "recurse")))
    p = Parked(agent, kv_path(root, f"recurse&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    put(agent, root + "a", b"changed")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    assert [value_of(e) for e in r.json()] == [b"changed", b"1"]


def test_prefix_watch_wakes_on_delete_under_prefix(agent):
    root = uniq("pfxdel") + "/"
    put(agent, root + "keep", b"1")
    put(agent, root + "drop", b"2")
    h = index_of(agent.get(kv_path(root, "recurse")))
    p = Parked(agent, kv_path(root, f"recurse&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    delete(agent, root + "drop")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    assert [e["Key"] for e in r.json()] == [root + "keep"]
    assert p.elapsed < 4.0


def test_prefix_watch_wakes_on_delete_tree(agent):
    root = uniq("pfxtree") + "/"
    put(agent, root + "a", b"1")
    put(agent, root + "b/c", b"2")
    h = index_of(agent.get(kv_path(root, "recurse")))
    p = Parked(agent, kv_path(root, f"recurse&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    delete(agent, root, "recurse")
    r = p.result()
    assert r.status_code == 404
    assert index_of(r) > h
    assert p.elapsed < 4.0


def test_prefix_watch_not_woken_outside_prefix(agent):
    base = uniq("pfxout")
    root = base + "/"
    put(agent, root + "a", b"1")
    outside = [base, base + "x", base + "-sibling/a", uniq("elsewhere")]
    for o in outside:
        put(agent, o, b"first")
    h = index_of(agent.get(kv_path(root, "recurse")))
    p = Parked(agent, kv_path(root, f"recurse&index={h}&wait=10s"))
    settle()
    for o in outside:
        put(agent, o, b"second")
    delete(agent, outside[-1])
    assert p.parked_for(1.0), "a write outside the prefix woke the prefix watch"
    # Still wakeable by a write inside the prefix.
    put(agent, root + "b", b"2")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    assert [e["Key"] for e in r.json()] == [root + "a", root + "b"]
    assert p.elapsed < 6.0


def test_prefix_watch_on_empty_prefix_wakes_when_key_created(agent):
    root = uniq("pfxempty") + "/"
    r = agent.get(kv_path(root, "recurse"))
    assert r.status_code == 404
    h = index_of(r)
    p = Parked(agent, kv_path(root, f"recurse&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    put(agent, root + "first", b"1")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    assert [e["Key"] for e in r.json()] == [root + "first"]


def test_prefix_watch_sees_a_txn_atomically(agent):
    root = uniq("pfxtxn") + "/"
    put(agent, root + "a", b"0")
    h = index_of(agent.get(kv_path(root, "recurse")))
    p = Parked(agent, kv_path(root, f"recurse&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    ops = [{"KV": {"Verb": "set", "Key": root + k, "Value": base64.b64encode(b"1").decode()}}
           for k in ["a", "b", "c"]]
    r = agent.put("/v1/txn", json=ops)
    assert r.status_code == 200, r.text
    r = p.result()
    assert r.status_code == 200
    entries = r.json()
    assert [e["Key"] for e in entries] == [root + "a", root + "b", root + "c"]
    assert [value_of(e) for e in entries] == [b"1", b"1", b"1"]
    assert {e["ModifyIndex"] for e in entries} == {index_of(r)}


def test_keys_watch_wakes_on_new_key(agent):
    root = uniq("keyswatch") + "/"
    put(agent, root + "a", b"1")
    h = index_of(agent.get(kv_path(root, "keys")))
    p = Parked(agent, kv_path(root, f"keys&separator=/&index={h}&wait=5s"))
    assert p.parked_for(0.3)
    put(agent, root + "sub/b", b"2")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h
    assert r.json() == [root + "a", root + "sub/"]


# ----------------------------------------------------------------------------- index / wait parameters

def test_index_zero_returns_immediately(agent):
    key = uniq("idx0")
    put(agent, key, b"v")
    t0 = time.monotonic()
    r = agent.get(kv_path(key, "index=0&wait=5s"))
    assert time.monotonic() - t0 < 1.5
    assert r.status_code == 200
    assert index_of(r) > 0


def test_older_index_returns_immediately(agent):
    key = uniq("older")
    put(agent, key, b"v1")
    put(agent, key, b"v2")
    r = agent.get(kv_path(key))
    h = index_of(r)
    assert h > 1
    t0 = time.monotonic()
    r = agent.get(kv_path(key, f"index={h - 1}&wait=5s"))
    assert time.monotonic() - t0 < 1.5
    assert r.status_code == 200
    assert index_of(r) == h
    assert value_of(r.json()[0]) == b"v2"


def test_wait_without_index_does_not_block(agent):
    key = uniq("noindex")
    put(agent, key, b"v")
    t0 = time.monotonic()
    r = agent.get(kv_path(key, "wait=5s"))
    assert time.monotonic() - t0 < 1.5
    assert r.status_code == 200


def test_future_index_blocks_for_the_whole_wait(agent):
    # The query only returns early once the result's index exceeds the requested one.
    key = uniq("future")
    put(agent, key, b"v1")
    h = index_of(agent.get(kv_path(key)))
    p = Parked(agent, kv_path(key, f"index={h + 1_000_000}&wait=1500ms"))
    settle()
    put(agent, key, b"v2")
    assert p.parked_for(0.5), "a change that does not reach the requested index must not wake it"
    r = p.result()
    assert r.status_code == 200
    assert p.elapsed >= 1.45, p.elapsed
    assert h < index_of(r) < h + 1_000_000
    assert value_of(r.json()[0]) == b"v2"


def test_wait_in_milliseconds(agent):
    key = uniq("ms")
    put(agent, key, b"v")
    h = index_of(agent.get(kv_path(key)))
    t0 = time.monotonic()
    r = agent.get(kv_path(key, f"index={h}&wait=500ms"))
    elapsed = time.monotonic() - t0
    assert r.status_code == 200
    assert index_of(r) == h
    assert 0.45 <= elapsed < 1.5, elapsed


def test_wait_in_minutes_parks_until_change(agent):
    key = uniq("min")
    put(agent, key, b"v1")
    h = index_of(agent.get(kv_path(key)))
    p = Parked(agent, kv_path(key, f"index={h}&wait=2m"))
    assert p.parked_for(1.0), "wait=2m must block for longer than a second"
    put(agent, key, b"v2")
    r = p.result()
    assert r.status_code == 200
    assert index_of(r) > h


def test_wait_with_compound_duration(agent):
    key = uniq("compound")
    put(agent, key, b"v")
    h = index_of(agent.get(kv_path(key)))
    t0 = time.monotonic()
    r = agent.get(kv_path(key, f"index={h}&wait=0m0.6s"))  # Go duration syntax allows units chained
    elapsed = time.monotonic() - t0
    assert r.status_code == 200
    assert 0.55 <= elapsed < 1.6, elapsed


@pytest.mark.parametrize("wait", ["abc", "5", "1x", "s", "1.2.3s", "10 s"])
def test_bad_wait_is_400(agent, wait):
    key = uniq("badwait")
    put(agent, key, b"v")
    h = index_of(agent.get(kv_path(key)))
    t0 = time.monotonic()
    r = agent.get(kv_path(key, f"index={h}&wait={quote(wait)}"))
    assert r.status_code == 400, (wait, r.status_code, r.text)
    assert r.text == "Invalid wait time"
    assert time.monotonic() - t0 < 1.0
    # wait is validated even without an index.
    r = agent.get(kv_path(key, f"wait={quote(wait)}"))
    assert r.status_code == 400
    assert r.text == "Invalid wait time"


@pytest.mark.parametrize("index", ["abc", "-1", "1.5", "0x10", str(2**64)])
def test_bad_index_is_400(agent, index):
    key = uniq("badindex")
    put(agent, key, b"v")
    r = agent.get(kv_path(key, f"index={index}&wait=1s"))
    assert r.status_code == 400, (index, r.status_code, r.text)
    assert r.text == "Invalid index"
