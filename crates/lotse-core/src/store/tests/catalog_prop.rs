//! Model-based property tests for the catalog: random register/deregister sequences over a
//! tiny space of nodes, services and checks (so that collisions, renames and cascades happen
//! often), checked after every step against a plain model and the store's invariants.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

use crate::catalog::{self as cat, CheckStatus, DeregisterRequest, RegisterRequest};
use crate::snapshot::SnapshotImage;
use crate::store::ServiceQuery;

const NODES: [&str; 3] = ["n0", "n1", "n2"];
const SERVICE_IDS: [&str; 3] = ["s0", "s1", "s2"];
const NAMES: [&str; 2] = ["web", "db"];
const CHECK_IDS: [&str; 3] = ["c0", "c1", "c2"];
const STATUSES: [CheckStatus; 3] = [
    CheckStatus::Passing,
    CheckStatus::Warning,
    CheckStatus::Critical,
];

#[derive(Debug, Clone)]
enum Op {
    Register {
        node: usize,
        address: u8,
        service: Option<(usize, usize, u8)>,
        /// (check id, service id or None for node-level, status)
        checks: Vec<(usize, Option<usize>, usize)>,
    },
    DeregisterNode(usize),
    DeregisterService(usize, usize),
    DeregisterCheck(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let check = (0..3usize, proptest::option::of(0..3usize), 0..3usize);
    prop_oneof![
        4 => (0..3usize, 0..2u8, proptest::option::of((0..3usize, 0..2usize, 0..2u8)),
              proptest::collection::vec(check, 0..3))
            .prop_map(|(node, address, service, checks)| Op::Register { node, address, service, checks }),
        1 => (0..3usize).prop_map(Op::DeregisterNode),
        2 => (0..3usize, 0..3usize).prop_map(|(n, s)| Op::DeregisterService(n, s)),
        2 => (0..3usize, 0..3usize).prop_map(|(n, c)| Op::DeregisterCheck(n, c)),
    ]
}

/// The model: what each node holds, in plain maps.
#[derive(Debug, Default, Clone)]
struct Model {
    /// node → address
    nodes: BTreeMap<String, String>,
    /// (node, service id) → (name, tag)
    services: BTreeMap<(String, String), (String, String)>,
    /// (node, check id) → (service id, status)
    checks: BTreeMap<(String, String), (String, CheckStatus)>,
}

impl Model {
    /// Applies `op`; returns false when the store must refuse it (and change nothing).
    fn apply(&mut self, op: &Op) -> bool {
        match op {
            Op::Register {
                node,
                address,
                service,
                checks,
            } => {
                let n = NODES[*node].to_string();
                let new_service = service.map(|(s, name, tag)| {
                    (
                        SERVICE_IDS[s].to_string(),
                        NAMES[name].to_string(),
                        format!("t{tag}"),
                    )
                });
                for (_, sid, _) in checks {
                    if let Some(sid) = sid {
                        let sid = SERVICE_IDS[*sid];
                        let in_request = new_service.as_ref().is_some_and(|(id, _, _)| id == sid);
                        if !in_request && !self.services.contains_key(&(n.clone(), sid.to_string()))
                        {
                            return false;
                        }
                    }
                }
                self.nodes.insert(n.clone(), format!("10.0.0.{address}"));
                if let Some((id, name, tag)) = new_service {
                    self.services.insert((n.clone(), id), (name, tag));
                }
                for (c, sid, status) in checks {
                    let sid = sid.map_or(String::new(), |s| SERVICE_IDS[s].to_string());
                    self.checks.insert(
                        (n.clone(), CHECK_IDS[*c].to_string()),
                        (sid, STATUSES[*status]),
                    );
                }
                true
            }
            Op::DeregisterNode(node) => {
                let n = NODES[*node];
                self.nodes.remove(n);
                self.services.retain(|(sn, _), _| sn != n);
                self.checks.retain(|(cn, _), _| cn != n);
                true
            }
            Op::DeregisterService(node, s) => {
                let (n, sid) = (NODES[*node], SERVICE_IDS[*s]);
                if self.nodes.contains_key(n) {
                    self.services.remove(&(n.to_string(), sid.to_string()));
                    self.checks
                        .retain(|(cn, _), (csid, _)| !(cn == n && csid == sid));
                }
                true
            }
            Op::DeregisterCheck(node, c) => {
                self.checks
                    .remove(&(NODES[*node].to_string(), CHECK_IDS[*c].to_string()));
                true
            }
        }
    }
}

fn command(op: &Op) -> Command {
    match op {
        Op::Register {
            node,
            address,
            service,
            checks,
        } => {
            let n = NODES[*node];
            Command::CatalogRegister {
                req: Box::new(RegisterRequest {
                    node: cat::Node {
                        id: format!("id-{n}"),
                        name: n.into(),
                        address: format!("10.0.0.{address}"),
                        datacenter: "dc1".into(),
                        ..Default::default()
                    },
                    skip_node_update: false,
                    service: service.map(|(s, name, tag)| cat::Service {
                        id: SERVICE_IDS[s].into(),
                        name: NAMES[name].into(),
                        tags: vec![format!("t{tag}")],
                        ..Default::default()
                    }),
                    checks: checks
                        .iter()
                        .map(|(c, sid, status)| cat::HealthCheck {
                            service_id: sid.map_or(String::new(), |s| SERVICE_IDS[s].to_string()),
                            status: STATUSES[*status],
                            ..cat::HealthCheck::new(n, CHECK_IDS[*c], "check")
                        })
                        .collect(),
                }),
                now_ms: 0,
            }
        }
        Op::DeregisterNode(node) => dereg(NODES[*node], None, None),
        Op::DeregisterService(node, s) => dereg(NODES[*node], Some(SERVICE_IDS[*s]), None),
        Op::DeregisterCheck(node, c) => dereg(NODES[*node], None, Some(CHECK_IDS[*c])),
    }
}

fn dereg(node: &str, service: Option<&str>, check: Option<&str>) -> Command {
    Command::CatalogDeregister {
        req: DeregisterRequest {
            node: node.into(),
            service_id: service.map(str::to_string),
            check_id: check.map(str::to_string),
        },
        now_ms: 0,
    }
}

/// The store answers what the model holds, and its own lookups agree with its tables.
fn check_against(store: &Store, model: &Model) {
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
    let nodes: Vec<String> = store
        .catalog_nodes(&[])
        .1
        .iter()
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(nodes, model.nodes.keys().cloned().collect::<Vec<_>>());
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
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn catalog_sequences_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut h = H::new();
        // Index 1 is what a name never seen reports: start writing above it.
        h.ok(Command::Noop);
        let mut model = Model::default();
        let mut last_service_index: BTreeMap<&str, u64> = BTreeMap::new();
        for op in &ops {
            let before = h.store.clone();
            let accepted = model.apply(op);
            let (out, changes) = h.apply(command(op));
            if accepted {
                prop_assert!(matches!(out, Outcome::Bool(true)), "{op:?} answered {out:?}");
            } else {
                prop_assert!(matches!(out, Outcome::Rejected(_)), "{op:?} answered {out:?}");
                prop_assert_eq!(&h.store, &unchanged(&before, &h.store));
            }
            check_against(&h.store, &model);
            // A service's index never goes back, and moves exactly when it was reported changed.
            for name in NAMES {
                let i = h.wi(&WatchKey::Service(name.into()));
                let last = last_service_index.get(name).copied().unwrap_or(1);
                prop_assert!(i >= last);
                prop_assert_eq!(i > last, changes.services.iter().any(|s| s == name), "{}", name);
                last_service_index.insert(name, i);
            }
        }
        // A snapshot restores the same store, lookups included.
        let restored = SnapshotImage::of(&h.store).into_store().expect("restores");
        check_against(&restored, &model);
    }
}
