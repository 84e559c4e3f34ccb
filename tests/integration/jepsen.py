"""Jepsen-style runs against a real cluster: concurrent clients record a history of register
and lock operations while a nemesis kills, pauses and partitions servers; `lotse-check` (the
linearizability checker in crates/lotse-testkit) then decides whether the history is one that
atomic registers and mutexes could have produced.

Used by test_jepsen.py (a short run in CI) and scripts/jepsen (long runs with a report).

What is recorded, per operation: the client, the key, the call (read with its consistency
mode, write, compare-and-set, lock acquire or release), monotonic invoke and completion times,
and the outcome: `ok` (answered), `fail` (certainly not applied: refused connection or a 4xx)
or `info` (unknown: timeout, broken connection, 5xx; it may take effect at any later time).
"""
import base64
import json
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from cluster import Cluster, Firewall

# A request gets this long; longer than the servers' hold timeout (3 s in the test config), so
# a request a server gives up on comes back as a 500 rather than as our own timeout.
REQUEST_TIMEOUT = (1.0, 5.0)

# Every client session's lock-delay: long enough for acquires to race it, short enough to
# leave the locks free most of the time.
LOCK_DELAY_MS = 1000

NEMESES = ("kill", "kill-leader", "pause", "pause-leader", "partition-halves",
           "partition-leader", "partition-bridge")


def repo_root():
    return Path(__file__).resolve().parents[2]


def checker_path():
    """The `lotse-check` binary next to the `lotse` binary under test."""
    lotse = Path(os.environ.get("LOTSE_BIN", repo_root() / "target/debug/lotse"))
    return lotse.with_name("lotse-check")


@dataclass
class RunConfig:
    seed: int
    duration: float = 30.0
    servers: int = 5
    clients: int = 10
    register_keys: int = 6
    lock_keys: int = 2
    # Mean pause between one client's operations (keeps the history checkable).
    think: float = 0.03
    nemeses: tuple = NEMESES
    # A fault lasts this long, then the cluster gets `quiet` seconds to recover.
    fault: tuple = (2.0, 5.0)
    quiet: tuple = (1.0, 3.0)


@dataclass
class RunResult:
    config: RunConfig
    dir: Path
    ops: dict = field(default_factory=dict)  # outcome -> count
    by_call: dict = field(default_factory=dict)  # call -> ok count
    faults: list = field(default_factory=list)
    check_status: int = -1
    check_output: str = ""

    @property
    def linearizable(self):
        return self.check_status == 0


