//! Catalog writes: registration and deregistration, and the index rules they follow.
//!
//! Index rules (as Consul's state store, but finer):
//! * every service name has its own index, moved by anything a health query on that name
//!   shows: one of its instances, a check on one, or the node (or a node-level check) under
//!   one. It outlives the last instance (Consul's "extinction" index), so a watcher of a
//!   service that just vanished still wakes.
//! * every node name has its own index, moved by any change to the node, its services or its
//!   checks.
//! * the `Nodes`, `Services` and `Checks` tables have indexes for the list endpoints.

use std::collections::BTreeSet;

use super::catalog::{Catalog, Invalidated, NodeKey};
use super::{Changes, StoreError};
use crate::catalog::{CheckStatus, DeregisterRequest, HealthCheck, Node, RegisterRequest, Service};
use crate::watch::Table;

/// Which instances' health a check shows in: its own (the service's name), or every one on
/// its node for a node-level check (None).
fn check_scope(c: &HealthCheck) -> Option<String> {
    (!c.service_id.is_empty()).then(|| c.service_name.clone())
}

impl Catalog {
    fn touch_node(&mut self, index: u64, node: &str, changes: &mut Changes) {
        self.node_indexes.insert(node.to_string(), index);
        changes.touch_node(node);
    }

    fn touch_service(&mut self, index: u64, name: &str, changes: &mut Changes) {
        self.service_indexes.insert(name.to_string(), index);
        changes.touch_service(name);
    }

    /// A node-level change shows in the health of every instance on the node.
    fn touch_services_of_node(&mut self, index: u64, node: &str, changes: &mut Changes) {
        let names: BTreeSet<String> = self.node_services(node).map(|s| s.name.clone()).collect();
        for name in names {
            self.touch_service(index, &name, changes);
        }
    }

    /// Wakes the services a check bears on (see [`check_scope`]).
    fn touch_check_scope(
        &mut self,
        index: u64,
        node: &str,
        scope: Option<&str>,
        changes: &mut Changes,
    ) {
        match scope {
            Some(name) => self.touch_service(index, name, changes),
            None => self.touch_services_of_node(index, node, changes),
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
        let name = n.name.clone();
        self.put_node(n);
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
        // A rename takes the instance away from its old name's health too.
        let old_name = old.map(|o| o.name.clone()).filter(|n| *n != s.name);
        // Only an instance that existed can have checks (removing one removes its checks), and
        // they need rewriting only if what they copy (name, tags) changed: a registration of
        // a new instance does not scan its node's checks.
        let checks_stale = old.is_some_and(|o| o.name != s.name || o.tags != s.tags);
        let (svc_id, svc_name, tags) = (s.id.clone(), s.name.clone(), s.tags.clone());
        self.put_service(key, s);
        changes.touch_table(Table::Services);
        if let Some(old_name) = old_name {
            self.touch_service(index, &old_name, changes);
        }
        self.touch_service(index, &svc_name, changes);
        self.touch_node(index, node, changes);
        // The instance's checks carry its name and tags; keep them true.
        if checks_stale {
            self.refresh_service_checks(index, node, &svc_id, &svc_name, &tags, changes);
        }
    }

    /// Upserts a check; true if it is now critical and was not before (or is new and critical).
    /// (Consul invalidates on every critical write; a session can only be bound to a check
    /// that was not critical when it was created, and dies when the check turns critical, so
    /// none can be bound to one that already was.)
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
        // A check that moved from one instance (or the node) to another changes both.
        let old_scope = old.map(check_scope).filter(|s| *s != check_scope(&c));
        let scope = check_scope(&c);
        self.checks.insert(key, c);
        changes.touch_table(Table::Checks);
        self.touch_node(index, node, changes);
        if let Some(old_scope) = old_scope {
            self.touch_check_scope(index, node, old_scope.as_deref(), changes);
        }
        self.touch_check_scope(index, node, scope.as_deref(), changes);
        became_critical
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
        let stale: Vec<HealthCheck> = self
            .node_checks(node)
            .filter(|c| {
                c.service_id == service_id && (c.service_name != name || c.service_tags != tags)
            })
            .cloned()
            .collect();
        for mut c in stale {
            c.service_name = name.to_string();
            c.service_tags = tags.to_vec();
            c.modify_index = index;
            self.checks
                .insert((node.to_string(), c.check_id.clone()), c);
            changes.touch_table(Table::Checks);
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
        self.touch_check_scope(index, node, check_scope(&c).as_deref(), changes);
        Some(key)
    }

    fn remove_service(
        &mut self,
        index: u64,
        node: &str,
        id: &str,
        changes: &mut Changes,
    ) -> Invalidated {
        let Some(s) = self.drop_service(&(node.to_string(), id.to_string())) else {
            return Vec::new();
        };
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
        self.drop_node(node);
        changes.touch_table(Table::Nodes);
        self.touch_node(index, node, changes);
        removed
    }
}
