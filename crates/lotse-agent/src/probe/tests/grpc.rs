//! gRPC probe against tonic-health's server.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::servers::{closed_tcp_addr, grpc_server, raw_server, tls_acceptor};
use super::{assert_prompt, assert_result, QUICK, SHORT};
use crate::probe::{grpc, GrpcProbe, Status};

fn probe(target: String) -> GrpcProbe {
    GrpcProbe {
        target,
        use_tls: false,
        tls_skip_verify: false,
    }
}

#[tokio::test]
async fn serving_passes_and_other_statuses_fail_with_consuls_output() {
    let addr = grpc_server(None).await;
    let r = grpc(&probe(addr.to_string()), QUICK).await;
    assert_eq!(
        (r.status, r.output),
        (Status::Passing, format!("gRPC check {addr}: success"))
    );
    let r = grpc(&probe(format!("{addr}/svc.up")), QUICK).await;
    assert_eq!(
        (r.status, r.output),
        (
            Status::Passing,
            format!("gRPC check {addr}/svc.up: success")
        )
    );

    let r = grpc(&probe(format!("{addr}/svc.down")), QUICK).await;
    let want = format!("gRPC {addr}/svc.down serving status: NOT_SERVING");
    assert_eq!((r.status, r.output), (Status::Critical, want));

    let r = grpc(&probe(format!("{addr}/svc.unknown")), QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        "rpc error: code = NotFound desc = service not registered",
    );
}

#[tokio::test]
async fn tls_needs_skip_verify_for_a_self_signed_cert() {
    let addr = grpc_server(Some(tls_acceptor(&[b"h2"]))).await;
    let p = GrpcProbe {
        use_tls: true,
        tls_skip_verify: true,
        ..probe(format!("{addr}/svc.up"))
    };
    assert_result(&grpc(&p, QUICK).await, Status::Passing, "success");

    let p = GrpcProbe {
        use_tls: true,
        ..probe(addr.to_string())
    };
    let r = grpc(&p, QUICK).await;
    assert_result(&r, Status::Critical, "code = Unavailable");
    assert_result(
        &r,
        Status::Critical,
        "authentication handshake failed: tls: failed to verify certificate",
    );
}

#[tokio::test]
async fn unreachable_and_silent_servers_are_critical() {
    let closed = closed_tcp_addr().await;
    let r = grpc(&probe(closed.to_string()), QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        "rpc error: code = Unavailable desc = connection error",
    );
    assert_result(
        &r,
        Status::Critical,
        &format!("dial tcp {closed}: connect: connection refused"),
    );

    let http1 = raw_server(|mut s: TcpStream| async move {
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    })
    .await;
    let r = grpc(&probe(http1.to_string()), QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        "rpc error: code = Unavailable desc = connection error: desc = ",
    );

    let silent = raw_server(|s: TcpStream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let started = Instant::now();
    let r = grpc(&probe(silent.to_string()), SHORT).await;
    assert_prompt(started, SHORT);
    assert_result(
        &r,
        Status::Critical,
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
    );
}
