//! Where a request is served: here, or on the leader over server RPC.
//!
//! ```text
//!  write(cmd) ─► leader here (lease fresh)? ─► batcher ─► Raft
//!            └─► a leader known elsewhere? ─► Forward.Apply on it (once sent, never re-sent)
//!            └─► none: wait for one, up to rpc_hold_timeout, then "No cluster leader"
//!  default / consistent read on a follower ─► Forward.ReadIndex on the leader ─► wait until
//!            this replica applied that index ─► serve from the local store
//! ```
//!
//! Reads are served locally after a read index instead of being forwarded whole, so a blocking
//! query parks on the server the client talks to and costs the leader one small RPC per wake.
//!
//! A forwarded write is retried only when it certainly was not applied: the connection was
//! refused, or the remote answered that it is not the leader before proposing anything. A
//! write that timed out after it was sent, or whose proposal openraft dropped when its
//! leader lost office (`LeadershipLost`: another leader may still commit it), is reported as
//! an error and never re-sent, as in Consul.

use std::time::Duration;

use lotse_core::{Command, Outcome};
use tokio::time::Instant;

use crate::link::{self, LinkError};
use crate::{Consistency, Server, ServerError};

/// How often a request waiting for a leader looks again.
const LEADER_POLL: Duration = Duration::from_millis(25);
/// The least time one forwarded attempt gets (a last attempt must not be doomed by a
/// near-zero deadline).
const MIN_ATTEMPT: Duration = Duration::from_millis(200);

/// Where a request goes right now.
enum Route {
    /// This server leads and its lease is fresh.
    Local,
    /// The leader's server RPC address.
    Leader(String),
    /// No usable leader yet.
    Unknown,
}

impl Server {
    fn route(&self) -> Route {
        if self.is_leader() {
            // A leader handing over office takes no writes: they wait for the next one.
            if self.lease_fresh() && !self.is_transferring() {
                Route::Local
            } else {
                Route::Unknown
            }
        } else {
            match self.leader_addr() {
                Some(addr) => Route::Leader(addr),
                None => Route::Unknown,
            }
        }
    }

