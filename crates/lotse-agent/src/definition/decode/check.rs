//! Checks: Consul's `CheckType` (a service's `Check`/`Checks`) and `CheckDefinition`
//! (`/v1/agent/check/register`), validated with Consul's `CheckType.Validate()` texts and
//! turned into a [`CheckDefinition`] with Consul's defaults.

use std::time::Duration;

use lotse_core::catalog::CheckStatus;
use serde_json::Value;

use super::keys::{bool_of, canonical, header_of, int_of, opt_bool, str_of, strings_of, Object};
use super::schema::CHECK_DEFINITION;
use super::target::{host_port, is_http_url};
use crate::definition::{CheckDefinition, CheckKind, DefinitionError};

/// Consul's `checks.MinInterval`: shorter intervals are raised to it.
const MIN_INTERVAL: i64 = 1_000_000_000;
/// Consul's default `check_deregister_interval_min`.
const MIN_DEREGISTER_AFTER: i64 = 60_000_000_000;
/// Consul's `checks.DefaultBufSize` (the default `check_output_max_size`).
pub(super) const DEFAULT_OUTPUT_MAX_SIZE: usize = 4096;

/// A check as Consul's `CheckType` holds it once decoded (durations in nanoseconds).
#[derive(Debug, Default)]
pub(super) struct RawCheck {
    pub id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub service_id: String,
    pub token: String,
    script_args: Vec<String>,
    http: String,
    h2ping: String,
    /// Absent: true when `H2PING` is set (Consul's default).
    h2ping_use_tls: Option<bool>,
    header: std::collections::BTreeMap<String, Vec<String>>,
    method: String,
    body: String,
    disable_redirects: bool,
    tcp: String,
    udp: String,
    interval: i64,
    alias_node: String,
    alias_service: String,
    docker_container_id: String,
    shell: String,
    grpc: String,
    grpc_use_tls: bool,
    os_service: String,
    tls_server_name: String,
    tls_skip_verify: bool,
    timeout: i64,
    ttl: i64,
    success_before_passing: i64,
    failures_before_warning: i64,
    failures_before_critical: i64,
    proxy_http: String,
    proxy_grpc: String,
    deregister_critical_service_after: i64,
    output_max_size: i64,
}

impl RawCheck {
    /// Reads a canonical `CheckType` or `CheckDefinition` object (`null`: an empty check).
    pub fn from_value(value: &Value) -> RawCheck {
        value
            .as_object()
            .map(RawCheck::from_object)
            .unwrap_or_default()
    }

    pub fn from_object(o: &Object) -> RawCheck {
        let s = |f: &str| str_of(o, f).to_string();
        RawCheck {
            // `CheckID` in a `CheckType`, `ID` in a `CheckDefinition`: one is always absent.
            id: if o.contains_key("CheckID") {
                s("CheckID")
            } else {
                s("ID")
            },
            name: s("Name"),
            status: s("Status"),
            notes: s("Notes"),
            service_id: s("ServiceID"),
            token: s("Token"),
            script_args: strings_of(o, "ScriptArgs"),
            http: s("HTTP"),
            h2ping: s("H2PING"),
            h2ping_use_tls: opt_bool(o, "H2PingUseTLS"),
            header: header_of(o, "Header"),
            method: s("Method"),
            body: s("Body"),
            disable_redirects: bool_of(o, "DisableRedirects"),
            tcp: s("TCP"),
            udp: s("UDP"),
            interval: int_of(o, "Interval"),
            alias_node: s("AliasNode"),
            alias_service: s("AliasService"),
            docker_container_id: s("DockerContainerID"),
            shell: s("Shell"),
            grpc: s("GRPC"),
            grpc_use_tls: bool_of(o, "GRPCUseTLS"),
            os_service: s("OSService"),
            tls_server_name: s("TLSServerName"),
            tls_skip_verify: bool_of(o, "TLSSkipVerify"),
            timeout: int_of(o, "Timeout"),
            ttl: int_of(o, "TTL"),
            success_before_passing: int_of(o, "SuccessBeforePassing"),
            failures_before_warning: int_of(o, "FailuresBeforeWarning"),
            failures_before_critical: int_of(o, "FailuresBeforeCritical"),
            proxy_http: s("ProxyHTTP"),
            proxy_grpc: s("ProxyGRPC"),
            deregister_critical_service_after: int_of(o, "DeregisterCriticalServiceAfter"),
            output_max_size: int_of(o, "OutputMaxSize"),
        }
    }

