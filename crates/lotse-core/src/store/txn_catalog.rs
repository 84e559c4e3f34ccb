//! Transaction operations on the catalog: Consul's `TxnNodeOp`, `TxnServiceOp` and
//! `TxnCheckOp` (`agent/consul/state/txn.go`), with its error texts.
//!
//! Writes go through the same registration and deregistration paths as
//! `/v1/catalog/register`, so indexes, watches and session invalidation behave alike; the
//! caller ([`Store::apply_txn`]) undoes everything if any operation of the transaction fails.
//!
//! CAS rules (Consul's `ensure*CASTxn`): a `cas` with index 0 writes only what does not exist
//! yet; with index N only over a stored `ModifyIndex` of N. A `delete-cas` needs the object
//! to exist with that index.

use super::{Changes, Store, StoreError};
use crate::catalog::{DeregisterRequest, Node, RegisterRequest};
use crate::txn::{CatalogVerb, CheckOp, NodeOp, ServiceOp, TxnResult};

type OpResult = Result<Vec<TxnResult>, String>;

/// A write operation as the three kinds share it.
struct Write {
    verb: CatalogVerb,
    /// How Consul's errors name the object: `node "n1"`, `service "web1" on node "n1"`, ...
    what: String,
    /// The operation's CAS index, and the stored object's (None: absent).
    want: u64,
    current: Option<u64>,
}

impl Write {
    /// Refuses a `cas` or `delete-cas` whose index does not match.
    fn check_index(&self) -> Result<(), String> {
        let stale = match self.verb {
            CatalogVerb::Cas => !cas_allows(self.want, self.current),
            CatalogVerb::DeleteCas => self.current != Some(self.want),
            _ => false,
        };
        if !stale {
            return Ok(());
        }
        let action = if self.verb == CatalogVerb::DeleteCas {
            "delete"
        } else {
            "set"
        };
        Err(format!("failed to {action} {}, index is stale", self.what))
    }
}

/// May a `cas` with index `want` write over an object whose index is `current` (None: absent)?
fn cas_allows(want: u64, current: Option<u64>) -> bool {
    match current {
        None => want == 0,
        Some(i) => want != 0 && i == want,
    }
}

fn node_what(node: &str) -> String {
    format!("node {node:?}")
}

fn service_what(node: &str, id: &str) -> String {
    format!("service {id:?} on node {node:?}")
}

fn check_what(node: &str, id: &str) -> String {
    format!("check {id:?} on node {node:?}")
}

/// A read's answer: the object, or Consul's text for a missing one.
fn found<T>(what: String, object: Option<&T>, result: fn(T) -> TxnResult) -> OpResult
where
    T: Clone,
{
    match object {
        Some(o) => Ok(vec![result(o.clone())]),
        None => Err(format!("{what} doesn't exist")),
    }
}

impl Store {
    /// Runs a write: the index rule, then the registration `set` builds (refused in Consul's
    /// words) or the deregistration `delete`. The caller answers with what is stored
    /// afterwards (nothing once deleted).
    fn txn_write(
        &mut self,
        (index, now_ms): (u64, u64),
        w: Write,
        set: impl FnOnce(&Store) -> Result<RegisterRequest, String>,
        delete: DeregisterRequest,
        changes: &mut Changes,
    ) -> Result<(), String> {
        w.check_index()?;
        match w.verb {
            CatalogVerb::Set | CatalogVerb::Cas => {
                let req = set(self)?;
                self.catalog_apply_register(index, &req, now_ms, changes)
                    .map_err(|e| e.to_string())
            }
            CatalogVerb::Delete | CatalogVerb::DeleteCas => {
                self.catalog_deregister(index, &delete, now_ms, changes);
                Ok(())
            }
            CatalogVerb::Get => unreachable!("reads do not write"),
        }
    }

    /// The stored record of `node`, which a service or check write needs (and leaves as it is).
    fn txn_existing_node(&self, node: &str) -> Result<Node, String> {
        self.node(node)
            .cloned()
            .ok_or_else(|| StoreError::MissingNode.to_string())
    }

