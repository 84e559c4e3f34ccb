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
//! [`crate::agent_health`] (body decoding, error mapping, Go's `ParseBool`) live here too.

pub mod json;
#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lotse_agent::definition::{decode, DefinitionError};
use lotse_agent::{AgentError, Source};
use lotse_server::sessions::go_duration;
use lotse_server::{Access, Resource};
use serde_json::{Map, Value};

use crate::catalog_json::{agent_service, AgentServiceJson};
use crate::kv::read_body;
use crate::params::Params;
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

/// Reads a JSON request body as Go's `json.Decoder` does: the first value counts (trailing
/// bytes are not looked at), an empty or blank body is `EOF`.
pub(crate) async fn json_body(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(headers, body, BODY_LIMIT, DOCS).await?;
    parse_first_value(&bytes)
}

pub(crate) fn parse_first_value(bytes: &[u8]) -> Result<Value, ApiError> {
    let decode_failed =
        |why: String| ApiError::bad_request(format!("Request decode failed: {why}"));
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    match values.next() {
        None => Err(decode_failed("EOF".into())),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) if e.is_eof() => Err(decode_failed("unexpected EOF".into())),
        Some(Err(e)) => Err(decode_failed(e.to_string())),
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `?enable=` of the maintenance endpoints, with Consul's 400s.
fn enable_param(params: &Params) -> Result<bool, ApiError> {
    let raw = params
        .get("enable")
        .ok_or_else(|| ApiError::bad_request("Missing value for enable"))?;
    parse_bool(raw)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid value for enable: {raw:?}")))
}

/// Agent endpoints go through the ACL seam with the agent's node as the resource.
pub(crate) fn authorize(state: &State, params: &Params, access: Access) -> Result<(), ApiError> {
    let node = state.local.node_name();
    state
        .server
        .authorize(params.token.as_deref(), Resource::Node(node), access)?;
    Ok(())
}

/// A `?filter=` error.
pub(crate) fn filter_error(e: crate::filter::FilterError) -> ApiError {
    // Consul passes bexpr's error through as a 500 here; Lotse answers every bad filter with
    // the same 400 as the catalog endpoints (docs/design-notes.md).
    crate::catalog_filter::filter_error(e)
}

/// Keeps the keys of `items` whose JSON matches `?filter=` (all when there is none).
pub(crate) fn filtered_keys(
    params: &Params,
    shape: &Value,
    items: Map<String, Value>,
) -> Result<Vec<String>, ApiError> {
    let kept =
        crate::filter::apply_map(params.get("filter"), shape, items).map_err(filter_error)?;
    Ok(kept.into_iter().map(|(k, _)| k).collect())
}

// ---- reads ----

/// `GET /v1/agent/services`: `{id: AgentService}`, `{}` when there are none.
pub async fn list(AxState(state): AxState<State>, params: Params) -> ApiResult {
    authorize(&state, &params, Access::Read)?;
    let services = state.local.services();
    let dc = state.local.datacenter();
    let views: Vec<(String, AgentServiceJson)> = services
        .iter()
        .map(|s| (s.id.clone(), agent_service(s, dc)))
        .collect();
    let items: Map<String, Value> = views
        .iter()
        .map(|(id, v)| (id.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect();
    let keep = filtered_keys(&params, &json::shape(), items)?;
    let out: std::collections::BTreeMap<&str, &AgentServiceJson> = views
        .iter()
        .filter(|(id, _)| keep.contains(id))
        .map(|(id, v)| (id.as_str(), v))
        .collect();
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
    id: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let id = id.map(|Path(id)| id).unwrap_or_default();
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
    authorize(&state, &params, Access::Write)?;
    // Consul: present and either empty or exactly "true".
    let replace = matches!(params.get("replace-existing-checks"), Some("" | "true"));
    state
        .local
        .register_service(def, replace, Source::Remote)
        .await
        .map_err(agent_error)?;
    done()
}

/// `PUT /v1/agent/service/deregister/:id` (and its checks, and a sidecar registered with it).
pub async fn deregister(
    AxState(state): AxState<State>,
    id: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let id = id.map(|Path(id)| id).unwrap_or_default();
    authorize(&state, &params, Access::Write)?;
    state
        .local
        .deregister_service(&id)
        .await
        .map_err(agent_error)?;
    done()
}

/// `PUT /v1/agent/service/maintenance/:id?enable=&reason=`.
pub async fn maintenance(
    AxState(state): AxState<State>,
    id: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let id = id.map(|Path(id)| id).unwrap_or_default();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing service ID"));
    }
    let enable = enable_param(&params)?;
    authorize(&state, &params, Access::Write)?;
    let reason = params.get("reason").unwrap_or("");
    state
        .local
        .service_maintenance(&id, enable, reason)
        .await
        .map_err(agent_error)?;
    done()
}

/// `PUT /v1/agent/maintenance?enable=&reason=`: the node's maintenance check.
pub async fn node_maintenance(AxState(state): AxState<State>, params: Params) -> ApiResult {
    let enable = enable_param(&params)?;
    authorize(&state, &params, Access::Write)?;
    let reason = params.get("reason").unwrap_or("");
    state
        .local
        .node_maintenance(enable, reason)
        .await
        .map_err(agent_error)?;
    done()
}

// ---- agent-wide ----

/// `PUT /v1/agent/reload`: re-reads the configuration through the binary's hook.
pub async fn reload(AxState(state): AxState<State>, params: Params) -> ApiResult {
    state
        .server
        .authorize(params.token.as_deref(), Resource::Agent, Access::Write)?;
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
