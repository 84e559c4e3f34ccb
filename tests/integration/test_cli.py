"""The client-side CLI (`lotse kv ...`, `lock`, `members`, `info`, `version`, help) against a
real `lotse agent -dev`, checked against consul's CLI contract: flags, output, exit codes.
"""
import base64
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import lotse_bin

LOCK_FLAG = 0x2DDCCBC058A50C18
PROTOCOL_LINE = ("Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use "
                 "protocol >2 when speaking to compatible agents)")


def out(p):
    return p.stdout.decode()


def err(p):
    return p.stderr.decode()


def no_panic(p):
    assert "panicked" not in err(p), err(p)


def kv_entry(agent, key):
    r = agent.get(f"/v1/kv/{key}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()[0]


def raw_value(entry):
    return base64.b64decode(entry["Value"]) if entry and entry.get("Value") else b""


def cli_env(agent, **extra):
    env = dict(os.environ, LOTSE_HTTP_ADDR=agent.addr, **extra)
    env.pop("CONSUL_HTTP_ADDR", None)
    return env


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# ---- version and help ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["version"], ["-v"], ["--version"], ["-version"]])
def test_version(args):
    p = subprocess.run([lotse_bin(), *args], capture_output=True, timeout=10)
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert re.fullmatch(r"Lotse v\d+\.\d+\.\d+\S*", lines[0]), lines
    assert PROTOCOL_LINE in lines


def test_version_json():
    p = subprocess.run([lotse_bin(), "version", "-format=json"], capture_output=True, timeout=10)
    assert p.returncode == 0
    info = json.loads(out(p))
    assert info["RPC"] == {"Default": 2, "Min": 2, "Max": 3}
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", info["Version"])


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["-help"], ["help"]])
def test_help_lists_commands_and_exits_0(args):
    p = subprocess.run([lotse_bin(), *args], capture_output=True, timeout=10)
    assert p.returncode == 0
    text = out(p) + err(p)
    assert "Usage: lotse [--version] [--help] <command> [<args>]" in text
    for cmd in ["agent", "info", "kv", "lock", "members", "version"]:
        assert re.search(rf"^    {cmd}\s+\S", text, re.M), (cmd, text)


def test_no_arguments_prints_usage_and_exits_127():
    # consul (mitchellh/cli) prints the command list and exits 127 when no command is given.
    p = subprocess.run([lotse_bin()], capture_output=True, timeout=10)
    assert p.returncode == 127
    assert "Available commands are:" in out(p) + err(p)


def test_unknown_command_fails():
    p = subprocess.run([lotse_bin(), "no-such-command"], capture_output=True, timeout=10)
    assert p.returncode == 127
    assert "Available commands are:" in out(p) + err(p)
    no_panic(p)


def test_subcommand_help():
    p = subprocess.run([lotse_bin(), "kv", "get", "-h"], capture_output=True, timeout=10)
    assert p.returncode == 0
    text = out(p) + err(p)
    assert "Usage: lotse kv get" in text
    for flag in ["-recurse", "-detailed", "-keys", "-separator", "-base64", "-http-addr", "-token",
                 "-datacenter", "-stale"]:
        assert flag in text, flag
    p = subprocess.run([lotse_bin(), "lock", "--help"], capture_output=True, timeout=10)
    assert p.returncode == 0
    assert "-child-exit-code" in out(p) + err(p)


def test_kv_without_subcommand_shows_subcommands():
    p = subprocess.run([lotse_bin(), "kv"], capture_output=True, timeout=10)
    assert p.returncode == 1
    text = out(p) + err(p)
    for sub in ["delete", "export", "get", "import", "put"]:
        assert re.search(rf"^    {sub}\s+\S", text, re.M), (sub, text)


# ---- kv put / get -------------------------------------------------------------------------------

def test_put_then_get(agent):
    p = agent.cli("kv", "put", "cli/basic", "hello world")
    assert p.returncode == 0, err(p)
    assert out(p) == "Success! Data written to: cli/basic\n"
    assert raw_value(kv_entry(agent, "cli/basic")) == b"hello world"
    p = agent.cli("kv", "get", "cli/basic")
    assert p.returncode == 0
    assert out(p) == "hello world\n"


def test_get_missing_key(agent):
    p = agent.cli("kv", "get", "cli/does/not/exist")
    assert p.returncode == 1
    assert out(p) == ""
    assert err(p) == "Error! No key exists at: cli/does/not/exist\n"


def test_get_argument_errors(agent):
    p = agent.cli("kv", "get")
    assert p.returncode == 1
    assert "Error! Missing KEY argument" in err(p)
    p = agent.cli("kv", "get", "a", "b")
    assert p.returncode == 1
    assert "Too many arguments (expected 1, got 2)" in err(p)
    # Go's flag parsing stops at the first argument: a flag after the key is an argument.
    p = agent.cli("kv", "get", "a", "-recurse")
    assert p.returncode == 1
    assert "Too many arguments (expected 1, got 2)" in err(p)
    p = agent.cli("kv", "get", "-no-such-flag", "a")
    assert p.returncode == 1
    assert "flag provided but not defined: -no-such-flag" in err(p)


