"""Consul's snapshot API and CLI: `GET`/`PUT /v1/snapshot`, `lotse snapshot save|restore|inspect`.

A snapshot is a gzip-compressed tar of meta.json, state.bin and SHA256SUMS (Consul's layout).
Restoring one replaces the whole store through Raft; a blocking query parked before the
restore wakes with an index at least the restore's; a corrupt archive is refused and changes
nothing; on a durable server the restored state survives a restart.
"""
import base64
import gzip
import io
import json
import tarfile
import threading
import time

import requests


def put_ok(agent, key, value):
    r = agent.put(f"/v1/kv/{key}", data=value)
    assert r.status_code == 200 and r.json() is True, f"{r.status_code} {r.text}"


def value(agent, key):
    r = agent.get(f"/v1/kv/{key}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    v = r.json()[0]["Value"]
    return None if v is None else base64.b64decode(v).decode()


def save(agent, **params):
    r = agent.get("/v1/snapshot", params=params, timeout=60)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.content, int(r.headers["X-Consul-Index"])


def restore(agent, archive):
    return agent.put("/v1/snapshot", data=archive, timeout=60)


def members(archive):
    """The archive's files, by name."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers()}


def rebuild(files):
    """An archive of exactly these files (no checksum fixing)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_save_is_consuls_archive_and_restore_brings_old_values_back(fresh_agent):
    a = fresh_agent
    put_ok(a, "snap/a", "one")
    put_ok(a, "snap/b", "two")
    archive, index = save(a)
    assert archive[:2] == b"\x1f\x8b", "gzip"
    files = members(archive)
    assert list(files) == ["meta.json", "state.bin", "SHA256SUMS"]
    meta = json.loads(files["meta.json"])
    assert meta["Index"] == index and meta["Index"] >= 2
    assert meta["Size"] == len(files["state.bin"])
    assert meta["Version"] == 1 and meta["LotseFormat"] == 1
    assert meta["ID"].startswith(f"{meta['Term']}-{meta['Index']}-")
    sums = files["SHA256SUMS"].decode()
    assert "  meta.json\n" in sums and "  state.bin\n" in sums

    put_ok(a, "snap/a", "changed")
    assert a.delete("/v1/kv/snap/b").json() is True
    put_ok(a, "snap/c", "new")
    before = int(a.get("/v1/kv/snap/a").headers["X-Consul-Index"])

    r = restore(a, archive)
    assert r.status_code == 200, r.text
    assert value(a, "snap/a") == "one"
    assert value(a, "snap/b") == "two"
    assert value(a, "snap/c") is None
    # Indexes never go backwards across a restore.
    after = int(a.get("/v1/kv/snap/a").headers["X-Consul-Index"])
    assert after > before
    # The store keeps working: a write after the restore lands and moves the index on.
    put_ok(a, "snap/d", "after")
    assert int(a.get("/v1/kv/snap/d").headers["X-Consul-Index"]) > after


def test_a_blocking_query_parked_before_the_restore_wakes(fresh_agent):
    a = fresh_agent
    put_ok(a, "watch/k", "saved")
    archive, _ = save(a)
    put_ok(a, "watch/k", "later")
    r = a.get("/v1/kv/watch/k")
    index = int(r.headers["X-Consul-Index"])
    answer = {}

    def watch():
        started = time.monotonic()
        w = a.get("/v1/kv/watch/k", params={"index": index, "wait": "30s"}, timeout=60)
        answer["elapsed"] = time.monotonic() - started
        answer["resp"] = w

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), "the query must be parked"
    assert restore(a, archive).status_code == 200
    t.join(timeout=20)
    assert not t.is_alive(), "the parked query did not wake"
    w = answer["resp"]
    assert answer["elapsed"] < 15
    assert w.status_code == 200
    assert base64.b64decode(w.json()[0]["Value"]) == b"saved"
    assert int(w.headers["X-Consul-Index"]) > index


