"""Helpers for the proxy tests (test_proxy*.py): upstream instances (proxy_upstream.py
processes registered in the agent), a running `lotse connect proxy` / `lotse gateway` with its
admin endpoint, and the `world` fixture that starts them for one test and stops them after it.
"""
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import free_port, log_file, lotse_bin

HERE = Path(__file__).resolve().parent


def uniq(tag):
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Instance:
    """One proxy_upstream.py process, registered in the agent as an instance of `service`."""

    def __init__(self, agent, service, register=True):
        self.agent = agent
        self.service = service
        self.port = free_port()
        self.id = f"{service}-{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "proxy_upstream.py"),
                                      str(self.port), self.id])
        wait_port(self.port)
        if register:
            self.register()

    def register(self):
        r = self.agent.put("/v1/agent/service/register", data=json.dumps({
            "ID": self.id, "Name": self.service, "Address": "127.0.0.1", "Port": self.port}))
        assert r.status_code == 200, r.text

    def mode(self, mode):
        r = requests.get(f"http://127.0.0.1:{self.port}/_mode/{mode}", timeout=5)
        assert r.status_code == 200

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class ProxyProc:
    """A running `lotse connect proxy`, its admin address and log."""

    def __init__(self, agent, args, wait=True, command=("connect", "proxy")):
        self.admin_port = free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = log_file("lotse-proxy-")
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, LOTSE_HTTP_ADDR=agent.addr)
        env.pop("CONSUL_HTTP_ADDR", None)
        self.proc = subprocess.Popen(
            [lotse_bin(), *command, *args, "-admin-bind", f"127.0.0.1:{self.admin_port}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.admin + "/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"proxy not ready:\n{self.output()}")

    def output(self):
        return self.log_path.read_text(errors="replace")[-8000:]

    def upstreams(self):
        return requests.get(self.admin + "/upstreams", timeout=5).json()

    def upstream(self, name):
        return next(u for u in self.upstreams()["upstreams"] if u["name"] == name)

    def metrics(self):
        return requests.get(self.admin + "/stats/prometheus", timeout=5).text

    def metric(self, name, **labels):
        sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in self.metrics().splitlines():
            if line.startswith(f"{name}{{{sel}}} "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_endpoints(self, name, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            eps = self.upstream(name)["endpoints"]
            if len(eps) == n:
                return eps
            time.sleep(0.05)
        raise AssertionError(f"{name}: wanted {n} endpoints, have {self.upstream(name)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def world(agent):
    """Starts instances and proxies for one test and stops them after it."""
    started = {"instances": [], "proxies": []}

    class World:
        def instances(self, service, n):
            out = [Instance(agent, service) for _ in range(n)]
            started["instances"].extend(out)
            return out

        def instance(self, service, register=True):
            i = Instance(agent, service, register=register)
            started["instances"].append(i)
            return i

        def sidecar(self, upstreams, wait=True, extra=()):
            """Registers a client service whose sidecar has `upstreams` ([(dest, config)]);
            starts a proxy for it. Returns (proxy, [local ports])."""
            client = uniq("client")
            ports = [free_port() for _ in upstreams]
            body = {
                "ID": client, "Name": client, "Port": free_port(),
                "Connect": {"SidecarService": {
                    "Port": free_port(), "Address": "127.0.0.1",
                    "Proxy": {"Upstreams": [
                        {"DestinationName": dest, "LocalBindPort": port, "Config": config}
                        for (dest, config), port in zip(upstreams, ports)]}}},
            }
            r = agent.put("/v1/agent/service/register", data=json.dumps(body))
            assert r.status_code == 200, r.text
            p = ProxyProc(agent, ["-sidecar-for", client, *extra], wait=wait)
            started["proxies"].append(p)
            return p, ports

        def proxy(self, args, wait=True, command=("connect", "proxy")):
            p = ProxyProc(agent, args, wait=wait, command=command)
            started["proxies"].append(p)
            return p

    yield World()
    for p in started["proxies"]:
        p.stop()
    for i in started["instances"]:
        i.kill()
        agent.put(f"/v1/agent/service/deregister/{i.id}")


def get(port, path="/", **kw):
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=kw.pop("timeout", 10), **kw)

