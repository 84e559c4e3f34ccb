"""A real DNS consumer: HAProxy 2.6 `resolvers` + `server-template` following Lotse's SRV answers.

HAProxy resolves `_web._tcp.service.consul` against Lotse's DNS port and fills the slots of a
`server-template` with what the answers say: the SRV port, the SRV target, and the A record of
that target from the additional section (the owner name must equal the target byte for byte,
else HAProxy resolves the target itself). Background: /tmp/consul-ref/dns.md section 11
(HAProxy sends EDNS with `accepted_payload_size`; records not seen for `hold obsolete` are
removed and their slot goes to maintenance; SRV weight w maps to (w + 255) / 256).

The test starts three HTTP upstreams of its own, registers them as `web` on three nodes, and
checks through HAProxy's runtime API and through real requests that HAProxy follows the catalog:
all three are used; an instance made critical disappears from the answers and stops receiving
traffic; it comes back when passing again; a fourth instance is picked up live.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import Agent, free_port

SERVICE = "web"
SRV_NAME = f"_{SERVICE}._tcp.service.consul"
SLOTS = 5
BACKEND = "web_back"
REQUESTS = 30


def haproxy_bin() -> str:
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy")
                                       else None)
    if path is None:
        pytest.fail("haproxy is not installed (expected /usr/sbin/haproxy; "
                    "`apt-get install haproxy` gives 2.6 on Debian 12): this test needs it")
    return path


# ----------------------------------------------------------------------------- upstreams

class Upstream:
    """An HTTP server on 127.0.0.1:<ephemeral> answering its own id in the body."""

    def __init__(self, ident: str):
        self.ident = ident
        body = ident.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# ----------------------------------------------------------------------------- haproxy

class HAProxy:
    def __init__(self, dns_port: int):
        self.bin = haproxy_bin()
        # A short directory: the admin socket path must fit in sun_path (108 bytes).
        self.dir = tempfile.mkdtemp(prefix="lotse-hap-")
        self.sock_path = os.path.join(self.dir, "admin.sock")
        self.cfg_path = os.path.join(self.dir, "haproxy.cfg")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.front_port = free_port()
        self.proc = None
        with open(self.cfg_path, "w") as f:
            f.write(f"""\
global
    stats socket {self.sock_path} level admin
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 1s
    timeout client 5s
    timeout server 5s

resolvers lotse
    nameserver l1 127.0.0.1:{dns_port}
    accepted_payload_size 8192
    hold valid 1s
    hold obsolete 1s
    timeout resolve 200ms
    timeout retry 200ms
    resolve_retries 2

frontend web_front
    bind 127.0.0.1:{self.front_port}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    server-template web {SLOTS} {SRV_NAME} resolvers lotse resolve-prefer ipv4 init-addr none
