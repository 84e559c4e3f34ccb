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
//!   agent does not know (never the server's `consul` service nor `serfHealth`), then runs a
//!   partial sync. A sync that finds everything in sync writes nothing at all.
//! * A failed sync (no leader, say) is retried with a full sync after 15 s plus stagger.
//! * An output-only change (`check_update_interval`) leaves its check marked in sync until
//!   its deferral falls due; the loop wakes then and marks it out of sync, so a failed write
//!   leaves nothing in the past to wake it again.
//! * A check written alone that the store refuses because its service is missing from the
//!   catalog marks the service out of sync, and one more round writes both at once.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use lotse_core::catalog::{DeregisterRequest, HealthCheck, RegisterRequest, Service};
use lotse_core::node::SERF_HEALTH;
use lotse_core::{Command, StoreError};
use lotse_server::{now_ms, ServerError, CONSUL_SERVICE};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::agent::Agent;
use crate::local::{later, LocalCheck, LocalState};
use crate::upstream::NodeView;

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
    Duration::try_from_secs_f64(d.as_secs_f64() * rand::random::<f64>()).unwrap_or(d)
}

/// When the next full sync is due after one that ended at `now`: `ae_interval` plus a
/// stagger of up to `ae_interval` × the scale factor.
fn next_full_sync(now: Instant, ae_interval: Duration, nodes: usize) -> Instant {
    let spread = ae_interval.saturating_mul(scale_factor(nodes));
    later(now, ae_interval.saturating_add(stagger(spread)))
}

/// When to try again after a failed sync: 15 s plus up to 15 s.
fn retry_at(now: Instant) -> Instant {
    later(now, RETRY_AFTER + stagger(RETRY_AFTER))
}

