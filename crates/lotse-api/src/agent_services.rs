//! `/v1/agent/services`, `/v1/agent/service/*`, `/v1/agent/maintenance`, `/v1/agent/reload`
//! and `/v1/agent/token/*`: the agent's own services, as Consul's agent endpoints serve them.
//!
//! ```text
//!  PUT body ─► read (limit) ─► JSON ─► lotse_agent::definition::decode ─► Agent::register_*
//!                                                 (Consul's 400 texts)     (writes through to
//!  GET      ─► Agent::services()/service() ─► catalog_json::agent_service   the catalog)
//!                                              ─► ?filter, ContentHash
//! ```
//!
//! Everything here is agent-local: no `X-Consul-Index`, answered from the agent's own state.
//! Successful writes answer 200 with an empty body and no `Content-Type`, as Consul's handlers
//! that return nil do. The helpers shared with [`crate::agent_checks`] and
//! [`crate::agent_health`] (body decoding, error mapping, ACL seam, writes, filtered lists)
//! live here too.

pub mod json;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lotse_agent::definition::{decode, DefinitionError};
use lotse_agent::{AgentError, Source};
use lotse_server::sessions::go_duration;
use lotse_server::{Access, Resource};
use serde::Serialize;
use serde_json::Value;

use crate::catalog_filter::keeps;
use crate::catalog_json::agent_service;
use crate::params::{parse_go_bool, Params};
use crate::reply::{self, ApiError, ApiResult};
use crate::State;

/// Largest registration body read. Consul has no limit of its own here; a service with the
/// most metadata Consul allows (64 pairs of 128 + 512 bytes) and many checks fits easily.
const BODY_LIMIT: usize = 1024 * 1024;
const DOCS: &str = "https://developer.hashicorp.com/consul/api-docs/agent/service";
/// `?wait` on `?hash` blocking: default, cap (Consul's `default_query_time`, `max_query_time`).
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

// ---- shared request plumbing ----

/// A success without a body: 200, empty, no `Content-Type`.
pub(crate) fn done() -> ApiResult {
    Ok(StatusCode::OK.into_response())
}

pub(crate) fn agent_error(e: AgentError) -> ApiError {
    ApiError::new(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        e.message,
    )
}

pub(crate) fn definition_error(e: DefinitionError) -> ApiError {
    ApiError::new(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.message,
    )
}

/// Reads a registration's JSON body (at most [`BODY_LIMIT`]) as Go's `json.Decoder` does.
pub(crate) async fn json_body(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    crate::body::json_body(headers, body, BODY_LIMIT, DOCS).await
}

/// The ID (or name) at the end of the path; the bare prefix (`/v1/agent/service/`) has none.
pub(crate) fn path_id(path: Option<Path<String>>) -> String {
    path.map(|Path(id)| id).unwrap_or_default()
}

/// `?enable=` of the maintenance endpoints, with Consul's 400s.
fn enable_param(params: &Params) -> Result<bool, ApiError> {
    let raw = params
        .get("enable")
        .ok_or_else(|| ApiError::bad_request("Missing value for enable"))?;
    parse_go_bool(raw)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid value for enable: {raw:?}")))
}

/// Agent endpoints go through the ACL seam with the agent's node as the resource.
pub(crate) fn authorize(state: &State, params: &Params, access: Access) -> Result<(), ApiError> {
    let node = state.local.node_name();
    state.authorize(params.token.as_deref(), Resource::Node(node), access)?;
    Ok(())
}

/// An agent write: the ACL seam, then `write` (an [`lotse_agent::Agent`] call, which does
/// nothing until awaited), then Consul's empty 200.
pub(crate) async fn written(
    state: &State,
    params: &Params,
    write: impl Future<Output = Result<(), AgentError>>,
) -> ApiResult {
    authorize(state, params, Access::Write)?;
    write.await.map_err(agent_error)?;
    done()
}

/// An agent list keyed by ID (`/v1/agent/services`, `/v1/agent/checks`): the rows whose JSON
/// passes `?filter=` (checked against `shape`; all of them without one), in ID order.
///
/// Consul passes a bad filter's error through as a 500 here; Lotse answers every bad filter
/// with the same 400 as the catalog endpoints (docs/design-notes.md).
pub(crate) fn keyed<'a, R: Serialize>(
    params: &Params,
    shape: &Value,
    rows: impl Iterator<Item = (&'a str, R)>,
) -> Result<BTreeMap<&'a str, R>, ApiError> {
    let filter = crate::catalog_filter::from_params(params, shape)?;
    Ok(rows.filter(|(_, r)| keeps(filter.as_ref(), r)).collect())
}

// ---- reads ----