def test_get_strips_leading_slash(agent):
    agent.cli("kv", "put", "cli/slash", "v")
    p = agent.cli("kv", "get", "/cli/slash")
    assert p.returncode == 0
    assert out(p) == "v\n"


def test_get_empty_value_prints_empty_line(agent):
    p = agent.cli("kv", "put", "cli/empty")
    assert p.returncode == 0
    assert out(p) == "Success! Data written to: cli/empty\n"
    p = agent.cli("kv", "get", "cli/empty")
    assert p.returncode == 0
    assert out(p) == "\n"


def test_get_detailed(agent):
    agent.cli("kv", "put", "-flags=42", "cli/detailed", "some value")
    e = kv_entry(agent, "cli/detailed")
    p = agent.cli("kv", "get", "-detailed", "cli/detailed")
    assert p.returncode == 0
    expected = (
        f"CreateIndex      {e['CreateIndex']}\n"
        f"Flags            42\n"
        f"Key              cli/detailed\n"
        f"LockIndex        {e['LockIndex']}\n"
        f"ModifyIndex      {e['ModifyIndex']}\n"
        f"Session          -\n"
        f"Value            some value\n"
    )
    assert out(p) == expected
    p = agent.cli("kv", "get", "-detailed", "-base64", "cli/detailed")
    assert out(p).endswith("Value            " + base64.b64encode(b"some value").decode() + "\n")


def test_get_base64(agent):
    agent.cli("kv", "put", "cli/b64", "hi there")
    p = agent.cli("kv", "get", "-base64", "cli/b64")
    assert out(p) == base64.b64encode(b"hi there").decode() + "\n"


def test_get_recurse(agent):
    for k, v in [("cli/rec/a", "1"), ("cli/rec/b/c", "2"), ("cli/rec/d", "3")]:
        assert agent.cli("kv", "put", k, v).returncode == 0
    p = agent.cli("kv", "get", "-recurse", "cli/rec")
    assert p.returncode == 0
    assert out(p) == "cli/rec/a:1\ncli/rec/b/c:2\ncli/rec/d:3\n"
    # Go-style spellings of the same boolean flag.
    for flag in ["--recurse", "-recurse=true", "--recurse=1"]:
        assert out(agent.cli("kv", "get", flag, "cli/rec")) == "cli/rec/a:1\ncli/rec/b/c:2\ncli/rec/d:3\n"
    p = agent.cli("kv", "get", "-recurse=false", "cli/rec/a")
    assert out(p) == "1\n"
    p = agent.cli("kv", "get", "-recurse", "-base64", "cli/rec/a")
    assert out(p) == "cli/rec/a:" + base64.b64encode(b"1").decode() + "\n"
    # Nothing under the prefix: no output, success.
    p = agent.cli("kv", "get", "-recurse", "cli/rec/none/")
    assert p.returncode == 0
    assert out(p) == ""


def test_get_recurse_detailed_separates_entries(agent):
    agent.cli("kv", "put", "cli/recdet/a", "x")
    agent.cli("kv", "put", "cli/recdet/b", "y")
    p = agent.cli("kv", "get", "-recurse", "-detailed", "cli/recdet/")
    assert p.returncode == 0
    blocks = out(p).split("\n\n")
    assert len(blocks) == 2
    assert "Key              cli/recdet/a\n" in blocks[0]
    assert blocks[1].rstrip("\n").endswith("Value            y")


def test_get_keys(agent):
    for k in ["cli/keys/a", "cli/keys/b/c", "cli/keys/b/d", "cli/keys/e/f/g"]:
        agent.cli("kv", "put", k, "v")
    p = agent.cli("kv", "get", "-keys", "cli/keys/")
    assert p.returncode == 0
    assert out(p) == "cli/keys/a\ncli/keys/b/\ncli/keys/e/\n"
    p = agent.cli("kv", "get", "-keys", "-separator=", "cli/keys/")
    assert out(p) == "cli/keys/a\ncli/keys/b/c\ncli/keys/b/d\ncli/keys/e/f/g\n"
    p = agent.cli("kv", "get", "-keys", "-recurse", "cli/keys/b")
    assert out(p) == "cli/keys/b/c\ncli/keys/b/d\n"
    p = agent.cli("kv", "get", "-keys", "cli/keys/zzz")
    assert p.returncode == 0
    assert out(p) == ""


