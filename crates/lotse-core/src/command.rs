//! The replicated log's vocabulary.
//!
//! A [`Command`] is what the leader appends to the Raft log; every server applies the same
//! commands in the same order and so reaches the same state. Commands are encoded by position
//! (variant order), so **variants are only ever appended, never reordered or removed**; the
//! log entry that carries one also carries a format version (see `lotse-consensus`).
//!
//! Commands that depend on time carry the leader's wall clock (`now_ms`, milliseconds since the
//! Unix epoch; the leader restamps what followers forward, [`Command::restamp`]): replicas
//! never read their own clocks while applying.

use serde::{Deserialize, Serialize};

use crate::catalog::{DeregisterRequest, RegisterRequest};
use crate::kv::{KvEntry, KvWrite};
use crate::node::{Node, NodeCheck};
use crate::session::Session;
use crate::store::{Store, StoreError};
use crate::txn::{TxnOp, TxnOutcome};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Does nothing; used to mark a leader's term and in tests.
    Noop,
    /// Sets a key, keeping its lock holder (Consul's `set`).
    KvSet(KvWrite),
    /// Sets a key only if its modify index is `index` (0: only if absent).
    KvCas { write: KvWrite, index: u64 },
    /// Acquires the key's lock for `session` and sets it.
    KvLock {
        write: KvWrite,
        session: String,
        now_ms: u64,
    },
    /// Releases the key's lock held by `session` and sets it.
    KvUnlock { write: KvWrite, session: String },
    /// Deletes one key.
    KvDelete { key: String },
    /// Deletes one key only if its modify index is `index`.
    KvDeleteCas { key: String, index: u64 },
    /// Deletes every key that starts with `prefix`.
    KvDeleteTree { prefix: String },
    /// Applies `ops` atomically: all of them or none.
    Txn { ops: Vec<TxnOp>, now_ms: u64 },
    /// Creates a session; the leader chose its ID.
    SessionCreate { session: Session, now_ms: u64 },
    /// Destroys a session (by a client, or by the leader when its TTL ran out), releasing or
    /// deleting its keys and starting their lock-delay.
    SessionDestroy { id: String, now_ms: u64 },
    /// Registers (or updates) a node and its node-level checks (the first log format; see
    /// [`crate::node`]). Applies as a [`Command::CatalogRegister`].
    NodeRegister { node: Node, checks: Vec<NodeCheck> },
    /// Forgets KV tombstones with an index at or below `up_to_index`.
    TombstoneReap { up_to_index: u64 },
    /// Several independent commands that arrived together, applied in order at one log index
    /// (group commit: one log entry and one fsync for all of them). Each keeps its own outcome;
    /// one refused command does not affect the others. Never nested.
    Batch(Vec<Command>),
    /// Registers a node, optionally a service on it, and checks, all or nothing. A check that
    /// turns critical invalidates the sessions bound to it (their lock-delay starts at `now_ms`).
    CatalogRegister {
        req: Box<RegisterRequest>,
        now_ms: u64,
    },
    /// Removes a check, a service with its checks, or a whole node with everything on it,
    /// invalidating the sessions bound to what went.
    CatalogDeregister { req: DeregisterRequest, now_ms: u64 },
    /// Replaces the whole store with a saved image (`PUT /v1/snapshot`). Every replica applies
    /// it at the same log position, so the cluster restores together; indexes never go
    /// backwards (see [`Store::apply`]'s restore rules in `store/restore.rs`). Always its own
    /// log entry: [`Command::approx_size`] reports it larger than any batch.
    Restore(Box<Store>),
}

