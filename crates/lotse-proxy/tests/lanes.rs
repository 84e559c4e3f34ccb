//! Lanes: an HTTP/1.1 client connection sends its requests on upstream connections of its own.
//! A raw upstream counts the connections it accepts and answers each request with that count,
//! so the tests see which upstream connection served which request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use lotse_proxy::{Proxy, ProxySpec, Source, UpstreamConfig, UpstreamSpec};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that answers `conn=<n> host=<Host header>` (n: which accepted connection) and,
/// with `one_per_connection`, closes each connection after its first response without saying
/// so (no `Connection: close`), as a server whose keep-alive timer just fired.
async fn counting_upstream(one_per_connection: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let n = count.fetch_add(1, SeqCst) + 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(head) = read_head(&mut s, &mut buf).await else {
                        return;
                    };
                    let host = head
                        .lines()
                        .find_map(|l| l.strip_prefix("host: ").or(l.strip_prefix("Host: ")))
                        .unwrap_or("-")
                        .to_string();
                    let body = format!("conn={n} host={host}");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() || one_per_connection {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// One request head (requests here have no body), taken off the front of `buf`.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn start(endpoint: SocketAddr) -> (Proxy, SocketAddr) {
    // No retries: a request that needed one would fail the test.
    start_with(
        endpoint,
        json!({"protocol": "http", "retries": {"num_retries": 0}}),
    )
    .await
}

async fn start_with(endpoint: SocketAddr, config: serde_json::Value) -> (Proxy, SocketAddr) {
    let (config, unknown) = UpstreamConfig::from_json(&config, "config").expect("config");
    assert!(unknown.is_empty());
    let spec = ProxySpec {
        proxy_id: "test".into(),
        config_version: 1,
        agent: None,
        upstreams: vec![UpstreamSpec {
            name: "svc".into(),
            bind: "127.0.0.1:0".parse().expect("addr"),
            source: Source::Static(vec![endpoint]),
            config,
        }],
        gateways: Vec::new(),
        admin_bind: None,
    };
    let proxy = Proxy::start(spec).await.expect("start");
    let addr = proxy.upstreams()[0].bind;
    (proxy, addr)
}

/// A keep-alive client connection to the proxy.
async fn client(proxy: SocketAddr) -> http1::SendRequest<Empty<Bytes>> {
    let s = TcpStream::connect(proxy).await.expect("connect");
    let (sender, conn) = http1::handshake(TokioIo::new(s)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut http1::SendRequest<Empty<Bytes>>, host: Option<&str>) -> String {
    sender.ready().await.expect("ready");
    let mut req = Request::get("/");
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let resp = sender
        .send_request(req.body(Empty::new()).expect("request"))
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn a_client_connection_keeps_its_upstream_connection() {
    let (endpoint, accepted) = counting_upstream(false).await;
    let (_proxy, addr) = start(endpoint).await;
    let mut a = client(addr).await;
    let mut b = client(addr).await;
    let first_a = get(&mut a, Some("svc.test")).await;
    let first_b = get(&mut b, Some("svc.test")).await;
    assert_ne!(
        first_a, first_b,
        "two client connections share an upstream one"
    );
    for _ in 0..5 {
        assert_eq!(get(&mut a, Some("svc.test")).await, first_a);
        assert_eq!(get(&mut b, Some("svc.test")).await, first_b);
    }
    assert_eq!(accepted.load(SeqCst), 2);
    assert!(first_a.ends_with("host=svc.test"), "{first_a}");
}

#[tokio::test]
async fn an_upstream_connection_closed_between_requests_is_replaced() {
    let (endpoint, accepted) = counting_upstream(true).await;
    let (_proxy, addr) = start(endpoint).await;
    let mut c = client(addr).await;
    // Each request finds its kept connection closed by the upstream; with no retries allowed,
    // every one still succeeds, on a new connection.
    for i in 1..=5 {
        let body = get(&mut c, Some("svc.test")).await;
        assert!(body.starts_with(&format!("conn={i} ")), "{body}");
    }
    assert_eq!(accepted.load(SeqCst), 5);
}

#[tokio::test]
async fn a_request_without_host_gets_the_endpoint_address() {
    let (endpoint, _) = counting_upstream(false).await;
    let (_proxy, addr) = start(endpoint).await;
    // HTTP/1.0 without Host, as old clients and health probes send.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    assert!(resp.ends_with(&format!("host={endpoint}")), "{resp}");
}

#[tokio::test]
async fn past_half_the_connection_limit_clients_share_the_pool() {
    let (endpoint, accepted) = counting_upstream(false).await;
    let config = json!({"protocol": "http", "retries": {"num_retries": 0},
                        "limits": {"max_connections": 2}});
    let (_proxy, addr) = start_with(endpoint, config).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(client(addr).await);
    }
    // The first client opens a lane (1 of 2 connections); the others, finding half the limit
    // used, share one pooled connection instead of waiting for slots that never free up.
    for _ in 0..3 {
        for c in clients.iter_mut() {
            get(c, Some("svc.test")).await;
        }
    }
    assert_eq!(accepted.load(SeqCst), 2);
}
