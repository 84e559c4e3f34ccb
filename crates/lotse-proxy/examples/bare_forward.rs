//! The floor under Lotse's L7 sidecar, for `bench/run-proxy.sh --floor`: the same hyper server
//! and per-connection hyper client on the same one-thread runtime, and nothing else (no
//! balancing, limits, retries, timeouts, metrics, trace or header rewriting). What this costs
//! per request is what the engine's building blocks cost; the sidecar's figure above it is
//! what its features cost.
//!
//! Usage: `bare_forward LISTEN UPSTREAM [SPIN_NS]` (e.g. `127.0.0.1:21100 127.0.0.1:18080`).
//! `SPIN_NS` burns that much CPU per request, to see how the kernel's share of a request moves
//! with the proxy's own.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<bytes::Bytes, BoxError>;
type Sender = http1::SendRequest<Incoming>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .ok_or("usage: bare_forward LISTEN UPSTREAM")?
        .parse()?;
    let upstream: SocketAddr = args
        .next()
        .ok_or("usage: bare_forward LISTEN UPSTREAM")?
        .parse()?;
    let spin_ns: u64 = args.next().map_or(Ok(0), |s| s.parse())?;
    let spin = std::time::Duration::from_nanos(spin_ns);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream, spin))
}

async fn serve(
    listen: SocketAddr,
    upstream: SocketAddr,
    spin: std::time::Duration,
) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let lane: Arc<Mutex<Option<Sender>>> = Arc::default();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let lane = lane.clone();
                let start = std::time::Instant::now();
                while start.elapsed() < spin {
                    std::hint::spin_loop();
                }
                async move { Ok::<_, Infallible>(forward(&lane, upstream, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn forward(
    lane: &Mutex<Option<Sender>>,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let kept = lane.lock().ok().and_then(|mut l| l.take());
    let ready = match kept {
        Some(mut s) => s.ready().await.is_ok().then_some(s),
        None => None,
    };
    let sender = match ready {
        Some(s) => Some(s),
        None => connect(upstream).await,
    };
    let Some(mut sender) = sender else {
        return status(StatusCode::BAD_GATEWAY);
    };
    match sender.send_request(req).await {
        Ok(resp) => {
            if let Ok(mut l) = lane.lock() {
                *l = Some(sender);
            }
            resp.map(|b| b.map_err(Into::into).boxed_unsync())
        }
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

async fn connect(upstream: SocketAddr) -> Option<Sender> {
    let s = TcpStream::connect(upstream).await.ok()?;
    s.set_nodelay(true).ok()?;
    let (sender, conn) = http1::handshake(TokioIo::new(s)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(
        Full::default()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = code;
    r
}
