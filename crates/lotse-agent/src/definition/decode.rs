//! Registration JSON to definitions, as Consul decodes and validates it: a
//! `PUT /v1/agent/service/register` or `PUT /v1/agent/check/register` body, or a config
//! file's `services`/`checks` block once converted to JSON. Nothing here does I/O.
//!
//! ```text
//!  body ──keys::canonical──► canonical object ──service/check──► ServiceDefinition
//!        (Go field names,     (Go names only)    (Consul's order    ├─ checks (check)
//!         types checked)                          of refusals)       └─ sidecar (sidecar)
//!  CheckDefinition ──row──► catalog HealthCheck (Definition JSON as Consul writes it)
//! ```
//!
//! * `keys`: Go's case-insensitive key matching (plus snake_case for every field), unknown
//!   fields, wrong types, all as `Request decode failed: ...` 400s; `schema`: the Go structs.
//! * `duration`: Go's `time.ParseDuration` and `Duration.String()`.
//! * `service`, `proxy`, `sidecar`, `check`: Consul's validation texts in Consul's order.
//! * `target`: Lotse's stricter rules for HTTP URLs and `host:port` addresses.
//! * `row`: a definition's catalog row.
//!
//! Where Lotse departs from Consul (each also noted where it is done):
//! * Every field takes snake_case (Consul: only a listed few), `ID` is accepted for a
//!   service check's `CheckID` and `CheckID` for a registered check's `ID`.
//! * A duration of the wrong JSON type is a 400 (Consul ignores it).
//! * Docker and OS-service checks are refused; HTTP URLs must be `http(s)://host...` and
//!   TCP/UDP/H2PING addresses `host:port` (Consul accepts them and fails every probe).
//! * Intervals below 1 s and deregister delays below 1 min are raised in the definition
//!   (and so in the catalog row; Consul's row shows the requested interval).
//! * `Locality` is accepted and dropped; `Proxy.Config` is not validated.

mod check;
mod duration;
mod keys;
mod proxy;
mod row;
mod schema;
mod service;
mod sidecar;
mod target;

#[cfg(test)]
mod tests;

use std::time::Duration;

use lotse_core::catalog::{HealthCheck, Service};
use serde_json::Value;

use super::{CheckDefinition, DefinitionError, ServiceDefinition};

/// `PUT /v1/agent/service/register` body (or a config `service` block as JSON): the service
/// with Consul's defaults, its checks (IDs assigned) and its sidecar, if any. A sidecar
/// without a port has port 0: see [`ServiceDefinition::assign_sidecar_port`].
///
/// Errors are 400s with Consul's texts, except the tagged-address rules Consul enforces in
/// `AddService` (500). Script checks are decoded; refusing them is the caller's business.
pub fn service(body: &Value) -> Result<ServiceDefinition, DefinitionError> {
    service::decode(body)
}

/// `PUT /v1/agent/check/register` body (or a config `check` block as JSON). `ServiceID` is
/// kept: the caller answers 404 `ServiceID "x" does not exist` when there is no such service.
pub fn check(body: &Value) -> Result<CheckDefinition, DefinitionError> {
    check::register(body)
}

/// A check definition's catalog row on `node`: status = initial status, `Type`, `Interval`
/// and `Timeout` as Go duration text (empty when none), `Definition` as Consul's JSON, and
/// the service's ID, name and tags when `service` is given.
pub fn check_row(def: &CheckDefinition, node: &str, service: Option<&Service>) -> HealthCheck {
    row::check_row(def, node, service)
}

/// Go's `time.Duration.String()`: `"10s"`, `"1m30s"`, `"1h0m0s"`, `"500ms"`, `"0s"`.
pub fn go_duration_string(d: Duration) -> String {
    row::go_string(d)
}

/// Go's `time.ParseDuration`: signed nanoseconds, or Go's error text
/// (`time: missing unit in duration "10"`).
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    duration::parse(text)
}
