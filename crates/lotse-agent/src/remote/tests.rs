//! A client agent's upstream against a real single-server "cluster" over loopback server RPC:
//! every call goes through `Forward.AgentCall` to [`answer_clients`] and the server's facade,
//! and a dead server in the list is passed over.

use std::sync::Arc;
use std::time::Duration;

use lotse_consensus::rpc::Peers;
use lotse_core::catalog::{CheckStatus, HealthCheck, Node, RegisterRequest};
use lotse_core::{Command, Outcome};
use lotse_server::{Server, ServerConfig, ServerError};

use super::{answer_clients, RemoteUpstream, Servers};
use crate::test_support::register_db;
use crate::upstream::{AliasTarget, Upstream};

/// A bootstrapped single server answering client calls on a loopback port; returns it, its
/// RPC address, and the sender that stops its RPC listener.
async fn server() -> (Arc<Server>, String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::start(ServerConfig {
        node_name: "s1".into(),
        node_id: "3f4c2a1e-0000-4000-8000-0000000000a1".into(),
        datacenter: "dc1".into(),
        advertise_addr: "127.0.0.1".into(),
        server_port: addr.port(),
        data_dir: None,
        bootstrap: true,
        snapshot_threshold: 100_000,
        session_ttl_min: Duration::from_secs(10),
        raft_multiplier: 1,
        rpc_hold_timeout: Duration::from_secs(2),
        autopilot: Default::default(),
    })
    .await
    .expect("server starts");
    assert!(server.wait_leader(Duration::from_secs(10)).await);
    let routes = server.rpc_routes(lotse_server::ForwardHandlers {
        agent: Some(answer_clients(Arc::downgrade(&server))),
        ..Default::default()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(lotse_consensus::rpc::serve(listener, routes, async move {
        let _ = stopped.await;
    }));
    (server, addr.to_string(), stop)
}

fn client_node() -> Node {
    lotse_server::agent_node(
        "9b0e3d7a-0000-4000-8000-0000000000c1",
        "c1",
        "127.0.0.9",
        "dc1",
    )
}

/// A port nobody listens on.
async fn dead_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").to_string()
}

#[tokio::test]
async fn a_client_writes_reads_and_watches_through_a_server() {
    let (server, addr, _stop) = server().await;
    let servers = Servers::new(Peers::new());
    // A dead server first in the list: calls pass it over (it never answers a connect).
    servers.set(vec![dead_addr().await, addr.clone()]);
    let up = RemoteUpstream::start(client_node(), servers.clone(), Duration::from_secs(2));
    assert!(up.wait_leader_known(Duration::from_secs(5)).await);
    assert!(up.has_leader());
    assert_eq!(servers.preferred().as_deref(), Some(addr.as_str()));

    // A write is applied by the server's leader, and the index comes back.
    let (index, outcome) = up
        .write(register_db(CheckStatus::Critical, 1))
        .await
        .expect("write");
    assert!(index > 0);
    assert_eq!(outcome, Outcome::Bool(true));
    // The same rows a server's own agent would read.
    let remote = up.node_view("other").await.expect("node view");
    let local = Upstream::node_view(&*server, "other")
        .await
        .expect("local view");
    assert_eq!(remote, local);
    assert_eq!(remote.services[0].id, "db");

    // An alias watch parks on the server until the target's health changes.
    let target = AliasTarget {
        node: "other".into(),
        service: "db".into(),
        own_check: None,
    };
    let (first, health) = up
        .watch_health(&target, 0, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(health.status, CheckStatus::Critical);
    let watcher = {
        let (up, target) = (up.clone(), target.clone());
        tokio::spawn(async move {
            up.watch_health(&target, first, Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !watcher.is_finished(),
        "the watch returned before any change"
    );
    Upstream::write(&*server, register_db(CheckStatus::Passing, 1))
        .await
        .expect("write");
    let (next, health) = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("woken by the change")
        .expect("task")
        .expect("watch");
    assert!(next > first);
    assert_eq!(health.status, CheckStatus::Passing);

    // The store's refusal crosses the wire as the store's error.
    let bad = Command::CatalogRegister {
        req: Box::new(RegisterRequest {
            node: client_node(),
            skip_node_update: false,
            service: None,
            checks: vec![HealthCheck {
                service_id: "nope".into(),
                ..HealthCheck::new("c1", "orphan", "orphan")
            }],
        }),
        now_ms: 1,
    };
    match up.write(bad).await {
        Err(ServerError::Rejected(_)) => {}
        other => panic!("expected the store's refusal, got {other:?}"),
    }
    // A client agent writes its catalog rows and nothing else.
    let kv = Command::KvSet(lotse_core::kv::KvWrite {
        key: "not/mine".into(),
        value: b"x".to_vec(),
        flags: 0,
    });
    match up.write(kv).await {
        Err(ServerError::Invalid(msg)) => assert!(msg.contains("catalog"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn with_every_server_gone_calls_fail_and_no_leader_is_claimed() {
    let servers = Servers::new(Peers::new());
    servers.set(vec![dead_addr().await]);
    let up = RemoteUpstream::start(client_node(), servers, Duration::from_secs(1));
    assert!(!up.wait_leader_known(Duration::from_millis(300)).await);
    assert!(!up.has_leader());
    match up.node_view("c1").await {
        Err(ServerError::Rpc(msg)) => assert!(msg.contains("unreachable"), "{msg}"),
        other => panic!("expected an rpc error, got {other:?}"),
    }
}
