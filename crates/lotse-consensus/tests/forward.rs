//! The `Forward` service end to end over a loopback socket: each call reaches the server's
//! `ForwardHandler` and its answer (or its refusal) comes back unchanged; a dead address and a
//! slow handler surface as `Unreachable` and `Timeout`, which the facade treats differently
//! (retry elsewhere vs. outcome unknown).

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

mod support;

use std::sync::Arc;
use std::time::Duration;

use lotse_consensus::{ForwardHandler, HttpReply, HttpRequest, Peers, RpcError};
use support::{listener, Node, Spec};
use tonic::{Code, Status};

struct Echo;

#[tonic::async_trait]
impl ForwardHandler for Echo {
    async fn apply(&self, command: Vec<u8>) -> Result<Vec<u8>, Status> {
        if command.is_empty() {
            return Err(Status::failed_precondition("not the leader"));
        }
        Ok(command.into_iter().rev().collect())
    }

    async fn read_index(&self, consistent: bool) -> Result<u64, Status> {
        Ok(if consistent { 42 } else { 41 })
    }

    async fn http(&self, request: HttpRequest) -> Result<HttpReply, Status> {
        if request.path_and_query.starts_with("/slow") {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let mut headers = request.headers.clone();
        headers.push(("x-method".into(), request.method.into_bytes()));
        headers.push(("x-path".into(), request.path_and_query.into_bytes()));
        Ok(HttpReply {
            status: 201,
            headers,
            body: request.body,
        })
    }

    async fn agent_call(&self, call: Vec<u8>) -> Result<Vec<u8>, Status> {
        Ok([b"agent:".as_slice(), &call].concat())
    }
}

#[tokio::test]
async fn forwarded_calls_round_trip_through_the_handler() {
    let root = tempfile::tempdir().expect("temp dir");
    let node = Node::start_with(
        Spec {
            id: 1,
            listener: listener().await,
            dir: root.path().join("n1"),
            bootstrap: true,
            initial_members: None,
            snapshot_threshold: 16384,
        },
        Arc::new(Echo),
    )
    .await;
    let peers = Peers::new();
    let client = peers.forward_client(&node.addr).expect("client");
    let t = Duration::from_secs(2);

    assert_eq!(
        client.apply(vec![1, 2, 3], t).await.expect("apply"),
        vec![3, 2, 1]
    );
    match client.apply(Vec::new(), t).await {
        Err(RpcError::Status { status, .. }) => {
            assert_eq!(status.code(), Code::FailedPrecondition);
            assert_eq!(status.message(), "not the leader");
        }
        other => panic!("expected the handler's refusal, got {other:?}"),
    }
    assert_eq!(client.read_index(true, t).await.expect("read index"), 42);
    assert_eq!(client.read_index(false, t).await.expect("read index"), 41);
    assert_eq!(
        client
            .agent_call(b"x".to_vec(), t)
            .await
            .expect("agent call"),
        b"agent:x"
    );

    let request = HttpRequest {
        method: "PUT".into(),
        path_and_query: "/v1/kv/a?cas=3".into(),
        headers: vec![
            ("x-consul-token".into(), b"secret".to_vec()),
            ("x-bin".into(), vec![0xff, 0x00]),
        ],
        body: b"hello".to_vec(),
    };
    let reply = client.http(request, t).await.expect("http");
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, b"hello");
    assert_eq!(
        reply.headers,
        vec![
            ("x-consul-token".to_string(), b"secret".to_vec()),
            ("x-bin".to_string(), vec![0xff, 0x00]),
            ("x-method".to_string(), b"PUT".to_vec()),
            ("x-path".to_string(), b"/v1/kv/a?cas=3".to_vec()),
        ]
    );

    // A handler slower than the caller's deadline: the caller gives up and says so.
    let slow = HttpRequest {
        method: "GET".into(),
        path_and_query: "/slow".into(),
        ..HttpRequest::default()
    };
    match client.http(slow, Duration::from_millis(200)).await {
        Err(RpcError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("expected a timeout, got {other:?}"),
    }

    // The pooled channel is reused: a second client to the same address works the same.
    let again = peers.forward_client(&node.addr).expect("client");
    assert_eq!(again.read_index(true, t).await.expect("read index"), 42);

    // Nobody listens at a closed port: unreachable, not a status from a handler.
    let closed = listener().await;
    let closed_addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let dead = peers.forward_client(&closed_addr).expect("client");
    match dead.read_index(true, t).await {
        Err(RpcError::Unreachable { .. }) => {}
        other => panic!("expected unreachable, got {other:?}"),
    }
    node.stop().await;
}
