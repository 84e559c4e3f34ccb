//! Bodies that do not fit in memory, and bodies that take their time: request bodies stream to
//! the endpoint as they come (one over `max_request_body_bytes` is not retried once sent),
//! response bodies stream back as they come, `stream_idle_timeout_ms` cuts a stalled one either
//! way, and `request_timeout_ms` counts from the end of the request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod common;
use common::start;

type Out = UnsyncBoxBody<Bytes, Infallible>;

/// A body fed through a channel: the test decides when each chunk moves.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// An upstream with a few paths:
/// * `/len`: reads the whole body, answers its length;
/// * `/unavailable`: reads the whole body, answers 503;
/// * `/drip?gap_ms=N`: three chunks `a`, `b`, `c`, N ms apart;
/// * `/first`: answers the body's first frame, without waiting for the rest;
/// * `/sleep`: reads the whole body, answers after a second.
///
/// `hits` counts requests.
async fn upstream(hits: Arc<AtomicU64>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let hits = hits.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    hits.fetch_add(1, Relaxed);
                    async move { Ok::<_, Infallible>(answer(req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

async fn answer(req: Request<Incoming>) -> Response<Out> {
    let full = |s: String| {
        Full::new(Bytes::from(s))
            .map_err(|n| match n {})
            .boxed_unsync()
    };
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match path.as_str() {
        "/len" | "/unavailable" => {
            let n = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            let mut r = Response::new(full(n.to_string()));
            if path == "/unavailable" {
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            r
        }
        "/first" => {
            let mut body = req.into_body();
            let first = match body.frame().await {
                Some(Ok(f)) => f.into_data().unwrap_or_default(),
                _ => Bytes::new(),
            };
            // Keep reading in the background so the connection stays sound.
            tokio::spawn(async move { while body.frame().await.is_some() {} });
            Response::new(Full::new(first).map_err(|n| match n {}).boxed_unsync())
        }
        "/sleep" => {
            let _ = req.into_body().collect().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            Response::new(full("slept".into()))
        }
        "/drip" => {
            let gap: u64 = query
                .strip_prefix("gap_ms=")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                for chunk in ["a", "b", "c"] {
                    if tx.send(Bytes::from_static(chunk.as_bytes())).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(gap)).await;
                }
            });
            Response::new(ChannelBody(rx).boxed_unsync())
        }
        _ => Response::new(full("?".into())),
    }
}

async fn dead() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

/// Sends `size` bytes in 64 KiB chunks without a Content-Length (chunked), or with one.
async fn post(addr: SocketAddr, path: &str, size: usize, declare: bool) -> (u16, String) {
    let client: Client<HttpConnector, ChannelBody> =
        Client::builder(TokioExecutor::new()).build_http();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut left = size;
        while left > 0 {
            let n = left.min(64 << 10);
            if tx.send(Bytes::from(vec![b'x'; n])).await.is_err() {
                return;
            }
            left -= n;
        }
    });
    let mut req = Request::post(format!("http://{addr}{path}"));
    if declare {
        req = req.header("content-length", size.to_string());
    }
    let resp = client
        .request(req.body(ChannelBody(rx)).expect("req"))
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn small_buffer(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"protocol": "http", "max_request_body_bytes": 1024});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    c
}

