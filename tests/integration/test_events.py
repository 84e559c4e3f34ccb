"""User events and watches against a real `lotse agent -dev`, checked against Consul's
contract: `PUT /v1/event/fire/NAME`, `GET /v1/event/list` (blocking on the uuidToUint64 index),
`lotse event` and `lotse watch`.

Events travel through the agent's own gossip pool: a fired event comes back to the agent
asynchronously, so the tests poll (bounded) for it to appear in the list.
"""
import base64
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from conftest import lotse_bin


def uuid_to_u64(uuid):
    """Consul's uuidToUint64: the two 64-bit halves of the UUID, xor-ed."""
    lower = int(uuid[0:8] + uuid[9:13] + uuid[14:18], 16)
    upper = int(uuid[19:23] + uuid[24:36], 16)
    return lower ^ upper


def fire(agent, name, payload=None, **filters):
    return agent.put(f"/v1/event/fire/{name}", params=filters, data=payload)


def wait_for_event(agent, event_id, timeout=10.0):
    """The listed event with `event_id`, once it has arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in agent.get("/v1/event/list").json():
            if e["ID"] == event_id:
                return e
        time.sleep(0.05)
    raise AssertionError(f"event {event_id} never listed:\n{agent.output()}")


def test_fire_answers_the_event_and_list_shows_it(agent):
    r = fire(agent, "deploy", b"v1.2.3")
    assert r.status_code == 200, r.text
    ev = r.json()
    assert list(ev) == ["ID", "Name", "Payload", "NodeFilter", "ServiceFilter", "TagFilter",
                        "Version", "LTime"]
    assert ev["Name"] == "deploy"
    assert base64.b64decode(ev["Payload"]) == b"v1.2.3"
    assert (ev["NodeFilter"], ev["ServiceFilter"], ev["TagFilter"]) == ("", "", "")
    assert ev["Version"] == 1
    assert len(ev["ID"]) == 36

    listed = wait_for_event(agent, ev["ID"])
    assert listed["Name"] == "deploy"
    assert base64.b64decode(listed["Payload"]) == b"v1.2.3"
    r = agent.get("/v1/event/list")
    assert r.headers["X-Consul-Index"] == str(uuid_to_u64(r.json()[-1]["ID"]))

    # No body: a null payload.
    ev2 = fire(agent, "nopayload").json()
    assert ev2["Payload"] is None
    assert wait_for_event(agent, ev2["ID"])["Payload"] is None


def test_list_filters_by_name(agent):
    a = fire(agent, "alpha-evt", b"a").json()
    b = fire(agent, "beta-evt", b"b").json()
    wait_for_event(agent, a["ID"])
    wait_for_event(agent, b["ID"])
    r = agent.get("/v1/event/list", params={"name": "alpha-evt"})
    assert r.status_code == 200
    names = {e["Name"] for e in r.json()}
    assert names == {"alpha-evt"}
    assert r.headers["X-Consul-Index"] == str(uuid_to_u64(a["ID"]))
    r = agent.get("/v1/event/list", params={"name": "never-fired"})
    assert r.json() == []
    assert r.headers["X-Consul-Index"] == "1"


def test_blocking_list_wakes_on_fire(agent):
    first = fire(agent, "block-evt", b"1").json()
    wait_for_event(agent, first["ID"])
    r = agent.get("/v1/event/list", params={"name": "block-evt"})
    index = int(r.headers["X-Consul-Index"])

    # Nothing new: the wait runs out and the same index comes back.
    started = time.monotonic()
    r = agent.get("/v1/event/list", params={"name": "block-evt", "index": index, "wait": "300ms"})
    assert time.monotonic() - started >= 0.25
    assert int(r.headers["X-Consul-Index"]) == index

    result = {}

    def block():
        result["r"] = agent.get("/v1/event/list",
                                params={"name": "block-evt", "index": index, "wait": "20s"},
                                timeout=30)

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), "returned before a new event"
    second = fire(agent, "block-evt", b"2").json()
    started = time.monotonic()
    t.join(timeout=15)
    assert not t.is_alive()
    assert time.monotonic() - started < 10
    r = result["r"]
    assert r.status_code == 200
    assert int(r.headers["X-Consul-Index"]) == uuid_to_u64(second["ID"])
    assert r.json()[-1]["ID"] == second["ID"]


def test_underscore_names_are_refused(agent):
    r = fire(agent, "_rexec", b"x")
    assert r.status_code == 400
    assert "reserved" in r.text
    assert all(e["Name"] != "_rexec" for e in agent.get("/v1/event/list").json())


def test_oversize_payload_is_refused(agent):
    r = fire(agent, "big", b"x" * 1000)
    assert r.status_code == 500
    assert r.text == "user event exceeds configured limit of 512 bytes before encoding"
    r = fire(agent, "big", b"x" * 450)
    assert r.status_code == 500
    assert "exceeds configured limit of 512 bytes" in r.text
    assert fire(agent, "big", b"x" * 300).status_code == 200


def test_invalid_filters_are_refused_with_consuls_texts(agent):
    r = fire(agent, "x", tag="v1")
    assert (r.status_code, r.text) == (500, "Cannot provide tag filter without service filter")
    r = fire(agent, "x", node="(")
    assert r.status_code == 500
    assert r.text.startswith("Invalid node filter: error parsing regexp: missing closing )")
    r = agent.put("/v1/event/fire/")
    assert (r.status_code, r.text) == (400, "Missing name")


def test_node_filter_that_does_not_match_is_not_stored(fresh_agent):
    a = fresh_agent
    node = a.get("/v1/agent/self").json()["Config"]["NodeName"]
    elsewhere = fire(a, "filtered", b"x", node="^no-such-node$")
    assert elsewhere.status_code == 200, elsewhere.text
    assert elsewhere.json()["NodeFilter"] == "^no-such-node$"
    here = fire(a, "filtered", b"y", node=f"^{node}$").json()
    control = fire(a, "control").json()
    wait_for_event(a, control["ID"])
    wait_for_event(a, here["ID"])
    ids = [e["ID"] for e in a.get("/v1/event/list").json()]
    assert elsewhere.json()["ID"] not in ids
    # A service filter with no such local service is not stored either.
    svc = fire(a, "svc-filtered", service="^no-such-service$").json()
    control2 = fire(a, "control").json()
    wait_for_event(a, control2["ID"])
    assert svc["ID"] not in [e["ID"] for e in a.get("/v1/event/list").json()]


def test_event_command_prints_the_id(agent):
    p = agent.cli("event", "-name", "cli-evt", "hello")
    assert p.returncode == 0, p.stderr.decode()
    line = p.stdout.decode().strip()
    assert line.startswith("Event ID: ")
    event_id = line[len("Event ID: "):]
    ev = wait_for_event(agent, event_id)
    assert ev["Name"] == "cli-evt"
    assert base64.b64decode(ev["Payload"]) == b"hello"

    p = agent.cli("event", "hello")
    assert p.returncode == 1
    assert "Event name must be specified" in p.stderr.decode()
    p = agent.cli("event", "-name", "x", "-tag", "v1")
    assert p.returncode == 1
    assert "Cannot provide tag filter without service filter." in p.stderr.decode()


def test_watch_key_prints_once_and_exits(agent):
    assert agent.put("/v1/kv/watch/one", data=b"hello").json() is True
    p = agent.cli("watch", "-type", "key", "-key", "watch/one", timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    text = p.stdout.decode()
    assert text.startswith("{\n    \"Key\": \"watch/one\",\n")
    entry = json.loads(text)
    assert list(entry) == ["Key", "CreateIndex", "ModifyIndex", "LockIndex", "Flags", "Value",
                           "Session"]
    assert base64.b64decode(entry["Value"]) == b"hello"

    p = agent.cli("watch", "-type", "key", "-key", "watch/missing", timeout=30)
    assert (p.returncode, p.stdout.decode()) == (0, "null\n")
    p = agent.cli("watch", "-type", "key")
    assert p.returncode == 1
    assert "Must specify a single key to watch" in p.stderr.decode()


def test_watch_keyprefix_runs_the_handler_on_each_change(fresh_agent):
    a = fresh_agent
    assert a.put("/v1/kv/wp/a", data=b"1").json() is True
    out = Path(tempfile.mkstemp(prefix="lotse-watch-", suffix=".out")[1])
    env = dict(os.environ, LOTSE_HTTP_ADDR=a.addr, SHELL="/bin/sh")
    env.pop("CONSUL_HTTP_ADDR", None)
    handler = f"cat >> {out}; echo >> {out}"
    proc = subprocess.Popen([lotse_bin(), "watch", "-type", "keyprefix", "-prefix", "wp/", handler],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def runs():
            return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(runs()) < 1:
            time.sleep(0.05)
        first = runs()
        assert len(first) == 1, proc.stderr.read1().decode() if proc.poll() is not None else out
        assert [e["Key"] for e in first[0]] == ["wp/a"]

        assert a.put("/v1/kv/wp/b", data=b"2").json() is True
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(runs()) < 2:
            time.sleep(0.05)
        second = runs()
        assert len(second) == 2
        assert [e["Key"] for e in second[1]] == ["wp/a", "wp/b"]
        assert base64.b64decode(second[1][1]["Value"]) == b"2"
        # A write elsewhere moves the index but not the result: no third run.
        assert a.put("/v1/kv/other", data=b"x").json() is True
        time.sleep(1.0)
        assert len(runs()) == 2
        assert proc.poll() is None, "the watch keeps running"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            code = proc.wait(timeout=10)
        out.unlink(missing_ok=True)
    assert code == 0


def test_watch_event_prints_the_list(agent):
    ev = fire(agent, "watch-evt", b"w").json()
    wait_for_event(agent, ev["ID"])
    p = agent.cli("watch", "-type", "event", "-name", "watch-evt", timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    events = json.loads(p.stdout.decode())
    assert [e["ID"] for e in events] == [ev["ID"]]
    p = agent.cli("watch", "-type", "event", "-stale")
    assert p.returncode == 1
    assert "Invalid parameters: [stale]" in p.stderr.decode()
