//! The agent's own services and checks: the truth anti-entropy pushes to the catalog.
//!
//! Every entry carries a sync flag and a version. A change clears the flag; anti-entropy
//! writes what is out of sync and sets the flag back only if the entry did not change again
//! meanwhile (the version still matches), so no update is ever lost between a read and a write.
//! Removed entries are remembered until their deregistration is written.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use lotse_core::catalog::{CheckStatus, HealthCheck, Service};

use crate::definition::{CheckDefinition, ServiceDefinition};

/// Where a registration came from: config files may run scripts under
/// `enable_local_script_checks`, and a reload replaces only what config files registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Remote,
    Config,
}

#[derive(Debug, Clone)]
pub struct LocalService {
    pub def: ServiceDefinition,
    pub source: Source,
    pub in_sync: bool,
    pub version: u64,
}

#[derive(Debug, Clone)]
pub struct LocalCheck {
    /// The catalog row with the current status and output.
    pub row: HealthCheck,
    /// What to run (None: maintenance checks, which nothing runs).
    pub def: Option<CheckDefinition>,
    pub source: Source,
    pub in_sync: bool,
    pub version: u64,
    /// When the check last turned critical (for `deregister_critical_service_after`).
    pub critical_since: Option<Instant>,
    /// An output-only change waits until then before it is synced (`check_update_interval`).
    pub output_deferred_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct LocalState {
    pub services: BTreeMap<String, LocalService>,
    pub checks: BTreeMap<String, LocalCheck>,
    pub deleted_services: BTreeSet<String>,
    pub deleted_checks: BTreeSet<String>,
    /// Does the catalog's record of this node match the agent's?
    pub node_in_sync: bool,
    /// Moves on every change: `?hash` blocking on `/v1/agent/service/:id` waits on it.
    pub generation: u64,
    next_version: u64,
}

impl LocalState {
    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.generation += 1;
        self.next_version
    }

    pub fn add_service(&mut self, def: ServiceDefinition, source: Source) {
        let id = def.service.id.clone();
        let version = self.bump();
        self.deleted_services.remove(&id);
        self.services.insert(
            id,
            LocalService {
                def,
                source,
                in_sync: false,
                version,
            },
        );
    }

    /// Removes a service and its checks. False if there was none.
    pub fn remove_service(&mut self, id: &str) -> bool {
        if self.services.remove(id).is_none() {
            return false;
        }
        self.bump();
        self.deleted_services.insert(id.to_string());
        let checks: Vec<String> = self
            .checks
            .values()
            .filter(|c| c.row.service_id == id)
            .map(|c| c.row.check_id.clone())
            .collect();
        for c in checks {
            // The service's deregistration takes its checks with it in the catalog.
            self.checks.remove(&c);
        }
        true
    }

    /// Adds or replaces a check. A re-registered check keeps its status and output, as Consul.
    pub fn add_check(
        &mut self,
        mut row: HealthCheck,
        def: Option<CheckDefinition>,
        source: Source,
    ) {
        let id = row.check_id.clone();
        let mut critical_since = None;
        if let Some(old) = self.checks.get(&id) {
            row.status = old.row.status;
            row.output = old.row.output.clone();
            critical_since = old.critical_since;
        }
        if row.status == CheckStatus::Critical && critical_since.is_none() {
            critical_since = Some(Instant::now());
        }
        let version = self.bump();
        self.deleted_checks.remove(&id);
        self.checks.insert(
            id,
            LocalCheck {
                row,
                def,
                source,
                in_sync: false,
                version,
                critical_since,
                output_deferred_until: None,
            },
        );
    }

    pub fn remove_check(&mut self, id: &str) -> bool {
        if self.checks.remove(id).is_none() {
            return false;
        }
        self.bump();
        self.deleted_checks.insert(id.to_string());
        true
    }

    /// Records a check result. A status change is synced at once; an output-only change waits
    /// until `defer_until` (None: sync at once). Returns true if anything changed.
    pub fn update_check(
        &mut self,
        id: &str,
        status: CheckStatus,
        output: String,
        defer_until: Option<Instant>,
    ) -> bool {
        let Some(c) = self.checks.get_mut(id) else {
            return false;
        };
        if c.row.status == status && c.row.output == output {
            return false;
        }
        let status_changed = c.row.status != status;
        c.row.status = status;
        c.row.output = output;
        if status_changed {
            c.critical_since = (status == CheckStatus::Critical).then(Instant::now);
            c.output_deferred_until = None;
        } else if c.output_deferred_until.is_none() {
            c.output_deferred_until = defer_until;
        }
        c.in_sync = false;
        self.next_version += 1;
        self.generation += 1;
        c.version = self.next_version;
        true
    }

    /// Marks a check in sync if it has not changed since version `version` was written.
    pub fn mark_check_synced(&mut self, id: &str, version: u64) {
        if let Some(c) = self.checks.get_mut(id).filter(|c| c.version == version) {
            c.in_sync = true;
            c.output_deferred_until = None;
        }
    }

    /// When the first deferred output change falls due.
    pub fn earliest_deferral(&self) -> Option<Instant> {
        self.checks
            .values()
            .filter(|c| !c.in_sync)
            .filter_map(|c| c.output_deferred_until)
            .min()
    }

    /// The service rows, as `/v1/agent/services` lists them.
    pub fn service_rows(&self) -> impl Iterator<Item = &Service> {
        self.services.values().map(|s| &s.def.service)
    }

    /// Checks bound to `service_id` (and, with `with_node`, the node-level ones).
    pub fn checks_of(&self, service_id: &str, with_node: bool) -> Vec<&HealthCheck> {
        self.checks
            .values()
            .map(|c| &c.row)
            .filter(|c| c.service_id == service_id || (with_node && c.service_id.is_empty()))
            .collect()
    }

    /// Services with a check critical for longer than its `deregister_critical_service_after`.
    pub fn services_to_reap(&self, now: Instant) -> Vec<String> {
        let mut out: Vec<String> = self
            .checks
            .values()
            .filter(|c| !c.row.service_id.is_empty())
            .filter(|c| {
                let after = c
                    .def
                    .as_ref()
                    .and_then(|d| d.deregister_critical_service_after);
                match (after, c.critical_since) {
                    (Some(after), Some(since)) => now.saturating_duration_since(since) > after,
                    _ => false,
                }
            })
            .map(|c| c.row.service_id.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests;
