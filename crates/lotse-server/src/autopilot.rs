//! Forming the cluster and keeping its Raft configuration in line with gossip: bootstrap
//! after `bootstrap_expect` servers are seen, new servers added as learners and promoted once
//! caught up and stable, servers that left removed, dead ones cleaned up (never below quorum).
//!
//! Consul's autopilot rules, simplified where noted:
//! * a learner becomes a voter once it has been alive for `server_stabilization_time` and its
//!   log trails the leader's by at most `max_trailing_logs` entries;
//! * a failed voter is removed once it has been failed for `server_stabilization_time`, at
//!   most (voters - 1) / 2 at a time (so a quorum remains), never below `min_quorum` voters,
//!   and only by a leader whose lease is fresh.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use lotse_consensus::openraft::BasicNode;
use lotse_consensus::NodeId;

use crate::members::{MemberInfo, MemberState};
use crate::{raft_id, Server, ServerError};

/// Consul's autopilot settings (`autopilot { ... }` and `/v1/operator/autopilot/configuration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutopilotConfig {
    /// Remove dead servers from the Raft configuration (see the module docs); default true.
    pub cleanup_dead_servers: bool,
    /// A server whose last contact with the leader is older than this is unhealthy;
    /// default 200ms.
    pub last_contact_threshold: Duration,
    /// A server this many log entries behind the leader is unhealthy (and not promoted);
    /// default 250.
    pub max_trailing_logs: u64,
    /// Dead servers are not removed when fewer than this many voters would remain; default 0
    /// (no floor).
    pub min_quorum: u32,
    /// How long a new server must be healthy before it is promoted to voter, and a failed
    /// one failed before it is removed; default 10s.
    pub server_stabilization_time: Duration,
}

impl Default for AutopilotConfig {
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: Duration::from_secs(10),
        }
    }
}

/// The leader's memory between ticks: when each learner was first seen caught up.
#[derive(Default)]
pub(crate) struct AutopilotState {
    stable_since: HashMap<NodeId, Instant>,
    /// When each failed voter was first seen failed.
    failed_since: HashMap<NodeId, Instant>,
    /// The failed voters last held back for the quorum's sake (warned about once).
    held_back: BTreeSet<NodeId>,
}

/// The Raft ID and address of a server member.
fn server_of(m: &MemberInfo) -> Option<(NodeId, String)> {
    Some((raft_id(&m.node_id), m.rpc_addr()?))
}

impl Server {
    /// Whether this server has a Raft configuration (bootstrapped, or joined one).
    pub async fn raft_initialized(&self) -> bool {
        self.consensus.raft.is_initialized().await.unwrap_or(false)
    }

    /// Bootstraps the cluster once `expect` servers of this datacenter are alive in the pool
    /// and none of them is part of a cluster yet. Every one of them does the same with the
    /// same set, which openraft accepts: one cluster, never two. Returns whether it did.
    ///
    /// `others_have_peers` is asked about the other servers (over RPC) just before.
    pub async fn bootstrap_expect(
        &self,
        expect: u32,
        members: &[MemberInfo],
        others_have_peers: impl std::future::Future<Output = bool>,
    ) -> Result<bool, ServerError> {
        if self.raft_initialized().await {
            return Ok(false);
        }
        let servers: BTreeMap<NodeId, String> = members
            .iter()
            .filter(|m| m.state == MemberState::Alive && m.datacenter == self.config.datacenter)
            .filter_map(server_of)
            .collect();
        if servers.len() < expect as usize {
            return Ok(false);
        }
        if others_have_peers.await {
            tracing::debug!(
                "not bootstrapping: a server found has Raft peers, or could not be asked"
            );
            return Ok(false);
        }
        let nodes: BTreeMap<NodeId, BasicNode> = servers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
            .collect();
        tracing::info!(servers = ?servers.values().collect::<Vec<_>>(), "found expected servers: bootstrapping the cluster");
        match self.consensus.raft.initialize(nodes).await {
            Ok(()) => Ok(true),
            // Someone else's configuration arrived first: that is the cluster.
            Err(e) => {
                tracing::debug!(error = %e, "bootstrap not needed");
                Ok(false)
            }
        }
    }

