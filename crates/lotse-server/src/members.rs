//! Gossip membership into the catalog, as Consul's leader reconciles serf members.
//!
//! The agent hands the server the pool's member list ([`Server::set_members`]); the leader's
//! duty loop ([`crate::sessions::run_leader_duties`]) calls [`Server::reconcile_members`]
//! every tick. Only differences cost a write, so a quiet pool costs one read per tick.
//!
//! * alive: the node is registered with its address and a passing `serfHealth`
//!   ("Agent alive and reachable"); a server also gets its `consul` service;
//! * failed: `serfHealth` turns critical ("Agent not live or unreachable"), which invalidates
//!   the sessions bound to it;
//! * left, or reaped by the pool: the node is deregistered with everything on it;
//! * leaving: nothing yet (Consul waits for left or failed).
//!
//! The server is kept free of the gossip crate: members arrive as [`MemberInfo`].

use std::collections::BTreeMap;
use std::sync::Arc;

use lotse_core::catalog::{CheckStatus, DeregisterRequest, HealthCheck, Node, RegisterRequest};
use lotse_core::node::SERF_HEALTH;
use lotse_core::Command;

use crate::{now_ms, Server, ServerError, CONSUL_SERVICE};

/// What the leader does with a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Alive,
    Leaving,
    Left,
    Failed,
}

/// One gossip member, as the server needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub name: String,
    /// The node's UUID (the `id` tag).
    pub node_id: String,
    /// The node's address (its gossip address).
    pub addr: String,
    pub datacenter: String,
    pub state: MemberState,
    /// Set for servers: their server RPC port (the `port` tag).
    pub server_port: Option<u16>,
}

impl MemberInfo {
    /// The server RPC address of a server member.
    pub fn rpc_addr(&self) -> Option<String> {
        self.server_port.map(|p| format!("{}:{p}", self.addr))
    }
}

/// The output Consul gives a failed member's check.
pub const FAILED_OUTPUT: &str = "Agent not live or unreachable";
/// The output of a live member's check.
pub const ALIVE_OUTPUT: &str = "Agent alive and reachable";

/// The latest member list and names the pool reaped since the leader last looked.
#[derive(Default)]
pub(crate) struct Membership {
    members: std::sync::Mutex<(Arc<Vec<MemberInfo>>, Vec<String>)>,
}

impl Server {
    /// Hands the server the pool's current members (any order; self included).
    pub fn set_members(&self, members: Vec<MemberInfo>) {
        if let Ok(mut m) = self.membership.members.lock() {
            m.0 = Arc::new(members);
        }
    }

    /// The pool forgot `name` (it left or failed long ago): the leader deregisters its node.
    pub fn member_reaped(&self, name: String) {
        if let Ok(mut m) = self.membership.members.lock() {
            if !m.1.contains(&name) {
                m.1.push(name);
            }
        }
    }

    /// The members last handed over.
    pub fn members(&self) -> Arc<Vec<MemberInfo>> {
        self.membership
            .members
            .lock()
            .map(|m| m.0.clone())
            .unwrap_or_default()
    }

    /// Brings the catalog in line with the pool. Leader only (the caller checks).
    pub(crate) async fn reconcile_members(&self) -> Result<(), ServerError> {
        let (members, reaped) = match self.membership.members.lock() {
            Ok(mut m) => (m.0.clone(), std::mem::take(&mut m.1)),
            Err(_) => return Ok(()),
        };
        for (i, name) in reaped.iter().enumerate() {
            let live = members.iter().any(|m| &m.name == name);
            if !live && *name != self.config.node_name {
                if let Err(e) = self.deregister_member(name).await {
                    // Not lost: the names not yet handled are looked at again next tick.
                    for rest in &reaped[i..] {
                        self.member_reaped(rest.clone());
                    }
                    return Err(e);
                }
            }
        }
        for m in members.iter() {
            // This node's own registration is `ensure_self_registered`'s.
            if m.name == self.config.node_name || m.datacenter != self.config.datacenter {
                continue;
            }
            match m.state {
                MemberState::Alive => self.register_member(m, CheckStatus::Passing).await?,
                MemberState::Failed => self.register_member(m, CheckStatus::Critical).await?,
                MemberState::Left => self.deregister_member(&m.name).await?,
                MemberState::Leaving => {}
            }
        }
        Ok(())
    }

    async fn register_member(
        &self,
        m: &MemberInfo,
        status: CheckStatus,
    ) -> Result<(), ServerError> {
        let output = if status == CheckStatus::Passing {
            ALIVE_OUTPUT
        } else {
            FAILED_OUTPUT
        };
        let consul = m.server_port.map(|port| lotse_core::catalog::Service {
            port: i64::from(port),
            ..self.consul_service()
        });
        let (node_ok, check_ok, service_ok, exists) = self.peek(|s| {
            let node = s.node(&m.name);
            let node_ok = node.is_some_and(|n| n.address == m.addr && n.id == m.node_id);
            let check_ok = s
                .check(&m.name, SERF_HEALTH)
                .is_some_and(|c| c.status == status && c.output == output);
            let service_ok = match &consul {
                Some(svc) => s
                    .service(&m.name, CONSUL_SERVICE)
                    .is_some_and(|have| have.same_as(svc)),
                None => true,
            };
            (node_ok, check_ok, service_ok, node.is_some())
        });
        if node_ok && check_ok && service_ok {
            return Ok(());
        }
        // A failed member that was never registered is not worth a node of its own.
        if !exists && status == CheckStatus::Critical {
            return Ok(());
        }
        tracing::info!(member = %m.name, ?status, "reconciling member into the catalog");
        let req = RegisterRequest {
            node: member_node(m),
            // Keep what the member's own agent synced (meta, tagged addresses) when only the
            // check changes.
            skip_node_update: node_ok,
            service: if service_ok { None } else { consul },
            checks: vec![HealthCheck {
                status,
                output: output.into(),
                ..HealthCheck::new(&m.name, SERF_HEALTH, "Serf Health Status")
            }],
        };
        self.leader_write(Command::CatalogRegister {
            req: Box::new(req),
            now_ms: now_ms(),
        })
        .await
        .map(|_| ())
    }

    async fn deregister_member(&self, name: &str) -> Result<(), ServerError> {
        if self.peek(|s| s.node(name).is_none()) {
            return Ok(());
        }
        tracing::info!(member = %name, "deregistering a member that left");
        self.leader_write(Command::CatalogDeregister {
            req: DeregisterRequest {
                node: name.to_string(),
                service_id: None,
                check_id: None,
            },
            now_ms: now_ms(),
        })
        .await
        .map(|_| ())
    }
}

/// The node record the leader registers for a member: its address as every tagged address,
/// as Consul's leader does before the member's agent syncs its own.
fn member_node(m: &MemberInfo) -> Node {
    let addr = m.addr.clone();
    Node {
        id: m.node_id.clone(),
        name: m.name.clone(),
        address: addr.clone(),
        datacenter: m.datacenter.clone(),
        tagged_addresses: ["lan", "lan_ipv4", "wan", "wan_ipv4"]
            .into_iter()
            .map(|k| (k.to_string(), addr.clone()))
            .collect(),
        meta: BTreeMap::from([("consul-network-segment".to_string(), String::new())]),
        create_index: 0,
        modify_index: 0,
    }
}