impl Command {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Noop => "noop",
            Command::KvSet(_) => "kv_set",
            Command::KvCas { .. } => "kv_cas",
            Command::KvLock { .. } => "kv_lock",
            Command::KvUnlock { .. } => "kv_unlock",
            Command::KvDelete { .. } => "kv_delete",
            Command::KvDeleteCas { .. } => "kv_delete_cas",
            Command::KvDeleteTree { .. } => "kv_delete_tree",
            Command::Txn { .. } => "txn",
            Command::SessionCreate { .. } => "session_create",
            Command::SessionDestroy { .. } => "session_destroy",
            Command::NodeRegister { .. } => "node_register",
            Command::TombstoneReap { .. } => "tombstone_reap",
            Command::Batch(_) => "batch",
            Command::CatalogRegister { .. } => "catalog_register",
            Command::CatalogDeregister { .. } => "catalog_deregister",
            Command::Restore(_) => "restore",
        }
    }

    /// Roughly how many bytes the command carries, to bound batches.
    pub fn approx_size(&self) -> usize {
        use crate::txn::TxnOp;
        let write = |w: &KvWrite| w.key.len() + w.value.len() + 16;
        match self {
            Command::KvSet(w)
            | Command::KvCas { write: w, .. }
            | Command::KvLock { write: w, .. }
            | Command::KvUnlock { write: w, .. } => write(w) + 64,
            Command::Txn { ops, .. } => ops
                .iter()
                .map(|op| match op {
                    TxnOp::Kv(op) => op.key.len() + op.value.len() + op.session.len() + 32,
                    TxnOp::Node(op) => op.node.meta.len() * 32 + 256,
                    TxnOp::Service(op) => {
                        op.service.proxy_json.len() + op.service.meta.len() * 32 + 256
                    }
                    TxnOp::Check(op) => {
                        op.check.output.len() + op.check.definition_json.len() + 256
                    }
                })
                .sum(),
            Command::Batch(cmds) => cmds
                .iter()
                .map(Command::approx_size)
                .fold(0, usize::saturating_add),
            Command::CatalogRegister { req, .. } => {
                let service = req.service.as_ref().map_or(0, |s| {
                    s.proxy_json.len() + s.connect_json.len() + s.meta.len() * 32 + 256
                });
                let checks: usize = req
                    .checks
                    .iter()
                    .map(|c| c.output.len() + c.notes.len() + c.definition_json.len() + 256)
                    .sum();
                service + checks + req.node.meta.len() * 32 + 256
            }
            // Never batched with anything: half the address space exceeds every batch budget
            // and cannot overflow a budget sum that is below it.
            Command::Restore(_) => usize::MAX / 2,
            _ => 128,
        }
    }

    /// Sets the time the command carries, if it carries one. The leader stamps every command
    /// it proposes with its own clock (a forwarded command arrives stamped by the server that
    /// took the request): lock-delay then compares two readings of one clock, not of two
    /// servers' clocks that may disagree.
    pub fn restamp(&mut self, now: u64) {
        match self {
            Command::KvLock { now_ms, .. }
            | Command::Txn { now_ms, .. }
            | Command::SessionCreate { now_ms, .. }
            | Command::SessionDestroy { now_ms, .. }
            | Command::CatalogRegister { now_ms, .. }
            | Command::CatalogDeregister { now_ms, .. } => *now_ms = now,
            Command::Batch(cmds) => cmds.iter_mut().for_each(|c| c.restamp(now)),
            Command::Noop
            | Command::KvSet(_)
            | Command::KvCas { .. }
            | Command::KvUnlock { .. }
            | Command::KvDelete { .. }
            | Command::KvDeleteCas { .. }
            | Command::KvDeleteTree { .. }
            | Command::NodeRegister { .. }
            | Command::TombstoneReap { .. }
            | Command::Restore(_) => {}
        }
    }

    /// Does applying this command (or one inside this batch) replace the whole store? Then
    /// every blocking query must re-run, whatever it watched.
    pub fn replaces_store(&self) -> bool {
        match self {
            Command::Restore(_) => true,
            Command::Batch(cmds) => cmds.iter().any(Command::replaces_store),
            _ => false,
        }
    }
}

/// What applying a command produced. A refused request (a failed CAS, a lock held by someone
/// else) is a value, not an error: the command was still applied, and changed nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Nothing to report.
    Done,
    /// The `true`/`false` that Consul's KV and session endpoints answer.
    Bool(bool),
    /// A KV write's result entry.
    Entry(Option<KvEntry>),
    /// A transaction's results or errors.
    Txn(TxnOutcome),
    /// The command was refused as a whole (Consul answers these with 500 and the message).
    Rejected(StoreError),
    /// The outcomes of a [`Command::Batch`], in order.
    Batch(Vec<Outcome>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamp_sets_the_time_of_timed_commands_only() {
        let set = Command::KvSet(KvWrite {
            key: "k".into(),
            value: vec![],
            flags: 0,
        });
        let destroy = |now_ms| Command::SessionDestroy {
            id: "s".into(),
            now_ms,
        };
        let txn = |now_ms| Command::Txn {
            ops: vec![],
            now_ms,
        };
        let mut batch = Command::Batch(vec![destroy(1), set.clone(), txn(2)]);
        batch.restamp(99);
        assert_eq!(batch, Command::Batch(vec![destroy(99), set, txn(99)]));
    }
}