class History:
    """Operations appended from many client threads, written as JSON lines."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.ops = []

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def write(self):
        with open(self.path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op) + "\n")


class Client(threading.Thread):
    """One client process: operations one at a time against random servers, until `stop`."""

    def __init__(self, pid, run, servers, history, values, stop):
        super().__init__(daemon=True)
        self.pid = pid
        self.run_cfg = run
        self.rng = random.Random(run.seed * 1000 + pid)
        self.servers = servers
        self.history = history
        self.values = values
        self.stop = stop
        self.http = requests.Session()
        self.session = None  # a lock session, created on the first lock operation
        self.held = {}  # lock key -> this client's last operation there was a won acquire
        self.last_read = {}  # key -> (value, modify index) of this client's latest read

    def run(self):
        while not self.stop.is_set():
            key_no = self.rng.randrange(self.run_cfg.register_keys + self.run_cfg.lock_keys)
            if key_no < self.run_cfg.register_keys:
                self.register_op(f"jepsen/r{key_no}")
            else:
                self.lock_op(f"jepsen/lock{key_no - self.run_cfg.register_keys}")
            time.sleep(self.rng.expovariate(1.0 / self.run_cfg.think))

    # --- one operation ------------------------------------------------------------------

    def server(self):
        return self.rng.choice(self.servers)

    def call(self, method, agent, path, **kw):
        """(status, body, outcome-if-failed). `fail` only when the request certainly never
        reached a server's handler: the connection was refused."""
        try:
            r = self.http.request(method, agent.url + path, timeout=REQUEST_TIMEOUT, **kw)
        except requests.ConnectionError as e:
            refused = isinstance(getattr(e, "args", [None])[0], Exception) and \
                "Connection refused" in str(e)
            return None, None, "fail" if refused else "info"
        except requests.RequestException:
            return None, None, "info"
        if 400 <= r.status_code < 500:
            return r.status_code, r.text, "fail"
        if r.status_code != 200:
            return r.status_code, r.text, "info"
        return r.status_code, r.text, None

    def record(self, key, invoke, outcome, call):
        op = {"process": self.pid, "key": key, "invoke": invoke, "outcome": outcome, **call}
        if outcome == "ok":
            op["complete"] = time.monotonic_ns()
        self.history.add(op)

    def register_op(self, key):
        kind = self.rng.choices(["read", "read-consistent", "write", "cas"], [3, 2, 3, 2])[0]
        agent = self.server()
        if kind.startswith("read"):
            q = "?consistent" if kind == "read-consistent" else ""
            invoke = time.monotonic_ns()
            status, body, failed = self.call("GET", agent, f"/v1/kv/{key}{q}")
            if status == 404:
                self.last_read[key] = None
                self.record(key, invoke, "ok", {"f": "read", "value": None, "mode": kind})
                return
            if failed:
                self.record(key, invoke, failed, {"f": "read", "mode": kind})
                return
            entry = json.loads(body)[0]
            value = base64.b64decode(entry["Value"]).decode() if entry["Value"] else ""
            self.last_read[key] = (value, entry["ModifyIndex"])
            self.record(key, invoke, "ok", {"f": "read", "value": value, "mode": kind})
            return
        value = str(next(self.values))
        if kind == "write" or not self.last_read.get(key):
            invoke = time.monotonic_ns()
            status, body, failed = self.call("PUT", agent, f"/v1/kv/{key}", data=value)
            outcome = failed or ("ok" if body.strip() == "true" else "info")
            self.record(key, invoke, outcome, {"f": "write", "value": value})
            return
        # Consul's CAS compares modify indexes: with every written value unique, "unchanged
        # since the read that saw `expect`" is "still holds `expect`".
        expect, index = self.last_read.pop(key)
        invoke = time.monotonic_ns()
        status, body, failed = self.call("PUT", agent, f"/v1/kv/{key}?cas={index}", data=value)
        call = {"f": "cas", "expect": expect, "value": value}
        if failed:
            self.record(key, invoke, failed, call)
        else:
            self.record(key, invoke, "ok", {**call, "result": body.strip() == "true"})

    def ensure_session(self):
        """A session with no health checks and no TTL: it lives through every fault and ends
        only when its client destroys it (`invalidate`), as a crashed client's session would
        be invalidated; then its locks are free, but not to others within LOCK_DELAY_MS."""
        while self.session is None and not self.stop.is_set():
            status, body, failed = self.call(
                "PUT", self.server(), "/v1/session/create",
                json={"Name": f"jepsen-{self.pid}", "NodeChecks": [],
                      "LockDelay": f"{LOCK_DELAY_MS}ms"})
            if not failed:
                self.session = json.loads(body)["ID"]
            else:
                time.sleep(0.2)
        return self.session

    def lock_op(self, key):
        session = self.ensure_session()
        if session is None:
            return
        if self.rng.random() < 1 / 8:
            self.invalidate(session)
            return
        verb = self.rng.choice(["acquire", "release"])
        invoke = time.monotonic_ns()
        status, body, failed = self.call(
            "PUT", self.server(), f"/v1/kv/{key}?{verb}={session}", data=str(self.pid))
        call = {"f": verb, "session": session}
        if failed:
            self.record(key, invoke, failed, call)
            if failed == "info":
                self.held[key] = False  # it may or may not have taken effect
            return
        won = body.strip() == "true"
        self.record(key, invoke, "ok", {**call, "result": won})
        self.held[key] = verb == "acquire" and won

    def invalidate(self, session):
        """Destroys the session, retried until the outcome is known so that no session
        outlives its client holding a lock. Destroying is idempotent, so the attempts are
        recorded as one operation (on every lock key) from the first attempt's invocation to
        the answer: the session ended in between, its lock-delay starting no earlier."""
        invoke = time.monotonic_ns()
        maybe_applied = False
        while True:
            if self.stop.is_set():
                outcome = "info" if maybe_applied else "fail"
                break
            status, body, failed = self.call("PUT", self.server(), f"/v1/session/destroy/{session}")
            if not failed:
                outcome = "ok"
                break
            maybe_applied = maybe_applied or failed == "info"
            time.sleep(0.1)
        for n in range(self.run_cfg.lock_keys):
            key = f"jepsen/lock{n}"
            call = {"f": "invalidate", "session": session, "lock_delay_ms": LOCK_DELAY_MS,
                    "held": self.held.get(key, False)}
            self.record(key, invoke, outcome, call)
            if outcome != "fail":
                self.held[key] = False
        if outcome == "ok":
            self.session = None


