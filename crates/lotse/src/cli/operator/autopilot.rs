//! `lotse operator autopilot get-config|set-config|state`.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{ArgAction, Parser};
use serde::{Deserialize, Serialize};

use super::super::flags::{self, parse_bool, HttpFlags};
use super::super::http::Query;
use lotse_api::go_text::quote;

#[derive(Parser, Debug)]
#[command(name = "get-config")]
struct GetConfigArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// A Go duration flag value (`200ms`, `1m30s`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    flags::parse_go_duration(s).map(flags::nanos_to_duration)
}

#[derive(Parser, Debug)]
#[command(name = "set-config")]
struct SetConfigArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Controls whether Lotse will automatically remove dead servers when new ones are
    /// successfully added. Must be one of `true|false`.
    #[arg(long = "cleanup-dead-servers", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    cleanup_dead_servers: Option<bool>,
    /// Controls the maximum number of log entries that a server can trail the leader by before
    /// being considered unhealthy.
    #[arg(long = "max-trailing-logs", value_name = "value")]
    max_trailing_logs: Option<u64>,
    /// Sets the minimum number of servers required in a cluster before autopilot is allowed to
    /// prune dead servers.
    #[arg(long = "min-quorum", value_name = "value")]
    min_quorum: Option<u32>,
    /// Controls the maximum amount of time a server can go without contact from the leader
    /// before being considered unhealthy. Must be a duration value such as `200ms`.
    #[arg(long = "last-contact-threshold", value_name = "value", value_parser = parse_duration)]
    last_contact_threshold: Option<Duration>,
    /// Controls the minimum amount of time a server must be stable in the 'healthy' state
    /// before being added to the cluster. Only takes effect if all servers are running Raft
    /// protocol version 3 or higher. Must be a duration value such as `10s`.
    #[arg(long = "server-stabilization-time", value_name = "value", value_parser = parse_duration)]
    server_stabilization_time: Option<Duration>,
    /// (Enterprise-only) Controls the node_meta tag name used for separating servers into
    /// different redundancy zones.
    #[arg(long = "redundancy-zone-tag", value_name = "value")]
    redundancy_zone_tag: Option<String>,
    /// (Enterprise-only) Controls whether Lotse will avoid promoting new servers until it can
    /// perform a migration. Must be one of `true|false`.
    #[arg(long = "disable-upgrade-migration", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    disable_upgrade_migration: Option<bool>,
    /// (Enterprise-only) The node_meta tag to use for version info when performing upgrade
    /// migrations. If left blank, the Lotse version will be used.
    #[arg(long = "upgrade-version-tag", value_name = "value")]
    upgrade_version_tag: Option<String>,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Parser, Debug)]
#[command(name = "state")]
struct StateArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Output format {pretty|json}
    #[arg(long, default_value = "pretty", value_name = "string")]
    format: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_get_config() -> String {
    flags::usage::<GetConfigArgs>(
        "Usage: lotse operator autopilot get-config [options]

  Displays the current Autopilot configuration.",
    )
}

pub fn help_set_config() -> String {
    flags::usage::<SetConfigArgs>(
        "Usage: lotse operator autopilot set-config [options]

  Modifies the current Autopilot configuration.",
    )
}

pub fn help_state() -> String {
    flags::usage::<StateArgs>(
        "Usage: lotse operator autopilot state [options]

  Displays the current Autopilot state.",
    )
}

/// `api.AutopilotConfiguration`, as read and written back by `set-config`.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotConfig {
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

/// consul's `get-config` lines.
pub fn render_config(c: &AutopilotConfig) -> String {
    format!(
        "CleanupDeadServers = {}\nLastContactThreshold = {}\nMaxTrailingLogs = {}\nMinQuorum = {}\n\
         ServerStabilizationTime = {}\nRedundancyZoneTag = {}\nDisableUpgradeMigration = {}\n\
         UpgradeVersionTag = {}",
        c.cleanup_dead_servers,
        c.last_contact_threshold,
        c.max_trailing_logs,
        c.min_quorum,
        c.server_stabilization_time,
        quote(&c.redundancy_zone_tag),
        c.disable_upgrade_migration,
        quote(&c.upgrade_version_tag),
    )
}

pub fn run_get_config(args: &[String]) -> i32 {
    let a: GetConfigArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let client = match super::client(&a.http) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client
        .request_ok(
            "GET",
            "/v1/operator/autopilot/configuration",
            &Query::read(),
            None,
        )
        .and_then(|r| r.json::<AutopilotConfig>())
    {
        Ok(c) => {
            println!("{}", render_config(&c));
            0
        }
        Err(e) => flags::fail("Error querying Autopilot configuration", e),
    }
}

