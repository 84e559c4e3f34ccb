//! One configuration source (defaults, a file, the environment, the flags) decoded into a
//! `Partial`: every value optional, so that sources can be merged in order.
//!
//! Decoding walks the generic JSON value that both the JSON and the HCL reader produce. Every
//! key is one of: implemented (decoded, type-checked; a wrong type is an error naming the key
//! and the source), deprecated (mapped to its new name, with a warning), known to Consul but
//! not implemented by Lotse yet (warning), or unknown (warning). Nothing is dropped silently.
//! Service and check definitions are validated here, per source, so that an error can name
//! the file (see [`definitions`]).

mod definitions;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use lotse_api::request_limits::Mode;
use serde_json::Value;

use super::{duration, ConfigError};

#[derive(Debug, Default, Clone)]
pub struct Partial {
    pub server: Option<bool>,
    pub bootstrap: Option<bool>,
    pub bootstrap_expect: Option<i64>,
    pub data_dir: Option<String>,
    pub node_name: Option<String>,
    pub node_id: Option<String>,
    pub node_meta: BTreeMap<String, String>,
    pub datacenter: Option<String>,
    pub primary_datacenter: Option<String>,
    pub bind_addr: Option<String>,
    pub client_addr: Option<String>,
    pub advertise_addr: Option<String>,
    pub ports: PartialPorts,
    pub retry_join: Vec<String>,
    pub start_join: Vec<String>,
    pub retry_interval: Option<Duration>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub enable_script_checks: Option<bool>,
    pub enable_local_script_checks: Option<bool>,
    pub domain: Option<String>,
    pub alt_domain: Option<String>,
    /// Parsed (port 53 added); appended across sources, deduplicated at the end.
    pub recursors: Vec<SocketAddr>,
    pub addresses: PartialAddresses,
    pub dns: PartialDns,
    pub limits: PartialLimits,
    pub session_ttl_min: Option<Duration>,
    pub raft_snapshot_threshold: Option<u64>,
    pub raft_snapshot_interval: Option<Duration>,
    pub acl: PartialAcl,
    /// `services` then `service` blocks, each as written (validated); appended across sources.
    pub services: Vec<Value>,
    /// `checks` then `check` blocks, each as written (validated); appended across sources.
    pub checks: Vec<Value>,
    pub ae_interval: Option<Duration>,
    pub check_update_interval: Option<Duration>,
    pub check_reap_interval: Option<Duration>,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: Option<bool>,
    pub encrypt_verify_outgoing: Option<bool>,
    pub performance: PartialPerformance,
    pub reconnect_timeout: Option<Duration>,
    pub leave_on_terminate: Option<bool>,
    pub skip_leave_on_interrupt: Option<bool>,
    pub rejoin_after_leave: Option<bool>,
    pub retry_max: Option<u64>,
    pub raft_trailing_logs: Option<u64>,
    pub autopilot: PartialAutopilot,
    pub gossip_lan: PartialGossipLan,
}

#[derive(Debug, Default, Clone)]
pub struct PartialPorts {
    pub http: Option<i64>,
    pub dns: Option<i64>,
    pub server: Option<i64>,
    pub serf_lan: Option<i64>,
    pub serf_wan: Option<i64>,
    pub grpc: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct PartialLimits {
    pub kv_max_value_size: Option<u64>,
    pub txn_max_req_len: Option<u64>,
    pub txn_max_ops: Option<u64>,
    pub http_max_conns_per_client: Option<u64>,
    /// `limits.request_limits { mode, read_rate, write_rate }`.
    pub request_limits_mode: Option<Mode>,
    pub request_limits_read_rate: Option<f64>,
    pub request_limits_write_rate: Option<f64>,
}

#[derive(Debug, Default, Clone)]
pub struct PartialAcl {
    pub enabled: Option<bool>,
    pub default_policy: Option<String>,
    pub down_policy: Option<String>,
    pub policy_ttl: Option<Duration>,
    pub role_ttl: Option<Duration>,
    pub token_ttl: Option<Duration>,
    pub enable_key_list_policy: Option<bool>,
    pub enable_token_replication: Option<bool>,
    pub enable_token_persistence: Option<bool>,
    pub tokens: PartialTokens,
}

/// Tokens are optional in a partial configuration and in the final one alike, so both use one
/// type.
pub use super::AclTokens as PartialTokens;

/// `dst = src` when `src` is set.
macro_rules! over {
    ($dst:expr, $src:expr; $($f:ident),* $(,)?) => {
        $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )*
    };
}

