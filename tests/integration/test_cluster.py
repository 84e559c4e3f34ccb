"""Clusters of real servers on loopback: forming, replicating, failing over, partitions.

Every test starts its own servers (tests/integration/cluster.py), each on its own loopback
address. Partitions are iptables rules between those addresses (root and iptables needed:
`.ci/run` installs iptables).
"""
import concurrent.futures
import signal
import threading
import time

import pytest
import requests

from cluster import Cluster, Firewall, wait_for


@pytest.fixture
def three():
    c = Cluster(3)
    yield c
    c.cleanup()


def put(a, key, value, timeout=10):
    return a.put(f"/v1/kv/{key}", data=value, timeout=timeout)


def value_of(a, key, mode=""):
    r = a.get(f"/v1/kv/{key}?raw{mode}")
    return r.text if r.status_code == 200 else None


def test_three_servers_bootstrap_gossip_and_register_each_other(three):
    c = three
    lead = c.wait_leader()
    for a in c.nodes:
        peers = a.get("/v1/status/peers").json()
        assert sorted(peers) == sorted(c.rpc_addr(n) for n in c.nodes)
        wait_for("every member alive", lambda: c.members(a) == {"s1": 1, "s2": 1, "s3": 1})
    # The leader registers every member as a node with a passing serfHealth and, for
    # servers, the `consul` service on its server port.
    def registered():
        checks = lead.get("/v1/health/state/any").json()
        serf = {ch["Node"]: ch["Status"] for ch in checks if ch["CheckID"] == "serfHealth"}
        return serf == {"s1": "passing", "s2": "passing", "s3": "passing"}
    wait_for("serfHealth of all three", registered)
    consul = lead.get("/v1/catalog/service/consul").json()
    assert sorted((s["Node"], s["ServicePort"]) for s in consul) == sorted(
        (f"s{i + 1}", n.server_port) for i, n in enumerate(c.nodes))
    members = lead.get("/v1/agent/members").json()
    tags = {m["Name"]: m["Tags"] for m in members}
    assert tags["s2"]["role"] == "consul" and tags["s2"]["dc"] == "dc1"
    assert tags["s2"]["port"] == str(c.nodes[1].server_port)
    assert tags["s2"]["expect"] == "3"
    # `lotse members` prints them as Consul does.
    out = lead.cli("members").stdout.decode()
    assert out.splitlines()[0].split() == ["Node", "Address", "Status", "Type", "Build",
                                           "Protocol", "DC", "Partition", "Segment"]
    assert sum(1 for line in out.splitlines()[1:] if " alive " in line) == 3


def test_writes_on_any_server_and_reads_in_every_mode(three):
    c = three
    lead = c.wait_leader()
    follower = c.followers()[0]
    # A follower forwards the write to the leader.
    assert put(follower, "web/config", "v1").json() is True
    cas = follower.get("/v1/kv/web/config").json()[0]["ModifyIndex"]
    assert put(follower, f"web/config?cas={cas}", "v2").json() is True
    assert put(follower, f"web/config?cas={cas}", "v3").json() is False
    for a in c.nodes:
        # default and consistent reads on a follower see the write at once (read index).
        assert value_of(a, "web/config") == "v2"
        assert value_of(a, "web/config", "&consistent") == "v2"
        r = a.get("/v1/kv/web/config?stale")
        assert r.status_code == 200
        assert r.headers["X-Consul-KnownLeader"] == "true"
        assert int(r.headers["X-Consul-LastContact"]) < 5000
        assert r.headers["X-Consul-Effective-Consistency"] == "stale"
    r = follower.get("/v1/kv/web/config?consistent")
    assert r.headers["X-Consul-Effective-Consistency"] == "consistent"
    assert r.headers["X-Consul-LastContact"] == "0"
    # A blocking query on a follower wakes on a write made through another server.
    index = int(follower.get("/v1/kv/web/config").headers["X-Consul-Index"])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(follower.get, f"/v1/kv/web/config?index={index}&wait=20s", timeout=30)
        time.sleep(0.5)
        assert put(lead, "web/config", "v4").json() is True
        r = fut.result(timeout=25)
    assert r.status_code == 200 and int(r.headers["X-Consul-Index"]) > index


