//! Catalog nodes and their checks: the minimum sessions need (a node must be registered, and a
//! session's checks must exist). The catalog issue grows this into the full catalog.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub address: String,
    pub datacenter: String,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCheck {
    pub node: String,
    pub check_id: String,
    pub name: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    pub output: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The name of the check every agent's node carries: its gossip health.
pub const SERF_HEALTH: &str = "serfHealth";
