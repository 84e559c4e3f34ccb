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
//! * [`body`]: request bodies, bounded (413) and decoded as Go's `json.Decoder` does.
//! * [`catalog`], [`health`] (and the catalog part of `/v1/txn`, [`txn_catalog`]): Consul's
//!   catalog over the store; request bodies in [`catalog_decode`], rows as Consul's JSON in
//!   [`catalog_json`], `?filter=` shapes in [`catalog_filter`], the blocking-read plumbing
//!   they share in [`catalog_query`], and the answers shared between the watchers of one
//!   service in [`render_cache`].
//! * [`agent_services`], [`agent_checks`], [`agent_health`]: the agent's own services and
//!   checks (`/v1/agent/service*`, `/v1/agent/check*`, `/v1/agent/health/*`, maintenance,
//!   reload, token), over `lotse_agent::Agent`; [`monitor`]: `/v1/agent/monitor`'s log stream.
//! * [`filter`]: Consul's `?filter=` expression language (go-bexpr), parsed and checked
//!   against each endpoint's output shape, evaluated over the Consul-shaped JSON.
//! * The cluster's endpoints: [`cluster`] (join, leave, force-leave, keyring), [`operator`]
//!   (`/v1/operator/raft/*`, `/v1/operator/autopilot/*`), [`event`] (user events),
//!   [`snapshot`] (save and restore); [`forwarded`] answers HTTP requests handed over by other
//!   servers and hands leader-only requests to the leader; [`client`] is a client agent's
//!   side: what it does not answer itself goes to a server.
#![forbid(unsafe_code)]

pub mod agent;
pub mod agent_checks;
pub mod agent_health;
pub mod agent_services;
pub mod body;
pub mod catalog;
pub mod catalog_decode;
pub mod catalog_filter;
pub mod catalog_json;
pub mod catalog_query;
pub mod ci_json;
pub mod client;
pub mod cluster;
pub mod conn_limit;
pub mod event;
pub mod filter;
pub mod forwarded;
pub mod go_text;
pub mod health;
pub mod kv;
pub mod metrics;
pub mod monitor;
pub mod operator;
pub mod params;
pub mod render_cache;
pub mod reply;
pub mod request_limits;
pub mod session;
pub mod snapshot;
pub mod status;
#[cfg(test)]
mod test_state;
pub mod txn;
pub mod txn_catalog;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Extension};
use axum::routing::{get, put, MethodRouter};
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

/// Re-reads the agent's configuration (`PUT /v1/agent/reload`, SIGHUP) and applies it; the
/// error is the reason it was refused (the running configuration is kept).
pub type ReloadHook = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

pub struct ApiState {
    /// This agent's server; `None` on a client agent, which forwards every request that is
    /// not about the agent itself to a server ([`client`]).
    pub server: Option<Arc<Server>>,
    /// The servers a client agent forwards to (`None` on a server).
    pub servers: Option<Arc<lotse_agent::remote::Servers>>,
    /// Request counters (the server's own on a server, so its metrics keep one set).
    pub telemetry: Arc<lotse_server::Telemetry>,
    pub agent: AgentInfo,
    pub limits: Limits,
    /// `limits.request_limits` on a server ([`request_limits`]); reloadable.
    pub request_limits: Arc<request_limits::RequestLimiter>,
    /// The agent's local services and checks.
    pub local: Arc<lotse_agent::Agent>,
    pub reload: Option<ReloadHook>,
    /// Where `/v1/agent/monitor` listens to the agent's logs.
    pub logs: Arc<monitor::LogHub>,
    /// The LAN gossip pool (`None` in unit tests: members are then this agent alone).
    pub gossip: Option<lotse_gossip::Gossip>,
    /// Where the keyring is saved after a change (`None`: not saved, as in `-dev`).
    pub keyring_path: Option<std::path::PathBuf>,
    /// Starts a graceful leave and stops the agent (`PUT /v1/agent/leave`).
    pub leave: Option<LeaveHook>,
    /// User events this agent received (`/v1/event/list`).
    pub events: Arc<event::EventLog>,
}

