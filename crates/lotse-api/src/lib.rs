//! # lotse-api: Consul's HTTP API over the server facade
//!
//! ```text
//!  request ─► router (405 + Allow for a wrong method) ─► handler: parse params/body
//!          ─► Server (authorize, read/write) ─► reply: JSON (+ ?pretty) and Consul's headers
//! ```
//!
//! * [`reply`]: the response side: errors with Consul's status codes and texts, JSON bodies,
//!   `X-Consul-*` headers.
//! * [`params`]: query-string parsing shared by every endpoint (flags like `?recurse`, blocking
//!   and consistency options, `dc`).
//! * [`ci_json`]: request bodies read case-insensitively, as Go's `encoding/json` does.
//! * [`kv`], [`txn`], [`session`], [`status`], [`agent`], [`metrics`]: one file per endpoint group.
#![forbid(unsafe_code)]

pub mod agent;
pub mod ci_json;
pub mod kv;
pub mod metrics;
pub mod params;
pub mod reply;
pub mod session;
pub mod status;
pub mod txn;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, put};
use axum::Router;
use lotse_server::Server;

/// Facts about the agent the API reports (`/v1/agent/self`, members).
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub node_name: String,
    pub node_id: String,
    pub datacenter: String,
    pub primary_datacenter: String,
    pub server: bool,
    pub dev: bool,
    pub version: String,
    pub bind_addr: String,
    pub client_addr: String,
    pub http_port: u16,
    pub serf_lan_port: u16,
    pub server_port: u16,
    pub bootstrap_expect: u32,
    pub domain: String,
}

/// Request limits from the agent's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub kv_max_value_size: usize,
    pub txn_max_req_len: usize,
    pub txn_max_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            kv_max_value_size: 512 * 1024,
            txn_max_req_len: 512 * 1024,
            txn_max_ops: 128,
        }
    }
}

pub struct ApiState {
    pub server: Arc<Server>,
    pub agent: AgentInfo,
    pub limits: Limits,
}

pub type State = Arc<ApiState>;

/// Every `/v1` route. Bodies are read by the handlers themselves with their own limits, so the
/// default body limit is lifted here (no global timeout either: it would cut blocking queries).
pub fn router(state: State) -> Router {
    use reply::allow as a;
    Router::new()
        .route("/", get(agent::index))
        .route(
            "/v1/kv",
            a(
                get(kv::get_root).put(kv::put_root).delete(kv::delete_root),
                "OPTIONS,GET,PUT,DELETE",
            ),
        )
        .route(
            "/v1/kv/",
            a(
                get(kv::get_root).put(kv::put_root).delete(kv::delete_root),
                "OPTIONS,GET,PUT,DELETE",
            ),
        )
        .route(
            "/v1/kv/{*key}",
            a(
                get(kv::get).put(kv::put).delete(kv::delete),
                "OPTIONS,GET,PUT,DELETE",
            ),
        )
        .route("/v1/txn", a(put(txn::txn), "OPTIONS,PUT"))
        .route("/v1/session/create", a(put(session::create), "OPTIONS,PUT"))
        .route(
            "/v1/session/destroy/{id}",
            a(put(session::destroy), "OPTIONS,PUT"),
        )
        .route(
            "/v1/session/renew/{id}",
            a(put(session::renew), "OPTIONS,PUT"),
        )
        .route(
            "/v1/session/info/{id}",
            a(get(session::info), "OPTIONS,GET"),
        )
        .route(
            "/v1/session/node/{node}",
            a(get(session::node), "OPTIONS,GET"),
        )
        .route("/v1/session/list", a(get(session::list), "OPTIONS,GET"))
        .route("/v1/status/leader", a(get(status::leader), "OPTIONS,GET"))
        .route("/v1/status/peers", a(get(status::peers), "OPTIONS,GET"))
        .route("/v1/agent/self", a(get(agent::self_), "OPTIONS,GET"))
        .route("/v1/agent/members", a(get(agent::members), "OPTIONS,GET"))
        .route("/v1/agent/metrics", a(get(metrics::metrics), "OPTIONS,GET"))
        .fallback(reply::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            reply::common_headers,
        ))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves the API on `addr` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    state: State,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
