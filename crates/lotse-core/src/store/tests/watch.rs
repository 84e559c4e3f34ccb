//! Watch indexes and `Changes`: what a blocking query depends on and what wakes it.

use super::*;

fn key(k: &str) -> WatchKey {
    WatchKey::Key(k.to_string())
}

fn prefix(p: &str) -> WatchKey {
    WatchKey::Prefix(p.to_string())
}

#[test]
fn indexes_are_never_zero() {
    let h = H::new();
    for w in [
        key("a"),
        prefix(""),
        prefix("x/"),
        WatchKey::Table(Table::Kv),
    ] {
        assert_eq!(h.wi(&w), 1);
    }
    assert_eq!(h.store.kv_get("a"), (1, None));
    assert_eq!(h.store.session_list().0, 1);
}

#[test]
fn key_index_follows_only_that_key() {
    let mut h = H::new();
    h.ok(set("a", "1")); // 1
    h.ok(set("b", "1")); // 2
    assert_eq!(h.wi(&key("a")), 1);
    assert_eq!(h.wi(&key("b")), 2);
    assert_eq!(h.store.kv_get("a").0, 1);
    h.ok(set("a", "2")); // 3
    h.ok(set("ab", "1")); // 4
    assert_eq!(h.wi(&key("a")), 3);
    h.ok(delete("a")); // 5
    assert_eq!(h.wi(&key("a")), 5);
    assert_eq!(h.store.kv_get("a"), (5, None));
    h.ok(set("b", "2")); // 6
    assert_eq!(h.wi(&key("a")), 5);
    // A missing key that never existed.
    assert_eq!(h.wi(&key("never")), 1);
}

#[test]
fn prefix_index_moves_on_writes_and_deletes_under_it_only() {
    let mut h = H::new();
    h.ok(set("x/a", "1")); // 1
    h.ok(set("x/b", "1")); // 2
    h.ok(set("y", "1")); // 3
    assert_eq!(h.wi(&prefix("x/")), 2);
    assert_eq!(h.store.kv_list("x/").0, 2);
    assert_eq!(h.store.kv_keys("x/", "/").0, 2);
    assert_eq!(h.wi(&prefix("")), 3);
    h.ok(set("xy", "1")); // 4: shares "x" but not "x/"
    assert_eq!(h.wi(&prefix("x/")), 2);
    assert_eq!(h.wi(&prefix("x")), 4);

    h.ok(delete("x/b")); // 5: the prefix's newest live key is now x/a (1), the tombstone says 5
    assert_eq!(h.wi(&prefix("x/")), 5);
    h.ok(delete("x/a")); // 6: nothing lives under x/
    assert_eq!(h.wi(&prefix("x/")), 6);
    assert_eq!(h.store.kv_list("x/"), (6, vec![]));
    h.ok(set("z", "1")); // 7
    assert_eq!(h.wi(&prefix("x/")), 6);
    h.ok(delete_tree("")); // 8
    assert_eq!(h.wi(&prefix("")), 8);
    assert_eq!(h.wi(&prefix("x/")), 6);
}

#[test]
fn tombstone_reap_never_moves_indexes_backwards() {
    let mut h = H::new();
    h.ok(set("keep", "1")); // 1
    h.ok(set("x/a", "1")); // 2
    h.ok(set("x/b", "1")); // 3
    h.ok(delete("x/a")); // 4
    h.ok(delete("x/b")); // 5
    h.ok(set("y", "1")); // 6
    let watched = [
        key("x/a"),
        key("x/b"),
        key("keep"),
        key("never"),
        prefix("x/"),
        prefix(""),
        prefix("q"),
    ];
    let mut last: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();
    assert_eq!(last, vec![4, 5, 1, 1, 5, 6, 1]);

    // Reaping part of the tombstones, then all of them, then nothing.
    for up_to in [4, 5, 5, 0] {
        let before = h.store.clone();
        let (out, changes) = h.apply(Command::TombstoneReap { up_to_index: up_to });
        assert_eq!(out, Outcome::Done);
        assert!(changes.is_empty());
        assert_eq!(h.store.kv.entries, before.kv.entries);
        let now: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();
        for ((w, a), b) in watched.iter().zip(&last).zip(&now) {
            assert!(
                b >= a,
                "{w:?} went from {a} to {b} after reaping up to {up_to}"
            );
        }
        last = now;
    }
    assert!(h.store.kv.tombstones.is_empty());
    assert_eq!(h.wi(&prefix("x/")), 5);
    assert_eq!(h.wi(&key("x/a")), 5);
    assert_eq!(h.wi(&key("keep")), 1, "a live key keeps its own index");
    // And a delete after the reap still moves it forward.
    h.ok(set("x/c", "1"));
    h.ok(delete("x/c"));
    assert_eq!(h.wi(&prefix("x/")), h.idx());
}

