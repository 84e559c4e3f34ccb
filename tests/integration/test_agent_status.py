"""Status and agent endpoints, asserted against Consul's HTTP contract.

References (Consul source/docs, read not copied):
  * agent/status_endpoint.go: /v1/status/leader answers the leader's server RPC address as a JSON
    string ("127.0.0.1:8300"), /v1/status/peers the Raft peers as a JSON array of such strings.
  * agent/agent_endpoint.go (AgentSelf): {Config{Datacenter, PrimaryDatacenter, NodeName, NodeID,
    Revision, Server, Version, BuildDate}, DebugConfig, Coord, Member (serf.Member), Stats
    (map[string]map[string]string), Meta}.
  * serf.Member JSON (as served by /v1/agent/members and in AgentSelf.Member): Name, Addr (IP
    string), Port, Tags (map[string]string; a Consul server carries role=consul and dc=<dc>),
    Status (1 = alive), ProtocolMin/Max/Cur, DelegateMin/Max/Cur.
  * agent/agent_endpoint.go (AgentMetrics) + go-metrics InmemSink.DisplayMetrics: JSON
    {Timestamp: "YYYY-MM-DD HH:MM:SS +0000 UTC", Gauges, Points, Counters, Samples}; with
    ?format=prometheus the Prometheus text exposition (Content-Type text/plain; version=0.0.4).
    (Real Consul answers 415 there unless telemetry.prometheus_retention_time is set; Lotse is
    specified to always serve it.)
  * agent/http.go (Index): GET / answers 200 "Consul Agent" or redirects to the UI.
"""
import re

import pytest
import requests

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ADDR_RE = re.compile(r"^(\d{1,3}\.){3}\d{1,3}:\d{1,5}$")
MEMBER_INT_FIELDS = ["Port", "Status", "ProtocolMin", "ProtocolMax", "ProtocolCur",
                     "DelegateMin", "DelegateMax", "DelegateCur"]


@pytest.fixture(scope="module")
def self_info(agent):
    r = agent.get("/v1/agent/self")
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------- status

def test_status_leader_is_json_address_string(agent):
    r = agent.get("/v1/status/leader")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.text.strip().startswith('"'), "leader must be a JSON string"
    leader = r.json()
    assert isinstance(leader, str)
    assert ADDR_RE.match(leader), leader


def test_status_peers_contains_leader(agent):
    leader = agent.get("/v1/status/leader").json()
    r = agent.get("/v1/status/peers")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    peers = r.json()
    assert isinstance(peers, list)
    assert all(isinstance(p, str) and ADDR_RE.match(p) for p in peers), peers
    assert leader in peers
    assert len(peers) == 1, "a single-server cluster has exactly one peer"


def test_status_leader_is_stable(agent):
    a = agent.get("/v1/status/leader").json()
    b = agent.get("/v1/status/leader").json()
    assert a == b


# ---------------------------------------------------------------------------- agent/self

def test_agent_self_config(self_info):
    cfg = self_info["Config"]
    assert isinstance(cfg["Datacenter"], str) and cfg["Datacenter"]
    assert cfg["Datacenter"] == "dc1", "the default datacenter is dc1"
    assert isinstance(cfg["NodeName"], str) and cfg["NodeName"]
    assert UUID_RE.match(cfg["NodeID"]), cfg["NodeID"]
    assert cfg["Server"] is True, "-dev runs a server"
    assert isinstance(cfg["Version"], str) and re.match(r"^\d+\.\d+\.\d+", cfg["Version"]), cfg["Version"]


def test_agent_self_config_has_all_consul_keys(self_info):
    cfg = self_info["Config"]
    for k in ["Datacenter", "PrimaryDatacenter", "NodeName", "NodeID", "Revision", "Server",
              "Version", "BuildDate"]:
        assert k in cfg, f"Config.{k} missing: {sorted(cfg)}"
    assert cfg["PrimaryDatacenter"] == cfg["Datacenter"]


def test_agent_self_top_level(self_info):
    for k in ["Config", "DebugConfig", "Coord", "Member", "Stats", "Meta"]:
        assert k in self_info, f"{k} missing: {sorted(self_info)}"


def test_agent_self_member_and_stats(self_info):
    member = self_info["Member"]
    assert member["Name"] == self_info["Config"]["NodeName"]
    assert member["Status"] == 1
    stats = self_info["Stats"]
    assert isinstance(stats, dict) and stats
    for section, values in stats.items():
        assert isinstance(values, dict), section
        assert all(isinstance(v, str) for v in values.values()), (section, values)