class Nemesis(threading.Thread):
    """Faults one after another, each healed before the next; every fault is logged with its
    times so a report can line anomalies up with faults."""

    def __init__(self, cluster, firewall, run, stop):
        super().__init__(daemon=True)
        self.c = cluster
        self.fw = firewall
        self.run_cfg = run
        self.rng = random.Random(run.seed)
        self.stop = stop
        self.log = []
        self.error = None

    def run(self):
        try:
            # Kinds are dealt like cards: every kind once, in a random order, before any
            # repeats, so even a short run meets kills, pauses and partitions alike.
            deck = []
            while not self.stop.wait(self.rng.uniform(*self.run_cfg.quiet)):
                if not deck:
                    deck = list(self.run_cfg.nemeses)
                    self.rng.shuffle(deck)
                self.one_fault(deck.pop())
        except Exception as e:  # reported by the run: a broken nemesis must not pass quietly
            self.error = e
        finally:
            self.heal_all()

    def leader_or_random(self, want_leader):
        lead = None
        if want_leader:
            try:
                lead = self.c.leader()
            except requests.RequestException:
                lead = None
        return lead or self.rng.choice(self.c.nodes)

    def one_fault(self, kind):
        start = time.monotonic_ns()
        hold = self.rng.uniform(*self.run_cfg.fault)
        detail = ""
        if kind in ("kill", "kill-leader"):
            victim = self.leader_or_random(kind == "kill-leader")
            detail = victim.host
            self.c.kill9(victim)
            self.stop.wait(hold)
            self.c.restart(victim)
        elif kind in ("pause", "pause-leader"):
            victim = self.leader_or_random(kind == "pause-leader")
            detail = victim.host
            victim.proc.send_signal(signal.SIGSTOP)
            self.stop.wait(hold)
            victim.proc.send_signal(signal.SIGCONT)
        else:
            hosts = [a.host for a in self.c.nodes]
            self.rng.shuffle(hosts)
            if kind == "partition-leader":
                lead = self.leader_or_random(True).host
                groups = [[lead], [h for h in hosts if h != lead]]
                self.fw.isolate(lead, hosts)
            elif kind == "partition-halves":
                k = len(hosts) // 2
                groups = [hosts[:k], hosts[k:]]
                for a in groups[0]:
                    for b in groups[1]:
                        self.fw.cut(a, b)
            else:  # bridge: two halves that cannot see each other, one node that sees both
                k = len(hosts) // 2
                left, bridge, right = hosts[:k], hosts[k], hosts[k + 1:]
                groups = [left, [bridge], right]
                for a in left:
                    for b in right:
                        self.fw.cut(a, b)
            detail = " | ".join(",".join(g) for g in groups)
            self.stop.wait(hold)
            self.fw.heal()
        self.log.append({"fault": kind, "detail": detail, "start": start,
                         "end": time.monotonic_ns()})

    def heal_all(self):
        self.fw.heal()
        for a in self.c.nodes:
            if a.proc is None or a.proc.poll() is not None:
                self.c.restart(a)
            else:
                a.proc.send_signal(signal.SIGCONT)


def cluster_view(cluster):
    """What each server says about the leader and the Raft configuration (for reports)."""
    view = {}
    for a in cluster.nodes:
        try:
            leader = requests.get(a.url + "/v1/status/leader", timeout=2).text.strip()
            peers = requests.get(a.url + "/v1/status/peers", timeout=2).text.strip()
            members = {m["Name"]: m["Status"] for m in
                       requests.get(a.url + "/v1/agent/members", timeout=2).json()}
            view[a.host] = {"leader": leader, "peers": peers, "members": members}
        except (requests.RequestException, ValueError) as e:
            view[a.host] = {"error": repr(e)}
    return view


