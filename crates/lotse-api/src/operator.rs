//! `/v1/operator/raft/*` and `/v1/operator/autopilot/*`: Consul's operator endpoints over the
//! server's Raft configuration and autopilot settings.
//!
//! ```text
//!  request ─► parse (400s) ─► authorize (operator:read / operator:write)
//!          ─► leader? ── no ─► forwarded::to_leader (unless ?stale on a read that allows it)
//!                    └─ yes ─► Server::{raft_configuration, remove_peer, autopilot_*}
//!          ─► Consul's JSON ([`shapes`])
//! ```
//!
//! Two things Consul keeps in its Raft log live only on the serving leader here (see
//! [`extras`]): the autopilot fields the server does not model yet (the Enterprise-only tags)
//! with the configuration's `CreateIndex`/`ModifyIndex`, and when each server became stable.
//! Both reset on a leader change until the autopilot configuration is replicated.

mod extras;
mod shapes;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;
use lotse_server::authorizer::{Access, Resource};
use lotse_server::autopilot::AutopilotConfig;
use lotse_server::operator::PeerRef;
use lotse_server::Consistency;

use crate::body::read_body;
use crate::forwarded;
use crate::params::Params;
use crate::reply::{allow, json, ApiError, ApiResult};
use crate::State;

pub use shapes::{decode_autopilot_config, AutopilotConfigJson, AutopilotSettings};

/// Request bodies of the operator endpoints are small JSON objects.
const BODY_LIMIT: usize = 64 * 1024;
const AUTOPILOT_DOC: &str = "https://developer.hashicorp.com/consul/api-docs/operator/autopilot";

/// The operator routes.
pub fn routes() -> Router<State> {
    Router::new()
        .route(
            "/v1/operator/raft/configuration",
            allow(get(raft_configuration), "OPTIONS,GET"),
        )
        .route(
            "/v1/operator/raft/peer",
            allow(delete(raft_peer), "OPTIONS,DELETE"),
        )
        .route(
            "/v1/operator/raft/transfer-leader",
            allow(post(transfer_leader), "OPTIONS,POST"),
        )
        .route(
            "/v1/operator/autopilot/configuration",
            allow(
                get(autopilot_configuration).put(set_autopilot_configuration),
                "OPTIONS,GET,PUT",
            ),
        )
        .route(
            "/v1/operator/autopilot/health",
            allow(get(autopilot_health), "OPTIONS,GET"),
        )
        .route(
            "/v1/operator/autopilot/state",
            allow(get(autopilot_state), "OPTIONS,GET"),
        )
}

/// The query parameters (with the token) and the request's head, kept for forwarding.
async fn split(state: &State, req: Request) -> Result<(Params, Parts, Body), ApiError> {
    let (mut parts, body) = req.into_parts();
    let params = Params::from_request_parts(&mut parts, state).await?;
    Ok((params, parts, body))
}

fn authorize(state: &State, params: &Params, access: Access) -> Result<(), ApiError> {
    state
        .authorize(params.token.as_deref(), Resource::Operator, access)
        .map_err(ApiError::from)
}

/// `GET /v1/operator/raft/configuration`: the servers of the Raft configuration. A follower
/// asks the leader unless the request says `?stale`, as Consul's RPC forwarding does.
pub async fn raft_configuration(AxState(state): AxState<State>, req: Request) -> ApiResult {
    let (params, parts, _) = split(&state, req).await?;
    params.check_dc(&state)?;
    let opts = params.blocking_options()?;
    authorize(&state, &params, Access::Read)?;
    if opts.consistency != Consistency::Stale && !state.server()?.is_leader() {
        return forwarded::to_leader(&state, &parts, Vec::new()).await;
    }
    let (index, servers) = state.server()?.raft_configuration();
    // Each server's last log index as autopilot knows it (the leader's view of replication).
    let last: std::collections::HashMap<_, u64> = state
        .server()?
        .autopilot_health()
        .into_iter()
        .map(|h| (h.server.raft_id, h.last_index))
        .collect();
    let reply = shapes::RaftConfigurationJson {
        servers: servers
            .into_iter()
            .map(|s| shapes::RaftServerJson {
                last_index: last.get(&s.raft_id).copied().unwrap_or(0),
                id: s.id,
                node: s.node,
                address: s.address,
                leader: s.leader,
                protocol_version: "3",
                voter: s.voter,
            })
            .collect(),
        index,
    };
    Ok(json(&reply, params.pretty()))
}

