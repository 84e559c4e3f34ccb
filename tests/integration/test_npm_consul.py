"""The npm `consul` client (tests/clients/npm, version pinned by its package-lock.json) used
unchanged against a real `lotse agent -dev`: agent services and checks, catalog, health and the
client's `watch` helper on health.service. The cases themselves are in
tests/clients/npm/catalog.test.js (node:test + node:assert); this module starts the agent, runs
`node --test` on that file with CONSUL_HTTP_ADDR pointing at it and fails with node's output
unless it exits 0.

Setup once (CI's .ci/run does it): `(cd tests/clients/npm && npm ci --no-audit --no-fund)`.
Run:  LOTSE_BIN=target/debug/lotse .venv/bin/pytest -q tests/integration/test_npm_consul.py
Without node_modules this test fails (it does not skip): the client is part of the suite.
"""
import os
import re
import shutil
import subprocess

from conftest import ROOT

NPM_DIR = ROOT / "tests" / "clients" / "npm"
TEST_FILE = NPM_DIR / "catalog.test.js"


def node_bin():
    return shutil.which("node") or "/usr/bin/node"


def test_npm_consul_client(fresh_agent):
    assert os.path.exists(node_bin()), "node not found: install Node.js (>= 18) to run the npm client tests"
    assert (NPM_DIR / "node_modules" / "consul" / "package.json").exists(), (
        f"{NPM_DIR}/node_modules is missing: run `npm ci --no-audit --no-fund` in {NPM_DIR} "
        "(.ci/run does this)"
    )
    env = dict(os.environ, CONSUL_HTTP_ADDR=fresh_agent.addr)
    env.pop("CONSUL_HTTP_TOKEN", None)
    for var in ("NODE_OPTIONS", "FORCE_COLOR"):
        env.pop(var, None)
    env["NO_COLOR"] = "1"
    try:
        proc = subprocess.run(
            [node_bin(), "--test", "--test-reporter=spec", str(TEST_FILE)],
            cwd=NPM_DIR, env=env, capture_output=True, text=True, timeout=180,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"node --test did not finish in 180s\n--- stdout\n{e.stdout}\n--- stderr\n{e.stderr}\n"
            f"--- agent log (tail)\n{fresh_agent.output()}"
        ) from None
    assert proc.returncode == 0, (
        f"node --test {TEST_FILE.name} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n"
        f"--- stderr\n{proc.stderr}\n--- agent log (tail)\n{fresh_agent.output()}"
    )
    # Guard against a run that executed nothing (the spec reporter's summary: "ℹ pass N").
    passed = re.search(r"^\S*\s*pass (\d+)\s*$", proc.stdout, re.M)
    assert passed and int(passed.group(1)) > 0, f"no test ran:\n{proc.stdout}"
