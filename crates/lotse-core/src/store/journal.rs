//! [`JournaledMap`]: a `BTreeMap` whose every change can be recorded while a transaction runs
//! and undone if it fails, so a rollback costs what the transaction changed, not the size of
//! the table (the catalog tables, sessions and lock-delays use it; the KV table keeps its own
//! journal because its tombstones and lock index move together with each key).
//!
//! Reads go through `Deref` to the map; writes only through [`JournaledMap::insert`] and
//! [`JournaledMap::remove`], so none can escape the journal.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Deref;

/// Serialised exactly as the map alone: the journal only exists while a transaction runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "K: Serialize, V: Serialize",
        deserialize = "K: Ord + Deserialize<'de>, V: Deserialize<'de>"
    )
)]
pub(crate) struct JournaledMap<K: Ord, V> {
    map: BTreeMap<K, V>,
    /// While a transaction runs: each changed key and what it held before, oldest first.
    #[serde(skip)]
    journal: Option<Vec<(K, Option<V>)>>,
}

impl<K: Ord, V> Default for JournaledMap<K, V> {
    fn default() -> Self {
        JournaledMap {
            map: BTreeMap::new(),
            journal: None,
        }
    }
}

impl<K: Ord, V> Deref for JournaledMap<K, V> {
    type Target = BTreeMap<K, V>;
    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<K: Ord + Clone, V: Clone> JournaledMap<K, V> {
    /// Sets `key`, returning what it held.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let Some(journal) = &mut self.journal else {
            return self.map.insert(key, value);
        };
        let old = self.map.insert(key.clone(), value);
        journal.push((key, old.clone()));
        old
    }

    /// Removes `key`, returning what it held.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.map.remove(key);
        if let (Some(journal), Some(_)) = (&mut self.journal, &old) {
            journal.push((key.clone(), old.clone()));
        }
        old
    }

    /// Undoes every change since [`Journal::begin`], newest first, telling `undone` about
    /// each (the key, what it held, what it holds again) so derived lookups can follow.
    pub(crate) fn rollback(&mut self, mut undone: impl FnMut(&K, Option<&V>, Option<&V>)) {
        for (key, old) in self.journal.take().unwrap_or_default().into_iter().rev() {
            let was = match &old {
                Some(v) => self.map.insert(key.clone(), v.clone()),
                None => self.map.remove(&key),
            };
            undone(&key, was.as_ref(), old.as_ref());
        }
    }
}

/// Starting and keeping a transaction's changes, whatever the table's types (undoing one
/// needs them: see [`JournaledMap::rollback`]).
pub(crate) trait Journal {
    /// Starts recording (a transaction begins).
    fn begin(&mut self);
    /// Keeps the changes made since [`Journal::begin`] and stops recording.
    fn commit(&mut self);
}

impl<K: Ord, V> Journal for JournaledMap<K, V> {
    fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    fn commit(&mut self) {
        self.journal = None;
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for JournaledMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        JournaledMap {
            map: iter.into_iter().collect(),
            journal: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_every_change_and_reports_it() {
        let mut m: JournaledMap<&str, u32> = [("a", 1), ("b", 2), ("c", 3)].into_iter().collect();
        let before = m.clone();
        m.begin();
        m.insert("a", 10);
        m.insert("a", 11);
        m.remove(&"b");
        m.remove(&"missing");
        m.insert("d", 4);
        m.remove(&"c");
        let mut seen = Vec::new();
        m.rollback(|k, was, now| seen.push((*k, was.copied(), now.copied())));
        assert_eq!(m, before);
        assert_eq!(
            seen,
            [
                ("c", None, Some(3)),
                ("d", Some(4), None),
                ("b", None, Some(2)),
                ("a", Some(11), Some(10)),
                ("a", Some(10), Some(1)),
            ]
        );
    }

    #[test]
    fn commit_keeps_the_changes_and_stops_recording() {
        let mut m: JournaledMap<&str, u32> = JournaledMap::default();
        m.begin();
        m.insert("a", 1);
        m.commit();
        m.insert("b", 2);
        m.rollback(|_, _, _| panic!("nothing to undo"));
        assert_eq!(m.len(), 2);
    }
}
