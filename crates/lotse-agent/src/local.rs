//! The agent's own services and checks: the truth anti-entropy pushes to the catalog.
//!
//! Every entry carries a sync flag and a version. A change clears the flag; anti-entropy
//! writes what is out of sync and sets the flag back only if the entry did not change again
//! meanwhile (the version still matches), so no update is ever lost between a read and a write.
//! Removed entries are remembered until their deregistration is written.
//!
//! A check also carries its `registration`: the version it was (re-)registered with. A check
//! runner reports under the registration it was started for, and a report whose registration
//! is not the check's current one (the runner of a replaced or removed check, still finishing
//! a probe) is dropped: a removed check is never resurrected, a replaced one never shows the
//! old definition's result.
//!
//! Anti-entropy runs after every registration, so what it and a registration touch must cost
//! O(what changed), not O(every local entry). The maps are therefore private, and every edit
//! goes through a method that keeps three indexes in step with them:
//!
//! * `dirty_services` / `dirty_checks`: exactly the IDs whose entry has `in_sync == false`;
//! * `checks_by_service`: check IDs by the `service_id` of their row (`""` for node checks);
//! * `deferrals`: `(output_deferred_until, check ID)` for each check with a deferral.
//!
//! Outside this module the maps are read-only (`services()`, `checks()`), so nothing else can
//! move an `in_sync` flag, a deferral or a check's service without the indexes following.
//!
//! Nothing here reads a clock: the caller passes `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lotse_core::catalog::{CheckStatus, HealthCheck, Service};
use tokio::time::Instant;

use crate::definition::{CheckDefinition, CheckKind, ServiceDefinition};

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
    /// The version the check was registered with; its runner reports under it.
    pub registration: u64,
    /// When the check last turned critical (for `deregister_critical_service_after`).
    pub critical_since: Option<Instant>,
    /// An output-only change is synced then (`check_update_interval`); the check stays
    /// marked in sync until that moment, as Consul's deferred check does.
    pub output_deferred_until: Option<Instant>,
    /// TTL checks: when the check turns critical unless a report comes first (None: expired,
    /// waiting for the next report).
    pub ttl_deadline: Option<Instant>,
}

/// What a TTL check's runner should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlNext {
    /// The check is gone or was registered again: this runner is done.
    Stop,
    /// Sleep until then (a report may move it).
    Until(Instant),
    /// Expired: nothing happens until the next report.
    AwaitReport,
}

#[derive(Debug, Default)]
pub struct LocalState {
    services: BTreeMap<String, LocalService>,
    checks: BTreeMap<String, LocalCheck>,
    /// IDs of the services with `in_sync == false`.
    dirty_services: BTreeSet<String>,
    /// IDs of the checks with `in_sync == false`.
    dirty_checks: BTreeSet<String>,
    /// Check IDs by their row's `service_id` (`""`: node-level); no empty sets.
    checks_by_service: BTreeMap<String, BTreeSet<String>>,
    /// `(output_deferred_until, check ID)` of every check with a deferred output.
    deferrals: BTreeSet<(Instant, String)>,
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

    /// The local services, by ID (read-only: edits go through the methods that keep the
    /// indexes).
    pub fn services(&self) -> &BTreeMap<String, LocalService> {
        &self.services
    }

    /// The local checks, by ID (read-only, as [`Self::services`]).
    pub fn checks(&self) -> &BTreeMap<String, LocalCheck> {
        &self.checks
    }

    /// IDs of the services anti-entropy must write, in ID order.
    pub fn dirty_services(&self) -> &BTreeSet<String> {
        &self.dirty_services
    }

    /// IDs of the checks anti-entropy must write, in ID order.
    pub fn dirty_checks(&self) -> &BTreeSet<String> {
        &self.dirty_checks
    }