""")

    def check_config(self):
        r = subprocess.run([self.bin, "-c", "-f", self.cfg_path], capture_output=True, timeout=30)
        assert r.returncode == 0, (
            f"`haproxy -c` rejected the config (rc={r.returncode}):\n"
            f"{r.stdout.decode(errors='replace')}{r.stderr.decode(errors='replace')}\n"
            f"--- config ---\n{open(self.cfg_path).read()}")

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.bin, "-db", "-f", self.cfg_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"haproxy exited with {self.proc.returncode}:\n{self.output()}")
            try:
                self.command("show info")
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"haproxy's admin socket {self.sock_path} did not answer in 10s:\n"
                    f"{self.output()}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def output(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-8000:]
        except OSError:
            return ""

    def command(self, cmd: str) -> str:
        """One runtime API command over the admin socket (non-interactive: it closes after)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.sock_path)
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode(errors="replace")

    def servers_state(self):
        """`show servers state`, one dict per slot keyed by the header's column names."""
        text = self.command(f"show servers state {BACKEND}")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        header = next((ln for ln in lines if ln.startswith("# ")), None)
        assert header is not None, f"unexpected `show servers state` output:\n{text}"
        cols = header[2:].split()
        rows = []
        for ln in lines:
            if ln.startswith("#") or ln.strip() == "1":
                continue
            fields = ln.split()
            rows.append(dict(zip(cols, fields)))
        return rows, text

    def active(self):
        """{(addr, port): slot name} of the slots HAProxy would send traffic to."""
        rows, text = self.servers_state()
        out = {}
        for r in rows:
            addr, port = r.get("srv_addr"), r.get("srv_port")
            if addr in (None, "-", "0.0.0.0") or port in (None, "0"):
                continue
            # srv_op_state 2 = running. srv_admin_state is a bit set: 0x01 FMAINT, 0x02 IMAINT,
            # 0x20 RMAINT ("no address" / record gone from DNS), 0x08|0x10 drain; 0x40 (HMAINT,
            # "FQDN set by the resolvers / socket") is set on every SRV-filled slot and does
            # not stop traffic.
            if r.get("srv_op_state") == "2" and int(r.get("srv_admin_state", "0")) & 0x3B == 0:
                out[(addr, int(port))] = r["srv_name"]
        return out, text

    def hits(self, n=REQUESTS):
        """Sends n requests through the frontend (a new connection each); returns {body: count}."""
        seen = {}
        for _ in range(n):
            try:
                r = requests.get(f"http://127.0.0.1:{self.front_port}/", timeout=3,
                                 headers={"Connection": "close"})
                key = r.text if r.status_code == 200 else f"HTTP {r.status_code}"
            except requests.RequestException as e:
                key = f"error: {type(e).__name__}"
            seen[key] = seen.get(key, 0) + 1
        return seen


def dig(dns_port) -> str:
    """What `dig` says about the SRV name now (diagnostics only; empty if dig is missing)."""
    if not shutil.which("dig"):
        return "(dig not installed)"
    try:
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(dns_port), "+bufsize=8192",
                            "+time=1", "+tries=1", SRV_NAME, "SRV"],
                           capture_output=True, timeout=5)
        return r.stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(dig failed: {e})"


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture
def lotse():
    a = Agent(["-dev"])
    yield a
    a.stop()


@pytest.fixture
def upstreams():
    started = []

    def make(ident):
        u = Upstream(ident)
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


@pytest.fixture
def haproxy_factory():
    started = []

    def make(dns_port):
        h = HAProxy(dns_port)
        started.append(h)
        return h

    yield make
    for h in started:
        h.stop()


# ----------------------------------------------------------------------------- the test

def register(agent, node, upstream, status):
    body = {
        "Node": node,
        "Address": "127.0.0.1",
        "Service": {"ID": f"{SERVICE}-{node}", "Service": SERVICE, "Port": upstream.port},
        "Check": {"CheckID": f"{SERVICE}-{node}-check", "Name": "upstream alive",
                  "ServiceID": f"{SERVICE}-{node}", "Status": status},
    }
    r = agent.put("/v1/catalog/register", data=json.dumps(body))
    assert r.status_code == 200 and r.json() is True, (r.status_code, r.text)