def test_cli_save_inspect_restore(fresh_agent, tmp_path):
    a = fresh_agent
    put_ok(a, "cli/x", "1")
    put_ok(a, "cli/y/z", "2")
    path = tmp_path / "backup.snap"
    p = a.cli("snapshot", "save", str(path))
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith("Saved and verified snapshot to index "), out
    index = int(out.split()[-1])
    assert not (tmp_path / "backup.snap.part").exists()

    p = a.cli("snapshot", "inspect", str(path))
    assert p.returncode == 0, p.stderr
    text = p.stdout.decode()
    for field in ["ID", "Size", "Index", "Term", "Version"]:
        assert f" {field} " in text, text
    assert f" Index        {index}" in text, text
    assert " KVS " in text and " Total " in text, text

    p = a.cli("snapshot", "inspect", "-kvdetails", str(path))
    assert p.returncode == 0, p.stderr
    assert " Key Name " in p.stdout.decode() and " cli/y " in p.stdout.decode()

    p = a.cli("snapshot", "inspect", "-format", "json", str(path))
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["Meta"]["Index"] == index and j["Meta"]["Version"] == 1
    assert any(s["Name"] == "KVS" and s["Count"] >= 2 for s in j["Stats"])

    put_ok(a, "cli/x", "changed")
    p = a.cli("snapshot", "restore", str(path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == "Restored snapshot"
    assert value(a, "cli/x") == "1"

    # Consul's argument errors and a missing file: exit code 1.
    assert a.cli("snapshot", "save").returncode == 1
    assert a.cli("snapshot", "inspect", str(tmp_path / "missing.snap")).returncode == 1
    assert a.cli("snapshot", "restore", str(tmp_path / "missing.snap")).returncode == 1


def test_corrupt_or_foreign_archives_are_refused_and_change_nothing(fresh_agent, tmp_path):
    a = fresh_agent
    put_ok(a, "keep/k", "saved")
    archive, _ = save(a)
    put_ok(a, "keep/k", "current")
    files = members(archive)

    state = bytearray(files["state.bin"])
    state[len(state) // 2] ^= 0xFF
    tampered = rebuild({**files, "state.bin": bytes(state)})
    r = restore(a, tampered)
    assert r.status_code == 500
    assert "failed checking integrity of snapshot" in r.text and "state.bin" in r.text

    consul_meta = b'{"Version":1,"ID":"2-5-1","Index":5,"Term":2,"Size":1}\n'
    import hashlib
    sums = (f"{hashlib.sha256(consul_meta).hexdigest()}  meta.json\n"
            f"{hashlib.sha256(b'x').hexdigest()}  state.bin\n").encode()
    foreign = rebuild({"meta.json": consul_meta, "state.bin": b"x", "SHA256SUMS": sums})
    r = restore(a, foreign)
    assert r.status_code == 500 and "snapshot metadata" in r.text, r.text

    r = restore(a, b"this is not a snapshot")
    assert r.status_code == 500 and "failed reading snapshot" in r.text, r.text

    r = restore(a, gzip.compress(b"\0" * 2048))
    assert r.status_code == 500, r.text

    assert value(a, "keep/k") == "current", "a refused restore changed nothing"

    bad = tmp_path / "bad.snap"
    bad.write_bytes(tampered)
    p = a.cli("snapshot", "restore", str(bad))
    assert p.returncode == 1
    assert b"hash check failed" in p.stderr
    p = a.cli("snapshot", "inspect", str(bad))
    assert p.returncode == 1
    assert value(a, "keep/k") == "current"


def test_sessions_restored_keep_working(fresh_agent):
    a = fresh_agent
    sid = a.put("/v1/session/create", json={"TTL": "30s", "LockDelay": "0s"}).json()["ID"]
    assert a.put("/v1/kv/lock/k", params={"acquire": sid}, data="held").json() is True
    archive, _ = save(a)
    assert a.put(f"/v1/session/destroy/{sid}").json() is True
    assert a.get("/v1/kv/lock/k").json()[0].get("Session") is None

    assert restore(a, archive).status_code == 200
    assert a.get("/v1/kv/lock/k").json()[0].get("Session") == sid
    r = a.put(f"/v1/session/renew/{sid}")
    assert r.status_code == 200 and r.json()[0]["ID"] == sid
    assert a.put(f"/v1/kv/lock/k", params={"release": sid}, data="free").json() is True
    assert a.get("/v1/kv/lock/k").json()[0].get("Session") is None


def test_restore_on_a_durable_server_survives_a_restart(server_factory):
    a = server_factory()
    put_ok(a, "dur/k", "saved")
    archive, _ = save(a)
    put_ok(a, "dur/k", "overwritten")
    put_ok(a, "dur/extra", "gone after restore")
    assert restore(a, archive).status_code == 200
    index = int(a.get("/v1/kv/dur/k").headers["X-Consul-Index"])
    a.restart()
    assert value(a, "dur/k") == "saved"
    assert value(a, "dur/extra") is None
    assert int(a.get("/v1/kv/dur/k").headers["X-Consul-Index"]) >= index
    put_ok(a, "dur/k", "after restart")
    assert value(a, "dur/k") == "after restart"


def test_method_and_body_limits(fresh_agent):
    a = fresh_agent
    r = a.delete("/v1/snapshot")
    assert r.status_code == 405
    assert set(r.headers["Allow"].split(",")) == {"OPTIONS", "GET", "PUT"}
    # A declared body above 512 MiB is refused before it is read.
    r = requests.put(a.url + "/v1/snapshot", data=b"",
                     headers={"Content-Length": str((512 << 20) + 1)}, timeout=10)
    assert r.status_code == 413 and "too large" in r.text
    archive, _ = save(a, stale="")
    assert members(archive)


def test_a_cluster_saves_on_a_follower_and_restores_on_every_replica():
    from cluster import Cluster, wait_for

    c = Cluster(3)
    try:
        lead = c.wait_leader()
        follower = c.followers()[0]
        other = [n for n in c.nodes if n is not lead and n is not follower][0]
        put_ok(lead, "cl/k", "saved")
        # A follower's default save first catches up with the leader (read index).
        archive, index = save(follower)
        assert json.loads(members(archive)["meta.json"])["Index"] == index
        put_ok(lead, "cl/k", "later")
        put_ok(lead, "cl/extra", "x")
        parked = int(other.get("/v1/kv/cl/k").headers["X-Consul-Index"])
        answer = {}

        def watch():
            answer["resp"] = other.get("/v1/kv/cl/k", params={"index": parked, "wait": "30s"},
                                       timeout=60)

        t = threading.Thread(target=watch)
        t.start()
        time.sleep(0.5)
        # Restored through a follower: forwarded to the leader, applied by every replica.
        r = restore(follower, archive)
        assert r.status_code == 200, r.text
        for n in c.nodes:
            wait_for(f"{n.url} restored", lambda n=n: n.get(
                "/v1/kv/cl/k", params={"stale": "", "raw": ""}).text == "saved")
            assert n.get("/v1/kv/cl/extra", params={"stale": ""}).status_code == 404
        t.join(timeout=20)
        assert not t.is_alive(), "the query parked on a follower did not wake"
        assert int(answer["resp"].headers["X-Consul-Index"]) > parked
        put_ok(follower, "cl/k", "after")
        assert value(lead, "cl/k") == "after"
    finally:
        c.cleanup()