#[test]
fn table_indexes() {
    let mut h = H::with_node(); // 1: nodes
    assert_eq!(h.wi(&WatchKey::Table(Table::Nodes)), 1);
    h.ok(create(session("s1"))); // 2
    assert_eq!(h.wi(&WatchKey::Table(Table::Sessions)), 2);
    assert_eq!(h.wi(&WatchKey::Table(Table::Kv)), 1);
    h.ok(lock("a", "v", "s1")); // 3
    assert_eq!(h.wi(&WatchKey::Table(Table::Kv)), 3);
    // Refused commands move nothing.
    h.out(cas("a", "v", 0)); // 4
    h.out(create(session("s1"))); // 5
    h.out(delete("missing")); // 6
    h.out(txn(vec![
        kv_val(KvVerb::Set, "b", "1"),
        kv(KvVerb::Get, "missing"),
    ])); // 7
    assert_eq!(h.wi(&WatchKey::Table(Table::Kv)), 3);
    assert_eq!(h.wi(&WatchKey::Table(Table::Sessions)), 2);
    h.ok(destroy("s1", 0)); // 8: releases a
    assert_eq!(h.wi(&WatchKey::Table(Table::Sessions)), 8);
    assert_eq!(h.wi(&WatchKey::Table(Table::Kv)), 8);
    assert_eq!(h.wi(&WatchKey::Table(Table::Nodes)), 1);
    assert_eq!(h.store.session_get("s1").0, 8);
}

#[test]
fn changes_name_exactly_what_was_touched() {
    let mut h = H::with_sessions();
    h.ok(set("a", "1"));
    let (_, c) = h.apply(set("b", "1"));
    assert_eq!(c.keys, strs(&["b"]));
    assert_eq!(c.tables, vec![Table::Kv]);
    assert!(c.affects(&key("b")));
    assert!(c.affects(&prefix("")));
    assert!(c.affects(&prefix("b")));
    assert!(c.affects(&WatchKey::Table(Table::Kv)));
    assert!(!c.affects(&key("a")));
    assert!(!c.affects(&key("bb")));
    assert!(!c.affects(&prefix("x/")));
    assert!(!c.affects(&prefix("bc")));
    assert!(!c.affects(&WatchKey::Table(Table::Sessions)));

    let (_, c) = h.apply(lock("x/1", "v", "s1"));
    assert_eq!(c.keys, strs(&["x/1"]));
    assert!(c.affects(&prefix("x/")) && !c.affects(&key("a")));

    // Session destroy: the session table plus the released keys.
    let (_, c) = h.apply(destroy("s1", 0));
    assert_eq!(c.keys, strs(&["x/1"]));
    let mut tables = c.tables.clone();
    tables.sort();
    assert_eq!(tables, vec![Table::Kv, Table::Sessions]);
    // A session with no keys touches only the session table.
    let (_, c) = h.apply(destroy("s2", 0));
    assert!(c.keys.is_empty());
    assert_eq!(c.tables, vec![Table::Sessions]);
    assert!(!c.affects(&prefix("")));

    // Nothing for refused or empty commands.
    for cmd in [
        cas("a", "v", 0),
        Command::Noop,
        delete("zz"),
        delete_tree("nothing/"),
        unlock("a", "v", "s9"),
    ] {
        let (_, c) = h.apply(cmd);
        assert!(c.is_empty(), "{c:?}");
    }

    // A transaction reports every key it wrote.
    let (_, c) = h.apply(txn(vec![
        kv_val(KvVerb::Set, "t/1", "v"),
        kv(KvVerb::Get, "a"),
        kv(KvVerb::Delete, "b"),
    ]));
    assert_eq!(keys_of(&c), strs(&["b", "t/1"]));
    assert!(!c.affects(&key("a")));
    assert_eq!(c.tables, vec![Table::Kv]);
}

#[test]
fn every_changed_watch_index_is_reported() {
    // After each command, every watch key whose index moved is affected by its Changes.
    let mut h = H::with_sessions();
    let watched: Vec<WatchKey> = ["a", "a/b", "b", "zz"]
        .iter()
        .map(|k| key(k))
        .chain(["", "a", "a/", "b", "q"].iter().map(|p| prefix(p)))
        .chain([Table::Kv, Table::Sessions, Table::Nodes].map(WatchKey::Table))
        .collect();
    let script = vec![
        set("a", "1"),
        set("a/b", "1"),
        lock("b", "v", "s1"),
        cas("a", "x", 3),
        delete_tree("a"),
        lock("a/b", "v", "s2"),
        destroy("s1", 0),
        txn(vec![
            kv_val(KvVerb::Set, "zz", "1"),
            kv(KvVerb::Delete, "b"),
        ]),
        create(session("s3")),
        destroy("s2", 0),
    ];
    for cmd in script {
        let before: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();
        let desc = format!("{cmd:?}");
        let (_, c) = h.apply(cmd);
        for (w, b) in watched.iter().zip(before) {
            let a = h.wi(w);
            assert!(a >= b);
            if a != b {
                assert!(
                    c.affects(w),
                    "{desc}: {w:?} moved {b} -> {a} but {c:?} does not affect it"
                );
            }
        }
    }
}

#[test]
fn a_change_to_a_service_or_node_alone_is_not_empty() {
    let service = Changes {
        services: vec!["web".into()],
        ..Changes::default()
    };
    let node = Changes {
        nodes: vec!["n1".into()],
        ..Changes::default()
    };
    // The state machine drops empty changes: these must reach the watchers.
    assert!(!service.is_empty() && !node.is_empty());
    assert!(Changes::default().is_empty());
}
