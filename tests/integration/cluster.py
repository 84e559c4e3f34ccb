"""Clusters of real `lotse` server processes (and client agents) on loopback, and faults to
inject into them.

Each server gets its own loopback address (127.0.<net>.<i>), so that a network partition is a
set of iptables rules between two addresses: servers connect to each other from their own
address (server RPC and gossip bind it), while the tests talk to every server from 127.0.0.1,
which the rules leave alone.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from conftest import Agent, free_port

# Fast timing for tests: Raft at Consul's fastest multiplier, gossip probing every 200 ms.
FAST = {
    "performance": {"raft_multiplier": 1, "rpc_hold_timeout": "3s"},
    "gossip_lan": {
        "probe_interval": "200ms",
        "probe_timeout": "100ms",
        "gossip_interval": "100ms",
        "suspicion_mult": 3,
    },
    "autopilot": {"server_stabilization_time": "1s"},
}


def wait_for(what, pred, timeout=15.0, step=0.1):
    """Polls `pred` until it returns something truthy; fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = pred()
            if got:
                return got
            last = got
        except (requests.RequestException, ValueError, KeyError) as e:
            last = e
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Cluster:
    """`n` servers that bootstrap together with `-bootstrap-expect n` and `-retry-join`."""

    def __init__(self, n, extra=(), config=None, net=None, expect=None):
        self.net = net if net is not None else random.randint(100, 250)
        self.dir = Path(tempfile.mkdtemp(prefix="lotse-cluster-"))
        cfg = json.loads(json.dumps(FAST))
        for k, v in (config or {}).items():
            cfg[k] = v
        self.config_file = self.dir / "fast.json"
        self.config_file.write_text(json.dumps(cfg))
        self.hosts = [f"127.0.{self.net}.{i + 1}" for i in range(n)]
        self.serf_ports = [free_port() for _ in range(n)]
        self.nodes = []
        self.clients = []
        self.expect = expect or n
        try:
            for i in range(n):
                self.nodes.append(self._start(i, extra))
            self.wait_leader()
        except BaseException:
            # The fixture never gets the cluster to clean up: stop what started here.
            self.cleanup()
            raise

    def _args(self, i, extra):
        joins = []
        for j, host in enumerate(self.hosts):
            if j != i:
                joins += ["-retry-join", f"{host}:{self.serf_ports[j]}"]
        return [
            "-server", "-bootstrap-expect", str(self.expect), "-node", f"s{i + 1}",
            "-bind", self.hosts[i], "-client", self.hosts[i],
            "-serf-lan-port", str(self.serf_ports[i]),
            "-retry-interval", "300ms", "-config-file", str(self.config_file),
            *joins, *extra,
        ]

    def _start(self, i, extra):
        data = self.dir / f"data{i + 1}"
        data.mkdir(exist_ok=True)
        return Agent(self._args(i, extra), data_dir=data, wait=False, host=self.hosts[i])

    def add_client(self, name, extra=(), wait=True):
        """A client agent (no `-server`) on its own address (127.0.<net>.<100+k>), joined
        through every server; it is ready once it serves a leader through a server."""
        host = f"127.0.{self.net}.{101 + len(self.clients)}"
        data = self.dir / f"client-{name}"
        data.mkdir(exist_ok=True)
        joins = []
        for j, h in enumerate(self.hosts):
            joins += ["-retry-join", f"{h}:{self.serf_ports[j]}"]
        args = ["-node", name, "-bind", host, "-client", host, "-retry-interval", "300ms",
                "-config-file", str(self.config_file), *joins, *extra]
        a = Agent(args, data_dir=data, wait=False, host=host)
        # Listed before waiting, so that cleanup stops it even if it never gets ready.
        self.clients.append(a)
        if wait:
            a.wait_ready()
        return a

    # --- observation ----------------------------------------------------------------------

    def alive(self):
        return [a for a in self.nodes if a.proc and a.proc.poll() is None]

    def rpc_addr(self, a):
        return f"{a.host}:{a.server_port}"

    def leader(self, among=None):
        """The node every live node (or `among`) names as leader, if they agree."""
        nodes = among or self.alive()
        named = set()
        for a in nodes:
            r = a.get("/v1/status/leader", timeout=2)
            named.add(r.json() if r.status_code == 200 else "")
        if len(named) != 1:
            return None
        addr = named.pop()
        for a in self.nodes:
            if self.rpc_addr(a) == addr:
                return a
        return None

    def wait_leader(self, among=None, timeout=20.0):
        return wait_for("a leader all agree on", lambda: self.leader(among), timeout)

    def wait_new_leader(self, among, old, timeout=20.0):
        """Waits until `among` agree on a leader that is none of `old`."""
        def fresh():
            lead = self.leader(among=among)
            return lead if lead is not None and lead not in old else None
        return wait_for("a new leader", fresh, timeout)

    def followers(self):
        lead = self.leader()
        return [a for a in self.alive() if a is not lead]

    def members(self, a):
        return {m["Name"]: m["Status"] for m in a.get("/v1/agent/members").json()}

    # --- faults -----------------------------------------------------------------------------

    def kill9(self, a):
        a.kill9()
        a.log.close()

    def restart(self, a, extra=()):
        """Starts a stopped node again with its data."""
        i = self.nodes.index(a)
        a.args = self._args(i, extra)
        a.start(wait=False)

    def stop_all(self):
        for a in self.clients + self.nodes:
            a.stop()

    def cleanup(self):
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)


class Firewall:
    """iptables rules between loopback addresses, in a chain of our own; removed on exit."""

    CHAIN = "LOTSE-TEST"

    def __init__(self):
        self.installed = False

    @staticmethod
    def available():
        return shutil.which("iptables") is not None and os.geteuid() == 0

    def _ipt(self, *args, check=True):
        return subprocess.run(["iptables", "-w", *args], check=check, capture_output=True)

    def __enter__(self):
        self._ipt("-N", self.CHAIN, check=False)
        self._ipt("-F", self.CHAIN)
        if self._ipt("-C", "INPUT", "-j", self.CHAIN, check=False).returncode != 0:
            self._ipt("-I", "INPUT", "-j", self.CHAIN)
        self.installed = True
        return self

    def cut(self, a_host, b_host):
        """Drops every packet between two addresses, both ways."""
        self._ipt("-A", self.CHAIN, "-s", a_host, "-d", b_host, "-j", "DROP")
        self._ipt("-A", self.CHAIN, "-s", b_host, "-d", a_host, "-j", "DROP")

    def isolate(self, host, others):
        for o in others:
            if o != host:
                self.cut(host, o)

    def heal(self):
        self._ipt("-F", self.CHAIN)

    def __exit__(self, *exc):
        if self.installed:
            self._ipt("-F", self.CHAIN, check=False)
            self._ipt("-D", "INPUT", "-j", self.CHAIN, check=False)
            self._ipt("-X", self.CHAIN, check=False)


def stop_signal(a, sig):
    """Sends `sig` (SIGSTOP/SIGCONT) to a node's process."""
    a.proc.send_signal(sig)


__all__ = ["Cluster", "Firewall", "wait_for", "stop_signal", "signal"]
