"""Durability of a `-server -bootstrap-expect 1 -data-dir DIR` agent across kill -9 and restarts.

Consul's contract: a write is acknowledged (`true`) only after it is committed to the Raft log,
which is fsynced (raft-boltdb / raft-wal) before the FSM applies it; on restart the server
restores the latest snapshot and replays the log, so every acknowledged write survives a crash.
Raft indexes are monotonic across restarts (the index lives in the log), so a write after a
restart gets a higher ModifyIndex than any before it. Sessions are Raft state and survive too.
"""
import base64
import json
import threading
import time
import uuid

import pytest
import requests


def recurse(agent, prefix):
    r = agent.get(f"/v1/kv/{prefix}", params={"recurse": ""}, timeout=60)
    if r.status_code == 404:
        return {}, int(r.headers.get("X-Consul-Index", 0))
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    out = {}
    for e in r.json():
        v = e["Value"]
        out[e["Key"]] = None if v is None else base64.b64decode(v)
    return out, int(r.headers["X-Consul-Index"])


def put_ok(agent, key, value):
    r = agent.put(f"/v1/kv/{key}", data=value)
    assert r.status_code == 200 and r.json() is True, f"{r.status_code} {r.text}"


def entry(agent, key):
    r = agent.get(f"/v1/kv/{key}")
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()[0]