    /// Appends `cmd` to the log (on the leader, batched with whatever else is being written)
    /// and waits until it is applied. Returns the log index and the outcome; a `Rejected`
    /// outcome is an error.
    pub async fn write(&self, cmd: Command) -> Result<(u64, Outcome), ServerError> {
        let deadline = Instant::now() + self.hold_timeout;
        let mut encoded: Option<Vec<u8>> = None;
        loop {
            match self.route() {
                Route::Local => match self.write_local(cmd.clone()).await {
                    // Refused before it was proposed (see `write_local`): certainly not
                    // applied, so it is tried again on whoever leads now. A proposal openraft
                    // gave up on comes back as `LeadershipLost` and is reported instead.
                    Err(ServerError::NotLeader | ServerError::NoLeader) => {}
                    other => return other,
                },
                Route::Leader(addr) => {
                    // Encoded once, re-sent as is on a retry.
                    let payload = encoded
                        .get_or_insert_with(|| link::encode_command(&cmd))
                        .clone();
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ServerError::NoLeader);
                    }
                    let attempt = left.max(MIN_ATTEMPT);
                    match link::apply(&self.consensus.peers, &addr, payload, attempt).await {
                        // The leader's openraft refused before appending (it lost office
                        // meanwhile): as above, certainly not applied.
                        Ok(Err(ServerError::NotLeader | ServerError::NoLeader)) => {}
                        Ok(answer) => return answer,
                        Err(LinkError::NotSent(why)) => {
                            tracing::debug!(leader = %addr, %why, "write not forwarded; retrying");
                        }
                        Err(LinkError::Failed(why)) => return Err(ServerError::Raft(why)),
                    }
                }
                Route::Unknown => {}
            }
            if Instant::now() >= deadline {
                return Err(ServerError::NoLeader);
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// A write of the leader's own housekeeping (session expiry, members into the catalog,
    /// tombstone reaping): made only while this server leads, with a fresh lease, in the term
    /// its duties loop took office in, and never forwarded. A deposed leader's decisions
    /// (sessions it saw expire while cut off, members it saw fail) must not reach the next
    /// leader once the partition heals.
    pub(crate) async fn leader_write(&self, cmd: Command) -> Result<(u64, Outcome), ServerError> {
        let term = self.duty_term.load(std::sync::atomic::Ordering::Acquire);
        if term == 0
            || self.confirmed_term() != term
            || !self.lease_fresh()
            || self.is_transferring()
        {
            return Err(ServerError::NotLeader);
        }
        self.write_local(cmd).await
    }

    /// Proposes `cmd` through this node's batcher (the caller knows it leads).
    pub(crate) async fn write_local(
        &self,
        mut cmd: Command,
    ) -> Result<(u64, Outcome), ServerError> {
        // The leader's clock, whoever took the request: see `Command::restamp`.
        cmd.restamp(crate::now_ms());
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.proposals
            .send(crate::batcher::Proposal { cmd, reply })
            .map_err(|_| ServerError::ShuttingDown)?;
        match tokio::time::timeout(self.hold_timeout, answer).await {
            Ok(r) => r.map_err(|_| ServerError::ShuttingDown)?,
            // Hashicorp raft's text for an apply that did not commit in time.
            Err(_) => Err(ServerError::Raft("timed out enqueuing operation".into())),
        }
    }

    /// A follower's `default`/`consistent` read: the leader names an index that covers every
    /// acknowledged write, and this replica waits until it has applied it. Reads are
    /// idempotent, so any failure short of a refusal is tried again (on whoever leads then)
    /// until the hold timeout, each attempt bounded by about an election timeout.
    pub(crate) async fn follower_read_index(&self, mode: Consistency) -> Result<(), ServerError> {
        let deadline = Instant::now() + self.hold_timeout;
        let per_attempt = self.lease * 5;
        loop {
            if self.is_leader() {
                return self.check_consistency_as_leader(mode).await;
            }
            if let Some(addr) = self.leader_addr() {
                let left = deadline.saturating_duration_since(Instant::now());
                let attempt = left.min(per_attempt).max(MIN_ATTEMPT);
                let consistent = mode == Consistency::Consistent;
                match link::read_index(&self.consensus.peers, &addr, consistent, attempt).await {
                    Ok(Ok(index)) => return self.wait_applied(index, deadline).await,
                    Ok(Err(e @ ServerError::PermissionDenied)) => return Err(e),
                    Ok(Err(e)) => {
                        tracing::debug!(leader = %addr, error = %e, "read index refused; retrying")
                    }
                    Err(LinkError::NotSent(why) | LinkError::Failed(why)) => {
                        tracing::debug!(leader = %addr, %why, "read index not answered; retrying");
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ServerError::NoLeader);
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), ServerError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.consensus
            .raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|_| {
                ServerError::Raft(format!("this server did not apply index {index} in time"))
            })
    }

    /// The leader's half of a forwarded read: confirm as `mode` asks, then name the index
    /// every acknowledged write is at or below.
    pub async fn read_index(&self, mode: Consistency) -> Result<u64, ServerError> {
        if !self.is_leader() {
            return Err(self.not_leader_error());
        }
        self.check_consistency_as_leader(mode).await?;
        Ok(self.applied_index())
    }

    /// "Not the leader" when another is known, else "No cluster leader".
    pub(crate) fn not_leader_error(&self) -> ServerError {
        if self.leader_addr().is_some() {
            ServerError::NotLeader
        } else {
            ServerError::NoLeader
        }
    }
}

impl Server {
    /// Hands a whole HTTP API request to the server at `addr` (the leader, for operations
    /// only it can do) and returns its answer. Never re-sent once it may have arrived.
    pub async fn forward_http(
        &self,
        addr: &str,
        request: lotse_consensus::rpc::HttpRequest,
    ) -> Result<lotse_consensus::rpc::HttpReply, ServerError> {
        let client = self
            .consensus
            .peers
            .forward_client(addr)
            .map_err(|e| ServerError::Raft(e.to_string()))?;
        client
            .http(request, self.hold_timeout + crate::query::MAX_WAIT)
            .await
            .map_err(|e| ServerError::Raft(e.to_string()))
    }
}
