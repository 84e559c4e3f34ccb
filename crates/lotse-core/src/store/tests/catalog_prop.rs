//! Model-based property tests for the catalog: random register/deregister sequences, catalog
//! transactions (some made to fail) and sessions bound to checks, over a tiny space of nodes,
//! services, checks, sessions and keys (so that collisions, renames, cascades and
//! invalidations happen often). After every step the store must answer what a plain model
//! holds ([`catalog_model`](super::catalog_model)), and keep its own invariants: lookups that
//! agree with its tables, indexes that move whenever what they cover changed and never go
//! back, and a refused command or failed transaction that changed nothing.

use super::catalog_model::{Model, Op, TxOp, CHECK_IDS, KEYS, NAMES, NODES, NODE_IDS, SESSIONS};
use super::catalog_model::{SERVICE_IDS, STATUSES};
use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

use crate::catalog::{self as cat, DeregisterRequest, RegisterRequest};
use crate::snapshot::SnapshotImage;
use crate::store::ServiceQuery;
use crate::txn::{CatalogVerb, CheckOp, NodeOp, ServiceOp};

fn check_spec() -> impl Strategy<Value = (usize, Option<usize>, usize)> {
    (0..4usize, proptest::option::of(0..3usize), 0..3usize)
}

fn tx_op() -> impl Strategy<Value = TxOp> {
    prop_oneof![
        2 => (0..3usize, 0..4usize, 0..2u8)
            .prop_map(|(node, id, address)| TxOp::NodeSet { node, id, address }),
        1 => (0..3usize).prop_map(TxOp::NodeDelete),
        3 => (0..3usize, (0..3usize, 0..2usize, 0..2u8))
            .prop_map(|(node, service)| TxOp::ServiceSet { node, service }),
        1 => (0..3usize, 0..3usize).prop_map(|(n, s)| TxOp::ServiceDelete(n, s)),
        3 => (0..3usize, check_spec()).prop_map(|(node, check)| TxOp::CheckSet { node, check }),
        1 => (0..3usize, 0..4usize).prop_map(|(n, c)| TxOp::CheckDelete(n, c)),
        1 => (0..2usize, 0..3usize).prop_map(|(key, session)| TxOp::Lock { key, session }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..4usize, 0..2u8, proptest::bool::weighted(0.2),
              proptest::option::of((0..3usize, 0..2usize, 0..2u8)),
              proptest::collection::vec(check_spec(), 0..3))
            .prop_map(|(node, id, address, skip, service, checks)| Op::Register {
                node, id, address, skip, service, checks,
            }),
        1 => (0..3usize, 0..4usize, 0..3usize)
            .prop_map(|(node, id, status)| Op::Legacy { node, id, status }),
        1 => (0..3usize).prop_map(Op::DeregisterNode),
        2 => (0..3usize, 0..3usize).prop_map(|(n, s)| Op::DeregisterService(n, s)),
        2 => (0..3usize, 0..4usize).prop_map(|(n, c)| Op::DeregisterCheck(n, c)),
        2 => (0..3usize, 0..3usize, proptest::collection::vec((0..4usize, any::<bool>()), 0..3))
            .prop_map(|(session, node, checks)| Op::SessionCreate { session, node, checks }),
        1 => (0..3usize).prop_map(Op::SessionDestroy),
        2 => (0..2usize, 0..3usize).prop_map(|(key, session)| Op::Lock { key, session }),
        3 => (proptest::collection::vec(tx_op(), 1..5), proptest::bool::weighted(0.3))
            .prop_map(|(ops, fail)| Op::Txn { ops, fail }),
    ]
}

fn cnode(node: usize, id: usize, address: u8) -> cat::Node {
    cat::Node {
        id: NODE_IDS[id].into(),
        name: NODES[node].into(),
        address: format!("10.0.0.{address}"),
        datacenter: "dc1".into(),
        ..Default::default()
    }
}

fn csvc((s, name, tag): (usize, usize, u8)) -> cat::Service {
    cat::Service {
        id: SERVICE_IDS[s].into(),
        name: NAMES[name].into(),
        tags: vec![format!("t{tag}")],
        ..Default::default()
    }
}

fn ccheck(node: usize, (c, sid, status): (usize, Option<usize>, usize)) -> cat::HealthCheck {
    cat::HealthCheck {
        service_id: sid.map_or(String::new(), |s| SERVICE_IDS[s].to_string()),
        status: STATUSES[status],
        ..cat::HealthCheck::new(NODES[node], CHECK_IDS[c], "check")
    }
}

