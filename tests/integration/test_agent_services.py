"""The agent's service endpoints, asserted against Consul's HTTP contract through the binary.

References (Consul source, read not copied):
  * agent/agent_endpoint.go: AgentServices (map id -> api.AgentService, bexpr filter),
    AgentService (ContentHash + X-Consul-ContentHash, hash blocking through
    LocalBlockingQuery; unknown id -> 404 "unknown service ID: <id>"), AgentRegisterService
    (decode -> 400 "Request decode failed: ...", "Missing service name", ...; success: nil,
    i.e. 200 with an empty body and no Content-Type; ?replace-existing-checks),
    AgentDeregisterService (404 `Unknown service ID "<id>". Ensure that the service ID is
    passed, not the service name.`), AgentServiceMaintenance / AgentNodeMaintenance
    ("Missing value for enable", `Invalid value for enable: "<raw>"` after strconv.ParseBool),
    AgentHealthServiceByID / ByName (200/429/503/404, X-Consul-Reason, ?format=text),
    AgentToken (401 "ACL support disabled" with ACLs off), AgentMonitor (loglevel, logjson,
    400 "Unknown log level: <v>", a streamed body).
  * agent/agent.go: addServiceInternal (ID defaults to the name; check IDs `service:<id>`, or
    `service:<id>:<n>` when there are several; names `Service '<name>' check`; status critical
    until the first result), EnableServiceMaintenance (`_service_maintenance:<id>`, Notes default
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default
    message."), EnableNodeMaintenance (`_node_maintenance`).
  * api/agent.go (AgentService JSON), api/health.go (AggregatedStatus: maintenance > critical >
    warning > passing), agent/http.go (405 + Allow: OPTIONS,<M>).
  * py-consul 1.8.0 (consul/api/agent.py): register sends lower-case keys ("name", "id",
    "address", "port", "tags", "meta", "checks": [{"ttl": ...}], "tagged_addresses"), maintenance
    sends enable=True/False, every call expects 200.
"""
import json
import threading
import time
import uuid

import consul
import pytest
import requests

ABSENT_WHEN_EMPTY = {"Kind", "SocketPath", "CreateIndex", "ModifyIndex", "ContentHash", "Proxy",
                     "Connect", "Namespace", "Partition", "PeerName", "Locality"}


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register(agent, body, params=None):
    r = agent.put("/v1/agent/service/register", data=json.dumps(body), params=params)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.text == "", r.text
    assert "Content-Type" not in r.headers, r.headers
    return r


