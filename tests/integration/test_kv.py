"""KV store HTTP API (`/v1/kv/<key>`), asserted against Consul's behaviour.

References (Consul source, read not copied):
  * agent/kvs_endpoint.go   - KVSEndpoint / KVSGet / KVSGetKeys / KVSPut / KVSDelete / conflictingFlags
  * agent/http.go           - wrap() (error -> status mapping), parseWait, parseConsistency, setMeta,
                              setIndex (never 0), setACLDefaultPolicy, marshalJSON
  * agent/consul/state/kvs.go - CAS / delete-CAS semantics, CreateIndex / ModifyIndex, no-op writes,
                              tombstones feeding the prefix index
  * agent/structs/structs.go - DirEntry JSON shape (Session `json:",omitempty"`)
  * developer.hashicorp.com/consul/api-docs/kv
"""
import base64
import uuid
from urllib.parse import quote

import pytest

KV_MAX_VALUE_SIZE = 512 * 1024  # Consul's kv_max_value_size default (raft suggested max size)
ENTRY_KEYS = ["LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"]


# ----------------------------------------------------------------------------- helpers

def uniq(tag="kv"):
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def kv_path(key, query=""):
    path = "/v1/kv/" + quote(key, safe="/")
    return path + ("?" + query if query else "")


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def index_of(resp):
    return int(resp.headers["X-Consul-Index"])


def put_ok(agent, key, value=b"", query=""):
    r = agent.put(kv_path(key, query), data=value)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json() is True, r.text
    return r


def get_entry(agent, key, query=""):
    r = agent.get(kv_path(key, query))
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body, list) and len(body) == 1, body
    return body[0]


def assert_missing(agent, key):
    r = agent.get(kv_path(key))
    assert r.status_code == 404, (key, r.status_code, r.text)


# ----------------------------------------------------------------------------- PUT / GET basics

def test_put_returns_json_true(agent):
    r = agent.put(kv_path(uniq()), data=b"hello")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() is True


def test_get_returns_entry_list_with_consul_shape(agent):
    key = uniq("shape")
    put_ok(agent, key, b"hello world")
    r = agent.get(kv_path(key))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    entry = body[0]
    # DirEntry field order as Go marshals it; no Session key when the entry is unlocked.
    assert list(entry.keys()) == ENTRY_KEYS
    assert "Session" not in entry
    assert entry["Key"] == key
    assert entry["LockIndex"] == 0
    assert entry["Flags"] == 0
    assert entry["Value"] == b64("hello world")
    assert isinstance(entry["CreateIndex"], int) and entry["CreateIndex"] > 0
    assert entry["CreateIndex"] == entry["ModifyIndex"]


def test_value_round_trips_binary_bytes(agent):
    key = uniq("bin")
    value = bytes(range(256)) * 3
    put_ok(agent, key, value)
    entry = get_entry(agent, key)
    assert base64.b64decode(entry["Value"]) == value