def test_put_flags_base64_file_and_stdin(agent, tmp_path):
    p = agent.cli("kv", "put", "-flags", "7", "cli/put/flags", "x")
    assert p.returncode == 0
    assert kv_entry(agent, "cli/put/flags")["Flags"] == 7

    p = agent.cli("kv", "put", "-base64", "cli/put/b64", base64.b64encode(b"\x00bin\xff").decode())
    assert p.returncode == 0
    assert raw_value(kv_entry(agent, "cli/put/b64")) == b"\x00bin\xff"
    p = agent.cli("kv", "put", "-base64", "cli/put/b64bad", "!!!not base64!!!")
    assert p.returncode == 1
    assert "Error! Cannot base 64 decode data" in err(p)
    assert kv_entry(agent, "cli/put/b64bad") is None

    f = tmp_path / "data.txt"
    f.write_bytes(b"from a file\nline 2\n")
    p = agent.cli("kv", "put", "cli/put/file", f"@{f}")
    assert p.returncode == 0
    assert raw_value(kv_entry(agent, "cli/put/file")) == b"from a file\nline 2\n"
    p = agent.cli("kv", "put", "cli/put/file2", f"@{tmp_path}/missing")
    assert p.returncode == 1
    assert "Error! Failed to read file" in err(p)

    p = agent.cli("kv", "put", "cli/put/stdin", "-", input=b"from stdin")
    assert p.returncode == 0
    assert raw_value(kv_entry(agent, "cli/put/stdin")) == b"from stdin"

    p = agent.cli("kv", "put")
    assert p.returncode == 1
    assert "Error! Missing KEY argument" in err(p)
    p = agent.cli("kv", "put", "a", "b", "c")
    assert p.returncode == 1
    assert "Too many arguments (expected 1 or 2, got 3)" in err(p)


def test_put_cas(agent):
    agent.cli("kv", "put", "cli/cas", "one")
    idx = kv_entry(agent, "cli/cas")["ModifyIndex"]
    p = agent.cli("kv", "put", "-cas", f"-modify-index={idx + 1000}", "cli/cas", "two")
    assert p.returncode == 1
    assert err(p) == "Error! Did not write to cli/cas: CAS failed\n"
    assert raw_value(kv_entry(agent, "cli/cas")) == b"one"
    p = agent.cli("kv", "put", "-cas", "-modify-index", str(idx), "cli/cas", "two")
    assert p.returncode == 0, err(p)
    assert out(p) == "Success! Data written to: cli/cas\n"
    assert raw_value(kv_entry(agent, "cli/cas")) == b"two"
    # -cas with index 0 only creates.
    p = agent.cli("kv", "put", "-cas", "cli/cas", "three")
    assert p.returncode == 1
    assert err(p) == ("Error! Did not write to cli/cas: CAS performed with index=0 and key "
                      "already exists.\n")
    p = agent.cli("kv", "put", "-cas", "-modify-index=0", "cli/cas-new", "fresh")
    assert p.returncode == 0
    assert raw_value(kv_entry(agent, "cli/cas-new")) == b"fresh"


def test_put_acquire_release(agent):
    sid = agent.put("/v1/session/create", json={"Name": "cli-test"}).json()["ID"]
    other = agent.put("/v1/session/create", json={"Name": "cli-test-2"}).json()["ID"]
    try:
        p = agent.cli("kv", "put", "-acquire", "cli/lockkey", "v")
        assert p.returncode == 1
        assert "Error! Missing -session (required with -acquire and -release)" in err(p)

        p = agent.cli("kv", "put", "-acquire", f"-session={sid}", "cli/lockkey", "held")
        assert p.returncode == 0, err(p)
        assert out(p) == "Success! Lock acquired on: cli/lockkey\n"
        assert kv_entry(agent, "cli/lockkey")["Session"] == sid

        p = agent.cli("kv", "put", "-acquire", "-session", other, "cli/lockkey", "mine")
        assert p.returncode == 1
        assert err(p) == "Error! Did not acquire lock\n"

        p = agent.cli("kv", "put", "-release", f"-session={other}", "cli/lockkey")
        assert p.returncode == 1
        assert err(p) == "Error! Did not release lock\n"

        p = agent.cli("kv", "put", "-release", f"-session={sid}", "cli/lockkey")
        assert p.returncode == 0
        assert out(p) == "Success! Lock released on: cli/lockkey\n"
        assert not kv_entry(agent, "cli/lockkey").get("Session")
    finally:
        agent.put(f"/v1/session/destroy/{sid}")
        agent.put(f"/v1/session/destroy/{other}")


# ---- kv delete ----------------------------------------------------------------------------------

def test_delete(agent):
    agent.cli("kv", "put", "cli/del/one", "1")
    p = agent.cli("kv", "delete", "cli/del/one")
    assert p.returncode == 0
    assert out(p) == "Success! Deleted key: cli/del/one\n"
    assert kv_entry(agent, "cli/del/one") is None
    # Deleting a missing key is not an error.
    p = agent.cli("kv", "delete", "cli/del/one")
    assert p.returncode == 0


def test_delete_recurse(agent):
    for k in ["cli/delr/a", "cli/delr/b/c", "cli/delr-sibling"]:
        agent.cli("kv", "put", k, "v")
    p = agent.cli("kv", "delete", "-recurse", "cli/delr/")
    assert p.returncode == 0
    assert out(p) == "Success! Deleted keys with prefix: cli/delr/\n"
    assert kv_entry(agent, "cli/delr/a") is None
    assert kv_entry(agent, "cli/delr/b/c") is None
    assert kv_entry(agent, "cli/delr-sibling") is not None


