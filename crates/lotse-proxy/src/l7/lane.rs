//! Upstream HTTP/1.1 connections owned by one downstream HTTP/1.1 connection ("lanes").
//!
//! A downstream HTTP/1.1 connection carries one request at a time, so it can keep the upstream
//! connection its last request used and send the next one there: no shared pool to look up,
//! lock and return to (hyper-util's pool was about 8 % of the proxy's CPU per request), and a
//! client that keeps its connection keeps its endpoint's connection warm. HTTP/2 clients
//! (many requests at once), HTTP/2 upstreams, `CONNECT`, and clients that close after their
//! request (whose upstream connection would close with them) keep using the shared pool.
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
    /// Whose connection it is: an upstream's slot and connector are its own, so another
    /// upstream (another gateway route, or the same one after a reload) never reuses it even
    /// where the endpoint address is the same.
    upstream: usize,
    addr: SocketAddr,
    sender: Sender,
    since: Instant,
}

impl Kept {
    fn is(&self, up: &Arc<Upstream>, addr: SocketAddr) -> bool {
        self.upstream == key(up) && self.addr == addr
    }

    fn reusable(&self) -> bool {
        self.since.elapsed() < MAX_IDLE && !self.sender.is_closed()
    }
}

/// An upstream's identity: its `Arc`'s address. It cannot be reused by another upstream while
/// an entry has it, since the entry's connection holds that `Arc` (`connector::Conn`).
fn key(up: &Arc<Upstream>) -> usize {
    Arc::as_ptr(up) as usize
}

/// Why a request sent on a lane got no response.
#[derive(Debug)]
pub enum LaneError {
    /// No connection: a refused or timed-out connect, or the connection limit.
    Connect(ConnectError),
    /// The new connection's HTTP/1 handshake failed: nothing was sent.
    Handshake(hyper::Error),
    /// The connection failed before or while the response's head came.
    Http(hyper::Error),
}

impl Lanes {
    /// Whether a request to `addr` should go on this lane: it has a reusable connection there,
    /// or fewer than half of the upstream's `max_connections` slots are taken (a connection
    /// being opened holds its slot already, so a burst of new clients cannot all slip under).
    pub fn usable(&self, up: &Arc<Upstream>, addr: SocketAddr) -> bool {
        let max = up.cfg.limits.max_connections as usize;
        if max.saturating_sub(up.connections.available()) < max / 2 {
            return true;
        }
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().any(|k| k.is(up, addr) && k.reusable())
    }

    fn take(&self, up: &Arc<Upstream>, addr: SocketAddr) -> Option<Sender> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let i = kept.iter().position(|k| k.is(up, addr))?;
        let k = kept.swap_remove(i);
        k.reusable().then_some(k.sender)
    }

    fn put(&self, up: &Arc<Upstream>, addr: SocketAddr, sender: Sender) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= MAX_KEPT {
            kept.remove(0);
        }
        kept.push(Kept {
            upstream: key(up),
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
        if let Some(mut sender) = self.take(up, addr) {
            // Ready once the previous response has been read to its end.
            if sender.ready().await.is_ok() {
                match sender.try_send_request(req).await {
                    Ok(resp) => {
                        self.put(up, addr, sender);
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
            .map_err(LaneError::Handshake)?;
        tokio::spawn(async move {
            // Ends when the lane drops its sender (or after an upgrade hands the stream on).
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        let resp = sender.send_request(req).await.map_err(LaneError::Http)?;
        self.put(up, addr, sender);
        Ok(resp)
    }
}