def test_raw_returns_value_bytes_with_safe_headers(agent):
    key = uniq("raw")
    value = b"<script>alert(1)</script>\x00\xff\xfe"
    put_ok(agent, key, value)
    # identity: Consul gzips responses for clients that accept it, which drops Content-Length.
    r = agent.get(kv_path(key, "raw"), headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.content == value
    # KVSGet raw mode: explicit Content-Type, nosniff and CSP sandbox (XSS protection).
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"] == "sandbox"
    assert int(r.headers["Content-Length"]) == len(value)
    assert index_of(r) > 0


def test_raw_missing_key_is_404(agent):
    r = agent.get(kv_path(uniq("rawmissing"), "raw"))
    assert r.status_code == 404
    assert index_of(r) > 0


def test_missing_key_is_404_with_index_and_empty_body(agent):
    put_ok(agent, uniq("something"), b"x")  # make sure the store is not empty
    r = agent.get(kv_path(uniq("missing")))
    assert r.status_code == 404
    assert r.content == b""
    assert index_of(r) > 0
    assert r.headers["X-Consul-KnownLeader"] == "true"


def test_empty_body_stores_null_value(agent):
    key = uniq("empty")
    put_ok(agent, key, b"")
    entry = get_entry(agent, key)
    assert entry["Value"] is None
    r = agent.get(kv_path(key, "raw"))
    assert r.status_code == 200
    assert r.content == b""


def test_overwrite_replaces_value(agent):
    key = uniq("over")
    put_ok(agent, key, b"one")
    put_ok(agent, key, b"two")
    assert base64.b64decode(get_entry(agent, key)["Value"]) == b"two"


# ----------------------------------------------------------------------------- special keys

@pytest.mark.parametrize("suffix", [
    "a/b/c/d",
    "with space/and more spaces",
    "ünïcødé/ключ/キー/🔑",
    "plus+sign/percent%25/hash#/question?/amp&eq=",
    "trailing/",
    "dots.in.name/under_score-dash,comma",
])
def test_keys_with_slashes_unicode_spaces_and_escapes(agent, suffix):
    key = uniq("special") + "/" + suffix
    value = ("value of " + key).encode()
    put_ok(agent, key, value)
    entry = get_entry(agent, key)
    assert entry["Key"] == key
    assert base64.b64decode(entry["Value"]) == value
    r = agent.get(kv_path(key, "raw"))
    assert r.status_code == 200 and r.content == value
    # The key is listed verbatim (decoded) by ?keys on its parent prefix.
    prefix = key.split("/")[0] + "/"
    r = agent.get(kv_path(prefix, "keys"))
    assert r.status_code == 200
    assert r.json() == [key]
    r = agent.delete(kv_path(key))
    assert r.status_code == 200 and r.json() is True
    assert_missing(agent, key)


def test_missing_key_name_is_400(agent):
    # GET/PUT/DELETE on /v1/kv/ without recurse: HTTPError{400, "Missing key name"}.
    r = agent.get("/v1/kv/")
    assert r.status_code == 400
    assert r.text == "Missing key name"
    r = agent.put("/v1/kv/", data=b"x")
    assert r.status_code == 400
    assert r.text == "Missing key name"
    r = agent.delete("/v1/kv/")
    assert r.status_code == 400
    assert r.text == "Missing key name"


# ----------------------------------------------------------------------------- ?keys / ?recurse

@pytest.fixture(scope="module")
def tree(agent):
    """A small tree under a unique root:  a, b/c, b/d, b/e/f, bz, e."""
    root = uniq("tree") + "/"
    keys = ["a", "b/c", "b/d", "b/e/f", "bz", "e"]
    for k in keys:
        put_ok(agent, root + k, ("v-" + k).encode())
    return root, [root + k for k in keys]


def test_keys_lists_all_keys_under_prefix(agent, tree):
    root, keys = tree
    r = agent.get(kv_path(root, "keys"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == sorted(keys)
    assert index_of(r) > 0


def test_keys_with_separator_rolls_up_to_first_separator(agent, tree):
    root, _ = tree
    r = agent.get(kv_path(root, "keys&separator=/"))
    assert r.status_code == 200
    assert r.json() == [root + "a", root + "b/", root + "bz", root + "e"]
    # Prefix without a trailing slash: the rest of the key is cut at its first separator.
    r = agent.get(kv_path(root + "b", "keys&separator=/"))
    assert r.status_code == 200
    assert r.json() == [root + "b/", root + "bz"]
    r = agent.get(kv_path(root + "b/", "keys&separator=/"))
    assert r.status_code == 200
    assert r.json() == [root + "b/c", root + "b/d", root + "b/e/"]


def test_keys_accepts_historic_seperator_spelling(agent, tree):
    # KVSGetKeys checks both "seperator" (historic typo) and "separator".
    root, _ = tree
    r = agent.get(kv_path(root, "keys&seperator=/"))
    assert r.status_code == 200
    assert r.json() == [root + "a", root + "b/", root + "bz", root + "e"]


def test_keys_with_multi_character_separator(agent):
    root = uniq("msep")
    for k in ["::a::b", "::a::c", "::d", "::e::"]:
        put_ok(agent, root + k, b"v")
    r = agent.get(kv_path(root, "keys&separator=::"))
    assert r.status_code == 200
    assert r.json() == [root + "::"]
    r = agent.get(kv_path(root + "::", "keys&separator=::"))
    assert r.json() == [root + "::a::", root + "::d", root + "::e::"]


def test_keys_takes_precedence_over_recurse_and_raw_is_ignored_for_recurse(agent, tree):
    root, keys = tree
    r = agent.get(kv_path(root, "keys&recurse"))
    assert r.status_code == 200
    assert r.json() == sorted(keys)
    r = agent.get(kv_path(root, "recurse&raw"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert [e["Key"] for e in r.json()] == sorted(keys)


def test_keys_missing_prefix_is_404_with_index(agent):
    r = agent.get(kv_path(uniq("nokeys") + "/", "keys"))
    assert r.status_code == 404
    assert r.content == b""
    assert index_of(r) > 0


def test_keys_on_empty_root_is_empty_list(fresh_agent):
    # "We do not generate not found for the root, but just provide the empty list".
    r = fresh_agent.get("/v1/kv/?keys")
    assert r.status_code == 200
    assert r.json() == []
    assert index_of(r) >= 1


def test_recurse_returns_all_entries_sorted(agent, tree):
    root, keys = tree
    r = agent.get(kv_path(root, "recurse"))
    assert r.status_code == 200
    entries = r.json()
    assert [e["Key"] for e in entries] == sorted(keys)
    for e in entries:
        assert list(e.keys()) == ENTRY_KEYS
        assert base64.b64decode(e["Value"]) == ("v-" + e["Key"][len(root):]).encode()


def test_recurse_is_a_plain_string_prefix(agent, tree):
    root, _ = tree
    # "b" matches b/c, b/d, b/e/f and bz (no implicit directory semantics).
    r = agent.get(kv_path(root + "b", "recurse"))
    assert r.status_code == 200
    assert [e["Key"] for e in r.json()] == [root + "b/c", root + "b/d", root + "b/e/f", root + "bz"]


def test_recurse_index_is_max_modify_index_of_prefix(agent, tree):
    root, _ = tree
    r = agent.get(kv_path(root, "recurse"))
    assert r.status_code == 200
    assert index_of(r) == max(e["ModifyIndex"] for e in r.json())


def test_recurse_missing_prefix_is_404_with_index(agent):
    r = agent.get(kv_path(uniq("norecurse") + "/", "recurse"))
    assert r.status_code == 404
    assert index_of(r) > 0


def test_recurse_on_root_lists_everything(agent, tree):
    _, keys = tree
    r = agent.get("/v1/kv/?recurse")
    assert r.status_code == 200
    listed = [e["Key"] for e in r.json()]
    assert listed == sorted(listed)
    assert set(keys) <= set(listed)


def test_prefix_index_accounts_for_deleted_keys(agent):
    # Consul keeps tombstones so a prefix's index never slides back after a delete.
    root = uniq("tomb") + "/"
    put_ok(agent, root + "keep", b"1")
    put_ok(agent, root + "gone", b"2")
    r = agent.delete(kv_path(root + "gone"))
    assert r.status_code == 200
    r = agent.get(kv_path(root, "recurse"))
    assert r.status_code == 200
    entries = r.json()
    assert [e["Key"] for e in entries] == [root + "keep"]
    assert index_of(r) > entries[0]["ModifyIndex"]


# ----------------------------------------------------------------------------- flags

def test_flags_are_stored_and_returned(agent):
    key = uniq("flags")
    put_ok(agent, key, b"v", "flags=42")
    assert get_entry(agent, key)["Flags"] == 42


def test_flags_full_uint64_range(agent):
    key = uniq("flagsmax")
    put_ok(agent, key, b"v", f"flags={2**64 - 1}")
    assert get_entry(agent, key)["Flags"] == 2**64 - 1


def test_put_without_flags_resets_flags_to_zero(agent):
    # KVSPut always builds the entry with Flags: 0 unless ?flags is given.
    key = uniq("flagsreset")
    put_ok(agent, key, b"v1", "flags=7")
    put_ok(agent, key, b"v2")
    assert get_entry(agent, key)["Flags"] == 0


BAD_NUMBERS = ["abc", "-1", str(2**64), "1.5", ""]


def test_bad_flags_or_cas_number_is_rejected_without_writing(agent):
    for param in ["flags", "cas"]:
        for bad in BAD_NUMBERS:
            key = uniq("badnum")
            r = agent.put(kv_path(key, f"{param}={bad}"), data=b"v")
            assert r.status_code >= 400, (param, bad, r.status_code, r.text)
            assert_missing(agent, key)


def test_bad_flags_or_cas_number_status_is_consuls(agent):
    # KVSPut returns the strconv.ParseUint error as-is ("return nil, err"); wrap()'s handleErr maps
    # errors that are not HTTPError/MethodNotAllowed/ACL/rate-limit to 500 with the error text, e.g.
    # `strconv.ParseUint: parsing "abc": invalid syntax` (agent/kvs_endpoint.go, agent/http.go).
    got, want = {}, {}
    for param in ["flags", "cas"]:
        for bad in BAD_NUMBERS:
            r = agent.put(kv_path(uniq("badnum"), f"{param}={bad}"), data=b"v")
            got[f"{param}={bad}"] = (r.status_code, r.text)
            reason = "value out of range" if bad == str(2**64) else "invalid syntax"
            want[f"{param}={bad}"] = (500, f'strconv.ParseUint: parsing "{bad}": {reason}')
    assert got == want


def test_bad_cas_on_delete_is_rejected(agent):
    key = uniq("baddelcas")
    put_ok(agent, key, b"v")
    r = agent.delete(kv_path(key, "cas=xyz"))
    assert r.status_code >= 400
    get_entry(agent, key)  # still there
    # Same Consul mapping as for PUT: the ParseUint error surfaces as a 500.
    assert (r.status_code, r.text) == (500, 'strconv.ParseUint: parsing "xyz": invalid syntax')


def test_bad_index_is_400(agent):
    key = uniq("badidx")
    put_ok(agent, key, b"v")
    for bad in ["abc", "-1", "1.5"]:
        r = agent.get(kv_path(key, f"index={bad}"))
        assert r.status_code == 400, bad
        assert r.text == "Invalid index"


# ----------------------------------------------------------------------------- CAS

def test_cas_zero_creates_only_if_absent(agent):
    key = uniq("cas0")
    r = agent.put(kv_path(key, "cas=0"), data=b"first")
    assert r.status_code == 200 and r.json() is True
    r = agent.put(kv_path(key, "cas=0"), data=b"second")
    assert r.status_code == 200 and r.json() is False
    assert base64.b64decode(get_entry(agent, key)["Value"]) == b"first"


def test_cas_with_modify_index(agent):
    key = uniq("casn")
    put_ok(agent, key, b"v1")
    e1 = get_entry(agent, key)
    r = agent.put(kv_path(key, f"cas={e1['ModifyIndex'] + 1000}"), data=b"wrong")
    assert r.status_code == 200 and r.json() is False
    e = get_entry(agent, key)
    assert base64.b64decode(e["Value"]) == b"v1"
    assert e["ModifyIndex"] == e1["ModifyIndex"]
    r = agent.put(kv_path(key, f"cas={e1['ModifyIndex']}"), data=b"v2")
    assert r.status_code == 200 and r.json() is True
    e2 = get_entry(agent, key)
    assert base64.b64decode(e2["Value"]) == b"v2"
    assert e2["ModifyIndex"] > e1["ModifyIndex"]
    assert e2["CreateIndex"] == e1["CreateIndex"]
    # The old index is now stale.
    r = agent.put(kv_path(key, f"cas={e1['ModifyIndex']}"), data=b"v3")
    assert r.status_code == 200 and r.json() is False
    assert base64.b64decode(get_entry(agent, key)["Value"]) == b"v2"


def test_cas_nonzero_on_missing_key_fails(agent):
    key = uniq("casmissing")
    r = agent.put(kv_path(key, "cas=5"), data=b"v")
    assert r.status_code == 200 and r.json() is False
    assert_missing(agent, key)


def test_put_conflicting_flags_is_400(agent):
    key = uniq("conflict")
    r = agent.put(kv_path(key, "cas=0&acquire=" + str(uuid.uuid4())), data=b"v")
    assert r.status_code == 400
    assert r.text.startswith("Conflicting flags: ")
    assert_missing(agent, key)


# ----------------------------------------------------------------------------- DELETE

def test_delete_key(agent):
    key = uniq("del")
    put_ok(agent, key, b"v")
    r = agent.delete(kv_path(key))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() is True
    assert_missing(agent, key)
    # Deleting a missing key is not an error.
    r = agent.delete(kv_path(key))
    assert r.status_code == 200 and r.json() is True


def test_delete_only_removes_exact_key(agent):
    root = uniq("delexact")
    put_ok(agent, root, b"1")
    put_ok(agent, root + "/child", b"2")
    put_ok(agent, root + "x", b"3")
    assert agent.delete(kv_path(root)).json() is True
    assert_missing(agent, root)
    get_entry(agent, root + "/child")
    get_entry(agent, root + "x")


def test_delete_recurse_removes_prefix_tree_only(agent):
    root = uniq("deltree")
    other = uniq("deltree-other")
    for k in [root + "/a", root + "/b/c", root + "z"]:
        put_ok(agent, k, b"v")
    put_ok(agent, other, b"keep")
    r = agent.delete(kv_path(root + "/", "recurse"))
    assert r.status_code == 200 and r.json() is True
    assert_missing(agent, root + "/a")
    assert_missing(agent, root + "/b/c")
    get_entry(agent, root + "z")  # "<root>z" does not start with "<root>/"
    get_entry(agent, other)
    r = agent.get(kv_path(root + "/", "recurse"))
    assert r.status_code == 404


def test_delete_cas(agent):
    key = uniq("delcas")
    put_ok(agent, key, b"v")
    e = get_entry(agent, key)
    r = agent.delete(kv_path(key, f"cas={e['ModifyIndex'] + 1}"))
    assert r.status_code == 200 and r.json() is False
    get_entry(agent, key)
    r = agent.delete(kv_path(key, f"cas={e['ModifyIndex']}"))
    assert r.status_code == 200 and r.json() is True
    assert_missing(agent, key)


def test_delete_cas_on_missing_key_succeeds(agent):
    # kvsDeleteCASTxn: with no existing entry it reports success ("return entry == nil").
    key = uniq("delcasmissing")
    r = agent.delete(kv_path(key, "cas=12345"))
    assert r.status_code == 200 and r.json() is True
    assert_missing(agent, key)


def test_delete_conflicting_recurse_and_cas_is_400(agent):
    key = uniq("delconflict")
    put_ok(agent, key, b"v")
    r = agent.delete(kv_path(key, "recurse&cas=1"))
    assert r.status_code == 400
    assert r.text.startswith("Conflicting flags: ")
    get_entry(agent, key)


# ----------------------------------------------------------------------------- indexes

def test_create_index_stays_modify_index_grows(agent):
    key = uniq("idx")
    put_ok(agent, key, b"v1")
    e1 = get_entry(agent, key)
    assert e1["CreateIndex"] == e1["ModifyIndex"] > 0
    put_ok(agent, key, b"v2")
    e2 = get_entry(agent, key)
    assert e2["CreateIndex"] == e1["CreateIndex"]
    assert e2["ModifyIndex"] > e1["ModifyIndex"]
    put_ok(agent, key, b"v3", "flags=9")
    e3 = get_entry(agent, key)
    assert e3["CreateIndex"] == e1["CreateIndex"]
    assert e3["ModifyIndex"] > e2["ModifyIndex"]


def test_recreated_key_gets_new_create_index(agent):
    key = uniq("recreate")
    put_ok(agent, key, b"v1")
    e1 = get_entry(agent, key)
    agent.delete(kv_path(key))
    put_ok(agent, key, b"v2")
    e2 = get_entry(agent, key)
    assert e2["CreateIndex"] > e1["CreateIndex"]
    assert e2["CreateIndex"] == e2["ModifyIndex"]


def test_rewriting_identical_entry_keeps_modify_index(agent):
    # kvsSetTxn: "Skip further writing in the state store if the entry is not actually changed".
    key = uniq("same")
    put_ok(agent, key, b"same", "flags=3")
    e1 = get_entry(agent, key)
    put_ok(agent, key, b"same", "flags=3")
    e2 = get_entry(agent, key)
    assert e2["ModifyIndex"] == e1["ModifyIndex"]


def test_get_index_header_is_at_least_modify_index(agent):
    key = uniq("hdridx")
    put_ok(agent, key, b"v")
    r = agent.get(kv_path(key))
    assert index_of(r) >= r.json()[0]["ModifyIndex"] > 0


def test_index_header_never_zero_on_empty_store(fresh_agent):
    # setIndex: "If we ever return X-Consul-Index of 0 blocking clients will go into a busy loop".
    for path in ["/v1/kv/nothing", "/v1/kv/nothing?raw", "/v1/kv/?recurse", "/v1/kv/nothing/?keys",
                 "/v1/kv/?keys", "/v1/kv/nothing?recurse"]:
        r = fresh_agent.get(path)
        assert r.status_code in (200, 404), path
        assert int(r.headers["X-Consul-Index"]) >= 1, path


# ----------------------------------------------------------------------------- size limit

def test_value_at_limit_is_accepted(agent):
    key = uniq("atlimit")
    value = b"a" * KV_MAX_VALUE_SIZE
    put_ok(agent, key, value)
    r = agent.get(kv_path(key, "raw"))
    assert r.status_code == 200
    assert r.content == value


def test_value_over_limit_is_413_and_old_value_kept(agent):
    key = uniq("toolarge")
    put_ok(agent, key, b"old")
    before = get_entry(agent, key)
    r = agent.put(kv_path(key), data=b"x" * (KV_MAX_VALUE_SIZE + 1))
    assert r.status_code == 413
    assert "too large" in r.text
    assert str(KV_MAX_VALUE_SIZE) in r.text
    after = get_entry(agent, key)
    assert base64.b64decode(after["Value"]) == b"old"
    assert after["ModifyIndex"] == before["ModifyIndex"]


def test_value_over_limit_on_new_key_is_not_created(agent):
    key = uniq("toolarge-new")
    r = agent.put(kv_path(key), data=b"x" * (2 * KV_MAX_VALUE_SIZE))
    assert r.status_code == 413
    assert_missing(agent, key)


# ----------------------------------------------------------------------------- consistency / dc

def test_stale_and_consistent_together_is_400(agent):
    key = uniq("stalecons")
    put_ok(agent, key, b"v")
    r = agent.get(kv_path(key, "stale&consistent"))
    assert r.status_code == 400
    assert r.text == "Cannot specify ?stale with ?consistent, conflicting semantics."


@pytest.mark.parametrize("query,mode", [("", "leader"), ("consistent", "consistent"),
                                        ("stale", "stale"), ("leader", "leader")])
def test_consistency_headers(agent, query, mode):
    key = uniq("cons")
    put_ok(agent, key, b"v")
    r = agent.get(kv_path(key, query))
    assert r.status_code == 200
    assert r.headers["X-Consul-Effective-Consistency"] == mode
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.headers["X-Consul-LastContact"] == "0"  # served by the leader itself
    assert r.headers["X-Consul-Default-ACL-Policy"] == "allow"
    assert index_of(r) > 0


def test_meta_headers_on_404_keys_and_recurse(agent, tree):
    root, _ = tree
    for path in [kv_path(uniq("nothere")), kv_path(root, "keys"), kv_path(root, "recurse")]:
        r = agent.get(path)
        assert r.headers["X-Consul-KnownLeader"] == "true", path
        assert r.headers["X-Consul-LastContact"].isdigit(), path
        assert r.headers["X-Consul-Effective-Consistency"] == "leader", path
        assert r.headers["X-Consul-Default-ACL-Policy"] == "allow", path
        assert index_of(r) > 0, path


def test_default_acl_policy_header_on_writes(agent):
    key = uniq("aclhdr")
    r = agent.put(kv_path(key), data=b"v")
    assert r.headers["X-Consul-Default-ACL-Policy"] == "allow"
    r = agent.delete(kv_path(key))
    assert r.headers["X-Consul-Default-ACL-Policy"] == "allow"


def test_unknown_datacenter_is_500_no_path(agent):
    key = uniq("dc")
    put_ok(agent, key, b"v")
    r = agent.get(kv_path(key, "dc=nope"))
    assert r.status_code == 500
    assert r.text == "No path to datacenter"
    r = agent.put(kv_path(key, "dc=nope"), data=b"changed")
    assert r.status_code == 500
    assert r.text == "No path to datacenter"
    r = agent.delete(kv_path(key, "dc=nope"))
    assert r.status_code == 500
    assert base64.b64decode(get_entry(agent, key)["Value"]) == b"v"


def test_local_datacenter_is_accepted(agent):
    key = uniq("dclocal")
    put_ok(agent, key, b"v", "dc=dc1")
    assert base64.b64decode(get_entry(agent, key, "dc=dc1")["Value"]) == b"v"
