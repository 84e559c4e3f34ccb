//! Sessions: creation checks, destroy with release/delete behaviour, lock-delay.

use super::*;

#[test]
fn create_needs_a_registered_node() {
    let mut h = H::new();
    let before = h.store.clone();
    let (out, changes) = h.apply(create(session("s1")));
    assert_eq!(out, Outcome::Rejected(StoreError::MissingNode));
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
    assert_eq!(
        StoreError::MissingNode.to_string(),
        "Missing node registration"
    );

    // Another node being registered does not help.
    h.ok(Command::NodeRegister {
        node: node("other"),
        checks: vec![],
    });
    assert_eq!(
        h.out(create(session("s1"))),
        Outcome::Rejected(StoreError::MissingNode)
    );
    h.ok(Command::NodeRegister {
        node: node(NODE),
        checks: vec![],
    });
    assert_eq!(h.out(create(session("s1"))), Outcome::Done);
}

#[test]
fn create_needs_its_checks() {
    let mut h = H::with_node(); // NODE has a passing serfHealth
    let with_checks = |id: &str, checks: &[&str]| Session {
        node_checks: strs(checks),
        ..session(id)
    };

    let (out, changes) = h.apply(create(with_checks("s1", &[SERF_HEALTH, "disk"])));
    assert_eq!(
        out,
        Outcome::Rejected(StoreError::MissingCheck("disk".into()))
    );
    assert!(changes.is_empty());
    assert_eq!(
        StoreError::MissingCheck("disk".into()).to_string(),
        "Missing check 'disk' registration"
    );
    assert!(h.store.session_get("s1").1.is_none());

    // A check on another node does not count.
    h.ok(Command::NodeRegister {
        node: node("other"),
        checks: vec![check("disk", "passing")],
    });
    assert_eq!(
        h.out(create(with_checks("s1", &["disk"]))),
        Outcome::Rejected(StoreError::MissingCheck("disk".into()))
    );

    // A critical check refuses the session.
    h.ok(Command::NodeRegister {
        node: node(NODE),
        checks: vec![check("disk", "critical")],
    });
    let err = StoreError::CheckCritical("disk".into(), "critical".into());
    assert_eq!(
        h.out(create(with_checks("s1", &["disk"]))),
        Outcome::Rejected(err.clone())
    );
    assert_eq!(err.to_string(), "Check 'disk' is in critical state");

    // Warning is fine (Consul only refuses critical).
    h.ok(Command::NodeRegister {
        node: node(NODE),
        checks: vec![check("disk", "warning")],
    });
    assert_eq!(
        h.out(create(with_checks("s1", &[SERF_HEALTH, "disk"]))),
        Outcome::Done
    );

    // Service checks cannot exist yet.
    let svc = Session {
        service_checks: vec![ServiceCheckRef {
            id: "web".into(),
            namespace: String::new(),
        }],
        ..session("s2")
    };
    assert_eq!(
        h.out(create(svc)),
        Outcome::Rejected(StoreError::MissingCheck("web".into()))
    );
}

#[test]
fn create_sets_indexes_and_refuses_duplicates() {
    let mut h = H::with_node();
    let (out, changes) = h.apply(create(Session {
        create_index: 99,
        modify_index: 99,
        ..session("s1")
    }));
    assert_eq!(out, Outcome::Done);
    assert_eq!(changes.tables, vec![Table::Sessions]);
    assert!(changes.keys.is_empty());
    let (idx, s) = h.store.session_get("s1");
    let s = s.unwrap();
    assert_eq!((idx, s.create_index, s.modify_index), (2, 2, 2));

    let before = h.store.clone();
    let (out, changes) = h.apply(create(Session {
        name: "again".into(),
        ..session("s1")
    }));
    assert_eq!(out, Outcome::Rejected(StoreError::SessionExists));
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));

    let (idx, all) = h.store.session_list();
    assert_eq!((idx, all.len()), (2, 1));
    assert_eq!(h.store.session_list_node(NODE).1.len(), 1);
    assert_eq!(h.store.session_list_node("other").1.len(), 0);
}

