//! The agent's gossip endpoints: `/v1/agent/members` (see [`crate::agent::members`]),
//! `/v1/agent/join/{address}`, `/v1/agent/leave`, `/v1/agent/force-leave/{node}`, and
//! `/v1/operator/keyring`.
//!
//! Keyring operations are cluster-wide as in Consul: the agent that receives one applies it to
//! its own ring and hands it (over server RPC, marked `local-only`) to every other alive
//! server, then answers with the per-key counts Consul reports. `?local-only` limits a list
//! to this agent. (Client agents, which run no server RPC, arrive with their own issue.)

use std::collections::BTreeMap;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::Router;
use lotse_server::link_types::HttpRequest;
use lotse_server::{Access, Resource};
use serde_json::Value;

use crate::body;
use crate::params::Params;
use crate::reply::{allow as a, json, ApiError, ApiResult};
use crate::State;

/// The cluster routes.
pub fn routes() -> Router<State> {
    Router::new()
        .route("/v1/agent/join/{*address}", a(put(join), "OPTIONS,PUT"))
        .route("/v1/agent/leave", a(put(leave), "OPTIONS,PUT"))
        .route(
            "/v1/agent/force-leave/{*node}",
            a(put(force_leave), "OPTIONS,PUT"),
        )
        .route(
            "/v1/operator/keyring",
            a(
                get(keyring_list)
                    .post(|AxState(s), p, r| keyring_change(s, p, r, KeyOp::Install))
                    .put(|AxState(s), p, r| keyring_change(s, p, r, KeyOp::Use))
                    .delete(|AxState(s), p, r| keyring_change(s, p, r, KeyOp::Remove)),
                "OPTIONS,GET,POST,PUT,DELETE",
            ),
        )
}

fn pool(state: &State) -> Result<&lotse_gossip::Gossip, ApiError> {
    state.gossip.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this agent runs no gossip pool",
        )
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn join(
    AxState(state): AxState<State>,
    Path(address): Path<String>,
    params: Params,
) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Agent, Access::Write)?;
    if params.has("wan") {
        return Err(internal(
            "joining the WAN pool is not supported (one datacenter)",
        ));
    }
    let gossip = pool(&state)?;
    let port = state.agent.serf_lan_port;
    let addrs = resolve(&[address], port).await;
    if addrs.is_empty() {
        return Err(internal("no address to join"));
    }
    gossip.join(&addrs).await.map_err(internal)?;
    Ok(StatusCode::OK.into_response())
}

async fn leave(AxState(state): AxState<State>, params: Params) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Agent, Access::Write)?;
    match &state.leave {
        Some(hook) => {
            hook();
            Ok(StatusCode::OK.into_response())
        }
        None => Err(internal("this agent cannot leave")),
    }
}

async fn force_leave(
    AxState(state): AxState<State>,
    Path(node): Path<String>,
    params: Params,
) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Operator, Access::Write)?;
    let gossip = pool(&state)?;
    let prune = params.has("prune");
    let known = gossip.force_leave(&node, prune).await.map_err(internal)?;
    if !known {
        return Err(internal(format!("agent: No node found with name '{node}'")));
    }
    Ok(StatusCode::OK.into_response())
}

#[derive(serde::Deserialize)]
struct KeyBody {
    #[serde(rename = "Key", alias = "key", default)]
    key: String,
}

/// A keyring request body holds one base64 key.
const KEY_BODY_LIMIT: usize = 64 * 1024;

/// One keyring operation, applied here and (unless `local`) on every other alive server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyOp {
    List,
    Install,
    Use,
    Remove,
}

impl KeyOp {
    fn method(self) -> &'static str {
        match self {
            KeyOp::List => "GET",
            KeyOp::Install => "POST",
            KeyOp::Use => "PUT",
            KeyOp::Remove => "DELETE",
        }
    }
}

async fn keyring_list(AxState(state): AxState<State>, params: Params) -> ApiResult {
    keyring(state, params, KeyOp::List, Vec::new()).await
}

/// Install (POST), use (PUT) and remove (DELETE): a body `{"Key": ...}`, then [`keyring`].
async fn keyring_change(
    state: State,
    params: Params,
    req: axum::extract::Request,
    op: KeyOp,
) -> ApiResult {
    let (parts, b) = req.into_parts();
    let raw = body::read_body(&parts.headers, b, KEY_BODY_LIMIT, "the keyring API").await?;
    keyring(state, params, op, raw).await
}

/// This agent's answer to one operation: its keys and primary key (for counting), or why it
/// failed.
type NodeAnswer = Result<(Vec<String>, Option<String>), String>;

fn apply_here(state: &State, op: KeyOp, key: &str) -> NodeAnswer {
    let gossip = state
        .gossip
        .as_ref()
        .ok_or("this agent runs no gossip pool")?;
    let ring = gossip.keyring();
    if !ring.is_enabled() {
        return Err("Gossip encryption is not enabled on this agent".to_string());
    }
    let done = match op {
        KeyOp::List => Ok(()),
        KeyOp::Install => ring.install(key),
        KeyOp::Use => ring.use_key(key),
        KeyOp::Remove => ring.remove(key),
    };
    done.map_err(|e| e.to_string())?;
    if op != KeyOp::List {
        if let (Some(path), Some(snapshot)) = (&state.keyring_path, ring.snapshot()) {
            snapshot
                .save(path)
                .map_err(|e| format!("cannot save keyring: {e}"))?;
        }
    }
    Ok((ring.list(), ring.primary()))
}

