//! The catalog tables (nodes, service instances, checks, and the per-name indexes blocking
//! queries watch), the lookups derived from them, and their journals. The writes and their
//! index rules are in [`super::catalog_write`], the reads in [`super::catalog_read`].

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use super::journal::{Journal, JournaledMap};
use crate::catalog::{HealthCheck, Node, Service};

/// (node name, service or check ID): the key of instances and checks, so that one node's
/// rows are one range.
pub(crate) type NodeKey = (String, String);

/// The tables are [`JournaledMap`]s, so a failed transaction undoes what it changed (and the
/// lookups follow) without copying the catalog. The lookups are only ever changed together
/// with the table they derive from ([`Catalog::put_node`], [`Catalog::put_service`] and the
/// undo of either), so they agree with the tables after every command.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Catalog {
    pub(crate) nodes: JournaledMap<String, Node>,
    pub(crate) services: JournaledMap<NodeKey, Service>,
    pub(crate) checks: JournaledMap<NodeKey, HealthCheck>,
    pub(crate) service_indexes: JournaledMap<String, u64>,
    pub(crate) node_indexes: JournaledMap<String, u64>,
    /// Derived (rebuilt after a restore): instances of each service name.
    #[serde(skip)]
    pub(crate) by_name: BTreeMap<String, BTreeSet<NodeKey>>,
    /// Derived: node name by lower-cased node ID, to refuse a second node with the same ID
    /// and to find nodes by ID (or ID prefix).
    #[serde(skip)]
    pub(crate) by_id: BTreeMap<String, String>,
}

/// The keys of one node's rows: from `(node, "")` up to, not including, `(node + "\0", "")`,
/// below which every other node name sorts or above which it starts.
pub(crate) fn node_range(node: &str) -> std::ops::Range<NodeKey> {
    (node.to_string(), String::new())..(format!("{node}\0"), String::new())
}

/// Checks a change left critical or removed: the sessions bound to them must go.
pub(crate) type Invalidated = Vec<NodeKey>;

/// Keeps `by_id` true when a node record goes from `was` to `now`.
fn reindex_node(by_id: &mut BTreeMap<String, String>, was: Option<&Node>, now: Option<&Node>) {
    if let Some(w) = was.filter(|w| !w.id.is_empty()) {
        let id = w.id.to_ascii_lowercase();
        if by_id.get(&id) == Some(&w.name) {
            by_id.remove(&id);
        }
    }
    if let Some(n) = now.filter(|n| !n.id.is_empty()) {
        by_id.insert(n.id.to_ascii_lowercase(), n.name.clone());
    }
}

/// Keeps `by_name` true when the instance at `key` goes from `was` to `now`.
fn reindex_service(
    by_name: &mut BTreeMap<String, BTreeSet<NodeKey>>,
    key: &NodeKey,
    was: Option<&Service>,
    now: Option<&Service>,
) {
    if let Some(w) = was {
        if let Some(set) = by_name.get_mut(&w.name) {
            set.remove(key);
            if set.is_empty() {
                by_name.remove(&w.name);
            }
        }
    }
    if let Some(n) = now {
        by_name
            .entry(n.name.clone())
            .or_default()
            .insert(key.clone());
    }
}

/// The values of one node's rows in `table`.
fn node_rows<'a, V>(
    table: &'a BTreeMap<NodeKey, V>,
    node: &str,
) -> impl Iterator<Item = &'a V> + 'a {
    table.range(node_range(node)).map(|(_, v)| v)
}

impl Catalog {
    pub(crate) fn rebuild_derived(&mut self) {
        self.by_name.clear();
        for (k, s) in self.services.iter() {
            reindex_service(&mut self.by_name, k, None, Some(s));
        }
        self.by_id.clear();
        for n in self.nodes.values() {
            reindex_node(&mut self.by_id, None, Some(n));
        }
    }

    fn tables(&mut self) -> [&mut dyn Journal; 5] {
        [
            &mut self.nodes,
            &mut self.services,
            &mut self.checks,
            &mut self.service_indexes,
            &mut self.node_indexes,
        ]
    }

    /// Starts recording changes (a transaction begins).
    pub(crate) fn begin(&mut self) {
        self.tables().into_iter().for_each(|t| t.begin());
    }

    /// Keeps the changes made since [`Catalog::begin`].
    pub(crate) fn commit(&mut self) {
        self.tables().into_iter().for_each(|t| t.commit());
    }

    /// Undoes every change since [`Catalog::begin`], lookups included.
    pub(crate) fn rollback(&mut self) {
        let Catalog {
            nodes,
            services,
            checks,
            service_indexes,
            node_indexes,
            by_name,
            by_id,
        } = self;
        nodes.rollback(|_, was, now| reindex_node(by_id, was, now));
        services.rollback(|key, was, now| reindex_service(by_name, key, was, now));
        checks.rollback(|_, _, _| {});
        service_indexes.rollback(|_, _, _| {});
        node_indexes.rollback(|_, _, _| {});
    }

    /// Stores a node record (with its lookup).
    pub(super) fn put_node(&mut self, node: Node) {
        let name = node.name.clone();
        let old = self.nodes.insert(name.clone(), node);
        reindex_node(&mut self.by_id, old.as_ref(), self.nodes.get(&name));
    }

    pub(super) fn drop_node(&mut self, name: &str) -> Option<Node> {
        let old = self.nodes.remove(&name.to_string());
        reindex_node(&mut self.by_id, old.as_ref(), None);
        old
    }

    /// Stores an instance (with its lookup).
    pub(super) fn put_service(&mut self, key: NodeKey, service: Service) {
        let old = self.services.insert(key.clone(), service);
        reindex_service(
            &mut self.by_name,
            &key,
            old.as_ref(),
            self.services.get(&key),
        );
    }

    pub(super) fn drop_service(&mut self, key: &NodeKey) -> Option<Service> {
        let old = self.services.remove(key);
        reindex_service(&mut self.by_name, key, old.as_ref(), None);
        old
    }

    pub(crate) fn node_services<'a>(
        &'a self,
        node: &str,
    ) -> impl Iterator<Item = &'a Service> + 'a {
        node_rows(&self.services, node)
    }

    pub(crate) fn node_checks<'a>(
        &'a self,
        node: &str,
    ) -> impl Iterator<Item = &'a HealthCheck> + 'a {
        node_rows(&self.checks, node)
    }
}
