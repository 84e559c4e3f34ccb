//! The catalog tables and their indexes, checked against Consul's state store semantics
//! (`agent/consul/state/catalog.go`): idempotent registration, cascading deregistration,
//! per-service and per-node indexes, and sessions that die with their checks.

use super::*;
use crate::catalog::{self as cat, CheckStatus, DeregisterRequest, RegisterRequest};
use crate::store::ServiceQuery;

fn cnode(name: &str) -> cat::Node {
    cat::Node {
        id: format!(
            "00000000-0000-0000-0000-{:0>12}",
            name.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        name: name.into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        ..Default::default()
    }
}

fn svc(id: &str, name: &str, tags: &[&str]) -> cat::Service {
    cat::Service {
        id: id.into(),
        name: name.into(),
        tags: strs(tags),
        port: 8080,
        ..Default::default()
    }
}

fn hc(node: &str, id: &str, service_id: &str, status: CheckStatus) -> cat::HealthCheck {
    cat::HealthCheck {
        service_id: service_id.into(),
        status,
        ..cat::HealthCheck::new(node, id, id)
    }
}

fn reg(node: &str, service: Option<cat::Service>, checks: Vec<cat::HealthCheck>) -> Command {
    reg_node(cnode(node), false, service, checks)
}

/// A registration of `node` as given (`skip`: Consul's `SkipNodeUpdate`).
fn reg_node(
    node: cat::Node,
    skip: bool,
    service: Option<cat::Service>,
    checks: Vec<cat::HealthCheck>,
) -> Command {
    Command::CatalogRegister {
        req: Box::new(RegisterRequest {
            node,
            skip_node_update: skip,
            service,
            checks,
        }),
        now_ms: 0,
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

fn names<'a>(rows: impl IntoIterator<Item = (&'a cat::Node, &'a cat::Service)>) -> Vec<String> {
    rows.into_iter()
        .map(|(n, s)| format!("{}/{}", n.name, s.id))
        .collect()
}

const ALL: ServiceQuery<'static> = ServiceQuery {
    tags: &[],
    node_meta: &[],
};

#[test]
fn register_stores_node_service_and_checks_with_indexes() {
    let mut h = H::new();
    let changes = h.ok(reg(
        "n1",
        Some(svc("web1", "web", &["v1"])),
        vec![hc("n1", "web-alive", "web1", CheckStatus::Passing)],
    ));
    assert_eq!(changes.services, strs(&["web"]));
    assert_eq!(changes.nodes, strs(&["n1"]));
    for t in [Table::Nodes, Table::Services, Table::Checks] {
        assert!(changes.tables.contains(&t), "{t:?} not touched");
    }
    let (index, rows) = h.store.catalog_service("web", &ALL);
    assert_eq!((index, names(rows)), (1, strs(&["n1/web1"])));
    let c = h.store.check("n1", "web-alive").unwrap();
    // The store fills in the service's name and tags, whatever the request said.
    assert_eq!(
        (c.service_name.as_str(), c.service_tags.clone()),
        ("web", strs(&["v1"]))
    );
    assert_eq!((c.create_index, c.modify_index), (1, 1));
}

#[test]
fn registering_the_same_thing_again_changes_nothing() {
    let mut h = H::new();
    let cmd = reg(
        "n1",
        Some(svc("web1", "web", &[])),
        vec![hc("n1", "c", "web1", CheckStatus::Passing)],
    );
    h.ok(cmd.clone());
    let before = h.store.clone();
    let changes = h.ok(cmd);
    assert!(changes.is_empty() && changes.services.is_empty() && changes.nodes.is_empty());
    assert_eq!(h.wi(&WatchKey::Service("web".into())), 1);
    assert_eq!(h.store, unchanged(&before, &h.store));
}

#[test]
fn a_service_watch_moves_only_for_its_own_service() {
    let mut h = H::new();
    h.ok(reg("n1", Some(svc("web1", "web", &[])), vec![]));
    h.ok(reg("n2", Some(svc("db1", "db", &[])), vec![]));
    assert_eq!(h.wi(&WatchKey::Service("web".into())), 1);
    assert_eq!(h.wi(&WatchKey::Service("db".into())), 2);
    // A check on db moves db only.
    let changes = h.ok(reg(
        "n2",
        None,
        vec![hc("n2", "db-c", "db1", CheckStatus::Critical)],
    ));
    assert_eq!(changes.services, strs(&["db"]));
    assert_eq!(h.wi(&WatchKey::Service("web".into())), 1);
    // A node-level check on n1 moves every service on n1.
    let changes = h.ok(reg(
        "n1",
        None,
        vec![hc("n1", "mem", "", CheckStatus::Warning)],
    ));
    assert_eq!(changes.services, strs(&["web"]));
    assert_eq!(h.wi(&WatchKey::Service("web".into())), 4);
    // A node update moves its services too.
    let mut moved = cnode("n1");
    moved.address = "10.0.0.9".into();
    h.ok(reg_node(moved, false, None, vec![]));
    assert_eq!(h.wi(&WatchKey::Service("web".into())), 5);
    assert_eq!(h.wi(&WatchKey::Service("db".into())), 3);
    // A name never seen has index 1, so a blocking query on it waits.
    assert_eq!(h.wi(&WatchKey::Service("nope".into())), 1);
}

#[test]
fn skip_node_update_keeps_the_stored_node() {
    let mut h = H::new();
    h.ok(reg("n1", None, vec![]));
    let mut other = cnode("n1");
    other.address = "10.9.9.9".into();
    h.ok(reg_node(other, true, Some(svc("web1", "web", &[])), vec![]));
    assert_eq!(h.store.node("n1").unwrap().address, "10.0.0.1");
    assert_eq!(h.store.node("n1").unwrap().modify_index, 1);
}

#[test]
fn bad_registrations_are_refused_whole() {
    let mut h = H::new();
    h.ok(reg("n1", None, vec![]));
    let before = h.store.clone();
    // A check for a service that does not exist.
    let out = h.out(reg(
        "n1",
        Some(svc("web1", "web", &[])),
        vec![hc("n1", "c", "ghost", CheckStatus::Passing)],
    ));
    assert_eq!(
        out,
        Outcome::Rejected(StoreError::MissingService("ghost".into()))
    );
    // A second node with the same ID.
    let mut twin = cnode("n2");
    twin.id = cnode("n1").id.to_uppercase();
    let out = h.out(reg_node(twin, false, None, vec![]));
    assert!(
        matches!(out, Outcome::Rejected(StoreError::NodeIdTaken { .. })),
        "{out:?}"
    );
    let out = h.out(reg("", None, vec![]));
    assert_eq!(out, Outcome::Rejected(StoreError::MissingNodeName));
    // Nothing of the refused requests was stored.
    assert_eq!(h.store, unchanged(&before, &h.store));
}

#[test]
fn deregistering_a_service_takes_its_checks_and_keeps_its_index() {
    let mut h = H::new();
    h.ok(reg(
        "n1",
        Some(svc("web1", "web", &[])),
        vec![
            hc("n1", "c1", "web1", CheckStatus::Passing),
            hc("n1", "node-c", "", CheckStatus::Passing),
        ],
    ));
    h.ok(dereg("n1", Some("web1"), None));
    assert!(h.store.service("n1", "web1").is_none());
    assert!(h.store.check("n1", "c1").is_none());
    assert!(h.store.check("n1", "node-c").is_some());
    let (index, rows) = h.store.catalog_service("web", &ALL);
    // The extinct service's index is the deregistration's, so its watchers woke.
    assert_eq!((index, rows.len()), (2, 0));
    // Deregistering something that is not there is not an error.
    h.ok(dereg("n1", Some("web1"), None));
    h.ok(dereg("ghost", None, None));
}

#[test]
fn deregistering_a_node_takes_everything_on_it() {
    let mut h = H::new();
    h.ok(reg(
        "n1",
        Some(svc("web1", "web", &[])),
        vec![hc("n1", "c", "web1", CheckStatus::Passing)],
    ));
    h.ok(reg("n1", Some(svc("api1", "api", &[])), vec![]));
    h.ok(reg("n2", Some(svc("web2", "web", &[])), vec![]));
    let changes = h.ok(dereg("n1", None, None));
    let mut touched = changes.services.clone();
    touched.sort();
    assert_eq!(touched, strs(&["api", "web"]));
    assert!(h.store.node("n1").is_none());
    assert_eq!(h.store.catalog_counts(), (1, 1, 0));
    assert_eq!(
        names(h.store.catalog_service("web", &ALL).1),
        strs(&["n2/web2"])
    );
}

#[test]
fn tags_and_node_meta_filter_instances() {
    let mut h = H::new();
    h.ok(reg(
        "n1",
        Some(svc("web1", "web", &["Primary", "v1"])),
        vec![],
    ));
    let mut meta_node = cnode("n2");
    meta_node.meta.insert("rack".into(), "r1".into());
    h.ok(reg_node(
        meta_node,
        false,
        Some(svc("web2", "web", &["v1"])),
        vec![],
    ));
    let tags = strs(&["primary", "V1"]);
    let q = ServiceQuery {
        tags: &tags,
        node_meta: &[],
    };
    assert_eq!(
        names(h.store.catalog_service("web", &q).1),
        strs(&["n1/web1"])
    );
    let meta = vec![("rack".to_string(), "r1".to_string())];
    let q = ServiceQuery {
        tags: &[],
        node_meta: &meta,
    };
    assert_eq!(
        names(h.store.catalog_service("web", &q).1),
        strs(&["n2/web2"])
    );
    let (_, services) = h.store.catalog_services(&[]);
    assert_eq!(services.get("web"), Some(&vec!["Primary", "v1"]));
    assert_eq!(h.store.catalog_nodes(&meta).1.len(), 1);
}

#[test]
fn health_service_lists_node_checks_first_and_passing_drops_warnings() {
    let mut h = H::new();
    h.ok(reg(
        "n1",
        Some(svc("web1", "web", &[])),
        vec![
            hc("n1", "a-svc", "web1", CheckStatus::Passing),
            hc("n1", "z-node", "", CheckStatus::Passing),
        ],
    ));
    h.ok(reg(
        "n2",
        Some(svc("web2", "web", &[])),
        vec![hc("n2", "w", "web2", CheckStatus::Warning)],
    ));
    let (_, all) = h.store.service_health("web", &ALL, false);
    let ids: Vec<&str> = all[0].checks.iter().map(|c| c.check_id.as_str()).collect();
    assert_eq!(ids, vec!["z-node", "a-svc"]);
    let (_, passing) = h.store.service_health("web", &ALL, true);
    assert_eq!(passing.len(), 1);
    assert_eq!(passing[0].service.id, "web1");
    let (_, critical) = h.store.checks_in_state(Some(CheckStatus::Warning), &[]);
    assert_eq!(critical.len(), 1);
    assert_eq!(h.store.service_checks("web", &[]).1.len(), 2);
}

#[test]
fn a_service_update_refreshes_its_checks_tags() {
    let mut h = H::new();
    h.ok(reg(
        "n1",
        Some(svc("web1", "web", &["v1"])),
        vec![hc("n1", "c", "web1", CheckStatus::Passing)],
    ));
    h.ok(reg("n1", Some(svc("web1", "web", &["v2"])), vec![]));
    let c = h.store.check("n1", "c").unwrap();
    assert_eq!((c.service_tags.clone(), c.modify_index), (strs(&["v2"]), 2));
}

#[test]
fn renaming_a_service_wakes_both_names() {
    let mut h = H::new();
    h.ok(reg("n1", Some(svc("x1", "old", &[])), vec![]));
    let changes = h.ok(reg("n1", Some(svc("x1", "new", &[])), vec![]));
    let mut touched = changes.services.clone();
    touched.sort();
    assert_eq!(touched, strs(&["new", "old"]));
    assert!(h.store.catalog_service("old", &ALL).1.is_empty());
    assert_eq!(h.store.catalog_service("new", &ALL).1.len(), 1);
}

/// Sessions on `NODE` bound to a service check and to serfHealth.
fn sessions_on_checks() -> H {
    let mut h = H::with_node();
    let mut n = cnode(NODE);
    n.id = "id-node1".into();
    h.ok(reg_node(
        n,
        true,
        Some(svc("web1", "web", &[])),
        vec![hc(NODE, "web-alive", "web1", CheckStatus::Passing)],
    ));
    h.ok(create(Session {
        service_checks: vec![ServiceCheckRef {
            id: "web-alive".into(),
            namespace: String::new(),
        }],
        ..session("on-service")
    }));
    h.ok(create(session("on-serf")));
    h.ok(lock("held", "v", "on-service"));
    h
}

#[test]
fn a_check_turning_critical_invalidates_its_sessions() {
    let mut h = sessions_on_checks();
    // Warning does not invalidate.
    h.ok(reg(
        NODE,
        None,
        vec![hc(NODE, "web-alive", "web1", CheckStatus::Warning)],
    ));
    assert!(h.store.session_get("on-service").1.is_some());
    let changes = h.ok(reg(
        NODE,
        None,
        vec![hc(NODE, "web-alive", "web1", CheckStatus::Critical)],
    ));
    assert!(h.store.session_get("on-service").1.is_none());
    assert!(h.store.session_get("on-serf").1.is_some());
    // Its lock was released, and the key's watchers woke.
    assert_eq!(h.get("held").session, None);
    assert!(changes.keys.contains(&"held".to_string()));
}

#[test]
fn removing_a_check_or_node_invalidates_sessions() {
    let mut h = sessions_on_checks();
    h.ok(dereg(NODE, Some("web1"), None));
    assert!(h.store.session_get("on-service").1.is_none());
    assert!(h.store.session_get("on-serf").1.is_some());
    h.ok(dereg(NODE, None, None));
    assert!(h.store.session_get("on-serf").1.is_none());
}

#[test]
fn sessions_need_their_service_checks_healthy() {
    let mut h = sessions_on_checks();
    let bound = |id: &str| Session {
        service_checks: vec![ServiceCheckRef {
            id: id.into(),
            namespace: String::new(),
        }],
        ..session("s")
    };
    assert_eq!(
        h.out(create(bound("ghost"))),
        Outcome::Rejected(StoreError::MissingCheck("ghost".into()))
    );
    h.ok(reg(
        NODE,
        None,
        vec![hc(NODE, "web-alive", "web1", CheckStatus::Critical)],
    ));
    assert_eq!(
        h.out(create(bound("web-alive"))),
        Outcome::Rejected(StoreError::CheckCritical(
            "web-alive".into(),
            "critical".into()
        ))
    );
}

#[test]
fn the_first_log_format_node_registration_still_applies() {
    let h = H::with_node();
    let c = h.store.check(NODE, SERF_HEALTH).unwrap();
    assert_eq!(c.status, CheckStatus::Passing);
    assert_eq!(h.store.node(NODE).unwrap().address, "127.0.0.1");
}

#[test]
fn snapshots_carry_the_catalog_and_rebuild_its_lookups() {
    let mut h = H::new();
    h.ok(reg(
        "n1",
        Some(svc("web1", "web", &[])),
        vec![hc("n1", "c", "web1", CheckStatus::Passing)],
    ));
    let restored = crate::snapshot::SnapshotImage::of(&h.store)
        .into_store()
        .unwrap();
    assert_eq!(
        names(restored.catalog_service("web", &ALL).1),
        strs(&["n1/web1"])
    );
    // The node-ID lookup came back too: a twin is still refused.
    let mut r = H {
        store: restored,
        next: h.next,
    };
    let mut twin = cnode("n2");
    twin.id = cnode("n1").id;
    let out = r.out(reg_node(twin, false, None, vec![]));
    assert!(matches!(
        out,
        Outcome::Rejected(StoreError::NodeIdTaken { .. })
    ));
}

#[test]
fn a_new_service_check_moves_only_its_own_service() {
    let mut h = H::new();
    h.ok(reg("n1", Some(svc("web1", "web", &[])), vec![]));
    h.ok(reg("n1", Some(svc("db1", "db", &[])), vec![]));
    let web = h.wi(&WatchKey::Service("web".into()));
    // A check on db's instance shows in db's health only, even when it is new.
    let changes = h.ok(reg(
        "n1",
        None,
        vec![hc("n1", "db-c", "db1", CheckStatus::Passing)],
    ));
    assert_eq!(changes.services, strs(&["db"]));
    assert_eq!(h.wi(&WatchKey::Service("web".into())), web);
    // Moving it to the node makes it bear on every instance there.
    let changes = h.ok(reg(
        "n1",
        None,
        vec![hc("n1", "db-c", "", CheckStatus::Passing)],
    ));
    let mut touched = changes.services.clone();
    touched.sort();
    assert_eq!(touched, strs(&["db", "web"]));
}

#[test]
fn checks_in_state_filtered_by_node_meta_move_with_the_nodes() {
    let mut h = H::new();
    h.ok(reg(
        "n1",
        None,
        vec![hc("n1", "c", "", CheckStatus::Passing)],
    ));
    let meta = vec![("rack".to_string(), "r1".to_string())];
    let (before, rows) = h.store.checks_in_state(None, &meta);
    assert!(rows.is_empty());
    // The node gains the meta: the filtered answer changes, so its index must move.
    let mut racked = cnode("n1");
    racked.meta.insert("rack".into(), "r1".into());
    h.ok(reg_node(racked, false, None, vec![]));
    let (after, rows) = h.store.checks_in_state(None, &meta);
    assert_eq!(rows.len(), 1);
    assert!(after > before, "index stayed {after}");
}