#[tokio::test]
async fn bodies_over_the_buffer_limit_stream_to_the_upstream() {
    let hits = Arc::new(AtomicU64::new(0));
    let a = upstream(hits.clone()).await;
    let (proxy, addr) = start(small_buffer(json!({})), vec![a]).await;
    // Chunked (found out while reading) and declared (never buffered), 3 MiB each; and a
    // small one, buffered as before.
    assert_eq!(
        post(addr, "/len", 3 << 20, false).await,
        (200, "3145728".into())
    );
    assert_eq!(
        post(addr, "/len", 3 << 20, true).await,
        (200, "3145728".into())
    );
    assert_eq!(post(addr, "/len", 100, true).await, (200, "100".into()));
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_streamed_body_is_not_retried_once_sent_but_is_after_a_refused_connect() {
    let hits = Arc::new(AtomicU64::new(0));
    let a = upstream(hits.clone()).await;
    let b = upstream(hits.clone()).await;
    let cfg = small_buffer(json!({"retries": {"num_retries": 2, "retry_on_status_codes": [503]}}));
    let (proxy, addr) = start(cfg, vec![a, b]).await;
    let up = proxy.upstreams()[0].clone();
    // Buffered: the 503 is retried on the other endpoint (and then answered 503 again).
    assert_eq!(post(addr, "/unavailable", 100, true).await.0, 503);
    assert_eq!(hits.load(Relaxed), 3);
    assert_eq!(up.metrics.retries.load(Relaxed), 2);
    // Streamed: the body went to one endpoint; there is nothing left to send again.
    assert_eq!(post(addr, "/unavailable", 8 << 10, true).await.0, 503);
    assert_eq!(hits.load(Relaxed), 4);
    assert_eq!(up.metrics.retries.load(Relaxed), 2);
    proxy.shutdown().await;

    // A refused connection never touched the body: the next endpoint gets all of it.
    let hits = Arc::new(AtomicU64::new(0));
    let a = upstream(hits.clone()).await;
    let (proxy, addr) = start(small_buffer(json!({})), vec![dead().await, a]).await;
    for _ in 0..4 {
        assert_eq!(
            post(addr, "/len", 8 << 10, false).await,
            (200, "8192".into())
        );
    }
    assert!(proxy.upstreams()[0].metrics.connect_failures.load(Relaxed) >= 1);
    proxy.shutdown().await;
}

#[tokio::test]
async fn response_bodies_stream_and_a_stalled_one_is_cut() {
    let hits = Arc::new(AtomicU64::new(0));
    let a = upstream(hits).await;
    let (proxy, addr) = start(
        json!({"protocol": "http", "stream_idle_timeout_ms": 400}),
        vec![a],
    )
    .await;
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let get = |path: &str| {
        client.request(
            Request::get(format!("http://{addr}{path}"))
                .body(Empty::new())
                .expect("req"),
        )
    };
    // Chunks 200 ms apart: the first arrives long before the last is sent.
    let start = Instant::now();
    let mut body = get("/drip?gap_ms=200").await.expect("response").into_body();
    let first = body.frame().await.expect("frame").expect("data");
    assert_eq!(first.into_data().expect("data"), "a");
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(&rest[..], b"bc");
    // Chunks 2 s apart: the proxy gives up after 400 ms of silence.
    let start = Instant::now();
    let mut body = get("/drip?gap_ms=2000")
        .await
        .expect("response")
        .into_body();
    assert!(body.frame().await.expect("frame").is_ok());
    let cut = body.collect().await;
    assert!(cut.is_err(), "the stream should end in an error");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(proxy.upstreams()[0].metrics.timeouts.load(Relaxed), 1);
    proxy.shutdown().await;
}

/// Sends `n` chunks of `size` bytes, `gap` apart, without a Content-Length, to `path`; with
/// `hold`, the body then stays open (the sender is kept) for that long.
async fn post_slowly(
    addr: SocketAddr,
    path: &str,
    n: usize,
    size: usize,
    gap: Duration,
    hold: Option<Duration>,
) -> (u16, Bytes) {
    let client: Client<HttpConnector, ChannelBody> =
        Client::builder(TokioExecutor::new()).build_http();
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for _ in 0..n {
            if tx.send(Bytes::from(vec![b'z'; size])).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
        if let Some(h) = hold {
            tokio::time::sleep(h).await;
        }
    });
    let req = Request::post(format!("http://{addr}{path}"))
        .body(ChannelBody(rx))
        .expect("req");
    let resp = client.request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn small_request_bodies_stream_too() {
    // The client sends one frame and keeps its body open (a gRPC client stream does): the
    // endpoint gets the frame and answers before the body ends.
    let hits = Arc::new(AtomicU64::new(0));
    let a = upstream(hits).await;
    let (proxy, addr) = start(json!({"protocol": "http"}), vec![a]).await;
    let hold = Some(Duration::from_secs(30));
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        post_slowly(addr, "/first", 1, 5, Duration::ZERO, hold),
    )
    .await
    .expect("answered before the body ended");
    assert_eq!(answer, (200, Bytes::from_static(b"zzzzz")));
    proxy.shutdown().await;
}

#[tokio::test]
async fn the_request_timeout_counts_from_the_end_of_the_request() {
    let hits = Arc::new(AtomicU64::new(0));
    let a = upstream(hits).await;
    let cfg = small_buffer(json!({"request_timeout_ms": 500, "stream_idle_timeout_ms": 400}));
    let (proxy, addr) = start(cfg, vec![a]).await;
    let gap = Duration::from_millis(250);
    // Over a second of upload, kept for retries (100-byte chunks) or not (2 KiB chunks).
    assert_eq!(post_slowly(addr, "/len", 5, 100, gap, None).await.0, 200);
    assert_eq!(post_slowly(addr, "/len", 5, 2048, gap, None).await.0, 200);
    // The endpoint takes a second after the body: 504.
    assert_eq!(post_slowly(addr, "/sleep", 1, 10, gap, None).await.0, 504);
    // The client stops sending mid-body: 408 once it has been idle for 400 ms.
    let stalled = post_slowly(addr, "/len", 1, 10, gap, Some(Duration::from_secs(5))).await;
    assert_eq!(stalled.0, 408);
    let up = &proxy.upstreams()[0];
    // Neither the stall nor the timeout is held against the endpoint.
    assert_eq!(up.status().endpoints[0].consecutive_failures, 0);
    proxy.shutdown().await;
}
