//! Leadership transfer (`POST /v1/operator/raft/transfer-leader`).
//!
//! openraft 0.9 has no TimeoutNow, and a follower refuses to vote while its leader lease
//! (openraft's, an election timeout long) is fresh. So a transfer is built from the runtime
//! switches openraft does have, in three steps coordinated by the leader over server RPC
//! (`Forward.Election`):
//!
//! ```text
//!  leader L                         target T                      every other voter F
//!  1. ───── hold(window) ─────────────────────────────────────────► stop campaigning
//!  2. stop heartbeats, campaigns and writes (so every lease runs out), and wait until T
//!     has every entry L has (else a voter with a longer log would refuse T for ever)
//!  3. ───── campaign(window) ──────► trigger elections until it leads (F and L vote for it
//!                                    once their leases expired; T's log is as long as any)
//!  4. wait until another leader is seen; switch everything back on
//! ```
//!
//!  5. ───── release ───────────────────────────────────────────────► campaign again
//!
//! Every switch turns itself back on: a held voter when the leader releases it, or after its
//! hold at the latest; the old leader when the transfer ends either way (a drop guard). If T
//! dies mid-way, the cluster elects as usual after the hold.
//! Writes wait (up to `rpc_hold_timeout`) for the new leader rather than failing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lotse_consensus::NodeId;

use crate::operator::RaftServer;
use crate::{Server, ServerError};

/// How long a transfer may take, in leases (16 × 200 ms × raft_multiplier).
const WINDOW_LEASES: u32 = 16;

/// The longest hold a peer may ask for (its request is clamped to this).
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(60);

/// Puts the old leader's switches back however the transfer ends, even if the request that
/// runs it is dropped half-way (its caller went away).
struct Quiet<'a> {
    server: &'a Server,
}

impl Drop for Quiet<'_> {
    fn drop(&mut self) {
        self.server.transferring.store(false, Ordering::Release);
        self.server.consensus.raft.runtime_config().heartbeat(true);
        self.server.set_campaigning(true);
    }
}

impl Server {
    /// Hands leadership to the voter with ID `target` (a server's node ID, as
    /// `/v1/operator/raft/configuration` lists it), or to the most caught-up other voter.
    /// Leader only. Returns the new leader's ID.
    pub async fn transfer_leadership(&self, target: Option<&str>) -> Result<String, ServerError> {
        if !self.is_leader() {
            return Err(self.not_leader_error());
        }
        let me = self.consensus.node_id;
        let (_, servers) = self.raft_configuration();
        let target = self.transfer_target(&servers, target)?;
        let window = self.lease * WINDOW_LEASES;
        let call_timeout = self.lease * 5;
        // One transfer at a time.
        if self
            .transferring
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(ServerError::Invalid(
                "a leadership transfer is already under way".into(),
            ));
        }
        let quiet = Quiet { server: self };
        // The holds outlast the catch-up and the campaign, each at most one window.
        let hold = window * 2 + call_timeout * 2;

        // 1. The other voters hold their elections, so that the target's is the one that wins.
        let others: Vec<String> = servers
            .iter()
            .filter(|s| s.voter && s.raft_id != me && s.raft_id != target.raft_id)
            .map(|s| s.address.clone())
            .collect();
        self.hold_voters(&others, hold, call_timeout).await;

        // 2. This leader goes quiet: no heartbeats, no campaign, no writes (`transferring`,
        // set above, holds writes and reads back).
        self.consensus.raft.runtime_config().heartbeat(false);
        self.set_campaigning(false);
        tracing::info!(to = %target.node, id = %target.id, "transferring leadership");
        let caught_up = self.wait_caught_up(target.raft_id, window).await;

