//! `/v1/agent/service/register` and `/deregister`: a service with its checks, and its sidecar.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::Arc;

use tokio::time::Instant;

use super::{Agent, AgentError};
use crate::definition::decode::check_row;
use crate::definition::ServiceDefinition;
use crate::local::{LocalState, Source};
use crate::persist::Persist;

/// Sidecar proxies get ports from this range when they name none (Consul's defaults).
const SIDECAR_PORTS: RangeInclusive<i64> = 21000..=21255;

impl Agent {
    /// Registers (or replaces) a service with its checks, and its sidecar if it has one.
    /// Everything that can refuse the request (script checks, the sidecar's port, the disk)
    /// is decided before anything changes.
    pub async fn register_service(
        self: &Arc<Self>,
        mut def: ServiceDefinition,
        replace_existing_checks: bool,
        source: Source,
    ) -> Result<(), AgentError> {
        self.allow_scripts(def.checks.iter(), source)?;
        if let Some(sidecar) = def.sidecar.as_deref() {
            self.allow_scripts(sidecar.checks.iter(), source)?;
        }
        let edit = self.edit().await;
        let sidecar = match def.sidecar.take() {
            Some(mut sc) => {
                let port = {
                    let st = self.state();
                    let used = st.service_rows().map(|s| s.port).collect();
                    sidecar_port(&st, &sc, &used)?
                };
                sc.assign_sidecar_port(port);
                Some(*sc)
            }
            None => None,
        };
        let node = self.node_name();
        if source == Source::Remote {
            self.persisted(|p| persist_service(p, node, &def))?;
            if let Some(sc) = &sidecar {
                self.persisted(|p| persist_service(p, node, sc))?;
            }
        }
        let now = Instant::now();
        let mut touched: Vec<String> = def.checks.iter().map(|c| c.id.clone()).collect();
        touched.extend(
            sidecar
                .iter()
                .flat_map(|sc| sc.checks.iter().map(|c| c.id.clone())),
        );
        let stale = self.change(|s| {
            let mut stale = add_locally(s, node, def, replace_existing_checks, source, now);
            if let Some(sc) = sidecar {
                stale.extend(add_locally(
                    s,
                    node,
                    sc,
                    replace_existing_checks,
                    source,
                    now,
                ));
            }
            (stale, true)
        });
        self.unpersist(|p| stale.iter().for_each(|c| p.remove_check(c)));
        self.sync_runners_of(touched.iter().chain(&stale).map(String::as_str));
        drop(edit);
        self.sync_soon().await;
        Ok(())
    }

    /// Deregisters a service, its checks, and the sidecar registered with it.
    pub async fn deregister_service(&self, id: &str) -> Result<(), AgentError> {
        let edit = self.edit().await;
        if !self.remove_service_if(id, |_| true) {
            return Err(AgentError::unknown_service(id));
        }
        drop(edit);
        self.sync_soon().await;
        Ok(())
    }

    /// Removes service `id` (with its checks and sidecar) if `still` holds of the state, both
    /// decided under one lock. The caller holds the edit lock. False if nothing was removed.
    pub(super) fn remove_service_if(
        &self,
        id: &str,
        still: impl FnOnce(&LocalState) -> bool,
    ) -> bool {
        let sidecar = format!("{id}-sidecar-proxy");
        let removed = self.change(|s| {
            if !s.services().contains_key(id) || !still(s) {
                return (None, false);
            }
            let mut gone_checks = s.remove_service(id).unwrap_or_default();
            let gone_sidecar = s.remove_service(&sidecar);
            let had_sidecar = gone_sidecar.is_some();
            gone_checks.extend(gone_sidecar.unwrap_or_default());
            (Some((had_sidecar, gone_checks)), true)
        });
        let Some((had_sidecar, gone_checks)) = removed else {
            return false;
        };
        self.unpersist(|p| {
            p.remove_service(id);
            if had_sidecar {
                p.remove_service(&sidecar);
            }
            for c in &gone_checks {
                p.remove_check(c);
            }
        });
        self.stop_runners_of(gone_checks.iter().map(String::as_str));
        true
    }
}

/// Adds `def` and its checks to the local state; with `replace`, the service's other checks
/// that something runs go (maintenance checks stay). Returns the IDs of the checks removed.
pub(super) fn add_locally(
    s: &mut LocalState,
    node: &str,
    def: ServiceDefinition,
    replace: bool,
    source: Source,
    now: Instant,
) -> Vec<String> {
    let id = def.service.id.clone();
    let stale: Vec<String> = if replace {
        s.check_ids_of(&id)
            .filter_map(|cid| s.checks().get(cid))
            .filter(|c| c.def.is_some())
            .filter(|c| !def.checks.iter().any(|k| k.id == c.row.check_id))
            .map(|c| c.row.check_id.clone())
            .collect()
    } else {
        Vec::new()
    };
    for c in &stale {
        s.remove_check(c);
    }
    let checks: Vec<_> = def
        .checks
        .iter()
        .map(|c| (check_row(c, node, Some(&def.service)), c.clone()))
        .collect();
    s.add_service(def, source);
    for (row, c) in checks {
        s.add_check(row, Some(c), source, now);
    }
    stale
}

/// Persists a service and, each in its own file, its checks (as Consul does), so that a
/// check deregistered later is not brought back by its service's file after a restart.
pub(super) fn persist_service(
    p: &Persist,
    node: &str,
    def: &ServiceDefinition,
) -> std::io::Result<()> {
    let service = ServiceDefinition {
        checks: Vec::new(),
        sidecar: None,
        ..def.clone()
    };
    p.save_service(&service)?;
    for c in &def.checks {
        p.save_check(&check_row(c, node, Some(&def.service)), Some(c))?;
    }
    Ok(())
}

/// The port of sidecar `sc`: its own if it names one, else the one the sidecar registered
/// under that ID already has, else the lowest of 21000-21255 not in `used`.
pub(super) fn sidecar_port(
    st: &LocalState,
    sc: &ServiceDefinition,
    used: &BTreeSet<i64>,
) -> Result<i64, AgentError> {
    if sc.service.port >= 1 {
        return Ok(sc.service.port);
    }
    if let Some(existing) = st
        .services()
        .get(&sc.service.id)
        .map(|s| s.def.service.port)
        .filter(|p| *p >= 1)
    {
        return Ok(existing);
    }
    SIDECAR_PORTS
        .clone()
        .find(|p| !used.contains(p))
        .ok_or_else(|| {
            AgentError::new(
                500,
                "no port provided for sidecar_service and none left in the configured range [21000, 21255]",
            )
        })
}