#[test]
fn destroy_with_release_clears_session_and_bumps_modify_index() {
    let mut h = H::with_sessions();
    h.ok(lock("a", "1", "s1"));
    h.ok(lock("b", "2", "s1"));
    h.ok(lock("c", "3", "s2"));
    h.ok(set("d", "4"));
    let (a, c, d) = (h.get("a"), h.get("c"), h.get("d"));

    let (out, changes) = h.apply(destroy("s1", 1_000));
    assert_eq!(out, Outcome::Bool(true));
    let i = h.idx();
    assert_eq!(keys_of(&changes), strs(&["a", "b"]));
    assert!(changes.tables.contains(&Table::Sessions));
    assert!(changes.tables.contains(&Table::Kv));

    let e = h.get("a");
    assert_eq!(e.session, None);
    assert_eq!(e.modify_index, i);
    assert_eq!(
        (e.create_index, e.lock_index, e.value.as_slice()),
        (a.create_index, 1, &b"1"[..])
    );
    assert_eq!(h.get("b").session, None);
    assert_eq!(h.get("c"), c, "another session's lock is untouched");
    assert_eq!(h.get("d"), d);
    assert!(h.store.session_get("s1").1.is_none());
    assert_eq!(h.store.session_get("s1").0, i);
    assert!(h.store.kv.held_by("s1").is_empty());

    // The released key can be acquired by someone else; its LockIndex grows.
    h.ok(lock("a", "x", "s2"));
    assert_eq!(h.get("a").lock_index, 2);
}

#[test]
fn destroy_with_delete_removes_the_keys() {
    let mut h = H::with_node();
    h.ok(create(Session {
        behavior: SessionBehavior::Delete,
        ..session("s1")
    }));
    h.ok(create(session("s2")));
    h.ok(lock("p/a", "1", "s1"));
    h.ok(lock("p/b", "2", "s1"));
    h.ok(lock("p/c", "3", "s2"));

    let (out, changes) = h.apply(destroy("s1", 0));
    assert_eq!(out, Outcome::Bool(true));
    let i = h.idx();
    assert_eq!(keys_of(&changes), strs(&["p/a", "p/b"]));
    assert!(!h.has("p/a") && !h.has("p/b"));
    assert!(h.has("p/c"));
    assert_eq!(h.store.kv.tombstones.get("p/a"), Some(&i));
    assert_eq!(h.wi(&WatchKey::Prefix("p/".into())), i);
    assert_eq!(h.wi(&WatchKey::Key("p/a".into())), i);
}

#[test]
fn destroy_of_unknown_session_is_true_and_changes_nothing() {
    let mut h = H::with_sessions();
    let before = h.store.clone();
    let (out, changes) = h.apply(destroy("nope", 5));
    assert_eq!(out, Outcome::Bool(true));
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
}

fn delayed(id: &str, behavior: SessionBehavior, delay_ms: u64) -> Session {
    Session {
        lock_delay_ns: delay_ms * 1_000_000,
        behavior,
        ..session(id)
    }
}

#[test]
fn lock_delay_after_release() {
    const T: u64 = 1_700_000_000_000;
    let mut h = H::with_sessions();
    h.ok(create(delayed("d", SessionBehavior::Release, 1_000)));
    h.ok(lock("k", "v", "d"));
    h.ok(lock("other", "v", "s1"));
    h.ok(destroy("d", T));

    assert!(h.store.lock_delayed("k", T));
    assert!(h.store.lock_delayed("k", T + 999));
    assert!(!h.store.lock_delayed("k", T + 1_000));
    assert!(!h.store.lock_delayed("other", T + 1));

    let before = h.store.clone();
    for now in [T, T + 500, T + 999] {
        let (out, changes) = h.apply(lock_at("k", "x", "s1", now));
        assert_eq!(out, Outcome::Bool(false), "lock at T+{} must wait", now - T);
        assert!(changes.is_empty());
    }
    assert_eq!(h.store, unchanged(&before, &h.store));
    // A plain set is not a lock and is allowed; the key stays unlocked.
    h.ok(set("k", "plain"));
    assert_eq!(h.get("k").session, None);

    assert_eq!(
        h.out(lock_at("k", "x", "s1", T + 1_000)),
        Outcome::Bool(true)
    );
    let e = h.get("k");
    assert_eq!((e.session.as_deref(), e.lock_index), (Some("s1"), 2));
}

