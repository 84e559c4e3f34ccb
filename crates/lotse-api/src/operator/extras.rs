//! What the operator endpoints remember per server beyond the server's own state, until the
//! autopilot configuration goes through Raft: the Enterprise-only autopilot fields Consul echoes
//! back, the configuration's `CreateIndex`/`ModifyIndex` (for `?cas=`), and when each Raft
//! server was first seen healthy (`StableSince`).
//!
//! Kept by the `Server` it belongs to. An entry holds a `Weak` to its server, which keeps the
//! allocation (and so the address used as the key) from being reused while the entry exists;
//! entries of dropped servers are swept on every access.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use lotse_server::Server;

/// One server's extras.
pub struct Extras {
    owner: Weak<Server>,
    pub redundancy_zone_tag: String,
    pub disable_upgrade_migration: bool,
    pub upgrade_version_tag: String,
    pub create_index: u64,
    /// Raised on every change; `?cas=` compares against it.
    pub modify_index: u64,
    stable: HashMap<String, SystemTime>,
}

impl Extras {
    /// When the server with `id` became healthy, as far as this leader has seen: the first
    /// time it was asked about while healthy; an unhealthy server starts over (and reports
    /// `now`).
    pub fn stable_since(&mut self, id: &str, healthy: bool, now: SystemTime) -> SystemTime {
        if healthy {
            *self.stable.entry(id.to_string()).or_insert(now)
        } else {
            self.stable.remove(id);
            now
        }
    }
}

static ALL: Mutex<Vec<Extras>> = Mutex::new(Vec::new());

/// Runs `f` on `server`'s extras (created on first use, with the indices at the server's
/// applied index). Holds one lock for the whole call, so a compare-and-set in `f` is atomic.
pub fn with<T>(server: &Arc<Server>, f: impl FnOnce(&mut Extras) -> T) -> T {
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|e| e.owner.strong_count() > 0);
    let at = match all
        .iter()
        .position(|e| std::ptr::eq(e.owner.as_ptr(), Arc::as_ptr(server)))
    {
        Some(i) => i,
        None => {
            let index = server.applied_index().max(1);
            all.push(Extras {
                owner: Arc::downgrade(server),
                redundancy_zone_tag: String::new(),
                disable_upgrade_migration: false,
                upgrade_version_tag: String::new(),
                create_index: index,
                modify_index: index,
                stable: HashMap::new(),
            });
            all.len() - 1
        }
    };
    f(&mut all[at])
}