    /// The leader's membership duties for one tick: add servers the pool knows, promote
    /// stable learners, remove servers that left and (autopilot) dead ones.
    pub(crate) async fn reconcile_raft(
        &self,
        state: &mut AutopilotState,
    ) -> Result<(), ServerError> {
        let members = self.members();
        let cfg = self.autopilot_config();
        let (voters, voter_addrs, learners, replication, last_index) = {
            let m = self.consensus.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
            let voter_addrs: BTreeMap<NodeId, String> = voters
                .iter()
                .filter_map(|id| membership.get_node(id).map(|n| (*id, n.addr.clone())))
                .collect();
            let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
            let replication: BTreeMap<NodeId, u64> = m
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|(id, l)| (*id, l.map_or(0, |l| l.index)))
                        .collect()
                })
                .unwrap_or_default();
            (
                voters,
                voter_addrs,
                learners,
                replication,
                m.last_log_index.unwrap_or(0),
            )
        };
        // Joining: alive servers the configuration does not have yet start as learners.
        for m in members
            .iter()
            .filter(|m| m.state == MemberState::Alive && m.datacenter == self.config.datacenter)
        {
            let Some((id, addr)) = server_of(m) else {
                continue;
            };
            if voters.contains(&id) || learners.contains(&id) {
                continue;
            }
            tracing::info!(server = %m.name, %addr, "adding server as a Raft learner");
            self.consensus
                .raft
                .add_learner(id, BasicNode::new(addr), false)
                .await
                .map_err(|e| ServerError::Raft(e.to_string()))?;
        }
        // Promotion: a learner alive, caught up and stable for long enough.
        let alive: BTreeSet<NodeId> = members
            .iter()
            .filter(|m| m.state == MemberState::Alive)
            .filter_map(|m| server_of(m).map(|(id, _)| id))
            .collect();
        state.stable_since.retain(|id, _| learners.contains(id));
        let mut promote = BTreeSet::new();
        for id in &learners {
            let matched = replication.get(id).copied().unwrap_or(0);
            let caught_up = last_index.saturating_sub(matched) <= cfg.max_trailing_logs;
            if !(alive.contains(id) && caught_up) {
                state.stable_since.remove(id);
                continue;
            }
            let since = *state.stable_since.entry(*id).or_insert_with(Instant::now);
            if since.elapsed() >= cfg.server_stabilization_time {
                promote.insert(*id);
            }
        }
        // Leaving: servers that left the pool go.
        let left: BTreeSet<NodeId> = members
            .iter()
            .filter(|m| m.state == MemberState::Left)
            .filter_map(|m| server_of(m).map(|(id, _)| id))
            .filter(|id| *id != self.consensus.node_id)
            .collect();
        // Autopilot: dead voters go too, once they have been failed for
        // `server_stabilization_time` (a short partition heals without churn), and only as
        // many as a quorum can lose: at most (voters - 1) / 2 at a time, as raft-autopilot.
        let failed_now: BTreeSet<NodeId> = members
            .iter()
            .filter(|m| m.state == MemberState::Failed)
            .filter_map(|m| server_of(m).map(|(id, _)| id))
            .filter(|id| voters.contains(id) && *id != self.consensus.node_id)
            .collect();
        state.failed_since.retain(|id, _| failed_now.contains(id));
        let mut failed: BTreeSet<NodeId> = failed_now
            .iter()
            .filter(|id| {
                let since = *state.failed_since.entry(**id).or_insert_with(Instant::now);
                since.elapsed() >= cfg.server_stabilization_time
            })
            .copied()
            .collect();
        // A voter whose address now belongs to another alive server (rebuilt there under a
        // new ID) is gone for good: it goes at once, as Consul's leader removes it.
        for (id, addr) in &voter_addrs {
            let replaced = members.iter().any(|m| {
                m.state == MemberState::Alive
                    && m.rpc_addr().as_deref() == Some(addr.as_str())
                    && server_of(m).is_some_and(|(other, _)| other != *id)
            });
            if replaced && *id != self.consensus.node_id {
                failed.insert(*id);
            }
        }
        let mut remove: BTreeSet<NodeId> = left.intersection(&voters).copied().collect();
        if cfg.cleanup_dead_servers && !failed.is_empty() {
            let max_removals = voters.len().saturating_sub(1) / 2;
            let remaining = voters
                .len()
                .saturating_sub(remove.len())
                .saturating_sub(failed.len());
            if failed.len() + remove.len() <= max_removals
                && remaining >= cfg.min_quorum as usize
                && self.lease_fresh()
            {
                remove.extend(failed.iter().copied());
            } else if state.held_back != failed {
                // Said once per set of failed servers, not every tick.
                tracing::warn!(
                    failed = failed.len(),
                    voters = voters.len(),
                    "autopilot: not removing failed servers (it would risk the quorum)"
                );
                state.held_back = failed.clone();
            }
        }
        let stale_learners: Vec<NodeId> = learners.intersection(&left).copied().collect();
        if !promote.is_empty() || !remove.is_empty() {
            let mut next: BTreeSet<NodeId> = voters.clone();
            next.extend(promote.iter().copied());
            next.retain(|v| !remove.contains(v));
            tracing::info!(?promote, ?remove, "changing the Raft voters");
            self.consensus
                .change_membership(next)
                .await
                .map_err(|e| ServerError::Raft(e.to_string()))?;
        }
        for id in stale_learners {
            self.consensus
                .remove_server(id)
                .await
                .map_err(|e| ServerError::Raft(e.to_string()))?;
        }
        Ok(())
    }

    /// The autopilot settings in force.
    pub fn autopilot_config(&self) -> AutopilotConfig {
        self.autopilot.lock().map(|c| *c).unwrap_or_default()
    }

    /// Replaces the autopilot settings (this server only; see the design notes).
    pub fn set_autopilot_config(&self, cfg: AutopilotConfig) {
        if let Ok(mut c) = self.autopilot.lock() {
            *c = cfg;
        }
    }
}