fn dereq(node: usize, service: Option<usize>, check: Option<usize>) -> DeregisterRequest {
    DeregisterRequest {
        node: NODES[node].into(),
        service_id: service.map(|s| SERVICE_IDS[s].to_string()),
        check_id: check.map(|c| CHECK_IDS[c].to_string()),
    }
}

/// The session `SESSIONS[i]`: each has its own behaviour and lock-delay.
fn fixture_session(i: usize, node: usize, checks: &[(usize, bool)]) -> Session {
    let (behavior, lock_delay_ns) = super::catalog_model::session_kind(i);
    let named = |service: bool| {
        checks
            .iter()
            .filter(move |(_, s)| *s == service)
            .map(|(c, _)| CHECK_IDS[*c].to_string())
    };
    Session {
        node: NODES[node].into(),
        lock_delay_ns,
        behavior,
        node_checks: named(false).collect(),
        service_checks: named(true)
            .map(|id| ServiceCheckRef {
                id,
                namespace: String::new(),
            })
            .collect(),
        ..session(SESSIONS[i])
    }
}

fn tx(op: &TxOp) -> TxnOp {
    let modify_index = 0;
    match op {
        TxOp::NodeSet { node, id, address } => TxnOp::Node(NodeOp {
            verb: CatalogVerb::Set,
            node: cnode(*node, *id, *address),
        }),
        TxOp::NodeDelete(node) => TxnOp::Node(NodeOp {
            verb: CatalogVerb::Delete,
            node: cat::Node {
                name: NODES[*node].into(),
                ..Default::default()
            },
        }),
        TxOp::ServiceSet { node, service } => TxnOp::Service(ServiceOp {
            verb: CatalogVerb::Set,
            node: NODES[*node].into(),
            service: csvc(*service),
        }),
        TxOp::ServiceDelete(node, s) => TxnOp::Service(ServiceOp {
            verb: CatalogVerb::Delete,
            node: NODES[*node].into(),
            service: cat::Service {
                id: SERVICE_IDS[*s].into(),
                modify_index,
                ..Default::default()
            },
        }),
        TxOp::CheckSet { node, check } => TxnOp::Check(CheckOp {
            verb: CatalogVerb::Set,
            check: ccheck(*node, *check),
        }),
        TxOp::CheckDelete(node, c) => TxnOp::Check(CheckOp {
            verb: CatalogVerb::Delete,
            check: ccheck(*node, (*c, None, 0)),
        }),
        TxOp::Lock { key, session } => kv_sess(KvVerb::Lock, KEYS[*key], SESSIONS[*session]),
    }
}

fn command(op: &Op, now_ms: u64) -> Command {
    match op {
        Op::Register {
            node,
            id,
            address,
            service,
            checks,
            skip,
        } => Command::CatalogRegister {
            req: Box::new(RegisterRequest {
                node: cnode(*node, *id, *address),
                skip_node_update: *skip,
                service: service.map(csvc),
                checks: checks.iter().map(|c| ccheck(*node, *c)).collect(),
            }),
            now_ms,
        },
        Op::Legacy { node, id, status } => Command::NodeRegister {
            node: crate::node::Node {
                id: NODE_IDS[*id].into(),
                address: "10.0.0.0".into(),
                datacenter: "dc1".into(),
                ..super::node(NODES[*node])
            },
            checks: vec![crate::node::NodeCheck {
                node: NODES[*node].into(),
                status: STATUSES[*status].as_str().into(),
                ..super::check(SERF_HEALTH, "")
            }],
        },
        Op::DeregisterNode(n) => Command::CatalogDeregister {
            req: dereq(*n, None, None),
            now_ms,
        },
        Op::DeregisterService(n, s) => Command::CatalogDeregister {
            req: dereq(*n, Some(*s), None),
            now_ms,
        },
        Op::DeregisterCheck(n, c) => Command::CatalogDeregister {
            req: dereq(*n, None, Some(*c)),
            now_ms,
        },
        Op::SessionCreate {
            session,
            node,
            checks,
        } => Command::SessionCreate {
            session: fixture_session(*session, *node, checks),
            now_ms,
        },
        Op::SessionDestroy(s) => destroy(SESSIONS[*s], now_ms),
        Op::Lock { key, session } => lock_at(KEYS[*key], "v", SESSIONS[*session], now_ms),
        Op::Txn { ops, fail } => {
            let mut ops: Vec<TxnOp> = ops.iter().map(tx).collect();
            if *fail {
                // A key nobody writes: its `get` fails and rolls everything back.
                ops.push(kv(KvVerb::Get, "never-written"));
            }
            Command::Txn { ops, now_ms }
        }
    }
}