impl Partial {
    /// Merges `later` on top of `self`: set scalars win, lists append, maps merge key by key.
    pub fn merge(&mut self, later: &Partial) {
        over!(self, later; server, bootstrap, bootstrap_expect, data_dir, node_name, node_id,
            datacenter, primary_datacenter, bind_addr, client_addr, advertise_addr,
            retry_interval, log_level, log_json, enable_script_checks, enable_local_script_checks,
            domain, alt_domain, session_ttl_min, raft_snapshot_threshold, raft_snapshot_interval,
            ae_interval, check_update_interval, check_reap_interval, encrypt,
            encrypt_verify_incoming, encrypt_verify_outgoing, reconnect_timeout,
            leave_on_terminate, skip_leave_on_interrupt, rejoin_after_leave, retry_max,
            raft_trailing_logs);
        self.performance.merge(&later.performance);
        self.autopilot.merge(&later.autopilot);
        self.gossip_lan.merge(&later.gossip_lan);
        self.node_meta
            .extend(later.node_meta.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.retry_join.extend(later.retry_join.iter().cloned());
        self.start_join.extend(later.start_join.iter().cloned());
        self.services.extend(later.services.iter().cloned());
        self.checks.extend(later.checks.iter().cloned());
        self.recursors.extend(later.recursors.iter().copied());
        over!(self.addresses, later.addresses; dns);
        self.dns.merge(&later.dns);
        over!(self.ports, later.ports; http, dns, server, serf_lan, serf_wan, grpc);
        over!(self.limits, later.limits; kv_max_value_size, txn_max_req_len, txn_max_ops,
            http_max_conns_per_client, request_limits_mode, request_limits_read_rate,
            request_limits_write_rate);
        over!(self.acl, later.acl; enabled, default_policy, down_policy, policy_ttl, role_ttl,
            token_ttl, enable_key_list_policy, enable_token_replication, enable_token_persistence);
        over!(self.acl.tokens, later.acl.tokens; initial_management, agent_recovery, agent, default,
            replication, config_file_service_registration, dns);
    }

    /// Moves the list values out (Consul merges command-line lists before the files').
    pub fn take_lists(&mut self) -> Partial {
        Partial {
            retry_join: std::mem::take(&mut self.retry_join),
            start_join: std::mem::take(&mut self.start_join),
            recursors: std::mem::take(&mut self.recursors),
            ..Partial::default()
        }
    }
}

mod cluster;
mod dns;
pub use cluster::{PartialAutopilot, PartialGossipLan, PartialPerformance};
pub use dns::{PartialAddresses, PartialDns};

/// Top-level keys Consul has and Lotse does not implement yet.
const UNIMPLEMENTED: &[&str] = &[
    "advertise_addr_ipv4",
    "advertise_addr_ipv6",
    "advertise_addr_wan",
    "advertise_addr_wan_ipv4",
    "advertise_addr_wan_ipv6",
    "advertise_reconnect_timeout",
    "audit",
    "auto_config",
    "auto_encrypt",
    "auto_reload_config",
    "cache",
    "ca_file",
    "ca_path",
    "cert_file",
    "check_output_max_size",
    "cloud",
    "config_entries",
    "connect",
    "default_query_time",
    "disable_anonymous_signature",
    "disable_coordinates",
    "disable_host_node_id",
    "disable_http_unprintable_char_filter",
    "disable_keyring_file",
    "disable_remote_exec",
    "disable_update_check",
    "discard_check_output",
    "discovery_max_stale",
    "enable_acl_replication",
    "enable_agent_tls_for_checks",
    "enable_central_service_config",
    "enable_debug",
    "enable_syslog",
    "experiments",
    "gossip_wan",
    "http_config",
    "key_file",
    "license_path",
    "locality",
    "log_file",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
    "max_query_time",
    "non_voting_server",
    "partition",
    "peering",
    "pid_file",
    "primary_gateways",
    "primary_gateways_interval",
    "protocol",
    "raft_boltdb",
    "raft_logstore",
    "raft_protocol",
    "read_replica",
    "reconnect_timeout_wan",
    "reporting",
    "retry_interval_wan",
    "retry_join_wan",
    "retry_max_wan",
    "rpc",
    "segment",
    "segments",
    "serf_lan",
    "serf_lan_allowed_cidrs",
    "serf_wan",
    "serf_wan_allowed_cidrs",
    "server_name",
    "server_rejoin_age_max",
    "snapshot_agent",
    "start_join_wan",
    "syslog_facility",
    "tagged_addresses",
    "telemetry",
    "tls",
    "tls_cipher_suites",
    "tls_min_version",
    "tls_prefer_server_cipher_suites",
    "translate_wan_addrs",
    "ui",
    "ui_config",
    "ui_content_path",
    "ui_dir",
    "unix_sockets",
    "use_streaming_backend",
    "verify_incoming",
    "verify_incoming_https",
    "verify_incoming_rpc",
    "verify_outgoing",
    "verify_server_hostname",
    "watches",
    "xds",
    "acl_ttl",
    "acl_enforce_version_8",
    "acl_disabled_ttl",
    "check_deregister_interval_min",
    "consul",
    "revision",
    "segment_limit",
    "segment_name_limit",
    "sync_coordinate_interval_min",
    "sync_coordinate_rate_target",
    "version",
    "version_prerelease",
];
const UNIMPLEMENTED_PORTS: &[&str] = &[
    "https",
    "grpc_tls",
    "proxy_min_port",
    "proxy_max_port",
    "sidecar_min_port",
    "sidecar_max_port",
    "expose_min_port",
    "expose_max_port",
];
const UNIMPLEMENTED_LIMITS: &[&str] = &[
    "https_handshake_timeout",
    "rpc_handshake_timeout",
    "rpc_client_timeout",
    "rpc_max_burst",
    "rpc_max_conns_per_client",
    "rpc_rate",
];
const UNIMPLEMENTED_ACL: &[&str] = &["disabled_ttl", "msp_disable_bootstrap"];
const UNIMPLEMENTED_TOKENS: &[&str] = &["managed_service_provider"];

/// Decoding context: which source we are reading and where warnings go.
pub struct Cx<'a> {
    pub origin: &'a str,
    pub warnings: &'a mut Vec<String>,
}

