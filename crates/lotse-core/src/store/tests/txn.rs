//! Transactions: all-or-nothing, Consul's error texts, results.

use super::*;

/// Fixture: `a` plain, `t/b` locked by s1, `t/x` plain, `l` locked by s1, `c` deleted (a
/// tombstone), `d` locked by s2 and then unlocked (LockIndex 1).
fn fixture() -> H {
    let mut h = H::with_sessions();
    h.ok(set("a", "a0"));
    h.ok(lock("t/b", "b0", "s1"));
    h.ok(set("t/x", "x0"));
    h.ok(lock("l", "l0", "s1"));
    h.ok(set("c", "c0"));
    h.ok(delete("c"));
    h.ok(lock("d", "d0", "s2"));
    h.ok(unlock("d", "d0", "s2"));
    h
}

fn txn_err(out: Outcome) -> Vec<TxnError> {
    match out {
        Outcome::Txn(Err(e)) => e,
        other => panic!("expected a failed transaction, got {other:?}"),
    }
}

fn txn_ok(out: Outcome) -> Vec<KvEntry> {
    match out {
        Outcome::Txn(Ok(r)) => r.iter().map(|r| kv_result(r).clone()).collect(),
        other => panic!("expected a successful transaction, got {other:?}"),
    }
}

/// Three writes that touch a value, a tree with a lock in it, and a tombstone, then `failing`
/// at position 3, then one more write. Afterwards the store must be exactly as before.
fn assert_rolls_back(failing: TxnOp, what: &str) {
    let mut h = fixture();
    let before = h.store.clone();
    let watched: Vec<WatchKey> = ["a", "t/b", "t/x", "c", "l", "e", "zzz"]
        .iter()
        .map(|k| WatchKey::Key(k.to_string()))
        .chain(
            ["", "t/", "c"]
                .iter()
                .map(|p| WatchKey::Prefix(p.to_string())),
        )
        .chain([Table::Kv, Table::Sessions].map(WatchKey::Table))
        .collect();
    let indexes: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();

    let ops = vec![
        kv_val(KvVerb::Set, "a", "a1"),
        kv(KvVerb::DeleteTree, "t/"),
        kv_sess(KvVerb::Lock, "c", "s2"),
        failing,
        kv_val(KvVerb::Set, "e", "e1"),
    ];
    let (out, changes) = h.apply(txn(ops));
    let errs = txn_err(out);
    assert_eq!(
        errs[0],
        TxnError {
            op_index: 3,
            what: what.to_string()
        }
    );
    assert!(
        changes.is_empty(),
        "a rolled-back transaction reports no changes: {changes:?}"
    );
    assert_eq!(
        h.store,
        unchanged(&before, &h.store),
        "rollback after {what:?}"
    );
    assert_eq!(watched.iter().map(|w| h.wi(w)).collect::<Vec<_>>(), indexes);

    // The lock index is intact too: s1 still holds t/b and l, s2 holds nothing.
    let (_, changes) = h.apply(destroy("s1", 0));
    assert_eq!(keys_of(&changes), strs(&["l", "t/b"]));
    let (_, changes) = h.apply(destroy("s2", 0));
    assert!(changes.keys.is_empty());
}