def services(agent, **params):
    r = agent.get("/v1/agent/services", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def checks(agent):
    r = agent.get("/v1/agent/checks")
    assert r.status_code == 200, r.text
    return r.json()


def node_name(agent):
    return agent.get("/v1/agent/self").json()["Config"]["NodeName"]


def put_err(agent, path, status, text, **kw):
    r = agent.put(path, **kw)
    assert (r.status_code, r.text) == (status, text), f"{r.status_code} {r.text!r}"
    return r


# ---------------------------------------------------------------------------- register / list

def test_register_list_get_deregister_round_trip(agent):
    sid = uid("web")
    register(agent, {
        "Name": "web", "ID": sid, "Tags": ["v1", "primary"], "Port": 8080,
        "Address": "10.1.2.3", "Meta": {"env": "prod"},
    })
    body = services(agent)
    assert sid in body, body
    s = body[sid]
    assert s["ID"] == sid and s["Service"] == "web"
    assert s["Tags"] == ["v1", "primary"] and s["Meta"] == {"env": "prod"}
    assert s["Port"] == 8080 and s["Address"] == "10.1.2.3"
    assert s["Weights"] == {"Passing": 1, "Warning": 1}
    assert s["EnableTagOverride"] is False
    assert s["Datacenter"] == "dc1"
    # The agent adds lan/wan tagged addresses for an IP address.
    assert s["TaggedAddresses"]["lan_ipv4"] == {"Address": "10.1.2.3", "Port": 8080}, s
    assert s["TaggedAddresses"]["wan_ipv4"] == {"Address": "10.1.2.3", "Port": 8080}, s
    assert not ABSENT_WHEN_EMPTY & set(s), s

    r = agent.get(f"/v1/agent/service/{sid}")
    assert r.status_code == 200, r.text
    one = r.json()
    assert r.headers["Content-Type"] == "application/json"
    assert one["ContentHash"] and one["ContentHash"] == r.headers["X-Consul-ContentHash"]
    assert {k: v for k, v in one.items() if k != "ContentHash"} == s
    # No blocking-query headers on agent-local endpoints.
    assert "X-Consul-Index" not in r.headers

    r = agent.put(f"/v1/agent/service/deregister/{sid}")
    assert (r.status_code, r.text) == (200, ""), r.text
    assert sid not in services(agent)
    put_err(agent, f"/v1/agent/service/deregister/{sid}", 404,
            f'Unknown service ID "{sid}". Ensure that the service ID is passed, not the service name.')
    r = agent.get(f"/v1/agent/service/{sid}")
    assert (r.status_code, r.text) == (404, f"unknown service ID: {sid}")


def test_a_service_without_tags_or_meta_shows_empty_ones_and_id_defaults_to_name(agent):
    name = uid("bare")
    register(agent, {"name": name})
    s = services(agent)[name]
    assert s["ID"] == name and s["Service"] == name
    assert s["Tags"] == [] and s["Meta"] == {} and s["Port"] == 0 and s["Address"] == ""
    assert "TaggedAddresses" not in s, s
    agent.put(f"/v1/agent/service/deregister/{name}")


def test_registration_reaches_the_catalog_before_the_answer(agent):
    name = uid("cat")
    register(agent, {"Name": name, "Port": 1234, "Check": {"TTL": "30s"}})
    r = agent.get(f"/v1/catalog/service/{name}")
    assert r.status_code == 200, r.text
    entries = r.json()
    assert [(e["ServiceID"], e["ServicePort"], e["Node"]) for e in entries] == \
        [(name, 1234, node_name(agent))], entries
    r = agent.get(f"/v1/health/service/{name}")
    assert r.status_code == 200, r.text
    [entry] = r.json()
    assert {c["CheckID"]: c["Status"] for c in entry["Checks"]}[f"service:{name}"] == "critical"

    agent.put(f"/v1/agent/service/deregister/{name}")
    assert agent.get(f"/v1/catalog/service/{name}").json() == []


def test_pyconsul_registers_with_lower_case_keys(agent):
    c = consul.Consul(host="127.0.0.1", port=agent.http_port)
    sid = uid("py")
    assert c.agent.service.register(
        "pyweb", service_id=sid, address="127.0.0.1", port=9000, tags=["a"],
        meta={"team": "x"}, check=consul.Check.ttl("30s"),
        tagged_addresses={"lan": {"address": "127.0.0.1", "port": 9000}},
    ) is True
    svc = c.agent.services()[sid]
    assert (svc["Service"], svc["Port"], svc["Tags"], svc["Meta"]) == ("pyweb", 9000, ["a"], {"team": "x"})
    assert svc["TaggedAddresses"]["lan"] == {"Address": "127.0.0.1", "Port": 9000}, svc
    assert c.agent.service_definition(sid)["ContentHash"]
    chk = c.agent.checks()[f"service:{sid}"]
    assert (chk["Name"], chk["Status"], chk["ServiceID"], chk["ServiceName"], chk["Type"]) == \
        ("Service 'pyweb' check", "critical", sid, "pyweb", "ttl")
    assert chk["ServiceTags"] == ["a"]
    # Filtering through the client.
    assert list(c.agent.services(filter_expr=f'ID == "{sid}"')) == [sid]
    assert c.agent.service.maintenance(sid, True, "upgrade") is True
    assert c.agent.checks()[f"_service_maintenance:{sid}"]["Notes"] == "upgrade"
    assert c.agent.service.maintenance(sid, False) is True
    assert c.agent.service.deregister(sid) is True
    assert sid not in c.agent.services()


def test_several_checks_get_numbered_ids_and_default_names(agent):
    sid = uid("multi")
    register(agent, {"Name": "multi", "ID": sid,
                     "Checks": [{"TTL": "30s"}, {"TTL": "30s", "Name": "second", "Notes": "n"},
                                {"CheckID": "mine", "TTL": "30s", "Status": "passing"}]})
    cs = checks(agent)
    one, two = cs[f"service:{sid}:1"], cs[f"service:{sid}:2"]
    assert one["Name"] == "Service 'multi' check" and one["Status"] == "critical"
    assert two["Name"] == "second" and two["Notes"] == "n"
    assert cs["mine"]["Status"] == "passing" and cs["mine"]["ServiceID"] == sid
    agent.put(f"/v1/agent/service/deregister/{sid}")
    cs = checks(agent)
    assert not {f"service:{sid}:1", f"service:{sid}:2", "mine"} & set(cs), "checks outlived their service"


def test_replace_existing_checks(agent):
    sid = uid("repl")
    register(agent, {"Name": sid, "Checks": [{"CheckID": f"{sid}-a", "TTL": "30s"},
                                             {"CheckID": f"{sid}-b", "TTL": "30s"}]})
    # Without the flag, checks left out of the new definition are kept.
    register(agent, {"Name": sid, "Checks": [{"CheckID": f"{sid}-a", "TTL": "30s"}]})
    assert {f"{sid}-a", f"{sid}-b"} <= set(checks(agent))
    register(agent, {"Name": sid, "Checks": [{"CheckID": f"{sid}-a", "TTL": "30s"}]},
             params={"replace-existing-checks": ""})
    cs = checks(agent)
    assert f"{sid}-a" in cs and f"{sid}-b" not in cs
    agent.put(f"/v1/agent/service/deregister/{sid}")


def test_reregistering_keeps_a_checks_status(agent):
    sid = uid("keep")
    register(agent, {"Name": sid, "Check": {"TTL": "30s"}})
    assert agent.put(f"/v1/agent/check/pass/service:{sid}", params={"note": "fine"}).status_code == 200
    register(agent, {"Name": sid, "Tags": ["new"], "Check": {"TTL": "30s"}})
    c = checks(agent)[f"service:{sid}"]
    assert (c["Status"], c["Output"], c["ServiceTags"]) == ("passing", "fine", ["new"])
    agent.put(f"/v1/agent/service/deregister/{sid}")


@pytest.mark.parametrize("body,text", [
    ("", "Request decode failed: EOF"),
    ("{", "Request decode failed: unexpected EOF"),
    ('{"Port": 80}', "Missing service name"),
    ('{"Name": "x", "Address": "0.0.0.0"}', "Invalid service address"),
    ('{"Name": "x", "Bogus": 1}', 'Request decode failed: json: unknown field "Bogus"'),
    ('{"Name": "x", "Check": {"Interval": "10s"}}', "Invalid check: TTL must be > 0 for TTL checks"),
    ('{"Name": "x", "Check": {"Interval": "10s", "TTL": "10s"}}',
     "Invalid check: Interval and TTL cannot both be specified"),
    ('{"Name": "x", "Check": {"TTL": "10"}}',
     'Request decode failed: time: missing unit in duration "10"'),
])
def test_register_errors_are_consuls(agent, body, text):
    put_err(agent, "/v1/agent/service/register", 400, text, data=body)


def test_bad_json_is_a_decode_failure(agent):
    r = agent.put("/v1/agent/service/register", data="{nope}")
    assert r.status_code == 400 and r.text.startswith("Request decode failed: "), r.text


def test_script_checks_are_refused_without_enable_script_checks(agent):
    put_err(agent, "/v1/agent/service/register", 500,
            "Scripts are disabled on this agent from remote calls; to enable, configure "
            "'enable_script_checks' to true",
            json={"Name": uid("scr"), "Check": {"Args": ["true"], "Interval": "10s"}})


def test_services_filter(agent):
    a, b = uid("fa"), uid("fb")
    register(agent, {"Name": "filt", "ID": a, "Tags": ["blue"], "Port": 1})
    register(agent, {"Name": "filt", "ID": b, "Tags": ["green"], "Port": 2, "Meta": {"k": "v"}})
    assert set(services(agent, filter='blue in Tags and Service == "filt"')) == {a}
    assert set(services(agent, filter="Meta.k == v")) == {b}
    assert set(services(agent, filter="Port == 2")) == {b}
    r = agent.get("/v1/agent/services", params={"filter": "Nope == 1"})
    assert r.status_code == 400 and \
        r.text.startswith("Failed to create boolean expression evaluator"), r.text
    for s in (a, b):
        agent.put(f"/v1/agent/service/deregister/{s}")


# ---------------------------------------------------------------------------- hash blocking

def test_hash_blocking_waits_for_a_change(agent):
    sid = uid("hash")
    register(agent, {"Name": sid, "Port": 1})
    r = agent.get(f"/v1/agent/service/{sid}")
    h = r.headers["X-Consul-ContentHash"]
    # Unchanged definitions hash the same.
    assert agent.get(f"/v1/agent/service/{sid}").headers["X-Consul-ContentHash"] == h

    # A different hash answers at once.
    t0 = time.monotonic()
    r = agent.get(f"/v1/agent/service/{sid}", params={"hash": "nothex", "wait": "10s"})
    assert r.status_code == 200 and time.monotonic() - t0 < 2

    # The current hash with nothing changing: answers after ~wait with the same hash.
    t0 = time.monotonic()
    r = agent.get(f"/v1/agent/service/{sid}", params={"hash": h, "wait": "1s"})
    took = time.monotonic() - t0
    assert r.status_code == 200 and r.headers["X-Consul-ContentHash"] == h
    assert 0.9 <= took < 1.0 + 1 / 16 + 1.0, took

    # A change wakes it, with the new hash.
    def change():
        time.sleep(0.5)
        register(agent, {"Name": sid, "Port": 2})
    threading.Thread(target=change).start()
    t0 = time.monotonic()
    r = agent.get(f"/v1/agent/service/{sid}", params={"hash": h, "wait": "20s"}, timeout=30)
    took = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert r.json()["Port"] == 2 and r.headers["X-Consul-ContentHash"] != h
    assert 0.4 <= took < 5, took

    # A deregistration while waiting is the unknown-service 404.
    h2 = r.headers["X-Consul-ContentHash"]
    threading.Thread(target=lambda: (time.sleep(0.3),
                                     agent.put(f"/v1/agent/service/deregister/{sid}"))).start()
    r = agent.get(f"/v1/agent/service/{sid}", params={"hash": h2, "wait": "20s"}, timeout=30)
    assert (r.status_code, r.text) == (404, f"unknown service ID: {sid}")


def test_bad_wait_and_index(agent):
    put = agent.get("/v1/agent/service/whatever", params={"wait": "5"})
    assert (put.status_code, put.text) == (400, "Invalid wait time")
    r = agent.get("/v1/agent/service/whatever", params={"index": "x"})
    assert (r.status_code, r.text) == (400, "Invalid index")


# ---------------------------------------------------------------------------- maintenance

def test_service_maintenance(agent):
    sid = uid("maint")
    register(agent, {"Name": sid, "Check": {"TTL": "30s", "Status": "passing"}})
    assert len(agent.get(f"/v1/health/service/{sid}", params={"passing": ""}).json()) == 1

    r = agent.put(f"/v1/agent/service/maintenance/{sid}", params={"enable": "true"})
    assert (r.status_code, r.text) == (200, "")
    m = checks(agent)[f"_service_maintenance:{sid}"]
    assert m == {**m, "Name": "Service Maintenance Mode", "Status": "critical",
                 "Type": "maintenance", "ServiceID": sid, "ServiceName": sid,
                 "Node": node_name(agent),
                 "Notes": "Maintenance mode is enabled for this service, but no reason was "
                          "provided. This is a default message."}, m
    # Enabling again keeps the first reason.
    agent.put(f"/v1/agent/service/maintenance/{sid}", params={"enable": "1", "reason": "later"})
    assert checks(agent)[f"_service_maintenance:{sid}"]["Notes"].startswith("Maintenance mode")
    # The instance fails ?passing, in the catalog's health view too.
    assert agent.get(f"/v1/health/service/{sid}", params={"passing": ""}).json() == []
    r = agent.get(f"/v1/agent/health/service/id/{sid}")
    assert r.status_code == 503 and r.headers["X-Consul-Reason"] == "maintenance"

    agent.put(f"/v1/agent/service/maintenance/{sid}", params={"enable": "False"})
    assert f"_service_maintenance:{sid}" not in checks(agent)
    assert len(agent.get(f"/v1/health/service/{sid}", params={"passing": ""}).json()) == 1
    # Disabling twice is fine.
    assert agent.put(f"/v1/agent/service/maintenance/{sid}", params={"enable": "f"}).status_code == 200

    put_err(agent, f"/v1/agent/service/maintenance/{sid}", 400, "Missing value for enable")
    put_err(agent, f"/v1/agent/service/maintenance/{sid}", 400, 'Invalid value for enable: "yes"',
            params={"enable": "yes"})
    put_err(agent, "/v1/agent/service/maintenance/nope", 404,
            'Unknown service ID "nope". Ensure that the service ID is passed, not the service name.',
            params={"enable": "true"})
    put_err(agent, "/v1/agent/service/maintenance/", 400, "Missing service ID",
            params={"enable": "true"})
    agent.put(f"/v1/agent/service/deregister/{sid}")


def test_node_maintenance_fails_every_service(agent):
    sid = uid("nm")
    register(agent, {"Name": sid, "Check": {"TTL": "30s", "Status": "passing"}})
    r = agent.put("/v1/agent/maintenance", params={"enable": "true", "reason": "patching"})
    assert (r.status_code, r.text) == (200, "")
    try:
        m = checks(agent)["_node_maintenance"]
        assert (m["Name"], m["Notes"], m["Status"], m["Type"], m["ServiceID"]) == \
            ("Node Maintenance Mode", "patching", "critical", "maintenance", "")
        assert agent.get(f"/v1/health/service/{sid}", params={"passing": "1"}).json() == []
        r = agent.get(f"/v1/agent/health/service/name/{sid}", params={"format": "text"})
        assert (r.status_code, r.text) == (503, "maintenance")
    finally:
        agent.put("/v1/agent/maintenance", params={"enable": "false"})
    assert "_node_maintenance" not in checks(agent)
    assert len(agent.get(f"/v1/health/service/{sid}", params={"passing": "1"}).json()) == 1
    put_err(agent, "/v1/agent/maintenance", 400, "Missing value for enable")
    put_err(agent, "/v1/agent/maintenance", 400, 'Invalid value for enable: ""',
            params={"enable": ""})
    # The default reason.
    agent.put("/v1/agent/maintenance", params={"enable": "T"})
    assert checks(agent)["_node_maintenance"]["Notes"] == (
        "Maintenance mode is enabled for this node, but no reason was provided. "
        "This is a default message.")
    agent.put("/v1/agent/maintenance", params={"enable": "F"})
    agent.put(f"/v1/agent/service/deregister/{sid}")


# ---------------------------------------------------------------------------- agent health

def test_agent_health_by_id_and_name(agent):
    name = uid("ah")
    a, b = f"{name}-a", f"{name}-b"
    register(agent, {"Name": name, "ID": a, "Check": {"CheckID": f"{a}-ttl", "TTL": "30s",
                                                      "Status": "passing"}})
    r = agent.get(f"/v1/agent/health/service/id/{a}")
    assert r.status_code == 200 and r.headers["X-Consul-Reason"] == "passing"
    body = r.json()
    assert body["AggregatedStatus"] == "passing"
    assert body["Service"]["ID"] == a and body["Service"]["Service"] == name
    [chk] = body["Checks"]
    assert (chk["CheckID"], chk["Status"], chk["Type"], chk["ServiceID"]) == (f"{a}-ttl", "passing", "", a)
    assert chk["Definition"]["Interval"] == "0s"

    agent.put(f"/v1/agent/check/warn/{a}-ttl")
    r = agent.get(f"/v1/agent/health/service/id/{a}", params={"format": "text"})
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (429, "warning", "text/plain")
    r = agent.get(f"/v1/agent/health/service/id/{a}", headers={"Accept": "text/plain"})
    assert (r.status_code, r.text) == (429, "warning")

    register(agent, {"Name": name, "ID": b, "Check": {"CheckID": f"{b}-ttl", "TTL": "30s"}})
    r = agent.get(f"/v1/agent/health/service/name/{name}")
    assert r.status_code == 503 and r.headers["X-Consul-Reason"] == "critical"
    assert sorted((x["Service"]["ID"], x["AggregatedStatus"]) for x in r.json()) == \
        [(a, "warning"), (b, "critical")]

    r = agent.get("/v1/agent/health/service/id/nope")
    assert r.status_code == 404 and r.headers["X-Consul-Reason"] == "ServiceId nope not found"
    assert r.json() == {"AggregatedStatus": "critical", "Service": None, "Checks": None}
    r = agent.get("/v1/agent/health/service/id/nope", params={"format": "text"})
    assert (r.status_code, r.text) == (404, "ServiceId nope not found")
    r = agent.get("/v1/agent/health/service/name/nope")
    assert (r.status_code, r.json(), r.headers["X-Consul-Reason"]) == \
        (404, [], "ServiceName nope Not Found")
    for s in (a, b):
        agent.put(f"/v1/agent/service/deregister/{s}")


# ---------------------------------------------------------------------------- token, reload, 405s

def test_token_endpoints_say_acls_are_disabled(agent):
    for t in ("default", "agent", "bogus"):
        put_err(agent, f"/v1/agent/token/{t}", 401, "ACL support disabled", json={"Token": "x"})


def test_reload_answers_empty_200(agent):
    r = agent.put("/v1/agent/reload")
    assert (r.status_code, r.text) == (200, ""), r.text


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/v1/agent/service/register", "OPTIONS,PUT"),
    ("POST", "/v1/agent/service/register", "OPTIONS,PUT"),
    ("GET", "/v1/agent/service/deregister/x", "OPTIONS,PUT"),
    ("GET", "/v1/agent/service/maintenance/x", "OPTIONS,PUT"),
    ("GET", "/v1/agent/maintenance", "OPTIONS,PUT"),
    ("PUT", "/v1/agent/services", "OPTIONS,GET"),
    ("DELETE", "/v1/agent/service/x", "OPTIONS,GET"),
    ("GET", "/v1/agent/reload", "OPTIONS,PUT"),
    ("GET", "/v1/agent/token/default", "OPTIONS,PUT"),
    ("PUT", "/v1/agent/monitor", "OPTIONS,GET"),
    ("PUT", "/v1/agent/health/service/id/x", "OPTIONS,GET"),
])
def test_wrong_methods_are_405_with_allow(agent, method, path, allow):
    r = requests.request(method, agent.url + path, timeout=10)
    assert (r.status_code, r.text) == (405, f"method {method} not allowed"), r.text
    assert r.headers["Allow"] == allow
    r = requests.options(agent.url + path, timeout=10)
    assert r.status_code == 200 and r.headers["Allow"] == allow


