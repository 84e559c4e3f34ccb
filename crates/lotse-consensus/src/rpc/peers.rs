//! A pool of HTTP/2 channels to other servers: one per address, connected on first use and
//! shared by every caller (the Raft network and forwarding alike). HTTP/2 multiplexes calls,
//! so one connection per peer is enough, and a tonic `Channel` is a cheap handle to it that
//! reconnects by itself after the connection breaks.
//!
//! `endpoint()` is the only place that turns an address into a connection recipe. TLS
//! (rustls with the ring provider, never aws-lc) will be configured there and nowhere else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::forward::ForwardClient;
use super::{RpcError, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT};

/// How long to wait for a TCP connection. Calls carry their own (usually shorter) deadline;
/// this only bounds a connect attempt to a black-holed address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Address (`ip:port` of a server port) → lazily connected channel. Clones share the pool.
#[derive(Clone, Default)]
pub struct Peers {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// The address outgoing connections come from (this server's advertised one), so that
    /// peers, and firewall rules, see this server's address and not whatever the kernel picks.
    local: Option<std::net::IpAddr>,
}

impl Peers {
    pub fn new() -> Peers {
        Peers::default()
    }

    /// A pool whose connections leave from `local` (ignored if unspecified).
    pub fn bound_to(local: std::net::IpAddr) -> Peers {
        Peers {
            local: (!local.is_unspecified()).then_some(local),
            ..Peers::default()
        }
    }

    /// The channel to `addr`, made (without connecting) on first use and reused afterwards.
    /// Must be called inside a tokio runtime: a new channel spawns its connection task.
    pub fn channel(&self, addr: &str) -> Result<Channel, RpcError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = endpoint(addr)?.local_address(self.local).connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// A forwarding client to the server at `addr`, over the pooled channel.
    pub fn forward_client(&self, addr: &str) -> Result<ForwardClient, RpcError> {
        Ok(ForwardClient::new(addr, self.channel(addr)?))
    }

    /// Drops the channel to `addr` (a server that left for good). Clones already handed out
    /// keep working until dropped.
    pub fn forget(&self, addr: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.remove(addr);
    }
}

/// How to reach a server: plain TCP + HTTP/2 today; the single spot for TLS later.
fn endpoint(addr: &str) -> Result<Endpoint, RpcError> {
    let bad = |reason: String| RpcError::BadAddress {
        addr: addr.to_string(),
        reason,
    };
    if addr.is_empty() || addr.contains('/') {
        return Err(bad("expected host:port".into()));
    }
    let endpoint =
        Endpoint::from_shared(format!("http://{addr}")).map_err(|e| bad(e.to_string()))?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .http2_adaptive_window(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channels_are_reused_and_bad_addresses_refused() {
        let peers = Peers::new();
        peers.channel("127.0.0.1:1").expect("valid address");
        peers.channel("127.0.0.1:1").expect("valid address");
        assert_eq!(peers.channels.lock().expect("lock").len(), 1);
        assert!(matches!(
            peers.channel("127.0.0.1:1/x"),
            Err(RpcError::BadAddress { .. })
        ));
        peers.forget("127.0.0.1:1");
        assert!(peers.channels.lock().expect("lock").is_empty());
    }
}
