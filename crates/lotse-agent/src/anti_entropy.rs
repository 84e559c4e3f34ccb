//! Anti-entropy: the agent's local services and checks are the truth, and the catalog is made
//! to match them.
//!
//! * A **partial sync** runs at once after every local change: it writes what is out of sync
//!   (and deregisters what was removed), all writes in flight together so the write batcher
//!   commits them in one go.
//! * A **full sync** runs every `ae_interval` plus a random stagger that grows with the size
//!   of the cluster (Consul's scale factor: ×1 up to 128 nodes, then +1 per doubling). It reads
//!   this node's rows from the catalog, marks every difference out of sync (a service someone
//!   deleted through the catalog API, a check status someone overwrote) and deletes rows the
//!   agent does not know, then runs a partial sync.
//! * A failed sync (no leader, say) is retried with a full sync after 15 s plus stagger.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use lotse_core::catalog::{DeregisterRequest, HealthCheck, RegisterRequest, Service};
use lotse_core::node::SERF_HEALTH;
use lotse_core::Command;
use lotse_server::{now_ms, Server, ServerError, CONSUL_SERVICE};

use crate::agent::Agent;

const RETRY_AFTER: Duration = Duration::from_secs(15);

/// Consul's `scaleFactor`: how much to stretch the full-sync period for `nodes` nodes.
pub fn scale_factor(nodes: usize) -> u32 {
    const THRESHOLD: f64 = 128.0;
    if nodes as f64 <= THRESHOLD {
        return 1;
    }
    ((nodes as f64).log2() - THRESHOLD.log2()).ceil() as u32 + 1
}

/// A random delay in `[0, d)`.
fn stagger(d: Duration) -> Duration {
    d.mul_f64(rand::random::<f64>())
}