def test_agent_self_node_id_is_stable(agent, self_info):
    again = agent.get("/v1/agent/self").json()
    assert again["Config"]["NodeID"] == self_info["Config"]["NodeID"]
    assert again["Config"]["NodeName"] == self_info["Config"]["NodeName"]


# ---------------------------------------------------------------------------- agent/members

def test_agent_members_shape(agent, self_info):
    r = agent.get("/v1/agent/members")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    members = r.json()
    assert isinstance(members, list) and len(members) >= 1
    me = [m for m in members if m["Name"] == self_info["Config"]["NodeName"]]
    assert len(me) == 1, members
    m = me[0]
    for f in ["Name", "Addr", "Tags"] + MEMBER_INT_FIELDS:
        assert f in m, f"member field {f} missing: {sorted(m)}"
    for f in MEMBER_INT_FIELDS:
        assert isinstance(m[f], int) and not isinstance(m[f], bool), (f, m[f])
    assert m["Status"] == 1, "alive"
    assert re.match(r"^(\d{1,3}\.){3}\d{1,3}$", m["Addr"]), m["Addr"]
    assert 0 < m["Port"] < 65536
    assert m["ProtocolMin"] <= m["ProtocolCur"] <= m["ProtocolMax"]
    assert m["DelegateMin"] <= m["DelegateCur"] <= m["DelegateMax"]
    assert isinstance(m["Tags"], dict)
    assert all(isinstance(v, str) for v in m["Tags"].values())


def test_agent_members_server_tags(agent, self_info):
    m = [m for m in agent.get("/v1/agent/members").json()
         if m["Name"] == self_info["Config"]["NodeName"]][0]
    assert m["Tags"].get("role") == "consul", m["Tags"]
    assert m["Tags"].get("dc") == self_info["Config"]["Datacenter"], m["Tags"]


def test_agent_self_member_matches_members(agent, self_info):
    m = [m for m in agent.get("/v1/agent/members").json()
         if m["Name"] == self_info["Config"]["NodeName"]][0]
    me = self_info["Member"]
    for f in ["Name", "Addr", "Port", "Status"]:
        assert me[f] == m[f], f


# ---------------------------------------------------------------------------- metrics

def test_agent_metrics_json(agent):
    # A couple of requests first so there is something to report.
    agent.put("/v1/kv/metrics-probe", data=b"x")
    agent.get("/v1/kv/metrics-probe")
    r = agent.get("/v1/agent/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    m = r.json()
    for k in ["Timestamp", "Gauges", "Points", "Counters", "Samples"]:
        assert k in m, f"{k} missing: {sorted(m)}"
    assert re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000 UTC$", m["Timestamp"]), m["Timestamp"]
    for k in ["Gauges", "Points", "Counters", "Samples"]:
        assert isinstance(m[k], list), k
    for g in m["Gauges"]:
        assert {"Name", "Value", "Labels"} <= set(g), g
        assert isinstance(g["Name"], str) and isinstance(g["Labels"], dict)
    for s in m["Counters"] + m["Samples"]:
        assert {"Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"} <= set(s), s


def test_agent_metrics_prometheus(agent):
    agent.get("/v1/status/leader")
    r = agent.get("/v1/agent/metrics", params={"format": "prometheus"})
    assert r.status_code == 200, f"{r.status_code} {r.text[:200]}"
    ct = r.headers["Content-Type"]
    assert ct.startswith("text/plain"), ct
    assert "version=0.0.4" in ct, ct
    lines = [l for l in r.text.splitlines() if l.strip()]
    assert any(l.startswith("# TYPE ") for l in lines), r.text[:500]
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEInfNa]+( -?\d+)?$')
    for l in lines:
        if l.startswith("# HELP ") or l.startswith("# TYPE "):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]*(\s|$)", l), l
        elif not l.startswith("#"):
            assert sample.match(l), l


# ---------------------------------------------------------------------------- index

def test_root_answers_2xx(agent):
    r = requests.get(agent.url + "/", timeout=10)
    assert 200 <= r.status_code < 300, r.status_code


def test_unknown_path_is_404(agent):
    r = requests.get(agent.url + "/no/such/endpoint", timeout=10)
    assert r.status_code == 404
