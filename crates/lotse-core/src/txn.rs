//! Transactions: Consul's `/v1/txn` KV operations.

use serde::{Deserialize, Serialize};

use crate::kv::KvEntry;

/// The twelve KV verbs of Consul's transaction API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    Set,
    Delete,
    DeleteCas,
    DeleteTree,
    Cas,
    Lock,
    Unlock,
    Get,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
}

impl KvVerb {
    /// Parses Consul's verb names (`set`, `delete-cas`, ...).
    pub fn parse(s: &str) -> Option<KvVerb> {
        Some(match s {
            "set" => KvVerb::Set,
            "delete" => KvVerb::Delete,
            "delete-cas" => KvVerb::DeleteCas,
            "delete-tree" => KvVerb::DeleteTree,
            "cas" => KvVerb::Cas,
            "lock" => KvVerb::Lock,
            "unlock" => KvVerb::Unlock,
            "get" => KvVerb::Get,
            "get-tree" => KvVerb::GetTree,
            "check-index" => KvVerb::CheckIndex,
            "check-session" => KvVerb::CheckSession,
            "check-not-exists" => KvVerb::CheckNotExists,
            _ => return None,
        })
    }

    /// Does this verb only read?
    pub fn is_read(self) -> bool {
        matches!(
            self,
            KvVerb::Get
                | KvVerb::GetTree
                | KvVerb::CheckIndex
                | KvVerb::CheckSession
                | KvVerb::CheckNotExists
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOp {
    pub verb: KvVerb,
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    /// The CAS / check index (Consul's `Index`).
    pub index: u64,
    pub session: String,
}

/// One operation of a transaction. Only KV for now; catalog operations come as new variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Kv(KvOp),
}

impl TxnOp {
    pub fn is_read(&self) -> bool {
        match self {
            TxnOp::Kv(op) => op.verb.is_read(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnResult {
    Kv(KvEntry),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// Either every operation's results, or the errors that rolled the transaction back.
pub type TxnOutcome = Result<Vec<TxnResult>, Vec<TxnError>>;
