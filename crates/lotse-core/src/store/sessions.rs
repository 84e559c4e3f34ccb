//! Sessions: creation (validated against nodes and checks), invalidation (releasing or deleting
//! the keys held, starting their lock-delay), and reads.

use super::{Changes, Store, StoreError};
use crate::catalog::CheckStatus;
use crate::node::SERF_HEALTH;
use crate::session::{Session, SessionBehavior};
use crate::watch::Table;

/// Consul caps lock-delay at 60 seconds, whatever the session asked for.
pub const MAX_LOCK_DELAY_MS: u64 = 60_000;

impl Store {
    pub(super) fn session_create(
        &mut self,
        index: u64,
        s: &Session,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        if self.sessions.contains_key(&s.id) {
            return Err(StoreError::SessionExists);
        }
        if !self.catalog.nodes.contains_key(&s.node) {
            return Err(StoreError::MissingNode);
        }
        let service_checks = s.service_checks.iter().map(|c| &c.id);
        for check in s.node_checks.iter().chain(service_checks) {
            match self.check(&s.node, check) {
                None => return Err(StoreError::MissingCheck(check.clone())),
                Some(c) if c.status == CheckStatus::Critical => {
                    return Err(StoreError::CheckCritical(
                        check.clone(),
                        c.status.as_str().into(),
                    ))
                }
                Some(_) => {}
            }
        }
        let mut s = s.clone();
        s.create_index = index;
        s.modify_index = index;
        self.sessions.insert(s);
        changes.touch_table(Table::Sessions);
        Ok(())
    }

    /// Invalidates a session. Returns true (Consul answers `true` even for an unknown ID).
    pub(super) fn session_destroy(
        &mut self,
        index: u64,
        id: &str,
        now_ms: u64,
        changes: &mut Changes,
    ) -> bool {
        let Some(s) = self.sessions.remove(id) else {
            return true;
        };
        changes.touch_table(Table::Sessions);
        let delay_ms = (s.lock_delay_ns / 1_000_000).min(MAX_LOCK_DELAY_MS);
        for key in self.kv.held_by(id) {
            if delay_ms > 0 {
                self.lock_delays
                    .start(&key, now_ms.saturating_add(delay_ms));
            }
            match s.behavior {
                SessionBehavior::Release => {
                    if let Some(e) = self.kv.get(&key) {
                        let mut e = e.clone();
                        e.session = None;
                        e.modify_index = index;
                        self.kv.replace(&key, Some(e), index);
                    }
                }
                SessionBehavior::Delete => {
                    self.kv.replace(&key, None, index);
                }
            }
            changes.touch_key(&key);
        }
        // Expired delays are dropped here, where time moves forward deterministically.
        self.lock_delays.expire(now_ms);
        true
    }

    pub fn session_get(&self, id: &str) -> (u64, Option<&Session>) {
        (self.sessions_index.max(1), self.sessions.get(id))
    }

    pub fn session_list(&self) -> (u64, Vec<&Session>) {
        (self.sessions_index.max(1), self.sessions.values().collect())
    }

    /// How many sessions exist.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn session_list_node(&self, node: &str) -> (u64, Vec<&Session>) {
        let ids = self.sessions.on_node(node);
        let list = ids.iter().filter_map(|id| self.sessions.get(id)).collect();
        (self.sessions_index.max(1), list)
    }

    /// Every session's ID and TTL, for the leader's expiry timers.
    pub fn session_ttls(&self) -> Vec<(String, String)> {
        self.session_map()
            .values()
            .filter(|s| !s.ttl.is_empty())
            .map(|s| (s.id.clone(), s.ttl.clone()))
            .collect()
    }

    /// Sessions bound to `check` on `node` (as a node check or a service check): they die
    /// when it turns critical or goes away. An empty `check` means the node's serfHealth.
    pub fn sessions_on_check(&self, node: &str, check: &str) -> Vec<String> {
        let check = if check.is_empty() { SERF_HEALTH } else { check };
        self.sessions.on_check(node, check)
    }
}
