//! The catalog tables: nodes, service instances and checks, with the indexes blocking queries
//! watch.
//!
//! Index rules (as Consul's state store, but finer):
//! * every service name has its own index, moved by anything a health query on that name
//!   shows: one of its instances, a check on one, or the node (or a node-level check) under
//!   one. It outlives the last instance (Consul's "extinction" index), so a watcher of a
//!   service that just vanished still wakes.
//! * every node name has its own index, moved by any change to the node, its services or its
//!   checks.
//! * the `Nodes`, `Services` and `Checks` tables have indexes for the list endpoints.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use super::{Changes, StoreError};
use crate::catalog::{CheckStatus, DeregisterRequest, HealthCheck, Node, RegisterRequest, Service};
use crate::watch::Table;

/// (node name, service or check ID): the key of instances and checks, so that one node's
/// rows are one range.
pub(crate) type NodeKey = (String, String);

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Catalog {
    pub(crate) nodes: BTreeMap<String, Node>,
    pub(crate) services: BTreeMap<NodeKey, Service>,
    pub(crate) checks: BTreeMap<NodeKey, HealthCheck>,
    pub(crate) service_indexes: BTreeMap<String, u64>,
    pub(crate) node_indexes: BTreeMap<String, u64>,
    /// Derived (rebuilt after a restore): instances of each service name.
    #[serde(skip)]
    pub(crate) by_name: BTreeMap<String, BTreeSet<NodeKey>>,
    /// Derived: node name by lower-cased node ID, to refuse a second node with the same ID.
    #[serde(skip)]
    by_id: BTreeMap<String, String>,
}

/// The keys from `(node, "")` up to the next node name: one node's rows.
pub(crate) fn node_range(node: &str) -> std::ops::RangeFrom<NodeKey> {
    (node.to_string(), String::new())..
}

/// Checks a change left critical or removed: the sessions bound to them must go.
pub(crate) type Invalidated = Vec<NodeKey>;

impl Catalog {
    pub(crate) fn rebuild_derived(&mut self) {
        self.by_name.clear();
        for (k, s) in &self.services {
            self.by_name
                .entry(s.name.clone())
                .or_default()
                .insert(k.clone());
        }
        self.by_id = self
            .nodes
            .values()
            .filter(|n| !n.id.is_empty())
            .map(|n| (n.id.to_ascii_lowercase(), n.name.clone()))
            .collect();
    }