impl ApiState {
    /// This agent's server. A client agent forwards every endpoint that needs one before its
    /// handler runs, so this failing means a route was left out of that list.
    pub fn server(&self) -> Result<&Arc<Server>, reply::ApiError> {
        self.server.as_ref().ok_or_else(|| {
            reply::ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "this endpoint needs a server and this agent is a client",
            )
        })
    }

    /// Checks the request's token. A client agent allows what its own endpoints do until ACLs
    /// land (the security issue), when it will resolve tokens through the servers.
    pub fn authorize(
        &self,
        token: Option<&str>,
        resource: lotse_server::Resource<'_>,
        access: lotse_server::Access,
    ) -> Result<(), lotse_server::ServerError> {
        match &self.server {
            Some(s) => s.authorize(token, resource, access),
            None => Ok(()),
        }
    }
}

/// Starts the agent's graceful leave; the agent stops once it has left.
pub type LeaveHook = Arc<dyn Fn() + Send + Sync>;

pub type State = Arc<ApiState>;

/// Every `/v1` route. Bodies are read by the handlers themselves with their own limits, so the
/// default body limit is lifted here (no global timeout either: it would cut blocking queries).
pub fn router(state: State) -> Router {
    use reply::allow as a;
    let kv_root = || {
        a(
            get(kv::get_root).put(kv::put_root).delete(kv::delete_root),
            "OPTIONS,GET,PUT,DELETE",
        )
    };
    Router::new()
        .route("/", get(agent::index))
        .route("/v1/kv", kv_root())
        .route("/v1/kv/", kv_root())
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
        // Catalog and health (a trailing `/` with no name is Consul's "Missing ... name").
        .route(
            "/v1/catalog/register",
            a(put(catalog::register), "OPTIONS,PUT"),
        )
        .route(
            "/v1/catalog/deregister",
            a(put(catalog::deregister), "OPTIONS,PUT"),
        )
        .route(
            "/v1/catalog/datacenters",
            a(get(catalog::datacenters), "OPTIONS,GET"),
        )
        .route("/v1/catalog/nodes", a(get(catalog::nodes), "OPTIONS,GET"))
        .route(
            "/v1/catalog/services",
            a(get(catalog::services), "OPTIONS,GET"),
        )
        .prefix(
            "/v1/catalog/service/",
            a(get(catalog::service), "OPTIONS,GET"),
        )
        .prefix("/v1/catalog/node/", a(get(catalog::node), "OPTIONS,GET"))
        .prefix(
            "/v1/catalog/node-services/",
            a(get(catalog::node_services), "OPTIONS,GET"),
        )
        .prefix("/v1/health/node/", a(get(health::node), "OPTIONS,GET"))
        .prefix("/v1/health/checks/", a(get(health::checks), "OPTIONS,GET"))
        .prefix("/v1/health/state/", a(get(health::state), "OPTIONS,GET"))
        .prefix(
            "/v1/health/service/",
            a(get(health::service), "OPTIONS,GET"),
        )
        .route("/v1/agent/self", a(get(agent::self_), "OPTIONS,GET"))
        .route("/v1/agent/members", a(get(agent::members), "OPTIONS,GET"))
        .route("/v1/agent/metrics", a(get(metrics::metrics), "OPTIONS,GET"))
        // Agent-local services, checks, health, maintenance, monitor (agent_services,
        // agent_checks, agent_health, monitor). Consul routes these by path prefix, so IDs may
        // hold slashes, and the bare prefixes reach the handlers with an empty ID.
        .route(
            "/v1/agent/services",
            a(get(agent_services::list), "OPTIONS,GET"),
        )
        .prefix(
            "/v1/agent/service/",
            a(get(agent_services::get), "OPTIONS,GET"),
        )
        .route(
            "/v1/agent/service/register",
            a(put(agent_services::register), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/service/deregister/",
            a(put(agent_services::deregister), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/service/maintenance/",
            a(put(agent_services::maintenance), "OPTIONS,PUT"),
        )
        .route(
            "/v1/agent/maintenance",
            a(put(agent_services::node_maintenance), "OPTIONS,PUT"),
        )
        .route(
            "/v1/agent/reload",
            a(put(agent_services::reload), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/token/",
            a(put(agent_services::token), "OPTIONS,PUT"),
        )
        .route(
            "/v1/agent/checks",
            a(get(agent_checks::list), "OPTIONS,GET"),
        )
        .route(
            "/v1/agent/check/register",
            a(put(agent_checks::register), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/check/deregister/",
            a(put(agent_checks::deregister), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/check/pass/",
            a(put(agent_checks::pass), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/check/warn/",
            a(put(agent_checks::warn), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/check/fail/",
            a(put(agent_checks::fail), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/check/update/",
            a(put(agent_checks::update), "OPTIONS,PUT"),
        )
        .prefix(
            "/v1/agent/health/service/id/",
            a(get(agent_health::by_id), "OPTIONS,GET"),
        )
        .prefix(
            "/v1/agent/health/service/name/",
            a(get(agent_health::by_name), "OPTIONS,GET"),
        )
        .route("/v1/agent/monitor", a(get(monitor::monitor), "OPTIONS,GET"))
        .merge(operator::routes())
        .merge(cluster::routes())
        .merge(event::routes())
        .merge(snapshot::routes())
        .fallback(reply::not_found)
        // Inside the forwarding layer: a client agent forwards first, and the server it
        // reaches applies its own limits.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_limits::enforce,
        ))
        // A client agent hands what it does not serve itself to a server (a no-op on servers).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client::forward_to_servers,
        ))
        // One render cache per router, shared by every request it serves.
        .layer(Extension(Arc::new(render_cache::RenderCache::new())))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            reply::common_headers,
        ))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Routes by path prefix, as Consul's mux does for paths ending in `/`: the bare prefix reaches
/// the handler without a path parameter, anything after it (slashes included) as one.
trait ByPrefix {
    fn prefix(self, prefix: &str, route: MethodRouter<State>) -> Self;
}

impl ByPrefix for Router<State> {
    fn prefix(self, prefix: &str, route: MethodRouter<State>) -> Self {
        self.route(prefix, route.clone())
            .route(&format!("{prefix}{{*rest}}"), route)
    }
}

/// How long a request's head may take to arrive. hyper also applies it to an idle keep-alive
/// connection waiting for its next request, so it is longer than the 90 s for which Go's HTTP
/// clients (Consul's API client among them) keep idle connections: clients, not the server,
/// retire idle connections, and a slow-header client is still cut off.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Serves the API from `listener` until `shutdown` resolves, then waits for open connections to
/// finish (the caller bounds that wait: parked blocking queries can last minutes).
///
/// The accept loop is ours rather than `axum::serve` for one setting: HTTP/1 half-close. With
/// it, hyper does not keep reading a connection whose request is still being answered, so a
/// parked blocking query does not hold a second, larger read buffer for the whole wait. The
/// cost: a client that disconnects mid-wait is noticed when the query answers (at most `wait`
/// plus jitter later), not at once.
///
/// `limit` caps open connections per client IP (`limits.http_max_conns_per_client`); one over
/// it gets Consul's 429 and is closed.
pub async fn serve(
    state: State,
    listener: tokio::net::TcpListener,
    limit: conn_limit::ConnLimit,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let telemetry = state.telemetry.clone();
    let app = router(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.half_close(true)
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = limit.admit(peer.ip()) else {
                    telemetry.http_conns_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(%peer, "too many connections from one client: 429");
                    tokio::spawn(conn_limit::refuse(stream));
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "http connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
