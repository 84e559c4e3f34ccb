//! The agent's part in the cluster: its LAN gossip pool, joining (`start_join` once,
//! `retry_join` until it works), handing the pool's members to the server (the leader puts
//! them into the catalog and the Raft configuration), and `bootstrap_expect`.
//!
//! ```text
//!  gossip ──members/events──► Server::set_members ──► leader: catalog (serfHealth), autopilot
//!        └─ servers seen ≥ expect, none with peers ──► Server::bootstrap_expect (once)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lotse_consensus::rpc::{HttpRequest, Peers};
use lotse_gossip::{Gossip, GossipConfig, Member, MemberEvent, MemberStatus};
use lotse_server::members::{MemberInfo, MemberState};
use lotse_server::Server;

/// Consul's gossip tags (`role`, `dc`, `id`, `port`, `expect`, `vsn`, `build`, ...).
pub struct Tags {
    pub node_id: String,
    pub datacenter: String,
    pub server_port: Option<u16>,
    pub bootstrap_expect: u32,
}

impl Tags {
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        t.insert(
            "role".into(),
            if self.server_port.is_some() {
                "consul"
            } else {
                "node"
            }
            .into(),
        );
        t.insert("dc".into(), self.datacenter.clone());
        t.insert("id".into(), self.node_id.clone());
        t.insert("vsn".into(), "2".into());
        t.insert("vsn_min".into(), "2".into());
        t.insert("vsn_max".into(), "3".into());
        t.insert(
            "build".into(),
            format!("{}:lotse", env!("CARGO_PKG_VERSION")),
        );
        t.insert("segment".into(), String::new());
        if let Some(port) = self.server_port {
            t.insert("port".into(), port.to_string());
            t.insert("raft_vsn".into(), "3".into());
            if self.bootstrap_expect > 0 {
                t.insert("expect".into(), self.bootstrap_expect.to_string());
            }
        }
        t
    }
}

/// A pool member as the server sees it (servers are those with `role=consul`).
pub fn member_info(m: &Member) -> MemberInfo {
    let state = match m.status {
        MemberStatus::Alive | MemberStatus::None => MemberState::Alive,
        MemberStatus::Leaving => MemberState::Leaving,
        MemberStatus::Left => MemberState::Left,
        MemberStatus::Failed => MemberState::Failed,
    };
    let server_port = (m.tags.get("role").map(String::as_str) == Some("consul"))
        .then(|| m.tags.get("port").and_then(|p| p.parse().ok()))
        .flatten();
    MemberInfo {
        name: m.name.clone(),
        node_id: m.tags.get("id").cloned().unwrap_or_default(),
        addr: m.addr.to_string(),
        datacenter: m.tags.get("dc").cloned().unwrap_or_default(),
        state,
        server_port,
    }
}

/// Starts the pool.
pub async fn start_gossip(cfg: GossipConfig) -> Result<Gossip, String> {
    let bind = cfg.bind;
    Gossip::start(cfg)
        .await
        .map_err(|e| format!("cannot start LAN gossip on {bind}: {e}"))
}

/// Keeps the server's view of the pool current: every membership event (and every few
/// seconds, in case an event was missed) hands the whole member list over.
pub fn feed_members(gossip: Gossip, server: Arc<Server>) {
    tokio::spawn(async move {
        let mut events = gossip.subscribe();
        loop {
            server.set_members(gossip.members().iter().map(member_info).collect());
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
            match event {
                Ok(Ok(MemberEvent::Reap(m))) => server.member_reaped(m.name),
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
            }
        }
    });
}

/// Joins through `addrs`; the number of members that answered.
pub async fn join(gossip: &Gossip, addrs: &[String], default_port: u16) -> Result<usize, String> {
    let resolved = lotse_api::cluster::resolve(addrs, default_port).await;
    if resolved.is_empty() {
        return Err(format!("no address to join among {addrs:?}"));
    }
    gossip.join(&resolved).await.map_err(|e| e.to_string())
}

/// `retry_join`: tries every `interval` until one join works, at most `max` times (0: no
/// limit). Gives up by returning the last error (Consul then stops the agent).
pub async fn retry_join(
    gossip: Gossip,
    addrs: Vec<String>,
    default_port: u16,
    interval: Duration,
    max: u32,
) -> Result<usize, String> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match join(&gossip, &addrs, default_port).await {
            Ok(n) => {
                tracing::info!(joined = n, "retry-join: joined the cluster");
                return Ok(n);
            }
            Err(e) => {
                if max > 0 && attempt >= max {
                    return Err(format!("retry-join: gave up after {attempt} attempts: {e}"));
                }
                tracing::warn!(attempt, error = %e, "retry-join: join failed; retrying in {interval:?}");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// `bootstrap_expect > 1`: waits until enough servers are in the pool, then bootstraps once.
pub fn bootstrap_when_ready(server: Arc<Server>, expect: u32, peers: Peers) {
    tokio::spawn(async move {
        loop {
            if server.raft_initialized().await {
                return;
            }
            let members: Vec<MemberInfo> = server.members().as_ref().clone();
            let others: Vec<String> = members
                .iter()
                .filter(|m| m.state == MemberState::Alive && m.name != server.config.node_name)
                .filter_map(MemberInfo::rpc_addr)
                .collect();
            let check = any_has_peers(&peers, others);
            match server.bootstrap_expect(expect, &members, check).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "bootstrap failed; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Whether any of these servers already has Raft peers (a cluster to join, not to make). A
/// server that cannot be asked counts as having some, as in Consul: bootstrapping without
/// knowing could make a second cluster, while waiting only costs another round.
async fn any_has_peers(peers: &Peers, servers: Vec<String>) -> bool {
    for addr in servers {
        let Ok(client) = peers.forward_client(&addr) else {
            return true;
        };
        let req = HttpRequest {
            method: "GET".into(),
            path_and_query: "/v1/status/peers?stale".into(),
            headers: vec![],
            body: vec![],
        };
        match client.http(req, Duration::from_secs(2)).await {
            Ok(reply) if reply.status == 200 => {
                match serde_json::from_slice::<Vec<String>>(&reply.body) {
                    Ok(listed) if listed.is_empty() => {}
                    Ok(_) => return true,
                    Err(e) => {
                        tracing::debug!(server = %addr, error = %e, "bootstrap: unreadable peer list");
                        return true;
                    }
                }
            }
            Ok(reply) => {
                tracing::debug!(server = %addr, status = reply.status, "bootstrap: peers not answered");
                return true;
            }
            Err(e) => {
                tracing::debug!(server = %addr, error = %e, "bootstrap: cannot ask for peers");
                return true;
            }
        }
    }
    false
}