        // 3. The target runs until it leads.
        let campaign = match caught_up {
            Err(e) => Err(e),
            Ok(_) => match self.consensus.peers.forward_client(&target.address) {
                Ok(c) => c
                    .election(true, window, window + call_timeout)
                    .await
                    .map_err(|e| ServerError::Raft(e.to_string())),
                Err(e) => Err(ServerError::Raft(e.to_string())),
            },
        };
        // 4. The target leads (seen here once it replicates to this server).
        let target_id = target.raft_id;
        let moved = self
            .consensus
            .raft
            .wait(Some(self.lease * 5))
            .metrics(
                |m| m.current_leader == Some(target_id),
                "the target leading",
            )
            .await
            .is_ok();
        drop(quiet);
        // The holds end now rather than after their window: should the new leader fail soon,
        // the others must be free to elect the next one.
        self.hold_voters(&others, Duration::ZERO, call_timeout)
            .await;
        match (moved, campaign) {
            (true, _) => {
                tracing::info!(to = %target.node, "leadership transferred");
                Ok(target.id.clone())
            }
            (false, Err(e)) => Err(ServerError::Raft(format!(
                "leadership transfer to {} failed: {e}",
                target.id
            ))),
            (false, Ok(_)) => Err(ServerError::Raft(format!(
                "leadership transfer to {} did not complete in {window:?}",
                target.id
            ))),
        }
    }

    /// Asks each of `voters` to hold its elections for `hold` (zero: end a hold now), at once
    /// and in parallel. A voter out of reach cannot vote for anyone either, so a failure is
    /// logged and the transfer goes on.
    async fn hold_voters(&self, voters: &[String], hold: Duration, timeout: Duration) {
        let mut calls = tokio::task::JoinSet::new();
        for addr in voters {
            let peers = self.consensus.peers.clone();
            let addr = addr.clone();
            calls.spawn(async move {
                let sent = match peers.forward_client(&addr) {
                    Ok(c) => c.election(false, hold, timeout).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if let Err(e) = sent {
                    tracing::warn!(server = %addr, error = %e, "could not hold or release a voter's elections");
                }
            });
        }
        calls.join_all().await;
    }

    /// The named voter, or the other voter that has replicated the most.
    fn transfer_target<'a>(
        &self,
        servers: &'a [RaftServer],
        target: Option<&str>,
    ) -> Result<&'a RaftServer, ServerError> {
        let me = self.consensus.node_id;
        let chosen = match target {
            Some(id) => servers
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(|| ServerError::Invalid(format!("cannot find peer {id:?}")))?,
            None => {
                let matched = self.matched_indexes();
                servers
                    .iter()
                    .filter(|s| s.voter && s.raft_id != me)
                    .max_by_key(|s| matched.get(&s.raft_id).copied().unwrap_or(0))
                    .ok_or_else(|| {
                        ServerError::Invalid("no other voter to transfer leadership to".into())
                    })?
            }
        };
        if chosen.raft_id == me {
            return Err(ServerError::Invalid(format!(
                "{} is already the leader",
                chosen.id
            )));
        }
        if !chosen.voter {
            return Err(ServerError::Invalid(format!(
                "{} is not a voter and cannot lead",
                chosen.id
            )));
        }
        Ok(chosen)
    }

    /// Waits until `target` holds every entry this leader has, and no new entry arrived for
    /// a moment (a batch the batcher was already writing when the transfer began).
    async fn wait_caught_up(&self, target: NodeId, window: Duration) -> Result<(), ServerError> {
        const SETTLE: Duration = Duration::from_millis(25);
        let deadline = tokio::time::Instant::now() + window;
        let progress = || {
            let m = self.consensus.raft.metrics();
            let m = m.borrow();
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&target).copied().flatten())
                .map(|l| l.index);
            (m.last_log_index, matched)
        };
        loop {
            let (last, matched) = progress();
            if matched >= last {
                tokio::time::sleep(SETTLE).await;
                let (last_now, matched_now) = progress();
                if last_now == last && matched_now >= last_now {
                    return Ok(());
                }
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::Raft(format!(
                    "the target did not catch up (at {matched:?} of {last:?})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How far each follower has replicated (leader only).
    fn matched_indexes(&self) -> std::collections::HashMap<NodeId, u64> {
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        m.replication
            .iter()
            .flatten()
            .map(|(id, log)| (*id, log.map_or(0, |l| l.index)))
            .collect()
    }

    /// This server starts no election for `window` (a transfer to another server is under
    /// way), then campaigns as usual again unless a later hold or a stop says otherwise.
    pub(crate) fn hold_elections(self: &Arc<Self>, window: Duration) {
        if window.is_zero() {
            // The transfer is over: campaign as usual again.
            self.held_until_ms.store(0, Ordering::Release);
            self.set_campaigning(true);
            return;
        }
        let window = window.min(MAX_HOLD);
        let until = self.started.elapsed() + window;
        self.held_until_ms
            .fetch_max(until.as_millis() as u64, Ordering::AcqRel);
        self.set_campaigning(false);
        let server = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let Some(s) = server.upgrade() else { return };
            s.set_campaigning(true);
        });
    }

    /// Turns this server's elections on or off. On is refused while a hold lasts, while a
    /// transfer away from it is under way, and for good once it stopped campaigning (it is
    /// shutting down); one lock orders every switch, so a stop is never undone.
    pub(crate) fn set_campaigning(&self, on: bool) {
        let _order = self
            .campaign_switch
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now_ms = self.started.elapsed().as_millis() as u64;
        let held = now_ms < self.held_until_ms.load(Ordering::Acquire);
        let allowed = !self.campaign_stopped.load(Ordering::Acquire)
            && !held
            && !self.transferring.load(Ordering::Acquire);
        self.consensus.raft.runtime_config().elect(on && allowed);
    }

    /// Runs for leader until this server leads or `window` passed. Each try is refused until
    /// the voters' leases on the old leader run out; then the first one wins.
    pub(crate) async fn campaign(&self, window: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + window.min(MAX_HOLD);
        let pause = self.lease / 4;
        loop {
            if self.is_leader() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            if let Err(e) = self.consensus.raft.trigger().elect().await {
                tracing::warn!(error = %e, "cannot start an election");
                return false;
            }
            // Wait for this round's votes before trying again.
            let _ = self
                .consensus
                .raft
                .wait(Some(pause))
                .metrics(|m| m.state.is_leader(), "leading")
                .await;
        }
    }

    /// Whether a transfer away from this leader is under way (it takes no writes meanwhile).
    pub(crate) fn is_transferring(&self) -> bool {
        self.transferring.load(Ordering::Acquire)
    }
}
