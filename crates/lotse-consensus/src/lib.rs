//! # lotse-consensus: openraft glue
//!
//! ```text
//!  client_write(Command) ─► openraft core ─► LogStore::append ─► memory (readable at once)
//!                                                  │
//!                                                  └─► log writer thread: one redb
//!                                                      transaction + fsync per batch,
//!                                                      then every waiting append is acked
//!  committed entries ─► StateMachine::apply ─► lotse_core::Store::apply ─► ApplyObserver
//! ```
//!
//! * [`log_store`]: the Raft log and vote, kept in memory for reads and persisted on redb by a
//!   single writer thread that group-commits: every append that arrives while one fsync runs
//!   shares the next one. This is what lets one node take tens of thousands of durable writes
//!   a second instead of one per fsync.
//! * [`state_machine`]: applies committed commands to the pure store, builds and installs
//!   snapshots, and tells an [`ApplyObserver`] what changed (the server wakes blocking queries).
//! * [`codec`]: versioned encoding of entries, votes and snapshots.
//! * [`network`]: openraft's Raft RPCs to other servers, over [`rpc`]'s pooled channels.
//! * [`rpc`]: the server port (8300): gRPC services `Raft` and `Forward`, their clients, and
//!   the channel pool ([`rpc::Peers`]).
//! * [`node`]: [`Consensus::start`] wires the pieces and bootstraps a cluster (one server, or
//!   `initial_members`); membership, read-index and last-contact helpers for the facade.
#![forbid(unsafe_code)]

pub use openraft;

pub mod codec;
#[cfg(test)]
mod fuzz;
pub mod log_store;
pub mod network;
pub mod node;
pub mod rpc;
pub mod state_machine;

pub use node::{
    linearizable_read, raft_config, Consensus, ConsensusConfig, MembershipError, ReadFloor,
    ReadIndexError,
};
pub use rpc::{
    rpc_router, serve, ForwardClient, ForwardHandler, HttpReply, HttpRequest, Peers, RpcError,
};
pub use state_machine::{ApplyObserver, SharedState};

use lotse_core::{Command, Outcome};
use std::io::Cursor;

openraft::declare_raft_types!(
    /// Lotse's Raft types: the log carries [`Command`]s, applying one yields an [`Outcome`].
    pub TypeConfig:
        D = Command,
        R = Outcome,
);

pub type NodeId = u64;
pub type LotseRaft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;

/// What can go wrong starting or running consensus. Each variant says what state it left.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The data directory or its database could not be opened; nothing was started.
    #[error("cannot open raft storage at {path}: {reason}")]
    Open { path: String, reason: String },
    /// Stored data could not be decoded: the node must not start (it would diverge).
    #[error("corrupt raft storage: {0}")]
    Corrupt(String),
    /// openraft refused its configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
}
