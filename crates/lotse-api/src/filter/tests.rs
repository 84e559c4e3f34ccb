//! Tests for the filter language, split by concern:
//!
//! * `syntax`: what parses, precedence, quoting, and every syntax error.
//! * `semantics`: each operator over Consul-shaped data.
//! * `errors`: every error from checking an expression against the shape.
//! * `api`: `apply`, `apply_map` and the shape conventions.
//! * `fuzz`: property tests: nothing panics, and the logic connectives behave as logic.
//!
//! The fixtures mirror Consul's `/v1/health/service/:service` output (a `CheckServiceNode`),
//! the richest shape Consul filters: nested structs, maps, a list of structs, numbers, bools.

use serde_json::{json, Value};

use super::{Filter, FilterError};

mod api;
mod errors;
mod fuzz;
mod semantics;
mod syntax;

/// The shape of a health/service entry, as an endpoint would pass it.
fn health_shape() -> Value {
    json!({
        "Node": {
            "ID": "", "Node": "", "Address": "", "Datacenter": "",
            "TaggedAddresses": {}, "Meta": {}, "CreateIndex": 0, "ModifyIndex": 0
        },
        "Service": {
            "Kind": "", "ID": "", "Service": "", "Tags": [], "Address": "",
            "TaggedAddresses": {"*": {"Address": "", "Port": 0}},
            "Meta": {}, "Port": 0,
            "Weights": {"Passing": 0, "Warning": 0},
            "EnableTagOverride": false,
            "Proxy": {
                "DestinationServiceName": "",
                "Upstreams": [{"DestinationName": "", "LocalBindPort": 0}]
            },
            "Connect": {"Native": false}
        },
        "Checks": [{
            "Node": "", "CheckID": "", "Name": "", "Status": "", "Notes": "", "Output": "",
            "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Definition": null
        }]
    })
}

/// One instance of "web" with a passing node check and a critical service check.
fn web_entry() -> Value {
    json!({
        "Node": {
            "ID": "n1-id", "Node": "node-1", "Address": "10.0.0.1", "Datacenter": "dc1",
            "TaggedAddresses": {"lan": "10.0.0.1", "wan": "198.18.0.1"},
            "Meta": {"rack": "r1", "zone id": "z-1"},
            "CreateIndex": 5, "ModifyIndex": 18446744073709551615u64
        },
        "Service": {
            "Kind": "", "ID": "web-1", "Service": "web", "Tags": ["primary", "v1"],
            "Address": "",
            "TaggedAddresses": {"lan_ipv4": {"Address": "10.0.0.1", "Port": 8080}},
            "Meta": {"env": "prod", "version": "1.2"},
            "Port": 8080,
            "Weights": {"Passing": 10, "Warning": 1},
            "EnableTagOverride": false,
            "Proxy": {"DestinationServiceName": "", "Upstreams": []},
            "Connect": {"Native": true}
        },
        "Checks": [
            {"Node": "node-1", "CheckID": "serfHealth", "Name": "Serf Health Status",
             "Status": "passing", "ServiceTags": []},
            {"Node": "node-1", "CheckID": "service:web-1", "Name": "web check",
             "Status": "critical", "ServiceID": "web-1", "ServiceName": "web",
             "ServiceTags": ["primary"],
             "Output": "HTTP GET http://10.0.0.1:8080/health: 500 Internal Server Error"}
        ]
    })
}

/// A flat shape with the types the health shape lacks.
fn misc_shape() -> Value {
    json!({
        "Name": "", "Ratio": 0.0, "Count": 0, "On": false,
        "Tags": [], "Ports": [0], "Flags": [false], "Meta": {},
        "Groups": {"*": []},
        "Nested": [[{"X": ""}]],
        "not": "", "in": [], "and": ""
    })
}

fn misc_item() -> Value {
    json!({
        "Name": "alpha", "Ratio": 0.5, "Count": -1, "On": true,
        "Tags": ["not", "a"], "Ports": [80, 443], "Flags": [true],
        "Meta": {"k": "v"},
        "Groups": {"ops": ["ann"], "empty": []},
        "Nested": [[{"X": "a"}], [{"X": "b"}]],
        "not": "x", "in": ["y"], "and": "z"
    })
}

/// Parses against `shape` (failing the test on error) and evaluates against `item`.
fn eval(shape: &Value, item: &Value, expr: &str) -> bool {
    match Filter::parse(expr, shape) {
        Ok(filter) => filter.matches(item),
        Err(e) => panic!("{expr:?} should parse: {e}"),
    }
}

/// Runs a table of `(expression, expected result)` and reports every mismatch at once.
fn table(shape: &Value, item: &Value, cases: &[(&str, bool)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter(|(expr, want)| eval(shape, item, expr) != *want)
        .map(|(expr, want)| format!("{expr:?} should be {want}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The error `expr` is rejected with.
fn error(shape: &Value, expr: &str) -> FilterError {
    match Filter::parse(expr, shape) {
        Ok(_) => panic!("{expr:?} should be rejected"),
        Err(e) => e,
    }
}

/// Runs a table of `(expression, text the error must contain)`.
fn error_table(shape: &Value, cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(expr, want)| match Filter::parse(expr, shape) {
            Ok(_) => Some(format!("{expr:?} should be rejected")),
            Err(e) if !e.to_string().contains(want) => {
                Some(format!("{expr:?}: {e:?} does not mention {want:?}"))
            }
            Err(_) => None,
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