def final_reads(cluster, history, keys, out_dir):
    """After healing: one consistent read of every register key, so that a lost acknowledged
    write shows up as an anomaly even if no client read the key again."""
    try:
        lead = cluster.wait_leader(timeout=60)
    except AssertionError:
        view = cluster_view(cluster)
        (out_dir / "no-leader.json").write_text(json.dumps(view, indent=1))
        raise AssertionError(f"no leader all servers agree on 60 s after healing: {view}")
    for key in keys:
        invoke = time.monotonic_ns()
        r = requests.get(f"{lead.url}/v1/kv/{key}?consistent", timeout=10)
        value = None
        if r.status_code == 200:
            v = r.json()[0]["Value"]
            value = base64.b64decode(v).decode() if v else ""
        elif r.status_code != 404:
            raise AssertionError(f"final read of {key}: {r.status_code} {r.text}")
        history.add({"process": 0, "key": key, "invoke": invoke, "complete": time.monotonic_ns(),
                     "outcome": "ok", "f": "read", "value": value, "mode": "final"})


def run_once(cfg, out_dir, cluster=None):
    """One run: start (or reuse) a cluster, record a history under faults, check it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(config=cfg, dir=out_dir)
    own = cluster is None
    c = cluster or Cluster(cfg.servers)
    history = History(out_dir / "history.jsonl")
    stop = threading.Event()
    counter = iter(range(1, 1 << 62))
    lock = threading.Lock()

    def values():
        while True:
            with lock:
                n = next(counter)
            yield n

    try:
        with Firewall() as fw:
            shared_values = values()
            clients = [Client(i + 1, cfg, c.nodes, history, shared_values, stop)
                       for i in range(cfg.clients)]
            nemesis = Nemesis(c, fw, cfg, stop)
            for t in clients:
                t.start()
            nemesis.start()
            stop.wait(cfg.duration)
            stop.set()
            for t in clients:
                t.join(timeout=15)
            nemesis.join(timeout=30)
            if nemesis.error is not None:
                raise nemesis.error
            result.faults = nemesis.log
        final_reads(c, history, [f"jepsen/r{k}" for k in range(cfg.register_keys)], out_dir)
    finally:
        history.write()
        (out_dir / "faults.json").write_text(json.dumps(result.faults, indent=1))
        for a in c.nodes:
            if a.proc and a.proc.poll() is None:
                a.proc.send_signal(signal.SIGCONT)
        if own:
            keep = out_dir / "logs"
            keep.mkdir(exist_ok=True)
            for i, a in enumerate(c.nodes):
                try:
                    (keep / f"s{i + 1}.log").write_bytes(a.log_path.read_bytes())
                except OSError:
                    pass
            c.cleanup()
    for op in history.ops:
        result.ops[op["outcome"]] = result.ops.get(op["outcome"], 0) + 1
        if op["outcome"] == "ok":
            name = op["f"] + ("-" + op["mode"] if op["f"] == "read" else "")
            result.by_call[name] = result.by_call.get(name, 0) + 1
    check(result)
    return result


def check(result, history_file=None):
    """Runs `lotse-check` on the run's history (or another file)."""
    path = history_file or (result.dir / "history.jsonl")
    p = subprocess.run([str(checker_path()), str(path), "--report",
                        str(result.dir / "check.json")],
                       capture_output=True, text=True, timeout=900)
    result.check_status = p.returncode
    result.check_output = p.stdout + p.stderr
    (result.dir / "check.txt").write_text(result.check_output)
    return result


def summary(result):
    c = result.config
    faults = {}
    for f in result.faults:
        faults[f["fault"]] = faults.get(f["fault"], 0) + 1
    verdict = {0: "linearizable", 1: "ANOMALY", 2: "undecided"}.get(result.check_status,
                                                                     "checker failed")
    return (f"seed {c.seed}: {verdict}; {sum(result.ops.values())} ops "
            f"({', '.join(f'{k} {v}' for k, v in sorted(result.ops.items()))}); "
            f"ok by call: {', '.join(f'{k} {v}' for k, v in sorted(result.by_call.items()))}; "
            f"faults: {', '.join(f'{k} {v}' for k, v in sorted(faults.items())) or 'none'}")
