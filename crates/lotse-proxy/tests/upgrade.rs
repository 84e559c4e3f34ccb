//! HTTP/1.1 upgrades through the L7 path: the proxy answers the endpoint's `101`, then splices
//! both connections (an echo protocol here; WebSocket works the same way), and cuts an upgraded
//! connection that idles past `stream_idle_timeout_ms`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;
use common::start;

/// An upstream that switches to an echo protocol on `Upgrade: echo` and answers 200 otherwise.
async fn echo_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|mut req: Request<Incoming>| async move {
                    let wants =
                        req.headers().get("upgrade").and_then(|v| v.to_str().ok()) == Some("echo");
                    if !wants {
                        return Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("plain"))));
                    }
                    let on = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        let Ok(up) = on.await else { return };
                        let mut io = TokioIo::new(up);
                        let mut buf = [0u8; 1024];
                        loop {
                            match io.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if io.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                    let mut r = Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    r.headers_mut()
                        .insert("connection", http::HeaderValue::from_static("upgrade"));
                    r.headers_mut()
                        .insert("upgrade", http::HeaderValue::from_static("echo"));
                    Ok(r)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// Sends an upgrade request on a raw connection; returns the connection and the response head.
async fn upgrade(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("head in time")
            .expect("read");
        assert_eq!(n, 1, "closed before the head ended: {head:?}");
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).to_lowercase())
}

#[tokio::test]
async fn an_upgraded_connection_is_spliced_both_ways() {
    let (proxy, addr) = start(json!({"protocol": "http"}), vec![echo_upstream().await]).await;
    let (mut s, head) = upgrade(addr).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for msg in [&b"hello"[..], b"again", &[0u8, 255, 10, 13]] {
        s.write_all(msg).await.expect("write");
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("echo in time")
            .expect("read");
        assert_eq!(buf, msg);
    }
    // While open it counts as a request in flight (the breaker's view).
    assert_eq!(proxy.upstreams()[0].status().requests_in_flight, 1);
    assert_eq!(proxy.upstreams()[0].metrics.upgrades.load(Relaxed), 1);
    drop(s);
    // Plain requests on the same listener still work.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    plain.read_to_string(&mut out).await.expect("read");
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("plain"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.upstreams()[0].status().requests_in_flight != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.upstreams()[0].status().requests_in_flight, 0);
    proxy.shutdown().await;
}

#[tokio::test]
async fn an_idle_upgraded_connection_is_closed() {
    let cfg = json!({"protocol": "http", "stream_idle_timeout_ms": 300});
    let (proxy, addr) = start(cfg, vec![echo_upstream().await]).await;
    let (mut s, head) = upgrade(addr).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    s.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.expect("echo");
    let start = Instant::now();
    let mut rest = Vec::new();
    // Closed (EOF or reset, either will do) well before the 5 s the test waits.
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(proxy.upstreams()[0].metrics.timeouts.load(Relaxed), 1);
    proxy.shutdown().await;
}
