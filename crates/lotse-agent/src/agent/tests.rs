//! The agent against a real, in-memory, single-node server.
//!
//! * `sync`: anti-entropy (no-op syncs write nothing, the server's own rows stay, refusals
//!   are repaired, deferred output).
//! * `races`: concurrent and late edits (runners of replaced or removed checks, TTL reports
//!   against expiry, the reaper against a re-registration, dropping the agent).
//! * `config`: configuration reloads, all or nothing.
//! * `persist`: what survives a restart.
//! * `alias`: alias checks following the catalog through the server's `Upstream`.

mod alias;
mod config;
mod persist;
mod races;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use lotse_core::catalog::{CheckStatus, HealthCheck, Service};
use lotse_server::{Server, ServerConfig};
use serde_json::{json, Value};

use super::{Agent, AgentOptions};
use crate::definition::{decode, CheckDefinition, ServiceDefinition};

const NODE: &str = "n1";

async fn server() -> Arc<Server> {
    let s = Server::start(ServerConfig {
        node_name: NODE.into(),
        node_id: "3f4c2a1e-0000-4000-8000-000000000001".into(),
        datacenter: "dc1".into(),
        advertise_addr: "127.0.0.1".into(),
        server_port: 8300,
        data_dir: None,
        bootstrap: true,
        snapshot_threshold: 10_000,
        session_ttl_min: Duration::from_secs(10),
        raft_multiplier: 1,
        rpc_hold_timeout: Duration::from_secs(7),
        autopilot: Default::default(),
    })
    .await
    .expect("server starts");
    assert!(s.wait_leader(Duration::from_secs(10)).await, "no leader");
    // The leader registers its node, `consul` service and serfHealth within a tick.
    for _ in 0..500 {
        let registered = s.peek(|st| {
            st.service(NODE, lotse_server::CONSUL_SERVICE).is_some()
                && st.check(NODE, lotse_core::node::SERF_HEALTH).is_some()
        });
        if registered {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server did not register itself");
}

/// A server and an agent on it, after the agent's first full sync.
async fn agent_with(options: AgentOptions) -> (Arc<Server>, Arc<Agent>) {
    let s = server().await;
    let a = Agent::start(s.clone(), options).expect("agent starts");
    a.sync_full().await.expect("first full sync");
    (s, a)
}

async fn agent() -> (Arc<Server>, Arc<Agent>) {
    agent_with(AgentOptions::default()).await
}

fn service(body: Value) -> ServiceDefinition {
    decode::service(&body).expect("valid service")
}

fn check(body: Value) -> CheckDefinition {
    decode::check(&body).expect("valid check")
}

/// The raft log's last index: moves with every write, no-op or not.
fn last_log_index(s: &Server) -> u64 {
    s.raft_stats()
        .into_iter()
        .find(|(k, _)| *k == "last_log_index")
        .and_then(|(_, v)| v.parse().ok())
        .expect("last_log_index")
}

fn catalog_service(s: &Server, id: &str) -> Option<Service> {
    s.peek(|st| st.service(NODE, id).cloned())
}

fn catalog_check(s: &Server, id: &str) -> Option<HealthCheck> {
    s.peek(|st| st.check(NODE, id).cloned())
}

fn local_check(a: &Agent, id: &str) -> Option<HealthCheck> {
    a.checks().into_iter().find(|c| c.check_id == id)
}

fn registration(a: &Agent, id: &str) -> u64 {
    a.state().checks()[id].registration
}

fn status(c: Option<HealthCheck>) -> Option<(CheckStatus, String)> {
    c.map(|c| (c.status, c.output))
}
