//! Catalog reads. Each returns the index its answer depends on, as the blocking queries that
//! watch the matching [`WatchKey`](crate::WatchKey) compare it.

use std::collections::BTreeMap;

use super::Store;
use crate::catalog::{node_meta_matches, CheckStatus, HealthCheck, Node, Service, ServiceEntry};

/// Filters shared by the service queries.
#[derive(Debug, Clone, Default)]
pub struct ServiceQuery<'q> {
    /// Every tag must be on the instance (Consul's repeatable `?tag`).
    pub tags: &'q [String],
    /// Every `key: value` must be in the node's meta (`?node-meta`).
    pub node_meta: &'q [(String, String)],
}

impl ServiceQuery<'_> {
    fn admits(&self, node: &Node, service: &Service) -> bool {
        self.tags.iter().all(|t| service.has_tag(t)) && node_meta_matches(node, self.node_meta)
    }
}

impl Store {
    /// Does the node named `node` pass a `node-meta` filter (an empty one passes all)?
    fn node_admits(&self, node: &str, node_meta: &[(String, String)]) -> bool {
        node_meta.is_empty()
            || self
                .catalog
                .nodes
                .get(node)
                .is_some_and(|n| node_meta_matches(n, node_meta))
    }

    /// A table's index for an answer filtered by `node-meta`: a filtered answer also depends
    /// on the nodes' records, so their table's index counts too.
    fn with_nodes_index(&self, index: u64, node_meta: &[(String, String)]) -> u64 {
        let index = if node_meta.is_empty() {
            index
        } else {
            index.max(self.nodes_index)
        };
        index.max(1)
    }

    /// The index of everything a health query on `name` shows (1 for a name never seen).
    pub fn service_index(&self, name: &str) -> u64 {
        self.catalog
            .service_indexes
            .get(name)
            .copied()
            .unwrap_or(1)
            .max(self.restore_floor)
    }

    /// The index of one node, its services and checks (1 for a name never seen).
    pub fn node_index(&self, name: &str) -> u64 {
        self.catalog
            .node_indexes
            .get(name)
            .copied()
            .unwrap_or(1)
            .max(self.restore_floor)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.catalog.nodes.get(name)
    }

    pub fn check(&self, node: &str, id: &str) -> Option<&HealthCheck> {
        self.catalog.checks.get(&(node.to_string(), id.to_string()))
    }

    pub fn service(&self, node: &str, id: &str) -> Option<&Service> {
        self.catalog
            .services
            .get(&(node.to_string(), id.to_string()))
    }

    /// How many nodes, service instances and checks the catalog holds.
    pub fn catalog_counts(&self) -> (usize, usize, usize) {
        let c = &self.catalog;
        (c.nodes.len(), c.services.len(), c.checks.len())
    }

    /// Every node (sorted by name) whose meta matches.
    pub fn catalog_nodes(&self, node_meta: &[(String, String)]) -> (u64, Vec<&Node>) {
        let nodes = self
            .catalog
            .nodes
            .values()
            .filter(|n| node_meta_matches(n, node_meta))
            .collect();
        (self.nodes_index.max(1), nodes)
    }

    /// Every service name with the union of its instances' tags (sorted, without repeats),
    /// counting only instances on nodes whose meta matches.
    pub fn catalog_services(
        &self,
        node_meta: &[(String, String)],
    ) -> (u64, BTreeMap<&str, Vec<&str>>) {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for ((node, _), s) in self.catalog.services.iter() {
            if !self.node_admits(node, node_meta) {
                continue;
            }
            let tags = out.entry(&s.name).or_default();
            tags.extend(s.tags.iter().map(String::as_str));
        }
        for tags in out.values_mut() {
            tags.sort_unstable();
            tags.dedup();
        }
        (self.with_nodes_index(self.services_index, node_meta), out)
    }

