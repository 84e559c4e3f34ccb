"""Client agents: agents without `-server` that hold no replicated state, find the servers
through gossip, forward what needs a server over server RPC (with failover), and keep their
own services and checks in the catalog by anti-entropy through the servers.

Every test starts 3 servers and its clients on loopback addresses of their own
(tests/integration/cluster.py).
"""
import socket
import subprocess
import struct
import threading
import time

import pytest

from cluster import Cluster, wait_for
from conftest import Agent


@pytest.fixture
def three():
    c = Cluster(3)
    yield c
    c.cleanup()


def dig(a, *args):
    """`dig @<agent's address> -p <its DNS port> <args>`: the whole output."""
    cmd = ["dig", f"@{a.host}", "-p", str(a.dns_port), *args, "+time=3", "+tries=1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout


def _hex_addr(field):
    ip_hex, port_hex = field.split(":")
    ip = socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16)))
    return ip, int(port_hex, 16)


def servers_in_use(c, client):
    """The servers a client agent holds RPC connections to (from /proc/net/tcp)."""
    rpc = {(a.host, a.server_port): a for a in c.nodes}
    used = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote, state = _hex_addr(parts[1]), _hex_addr(parts[2]), parts[3]
            if state == "01" and local[0] == client.host and remote in rpc:
                used.add(rpc[remote])
    return used


def catalog_checks(a, node):
    return {ch["CheckID"]: ch["Status"] for ch in a.get(f"/v1/health/node/{node}").json()}


def test_a_client_agent_serves_the_api_and_syncs_its_services_through_the_servers(three):
    c = three
    lead = c.wait_leader()
    fast_sync = c.dir / "fast-sync.json"
    fast_sync.write_text('{"ae_interval": "2s"}')
    cl = c.add_client("c1", extra=["-config-file", str(fast_sync)])
    # In the pool as a plain node, registered by the leader with a passing serfHealth.
    wait_for("the client in every server's pool",
             lambda: all(c.members(s).get("c1") == 1 for s in c.nodes))
    tags = {m["Name"]: m["Tags"] for m in cl.get("/v1/agent/members").json()}
    assert tags["c1"]["role"] == "node" and "port" not in tags["c1"]
    wait_for("c1's serfHealth passing", lambda: catalog_checks(lead, "c1").get("serfHealth") == "passing")
    me = cl.get("/v1/agent/self").json()
    assert me["Config"]["Server"] is False
    assert me["Stats"]["consul"]["known_servers"] == "3"
    assert "raft" not in me["Stats"]

    # The whole API through the client: KV, blocking reads, status, catalog.
    assert cl.put("/v1/kv/app/config", data=b"v1").json() is True
    assert lead.get("/v1/kv/app/config?raw").text == "v1"
    r = cl.get("/v1/kv/app/config")
    assert r.status_code == 200 and r.headers["X-Consul-KnownLeader"] == "true"
    index = int(r.headers["X-Consul-Index"])
    assert cl.get("/v1/kv/missing").status_code == 404
    assert sorted(cl.get("/v1/status/peers").json()) == sorted(c.rpc_addr(a) for a in c.nodes)
    assert cl.get("/v1/status/leader").json() == c.rpc_addr(lead)
    got = {}

    def block():
        got["r"] = cl.get(f"/v1/kv/app/config?index={index}&wait=20s", timeout=30)

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.5)
    assert lead.put("/v1/kv/app/config", data=b"v2").json() is True
    t.join(timeout=25)
    assert got["r"].status_code == 200 and int(got["r"].headers["X-Consul-Index"]) > index

    # Bad input gets the server's answer, unchanged.
    for method, path, body in [("PUT", "/v1/kv/app/x?cas=abc", b"x"),
                               ("POST", "/v1/kv/app/x", b"x"),
                               ("PUT", "/v1/catalog/register", b"{not json"),
                               ("GET", "/v1/health/service/web?filter=Service.Port%20%3D%3D", b"")]:
        via_client = cl.request(method, path, data=body)
        direct = lead.request(method, path, data=body)
        assert via_client.status_code == direct.status_code >= 400, (path, via_client.text)
        assert via_client.text == direct.text
    assert cl.post("/v1/kv/app/x").headers["Allow"] == "OPTIONS,GET,PUT,DELETE"

    # A service registered on the client reaches the catalog, and so do its check's updates.
    r = cl.put("/v1/agent/service/register",
               json={"Name": "web", "ID": "web1", "Port": 8080, "Check": {"TTL": "30s"}})
    assert r.status_code == 200, r.text
    wait_for("web1 in the catalog",
             lambda: [s["ServiceID"] for s in lead.get("/v1/catalog/service/web").json()] == ["web1"])
    assert lead.get("/v1/catalog/service/web").json()[0]["Node"] == "c1"
    assert cl.put("/v1/agent/check/pass/service:web1?note=ok").status_code == 200
    wait_for("the TTL check passing on the servers",
             lambda: catalog_checks(lead, "c1").get("service:web1") == "passing")
    assert [e["Service"]["ID"] for e in cl.get("/v1/health/service/web?passing").json()] == ["web1"]
    # DNS on the client answers from the servers' catalog, over UDP and TCP.
    assert dig(cl, "c1.node.consul", "A", "+short").split() == [cl.host]
    srv = dig(cl, "web.service.consul", "SRV", "+short").split()
    assert srv[2] == "8080" and srv[3].startswith("c1.node."), srv
    assert dig(cl, "+tcp", "web.service.consul", "A", "+short").split() == [cl.host]
    assert "status: NXDOMAIN" in dig(cl, "nope.service.consul", "A")

    # A session made through the client belongs to the client's node (Consul's default).
    sid = cl.put("/v1/session/create", json={"Name": "lock"}).json()["ID"]
    assert lead.get(f"/v1/session/info/{sid}").json()[0]["Node"] == "c1"

    # An alias check on the client follows a service on another node (server RPC blocking reads).
    assert lead.put("/v1/catalog/register", json={
        "Node": "ext", "Address": "10.0.0.9",
        "Service": {"ID": "db", "Service": "db"},
        "Check": {"CheckID": "db-up", "Status": "critical", "ServiceID": "db"}}).status_code == 200
    r = cl.put("/v1/agent/check/register",
               json={"Name": "db-alias", "AliasNode": "ext", "AliasService": "db"})
    assert r.status_code == 200, r.text
    wait_for("the alias critical", lambda: catalog_checks(lead, "c1").get("db-alias") == "critical")
    assert lead.put("/v1/catalog/register", json={
        "Node": "ext", "Address": "10.0.0.9",
        "Check": {"CheckID": "db-up", "Status": "passing", "ServiceID": "db"}}).status_code == 200
    wait_for("the alias passing", lambda: catalog_checks(lead, "c1").get("db-alias") == "passing")

    # Anti-entropy repairs the catalog: a service deleted behind the agent's back comes back.
    assert lead.put("/v1/catalog/deregister", json={"Node": "c1", "ServiceID": "web1"}).status_code == 200
    wait_for("web1 restored by anti-entropy",
             lambda: lead.get("/v1/catalog/service/web").json() != [], timeout=20)