    fn h2ping_tls(&self) -> bool {
        self.h2ping_use_tls.unwrap_or(!self.h2ping.is_empty())
    }

    /// Consul's `CheckType.Empty()`: nothing set at all (a `"Check": {}` is no check).
    /// `ServiceID` is not part of a `CheckType` in Consul, so it does not count.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
            && self.name.is_empty()
            && self.status.is_empty()
            && self.notes.is_empty()
            && self.token.is_empty()
            && self.script_args.is_empty()
            && self.http.is_empty()
            && self.h2ping.is_empty()
            && !self.h2ping_tls()
            && self.header.is_empty()
            && self.method.is_empty()
            && self.body.is_empty()
            && !self.disable_redirects
            && self.tcp.is_empty()
            && self.udp.is_empty()
            && self.interval == 0
            && self.alias_node.is_empty()
            && self.alias_service.is_empty()
            && self.docker_container_id.is_empty()
            && self.shell.is_empty()
            && self.grpc.is_empty()
            && !self.grpc_use_tls
            && self.os_service.is_empty()
            && self.tls_server_name.is_empty()
            && !self.tls_skip_verify
            && self.timeout == 0
            && self.ttl == 0
            && self.success_before_passing == 0
            && self.failures_before_warning == 0
            && self.failures_before_critical == 0
            && self.proxy_http.is_empty()
            && self.proxy_grpc.is_empty()
            && self.deregister_critical_service_after == 0
            && self.output_max_size == 0
    }

    fn is_alias(&self) -> bool {
        !self.alias_node.is_empty() || !self.alias_service.is_empty()
    }

    /// Consul's `CheckType.Validate()`, its messages in its order.
    pub fn validate(&self) -> Result<(), String> {
        let interval_check = !self.script_args.is_empty()
            || !self.http.is_empty()
            || !self.tcp.is_empty()
            || !self.udp.is_empty()
            || !self.grpc.is_empty()
            || !self.h2ping.is_empty()
            || !self.os_service.is_empty();
        let alias = self.is_alias();
        let message = if self.interval > 0 && self.ttl > 0 {
            "Interval and TTL cannot both be specified"
        } else if interval_check && self.interval <= 0 {
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
        } else if interval_check && alias {
            "Interval cannot be set for Alias checks"
        } else if alias && self.ttl > 0 {
            "TTL must be not be set for Alias checks"
        } else if !interval_check && !alias && self.ttl <= 0 {
            "TTL must be > 0 for TTL checks"
        } else if self.output_max_size < 0 {
            "MaxOutputMaxSize must be positive"
        } else if self.failures_before_warning > self.failures_before_critical {
            "FailuresBeforeWarning can't be higher than FailuresBeforeCritical"
        } else {
            return Ok(());
        };
        Err(message.to_string())
    }

    /// The probe Lotse runs, chosen with the precedence of Consul's `CheckType.Type()`: gRPC,
    /// HTTP, TTL, TCP, UDP, alias, Docker, script, H2PING, OS service. Call after [`validate`].
    ///
    /// Departures from Consul, all refusals of checks Consul would accept:
    /// * Docker and OS-service checks are not supported.
    /// * An HTTP URL must be `http://` or `https://` with a host, and a TCP, UDP or H2PING
    ///   address must be `host:port` with a numeric port: Consul registers anything and lets
    ///   the probe fail forever; Lotse says so at registration.
    ///
    /// [`validate`]: RawCheck::validate
    pub fn kind(&self) -> Result<CheckKind, String> {
        let has_interval = self.interval > 0;
        let scheduled = |target: &str| has_interval && !target.is_empty();
        Ok(if scheduled(&self.grpc) {
            CheckKind::Grpc {
                target: self.grpc.clone(),
                use_tls: self.grpc_use_tls,
                tls_skip_verify: self.tls_skip_verify,
            }
        } else if scheduled(&self.http) {
            if !is_http_url(&self.http) {
                return Err(format!("HTTP URL {} is invalid", self.http));
            }
            CheckKind::Http {
                url: self.http.clone(),
                method: if self.method.is_empty() {
                    "GET".into()
                } else {
                    self.method.clone()
                },
                header: self.header.clone(),
                body: self.body.clone(),
                tls_server_name: self.tls_server_name.clone(),
                tls_skip_verify: self.tls_skip_verify,
                disable_redirects: self.disable_redirects,
            }
        } else if self.ttl > 0 {
            CheckKind::Ttl
        } else if scheduled(&self.tcp) {
            CheckKind::Tcp {
                addr: host_port("TCP", &self.tcp)?,
            }
        } else if scheduled(&self.udp) {
            CheckKind::Udp {
                addr: host_port("UDP", &self.udp)?,
            }
        } else if self.is_alias() {
            CheckKind::Alias {
                node: self.alias_node.clone(),
                service: self.alias_service.clone(),
            }
        } else if has_interval
            && !self.script_args.is_empty()
            && !self.docker_container_id.is_empty()
        {
            return Err("Docker checks are not supported by Lotse".into());
        } else if has_interval && !self.script_args.is_empty() {
            CheckKind::Script {
                args: self.script_args.clone(),
            }
        } else if scheduled(&self.h2ping) {
            CheckKind::H2Ping {
                addr: host_port("H2PING", &self.h2ping)?,
                use_tls: self.h2ping_tls(),
                tls_skip_verify: self.tls_skip_verify,
            }
        } else if scheduled(&self.os_service) {
            return Err("OSService checks are not supported by Lotse".into());
        } else {
            // Unreachable after a passing validate(); kept total rather than panicking.
            return Err("TTL must be > 0 for TTL checks".into());
        })
    }

    /// Consul's `ValidStatus`, with the empty status meaning critical.
    pub fn initial_status(&self) -> Option<CheckStatus> {
        if self.status.is_empty() {
            Some(CheckStatus::Critical)
        } else {
            CheckStatus::parse(&self.status)
        }
    }

    /// The definition, with Consul's defaults and clamps applied. `kind` comes from
    /// [`RawCheck::kind`]; the status was checked by the caller.
    pub fn into_definition(self, kind: CheckKind, id: String, name: String) -> CheckDefinition {
        let scheduled = !matches!(kind, CheckKind::Ttl | CheckKind::Alias { .. });
        let nanos = |n: i64| Duration::from_nanos(n.max(0).unsigned_abs());
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        let failures_before_critical = count(self.failures_before_critical);
        let failures_before_warning = match count(self.failures_before_warning) {
            0 => failures_before_critical,
            n => n,
        };
        let output_max_size = match usize::try_from(self.output_max_size) {
            // The check may only lower the agent's limit (Consul: `check_output_max_size`).
            Ok(n) if n > 0 => n.min(DEFAULT_OUTPUT_MAX_SIZE),
            _ => DEFAULT_OUTPUT_MAX_SIZE,
        };
        CheckDefinition {
            id,
            name,
            initial_status: self.initial_status().unwrap_or(CheckStatus::Critical),
            notes: self.notes,
            service_id: self.service_id,
            interval: if scheduled {
                nanos(self.interval.max(MIN_INTERVAL))
            } else {
                Duration::ZERO
            },
            timeout: (self.timeout > 0).then(|| nanos(self.timeout)),
            ttl: if kind == CheckKind::Ttl {
                nanos(self.ttl)
            } else {
                Duration::ZERO
            },
            deregister_critical_service_after: (self.deregister_critical_service_after > 0).then(
                || {
                    nanos(
                        self.deregister_critical_service_after
                            .max(MIN_DEREGISTER_AFTER),
                    )
                },
            ),
            success_before_passing: count(self.success_before_passing),
            failures_before_warning,
            failures_before_critical,
            output_max_size,
            token: self.token,
            kind,
        }
    }
}

/// `PUT /v1/agent/check/register`: Consul's order of refusals (decode, name, status,
/// `Validate()`), then Lotse's probe rules. The caller checks that `ServiceID` exists.
pub(super) fn register(body: &Value) -> Result<CheckDefinition, DefinitionError> {
    let obj = canonical(body, &CHECK_DEFINITION)?;
    let raw = RawCheck::from_object(&obj);
    if raw.name.is_empty() {
        return Err(DefinitionError::bad_request("Missing check name"));
    }
    if raw.initial_status().is_none() {
        return Err(DefinitionError::bad_request("Bad check status"));
    }
    let kind = raw
        .validate()
        .and_then(|()| raw.kind())
        .map_err(|m| DefinitionError::bad_request(format!("Invalid check: {m}")))?;
    let id = if raw.id.is_empty() {
        raw.name.clone()
    } else {
        raw.id.clone()
    };
    let name = raw.name.clone();
    Ok(raw.into_definition(kind, id, name))
}
