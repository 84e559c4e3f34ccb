//! Catalog operations in transactions (Consul's `txnNode`, `txnService`, `txnCheck` in
//! `agent/consul/state/txn.go`): every verb, its error text, CAS rules, and all-or-nothing
//! across KV, catalog and sessions.

use super::*;
use crate::catalog::{self as cat, CheckStatus, HealthCheck};
use crate::txn::{CatalogVerb as V, CheckOp, NodeOp, ServiceOp};

fn cnode(name: &str) -> cat::Node {
    cat::Node {
        id: format!("00000000-0000-0000-0000-0000000000{:0>2}", name.len()),
        name: name.into(),
        address: "10.0.0.9".into(),
        datacenter: "dc1".into(),
        ..Default::default()
    }
}

fn node_op(verb: V, node: cat::Node) -> TxnOp {
    TxnOp::Node(NodeOp { verb, node })
}

fn service_op(verb: V, node: &str, id: &str, modify_index: u64) -> TxnOp {
    TxnOp::Service(ServiceOp {
        verb,
        node: node.into(),
        service: cat::Service {
            id: id.into(),
            name: "web".into(),
            tags: strs(&["v1"]),
            port: 80,
            modify_index,
            ..Default::default()
        },
    })
}

fn check_op(verb: V, node: &str, id: &str, service: &str, status: CheckStatus) -> TxnOp {
    let mut check = HealthCheck::new(node, id, id);
    check.service_id = service.into();
    check.status = status;
    TxnOp::Check(CheckOp { verb, check })
}

fn results(out: Outcome) -> Vec<TxnResult> {
    match out {
        Outcome::Txn(Ok(r)) => r,
        other => panic!("expected a successful transaction, got {other:?}"),
    }
}

/// The error a read-only transaction of `op` alone answers.
fn read_error(h: &H, op: TxnOp) -> String {
    h.store.read_txn(&[op]).unwrap_err()[0].what.clone()
}

fn errors(out: Outcome) -> Vec<(usize, String)> {
    match out {
        Outcome::Txn(Err(e)) => e.into_iter().map(|e| (e.op_index, e.what)).collect(),
        other => panic!("expected a failed transaction, got {other:?}"),
    }
}

