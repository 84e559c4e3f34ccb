//! Replacing the whole store with a saved image ([`Command::Restore`](crate::Command::Restore),
//! Consul's snapshot restore), and reading images of the previous snapshot format.
//!
//! The image's records keep their own indexes (a restored key's `ModifyIndex` is the one it
//! was saved with, so a CAS against it still works), but every index a *query* reports is
//! raised to at least the restore's log index (`restore_floor`). Otherwise a blocking query
//! parked at index N before the restore would see a smaller index afterwards and sleep on
//! through a change that replaced everything, and `X-Consul-Index` would go backwards.

use serde::Deserialize;

use super::{Catalog, KvTable, LockDelays, SessionTable, Store};
use crate::watch::{Changes, Table};

impl Store {
    /// Replaces this store with `image`, as applied at log `index`. The caller (the state
    /// machine) wakes every watcher: anything may have changed.
    pub(crate) fn restore(&mut self, index: u64, image: &Store, changes: &mut Changes) {
        let mut next = image.clone();
        // The image may come straight off the wire, without its derived lookups.
        next.after_restore();
        next.clamp_indexes(index);
        // Exactly the entry's index: a larger one (an image from a cluster further along)
        // would make `apply` skip the entries that follow as already applied.
        next.last_index = index;
        next.kv_index = index;
        next.sessions_index = index;
        next.nodes_index = index;
        next.services_index = index;
        next.checks_index = index;
        next.restore_floor = index.max(self.restore_floor);
        *self = next;
        for t in [
            Table::Kv,
            Table::Sessions,
            Table::Nodes,
            Table::Services,
            Table::Checks,
        ] {
            changes.touch_table(t);
        }
    }
}

impl Store {
    /// Lowers every index above `max` to `max`. An image saved by a cluster further along
    /// than this log (a restore into a new cluster) would otherwise hold indexes that later
    /// writes, at smaller log indexes, could not move past: their watchers would sleep
    /// through them. (hashicorp/raft jumps its log index past the snapshot's instead; openraft
    /// cannot.) An image from this same cluster's past is below `max` and kept as it is.
    fn clamp_indexes(&mut self, max: u64) {
        let clamp = |i: &mut u64| *i = (*i).min(max);
        for e in self.kv.entries.values_mut() {
            clamp(&mut e.create_index);
            clamp(&mut e.modify_index);
        }
        for t in self.kv.tombstones.values_mut() {
            clamp(t);
        }
        clamp(&mut self.kv.tombstone_floor);
        let above = |c: u64, m: u64| c > max || m > max;
        let sessions: Vec<_> = self
            .sessions
            .values()
            .filter(|s| above(s.create_index, s.modify_index))
            .cloned()
            .collect();
        for mut s in sessions {
            clamp(&mut s.create_index);
            clamp(&mut s.modify_index);
            self.sessions.insert(s);
        }
        let cat = &mut self.catalog;
        let nodes: Vec<_> = cat
            .nodes
            .iter()
            .filter(|(_, n)| above(n.create_index, n.modify_index))
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        for (k, mut n) in nodes {
            clamp(&mut n.create_index);
            clamp(&mut n.modify_index);
            cat.nodes.insert(k, n);
        }
        let services: Vec<_> = cat
            .services
            .iter()
            .filter(|(_, s)| above(s.create_index, s.modify_index))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (k, mut s) in services {
            clamp(&mut s.create_index);
            clamp(&mut s.modify_index);
            cat.services.insert(k, s);
        }
        let checks: Vec<_> = cat
            .checks
            .iter()
            .filter(|(_, c)| above(c.create_index, c.modify_index))
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        for (k, mut c) in checks {
            clamp(&mut c.create_index);
            clamp(&mut c.modify_index);
            cat.checks.insert(k, c);
        }
        for map in [&mut cat.service_indexes, &mut cat.node_indexes] {
            let high: Vec<String> = map
                .iter()
                .filter(|(_, i)| **i > max)
                .map(|(k, _)| k.clone())
                .collect();
            for k in high {
                map.insert(k, max);
            }
        }
    }
}

/// A store as snapshot format 2 laid it out: format 3 only appended `restore_floor`.
#[derive(Debug, Deserialize)]
pub struct StoreV2 {
    kv: KvTable,
    sessions: SessionTable,
    catalog: Catalog,
    lock_delays: LockDelays,
    last_index: u64,
    kv_index: u64,
    sessions_index: u64,
    nodes_index: u64,
    services_index: u64,
    checks_index: u64,
}

impl From<StoreV2> for Store {
    fn from(v: StoreV2) -> Store {
        Store {
            kv: v.kv,
            sessions: v.sessions,
            catalog: v.catalog,
            lock_delays: v.lock_delays,
            last_index: v.last_index,
            kv_index: v.kv_index,
            sessions_index: v.sessions_index,
            nodes_index: v.nodes_index,
            services_index: v.services_index,
            checks_index: v.checks_index,
            restore_floor: 0,
        }
    }
}
