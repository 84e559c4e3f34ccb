//! TCP and UDP probes.

use std::time::Instant;

use tokio::net::{TcpListener, UdpSocket};

use super::servers::{closed_tcp_addr, closed_udp_addr};
use super::{assert_prompt, assert_result, QUICK, SHORT};
use crate::probe::{tcp, udp, Status};

#[tokio::test]
async fn tcp_passes_when_the_port_accepts_and_fails_when_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let r = tcp(&addr.to_string(), QUICK).await;
    assert_eq!(r.output, format!("TCP connect {addr}: Success"));
    assert_eq!(r.status, Status::Passing);

    let closed = closed_tcp_addr().await;
    let r = tcp(&closed.to_string(), QUICK).await;
    assert_eq!(
        r.output,
        format!("dial tcp {closed}: connect: connection refused")
    );
    assert_eq!(r.status, Status::Critical);

    let r = tcp("127.0.0.1", QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        "dial tcp: address 127.0.0.1: missing port in address",
    );
}

#[tokio::test]
async fn udp_passes_on_a_reply() {
    let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        if let Ok((_, from)) = server.recv_from(&mut buf).await {
            let _ = server.send_to(b"pong", from).await;
        }
    });
    let r = udp(&addr.to_string(), QUICK).await;
    assert_eq!(
        (r.status, r.output),
        (Status::Passing, format!("UDP connect {addr}: Success"))
    );
}

#[tokio::test]
async fn udp_passes_on_silence_at_the_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let started = Instant::now();
    let r = udp(&addr.to_string(), SHORT).await;
    assert_prompt(started, SHORT);
    assert_eq!(
        (r.status, r.output),
        (Status::Passing, format!("UDP connect {addr}: Success"))
    );
    drop(silent);
}

#[tokio::test]
async fn udp_fails_on_a_port_unreachable() {
    let closed = closed_udp_addr().await;
    let started = Instant::now();
    let r = udp(&closed.to_string(), QUICK).await;
    assert!(
        started.elapsed() < SHORT,
        "the ICMP refusal should end the probe at once"
    );
    assert_result(
        &r,
        Status::Critical,
        &format!("->{closed}: read: connection refused"),
    );
    assert!(r.output.starts_with("read udp 127.0.0.1:"), "{}", r.output);
}