/// `DELETE /v1/operator/raft/peer?id=...|?address=...`: removes a server from the Raft
/// configuration. Leader only; a follower forwards.
pub async fn raft_peer(AxState(state): AxState<State>, req: Request) -> ApiResult {
    let (params, parts, _) = split(&state, req).await?;
    params.check_dc(&state)?;
    let peer = match (params.get("id"), params.get("address")) {
        (None, None) => {
            return Err(ApiError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Must specify only one of ?id or ?address",
            ))
        }
        (Some(id), None) => PeerRef::Id(id.to_string()),
        (None, Some(addr)) => PeerRef::Address(addr.to_string()),
    };
    authorize(&state, &params, Access::Write)?;
    if !state.server()?.is_leader() {
        return forwarded::to_leader(&state, &parts, Vec::new()).await;
    }
    state.server()?.remove_peer(peer.clone()).await?;
    tracing::info!(?peer, "removed server from the raft configuration");
    Ok(StatusCode::OK.into_response())
}

/// `POST /v1/operator/raft/transfer-leader[?id=...]`: hands leadership to the voter `id`
/// (or the most caught-up one) and answers once it leads. Leader only; a follower forwards.
pub async fn transfer_leader(AxState(state): AxState<State>, req: Request) -> ApiResult {
    let (params, parts, _) = split(&state, req).await?;
    params.check_dc(&state)?;
    authorize(&state, &params, Access::Write)?;
    let server = state.server()?;
    if !server.is_leader() {
        return forwarded::to_leader(&state, &parts, Vec::new()).await;
    }
    let target = params.get("id").filter(|id| !id.is_empty());
    match server.transfer_leadership(target).await {
        Ok(_) => Ok(json(
            &serde_json::json!({ "Success": true }),
            params.pretty(),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to transfer Leader: {e}"),
        )),
    }
}

/// `GET /v1/operator/autopilot/configuration` (`?stale` served by any server).
pub async fn autopilot_configuration(AxState(state): AxState<State>, req: Request) -> ApiResult {
    let (params, parts, _) = split(&state, req).await?;
    params.check_dc(&state)?;
    let opts = params.blocking_options()?;
    authorize(&state, &params, Access::Read)?;
    if opts.consistency != Consistency::Stale && !state.server()?.is_leader() {
        return forwarded::to_leader(&state, &parts, Vec::new()).await;
    }
    let server = state.server()?;
    let reply = extras::with(server, |x| {
        AutopilotConfigJson::from_parts(&server.autopilot_config(), x)
    });
    Ok(json(&reply, params.pretty()))
}

/// `PUT /v1/operator/autopilot/configuration[?cas=N]`: replaces the settings; answers `true`,
/// or with `?cas` whether the index matched. Set on the leader (a follower forwards).
pub async fn set_autopilot_configuration(
    AxState(state): AxState<State>,
    req: Request,
) -> ApiResult {
    let (params, parts, body) = split(&state, req).await?;
    let bytes = read_body(&parts.headers, body, BODY_LIMIT, AUTOPILOT_DOC).await?;
    let settings = decode_autopilot_config(&bytes)?;
    let cas = match params.get("cas") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "Error parsing cas value: strconv.ParseUint: parsing {}: {}",
                crate::go_text::quote(v),
                uint_error(v)
            ))
        })?),
    };
    params.check_dc(&state)?;
    authorize(&state, &params, Access::Write)?;
    if !state.server()?.is_leader() {
        return forwarded::to_leader(&state, &parts, bytes).await;
    }
    let server = state.server()?.clone();
    let updated = extras::with(state.server()?, |x| {
        if cas.is_some_and(|c| c != x.modify_index) {
            return false;
        }
        server.set_autopilot_config(AutopilotConfig {
            cleanup_dead_servers: settings.cleanup_dead_servers,
            last_contact_threshold: settings.last_contact_threshold,
            max_trailing_logs: settings.max_trailing_logs,
            min_quorum: settings.min_quorum,
            server_stabilization_time: settings.server_stabilization_time,
        });
        x.redundancy_zone_tag = settings.redundancy_zone_tag.clone();
        x.disable_upgrade_migration = settings.disable_upgrade_migration;
        x.upgrade_version_tag = settings.upgrade_version_tag.clone();
        x.modify_index = (x.modify_index + 1).max(server.applied_index());
        tracing::info!(
            modify_index = x.modify_index,
            "autopilot configuration updated"
        );
        true
    });
    Ok(json(&(cas.is_none() || updated), params.pretty()))
}