    /// IDs of the checks whose row names `service_id` (`""`: the node-level ones), in ID
    /// order. The service need not be a local one.
    pub fn check_ids_of<'a>(&'a self, service_id: &str) -> impl Iterator<Item = &'a String> {
        self.checks_by_service.get(service_id).into_iter().flatten()
    }

    /// Marks a service out of sync (the catalog lost it or differs); false if there is no
    /// such service.
    pub fn mark_service_out_of_sync(&mut self, id: &str) -> bool {
        let Some(s) = self.services.get_mut(id) else {
            return false;
        };
        s.in_sync = false;
        self.dirty_services.insert(id.to_string());
        true
    }

    /// Marks a check out of sync (the catalog's row differs); false if there is no such check.
    /// A deferred output stays deferred: the write that follows carries it anyway.
    pub fn mark_check_out_of_sync(&mut self, id: &str) -> bool {
        let Some(c) = self.checks.get_mut(id) else {
            return false;
        };
        c.in_sync = false;
        self.dirty_checks.insert(id.to_string());
        true
    }

    pub fn add_service(&mut self, def: ServiceDefinition, source: Source) {
        let id = def.service.id.clone();
        let version = self.bump();
        self.deleted_services.remove(&id);
        self.refresh_check_rows(&def.service);
        self.dirty_services.insert(id.clone());
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

    /// A service's checks carry its name and tags, as the catalog's do (the store fills them
    /// from the service whatever the request says, so a stale copy here would look like drift
    /// to every full sync).
    fn refresh_check_rows(&mut self, service: &Service) {
        let Some(ids) = self.checks_by_service.get(&service.id) else {
            return;
        };
        for id in ids {
            let Some(c) = self.checks.get_mut(id) else {
                continue;
            };
            let row = &mut c.row;
            if row.service_name != service.name || row.service_tags != service.tags {
                row.service_name = service.name.clone();
                row.service_tags = service.tags.clone();
            }
        }
    }

    /// Takes the catalog's tags for a service with `EnableTagOverride` (Consul: the catalog's
    /// tags win). Nothing else changes; the service is in sync again if that was all.
    pub fn adopt_remote_tags(&mut self, id: &str, tags: &[String]) {
        let Some(s) = self.services.get_mut(id) else {
            return;
        };
        if s.def.service.tags == tags {
            return;
        }
        s.def.service.tags = tags.to_vec();
        let service = s.def.service.clone();
        self.generation += 1;
        self.refresh_check_rows(&service);
    }

    /// Removes a service and its checks; returns the IDs of the checks that went with it, or
    /// None if there was no such service.
    pub fn remove_service(&mut self, id: &str) -> Option<Vec<String>> {
        self.services.remove(id)?;
        self.dirty_services.remove(id);
        self.bump();
        self.deleted_services.insert(id.to_string());
        let checks: Vec<String> = self
            .checks_by_service
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for c in &checks {
            // The service's deregistration takes its checks with it in the catalog.
            if let Some(gone) = self.checks.remove(c) {
                self.unindex_check(c, &gone);
            }
        }
        Some(checks)
    }

    /// Drops check `id` (removed, or about to be replaced by `add_check`) from the indexes.
    fn unindex_check(&mut self, id: &str, c: &LocalCheck) {
        self.dirty_checks.remove(id);
        if let Some(due) = c.output_deferred_until {
            self.deferrals.remove(&(due, id.to_string()));
        }
        if let Some(ids) = self.checks_by_service.get_mut(&c.row.service_id) {
            ids.remove(id);
            if ids.is_empty() {
                self.checks_by_service.remove(&c.row.service_id);
            }
        }
    }

    /// Adds or replaces a check; returns its registration. A re-registered check keeps its
    /// status and output, as Consul; a TTL check's clock starts again.
    pub fn add_check(
        &mut self,
        mut row: HealthCheck,
        def: Option<CheckDefinition>,
        source: Source,
        now: Instant,
    ) -> u64 {
        let id = row.check_id.clone();
        let mut critical_since = None;
        if let Some(old) = self.checks.remove(&id) {
            row.status = old.row.status;
            row.output = old.row.output.clone();
            critical_since = old.critical_since;
            // Re-indexed below, possibly under another service.
            self.unindex_check(&id, &old);
        }
        if let Some(s) = self.services.get(&row.service_id) {
            row.service_name = s.def.service.name.clone();
            row.service_tags = s.def.service.tags.clone();
        }
        if row.status == CheckStatus::Critical && critical_since.is_none() {
            critical_since = Some(now);
        }
        let ttl_deadline = def
            .as_ref()
            .filter(|d| d.kind == CheckKind::Ttl)
            .map(|d| later(now, d.ttl));
        let version = self.bump();
        self.deleted_checks.remove(&id);
        self.dirty_checks.insert(id.clone());
        self.checks_by_service
            .entry(row.service_id.clone())
            .or_default()
            .insert(id.clone());
        self.checks.insert(
            id,
            LocalCheck {
                row,
                def,
                source,
                in_sync: false,
                version,
                registration: version,
                critical_since,
                output_deferred_until: None,
                ttl_deadline,
            },
        );
        version
    }

    pub fn remove_check(&mut self, id: &str) -> bool {
        let Some(gone) = self.checks.remove(id) else {
            return false;
        };
        self.unindex_check(id, &gone);
        self.bump();
        self.deleted_checks.insert(id.to_string());
        true
    }

    /// Records a check result, if the check is still the registration `from` names (None:
    /// whatever is registered now). A status change is synced at once; an output-only change
    /// waits until `defer_until` (None: synced at once). Returns true if anything changed.
    pub fn update_check(
        &mut self,
        id: &str,
        from: Option<u64>,
        status: CheckStatus,
        output: String,
        defer_until: Option<Instant>,
        now: Instant,
    ) -> bool {
        let Some(c) = self.checks.get_mut(id) else {
            return false;
        };
        if from.is_some_and(|r| r != c.registration) {
            return false;
        }
        if c.row.status == status && c.row.output == output {
            return false;
        }
        let status_changed = c.row.status != status;
        c.row.status = status;
        c.row.output = output;
        match defer_until {
            Some(until) if !status_changed => {
                // Output only: the catalog learns it when the deferral falls due (or with the
                // next write of the check, whichever comes first).
                if c.output_deferred_until.is_none() {
                    c.output_deferred_until = Some(until);
                    self.deferrals.insert((until, id.to_string()));
                }
            }
            _ => {
                if status_changed {
                    c.critical_since = (status == CheckStatus::Critical).then_some(now);
                }
                if let Some(due) = c.output_deferred_until.take() {
                    self.deferrals.remove(&(due, id.to_string()));
                }
                c.in_sync = false;
                self.dirty_checks.insert(id.to_string());
            }
        }
        self.next_version += 1;
        self.generation += 1;
        c.version = self.next_version;
        true
    }

    /// A TTL check's report: the result, and the clock starts again. Returns whether the
    /// result changed anything, or None if `id` is not a TTL check.
    pub fn ttl_report(
        &mut self,
        id: &str,
        status: CheckStatus,
        output: String,
        now: Instant,
    ) -> Option<bool> {
        let c = self.checks.get_mut(id)?;
        let ttl = c.def.as_ref().filter(|d| d.kind == CheckKind::Ttl)?.ttl;
        c.ttl_deadline = Some(later(now, ttl));
        Some(self.update_check(id, None, status, output, None, now))
    }

    /// Expires a TTL check whose deadline has passed, if it is still registration `from`;
    /// says what its runner does next. The deadline is read and acted on under the same lock
    /// as [`Self::ttl_report`] moves it, so a report that lands just before the expiry wins,
    /// and one that lands just after is never overwritten by it.
    pub fn expire_ttl(&mut self, id: &str, from: u64, now: Instant) -> TtlNext {
        let Some(c) = self.checks.get_mut(id).filter(|c| c.registration == from) else {
            return TtlNext::Stop;
        };
        match c.ttl_deadline {
            None => return TtlNext::AwaitReport,
            Some(deadline) if deadline > now => return TtlNext::Until(deadline),
            Some(_) => c.ttl_deadline = None,
        }
        let last = &c.row.output;
        let output = if last.is_empty() {
            "TTL expired".to_string()
        } else if last.starts_with("TTL expired") {
            // Expired again after a re-registration without a report in between.
            last.clone()
        } else {
            format!("TTL expired (last output before timeout follows): {last}")
        };
        tracing::warn!(check = %id, "check missed its TTL, is now critical");
        self.update_check(id, Some(from), CheckStatus::Critical, output, None, now);
        TtlNext::AwaitReport
    }

    /// Marks a check in sync if it has not changed since version `version` was written.
    pub fn mark_check_synced(&mut self, id: &str, version: u64) {
        if let Some(c) = self.checks.get_mut(id).filter(|c| c.version == version) {
            c.in_sync = true;
            self.dirty_checks.remove(id);
            if let Some(due) = c.output_deferred_until.take() {
                self.deferrals.remove(&(due, id.to_string()));
            }
        }
    }

    /// Marks a service in sync if it has not changed since version `version` was written.
    pub fn mark_service_synced(&mut self, id: &str, version: u64) {
        if let Some(s) = self.services.get_mut(id).filter(|s| s.version == version) {
            s.in_sync = true;
            self.dirty_services.remove(id);
        }
    }

    /// Deferred output changes that have fallen due become out of sync.
    pub fn release_deferred(&mut self, now: Instant) {
        while let Some((due, id)) = self.deferrals.first().cloned() {
            if due > now {
                break;
            }
            self.deferrals.pop_first();
            if let Some(c) = self.checks.get_mut(&id) {
                c.output_deferred_until = None;
                c.in_sync = false;
                self.dirty_checks.insert(id);
            }
        }
    }

    /// When the first deferred output change falls due.
    pub fn earliest_deferral(&self) -> Option<Instant> {
        self.deferrals.first().map(|(due, _)| *due)
    }

    /// The service rows, as `/v1/agent/services` lists them.
    pub fn service_rows(&self) -> impl Iterator<Item = &Service> {
        self.services.values().map(|s| &s.def.service)
    }

    /// Checks bound to `service_id` (and, with `with_node`, the node-level ones).
    pub fn checks_of(&self, service_id: &str, with_node: bool) -> Vec<&HealthCheck> {
        let mut ids: Vec<&String> = self.check_ids_of(service_id).collect();
        if with_node && !service_id.is_empty() {
            ids.extend(self.check_ids_of(""));
            // In check-ID order, as one pass over the checks would give.
            ids.sort_unstable();
        }
        ids.into_iter()
            .filter_map(|id| self.checks.get(id))
            .map(|c| &c.row)
            .collect()
    }

    /// Does `id` have a check critical for longer than its `deregister_critical_service_after`?
    pub fn should_reap(&self, id: &str, now: Instant) -> bool {
        self.check_ids_of(id)
            .filter_map(|cid| self.checks.get(cid))
            .any(|c| {
                let after = c
                    .def
                    .as_ref()
                    .and_then(|d| d.deregister_critical_service_after);
                match (after, c.critical_since) {
                    (Some(after), Some(since)) => now.saturating_duration_since(since) > after,
                    _ => false,
                }
            })
    }

    /// Services with a check critical for longer than its `deregister_critical_service_after`.
    pub fn services_to_reap(&self, now: Instant) -> Vec<String> {
        self.services
            .keys()
            .filter(|id| self.should_reap(id, now))
            .cloned()
            .collect()
    }
}