pub(crate) async fn run(agent: Weak<Agent>) {
    // The first full sync right after an election rather than a failed write and the 15 s
    // retry (a single server elects itself within milliseconds).
    if let Some(a) = agent.upgrade() {
        a.server.wait_leader(Duration::from_secs(10)).await;
    }
    let mut next_full = Instant::now();
    loop {
        let Some(a) = agent.upgrade() else { return };
        let wake = a
            .state()
            .earliest_deferral()
            .map_or(next_full, |d| d.min(next_full));
        tokio::select! {
            _ = a.changed.notified() => {
                if a.sync_changes().await.is_err() {
                    next_full = next_full.min(Instant::now() + RETRY_AFTER + stagger(RETRY_AFTER));
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                let result = if now >= next_full {
                    a.sync_full().await
                } else {
                    a.sync_changes().await
                };
                if now >= next_full || result.is_err() {
                    next_full = match result {
                        Ok(()) => {
                            let nodes = a.server.peek(|s| s.catalog_counts().0);
                            let base = a.options.ae_interval;
                            now + base + stagger(base * scale_factor(nodes))
                        }
                        Err(_) => now + RETRY_AFTER + stagger(RETRY_AFTER),
                    };
                }
            }
        }
    }
}

/// One write anti-entropy makes, and what to mark in sync when it succeeds.
enum Write {
    Node,
    Service {
        id: String,
        version: u64,
        checks: Vec<(String, u64)>,
    },
    Check {
        id: String,
        version: u64,
    },
    ServiceGone(String),
    CheckGone(String),
}

impl Agent {
    /// Writes every out-of-sync local entry to the catalog. Errors are logged; the entries
    /// stay out of sync and the next sync tries again.
    pub async fn sync_changes(&self) -> Result<(), ServerError> {
        let _one_at_a_time = self.sync_lock.lock().await;
        self.push().await
    }

    /// Compares the catalog's rows for this node with the local state, then syncs.
    pub async fn sync_full(&self) -> Result<(), ServerError> {
        let _one_at_a_time = self.sync_lock.lock().await;
        self.mark_drift();
        self.push().await
    }

    fn mark_drift(&self) {
        let name = self.node_name().to_string();
        let node = self.node();
        let (remote_node, remote_services, remote_checks) = self.server.peek(|s| {
            let (_, found) = s.catalog_node(&name);
            let services: Vec<Service> = found
                .map(|(_, svcs)| svcs.into_iter().cloned().collect())
                .unwrap_or_default();
            let (_, checks) = s.node_health(&name);
            let checks: Vec<HealthCheck> = checks.into_iter().cloned().collect();
            (s.node(&name).cloned(), services, checks)
        });
        let now = Instant::now();
        let mut st = self.state();
        st.node_in_sync = remote_node.is_some_and(|r| r.same_as(&node));
        for r in &remote_services {
            match st.services.get_mut(&r.id) {
                Some(local) => {
                    if local.def.service.enable_tag_override {
                        local.def.service.tags = r.tags.clone();
                    }
                    if !local.def.service.same_as(r) {
                        local.in_sync = false;
                    }
                }
                None if r.id != CONSUL_SERVICE => {
                    st.deleted_services.insert(r.id.clone());
                }
                None => {}
            }
        }
        let remote_ids: Vec<&str> = remote_services.iter().map(|r| r.id.as_str()).collect();
        for s in st.services.values_mut() {
            if !remote_ids.contains(&s.def.service.id.as_str()) {
                s.in_sync = false;
            }
        }
        for r in &remote_checks {
            match st.checks.get_mut(&r.check_id) {
                Some(local) => {
                    let mut mine = local.row.clone();
                    if local.output_deferred_until.is_some_and(|d| d > now) {
                        mine.output = r.output.clone();
                    }
                    if !same_check(&mine, r) {
                        local.in_sync = false;
                    }
                }
                None if r.check_id != SERF_HEALTH => {
                    st.deleted_checks.insert(r.check_id.clone());
                }
                None => {}
            }
        }
        let remote_check_ids: Vec<&str> =
            remote_checks.iter().map(|r| r.check_id.as_str()).collect();
        for c in st.checks.values_mut() {
            if !remote_check_ids.contains(&c.row.check_id.as_str()) {
                c.in_sync = false;
            }
        }
    }

    /// Plans the writes under the lock, runs them together, and marks what succeeded.
    async fn push(&self) -> Result<(), ServerError> {
        let node = self.node();
        let name = node.name.clone();
        let now = Instant::now();
        let mut plan: Vec<(Write, Command)> = Vec::new();
        {
            let st = self.state();
            let node_in_sync = st.node_in_sync;
            let register =
                |service: Option<Service>, checks: Vec<HealthCheck>| Command::CatalogRegister {
                    req: Box::new(RegisterRequest {
                        node: node.clone(),
                        skip_node_update: node_in_sync,
                        service,
                        checks,
                    }),
                    now_ms: now_ms(),
                };
            let due = |c: &crate::local::LocalCheck| {
                !c.in_sync && c.output_deferred_until.is_none_or(|d| d <= now)
            };
            let mut piggybacked: Vec<&str> = Vec::new();
            for s in st.services.values().filter(|s| !s.in_sync) {
                let checks: Vec<&crate::local::LocalCheck> = st
                    .checks
                    .values()
                    .filter(|c| c.row.service_id == s.def.service.id && !c.in_sync)
                    .collect();
                piggybacked.extend(checks.iter().map(|c| c.row.check_id.as_str()));
                plan.push((
                    Write::Service {
                        id: s.def.service.id.clone(),
                        version: s.version,
                        checks: checks
                            .iter()
                            .map(|c| (c.row.check_id.clone(), c.version))
                            .collect(),
                    },
                    register(
                        Some(s.def.service.clone()),
                        checks.iter().map(|c| c.row.clone()).collect(),
                    ),
                ));
            }
            for c in st.checks.values().filter(|c| due(c)) {
                if piggybacked.contains(&c.row.check_id.as_str()) {
                    continue;
                }
                plan.push((
                    Write::Check {
                        id: c.row.check_id.clone(),
                        version: c.version,
                    },
                    register(None, vec![c.row.clone()]),
                ));
            }
            if !node_in_sync && plan.is_empty() {
                plan.push((Write::Node, register(None, Vec::new())));
            }
            let deregister =
                |service_id: Option<String>, check_id: Option<String>| Command::CatalogDeregister {
                    req: DeregisterRequest {
                        node: name.clone(),
                        service_id,
                        check_id,
                    },
                    now_ms: now_ms(),
                };
            for id in &st.deleted_services {
                plan.push((
                    Write::ServiceGone(id.clone()),
                    deregister(Some(id.clone()), None),
                ));
            }
            for id in &st.deleted_checks {
                plan.push((
                    Write::CheckGone(id.clone()),
                    deregister(None, Some(id.clone())),
                ));
            }
        }
        if plan.is_empty() {
            return Ok(());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (what, cmd) in plan {
            let server: Arc<Server> = self.server.clone();
            tasks.spawn(async move { (what, server.write(cmd).await) });
        }
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            let Ok((what, result)) = done else { continue };
            match result {
                Ok(_) => self.mark_synced(what),
                Err(e) => {
                    tracing::warn!(error = %e, "anti-entropy write failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn mark_synced(&self, what: Write) {
        let mut st = self.state();
        match what {
            Write::Node => st.node_in_sync = true,
            Write::Service {
                id,
                version,
                checks,
            } => {
                st.node_in_sync = true;
                if let Some(s) = st.services.get_mut(&id).filter(|s| s.version == version) {
                    s.in_sync = true;
                }
                for (cid, v) in checks {
                    st.mark_check_synced(&cid, v);
                }
            }
            Write::Check { id, version } => {
                st.node_in_sync = true;
                st.mark_check_synced(&id, version);
            }
            Write::ServiceGone(id) => {
                st.deleted_services.remove(&id);
            }
            Write::CheckGone(id) => {
                st.deleted_checks.remove(&id);
            }
        }
    }
}

/// Same check as far as the catalog shows (the store fills service name and tags itself).
fn same_check(local: &HealthCheck, remote: &HealthCheck) -> bool {
    let strip = |c: &HealthCheck| HealthCheck {
        create_index: 0,
        modify_index: 0,
        ..c.clone()
    };
    strip(local) == strip(remote)
}

#[cfg(test)]
mod tests {
    use super::scale_factor;

    #[test]
    fn scale_factor_is_consuls() {
        assert_eq!(scale_factor(1), 1);
        assert_eq!(scale_factor(128), 1);
        assert_eq!(scale_factor(129), 2);
        assert_eq!(scale_factor(256), 2);
        assert_eq!(scale_factor(257), 3);
        assert_eq!(scale_factor(8192), 7);
    }
}
