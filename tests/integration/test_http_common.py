"""Cross-cutting HTTP behaviour of the KV / txn endpoints: methods, pretty-printing, unknown paths,
robustness against broken requests.

References (Consul source, read not copied):
  * agent/http_register.go - allowed methods: "/v1/kv/" GET,PUT,DELETE; "/v1/txn" PUT;
                             "/v1/status/leader" GET
  * agent/http.go wrap()   - OPTIONS answered with `Allow: OPTIONS,<methods>`; any other method gets
                             MethodNotAllowedError -> 405, `Allow: OPTIONS,<methods>`,
                             body "method <M> not allowed"
  * agent/http.go marshalJSON - `?pretty` (or dev mode) -> json.MarshalIndent(obj, "", "    ") + "\n"
  * agent/http.go Index    - unknown path -> 404 "Invalid URL path: not a recognized HTTP API endpoint"
"""
import base64
import json
import random
import socket
import time
import uuid

import pytest
import requests

KV_ALLOW = "OPTIONS,GET,PUT,DELETE"
TXN_ALLOW = "OPTIONS,PUT"


def uniq(tag="http"):
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def go_pretty(obj):
    """What Go's json.MarshalIndent(obj, "", "    ") + "\\n" produces for ASCII-only data."""
    return json.dumps(obj, indent=4) + "\n"


def put_ok(agent, key, value):
    r = agent.put(f"/v1/kv/{key}", data=value)
    assert r.status_code == 200 and r.json() is True, r.text


# ----------------------------------------------------------------------------- methods

@pytest.mark.parametrize("method", ["POST", "PATCH", "HEAD", "TRACE"])
def test_kv_rejects_other_methods_with_405(agent, method):
    key = uniq("method")
    r = requests.request(method, f"{agent.url}/v1/kv/{key}", data=b"payload", timeout=10)
    assert r.status_code == 405
    assert "Allow" in r.headers
    # Nothing was written.
    assert agent.get(f"/v1/kv/{key}").status_code == 404


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PATCH"])
def test_txn_rejects_other_methods_with_405(agent, method):
    key = uniq("txnmethod")
    body = json.dumps([{"KV": {"Verb": "set", "Key": key, "Value": base64.b64encode(b"v").decode()}}])
    r = requests.request(method, f"{agent.url}/v1/txn", data=body, timeout=10)
    assert r.status_code == 405
    assert "Allow" in r.headers
    assert agent.get(f"/v1/kv/{key}").status_code == 404


def test_405_allow_header_is_options_plus_endpoint_methods(agent):
    # wrap(): MethodNotAllowedError{req.Method, append([]string{"OPTIONS"}, methods...)},
    # joined with "," in registration order.
    cases = [("POST", "/v1/kv/x", KV_ALLOW), ("PATCH", "/v1/kv/x", KV_ALLOW),
             ("GET", "/v1/txn", TXN_ALLOW), ("DELETE", "/v1/txn", TXN_ALLOW),
             ("PUT", "/v1/status/leader", "OPTIONS,GET")]
    got = {(m, p): requests.request(m, agent.url + p, timeout=10).headers.get("Allow") for m, p, _ in cases}
    assert got == {(m, p): allow for m, p, allow in cases}


def test_405_body_names_the_method(agent):
    got = {m: requests.request(m, f"{agent.url}/v1/kv/x", timeout=10).text for m in ["POST", "PATCH"]}
    got["GET /v1/txn"] = requests.get(f"{agent.url}/v1/txn", timeout=10).text
    assert got == {"POST": "method POST not allowed", "PATCH": "method PATCH not allowed",
                   "GET /v1/txn": "method GET not allowed"}


def test_options_lists_allowed_methods(agent):
    r = requests.options(f"{agent.url}/v1/kv/{uniq('opt')}", timeout=10)
    assert r.status_code == 200
    assert r.headers["Allow"] == KV_ALLOW
    assert r.content == b""
    r = requests.options(f"{agent.url}/v1/txn", timeout=10)
    assert r.status_code == 200
    assert r.headers["Allow"] == TXN_ALLOW


