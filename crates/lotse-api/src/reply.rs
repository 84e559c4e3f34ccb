//! Responses as Consul writes them: status codes and plain-text error bodies, JSON with
//! `?pretty`, and the `X-Consul-*` headers.

use axum::body::Bytes;
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lotse_server::{QueryMeta, ServerError};
use serde::Serialize;

use crate::State;

/// An error answer: a status and a plain-text reason, as Consul's `HTTPError`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: String,
}

impl ApiError {
    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            reason: reason.into(),
        }
    }

    pub fn new(status: StatusCode, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason: reason.into(),
        }
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> ApiError {
        let status = match &e {
            ServerError::PermissionDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            reason: e.to_string(),
        }
    }
}

/// Lets handlers that answer `Result<_, Response>` use `?` on an [`ApiError`].
impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        e.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.reason).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// A JSON body; pretty-printed as Go's `MarshalIndent` with four spaces and a final newline
/// when the request said `?pretty` (or the agent runs in `-dev`, as Consul does).
pub fn json<T: Serialize>(value: &T, pretty: bool) -> Response {
    match json_bytes(value, pretty) {
        Ok(b) => json_response(b),
        Err(e) => e.into_response(),
    }
}

/// [`json`]'s body alone, for answers that are kept and shared ([`crate::render_cache`]).
pub fn json_bytes<T: Serialize>(value: &T, pretty: bool) -> Result<Bytes, ApiError> {
    let body = if pretty {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        value.serialize(&mut ser).map(|()| {
            out.push(b'\n');
            out
        })
    } else {
        serde_json::to_vec(value)
    };
    body.map(Bytes::from)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A JSON answer made of an already rendered body (a clone of `Bytes` shares it).
pub fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Adds the blocking-query headers to `resp`.
pub fn with_meta(mut resp: Response, meta: &QueryMeta) -> Response {
    let h = resp.headers_mut();
    set(h, "X-Consul-Index", meta.index.max(1).to_string());
    set(h, "X-Consul-KnownLeader", meta.known_leader.to_string());
    set(h, "X-Consul-LastContact", meta.last_contact_ms.to_string());
    set(
        h,
        "X-Consul-Effective-Consistency",
        meta.consistency.header_value().to_string(),
    );
    resp
}

fn set(h: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(name, v);
    }
}

/// A 404 with the query headers, as Consul answers a missing key.
pub fn not_found_with_meta(meta: &QueryMeta) -> Response {
    with_meta(StatusCode::NOT_FOUND.into_response(), meta)
}

/// Unknown paths, with Consul's hints.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    let reason = if uri.path().starts_with("/v1/") {
        "Invalid URL path: not a recognized HTTP API endpoint\n"
    } else {
        "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
    };
    ApiError::new(StatusCode::NOT_FOUND, reason)
}

/// Gives a route Consul's method handling: `OPTIONS` answers 200 with `Allow`; any other
/// method the route lacks (HEAD included) is a 405 with `Allow` and "method X not allowed".
pub fn allow(
    router: axum::routing::MethodRouter<State>,
    allowed: &'static str,
) -> axum::routing::MethodRouter<State> {
    let refuse = move |method: axum::http::Method| async move {
        let mut r = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} not allowed"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        r
    };
    router
        .head(refuse)
        .options(move || async move { ([(header::ALLOW, allowed)], "").into_response() })
        .fallback(refuse)
}

/// Headers on every response, and request counting.
pub async fn common_headers(AxState(state): AxState<State>, req: Request, next: Next) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    state.telemetry.http_requests.fetch_add(1, Relaxed);
    let mut resp = next.run(req).await;
    if resp.status().is_server_error() {
        state.telemetry.http_errors.fetch_add(1, Relaxed);
    }
    resp.headers_mut().insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static("allow"),
    );
    resp
}
