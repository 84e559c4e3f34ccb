//! `Command::Restore`: the store becomes the image, and no index a query reports goes back.

use super::*;
use crate::snapshot::SnapshotImage;

/// A store with keys (one locked by `s1`), sessions, a tombstone and the node.
fn saved() -> H {
    let mut h = H::with_sessions();
    h.ok(set("a", "1"));
    h.ok(set("b", "2"));
    h.ok(lock("l", "held", "s1"));
    h.ok(set("gone", "x"));
    h.ok(delete("gone"));
    h
}

/// Every watch key the tests look at.
fn watch_keys() -> Vec<WatchKey> {
    let mut keys: Vec<WatchKey> = ["a", "b", "c", "l", "gone"]
        .iter()
        .map(|k| WatchKey::Key(k.to_string()))
        .collect();
    keys.push(WatchKey::Prefix(String::new()));
    keys.push(WatchKey::Node(NODE.into()));
    keys.push(WatchKey::Service("web".into()));
    for t in [
        Table::Kv,
        Table::Sessions,
        Table::Nodes,
        Table::Services,
        Table::Checks,
    ] {
        keys.push(WatchKey::Table(t));
    }
    keys
}

#[test]
fn a_restore_gives_back_the_image_with_every_index_at_or_above_its_own() {
    let mut h = saved();
    let image = h.store.clone();
    let saved_a = h.get("a");
    // Diverge: change, delete, add, and drop a session.
    h.ok(set("a", "changed"));
    h.ok(delete("b"));
    h.ok(set("c", "new"));
    h.ok(destroy("s2", 0));
    let before: Vec<u64> = watch_keys().iter().map(|k| h.wi(k)).collect();

    let (out, changes) = h.apply(Command::Restore(Box::new(image.clone())));
    let at = h.idx();
    assert_eq!(out, Outcome::Done);
    // The data is the image's, records keep their saved indexes (CAS against them works).
    assert_eq!(h.get("a"), saved_a);
    assert_eq!(h.get("b").value, b"2");
    assert!(!h.has("c"));
    assert_eq!(h.get("l").session.as_deref(), Some("s1"));
    assert_eq!(h.store.session_map(), image.session_map());
    assert_eq!(h.store.kv.entries, image.kv.entries);
    assert_eq!(h.store.catalog.nodes, image.catalog.nodes);
    assert_eq!(h.store.last_index(), at);
    // No index a query reports went backwards; each is at least the restore's.
    for (k, b) in watch_keys().iter().zip(before) {
        let now = h.wi(k);
        assert!(
            now >= at && now >= b,
            "{k:?}: {b} -> {now} (restore at {at})"
        );
    }
    assert_eq!(h.store.kv_get("a").0, at);
    for t in [
        Table::Kv,
        Table::Sessions,
        Table::Nodes,
        Table::Services,
        Table::Checks,
    ] {
        assert!(changes.affects(&WatchKey::Table(t)), "{t:?}");
    }
    // CAS with the restored ModifyIndex succeeds.
    assert_eq!(
        h.out(cas("a", "after", saved_a.modify_index)),
        Outcome::Bool(true)
    );
    assert_eq!(h.get("a").modify_index, h.idx());
}

#[test]
fn restored_sessions_keep_working() {
    let mut h = saved();
    let image = h.store.clone();
    h.ok(destroy("s1", 0));
    assert_eq!(h.get("l").session, None);
    h.ok(Command::Restore(Box::new(image)));
    assert_eq!(h.get("l").session.as_deref(), Some("s1"));
    // The restored lock index works: destroying the holder releases the key.
    h.ok(destroy("s1", 0));
    assert_eq!(h.get("l").session, None);
    // And a restored session can lock again.
    assert_eq!(h.out(lock("m", "v", "s2")), Outcome::Bool(true));
}

/// An image off the wire lacks its derived lookups; applying it rebuilds them.
#[test]
fn a_decoded_image_is_made_whole_when_applied() {
    let mut h = saved();
    let mut image = SnapshotImage::of(&h.store).store;
    image.forget_derived();
    h.ok(set("x", "y"));
    h.ok(Command::Restore(Box::new(image)));
    h.ok(destroy("s1", 0));
    assert_eq!(h.get("l").session, None, "the lock index was rebuilt");
}

#[test]
fn a_restore_is_never_batched_and_is_recognised_inside_one() {
    let h = saved();
    let restore = Command::Restore(Box::new(h.store.clone()));
    assert!(restore.replaces_store());
    assert!(restore.approx_size() > 64 << 20);
    let batch = Command::Batch(vec![set("a", "1"), restore.clone()]);
    assert!(batch.replaces_store());
    assert!(!set("a", "1").replaces_store());
    // Applied inside a batch (the batcher never does this), it still lands in order.
    let mut h2 = saved();
    h2.ok(set("zz", "1"));
    h2.apply(Command::Batch(vec![restore, set("after", "1")]));
    assert!(!h2.has("zz"));
    assert!(h2.has("after"));
    assert!(h2.store.kv_get("a").0 >= h2.idx());
}

/// An image from a cluster further along than this log: its indexes come down to the
/// restore's, so the writes that follow (at larger log indexes) move every index again.
#[test]
fn an_image_from_further_along_is_brought_down_to_the_restore_index() {
    let mut far = saved();
    for i in 0..50 {
        far.ok(set("a", &format!("v{i}")));
    }
    let image = far.store.clone();
    let mut h = H::with_node();
    h.apply(Command::Restore(Box::new(image)));
    let at = h.idx();
    assert!(far.idx() > at);
    assert_eq!(h.store.last_index(), at);
    assert_eq!(h.get("a").value, b"v49");
    assert_eq!(h.get("a").modify_index, at);
    assert_eq!(h.wi(&WatchKey::Key("a".into())), at);
    assert_eq!(h.wi(&WatchKey::Node(NODE.into())), at);
    // The next write is applied (not skipped as old) and moves the key's index on.
    h.ok(set("a", "next"));
    assert_eq!(h.get("a").value, b"next");
    assert_eq!(h.wi(&WatchKey::Key("a".into())), at + 1);
    assert_eq!(h.wi(&WatchKey::Prefix(String::new())), at + 1);
}
