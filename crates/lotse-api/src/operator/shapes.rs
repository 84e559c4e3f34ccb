//! The operator endpoints' bodies as Consul's `api` package writes and reads them: field names
//! and order of `structs.RaftConfigurationResponse`, `api.AutopilotConfiguration`,
//! `api.OperatorHealthReply` and `api.AutopilotState`; durations as Go's `Duration.String()`
//! (`ReadableDuration`), times as RFC 3339 in UTC.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lotse_agent::definition::decode::go_duration_string;
use lotse_server::autopilot::AutopilotConfig;
use serde::Serialize;
use serde_json::Value;

use super::extras::Extras;
use super::{HealthView, ServerView};
use crate::ci_json;
use crate::reply::ApiError;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftConfigurationJson {
    pub servers: Vec<RaftServerJson>,
    pub index: u64,
}

#[derive(Serialize)]
pub struct RaftServerJson {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Leader")]
    pub leader: bool,
    #[serde(rename = "ProtocolVersion")]
    pub protocol_version: &'static str,
    #[serde(rename = "Voter")]
    pub voter: bool,
    #[serde(rename = "LastIndex")]
    pub last_index: u64,
}

/// `api.AutopilotConfiguration`.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AutopilotConfigJson {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold: String,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time: String,
    pub redundancy_zone_tag: String,
    pub disable_upgrade_migration: bool,
    pub upgrade_version_tag: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl AutopilotConfigJson {
    pub fn from_parts(cfg: &AutopilotConfig, x: &Extras) -> AutopilotConfigJson {
        AutopilotConfigJson {
            cleanup_dead_servers: cfg.cleanup_dead_servers,
            last_contact_threshold: go_duration_string(cfg.last_contact_threshold),
            max_trailing_logs: cfg.max_trailing_logs,
            min_quorum: cfg.min_quorum,
            server_stabilization_time: go_duration_string(cfg.server_stabilization_time),
            redundancy_zone_tag: x.redundancy_zone_tag.clone(),
            disable_upgrade_migration: x.disable_upgrade_migration,
            upgrade_version_tag: x.upgrade_version_tag.clone(),
            create_index: x.create_index,
            modify_index: x.modify_index,
        }
    }
}

/// A `PUT` body's settings, starting from `api.NewAutopilotConfiguration()`'s defaults as
/// Consul's handler does (so a field left out gets its default, not the value in force).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutopilotSettings {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold: Duration,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time: Duration,
    pub redundancy_zone_tag: String,
    pub disable_upgrade_migration: bool,
    pub upgrade_version_tag: String,
}

impl Default for AutopilotSettings {
    fn default() -> Self {
        AutopilotSettings {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: Duration::from_secs(10),
            redundancy_zone_tag: String::new(),
            disable_upgrade_migration: false,
            upgrade_version_tag: String::new(),
        }
    }
}

/// Consul's 400 for a body it cannot decode.
fn parse_error(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Error parsing autopilot config: {why}"))
}

fn type_error(found: &Value, field: &str, go_type: &str) -> ApiError {
    let kind = match found {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    };
    parse_error(format!(
        "json: cannot unmarshal {kind} into Go struct field AutopilotConfiguration.{field} of type {go_type}"
    ))
}

/// `ReadableDuration`'s JSON: a Go duration string, or a number of nanoseconds; `null` is
/// zero. Negative durations become zero (the server keeps unsigned ones).
fn readable_duration(v: &Value, field: &str) -> Result<Duration, ApiError> {
    match v {
        Value::Null => Ok(Duration::ZERO),
        Value::String(s) => lotse_agent::definition::decode::parse_go_duration(s)
            .map(|n| Duration::from_nanos(n.max(0) as u64))
            .map_err(parse_error),
        Value::Number(n) => Ok(Duration::from_nanos(
            n.as_f64().unwrap_or(0.0).max(0.0) as u64
        )),
        other => Err(type_error(other, field, "api.ReadableDuration")),
    }
}

/// Decodes a `PUT /v1/operator/autopilot/configuration` body (keys matched case-insensitively,
/// unknown ones ignored, `CreateIndex`/`ModifyIndex` ignored as Consul does).
pub fn decode_autopilot_config(body: &[u8]) -> Result<AutopilotSettings, ApiError> {
    let value = crate::body::first_value(body).map_err(|e| {
        parse_error(
            e.reason
                .strip_prefix("Request decode failed: ")
                .unwrap_or(&e.reason),
        )
    })?;
    let mut out = AutopilotSettings::default();
    let obj = match &value {
        Value::Object(o) => o,
        Value::Null => return Ok(out),
        other => {
            return Err(parse_error(format!(
                "json: cannot unmarshal {} into Go value of type api.AutopilotConfiguration",
                match other {
                    Value::Array(_) => "array",
                    Value::String(_) => "string",
                    Value::Number(_) => "number",
                    _ => "bool",
                }
            )))
        }
    };
    let boolean = |name: &str, into: &mut bool| -> Result<(), ApiError> {
        match ci_json::field(obj, name) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Bool(b)) => {
                *into = *b;
                Ok(())
            }
            Some(other) => Err(type_error(other, name, "bool")),
        }
    };
    let text = |name: &str, into: &mut String| -> Result<(), ApiError> {
        match ci_json::field(obj, name) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(s)) => {
                *into = s.clone();
                Ok(())
            }
            Some(other) => Err(type_error(other, name, "string")),
        }
    };
    let number = |name: &str, go_type: &str, max: u64| -> Result<Option<u64>, ApiError> {
        match ci_json::field(obj, name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().filter(|v| *v <= max) {
                Some(v) => Ok(Some(v)),
                None => Err(parse_error(format!(
                    "json: cannot unmarshal number {n} into Go struct field AutopilotConfiguration.{name} of type {go_type}"
                ))),
            },
            Some(other) => Err(type_error(other, name, go_type)),
        }
    };
    boolean("CleanupDeadServers", &mut out.cleanup_dead_servers)?;
    if let Some(v) = ci_json::field(obj, "LastContactThreshold") {
        out.last_contact_threshold = readable_duration(v, "LastContactThreshold")?;
    }
    if let Some(v) = number("MaxTrailingLogs", "uint64", u64::MAX)? {
        out.max_trailing_logs = v;
    }
    if let Some(v) = number("MinQuorum", "uint", u64::from(u32::MAX))? {
        out.min_quorum = v as u32;
    }
    if let Some(v) = ci_json::field(obj, "ServerStabilizationTime") {
        out.server_stabilization_time = readable_duration(v, "ServerStabilizationTime")?;
    }
    text("RedundancyZoneTag", &mut out.redundancy_zone_tag)?;
    boolean(
        "DisableUpgradeMigration",
        &mut out.disable_upgrade_migration,
    )?;
    text("UpgradeVersionTag", &mut out.upgrade_version_tag)?;
    Ok(out)
}

