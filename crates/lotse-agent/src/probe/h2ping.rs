//! H2PING probe: Consul's `CheckH2PING`.
//!
//! Opens an HTTP/2 connection (TLS with ALPN `h2` when `use_tls`, which Consul's
//! `h2ping_use_tls` defaults to; prior-knowledge cleartext `h2c` otherwise) and sends one
//! PING frame; the PING ACK within the timeout is passing (`HTTP2 ping was successful`).
//! Failures keep Consul's wording: `Failed to dial to <addr>: …` (TCP or TLS),
//! `HTTP2 ping failed: …` (including a peer that is not HTTP/2 at all).

use std::time::Duration;

use h2::Ping;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};

use super::tcp::{dial, split_host_port};
use super::{effective_timeout, tls, ProbeResult, DEFAULT_TIMEOUT};

/// An H2PING check definition (Consul's `h2ping`, `h2ping_use_tls`, `tls_skip_verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2PingProbe {
    /// `host:port`.
    pub addr: String,
    pub use_tls: bool,
    pub tls_skip_verify: bool,
}

/// Runs one H2PING check.
pub async fn h2ping(p: &H2PingProbe, timeout: Duration) -> ProbeResult {
    let deadline = Instant::now() + effective_timeout(timeout, DEFAULT_TIMEOUT);
    match timeout_at(deadline, run(p, deadline)).await {
        Err(_elapsed) => ProbeResult::critical("HTTP2 ping failed: context deadline exceeded"),
        Ok(result) => result,
    }
}

async fn run(p: &H2PingProbe, deadline: Instant) -> ProbeResult {
    let dial_failed =
        |e: String| ProbeResult::critical(format!("Failed to dial to {}: {e}", p.addr));
    let stream = match dial(&p.addr, deadline).await {
        Ok(s) => s,
        Err(e) => return dial_failed(e),
    };
    if !p.use_tls {
        return ping(stream).await;
    }
    let host = split_host_port(&p.addr)
        .map(|(h, _)| h.to_owned())
        .unwrap_or_default();
    let config = match tls::client_config(p.tls_skip_verify, tls::ALPN_H2) {
        Ok(c) => c,
        Err(e) => return dial_failed(e),
    };
    match tls::connect(stream, &host, config).await {
        Ok(stream) => ping(stream).await,
        Err(e) => dial_failed(e),
    }
}

/// HTTP/2 handshake, then one PING round trip while the connection is driven.
async fn ping<IO>(io: IO) -> ProbeResult
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (sender, mut conn) = match h2::client::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => return ProbeResult::critical(format!("Failed to create client connection {e}")),
    };
    let Some(mut ping_pong) = conn.ping_pong() else {
        return ProbeResult::critical("Failed to create client connection: ping handle taken");
    };
    let result = tokio::select! {
        pong = ping_pong.ping(Ping::opaque()) => match pong {
            Ok(_) => ProbeResult::passing("HTTP2 ping was successful"),
            Err(e) => ProbeResult::critical(format!("HTTP2 ping failed: {e}")),
        },
        // The connection only ends first when the peer closed it or spoke no HTTP/2.
        ended = &mut conn => match ended {
            Ok(()) => ProbeResult::critical("HTTP2 ping failed: connection closed by peer"),
            Err(e) => ProbeResult::critical(format!("HTTP2 ping failed: {e}")),
        },
    };
    // Held until here: dropping the last request handle would let the connection close
    // before the PING ACK arrives.
    drop(sender);
    result
}
