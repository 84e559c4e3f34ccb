//! Lanes: an HTTP/1.1 client connection sends its requests on upstream connections of its own.
//! A raw upstream counts the connections it accepts and answers each request with that count,
//! so the tests see which upstream connection served which request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use lotse_proxy::Proxy;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

/// How the upstream treats a connection after its first request.
#[derive(Clone, Copy, PartialEq)]
enum After {
    /// Keeps it open and answers every request.
    KeepAlive,
    /// Closes it after the first response without saying so (no `Connection: close`), as a
    /// server whose keep-alive timer fired.
    Close,
    /// Reads the second request and closes without answering (a crash mid-request).
    DropSecond,
}

/// An upstream that answers `conn=<n> host=<Host header>` (n: which accepted connection).
async fn counting_upstream(after: After) -> (SocketAddr, Arc<AtomicUsize>) {
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
                for served in 0.. {
                    let Some(head) = read_request(&mut s, &mut buf).await else {
                        return;
                    };
                    if served == 1 && after == After::DropSecond {
                        return;
                    }
                    let host = header(&head, "host").unwrap_or_else(|| "-".into());
                    let body = format!("conn={n} host={host}");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() || after == After::Close {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// One request, taken off the front of `buf`: its head is returned, its body (by
/// `content-length`) skipped.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                buf.drain(..end + 4 + length);
                return Some(head);
            }
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
    common::start(config, vec![endpoint]).await
}

/// A keep-alive client connection to the proxy.
async fn client(proxy: SocketAddr) -> http1::SendRequest<Full<Bytes>> {
    let s = TcpStream::connect(proxy).await.expect("connect");
    let (sender, conn) = http1::handshake(TokioIo::new(s)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut http1::SendRequest<Full<Bytes>>) -> String {
    let (status, body) = send(sender, Method::GET).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn send(sender: &mut http1::SendRequest<Full<Bytes>>, method: Method) -> (u16, String) {
    sender.ready().await.expect("ready");
    let req = Request::builder()
        .method(method)
        .uri("/")
        .header("host", "svc.test")
        .body(Full::new(Bytes::from_static(b"x")))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Writes `req` on a new connection and reads until the answer ends with `tail`.
async fn raw(proxy: SocketAddr, req: &str, tail: &str) -> String {
    let mut s = TcpStream::connect(proxy).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&resp).ends_with(tail) {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&resp));
        resp.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test]
async fn a_client_connection_keeps_its_upstream_connection() {
    let (endpoint, accepted) = counting_upstream(After::KeepAlive).await;
    let (_proxy, addr) = start(endpoint).await;
    let mut a = client(addr).await;
    let mut b = client(addr).await;
    let first_a = get(&mut a).await;
    let first_b = get(&mut b).await;
    assert_ne!(
        first_a, first_b,
        "two client connections share an upstream one"
    );
    for _ in 0..5 {
        assert_eq!(get(&mut a).await, first_a);
        assert_eq!(get(&mut b).await, first_b);
    }
    assert_eq!(accepted.load(SeqCst), 2);
    assert!(first_a.ends_with("host=svc.test"), "{first_a}");
}

#[tokio::test]
async fn an_upstream_connection_closed_between_requests_is_replaced() {
    let (endpoint, accepted) = counting_upstream(After::Close).await;
    let (_proxy, addr) = start(endpoint).await;
    let mut c = client(addr).await;
    // Each request finds its kept connection closed by the upstream while it was idle; with
    // no retries allowed, every one still succeeds, on a new connection.
    for i in 1..=5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let body = get(&mut c).await;
        assert!(body.starts_with(&format!("conn={i} ")), "{body}");
    }
    assert_eq!(accepted.load(SeqCst), 5);
}

#[tokio::test]
async fn a_kept_connection_that_dies_mid_request_is_a_reset() {
    let (endpoint, _) = counting_upstream(After::DropSecond).await;
    let config = json!({"protocol": "http", "retries": {"num_retries": 1}});
    let (_proxy, addr) = start_with(endpoint, config).await;
    let mut c = client(addr).await;
    assert!(get(&mut c).await.starts_with("conn=1 "));
    // The endpoint reads the request and dies: a GET is sent again, on a new connection...
    assert!(get(&mut c).await.starts_with("conn=2 "));
    // ...a POST, which the endpoint may have acted on, is not.
    let (status, body) = send(&mut c, Method::POST).await;
    assert_eq!(status, 502, "{body}");
}

#[tokio::test]
async fn a_request_without_host_gets_the_endpoint_address() {
    let (endpoint, _) = counting_upstream(After::KeepAlive).await;
    let (_proxy, addr) = start(endpoint).await;
    let tail = format!("host={endpoint}");
    // HTTP/1.0 without Host, as old clients and health probes send: closing after it (the
    // pool) and keeping the connection (a lane).
    for req in [
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
    ] {
        let resp = raw(addr, req, &tail).await;
        assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    }
}

#[tokio::test]
async fn clients_that_close_share_the_pool_instead_of_opening_lanes() {
    let (endpoint, accepted) = counting_upstream(After::KeepAlive).await;
    let (_proxy, addr) = start(endpoint).await;
    // One request per client connection, each saying so: the upstream connection outlives
    // them in the pool, instead of one connection per request.
    for _ in 0..5 {
        let req = "GET / HTTP/1.1\r\nhost: svc.test\r\nconnection: close\r\n\r\n";
        let resp = raw(addr, req, "host=svc.test").await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    assert_eq!(accepted.load(SeqCst), 1);
}

#[tokio::test]
async fn past_half_the_connection_limit_clients_share_the_pool() {
    let (endpoint, accepted) = counting_upstream(After::KeepAlive).await;
    let config = json!({"protocol": "http", "retries": {"num_retries": 0},
                        "limits": {"max_connections": 2}});
    let (_proxy, addr) = start_with(endpoint, config).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(client(addr).await);
    }
    // The first client opens a lane (1 of 2 connections); the others, finding half the limit
    // taken, share one pooled connection instead of waiting for slots that never free up.
    for _ in 0..3 {
        for c in clients.iter_mut() {
            get(c).await;
        }
    }
    assert_eq!(accepted.load(SeqCst), 2);
}