def test_kill9_of_the_leader_loses_no_acknowledged_write(three):
    c = three
    lead = c.wait_leader()
    acked = {}

    def writer(i):
        a = c.nodes[i % 3]
        key = f"acked/{i}"
        try:
            if put(a, key, str(i), timeout=10).json() is True:
                acked[key] = str(i)
        except requests.RequestException:
            pass

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(120)))
    assert len(acked) == 120
    killed_at = time.monotonic()
    c.kill9(lead)
    survivors = c.alive()
    # Writes succeed again once a new leader is elected.
    def write_again():
        try:
            return put(survivors[0], "after/failover", "ok", timeout=5).json() is True
        except requests.RequestException:
            return False
    wait_for("a write after the leader's kill -9", write_again, timeout=10, step=0.05)
    failover = time.monotonic() - killed_at
    print(f"failover (kill -9 of the leader until the next successful write): {failover:.2f}s")
    assert failover < 6
    new_lead = c.wait_leader()
    assert new_lead is not lead
    for a in survivors:
        keys = set(a.get("/v1/kv/acked/?keys&consistent").json())
        assert keys == set(acked), f"lost: {set(acked) - keys}"
    # The killed server comes back with its data and catches up.
    c.restart(lead)
    wait_for("the restarted server caught up",
             lambda: value_of(lead, "after/failover", "&stale") == "ok", timeout=20)
    assert set(lead.get("/v1/kv/acked/?keys&stale").json()) == set(acked)


def test_rolling_restart_of_every_server_loses_nothing(three):
    c = three
    for i in range(30):
        assert put(c.nodes[i % 3], f"roll/{i}", str(i)).json() is True
    for a in list(c.nodes):
        a.stop()
        wait_for("a leader among the others",
                 lambda: c.leader(among=[n for n in c.nodes if n is not a]), timeout=15)
        assert put(c.alive()[0], f"during/{a.host}", "x").json() is True
        c.restart(a)
        wait_for("the restarted server back in the pool",
                 lambda: all(s == 1 for s in c.members(a).values()) and len(c.members(a)) == 3)
    c.wait_leader()
    for a in c.nodes:
        wait_for("all data everywhere",
                 lambda: len(a.get("/v1/kv/?keys&stale").json()) == 33, timeout=15)
        keys = a.get("/v1/kv/?keys&consistent").json()
        assert len(keys) == 33


def test_without_a_quorum_writes_fail_fast_with_no_cluster_leader(three):
    c = three
    lead = c.wait_leader()
    others = [a for a in c.nodes if a is not lead]
    for a in others:
        c.kill9(a)
    started = time.monotonic()
    r = put(lead, "nope", "x", timeout=20)
    took = time.monotonic() - started
    assert r.status_code == 500
    assert "No cluster leader" in r.text or "timed out" in r.text
    # rpc_hold_timeout is 3 s in these tests: refused within it, not after a hang.
    assert took < 8, took
    r = lead.get("/v1/kv/nope?consistent", timeout=20)
    assert r.status_code == 500
    # A stale read still answers from the local copy.
    assert lead.get("/v1/kv/?keys&stale").status_code in (200, 404)


@pytest.mark.skipif(not Firewall.available(), reason="needs root and iptables")
def test_a_cut_off_minority_cannot_commit_and_heals(three):
    c = three
    lead = c.wait_leader()
    cut = c.followers()[0]
    assert put(lead, "before", "1").json() is True
    wait_for("replicated to the follower", lambda: value_of(cut, "before", "&stale") == "1")
    with Firewall() as fw:
        fw.isolate(cut.host, c.hosts)
        # The cut-off server neither commits nor serves consistent reads.
        r = put(cut, "minority", "x", timeout=20)
        assert r.status_code == 500, r.text
        r = cut.get("/v1/kv/before?consistent", timeout=20)
        assert r.status_code == 500
        # The majority goes on, and never saw the minority's write committed. (The write
        # failed for its client, so its outcome is unknown: the forwarded request may still
        # reach the leader once the partition heals, as a timed-out RPC to Consul may.)
        majority = [a for a in c.nodes if a is not cut]
        assert put(majority[0], "during", "2", timeout=10).json() is True
        assert majority[0].get("/v1/kv/minority?consistent").status_code == 404
        # Its gossip peers see it failed.
        wait_for("the cut-off server failed in the majority's view",
                 lambda: c.members(majority[0]).get(f"s{c.nodes.index(cut) + 1}") == 4)
        fw.heal()
    wait_for("the healed server caught up", lambda: value_of(cut, "during", "&stale") == "2",
             timeout=20)
    assert value_of(cut, "during", "&consistent") == "2"