    /// Every service name that has at least one instance, sorted (a derived index: no scan of
    /// the instances).
    pub fn service_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.catalog.by_name.keys().map(String::as_str)
    }

    /// The instances of service `name` with their nodes, by (node, service ID).
    pub fn catalog_service(
        &self,
        name: &str,
        q: &ServiceQuery<'_>,
    ) -> (u64, Vec<(&Node, &Service)>) {
        let rows = self
            .instances(name)
            .filter(|(n, s)| q.admits(n, s))
            .collect();
        (self.service_index(name), rows)
    }

    /// Instances of `name` with their nodes; a row whose node is missing cannot exist (a
    /// service is only registered with its node) and is skipped rather than trusted.
    fn instances<'a>(&'a self, name: &str) -> impl Iterator<Item = (&'a Node, &'a Service)> + 'a {
        let keys = self.catalog.by_name.get(name).into_iter().flatten();
        keys.filter_map(move |k| {
            let s = self.catalog.services.get(k)?;
            let n = self.catalog.nodes.get(&k.0)?;
            Some((n, s))
        })
    }

    /// A node and its service instances (None: no such node). As Consul, a name that is no
    /// node's is tried as a prefix of node IDs ([`Store::resolve_node`]).
    pub fn catalog_node(&self, name: &str) -> (u64, Option<(&Node, Vec<&Service>)>) {
        match self.resolve_node(name) {
            Some(n) => (
                self.node_index(&n.name),
                Some((n, self.catalog.node_services(&n.name).collect())),
            ),
            None => (self.node_index(name), None),
        }
    }

    /// The node named `name_or_id`, else (for two characters or more) the only node whose ID
    /// starts with it, ignoring case (Consul's catalog node lookups; an ambiguous prefix finds
    /// nothing).
    pub fn resolve_node(&self, name_or_id: &str) -> Option<&Node> {
        if let Some(n) = self.catalog.nodes.get(name_or_id) {
            return Some(n);
        }
        if name_or_id.len() < 2 {
            return None;
        }
        let prefix = name_or_id.to_ascii_lowercase();
        let mut found = self
            .catalog
            .by_id
            .range(prefix.clone()..)
            .take_while(|(id, _)| id.starts_with(&prefix));
        match (found.next(), found.next()) {
            (Some((_, name)), None) => self.catalog.nodes.get(name),
            _ => None,
        }
    }

    /// The node whose ID is `id`, ignoring case (IDs are UUIDs).
    pub fn node_by_id(&self, id: &str) -> Option<&Node> {
        let name = self.catalog.by_id.get(&id.to_ascii_lowercase())?;
        self.catalog.nodes.get(name)
    }

    /// Every service instance with its node, in (node, service ID) order, counting only nodes
    /// whose meta matches: what `/v1/catalog/services` aggregates when it must filter
    /// instances first. The index is [`Store::catalog_services`]'.
    pub fn all_instances(&self, node_meta: &[(String, String)]) -> (u64, Vec<(&Node, &Service)>) {
        let rows = self
            .catalog
            .services
            .iter()
            .filter_map(|((node, _), s)| Some((self.catalog.nodes.get(node)?, s)))
            .filter(|(n, _)| node_meta_matches(n, node_meta))
            .collect();
        (self.catalog_services(node_meta).0, rows)
    }

    /// Every check on a node (node-level and its services').
    pub fn node_health(&self, name: &str) -> (u64, Vec<&HealthCheck>) {
        (
            self.node_index(name),
            self.catalog.node_checks(name).collect(),
        )
    }

    /// Every check bound to an instance of service `name`.
    pub fn service_checks(
        &self,
        name: &str,
        node_meta: &[(String, String)],
    ) -> (u64, Vec<&HealthCheck>) {
        let mut out = Vec::new();
        let mut by_node = NodeChecks::default();
        for (n, s) in self.instances(name) {
            if !node_meta_matches(n, node_meta) {
                continue;
            }
            out.extend(by_node.of(self, &n.name).for_service(&s.id));
        }
        (self.service_index(name), out)
    }

    /// Every check in `state` (None: any state), on nodes whose meta matches. With a meta
    /// filter the answer also depends on the nodes' records, and so does its index.
    pub fn checks_in_state(
        &self,
        state: Option<CheckStatus>,
        node_meta: &[(String, String)],
    ) -> (u64, Vec<&HealthCheck>) {
        let checks = self
            .catalog
            .checks
            .values()
            .filter(|c| state.is_none_or(|s| c.status == s))
            .filter(|c| self.node_admits(&c.node, node_meta))
            .collect();
        (self.with_nodes_index(self.checks_index, node_meta), checks)
    }

    /// `/v1/health/service/:s`: each instance with its node and every check bearing on it (the
    /// node's own checks first, then the instance's). `passing_only` drops an instance with any
    /// check not passing (warning included), as Consul's `?passing` does.
    pub fn service_health(
        &self,
        name: &str,
        q: &ServiceQuery<'_>,
        passing_only: bool,
    ) -> (u64, Vec<ServiceEntry<'_>>) {
        let mut out = Vec::new();
        let mut by_node = NodeChecks::default();
        for (node, service) in self.instances(name) {
            if !q.admits(node, service) {
                continue;
            }
            let grouped = by_node.of(self, &node.name);
            let mut checks = grouped.node_level.clone();
            checks.extend(grouped.for_service(&service.id));
            if passing_only && checks.iter().any(|c| c.status != CheckStatus::Passing) {
                continue;
            }
            out.push(ServiceEntry {
                node,
                service,
                checks,
            });
        }
        (self.service_index(name), out)
    }
}

/// One node's checks grouped by service, built once per node while a query walks the
/// instances of a service (which come ordered by node): many instances on one node then cost
/// one pass over the node's checks, not one pass per instance.
#[derive(Default)]
struct NodeChecks<'a> {
    node: Option<&'a str>,
    node_level: Vec<&'a HealthCheck>,
    by_service: std::collections::HashMap<&'a str, Vec<&'a HealthCheck>>,
}

impl<'a> NodeChecks<'a> {
    fn of(&mut self, store: &'a Store, node: &'a str) -> &Self {
        if self.node != Some(node) {
            self.node = Some(node);
            self.node_level.clear();
            self.by_service.clear();
            for c in store.catalog.node_checks(node) {
                if c.service_id.is_empty() {
                    self.node_level.push(c);
                } else {
                    self.by_service
                        .entry(c.service_id.as_str())
                        .or_default()
                        .push(c);
                }
            }
        }
        self
    }

    fn for_service(&self, service_id: &str) -> impl Iterator<Item = &'a HealthCheck> + '_ {
        self.by_service
            .get(service_id)
            .into_iter()
            .flatten()
            .copied()
    }
}
