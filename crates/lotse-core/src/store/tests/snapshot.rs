//! Snapshot round trips through `SnapshotImage`.

use super::*;
use crate::snapshot::{SnapshotError, SnapshotImage, SNAPSHOT_FORMAT};

/// A store with something in every table: keys (plain, locked by two sessions), tombstones
/// (one reaped), sessions with and without lock-delay, a node with a check, a pending delay.
fn busy() -> H {
    let mut h = H::with_sessions();
    h.ok(create(Session {
        lock_delay_ns: 5_000_000_000,
        behavior: SessionBehavior::Delete,
        ..session("d")
    }));
    h.ok(set("plain", "p"));
    h.ok(lock("l/1", "v", "s1"));
    h.ok(lock("l/2", "v", "s1"));
    h.ok(lock("l/3", "v", "s2"));
    h.ok(lock("gone", "v", "d"));
    h.ok(set("old", "v"));
    h.ok(delete("old"));
    h.ok(Command::TombstoneReap {
        up_to_index: h.idx(),
    });
    h.ok(destroy("d", 1_000)); // tombstone for "gone" and a lock-delay until 6_000
    h
}

/// What a decoded image looks like: fields marked `#[serde(skip)]` come back empty.
fn as_decoded(store: &Store) -> SnapshotImage {
    let mut image = SnapshotImage::of(store);
    image.store.forget_derived();
    image
}

#[test]
fn round_trip_gives_an_equal_store() {
    let h = busy();
    assert_eq!(SnapshotImage::of(&h.store).format, SNAPSHOT_FORMAT);
    let restored = SnapshotImage::of(&h.store).into_store().unwrap();
    assert_eq!(restored, h.store);
    let restored = as_decoded(&h.store).into_store().unwrap();
    assert_eq!(restored, h.store, "the lock index is rebuilt on restore");
    assert_eq!(restored.last_index(), h.store.last_index());
    assert!(restored.lock_delayed("gone", 5_999));
    for w in [
        WatchKey::Prefix(String::new()),
        WatchKey::Key("old".into()),
        WatchKey::Key("gone".into()),
    ] {
        assert_eq!(restored.watch_index(&w), h.store.watch_index(&w));
    }
}

#[test]
fn destroying_a_session_after_restore_releases_its_keys() {
    let h = busy();
    let mut r = H {
        store: as_decoded(&h.store).into_store().unwrap(),
        next: h.next,
    };
    assert_eq!(r.store.kv.held_by("s1"), strs(&["l/1", "l/2"]));
    let (_, changes) = r.apply(destroy("s1", 0));
    assert_eq!(keys_of(&changes), strs(&["l/1", "l/2"]));
    assert_eq!(r.get("l/1").session, None);
    assert_eq!(r.get("l/2").session, None);
    assert_eq!(r.get("l/3").session.as_deref(), Some("s2"));
    // And the same command on the original store gives the same store.
    let mut o = h;
    o.apply(destroy("s1", 0));
    assert_eq!(r.store, o.store);
}

#[test]
fn restored_store_keeps_applying_like_the_original() {
    let mut a = busy();
    let mut b = H {
        store: as_decoded(&a.store).into_store().unwrap(),
        next: a.next,
    };
    let script = vec![
        lock("l/1", "x", "s2"),
        lock_at("gone", "x", "s2", 2_000),
        lock_at("gone", "x", "s2", 6_000),
        set("l/3", "y"),
        txn(vec![
            kv_sess(KvVerb::Unlock, "l/3", "s2"),
            kv_sess(KvVerb::Lock, "l/3", "s1"),
        ]),
        destroy("s2", 7_000),
    ];
    for cmd in script {
        assert_eq!(a.apply(cmd.clone()), b.apply(cmd));
        assert_eq!(a.store, b.store);
    }
}

#[test]
fn unknown_format_is_refused() {
    let h = busy();
    let mut image = SnapshotImage::of(&h.store);
    image.format = SNAPSHOT_FORMAT + 1;
    assert_eq!(
        image.into_store().unwrap_err(),
        SnapshotError::Format(SNAPSHOT_FORMAT + 1)
    );
}