# ---------------------------------------------------------------------------- monitor

def test_monitor_rejects_unknown_levels(agent):
    r = agent.get("/v1/agent/monitor", params={"loglevel": "verbose"})
    assert (r.status_code, r.text) == (400, "Unknown log level: verbose")


def read_lines_until(resp, predicate, timeout):
    """Reads streamed lines until one satisfies predicate; returns it (None on timeout)."""
    found = []

    def reader():
        try:
            for line in resp.iter_lines(decode_unicode=True):
                if line and predicate(line):
                    found.append(line)
                    return
        except requests.RequestException:
            pass

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    resp.close()
    return found[0] if found else None


NOT_WIRED = "Log monitoring is not available on this agent"


def open_monitor(agent, **params):
    r = requests.get(agent.url + "/v1/agent/monitor", params=params, stream=True, timeout=(5, 15))
    if (r.status_code, r.text if r.status_code == 500 else "") == (500, NOT_WIRED):
        pytest.skip("the binary does not hand its log hub to the API yet (ApiState.logs)")
    assert r.status_code == 200, r.text
    return r


def test_monitor_streams_log_lines(agent):
    cid = uid("mon")
    r = open_monitor(agent, loglevel="warn")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    # A TTL check that expires logs a warning.
    assert agent.put("/v1/agent/check/register",
                     json={"Name": cid, "TTL": "1s"}).status_code == 200
    line = read_lines_until(r, lambda l: cid in l, timeout=10)
    agent.put(f"/v1/agent/check/deregister/{cid}")
    assert line is not None, agent.output()
    # hclog's text form: time, level, module, message, key=value pairs.
    assert "Z [WARN]  " in line and f"check={cid}" in line, line


def test_monitor_streams_json(agent):
    cid = uid("monj")
    r = open_monitor(agent, loglevel="debug", logjson="")
    assert agent.put("/v1/agent/check/register", json={"Name": cid, "TTL": "1s"}).status_code == 200
    line = read_lines_until(r, lambda l: cid in l, timeout=10)
    agent.put(f"/v1/agent/check/deregister/{cid}")
    assert line is not None, agent.output()
    rec = json.loads(line)
    assert rec["@level"] == "warn" and rec["check"] == cid, rec
    assert rec["@timestamp"].endswith("Z") and rec["@message"] and rec["@module"], rec