/// The flags that were given, merged over the configuration in force.
fn merge(a: &SetConfigArgs, mut c: AutopilotConfig) -> AutopilotConfig {
    let text = lotse_agent::definition::decode::go_duration_string;
    if let Some(v) = a.cleanup_dead_servers {
        c.cleanup_dead_servers = v;
    }
    if let Some(v) = a.max_trailing_logs {
        c.max_trailing_logs = v;
    }
    if let Some(v) = a.min_quorum {
        c.min_quorum = v;
    }
    if let Some(v) = a.last_contact_threshold {
        c.last_contact_threshold = text(v);
    }
    if let Some(v) = a.server_stabilization_time {
        c.server_stabilization_time = text(v);
    }
    if let Some(v) = &a.redundancy_zone_tag {
        c.redundancy_zone_tag = v.clone();
    }
    if let Some(v) = a.disable_upgrade_migration {
        c.disable_upgrade_migration = v;
    }
    if let Some(v) = &a.upgrade_version_tag {
        c.upgrade_version_tag = v.clone();
    }
    c
}

pub fn run_set_config(args: &[String]) -> i32 {
    let a: SetConfigArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let client = match super::client(&a.http) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let path = "/v1/operator/autopilot/configuration";
    let current = match client
        .request_ok("GET", path, &Query::write(), None)
        .and_then(|r| r.json::<AutopilotConfig>())
    {
        Ok(c) => c,
        Err(e) => return flags::fail("Error querying Autopilot configuration", e),
    };
    let next = merge(&a, current);
    let body = serde_json::to_vec(&next).expect("the configuration serializes");
    let q = Query::write().param("cas", next.modify_index);
    match client
        .request_ok("PUT", path, &q, Some(&body))
        .and_then(|r| r.json::<bool>())
    {
        Ok(true) => {
            println!("Configuration updated!");
            0
        }
        Ok(false) => {
            println!("Configuration could not be atomically updated, please try again");
            1
        }
        Err(e) => flags::fail("Error setting Autopilot configuration", e),
    }
}

/// `api.AutopilotServer`, in consul's field order (for `-format=json`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotServer {
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
    #[serde(skip_serializing_if = "String::is_empty")]
    pub redundancy_zone: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub upgrade_version: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_replica: bool,
    pub status: String,
    pub meta: Option<BTreeMap<String, String>>,
    pub node_type: String,
}

/// `api.AutopilotState` (the OSS part).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotState {
    pub healthy: bool,
    pub failure_tolerance: i64,
    pub optimistic_failure_tolerance: i64,
    pub servers: BTreeMap<String, AutopilotServer>,
    pub leader: String,
    pub voters: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_replicas: Option<Vec<String>>,
}

fn render_server(s: &AutopilotServer) -> String {
    let mut out = format!(
        "   {}\n      Name:            {}\n      Address:         {}\n      Version:         {}\n      \
         Status:          {}\n      Node Type:       {}\n      Node Status:     {}\n      \
         Healthy:         {}\n      Last Contact:    {}\n      Last Term:       {}\n      \
         Last Index:      {}\n",
        s.id,
        s.name,
        s.address,
        s.version,
        s.status,
        s.node_type,
        s.node_status,
        s.healthy,
        s.last_contact,
        s.last_term,
        s.last_index
    );
    if !s.redundancy_zone.is_empty() {
        out.push_str(&format!("      Redundancy Zone: {}\n", s.redundancy_zone));
    }
    if !s.upgrade_version.is_empty() {
        out.push_str(&format!("      Upgrade Version: {}\n", s.upgrade_version));
    }
    if s.read_replica {
        out.push_str("      Read Replica:    true\n");
    }
    if let Some(meta) = s.meta.as_ref().filter(|m| !m.is_empty()) {
        out.push_str("      Meta\n");
        for (k, v) in meta {
            out.push_str(&format!("         {}: {}\n", quote(k), quote(v)));
        }
    }
    out
}

/// consul's `state -format=pretty` text (servers sorted by ID).
pub fn render_state(s: &AutopilotState) -> String {
    let mut out = format!(
        "Healthy:                      {}\nFailure Tolerance:            {}\n\
         Optimistic Failure Tolerance: {}\nLeader:                       {}\nVoters:\n",
        s.healthy, s.failure_tolerance, s.optimistic_failure_tolerance, s.leader
    );
    for v in s.voters.as_deref().unwrap_or_default() {
        out.push_str(&format!("   {v}\n"));
    }
    if let Some(rr) = s.read_replicas.as_deref().filter(|r| !r.is_empty()) {
        out.push_str("Read Replicas:\n");
        for v in rr {
            out.push_str(&format!("   {v}\n"));
        }
    }
    out.push_str("Servers:\n");
    for server in s.servers.values() {
        out.push_str(&render_server(server));
    }
    out
}

