//! The endpoint-facing API: `apply`, `apply_map` and how shapes are read.

use super::*;
use crate::filter::{apply, apply_map};

#[test]
fn apply_keeps_matching_items_and_treats_missing_or_empty_as_no_filter() {
    let shape = health_shape();
    let db = json!({"Service": {"Service": "db", "Port": 5432}});
    let items = vec![web_entry(), db.clone()];
    assert_eq!(apply(None, &shape, items.clone()), Ok(items.clone()));
    assert_eq!(apply(Some(""), &shape, items.clone()), Ok(items.clone()));
    assert_eq!(
        apply(Some("Service.Port == 5432"), &shape, items.clone()),
        Ok(vec![db])
    );
    assert!(matches!(
        apply(Some("Service.Bogus == 1"), &shape, items.clone()),
        Err(FilterError::InvalidSelector { .. })
    ));
    // Whitespace alone is an expression, and not a valid one (as in Consul).
    assert!(apply(Some(" "), &shape, items).is_err());
}

#[test]
fn apply_map_filters_values_and_keeps_their_keys() {
    // /v1/agent/services: a map of AgentService keyed by ID.
    let shape = json!({"ID": "", "Service": "", "Tags": [], "Meta": {}, "Port": 0});
    let services = json!({
        "redis1": {"ID": "redis1", "Service": "redis", "Meta": {"env": "production"}},
        "redis3": {"ID": "redis3", "Service": "redis", "Meta": {"env": "qa"}}
    });
    let Value::Object(map) = services else {
        unreachable!("literal object")
    };
    let kept = apply_map(Some("Meta.env == \"qa\""), &shape, map.clone());
    let keys: Vec<String> = kept
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["redis3"]);
    assert_eq!(apply_map(None, &shape, map.clone()), Ok(map.clone()));
    assert!(apply_map(Some("Meta.env =="), &shape, map).is_err());
}

#[test]
fn shapes_read_as_documented() {
    // `{}` maps strings to strings, `[]` is a list of strings, `{"*": S}` a map of S.
    let shape = json!({"M": {}, "L": [], "S": {"*": {"A": 0}}, "F": 0.0});
    let item = json!({"M": {"k": "v"}, "L": ["x"], "S": {"k": {"A": 3}}, "F": 1.5});
    table(
        &shape,
        &item,
        &[
            ("M.k == v", true),
            ("M.anything != v", true),
            ("x in L", true),
            ("S.k.A == 3", true),
            ("F == 1.5", true),
        ],
    );
    error_table(
        &shape,
        &[
            ("S.k.B == 3", "\"S.k\" has no field \"B\""),
            ("F == \"0x10\"", "not a number"),
        ],
    );
}