    pub(crate) fn node_services<'a>(
        &'a self,
        node: &str,
    ) -> impl Iterator<Item = &'a Service> + 'a {
        let node = node.to_string();
        self.services
            .range(node_range(&node))
            .take_while(move |((n, _), _)| *n == node)
            .map(|(_, s)| s)
    }

    pub(crate) fn node_checks<'a>(
        &'a self,
        node: &str,
    ) -> impl Iterator<Item = &'a HealthCheck> + 'a {
        let node = node.to_string();
        self.checks
            .range(node_range(&node))
            .take_while(move |((n, _), _)| *n == node)
            .map(|(_, c)| c)
    }

    fn touch_node(&mut self, index: u64, node: &str, changes: &mut Changes) {
        self.node_indexes.insert(node.to_string(), index);
        if !changes.nodes.iter().any(|n| n == node) {
            changes.nodes.push(node.to_string());
        }
    }

    fn touch_service(&mut self, index: u64, name: &str, changes: &mut Changes) {
        self.service_indexes.insert(name.to_string(), index);
        if !changes.services.iter().any(|n| n == name) {
            changes.services.push(name.to_string());
        }
    }

    /// A node-level change shows in the health of every instance on the node.
    fn touch_services_of_node(&mut self, index: u64, node: &str, changes: &mut Changes) {
        let names: BTreeSet<String> = self.node_services(node).map(|s| s.name.clone()).collect();
        for name in names {
            self.touch_service(index, &name, changes);
        }
    }

    /// Refuses a request that cannot be applied whole. Nothing is changed.
    fn validate(&self, req: &RegisterRequest) -> Result<(), StoreError> {
        let node = &req.node.name;
        if node.is_empty() {
            return Err(StoreError::MissingNodeName);
        }
        let id = req.node.id.to_ascii_lowercase();
        // A skipped update of an existing node leaves its ID alone, so it cannot clash.
        let keeps_node = req.skip_node_update && self.nodes.contains_key(node);
        if !id.is_empty() && !keeps_node {
            if let Some(other) = self.by_id.get(&id).filter(|o| *o != node) {
                return Err(StoreError::NodeIdTaken {
                    id: req.node.id.clone(),
                    node: node.clone(),
                    other: other.clone(),
                });
            }
        }
        if let Some(s) = &req.service {
            if s.id.is_empty() {
                return Err(StoreError::MissingServiceId);
            }
        }
        for c in &req.checks {
            if c.check_id.is_empty() {
                return Err(StoreError::MissingCheckId);
            }
            if !c.node.is_empty() && c.node != *node {
                return Err(StoreError::CheckNodeMismatch(c.check_id.clone()));
            }
            let in_request = req.service.as_ref().is_some_and(|s| s.id == c.service_id);
            let key = (node.clone(), c.service_id.clone());
            if !c.service_id.is_empty() && !in_request && !self.services.contains_key(&key) {
                return Err(StoreError::MissingService(c.service_id.clone()));
            }
        }
        Ok(())
    }

    /// Applies a registration: the node (unless skipped or unchanged), the service, the checks.
    /// Rows that equal what is stored are left alone, so no watcher wakes for a no-op sync.
    pub(crate) fn register(
        &mut self,
        index: u64,
        req: &RegisterRequest,
        changes: &mut Changes,
    ) -> Result<Invalidated, StoreError> {
        self.validate(req)?;
        let name = req.node.name.clone();
        let existing = self.nodes.get(&name);
        if existing.is_none()
            || (!req.skip_node_update && !existing.is_some_and(|n| n.same_as(&req.node)))
        {
            self.upsert_node(index, &req.node, changes);
        }
        if let Some(s) = &req.service {
            self.upsert_service(index, &name, s, changes);
        }
        let mut critical = Vec::new();
        for c in &req.checks {
            if self.upsert_check(index, &name, c, changes) {
                critical.push((name.clone(), c.check_id.clone()));
            }
        }
        Ok(critical)
    }

    fn upsert_node(&mut self, index: u64, node: &Node, changes: &mut Changes) {
        let mut n = node.clone();
        n.create_index = self.nodes.get(&n.name).map_or(index, |o| o.create_index);
        n.modify_index = index;
        if let Some(old) = self.nodes.get(&n.name) {
            self.by_id.remove(&old.id.to_ascii_lowercase());
        }
        if !n.id.is_empty() {
            self.by_id.insert(n.id.to_ascii_lowercase(), n.name.clone());
        }
        let name = n.name.clone();
        self.nodes.insert(name.clone(), n);
        changes.touch_table(Table::Nodes);
        self.touch_node(index, &name, changes);
        self.touch_services_of_node(index, &name, changes);
    }

    fn upsert_service(&mut self, index: u64, node: &str, s: &Service, changes: &mut Changes) {
        let key = (node.to_string(), s.id.clone());
        let old = self.services.get(&key);
        if old.is_some_and(|o| o.same_as(s)) {
            return;
        }
        let mut s = s.clone();
        s.create_index = old.map_or(index, |o| o.create_index);
        s.modify_index = index;
        if let Some(old_name) = old.map(|o| o.name.clone()).filter(|n| *n != s.name) {
            self.forget_instance(&old_name, &key);
            self.touch_service(index, &old_name, changes);
        }
        self.by_name
            .entry(s.name.clone())
            .or_default()
            .insert(key.clone());
        let (svc_id, svc_name, tags) = (s.id.clone(), s.name.clone(), s.tags.clone());
        self.services.insert(key, s);
        changes.touch_table(Table::Services);
        self.touch_service(index, &svc_name, changes);
        self.touch_node(index, node, changes);
        // The instance's checks carry its name and tags; keep them true.
        self.refresh_service_checks(index, node, &svc_id, &svc_name, &tags, changes);
    }

    pub(crate) fn forget_instance(&mut self, name: &str, key: &NodeKey) {
        if let Some(set) = self.by_name.get_mut(name) {
            set.remove(key);
            if set.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    /// Upserts a check; true if it is now critical and was not before (or is new and critical).
    fn upsert_check(
        &mut self,
        index: u64,
        node: &str,
        c: &HealthCheck,
        changes: &mut Changes,
    ) -> bool {
        let mut c = c.clone();
        c.node = node.to_string();
        match self.services.get(&(node.to_string(), c.service_id.clone())) {
            Some(s) if !c.service_id.is_empty() => {
                c.service_name = s.name.clone();
                c.service_tags = s.tags.clone();
            }
            _ => {
                c.service_name.clear();
                c.service_tags.clear();
            }
        }
        let key = (node.to_string(), c.check_id.clone());
        let old = self.checks.get(&key);
        if old.is_some_and(|o| o.same_as(&c)) {
            return false;
        }
        let became_critical = c.status == CheckStatus::Critical
            && old.is_none_or(|o| o.status != CheckStatus::Critical);
        c.create_index = old.map_or(index, |o| o.create_index);
        c.modify_index = index;
        // A check that moved from one service to another changes both.
        let old_service = old
            .map(|o| o.service_name.clone())
            .filter(|s| !s.is_empty());
        let service = (!c.service_name.is_empty()).then(|| c.service_name.clone());
        self.checks.insert(key, c);
        changes.touch_table(Table::Checks);
        self.touch_node(index, node, changes);
        self.touch_check_services(index, node, old_service, service, changes);
        became_critical
    }

    /// Wakes the services a check bears on: its own service, or every service on the node for
    /// a node-level check.
    fn touch_check_services(
        &mut self,
        index: u64,
        node: &str,
        old_service: Option<String>,
        service: Option<String>,
        changes: &mut Changes,
    ) {
        if old_service.is_none() || service.is_none() {
            self.touch_services_of_node(index, node, changes);
        }
        for name in old_service.into_iter().chain(service) {
            self.touch_service(index, &name, changes);
        }
    }

    /// Copies a service's name and tags into the checks bound to it.
    fn refresh_service_checks(
        &mut self,
        index: u64,
        node: &str,
        service_id: &str,
        name: &str,
        tags: &[String],
        changes: &mut Changes,
    ) {
        let stale: Vec<NodeKey> = self
            .checks
            .range(node_range(node))
            .take_while(|((n, _), _)| n == node)
            .filter(|(_, c)| {
                c.service_id == service_id && (c.service_name != name || c.service_tags != tags)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(c) = self.checks.get_mut(&key) {
                c.service_name = name.to_string();
                c.service_tags = tags.to_vec();
                c.modify_index = index;
                changes.touch_table(Table::Checks);
            }
        }
    }

    /// Applies a deregistration; returns the checks removed (their sessions must go) and
    /// whether the whole node went (its sessions must go too).
    pub(crate) fn deregister(
        &mut self,
        index: u64,
        req: &DeregisterRequest,
        changes: &mut Changes,
    ) -> (Invalidated, bool) {
        if !self.nodes.contains_key(&req.node) {
            return (Vec::new(), false);
        }
        let node = req.node.as_str();
        match (&req.service_id, &req.check_id) {
            (Some(sid), _) => (self.remove_service(index, node, sid, changes), false),
            (None, Some(cid)) => (
                self.remove_check(index, node, cid, changes)
                    .into_iter()
                    .collect(),
                false,
            ),
            (None, None) => (self.remove_node(index, node, changes), true),
        }
    }

    fn remove_check(
        &mut self,
        index: u64,
        node: &str,
        id: &str,
        changes: &mut Changes,
    ) -> Option<NodeKey> {
        let key = (node.to_string(), id.to_string());
        let c = self.checks.remove(&key)?;
        changes.touch_table(Table::Checks);
        self.touch_node(index, node, changes);
        let service = (!c.service_name.is_empty()).then_some(c.service_name);
        self.touch_check_services(index, node, service.clone(), service, changes);
        Some(key)
    }

    fn remove_service(
        &mut self,
        index: u64,
        node: &str,
        id: &str,
        changes: &mut Changes,
    ) -> Invalidated {
        let key = (node.to_string(), id.to_string());
        let Some(s) = self.services.remove(&key) else {
            return Vec::new();
        };
        self.forget_instance(&s.name, &key);
        changes.touch_table(Table::Services);
        self.touch_service(index, &s.name, changes);
        self.touch_node(index, node, changes);
        let checks: Vec<String> = self
            .node_checks(node)
            .filter(|c| c.service_id == id)
            .map(|c| c.check_id.clone())
            .collect();
        checks
            .iter()
            .filter_map(|c| self.remove_check(index, node, c, changes))
            .collect()
    }

    fn remove_node(&mut self, index: u64, node: &str, changes: &mut Changes) -> Invalidated {
        let services: Vec<String> = self.node_services(node).map(|s| s.id.clone()).collect();
        let mut removed = Vec::new();
        for id in services {
            removed.extend(self.remove_service(index, node, &id, changes));
        }
        let checks: Vec<String> = self.node_checks(node).map(|c| c.check_id.clone()).collect();
        for id in checks {
            removed.extend(self.remove_check(index, node, &id, changes));
        }
        if let Some(n) = self.nodes.remove(node) {
            self.by_id.remove(&n.id.to_ascii_lowercase());
        }
        changes.touch_table(Table::Nodes);
        self.touch_node(index, node, changes);
        removed
    }
}
