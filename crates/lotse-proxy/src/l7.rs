//! The L7 (HTTP) listener: hyper-util's auto server (HTTP/1.1 and h2c) in front of a stack of
//! tower layers, outermost first:
//!
//! ```text
//!   Shed (listener concurrency → 503) → RateLimit (route + client buckets → 429) → Forward
//! ```
//!
//! [`forward::Forward`] does the rest (breakers, balancing, retries, timeouts, outlier reports,
//! access log). Each layer that admits a request keeps its permit inside the response body
//! ([`body::Guarded`]), so "in flight" lasts until the body has been sent, not only until the
//! headers. Malformed requests are answered 400 by hyper's parser and logged here.
//!
//! Bodies stream both ways: [`upload`] sends the client's body as it comes while keeping a
//! copy for retries, [`idle`] cuts a body that stalls, and [`upgrade`] splices the two
//! connections after a `101 Switching Protocols` (WebSocket).

pub mod body;
pub mod forward;
pub mod idle;
pub mod lane;
pub mod layers;
pub mod upgrade;
pub mod upload;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_layer::Layer;
use tower_service::Service;

use crate::upstream::Upstream;

pub use body::{local, ProxyBody};
pub use forward::{Forward, HttpClient};

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The downstream connection a request came on, put in every request's extensions by the
/// listener (one extension, so one allocation): the peer's address and the connection's own
/// upstream connections.
#[derive(Clone)]
pub struct ClientConn {
    pub addr: SocketAddr,
    /// The peer's IP as an `x-forwarded-for` entry, written once per connection, not per
    /// request (cloning it only counts a reference).
    pub forwarded_for: HeaderValue,
    pub lanes: Arc<lane::Lanes>,
}

impl ClientConn {
    pub fn new(addr: SocketAddr) -> Self {
        let ip = addr.ip().to_string();
        ClientConn {
            addr,
            // An IP's text is always a valid header value.
            forwarded_for: HeaderValue::from_str(&ip)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            lanes: Arc::new(lane::Lanes::default()),
        }
    }
}

/// Counts a downstream connection as active while alive.
pub(crate) struct ActiveConnection(pub Arc<Upstream>);

impl ActiveConnection {
    pub fn new(up: &Arc<Upstream>) -> Self {
        up.metrics.active_connections.fetch_add(1, Relaxed);
        up.metrics.connections.fetch_add(1, Relaxed);
        ActiveConnection(up.clone())
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.metrics.active_connections.fetch_sub(1, Relaxed);
    }
}

/// The stack every upstream listener serves: shed → rate limit → forward.
pub type Stack = layers::Shed<layers::RateLimit<Forward>>;

/// The L7 stack of one upstream.
pub fn stack(up: &Arc<Upstream>, client: HttpClient) -> Stack {
    layers::ShedLayer::new(up.clone())
        .layer(layers::RateLimitLayer::new(up.clone()).layer(Forward::new(up.clone(), client)))
}

/// Accepts connections until `shutdown` turns true; each is served on its own task.
pub async fn serve(
    listener: TcpListener,
    up: Arc<Upstream>,
    client: HttpClient,
    shutdown: watch::Receiver<bool>,
) {
    let name = up.name.clone();
    serve_stack(listener, stack(&up, client), Some(up), name, shutdown).await
}

/// Serves `svc` on `listener`: one task per connection, HTTP/1.1 or h2c. `owner` (if any)
/// counts the connections and malformed requests.
pub async fn serve_stack<S>(
    listener: TcpListener,
    svc: S,
    owner: Option<Arc<Upstream>>,
    name: String,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<ProxyBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let stack = svc.clone();
        let owner = owner.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let _active = owner.as_ref().map(ActiveConnection::new);
            // Its upstream connections close with it.
            let client = ClientConn::new(peer);
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(client.clone());
                let mut s = stack.clone();
                async move { s.call(req).await }
            });
            let mut conn = auto::Builder::new(TokioExecutor::new());
            // A client that never finishes its headers (slowloris) is cut off.
            conn.http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            // With upgrades: a `101` hands the connection to `upgrade::splice`.
            if let Err(e) = conn
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await
            {
                let parse = e
                    .downcast_ref::<hyper::Error>()
                    .is_some_and(|h| h.is_parse() || h.is_parse_too_large());
                if parse {
                    tracing::info!(listener = %name, client = %peer, error = %e, "malformed request");
                    if let Some(up) = &owner {
                        up.metrics.response(400);
                    }
                } else {
                    tracing::debug!(listener = %name, client = %peer, error = %e, "connection ended");
                }
            }
        });
    }
}
