//! What `/v1/operator/raft/*` and `/v1/operator/autopilot/health` report and change.
//!
//! Raft identifies servers by a number derived from the node's UUID; operators know them by
//! UUID, node name and address (Consul's raft protocol 3 uses the UUID as the Raft ID), so
//! every answer maps back through the gossip pool's members (and this server's own config).

use std::collections::BTreeMap;
use std::time::Duration;

use lotse_consensus::NodeId;

use crate::members::{MemberInfo, MemberState};
use crate::{raft_id, Server, ServerError};

/// One server of the Raft configuration (`/v1/operator/raft/configuration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftServer {
    pub raft_id: NodeId,
    /// The node's UUID, or the address if the pool does not know the server.
    pub id: String,
    /// The node name, or `(unknown)`.
    pub node: String,
    pub address: String,
    pub leader: bool,
    pub voter: bool,
}

/// How an operator names a server to remove.
#[derive(Debug, Clone)]
pub enum PeerRef {
    Id(String),
    Address(String),
}

/// One server's health as autopilot sees it (`/v1/operator/autopilot/health`).
#[derive(Debug, Clone)]
pub struct ServerHealth {
    pub server: RaftServer,
    /// Serf's view: alive, failed, left, leaving, or none.
    pub serf_status: &'static str,
    /// Time since the leader last heard from it (zero for the leader itself).
    pub last_contact: Option<Duration>,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
}

impl Server {
    /// The members by Raft ID (this server included even before gossip lists it).
    fn members_by_raft_id(&self) -> BTreeMap<NodeId, MemberInfo> {
        let mut by_id: BTreeMap<NodeId, MemberInfo> = self
            .members()
            .iter()
            .filter(|m| !m.node_id.is_empty())
            .map(|m| (raft_id(&m.node_id), m.clone()))
            .collect();
        by_id
            .entry(self.consensus.node_id)
            .or_insert_with(|| MemberInfo {
                name: self.config.node_name.clone(),
                node_id: self.config.node_id.clone(),
                addr: self.config.advertise_addr.clone(),
                datacenter: self.config.datacenter.clone(),
                state: MemberState::Alive,
                server_port: Some(self.config.server_port),
            });
        by_id
    }

    /// The Raft configuration and the log index it was made at.
    pub fn raft_configuration(&self) -> (u64, Vec<RaftServer>) {
        let members = self.members_by_raft_id();
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let servers = membership
            .nodes()
            .map(|(id, node)| {
                let member = members.get(id);
                RaftServer {
                    raft_id: *id,
                    id: member.map_or_else(|| node.addr.clone(), |m| m.node_id.clone()),
                    node: member.map_or_else(|| "(unknown)".to_string(), |m| m.name.clone()),
                    address: node.addr.clone(),
                    leader: m.current_leader == Some(*id),
                    voter: voters.contains(id),
                }
            })
            .collect();
        let index = m.membership_config.log_id().map_or(0, |l| l.index);
        (index, servers)
    }

    /// Removes a server from the Raft configuration (`DELETE /v1/operator/raft/peer`).
    /// Leader only; the error texts are Consul's.
    pub async fn remove_peer(&self, peer: PeerRef) -> Result<(), ServerError> {
        let (_, servers) = self.raft_configuration();
        let found = servers.iter().find(|s| match &peer {
            PeerRef::Id(id) => s.id == *id,
            PeerRef::Address(addr) => s.address == *addr,
        });
        let Some(server) = found else {
            let what = match &peer {
                PeerRef::Id(id) => format!("id {id:?}"),
                PeerRef::Address(a) => format!("address {a:?}"),
            };
            return Err(ServerError::Invalid(format!(
                "{what} was not found in the Raft configuration"
            )));
        };
        self.consensus
            .remove_server(server.raft_id)
            .await
            .map(|_| ())
            .map_err(|e| ServerError::Raft(e.to_string()))
    }

    /// Autopilot's view of every server in the configuration. Meaningful on the leader.
    pub fn autopilot_health(&self) -> Vec<ServerHealth> {
        let cfg = self.autopilot_config();
        let members = self.members_by_raft_id();
        let (_, servers) = self.raft_configuration();
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        let last_index = m.last_log_index.unwrap_or(0);
        let replication = m.replication.clone().unwrap_or_default();
        let quorum_ack = m.millis_since_quorum_ack;
        servers
            .into_iter()
            .map(|server| {
                let member = members.get(&server.raft_id);
                let serf_status = match member.map(|m| m.state) {
                    Some(MemberState::Alive) => "alive",
                    Some(MemberState::Failed) => "failed",
                    Some(MemberState::Left) => "left",
                    Some(MemberState::Leaving) => "leaving",
                    None => "none",
                };
                let (index, contact) = if server.raft_id == self.consensus.node_id {
                    (last_index, Some(Duration::ZERO))
                } else {
                    let matched = replication
                        .get(&server.raft_id)
                        .and_then(|l| l.map(|l| l.index))
                        .unwrap_or(0);
                    (matched, quorum_ack.map(Duration::from_millis))
                };
                let healthy = serf_status == "alive"
                    && contact.is_some_and(|c| c <= cfg.last_contact_threshold.max(self.lease))
                    && last_index.saturating_sub(index) <= cfg.max_trailing_logs;
                ServerHealth {
                    server,
                    serf_status,
                    last_contact: contact,
                    last_term: m.current_term,
                    last_index: index,
                    healthy,
                }
            })
            .collect()
    }
}

impl Server {
    /// The channels to other servers (for the agent's own RPC calls).
    pub fn rpc_peers(&self) -> lotse_consensus::rpc::Peers {
        self.consensus.peers.clone()
    }

    /// A leaving server takes itself out of the Raft configuration first, so the quorum
    /// shrinks with it instead of counting a server that will not come back. The leader
    /// removes itself; a follower asks the leader. A lone server has nothing to leave.
    pub async fn leave_raft(&self) -> Result<(), ServerError> {
        let me = self.consensus.node_id;
        let (_, servers) = self.raft_configuration();
        let voters = servers.iter().filter(|s| s.voter).count();
        if !servers.iter().any(|s| s.raft_id == me) || voters <= 1 {
            return Ok(());
        }
        if self.is_leader() {
            self.consensus
                .remove_server(me)
                .await
                .map_err(|e| ServerError::Raft(e.to_string()))?;
        } else {
            let leader = self.leader_addr().ok_or(ServerError::NoLeader)?;
            let request = lotse_consensus::rpc::HttpRequest {
                method: "DELETE".into(),
                path_and_query: format!("/v1/operator/raft/peer?id={}", self.config.node_id),
                headers: vec![],
                body: vec![],
            };
            let reply = self.forward_http(&leader, request).await?;
            if reply.status != 200 {
                return Err(ServerError::Raft(format!(
                    "the leader refused to remove this server ({}): {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                )));
            }
        }
        // Wait (briefly) until the change is visible here.
        let deadline = tokio::time::Instant::now() + self.hold_timeout;
        while tokio::time::Instant::now() < deadline {
            let (_, servers) = self.raft_configuration();
            if !servers.iter().any(|s| s.raft_id == me) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(ServerError::Raft(
            "left the Raft configuration, but did not see it committed".into(),
        ))
    }
}
