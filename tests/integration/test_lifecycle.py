"""Agent lifecycle: graceful stop with requests in flight, and SIGHUP reloads."""
import json
import signal
import threading
import time

import requests

from conftest import Agent


def test_sigterm_with_a_parked_blocking_query_stops_promptly_and_cleanly(tmp_path):
    a = Agent(["-dev"])
    try:
        assert a.put("/v1/kv/parked", data=b"v").json() is True
        index = int(a.get("/v1/kv/parked").headers["X-Consul-Index"])
        answered = {}

        def park():
            try:
                r = requests.get(f"{a.url}/v1/kv/parked?index={index}&wait=5m", timeout=30)
                answered["status"] = r.status_code
            except requests.RequestException as e:
                answered["error"] = e

        t = threading.Thread(target=park)
        t.start()
        time.sleep(0.5)
        started = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        code = a.proc.wait(timeout=15)
        elapsed = time.monotonic() - started
        t.join(timeout=15)
        assert code == 0, a.output()
        # Shutdown answers parked queries at once (with what they have) instead of letting them
        # run into the 3 s drain limit.
        assert elapsed < 2.5, elapsed
        assert answered.get("status") == 200, answered
        assert "shutdown complete" in a.output()
    finally:
        a.stop()


def test_sighup_reloads_the_log_level_and_keeps_serving(tmp_path):
    cfg = tmp_path / "agent.json"
    cfg.write_text(json.dumps({"log_level": "info"}))
    a = Agent(["-dev", "-config-file", str(cfg)])
    try:
        assert a.put("/v1/kv/before-reload", data=b"1").json() is True
        cfg.write_text(json.dumps({"log_level": "debug"}))
        a.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in a.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "configuration reloaded" in a.output(), a.output()
        assert "log_level=debug" in a.output() or "log_level: debug" in a.output(), a.output()
        assert a.get("/v1/kv/before-reload?raw").text == "1"
        assert a.proc.poll() is None
    finally:
        a.stop()


def test_sighup_with_a_broken_file_keeps_the_running_configuration(tmp_path):
    cfg = tmp_path / "agent.json"
    cfg.write_text(json.dumps({"log_level": "info"}))
    a = Agent(["-dev", "-config-file", str(cfg)])
    try:
        cfg.write_text("{ this is not json")
        a.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reload failed" not in a.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "reload failed" in a.output(), a.output()
        assert a.proc.poll() is None
        assert a.put("/v1/kv/after-bad-reload", data=b"ok").json() is True
    finally:
        a.stop()
