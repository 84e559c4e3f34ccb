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
use crate::catalog::{DeregisterRequest, RegisterRequest};
use crate::txn::{CatalogVerb, CheckOp, NodeOp, ServiceOp, TxnResult};

type OpResult = Result<Vec<TxnResult>, String>;

/// May a `cas` with index `want` write over an object whose index is `current` (None: absent)?
fn cas_allows(want: u64, current: Option<u64>) -> bool {
    match current {
        None => want == 0,
        Some(i) => want != 0 && i == want,
    }
}

fn deregister(node: &str, service_id: Option<&str>, check_id: Option<&str>) -> DeregisterRequest {
    DeregisterRequest {
        node: node.to_string(),
        service_id: service_id.map(str::to_string),
        check_id: check_id.map(str::to_string),
    }
}

impl Store {
    /// Applies a registration, in Consul's words when refused.
    fn txn_register(
        &mut self,
        index: u64,
        req: &RegisterRequest,
        now_ms: u64,
        changes: &mut Changes,
    ) -> Result<(), String> {
        self.catalog_apply_register(index, req, now_ms, changes)
            .map_err(|e| e.to_string())
    }

    pub(super) fn txn_node(
        &mut self,
        index: u64,
        op: &NodeOp,
        now_ms: u64,
        changes: &mut Changes,
    ) -> OpResult {
        let name = &op.node.name;
        let current = self.catalog.nodes.get(name).map(|n| n.modify_index);
        match op.verb {
            CatalogVerb::Get => return self.txn_node_read(op),
            CatalogVerb::Set | CatalogVerb::Cas => {
                if op.verb == CatalogVerb::Cas && !cas_allows(op.node.modify_index, current) {
                    return Err(format!("failed to set node {name:?}, index is stale"));
                }
                let req = RegisterRequest {
                    node: op.node.clone(),
                    skip_node_update: false,
                    service: None,
                    checks: Vec::new(),
                };
                self.txn_register(index, &req, now_ms, changes)?;
            }
            CatalogVerb::Delete | CatalogVerb::DeleteCas => {
                if op.verb == CatalogVerb::DeleteCas && current != Some(op.node.modify_index) {
                    return Err(format!("failed to delete node {name:?}, index is stale"));
                }
                self.catalog_deregister(index, &deregister(name, None, None), now_ms, changes);
                return Ok(Vec::new());
            }
        }
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
        let (node, id) = (&op.node, &op.service.id);
        let current = self.service(node, id).map(|s| s.modify_index);
        match op.verb {
            CatalogVerb::Get => return self.txn_service_read(op),
            CatalogVerb::Set | CatalogVerb::Cas => {
                if op.verb == CatalogVerb::Cas && !cas_allows(op.service.modify_index, current) {
                    return Err(format!(
                        "failed to set service {id:?} on node {node:?}, index is stale"
                    ));
                }
                // The node must exist; its record is left as it is.
                let Some(n) = self.node(node).cloned() else {
                    return Err(StoreError::MissingNode.to_string());
                };
                let req = RegisterRequest {
                    node: n,
                    skip_node_update: true,
                    service: Some(op.service.clone()),
                    checks: Vec::new(),
                };
                self.txn_register(index, &req, now_ms, changes)?;
            }
            CatalogVerb::Delete | CatalogVerb::DeleteCas => {
                if op.verb == CatalogVerb::DeleteCas && current != Some(op.service.modify_index) {
                    return Err(format!(
                        "failed to delete service {id:?} on node {node:?}, index is stale"
                    ));
                }
                let req = deregister(node, Some(id), None);
                self.catalog_deregister(index, &req, now_ms, changes);
                return Ok(Vec::new());
            }
        }
        Ok(self
            .service(node, id)
            .cloned()
            .map(TxnResult::Service)
            .into_iter()
            .collect())
    }

    pub(super) fn txn_check(
        &mut self,
        index: u64,
        op: &CheckOp,
        now_ms: u64,
        changes: &mut Changes,
    ) -> OpResult {
        let c = &op.check;
        let (node, id) = (&c.node, &c.check_id);
        let current = self.check(node, id).map(|c| c.modify_index);
        match op.verb {
            CatalogVerb::Get => return self.txn_check_read(op),
            CatalogVerb::Set | CatalogVerb::Cas => {
                if op.verb == CatalogVerb::Cas && !cas_allows(c.modify_index, current) {
                    return Err(format!(
                        "failed to set check {id:?} on node {node:?}, index is stale"
                    ));
                }
                // Consul's ensureCheckTxn texts, checked here because the registration path
                // words them for its own request.
                let Some(n) = self.node(node).cloned() else {
                    return Err(StoreError::MissingNode.to_string());
                };
                if !c.service_id.is_empty() && self.service(node, &c.service_id).is_none() {
                    return Err("Missing service registration".into());
                }
                let req = RegisterRequest {
                    node: n,
                    skip_node_update: true,
                    service: None,
                    checks: vec![c.clone()],
                };
                self.txn_register(index, &req, now_ms, changes)?;
            }
            CatalogVerb::Delete | CatalogVerb::DeleteCas => {
                if op.verb == CatalogVerb::DeleteCas && current != Some(c.modify_index) {
                    return Err(format!(
                        "failed to delete check {id:?} on node {node:?}, index is stale"
                    ));
                }
                let req = deregister(node, None, Some(id));
                self.catalog_deregister(index, &req, now_ms, changes);
                return Ok(Vec::new());
            }
        }
        Ok(self
            .check(node, id)
            .cloned()
            .map(TxnResult::Check)
            .into_iter()
            .collect())
    }

    /// A node `get`: by ID when the operation gives one (case-insensitively, as UUIDs), else
    /// by name.
    pub(super) fn txn_node_read(&self, op: &NodeOp) -> OpResult {
        let want = &op.node;
        let found = if want.id.is_empty() {
            self.node(&want.name)
        } else {
            self.catalog
                .nodes
                .values()
                .find(|n| n.id.eq_ignore_ascii_case(&want.id))
        };
        match found {
            Some(n) => Ok(vec![TxnResult::Node(n.clone())]),
            None => Err(format!("node {:?} doesn't exist", want.name)),
        }
    }

    pub(super) fn txn_service_read(&self, op: &ServiceOp) -> OpResult {
        let (node, id) = (&op.node, &op.service.id);
        match self.service(node, id) {
            Some(s) => Ok(vec![TxnResult::Service(s.clone())]),
            None => Err(format!("service {id:?} on node {node:?} doesn't exist")),
        }
    }

    pub(super) fn txn_check_read(&self, op: &CheckOp) -> OpResult {
        let (node, id) = (&op.check.node, &op.check.check_id);
        match self.check(node, id) {
            Some(c) => Ok(vec![TxnResult::Check(c.clone())]),
            None => Err(format!("check {id:?} on node {node:?} doesn't exist")),
        }
    }
}
