//! A client agent's HTTP API. Endpoints about the agent itself (`/v1/agent/*`, the user
//! events it received, `/`) are answered here; every other request is handed whole to a
//! server over server RPC (`Forward.Http`) and the server's answer is returned as it is, so
//! status codes, headers and bodies are exactly a server's.
//!
//! Failover ([`lotse_agent::remote::Servers`]): a read (`GET`, `HEAD`) that gets no answer is
//! asked of the next server, so a blocking query whose server died carries on elsewhere; a
//! write is sent to the next server only when it certainly never reached the first.
//!
//! A forwarded request names this agent ([`AGENT_NODE_HEADER`]) for the defaults Consul takes
//! from the agent that received the request (a session's node).

use std::time::Duration;

use axum::extract::{Request, State as AxState};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lotse_agent::remote::Tries;

use crate::forwarded::{
    header_pairs, http_request, reply_response, AGENT_NODE_HEADER, FORWARDED_HEADER,
};
use crate::reply::ApiError;
use crate::State;

/// The largest request body a client agent forwards (a snapshot restore is the largest).
const MAX_FORWARDED_BODY: usize = 64 << 20;

/// Consul's longest blocking wait, plus its jitter (wait/16) and a round trip.
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(600 + 600 / 16 + 10);

/// Any other request: a write may wait for a leader for the servers' hold time; a snapshot
/// takes as long as the state is large.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether a client agent answers `path` itself.
pub fn served_locally(path: &str) -> bool {
    path == "/" || path.starts_with("/v1/agent/") || path.starts_with("/v1/event/")
}

/// Middleware: on a client agent, hands every request it does not serve itself to a server.
/// On a server it does nothing.
pub async fn forward_to_servers(
    AxState(state): AxState<State>,
    req: Request,
    next: Next,
) -> Response {
    let Some(servers) = state.servers.clone() else {
        return next.run(req).await;
    };
    if served_locally(req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_FORWARDED_BODY).await {
        Ok(b) => b.to_vec(),
        Err(e) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body too large to forward: {e}"),
            )
            .into_response()
        }
    };
    let mut headers: Vec<(String, Vec<u8>)> = header_pairs(&parts.headers)
        .into_iter()
        .filter(|(name, _)| !is_internal(name) && !is_hop_by_hop(name))
        .collect();
    headers.push((
        AGENT_NODE_HEADER.to_string(),
        state.agent.node_name.as_bytes().to_vec(),
    ));
    let request = http_request(&parts, headers, body);
    let read = parts.method == Method::GET || parts.method == Method::HEAD;
    let tries = if read {
        Tries::AnyFailure
    } else {
        Tries::OnlyUndelivered
    };
    let timeout = if read && is_blocking(parts.uri.query()) {
        BLOCKING_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    let answer = servers
        .call(tries, |client| {
            let request = request.clone();
            async move { client.http(request, timeout).await }
        })
        .await;
    match answer {
        Ok(reply) => {
            // That server has no leader: the next request starts with another.
            if reply.status == 500 && reply.body == b"No cluster leader" {
                servers.demote_preferred();
            }
            reply_response(reply).unwrap_or_else(IntoResponse::into_response)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Lotse's own headers between agents are set by agents, never taken from a request.
fn is_internal(name: &str) -> bool {
    name.eq_ignore_ascii_case(FORWARDED_HEADER) || name.eq_ignore_ascii_case(AGENT_NODE_HEADER)
}

/// Headers about this connection, not the request (RFC 9110 §7.6.1), and the length the
/// forwarded body sets anew.
fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Whether a query string asks to block (`index` set and not 0).
fn is_blocking(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            k == "index" && !v.is_empty() && v != "0"
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_answers_for_itself_and_forwards_the_rest() {
        for p in [
            "/",
            "/v1/agent/self",
            "/v1/agent/service/register",
            "/v1/event/list",
        ] {
            assert!(served_locally(p), "{p}");
        }
        for p in [
            "/v1/kv/a",
            "/v1/catalog/nodes",
            "/v1/agent",
            "/v1/status/leader",
            "/v1/session/create",
        ] {
            assert!(!served_locally(p), "{p}");
        }
    }

    #[test]
    fn only_a_nonzero_index_blocks() {
        assert!(is_blocking(Some("index=7&wait=1s")));
        assert!(is_blocking(Some("recurse&index=1")));
        assert!(!is_blocking(Some("index=0")));
        assert!(!is_blocking(Some("index=")));
        assert!(!is_blocking(Some("myindex=4")));
        assert!(!is_blocking(None));
    }

    #[test]
    fn internal_and_connection_headers_are_not_forwarded() {
        assert!(is_internal("X-Lotse-Forwarded"));
        assert!(is_internal("x-lotse-agent-node"));
        assert!(is_hop_by_hop("Connection"));
        assert!(is_hop_by_hop("content-length"));
        assert!(!is_hop_by_hop("x-consul-token"));
    }
}