/// Runs until the agent goes. It holds the agent only while syncing: waiting, it has the
/// `changed` signal and a weak reference, so dropping the agent is never delayed by it.
pub(crate) async fn run(agent: Weak<Agent>, changed: Arc<Notify>) {
    // The first full sync right after an election rather than a failed write and the 15 s
    // retry (a single server elects itself within milliseconds).
    let Some(upstream) = agent.upgrade().map(|a| a.upstream.clone()) else {
        return;
    };
    upstream.wait_leader_known(Duration::from_secs(10)).await;
    drop(upstream);
    let mut next_full = Instant::now();
    loop {
        let wake = {
            let Some(a) = agent.upgrade() else { return };
            let deferral = a.state().earliest_deferral();
            deferral.map_or(next_full, |d| d.min(next_full))
        };
        tokio::select! {
            _ = changed.notified() => {
                let Some(a) = agent.upgrade() else { return };
                if a.sync_changes().await.is_err() {
                    next_full = next_full.min(retry_at(Instant::now()));
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let Some(a) = agent.upgrade() else { return };
                let full = Instant::now() >= next_full;
                let result = if full { a.sync_full().await } else { a.sync_changes().await };
                let now = Instant::now();
                next_full = match result {
                    Ok(()) if full => {
                        let nodes = a.upstream.node_count();
                        next_full_sync(now, a.options.ae_interval, nodes)
                    }
                    Ok(()) => next_full,
                    // Failed: a full sync later. (A deferral that fell due was released to
                    // the sync flags by the attempt, so it cannot wake this loop again.)
                    Err(_) if full => retry_at(now),
                    Err(_) => next_full.min(retry_at(now)),
                };
            }
        }
    }
}

/// One write anti-entropy makes, and what to mark in sync when it succeeds.
#[derive(Debug)]
enum Write {
    Node,
    Service {
        id: String,
        version: u64,
        checks: Vec<(String, u64)>,
    },
    Check {
        id: String,
        service_id: String,
        version: u64,
    },
    ServiceGone(String),
    CheckGone(String),
}

/// What one round of writes found.
enum Round {
    Done,
    /// A check was refused because its service is missing from the catalog; the service is
    /// marked out of sync now, so one more round writes both.
    Repaired,
    Failed(ServerError),
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
        let remote = self.upstream.node_view(self.node_name()).await?;
        self.mark_drift(remote);
        self.push().await
    }

    /// Marks every difference between the catalog's view of this node and the local state.
    fn mark_drift(&self, remote: NodeView) {
        let node = self.node();
        let NodeView {
            node: remote_node,
            services: remote_services,
            checks: remote_checks,
        } = remote;
        let now = Instant::now();
        let mut st = self.state();
        st.node_in_sync = remote_node.is_some_and(|r| r.same_as(&node));
        // O(local + remote entries): this runs once per `ae_interval`, not per change.
        for r in &remote_services {
            let Some(local) = st.services().get(&r.id) else {
                // Not the agent's: removed, except the service the server registers itself.
                if r.id != CONSUL_SERVICE {
                    st.deleted_services.insert(r.id.clone());
                }
                continue;
            };
            if local.def.service.enable_tag_override {
                st.adopt_remote_tags(&r.id, &r.tags);
            }
            let differs = st
                .services()
                .get(&r.id)
                .is_some_and(|local| !local.def.service.same_as(r));
            if differs {
                st.mark_service_out_of_sync(&r.id);
            }
        }
        let remote_ids: BTreeSet<&str> = remote_services.iter().map(|r| r.id.as_str()).collect();
        let missing: Vec<String> = st
            .services()
            .keys()
            .filter(|id| !remote_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &missing {
            st.mark_service_out_of_sync(id);
        }
        for r in &remote_checks {
            match st.checks().get(&r.check_id) {
                Some(local) => {
                    let mut mine = local.row.clone();
                    if local.output_deferred_until.is_some_and(|d| d > now) {
                        // The output waits for its deferral; only the rest must match.
                        mine.output = r.output.clone();
                    }
                    if !same_check(&mine, r) {
                        st.mark_check_out_of_sync(&r.check_id);
                    }
                }
                // The node's gossip health is the server's, never the agent's to remove.
                None if r.check_id != SERF_HEALTH => {
                    st.deleted_checks.insert(r.check_id.clone());
                }
                None => {}
            }
        }
        let remote_check_ids: BTreeSet<&str> =
            remote_checks.iter().map(|r| r.check_id.as_str()).collect();
        let missing: Vec<String> = st
            .checks()
            .keys()
            .filter(|id| !remote_check_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &missing {
            st.mark_check_out_of_sync(id);
        }
        #[cfg(test)]
        st.assert_consistent();
    }

    /// Writes what is out of sync; a round that repaired a refusal is followed by one more.
    async fn push(&self) -> Result<(), ServerError> {
        for _ in 0..2 {
            match self.push_round().await {
                Round::Done => return Ok(()),
                Round::Failed(e) => return Err(e),
                Round::Repaired => {}
            }
        }
        // Repaired twice (two services lost): what is marked now goes with the next sync.
        self.changed.notify_one();
        Ok(())
    }

    /// Plans the writes under the lock, runs them together, and marks what succeeded.
    async fn push_round(&self) -> Round {
        let plan = {
            let mut st = self.state();
            st.release_deferred(Instant::now());
            plan(&mut st, &self.node())
        };
        if plan.is_empty() {
            return Round::Done;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (what, cmd) in plan {
            let upstream = self.upstream.clone();
            tasks.spawn(async move { (what, upstream.write(cmd).await) });
        }
        let mut first_error = None;
        let mut repaired = false;
        while let Some(done) = tasks.join_next().await {
            let Ok((what, result)) = done else { continue };
            match (result, what) {
                (Ok(_), what) => self.mark_synced(what),
                (
                    Err(ServerError::Rejected(StoreError::MissingService(sid))),
                    Write::Check { service_id, .. },
                ) if sid == service_id => {
                    // The catalog lost the service (deleted through the catalog API, say)
                    // while the agent thinks it in sync: write it again, with its checks.
                    tracing::info!(service = %sid, "anti-entropy found a service missing from the catalog");
                    if self.state().mark_service_out_of_sync(&sid) {
                        repaired = true;
                    }
                }
                (Err(e), what) => {
                    tracing::warn!(error = %e, write = ?what, "anti-entropy write failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Round::Failed(e),
            None if repaired => Round::Repaired,
            None => Round::Done,
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
                st.mark_service_synced(&id, version);
                for (cid, v) in checks {
                    st.mark_check_synced(&cid, v);
                }
            }
            Write::Check { id, version, .. } => {
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
        #[cfg(test)]
        st.assert_consistent();
    }
}

/// The writes that bring the catalog to the local state: each out-of-sync service with its
/// out-of-sync checks in one registration, each other out-of-sync check alone, the node alone
/// if nothing else carries it, and the deregistrations. A check whose service is not a local
/// service (restored before the config that registers its service was loaded) waits: the
/// store would refuse it, and it goes with its service's registration later.
fn plan(st: &mut LocalState, node: &lotse_core::catalog::Node) -> Vec<(Write, Command)> {
    // Never the server's own rows, whatever asked for it.
    st.deleted_services.remove(CONSUL_SERVICE);
    st.deleted_checks.remove(SERF_HEALTH);
    #[cfg(test)]
    st.assert_consistent();
    let node_in_sync = st.node_in_sync;
    let register = |service: Option<Service>, checks: Vec<HealthCheck>| Command::CatalogRegister {
        req: Box::new(RegisterRequest {
            node: node.clone(),
            skip_node_update: node_in_sync,
            service,
            checks,
        }),
        now_ms: now_ms(),
    };
    let deregister =
        |service_id: Option<String>, check_id: Option<String>| Command::CatalogDeregister {
            req: DeregisterRequest {
                node: node.name.clone(),
                service_id,
                check_id,
            },
            now_ms: now_ms(),
        };
    let mut plan: Vec<(Write, Command)> = Vec::new();
    // Only the dirty sets are walked (and each dirty service's own checks): a sync after one
    // registration costs O(that registration), however many entries are in sync.
    let st: &LocalState = st;
    let dirty_check = |id: &String| {
        st.dirty_checks()
            .contains(id)
            .then(|| st.checks().get(id))
            .flatten()
    };
    for s in st
        .dirty_services()
        .iter()
        .filter_map(|id| st.services().get(id))
    {
        let id = &s.def.service.id;
        // Node-level checks (service ID "") always go alone, whatever a service is called.
        let checks: Vec<&LocalCheck> = if id.is_empty() {
            Vec::new()
        } else {
            st.check_ids_of(id).filter_map(dirty_check).collect()
        };
        plan.push((
            Write::Service {
                id: id.clone(),
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
    let alone = st
        .dirty_checks()
        .iter()
        .filter_map(|id| st.checks().get(id))
        .filter(|c| {
            let sid = &c.row.service_id;
            // Out-of-sync services carry their checks (above).
            sid.is_empty() || st.services().get(sid).is_some_and(|s| s.in_sync)
        });
    for c in alone {
        plan.push((
            Write::Check {
                id: c.row.check_id.clone(),
                service_id: c.row.service_id.clone(),
                version: c.version,
            },
            register(None, vec![c.row.clone()]),
        ));
    }
    if !node_in_sync && plan.is_empty() {
        plan.push((Write::Node, register(None, Vec::new())));
    }
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
    plan
}

/// Same check as far as the catalog shows. The store fills a check's node, service name and
/// tags itself from its own rows, so those are not compared.
fn same_check(local: &HealthCheck, remote: &HealthCheck) -> bool {
    let strip = |c: &HealthCheck| HealthCheck {
        node: String::new(),
        service_name: String::new(),
        service_tags: Vec::new(),
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
