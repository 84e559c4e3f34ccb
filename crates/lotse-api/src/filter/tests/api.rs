//! The endpoint-facing API: `apply` and how shapes are read.

use super::*;
use crate::filter::apply;

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