/// `now + d`, or a moment too far away to matter when that does not fit (a TTL of centuries).
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

#[cfg(test)]
impl LocalState {
    /// Panics unless every index equals what a scan of the maps gives (the old definitions).
    pub(crate) fn assert_consistent(&self) {
        let dirty_services: BTreeSet<String> = self
            .services
            .iter()
            .filter(|(_, s)| !s.in_sync)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(self.dirty_services, dirty_services, "dirty services");
        let dirty_checks: BTreeSet<String> = self
            .checks
            .iter()
            .filter(|(_, c)| !c.in_sync)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(self.dirty_checks, dirty_checks, "dirty checks");
        let mut by_service: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, c) in &self.checks {
            assert_eq!(&c.row.check_id, id, "check keyed by its ID");
            by_service
                .entry(c.row.service_id.clone())
                .or_default()
                .insert(id.clone());
        }
        assert_eq!(self.checks_by_service, by_service, "checks by service");
        let deferrals: BTreeSet<(Instant, String)> = self
            .checks
            .iter()
            .filter_map(|(id, c)| c.output_deferred_until.map(|d| (d, id.clone())))
            .collect();
        assert_eq!(self.deferrals, deferrals, "deferrals");
        for (id, s) in &self.services {
            assert_eq!(&s.def.service.id, id, "service keyed by its ID");
        }
    }
}

#[cfg(test)]
mod tests;
