//! The sessions table, with the lookups that invalidation needs: the sessions on each node
//! and the sessions bound to each check. A catalog write that turns a check critical or
//! removes it, or removes a node, finds the sessions to destroy in these instead of scanning
//! every session.
//!
//! Changed only through [`SessionTable::insert`] and [`SessionTable::remove`] (and the undo of
//! a failed transaction), which keep the lookups true; they are not serialised and are
//! rebuilt after a restore.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use super::catalog::NodeKey;
use super::journal::{Journal, JournaledMap};
use crate::session::Session;

/// Serialised exactly as the map of sessions by ID.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct SessionTable {
    sessions: JournaledMap<String, Session>,
    /// Derived: session IDs by node.
    #[serde(skip)]
    on_node: BTreeMap<String, BTreeSet<String>>,
    /// Derived: session IDs by (node, check) they are bound to, node and service checks alike.
    #[serde(skip)]
    on_check: BTreeMap<NodeKey, BTreeSet<String>>,
}

impl Deref for SessionTable {
    type Target = BTreeMap<String, Session>;
    fn deref(&self) -> &BTreeMap<String, Session> {
        &self.sessions
    }
}

/// The checks a session is bound to, on its node.
fn bound_checks(s: &Session) -> impl Iterator<Item = NodeKey> + '_ {
    let service = s.service_checks.iter().map(|c| &c.id);
    s.node_checks
        .iter()
        .chain(service)
        .map(|c| (s.node.clone(), c.clone()))
}

fn forget<K: Ord>(map: &mut BTreeMap<K, BTreeSet<String>>, key: K, id: &str) {
    if let Some(set) = map.get_mut(&key) {
        set.remove(id);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}

/// Keeps the lookups true when the session `id` goes from `was` to `now`.
fn reindex(
    on_node: &mut BTreeMap<String, BTreeSet<String>>,
    on_check: &mut BTreeMap<NodeKey, BTreeSet<String>>,
    id: &str,
    was: Option<&Session>,
    now: Option<&Session>,
) {
    if let Some(w) = was {
        forget(on_node, w.node.clone(), id);
        for key in bound_checks(w) {
            forget(on_check, key, id);
        }
    }
    if let Some(n) = now {
        on_node
            .entry(n.node.clone())
            .or_default()
            .insert(id.to_string());
        for key in bound_checks(n) {
            on_check.entry(key).or_default().insert(id.to_string());
        }
    }
}

/// The sessions alone, without their lookups (as a decoded image holds them).
impl FromIterator<Session> for SessionTable {
    fn from_iter<I: IntoIterator<Item = Session>>(iter: I) -> Self {
        SessionTable {
            sessions: iter.into_iter().map(|s| (s.id.clone(), s)).collect(),
            ..SessionTable::default()
        }
    }
}

impl SessionTable {
    pub(crate) fn insert(&mut self, s: Session) {
        let id = s.id.clone();
        let old = self.sessions.insert(id.clone(), s);
        let now = self.sessions.get(&id);
        reindex(
            &mut self.on_node,
            &mut self.on_check,
            &id,
            old.as_ref(),
            now,
        );
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Session> {
        let old = self.sessions.remove(&id.to_string())?;
        reindex(&mut self.on_node, &mut self.on_check, id, Some(&old), None);
        Some(old)
    }

    /// IDs of the sessions on `node`.
    pub(crate) fn on_node(&self, node: &str) -> Vec<String> {
        self.on_node
            .get(node)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// IDs of the sessions bound to `check` on `node`.
    pub(crate) fn on_check(&self, node: &str, check: &str) -> Vec<String> {
        self.on_check
            .get(&(node.to_string(), check.to_string()))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Recomputes the lookups after loading a snapshot.
    pub(crate) fn rebuild(&mut self) {
        self.on_node.clear();
        self.on_check.clear();
        for (id, s) in self.sessions.iter() {
            reindex(&mut self.on_node, &mut self.on_check, id, None, Some(s));
        }
    }

    pub(crate) fn begin(&mut self) {
        self.sessions.begin();
    }

    pub(crate) fn commit(&mut self) {
        self.sessions.commit();
    }

    /// Undoes every change since [`SessionTable::begin`], lookups included.
    pub(crate) fn rollback(&mut self) {
        let SessionTable {
            sessions,
            on_node,
            on_check,
        } = self;
        sessions.rollback(|id, was, now| reindex(on_node, on_check, id, was, now));
    }
}
