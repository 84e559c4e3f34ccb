//! What a query depends on and what a command changed.
//!
//! A blocking query registers the [`WatchKey`]s its answer depends on; applying a command
//! reports [`Changes`]; the server wakes a query only when one of its keys was touched. This is
//! what lets a watch on one key sleep through writes to every other key (Consul wakes all KV
//! watchers on any KV write).

use serde::{Deserialize, Serialize};

/// Tables whose index moves as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Table {
    Kv,
    Sessions,
    Nodes,
    Services,
    Checks,
}

/// One thing a query read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchKey {
    /// One KV key, present or not.
    Key(String),
    /// Every KV key that starts with the prefix (the empty prefix: all keys).
    Prefix(String),
    /// A whole table.
    Table(Table),
    /// Everything a health query on one service name shows: its instances, their checks,
    /// their nodes and those nodes' checks.
    Service(String),
    /// One node, its services and its checks.
    Node(String),
}

/// What one applied command touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// KV keys written, deleted, locked or unlocked.
    pub keys: Vec<String>,
    /// Tables whose index moved.
    pub tables: Vec<Table>,
    /// Service names whose index moved.
    pub services: Vec<String>,
    /// Node names whose index moved.
    pub nodes: Vec<String>,
}

impl Changes {
    /// Touched nothing: no watcher needs to wake.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.tables.is_empty()
            && self.services.is_empty()
            && self.nodes.is_empty()
    }

    /// Adds everything `other` touched.
    pub fn merge(&mut self, other: Changes) {
        self.keys.extend(other.keys);
        for t in other.tables {
            self.touch_table(t);
        }
        for s in &other.services {
            self.touch_service(s);
        }
        for n in &other.nodes {
            self.touch_node(n);
        }
    }

    pub(crate) fn touch_key(&mut self, key: &str) {
        self.keys.push(key.to_string());
        self.touch_table(Table::Kv);
    }

    pub(crate) fn touch_table(&mut self, table: Table) {
        if !self.tables.contains(&table) {
            self.tables.push(table);
        }
    }

    pub(crate) fn touch_service(&mut self, name: &str) {
        if !self.services.iter().any(|s| s == name) {
            self.services.push(name.to_string());
        }
    }

    pub(crate) fn touch_node(&mut self, name: &str) {
        if !self.nodes.iter().any(|n| n == name) {
            self.nodes.push(name.to_string());
        }
    }

    /// Does this change wake a query watching `key`?
    pub fn affects(&self, key: &WatchKey) -> bool {
        match key {
            WatchKey::Key(k) => self.keys.iter().any(|c| c == k),
            WatchKey::Prefix(p) => self.keys.iter().any(|c| c.starts_with(p.as_str())),
            WatchKey::Table(t) => self.tables.contains(t),
            WatchKey::Service(s) => self.services.contains(s),
            WatchKey::Node(n) => self.nodes.contains(n),
        }
    }
}