def test_status_leader_rejects_put(agent):
    r = agent.put("/v1/status/leader")
    assert r.status_code == 405


# ----------------------------------------------------------------------------- pretty printing

def test_pretty_prints_kv_get(agent):
    key = uniq("pretty")
    put_ok(agent, key, b"value")
    r = agent.get(f"/v1/kv/{key}?pretty")
    assert r.status_code == 200
    assert r.text == go_pretty(r.json())
    assert "\n    {\n        \"LockIndex\": 0,\n" in r.text


def test_pretty_prints_keys_put_and_txn(agent):
    root = uniq("prettyk")
    put_ok(agent, root + "/a", b"1")
    r = agent.get(f"/v1/kv/{root}/?keys&pretty")
    assert r.text == go_pretty([root + "/a"])
    r = agent.put(f"/v1/kv/{root}/b?pretty", data=b"2")
    assert r.status_code == 200
    assert r.text == "true\n"
    body = json.dumps([{"KV": {"Verb": "get", "Key": root + "/a"}}])
    r = agent.put("/v1/txn?pretty", data=body)
    assert r.status_code == 200
    assert r.text == go_pretty(r.json())


def test_dev_mode_pretty_prints_by_default(agent):
    # marshalJSON pretty-prints when ?pretty is present *or* the agent runs in dev mode.
    key = uniq("devpretty")
    put_ok(agent, key, b"value")
    r = agent.get(f"/v1/kv/{key}")
    assert r.text == go_pretty(r.json())


def test_compact_json_without_pretty_outside_dev_mode(server_factory):
    a = server_factory()
    key = uniq("compact")
    r = a.put(f"/v1/kv/{key}", data=b"value")
    assert r.status_code == 200
    assert r.text == "true"
    r = a.get(f"/v1/kv/{key}")
    assert r.status_code == 200
    assert r.text == json.dumps(r.json(), separators=(",", ":"))
    r = a.get(f"/v1/kv/{key}?pretty")
    assert r.status_code == 200
    assert r.text.startswith("[\n") and r.text.endswith("]\n")  # indentation width: test_pretty_*


# ----------------------------------------------------------------------------- unknown paths

UNKNOWN_API_PATHS = ["/v1/nope", "/v1/kvx/foo", "/v1/txnx", "/v1/", "/v1/txn/extra"]


@pytest.mark.parametrize("path", UNKNOWN_API_PATHS + ["/nope", "/v1/kvx"])
def test_unknown_path_is_404(agent, path):
    r = agent.get(path)
    assert r.status_code == 404, (path, r.status_code)


def test_unknown_path_404_body_text(agent):
    # agent/http.go Index(): Fprintln of a hint, different for /v1/ and non-/v1/ paths.
    got = {p: agent.get(p).text for p in UNKNOWN_API_PATHS + ["/nope"]}
    want = {p: "Invalid URL path: not a recognized HTTP API endpoint\n" for p in UNKNOWN_API_PATHS}
    want["/nope"] = ("Invalid URL path: if attempting to use the HTTP API, "
                     "ensure the path starts with '/v1/'\n")
    assert got == want


# ----------------------------------------------------------------------------- robustness

def raw_exchange(agent, payload, read_timeout=1.0):
    """Sends raw bytes on a fresh connection, returns whatever comes back (possibly nothing)."""
    with socket.create_connection(("127.0.0.1", agent.http_port), timeout=5) as s:
        s.settimeout(read_timeout)
        try:
            s.sendall(payload)
        except OSError:
            return b""
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (socket.timeout, ConnectionResetError, OSError):
            pass
        return b"".join(chunks)


def raw_half_sent(agent, payload):
    """Sends part of a request and drops the connection."""
    with socket.create_connection(("127.0.0.1", agent.http_port), timeout=5) as s:
        s.sendall(payload)


