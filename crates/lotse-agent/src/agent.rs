//! The agent: its local services and checks, the tasks that run the checks, and anti-entropy.
//!
//! ```text
//!  HTTP / config ──► Agent::register_* ──► LocalState (out of sync) ──► sync_changes ──► catalog
//!  check runners ──► Agent::record_result ─┘                 full sync every ae_interval ─┘
//! ```
//!
//! * `services`, `checks`, `maintenance`: the `/v1/agent/*` operations.
//! * `config_definitions`: what the configuration files register, replaced on reload.
//! * `reaper`: removes services whose checks stayed critical too long.
//!
//! Invariants:
//! * **Edits are serialised** (`edits`): a registration, removal, maintenance switch, reload
//!   or reap decides, persists and applies before the next one starts, so two concurrent
//!   registrations of one ID leave the disk, the local state and the runners agreeing.
//! * **Runners follow the state**: after every edit the runners of the checks it touched are
//!   reconciled ([`Agent::sync_runners_of`]; a reload or restore reconciles all of them with
//!   [`Agent::sync_runners`]): the runner of a check that is gone or was registered again
//!   stops, and a check without one gets one, from the definition the state holds. A runner reports under its check's
//!   registration, and `LocalState` drops reports of any other (see `local`).
//! * No std mutex guard is held across an `.await`; the lock order is `state`, then `runners`.
//! * Dropping the last `Arc<Agent>` stops everything it spawned: runners with their map, the
//!   anti-entropy and reaper tasks through [`Drop`].

mod checks;
mod config_definitions;
mod maintenance;
mod reaper;
mod services;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lotse_core::catalog::{HealthCheck, Node, Service};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::definition::{CheckDefinition, CheckKind};
use crate::local::{LocalState, Source, TtlNext};
use crate::persist::Persist;
use crate::runner::{self, Runner};
use crate::upstream::Upstream;

pub(crate) use checks::truncate_output;
pub use maintenance::{NODE_MAINTENANCE, SERVICE_MAINTENANCE_PREFIX};

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

/// A refused agent request; `status` is the HTTP status Consul answers with. A refused
/// request changed nothing.
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

pub struct Agent {
    /// The catalog: this server's own, or (on a client agent) the servers' over RPC.
    pub(crate) upstream: Arc<dyn Upstream>,
    pub options: AgentOptions,
    state: Mutex<LocalState>,
    /// Serialises edits of the local state (see the module's invariants).
    edits: tokio::sync::Mutex<()>,
    /// Wakes anti-entropy for a partial sync. Shared with its task, which holds the agent only
    /// weakly while it waits.
    pub(crate) changed: Arc<Notify>,
    /// One sync at a time: a second caller waits and then finds little left to do.
    pub(crate) sync_lock: tokio::sync::Mutex<()>,
    /// Moves with every local change (`?hash` blocking).
    generation: tokio::sync::watch::Sender<u64>,
    runners: Mutex<HashMap<String, Runner>>,
    persist: Option<Persist>,
    /// Anti-entropy and the reaper, stopped when the agent goes.
    background: Mutex<Vec<AbortHandle>>,
}