@pytest.mark.skipif(not Firewall.available(), reason="needs root and iptables")
def test_an_isolated_leader_is_replaced_and_steps_down(three):
    c = three
    old = c.wait_leader()
    majority = [a for a in c.nodes if a is not old]
    with Firewall() as fw:
        fw.isolate(old.host, c.hosts)
        cut_at = time.monotonic()
        new = c.wait_new_leader(majority, [old])
        assert put(new, "after/isolation", "new").json() is True
        # The old leader cannot commit: its write fails instead of succeeding.
        r = put(old, "stale/leader", "x", timeout=20)
        assert r.status_code == 500
        # Nor, its lease long expired, does it serve default or consistent reads (which
        # would miss the majority's write); a stale read answers from its own copy.
        for mode in ("", "?consistent"):
            r = old.get(f"/v1/kv/after/isolation{mode}", timeout=20)
            assert r.status_code == 500, (mode, r.status_code, r.text)
        assert old.get("/v1/kv/after/isolation?stale").status_code == 404
        # A cut of 16 s: by then the kernel's resends on a connection that outlives it are
        # 12.8 s apart, so such a connection would stay mute for about 10 s after the heal
        # (replication, reads, a graceful shutdown all waiting on it). The servers must drop
        # those connections while cut off and make new ones (`KEEPALIVE_*` in rpc.rs).
        time.sleep(max(0.0, 16.0 - (time.monotonic() - cut_at)))
        fw.heal()
    # Within seconds of the heal, not after the kernel's next resend.
    wait_for("the old leader follows the new one", lambda: c.leader() is new, timeout=8)
    wait_for("the old leader caught up",
             lambda: value_of(old, "after/isolation", "&stale") == "new", timeout=8)
    r = old.get("/v1/kv/after/isolation?raw&consistent", timeout=20)
    assert (r.status_code, r.text) == (200, "new"), old.log_path
    assert new.get("/v1/kv/stale/leader?consistent").status_code == 404
    # No connection left mute by the cut holds a server's graceful shutdown open (each waits
    # up to 3 s for its server port's connections).
    for a in c.nodes:
        started = time.monotonic()
        a.stop()
        assert time.monotonic() - started < 2.5, a.log_path


def test_a_stopped_agent_is_seen_failed_then_alive_again(three):
    c = three
    victim = c.followers()[0]
    name = f"s{c.nodes.index(victim) + 1}"
    others = [a for a in c.nodes if a is not victim]
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        for a in others:
            wait_for(f"{name} failed in every view", lambda: c.members(a).get(name) == 4)
        lead = c.wait_leader(among=others)
        wait_for("serfHealth critical", lambda: any(
            ch["CheckID"] == "serfHealth" and ch["Status"] == "critical"
            for ch in lead.get(f"/v1/health/node/{name}").json()))
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    for a in others:
        wait_for(f"{name} alive again", lambda: c.members(a).get(name) == 1)
    lead = c.wait_leader()
    wait_for("serfHealth passing", lambda: any(
        ch["CheckID"] == "serfHealth" and ch["Status"] == "passing"
        for ch in lead.get(f"/v1/health/node/{name}").json()))


def test_a_server_that_leaves_is_removed_from_raft_and_the_catalog(three):
    c = three
    lead = c.wait_leader()
    leaver = c.followers()[0]
    name = f"s{c.nodes.index(leaver) + 1}"
    r = leaver.cli("leave")
    assert r.returncode == 0, r.stderr
    assert "Graceful leave complete" in r.stdout.decode()
    leaver.proc.wait(timeout=15)
    wait_for("peers without the leaver",
             lambda: len(lead.get("/v1/status/peers").json()) == 2)
    wait_for("left in the pool", lambda: c.members(lead).get(name) == 3)
    wait_for("deregistered", lambda: lead.get(f"/v1/catalog/node/{name}").json() is None)
    # Two servers still make a quorum of the new configuration.
    assert put(lead, "after/leave", "ok").json() is True