def test_acknowledged_writes_survive_kill9(server_factory):
    a = server_factory()
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def writer(t):
        s = requests.Session()
        n = 0
        while not stop.is_set():
            key = f"dur/t{t:02d}/{n:06d}"
            val = f"{t}:{n}:{uuid.uuid4().hex}".encode()
            n += 1
            try:
                r = s.put(f"{a.url}/v1/kv/{key}", data=val, timeout=5)
            except requests.RequestException:
                # The server was killed under us; this write is unacknowledged.
                if stop.is_set() or a.proc.poll() is not None:
                    return
                time.sleep(0.01)
                continue
            if r.status_code == 200 and r.text.strip() == "true":
                with lock:
                    acked[key] = val
            elif a.proc.poll() is None:
                errors.append(f"{key}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(16)]
    for th in threads:
        th.start()
    time.sleep(3.0)
    a.kill9()  # mid-stream: all 16 writers are still sending
    stop.set()
    for th in threads:
        th.join(timeout=15)
    assert not errors, errors[:5]
    assert len(acked) >= 100, f"only {len(acked)} writes were acknowledged in 3s"

    a.start()
    stored, _ = recurse(a, "dur/")
    missing = [k for k in acked if k not in stored]
    wrong = [k for k in acked if k in stored and stored[k] != acked[k]]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged keys lost, e.g. {missing[:5]}"
    assert not wrong, f"{len(wrong)} keys have the wrong value, e.g. {wrong[:5]}"
    # Anything beyond the acknowledged set must still be a value some writer sent for that key.
    for k, v in stored.items():
        t, n = k.split("/")[1:]
        assert v.startswith(f"{int(t[1:])}:{int(n)}:".encode()), (k, v)


def test_graceful_restart_keeps_everything(server_factory):
    a = server_factory()
    expected = {}
    for i in range(200):
        k, v = f"grace/{i:04d}", f"value-{i}".encode()
        put_ok(a, k, v)
        expected[k] = v
    a.put("/v1/kv/grace/flagged", params={"flags": 7}, data=b"f")
    expected["grace/flagged"] = b"f"
    for i in range(0, 200, 10):
        assert a.delete(f"/v1/kv/grace/{i:04d}").json() is True
        del expected[f"grace/{i:04d}"]
    before, idx_before = recurse(a, "grace/")
    assert before == expected
    flagged = entry(a, "grace/flagged")

    a.restart()  # SIGTERM, then start on the same data dir

    after, idx_after = recurse(a, "grace/")
    assert after == expected
    assert idx_after >= idx_before
    again = entry(a, "grace/flagged")
    assert again["Flags"] == 7
    assert (again["CreateIndex"], again["ModifyIndex"]) == (flagged["CreateIndex"], flagged["ModifyIndex"])


def test_sessions_and_locks_survive_restart(server_factory):
    a = server_factory()
    r = a.put("/v1/session/create", json={"Name": "durable", "LockDelay": "0s", "Behavior": "delete"})
    assert r.status_code == 200, r.text
    sid = r.json()["ID"]
    info = a.get(f"/v1/session/info/{sid}").json()[0]
    assert a.put("/v1/kv/locked", params={"acquire": sid}, data=b"mine").json() is True

    a.kill9()
    a.start()

    sessions = a.get(f"/v1/session/info/{sid}").json()
    assert len(sessions) == 1, sessions
    s = sessions[0]
    for f in ["ID", "Name", "Node", "LockDelay", "Behavior", "TTL", "CreateIndex", "ModifyIndex"]:
        assert s[f] == info[f], f
    e = entry(a, "locked")
    assert e["Session"] == sid and e["LockIndex"] == 1
    # The restored session still works: destroying it applies behavior=delete to its lock.
    assert a.put(f"/v1/session/destroy/{sid}").json() is True
    assert a.get("/v1/kv/locked").status_code == 404


def test_modify_index_keeps_growing_after_restart(server_factory):
    a = server_factory()
    put_ok(a, "idx/before", b"1")
    before = entry(a, "idx/before")["ModifyIndex"]
    top_before = int(a.get("/v1/kv/idx/before").headers["X-Consul-Index"])

    a.restart()
    put_ok(a, "idx/after", b"2")
    after = entry(a, "idx/after")["ModifyIndex"]
    assert after > before
    assert after > top_before

    a.kill9()
    a.start()
    put_ok(a, "idx/after-kill", b"3")
    assert entry(a, "idx/after-kill")["ModifyIndex"] > after
    # Overwriting the old key moves its ModifyIndex on, CreateIndex stays.
    old = entry(a, "idx/before")
    put_ok(a, "idx/before", b"1b")
    new = entry(a, "idx/before")
    assert new["CreateIndex"] == old["CreateIndex"]
    assert new["ModifyIndex"] > entry(a, "idx/after-kill")["ModifyIndex"]


@pytest.mark.parametrize("snapshot_cfg", [
    None,
    # Consul's own config keys (agent/config: raft_snapshot_threshold, raft_snapshot_interval),
    # lowered so the ~330 Raft entries below cross the threshold several times: the restart then
    # has to restore from a snapshot plus a compacted log tail.
    {"raft_snapshot_threshold": 64, "raft_snapshot_interval": "1s"},
], ids=["default-config", "low-snapshot-threshold"])
def test_large_store_survives_compaction_and_restart(server_factory, tmp_path, snapshot_cfg):
    """~20,000 keys in 64-op transactions, then overwrite and delete some, then kill -9 and a
    graceful restart: the exact store must come back both times."""
    extra = ()
    if snapshot_cfg is not None:
        cfg = tmp_path / "snapshot.json"
        cfg.write_text(json.dumps(snapshot_cfg))
        extra = ("-config-file", str(cfg))
    a = server_factory(extra=extra)
    total, per_txn, workers = 20_000, 64, 4
    expected = {f"big/{i:05d}": f"v{i}".encode() for i in range(total)}
    keys = sorted(expected)
    batches = [keys[i:i + per_txn] for i in range(0, total, per_txn)]
    failures = []

    def run(my_batches):
        s = requests.Session()
        for batch in my_batches:
            ops = [{"KV": {"Verb": "set", "Key": k, "Value": base64.b64encode(expected[k]).decode()}}
                   for k in batch]
            r = s.put(f"{a.url}/v1/txn", data=json.dumps(ops), timeout=30)
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
                return

    threads = [threading.Thread(target=run, args=(batches[w::workers],)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]

    # More history on top: overwrite 1,000 keys and delete 500 in transactions as well.
    changes = []
    for i in range(0, 1000):
        k = f"big/{i * 7 % total:05d}"
        expected[k] = f"w{i}".encode()
        changes.append({"KV": {"Verb": "set", "Key": k, "Value": base64.b64encode(expected[k]).decode()}})
    for i in range(500):
        k = f"big/{(i * 13 + 5) % total:05d}"
        if k in expected:
            del expected[k]
            changes.append({"KV": {"Verb": "delete", "Key": k}})
    for i in range(0, len(changes), per_txn):
        r = a.put("/v1/txn", data=json.dumps(changes[i:i + per_txn]), timeout=30)
        assert r.status_code == 200, f"{r.status_code} {r.text[:200]}"

    stored, idx_before = recurse(a, "big/")
    assert len(stored) == len(expected) and stored == expected
    if snapshot_cfg is not None:
        time.sleep(2.5)  # let an interval-driven snapshot (every 1-2s in Consul) happen

    a.kill9()
    a.start()
    stored, idx_after = recurse(a, "big/")
    assert len(stored) == len(expected), f"{len(stored)} keys after kill -9, expected {len(expected)}"
    assert stored == expected
    assert idx_after >= idx_before

    a.restart()
    stored, _ = recurse(a, "big/")
    assert stored == expected
    put_ok(a, "big/after-restart", b"z")
    assert entry(a, "big/after-restart")["ModifyIndex"] > idx_before