/// `GET /v1/agent/services`: `{id: AgentService}`, `{}` when there are none.
pub async fn list(AxState(state): AxState<State>, params: Params) -> ApiResult {
    authorize(&state, &params, Access::Read)?;
    let services = state.local.services();
    let dc = state.local.datacenter();
    let rows = services
        .iter()
        .map(|s| (s.id.as_str(), agent_service(s, dc)));
    let out = keyed(&params, &json::shape(), rows)?;
    Ok(reply::json(&out, params.pretty()))
}

/// `?wait` as Consul's `parseWait` reads it, then its `LocalBlockingQuery` bounds: 0 means the
/// default, at most 10 minutes, plus up to 1/16 of jitter.
fn hash_wait(params: &Params) -> Result<Duration, ApiError> {
    let wait = match params.get("wait").filter(|w| !w.is_empty()) {
        None => Duration::ZERO,
        Some(w) => go_duration(w).ok_or_else(|| ApiError::bad_request("Invalid wait time"))?,
    };
    if let Some(i) = params.get("index").filter(|i| !i.is_empty()) {
        i.parse::<u64>()
            .map_err(|_| ApiError::bad_request("Invalid index"))?;
    }
    let wait = if wait.is_zero() {
        DEFAULT_WAIT
    } else {
        wait.min(MAX_WAIT)
    };
    Ok(wait + wait.mul_f64(rand::random::<f64>() / 16.0))
}

/// `GET /v1/agent/service/:id`, with `ContentHash` and hash blocking: `?hash=` equal to the
/// current hash waits (up to `?wait`) until the service changes.
pub async fn get(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let id = path_id(path);
    let wait = hash_wait(&params)?;
    authorize(&state, &params, Access::Read)?;
    let want = params.get("hash").unwrap_or("").to_string();
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = state.local.subscribe();
    loop {
        // Marked seen before reading, so a change after this read wakes the wait below.
        changes.borrow_and_update();
        let Some(service) = state.local.service(&id) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown service ID: {id}"),
            ));
        };
        let view = json::with_content_hash(agent_service(&service, state.local.datacenter()));
        let hash = view.content_hash.clone().unwrap_or_default();
        // Consul answers when the service's watch fires, even with an unchanged hash; waiting
        // on until the hash moves is the same to a client (it would block again) and cheaper,
        // since this receiver also moves for other services' changes.
        let answer = want.is_empty() || want != hash || {
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => false,
                // Timed out, or the agent is shutting down: answer with what there is.
                Ok(Err(_)) | Err(_) => true,
            }
        };
        if answer {
            let mut resp = reply::json(&view, params.pretty());
            if let Ok(v) = HeaderValue::from_str(&hash) {
                resp.headers_mut().insert("X-Consul-ContentHash", v);
            }
            return Ok(resp);
        }
    }
}

// ---- writes ----

/// `PUT /v1/agent/service/register[?replace-existing-checks]`.
pub async fn register(
    AxState(state): AxState<State>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let value = json_body(&headers, body).await?;
    let def = decode::service(&value).map_err(definition_error)?;
    // Consul: present and either empty or exactly "true".
    let replace = matches!(params.get("replace-existing-checks"), Some("" | "true"));
    let write = state.local.register_service(def, replace, Source::Remote);
    written(&state, &params, write).await
}

/// `PUT /v1/agent/service/deregister/:id` (and its checks, and a sidecar registered with it).
pub async fn deregister(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let id = path_id(path);
    written(&state, &params, state.local.deregister_service(&id)).await
}

/// `PUT /v1/agent/service/maintenance/:id?enable=&reason=`.
pub async fn maintenance(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let id = path_id(path);
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing service ID"));
    }
    let enable = enable_param(&params)?;
    let reason = params.get("reason").unwrap_or("");
    let write = state.local.service_maintenance(&id, enable, reason);
    written(&state, &params, write).await
}

/// `PUT /v1/agent/maintenance?enable=&reason=`: the node's maintenance check.
pub async fn node_maintenance(AxState(state): AxState<State>, params: Params) -> ApiResult {
    let enable = enable_param(&params)?;
    let reason = params.get("reason").unwrap_or("");
    let write = state.local.node_maintenance(enable, reason);
    written(&state, &params, write).await
}

// ---- agent-wide ----

/// `PUT /v1/agent/reload`: re-reads the configuration through the binary's hook.
pub async fn reload(AxState(state): AxState<State>, params: Params) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Agent, Access::Write)?;
    let Some(hook) = state.reload.clone() else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Reload is not available on this agent",
        ));
    };
    match hook().await {
        Ok(()) => done(),
        Err(reason) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, reason)),
    }
}

/// `PUT /v1/agent/token/:type`: ACLs are not enabled (there are none yet), and Consul checks
/// that before anything else.
pub async fn token() -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "ACL support disabled").into_response()
}
