"""Concurrent writers against one agent.

Lotse commits concurrent writes together (one log entry and one fsync per batch). These tests
prove that batching never changes their meaning: racing CAS creations and lock acquisitions
still have exactly one winner, every acknowledged write is readable, and indexes stay
monotonic for every client.
"""
import base64
import threading
import uuid

import requests


def race(n, fn):
    """Runs fn(i) on n threads released together; returns the results in order."""
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_racing_cas_creations_have_exactly_one_winner(agent):
    key = f"race/cas-{uuid.uuid4().hex[:8]}"
    url = f"{agent.url}/v1/kv/{key}?cas=0"
    results = race(32, lambda i: requests.put(url, data=f"writer-{i}", timeout=10).json())
    assert results.count(True) == 1, results
    winner = results.index(True)
    assert agent.get(f"/v1/kv/{key}?raw").text == f"writer-{winner}"


def test_racing_cas_updates_on_one_index_have_exactly_one_winner(agent):
    key = f"race/casupd-{uuid.uuid4().hex[:8]}"
    assert agent.put(f"/v1/kv/{key}", data="v0").json() is True
    index = agent.get(f"/v1/kv/{key}").json()[0]["ModifyIndex"]
    url = f"{agent.url}/v1/kv/{key}?cas={index}"
    results = race(32, lambda i: requests.put(url, data=f"v{i + 1}", timeout=10).json())
    assert results.count(True) == 1, results
    after = agent.get(f"/v1/kv/{key}").json()[0]
    assert after["ModifyIndex"] > index


def test_racing_lock_acquisitions_have_exactly_one_holder(agent):
    key = f"race/lock-{uuid.uuid4().hex[:8]}"
    sessions = [agent.put("/v1/session/create", json={"LockDelay": "0s"}).json()["ID"]
                for _ in range(16)]
    results = race(16, lambda i: requests.put(
        f"{agent.url}/v1/kv/{key}?acquire={sessions[i]}", data=f"holder-{i}", timeout=10).json())
    assert results.count(True) == 1, results
    holder = sessions[results.index(True)]
    entry = agent.get(f"/v1/kv/{key}").json()[0]
    assert entry["Session"] == holder
    assert entry["LockIndex"] == 1
    for s in sessions:
        agent.put(f"/v1/session/destroy/{s}")


def test_every_acknowledged_concurrent_write_is_readable_with_growing_indexes(agent):
    prefix = f"race/many-{uuid.uuid4().hex[:8]}/"

    def writer(i):
        s = requests.Session()
        seen = []
        for j in range(25):
            r = s.put(f"{agent.url}/v1/kv/{prefix}{i}/{j}", data=f"{i}:{j}", timeout=10)
            assert r.status_code == 200 and r.json() is True
            seen.append(s.get(f"{agent.url}/v1/kv/{prefix}{i}/{j}", timeout=10).json()[0]["ModifyIndex"])
        return seen

    per_writer = race(16, writer)
    for seen in per_writer:
        # One client's successive writes get strictly growing indexes.
        assert all(a < b for a, b in zip(seen, seen[1:])), seen
    entries = agent.get(f"/v1/kv/{prefix}?recurse").json()
    assert len(entries) == 16 * 25
    for e in entries:
        i, j = e["Key"][len(prefix):].split("/")
        assert base64.b64decode(e["Value"]).decode() == f"{i}:{j}"


def test_a_refused_write_in_a_batch_does_not_fail_its_neighbours(agent):
    key = f"race/mixed-{uuid.uuid4().hex[:8]}"
    bogus = str(uuid.uuid4())

    def op(i):
        if i % 2:
            # Acquiring with a session that does not exist is refused (500) on its own.
            return requests.put(f"{agent.url}/v1/kv/{key}-{i}?acquire={bogus}", data="x", timeout=10).status_code
        return requests.put(f"{agent.url}/v1/kv/{key}-{i}", data="x", timeout=10).status_code

    codes = race(20, op)
    assert [c for i, c in enumerate(codes) if i % 2 == 0] == [200] * 10
    assert [c for i, c in enumerate(codes) if i % 2] == [500] * 10
    for i in range(0, 20, 2):
        assert agent.get(f"/v1/kv/{key}-{i}?raw").text == "x"
    for i in range(1, 20, 2):
        assert agent.get(f"/v1/kv/{key}-{i}").status_code == 404