def test_delete_cas_and_argument_errors(agent):
    agent.cli("kv", "put", "cli/delcas", "v")
    idx = kv_entry(agent, "cli/delcas")["ModifyIndex"]
    p = agent.cli("kv", "delete", "-cas", f"-modify-index={idx + 1000}", "cli/delcas")
    assert p.returncode == 1
    assert err(p) == "Error! Did not delete key cli/delcas: CAS failed\n"
    assert kv_entry(agent, "cli/delcas") is not None
    p = agent.cli("kv", "delete", "-cas", f"-modify-index={idx}", "cli/delcas")
    assert p.returncode == 0
    assert out(p) == "Success! Deleted key: cli/delcas\n"
    assert kv_entry(agent, "cli/delcas") is None

    p = agent.cli("kv", "delete", "-cas", "cli/delcas")
    assert p.returncode == 1
    assert "Provide a -modify-index greater than than 0" in err(p)
    p = agent.cli("kv", "delete", "-modify-index=5", "cli/delcas")
    assert p.returncode == 1
    assert "Cannot specify -modify-index without -cas!" in err(p)
    p = agent.cli("kv", "delete", "-cas", "-modify-index=5", "-recurse", "cli/delcas")
    assert p.returncode == 1
    assert "Cannot specify both -cas and -recurse!" in err(p)
    p = agent.cli("kv", "delete")
    assert p.returncode == 1
    assert "Error! Missing KEY argument" in err(p)


# ---- kv export / import -------------------------------------------------------------------------

def test_export_format(agent):
    agent.cli("kv", "put", "cli/exp/a", "alpha")
    agent.cli("kv", "put", "-flags=5", "cli/exp/b", "beta")
    agent.cli("kv", "put", "cli/exp/c")
    p = agent.cli("kv", "export", "cli/exp/")
    assert p.returncode == 0, err(p)
    b64 = lambda s: base64.b64encode(s).decode()  # noqa: E731
    expected = (
        "[\n"
        "\t{\n"
        "\t\t\"key\": \"cli/exp/a\",\n"
        "\t\t\"flags\": 0,\n"
        f"\t\t\"value\": \"{b64(b'alpha')}\"\n"
        "\t},\n"
        "\t{\n"
        "\t\t\"key\": \"cli/exp/b\",\n"
        "\t\t\"flags\": 5,\n"
        f"\t\t\"value\": \"{b64(b'beta')}\"\n"
        "\t},\n"
        "\t{\n"
        "\t\t\"key\": \"cli/exp/c\",\n"
        "\t\t\"flags\": 0,\n"
        "\t\t\"value\": \"\"\n"
        "\t}\n"
        "]\n"
    )
    assert out(p) == expected
    p = agent.cli("kv", "export", "cli/exp/nothing-here/")
    assert p.returncode == 0
    assert out(p) == "[]\n"


def test_export_everything(fresh_agent):
    fresh_agent.cli("kv", "put", "x", "1")
    fresh_agent.cli("kv", "put", "y/z", "2")
    p = fresh_agent.cli("kv", "export")
    assert p.returncode == 0
    assert [e["key"] for e in json.loads(out(p))] == ["x", "y/z"]


def test_import_roundtrip(agent, tmp_path):
    agent.cli("kv", "put", "cli/imp-src/a", "one")
    agent.cli("kv", "put", "-flags=9", "cli/imp-src/b/c", "two")
    exported = out(agent.cli("kv", "export", "cli/imp-src/"))

    # From stdin, under a prefix.
    p = agent.cli("kv", "import", "-prefix=cli/imp-dst", "-", input=exported.encode())
    assert p.returncode == 0, err(p)
    assert out(p) == "Imported: cli/imp-dst/cli/imp-src/a\nImported: cli/imp-dst/cli/imp-src/b/c\n"
    assert raw_value(kv_entry(agent, "cli/imp-dst/cli/imp-src/a")) == b"one"
    e = kv_entry(agent, "cli/imp-dst/cli/imp-src/b/c")
    assert raw_value(e) == b"two"
    assert e["Flags"] == 9

    # From a file.
    f = tmp_path / "export.json"
    f.write_text(json.dumps([{"key": "cli/imp-file/k", "flags": 0,
                              "value": base64.b64encode(b"filed").decode()}]))
    p = agent.cli("kv", "import", f"@{f}")
    assert p.returncode == 0
    assert out(p) == "Imported: cli/imp-file/k\n"
    assert raw_value(kv_entry(agent, "cli/imp-file/k")) == b"filed"

    # As the argument itself; a trailing slash (a "directory" key) is kept.
    data = json.dumps([{"key": "cli/imp-arg/dir/", "flags": 0, "value": ""}])
    p = agent.cli("kv", "import", "-prefix", "pre", data)
    assert p.returncode == 0
    assert out(p) == "Imported: pre/cli/imp-arg/dir/\n"
    assert kv_entry(agent, "pre/cli/imp-arg/dir/") is not None


