//! `/v1/session/*`: create, destroy, renew, info, node, list.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use lotse_core::session::ServiceCheckRef;
use lotse_core::{Session, SessionBehavior, Table, WatchKey};
use lotse_server::sessions::{go_duration, SessionRequest};
use lotse_server::{Access, Resource};
use serde::Serialize;
use serde_json::{json as j, Value};

use crate::body::read_body;
use crate::ci_json;
use crate::params::Params;
use crate::reply::{json, with_meta, ApiError, ApiResult};
use crate::State;

/// Consul's bound on session TTLs.
const SESSION_TTL_MAX: Duration = Duration::from_secs(24 * 3600);
/// Below this, a numeric `LockDelay` is taken as seconds (Consul's rule for old clients).
const LOCK_DELAY_SECONDS_THRESHOLD: u64 = 1000;
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceCheckJson<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    namespace: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SessionJson<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    name: &'a str,
    node: &'a str,
    lock_delay: u64,
    behavior: &'a str,
    #[serde(rename = "TTL")]
    ttl: &'a str,
    node_checks: Option<&'a [String]>,
    service_checks: Option<Vec<ServiceCheckJson<'a>>>,
    create_index: u64,
    modify_index: u64,
}

fn session_json(s: &Session) -> SessionJson<'_> {
    SessionJson {
        id: &s.id,
        name: &s.name,
        node: &s.node,
        lock_delay: s.lock_delay_ns,
        behavior: s.behavior.as_str(),
        ttl: &s.ttl,
        node_checks: (!s.node_checks.is_empty()).then_some(s.node_checks.as_slice()),
        service_checks: (!s.service_checks.is_empty()).then(|| {
            s.service_checks
                .iter()
                .map(|c| ServiceCheckJson {
                    id: &c.id,
                    namespace: &c.namespace,
                })
                .collect()
        }),
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

/// Consul rejects these in its RPC layer, which the HTTP layer reports as a 500.
fn server_error(reason: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, reason)
}

/// Reads a create request as Consul does (every field optional, names case-insensitive).
fn parse_create(body: &[u8], ttl_min: Duration) -> Result<SessionRequest, ApiError> {
    let mut req = SessionRequest::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(req);
    }
    let v = ci_json::parse(body)?;
    let o = ci_json::object(&v, "session")?;
    req.name = ci_json::string(o, "Name")?.unwrap_or_default();
    req.node = ci_json::string(o, "Node")?.filter(|n| !n.is_empty());
    let raw_delay = match ci_json::field(o, "LockDelay") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(go_duration(s).ok_or_else(|| {
            ApiError::bad_request(format!("Request decode failed: invalid LockDelay {s:?}"))
        })?),
        Some(Value::Number(n)) => Some(Duration::from_nanos(n.as_u64().ok_or_else(|| {
            ApiError::bad_request(format!("Request decode failed: invalid LockDelay {n}"))
        })?)),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Request decode failed: invalid LockDelay {other}"
            )))
        }
    };
    // Consul's rule for old clients: a delay under 1000 (ns) was meant as seconds, whether it
    // came as a number or a string.
    req.lock_delay = raw_delay.map(|d| {
        let ns = d.as_nanos() as u64;
        if ns < LOCK_DELAY_SECONDS_THRESHOLD {
            Duration::from_secs(ns)
        } else {
            d
        }
    });
    req.behavior = match ci_json::string(o, "Behavior")?.as_deref() {
        None | Some("") | Some("release") => SessionBehavior::Release,
        Some("delete") => SessionBehavior::Delete,
        Some(b) => return Err(server_error(format!("Invalid Behavior setting '{b}'"))),
    };
    if let Some(ttl) = ci_json::string(o, "TTL")?.filter(|t| !t.is_empty()) {
        let d = go_duration(&ttl).ok_or_else(|| {
            server_error(format!(
                "Session TTL '{ttl}' invalid: time: invalid duration {ttl:?}"
            ))
        })?;
        if !d.is_zero() && (d < ttl_min || d > SESSION_TTL_MAX) {
            return Err(server_error(format!(
                "Invalid Session TTL '{}', must be between [{}s={}h0m0s]",
                d.as_nanos(),
                ttl_min.as_secs(),
                SESSION_TTL_MAX.as_secs() / 3600
            )));
        }
        // A zero TTL is kept as written ("0s") and means no expiry.
        req.ttl = Some((ttl, d));
    }
    // `Checks` is Consul's deprecated name for node checks.
    let checks = ci_json::strings(o, "Checks")?;
    let node_checks = ci_json::strings(o, "NodeChecks")?;
    req.node_checks = match (checks, node_checks) {
        (None, None) => None,
        (a, b) => Some(
            a.into_iter()
                .flatten()
                .chain(b.into_iter().flatten())
                .collect(),
        ),
    };
    if let Some(Value::Array(items)) = ci_json::field(o, "ServiceChecks") {
        for item in items {
            let c = ci_json::object(item, "ServiceChecks item")?;
            req.service_checks.push(ServiceCheckRef {
                id: ci_json::string(c, "ID")?.unwrap_or_default(),
                namespace: ci_json::string(c, "Namespace")?.unwrap_or_default(),
            });
        }
    }
    Ok(req)
}