def test_a_client_keeps_working_when_the_server_it_talks_to_dies(three):
    c = three
    c.wait_leader()
    cl = c.add_client("c1")
    assert cl.put("/v1/kv/k", data=b"0").json() is True
    used = wait_for("the client's server connection", lambda: servers_in_use(c, cl))
    victim = next(iter(used))
    index = int(cl.get("/v1/kv/k").headers["X-Consul-Index"])
    got = {}

    def block():
        got["r"] = cl.get(f"/v1/kv/k?index={index}&wait=30s", timeout=40)

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.5)
    c.kill9(victim)
    survivors = c.alive()
    c.wait_leader(among=survivors)
    # Writes through the client go on (one may fail while the leader changes, none hangs).
    ok = 0
    deadline = time.monotonic() + 15
    while ok < 20 and time.monotonic() < deadline:
        r = cl.put(f"/v1/kv/after/{ok}", data=b"x", timeout=15)
        if r.status_code == 200 and r.json() is True:
            ok += 1
    assert ok == 20, "the client stopped serving writes after its server died"
    assert cl.put("/v1/kv/k", data=b"1").json() is True
    # The parked read moved to another server and saw the write.
    t.join(timeout=35)
    assert got["r"].status_code == 200
    assert int(got["r"].headers["X-Consul-Index"]) > index
    assert cl.get("/v1/kv/k?raw").text == "1"
    assert servers_in_use(c, cl) - {victim}, "the client now talks to another server"
    assert victim not in servers_in_use(c, cl)
    # Its own services still sync through the survivors.
    assert cl.put("/v1/agent/service/register", json={"Name": "api", "Port": 1}).status_code == 200
    wait_for("api in the catalog",
             lambda: survivors[0].get("/v1/catalog/service/api").json() != [])