/// The store answers what the model holds.
fn check_against(store: &Store, model: &Model, now_ms: u64) {
    let q = ServiceQuery::default();
    for name in NAMES {
        let (_, rows) = store.catalog_service(name, &q);
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|(n, s)| (n.name.clone(), s.id.clone()))
            .collect();
        let want: Vec<(String, String)> = model
            .services
            .iter()
            .filter(|(_, (sname, _))| sname == name)
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(got, want, "instances of {name}");
        let (_, health) = store.service_health(name, &q, false);
        for e in &health {
            for c in &e.checks {
                assert!(c.service_id.is_empty() || c.service_id == e.service.id);
                assert_eq!(c.node, e.node.name);
            }
        }
    }
    let nodes: Vec<(String, String, String)> = store
        .catalog_nodes(&[])
        .1
        .iter()
        .map(|n| (n.name.clone(), n.id.clone(), n.address.clone()))
        .collect();
    let want: Vec<(String, String, String)> = model
        .nodes
        .iter()
        .map(|(n, (id, a))| (n.clone(), id.clone(), a.clone()))
        .collect();
    assert_eq!(nodes, want);
    for ((n, c), (sid, status)) in &model.checks {
        let got = store
            .check(n, c)
            .unwrap_or_else(|| panic!("check {n}/{c} missing"));
        assert_eq!((&got.service_id, got.status), (sid, *status));
        if !sid.is_empty() {
            let s = store
                .service(n, sid)
                .expect("a service check's service exists");
            assert_eq!((&got.service_name, &got.service_tags), (&s.name, &s.tags));
        }
    }
    assert_eq!(
        store.catalog_counts(),
        (model.nodes.len(), model.services.len(), model.checks.len())
    );
    let sessions: Vec<(String, String)> = store
        .session_list()
        .1
        .iter()
        .map(|s| (s.id.clone(), s.node.clone()))
        .collect();
    let want: Vec<(String, String)> = model
        .sessions
        .iter()
        .map(|(id, (node, _))| (id.clone(), node.clone()))
        .collect();
    assert_eq!(sessions, want, "sessions");
    for node in NODES {
        let on_node: Vec<&str> = store
            .session_list_node(node)
            .1
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        let want: Vec<&str> = model
            .sessions
            .iter()
            .filter(|(_, (n, _))| n == node)
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(on_node, want, "sessions on {node}");
        for check in CHECK_IDS {
            let want: Vec<String> = model
                .sessions
                .iter()
                .filter(|(_, (n, checks))| n == node && checks.iter().any(|c| c == check))
                .map(|(id, _)| id.clone())
                .collect();
            assert_eq!(
                store.sessions_on_check(node, check),
                want,
                "sessions on {node}/{check}"
            );
        }
    }
    for key in KEYS {
        let got = store.kv_get(key).1.map(|e| e.session.clone());
        assert_eq!(got, model.keys.get(key).cloned(), "key {key}");
        assert_eq!(
            store.lock_delayed(key, now_ms),
            model.delays.get(key).is_some_and(|until| now_ms < *until),
            "lock-delay of {key}"
        );
    }
}

/// What the store must keep true whatever the commands: derived lookups equal to a rebuild
/// from the tables, and no session outliving its node or its checks' health.
fn check_invariants(store: &Store) {
    let mut rebuilt = store.clone();
    rebuilt.forget_derived();
    rebuilt.after_restore();
    assert_eq!(&rebuilt, store, "derived lookups drifted from the tables");
    for s in store.session_list().1 {
        assert!(store.node(&s.node).is_some(), "{} outlived its node", s.id);
        let checks = s.service_checks.iter().map(|c| &c.id);
        for c in s.node_checks.iter().chain(checks) {
            let check = store.check(&s.node, c);
            assert!(
                check.is_some_and(|c| c.status != cat::CheckStatus::Critical),
                "{} outlived its check {c}: {check:?}",
                s.id
            );
        }
    }
}

