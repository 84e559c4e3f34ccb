//! What a client agent asks a server (`Forward.AgentCall`) and what it gets back, encoded
//! with the consensus codec (versioned postcard). Errors travel as the facade's own
//! [`ServerError`], so "No cluster leader" on the server is "No cluster leader" on the client.

use lotse_core::{Command, Outcome};
use lotse_server::ServerError;
use serde::{Deserialize, Serialize};

use crate::upstream::{AliasStatus, AliasTarget, NodeView};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum AgentCall {
    /// Apply through the leader (the server forwards it).
    Write(Command),
    /// The catalog's rows for one node, from the server's replica.
    NodeView { node: String },
    /// An alias target's health, blocking-query shaped.
    WatchHealth {
        target: AliasTarget,
        last_index: u64,
        wait_ms: u64,
    },
    /// Whether the server knows a leader, and how many nodes the catalog has.
    Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum AgentReply {
    Written { index: u64, outcome: Outcome },
    NodeView(NodeView),
    Health { index: u64, status: AliasStatus },
    Status { leader_known: bool, nodes: u64 },
}

pub(crate) type Answer = Result<AgentReply, ServerError>;
