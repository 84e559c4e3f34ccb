"""`lotse gateway -config FILE`: the edge gateway end to end with real processes: routing by
host and path prefix, per-route rate limits, request validation, API keys kept in the KV store,
JWTs (HS256, RS256) and response caching. Helpers and the `world` fixture: proxy_harness.py.
"""
import json
import signal
import socket
import subprocess
import time
from collections import Counter

import requests

from conftest import free_port
from proxy_harness import get, uniq, world  # noqa: F401 (world: fixture)

def test_gateway_routes_by_host_and_path_with_per_route_limits(world, tmp_path):
    api, web = uniq("api"), uniq("web")
    api_insts = world.instances(api, 2)
    web_inst = world.instances(web, 1)[0]
    port, strict_port = free_port(), free_port()
    config = tmp_path / "gateway.hcl"
    config.write_text(f"""
listener {{
  bind = "127.0.0.1:{port}"
  route {{
    name        = "api"
    host        = "api.test"
    path_prefix = "/api/"
    service     = "{api}"
    config {{
      rate_limit {{
        requests_per_second = 1
        burst               = 4
      }}
    }}
  }}
  route {{
    name    = "site"
    service = "{web}"
  }}
}}
listener {{
  bind = "127.0.0.1:{strict_port}"
  route {{
    name    = "assets"
    host    = "*.static.test"
    service = "{web}"
  }}
}}
""")
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("api", 2)
    gw.wait_endpoints("site", 1)
    gw.wait_endpoints("assets", 1)
    r = get(port, "/api/users", headers={"Host": "api.test"})
    assert r.status_code == 200 and r.json()["instance"] in {i.id for i in api_insts}
    assert r.json()["path"] == "/api/users"
    # Same path, other host: the catch-all route. Other path, same host: likewise.
    assert get(port, "/api/users", headers={"Host": "www.test"}).json()["instance"] == web_inst.id
    assert get(port, "/index.html", headers={"Host": "api.test"}).json()["instance"] == web_inst.id
    # Wildcard host; no route at all is 404.
    assert get(strict_port, "/a.css", headers={"Host": "img.static.test"}).json()["instance"] == web_inst.id
    nope = get(strict_port, "/a.css", headers={"Host": "static.test"})
    assert nope.status_code == 404 and nope.headers["x-lotse-proxy"] == "no-route"
    # The api route's bucket runs dry; the site route is not limited.
    codes = Counter(get(port, "/api/x", headers={"Host": "api.test"}).status_code for _ in range(10))
    assert codes[429] >= 5, codes
    assert all(get(port, "/", headers={"Host": "www.test"}).status_code == 200 for _ in range(10))
    assert gw.metric("lotse_proxy_rate_limited_total", upstream="api") == codes[429]
    assert gw.metric("lotse_proxy_requests_total", upstream="site", **{"class": "2xx"}) >= 12


def test_gateway_config_error_names_the_field(world, tmp_path):
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": [{"bind": f"127.0.0.1:{free_port()}",
                                                "route": [{"path_prefix": "/x"}]}]}))
    gw = world.proxy(["-config", str(config)], command=("gateway",), wait=False)
    assert gw.proc.wait(timeout=15) == 1
    assert "listener[0].route[0].service: required" in gw.output()