pub fn run_state(args: &[String]) -> i32 {
    let a: StateArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let client = match super::client(&a.http) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let state = match client
        .request_ok("GET", "/v1/operator/autopilot/state", &Query::read(), None)
        .and_then(|r| r.json::<AutopilotState>())
    {
        Ok(s) => s,
        Err(e) => return flags::fail("Error querying Autopilot state", e),
    };
    let out = match a.format.as_str() {
        "pretty" => render_state(&state),
        "json" => flags::json_indent(&state, b"    "),
        other => {
            eprintln!("Unknown format: {other}");
            return 1;
        }
    };
    println!("{out}");
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    const CONFIG: &str = r#"{"CleanupDeadServers":true,"LastContactThreshold":"200ms","MaxTrailingLogs":250,
        "MinQuorum":0,"ServerStabilizationTime":"10s","RedundancyZoneTag":"","DisableUpgradeMigration":false,
        "UpgradeVersionTag":"","CreateIndex":4,"ModifyIndex":4}"#;

    #[test]
    fn get_config_lines_as_consul_prints_them() {
        let c: AutopilotConfig = serde_json::from_str(CONFIG).unwrap();
        assert_eq!(
            render_config(&c),
            "CleanupDeadServers = true\nLastContactThreshold = 200ms\nMaxTrailingLogs = 250\n\
             MinQuorum = 0\nServerStabilizationTime = 10s\nRedundancyZoneTag = \"\"\n\
             DisableUpgradeMigration = false\nUpgradeVersionTag = \"\""
        );
    }

    #[test]
    fn set_config_merges_only_the_flags_given() {
        let c: AutopilotConfig = serde_json::from_str(CONFIG).unwrap();
        let a: SetConfigArgs = flags::parse(&argv(&[
            "-cleanup-dead-servers=false",
            "-max-trailing-logs",
            "10",
            "-last-contact-threshold=1500ms",
            "-redundancy-zone-tag=zone",
        ]))
        .unwrap();
        let next = merge(&a, c.clone());
        assert!(!next.cleanup_dead_servers);
        assert_eq!(next.max_trailing_logs, 10);
        assert_eq!(next.last_contact_threshold, "1.5s");
        assert_eq!(next.server_stabilization_time, "10s");
        assert_eq!(next.redundancy_zone_tag, "zone");
        assert_eq!(next.modify_index, 4);
        let none: SetConfigArgs = flags::parse(&[]).unwrap();
        assert_eq!(merge(&none, c.clone()), c);
        // A bare boolean flag means true.
        let bare: SetConfigArgs = flags::parse(&argv(&["-disable-upgrade-migration"])).unwrap();
        assert!(merge(&bare, c).disable_upgrade_migration);
    }

    #[test]
    fn set_config_flag_errors_exit_1() {
        assert_eq!(run_set_config(&argv(&["-max-trailing-logs=x"])), 1);
        assert_eq!(run_set_config(&argv(&["-last-contact-threshold=10"])), 1);
        assert_eq!(run_set_config(&argv(&["-http-addr=127.0.0.1:1"])), 1);
    }

    #[test]
    fn state_pretty_and_json() {
        let s: AutopilotState = serde_json::from_str(
            r#"{"Healthy":true,"FailureTolerance":0,"OptimisticFailureTolerance":0,
               "Servers":{"id-1":{"ID":"id-1","Name":"n1","Address":"127.0.0.1:8300","NodeStatus":"alive",
               "Version":"0.1.0","LastContact":"0s","LastTerm":2,"LastIndex":30,"Healthy":true,
               "StableSince":"2026-11-27T10:00:00Z","Status":"leader","Meta":{"consul-version":"0.1.0"},
               "NodeType":"voter"}},"Leader":"id-1","Voters":["id-1"]}"#,
        )
        .unwrap();
        assert_eq!(
            render_state(&s),
            "Healthy:                      true\nFailure Tolerance:            0\n\
             Optimistic Failure Tolerance: 0\nLeader:                       id-1\nVoters:\n   id-1\n\
             Servers:\n   id-1\n      Name:            n1\n      Address:         127.0.0.1:8300\n      \
             Version:         0.1.0\n      Status:          leader\n      Node Type:       voter\n      \
             Node Status:     alive\n      Healthy:         true\n      Last Contact:    0s\n      \
             Last Term:       2\n      Last Index:      30\n      Meta\n         \"consul-version\": \"0.1.0\"\n"
        );
        let json = flags::json_indent(&s, b"    ");
        assert!(
            json.starts_with("{\n    \"Healthy\": true,\n    \"FailureTolerance\": 0,"),
            "{json}"
        );
        assert!(!json.contains("ReadReplica"), "{json}");
        assert_eq!(run_state(&argv(&["-http-addr=127.0.0.1:1"])), 1);
    }
}
