//! The agent: its local services and checks, the tasks that run the checks, and anti-entropy.
//!
//! ```text
//!  HTTP / config ──► Agent::register_* ──► LocalState (out of sync) ──► sync_changes ──► catalog
//!  check runners ──► Agent::record_result ─┘                 full sync every ae_interval ─┘
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lotse_core::catalog::{CheckStatus, HealthCheck, Node, Service};
use lotse_server::Server;

use crate::definition::decode::check_row;
use crate::definition::{CheckDefinition, CheckKind, ServiceDefinition};
use crate::local::{LocalState, Source};
use crate::persist::Persist;
use crate::runner::{self, Runner};

/// The agent settings its duties depend on.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub enable_script_checks: bool,
    pub enable_local_script_checks: bool,
    /// Base period of the full anti-entropy sync (Consul's `ae_interval`, 1 min).
    pub ae_interval: Duration,
    /// How long an output-only change may wait before it is synced (0: never waits).
    pub check_update_interval: Duration,
    /// How often services with long-critical checks are looked for.
    pub check_reap_interval: Duration,
    pub node_meta: BTreeMap<String, String>,
    /// Where API registrations are persisted (None: in memory only, as in `-dev`).
    pub data_dir: Option<std::path::PathBuf>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            enable_script_checks: false,
            enable_local_script_checks: false,
            ae_interval: Duration::from_secs(60),
            check_update_interval: Duration::from_secs(300),
            check_reap_interval: Duration::from_secs(30),
            node_meta: BTreeMap::new(),
            data_dir: None,
        }
    }
}

/// A refused agent request; `status` is the HTTP status Consul answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    pub status: u16,
    pub message: String,
}

impl AgentError {
    fn new(status: u16, message: impl Into<String>) -> AgentError {
        AgentError {
            status,
            message: message.into(),
        }
    }

    fn unknown_service(id: &str) -> AgentError {
        AgentError::new(
            404,
            format!(
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            ),
        )
    }

    fn unknown_check(id: &str) -> AgentError {
        AgentError::new(
            404,
            format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            ),
        )
    }
}

/// The node-maintenance check's ID, and the prefix of service-maintenance ones.
pub const NODE_MAINTENANCE: &str = "_node_maintenance";
pub const SERVICE_MAINTENANCE_PREFIX: &str = "_service_maintenance:";
/// Sidecar proxies get ports from this range when they name none (Consul's defaults).
const SIDECAR_PORTS: std::ops::RangeInclusive<i64> = 21000..=21255;

pub struct Agent {
    pub server: Arc<Server>,
    pub options: AgentOptions,
    state: Mutex<LocalState>,
    /// Wakes anti-entropy for a partial sync.
    pub(crate) changed: tokio::sync::Notify,
    /// One sync at a time: a second caller waits and then finds little left to do.
    pub(crate) sync_lock: tokio::sync::Mutex<()>,
    /// Moves with every local change (`?hash` blocking).
    generation: tokio::sync::watch::Sender<u64>,
    runners: Mutex<HashMap<String, Runner>>,
    persist: Option<Persist>,
}

impl Agent {
    /// Restores what the API registered before a restart, then starts the agent's background
    /// duties: anti-entropy and the reaper. Fails only if the data directory is unusable.
    pub fn start(server: Arc<Server>, options: AgentOptions) -> Result<Arc<Agent>, AgentError> {
        let persist = match &options.data_dir {
            Some(dir) => Some(Persist::open(dir).map_err(|e| {
                AgentError::new(
                    500,
                    format!("cannot use {} for agent state: {e}", dir.display()),
                )
            })?),
            None => None,
        };
        let agent = Arc::new(Agent {
            server,
            options,
            state: Mutex::new(LocalState::default()),
            changed: tokio::sync::Notify::new(),
            sync_lock: tokio::sync::Mutex::new(()),
            generation: tokio::sync::watch::channel(0).0,
            runners: Mutex::new(HashMap::new()),
            persist,
        });
        agent.restore();
        tokio::spawn(crate::anti_entropy::run(Arc::downgrade(&agent)));
        tokio::spawn(reap_loop(Arc::downgrade(&agent)));
        Ok(agent)
    }

