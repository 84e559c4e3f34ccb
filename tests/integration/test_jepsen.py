"""A short Jepsen-style run in CI: 5 real servers, 10 clients doing register and lock
operations, a nemesis killing, pausing and partitioning servers; the recorded history must be
linearizable. Long runs: scripts/jepsen. The checker itself is tested in crates/lotse-testkit."""
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest

from cluster import Firewall
from jepsen import RunConfig, check, run_once, summary


@pytest.fixture(scope="module")
def run():
    assert Firewall.available(), "the nemesis needs root and iptables (.ci/run installs them)"
    seed = int(os.environ.get("JEPSEN_SEED", random.randrange(1 << 30)))
    out = Path(tempfile.mkdtemp(prefix="lotse-jepsen-"))
    result = run_once(RunConfig(seed=seed, duration=40.0), out)
    print(summary(result))
    yield result
    if result.linearizable:
        shutil.rmtree(out, ignore_errors=True)
    else:
        print(f"history kept in {out}")


def test_a_history_under_faults_is_linearizable(run):
    assert run.check_status == 0, f"{summary(run)}\n{run.check_output}\nhistory: {run.dir}"
    kinds = {f["fault"] for f in run.faults}
    assert len(run.faults) >= 4 and len(kinds) >= 3, f"too few faults injected: {run.faults}"
    # The run exercised every call, successful compare-and-sets and lock handovers included.
    for call in ("read-read", "read-read-consistent", "write", "cas", "acquire", "release",
                 "invalidate"):
        assert run.by_call.get(call, 0) >= 20, f"few {call}: {run.by_call}"
    history = recorded(run)
    assert any(o["f"] == "cas" and o.get("result") is True for o in history)
    assert any(o["f"] == "acquire" and o.get("result") is True for o in history)
    assert any(o["f"] == "invalidate" and o["held"] for o in history), \
        "no session was invalidated while holding a lock: lock-delay went untested"
    assert any(o["outcome"] == "info" for o in history), "no fault ever left an outcome unknown"


def recorded(run):
    """The run's history, one dict per operation."""
    return [json.loads(line) for line in (run.dir / "history.jsonl").read_text().splitlines()]


def check_planted(run, tmp_path, ops):
    """Checks `ops` (a doctored copy of the run's history) in `tmp_path`: (exit status, output).
    The run's own check result is restored afterwards."""
    planted = tmp_path / "history.jsonl"
    planted.write_text("".join(json.dumps(o) + "\n" for o in ops))
    run_dir, run.dir = run.dir, tmp_path
    try:
        check(run, planted)
        return run.check_status, run.check_output
    finally:
        run.dir = run_dir
        check(run)


def test_the_checker_finds_a_stale_read_planted_in_the_history(run, tmp_path):
    """The same history with one final read turned back to a value that an acknowledged write
    had already replaced: the checker must call it an anomaly (and say which read)."""
    ops = recorded(run)
    final = next(o for o in ops if o.get("mode") == "final" and o["value"] is not None)
    writes = [o for o in ops if o["key"] == final["key"] and o["f"] == "write"
              and o["outcome"] == "ok" and o["value"] != final["value"]]
    assert writes, "no acknowledged write on the key to roll back to"
    final["value"] = writes[0]["value"]
    status, output = check_planted(run, tmp_path, ops)
    assert status == 1, output
    stuck = [line for line in output.splitlines() if "no order explains" in line]
    assert len(stuck) == 1 and '"mode":"final"' in stuck[0], output


def test_the_checker_finds_a_lock_taken_during_lock_delay(run, tmp_path):
    """The same history plus one acquire by another session, answered `true` just after a
    holder's session was destroyed, inside its lock-delay: the checker must flag it."""
    ops = recorded(run)
    inv = next(o for o in ops if o["f"] == "invalidate" and o["held"] and o["outcome"] == "ok")
    other = next(o["session"] for o in ops
                 if o["f"] == "acquire" and o["session"] != inv["session"])
    ops.append({"process": 999, "key": inv["key"], "invoke": inv["complete"] + 1_000_000,
                "complete": inv["complete"] + 2_000_000, "outcome": "ok", "f": "acquire",
                "session": other, "result": True})
    status, output = check_planted(run, tmp_path, ops)
    assert status == 1, output
    breaches = [line for line in output.splitlines() if line.startswith("LOCK-DELAY BREACH")]
    assert len(breaches) == 1 and inv["key"] in breaches[0], output
