#!/usr/bin/env python3
"""Cluster helper for bench/run-cluster.sh: leaders, health, RSS, failover (stdlib only).

The state dir (STATE) written by run-cluster.sh holds `members.json`:
    {"lotse": [{"name": "s1", "url": "http://127.0.0.1:28500", "rpc": "127.0.0.1:28300",
                "log": "/.../s1.log", "pidfile": "/.../lotse-s1.pid"}, ..],
     "etcd":  [{"name": "m1", "url": "http://127.0.0.1:23791", "log": "...", "pidfile": "..."}, ..],
     "etcd_pids_file": "/.../etcd/pids"}
Every member's current PID is in its `pidfile` (one number). A member restarted here gets the
same argv as before (read from /proc/PID/cmdline before the kill), its output appended to its
log, and its new PID written to its pidfile (and, for etcd, to the harness's `pids` file that
etcd-stop.sh reads), so the caller's cleanup always stops what is running.

Subcommands (SYS = lotse | etcd):
    ctl.py STATE wait SYS [TIMEOUT_S]   wait until healthy (all members agree on one leader;
                                        lotse: /v1/status/peers lists 3; etcd: /health ok)
    ctl.py STATE urls SYS               member URLs, followers first, leader last (comma list)
    ctl.py STATE info SYS               "leader=<name> term=<n>" (leader's view)
    ctl.py STATE raft                   lotse leader's "log_commits log_entries log_commit_micros term
                                        batches batched_commands" (Stats.raft, /v1/agent/metrics)
    ctl.py STATE rss SYS                one INFO line per member: VmRSS / VmHWM (kB), role
    ctl.py STATE failover SYS RUN [--writers 4] [--timeout 1.0] [--max-wait 20] [--probe-every 0.02]
                                        one kill -9 of the leader, RESULT line, restart, wait.
                                        Writes go to a follower from `writers` closed-loop threads
                                        (one key per request, `timeout` s each) plus an open-loop
                                        prober (one write on a fresh connection every `probe_every`
                                        s). failover_ms = kill -> first 2xx of a write sent after it.
"""
import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

STATE = sys.argv[1]
with open(os.path.join(STATE, "members.json")) as f:
    CFG = json.load(f)