def test_encrypted_and_plain_pools_do_not_mix():
    key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
    enc = Cluster(1, extra=("-encrypt", key))
    plain = Cluster(1)
    try:
        target = f"{enc.hosts[0]}:{enc.serf_ports[0]}"
        r = plain.nodes[0].put(f"/v1/agent/join/{target}")
        assert r.status_code == 500
        time.sleep(1.0)
        assert set(enc.members(enc.nodes[0])) == {"s1"}
        assert set(plain.members(plain.nodes[0])) == {"s1"}
    finally:
        enc.cleanup()
        plain.cleanup()


def test_keyring_rotation_keeps_the_pool_together():
    k1 = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
    k2 = "H3/9gBxcKKRf45CaI2DlRg=="
    c = Cluster(3, extra=("-encrypt", k1))
    try:
        a = c.wait_leader()
        listed = a.get("/v1/operator/keyring").json()
        assert listed[0]["Keys"] == {k1: 3} and listed[0]["NumNodes"] == 3
        r = requests.post(a.url + "/v1/operator/keyring", json={"Key": k2}, timeout=10)
        assert r.status_code == 200, r.text
        r = requests.put(a.url + "/v1/operator/keyring", json={"Key": k2}, timeout=10)
        assert r.status_code == 200, r.text
        r = requests.delete(a.url + "/v1/operator/keyring", json={"Key": k1}, timeout=10)
        assert r.status_code == 200, r.text
        listed = a.get("/v1/operator/keyring").json()
        assert listed[0]["Keys"] == {k2: 3} and listed[0]["PrimaryKeys"] == {k2: 3}
        # Removing the primary key is refused.
        r = requests.delete(a.url + "/v1/operator/keyring", json={"Key": k2}, timeout=10)
        assert r.status_code == 500
        # The pool stays together on the new key.
        time.sleep(1.5)
        for n in c.nodes:
            assert c.members(n) == {"s1": 1, "s2": 1, "s3": 1}
    finally:
        c.cleanup()


def test_five_servers_survive_losing_two_including_the_leader():
    c = Cluster(5)
    try:
        lead = c.wait_leader()
        for i in range(20):
            assert put(c.nodes[i % 5], f"five/{i}", str(i)).json() is True
        victims = [lead, c.followers()[0]]
        for v in victims:
            c.kill9(v)
        survivors = c.alive()
        assert len(survivors) == 3
        c.wait_new_leader(survivors, victims)
        assert put(survivors[0], "five/after", "ok", timeout=10).json() is True
        for a in survivors:
            keys = a.get("/v1/kv/five/?keys&consistent").json()
            assert len(keys) == 21
    finally:
        c.cleanup()


def test_force_leave_of_a_dead_server_removes_it_everywhere(three):
    c = three
    lead = c.wait_leader()
    dead = c.followers()[0]
    name = f"s{c.nodes.index(dead) + 1}"
    c.kill9(dead)
    wait_for("the dead server failed", lambda: c.members(lead).get(name) == 4)
    r = lead.cli("force-leave", name)
    assert r.returncode == 0, r.stderr
    for a in c.alive():
        wait_for("left in every view", lambda: c.members(a).get(name) == 3)
    wait_for("out of the Raft configuration",
             lambda: len(lead.get("/v1/status/peers").json()) == 2)
    wait_for("deregistered", lambda: lead.get(f"/v1/catalog/node/{name}").json() is None)
    r = lead.put("/v1/agent/force-leave/nobody")
    assert r.status_code == 500 and "No node found with name 'nobody'" in r.text


def test_a_failed_member_is_reaped_after_reconnect_timeout():
    c = Cluster(3, config={"reconnect_timeout": "3s"})
    try:
        lead = c.wait_leader()
        dead = c.followers()[0]
        name = f"s{c.nodes.index(dead) + 1}"
        wait_for("registered", lambda: lead.get(f"/v1/catalog/node/{name}").json() is not None)
        c.kill9(dead)
        wait_for("failed", lambda: c.members(lead).get(name) == 4)
        # Still in the catalog (critical) while failed...
        assert lead.get(f"/v1/catalog/node/{name}").json() is not None
        # ...and gone, from the pool and the catalog, once reaped.
        wait_for("reaped from the pool", lambda: name not in c.members(lead), timeout=20)
        wait_for("deregistered", lambda: lead.get(f"/v1/catalog/node/{name}").json() is None)
    finally:
        c.cleanup()