def test_a_client_that_leaves_is_deregistered(three):
    c = three
    lead = c.wait_leader()
    cl = c.add_client("c1")
    assert cl.put("/v1/agent/service/register", json={"Name": "web", "Port": 80}).status_code == 200
    wait_for("web in the catalog", lambda: lead.get("/v1/catalog/service/web").json() != [])
    assert cl.put("/v1/agent/leave").status_code == 200
    cl.proc.wait(timeout=15)
    wait_for("left in the pool", lambda: c.members(lead).get("c1") == 3)
    wait_for("the node deregistered", lambda: lead.get("/v1/catalog/node/c1").json() is None)
    assert lead.get("/v1/catalog/service/web").json() == []


def test_a_killed_client_fails_and_its_sessions_are_invalidated(three):
    c = three
    lead = c.wait_leader()
    cl = c.add_client("c1")
    wait_for("c1 registered", lambda: catalog_checks(lead, "c1").get("serfHealth") == "passing")
    sid = cl.put("/v1/session/create", json={}).json()["ID"]
    assert cl.put(f"/v1/kv/locked?acquire={sid}", data=b"me").json() is True
    cl.kill9()
    wait_for("c1 failed in the pool", lambda: c.members(lead).get("c1") == 4)
    wait_for("serfHealth critical", lambda: catalog_checks(lead, "c1").get("serfHealth") == "critical")
    wait_for("the session invalidated", lambda: lead.get(f"/v1/session/info/{sid}").json() == [])
    assert "Session" not in lead.get("/v1/kv/locked").json()[0]


def test_a_client_without_servers_says_so_and_still_answers_for_itself(tmp_path):
    host = "127.0.77.1"
    lone = Agent(["-node", "lone", "-bind", host, "-client", host], data_dir=tmp_path,
                 wait=False, host=host)
    try:
        wait_for("the agent up", lambda: lone.get("/v1/agent/self").status_code == 200)
        for path in ["/v1/kv/x", "/v1/status/leader", "/v1/catalog/nodes"]:
            r = lone.get(path)
            assert r.status_code == 500 and r.text == "No known Consul servers", (path, r.text)
        r = lone.put("/v1/kv/x", data=b"1")
        assert r.status_code == 500 and r.text == "No known Consul servers"
        # The agent's own endpoints work without servers; the registration waits for them.
        assert lone.put("/v1/agent/service/register", json={"Name": "web"}).status_code == 200
        assert list(lone.get("/v1/agent/services").json()) == ["web"]
        assert lone.get("/v1/agent/members").json()[0]["Name"] == "lone"
        # DNS has no server to ask either: SERVFAIL at once, not a timeout.
        assert "status: SERVFAIL" in dig(lone, "web.service.consul", "A")
    finally:
        lone.stop()


def test_leader_only_requests_through_a_client_whose_server_follows(three):
    c = three
    lead = c.wait_leader()
    cl = c.add_client("c1")
    # Sessions need the node registered (with its serfHealth), as in Consul.
    wait_for("c1 registered", lambda: catalog_checks(lead, "c1").get("serfHealth") == "passing")
    assert cl.put("/v1/kv/warm", data=b"1").json() is True
    used = wait_for("the client's server connection", lambda: servers_in_use(c, cl))
    assert len(used) == 1, used
    (srv,) = used
    if srv is lead:
        # Make the client's server a follower.
        r = lead.request("POST", "/v1/operator/raft/transfer-leader", timeout=20)
        assert r.status_code == 200, r.text
        wait_for("a new leader", lambda: c.leader() not in (None, srv))
    assert c.leader() is not srv
    # Session renewals and the operator endpoints are the leader's: the follower passes the
    # client's request on to it.
    sid = cl.put("/v1/session/create", json={"TTL": "10s"}).json()["ID"]
    r = cl.put(f"/v1/session/renew/{sid}")
    assert r.status_code == 200, r.text
    assert r.json()[0]["ID"] == sid
    r = cl.get("/v1/operator/raft/configuration")
    assert r.status_code == 200, r.text
    assert len(r.json()["Servers"]) == 3
    p = cl.cli("operator", "raft", "list-peers")
    assert p.returncode == 0, p.stderr
    assert "leader" in p.stdout.decode()
    wait_for("autopilot health through the client",
             lambda: cl.get("/v1/operator/autopilot/health").json()["Healthy"] is True)