    /// Re-registers the persisted API registrations (before the first sync, which would
    /// otherwise delete them from the catalog as unknown).
    fn restore(self: &Arc<Self>) {
        let Some(p) = &self.persist else { return };
        let services = p.load_services();
        let checks = p.load_checks();
        let (n_services, n_checks) = (services.len(), checks.len());
        for def in services {
            self.add_service_locally(def, false, Source::Remote);
        }
        for c in checks {
            self.change(|s| {
                s.add_check(c.row.clone(), c.definition.clone(), Source::Remote);
                ((), true)
            });
            if let Some(def) = &c.definition {
                self.start_runner(def);
            }
        }
        if n_services + n_checks > 0 {
            tracing::info!(
                services = n_services,
                checks = n_checks,
                "restored persisted registrations"
            );
        }
    }

    /// Writes `f`'s record before the change it stands for: an acknowledged registration
    /// must survive a restart, so a failed write refuses the request (Consul's 500).
    fn persisted(&self, f: impl FnOnce(&Persist) -> std::io::Result<()>) -> Result<(), AgentError> {
        match &self.persist {
            Some(p) => f(p).map_err(|e| {
                AgentError::new(500, format!("failed to persist the registration: {e}"))
            }),
            None => Ok(()),
        }
    }

    fn unpersist(&self, f: impl FnOnce(&Persist)) {
        if let Some(p) = &self.persist {
            f(p);
        }
    }

