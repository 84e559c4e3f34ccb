//! Table tests for the decoder: bodies as clients send them, and Consul's answers.

mod checks;
mod errors;
mod keys;
mod props;
mod row;
mod services;
mod sidecar;
mod unknown;

use serde_json::Value;

use super::{check, service};
use crate::definition::{CheckDefinition, ServiceDefinition};

const S: u64 = 1_000_000_000;

fn svc(body: Value) -> ServiceDefinition {
    match service(&body) {
        Ok(def) => def,
        Err(e) => panic!("{body} refused: {} {}", e.status, e.message),
    }
}

fn svc_err(body: Value) -> (u16, String) {
    match service(&body) {
        Ok(def) => panic!("{body} accepted: {def:?}"),
        Err(e) => (e.status, e.message),
    }
}

fn chk(body: Value) -> CheckDefinition {
    match check(&body) {
        Ok(def) => def,
        Err(e) => panic!("{body} refused: {} {}", e.status, e.message),
    }
}

fn chk_err(body: Value) -> (u16, String) {
    match check(&body) {
        Ok(def) => panic!("{body} accepted: {def:?}"),
        Err(e) => (e.status, e.message),
    }
}

/// The only check of a service registered with `check` as its `Check`.
fn service_check(check: Value) -> CheckDefinition {
    let mut def = svc(serde_json::json!({"Name": "web", "Check": check}));
    assert_eq!(def.checks.len(), 1, "{def:?}");
    def.checks.remove(0)
}