/// Everything an index covers, as text: when it differs, the index must have moved.
fn views(store: &Store) -> BTreeMap<String, (u64, String)> {
    let q = ServiceQuery::default();
    let mut out = BTreeMap::new();
    for name in NAMES {
        let (i, rows) = store.service_health(name, &q, false);
        let (j, plain) = store.catalog_service(name, &q);
        assert_eq!(i, j);
        let view = format!("{rows:?} {plain:?}");
        out.insert(format!("service {name}"), (i, view));
    }
    for name in NODES {
        let (i, found) = store.catalog_node(name);
        let (j, checks) = store.node_health(name);
        assert_eq!(i, j);
        out.insert(format!("node {name}"), (i, format!("{found:?} {checks:?}")));
    }
    let (i, nodes) = store.catalog_nodes(&[]);
    out.insert("nodes".into(), (i, format!("{nodes:?}")));
    let (i, services) = store.catalog_services(&[]);
    out.insert("services".into(), (i, format!("{services:?}")));
    let (i, checks) = store.checks_in_state(None, &[]);
    out.insert("checks".into(), (i, format!("{checks:?}")));
    let (i, sessions) = store.session_list();
    out.insert("sessions".into(), (i, format!("{sessions:?}")));
    out
}

/// The watch key behind a view's name.
fn watch_key(view: &str) -> WatchKey {
    match view.split_once(' ') {
        Some(("service", name)) => WatchKey::Service(name.into()),
        Some(("node", name)) => WatchKey::Node(name.into()),
        _ => WatchKey::Table(match view {
            "nodes" => Table::Nodes,
            "services" => Table::Services,
            "checks" => Table::Checks,
            _ => Table::Sessions,
        }),
    }
}

/// Steps of one command each, or now and then a batch of a few (one log index for all).
fn steps() -> impl Strategy<Value = Vec<Vec<Op>>> {
    let step = prop_oneof![
        6 => op().prop_map(|o| vec![o]),
        1 => proptest::collection::vec(op(), 2..4),
    ];
    proptest::collection::vec(step, 1..40)
}

/// Is `out` what the model `expected`? Returns whether the command was refused.
fn refused(op: &Op, expected: &Result<(), bool>, out: &Outcome) -> bool {
    match (expected, out) {
        (Ok(()), Outcome::Bool(true) | Outcome::Done | Outcome::Txn(Ok(_))) => false,
        (Err(false), Outcome::Bool(false)) => true,
        (Err(true), Outcome::Rejected(_) | Outcome::Txn(Err(_))) => true,
        _ => panic!("{op:?}: model said {expected:?}, store answered {out:?}"),
    }
}

fn run(steps: &[Vec<Op>]) {
    let mut h = H::new();
    // Index 1 is what a name never seen reports: start writing above it.
    h.ok(Command::Noop);
    let mut model = Model::default();
    let mut before_views = views(&h.store);
    for (step, ops) in steps.iter().enumerate() {
        let now_ms = 1_000 * step as u64;
        let before = h.store.clone();
        let expected: Vec<Result<(), bool>> =
            ops.iter().map(|op| model.apply(op, now_ms)).collect();
        let changes = if let [op] = &ops[..] {
            let (out, changes) = h.apply(command(op, now_ms));
            if refused(op, &expected[0], &out) {
                assert_eq!(
                    &h.store,
                    &unchanged(&before, &h.store),
                    "{op:?} changed the store"
                );
                assert!(changes.is_empty(), "{op:?} reported {changes:?}");
            }
            changes
        } else {
            let batch = ops.iter().map(|op| command(op, now_ms)).collect();
            let (out, changes) = h.apply(Command::Batch(batch));
            let Outcome::Batch(outs) = out else {
                panic!("a batch answered {out:?}")
            };
            for ((op, e), out) in ops.iter().zip(&expected).zip(&outs) {
                refused(op, e, out);
            }
            changes
        };
        check_against(&h.store, &model, now_ms);
        check_invariants(&h.store);
        let after_views = views(&h.store);
        for (name, (i, view)) in &after_views {
            let (last, last_view) = &before_views[name];
            assert!(i >= last, "{name}'s index went back from {last} to {i}");
            if view != last_view {
                assert!(i > last, "{name} changed but its index stayed {i}: {ops:?}");
            }
            let touched = changes.affects(&watch_key(name));
            assert_eq!(
                i > last,
                touched,
                "{name} moved: {}, reported: {touched}",
                i > last
            );
        }
        before_views = after_views;
    }
    // A snapshot restores the same store, lookups included.
    let mut image = SnapshotImage::of(&h.store);
    image.store.forget_derived();
    let restored = image.into_store().expect("restores");
    assert_eq!(restored, h.store);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn catalog_sequences_match_the_model(steps in steps()) {
        run(&steps);
    }
}
