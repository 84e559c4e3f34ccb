"""`lotse services register|deregister` and `lotse catalog datacenters|nodes|services` as
processes: against a real `lotse agent -dev` (registration round trips, listings compared with the
HTTP API, error texts and exit codes) and against a recording stub server (what goes over the wire,
exact output for canned answers). Texts and exit codes are consul's (command/catalog/list/*,
command/services/{register,deregister}).
"""
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from conftest import lotse_bin

NO_SERVICES = "No services match the given query - try expanding your search.\n"
NO_NODES = "No nodes match the given query - try expanding your search.\n"


def out(p):
    return p.stdout.decode()


def err(p):
    return p.stderr.decode()


def no_panic(p):
    assert "panicked" not in err(p), err(p)


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def node_name(agent):
    return agent.get("/v1/agent/self").json()["Config"]["NodeName"]


def instances(agent, name):
    r = agent.get(f"/v1/catalog/service/{name}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def registered(agent, tmp_path_factory):
    """Registers `web` by flags and `db`, `cache-a`, `cache-b` by files; returns the file paths."""
    d = tmp_path_factory.mktemp("defs")
    p = agent.cli("services", "register", "-name=web", "-id=web1", "-port=8080",
                  "-address=10.0.0.5", "-tag=v1", "-tag", "primary", "-meta", "version=1.2",
                  "-tagged-address=lan=10.0.0.5:8080")
    assert p.returncode == 0, err(p)
    assert out(p) == "Registered service: web\n"

    db = d / "db.json"
    db.write_text(json.dumps({"service": {"name": "db", "port": 5432, "tags": ["leader"],
                                          "check": {"ttl": "30s"}}}))
    cache = d / "cache.hcl"
    cache.write_text('node_name = "ignored"\n'
                     'services {\n  name = "cache"\n  id = "cache-a"\n  port = 6379\n}\n'
                     'services {\n  name = "cache"\n  id = "cache-b"\n  port = 6380\n'
                     '  tags = ["replica"]\n}\n')
    p = agent.cli("services", "register", str(db), str(cache))
    assert p.returncode == 0, err(p)
    assert out(p) == ("Registered service: db\nRegistered service: cache\n"
                      "Registered service: cache\n")
    for name, n in [("web", 1), ("db", 1), ("cache", 2)]:
        assert wait_for(lambda: len(instances(agent, name)) == n), (name, instances(agent, name))
    return {"db": db, "cache": cache}


# ---- registration ---------------------------------------------------------------------------------

def test_register_by_flags_sends_every_field(agent, registered):
    [web] = instances(agent, "web")
    assert web["ServiceID"] == "web1"
    assert web["ServiceName"] == "web"
    assert web["ServicePort"] == 8080
    assert web["ServiceAddress"] == "10.0.0.5"
    assert sorted(web["ServiceTags"]) == ["primary", "v1"]
    assert web["ServiceMeta"] == {"version": "1.2"}
    assert web["ServiceTaggedAddresses"]["lan"] == {"Address": "10.0.0.5", "Port": 8080}


def test_register_by_files_json_and_hcl(agent, registered):
    [db] = instances(agent, "db")
    assert db["ServiceID"] == "db" and db["ServicePort"] == 5432
    assert db["ServiceTags"] == ["leader"]
    checks = agent.get("/v1/health/service/db").json()[0]["Checks"]
    assert any(c["CheckID"] == "service:db" for c in checks), checks
    caches = {s["ServiceID"]: s for s in instances(agent, "cache")}
    assert set(caches) == {"cache-a", "cache-b"}
    assert caches["cache-b"]["ServicePort"] == 6380
    assert caches["cache-b"]["ServiceTags"] == ["replica"]


def test_register_is_idempotent(agent, registered):
    p = agent.cli("services", "register", "-name=web", "-id=web1", "-port=8080",
                  "-address=10.0.0.5", "-tag=v1", "-tag=primary", "-meta=version=1.2",
                  "-tagged-address=lan=10.0.0.5:8080")
    assert p.returncode == 0, err(p)
    assert len(instances(agent, "web")) == 1


# ---- catalog ---------------------------------------------------------------------------------------

def test_catalog_datacenters(agent):
    p = agent.cli("catalog", "datacenters")
    assert p.returncode == 0, err(p)
    dcs = agent.get("/v1/catalog/datacenters").json()
    assert "dc1" in dcs
    assert out(p) == "".join(f"{dc}\n" for dc in dcs)
    assert err(p) == ""


def test_catalog_services_sorted_names(agent, registered):
    p = agent.cli("catalog", "services")
    assert p.returncode == 0, err(p)
    names = out(p).splitlines()
    assert names == sorted(agent.get("/v1/catalog/services").json())
    assert {"web", "db", "cache"} <= set(names)


def test_catalog_services_with_tags(agent, registered):
    p = agent.cli("catalog", "services", "-tags")
    assert p.returncode == 0, err(p)
    text = out(p)
    assert text.endswith("\n") and not text.endswith(" \n")
    lines = text.splitlines()
    catalog = agent.get("/v1/catalog/services").json()
    width = max(len(n) for n in catalog) + 6
    by_name = {l.split()[0]: l for l in lines}
    assert sorted(by_name) == sorted(catalog)
    assert by_name["web"] == "web".ljust(width) + "primary,v1"
    assert by_name["db"] == "db".ljust(width) + "leader"
    assert by_name["cache"] == "cache".ljust(width) + "replica"


def test_catalog_services_of_a_node(agent, registered):
    p = agent.cli("catalog", "services", f"-node={node_name(agent)}")
    assert p.returncode == 0, err(p)
    assert {"web", "db", "cache"} <= set(out(p).splitlines())
    assert out(p).splitlines() == sorted(out(p).splitlines())
    # Both cache instances' tags, concatenated per name (consul does not de-duplicate them).
    p = agent.cli("catalog", "services", "-tags", "-node", node_name(agent))
    line = [l for l in out(p).splitlines() if l.split()[0] == "cache"][0]
    assert line.split()[1] == "replica"


@pytest.mark.parametrize("args", [["-node=no-such-node"], ["-node-meta=nope=nope"],
                                  ["-node-meta", "nope=nope", "-tags"]])
def test_catalog_services_nothing_matches(agent, registered, args):
    p = agent.cli("catalog", "services", *args)
    assert p.returncode == 0, err(p)
    assert out(p) == ""
    assert err(p) == NO_SERVICES


def test_catalog_nodes(agent):
    p = agent.cli("catalog", "nodes")
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[0].split() == ["Node", "ID", "Address", "DC"]
    nodes = agent.get("/v1/catalog/nodes").json()
    assert len(lines) == len(nodes) + 1
    me = [n for n in nodes if n["Node"] == node_name(agent)][0]
    row = [l for l in lines[1:] if l.split()[0] == me["Node"]][0]
    short_id = me["ID"].split("-")[0] if me["ID"].find("-") > 0 else me["ID"]
    assert row.split() == [me["Node"], short_id, me["Address"], me["Datacenter"]]
    # Columns line up under the header.
    for h in ["ID", "Address", "DC"]:
        i = lines[0].index(h)
        assert row[i - 2:i] == "  " and row[i] != " ", (row, h)


def test_catalog_nodes_detailed(agent):
    p = agent.cli("catalog", "nodes", "-detailed")
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[0].split() == ["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]
    me = [n for n in agent.get("/v1/catalog/nodes").json() if n["Node"] == node_name(agent)][0]
    row = [l for l in lines[1:] if l.split()[0] == me["Node"]][0]
    assert me["ID"] in row.split()
    tagged = ", ".join(f"{k}={v}" for k, v in sorted((me["TaggedAddresses"] or {}).items()))
    meta = ", ".join(f"{k}={v}" for k, v in sorted((me["Meta"] or {}).items()))
    start = lines[0].index("TaggedAddresses")
    assert row[start:].startswith(tagged), row
    assert row.rstrip().endswith(meta), row


def test_catalog_nodes_by_service_and_filter(agent, registered):
    me = node_name(agent)
    p = agent.cli("catalog", "nodes", "-service=web")
    assert p.returncode == 0, err(p)
    assert [l.split()[0] for l in out(p).splitlines()[1:]] == [me]
    p = agent.cli("catalog", "nodes", f"-filter=Node == \"{me}\"")
    assert p.returncode == 0, err(p)
    assert [l.split()[0] for l in out(p).splitlines()[1:]] == [me]
    p = agent.cli("catalog", "nodes", "-filter=-", input=f'Node == "{me}"'.encode())
    assert p.returncode == 0, err(p)
    assert [l.split()[0] for l in out(p).splitlines()[1:]] == [me]
    p = agent.cli("catalog", "nodes", "-near=_agent")
    assert p.returncode == 0, err(p)
    assert me in out(p)


@pytest.mark.parametrize("args", [["-service=no-such-service"], ["-node-meta=nope=nope"],
                                  ['-filter=Node == "no-such-node"']])
def test_catalog_nodes_nothing_matches(agent, registered, args):
    p = agent.cli("catalog", "nodes", *args)
    assert p.returncode == 0, err(p)
    assert out(p) == ""
    assert err(p) == NO_NODES


def test_catalog_nodes_bad_filter_is_an_error(agent):
    p = agent.cli("catalog", "nodes", "-filter=Node ==")
    assert p.returncode == 1
    assert err(p).startswith("Error listing nodes: Unexpected response code: "), err(p)


# ---- deregistration ----------------------------------------------------------------------------------

def test_deregister_by_id_and_by_file(agent, registered):
    p = agent.cli("services", "register", "-name=tmp", "-id=tmp1")
    assert p.returncode == 0, err(p)
    assert wait_for(lambda: instances(agent, "tmp"))
    p = agent.cli("services", "deregister", "-id=tmp1")
    assert p.returncode == 0, err(p)
    assert out(p) == "Deregistered service: tmp1\n"
    assert wait_for(lambda: instances(agent, "tmp") == [])

    p = agent.cli("services", "deregister", str(registered["cache"]))
    assert p.returncode == 0, err(p)
    assert out(p) == "Deregistered service: cache-a\nDeregistered service: cache-b\n"
    assert wait_for(lambda: instances(agent, "cache") == [])
    # A file service without an ID is deregistered by its name.
    p = agent.cli("services", "deregister", str(registered["db"]))
    assert p.returncode == 0, err(p)
    assert out(p) == "Deregistered service: db\n"
    assert wait_for(lambda: instances(agent, "db") == [])


# ---- error paths ----------------------------------------------------------------------------------------

def test_register_argument_errors(agent, tmp_path):
    p = agent.cli("services", "register")
    assert (p.returncode, out(p)) == (1, "")
    assert err(p) == "Service registration requires at least one argument or flags.\n"
    p = agent.cli("services", "register", "-name=web", "web.json")
    assert p.returncode == 1
    assert err(p) == "Service registration requires arguments or -id, not both.\n"
    p = agent.cli("services", "register", "-name=web", "-meta=novalue")
    assert p.returncode == 1
    assert err(p) == ('invalid value "novalue" for flag -meta: '
                      'Missing "=" value in argument: novalue\n')
    p = agent.cli("services", "register", "-name=web", "-tagged-address=lan=10.0.0.1")
    assert p.returncode == 1
    assert err(p) == "Invalid Tagged Address: address 10.0.0.1: missing port in address\n"
    p = agent.cli("services", "register", "-name=web", "-port=http")
    assert p.returncode == 1
    assert err(p).startswith('invalid value "http" for flag -port: '), err(p)
    missing = tmp_path / "missing.json"
    p = agent.cli("services", "register", str(missing))
    assert p.returncode == 1
    assert err(p) == (f"Error: config: Open failed on {missing}. open {missing}: "
                      "no such file or directory\n")
    bad = tmp_path / "bad.json"
    bad.write_text('{"service": {"name": "x", "bogus": true}}')
    p = agent.cli("services", "register", str(bad))
    assert p.returncode == 1
    assert err(p) == (f"Error: failed to parse {bad}: 1 error occurred:\n"
                      "\t* invalid config key service.bogus\n\n\n")
    assert out(p) == ""


def test_register_without_a_name_is_rejected_by_the_agent(agent, tmp_path):
    f = tmp_path / "noname.json"
    f.write_text('{"service": {"port": 80}}')
    p = agent.cli("services", "register", str(f))
    assert p.returncode == 1
    assert out(p) == ""
    assert err(p) == ('Error registering service "": Unexpected response code: 400 '
                      "(Missing service name)\n")


def test_deregister_errors(agent):
    p = agent.cli("services", "deregister")
    assert p.returncode == 1
    assert err(p) == "Service deregistration requires at least one argument or -id.\n"
    p = agent.cli("services", "deregister", "-id=web", "web.json")
    assert p.returncode == 1
    assert err(p) == "Service deregistration requires arguments or -id, not both.\n"
    p = agent.cli("services", "deregister", "-id=no-such-id")
    assert p.returncode == 1
    assert out(p) == ""
    # consul names the service by its (empty) name here, not by the ID.
    assert err(p) == ('Error deregistering service "": Unexpected response code: 404 '
                      '(Unknown service ID "no-such-id". Ensure that the service ID is passed, '
                      "not the service name.)\n")


@pytest.mark.parametrize("cmd", [["catalog", "datacenters"], ["catalog", "nodes"],
                                 ["catalog", "services"]])
def test_catalog_commands_take_no_arguments(agent, cmd):
    p = agent.cli(*cmd, "extra")
    assert p.returncode == 1
    assert err(p) == "Too many arguments (expected 0, got 1)\n"


@pytest.mark.parametrize("args,prefix", [
    (["catalog", "datacenters"], "Error listing datacenters: "),
    (["catalog", "nodes"], "Error listing nodes: "),
    (["catalog", "nodes", "-service=web"], "Error listing nodes for service: "),
    (["catalog", "services"], "Error listing services: "),
    (["catalog", "services", "-node=n1"], "Error listing services for node: "),
    (["services", "register", "-name=web"], 'Error registering service "web": '),
    (["services", "deregister", "-id=web"], 'Error deregistering service "": '),
])
def test_agent_down_is_an_error(args, prefix):
    env = dict(os.environ, LOTSE_HTTP_ADDR="127.0.0.1:1")
    env.pop("CONSUL_HTTP_ADDR", None)
    p = subprocess.run([lotse_bin(), *args], capture_output=True, env=env, timeout=30)
    assert p.returncode == 1, (args, err(p))
    assert out(p) == ""
    assert err(p).startswith(prefix), err(p)
    assert "127.0.0.1:1" in err(p)
    no_panic(p)


@pytest.mark.parametrize("args", [["catalog"], ["services"]])
def test_parent_commands_print_their_subcommands(args):
    p = subprocess.run([lotse_bin(), *args], capture_output=True, timeout=10)
    assert p.returncode == 1
    assert "Subcommands:" in err(p)
    p = subprocess.run([lotse_bin(), *args, "-h"], capture_output=True, timeout=10)
    assert p.returncode == 0


# ---- on the wire (stub agent) --------------------------------------------------------------------------

class _Stub(BaseHTTPRequestHandler):
    """Answers catalog reads from `answers` (path → JSON) and records every request."""
    seen = []
    answers = {}

    def log_message(self, *a):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        _Stub.seen.append((self.command, self.path, body))
        path = unquote(urlsplit(self.path).path)
        status, data = _Stub.answers.get(path, (200, b""))
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_PUT = _answer


@pytest.fixture
def stub():
    _Stub.seen.clear()
    _Stub.answers.clear()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{srv.server_address[1]}"

    def run(*args, input=None):
        env = dict(os.environ, LOTSE_HTTP_ADDR=addr)
        env.pop("CONSUL_HTTP_ADDR", None)
        return subprocess.run([lotse_bin(), *args], capture_output=True, env=env, input=input,
                              timeout=30)

    yield run
    srv.shutdown()


def answer(path, value, status=200):
    _Stub.answers[path] = (status, json.dumps(value).encode() if status == 200 else value)


def query(i=-1):
    return parse_qs(urlsplit(_Stub.seen[i][1]).query, keep_blank_values=True)


NODES = [
    {"ID": "40e4a748-2192-161a-0510-9bf59fe950b5", "Node": "alpha", "Address": "10.0.0.1",
     "Datacenter": "dc1", "TaggedAddresses": {"wan": "10.0.0.1", "lan": "10.0.0.1"},
     "Meta": {"rack": "r1"}, "CreateIndex": 5, "ModifyIndex": 5},
    {"ID": "", "Node": "b", "Address": "10.0.0.22", "Datacenter": "dc1",
     "TaggedAddresses": None, "Meta": None, "CreateIndex": 6, "ModifyIndex": 6},
]


def test_stub_nodes_table_and_query(stub):
    answer("/v1/catalog/nodes", NODES)
    p = stub("catalog", "nodes", "-node-meta=rack=r1", "-node-meta", "os=linux", "-near=_agent",
             "-datacenter=dc2")
    assert p.returncode == 0, err(p)
    assert out(p) == ("Node   ID        Address    DC\n"
                      "alpha  40e4a748  10.0.0.1   dc1\n"
                      "b                10.0.0.22  dc1\n")
    q = query()
    assert sorted(q["node-meta"]) == ["os:linux", "rack:r1"]
    assert q["near"] == ["_agent"] and q["dc"] == ["dc2"]
    assert "stale" not in q

    p = stub("catalog", "nodes", "-detailed")
    assert out(p) == ("Node   ID                                    Address    DC   "
                      "TaggedAddresses             Meta\n"
                      "alpha  40e4a748-2192-161a-0510-9bf59fe950b5  10.0.0.1   dc1  "
                      "lan=10.0.0.1, wan=10.0.0.1  rack=r1\n"
                      "b                                            10.0.0.22  dc1  "
                      "                            \n")


def test_stub_nodes_of_a_service_and_filter_from_a_file(stub, tmp_path):
    answer("/v1/catalog/service/my web", [
        {"ID": "11111111-2222", "Node": "n1", "Address": "1.2.3.4", "Datacenter": "dc1",
         "TaggedAddresses": None, "NodeMeta": None, "ServiceID": "w", "ServiceName": "my web"}])
    f = tmp_path / "filter.txt"
    f.write_text('ServiceTags contains "v1"')
    p = stub("catalog", "nodes", "-service=my web", f"-filter=@{f}")
    assert p.returncode == 0, err(p)
    assert out(p) == "Node  ID        Address  DC\nn1    11111111  1.2.3.4  dc1\n"
    method, path, _ = _Stub.seen[-1]
    assert method == "GET" and path.startswith("/v1/catalog/service/my%20web?")
    assert query()["filter"] == ['ServiceTags contains "v1"']
    p = stub("catalog", "nodes", f"-filter=@{tmp_path / 'nope'}")
    assert p.returncode == 1
    assert err(p).startswith("Could not process filter argument: "), err(p)


def test_stub_services_output(stub):
    answer("/v1/catalog/services",
           {"consul": [], "redis": ["v1", "primary"], "postgresql": ["leader"]})
    p = stub("catalog", "services")
    assert (p.returncode, out(p), err(p)) == (0, "consul\npostgresql\nredis\n", "")
    p = stub("catalog", "services", "-tags", "-node-meta=a=b")
    assert out(p) == ("consul          \n"
                      "postgresql      leader\n"
                      "redis           primary,v1\n")
    assert query()["node-meta"] == ["a:b"]
    answer("/v1/catalog/services", {})
    p = stub("catalog", "services")
    assert (p.returncode, out(p), err(p)) == (0, "", NO_SERVICES)


def test_stub_services_of_a_node(stub):
    answer("/v1/catalog/node/n1", {"Node": {"Node": "n1"}, "Services": {
        "web1": {"ID": "web1", "Service": "web", "Tags": ["b"]},
        "web2": {"ID": "web2", "Service": "web", "Tags": ["a", "b"]}}})
    p = stub("catalog", "services", "-node=n1", "-tags")
    assert out(p) == "web      a,b,b\n"
    answer("/v1/catalog/node/n2", None)
    p = stub("catalog", "services", "-node=n2")
    assert (p.returncode, out(p), err(p)) == (0, "", NO_SERVICES)


def test_stub_register_and_deregister_bodies(stub, tmp_path):
    p = stub("services", "register", "-name=web", "-port=80", "-tag=a", "-tag=b",
             "-meta=k=v=w", "-tagged-address=wan=[::1]:81", "-kind=connect-proxy", "-socket=",
             "-address=10.0.0.1")
    assert (p.returncode, out(p)) == (0, "Registered service: web\n"), err(p)
    method, path, body = _Stub.seen[-1]
    assert method == "PUT" and urlsplit(path).path == "/v1/agent/service/register"
    assert json.loads(body) == {"Kind": "connect-proxy", "Name": "web", "Tags": ["a", "b"],
                                "Port": 80, "Address": "10.0.0.1",
                                "TaggedAddresses": {"wan": {"Address": "::1", "Port": 81}},
                                "Meta": {"k": "v=w"}}

    f = tmp_path / "svc.hcl"
    f.write_text('service {\n  name = "api"\n  id = "api-1"\n  check {\n    ttl = "10s"\n  }\n}\n')
    p = stub("services", "register", str(f))
    assert (p.returncode, out(p)) == (0, "Registered service: api\n"), err(p)
    assert json.loads(_Stub.seen[-1][2]) == {"ID": "api-1", "Name": "api",
                                              "Weights": {"Passing": 1, "Warning": 1},
                                              "Checks": [{"TTL": "10s"}]}

    p = stub("services", "deregister", "-id=a b/c")
    assert (p.returncode, out(p)) == (0, "Deregistered service: a b/c\n"), err(p)
    method, path, body = _Stub.seen[-1]
    assert (method, urlsplit(path).path, body) == ("PUT", "/v1/agent/service/deregister/a%20b/c",
                                                    b"")
    p = stub("services", "deregister", str(f))
    assert out(p) == "Deregistered service: api-1\n"


def test_stub_unknown_extension_is_a_warning(stub, tmp_path):
    f = tmp_path / "svc.txt"
    f.write_text('{"service": {"name": "x"}}')
    p = stub("services", "register", str(f))
    assert p.returncode == 0
    assert out(p) == ""
    assert err(p) == (f"skipping file {f}, extension must be .hcl or .json, "
                      "or config format must be set\n")
    assert _Stub.seen == []


def test_stub_agent_errors_are_quoted(stub):
    answer("/v1/agent/service/register", b"Invalid Service Meta: boom", status=400)
    p = stub("services", "register", "-name=web")
    assert p.returncode == 1
    assert err(p) == ('Error registering service "web": Unexpected response code: 400 '
                      "(Invalid Service Meta: boom)\n")
    answer("/v1/catalog/datacenters", b"no leader", status=500)
    p = stub("catalog", "datacenters")
    assert (p.returncode, out(p)) == (1, "")
    assert err(p) == "Error listing datacenters: Unexpected response code: 500 (no leader)\n"