def test_import_errors(agent):
    p = agent.cli("kv", "import")
    assert p.returncode == 1
    assert "Error! Missing DATA argument" in err(p)
    p = agent.cli("kv", "import", "not json")
    assert p.returncode == 1
    assert "Cannot unmarshal data" in err(p)
    p = agent.cli("kv", "import", json.dumps([{"key": "cli/bad", "flags": 0, "value": "!!"}]))
    assert p.returncode == 1
    assert "Error base 64 decoding value for key cli/bad" in err(p)


# ---- addresses, tokens, errors ------------------------------------------------------------------

def test_consul_http_addr_is_honoured(agent):
    agent.cli("kv", "put", "cli/env", "via env")
    env = dict(os.environ, CONSUL_HTTP_ADDR=agent.url)
    env.pop("LOTSE_HTTP_ADDR", None)
    p = subprocess.run([lotse_bin(), "kv", "get", "cli/env"], capture_output=True, env=env, timeout=30)
    assert p.returncode == 0, err(p)
    assert out(p) == "via env\n"
    # host:port without a scheme works as well.
    env["CONSUL_HTTP_ADDR"] = agent.addr
    p = subprocess.run([lotse_bin(), "kv", "get", "cli/env"], capture_output=True, env=env, timeout=30)
    assert out(p) == "via env\n"


def test_address_precedence(agent):
    agent.cli("kv", "put", "cli/prec", "ok")
    # LOTSE_HTTP_ADDR wins over CONSUL_HTTP_ADDR.
    env = dict(os.environ, LOTSE_HTTP_ADDR=agent.addr, CONSUL_HTTP_ADDR="127.0.0.1:1")
    p = subprocess.run([lotse_bin(), "kv", "get", "cli/prec"], capture_output=True, env=env, timeout=30)
    assert out(p) == "ok\n", err(p)
    # -http-addr wins over both.
    env = dict(os.environ, LOTSE_HTTP_ADDR="127.0.0.1:1", CONSUL_HTTP_ADDR="127.0.0.1:1")
    p = subprocess.run([lotse_bin(), "kv", "get", f"-http-addr=http://{agent.addr}", "cli/prec"],
                       capture_output=True, env=env, timeout=30)
    assert out(p) == "ok\n", err(p)


@pytest.mark.parametrize("args", [
    ["kv", "get", "x"], ["kv", "get", "-recurse", "x"], ["kv", "put", "x", "y"],
    ["kv", "delete", "x"], ["kv", "export"], ["members"], ["info"], ["lock", "p", "true"],
])
def test_unreachable_agent_is_an_error(args):
    env = dict(os.environ, LOTSE_HTTP_ADDR="127.0.0.1:1")
    p = subprocess.run([lotse_bin(), *args], capture_output=True, env=env, timeout=30)
    assert p.returncode == 1, (args, err(p))
    assert err(p).startswith("Error"), err(p)
    assert "127.0.0.1:1" in err(p)
    no_panic(p)


