//! H2PING probe against an `h2` server, cleartext and TLS, and against non-HTTP/2 peers.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::servers::{closed_tcp_addr, h2_server, raw_server, tls_acceptor};
use super::{assert_prompt, assert_result, QUICK, SHORT};
use crate::probe::{h2ping, H2PingProbe, Status};

fn probe(addr: String, use_tls: bool, tls_skip_verify: bool) -> H2PingProbe {
    H2PingProbe {
        addr,
        use_tls,
        tls_skip_verify,
    }
}

#[tokio::test]
async fn a_ping_round_trip_passes_over_h2c_and_tls() {
    let h2c = h2_server(None).await;
    let r = h2ping(&probe(h2c.to_string(), false, false), QUICK).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (Status::Passing, "HTTP2 ping was successful")
    );

    let tls = h2_server(Some(tls_acceptor(&[b"h2"]))).await;
    let r = h2ping(&probe(tls.to_string(), true, true), QUICK).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (Status::Passing, "HTTP2 ping was successful")
    );

    let r = h2ping(&probe(tls.to_string(), true, false), QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        &format!("Failed to dial to {tls}: tls: failed to verify certificate"),
    );
}

#[tokio::test]
async fn peers_that_are_not_http2_fail() {
    let closed = closed_tcp_addr().await;
    let r = h2ping(&probe(closed.to_string(), false, false), QUICK).await;
    let want =
        format!("Failed to dial to {closed}: dial tcp {closed}: connect: connection refused");
    assert_eq!((r.status, r.output), (Status::Critical, want));

    let http1 = raw_server(|mut s: TcpStream| async move {
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    })
    .await;
    let r = h2ping(&probe(http1.to_string(), false, false), QUICK).await;
    assert_result(&r, Status::Critical, "HTTP2 ping failed: ");

    let silent = raw_server(|s: TcpStream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let started = Instant::now();
    let r = h2ping(&probe(silent.to_string(), false, false), SHORT).await;
    assert_prompt(started, SHORT);
    assert_eq!(
        (r.status, r.output.as_str()),
        (
            Status::Critical,
            "HTTP2 ping failed: context deadline exceeded"
        )
    );
}