    fn start_runner(self: &Arc<Self>, def: &CheckDefinition) {
        let mut runners = self.runners();
        runners.remove(&def.id);
        if let Some(r) = runner::start(self, def) {
            runners.insert(def.id.clone(), r);
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the local state and, if it reports a change, tells anti-entropy and
    /// `?hash` waiters.
    fn change<T>(&self, f: impl FnOnce(&mut LocalState) -> (T, bool)) -> T {
        let (out, changed) = {
            let mut s = self.state();
            let (out, changed) = f(&mut s);
            if changed {
                self.generation.send_replace(s.generation);
            }
            (out, changed)
        };
        if changed {
            self.changed.notify_one();
        }
        out
    }

    pub fn node_name(&self) -> &str {
        &self.server.config.node_name
    }

    pub fn datacenter(&self) -> &str {
        &self.server.config.datacenter
    }

    /// This agent's node as anti-entropy registers it.
    pub fn node(&self) -> Node {
        let mut n = self.server.self_node();
        n.meta.extend(self.options.node_meta.clone());
        n
    }

    // ---- reads ----

    pub fn services(&self) -> Vec<Service> {
        self.state().service_rows().cloned().collect()
    }

    pub fn service(&self, id: &str) -> Option<Service> {
        self.state().services.get(id).map(|s| s.def.service.clone())
    }

    pub fn checks(&self) -> Vec<HealthCheck> {
        self.state()
            .checks
            .values()
            .map(|c| c.row.clone())
            .collect()
    }

    /// A service and every check bearing on it (its own and the node's).
    pub fn service_health(&self, id: &str) -> Option<(Service, Vec<HealthCheck>)> {
        let s = self.state();
        let svc = s.services.get(id)?.def.service.clone();
        let checks = s.checks_of(id, true).into_iter().cloned().collect();
        Some((svc, checks))
    }

    /// A receiver that changes with every local change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    // ---- services ----

    /// Registers (or replaces) a service with its checks, and its sidecar if it has one.
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
        let sidecar = match def.sidecar.take() {
            Some(mut sc) => {
                self.assign_sidecar_port(&mut sc)?;
                Some(*sc)
            }
            None => None,
        };
        if source == Source::Remote {
            self.persisted(|p| p.save_service(&def))?;
            if let Some(sc) = &sidecar {
                self.persisted(|p| p.save_service(sc))?;
            }
        }
        self.add_service_locally(def, replace_existing_checks, source);
        if let Some(sc) = sidecar {
            self.add_service_locally(sc, replace_existing_checks, source);
        }
        self.sync_soon().await;
        Ok(())
    }

    fn add_service_locally(
        self: &Arc<Self>,
        def: ServiceDefinition,
        replace: bool,
        source: Source,
    ) {
        let node = self.node_name().to_string();
        let id = def.service.id.clone();
        let rows: Vec<(HealthCheck, CheckDefinition)> = def
            .checks
            .iter()
            .map(|c| (check_row(c, &node, Some(&def.service)), c.clone()))
            .collect();
        let stale = self.change(|s| {
            let keep: Vec<&str> = def.checks.iter().map(|c| c.id.as_str()).collect();
            let stale: Vec<String> = if replace {
                s.checks
                    .values()
                    .filter(|c| c.row.service_id == id && !keep.contains(&c.row.check_id.as_str()))
                    .filter(|c| c.def.is_some())
                    .map(|c| c.row.check_id.clone())
                    .collect()
            } else {
                Vec::new()
            };
            for c in &stale {
                s.remove_check(c);
            }
            s.add_service(def, source);
            for (row, c) in &rows {
                s.add_check(row.clone(), Some(c.clone()), source);
            }
            (stale, true)
        });
        let mut runners = self.runners();
        for c in stale {
            runners.remove(&c);
        }
        for (_, c) in rows {
            runners.remove(&c.id);
            if let Some(r) = runner::start(self, &c) {
                runners.insert(c.id.clone(), r);
            }
        }
    }

    /// Gives a sidecar without a port the lowest free one of 21000-21255 (an existing
    /// sidecar with the same ID keeps its own).
    fn assign_sidecar_port(&self, def: &mut ServiceDefinition) -> Result<(), AgentError> {
        if def.service.port >= 1 {
            return Ok(());
        }
        let s = self.state();
        let port = match s.services.get(&def.service.id) {
            Some(existing) if existing.def.service.port >= 1 => existing.def.service.port,
            _ => {
                let used: Vec<i64> = s.service_rows().map(|r| r.port).collect();
                SIDECAR_PORTS.clone().find(|p| !used.contains(p)).ok_or_else(|| {
                    AgentError::new(
                        500,
                        "no port provided for sidecar_service and none left in the configured range [21000, 21255]",
                    )
                })?
            }
        };
        def.assign_sidecar_port(port);
        Ok(())
    }

    /// Deregisters a service, its checks, and the sidecar registered with it.
    pub async fn deregister_service(&self, id: &str) -> Result<(), AgentError> {
        let sidecar = format!("{id}-sidecar-proxy");
        let removed = self.change(|s| {
            let had_sidecar = s
                .services
                .get(id)
                .is_some_and(|p| p.def.sidecar.is_some() || s.services.contains_key(&sidecar));
            let before: Vec<String> = s.checks.keys().cloned().collect();
            let ok = s.remove_service(id);
            if ok && had_sidecar {
                s.remove_service(&sidecar);
            }
            let gone: Vec<String> = before
                .into_iter()
                .filter(|c| !s.checks.contains_key(c))
                .collect();
            (ok.then_some((had_sidecar, gone)), ok)
        });
        let Some((had_sidecar, gone_checks)) = removed else {
            return Err(AgentError::unknown_service(id));
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
        self.stop_runners_not_in_state();
        self.sync_soon().await;
        Ok(())
    }

    // ---- checks ----

    pub async fn register_check(
        self: &Arc<Self>,
        def: CheckDefinition,
        source: Source,
    ) -> Result<(), AgentError> {
        self.allow_scripts(std::iter::once(&def), source)?;
        let service = if def.service_id.is_empty() {
            None
        } else {
            Some(self.service(&def.service_id).ok_or_else(|| {
                AgentError::new(
                    404,
                    format!("ServiceID {:?} does not exist", def.service_id),
                )
            })?)
        };
        let row = check_row(&def, self.node_name(), service.as_ref());
        if source == Source::Remote {
            self.persisted(|p| p.save_check(&row, Some(&def)))?;
        }
        self.change(|s| {
            s.add_check(row, Some(def.clone()), source);
            ((), true)
        });
        self.start_runner(&def);
        self.sync_soon().await;
        Ok(())
    }

    pub async fn deregister_check(&self, id: &str) -> Result<(), AgentError> {
        if !self.change(|s| {
            let ok = s.remove_check(id);
            (ok, ok)
        }) {
            return Err(AgentError::unknown_check(id));
        }
        self.unpersist(|p| p.remove_check(id));
        self.runners().remove(id);
        self.sync_soon().await;
        Ok(())
    }

    /// `/v1/agent/check/pass|warn|fail|update`: a TTL check's report.
    pub async fn ttl_update(
        &self,
        id: &str,
        status: CheckStatus,
        output: &str,
    ) -> Result<(), AgentError> {
        let (is_ttl, limit) = {
            let s = self.state();
            let c = s
                .checks
                .get(id)
                .ok_or_else(|| AgentError::unknown_check(id))?;
            match &c.def {
                Some(d) if d.kind == CheckKind::Ttl => (true, d.output_max_size),
                _ => (false, 0),
            }
        };
        if !is_ttl {
            return Err(AgentError::new(
                500,
                format!("CheckID {id:?} does not have associated TTL"),
            ));
        }
        let output = truncate_output(output, limit);
        if let Some(r) = self.runners().get(id) {
            r.reset_ttl();
        }
        // A TTL report is the check's result: it syncs at once, as Consul.
        self.record_result(id, status, output, false);
        self.sync_soon().await;
        Ok(())
    }

    /// Stores a check's result; output-only changes may wait for `check_update_interval`.
    pub(crate) fn record_result(&self, id: &str, status: CheckStatus, output: String, defer: bool) {
        let interval = self.options.check_update_interval;
        let defer_until = (defer && !interval.is_zero()).then(|| {
            let half = interval / 2;
            let jitter = rand::random::<f64>() * interval.as_secs_f64();
            Instant::now() + half + Duration::from_secs_f64(jitter)
        });
        self.change(|s| ((), s.update_check(id, status, output, defer_until)));
    }

    // ---- maintenance ----

    pub async fn service_maintenance(
        &self,
        id: &str,
        enable: bool,
        reason: &str,
    ) -> Result<(), AgentError> {
        let Some(service) = self.service(id) else {
            return Err(AgentError::unknown_service(id));
        };
        let check_id = format!("{SERVICE_MAINTENANCE_PREFIX}{id}");
        let notes = if reason.is_empty() {
            "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
        } else {
            reason
        };
        let mut row = HealthCheck::new(self.node_name(), &check_id, "Service Maintenance Mode");
        row.notes = notes.to_string();
        row.service_id = service.id.clone();
        row.service_name = service.name.clone();
        row.service_tags = service.tags.clone();
        row.check_type = "maintenance".into();
        self.maintenance(&check_id, enable, row).await
    }

    pub async fn node_maintenance(&self, enable: bool, reason: &str) -> Result<(), AgentError> {
        let notes = if reason.is_empty() {
            "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
        } else {
            reason
        };
        let mut row = HealthCheck::new(self.node_name(), NODE_MAINTENANCE, "Node Maintenance Mode");
        row.notes = notes.to_string();
        row.check_type = "maintenance".into();
        self.maintenance(NODE_MAINTENANCE, enable, row).await
    }

    /// Adds the maintenance check (once: enabling again keeps the first reason) or removes it.
    async fn maintenance(
        &self,
        check_id: &str,
        enable: bool,
        row: HealthCheck,
    ) -> Result<(), AgentError> {
        let present = self.state().checks.contains_key(check_id);
        match (enable, present) {
            (true, false) => {
                self.persisted(|p| p.save_check(&row, None))?;
                self.change(|s| {
                    s.add_check(row, None, Source::Remote);
                    ((), true)
                });
            }
            (false, true) => {
                self.unpersist(|p| p.remove_check(check_id));
                self.change(|s| ((), s.remove_check(check_id)));
            }
            _ => {}
        }
        self.sync_soon().await;
        Ok(())
    }

    // ---- config reload ----

    /// Replaces what config files registered with `services` and `checks`; what the API
    /// registered stays.
    pub async fn load_config_definitions(
        self: &Arc<Self>,
        services: Vec<ServiceDefinition>,
        checks: Vec<CheckDefinition>,
    ) -> Result<(), AgentError> {
        for s in &services {
            self.allow_scripts(s.checks.iter(), Source::Config)?;
        }
        self.allow_scripts(checks.iter(), Source::Config)?;
        let keep_services: Vec<String> = services.iter().map(|s| s.service.id.clone()).collect();
        let keep_checks: Vec<String> = checks.iter().map(|c| c.id.clone()).collect();
        self.change(|s| {
            let gone: Vec<String> = s
                .services
                .values()
                .filter(|x| {
                    x.source == Source::Config && !keep_services.contains(&x.def.service.id)
                })
                .map(|x| x.def.service.id.clone())
                .collect();
            let gone_checks: Vec<String> = s
                .checks
                .values()
                .filter(|c| c.source == Source::Config && c.row.service_id.is_empty())
                .filter(|c| !keep_checks.contains(&c.row.check_id))
                .map(|c| c.row.check_id.clone())
                .collect();
            let changed = !gone.is_empty() || !gone_checks.is_empty();
            for id in gone {
                s.remove_service(&id);
            }
            for id in gone_checks {
                s.remove_check(&id);
            }
            ((), changed)
        });
        self.stop_runners_not_in_state();
        for mut def in services {
            let sidecar = def.sidecar.take();
            self.add_service_locally(def, true, Source::Config);
            if let Some(mut sc) = sidecar.map(|b| *b) {
                self.assign_sidecar_port(&mut sc)?;
                self.add_service_locally(sc, true, Source::Config);
            }
        }
        for def in checks {
            let service = (!def.service_id.is_empty())
                .then(|| self.service(&def.service_id))
                .flatten();
            let row = check_row(&def, self.node_name(), service.as_ref());
            self.change(|s| {
                s.add_check(row, Some(def.clone()), Source::Config);
                ((), true)
            });
            self.start_runner(&def);
        }
        self.sync_soon().await;
        Ok(())
    }

    // ---- helpers ----

    /// Writes the change to the catalog before answering, as Consul's handlers do. A failure
    /// (no leader, say) is not the caller's: the entry stays out of sync and anti-entropy
    /// retries it (each failed write was logged).
    async fn sync_soon(&self) {
        if self.sync_changes().await.is_err() {
            self.changed.notify_one();
        }
    }

    fn runners(&self) -> MutexGuard<'_, HashMap<String, Runner>> {
        self.runners.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop_runners_not_in_state(&self) {
        let live: Vec<String> = self.state().checks.keys().cloned().collect();
        self.runners().retain(|id, _| live.contains(id));
    }

    /// Script checks run only where the configuration allows them (Consul's texts).
    fn allow_scripts<'a>(
        &self,
        mut checks: impl Iterator<Item = &'a CheckDefinition>,
        source: Source,
    ) -> Result<(), AgentError> {
        if !checks.any(|c| matches!(c.kind, CheckKind::Script { .. })) {
            return Ok(());
        }
        let o = &self.options;
        match source {
            Source::Remote if !o.enable_script_checks => Err(AgentError::new(
                500,
                "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true",
            )),
            Source::Config if !(o.enable_script_checks || o.enable_local_script_checks) => {
                Err(AgentError::new(
                    500,
                    "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Deregisters services whose checks stayed critical past `deregister_critical_service_after`.
    async fn reap(&self) {
        let doomed = self.state().services_to_reap(Instant::now());
        for id in doomed {
            tracing::info!(service = %id, "deregistering service with a long-critical check");
            let _ = self.deregister_service(&id).await;
        }
    }
}

/// Output longer than `limit` keeps its start and says how much there was (Consul's form).
pub(crate) fn truncate_output(output: &str, limit: usize) -> String {
    if limit == 0 || output.len() <= limit {
        return output.to_string();
    }
    let mut end = limit;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{} ... (captured {} of {} bytes)",
        &output[..end],
        limit,
        output.len()
    )
}

async fn reap_loop(agent: std::sync::Weak<Agent>) {
    loop {
        let period = match agent.upgrade() {
            Some(a) => a.options.check_reap_interval,
            None => return,
        };
        tokio::time::sleep(period).await;
        match agent.upgrade() {
            Some(a) => a.reap().await,
            None => return,
        }
    }
}