impl Cx<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            origin: self.origin.to_string(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }
    fn unknown(&mut self, key: &str) {
        self.warnings.push(format!(
            "config: ignoring unknown key {key:?} in {}",
            self.origin
        ));
    }
    fn unimplemented(&mut self, key: &str) {
        self.warnings.push(format!(
            "config: key {key:?} is not implemented yet by Lotse; ignoring it in {}",
            self.origin
        ));
    }
    fn deprecated(&mut self, key: &str, new: &str) {
        self.warnings.push(format!(
            "config: key {key:?} in {} is deprecated; use {new:?} instead",
            self.origin
        ));
    }

    fn bool(&self, key: &str, v: &Value) -> Result<bool, ConfigError> {
        v.as_bool()
            .ok_or_else(|| self.err(key, expected("a boolean (true or false)", v)))
    }
    fn string(&self, key: &str, v: &Value) -> Result<String, ConfigError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(key, expected("a string", v)))
    }
    fn int(&self, key: &str, v: &Value) -> Result<i64, ConfigError> {
        v.as_i64()
            .ok_or_else(|| self.err(key, expected("an integer", v)))
    }
    fn uint(&self, key: &str, v: &Value) -> Result<u64, ConfigError> {
        v.as_u64()
            .ok_or_else(|| self.err(key, expected("a non-negative integer", v)))
    }
    fn duration(&self, key: &str, v: &Value) -> Result<Duration, ConfigError> {
        let s = v.as_str().ok_or_else(|| {
            self.err(
                key,
                expected("a duration string such as \"10s\" or \"1m30s\"", v),
            )
        })?;
        duration::parse(s).map_err(|e| self.err(key, e))
    }
    /// A list of strings; a single string is taken as a one-element list (as Consul's decoder does).
    fn strings(&self, key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.err(key, expected("a list of strings", v))),
            _ => Err(self.err(key, expected("a list of strings", v))),
        }
    }
    /// A nested map. HCL repeats of a block (`ports { } ports { }`) arrive as a list of maps,
    /// which is read in order.
    fn object<'v>(
        &self,
        key: &str,
        v: &'v Value,
    ) -> Result<Vec<(&'v String, &'v Value)>, ConfigError> {
        match v {
            Value::Object(m) => Ok(m.iter().collect()),
            Value::Array(items) => {
                let mut out = Vec::new();
                for i in items {
                    match i {
                        Value::Object(m) => out.extend(m.iter()),
                        _ => return Err(self.err(key, expected("a map (block)", v))),
                    }
                }
                Ok(out)
            }
            _ => Err(self.err(key, expected("a map (block)", v))),
        }
    }
}

