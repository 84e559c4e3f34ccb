//! Single-key KV commands: set, CAS, lock, unlock, delete, delete-cas, delete-tree, reads.

use super::*;

#[test]
fn set_creates_then_updates_with_indexes() {
    let mut h = H::new();
    assert_eq!(h.out(set("a", "1")), Outcome::Bool(true));
    let e = h.get("a");
    assert_eq!((e.create_index, e.modify_index, e.lock_index), (1, 1, 0));
    assert_eq!(e.value, b"1");
    assert_eq!(e.session, None);

    h.ok(Command::KvSet(KvWrite {
        flags: 42,
        ..write("a", "2")
    }));
    let e = h.get("a");
    assert_eq!((e.create_index, e.modify_index), (1, 2));
    assert_eq!((e.value.as_slice(), e.flags), (&b"2"[..], 42));
}

#[test]
fn set_keeps_lock_holder_and_lock_index() {
    let mut h = H::with_sessions();
    h.ok(lock("a", "locked", "s1"));
    let locked = h.get("a");
    assert_eq!(
        (locked.session.as_deref(), locked.lock_index),
        (Some("s1"), 1)
    );

    h.ok(set("a", "stolen"));
    let e = h.get("a");
    assert_eq!(e.value, b"stolen");
    assert_eq!(e.session.as_deref(), Some("s1"));
    assert_eq!(e.lock_index, 1);
    assert_eq!(e.create_index, locked.create_index);
    assert_eq!(e.modify_index, h.idx());
    // Still really held: s2 cannot take it, and s1's destroy releases it.
    assert_eq!(h.out(lock("a", "x", "s2")), Outcome::Bool(false));
    h.ok(destroy("s1", 0));
    assert_eq!(h.get("a").session, None);
}

#[test]
fn cas_zero_creates_only_if_absent() {
    let mut h = H::new();
    assert_eq!(h.out(cas("a", "1", 0)), Outcome::Bool(true));
    assert_eq!(h.get("a").value, b"1");
    let before = h.store.clone();
    let (out, changes) = h.apply(cas("a", "2", 0));
    assert_eq!(out, Outcome::Bool(false));
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
}

#[test]
fn cas_with_index_needs_matching_modify_index() {
    let mut h = H::new();
    // Non-zero index on a missing key: refused, nothing created.
    assert_eq!(h.out(cas("a", "1", 5)), Outcome::Bool(false));
    assert!(!h.has("a"));

    h.ok(set("a", "1")); // index 2
    let m = h.get("a").modify_index;
    assert_eq!(m, 2);
    assert_eq!(h.out(cas("a", "stale", m + 1)), Outcome::Bool(false));
    assert_eq!(h.out(cas("a", "stale", m - 1)), Outcome::Bool(false));
    assert_eq!(h.get("a").value, b"1");
    assert_eq!(h.out(cas("a", "2", m)), Outcome::Bool(true));
    let e = h.get("a");
    assert_eq!(
        (e.value.as_slice(), e.create_index, e.modify_index),
        (&b"2"[..], 2, h.idx())
    );
    // The old index is stale now.
    assert_eq!(h.out(cas("a", "3", m)), Outcome::Bool(false));
}

#[test]
fn cas_keeps_lock_holder() {
    let mut h = H::with_sessions();
    h.ok(lock("a", "v", "s1"));
    let m = h.get("a").modify_index;
    h.ok(cas("a", "w", m));
    let e = h.get("a");
    assert_eq!(
        (e.value.as_slice(), e.session.as_deref(), e.lock_index),
        (&b"w"[..], Some("s1"), 1)
    );
}

#[test]
fn lock_needs_a_live_session() {
    let mut h = H::with_sessions();
    let before = h.store.clone();
    let (out, changes) = h.apply(lock("a", "v", ""));
    assert_eq!(out, Outcome::Rejected(StoreError::MissingSession));
    assert!(changes.is_empty());
    let (out, changes) = h.apply(lock("a", "v", "nope"));
    assert_eq!(
        out,
        Outcome::Rejected(StoreError::InvalidSession("nope".into()))
    );
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));

    // A destroyed session is invalid too.
    h.ok(destroy("s2", 0));
    assert_eq!(
        h.out(lock("a", "v", "s2")),
        Outcome::Rejected(StoreError::InvalidSession("s2".into()))
    );
    assert!(!h.has("a"));
}