pub async fn create(
    AxState(state): AxState<State>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    params.check_dc(&state)?;
    let body = read_body(
        &headers,
        body,
        BODY_LIMIT,
        "https://developer.hashicorp.com/consul/api-docs/session",
    )
    .await?;
    let mut req = parse_create(&body, state.server()?.config.session_ttl_min)?;
    // Consul's default is the agent that received the request: a client agent that forwarded
    // it names itself.
    let node = req
        .node
        .get_or_insert_with(|| {
            origin_node(&headers).unwrap_or_else(|| state.agent.node_name.clone())
        })
        .clone();
    state.authorize(
        params.token.as_deref(),
        Resource::Session(&node),
        Access::Write,
    )?;
    let (_, id) = state.server()?.session_create(req).await?;
    Ok(json(&j!({ "ID": id }), params.pretty()))
}

/// The client agent a forwarded request came through, if it came through one.
fn origin_node(headers: &HeaderMap) -> Option<String> {
    if !headers.contains_key(crate::forwarded::FORWARDED_HEADER) {
        return None;
    }
    headers
        .get(crate::forwarded::AGENT_NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The checks every session write makes first: the datacenter, then the ACL seam.
fn check_session_write(state: &State, params: &Params, id: &str) -> Result<(), ApiError> {
    params.check_dc(state)?;
    state.authorize(
        params.token.as_deref(),
        Resource::Session(id),
        Access::Write,
    )?;
    Ok(())
}

pub async fn destroy(
    AxState(state): AxState<State>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    check_session_write(&state, &params, &id)?;
    state.server()?.session_destroy(&id).await?;
    Ok(json(&true, params.pretty()))
}

/// Renewals are the leader's: only its TTL timers expire sessions, so a follower hands the
/// request to the leader (as Consul forwards `Session.Renew`).
pub async fn renew(
    AxState(state): AxState<State>,
    Path(id): Path<String>,
    params: Params,
    req: axum::extract::Request,
) -> ApiResult {
    check_session_write(&state, &params, &id)?;
    if !state.server()?.is_leader() {
        let (parts, _body) = req.into_parts();
        return crate::forwarded::to_leader(&state, &parts, Vec::new()).await;
    }
    match state.server()?.session_renew(&id).await? {
        Some((_, s)) => Ok(json(&[session_json(&s)], params.pretty())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Session id '{id}' not found"),
        )),
    }
}

/// Shared by the three session reads: a blocking read of the sessions table.
async fn list_where(state: &State, params: &Params, pick: impl Fn(&Session) -> bool) -> ApiResult {
    let opts = params.query_options(state)?;
    state.authorize(opts.token.as_deref(), Resource::Session(""), Access::Read)?;
    let watch = [WatchKey::Table(Table::Sessions)];
    let (meta, sessions) = state
        .server()?
        .blocking_read(&opts, &watch, |s| {
            let (i, all) = s.session_list();
            (
                i,
                all.into_iter()
                    .filter(|x| pick(x))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    let body: Vec<SessionJson> = sessions.iter().map(session_json).collect();
    Ok(with_meta(json(&body, params.pretty()), &meta))
}

pub async fn info(
    AxState(state): AxState<State>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    list_where(&state, &params, |s| s.id == id).await
}

pub async fn node(
    AxState(state): AxState<State>,
    Path(node): Path<String>,
    params: Params,
) -> ApiResult {
    list_where(&state, &params, |s| s.node == node).await
}

pub async fn list(AxState(state): AxState<State>, params: Params) -> ApiResult {
    list_where(&state, &params, |_| true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(10);

    #[test]
    fn lock_delay_numbers_below_a_thousand_are_seconds() {
        let r = parse_create(br#"{"LockDelay": 15}"#, MIN).unwrap();
        assert_eq!(r.lock_delay, Some(Duration::from_secs(15)));
        let r = parse_create(br#"{"lockdelay": 2000000000}"#, MIN).unwrap();
        assert_eq!(r.lock_delay, Some(Duration::from_secs(2)));
        let r = parse_create(br#"{"LockDelay": "1.5s"}"#, MIN).unwrap();
        assert_eq!(r.lock_delay, Some(Duration::from_millis(1500)));
        let r = parse_create(br#"{"LockDelay": "20ns"}"#, MIN).unwrap();
        assert_eq!(r.lock_delay, Some(Duration::from_secs(20)));
    }

    #[test]
    fn ttls_outside_the_range_are_refused() {
        assert!(parse_create(br#"{"TTL": "5s"}"#, MIN).is_err());
        assert!(parse_create(br#"{"TTL": "86401s"}"#, MIN).is_err());
        assert!(parse_create(br#"{"TTL": "bogus"}"#, MIN).is_err());
        let r = parse_create(br#"{"TTL": "10s"}"#, MIN).unwrap();
        assert_eq!(r.ttl, Some(("10s".to_string(), Duration::from_secs(10))));
    }

    #[test]
    fn an_empty_body_takes_the_defaults() {
        let r = parse_create(b"", MIN).unwrap();
        assert!(r.node.is_none() && r.ttl.is_none() && r.node_checks.is_none());
        assert_eq!(r.behavior, SessionBehavior::Release);
    }
}