def test_haproxy_follows_lotse_srv_answers(lotse, upstreams, haproxy_factory):
    ups = {f"n{i}": upstreams(f"up{i}") for i in (1, 2, 3)}
    for node, u in ups.items():
        register(lotse, node, u, "passing")

    hap = haproxy_factory(lotse.dns_port)
    hap.check_config()
    hap.start()

    def context(extra=""):
        active, state = hap.active()
        return (f"{extra}\n--- haproxy active slots: {active}\n"
                f"--- show servers state {BACKEND} ---\n{state}\n"
                f"--- dig {SRV_NAME} SRV ---\n{dig(lotse.dns_port)}\n"
                f"--- haproxy log ---\n{hap.output()}\n"
                f"--- lotse log ---\n{lotse.output()}")

    def wait_for(pred, what, timeout=15.0):
        """Polls pred() (which returns (ok, detail)) until ok or the deadline."""
        deadline = time.monotonic() + timeout
        detail = None
        while time.monotonic() < deadline:
            if hap.proc.poll() is not None:
                pytest.fail(f"haproxy exited with {hap.proc.returncode} while waiting for "
                            f"{what}" + context())
            ok, detail = pred()
            if ok:
                return detail
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {detail}" + context())

    def addr(u):
        return ("127.0.0.1", u.port)

    def active_is(expected):
        want = {addr(u) for u in expected}

        def pred():
            rows, _ = hap.servers_state()
            # Each instance in exactly one slot: one (addr, port) in two slots would be a
            # duplicate SRV record HAProxy could not merge.
            filled = [(r.get("srv_addr"), r.get("srv_port")) for r in rows
                      if r.get("srv_addr") not in (None, "-", "0.0.0.0")]
            dupes = {e for e in filled if filled.count(e) > 1}
            assert not dupes, context(f"the same instance fills two slots: {dupes}")
            active, _ = hap.active()
            return set(active) == want, active
        return pred

    def traffic_reaches(expected, excluded=()):
        """All `expected` get traffic and none of `excluded` does, over REQUESTS requests."""
        want = {u.ident for u in expected}
        banned = {u.ident for u in excluded}

        def pred():
            seen = hap.hits()
            ok = want <= set(seen) and not (banned & set(seen)) and \
                set(seen) <= want  # no errors / 503s either
            return ok, seen
        return pred

    # 1. The three instances fill three slots with their ports (from SRV) and 127.0.0.1
    #    (from the additional A record), and traffic reaches all of them.
    three = list(ups.values())
    wait_for(active_is(three), "the three upstreams as UP slots in HAProxy")
    wait_for(traffic_reaches(three), f"{REQUESTS} requests to reach up1, up2 and up3",
             timeout=10)
    rows, state = hap.servers_state()
    for r in rows:
        if r.get("srv_addr") not in (None, "-", "0.0.0.0"):
            # The SRV target is the node name in Consul's form; HAProxy keeps it as the
            # slot's FQDN (the A came from the additional section under that owner name).
            assert r.get("srv_fqdn", "").rstrip(".").endswith(".node.dc1.consul"), context(
                f"slot FQDN {r.get('srv_fqdn')!r} is not <node>.node.dc1.consul")
            assert r.get("srv_uweight") == "1", context(
                f"slot weight {r.get('srv_uweight')!r}, expected 1 (Consul weight 1)")
    # Empty slots stay in maintenance (init-addr none, no record).
    assert len(rows) == SLOTS, context(f"expected {SLOTS} slots")

    # 2. n2 critical: it leaves the SRV answer, HAProxy drops the slot and stops using it.
    register(lotse, "n2", ups["n2"], "critical")
    healthy = [ups["n1"], ups["n3"]]
    wait_for(active_is(healthy), "n2's slot to lose its address / go to maintenance")
    wait_for(traffic_reaches(healthy, excluded=[ups["n2"]]),
             f"{REQUESTS} requests that never hit up2 (critical)", timeout=5)

    # 3. n2 passing again: it comes back and receives traffic.
    register(lotse, "n2", ups["n2"], "passing")
    wait_for(active_is(three), "n2 to come back into HAProxy after turning passing")
    wait_for(traffic_reaches(three), f"{REQUESTS} requests to reach up2 again", timeout=5)

    # 4. A fourth instance on a new node is picked up live.
    ups["n4"] = upstreams("up4")
    register(lotse, "n4", ups["n4"], "passing")
    four = list(ups.values())
    wait_for(active_is(four), "the fourth upstream to appear in HAProxy")
    wait_for(traffic_reaches(four), f"{REQUESTS} requests to reach up1..up4", timeout=5)