def test_user_events_reach_every_server_once(three):
    c = three
    r = c.nodes[0].put("/v1/event/fire/deploy", data=b"v2")
    assert r.status_code == 200, r.text
    event_id = r.json()["ID"]
    for a in c.nodes:
        def listed():
            evs = a.get("/v1/event/list?name=deploy").json()
            return [e for e in evs if e["ID"] == event_id]
        got = wait_for("the event on every server", listed)
        assert len(got) == 1 and isinstance(got[0]["LTime"], int)


def test_renewing_a_session_through_a_follower_keeps_it_alive():
    c = Cluster(3, config={"session_ttl_min": "1s"})
    try:
        c.wait_leader()
        follower = c.followers()[0]
        # Sessions need the node registered with its serfHealth (Consul answers 500 "Missing
        # check 'serfHealth' registration" before that); the leader registers it shortly after
        # it is elected.
        name = f"s{c.nodes.index(follower) + 1}"
        wait_for(f"{name}'s serfHealth", lambda: any(
            ch["CheckID"] == "serfHealth" and ch["Status"] == "passing"
            for ch in follower.get(f"/v1/health/node/{name}").json()))
        r = follower.put("/v1/session/create", json={"TTL": "2s", "Name": "via-follower"})
        assert r.status_code == 200, r.text
        sid = r.json()["ID"]
        # Renewed through the follower for three times the TTL (twice as long as the leader
        # would wait before expiring it), the session stays.
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            r = follower.put(f"/v1/session/renew/{sid}")
            assert r.status_code == 200, r.text
            assert r.json()[0]["ID"] == sid
            time.sleep(0.7)
        assert follower.get(f"/v1/session/info/{sid}?consistent").json()[0]["ID"] == sid
        # Left alone, it expires (after 2 x TTL).
        wait_for("the session expired",
                 lambda: not follower.get(f"/v1/session/info/{sid}?consistent").json(),
                 timeout=15)
        r = follower.put(f"/v1/session/renew/{sid}")
        assert r.status_code == 404
    finally:
        c.cleanup()


def test_leadership_moves_to_the_named_server_and_no_write_is_lost(three):
    c = three
    lead = c.wait_leader()
    target = c.followers()[0]
    other = next(a for a in c.nodes if a not in (lead, target))
    servers = lead.get("/v1/operator/raft/configuration").json()["Servers"]
    target_id = next(s["ID"] for s in servers if s["Address"] == c.rpc_addr(target))
    # Writes through every server keep going while leadership moves.
    acked, failed, stop = [], [], threading.Event()

    def writer(a, tag):
        i = 0
        while not stop.is_set():
            key = f"moving/{tag}/{i}"
            try:
                r = put(a, key, "x", timeout=10)
                ok = r.status_code == 200 and r.json() is True
                (acked if ok else failed).append((key, r.status_code, r.text))
            except requests.RequestException as e:
                failed.append((key, 0, str(e)))
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(a, n)) for n, a in enumerate(c.nodes)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # Asked of a follower that is not the target: forwarded to the leader.
    r = other.request("POST", f"/v1/operator/raft/transfer-leader?id={target_id}", timeout=20)
    assert r.status_code == 200, r.text
    assert r.json() == {"Success": True}
    assert c.wait_leader() is target
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert not failed, failed[:5]
    keys = set(target.get("/v1/kv/moving/?keys&consistent").json())
    assert {k for k, _, _ in acked} <= keys and len(acked) > 10
    # Without -id the most caught-up other voter takes over.
    p = target.cli("operator", "raft", "transfer-leader")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == "Success"
    newest = c.wait_leader()
    assert newest is not target
    r = newest.request("POST", "/v1/operator/raft/transfer-leader?id=nope", timeout=20)
    assert r.status_code == 500 and r.text == 'Failed to transfer Leader: cannot find peer "nope"'
    # Right after a transfer the cluster fails over as fast as ever: the old leader campaigns
    # again at once (its drop guard) and the held voters are released.
    c.kill9(newest)
    started = time.monotonic()
    c.wait_new_leader(c.alive(), [newest], timeout=20)
    assert time.monotonic() - started < 5
