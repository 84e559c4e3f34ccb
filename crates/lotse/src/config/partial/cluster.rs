//! Decoding of the cluster-membership blocks: `performance { }`, `autopilot { }` and
//! `gossip_lan { }`. Their values are checked for type here and for range in
//! `config/cluster.rs`, after all sources are merged (as Consul does).

use std::time::Duration;

use serde_json::Value;

use super::Cx;
use crate::config::ConfigError;

/// `performance { ... }`.
#[derive(Debug, Default, Clone)]
pub struct PartialPerformance {
    /// Signed so that the range check can quote what was written (Consul's message).
    pub raft_multiplier: Option<i64>,
    pub leave_drain_time: Option<Duration>,
    pub rpc_hold_timeout: Option<Duration>,
}

/// `autopilot { ... }`.
#[derive(Debug, Default, Clone)]
pub struct PartialAutopilot {
    pub cleanup_dead_servers: Option<bool>,
    pub last_contact_threshold: Option<Duration>,
    /// Signed so that the check can quote what was written (Consul's message).
    pub max_trailing_logs: Option<i64>,
    pub min_quorum: Option<u64>,
    pub server_stabilization_time: Option<Duration>,
}

/// `gossip_lan { ... }`: memberlist's LAN timings.
#[derive(Debug, Default, Clone)]
pub struct PartialGossipLan {
    pub gossip_nodes: Option<u64>,
    pub gossip_interval: Option<Duration>,
    pub probe_interval: Option<Duration>,
    pub probe_timeout: Option<Duration>,
    pub suspicion_mult: Option<u64>,
    pub retransmit_mult: Option<u64>,
}

impl PartialPerformance {
    pub fn merge(&mut self, later: &Self) {
        over!(self, later; raft_multiplier, leave_drain_time, rpc_hold_timeout);
    }
}

impl PartialAutopilot {
    pub fn merge(&mut self, later: &Self) {
        over!(self, later; cleanup_dead_servers, last_contact_threshold, max_trailing_logs,
            min_quorum, server_stabilization_time);
    }
}

impl PartialGossipLan {
    pub fn merge(&mut self, later: &Self) {
        over!(self, later; gossip_nodes, gossip_interval, probe_interval, probe_timeout,
            suspicion_mult, retransmit_mult);
    }
}

/// Consul Enterprise's autopilot keys: accepted with a warning.
const UNIMPLEMENTED_AUTOPILOT: &[&str] = &[
    "disable_upgrade_migration",
    "redundancy_zone_tag",
    "upgrade_version_tag",
];

pub fn decode_performance(
    p: &mut PartialPerformance,
    v: &Value,
    cx: &mut Cx,
) -> Result<(), ConfigError> {
    for (k, v) in cx.object("performance", v)? {
        let key = format!("performance.{k}");
        match k.as_str() {
            "raft_multiplier" => p.raft_multiplier = Some(cx.int(&key, v)?),
            "leave_drain_time" => p.leave_drain_time = Some(cx.duration(&key, v)?),
            "rpc_hold_timeout" => p.rpc_hold_timeout = Some(cx.duration(&key, v)?),
            _ => cx.unknown(&key),
        }
    }
    Ok(())
}

pub fn decode_autopilot(
    a: &mut PartialAutopilot,
    v: &Value,
    cx: &mut Cx,
) -> Result<(), ConfigError> {
    for (k, v) in cx.object("autopilot", v)? {
        let key = format!("autopilot.{k}");
        match k.as_str() {
            "cleanup_dead_servers" => a.cleanup_dead_servers = Some(cx.bool(&key, v)?),
            "last_contact_threshold" => a.last_contact_threshold = Some(cx.duration(&key, v)?),
            "max_trailing_logs" => a.max_trailing_logs = Some(cx.int(&key, v)?),
            "min_quorum" => a.min_quorum = Some(cx.uint(&key, v)?),
            "server_stabilization_time" => {
                a.server_stabilization_time = Some(cx.duration(&key, v)?)
            }
            other if UNIMPLEMENTED_AUTOPILOT.contains(&other) => cx.unimplemented(&key),
            _ => cx.unknown(&key),
        }
    }
    Ok(())
}

pub fn decode_gossip_lan(
    g: &mut PartialGossipLan,
    v: &Value,
    cx: &mut Cx,
) -> Result<(), ConfigError> {
    for (k, v) in cx.object("gossip_lan", v)? {
        let key = format!("gossip_lan.{k}");
        match k.as_str() {
            "gossip_nodes" => g.gossip_nodes = Some(cx.uint(&key, v)?),
            "gossip_interval" => g.gossip_interval = Some(cx.duration(&key, v)?),
            "probe_interval" => g.probe_interval = Some(cx.duration(&key, v)?),
            "probe_timeout" => g.probe_timeout = Some(cx.duration(&key, v)?),
            "suspicion_mult" => g.suspicion_mult = Some(cx.uint(&key, v)?),
            "retransmit_mult" => g.retransmit_mult = Some(cx.uint(&key, v)?),
            _ => cx.unknown(&key),
        }
    }
    Ok(())
}