async fn keyring(state: State, params: Params, op: KeyOp, raw: Vec<u8>) -> ApiResult {
    let access = if op == KeyOp::List {
        Access::Read
    } else {
        Access::Write
    };
    state.authorize(params.token.as_deref(), Resource::Keyring, access)?;
    let key = if op == KeyOp::List {
        String::new()
    } else {
        let b: KeyBody = serde_json::from_slice(&raw)
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
        b.key
    };
    let local_only = params.go_bool("local-only").unwrap_or(false);
    let mut answers: Vec<(String, NodeAnswer)> =
        vec![(state.agent.node_name.clone(), apply_here(&state, op, &key))];
    if !local_only {
        answers.extend(ask_other_servers(&state, op, &raw).await);
    }
    let mut keys: BTreeMap<String, u64> = BTreeMap::new();
    let mut primaries: BTreeMap<String, u64> = BTreeMap::new();
    let mut messages: BTreeMap<String, String> = BTreeMap::new();
    for (node, answer) in &answers {
        match answer {
            Ok((ks, primary)) => {
                for k in ks {
                    *keys.entry(k.clone()).or_default() += 1;
                }
                if let Some(p) = primary {
                    *primaries.entry(p.clone()).or_default() += 1;
                }
            }
            Err(e) => {
                messages.insert(node.clone(), e.clone());
            }
        }
    }
    if op != KeyOp::List {
        if messages.is_empty() {
            return Ok(StatusCode::OK.into_response());
        }
        let text = messages
            .iter()
            .map(|(n, e)| format!("{n}: {e}"))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(internal(text));
    }
    let mut entry = serde_json::json!({
        "WAN": false,
        "Datacenter": state.agent.datacenter,
        "Segment": "",
        "Keys": keys,
        "PrimaryKeys": primaries,
        "NumNodes": answers.len(),
    });
    if !messages.is_empty() {
        entry["Messages"] = serde_json::json!(messages);
    }
    Ok(json(&[entry], params.pretty()))
}

/// Hands the operation to every other alive server of this pool, marked `local-only`.
async fn ask_other_servers(state: &State, op: KeyOp, raw: &[u8]) -> Vec<(String, NodeAnswer)> {
    // Only a server answers this (a client agent forwards the keyring endpoint).
    let Some(server) = state.server.clone() else {
        return Vec::new();
    };
    let members = server.members();
    let me = &state.agent.node_name;
    let mut calls = tokio::task::JoinSet::new();
    for m in members.iter() {
        if &m.name == me || m.state != lotse_server::members::MemberState::Alive {
            continue;
        }
        let Some(addr) = m.rpc_addr() else { continue };
        let server = server.clone();
        let name = m.name.clone();
        let request = HttpRequest {
            method: op.method().into(),
            path_and_query: "/v1/operator/keyring?local-only=1".into(),
            headers: vec![],
            body: raw.to_vec(),
        };
        calls.spawn(async move {
            let answer = match server.forward_http(&addr, request).await {
                Err(e) => Err(e.to_string()),
                Ok(r) if r.status != 200 => Err(String::from_utf8_lossy(&r.body).into_owned()),
                Ok(r) if op == KeyOp::List => parse_list(&r.body),
                Ok(_) => Ok((Vec::new(), None)),
            };
            (name, answer)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = calls.join_next().await {
        if let Ok(answer) = done {
            out.push(answer);
        }
    }
    out
}

/// Resolves join addresses as Consul does: `host` or `host:port`, the LAN port by default.
/// (Shared with the agent's `start_join`/`retry_join`.)
pub async fn resolve(addrs: &[String], default_port: u16) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    for a in addrs {
        let a = a.trim();
        let with_port = if a.parse::<std::net::SocketAddr>().is_ok() || has_port(a) {
            a.to_string()
        } else if a.contains(':') && !a.starts_with('[') {
            format!("[{a}]:{default_port}")
        } else {
            format!("{a}:{default_port}")
        };
        match tokio::net::lookup_host(with_port).await {
            Ok(found) => out.extend(found),
            Err(e) => tracing::warn!(addr = %a, error = %e, "cannot resolve join address"),
        }
    }
    out
}

fn has_port(a: &str) -> bool {
    match a.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    }
}

/// Reads another agent's local-only list answer back into its keys and primary.
fn parse_list(body: &[u8]) -> NodeAnswer {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let entry = v.get(0).ok_or("empty keyring answer")?;
    if let Some(msgs) = entry.get("Messages").and_then(Value::as_object) {
        if let Some(m) = msgs.values().next() {
            return Err(m.as_str().unwrap_or_default().to_string());
        }
    }
    let keys = entry
        .get("Keys")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let primary = entry
        .get("PrimaryKeys")
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned());
    Ok((keys, primary))
}