impl Agent {
    /// Restores what the API registered before a restart, then starts the agent's background
    /// duties: anti-entropy and the reaper. Fails only if the data directory is unusable.
    ///
    /// A server's agent passes its `Arc<Server>` (it coerces to `Arc<dyn Upstream>`).
    pub fn start(
        upstream: Arc<dyn Upstream>,
        options: AgentOptions,
    ) -> Result<Arc<Agent>, AgentError> {
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
            upstream,
            options,
            state: Mutex::new(LocalState::default()),
            edits: tokio::sync::Mutex::new(()),
            changed: Arc::new(Notify::new()),
            sync_lock: tokio::sync::Mutex::new(()),
            generation: tokio::sync::watch::channel(0).0,
            runners: Mutex::new(HashMap::new()),
            persist,
            background: Mutex::new(Vec::new()),
        });
        agent.restore();
        let weak = Arc::downgrade(&agent);
        let tasks = [
            tokio::spawn(crate::anti_entropy::run(
                weak.clone(),
                agent.changed.clone(),
            )),
            tokio::spawn(reaper::run(weak)),
        ];
        lock(&agent.background).extend(tasks.iter().map(|t| t.abort_handle()));
        Ok(agent)
    }

    /// Re-registers the persisted API registrations (before the first sync, which would
    /// otherwise delete them from the catalog as unknown).
    fn restore(self: &Arc<Self>) {
        let Some(p) = &self.persist else { return };
        let defs = p.load_services();
        for def in defs.iter().filter(|d| !d.checks.is_empty()) {
            // Written before checks had files of their own: split, so that removing one of
            // them later sticks.
            if let Err(e) = services::persist_service(p, self.node_name(), def) {
                tracing::warn!(service = %def.service.id, error = %e, "cannot rewrite a persisted registration");
            }
        }
        let checks = p.load_checks();
        let (n_services, n_checks) = (defs.len(), checks.len());
        let now = Instant::now();
        self.change(|s| {
            for def in defs {
                services::add_locally(s, self.node_name(), def, false, Source::Remote, now);
            }
            for c in checks {
                s.add_check(c.row, c.definition, Source::Remote, now);
            }
            ((), true)
        });
        self.sync_runners();
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

    pub(crate) fn state(&self) -> MutexGuard<'_, LocalState> {
        lock(&self.state)
    }

    fn runners(&self) -> MutexGuard<'_, HashMap<String, Runner>> {
        lock(&self.runners)
    }

    /// Waits for the edit lock (see the module's invariants).
    async fn edit(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.edits.lock().await
    }

    /// Runs `f` on the local state and, if it reports a change, tells anti-entropy and
    /// `?hash` waiters.
    fn change<T>(&self, f: impl FnOnce(&mut LocalState) -> (T, bool)) -> T {
        let (out, changed) = {
            let mut s = self.state();
            let (out, changed) = f(&mut s);
            // Every edit of an agent under test proves the local state's indexes still match.
            #[cfg(test)]
            s.assert_consistent();
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

    /// Makes the runners match the checks: a runner for every check with a definition, of
    /// that check's current registration, and no other. Both locks are held, so concurrent
    /// edits cannot leave a runner of a definition the state no longer has.
    fn sync_runners(self: &Arc<Self>) {
        let st = self.state();
        let mut runners = self.runners();
        retain_current(&st, &mut runners);
        for c in st.checks().values() {
            if let Some(def) = &c.def {
                runners
                    .entry(c.row.check_id.clone())
                    .or_insert_with(|| runner::start(self, def, c.registration));
            }
        }
    }

    /// [`Agent::sync_runners`] for the checks `ids` only: what an edit that touched just those
    /// needs, at a cost that does not grow with every check the agent runs (a registration
    /// burst of thousands of services would otherwise be quadratic).
    fn sync_runners_of<'a>(self: &Arc<Self>, ids: impl IntoIterator<Item = &'a str>) {
        let st = self.state();
        let mut runners = self.runners();
        for id in ids {
            let current = st
                .checks()
                .get(id)
                .and_then(|c| c.def.as_ref().map(|d| (c, d)));
            match current {
                Some((c, def)) => {
                    if runners
                        .get(id)
                        .is_none_or(|r| r.registration != c.registration)
                    {
                        runners.insert(id.to_string(), runner::start(self, def, c.registration));
                    }
                }
                None => {
                    runners.remove(id);
                }
            }
        }
    }

    /// Stops the runners of `ids` if their checks are gone.
    fn stop_runners_of<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let st = self.state();
        let mut runners = self.runners();
        for id in ids {
            if st.checks().get(id).is_none_or(|c| c.def.is_none()) {
                runners.remove(id);
            }
        }
    }

    /// A TTL runner's turn: expires the check if its deadline passed (see
    /// [`LocalState::expire_ttl`]).
    pub(crate) fn expire_ttl(&self, id: &str, registration: u64) -> TtlNext {
        self.change(|s| {
            let before = s.generation;
            let next = s.expire_ttl(id, registration, Instant::now());
            (next, s.generation != before)
        })
    }

    /// The catalog this agent syncs with.
    pub fn upstream(&self) -> &Arc<dyn Upstream> {
        &self.upstream
    }

    pub fn node_name(&self) -> &str {
        self.upstream.node_name()
    }

    pub fn datacenter(&self) -> &str {
        self.upstream.datacenter()
    }

    /// This agent's node as anti-entropy registers it.
    pub fn node(&self) -> Node {
        let mut n = self.upstream.self_node();
        n.meta.extend(self.options.node_meta.clone());
        n
    }

    // ---- reads ----

    pub fn services(&self) -> Vec<Service> {
        self.state().service_rows().cloned().collect()
    }

    pub fn service(&self, id: &str) -> Option<Service> {
        self.state()
            .services()
            .get(id)
            .map(|s| s.def.service.clone())
    }

    pub fn checks(&self) -> Vec<HealthCheck> {
        self.state()
            .checks()
            .values()
            .map(|c| c.row.clone())
            .collect()
    }

    /// A service and every check bearing on it (its own and the node's).
    pub fn service_health(&self, id: &str) -> Option<(Service, Vec<HealthCheck>)> {
        let s = self.state();
        let svc = s.services().get(id)?.def.service.clone();
        let checks = s.checks_of(id, true).into_iter().cloned().collect();
        Some((svc, checks))
    }

    /// A receiver that changes with every local change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    // ---- helpers ----

    /// Writes the change to the catalog before answering, as Consul's handlers do. A failure
    /// (no leader, say) is not the caller's: the entry stays out of sync and anti-entropy
    /// retries it (each failed write was logged).
    async fn sync_soon(&self) {
        // Without a leader the write would only wait out the hold timeout: a moment's wait
        // covers an election in progress; beyond that the anti-entropy loop syncs once one
        // is elected (an agent starting before its cluster formed does not hang).
        if !self.upstream.has_leader()
            && !self
                .upstream
                .wait_leader_known(std::time::Duration::from_secs(1))
                .await
        {
            self.changed.notify_one();
            return;
        }
        if self.sync_changes().await.is_err() {
            self.changed.notify_one();
        }
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
}

impl Drop for Agent {
    fn drop(&mut self) {
        for task in lock(&self.background).drain(..) {
            task.abort();
        }
        // The runners stop as their map drops.
    }
}

/// Keeps only the runners of the checks' current registrations (a dropped runner stops).
fn retain_current(st: &LocalState, runners: &mut HashMap<String, Runner>) {
    runners.retain(|id, r| {
        st.checks()
            .get(id)
            .is_some_and(|c| c.def.is_some() && c.registration == r.registration)
    });
}

/// Locks a std mutex, ignoring poisoning: a panic in another holder is a bug to fix, and
/// refusing every later request would not help anyone.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