#[test]
fn lock_on_missing_key_creates_it_with_lock_index_1() {
    let mut h = H::with_sessions();
    let (out, changes) = h.apply(lock("a", "v", "s1"));
    assert_eq!(out, Outcome::Bool(true));
    assert_eq!(keys_of(&changes), strs(&["a"]));
    let e = h.get("a");
    assert_eq!(e.session.as_deref(), Some("s1"));
    assert_eq!(
        (e.lock_index, e.create_index, e.modify_index),
        (1, h.idx(), h.idx())
    );
    assert_eq!(e.value, b"v");
}

#[test]
fn lock_held_by_another_session_is_refused() {
    let mut h = H::with_sessions();
    h.ok(lock("a", "mine", "s1"));
    let before = h.store.clone();
    let (out, changes) = h.apply(lock("a", "theirs", "s2"));
    assert_eq!(out, Outcome::Bool(false));
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
    assert_eq!(h.get("a").value, b"mine");
}

#[test]
fn reacquire_by_holder_keeps_lock_index() {
    let mut h = H::with_sessions();
    h.ok(lock("a", "1", "s1"));
    let first = h.get("a");
    h.ok(lock("a", "2", "s1"));
    let e = h.get("a");
    assert_eq!(e.lock_index, 1);
    assert_eq!(e.create_index, first.create_index);
    assert_eq!(e.modify_index, h.idx());
    assert_eq!(e.value, b"2");
    assert_eq!(e.session.as_deref(), Some("s1"));
}

#[test]
fn fresh_acquisition_increments_lock_index() {
    let mut h = H::with_sessions();
    h.ok(set("a", "plain")); // an existing, never locked key
    let created = h.get("a").create_index;
    h.ok(lock("a", "1", "s1"));
    assert_eq!(h.get("a").lock_index, 1);
    h.ok(unlock("a", "1", "s1"));
    assert_eq!(h.get("a").lock_index, 1, "unlock keeps LockIndex");
    h.ok(lock("a", "2", "s2"));
    let e = h.get("a");
    assert_eq!((e.lock_index, e.session.as_deref()), (2, Some("s2")));
    assert_eq!(e.create_index, created);
    h.ok(unlock("a", "2", "s2"));
    h.ok(lock("a", "3", "s2"));
    assert_eq!(h.get("a").lock_index, 3);
}

#[test]
fn unlock_only_by_the_holder() {
    let mut h = H::with_sessions();
    h.ok(lock("a", "v", "s1"));
    let before = h.store.clone();
    assert_eq!(h.out(unlock("a", "x", "s2")), Outcome::Bool(false));
    assert_eq!(h.out(unlock("a", "x", "nope")), Outcome::Bool(false));
    assert_eq!(
        h.out(unlock("a", "x", "")),
        Outcome::Rejected(StoreError::MissingSession)
    );
    assert_eq!(h.out(unlock("missing", "x", "s1")), Outcome::Bool(false));
    assert_eq!(h.store, unchanged(&before, &h.store));

    let (out, changes) = h.apply(unlock("a", "released", "s1"));
    assert_eq!(out, Outcome::Bool(true));
    assert_eq!(keys_of(&changes), strs(&["a"]));
    let e = h.get("a");
    assert_eq!(e.session, None);
    assert_eq!((e.lock_index, e.modify_index), (1, h.idx()));
    assert_eq!(e.value, b"released");
    // Unlocking an unlocked key is refused, even by the former holder.
    assert_eq!(h.out(unlock("a", "again", "s1")), Outcome::Bool(false));
    // s1 no longer holds it: destroying s1 leaves the key alone.
    let m = h.get("a").modify_index;
    let (_, changes) = h.apply(destroy("s1", 0));
    assert_eq!(changes.keys, Vec::<String>::new());
    assert_eq!(h.get("a").modify_index, m);
}

#[test]
fn delete_removes_and_leaves_a_tombstone() {
    let mut h = H::new();
    h.ok(set("a", "1"));
    h.ok(set("b", "2"));
    let (out, changes) = h.apply(delete("a"));
    assert_eq!(out, Outcome::Bool(true));
    assert_eq!(keys_of(&changes), strs(&["a"]));
    assert!(!h.has("a"));
    assert!(h.has("b"));
    assert_eq!(h.store.kv.tombstones.get("a"), Some(&h.idx()));
    assert_eq!(h.store.kv_get("a").0, h.idx());

    // Deleting a missing key answers true and changes nothing.
    let before = h.store.clone();
    let (out, changes) = h.apply(delete("nothing"));
    assert_eq!(out, Outcome::Bool(true));
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
}

