"""Fixtures that start real `lotse` processes on loopback.

Every test that talks to Lotse does so through a process started here: no mocks. The binary is
taken from $LOTSE_BIN, else target/debug/lotse (build it first: `cargo build -p lotse`).
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def lotse_bin() -> str:
    path = os.environ.get("LOTSE_BIN") or str(ROOT / "target" / "debug" / "lotse")
    if not os.path.exists(path):
        raise RuntimeError(f"lotse binary not found at {path}: run `cargo build -p lotse` first")
    return path


# Ports handed out in this run; never handed out twice.
_HANDED_OUT = set()

# Log files of the processes the tests start (agents, proxies): read by the tests while they
# run, removed when the session ends so that runs do not pile them up in /tmp.
_LOGS = []


def log_file(prefix: str) -> Path:
    """A new log file for a started process, removed at the end of the session."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(fd)
    _LOGS.append(Path(path))
    return Path(path)


@pytest.fixture(scope="session", autouse=True)
def _remove_logs():
    yield
    # LOTSE_KEEP_LOGS=1 keeps them, to read after a failure.
    if os.environ.get("LOTSE_KEEP_LOGS"):
        return
    for p in _LOGS:
        p.unlink(missing_ok=True)


def free_port() -> int:
    """A port that is free for TCP and UDP now, taken below the kernel's ephemeral range
    (32768 and up), so that the source port of some outgoing connection cannot take it between
    now and the moment the agent binds it (which bind(0)'s ephemeral ports allowed)."""
    for _ in range(500):
        port = random.randint(20000, 32000)
        if port in _HANDED_OUT:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """A running `lotse agent` process with its HTTP base URL."""

    def __init__(self, args, data_dir=None, env=None, wait=True, host="127.0.0.1"):
        self.host = host
        self.http_port = free_port()
        # Every agent serves DNS; each gets a port of its own unless the test names one.
        self.dns_port = None if any(a.startswith(("-dns-port", "--dns-port")) for a in args) \
            else free_port()
        # Server RPC and LAN gossip ports likewise (agents run side by side on loopback).
        self.server_port = self._own_port(args, "-server-port")
        self.serf_lan_port = self._own_port(args, "-serf-lan-port")
        self.url = f"http://{host}:{self.http_port}"
        self.addr = f"{host}:{self.http_port}"
        self.data_dir = data_dir
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.log_path = log_file("lotse-agent-")
        self.proc = None
        self.start(wait=wait)

    @staticmethod
    def _own_port(args, flag):
        """A free port for `flag`, or None when the test sets it itself."""
        named = any(a.startswith((flag, "-" + flag)) for a in args)
        return None if named else free_port()

    def start(self, wait=True):
        cmd = [lotse_bin(), "agent", *self.args, "-http-port", str(self.http_port)]
        if self.dns_port is not None:
            cmd += ["-dns-port", str(self.dns_port)]
        if self.server_port is not None:
            cmd += ["-server-port", str(self.server_port)]
        if self.serf_lan_port is not None:
            cmd += ["-serf-lan-port", str(self.serf_lan_port)]
        if self.data_dir is not None:
            cmd += ["-data-dir", str(self.data_dir)]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=20.0):
        """Waits until the agent has a leader: /v1/status/leader answers a non-empty address."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lotse exited with {self.proc.returncode}:\n{self.output()}")
            try:
                r = requests.get(self.url + "/v1/status/leader", timeout=1)
                if r.status_code == 200 and r.json():
                    return
                last = r.text
            except requests.RequestException as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError(f"lotse not ready after {timeout}s ({last}):\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def restart(self):
        self.stop()
        self.start()

    # Small conveniences for tests.
    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def put(self, path, **kw):
        return requests.put(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def delete(self, path, **kw):
        return requests.delete(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def request(self, method, path, **kw):
        return requests.request(method, self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def cli(self, *args, input=None, env=None, timeout=30):
        """Runs `lotse <args>` against this agent; returns the CompletedProcess."""
        e = dict(os.environ, LOTSE_HTTP_ADDR=self.addr, **(env or {}))
        e.pop("CONSUL_HTTP_ADDR", None)
        return subprocess.run([lotse_bin(), *args], input=input, capture_output=True,
                              env=e, timeout=timeout)


@pytest.fixture(scope="module")
def agent():
    """One `agent -dev` shared by the tests of a module (state persists between them)."""
    a = Agent(["-dev"])
    yield a
    a.stop()


@pytest.fixture
def fresh_agent():
    """A `agent -dev` of a test's own, for tests that need an empty store."""
    a = Agent(["-dev"])
    yield a
    a.stop()


@pytest.fixture
def server_factory():
    """Starts durable `-server -bootstrap-expect 1 -data-dir` agents; cleans up after the test."""
    started = []
    dirs = []

    def make(data_dir=None, extra=()):
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="lotse-data-"))
            dirs.append(data_dir)
        a = Agent(["-server", "-bootstrap-expect", "1", *extra], data_dir=data_dir)
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
