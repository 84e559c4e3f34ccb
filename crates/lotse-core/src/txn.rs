//! Transactions: Consul's `/v1/txn` operations on KV entries and on the catalog (nodes,
//! services, checks).

use serde::{Deserialize, Serialize};

use crate::catalog::{HealthCheck, Node, Service};
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

/// The five verbs of Consul's Node, Service and Check transaction operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogVerb {
    /// Upsert.
    Set,
    /// Upsert only if the stored `ModifyIndex` equals the operation's (0: only if absent).
    Cas,
    Get,
    /// Delete; deleting what is not there succeeds.
    Delete,
    /// Delete only if it exists with the operation's `ModifyIndex`.
    DeleteCas,
}

impl CatalogVerb {
    /// Parses Consul's verb names (`set`, `cas`, `get`, `delete`, `delete-cas`).
    pub fn parse(s: &str) -> Option<CatalogVerb> {
        Some(match s {
            "set" => CatalogVerb::Set,
            "cas" => CatalogVerb::Cas,
            "get" => CatalogVerb::Get,
            "delete" => CatalogVerb::Delete,
            "delete-cas" => CatalogVerb::DeleteCas,
            _ => return None,
        })
    }
}

/// Consul's `TxnNodeOp`. `node.modify_index` is the CAS index; a `get` finds the node by ID
/// when one is given, else by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOp {
    pub verb: CatalogVerb,
    pub node: Node,
}

/// Consul's `TxnServiceOp`: a service instance on the node named `node`.
/// `service.modify_index` is the CAS index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOp {
    pub verb: CatalogVerb,
    pub node: String,
    pub service: Service,
}

/// Consul's `TxnCheckOp`; the check names its node. `check.modify_index` is the CAS index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOp {
    pub verb: CatalogVerb,
    pub check: HealthCheck,
}

/// One operation of a transaction. Variants are encoded by position in the log: append only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Kv(KvOp),
    Node(NodeOp),
    Service(ServiceOp),
    Check(CheckOp),
}

impl TxnOp {
    pub fn is_read(&self) -> bool {
        match self {
            TxnOp::Kv(op) => op.verb.is_read(),
            TxnOp::Node(op) => op.verb == CatalogVerb::Get,
            TxnOp::Service(op) => op.verb == CatalogVerb::Get,
            TxnOp::Check(op) => op.verb == CatalogVerb::Get,
        }
    }

    /// Does this operation read or change the catalog (rather than KV)?
    pub fn is_catalog(&self) -> bool {
        !matches!(self, TxnOp::Kv(_))
    }
}

/// One result of a transaction (Consul's `TxnResult`, one of its fields set). Append only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnResult {
    Kv(KvEntry),
    Node(Node),
    Service(Service),
    Check(HealthCheck),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// Either every operation's results, or the errors that rolled the transaction back.
pub type TxnOutcome = Result<Vec<TxnResult>, Vec<TxnError>>;