#[test]
fn recreated_key_gets_a_new_create_index() {
    let mut h = H::with_sessions();
    h.ok(lock("a", "1", "s1"));
    h.ok(delete("a"));
    h.ok(set("a", "2"));
    let e = h.get("a");
    assert_eq!(
        (e.create_index, e.modify_index, e.lock_index),
        (h.idx(), h.idx(), 0)
    );
    assert_eq!(e.session, None, "a deleted key forgets its holder");
    assert!(!h.store.kv.tombstones.contains_key("a"));
    // s1 does not hold the new key: its destroy does not touch it.
    let (_, changes) = h.apply(destroy("s1", 0));
    assert!(changes.keys.is_empty());
}

#[test]
fn delete_cas_semantics() {
    let mut h = H::new();
    // Consul: a CAS delete of a missing key succeeds.
    let (out, changes) = h.apply(delete_cas("missing", 7));
    assert_eq!(out, Outcome::Bool(true));
    assert!(changes.is_empty());
    assert_eq!(h.out(delete_cas("missing", 0)), Outcome::Bool(true));

    h.ok(set("a", "1"));
    let m = h.get("a").modify_index;
    assert_eq!(h.out(delete_cas("a", m + 1)), Outcome::Bool(false));
    assert_eq!(h.out(delete_cas("a", 0)), Outcome::Bool(false));
    assert!(h.has("a"));
    let (out, changes) = h.apply(delete_cas("a", m));
    assert_eq!(out, Outcome::Bool(true));
    assert_eq!(keys_of(&changes), strs(&["a"]));
    assert!(!h.has("a"));
}

#[test]
fn delete_tree_deletes_exactly_the_prefix() {
    let mut h = H::new();
    for k in ["x", "x/", "x/a", "x/b/c", "xy", "y/x/a"] {
        h.ok(set(k, "v"));
    }
    let (out, changes) = h.apply(delete_tree("x/"));
    assert_eq!(out, Outcome::Bool(true));
    assert_eq!(keys_of(&changes), strs(&["x/", "x/a", "x/b/c"]));
    let left: Vec<&str> = h
        .store
        .kv_list("")
        .1
        .iter()
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(left, vec!["x", "xy", "y/x/a"]);
    for k in ["x/", "x/a", "x/b/c"] {
        assert_eq!(h.store.kv.tombstones.get(k), Some(&h.idx()));
    }
    // An empty tree: nothing happens.
    let (out, changes) = h.apply(delete_tree("x/"));
    assert_eq!(out, Outcome::Bool(true));
    assert!(changes.is_empty());
    // The empty prefix deletes everything.
    h.ok(delete_tree(""));
    assert_eq!(h.store.kv_len(), 0);
}

#[test]
fn delete_tree_drops_locks_it_deletes() {
    let mut h = H::with_sessions();
    h.ok(lock("t/a", "v", "s1"));
    h.ok(lock("u", "v", "s1"));
    h.ok(delete_tree("t/"));
    assert_eq!(h.store.kv.held_by("s1"), strs(&["u"]));
    let (_, changes) = h.apply(destroy("s1", 0));
    assert_eq!(keys_of(&changes), strs(&["u"]));
    assert!(!h.has("t/a"));
}

#[test]
fn list_and_keys_read_the_prefix() {
    let mut h = H::new();
    for k in ["a/b", "a/c/d", "a/c/e", "ab", "b"] {
        h.ok(set(k, "v"));
    }
    let (idx, list) = h.store.kv_list("a/");
    assert_eq!(idx, 3);
    assert_eq!(
        list.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        vec!["a/b", "a/c/d", "a/c/e"]
    );
    let (idx, keys) = h.store.kv_keys("a/", "/");
    assert_eq!((idx, keys), (3, strs(&["a/b", "a/c/"])));
    let (idx, keys) = h.store.kv_keys("", "/");
    assert_eq!((idx, keys), (5, strs(&["a/", "ab", "b"])));
    assert_eq!(h.store.kv_list("zzz"), (1, vec![]));
    assert_eq!(h.store.kv_len(), 5);
}

#[test]
fn replayed_or_older_index_is_ignored() {
    let mut h = H::new();
    h.store.apply(5, &set("a", "1"));
    let before = h.store.clone();
    for i in [3, 5] {
        let (out, changes) = h.store.apply(i, &set("a", "replayed"));
        assert_eq!(out, Outcome::Done);
        assert!(changes.is_empty());
        assert_eq!(h.store, before);
    }
    h.store.apply(6, &set("a", "2"));
    assert_eq!(h.store.last_index(), 6);
    assert_eq!(h.get("a").value, b"2");
}

#[test]
fn noop_moves_only_last_index() {
    let mut h = H::new();
    h.ok(set("a", "1"));
    let before = h.store.clone();
    let (out, changes) = h.apply(Command::Noop);
    assert_eq!(out, Outcome::Done);
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
    assert_eq!(h.store.last_index(), 2);
}
