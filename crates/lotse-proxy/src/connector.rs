//! Outbound connections: the one seam every upstream connection goes through.
//!
//! [`Connector`] opens a byte stream to an endpoint; plain TCP today ([`TcpConnector`]). Mutual
//! TLS slots in as another `Connector` that wraps the TCP stream (SPIFFE identity of the
//! destination fixed per upstream) without touching balancing, retries or the HTTP client.
//! [`connect`] adds the connection circuit breaker and the connect timeout (the L4 path and the
//! L7 lanes use it directly); [`HyperConnector`] adapts it to hyper-util's pooled client (a
//! `tower::Service<Uri>`).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::breaker::{ConnectionDenied, ConnectionLimit};
use crate::upstream::Upstream;

/// A bidirectional byte stream to an endpoint.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

pub type BoxIo = Box<dyn Io>;
pub type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send>>;

/// Opens connections to endpoints (plain TCP now; TLS later).
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    fn connect(&self, addr: SocketAddr) -> ConnectFuture;
}

/// Plain TCP with `TCP_NODELAY` (a proxy adds latency enough without Nagle).
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, addr: SocketAddr) -> ConnectFuture {
        Box::pin(async move {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as BoxIo)
        })
    }
}

/// Why a connection attempt failed; found again in the HTTP client's error chain to tell a
/// breaker overflow (503, no retry, no ejection) from a failed endpoint (retry, eject).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection limit reached (max_connections and max_pending_requests)")]
    Overflow,
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Io(#[from] io::Error),
    #[error("bad endpoint address in {0}")]
    BadAddress(String),
}

impl ConnectError {
    /// Walks an error's source chain for a `ConnectError`.
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConnectError> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        // Bounded: source chains are short, but never trust them to end.
        for _ in 0..16 {
            let e = cur?;
            if let Some(c) = e.downcast_ref::<ConnectError>() {
                return Some(c);
            }
            cur = e.source();
        }
        None
    }
}

/// Opens a connection under the upstream's connection limit: waits for a slot (pending) up to
/// the connect timeout, then connects within what is left of it.
pub async fn open(
    connector: &Arc<dyn Connector>,
    limit: &ConnectionLimit,
    timeout: Duration,
    addr: SocketAddr,
) -> Result<(BoxIo, OwnedSemaphorePermit), ConnectError> {
    let start = tokio::time::Instant::now();
    let permit = limit.acquire(timeout).await.map_err(|d| match d {
        ConnectionDenied::Overflow => ConnectError::Overflow,
        ConnectionDenied::Timeout => ConnectError::Timeout(timeout),
    })?;
    let left = timeout.saturating_sub(start.elapsed());
    match tokio::time::timeout(left, connector.connect(addr)).await {
        Ok(Ok(io)) => Ok((io, permit)),
        Ok(Err(e)) => Err(ConnectError::Io(e)),
        Err(_) => Err(ConnectError::Timeout(timeout)),
    }
}

/// hyper-util's client connects through this: `http://<endpoint addr>` → a counted stream.
#[derive(Clone)]
pub struct HyperConnector {
    pub upstream: Arc<Upstream>,
    pub connector: Arc<dyn Connector>,
}

impl tower_service::Service<Uri> for HyperConnector {
    type Response = Conn;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let up = self.upstream.clone();
        let connector = self.connector.clone();
        Box::pin(async move {
            let addr: SocketAddr = uri
                .authority()
                .and_then(|a| a.as_str().parse().ok())
                .ok_or_else(|| ConnectError::BadAddress(uri.to_string()))?;
            connect(up, &connector, addr).await
        })
    }
}

/// A counted connection to `addr` under the upstream's connection limit and connect timeout.
pub async fn connect(
    up: Arc<Upstream>,
    connector: &Arc<dyn Connector>,
    addr: SocketAddr,
) -> Result<Conn, ConnectError> {
    let (io, permit) = open(connector, &up.connections, up.cfg.connect_timeout, addr).await?;
    up.metrics.upstream_connections.fetch_add(1, Relaxed);
    Ok(Conn {
        io: TokioIo::new(io),
        _slot: permit,
        upstream: up,
    })
}

/// An upstream connection holding its slot under `max_connections` until it closes.
pub struct Conn {
    io: TokioIo<BoxIo>,
    _slot: OwnedSemaphorePermit,
    upstream: Arc<Upstream>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.upstream
            .metrics
            .upstream_connections
            .fetch_sub(1, Relaxed);
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    // Passed on so hyper writes a request's head and body with one `writev` instead of
    // copying them into one buffer first.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