def pid_of(m):
    with open(m["pidfile"]) as f:
        return int(f.read().split()[0])


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie (our own exited child) is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def hostport(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


def request(url, method, path, body=None, timeout=1.0, headers=None):
    """One request on a fresh connection: (status, body bytes)."""
    h, p = hostport(url)
    c = http.client.HTTPConnection(h, p, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def b64(s):
    return base64.b64encode(s.encode()).decode()


# --- per-system views ------------------------------------------------------------------------

def lotse_leader_addr(m, timeout=1.0):
    st, body = request(m["url"], "GET", "/v1/status/leader", timeout=timeout)
    if st != 200:
        return ""
    return json.loads(body) or ""


def etcd_status(m, timeout=1.0):
    st, body = request(m["url"], "POST", "/v3/maintenance/status", body=b"{}", timeout=timeout)
    if st != 200:
        return None
    return json.loads(body)


def live_members(sys_):
    return [m for m in CFG[sys_] if alive(pid_of(m))]


def leader(sys_, members=None):
    """Name of the leader all given (default: live) members agree on, or None."""
    members = members if members is not None else live_members(sys_)
    named = set()
    for m in members:
        try:
            if sys_ == "lotse":
                a = lotse_leader_addr(m)
                named.add(next((x["name"] for x in CFG["lotse"] if x["rpc"] == a), "") if a else "")
            else:
                s = etcd_status(m)
                lid = str((s or {}).get("leader", "0"))
                name = ""
                if lid not in ("", "0"):
                    for x in CFG["etcd"]:
                        try:
                            if str(etcd_status(x)["header"]["member_id"]) == lid:
                                name = x["name"]
                                break
                        except Exception:
                            pass
                named.add(name)
        except Exception:
            named.add("")
    if len(named) == 1:
        n = named.pop()
        return n or None
    return None


def member(sys_, name):
    return next(m for m in CFG[sys_] if m["name"] == name)


def healthy(sys_):
    ms = CFG[sys_]
    if not all(alive(pid_of(m)) for m in ms):
        return False, "a member is not running"
    ld = leader(sys_, ms)
    if not ld:
        return False, "no agreed leader"
    if sys_ == "lotse":
        for m in ms:
            st, body = request(m["url"], "GET", "/v1/status/peers")
            if st != 200 or len(json.loads(body)) != len(ms):
                return False, f"{m['name']} peers: {body[:200]!r}"
        # autopilot's view (leader): every server healthy, if the endpoint answers
        try:
            st, body = request(member("lotse", ld)["url"], "GET", "/v1/operator/autopilot/health")
            if st in (200, 429):
                h = json.loads(body)
                if not h.get("Healthy", False):
                    return False, "autopilot: not healthy"
        except Exception as e:  # noqa: BLE001 - optional signal
            return False, f"autopilot: {e}"
    else:
        for m in ms:
            st, body = request(m["url"], "GET", "/health")
            if st != 200 or b'"true"' not in body:
                return False, f"{m['name']} /health: {body[:200]!r}"
    return True, ld


def wait_healthy(sys_, timeout=30.0):
    deadline = time.monotonic() + timeout
    why = ""
    while time.monotonic() < deadline:
        try:
            ok, why = healthy(sys_)
            if ok:
                return why
        except Exception as e:  # noqa: BLE001
            why = repr(e)
        time.sleep(0.2)
    raise SystemExit(f"ctl: {sys_} not healthy after {timeout}s: {why}")


def term(sys_, ld):
    m = member(sys_, ld)
    if sys_ == "lotse":
        st, body = request(m["url"], "GET", "/v1/agent/self", timeout=2)
        r = json.loads(body)["Stats"]["raft"]
        return int(r["term"]), r
    s = etcd_status(m, timeout=2)
    return int(s.get("raftTerm", 0)), s


# --- failover ----------------------------------------------------------------------------------

class Writer(threading.Thread):
    """Closed loop of single-key writes to one member; records (t_send, t_done, ok, err)."""

    def __init__(self, sys_, url, wid, timeout, stop):
        super().__init__(daemon=True)
        self.sys, self.url, self.wid, self.timeout, self.stop = sys_, url, wid, timeout, stop
        self.events = []  # (t_send, t_done, ok, key, err)
        self.conn = None

    def connect(self):
        h, p = hostport(self.url)
        self.conn = http.client.HTTPConnection(h, p, timeout=self.timeout)

    def run(self):
        seq = 0
        while not self.stop.is_set():
            seq += 1
            key = getattr(self, "key_override", None) or f"failover/w{self.wid}/{seq:07d}"
            val = f"v{seq}"
            if self.sys == "lotse":
                method, path, body = "PUT", "/v1/kv/" + key, val.encode()
            else:
                method, path = "POST", "/v3/kv/put"
                body = json.dumps({"key": b64(key), "value": b64(val)}).encode()
            if self.conn is None:
                self.connect()
            t0 = time.monotonic()
            ok, err = False, ""
            try:
                self.conn.request(method, path, body=body)
                r = self.conn.getresponse()
                data = r.read()
                if r.status == 200 and (data.strip() == b"true" if self.sys == "lotse" else b'"header"' in data):
                    ok = True
                else:
                    err = f"HTTP {r.status}: {data[:160].decode(errors='replace').strip()}"
            except Exception as e:  # noqa: BLE001 - timeouts, resets, refused
                err = f"{type(e).__name__}: {str(e)[:120]}"
            t1 = time.monotonic()
            if not ok:
                try:
                    self.conn.close()
                except Exception:  # noqa: BLE001
                    pass
                self.conn = None
            self.events.append((t0, t1, ok, key, err))
            if not ok:
                time.sleep(0.002)
        if self.conn is not None:
            self.conn.close()


class Prober(threading.Thread):
    """Open loop: every `every` s, one write on a fresh connection in its own thread, so that the
    first write sent after the new leader is ready is seen within `every` s even when the
    closed-loop writers are all stuck in requests the old leader's death left unanswered."""

    def __init__(self, sys_, url, timeout, stop, every=0.02, max_inflight=100):
        super().__init__(daemon=True)
        self.sys, self.url, self.timeout, self.stop = sys_, url, timeout, stop
        self.every, self.max_inflight = every, max_inflight
        self.events = []
        self.lock = threading.Lock()
        self.inflight = 0

    def one(self, seq):
        w = Writer(self.sys, self.url, "p", self.timeout, self.stop)
        key = f"failover/probe/{seq:07d}"
        w.stop = _Once()
        w.key_override = key
        w.run()
        with self.lock:
            self.events.extend(w.events)
            self.inflight -= 1

    def run(self):
        seq = 0
        while not self.stop.is_set():
            with self.lock:
                busy = self.inflight >= self.max_inflight
                if not busy:
                    self.inflight += 1
            if not busy:
                seq += 1
                threading.Thread(target=self.one, args=(seq,), daemon=True).start()
            time.sleep(self.every)


class _Once:
    """A stop flag that lets a Writer loop run exactly once."""

    def __init__(self):
        self.n = 0

    def is_set(self):
        self.n += 1
        return self.n > 1


class LeaderWatch(threading.Thread):
    """Polls the target member's idea of the leader every 10 ms; notes when it names a new one."""

    def __init__(self, sys_, target, old, stop):
        super().__init__(daemon=True)
        self.sys, self.target, self.old, self.stop = sys_, target, old, stop
        self.old_id = None
        self.seen = []  # (t, leader-id-or-addr)
        if sys_ == "etcd":
            self.old_id = str(etcd_status(member("etcd", old))["header"]["member_id"])

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                if self.sys == "lotse":
                    cur = lotse_leader_addr(self.target, timeout=0.5)
                else:
                    cur = str((etcd_status(self.target, timeout=0.5) or {}).get("leader", ""))
            except Exception:  # noqa: BLE001
                cur = "?"
            if not self.seen or self.seen[-1][1] != cur:
                self.seen.append((t, cur))
            time.sleep(0.01)

    def new_leader_at(self, t_kill):
        old = member("lotse", self.old)["rpc"] if self.sys == "lotse" else self.old_id
        for t, cur in self.seen:
            if t >= t_kill and cur not in ("", "0", "?", old):
                return t - t_kill
        return None


def restart(sys_, m, argv):
    with open(m["log"], "ab") as log:
        log.write(f"\n==== ctl.py restart {time.strftime('%H:%M:%S')} ====\n".encode())
        log.flush()
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    with open(m["pidfile"], "w") as f:
        f.write(f"{p.pid}\n")
    if sys_ == "etcd":
        with open(CFG["etcd_pids_file"], "w") as f:
            f.write(" ".join(str(pid_of(x)) for x in CFG["etcd"]) + "\n")
    return p.pid


def read_back(sys_, m, keys):
    """How many of `keys` are missing when read (consistent / linearizable) from member m."""
    missing = 0
    for k in keys:
        if sys_ == "lotse":
            st, _ = request(m["url"], "GET", "/v1/kv/" + k + "?consistent", timeout=3)
            missing += st != 200
        else:
            st, body = request(m["url"], "POST", "/v3/kv/range",
                               body=json.dumps({"key": b64(k)}).encode(), timeout=3)
            missing += not (st == 200 and b'"kvs"' in body)
    return missing


def failover(sys_, run, writers=4, timeout=1.0, max_wait=20.0, probe_every=0.02):
    ld = wait_healthy(sys_, 30)
    victim = member(sys_, ld)
    target = next(m for m in CFG[sys_] if m["name"] != ld)
    vpid = pid_of(victim)
    with open(f"/proc/{vpid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    term0, _ = term(sys_, ld)

    stop = threading.Event()
    watch = LeaderWatch(sys_, target, ld, stop)
    ws = [Writer(sys_, target["url"], i, timeout, stop) for i in range(writers)]
    probe = Prober(sys_, target["url"], timeout, stop, every=probe_every)
    for w in ws:
        w.start()
    watch.start()
    probe.start()
    time.sleep(1.5)  # steady writes before the kill
    t_kill = time.monotonic()
    os.kill(vpid, signal.SIGKILL)
    deadline = t_kill + max_wait
    first_ok = None
    while time.monotonic() < deadline:
        with probe.lock:
            pev = list(probe.events)
        oks = [e[1] for e in pev + [e for w in ws for e in list(w.events)] if e[2] and e[0] >= t_kill]
        if oks:
            first_ok = min(oks)
            break
        time.sleep(0.005)
    time.sleep(0.3)
    stop.set()
    for w in ws:
        w.join(timeout + 1)
    watch.join(2)
    probe.join(2)
    t_end = time.monotonic() + timeout + 0.5
    while probe.inflight and time.monotonic() < t_end:
        time.sleep(0.02)
    try:
        os.waitpid(vpid, os.WNOHANG)
    except ChildProcessError:
        pass

    with probe.lock:
        pev = list(probe.events)
    ev = sorted([e for w in ws for e in w.events] + pev, key=lambda e: e[0])
    pre = [e for e in ev if e[1] < t_kill]
    pre_ok = [e for e in pre if e[2]]
    post = [e for e in ev if e[1] >= t_kill]
    first_ok_writer = min((e[1] for w in ws for e in w.events if e[2] and e[0] >= t_kill), default=None)
    first_ok_probe = min((e[1] for e in pev if e[2] and e[0] >= t_kill), default=None)
    errs = {}
    for e in post:
        if not e[2]:
            k = ("sent before kill: " if e[0] < t_kill else "sent after kill: ") + e[4]
            errs[k] = errs.get(k, 0) + 1
    inflight_err = sum(1 for e in post if not e[2] and e[0] < t_kill)
    # writes acknowledged before the kill must all survive it (last 20 of them)
    acked = [e[3] for e in pre_ok][-20:]
    new_leader = leader(sys_, [target])
    seen = watch.new_leader_at(t_kill)
    fo_ms = (first_ok - t_kill) * 1000 if first_ok else None

    # restart the killed member with its old argv, then wait until the cluster is whole again
    t_r = time.monotonic()
    newpid = restart(sys_, victim, argv)
    try:
        wait_healthy(sys_, 45)
        recovered_s = f"{time.monotonic() - t_r:.1f}"
        ld2 = leader(sys_)
        term1, _ = term(sys_, ld2)
        lost = read_back(sys_, member(sys_, ld2), acked)
    except (SystemExit, Exception) as e:  # noqa: BLE001 - report, do not hide the figures
        print(f"INFO kind=failover_recover_failed label={sys_} run={run} why={json.dumps(str(e))}",
              flush=True)
        recovered_s, term1, lost = "fail", "na", "na"

    f = lambda v: "na" if v is None else f"{v:.0f}"  # noqa: E731
    print(f"RESULT kind=failover label={sys_} run={run} killed={ld} killed_pid={vpid} target={target['name']} "
          f"new_leader={new_leader or 'na'} failover_ms={f(fo_ms)} leader_seen_ms={f(seen * 1000 if seen is not None else None)} "
          f"first_ok_writers_ms={f((first_ok_writer - t_kill) * 1000 if first_ok_writer else None)} "
          f"first_ok_probe_ms={f((first_ok_probe - t_kill) * 1000 if first_ok_probe else None)} "
          f"prekill_ok={len(pre_ok)} prekill_rps={len(pre_ok) / 1.5:.0f} "
          f"post_err={sum(errs.values())} inflight_err={inflight_err} term_before={term0} term_after={term1} acked_checked={len(acked)} "
          f"acked_lost={lost} restarted_pid={newpid} recovered_s={recovered_s} "
          f"writers={writers} probe_every_ms={probe_every * 1000:.0f} req_timeout_s={timeout}", flush=True)
    for k, n in sorted(errs.items(), key=lambda x: -x[1])[:6]:
        print(f"INFO kind=failover_err label={sys_} run={run} count={n} err={json.dumps(k)}", flush=True)


# --- main --------------------------------------------------------------------------------------

def main():
    cmd, args = sys.argv[2], sys.argv[3:]
    if cmd == "wait":
        print(wait_healthy(args[0], float(args[1]) if len(args) > 1 else 30.0))
    elif cmd == "urls":
        ld = leader(args[0])
        ms = sorted(CFG[args[0]], key=lambda m: (m["name"] == ld, m["name"]))
        print(",".join(m["url"] for m in ms))
    elif cmd == "info":
        ld = leader(args[0])
        t = term(args[0], ld)[0] if ld else "na"
        print(f"leader={ld or 'none'} term={t}")
    elif cmd == "raft":
        ld = leader("lotse")
        if not ld:
            print("0 0 0 0 0 0")
            return
        t, r = term("lotse", ld)
        batches = cmds = 0
        try:  # the leader's write batcher: commands per Raft entry
            st, body = request(member("lotse", ld)["url"], "GET", "/v1/agent/metrics", timeout=2)
            for c in json.loads(body).get("Counters", []):
                if c.get("Name") == "lotse.raft.batches":
                    batches = int(c.get("Count", 0))
                elif c.get("Name") == "lotse.raft.batched_commands":
                    cmds = int(c.get("Count", 0))
        except Exception:  # noqa: BLE001 - optional
            pass
        print(r["log_commits"], r["log_entries_persisted"], r["log_commit_micros"], t, batches, cmds)
    elif cmd == "rss":
        ld = leader(args[0])
        for m in CFG[args[0]]:
            pid = pid_of(m)
            st = {}
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    st[k] = v.split()[0] if v.split() else ""
            print(f"INFO kind=rss label={args[0]} member={m['name']} pid={pid} "
                  f"role={'leader' if m['name'] == ld else 'follower'} rss_kb={st.get('VmRSS')} "
                  f"hwm_kb={st.get('VmHWM')} anon_kb={st.get('RssAnon')} file_kb={st.get('RssFile')} "
                  f"threads={st.get('Threads')}")
    elif cmd == "failover":
        sys_, run = args[0], args[1]
        kw = {}
        it = iter(args[2:])
        for a in it:
            kw[a.lstrip("-").replace("-", "_")] = float(next(it))
        if "writers" in kw:
            kw["writers"] = int(kw["writers"])
        failover(sys_, run, **kw)
    else:
        raise SystemExit(f"ctl: unknown command {cmd}")


if __name__ == "__main__":
    main()