fn expected(what: &str, got: &Value) -> String {
    let got = match got {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a map".to_string(),
    };
    format!("expected {what}, found {got}")
}

/// `limits.request_limits`: Consul's mode names, and rates as non-negative numbers of
/// requests a second.
fn decode_request_limits(l: &mut PartialLimits, v: &Value, cx: &mut Cx) -> Result<(), ConfigError> {
    for (k, v) in cx.object("limits.request_limits", v)? {
        let key = format!("limits.request_limits.{k}");
        match k.as_str() {
            "mode" => {
                let name = cx.string(&key, v)?;
                let mode = Mode::parse(&name).ok_or_else(|| {
                    cx.err(
                        &key,
                        format!("unknown mode {name:?}: expected \"disabled\", \"permissive\" or \"enforcing\""),
                    )
                })?;
                l.request_limits_mode = Some(mode);
            }
            "read_rate" | "write_rate" => {
                let rate = v
                    .as_f64()
                    .filter(|r| *r >= 0.0)
                    .ok_or_else(|| cx.err(&key, expected("a non-negative number", v)))?;
                if k == "read_rate" {
                    l.request_limits_read_rate = Some(rate);
                } else {
                    l.request_limits_write_rate = Some(rate);
                }
            }
            _ => cx.unknown(&key),
        }
    }
    Ok(())
}

/// Decodes one source's top-level map into `p`.
pub fn decode(root: &Value, cx: &mut Cx) -> Result<Partial, ConfigError> {
    let mut p = Partial::default();
    let Value::Object(map) = root else {
        return Err(cx.err("(top level)", expected("a map of configuration keys", root)));
    };
    // As in Consul, a source's single `service`/`check` blocks come after its lists.
    let singles = ["check", "service"];
    for (k, v) in map.iter().filter(|(k, _)| !singles.contains(&k.as_str())) {
        decode_top(&mut p, k, v, cx)?;
    }
    for k in singles {
        if let Some(v) = map.get(k) {
            decode_top(&mut p, k, v, cx)?;
        }
    }
    Ok(p)
}

