//! Forwarding names outside our domains to `recursors`, as Consul does: the request as it
//! came, to each upstream in turn (or in random order) with `recursor_timeout` per attempt,
//! over the client's own transport; the first NOERROR or NXDOMAIN reply goes back as it is
//! (a truncated one too: the client retries over TCP).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::RecursorStrategy;
use crate::respond::Transport;

pub struct Recursor {
    upstreams: Vec<SocketAddr>,
    strategy: RecursorStrategy,
    timeout: Duration,
}

impl Recursor {
    pub fn new(
        upstreams: Vec<SocketAddr>,
        strategy: RecursorStrategy,
        timeout: Duration,
    ) -> Recursor {
        Recursor {
            upstreams,
            strategy,
            timeout,
        }
    }

    /// The upstream's reply, with the client's ID, or None when every upstream failed.
    pub async fn forward(
        &self,
        req: &Message,
        raw: &[u8],
        transport: Transport,
    ) -> Option<Vec<u8>> {
        if raw.len() < 12 {
            return None;
        }
        let mut order = self.upstreams.clone();
        if self.strategy == RecursorStrategy::Random {
            order.shuffle(&mut rand::thread_rng());
        }
        for upstream in order {
            let attempt = async {
                match transport {
                    Transport::Udp => udp_exchange(upstream, raw).await,
                    Transport::Tcp => tcp_exchange(upstream, raw).await,
                }
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(reply)) if usable(&reply, req.metadata.id) => return Some(reply),
                Ok(Ok(_)) => tracing::debug!(%upstream, "recursor answered SERVFAIL or garbage"),
                Ok(Err(e)) => tracing::warn!(%upstream, error = %e, "recursor failed"),
                Err(_) => tracing::warn!(%upstream, "recursor timed out"),
            }
        }
        None
    }
}

/// A reply to our question (same ID) that Consul would pass on: NOERROR or NXDOMAIN (any
/// other code tries the next upstream).
fn usable(reply: &[u8], id: u16) -> bool {
    match Message::from_vec(reply) {
        Ok(m) => {
            m.metadata.id == id
                && matches!(
                    m.metadata.response_code,
                    ResponseCode::NoError | ResponseCode::NXDomain
                )
        }
        Err(_) => false,
    }
}

async fn udp_exchange(upstream: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(upstream).await?;
    sock.send(raw).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // A connected socket only hears from the upstream; skip anything not ours.
        if n >= 2 && buf[..2] == raw[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp_exchange(upstream: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).await?;
    let len = u16::try_from(raw.len()).map_err(|_| std::io::Error::other("request too long"))?;
    let mut framed = Vec::with_capacity(raw.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(raw);
    s.write_all(&framed).await?;
    let n = s.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}
