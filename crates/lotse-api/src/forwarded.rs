//! HTTP API requests forwarded over server RPC (`Forward.Http`): a client agent, or a server
//! that must send a request to the leader, hands the whole request over and this agent's
//! router answers it as if it had arrived on its own HTTP port.
//!
//! A forwarded request carries [`FORWARDED_HEADER`], set by the receiving side: `server` for
//! a request another server handed over (served here, never forwarded again: no loops
//! between two servers that disagree on the leader), `client` for one a client agent handed
//! over (it may still go one hop on, to the leader, as if it had arrived on this server's
//! HTTP port).

use axum::body::Body;
use axum::Router;
use lotse_server::link_types::{HttpReply, HttpRequest};
use lotse_server::HttpHandler;

use crate::State;

/// Marks a request that was forwarded once already.
pub const FORWARDED_HEADER: &str = "x-lotse-forwarded";

/// [`FORWARDED_HEADER`]'s value on a request another server handed over.
pub const FORWARDED_BY_SERVER: &str = "server";
/// [`FORWARDED_HEADER`]'s value on a request a client agent handed over.
pub const FORWARDED_BY_CLIENT: &str = "client";

/// Names the client agent that forwarded a request, for the defaults Consul takes from the
/// agent that received it (a session's node).
pub const AGENT_NODE_HEADER: &str = "x-lotse-agent-node";

/// The most a forwarded answer may carry (a large catalog listing still fits).
const MAX_REPLY_BYTES: usize = 64 << 20;

/// Answers forwarded requests with this agent's router.
pub fn handler(state: State) -> HttpHandler {
    let app = crate::router(state);
    std::sync::Arc::new(move |req: HttpRequest| {
        let app = app.clone();
        Box::pin(answer(app, req))
    })
}

fn plain(status: u16, text: String) -> HttpReply {
    HttpReply {
        status,
        headers: vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
        body: text.into_bytes(),
    }
}

async fn answer(mut app: Router, req: HttpRequest) -> HttpReply {
    let mut builder = axum::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.path_and_query.as_str());
    let from_client = !req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(FORWARDED_HEADER))
        && req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(AGENT_NODE_HEADER));
    for (name, value) in &req.headers {
        if !name.eq_ignore_ascii_case(FORWARDED_HEADER) {
            builder = builder.header(name.as_str(), value.as_slice());
        }
    }
    let hop = if from_client {
        FORWARDED_BY_CLIENT
    } else {
        FORWARDED_BY_SERVER
    };
    builder = builder.header(FORWARDED_HEADER, hop);
    let request = match builder.body(Body::from(req.body)) {
        Ok(r) => r,
        Err(e) => return plain(400, format!("malformed forwarded request: {e}")),
    };
    let response = match tower_service::Service::call(&mut app, request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REPLY_BYTES).await {
        Ok(b) => b.to_vec(),
        Err(e) => return plain(500, format!("cannot read the forwarded answer: {e}")),
    };
    HttpReply {
        status: parts.status.as_u16(),
        headers: header_pairs(&parts.headers),
        body,
    }
}

/// A request as `Forward.Http` carries it: `parts`' method and path with query, `headers`.
pub(crate) fn http_request(
    parts: &axum::http::request::Parts,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
) -> HttpRequest {
    HttpRequest {
        method: parts.method.as_str().to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
        headers,
        body,
    }
}

/// Headers as the RPC carries them: (name, raw value) pairs.
pub(crate) fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Sends a request this server cannot answer itself (a leader-only operation on a follower)
/// to the leader over server RPC and returns the leader's answer as it is. A request that was
/// forwarded once already is never sent on (the caller answers "not the leader" instead).
pub async fn to_leader(
    state: &State,
    parts: &axum::http::request::Parts,
    body: Vec<u8>,
) -> Result<axum::response::Response, crate::reply::ApiError> {
    use crate::reply::ApiError;
    use axum::http::StatusCode;
    // A request another server handed over is served where it landed; one from a client
    // agent goes on to the leader once (then it is marked as from a server).
    let hop = parts.headers.get(FORWARDED_HEADER).map(|v| v.as_bytes());
    if hop.is_some_and(|h| h != FORWARDED_BY_CLIENT.as_bytes()) {
        return Err(lotse_server::ServerError::NotLeader.into());
    }
    let Some(leader) = state.server()?.leader_addr() else {
        return Err(lotse_server::ServerError::NoLeader.into());
    };
    let request = http_request(parts, header_pairs(&parts.headers), body);
    let reply = state
        .server()?
        .forward_http(&leader, request)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    reply_response(reply)
}

/// A forwarded request's answer as this agent's response.
pub(crate) fn reply_response(
    reply: lotse_server::link_types::HttpReply,
) -> Result<axum::response::Response, crate::reply::ApiError> {
    use crate::reply::ApiError;
    use axum::http::StatusCode;
    let mut response = axum::response::Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.as_slice());
    }
    response
        .body(Body::from(reply.body))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
