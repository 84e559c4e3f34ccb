//! The engine end to end in one process: real listeners, real upstream servers (hyper, on
//! loopback), static endpoint sets (no agent). Proves forwarding over HTTP/1.1 and HTTP/2,
//! retries around a dead endpoint, sticky consistent hashing, and TCP splicing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use lotse_proxy::{Source, UpstreamConfig, UpstreamSpec};
use serde_json::json;
use tokio::net::TcpListener;

mod common;
use common::start;

/// An upstream answering its `name` (and the HTTP version it saw) to every request.
async fn upstream(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let body = format!("{name} {:?}", req.version());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// An address where nothing listens.
async fn dead() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

async fn get(addr: SocketAddr, header: Option<(&str, &str)>) -> (u16, String) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::get(format!("http://{addr}/"));
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    let resp = client
        .request(req.body(Empty::new()).expect("req"))
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn retries_around_a_dead_endpoint() {
    let a = upstream("a").await;
    let (proxy, addr) = start(json!({"protocol": "http"}), vec![a, dead().await]).await;
    for _ in 0..10 {
        let (status, body) = get(addr, None).await;
        assert_eq!(status, 200);
        assert!(body.starts_with("a "), "{body}");
    }
    let up = &proxy.upstreams()[0];
    assert!(
        up.metrics
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    assert!(
        up.metrics
            .connect_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn http2_to_the_upstream() {
    let a = upstream("a").await;
    let (proxy, addr) = start(json!({"protocol": "http2"}), vec![a]).await;
    let (status, body) = get(addr, None).await;
    assert_eq!(status, 200);
    assert_eq!(body, "a HTTP/2.0");
    proxy.shutdown().await;
}

#[tokio::test]
async fn ring_hash_sticks_to_one_endpoint_per_key() {
    let eps = vec![
        upstream("a").await,
        upstream("b").await,
        upstream("c").await,
    ];
    let cfg = json!({"protocol": "http", "load_balancer": {
        "policy": "ring_hash", "hash_policies": [{"field": "header", "field_value": "x-user"}]}});
    let (proxy, addr) = start(cfg, eps).await;
    let mut owners = std::collections::HashSet::new();
    for user in ["ann", "bob", "cy", "dee", "eve", "fay"] {
        let (_, first) = get(addr, Some(("x-user", user))).await;
        for _ in 0..3 {
            assert_eq!(get(addr, Some(("x-user", user))).await.1, first);
        }
        owners.insert(first);
    }
    assert!(owners.len() >= 2, "{owners:?}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn tcp_splices_bytes() {
    let a = upstream("a").await;
    let (proxy, addr) = start(json!({}), vec![dead().await, a]).await;
    for _ in 0..4 {
        let (status, body) = tokio::time::timeout(Duration::from_secs(5), get(addr, None))
            .await
            .expect("in time");
        assert_eq!(status, 200);
        assert!(body.starts_with("a "));
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn an_idle_tcp_connection_is_closed_and_a_busy_one_is_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = upstream("a").await;
    let (proxy, addr) = start(json!({"stream_idle_timeout_ms": 300}), vec![a]).await;
    // Busy: requests every 100 ms for 0.8 s on one connection keep it open.
    let mut busy = tokio::net::TcpStream::connect(addr).await.expect("connect");
    for _ in 0..8 {
        busy.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = busy.read(&mut buf).await.expect("read");
        assert!(n > 0, "the busy connection was closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle: nothing either way, closed after the idle time.
    let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The busy one idles out too once left alone; both count as timeouts.
    let _ = tokio::time::timeout(Duration::from_secs(5), busy.read_to_end(&mut rest)).await;
    let timeouts = &proxy.upstreams()[0].metrics.timeouts;
    assert_eq!(timeouts.load(std::sync::atomic::Ordering::Relaxed), 2);
    proxy.shutdown().await;
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let a = upstream("a").await;
    let (proxy, addr) = start(json!({"protocol": "http"}), vec![a]).await;
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = Request::get(format!("http://{addr}/"))
        .body(Empty::new())
        .expect("req");
    let resp = client.request(req).await.expect("response");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    // The proxy speaks HTTP/1.1 to an `http` upstream whatever the client spoke.
    assert_eq!(&body[..], b"a HTTP/1.1");
    proxy.shutdown().await;
}

#[tokio::test]
async fn consecutive_500s_eject_and_retry_status_codes_hide_them() {
    // "b" answers 500 to everything; with retries on 500 every request succeeds, and after
    // max_failures consecutive 500s "b" is ejected (no more retries needed).
    let a = upstream("a").await;
    let b = failing().await;
    let cfg = json!({"protocol": "http",
        "retries": {"num_retries": 1, "retry_on_status_codes": [500]},
        "passive_health_check": {"max_failures": 2, "max_ejection_percent": 50}});
    let (proxy, addr) = start(cfg, vec![a, b]).await;
    for _ in 0..10 {
        let (status, body) = get(addr, None).await;
        assert_eq!(status, 200);
        assert!(body.starts_with("a "));
    }
    let up = &proxy.upstreams()[0];
    let status = up.status();
    let bad = status.endpoints.iter().find(|e| e.address == b).expect("b");
    assert_eq!(bad.state, "ejected");
    assert_eq!(
        up.metrics
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    proxy.shutdown().await;
}

/// An upstream answering 500 to everything.
async fn failing() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    let mut r = Response::new(Full::new(Bytes::from_static(b"boom")));
                    *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                    Ok::<_, Infallible>(r)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn reconfigure_keeps_unchanged_upstreams_and_swaps_the_rest() {
    let a = upstream("a").await;
    let b = upstream("b").await;
    let (mut proxy, addr) = start(json!({"protocol": "http"}), vec![a]).await;
    assert_eq!(get(addr, None).await.0, 200);
    let kept = proxy.upstreams()[0].clone();
    let spec = |name: &str, bind: SocketAddr, ep: SocketAddr| UpstreamSpec {
        name: name.into(),
        bind,
        source: Source::Static(vec![ep]),
        config: UpstreamConfig::from_json(&json!({"protocol": "http"}), "config")
            .expect("config")
            .0,
    };
    // Same spec for the first (same listener, same state), a second one added.
    let new_bind = dead().await;
    proxy
        .reconfigure(vec![spec("svc", addr, a), spec("other", new_bind, b)], 2)
        .await
        .expect("reconfigure");
    assert!(std::sync::Arc::ptr_eq(&kept, &proxy.upstreams()[0]));
    assert_eq!(get(addr, None).await.1, "a HTTP/1.1");
    assert_eq!(get(new_bind, None).await.1, "b HTTP/1.1");
    // The first now points elsewhere: restarted on the same port with the new endpoints.
    proxy
        .reconfigure(vec![spec("svc", addr, b)], 3)
        .await
        .expect("reconfigure");
    assert_eq!(get(addr, None).await.1, "b HTTP/1.1");
    assert_eq!(proxy.upstreams().len(), 1);
    assert!(tokio::net::TcpStream::connect(new_bind).await.is_err());
    proxy.shutdown().await;
}

#[tokio::test]
async fn success_rate_ejection_removes_the_endpoint_that_stands_out() {
    // Consecutive-failure ejection off (max_failures 0): only the success-rate test can eject.
    let bad = failing().await;
    let eps = vec![
        upstream("a").await,
        upstream("b").await,
        upstream("c").await,
        bad,
    ];
    let cfg = json!({"protocol": "http", "passive_health_check": {
        "max_failures": 0, "max_ejection_percent": 50, "interval": "1s",
        "success_rate": {"minimum_hosts": 4, "request_volume": 5, "stdev_factor": 1.0}}});
    let (proxy, addr) = start(cfg, eps).await;
    let mut failures = 0;
    for _ in 0..40 {
        failures += usize::from(get(addr, None).await.0 == 500);
    }
    assert_eq!(
        failures, 10,
        "round robin: one in four answers 500 before the test runs"
    );
    tokio::time::sleep(Duration::from_millis(1050)).await;
    // The next outcome closes the interval and runs the test.
    get(addr, None).await;
    let up = &proxy.upstreams()[0];
    let status = up.status();
    let state = |a: SocketAddr| {
        status
            .endpoints
            .iter()
            .find(|e| e.address == a)
            .expect("ep")
            .state
    };
    assert_eq!(state(bad), "ejected");
    assert_eq!(
        status
            .endpoints
            .iter()
            .filter(|e| e.state == "ejected")
            .count(),
        1
    );
    for _ in 0..12 {
        assert_eq!(get(addr, None).await.0, 200);
    }
    proxy.shutdown().await;
}