def test_gateway_validates_requests_and_checks_api_keys_from_kv(world, agent, tmp_path):
    svc = uniq("keyed")
    inst = world.instances(svc, 1)[0]
    prefix = f"{uniq('gw')}/keys"
    assert agent.put(f"/v1/kv/{prefix}/alice", data="alice-key").status_code == 200
    port = free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": {
        "bind": f"127.0.0.1:{port}",
        "allowed_methods": ["GET", "POST"],
        "max_header_bytes": 2048,
        "max_body_bytes": 64,
        "route": [
            {"name": "private", "path_prefix": "/private/", "service": svc,
             "api_keys_kv_prefix": prefix},
            {"name": "public", "service": svc},
        ]}}))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("public", 1)
    assert get(port, "/open").json()["instance"] == inst.id
    r = requests.delete(f"http://127.0.0.1:{port}/open", timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    assert get(port, "/open", headers={"x-big": "x" * 4000}).status_code == 431
    r = requests.post(f"http://127.0.0.1:{port}/open", data=b"y" * 100, timeout=10)
    assert r.status_code == 413
    assert requests.post(f"http://127.0.0.1:{port}/open", data=b"small", timeout=10).json()["body"] == "small"
    # API keys: none, wrong, right (either header); then revoked by deleting it from the KV.
    deadline = time.monotonic() + 10
    while get(port, "/private/x", headers={"X-API-Key": "alice-key"}).status_code != 200:
        assert time.monotonic() < deadline, gw.output()
        time.sleep(0.1)
    r = get(port, "/private/x")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert get(port, "/private/x", headers={"X-API-Key": "nope"}).status_code == 401
    for near in ("alice-ke", "alice-keyx", "ALICE-KEY"):  # keys compare whole, exactly
        assert get(port, "/private/x", headers={"X-API-Key": near}).status_code == 401, near
    assert get(port, "/private/x", headers={"Authorization": "Bearer alice-key"}).status_code == 200
    assert gw.metric("lotse_proxy_unauthorized_total", upstream="private") >= 2
    assert agent.delete(f"/v1/kv/{prefix}/alice").status_code == 200
    deadline = time.monotonic() + 10
    while get(port, "/private/x", headers={"X-API-Key": "alice-key"}).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _b64url(data: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: dict, claims: dict, sign) -> str:
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64url(sign(signing_input.encode()))}"


def test_gateway_verifies_jwts_hs256_and_rs256(world, tmp_path):
    import hashlib
    import hmac
    import shutil

    svc = uniq("jwt")
    world.instances(svc, 1)
    jwt_cfg = {"hs256_secret": "top-secret", "issuer": "lotse-tests", "audience": "api"}
    rsa = shutil.which("openssl") is not None
    if rsa:
        key = tmp_path / "key.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                       capture_output=True)
        pub = tmp_path / "pub.pem"
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
                       check=True, capture_output=True)
        jwt_cfg["rs256_public_key_file"] = str(pub)
    port = free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": {"bind": f"127.0.0.1:{port}", "route": {
        "name": "jwt", "service": svc, "jwt": jwt_cfg}}}))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("jwt", 1)

    now = int(time.time())
    claims = {"iss": "lotse-tests", "aud": "api", "sub": "ann", "exp": now + 300}

    def hs(secret):
        return lambda m: hmac.new(secret, m, hashlib.sha256).digest()

    def call(token):
        return get(port, "/", headers={"Authorization": f"Bearer {token}"}).status_code

    assert call(_jwt({"alg": "HS256", "typ": "JWT"}, claims, hs(b"top-secret"))) == 200
    assert call(_jwt({"alg": "HS256"}, claims, hs(b"wrong"))) == 401
    assert call(_jwt({"alg": "HS256"}, dict(claims, exp=now - 3600), hs(b"top-secret"))) == 401
    assert call(_jwt({"alg": "HS256"}, dict(claims, aud="other"), hs(b"top-secret"))) == 401
    assert call(_jwt({"alg": "none"}, claims, lambda m: b"")) == 401
    assert get(port, "/").status_code == 401
    if rsa:
        def rs(m):
            return subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=m,
                                  check=True, capture_output=True).stdout
        assert call(_jwt({"alg": "RS256", "typ": "JWT"}, claims, rs)) == 200
        # Algorithm confusion: an HS256 token "signed" with the public key's bytes is refused.
        assert call(_jwt({"alg": "HS256"}, claims, hs(pub.read_bytes()))) == 401