#[test]
fn lock_delay_after_delete_behaviour_and_in_transactions() {
    const T: u64 = 50_000;
    let mut h = H::with_sessions();
    h.ok(create(delayed("d", SessionBehavior::Delete, 1_000)));
    h.ok(lock("k", "v", "d"));
    h.ok(destroy("d", T));
    assert!(!h.has("k"));

    assert_eq!(h.out(lock_at("k", "x", "s1", T + 10)), Outcome::Bool(false));
    assert!(!h.has("k"));

    // A transaction lock also honours the delay (and rolls back as a whole).
    let (out, changes) = h.apply(Command::Txn {
        ops: vec![
            kv_val(KvVerb::Set, "z", "1"),
            kv_sess(KvVerb::Lock, "k", "s1"),
        ],
        now_ms: T + 10,
    });
    match out {
        Outcome::Txn(Err(errs)) => assert_eq!(errs[0].op_index, 1),
        other => panic!("expected a failed transaction, got {other:?}"),
    }
    assert!(changes.is_empty());
    assert!(!h.has("z"));

    assert_eq!(
        h.out(lock_at("k", "x", "s1", T + 1_000)),
        Outcome::Bool(true)
    );
    assert_eq!(h.get("k").lock_index, 1, "a new key starts at LockIndex 1");
}

#[test]
fn no_lock_delay_without_one_configured() {
    let mut h = H::with_sessions();
    h.ok(lock("k", "v", "s1"));
    h.ok(destroy("s1", 100));
    assert!(!h.store.lock_delayed("k", 100));
    assert_eq!(h.out(lock_at("k", "x", "s2", 100)), Outcome::Bool(true));
}

/// Consul's state store caps every lock-delay at `structs.MaxLockDelay` (60 s) when it applies
/// it (`deleteSessionTxn` in `agent/consul/state/session.go`).
#[test]
fn lock_delay_is_capped_at_60_seconds_like_consul() {
    const T: u64 = 1_000_000;
    let mut h = H::with_sessions();
    h.ok(create(delayed("d", SessionBehavior::Release, 3_600_000))); // one hour
    h.ok(lock("k", "v", "d"));
    h.ok(destroy("d", T));
    assert!(h.store.lock_delayed("k", T + 59_999));
    assert!(
        !h.store.lock_delayed("k", T + 60_000),
        "lock-delay must not exceed Consul's MaxLockDelay of 60s"
    );
    assert_eq!(
        h.out(lock_at("k", "x", "s1", T + 60_000)),
        Outcome::Bool(true)
    );
}

#[test]
fn store_error_texts_are_consuls() {
    assert_eq!(StoreError::MissingSession.to_string(), "missing session");
    assert_eq!(
        StoreError::InvalidSession("abc".into()).to_string(),
        "invalid session \"abc\""
    );
    assert_eq!(
        StoreError::SessionExists.to_string(),
        "Session already exists"
    );
}

#[test]
fn node_register_keeps_create_index() {
    let mut h = H::new();
    let (_, changes) = h.apply(Command::NodeRegister {
        node: node("n"),
        checks: vec![],
    });
    assert_eq!(changes.tables, vec![Table::Nodes]);
    assert!(changes.keys.is_empty());
    h.ok(Command::NodeRegister {
        node: Node {
            address: "10.0.0.1".into(),
            ..node("n")
        },
        checks: vec![check("c", "passing")],
    });
    let n = h.store.node("n").unwrap();
    assert_eq!(
        (n.create_index, n.modify_index, n.address.as_str()),
        (1, 2, "10.0.0.1")
    );
    let c = h.store.check("n", "c").unwrap();
    assert_eq!(
        (c.node.as_str(), c.create_index, c.modify_index),
        ("n", 2, 2)
    );
    assert_eq!(h.store.catalog_counts().0, 1);
    assert_eq!(h.wi(&WatchKey::Table(Table::Nodes)), 2);
}

#[test]
fn session_queries_for_the_leader() {
    let mut h = H::with_node();
    h.ok(create(Session {
        ttl: "30s".into(),
        node_checks: strs(&[SERF_HEALTH]),
        ..session("a")
    }));
    h.ok(create(session("b")));
    assert_eq!(
        h.store.session_ttls(),
        vec![("a".to_string(), "30s".to_string())]
    );
    assert_eq!(h.store.sessions_on_check(NODE, ""), strs(&["a"]));
    assert_eq!(h.store.sessions_on_check(NODE, SERF_HEALTH), strs(&["a"]));
    assert!(h.store.sessions_on_check("other", "").is_empty());
}
