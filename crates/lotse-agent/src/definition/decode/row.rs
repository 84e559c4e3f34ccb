//! A check definition's catalog row (`structs.HealthCheck`), with its `Definition` block as
//! Consul's `HealthCheckDefinition.MarshalJSON` writes it.

use std::collections::BTreeMap;
use std::time::Duration;

use lotse_core::catalog::{HealthCheck, Service};
use serde::Serialize;

use super::check::DEFAULT_OUTPUT_MAX_SIZE;
use super::duration;
use crate::definition::{CheckDefinition, CheckKind};

pub(super) fn check_row(
    def: &CheckDefinition,
    node: &str,
    service: Option<&Service>,
) -> HealthCheck {
    let mut row = HealthCheck::new(node, &def.id, &def.name);
    row.status = def.initial_status;
    row.notes = def.notes.clone();
    row.service_id = def.service_id.clone();
    if let Some(s) = service {
        row.service_id = s.id.clone();
        row.service_name = s.name.clone();
        row.service_tags = s.tags.clone();
    }
    row.check_type = def.kind.type_name().to_string();
    row.interval = non_zero(def.interval);
    row.timeout = def.timeout.map(non_zero).unwrap_or_default();
    row.definition_json = serde_json::to_string(&Definition::of(def)).unwrap_or_default();
    row
}

/// Go duration text, empty for zero (Consul leaves `Interval`/`Timeout` empty then).
fn non_zero(d: Duration) -> String {
    if d.is_zero() {
        String::new()
    } else {
        go_string(d)
    }
}

pub(super) fn go_string(d: Duration) -> String {
    duration::format(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Consul's `HealthCheckDefinition` JSON: every field omitted when zero; the four fields its
/// `MarshalJSON` renders as duration text come first (Go's outer-struct fields), and `TTL`,
/// which it forgets, is a number of nanoseconds. Lotse has no Docker/OSService checks, so
/// `OSService`, `DockerContainerID` and `Shell` never appear.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Definition {
    #[serde(skip_serializing_if = "String::is_empty")]
    interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_max_size: Option<usize>,
    #[serde(skip_serializing_if = "String::is_empty")]
    timeout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    deregister_critical_service_after: String,
    #[serde(rename = "HTTP", skip_serializing_if = "String::is_empty")]
    http: String,
    #[serde(rename = "TLSServerName", skip_serializing_if = "String::is_empty")]
    tls_server_name: String,
    #[serde(rename = "TLSSkipVerify", skip_serializing_if = "is_false")]
    tls_skip_verify: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    header: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    method: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    body: String,
    #[serde(skip_serializing_if = "is_false")]
    disable_redirects: bool,
    #[serde(rename = "TCP", skip_serializing_if = "String::is_empty")]
    tcp: String,
    #[serde(rename = "UDP", skip_serializing_if = "String::is_empty")]
    udp: String,
    #[serde(rename = "H2PING", skip_serializing_if = "String::is_empty")]
    h2ping: String,
    #[serde(rename = "H2PingUseTLS", skip_serializing_if = "is_false")]
    h2ping_use_tls: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    script_args: Vec<String>,
    #[serde(rename = "GRPC", skip_serializing_if = "String::is_empty")]
    grpc: String,
    #[serde(rename = "GRPCUseTLS", skip_serializing_if = "is_false")]
    grpc_use_tls: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    alias_node: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    alias_service: String,
    #[serde(rename = "TTL", skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

impl Definition {
    fn of(def: &CheckDefinition) -> Definition {
        let mut d = Definition {
            interval: non_zero(def.interval),
            // Lotse stores the effective limit; Consul's row has the requested one, and none
            // when the check asked for none (which is what the default stands for here).
            output_max_size: (def.output_max_size != DEFAULT_OUTPUT_MAX_SIZE)
                .then_some(def.output_max_size),
            timeout: def.timeout.map(non_zero).unwrap_or_default(),
            deregister_critical_service_after: def
                .deregister_critical_service_after
                .map(non_zero)
                .unwrap_or_default(),
            ttl: (!def.ttl.is_zero())
                .then(|| i64::try_from(def.ttl.as_nanos()).unwrap_or(i64::MAX)),
            ..Definition::default()
        };
        match &def.kind {
            CheckKind::Http {
                url,
                method,
                header,
                body,
                tls_server_name,
                tls_skip_verify,
                disable_redirects,
            } => {
                d.http = url.clone();
                d.method = method.clone();
                d.header = header.clone();
                d.body = body.clone();
                d.tls_server_name = tls_server_name.clone();
                d.tls_skip_verify = *tls_skip_verify;
                d.disable_redirects = *disable_redirects;
            }
            CheckKind::Tcp { addr } => d.tcp = addr.clone(),
            CheckKind::Udp { addr } => d.udp = addr.clone(),
            CheckKind::Ttl => {}
            CheckKind::Script { args } => d.script_args = args.clone(),
            CheckKind::Grpc {
                target,
                use_tls,
                tls_skip_verify,
            } => {
                d.grpc = target.clone();
                d.grpc_use_tls = *use_tls;
                d.tls_skip_verify = *tls_skip_verify;
            }
            CheckKind::H2Ping {
                addr,
                use_tls,
                tls_skip_verify,
            } => {
                d.h2ping = addr.clone();
                d.h2ping_use_tls = *use_tls;
                d.tls_skip_verify = *tls_skip_verify;
            }
            CheckKind::Alias { node, service } => {
                d.alias_node = node.clone();
                d.alias_service = service.clone();
            }
        }
        d
    }
}
