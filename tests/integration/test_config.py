"""Agent configuration through the real binary: files, warnings, errors, environment, flags.

Every test starts `lotse agent` (through conftest's Agent, or directly for runs that must fail).
"""
import json
import os
import subprocess
import time

import pytest
import requests

from conftest import Agent, free_port, lotse_bin


def run_agent(args, env=None, timeout=20):
    """Runs `lotse agent <args>` expecting it to exit on its own; returns (code, output)."""
    e = dict(os.environ, **(env or {}))
    try:
        p = subprocess.run([lotse_bin(), "agent", *args], capture_output=True, env=e,
                           timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"lotse agent {args} did not exit within {timeout}s: {exc.output!r}")
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def agent_self(agent, timeout=20.0):
    """Polls /v1/agent/self until it answers 200 and returns its JSON."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = agent.get("/v1/agent/self", timeout=2)
            if r.status_code == 200:
                return r.json()
            last = f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)
    pytest.fail(f"/v1/agent/self did not answer 200 within {timeout}s: {last}\n{agent.output()}")


def wait_for_output(agent, needle, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in agent.output():
            return agent.output()
        time.sleep(0.1)
    pytest.fail(f"{needle!r} not in the agent's output:\n{agent.output()}")


@pytest.fixture
def started():
    agents = []

    def start(args, env=None):
        a = Agent(args, env=env)
        agents.append(a)
        return a

    yield start
    for a in agents:
        a.stop()


def test_malformed_json_file_exits_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "node_name": "a",\n  "datacenter": "dc1"\n  "server": true\n}\n')
    code, out = run_agent(["-dev", "-http-port", str(free_port()), "-config-file", str(bad)])
    assert code != 0, out
    assert str(bad) in out, out
    assert "line 4" in out, out


def test_malformed_hcl_file_exits_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.hcl"
    bad.write_text('node_name = "a"\nports {\n  http = \n}\n')
    code, out = run_agent(["-dev", "-http-port", str(free_port()), "-config-file", str(bad)])
    assert code != 0, out
    assert str(bad) in out and "line 3" in out, out


def test_wrong_type_names_key_and_file(tmp_path):
    f = tmp_path / "types.json"
    f.write_text(json.dumps({"ports": {"dns": "abc"}}))
    code, out = run_agent(["-dev", "-http-port", str(free_port()), "-config-file", str(f)])
    assert code != 0, out
    assert "ports.dns" in out and str(f) in out, out


def test_missing_config_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.json"
    code, out = run_agent(["-dev", "-http-port", str(free_port()), "-config-file", str(missing)])
    assert code != 0, out
    assert str(missing) in out, out


def test_server_without_data_dir_is_an_error():
    code, out = run_agent(["-server", "-bootstrap-expect", "1", "-http-port", str(free_port())])
    assert code != 0, out
    assert "data_dir cannot be empty" in out, out


def test_bootstrap_expect_in_dev_mode_is_an_error():
    code, out = run_agent(["-dev", "-bootstrap-expect", "3", "-http-port", str(free_port())])
    assert code != 0, out
    assert "not allowed in dev mode" in out, out


def test_bad_flag_value_shows_clap_message():
    code, out = run_agent(["-dev", "-http-port", "abc"])
    assert code != 0, out
    assert "abc" in out and "http-port" in out, out


def test_help_teaches():
    code, out = run_agent(["-h"])
    assert code == 0, out
    for needle in ["-config-file", "-config-dir", "-retry-join", "LOTSE_NODE_NAME", "Examples"]:
        assert needle in out, out


def test_unknown_key_starts_and_logs_a_warning(tmp_path, started):
    f = tmp_path / "extra.json"
    f.write_text(json.dumps({"nonsense_key": 1, "telemetry": {"disable_hostname": True}}))
    a = started(["-dev", "-config-file", str(f)])
    out = wait_for_output(a, "nonsense_key")
    assert str(f) in out, out
    assert "telemetry" in out and "not implemented yet" in out, out


def test_env_node_name_shows_in_agent_self(started):
    a = started(["-dev"], env={"LOTSE_NODE_NAME": "env-node-x"})
    body = agent_self(a)
    assert body["Config"]["NodeName"] == "env-node-x", body


def test_flags_beat_env_and_files(tmp_path, started):
    f = tmp_path / "agent.hcl"
    f.write_text('node_name = "from-file"\ndatacenter = "FileDC"\n')
    a = started(["-dev", "-config-file", str(f), "-node", "from-flag"],
                env={"LOTSE_NODE_NAME": "from-env", "LOTSE_DATACENTER": "envdc"})
    cfg = agent_self(a)["Config"]
    assert cfg["NodeName"] == "from-flag", cfg
    assert cfg["Datacenter"] == "envdc", cfg


def test_config_dir_hcl_and_json(tmp_path, started):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "10-base.json").write_text(json.dumps({"node_name": "dir-json", "datacenter": "dir-dc"}))
    (d / "20-override.hcl").write_text('node_name = "dir-hcl"\n')
    a = started(["-dev", "-config-dir", str(d)])
    cfg = agent_self(a)["Config"]
    assert cfg["NodeName"] == "dir-hcl", cfg
    assert cfg["Datacenter"] == "dir-dc", cfg
