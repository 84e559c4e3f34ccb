//! The KV table: entries, tombstones and the index of locks each session holds, changed only
//! through [`KvTable::replace`] so the three stay consistent and every change can be undone.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::kv::KvEntry;

/// The previous state of one key, to undo a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undo {
    key: String,
    entry: Option<KvEntry>,
    tombstone: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KvTable {
    pub(crate) entries: BTreeMap<String, KvEntry>,
    /// Deleted keys and the index that deleted them, so that a prefix or missing-key query's
    /// index moves on delete (and never goes backwards).
    pub(crate) tombstones: BTreeMap<String, u64>,
    /// The highest tombstone index that was reaped: indexes never fall below it.
    pub(crate) tombstone_floor: u64,
    /// Derived: which keys each session holds. Rebuilt on restore, not serialised.
    #[serde(skip)]
    pub(crate) held: BTreeMap<String, BTreeSet<String>>,
    /// While a transaction runs: how to undo each change it made.
    #[serde(skip)]
    journal: Option<Vec<Undo>>,
}

impl KvTable {
    pub(crate) fn get(&self, key: &str) -> Option<&KvEntry> {
        self.entries.get(key)
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub(crate) fn range<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a KvEntry> + 'a {
        self.entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e)
    }

    fn tombstones_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = u64> + 'a {
        self.tombstones
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
    }

    /// The index a query on one key depends on.
    pub(crate) fn key_index(&self, key: &str) -> u64 {
        match self.entries.get(key) {
            Some(e) => e.modify_index,
            None => self
                .tombstones
                .get(key)
                .copied()
                .unwrap_or(0)
                .max(self.tombstone_floor),
        }
    }

    /// The index a query on a prefix depends on: the newest write or delete under it.
    pub(crate) fn prefix_index(&self, prefix: &str) -> u64 {
        let live = self
            .range(prefix)
            .map(|e| e.modify_index)
            .max()
            .unwrap_or(0);
        let dead = self.tombstones_under(prefix).max().unwrap_or(0);
        live.max(dead).max(self.tombstone_floor)
    }

    /// Starts recording undo information (a transaction begins).
    pub(crate) fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Keeps the transaction's changes.
    pub(crate) fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every change since [`KvTable::begin`], newest first.
    pub(crate) fn rollback(&mut self) {
        for undo in self.journal.take().unwrap_or_default().into_iter().rev() {
            self.undo(undo);
        }
    }

    /// Sets `key` to `entry` (or deletes it, leaving a tombstone at `index`).
    pub(crate) fn replace(&mut self, key: &str, entry: Option<KvEntry>, index: u64) {
        let old_tomb = self.tombstones.get(key).copied();
        let old = match entry {
            Some(e) => {
                self.tombstones.remove(key);
                self.index_lock(&e);
                self.entries.insert(key.to_string(), e)
            }
            None => {
                let old = self.entries.remove(key);
                if old.is_some() {
                    self.tombstones.insert(key.to_string(), index);
                }
                old
            }
        };
        if let Some(o) = &old {
            self.unindex_lock(o);
        }
        if let Some(journal) = &mut self.journal {
            journal.push(Undo {
                key: key.to_string(),
                entry: old,
                tombstone: old_tomb,
            });
        }
    }

    /// Puts a key back as an [`Undo`] recorded it.
    fn undo(&mut self, undo: Undo) {
        let current = match undo.entry {
            Some(e) => {
                self.index_lock(&e);
                self.entries.insert(undo.key.clone(), e)
            }
            None => self.entries.remove(&undo.key),
        };
        if let Some(c) = &current {
            self.unindex_lock(c);
        }
        match undo.tombstone {
            Some(t) => self.tombstones.insert(undo.key, t),
            None => self.tombstones.remove(&undo.key),
        };
    }

    fn index_lock(&mut self, e: &KvEntry) {
        if let Some(s) = &e.session {
            self.held
                .entry(s.clone())
                .or_default()
                .insert(e.key.clone());
        }
    }

    /// Forgets that `old`'s session held the key, unless `now` (the key's new state) still has
    /// the same holder.
    fn unindex_lock(&mut self, old: &KvEntry) {
        let Some(s) = &old.session else { return };
        let now = self.entries.get(&old.key).and_then(|n| n.session.as_ref());
        if now == Some(s) {
            return;
        }
        if let Some(keys) = self.held.get_mut(s) {
            keys.remove(&old.key);
            if keys.is_empty() {
                self.held.remove(s);
            }
        }
    }

    /// Keys held by `session`.
    pub(crate) fn held_by(&self, session: &str) -> Vec<String> {
        self.held
            .get(session)
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Recomputes the derived lock index after loading a snapshot.
    pub(crate) fn rebuild_held(&mut self) {
        let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in self.entries.values() {
            if let Some(s) = &e.session {
                held.entry(s.clone()).or_default().insert(e.key.clone());
            }
        }
        self.held = held;
    }

    /// Drops tombstones at or below `up_to`, raising the floor so indexes never go backwards.
    pub(crate) fn reap(&mut self, up_to: u64) -> bool {
        let before = self.tombstones.len();
        self.tombstones.retain(|_, i| *i > up_to);
        let reaped = self.tombstones.len() != before;
        if reaped {
            self.tombstone_floor = self.tombstone_floor.max(up_to);
        }
        reaped
    }
}
