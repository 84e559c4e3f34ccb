"""Lock-delay reads one clock, the leader's: a follower whose wall clock runs 40 s ahead
(libfaketime) cannot cut a lock-delay short by stamping the acquire it forwards."""
import subprocess
import time

import pytest
import requests

from cluster import Cluster


def libfaketime():
    out = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True)
    paths = [p for p in out.stdout.split() if p.endswith("/libfaketime.so.1")]
    assert paths, "libfaketime is not installed (.ci/run installs it)"
    return paths[0]


@pytest.fixture(scope="module")
def skewed():
    c = Cluster(3)
    try:
        leader = c.wait_leader()
        follower = next(n for n in c.nodes if n is not leader)
        # Only the wall clock: Raft and gossip time themselves by the monotonic clock.
        follower.env.update({"LD_PRELOAD": libfaketime(), "FAKETIME": "+40s",
                             "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
        follower.restart()
        # The same leader, and the follower back in the cluster and serving.
        c.wait_leader()
        assert c.leader() is leader, "leadership moved during the restart"
        yield c, leader, follower
    finally:
        c.cleanup()


def session(agent, name, lock_delay):
    r = requests.put(f"{agent.url}/v1/session/create", timeout=10,
                     json={"Name": name, "LockDelay": lock_delay, "NodeChecks": []})
    assert r.status_code == 200, r.text
    return r.json()["ID"]


def put(agent, path, **kw):
    r = requests.put(f"{agent.url}{path}", timeout=10, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_skew_is_real(skewed):
    """The follower's own clock is 40 s ahead (seen in its agent's view of time)."""
    _, leader, follower = skewed
    date = lambda a: requests.get(f"{a.url}/v1/agent/self", timeout=10).headers.get("Date")
    from email.utils import parsedate_to_datetime
    ahead = (parsedate_to_datetime(date(follower)) - parsedate_to_datetime(date(leader)))
    assert 35 <= ahead.total_seconds() <= 45, ahead


def test_a_fast_follower_cannot_cut_a_lock_delay_short(skewed):
    _, leader, follower = skewed
    a = session(leader, "holder", "3s")
    assert put(leader, "/v1/kv/skew/lock?acquire=" + a, data="a") is True
    assert put(leader, f"/v1/session/destroy/{a}") is True
    b = session(follower, "taker", "0s")
    # Through the fast follower, at once: still inside the delay by the leader's clock.
    assert put(follower, "/v1/kv/skew/lock?acquire=" + b, data="b") is False
    time.sleep(3.5)
    assert put(follower, "/v1/kv/skew/lock?acquire=" + b, data="b") is True


def test_a_fast_follower_cannot_stretch_a_lock_delay(skewed):
    """The other way round: an invalidation the follower takes starts the delay by the
    leader's clock, so it ends on time rather than 40 s late."""
    _, leader, follower = skewed
    a = session(leader, "holder2", "2s")
    assert put(leader, "/v1/kv/skew/lock2?acquire=" + a, data="a") is True
    assert put(follower, f"/v1/session/destroy/{a}") is True
    b = session(leader, "taker2", "0s")
    assert put(leader, "/v1/kv/skew/lock2?acquire=" + b, data="b") is False
    time.sleep(2.5)
    assert put(leader, "/v1/kv/skew/lock2?acquire=" + b, data="b") is True
