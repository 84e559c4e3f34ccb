//! What makes an agent a client: no Raft and no store; the servers it calls come from the
//! gossip pool, and its agent duties (anti-entropy, alias checks) run over server RPC
//! ([`lotse_agent::remote`]).

use std::sync::Arc;
use std::time::Duration;

use lotse_agent::remote::{RemoteUpstream, Servers, Tries};
use lotse_gossip::Gossip;
use lotse_server::members::MemberState;

use super::cluster::member_info;
use crate::config::AgentConfig;

/// A client agent's way to the servers.
pub struct ClientRole {
    pub servers: Arc<Servers>,
    pub upstream: Arc<RemoteUpstream>,
}

impl ClientRole {
    /// Starts calling servers from `advertise` (so that firewall rules between agents'
    /// addresses apply to a client's calls as to a server's).
    pub fn start(cfg: &AgentConfig, node_id: &str, advertise: std::net::IpAddr) -> ClientRole {
        let servers = Servers::new(lotse_consensus::rpc::Peers::bound_to(advertise));
        let node = lotse_server::agent_node(
            node_id,
            &cfg.node_name,
            &advertise.to_string(),
            &cfg.datacenter,
        );
        let upstream = RemoteUpstream::start(node, servers.clone(), cfg.rpc_hold_timeout);
        ClientRole { servers, upstream }
    }
}

/// How long a client waits for a server's DNS answer (a recursor's included).
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

impl ClientRole {
    /// The client's DNS listener: every query is answered by a server's responder.
    pub async fn start_dns(
        &self,
        addr: std::net::SocketAddr,
    ) -> Result<lotse_dns::relay::DnsRelay, lotse_dns::DnsError> {
        let servers = self.servers.clone();
        let upstream: lotse_dns::relay::RelayUpstream = Arc::new(move |query: Vec<u8>, tcp| {
            let servers = servers.clone();
            Box::pin(async move {
                servers
                    .call(Tries::AnyFailure, |client| {
                        let query = query.clone();
                        async move { client.dns(query, tcp, DNS_TIMEOUT).await }
                    })
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        lotse_dns::relay::DnsRelay::start(addr, upstream).await
    }
}

/// Keeps the server list current: every alive member of this datacenter tagged as a server,
/// at its RPC address; refreshed on every membership event and every few seconds.
pub fn feed_servers(gossip: Gossip, servers: Arc<Servers>, datacenter: String) {
    tokio::spawn(async move {
        let mut events = gossip.subscribe();
        loop {
            let addrs = gossip
                .members()
                .iter()
                .map(member_info)
                .filter(|m| m.state == MemberState::Alive && m.datacenter == datacenter)
                .filter_map(|m| m.rpc_addr())
                .collect();
            servers.set(addrs);
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
            if let Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) = event {
                return;
            }
        }
    });
}
