//! An in-memory, single-node server behind a full [`ApiState`], for tests that call handlers
//! directly, plus the few writes and reads those tests make.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::response::Response;
use lotse_core::catalog::{DeregisterRequest, HealthCheck, Node, RegisterRequest, Service};
use lotse_core::Command;
use lotse_server::{Server, ServerConfig, ServerError};

use crate::{AgentInfo, ApiState, Limits, State};

/// A leader with an agent (its own node is `n1`, which the tests leave alone).
pub async fn state() -> State {
    let server = Server::start(ServerConfig {
        node_name: "n1".into(),
        node_id: "3f4c2a1e-0000-4000-8000-000000000001".into(),
        datacenter: "dc1".into(),
        advertise_addr: "127.0.0.1".into(),
        server_port: 8300,
        data_dir: None,
        bootstrap: true,
        snapshot_threshold: 100_000,
        session_ttl_min: Duration::from_secs(10),
        raft_multiplier: 1,
        rpc_hold_timeout: Duration::from_secs(7),
        autopilot: Default::default(),
    })
    .await
    .expect("server starts");
    assert!(server.wait_leader(Duration::from_secs(10)).await);
    let local = lotse_agent::Agent::start(server.clone(), Default::default()).expect("agent");
    Arc::new(ApiState {
        telemetry: server.telemetry.clone(),
        server: Some(server),
        servers: None,
        agent: AgentInfo {
            node_name: "n1".into(),
            node_id: "3f4c2a1e-0000-4000-8000-000000000001".into(),
            datacenter: "dc1".into(),
            primary_datacenter: "dc1".into(),
            server: true,
            dev: false,
            version: "test".into(),
            bind_addr: "127.0.0.1".into(),
            client_addr: "127.0.0.1".into(),
            http_port: 8500,
            serf_lan_port: 8301,
            server_port: 8300,
            bootstrap_expect: 1,
            domain: "consul.".into(),
        },
        request_limits: Default::default(),
        limits: Limits::default(),
        local,
        reload: None,
        logs: crate::monitor::LogHub::new(),
        gossip: None,
        keyring_path: None,
        leave: None,
        events: Default::default(),
    })
}

/// A node with an address (and `meta`, `id` as given).
pub fn node(name: &str, id: &str, meta: &[(&str, &str)]) -> Node {
    Node {
        name: name.into(),
        id: id.into(),
        address: format!("10.0.0.{}", name.len()),
        datacenter: "dc1".into(),
        meta: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Node::default()
    }
}

/// Registers `node` with an optional service and checks, through the log.
pub async fn register(
    state: &State,
    node: Node,
    service: Option<Service>,
    checks: Vec<HealthCheck>,
) -> Result<(), ServerError> {
    let req = RegisterRequest {
        node,
        skip_node_update: false,
        service,
        checks,
    };
    let cmd = Command::CatalogRegister {
        req: Box::new(req),
        now_ms: lotse_server::now_ms(),
    };
    srv(state).write(cmd).await.map(|_| ())
}

/// Removes a node, a service (and its checks) or a check.
pub async fn deregister(
    state: &State,
    node: &str,
    service: Option<&str>,
    check: Option<&str>,
) -> Result<(), ServerError> {
    let req = DeregisterRequest {
        node: node.into(),
        service_id: service.map(str::to_string),
        check_id: check.map(str::to_string),
    };
    let cmd = Command::CatalogDeregister {
        req,
        now_ms: lotse_server::now_ms(),
    };
    srv(state).write(cmd).await.map(|_| ())
}

/// A response's status, `X-Consul-Index` and body.
pub async fn parts(resp: Response) -> (u16, u64, Bytes) {
    let status = resp.status().as_u16();
    let index = resp
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, index, body)
}

/// The test state's server (it always has one).
pub(crate) fn srv(state: &State) -> &Arc<lotse_server::Server> {
    state.server.as_ref().expect("the test state runs a server")
}