fn decode_top(p: &mut Partial, k: &str, v: &Value, cx: &mut Cx) -> Result<(), ConfigError> {
    match k {
        "server" => p.server = Some(cx.bool(k, v)?),
        "bootstrap" => p.bootstrap = Some(cx.bool(k, v)?),
        "bootstrap_expect" => p.bootstrap_expect = Some(cx.int(k, v)?),
        "data_dir" => p.data_dir = Some(cx.string(k, v)?),
        "node_name" => p.node_name = Some(cx.string(k, v)?),
        "node_id" => p.node_id = Some(cx.string(k, v)?),
        "node_meta" => {
            for (mk, mv) in cx.object(k, v)? {
                p.node_meta
                    .insert(mk.clone(), cx.string(&format!("node_meta.{mk}"), mv)?);
            }
        }
        "datacenter" => p.datacenter = Some(cx.string(k, v)?),
        "primary_datacenter" => p.primary_datacenter = Some(cx.string(k, v)?),
        "bind_addr" => p.bind_addr = Some(cx.string(k, v)?),
        "client_addr" => p.client_addr = Some(cx.string(k, v)?),
        "advertise_addr" => p.advertise_addr = Some(cx.string(k, v)?),
        "ports" => {
            for (pk, pv) in cx.object(k, v)? {
                let key = format!("ports.{pk}");
                let slot = match pk.as_str() {
                    "http" => &mut p.ports.http,
                    "dns" => &mut p.ports.dns,
                    "server" => &mut p.ports.server,
                    "serf_lan" => &mut p.ports.serf_lan,
                    "serf_wan" => &mut p.ports.serf_wan,
                    "grpc" => &mut p.ports.grpc,
                    other if UNIMPLEMENTED_PORTS.contains(&other) => {
                        cx.unimplemented(&key);
                        continue;
                    }
                    _ => {
                        cx.unknown(&key);
                        continue;
                    }
                };
                *slot = Some(cx.int(&key, pv)?);
            }
        }
        "retry_join" => p.retry_join.extend(cx.strings(k, v)?),
        "start_join" => p.start_join.extend(cx.strings(k, v)?),
        "retry_interval" => p.retry_interval = Some(cx.duration(k, v)?),
        "log_level" => p.log_level = Some(cx.string(k, v)?),
        "log_json" => p.log_json = Some(cx.bool(k, v)?),
        "enable_script_checks" => p.enable_script_checks = Some(cx.bool(k, v)?),
        "enable_local_script_checks" => p.enable_local_script_checks = Some(cx.bool(k, v)?),
        "domain" => p.domain = Some(cx.string(k, v)?),
        "alt_domain" => p.alt_domain = Some(cx.string(k, v)?),
        "recursors" => p.recursors.extend(dns::decode_recursors(k, v, cx)?),
        "addresses" => dns::decode_addresses(&mut p.addresses, v, cx)?,
        "dns_config" => dns::decode_dns_config(&mut p.dns, v, cx)?,
        "limits" => {
            for (lk, lv) in cx.object(k, v)? {
                let key = format!("limits.{lk}");
                if lk == "request_limits" {
                    decode_request_limits(&mut p.limits, lv, cx)?;
                    continue;
                }
                let slot = match lk.as_str() {
                    "kv_max_value_size" => &mut p.limits.kv_max_value_size,
                    "txn_max_req_len" => &mut p.limits.txn_max_req_len,
                    "txn_max_ops" => &mut p.limits.txn_max_ops,
                    "http_max_conns_per_client" => &mut p.limits.http_max_conns_per_client,
                    other if UNIMPLEMENTED_LIMITS.contains(&other) => {
                        cx.unimplemented(&key);
                        continue;
                    }
                    _ => {
                        cx.unknown(&key);
                        continue;
                    }
                };
                *slot = Some(cx.uint(&key, lv)?);
            }
        }
        "session_ttl_min" => p.session_ttl_min = Some(cx.duration(k, v)?),
        "raft_snapshot_threshold" => p.raft_snapshot_threshold = Some(cx.uint(k, v)?),
        "raft_snapshot_interval" => p.raft_snapshot_interval = Some(cx.duration(k, v)?),
        "acl" => decode_acl(&mut p.acl, v, cx)?,
        "service" | "services" => p.services.extend(definitions::services(k, v, cx)?),
        "check" | "checks" => p.checks.extend(definitions::checks(k, v, cx)?),
        "ae_interval" => p.ae_interval = Some(cx.duration(k, v)?),
        "check_update_interval" => p.check_update_interval = Some(cx.duration(k, v)?),
        // Internal in Consul (not documented), accepted all the same.
        "check_reap_interval" => p.check_reap_interval = Some(cx.duration(k, v)?),
        "encrypt" => p.encrypt = Some(cx.string(k, v)?),
        "encrypt_verify_incoming" => p.encrypt_verify_incoming = Some(cx.bool(k, v)?),
        "encrypt_verify_outgoing" => p.encrypt_verify_outgoing = Some(cx.bool(k, v)?),
        "performance" => cluster::decode_performance(&mut p.performance, v, cx)?,
        "reconnect_timeout" => p.reconnect_timeout = Some(cx.duration(k, v)?),
        "leave_on_terminate" => p.leave_on_terminate = Some(cx.bool(k, v)?),
        "skip_leave_on_interrupt" => p.skip_leave_on_interrupt = Some(cx.bool(k, v)?),
        "rejoin_after_leave" => p.rejoin_after_leave = Some(cx.bool(k, v)?),
        "retry_max" => p.retry_max = Some(cx.uint(k, v)?),
        "raft_trailing_logs" => p.raft_trailing_logs = Some(cx.uint(k, v)?),
        "autopilot" => cluster::decode_autopilot(&mut p.autopilot, v, cx)?,
        // Consul's (undocumented) memberlist tuning; tests use it to speed gossip up.
        "gossip_lan" => cluster::decode_gossip_lan(&mut p.gossip_lan, v, cx)?,
        // Deprecated ACL keys of Consul's legacy ACL system, mapped to their replacements.
        "acl_datacenter" => {
            cx.deprecated(k, "primary_datacenter");
            p.primary_datacenter = Some(cx.string(k, v)?);
        }
        "acl_default_policy" => {
            cx.deprecated(k, "acl.default_policy");
            p.acl.default_policy = Some(cx.string(k, v)?);
        }
        "acl_down_policy" => {
            cx.deprecated(k, "acl.down_policy");
            p.acl.down_policy = Some(cx.string(k, v)?);
        }
        "acl_enable_key_list_policy" => {
            cx.deprecated(k, "acl.enable_key_list_policy");
            p.acl.enable_key_list_policy = Some(cx.bool(k, v)?);
        }
        "acl_master_token" => {
            cx.deprecated(k, "acl.tokens.initial_management");
            p.acl.tokens.initial_management = Some(cx.string(k, v)?);
        }
        "acl_agent_master_token" => {
            cx.deprecated(k, "acl.tokens.agent_recovery");
            p.acl.tokens.agent_recovery = Some(cx.string(k, v)?);
        }
        "acl_agent_token" => {
            cx.deprecated(k, "acl.tokens.agent");
            p.acl.tokens.agent = Some(cx.string(k, v)?);
        }
        "acl_token" => {
            cx.deprecated(k, "acl.tokens.default");
            p.acl.tokens.default = Some(cx.string(k, v)?);
        }
        "acl_replication_token" => {
            cx.deprecated(k, "acl.tokens.replication");
            p.acl.tokens.replication = Some(cx.string(k, v)?);
        }
        other if UNIMPLEMENTED.contains(&other) => cx.unimplemented(other),
        other => cx.unknown(other),
    }
    Ok(())
}