class _Recorder(BaseHTTPRequestHandler):
    """Records the requests the CLI sends (to check headers and query parameters)."""
    seen = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        _Recorder.seen.append((self.path, dict(self.headers)))
        body = json.dumps([{"Key": "k", "Value": base64.b64encode(b"v").decode(), "Flags": 0,
                            "CreateIndex": 1, "ModifyIndex": 1, "LockIndex": 0}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Consul-Index", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_token_datacenter_and_stale_on_the_wire():
    """What the CLI sends: X-Consul-Token from -token or the environment, dc= and stale."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{srv.server_address[1]}"
    try:
        env = dict(os.environ, LOTSE_HTTP_ADDR=addr)
        env.pop("CONSUL_HTTP_TOKEN", None)
        env.pop("LOTSE_HTTP_TOKEN", None)
        p = subprocess.run([lotse_bin(), "kv", "get", "-token=s3cret", "-datacenter=dc9", "-stale", "k"],
                           capture_output=True, env=env, timeout=30)
        assert p.returncode == 0, err(p)
        assert out(p) == "v\n"
        path, headers = _Recorder.seen[-1]
        assert path.startswith("/v1/kv/k?")
        assert "dc=dc9" in path and re.search(r"[?&]stale(=|&|$)", path), path
        assert {k.lower(): v for k, v in headers.items()}["x-consul-token"] == "s3cret"

        env["CONSUL_HTTP_TOKEN"] = "from-env"
        p = subprocess.run([lotse_bin(), "kv", "get", "k"], capture_output=True, env=env, timeout=30)
        assert p.returncode == 0
        path, headers = _Recorder.seen[-1]
        assert {k.lower(): v for k, v in headers.items()}["x-consul-token"] == "from-env"
        assert "stale" not in path and "dc=" not in path
    finally:
        srv.shutdown()


# ---- members and info ---------------------------------------------------------------------------

def test_members(agent):
    p = agent.cli("members")
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[0].split() == ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC",
                                "Partition", "Segment"]
    # Columns are aligned: every row's fields start where the header's do.
    starts = [lines[0].index(h) for h in ["Address", "Status", "Type"]]
    row = lines[1]
    for s in starts:
        assert row[s - 2:s] == "  " and row[s] != " ", (row, s)
    fields = row.split()
    assert fields[2] == "alive"
    assert fields[3] == "server"
    assert re.fullmatch(r"[\d.]+:\d+|\[[0-9a-f:]+\]:\d+", fields[1]), fields
    assert fields[6] == "dc1"
    assert fields[7] == "default"

    members = agent.get("/v1/agent/members").json()
    assert sorted(l.split()[0] for l in lines[1:]) == sorted(m["Name"] for m in members)


def test_members_detailed_and_status_filter(agent):
    p = agent.cli("members", "-detailed")
    assert p.returncode == 0
    lines = out(p).splitlines()
    assert lines[0].split() == ["Node", "Address", "Status", "Tags"]
    tags = lines[1].split()[3]
    keys = [kv.split("=", 1)[0] for kv in tags.split(",")]
    assert keys == sorted(keys)
    assert "role=consul" in tags.split(",")

    assert agent.cli("members", "-status=alive").returncode == 0
    assert agent.cli("members", "-status", "^(alive|left)$").returncode == 0
    p = agent.cli("members", "-status=failed")
    assert p.returncode == 2
    assert out(p) == ""
    p = agent.cli("members", "-status=(")
    assert p.returncode == 1
    assert "Failed to compile status regexp" in err(p)


def parse_info(text):
    sections, order = {}, []
    current = None
    for line in text.splitlines():
        if line.startswith("\t"):
            k, v = line[1:].split(" = ", 1)
            sections[current].append((k, v))
        else:
            assert line.endswith(":"), line
            current = line[:-1]
            order.append(current)
            sections[current] = []
    return order, sections


def test_info(agent):
    before = agent.get("/v1/agent/self").json()["Stats"]
    p = agent.cli("info")
    after = agent.get("/v1/agent/self").json()["Stats"]
    assert p.returncode == 0, err(p)
    order, sections = parse_info(out(p))
    # Sections and their keys are sorted, and match the API's Stats.
    assert order == sorted(after), (order, sorted(after))
    assert "agent" in order
    for name, pairs in sections.items():
        keys = [k for k, _ in pairs]
        assert keys == sorted(after[name]), (name, keys)
        for k, v in pairs:
            # Values that did not change around the CLI's request must be printed as they are.
            if before.get(name, {}).get(k) == after[name][k]:
                want = after[name][k]
                assert v == (want if isinstance(want, str) else json.dumps(want)), (name, k, v)


# ---- lock ---------------------------------------------------------------------------------------

def sessions(agent):
    r = agent.get("/v1/session/list")
    return r.json() if r.status_code == 200 else None


def test_lock_runs_child_and_cleans_up(agent):
    p = agent.cli("lock", "cli/lock/basic", "echo", "hello from child")
    assert p.returncode == 0, err(p)
    assert out(p) == "hello from child\n"
    # The lock key is removed again and the session destroyed.
    assert kv_entry(agent, "cli/lock/basic/.lock") is None
    s = sessions(agent)
    if s is not None:
        assert not [x for x in s if "cli/lock/basic" in x.get("Name", "")], s


def test_lock_child_environment_and_shell(agent):
    p = agent.cli("lock", "cli/lock/env", 'echo "$CONSUL_LOCK_HELD $((40+2))"')
    assert p.returncode == 0, err(p)
    assert out(p) == "true 42\n"
    # -shell=false: the arguments go to the program as they are.
    p = agent.cli("lock", "-shell=false", "cli/lock/env", "printf", "%s|", "a b", "$HOME")
    assert p.returncode == 0, err(p)
    assert out(p) == "a b|$HOME|"


def test_lock_pass_stdin(agent):
    p = agent.cli("lock", "-pass-stdin", "cli/lock/stdin", "cat", input=b"piped in")
    assert p.returncode == 0
    assert out(p) == "piped in"
    p = agent.cli("lock", "cli/lock/stdin", "cat", input=b"not passed")
    assert p.returncode == 0
    assert out(p) == ""


def test_lock_holds_key_while_child_runs(agent, tmp_path):
    marker = tmp_path / "running"
    proc = subprocess.Popen(
        [lotse_bin(), "lock", "-name=cli lock test", "cli/lock/held", f"touch {marker}; sleep 3"],
        env=cli_env(agent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(marker.exists, 15)
        e = kv_entry(agent, "cli/lock/held/.lock")
        assert e is not None
        assert e["Flags"] == LOCK_FLAG
        sid = e.get("Session")
        assert sid
        info = agent.get(f"/v1/session/info/{sid}")
        if info.status_code == 200 and info.json():
            s = info.json()[0]
            assert s["Name"] == "cli lock test"
            assert s.get("TTL") == "15s"
            assert s.get("Behavior", "release") == "release"
        # kv get -detailed shows the session holding it.
        p = agent.cli("kv", "get", "-detailed", "cli/lock/held/.lock")
        assert f"Session          {sid}\n" in out(p)
        assert f"Flags            {LOCK_FLAG}\n" in out(p)
    finally:
        assert proc.wait(timeout=30) == 0
    assert kv_entry(agent, "cli/lock/held/.lock") is None


def test_lock_excludes_a_second_holder(agent, tmp_path):
    log = tmp_path / "log"
    child = ("echo start-$ID $(date +%s.%N) >> {log}; sleep 2; echo end-$ID $(date +%s.%N) >> {log}"
             .format(log=log))
    first = subprocess.Popen([lotse_bin(), "lock", "cli/lock/mutex", child],
                             env=cli_env(agent, ID="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: log.exists() and "start-1" in log.read_text(), 15)
    second = subprocess.Popen([lotse_bin(), "lock", "cli/lock/mutex", child],
                              env=cli_env(agent, ID="2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert first.wait(timeout=30) == 0, first.stderr.read().decode()
    assert second.wait(timeout=60) == 0, second.stderr.read().decode()
    events = {}
    for line in log.read_text().splitlines():
        name, ts = line.split()
        events[name] = float(ts)
    assert set(events) == {"start-1", "end-1", "start-2", "end-2"}, events
    # The second child only started once the first had finished.
    assert events["start-2"] >= events["end-1"], events
    assert kv_entry(agent, "cli/lock/mutex/.lock") is None


def test_lock_child_exit_code(agent):
    p = agent.cli("lock", "cli/lock/exit", "exit 3")
    assert p.returncode == 0
    assert "Error running handler: exit status 3" in err(p)
    # consul lock -child-exit-code exits 2 when the child failed.
    p = agent.cli("lock", "-child-exit-code", "cli/lock/exit", "exit 3")
    assert p.returncode == 2
    p = agent.cli("lock", "-child-exit-code", "cli/lock/exit", "exit 0")
    assert p.returncode == 0
    assert kv_entry(agent, "cli/lock/exit/.lock") is None


def test_lock_timeout(agent, tmp_path):
    marker = tmp_path / "running"
    holder = subprocess.Popen([lotse_bin(), "lock", "cli/lock/timeout", f"touch {marker}; sleep 6"],
                              env=cli_env(agent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(marker.exists, 15)
        t0 = time.monotonic()
        p = agent.cli("lock", "-timeout=1s", "cli/lock/timeout", "echo should not run")
        elapsed = time.monotonic() - t0
        assert p.returncode == 1
        assert out(p) == ""
        assert "Shutdown triggered or timeout during lock acquisition" in err(p)
        assert elapsed < 5, elapsed
        # The deprecated -try means the same.
        p = agent.cli("lock", "-try", "500ms", "cli/lock/timeout", "echo should not run")
        assert p.returncode == 1
        assert out(p) == ""
    finally:
        assert holder.wait(timeout=30) == 0
    # Free again: a -timeout lock now gets it at once.
    p = agent.cli("lock", "-timeout=5s", "cli/lock/timeout", "echo got it")
    assert p.returncode == 0
    assert out(p) == "got it\n"


def test_lock_verbose(agent):
    p = agent.cli("lock", "-verbose", "cli/lock/verbose", "true")
    assert p.returncode == 0
    text = out(p)
    for line in ["Setting up lock at path: cli/lock/verbose/.lock", "Attempting lock acquisition",
                 "Starting handler", "Child terminated, releasing lock", "Cleanup succeeded"]:
        assert line in text, text


def test_lock_argument_errors(agent):
    p = agent.cli("lock", "cli/lock/args")
    assert p.returncode == 1
    assert "Key prefix and child command must be specified" in err(p)
    p = agent.cli("lock", "-n=0", "cli/lock/args", "true")
    assert p.returncode == 1
    assert "Lock holder limit must be positive" in err(p)
    p = agent.cli("lock", "-timeout=-1s", "cli/lock/args", "true")
    assert p.returncode == 1
    assert "Timeout must be positive" in err(p)
    p = agent.cli("lock", "-monitor-retry=-1", "cli/lock/args", "true")
    assert p.returncode == 1


SEMAPHORE_FLAG = 0xE0F69A2BAA414DE0


def intervals(log):
    ev = {}
    for line in log.read_text().splitlines():
        name, ts = line.split()
        ev[name] = float(ts)
    ids = sorted({n.split("-", 1)[1] for n in ev})
    return {i: (ev[f"start-{i}"], ev[f"end-{i}"]) for i in ids}


def test_lock_semaphore_allows_n_holders(agent, tmp_path):
    log = tmp_path / "log"
    child = ("echo start-$ID $(date +%s.%N) >> {log}; sleep 2; echo end-$ID $(date +%s.%N) >> {log}"
             .format(log=log))
    procs = []
    for i in range(3):
        procs.append(subprocess.Popen([lotse_bin(), "lock", "-n=2", "cli/lock/sem", child],
                                      env=cli_env(agent, ID=str(i)),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        if i == 0:
            assert wait_for(lambda: log.exists() and "start-0" in log.read_text(), 15)
    # While slots are taken, the coordination key is consul's semaphore JSON.
    assert wait_for(lambda: log.exists() and log.read_text().count("start-") >= 2, 15)
    e = kv_entry(agent, "cli/lock/sem/.lock")
    assert e["Flags"] == SEMAPHORE_FLAG
    lock = json.loads(raw_value(e))
    assert lock["Limit"] == 2
    assert len(lock["Holders"]) == 2 and all(v is True for v in lock["Holders"].values()), lock
    for sid in lock["Holders"]:
        contender = kv_entry(agent, f"cli/lock/sem/{sid}")
        assert contender and contender["Session"] == sid and contender["Flags"] == SEMAPHORE_FLAG

    # A contender with another limit is refused; so is a plain lock on the same prefix.
    p = agent.cli("lock", "-n=3", "cli/lock/sem", "echo no")
    assert p.returncode == 1
    assert "semaphore limit conflict (lock: 2, local: 3)" in err(p)
    p = agent.cli("lock", "cli/lock/sem", "echo no")
    assert p.returncode == 1
    assert "Existing key does not match lock use" in err(p)

    for pr in procs:
        assert pr.wait(timeout=60) == 0, pr.stderr.read().decode()
    iv = intervals(log)
    assert len(iv) == 3
    # Never more than two children at once; all three ran.
    for t in [start for start, _ in iv.values()]:
        running = [i for i, (s_, e_) in iv.items() if s_ <= t < e_]
        assert len(running) <= 2, iv
    starts = sorted(iv.values())
    assert starts[2][0] >= min(starts[0][1], starts[1][1]), iv
    # Everything is cleaned up afterwards.
    r = agent.get("/v1/kv/cli/lock/sem?recurse")
    assert r.status_code == 404 or r.json() == [], r.text


def test_lock_forwards_sigterm_and_releases(agent, tmp_path):
    log = tmp_path / "log"
    child = f"trap 'echo got-term >> {log}; kill $!; exit 0' TERM; echo ready >> {log}; sleep 30 & wait"
    proc = subprocess.Popen([lotse_bin(), "lock", "cli/lock/signal", child],
                            env=cli_env(agent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: log.exists() and "ready" in log.read_text(), 15)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    assert time.monotonic() - t0 < 10
    assert "got-term" in log.read_text()
    assert rc == 0, proc.stderr.read().decode()
    e = kv_entry(agent, "cli/lock/signal/.lock")
    assert e is None or not e.get("Session"), e


def test_lock_lost_kills_child(agent, tmp_path):
    log = tmp_path / "log"
    child = f"trap 'echo got-term >> {log}; kill $!; exit 0' TERM; echo ready >> {log}; sleep 60 & wait"
    proc = subprocess.Popen([lotse_bin(), "lock", "-verbose", "cli/lock/lost", child],
                            env=cli_env(agent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: log.exists() and "ready" in log.read_text(), 15)
        sid = kv_entry(agent, "cli/lock/lost/.lock")["Session"]
        # Someone destroys our session: the lock is gone, so the child must be stopped.
        assert agent.put(f"/v1/session/destroy/{sid}").status_code == 200
        rc = proc.wait(timeout=30)
        assert "got-term" in log.read_text()
        assert "Lock lost, killing child" in proc.stdout.read().decode()
        assert rc == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lock_signal_while_waiting_gives_up(agent, tmp_path):
    marker = tmp_path / "running"
    holder = subprocess.Popen([lotse_bin(), "lock", "cli/lock/waiting", f"touch {marker}; sleep 4"],
                              env=cli_env(agent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(marker.exists, 15)
        waiter = subprocess.Popen([lotse_bin(), "lock", "cli/lock/waiting", "echo must not run"],
                                  env=cli_env(agent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)
        assert waiter.poll() is None  # still waiting for the lock
        waiter.send_signal(signal.SIGINT)
        assert waiter.wait(timeout=10) == 1
        assert waiter.stdout.read() == b""
        assert "Shutdown triggered or timeout during lock acquisition" in waiter.stderr.read().decode()
    finally:
        assert holder.wait(timeout=30) == 0
    assert kv_entry(agent, "cli/lock/waiting/.lock") is None


def test_lock_kills_child_that_ignores_sigterm(agent, tmp_path):
    log = tmp_path / "log"
    # The child ignores SIGTERM: after consul's 5s grace period it gets SIGKILL.
    child = f"trap '' TERM; echo ready >> {log}; exec sleep 60"
    proc = subprocess.Popen([lotse_bin(), "lock", "cli/lock/stubborn", child],
                            env=cli_env(agent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: log.exists() and "ready" in log.read_text(), 15)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
        assert 4 <= elapsed < 15, elapsed
        assert rc == 0, proc.stderr.read().decode()
        e = kv_entry(agent, "cli/lock/stubborn/.lock")
        assert e is None or not e.get("Session"), e
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