def test_garbage_barrage_does_not_crash_agent(fresh_agent):
    a = fresh_agent
    keep = {f"keep/{i}": (f"value-{i}".encode() * (i + 1)) for i in range(5)}
    for k, v in keep.items():
        put_ok(a, k, v)
    before = {k: a.get(f"/v1/kv/{k}").json()[0] for k in keep}

    rng = random.Random(1234)
    garbage = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))) for _ in range(25)]
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_obj = b'[{"KV":' * 20_000 + b"{}" + b"}]" * 20_000
    bodies = garbage + [
        deep, deep_obj, b"\x00" * 10_000, b'[{"KV":{"Verb":"set","Key":"k","Flags":1e400}}]',
        b'{"a":' + b"9" * 100_000 + b"}",
        b'[{"KV":{"Verb":"set","Key":"k","Value":"' + b"A" * 800_000 + b'"}}]',
    ]
    # JSON endpoint: every broken body is a 400 (or 413 for the oversized one), never a crash.
    for body in bodies:
        r = requests.put(a.url + "/v1/txn", data=body, timeout=10)
        assert r.status_code in (400, 413), (body[:60], r.status_code, r.text[:200])
    # KV values are opaque bytes: any garbage is stored verbatim.
    for i, body in enumerate(garbage[:5]):
        r = requests.put(a.url + f"/v1/kv/garbage/{i}", data=body, timeout=10)
        assert r.status_code == 200
        assert requests.get(a.url + f"/v1/kv/garbage/{i}?raw", timeout=10).content == body
    # Broken query strings and headers.
    for path in ["/v1/kv/x?flags=%zz", "/v1/kv/x?index=%", "/v1/kv/%", "/v1/kv/%zz?raw",
                 "/v1/kv/x?wait=%ff&index=1", "/v1/kv/" + "a" * 60_000, "/v1/txn?dc=%00"]:
        r = requests.get(a.url + path, timeout=10)
        assert r.status_code < 600
    r = requests.put(a.url + "/v1/txn", data=b"[]", headers={"Content-Type": "\x01\x02"}, timeout=10)
    assert r.status_code in (200, 400)
    # Raw-socket abuse: malformed request lines, bad framing, truncated bodies, dropped connections.
    raw_payloads = [
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(200)),  # a TLS ClientHello-ish start
        b"GET /v1/kv/keep/0 HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
        b"PUT /v1/kv/keep/0 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nzzz",
        b"PUT /v1/kv/keep/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!",
        b"PUT /v1/txn HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n",
        b"PUT /v1/txn HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n[{\"KV\":",
        b"GET /v1/kv/keep/0 HTTP/9.9\r\n\r\n",
        b"GET " + b"/v1/kv/" + b"x" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/kv/keep/0 HTTP/1.1\r\n" + b"X-Big: " + b"y" * 2_000_000 + b"\r\n\r\n",
        b"\r\n" * 1000,
    ]
    for payload in raw_payloads:
        raw_exchange(a, payload)
    for _ in range(20):
        raw_half_sent(a, b"PUT /v1/kv/keep/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
    for _ in range(20):
        raw_half_sent(a, b"GET /v1/kv/keep/1?index=999999&wait=3s HTTP/1.1\r\nHost: x\r\n\r\n")

    # The agent is alive, has a leader, and the data is untouched.
    assert a.proc.poll() is None, a.output()
    deadline = time.monotonic() + 5
    while True:
        try:
            r = requests.get(a.url + "/v1/status/leader", timeout=5)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert r.status_code == 200
    assert isinstance(r.json(), str) and r.json()
    for k, v in keep.items():
        r = requests.get(a.url + f"/v1/kv/{k}", timeout=10)
        assert r.status_code == 200
        entry = r.json()[0]
        assert base64.b64decode(entry["Value"]) == v
        assert entry == before[k], k
    # And it still accepts writes.
    put_ok(a, "after/barrage", b"ok")
    assert requests.get(a.url + "/v1/kv/after/barrage?raw", timeout=10).content == b"ok"


def test_concurrent_writes_to_one_key_all_succeed(agent):
    from concurrent.futures import ThreadPoolExecutor

    key = uniq("concurrent")
    values = [f"v{i}".encode() for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda v: requests.put(f"{agent.url}/v1/kv/{key}", data=v, timeout=20),
                                values))
    assert all(r.status_code == 200 and r.json() is True for r in results)
    r = agent.get(f"/v1/kv/{key}?raw")
    assert r.content in values