def test_gateway_caches_shareable_gets(world, tmp_path):
    svc = uniq("cache")
    world.instances(svc, 1)
    port = free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"listener": {"bind": f"127.0.0.1:{port}", "route": {
        "name": "cached", "service": svc,
        "cache": {"max_bytes": 1 << 20, "max_entry_bytes": 4096}}}}))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("cached", 1)
    first = get(port, "/cached?x=1")
    assert first.headers["x-lotse-cache"] == "miss"
    again = get(port, "/cached?x=1")
    assert again.headers["x-lotse-cache"] == "hit" and "age" in again.headers
    assert again.json()["n"] == first.json()["n"]  # served from memory, upstream not asked
    # Another query string is another entry; no-cache requests and uncacheable answers pass.
    assert get(port, "/cached?x=2").headers["x-lotse-cache"] == "miss"
    fresh = get(port, "/cached?x=1", headers={"Cache-Control": "no-cache"})
    assert "x-lotse-cache" not in fresh.headers and fresh.json()["n"] > first.json()["n"]
    plain = [get(port, "/plain").json()["n"] for _ in range(2)]
    assert plain[1] > plain[0]
    assert gw.metric("lotse_proxy_cache_hits_total", upstream="cached") == 1


def _gateway_hcl(port, routes):
    body = "\n".join(f"""
  route {{
    name        = "{name}"
    path_prefix = "{prefix}"
    service     = "{service}"
  }}""" for name, prefix, service in routes)
    return f"""
listener {{
  bind = "127.0.0.1:{port}"
{body}
}}
"""


def test_gateway_reloads_its_config_on_sighup(world, tmp_path):
    a, b = uniq("ra"), uniq("rb")
    ia = world.instances(a, 1)[0]
    ib = world.instances(b, 1)[0]
    port = free_port()
    config = tmp_path / "gateway.hcl"
    config.write_text(_gateway_hcl(port, [("site", "/", a)]))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("site", 1)
    assert gw.upstreams()["config_version"] == 1
    # A keep-alive connection opened before the reload is served after it.
    session = requests.Session()
    assert session.get(f"http://127.0.0.1:{port}/b/x", timeout=10).json()["instance"] == ia.id

    config.write_text(_gateway_hcl(port, [("bee", "/b/", b), ("site", "/", a)]))
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while gw.upstreams()["config_version"] != 2:
        assert time.monotonic() < deadline, gw.output()
        time.sleep(0.05)
    gw.wait_endpoints("bee", 1)
    assert session.get(f"http://127.0.0.1:{port}/b/x", timeout=10).json()["instance"] == ib.id
    assert session.get(f"http://127.0.0.1:{port}/other", timeout=10).json()["instance"] == ia.id
    assert "configuration reloaded" in gw.output()

    # A broken file: logged with the field, the running configuration stays.
    config.write_text(_gateway_hcl(port, [("bee", "/b/", "")]))
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload failed" not in gw.output():
        assert time.monotonic() < deadline, gw.output()
        time.sleep(0.05)
    assert "listener[0].route[0].service: required" in gw.output()
    assert gw.proc.poll() is None
    assert gw.upstreams()["config_version"] == 2
    assert get(port, "/b/y").json()["instance"] == ib.id


def test_gateway_passes_websocket_upgrades(world, tmp_path):
    svc = uniq("gws")
    inst = world.instances(svc, 1)[0]
    port = free_port()
    config = tmp_path / "gateway.hcl"
    config.write_text(_gateway_hcl(port, [("live", "/live/", svc)]))
    gw = world.proxy(["-config", str(config)], command=("gateway",))
    gw.wait_endpoints("live", 1)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    with s:
        s.sendall(b"GET /live/ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            assert chunk, head
            head += chunk
        text = head.decode().lower()
        # RFC 6455's example key and accept value.
        assert text.startswith("http/1.1 101") and "s3pplmbitxaq9kygzzhzrbk+xoo=" in text, text
        assert f"x-instance: {inst.id}".lower() in text
        s.sendall(b"ping-pong")
        got = b""
        while len(got) < 9:
            chunk = s.recv(100)
            assert chunk
            got += chunk
        assert got == b"ping-pong"
