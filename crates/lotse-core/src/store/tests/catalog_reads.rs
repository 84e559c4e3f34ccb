//! The reads added for the HTTP catalog: node lookup by ID prefix (Consul's catalog node
//! endpoints) and every instance with its node (`/v1/catalog/services` with a filter).

use super::*;
use crate::catalog::{self as cat, RegisterRequest};

fn register(h: &mut H, name: &str, id: &str, services: &[&str], meta: &[(&str, &str)]) {
    for (i, s) in services.iter().enumerate() {
        h.ok(Command::CatalogRegister {
            req: Box::new(RegisterRequest {
                node: cat::Node {
                    id: id.into(),
                    name: name.into(),
                    address: "10.0.0.1".into(),
                    meta: meta
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                },
                skip_node_update: i > 0,
                service: Some(cat::Service {
                    id: format!("{s}-{name}"),
                    name: s.to_string(),
                    ..Default::default()
                }),
                checks: vec![],
            }),
            now_ms: 0,
        });
    }
}

#[test]
fn nodes_resolve_by_name_then_by_a_unique_id_prefix() {
    let mut h = H::new();
    register(
        &mut h,
        "a",
        "aaaa1111-0000-0000-0000-000000000000",
        &["web"],
        &[],
    );
    register(
        &mut h,
        "b",
        "aaaa2222-0000-0000-0000-000000000000",
        &["web"],
        &[],
    );
    let name = |q: &str| h.store.resolve_node(q).map(|n| n.name.clone());
    assert_eq!(name("a").as_deref(), Some("a"));
    assert_eq!(name("AAAA2").as_deref(), Some("b"));
    assert_eq!(name("aaaa"), None, "ambiguous prefix");
    assert_eq!(name("x"), None);
    let (i, found) = h.store.catalog_node("aaaa1");
    let (n, services) = found.unwrap();
    assert_eq!((n.name.as_str(), services.len()), ("a", 1));
    assert_eq!(i, h.store.node_index("a"));
}

#[test]
fn all_instances_lists_every_instance_on_matching_nodes() {
    let mut h = H::new();
    register(&mut h, "a", "", &["web", "db"], &[("rack", "r1")]);
    register(&mut h, "b", "", &["web"], &[("rack", "r2")]);
    let (i, rows) = h.store.all_instances(&[]);
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|(n, s)| (n.name.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(got, [("a", "db"), ("a", "web"), ("b", "web")]);
    assert_eq!(i, h.store.catalog_services(&[]).0);
    let r1 = [("rack".to_string(), "r1".to_string())];
    let (_, rows) = h.store.all_instances(&r1);
    assert!(rows.iter().all(|(n, _)| n.name == "a") && rows.len() == 2);
}
