"""`limits.request_limits`: a server over its read or write rate answers at once with Consul's
429 (another server may serve it) or 503 (a write on the leader: retry later), never touches
what it refused, keeps answering `/v1/status/*`, counts what it refused, and takes new limits
on reload."""
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests

from cluster import Cluster
from conftest import Agent

RETRY_ELSEWHERE = "rate limit exceeded, try again later or against a different server"
RETRY_LATER = ("rate limit exceeded for operation that can only be performed by the leader, "
               "try again later")


def limits_file(path, mode, read_rate, write_rate):
    path.write_text(json.dumps({"limits": {"request_limits": {
        "mode": mode, "read_rate": read_rate, "write_rate": write_rate}}}))


def counter(agent, name):
    snap = requests.get(agent.url + "/v1/agent/metrics", timeout=5).json()
    return next((m["Count"] for m in snap["Counters"] if m["Name"] == name), 0)


@pytest.fixture(scope="module")
def limited():
    d = Path(tempfile.mkdtemp(prefix="lotse-limits-"))
    cfg = d / "limits.json"
    # Bursts of ten seconds' worth: 20 writes and 50 reads, then 2 and 5 a second.
    limits_file(cfg, "enforcing", 5, 2)
    a = Agent(["-dev", "-config-file", str(cfg)])
    yield a, cfg
    a.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_writes_over_the_rate_get_503_on_the_leader_and_are_not_applied(limited):
    a, _ = limited
    s = requests.Session()
    answers = [s.put(f"{a.url}/v1/kv/limited/{i}", data=str(i), timeout=5) for i in range(40)]
    ok = [i for i, r in enumerate(answers) if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    # The burst (20), plus what refilled while the requests ran.
    assert 20 <= len(ok) <= 25, [r.status_code for r in answers]
    assert refused and all(r.status_code == 503 and r.text == RETRY_LATER for r in refused), \
        {(r.status_code, r.text) for r in refused}
    # Accepted writes are stored; refused ones never reached the store.
    time.sleep(1.5)  # a few tokens back for the reads below
    keys = requests.get(f"{a.url}/v1/kv/limited/?keys", timeout=5)
    assert keys.status_code in (200, 429)
    if keys.status_code == 200:
        assert sorted(keys.json()) == sorted(f"limited/{i}" for i in ok)
    assert counter(a, "lotse.rpc.rate_limit.exceeded.global_write") >= len(refused)


def test_reads_over_the_rate_get_429_and_status_stays_exempt(limited):
    a, _ = limited
    s = requests.Session()
    answers = [s.get(f"{a.url}/v1/kv/limited/0", timeout=5).status_code for _ in range(80)]
    assert 429 in answers and answers.count(429) >= 20, answers
    r = s.get(f"{a.url}/v1/catalog/nodes", timeout=5)
    assert r.status_code == 429 and r.text == RETRY_ELSEWHERE
    # Who leads, and the agent's own endpoints, answer whatever the load.
    for _ in range(100):
        assert s.get(f"{a.url}/v1/status/leader", timeout=5).status_code == 200
    assert s.get(f"{a.url}/v1/agent/self", timeout=5).status_code == 200
    assert counter(a, "lotse.rpc.rate_limit.exceeded.global_read") >= 20


def test_a_reload_applies_new_limits(limited):
    a, cfg = limited
    s = requests.Session()
    limits_file(cfg, "permissive", 1, 1)
    assert s.put(f"{a.url}/v1/agent/reload", timeout=10).status_code == 200
    before = counter(a, "lotse.rpc.rate_limit.exceeded.global_write")
    # Permissive: over the limit, yet served (and counted).
    codes = [s.put(f"{a.url}/v1/kv/permissive/{i}", data="x", timeout=5).status_code
             for i in range(30)]
    assert codes == [200] * 30
    assert counter(a, "lotse.rpc.rate_limit.exceeded.global_write") >= before + 15
    limits_file(cfg, "disabled", 0, 0)
    assert s.put(f"{a.url}/v1/agent/reload", timeout=10).status_code == 200
    assert all(s.get(f"{a.url}/v1/kv/permissive/0", timeout=5).status_code == 200
               for _ in range(100))


def test_a_reload_with_a_bad_mode_is_refused_and_keeps_the_limits(limited):
    a, cfg = limited
    cfg.write_text(json.dumps({"limits": {"request_limits": {"mode": "strict"}}}))
    r = requests.put(f"{a.url}/v1/agent/reload", timeout=10)
    assert r.status_code == 500 and "limits.request_limits.mode" in r.text, r.text


def test_a_follower_over_its_write_rate_answers_429():
    c = Cluster(3, config={"limits": {"request_limits": {
        "mode": "enforcing", "read_rate": 1000, "write_rate": 1}}})
    try:
        leader = c.wait_leader()
        follower = next(n for n in c.nodes if n is not leader)
        s = requests.Session()
        codes = [s.put(f"{follower.url}/v1/kv/f/{i}", data="x", timeout=10).status_code
                 for i in range(14)]
        # Ten seconds' worth (10) pass the follower, which forwards them to the leader.
        assert codes[:10] == [200] * 10, codes
        assert codes[-1] == 429, codes
        r = s.put(f"{follower.url}/v1/kv/f/last", data="x", timeout=10)
        assert r.status_code == 429 and r.text == RETRY_ELSEWHERE
    finally:
        c.cleanup()
