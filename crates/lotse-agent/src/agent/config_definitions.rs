//! The configuration's `services` and `checks` blocks: registered at start and replaced on
//! every reload; what the HTTP API registered stays.
//!
//! A reload is all or nothing. [`Plan::decide`] settles everything that can refuse it (script
//! checks where scripts are off, a check naming a service that does not exist, no sidecar port
//! left) from the current state and the new definitions, without changing anything; only then
//! is the plan applied, in one step under the state lock, and that step cannot fail.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::time::Instant;

use super::services::{add_locally, sidecar_port};
use super::{Agent, AgentError};
use crate::definition::decode::check_row;
use crate::definition::{CheckDefinition, ServiceDefinition};
use crate::local::{LocalState, Source};

impl Agent {
    /// Replaces what config files registered with `services` and `checks`; what the API
    /// registered stays. A refusal leaves everything as it was.
    pub async fn load_config_definitions(
        self: &Arc<Self>,
        services: Vec<ServiceDefinition>,
        checks: Vec<CheckDefinition>,
    ) -> Result<(), AgentError> {
        for s in &services {
            self.allow_scripts(s.checks.iter(), Source::Config)?;
            if let Some(sidecar) = s.sidecar.as_deref() {
                self.allow_scripts(sidecar.checks.iter(), Source::Config)?;
            }
        }
        self.allow_scripts(checks.iter(), Source::Config)?;
        let edit = self.edit().await;
        let plan = Plan::decide(&self.state(), services, checks)?;
        let node = self.node_name();
        let now = Instant::now();
        let removed = self.change(|s| (plan.apply(s, node, now), true));
        // A config service that goes takes its checks, and one registered again replaces the
        // checks it no longer lists, API-registered ones included (as Consul's reload does).
        self.unpersist(|p| removed.iter().for_each(|c| p.remove_check(c)));
        self.sync_runners();
        drop(edit);
        self.sync_soon().await;
        Ok(())
    }
}

/// A reload, decided: what goes, and what is registered (sidecars with their ports).
#[derive(Debug)]
pub(super) struct Plan {
    gone_services: Vec<String>,
    gone_checks: Vec<String>,
    /// Parents first, each followed by its sidecar.
    services: Vec<ServiceDefinition>,
    checks: Vec<CheckDefinition>,
}

impl Plan {
    pub(super) fn decide(
        st: &LocalState,
        services: Vec<ServiceDefinition>,
        checks: Vec<CheckDefinition>,
    ) -> Result<Plan, AgentError> {
        let mut registered = Vec::with_capacity(services.len());
        let mut sidecars = Vec::new();
        for mut def in services {
            let sidecar = def.sidecar.take().map(|b| *b);
            registered.push(def);
            if let Some(sc) = sidecar {
                sidecars.push(registered.len());
                registered.push(sc);
            }
        }
        let new_ids: BTreeSet<&str> = registered.iter().map(|d| d.service.id.as_str()).collect();
        // Services the reload keeps: the API's, unless a config service takes over the ID.
        let kept = st
            .services()
            .values()
            .filter(|s| s.source != Source::Config && !new_ids.contains(s.def.service.id.as_str()));
        let mut used: BTreeSet<i64> = kept.clone().map(|s| s.def.service.port).collect();
        used.extend(registered.iter().map(|d| d.service.port));
        let mut ports = Vec::new();
        for &i in &sidecars {
            let port = sidecar_port(st, &registered[i], &used)?;
            used.insert(port);
            ports.push((i, port));
        }
        let service_exists =
            |id: &str| new_ids.contains(id) || kept.clone().any(|s| s.def.service.id == id);
        if let Some(c) = checks
            .iter()
            .find(|c| !c.service_id.is_empty() && !service_exists(&c.service_id))
        {
            return Err(AgentError::new(
                404,
                format!("ServiceID {:?} does not exist", c.service_id),
            ));
        }

        let keep_checks: BTreeSet<&str> = checks
            .iter()
            .map(|c| c.id.as_str())
            .chain(
                registered
                    .iter()
                    .flat_map(|d| d.checks.iter().map(|c| c.id.as_str())),
            )
            .collect();
        let gone_services = st
            .services()
            .values()
            .filter(|s| s.source == Source::Config && !new_ids.contains(s.def.service.id.as_str()))
            .map(|s| s.def.service.id.clone())
            .collect();
        let gone_checks = st
            .checks()
            .values()
            .filter(|c| {
                c.source == Source::Config && !keep_checks.contains(c.row.check_id.as_str())
            })
            .map(|c| c.row.check_id.clone())
            .collect();
        for (i, port) in ports {
            registered[i].assign_sidecar_port(port);
        }
        Ok(Plan {
            gone_services,
            gone_checks,
            services: registered,
            checks,
        })
    }

    /// Applies the plan; returns the IDs of the checks that went with a service or were
    /// replaced by its re-registration (API checks among them have files to remove).
    pub(super) fn apply(self, s: &mut LocalState, node: &str, now: Instant) -> Vec<String> {
        let mut removed = Vec::new();
        for id in &self.gone_services {
            removed.extend(s.remove_service(id).unwrap_or_default());
        }
        for id in &self.gone_checks {
            s.remove_check(id);
        }
        for def in self.services {
            removed.extend(add_locally(s, node, def, true, Source::Config, now));
        }
        for def in self.checks {
            let service = s.services().get(&def.service_id).map(|x| &x.def.service);
            let row = check_row(&def, node, service);
            s.add_check(row, Some(def), Source::Config, now);
        }
        removed
    }
}