    pub(super) fn txn_node(
        &mut self,
        index: u64,
        op: &NodeOp,
        now_ms: u64,
        changes: &mut Changes,
    ) -> OpResult {
        if op.verb == CatalogVerb::Get {
            return self.txn_node_read(op);
        }
        let name = &op.node.name;
        let w = Write {
            verb: op.verb,
            what: node_what(name),
            want: op.node.modify_index,
            current: self.node(name).map(|n| n.modify_index),
        };
        let set = |_: &Store| {
            Ok(RegisterRequest {
                node: op.node.clone(),
                skip_node_update: false,
                service: None,
                checks: Vec::new(),
            })
        };
        let delete = deregister(name, None, None);
        self.txn_write((index, now_ms), w, set, delete, changes)?;
        Ok(self
            .node(name)
            .cloned()
            .map(TxnResult::Node)
            .into_iter()
            .collect())
    }

    pub(super) fn txn_service(
        &mut self,
        index: u64,
        op: &ServiceOp,
        now_ms: u64,
        changes: &mut Changes,
    ) -> OpResult {
        if op.verb == CatalogVerb::Get {
            return self.txn_service_read(op);
        }
        let (node, id) = (&op.node, &op.service.id);
        let w = Write {
            verb: op.verb,
            what: service_what(node, id),
            want: op.service.modify_index,
            current: self.service(node, id).map(|s| s.modify_index),
        };
        let set = |s: &Store| {
            Ok(RegisterRequest {
                node: s.txn_existing_node(node)?,
                skip_node_update: true,
                service: Some(op.service.clone()),
                checks: Vec::new(),
            })
        };
        let delete = deregister(node, Some(id), None);
        self.txn_write((index, now_ms), w, set, delete, changes)?;
        let stored = self.service(node, id).cloned();
        Ok(stored.map(TxnResult::Service).into_iter().collect())
    }

    pub(super) fn txn_check(
        &mut self,
        index: u64,
        op: &CheckOp,
        now_ms: u64,
        changes: &mut Changes,
    ) -> OpResult {
        if op.verb == CatalogVerb::Get {
            return self.txn_check_read(op);
        }
        let c = &op.check;
        let (node, id) = (&c.node, &c.check_id);
        let w = Write {
            verb: op.verb,
            what: check_what(node, id),
            want: c.modify_index,
            current: self.check(node, id).map(|c| c.modify_index),
        };
        let set = |s: &Store| {
            let node = s.txn_existing_node(node)?;
            // Consul's ensureCheckTxn text, checked here because the registration path
            // words it for its own request.
            if !c.service_id.is_empty() && s.service(&node.name, &c.service_id).is_none() {
                return Err("Missing service registration".into());
            }
            Ok(RegisterRequest {
                node,
                skip_node_update: true,
                service: None,
                checks: vec![c.clone()],
            })
        };
        let delete = deregister(node, None, Some(id));
        self.txn_write((index, now_ms), w, set, delete, changes)?;
        let stored = self.check(node, id).cloned();
        Ok(stored.map(TxnResult::Check).into_iter().collect())
    }

    /// A node `get`: by ID when the operation gives one (case-insensitively, as UUIDs), else
    /// by name.
    pub(super) fn txn_node_read(&self, op: &NodeOp) -> OpResult {
        let want = &op.node;
        let node = if want.id.is_empty() {
            self.node(&want.name)
        } else {
            self.node_by_id(&want.id)
        };
        found(node_what(&want.name), node, TxnResult::Node)
    }

    pub(super) fn txn_service_read(&self, op: &ServiceOp) -> OpResult {
        let (node, id) = (&op.node, &op.service.id);
        found(
            service_what(node, id),
            self.service(node, id),
            TxnResult::Service,
        )
    }

    pub(super) fn txn_check_read(&self, op: &CheckOp) -> OpResult {
        let (node, id) = (&op.check.node, &op.check.check_id);
        found(check_what(node, id), self.check(node, id), TxnResult::Check)
    }
}

fn deregister(node: &str, service_id: Option<&str>, check_id: Option<&str>) -> DeregisterRequest {
    DeregisterRequest {
        node: node.to_string(),
        service_id: service_id.map(str::to_string),
        check_id: check_id.map(str::to_string),
    }
}