#[test]
fn node_verbs_set_get_cas_and_delete() {
    let mut h = H::with_node();
    let r = results(h.out(txn(vec![node_op(V::Set, cnode("n2"))])));
    let idx = h.idx();
    let TxnResult::Node(n) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!((n.create_index, n.modify_index), (idx, idx));
    assert_eq!(n.address, "10.0.0.9");

    // get by name, and by ID (which wins over the name).
    let by_name = node_op(
        V::Get,
        cat::Node {
            name: "n2".into(),
            ..Default::default()
        },
    );
    let by_id = node_op(
        V::Get,
        cat::Node {
            id: cnode("n2").id.to_uppercase(),
            name: "ignored".into(),
            ..Default::default()
        },
    );
    let got = h.store.read_txn(&[by_name, by_id]).unwrap();
    assert!(
        matches!(&got[..], [TxnResult::Node(a), TxnResult::Node(b)] if a.name == "n2" && b.name == "n2")
    );

    // cas 0 on an existing node, or a stale index, fails with Consul's text.
    let stale = cat::Node {
        modify_index: idx + 7,
        ..cnode("n2")
    };
    let e = errors(h.out(txn(vec![
        node_op(V::Cas, cnode("n2")),
        node_op(V::Cas, stale),
        node_op(
            V::DeleteCas,
            cat::Node {
                modify_index: 1,
                ..cnode("n2")
            },
        ),
        node_op(V::DeleteCas, cnode("nope")),
    ])));
    assert_eq!(
        e,
        vec![
            (0, r#"failed to set node "n2", index is stale"#.into()),
            (1, r#"failed to set node "n2", index is stale"#.into()),
            (2, r#"failed to delete node "n2", index is stale"#.into()),
            (3, r#"failed to delete node "nope", index is stale"#.into()),
        ]
    );
    let moved = cat::Node {
        address: "10.0.0.10".into(),
        modify_index: idx,
        ..cnode("n2")
    };
    let r = results(h.out(txn(vec![node_op(V::Cas, moved)])));
    assert!(
        matches!(&r[0], TxnResult::Node(n) if n.address == "10.0.0.10" && n.create_index == idx)
    );
    let now = h.store.node("n2").unwrap().modify_index;
    let r = results(h.out(txn(vec![
        node_op(
            V::DeleteCas,
            cat::Node {
                modify_index: now,
                ..cnode("n2")
            },
        ),
        node_op(V::Delete, cnode("never-there")),
    ])));
    assert!(r.is_empty());
    assert!(h.store.node("n2").is_none());
    assert_eq!(
        read_error(&h, node_op(V::Get, cnode("n2"))),
        r#"node "n2" doesn't exist"#
    );
}

#[test]
fn service_verbs_need_the_node_and_follow_cas_rules() {
    let mut h = H::with_node();
    let e = errors(h.out(txn(vec![service_op(V::Set, "ghost", "web1", 0)])));
    assert_eq!(e, vec![(0, "Missing node registration".into())]);

    let r = results(h.out(txn(vec![service_op(V::Cas, NODE, "web1", 0)])));
    let idx = h.idx();
    assert!(matches!(&r[0], TxnResult::Service(s) if s.id == "web1" && s.modify_index == idx));
    let e = errors(h.out(txn(vec![
        service_op(V::Cas, NODE, "web1", 0),
        service_op(V::DeleteCas, NODE, "web1", idx + 1),
        service_op(V::DeleteCas, NODE, "other", 0),
    ])));
    assert_eq!(
        e,
        vec![
            (
                0,
                format!(r#"failed to set service "web1" on node "{NODE}", index is stale"#)
            ),
            (
                1,
                format!(r#"failed to delete service "web1" on node "{NODE}", index is stale"#)
            ),
            (
                2,
                format!(r#"failed to delete service "other" on node "{NODE}", index is stale"#)
            ),
        ]
    );
    // A check on it, then deleting the service takes the check along.
    h.ok(txn(vec![check_op(
        V::Set,
        NODE,
        "c1",
        "web1",
        CheckStatus::Passing,
    )]));
    let (_, rows) = h.store.service_health("web", &Default::default(), false);
    assert_eq!(rows[0].checks.len(), 2); // serfHealth + c1
    h.ok(txn(vec![service_op(V::DeleteCas, NODE, "web1", idx)]));
    assert!(h.store.service(NODE, "web1").is_none());
    assert!(h.store.check(NODE, "c1").is_none());
    assert_eq!(
        read_error(&h, service_op(V::Get, NODE, "web1", 0)),
        format!(r#"service "web1" on node "{NODE}" doesn't exist"#)
    );
}

#[test]
fn check_verbs_copy_the_service_and_refuse_what_is_missing() {
    let mut h = H::with_node();
    h.ok(txn(vec![service_op(V::Set, NODE, "web1", 0)]));
    let e = errors(h.out(txn(vec![
        check_op(V::Set, NODE, "c1", "nope", CheckStatus::Passing),
        check_op(V::Set, "ghost", "c2", "", CheckStatus::Passing),
    ])));
    assert_eq!(
        e,
        vec![
            (0, "Missing service registration".into()),
            (1, "Missing node registration".into()),
        ]
    );
    let r = results(h.out(txn(vec![check_op(
        V::Set,
        NODE,
        "c1",
        "web1",
        CheckStatus::Warning,
    )])));
    let TxnResult::Check(c) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(
        (c.service_name.as_str(), c.status),
        ("web", CheckStatus::Warning)
    );
    assert_eq!(c.service_tags, strs(&["v1"]));
    let idx = c.modify_index;
    let e = errors(h.out(txn(vec![
        check_op(V::Cas, NODE, "c1", "web1", CheckStatus::Passing),
        check_op(V::DeleteCas, NODE, "c9", "", CheckStatus::Passing),
    ])));
    assert_eq!(
        e,
        vec![
            (
                0,
                format!(r#"failed to set check "c1" on node "{NODE}", index is stale"#)
            ),
            (
                1,
                format!(r#"failed to delete check "c9" on node "{NODE}", index is stale"#)
            ),
        ]
    );
    let mut cas = HealthCheck::new(NODE, "c1", "c1");
    cas.service_id = "web1".into();
    cas.status = CheckStatus::Passing;
    cas.modify_index = idx;
    h.ok(txn(vec![TxnOp::Check(CheckOp {
        verb: V::Cas,
        check: cas,
    })]));
    assert_eq!(
        h.store.check(NODE, "c1").unwrap().status,
        CheckStatus::Passing
    );
    h.ok(txn(vec![check_op(
        V::Delete,
        NODE,
        "c1",
        "",
        CheckStatus::Passing,
    )]));
    assert!(h.store.check(NODE, "c1").is_none());
    assert_eq!(
        read_error(&h, check_op(V::Get, NODE, "c1", "", CheckStatus::Passing)),
        format!(r#"check "c1" on node "{NODE}" doesn't exist"#)
    );
}

#[test]
fn a_failed_transaction_undoes_catalog_kv_and_session_changes() {
    let mut h = H::with_sessions();
    // s1 holds a lock and is bound to a check that the transaction turns critical.
    h.ok(txn(vec![check_op(
        V::Set,
        NODE,
        "guard",
        "",
        CheckStatus::Passing,
    )]));
    h.ok(create(Session {
        node_checks: strs(&["guard"]),
        ..session("s3")
    }));
    h.ok(lock("locked", "v", "s3"));
    let before = h.store.clone();
    let watched = [
        WatchKey::Service("web".into()),
        WatchKey::Node(NODE.into()),
        WatchKey::Node("n2".into()),
        WatchKey::Table(Table::Nodes),
        WatchKey::Table(Table::Services),
        WatchKey::Table(Table::Checks),
        WatchKey::Table(Table::Sessions),
        WatchKey::Key("locked".into()),
    ];
    let indexes: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();

    let (out, changes) = h.apply(txn(vec![
        node_op(V::Set, cnode("n2")),
        service_op(V::Set, NODE, "web1", 0),
        check_op(V::Set, NODE, "guard", "", CheckStatus::Critical),
        kv_val(KvVerb::Set, "k", "v"),
        node_op(V::Delete, cnode(NODE)),
        kv(KvVerb::Get, "missing"),
    ]));
    assert_eq!(
        errors(out),
        vec![(5, r#"key "missing" doesn't exist"#.into())]
    );
    assert!(changes.is_empty() && changes.services.is_empty() && changes.nodes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
    assert_eq!(
        h.store.session_get("s3").1.map(|s| s.id.as_str()),
        Some("s3")
    );
    assert_eq!(h.get("locked").session.as_deref(), Some("s3"));
    let after: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();
    assert_eq!(after, indexes);
}

#[test]
fn a_successful_transaction_reports_what_it_touched() {
    let mut h = H::with_sessions();
    h.ok(create(Session {
        node_checks: strs(&[SERF_HEALTH]),
        ..session("s3")
    }));
    let changes = h.ok(txn(vec![
        service_op(V::Set, NODE, "web1", 0),
        check_op(V::Set, NODE, SERF_HEALTH, "", CheckStatus::Critical),
    ]));
    for key in [
        WatchKey::Service("web".into()),
        WatchKey::Node(NODE.into()),
        WatchKey::Table(Table::Services),
        WatchKey::Table(Table::Checks),
        WatchKey::Table(Table::Sessions),
    ] {
        assert!(changes.affects(&key), "{key:?} not touched");
        assert_eq!(h.wi(&key), h.idx(), "{key:?}");
    }
    assert!(!changes.affects(&WatchKey::Service("other".into())));
    // The critical serfHealth invalidated the session bound to it, as a register would.
    assert!(h.store.session_get("s3").1.is_none());
}

#[test]
fn read_only_catalog_transactions_read_without_writing() {
    let mut h = H::with_node();
    h.ok(txn(vec![service_op(V::Set, NODE, "web1", 0)]));
    let ops = vec![
        node_op(
            V::Get,
            cat::Node {
                name: NODE.into(),
                ..Default::default()
            },
        ),
        service_op(V::Get, NODE, "web1", 0),
        check_op(V::Get, NODE, SERF_HEALTH, "", CheckStatus::Passing),
    ];
    assert!(ops.iter().all(TxnOp::is_read));
    let before = h.store.clone();
    let read = h.store.read_txn(&ops).unwrap();
    assert_eq!(read.len(), 3);
    let (out, changes) = h.apply(txn(ops));
    assert_eq!(results(out), read);
    assert!(changes.is_empty());
    assert_eq!(h.store, unchanged(&before, &h.store));
}
