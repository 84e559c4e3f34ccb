//! Upstream HTTP/1.1 connections owned by one downstream HTTP/1.1 connection ("lanes").
//!
//! A downstream HTTP/1.1 connection carries one request at a time, so it can keep the upstream
//! connection its last request used and send the next one there: no shared pool to look up,
//! lock and return to (hyper-util's pool was about 8 % of the proxy's CPU per request), and a
//! client that keeps its connection keeps its endpoint's connection warm. HTTP/2 clients
//! (many requests at once) and HTTP/2 upstreams keep using the shared pool.
//!
//! Bounds: a lane keeps at most [`MAX_KEPT`] connections (one per endpoint it used), drops one
//! idle for longer than [`MAX_IDLE`] instead of reusing it, and closes them all when its
//! downstream connection closes. Each connection is opened through
//! [`crate::connector::connect`], so it holds its slot under `max_connections` while it lives.
//! Because a lane's connections serve only its client, lanes open new ones only while the
//! upstream holds fewer than half of `max_connections` ([`Lanes::usable`]); past that, requests
//! go to the shared pool, whose idle connections serve anyone, so many quiet clients cannot
//! use up the connection limit.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;

use super::upload::AttemptBody;
use crate::connector::{self, ConnectError, Connector};
use crate::upstream::Upstream;

/// Connections a lane keeps (a request retried on other endpoints leaves one per endpoint).
pub const MAX_KEPT: usize = 4;
/// How long a kept connection may sit unused and still be reused (as the pool's idle timeout).
pub const MAX_IDLE: Duration = Duration::from_secs(30);

type Sender = http1::SendRequest<AttemptBody<Incoming>>;

/// The upstream connections of one downstream connection; put in each of its requests'
/// extensions by the listener.
#[derive(Default)]
pub struct Lanes {
    kept: Mutex<Vec<Kept>>,
}

struct Kept {
    addr: SocketAddr,
    sender: Sender,
    since: Instant,
}

/// Why a request sent on a lane got no response.
#[derive(Debug)]
pub enum LaneError {
    /// No connection: a refused or timed-out connect, or the connection limit.
    Connect(ConnectError),
    /// The connection failed before or while the response's head came.
    Http(hyper::Error),
}

impl Lanes {
    /// Whether a request to `addr` should go on this lane: it has a connection there, or the
    /// upstream has room for another one.
    pub fn usable(&self, up: &Upstream, addr: SocketAddr) -> bool {
        let open = up.metrics.upstream_connections.load(Relaxed);
        if open < u64::from(up.cfg.limits.max_connections / 2) {
            return true;
        }
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().any(|k| k.addr == addr && !k.sender.is_closed())
    }

    fn take(&self, addr: SocketAddr) -> Option<Sender> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let i = kept.iter().position(|k| k.addr == addr)?;
        let k = kept.swap_remove(i);
        (k.since.elapsed() < MAX_IDLE && !k.sender.is_closed()).then_some(k.sender)
    }

    fn put(&self, addr: SocketAddr, sender: Sender) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= MAX_KEPT {
            kept.remove(0);
        }
        kept.push(Kept {
            addr,
            sender,
            since: Instant::now(),
        });
    }

    /// Sends `req` to `addr` on this lane's connection to it, or on a new one. A kept
    /// connection found closed before the request went out is replaced, not reported: the
    /// request was never sent (as the pool's retry of a stale connection).
    pub async fn send(
        &self,
        up: &Arc<Upstream>,
        connector: &Arc<dyn Connector>,
        addr: SocketAddr,
        mut req: Request<AttemptBody<Incoming>>,
    ) -> Result<Response<Incoming>, LaneError> {
        if let Some(mut sender) = self.take(addr) {
            // Ready once the previous response has been read to its end.
            if sender.ready().await.is_ok() {
                match sender.try_send_request(req).await {
                    Ok(resp) => {
                        self.put(addr, sender);
                        return Ok(resp);
                    }
                    Err(mut e) => match e.take_message() {
                        Some(unsent) => req = unsent,
                        None => return Err(LaneError::Http(e.into_error())),
                    },
                }
            }
        }
        // Boxed: opening is the rare path, and its future is most of this one's size, which
        // every request would otherwise carry (and copy) inside its own.
        Box::pin(self.open_and_send(up, connector, addr, req)).await
    }

    async fn open_and_send(
        &self,
        up: &Arc<Upstream>,
        connector: &Arc<dyn Connector>,
        addr: SocketAddr,
        req: Request<AttemptBody<Incoming>>,
    ) -> Result<Response<Incoming>, LaneError> {
        let conn = connector::connect(up.clone(), connector, addr)
            .await
            .map_err(LaneError::Connect)?;
        let (mut sender, connection) = http1::Builder::new()
            .handshake(conn)
            .await
            .map_err(LaneError::Http)?;
        tokio::spawn(async move {
            // Ends when the lane drops its sender (or after an upgrade hands the stream on).
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        let resp = sender.send_request(req).await.map_err(LaneError::Http)?;
        self.put(addr, sender);
        Ok(resp)
    }
}