/// Go's `strconv.ParseUint` reasons.
fn uint_error(v: &str) -> &'static str {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        "value out of range"
    } else {
        "invalid syntax"
    }
}

/// `GET /v1/operator/autopilot/health`: every server's health as the leader sees it; 429 when
/// the cluster is not healthy, as Consul answers. Always the leader's view.
pub async fn autopilot_health(AxState(state): AxState<State>, req: Request) -> ApiResult {
    let (params, parts, _) = split(&state, req).await?;
    params.check_dc(&state)?;
    params.blocking_options()?;
    authorize(&state, &params, Access::Read)?;
    if !state.server()?.is_leader() {
        return forwarded::to_leader(&state, &parts, Vec::new()).await;
    }
    let view = health_view(&state)?;
    let reply = shapes::HealthReplyJson::from(&view);
    let mut resp = json(&reply, params.pretty());
    if !view.healthy {
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    Ok(resp)
}

/// `GET /v1/operator/autopilot/state`: autopilot's state as Consul 1.10+ reports it (voters,
/// leader, per-server status). Always the leader's view.
pub async fn autopilot_state(AxState(state): AxState<State>, req: Request) -> ApiResult {
    let (params, parts, _) = split(&state, req).await?;
    params.check_dc(&state)?;
    params.blocking_options()?;
    authorize(&state, &params, Access::Read)?;
    if !state.server()?.is_leader() {
        return forwarded::to_leader(&state, &parts, Vec::new()).await;
    }
    let view = health_view(&state)?;
    Ok(json(
        &shapes::AutopilotStateJson::from(&view),
        params.pretty(),
    ))
}

/// One server's health, before it is shaped for either endpoint.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub id: String,
    pub name: String,
    pub address: String,
    pub serf_status: &'static str,
    pub version: String,
    pub leader: bool,
    pub voter: bool,
    /// `None`: the leader has no contact time for it.
    pub last_contact: Option<std::time::Duration>,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    pub stable_since: SystemTime,
}

/// The cluster's health: raft-autopilot's rules for the totals.
#[derive(Debug, Clone)]
pub struct HealthView {
    pub healthy: bool,
    pub failure_tolerance: usize,
    pub optimistic_failure_tolerance: usize,
    pub servers: Vec<ServerView>,
}

impl HealthView {
    /// Totals over `servers`: the cluster is healthy when every server is and the healthy
    /// voters make a quorum; it tolerates losing the healthy voters beyond a quorum
    /// (optimistically: the live ones, healthy or not).
    pub fn new(servers: Vec<ServerView>) -> HealthView {
        let voters = servers.iter().filter(|s| s.voter).count();
        let quorum = voters / 2 + 1;
        let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count();
        let alive_voters = servers
            .iter()
            .filter(|s| s.voter && s.serf_status == "alive")
            .count();
        HealthView {
            healthy: voters > 0 && servers.iter().all(|s| s.healthy) && healthy_voters >= quorum,
            failure_tolerance: healthy_voters.saturating_sub(quorum),
            optimistic_failure_tolerance: alive_voters.saturating_sub(quorum),
            servers,
        }
    }
}

fn health_view(state: &State) -> Result<HealthView, ApiError> {
    let now = SystemTime::now();
    let server = state.server()?;
    let health = server.autopilot_health();
    let servers = extras::with(server, |x| {
        health
            .into_iter()
            .map(|h| {
                let stable_since = x.stable_since(&h.server.id, h.healthy, now);
                ServerView {
                    id: h.server.id,
                    name: h.server.node,
                    address: h.server.address,
                    serf_status: h.serf_status,
                    // Servers of one cluster run one build; the pool does not carry it yet.
                    version: state.agent.version.clone(),
                    leader: h.server.leader,
                    voter: h.server.voter,
                    last_contact: h.last_contact,
                    last_term: h.last_term,
                    last_index: h.last_index,
                    healthy: h.healthy,
                    stable_since,
                }
            })
            .collect()
    });
    Ok(HealthView::new(servers))
}
