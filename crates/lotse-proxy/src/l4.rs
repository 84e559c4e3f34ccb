//! The L4 (TCP) listener: each accepted connection is one "request". It passes load shedding
//! and the rate limiter (refused connections are closed at once), takes a slot under
//! `max_connections`, picks an endpoint and connects, retrying other endpoints on connect
//! failure within the retry budget, then splices bytes both ways until either side closes or
//! the connection idles past `stream_idle_timeout_ms`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::balance::ring::hash_bytes;
use crate::connector::{self, ConnectError, Connector};
use crate::l7::ActiveConnection;
use crate::outlier::Outcome;
use crate::upstream::Upstream;

pub async fn serve(
    listener: TcpListener,
    up: Arc<Upstream>,
    connector: Arc<dyn Connector>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(upstream = %up.name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let up = up.clone();
        let connector = connector.clone();
        tokio::spawn(async move { handle(stream, peer, up, connector).await });
    }
}

async fn handle(
    client: TcpStream,
    peer: SocketAddr,
    up: Arc<Upstream>,
    connector: Arc<dyn Connector>,
) {
    let _active = ActiveConnection::new(&up);
    let start = Instant::now();
    let Some(_shed) = up.shed.try_enter() else {
        up.metrics.shed.fetch_add(1, Relaxed);
        return;
    };
    if up.limiter.check(peer.ip(), up.clock.now()).is_err() {
        up.metrics.rate_limited.fetch_add(1, Relaxed);
        return;
    }
    let _ = client.set_nodelay(true);
    // Hash on the client address under ring_hash (source-IP affinity).
    let hash = Some(hash_bytes(peer.ip().to_string().as_bytes()));
    let max_attempts = 1 + up.cfg.retries.num_retries;
    let mut tried = Vec::new();
    let mut attempt = 0;
    let (mut server, endpoint, _slot, _in_flight) = loop {
        attempt += 1;
        let Some((ep, in_flight)) = up.start(hash, &tried, attempt == 1) else {
            tracing::info!(target: "lotse_proxy::access", upstream = %up.name, client = %peer, result = "no-healthy-upstream", "access");
            return;
        };
        tried.push(ep);
        match connector::open(&connector, &up.connections, up.cfg.connect_timeout, ep).await {
            Ok((io, slot)) => {
                up.report(ep, Outcome::Success);
                break (io, ep, slot, in_flight);
            }
            Err(ConnectError::Overflow) => {
                up.metrics.overflow.fetch_add(1, Relaxed);
                return;
            }
            Err(e) => {
                up.metrics.connect_failures.fetch_add(1, Relaxed);
                up.report(ep, Outcome::Failure);
                tracing::debug!(upstream = %up.name, endpoint = %ep, error = %e, "connect failed");
                let retry = attempt < max_attempts
                    && up.cfg.retries.retry_on_connect_failure
                    && up.try_retry();
                if !retry {
                    tracing::info!(target: "lotse_proxy::access", upstream = %up.name, client = %peer, result = "connect-error", attempts = attempt, "access");
                    return;
                }
            }
        }
    };
    up.metrics.upstream_connections.fetch_add(1, Relaxed);
    // A connection idle both ways for `stream_idle_timeout_ms` is closed (counted as a
    // timeout), as an upgraded HTTP one is.
    let (copied, idled) =
        crate::l7::upgrade::splice_until_idle(client, &mut server, up.cfg.stream_idle_timeout)
            .await;
    if idled {
        up.metrics.timeouts.fetch_add(1, Relaxed);
    }
    up.metrics.upstream_connections.fetch_sub(1, Relaxed);
    let (sent, received) = copied.unwrap_or((0, 0));
    tracing::info!(
        target: "lotse_proxy::access",
        upstream = %up.name,
        client = %peer,
        endpoint = %endpoint,
        attempts = attempt,
        bytes_sent = sent,
        bytes_received = received,
        duration_ms = start.elapsed().as_secs_f64() * 1000.0,
        "access"
    );
}
