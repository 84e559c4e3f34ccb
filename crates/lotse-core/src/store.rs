//! The state store: every replicated table, and the one function that changes them.
//!
//! [`Store::apply`] is called with each committed log entry's index and command, in log order.
//! It is deterministic: the same commands give the same store on every server. Reads return the
//! index their answer depends on, which is what `X-Consul-Index` reports and what a blocking
//! query compares against.

mod catalog;
mod catalog_read;
mod catalog_write;
pub use catalog_read::ServiceQuery;
mod journal;
mod kv_table;
mod lock_delays;
mod restore;
pub use restore::StoreV2;
mod session_table;
mod sessions;
mod txn_apply;
mod txn_catalog;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::catalog::{DeregisterRequest, RegisterRequest};
use crate::command::{Command, Outcome};
use crate::kv::{keys_with_separator, KvEntry, KvWrite};
use crate::session::Session;
use crate::watch::{Changes, Table, WatchKey};
use catalog::Catalog;
use kv_table::KvTable;
use lock_delays::LockDelays;
use session_table::SessionTable;

/// A command the store refused as a whole. It changed nothing. The texts are Consul's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StoreError {
    #[error("missing session")]
    MissingSession,
    #[error("invalid session {0:?}")]
    InvalidSession(String),
    #[error("Missing node registration")]
    MissingNode,
    #[error("Missing check '{0}' registration")]
    MissingCheck(String),
    #[error("Check '{0}' is in {1} state")]
    CheckCritical(String, String),
    #[error("Session already exists")]
    SessionExists,
    #[error("Must provide node")]
    MissingNodeName,
    #[error("node ID {id:?} for node {node:?} aliases existing node {other:?}")]
    NodeIdTaken {
        id: String,
        node: String,
        other: String,
    },
    #[error("Must provide service ID")]
    MissingServiceId,
    #[error("Must provide check ID")]
    MissingCheckId,
    #[error("Check {0:?} registered for a different node than the request's")]
    CheckNodeMismatch(String),
    #[error("Missing service registration for service {0:?}")]
    MissingService(String),
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    kv: KvTable,
    sessions: SessionTable,
    catalog: Catalog,
    lock_delays: LockDelays,
    /// The highest log index applied.
    last_index: u64,
    /// Per-table indexes.
    kv_index: u64,
    sessions_index: u64,
    nodes_index: u64,
    services_index: u64,
    checks_index: u64,
    /// The log index of the last [`Command::Restore`]: no index a query reports falls below
    /// it, though restored records keep their own indexes (snapshot format 3).
    restore_floor: u64,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// The index of the last applied command.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Applies the command committed at `index`. Indexes must increase; a repeated or older
    /// index is ignored (it was applied before, e.g. replayed after a snapshot).
    pub fn apply(&mut self, index: u64, cmd: &Command) -> (Outcome, Changes) {
        if index <= self.last_index && self.last_index != 0 {
            return (Outcome::Done, Changes::default());
        }
        self.last_index = index;
        let mut changes = Changes::default();
        let outcome = match cmd {
            Command::Batch(cmds) => Outcome::Batch(
                cmds.iter()
                    .map(|c| self.apply_one(index, c, &mut changes))
                    .collect(),
            ),
            other => self.apply_one(index, other, &mut changes),
        };
        for t in &changes.tables {
            match t {
                Table::Kv => self.kv_index = index,
                Table::Sessions => self.sessions_index = index,
                Table::Nodes => self.nodes_index = index,
                Table::Services => self.services_index = index,
                Table::Checks => self.checks_index = index,
            }
        }
        (outcome, changes)
    }

    /// Applies one (non-batch) command at `index`, adding what it touched to `changes`.
    fn apply_one(&mut self, index: u64, cmd: &Command, changes: &mut Changes) -> Outcome {
        match cmd {
            Command::Noop => Outcome::Done,
            Command::KvSet(w) => {
                let e = self.kv_set(index, w, None, changes);
                Outcome::Bool(e.is_some())
            }
            Command::KvCas { write, index: cas } => {
                let ok = self.kv_cas_allowed(&write.key, *cas);
                if ok {
                    self.kv_set(index, write, None, changes);
                }
                Outcome::Bool(ok)
            }
            Command::KvLock {
                write,
                session,
                now_ms,
            } => match self.kv_lock(index, write, session, *now_ms, changes) {
                Ok(ok) => Outcome::Bool(ok),
                Err(e) => Outcome::Rejected(e),
            },
            Command::KvUnlock { write, session } => {
                match self.kv_unlock(index, write, session, changes) {
                    Ok(ok) => Outcome::Bool(ok),
                    Err(e) => Outcome::Rejected(e),
                }
            }
            Command::KvDelete { key } => {
                self.kv_delete(index, key, changes);
                Outcome::Bool(true)
            }
            Command::KvDeleteCas { key, index: cas } => {
                Outcome::Bool(self.kv_delete_cas(index, key, *cas, changes))
            }
            Command::KvDeleteTree { prefix } => {
                self.kv_delete_tree(index, prefix, changes);
                Outcome::Bool(true)
            }
            Command::Txn { ops, now_ms } => {
                Outcome::Txn(self.apply_txn(index, ops, *now_ms, changes))
            }
            Command::SessionCreate { session, now_ms: _ } => {
                match self.session_create(index, session, changes) {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::Rejected(e),
                }
            }
            Command::SessionDestroy { id, now_ms } => {
                Outcome::Bool(self.session_destroy(index, id, *now_ms, changes))
            }
            Command::NodeRegister { node, checks } => {
                let req = crate::node::legacy_register(node, checks);
                self.catalog_register(index, &req, 0, changes)
            }
            Command::CatalogRegister { req, now_ms } => {
                self.catalog_register(index, req, *now_ms, changes)
            }
            Command::CatalogDeregister { req, now_ms } => {
                self.catalog_deregister(index, req, *now_ms, changes);
                Outcome::Bool(true)
            }
            Command::TombstoneReap { up_to_index } => {
                self.kv.reap(*up_to_index);
                Outcome::Done
            }
            Command::Restore(image) => {
                self.restore(index, image, changes);
                Outcome::Done
            }
            // Batches are flattened by `apply`; a nested one is refused rather than recursed.
            Command::Batch(_) => Outcome::Done,
        }
    }

    // ---- KV writes (shared by the single-key commands and transactions) ----

    /// Sets a key, keeping its lock holder and lock index. Returns the new entry.
    fn kv_set(
        &mut self,
        index: u64,
        w: &KvWrite,
        session: Option<String>,
        changes: &mut Changes,
    ) -> Option<KvEntry> {
        let existing = self.kv.get(&w.key);
        // As Consul: writing exactly what is stored changes nothing, so no watcher wakes.
        if let Some(e) = existing {
            if e.value == w.value
                && e.flags == w.flags
                && (session.is_none() || session == e.session)
            {
                return Some(e.clone());
            }
        }
        let entry = KvEntry {
            key: w.key.clone(),
            value: w.value.clone(),
            flags: w.flags,
            lock_index: existing.map_or(0, |e| e.lock_index),
            session: session.or_else(|| existing.and_then(|e| e.session.clone())),
            create_index: existing.map_or(index, |e| e.create_index),
            modify_index: index,
        };
        self.kv.replace(&w.key, Some(entry.clone()), index);
        changes.touch_key(&w.key);
        Some(entry)
    }

    fn kv_cas_allowed(&self, key: &str, cas: u64) -> bool {
        match self.kv.get(key) {
            None => cas == 0,
            Some(e) => cas != 0 && e.modify_index == cas,
        }
    }

    /// Is `key` inside a lock-delay at `now_ms`?
    pub fn lock_delayed(&self, key: &str, now_ms: u64) -> bool {
        self.lock_delays.delays(key, now_ms)
    }

    fn kv_lock(
        &mut self,
        index: u64,
        w: &KvWrite,
        session: &str,
        now_ms: u64,
        changes: &mut Changes,
    ) -> Result<bool, StoreError> {
        if session.is_empty() {
            return Err(StoreError::MissingSession);
        }
        if !self.sessions.contains_key(session) {
            return Err(StoreError::InvalidSession(session.to_string()));
        }
        if self.lock_delayed(&w.key, now_ms) {
            return Ok(false);
        }
        let (lock_index, create_index) = match self.kv.get(&w.key) {
            Some(e) => match e.session.as_deref() {
                Some(s) if s == session => (e.lock_index, e.create_index),
                Some(_) => return Ok(false),
                None => (e.lock_index + 1, e.create_index),
            },
            None => (1, index),
        };
        let entry = KvEntry {
            key: w.key.clone(),
            value: w.value.clone(),
            flags: w.flags,
            lock_index,
            session: Some(session.to_string()),
            create_index,
            modify_index: index,
        };
        self.kv.replace(&w.key, Some(entry), index);
        changes.touch_key(&w.key);
        Ok(true)
    }

    fn kv_unlock(
        &mut self,
        index: u64,
        w: &KvWrite,
        session: &str,
        changes: &mut Changes,
    ) -> Result<bool, StoreError> {
        if session.is_empty() {
            return Err(StoreError::MissingSession);
        }
        let Some(e) = self.kv.get(&w.key) else {
            return Ok(false);
        };
        if e.session.as_deref() != Some(session) {
            return Ok(false);
        }
        let entry = KvEntry {
            key: w.key.clone(),
            value: w.value.clone(),
            flags: w.flags,
            lock_index: e.lock_index,
            session: None,
            create_index: e.create_index,
            modify_index: index,
        };
        self.kv.replace(&w.key, Some(entry), index);
        changes.touch_key(&w.key);
        Ok(true)
    }

    fn kv_delete(&mut self, index: u64, key: &str, changes: &mut Changes) {
        if self.kv.get(key).is_some() {
            self.kv.replace(key, None, index);
            changes.touch_key(key);
        }
    }

    /// Consul's delete-cas: true when the key is gone afterwards because of this call, or was
    /// never there.
    fn kv_delete_cas(&mut self, index: u64, key: &str, cas: u64, changes: &mut Changes) -> bool {
        match self.kv.get(key) {
            None => true,
            Some(e) if e.modify_index != cas => false,
            Some(_) => {
                self.kv_delete(index, key, changes);
                true
            }
        }
    }

    fn kv_delete_tree(&mut self, index: u64, prefix: &str, changes: &mut Changes) {
        let keys: Vec<String> = self.kv.range(prefix).map(|e| e.key.clone()).collect();
        for k in keys {
            self.kv_delete(index, &k, changes);
        }
    }

    // ---- reads ----

    /// One key and the index of that key.
    pub fn kv_get(&self, key: &str) -> (u64, Option<&KvEntry>) {
        (self.key_index(key).max(1), self.kv.get(key))
    }

    /// Every key under `prefix`, with the index of the prefix.
    pub fn kv_list<'a>(&'a self, prefix: &'a str) -> (u64, Vec<&'a KvEntry>) {
        (
            self.prefix_index(prefix).max(1),
            self.kv.range(prefix).collect(),
        )
    }

    /// Key names under `prefix`, grouped at `separator` as Consul's `?keys` does.
    pub fn kv_keys(&self, prefix: &str, separator: &str) -> (u64, Vec<String>) {
        let keys = keys_with_separator(
            self.kv.range(prefix).map(|e| e.key.as_str()),
            prefix,
            separator,
        );
        (self.prefix_index(prefix).max(1), keys)
    }

    /// The index a query on one key depends on, never below the last restore's.
    fn key_index(&self, key: &str) -> u64 {
        self.kv.key_index(key).max(self.restore_floor)
    }

    /// The index a query on a prefix depends on, never below the last restore's.
    fn prefix_index(&self, prefix: &str) -> u64 {
        self.kv.prefix_index(prefix).max(self.restore_floor)
    }

    /// Is there any tombstone at or below `index` (something for a reap to do)?
    pub fn has_tombstones_up_to(&self, index: u64) -> bool {
        self.kv.tombstones.values().any(|i| *i <= index)
    }

    /// The number of live keys.
    pub fn kv_len(&self) -> usize {
        self.kv.entries.len()
    }

    /// The index a query watching `key` depends on; never 0.
    pub fn watch_index(&self, key: &WatchKey) -> u64 {
        let i = match key {
            WatchKey::Key(k) => self.key_index(k),
            WatchKey::Prefix(p) => self.prefix_index(p),
            WatchKey::Table(Table::Kv) => self.kv_index,
            WatchKey::Table(Table::Sessions) => self.sessions_index,
            WatchKey::Table(Table::Nodes) => self.nodes_index,
            WatchKey::Table(Table::Services) => self.services_index,
            WatchKey::Table(Table::Checks) => self.checks_index,
            WatchKey::Service(name) => self.service_index(name),
            WatchKey::Node(name) => self.node_index(name),
        };
        i.max(1)
    }

    /// Drops what a snapshot does not carry (the `#[serde(skip)]` lookups), as decoding an
    /// image leaves them: tests restore such a store to prove [`Store::after_restore`] whole.
    #[cfg(test)]
    pub(crate) fn forget_derived(&mut self) {
        self.kv.held.clear();
        self.sessions = self.sessions.values().cloned().collect();
        self.lock_delays.forget_order();
        self.catalog.by_name.clear();
        self.catalog.by_id.clear();
    }

    /// Rebuilds what a snapshot does not carry. Call after deserialising one.
    pub(crate) fn after_restore(&mut self) {
        self.kv.rebuild_held();
        self.sessions.rebuild();
        self.lock_delays.rebuild();
        self.catalog.rebuild_derived();
    }

    // ---- catalog writes ----

    fn catalog_register(
        &mut self,
        index: u64,
        req: &RegisterRequest,
        now_ms: u64,
        changes: &mut Changes,
    ) -> Outcome {
        match self.catalog_apply_register(index, req, now_ms, changes) {
            Ok(()) => Outcome::Bool(true),
            Err(e) => Outcome::Rejected(e),
        }
    }

    /// Applies a registration and invalidates the sessions of every check it turned critical.
    /// A refused registration changed nothing.
    fn catalog_apply_register(
        &mut self,
        index: u64,
        req: &RegisterRequest,
        now_ms: u64,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        let critical = self.catalog.register(index, req, changes)?;
        for (node, check) in critical {
            self.destroy_sessions_on_check(index, &node, &check, now_ms, changes);
        }
        Ok(())
    }

    fn catalog_deregister(
        &mut self,
        index: u64,
        req: &DeregisterRequest,
        now_ms: u64,
        changes: &mut Changes,
    ) {
        let (removed, node_gone) = self.catalog.deregister(index, req, changes);
        for (node, check) in removed {
            self.destroy_sessions_on_check(index, &node, &check, now_ms, changes);
        }
        if node_gone {
            for id in self.sessions.on_node(&req.node) {
                self.session_destroy(index, &id, now_ms, changes);
            }
        }
    }

    /// Invalidates every session bound to a check that went critical or away (Consul's
    /// session/check link): node checks and service checks alike, on the session's node.
    fn destroy_sessions_on_check(
        &mut self,
        index: u64,
        node: &str,
        check: &str,
        now_ms: u64,
        changes: &mut Changes,
    ) {
        for id in self.sessions.on_check(node, check) {
            self.session_destroy(index, &id, now_ms, changes);
        }
    }

    /// All sessions, by ID.
    pub(crate) fn session_map(&self) -> &BTreeMap<String, Session> {
        &self.sessions
    }
}
