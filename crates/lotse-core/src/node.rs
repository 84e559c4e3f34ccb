//! The node records of the first log format, before the full catalog existed.
//!
//! [`Command::NodeRegister`](crate::Command::NodeRegister) still carries these (log entries are
//! never rewritten), and applies as a catalog registration through [`legacy_register`]. New
//! code writes [`Command::CatalogRegister`](crate::Command::CatalogRegister).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::catalog::{CheckStatus, HealthCheck, RegisterRequest};

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

/// The catalog registration a first-format node registration stands for.
pub fn legacy_register(node: &Node, checks: &[NodeCheck]) -> RegisterRequest {
    RegisterRequest {
        node: crate::catalog::Node {
            id: node.id.clone(),
            name: node.name.clone(),
            address: node.address.clone(),
            datacenter: node.datacenter.clone(),
            tagged_addresses: BTreeMap::new(),
            meta: node.meta.clone(),
            create_index: 0,
            modify_index: 0,
        },
        skip_node_update: false,
        service: None,
        checks: checks
            .iter()
            .map(|c| HealthCheck {
                status: CheckStatus::parse(&c.status).unwrap_or(CheckStatus::Critical),
                output: c.output.clone(),
                ..HealthCheck::new(&node.name, &c.check_id, &c.name)
            })
            .collect(),
    }
}
