//! [`RemoteUpstream`]: a client agent's [`Upstream`], each method one `Forward.AgentCall` to a
//! server (with failover, [`Servers`]). Whether a leader is known and the node count are
//! answered from the last status a server gave (asked every [`STATUS_EVERY`]), because the
//! trait asks for them as cheap local facts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use lotse_consensus::codec;
use lotse_core::catalog::Node;
use lotse_core::{Command, Outcome};
use lotse_server::ServerError;

use super::servers::{Servers, Tries};
use super::wire::{AgentCall, AgentReply, Answer};
use crate::upstream::{AliasStatus, AliasTarget, NodeView, Upstream};

/// How often the client refreshes "leader known" and the node count.
pub const STATUS_EVERY: Duration = Duration::from_secs(2);

/// Added to a call's own waiting (the server's hold for a leader, an alias watch's wait) for
/// the round trip.
const SLACK: Duration = Duration::from_secs(5);

pub struct RemoteUpstream {
    node: Node,
    servers: Arc<Servers>,
    /// How long a server may hold a write while it has no leader (its `rpc_hold_timeout`).
    hold: Duration,
    leader_known: AtomicBool,
    nodes: AtomicUsize,
}

impl RemoteUpstream {
    /// `node` is this agent's node record; `hold` the servers' `rpc_hold_timeout`. Starts the
    /// status refresh, which ends when the upstream is dropped.
    pub fn start(node: Node, servers: Arc<Servers>, hold: Duration) -> Arc<RemoteUpstream> {
        let up = Arc::new(RemoteUpstream {
            node,
            servers,
            hold,
            leader_known: AtomicBool::new(false),
            nodes: AtomicUsize::new(1),
        });
        tokio::spawn(refresh_status(Arc::downgrade(&up)));
        up
    }

    async fn call(&self, tries: Tries, call: AgentCall, timeout: Duration) -> Answer {
        let bytes = codec::encode(&call);
        let reply = self
            .servers
            .call(tries, |client| {
                let bytes = bytes.clone();
                async move { client.agent_call(bytes, timeout).await }
            })
            .await;
        let answer = reply.and_then(|b| {
            codec::decode::<Answer>(&b)
                .map_err(|e| ServerError::Rpc(format!("cannot decode a server's answer: {e}")))?
        });
        match &answer {
            Ok(AgentReply::Status { leader_known, .. }) => self.note_leader(*leader_known),
            // A committed write proves a leader; a read from a replica proves nothing.
            Ok(AgentReply::Written { .. }) => self.note_leader(true),
            Ok(_) => {}
            Err(ServerError::NoLeader) => {
                self.note_leader(false);
                self.servers.demote_preferred();
            }
            Err(ServerError::NoServers) => self.note_leader(false),
            Err(_) => {}
        }
        answer
    }

    fn note_leader(&self, known: bool) {
        self.leader_known.store(known, Ordering::Relaxed);
    }

    async fn status(&self) -> Result<bool, ServerError> {
        match self
            .call(Tries::AnyFailure, AgentCall::Status, SLACK)
            .await?
        {
            AgentReply::Status {
                leader_known,
                nodes,
            } => {
                self.nodes.store(
                    usize::try_from(nodes).unwrap_or(usize::MAX),
                    Ordering::Relaxed,
                );
                Ok(leader_known)
            }
            other => Err(unexpected(&other)),
        }
    }
}

async fn refresh_status(up: Weak<RemoteUpstream>) {
    loop {
        let Some(u) = up.upgrade() else { return };
        if let Err(e) = u.status().await {
            tracing::debug!(error = %e, "cannot refresh the cluster's status from a server");
        }
        drop(u);
        tokio::time::sleep(STATUS_EVERY).await;
    }
}

fn unexpected(reply: &AgentReply) -> ServerError {
    ServerError::Rpc(format!("unexpected answer from a server: {reply:?}"))
}

#[async_trait]
impl Upstream for RemoteUpstream {
    fn node_name(&self) -> &str {
        &self.node.name
    }

    fn datacenter(&self) -> &str {
        &self.node.datacenter
    }

    fn self_node(&self) -> Node {
        self.node.clone()
    }

    fn node_count(&self) -> usize {
        self.nodes.load(Ordering::Relaxed)
    }

    fn has_leader(&self) -> bool {
        self.leader_known.load(Ordering::Relaxed)
    }

    async fn wait_leader_known(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.status().await.unwrap_or(false) {
                return true;
            }
            if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn write(&self, cmd: Command) -> Result<(u64, Outcome), ServerError> {
        match self
            .call(
                Tries::OnlyUndelivered,
                AgentCall::Write(cmd),
                self.hold + SLACK,
            )
            .await?
        {
            AgentReply::Written { index, outcome } => Ok((index, outcome)),
            other => Err(unexpected(&other)),
        }
    }

    async fn node_view(&self, node: &str) -> Result<NodeView, ServerError> {
        let call = AgentCall::NodeView {
            node: node.to_string(),
        };
        match self.call(Tries::AnyFailure, call, SLACK).await? {
            AgentReply::NodeView(view) => Ok(view),
            other => Err(unexpected(&other)),
        }
    }

    async fn watch_health(
        &self,
        target: &AliasTarget,
        last_index: u64,
        wait: Duration,
    ) -> Result<(u64, AliasStatus), ServerError> {
        let call = AgentCall::WatchHealth {
            target: target.clone(),
            last_index,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        match self.call(Tries::AnyFailure, call, wait + SLACK).await? {
            AgentReply::Health { index, status } => Ok((index, status)),
            other => Err(unexpected(&other)),
        }
    }
}