#[test]
fn failing_op_rolls_everything_back() {
    let h = fixture();
    let l_modify = h.get("l").modify_index;
    let cases: Vec<(TxnOp, String)> = vec![
        (
            kv_idx(KvVerb::Cas, "a", 999),
            r#"failed to set key "a", index is stale"#.into(),
        ),
        (
            kv_idx(KvVerb::Cas, "new", 3),
            r#"failed to set key "new", index is stale"#.into(),
        ),
        (
            kv_idx(KvVerb::Cas, "a", 0),
            r#"failed to set key "a", index is stale"#.into(),
        ),
        (
            kv_sess(KvVerb::Lock, "l", "s2"),
            r#"failed to lock key "l", lock is already held"#.into(),
        ),
        (kv(KvVerb::Lock, "x"), "missing session".into()),
        (
            kv_sess(KvVerb::Lock, "x", "nope"),
            r#"invalid session "nope""#.into(),
        ),
        (
            kv_sess(KvVerb::Unlock, "l", "s2"),
            r#"failed to unlock key "l", lock isn't held, or is held by another session"#.into(),
        ),
        (
            kv_sess(KvVerb::Unlock, "t/b", "s1"),
            r#"failed to unlock key "t/b", lock isn't held, or is held by another session"#.into(),
        ),
        (kv(KvVerb::Unlock, "l"), "missing session".into()),
        (
            kv_idx(KvVerb::DeleteCas, "a", 999),
            r#"failed to delete key "a", index is stale"#.into(),
        ),
        (
            kv(KvVerb::Get, "nothing"),
            r#"key "nothing" doesn't exist"#.into(),
        ),
        (kv(KvVerb::Get, "t/x"), r#"key "t/x" doesn't exist"#.into()),
        (
            kv_idx(KvVerb::CheckIndex, "l", 999),
            format!(r#"failed index check for key "l", current modify index {l_modify} != 999"#),
        ),
        (
            kv_idx(KvVerb::CheckIndex, "nothing", 1),
            r#"failed to check index, key "nothing" doesn't exist"#.into(),
        ),
        (
            kv_sess(KvVerb::CheckSession, "l", "s2"),
            r#"failed session check for key "l", current session "s1" != "s2""#.into(),
        ),
        (
            kv(KvVerb::CheckSession, "l"),
            r#"failed session check for key "l", current session "s1" != """#.into(),
        ),
        (
            kv_sess(KvVerb::CheckSession, "nothing", "s1"),
            r#"failed to check session, key "nothing" doesn't exist"#.into(),
        ),
        (kv(KvVerb::CheckNotExists, "a"), r#"key "a" exists"#.into()),
        // The transaction sees its own writes: c was re-created by the lock at position 2.
        (kv(KvVerb::CheckNotExists, "c"), r#"key "c" exists"#.into()),
    ];
    for (failing, what) in cases {
        assert_rolls_back(failing, &what);
    }
}

#[test]
fn rollback_restores_tombstones_exactly() {
    let mut h = fixture();
    let before = h.store.clone();
    let ops = vec![
        kv_val(KvVerb::Set, "c", "again"), // removes c's tombstone
        kv(KvVerb::Delete, "c"),           // puts a new one
        kv_val(KvVerb::Set, "fresh", "1"), // a brand-new key...
        kv(KvVerb::Delete, "fresh"),       // ...deleted: a tombstone that must vanish
        kv_sess(KvVerb::Lock, "fresh", "s1"),
        kv_sess(KvVerb::Unlock, "fresh", "s1"),
        kv(KvVerb::Delete, "l"), // drops s1's lock on l
        kv(KvVerb::Get, "l"),    // fails
    ];
    let (out, changes) = h.apply(txn(ops));
    assert_eq!(txn_err(out)[0].op_index, 7);
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
    assert!(!h.store.kv.tombstones.contains_key("fresh"));
}

#[test]
fn consul_reports_every_failing_op() {
    // Consul's txnDispatch (agent/consul/state/txn.go) runs every operation and collects one
    // TxnError per failing op, each evaluated against the state left by the ops before it.
    let mut h = fixture();
    let ops = vec![
        kv_idx(KvVerb::Cas, "a", 999),   // fails
        kv_val(KvVerb::Set, "n", "1"),   // fine
        kv(KvVerb::CheckNotExists, "n"), // fails: n was just set
        kv(KvVerb::Get, "nothing"),      // fails
    ];
    let before = h.store.clone();
    let (out, _) = h.apply(txn(ops));
    assert_eq!(h.store, unchanged(&before, &h.store));
    assert_eq!(
        txn_err(out),
        vec![
            TxnError {
                op_index: 0,
                what: r#"failed to set key "a", index is stale"#.into()
            },
            TxnError {
                op_index: 2,
                what: r#"key "n" exists"#.into()
            },
            TxnError {
                op_index: 3,
                what: r#"key "nothing" doesn't exist"#.into()
            },
        ]
    );
}

#[test]
fn read_txn_reports_every_failing_op_like_consul() {
    // TxnRO goes through the same txnDispatch: all errors are reported.
    let h = fixture();
    let errs = h
        .store
        .read_txn(&[
            kv(KvVerb::Get, "x"),
            kv(KvVerb::Get, "a"),
            kv(KvVerb::Get, "y"),
        ])
        .unwrap_err();
    let at: Vec<usize> = errs.iter().map(|e| e.op_index).collect();
    assert_eq!(at, vec![0, 2]);
}

#[test]
fn results_omit_values_except_for_get() {
    let mut h = fixture();
    let (i_a, d_modify) = (h.get("a").modify_index, h.get("d").modify_index);
    let ops = vec![
        kv_val(KvVerb::Set, "s", "sv"),       // 0: entry, no value
        kv(KvVerb::Get, "a"),                 // 1: entry with value
        kv_idx(KvVerb::CheckIndex, "a", i_a), // 2: entry, no value
        TxnOp::Kv(KvOp {
            value: b"cv".to_vec(),
            ..op(KvVerb::Cas, "new")
        }), // 3: cas 0 creates
        TxnOp::Kv(KvOp {
            value: b"lv".to_vec(),
            session: "s2".into(),
            ..op(KvVerb::Lock, "d")
        }), // 4
        kv_sess(KvVerb::CheckSession, "d", "s2"), // 5: entry, no value
        TxnOp::Kv(KvOp {
            value: b"uv".to_vec(),
            session: "s2".into(),
            ..op(KvVerb::Unlock, "d")
        }), // 6
    ];
    let mut ops = ops;
    ops.extend([
        kv(KvVerb::GetTree, "t/"),               // 7, 8: with values
        kv(KvVerb::Delete, "a"),                 // no result
        kv_idx(KvVerb::DeleteCas, "nothing", 5), // no result
        kv(KvVerb::DeleteTree, "t/"),            // no result
        kv(KvVerb::CheckNotExists, "t/x"),       // no result
    ]);
    let (out, changes) = h.apply(txn(ops));
    let i = h.idx();
    let r = txn_ok(out);
    assert_eq!(r.len(), 9, "{r:?}");

    assert_eq!(
        (
            r[0].key.as_str(),
            r[0].value.len(),
            r[0].create_index,
            r[0].modify_index
        ),
        ("s", 0, i, i)
    );
    assert_eq!(
        (r[1].key.as_str(), r[1].value.as_slice()),
        ("a", &b"a0"[..])
    );
    assert_eq!(
        (r[2].key.as_str(), r[2].value.len(), r[2].modify_index),
        ("a", 0, i_a)
    );
    assert_eq!(
        (r[3].key.as_str(), r[3].value.len(), r[3].modify_index),
        ("new", 0, i)
    );
    assert_eq!((r[4].key.as_str(), r[4].value.len()), ("d", 0));
    assert_eq!((r[4].session.as_deref(), r[4].lock_index), (Some("s2"), 2));
    assert!(r[4].modify_index == i && d_modify < i);
    assert_eq!(
        (r[5].key.as_str(), r[5].value.len(), r[5].session.as_deref()),
        ("d", 0, Some("s2"))
    );
    assert_eq!(
        (r[6].key.as_str(), r[6].value.len(), r[6].session.as_deref()),
        ("d", 0, None)
    );
    // get-tree keeps values, as Consul's does.
    assert_eq!(
        (r[7].key.as_str(), r[7].value.as_slice()),
        ("t/b", &b"b0"[..])
    );
    assert_eq!(
        (r[8].key.as_str(), r[8].value.as_slice()),
        ("t/x", &b"x0"[..])
    );

    // The store keeps the values the results leave out.
    assert_eq!(h.get("s").value, b"sv");
    assert_eq!(h.get("new").value, b"cv");
    assert_eq!(h.get("d").value, b"uv");
    assert!(!h.has("a") && !h.has("t/b") && !h.has("t/x"));
    assert_eq!(
        keys_of(&changes),
        strs(&["a", "d", "new", "s", "t/b", "t/x"])
    );
    assert_eq!(changes.tables, vec![Table::Kv]);
    // t/b was held by s1 and deleted inside the transaction: s1 holds only l now.
    assert_eq!(h.store.kv.held_by("s1"), strs(&["l"]));
}

#[test]
fn txn_set_keeps_the_lock_holder() {
    let mut h = fixture();
    let out = h.out(txn(vec![kv_val(KvVerb::Set, "l", "new")]));
    let r = txn_ok(out);
    assert_eq!(
        (r[0].session.as_deref(), r[0].lock_index, r[0].value.len()),
        (Some("s1"), 1, 0)
    );
    assert_eq!(h.get("l").session.as_deref(), Some("s1"));
}

#[test]
fn read_only_transaction_changes_nothing() {
    let mut h = fixture();
    let before = h.store.clone();
    let ops = vec![
        kv(KvVerb::Get, "a"),
        kv(KvVerb::GetTree, ""),
        kv(KvVerb::CheckNotExists, "c"),
    ];
    let (out, changes) = h.apply(txn(ops.clone()));
    let applied = txn_ok(out);
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
    let read: Vec<KvEntry> = h
        .store
        .read_txn(&ops)
        .unwrap()
        .into_iter()
        .map(|r| kv_result(&r).clone())
        .collect();
    assert_eq!(read, applied);
    assert_eq!(read.len(), 1 + h.store.kv_len());

    let errs = h
        .store
        .read_txn(&[kv(KvVerb::Get, "a"), kv(KvVerb::CheckIndex, "a")])
        .unwrap_err();
    assert_eq!(errs[0].op_index, 1);
    assert!(
        h.store.read_txn(&[kv_val(KvVerb::Set, "a", "x")]).is_err(),
        "writes are not reads"
    );
}

#[test]
fn empty_transaction_is_ok() {
    let mut h = fixture();
    let before = h.store.clone();
    let (out, changes) = h.apply(txn(vec![]));
    assert_eq!(out, Outcome::Txn(Ok(vec![])));
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
}

#[test]
fn verbs_parse_consul_names() {
    for (name, verb) in [
        ("set", KvVerb::Set),
        ("delete", KvVerb::Delete),
        ("delete-cas", KvVerb::DeleteCas),
        ("delete-tree", KvVerb::DeleteTree),
        ("cas", KvVerb::Cas),
        ("lock", KvVerb::Lock),
        ("unlock", KvVerb::Unlock),
        ("get", KvVerb::Get),
        ("get-tree", KvVerb::GetTree),
        ("check-index", KvVerb::CheckIndex),
        ("check-session", KvVerb::CheckSession),
        ("check-not-exists", KvVerb::CheckNotExists),
    ] {
        assert_eq!(KvVerb::parse(name), Some(verb));
        assert_eq!(
            verb.is_read(),
            name.starts_with("get") || name.starts_with("check")
        );
    }
    assert_eq!(KvVerb::parse("Set"), None);
}