fn decode_acl(acl: &mut PartialAcl, v: &Value, cx: &mut Cx) -> Result<(), ConfigError> {
    for (k, v) in cx.object("acl", v)? {
        let key = format!("acl.{k}");
        match k.as_str() {
            "enabled" => acl.enabled = Some(cx.bool(&key, v)?),
            "default_policy" => acl.default_policy = Some(cx.string(&key, v)?),
            "down_policy" => acl.down_policy = Some(cx.string(&key, v)?),
            "policy_ttl" => acl.policy_ttl = Some(cx.duration(&key, v)?),
            "role_ttl" => acl.role_ttl = Some(cx.duration(&key, v)?),
            "token_ttl" => acl.token_ttl = Some(cx.duration(&key, v)?),
            "enable_key_list_policy" => acl.enable_key_list_policy = Some(cx.bool(&key, v)?),
            "enable_token_replication" => acl.enable_token_replication = Some(cx.bool(&key, v)?),
            "enable_token_persistence" => acl.enable_token_persistence = Some(cx.bool(&key, v)?),
            "tokens" => {
                for (tk, tv) in cx.object(&key, v)? {
                    let tkey = format!("acl.tokens.{tk}");
                    let t = &mut acl.tokens;
                    let slot = match tk.as_str() {
                        "initial_management" => &mut t.initial_management,
                        "agent_recovery" => &mut t.agent_recovery,
                        "agent" => &mut t.agent,
                        "default" => &mut t.default,
                        "replication" => &mut t.replication,
                        "config_file_service_registration" => {
                            &mut t.config_file_service_registration
                        }
                        "dns" => &mut t.dns,
                        "master" => {
                            cx.deprecated(&tkey, "acl.tokens.initial_management");
                            &mut t.initial_management
                        }
                        "agent_master" => {
                            cx.deprecated(&tkey, "acl.tokens.agent_recovery");
                            &mut t.agent_recovery
                        }
                        other if UNIMPLEMENTED_TOKENS.contains(&other) => {
                            cx.unimplemented(&tkey);
                            continue;
                        }
                        _ => {
                            cx.unknown(&tkey);
                            continue;
                        }
                    };
                    *slot = Some(cx.string(&tkey, tv)?);
                }
            }
            other if UNIMPLEMENTED_ACL.contains(&other) => cx.unimplemented(&key),
            _ => cx.unknown(&key),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dec(v: Value) -> (Result<Partial, ConfigError>, Vec<String>) {
        let mut w = Vec::new();
        let r = decode(
            &v,
            &mut Cx {
                origin: "t.json",
                warnings: &mut w,
            },
        );
        (r, w)
    }

    #[test]
    fn wrong_types_name_the_key_and_source() {
        let cases = [
            (
                json!({"ports": {"http": "abc"}}),
                "ports.http",
                "expected an integer, found string \"abc\"",
            ),
            (json!({"server": "yes"}), "server", "expected a boolean"),
            (json!({"retry_join": [1]}), "retry_join", "list of strings"),
            (
                json!({"retry_interval": 5}),
                "retry_interval",
                "duration string",
            ),
            (
                json!({"retry_interval": "5"}),
                "retry_interval",
                "missing unit",
            ),
            (
                json!({"limits": {"kv_max_value_size": -1}}),
                "limits.kv_max_value_size",
                "non-negative",
            ),
            (
                json!({"acl": {"tokens": {"agent": true}}}),
                "acl.tokens.agent",
                "expected a string",
            ),
            (json!({"ports": 5}), "ports", "a map"),
        ];
        for (v, key, reason) in cases {
            let err = dec(v.clone()).0.unwrap_err().to_string();
            assert!(err.contains(&format!("{key:?}")), "{v}: {err}");
            assert!(err.contains("t.json"), "{v}: {err}");
            assert!(err.contains(reason), "{v}: {err}");
        }
    }

    #[test]
    fn unknown_unimplemented_and_deprecated_keys_warn() {
        let (r, w) = dec(json!({
            "nonsense_key": 1, "telemetry": {}, "ports": {"https": 1, "bogus": 2},
            "acl": {"tokens": {"master": "m"}}, "acl_token": "d"
        }));
        let p = r.unwrap();
        assert_eq!(p.acl.tokens.initial_management.as_deref(), Some("m"));
        assert_eq!(p.acl.tokens.default.as_deref(), Some("d"));
        let all = w.join("\n");
        assert!(
            all.contains("ignoring unknown key \"nonsense_key\" in t.json"),
            "{all}"
        );
        assert!(
            all.contains("key \"telemetry\" is not implemented yet"),
            "{all}"
        );
        assert!(
            all.contains("key \"ports.https\" is not implemented yet"),
            "{all}"
        );
        assert!(all.contains("unknown key \"ports.bogus\""), "{all}");
        assert!(
            all.contains("\"acl.tokens.master\" in t.json is deprecated"),
            "{all}"
        );
        assert!(
            all.contains("\"acl_token\" in t.json is deprecated"),
            "{all}"
        );
        assert_eq!(w.len(), 6);
    }

    #[test]
    fn merge_scalars_override_lists_append_maps_merge() {
        let (a, _) = dec(
            json!({"node_name": "a", "retry_join": ["x"], "ports": {"http": 1, "dns": 2},
            "node_meta": {"k": "1", "j": "2"}}),
        );
        let (b, _) = dec(
            json!({"node_name": "b", "retry_join": "y", "ports": {"http": 3},
            "node_meta": {"k": "3"}}),
        );
        let mut m = a.unwrap();
        m.merge(&b.unwrap());
        assert_eq!(m.node_name.as_deref(), Some("b"));
        assert_eq!(m.retry_join, vec!["x", "y"]);
        assert_eq!((m.ports.http, m.ports.dns), (Some(3), Some(2)));
        assert_eq!(m.node_meta.get("k").map(String::as_str), Some("3"));
        assert_eq!(m.node_meta.get("j").map(String::as_str), Some("2"));
    }

    #[test]
    fn repeated_blocks_are_read_in_order() {
        let (r, _) = dec(json!({"ports": [{"http": 1}, {"http": 2, "dns": 3}]}));
        let p = r.unwrap();
        assert_eq!((p.ports.http, p.ports.dns), (Some(2), Some(3)));
    }
}
