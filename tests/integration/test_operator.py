"""The operator endpoints and CLI (`/v1/operator/raft/*`, `/v1/operator/autopilot/*`,
`lotse operator ...`) against one `lotse agent -dev` (a single server, its own leader), checked
against Consul's contract: JSON shapes, status codes and texts, CLI output and exit codes.
Multi-server behaviour (forwarding from followers, removing a live peer) is the cluster
tests' job.
"""
import re

import pytest


def out(p):
    return p.stdout.decode()


def err(p):
    return p.stderr.decode()


def the_server(agent):
    r = agent.get("/v1/operator/raft/configuration")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["Servers"]) == 1, body
    return body


def test_raft_configuration_lists_the_dev_server_as_leader_and_voter(agent):
    body = the_server(agent)
    s = body["Servers"][0]
    assert list(s) == ["ID", "Node", "Address", "Leader", "ProtocolVersion", "Voter", "LastIndex"]
    assert s["Leader"] is True and s["Voter"] is True
    assert s["ProtocolVersion"] == "3"
    assert re.fullmatch(r"[0-9a-f-]{36}", s["ID"]), s
    assert re.fullmatch(r".+:\d+", s["Address"]), s
    assert s["LastIndex"] >= 1
    assert isinstance(body["Index"], int)
    me = agent.get("/v1/agent/self").json()["Config"]
    assert s["Node"] == me["NodeName"]
    assert agent.get("/v1/operator/raft/configuration?stale").status_code == 200


def test_remove_peer_errors_are_consuls(agent):
    r = agent.delete("/v1/operator/raft/peer")
    assert r.status_code == 400
    assert r.text == ("Must specify either ?id with the server's ID or ?address with IP:port "
                      "of peer to remove")
    r = agent.delete("/v1/operator/raft/peer?id=a&address=b")
    assert (r.status_code, r.text) == (400, "Must specify only one of ?id or ?address")
    r = agent.delete("/v1/operator/raft/peer?id=nope")
    assert r.status_code == 500
    assert r.text == 'id "nope" was not found in the Raft configuration'
    the_server(agent)


def test_a_lone_server_cannot_transfer_leadership(agent):
    r = requests_post(agent, "/v1/operator/raft/transfer-leader")
    assert r.status_code == 500
    assert r.text == "Failed to transfer Leader: no other voter to transfer leadership to"
    p = agent.cli("operator", "raft", "transfer-leader")
    assert p.returncode == 1
    assert err(p).startswith("Error transfering leadership: Failed to transfer leadership "
                             "Unexpected response code: 500 (Failed to transfer Leader: ")


def requests_post(agent, path):
    import requests
    return requests.post(agent.url + path, timeout=10)


def test_autopilot_configuration_round_trip_with_cas(agent):
    cfg = agent.get("/v1/operator/autopilot/configuration").json()
    assert list(cfg) == ["CleanupDeadServers", "LastContactThreshold", "MaxTrailingLogs",
                         "MinQuorum", "ServerStabilizationTime", "RedundancyZoneTag",
                         "DisableUpgradeMigration", "UpgradeVersionTag", "CreateIndex",
                         "ModifyIndex"]
    assert cfg["LastContactThreshold"] == "200ms" and cfg["ServerStabilizationTime"] == "10s"
    index = cfg["ModifyIndex"]
    new = dict(cfg, MaxTrailingLogs=99, LastContactThreshold="750ms")
    stale = agent.put(f"/v1/operator/autopilot/configuration?cas={index + 100}", json=new)
    assert (stale.status_code, stale.json()) == (200, False)
    assert agent.get("/v1/operator/autopilot/configuration").json()["MaxTrailingLogs"] == 250
    ok = agent.put(f"/v1/operator/autopilot/configuration?cas={index}", json=new)
    assert (ok.status_code, ok.json()) == (200, True)
    now = agent.get("/v1/operator/autopilot/configuration").json()
    assert (now["MaxTrailingLogs"], now["LastContactThreshold"]) == (99, "750ms")
    assert now["ModifyIndex"] > index
    bad = agent.put("/v1/operator/autopilot/configuration?cas=x", json=new)
    assert bad.status_code == 400 and bad.text.startswith("Error parsing cas value: ")
    # The CLI reads what the API wrote, and writes through ?cas.
    p = agent.cli("operator", "autopilot", "get-config")
    assert p.returncode == 0, err(p)
    assert "MaxTrailingLogs = 99\n" in out(p) and "LastContactThreshold = 750ms\n" in out(p)
    assert 'RedundancyZoneTag = ""\n' in out(p)
    p = agent.cli("operator", "autopilot", "set-config", "-max-trailing-logs=250",
                  "-last-contact-threshold=200ms")
    assert (p.returncode, out(p)) == (0, "Configuration updated!\n"), err(p)
    cfg = agent.get("/v1/operator/autopilot/configuration").json()
    assert (cfg["MaxTrailingLogs"], cfg["LastContactThreshold"]) == (250, "200ms")


def test_autopilot_health_and_state(agent):
    r = agent.get("/v1/operator/autopilot/health")
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["Healthy"] is True and h["FailureTolerance"] == 0
    s = h["Servers"][0]
    assert list(s) == ["ID", "Name", "Address", "SerfStatus", "Version", "Leader",
                       "LastContact", "LastTerm", "LastIndex", "Healthy", "Voter", "StableSince"]
    assert s["Leader"] and s["Voter"] and s["Healthy"] and s["SerfStatus"] == "alive"
    assert s["LastContact"] == "0s"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["StableSince"]), s
    st = agent.get("/v1/operator/autopilot/state").json()
    assert st["Leader"] == s["ID"] and st["Voters"] == [s["ID"]]
    assert st["Servers"][s["ID"]]["Status"] == "leader"
    p = agent.cli("operator", "autopilot", "state")
    assert p.returncode == 0, err(p)
    assert out(p).startswith("Healthy:                      true\n")
    assert f"Leader:                       {s['ID']}\n" in out(p)
    p = agent.cli("operator", "autopilot", "state", "-format=json")
    assert p.returncode == 0 and '"Healthy": true' in out(p)


def test_cli_list_peers(agent):
    s = the_server(agent)["Servers"][0]
    p = agent.cli("operator", "raft", "list-peers")
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["Node", "ID", "Address", "State", "Voter",
                                             "RaftProtocol", "Commit Index", "Trails Leader By"]
    row = lines[1].split()
    assert row[:6] == [s["Node"], s["ID"], s["Address"], "leader", "true", "3"]
    assert row[7] == "-" and int(row[6]) >= 1
    assert agent.cli("operator", "raft", "list-peers", "-stale").returncode == 0


def test_cli_remove_peer_errors(agent):
    p = agent.cli("operator", "raft", "remove-peer")
    assert (p.returncode, err(p)) == (
        1, "Error removing peer: an address or id is required for the peer to remove\n")
    p = agent.cli("operator", "raft", "remove-peer", "-id=nope")
    assert p.returncode == 1
    assert err(p) == ("Error removing peer: Unexpected response code: 500 "
                      "(id \"nope\" was not found in the Raft configuration)\n")


@pytest.mark.parametrize("args, code, text", [
    (["join"], 1, "At least one address to join must be specified."),
    (["force-leave"], 1, "A single node name must be specified to force leave."),
    (["leave", "extra"], 1, "Error found unexpected args: [extra]"),
    (["keyring", "-list", "-install=k"], 1, "Only a single action is allowed"),
])
def test_gossip_command_argument_errors(agent, args, code, text):
    p = agent.cli(*args)
    assert p.returncode == code
    assert err(p).startswith(text), err(p)