/// `ReadableDuration` of an optional contact time: `-1ns` when there is none.
fn contact(d: Option<Duration>) -> String {
    d.map_or_else(|| "-1ns".to_string(), go_duration_string)
}

/// Go's `time.Time` JSON of a UTC time rounded to the second: `2024-01-02T15:04:05Z`.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + u64::from(d.subsec_nanos() >= 500_000_000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = crate::monitor::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `api.OperatorHealthReply`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthReplyJson {
    pub healthy: bool,
    pub failure_tolerance: usize,
    pub servers: Vec<ServerHealthJson>,
}

/// `api.ServerHealth`.
#[derive(Serialize)]
pub struct ServerHealthJson {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "SerfStatus")]
    pub serf_status: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Leader")]
    pub leader: bool,
    #[serde(rename = "LastContact")]
    pub last_contact: String,
    #[serde(rename = "LastTerm")]
    pub last_term: u64,
    #[serde(rename = "LastIndex")]
    pub last_index: u64,
    #[serde(rename = "Healthy")]
    pub healthy: bool,
    #[serde(rename = "Voter")]
    pub voter: bool,
    #[serde(rename = "StableSince")]
    pub stable_since: String,
}

impl From<&HealthView> for HealthReplyJson {
    fn from(v: &HealthView) -> Self {
        HealthReplyJson {
            healthy: v.healthy,
            failure_tolerance: v.failure_tolerance,
            servers: v
                .servers
                .iter()
                .map(|s| ServerHealthJson {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    address: s.address.clone(),
                    serf_status: s.serf_status.to_string(),
                    version: s.version.clone(),
                    leader: s.leader,
                    last_contact: contact(s.last_contact),
                    last_term: s.last_term,
                    last_index: s.last_index,
                    healthy: s.healthy,
                    voter: s.voter,
                    stable_since: rfc3339_seconds(s.stable_since),
                })
                .collect(),
        }
    }
}

/// `api.AutopilotState` (the OSS fields; the Enterprise ones are omitted when empty).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AutopilotStateJson {
    pub healthy: bool,
    pub failure_tolerance: usize,
    pub optimistic_failure_tolerance: usize,
    pub servers: BTreeMap<String, AutopilotServerJson>,
    pub leader: String,
    pub voters: Vec<String>,
}

/// `api.AutopilotServer`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AutopilotServerJson {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub address: String,
    pub node_status: String,
    pub version: String,
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    pub stable_since: String,
    pub status: &'static str,
    pub meta: BTreeMap<String, String>,
    pub node_type: &'static str,
}

fn server_status(s: &ServerView) -> &'static str {
    match (s.leader, s.voter) {
        (true, _) => "leader",
        (false, true) => "voter",
        (false, false) => "non-voter",
    }
}

impl From<&HealthView> for AutopilotStateJson {
    fn from(v: &HealthView) -> Self {
        AutopilotStateJson {
            healthy: v.healthy,
            failure_tolerance: v.failure_tolerance,
            optimistic_failure_tolerance: v.optimistic_failure_tolerance,
            leader: v
                .servers
                .iter()
                .find(|s| s.leader)
                .map(|s| s.id.clone())
                .unwrap_or_default(),
            voters: v
                .servers
                .iter()
                .filter(|s| s.voter)
                .map(|s| s.id.clone())
                .collect(),
            servers: v
                .servers
                .iter()
                .map(|s| {
                    let meta = BTreeMap::from([
                        ("consul-network-segment".to_string(), String::new()),
                        ("consul-version".to_string(), s.version.clone()),
                    ]);
                    let row = AutopilotServerJson {
                        id: s.id.clone(),
                        name: s.name.clone(),
                        address: s.address.clone(),
                        node_status: s.serf_status.to_string(),
                        version: s.version.clone(),
                        last_contact: contact(s.last_contact),
                        last_term: s.last_term,
                        last_index: s.last_index,
                        healthy: s.healthy,
                        stable_since: rfc3339_seconds(s.stable_since),
                        status: server_status(s),
                        meta,
                        node_type: "voter",
                    };
                    (s.id.clone(), row)
                })
                .collect(),
        }
    }
}
