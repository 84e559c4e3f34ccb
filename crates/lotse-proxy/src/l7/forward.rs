//! The innermost L7 service: from an admitted request to an upstream's response.
//!
//! 1. Circuit breaker on concurrent requests (overflow → 503 at once).
//! 2. The request body streams to the endpoint at once; a copy of up to
//!    `max_request_body_bytes` is kept so a retry can send it again; a larger body goes to one
//!    endpoint ([`super::upload`]).
//! 3. Up to `1 + num_retries` attempts, each on an endpoint not yet tried: a connect failure, a
//!    per-try timeout, a status in `retry_on_status_codes`, or (for idempotent methods only) a
//!    connection reset before any response retries if the retry budget allows and the body
//!    can still be sent. Every attempt's outcome feeds outlier detection.
//!    `request_timeout_ms` bounds the wait for the response's headers once the request's body
//!    is in (as Envoy's route timeout); a body that stalls is cut by the idle timeout (408).
//! 4. The response streams back, cut if it stalls for `stream_idle_timeout_ms`
//!    ([`super::idle`]); the endpoint's in-flight count and the breaker's permit are held by
//!    its body. A `101` to an upgrade request hands both connections to
//!    [`super::upgrade::splice`]. One JSON access-log line per request (target
//!    `lotse_proxy::access`).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use smallvec::SmallVec;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use tower_service::Service;

use super::body::{local, BoxError, ProxyBody};
use super::idle::IdleTimeout;
use super::lane::LaneError;
use super::layers::BoxFuture;
use super::upload::{AttemptBody, ClientFailure, Upload};
use super::{upgrade, ClientConn};
use crate::balance::ring::request_hash;
use crate::connector::{ConnectError, Connector, HyperConnector};
use crate::outlier::Outcome;
use crate::trace::TraceContext;
use crate::upstream::Upstream;

/// How an L7 upstream's requests leave: on the client connection's own upstream connections
/// ([`Lanes`]) for an HTTP/1.1 client of an HTTP/1.1 upstream, else on the shared pool (HTTP/2
/// on either side).
#[derive(Clone)]
pub struct HttpClient {
    pub pool: Client<HyperConnector, AttemptBody<Incoming>>,
    pub connector: Arc<dyn Connector>,
}

/// An attempt that got no response, as the retry rules see it.
struct SendFailure {
    /// No connection was made (refused, timed out, or the connection limit).
    connect: bool,
    /// The connection limit refused it: 503 at once, no retry, no ejection.
    overflow: bool,
    error: BoxError,
}

impl From<hyper_util::client::legacy::Error> for SendFailure {
    fn from(e: hyper_util::client::legacy::Error) -> Self {
        let found = ConnectError::find(&e);
        SendFailure {
            connect: found.is_some() || e.is_connect(),
            overflow: matches!(found, Some(ConnectError::Overflow)),
            error: Box::new(e),
        }
    }
}

impl From<LaneError> for SendFailure {
    fn from(e: LaneError) -> Self {
        match e {
            LaneError::Connect(c) => SendFailure {
                connect: true,
                overflow: matches!(c, ConnectError::Overflow),
                error: Box::new(c),
            },
            // Nothing was sent on a connection whose handshake failed.
            LaneError::Handshake(h) => SendFailure {
                connect: true,
                overflow: false,
                error: Box::new(h),
            },
            LaneError::Http(h) => SendFailure {
                connect: false,
                overflow: false,
                error: Box::new(h),
            },
        }
    }
}

/// The access log's tracing target (one JSON line per request, off unless asked for).
const ACCESS_LOG: &str = "lotse_proxy::access";
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1). Named, not spelled as
/// strings: removing by `HeaderName` skips parsing the name for every request. A `static`, not
/// a `const`: a const array is built (and dropped) again wherever it is used.
static HOP_BY_HOP: [HeaderName; 8] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::UPGRADE,
];

#[derive(Clone)]
pub struct Forward {
    up: Arc<Upstream>,
    /// Shared: the stack is cloned for every request, and the pool is several `Arc`s.
    client: Arc<HttpClient>,
}

impl Forward {
    pub fn new(up: Arc<Upstream>, client: HttpClient) -> Self {
        Forward {
            up,
            client: Arc::new(client),
        }
    }
}

impl Service<Request<Incoming>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ProxyBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let up = self.up.clone();
        let client = self.client.clone();
        Box::pin(handle(up, client, req))
    }
}

/// What the attempts came to: the response and, for the log, the last endpoint and the count.
struct Done {
    resp: Response<ProxyBody>,
    endpoint: Option<SocketAddr>,
    attempts: u32,
}

async fn handle(
    up: Arc<Upstream>,
    client: Arc<HttpClient>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    // What only the access log needs is kept only while it is on (off by default).
    let logged = tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO).then(|| {
        let peer = req.extensions().get::<ClientConn>().map(|c| c.addr);
        (peer, req.method().clone(), req.uri().path().to_string())
    });
    let incoming_trace = req.headers().get(TRACEPARENT).map(HeaderValue::as_bytes);
    let trace = TraceContext::continue_or_start(incoming_trace, &mut rand::thread_rng());

    // Written once: it goes to the upstream on every attempt and back to the client.
    let traceparent = trace.header_value();
    let done = attempts(&up, &client, req, &traceparent).await;
    let status = done.resp.status().as_u16();
    let elapsed = start.elapsed();
    up.metrics.response(status);
    up.metrics.latency.observe(elapsed);
    if let Some((peer, method, path)) = logged {
        // The path only: query strings carry tokens often enough to keep them out of logs.
        tracing::info!(
            target: ACCESS_LOG,
            upstream = %up.name,
            client = %peer.map(|p| p.to_string()).unwrap_or_default(),
            method = %method,
            path = %path,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            endpoint = %done.endpoint.map(|e| e.to_string()).unwrap_or_default(),
            attempts = done.attempts,
            trace_id = %trace.trace_id_hex(),
            "access"
        );
    }
    let mut resp = done.resp;
    resp.headers_mut().insert(TRACEPARENT, traceparent);
    Ok(resp)
}

async fn attempts(
    up: &Arc<Upstream>,
    client: &HttpClient,
    mut req: Request<Incoming>,
    traceparent: &HeaderValue,
) -> Done {
    let local_done = |resp| Done {
        resp,
        endpoint: None,
        attempts: 0,
    };
    let timeout = up.cfg.request_timeout;
    let timed_out = || {
        up.metrics.timeouts.fetch_add(1, Relaxed);
        local_done(local(StatusCode::GATEWAY_TIMEOUT, "request-timeout"))
    };
    let Some(permit) = up.concurrency.try_enter() else {
        up.metrics.overflow.fetch_add(1, Relaxed);
        return local_done(local(StatusCode::SERVICE_UNAVAILABLE, "overflow"));
    };
    let h2 = up.protocol() != crate::Protocol::Http;
    let protocol_upgrade = if h2 {
        None
    } else {
        upgrade::requested(req.version(), req.headers())
    };
    let mut downstream_upgrade = protocol_upgrade
        .as_ref()
        .map(|_| hyper::upgrade::on(&mut req));
    let length = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, body) = req.into_parts();
    let upload = Upload::new(
        body,
        up.cfg.max_request_body_bytes,
        length,
        up.cfg.stream_idle_timeout,
    );
    let hash = request_hash(&up.cfg.hash_policies, &parts.headers);
    let conn = parts.extensions.get::<ClientConn>();
    // One request at a time on an HTTP/1 client connection: it can own its upstream ones,
    // if it stays open for more (else the pool's connections, which outlive it, serve better).
    let lanes = conn
        .filter(|_| !h2 && parts.method != Method::CONNECT && keeps_alive(&parts))
        .map(|c| &c.lanes);

    let retries = &up.cfg.retries;
    let max_attempts = 1 + retries.num_retries;
    let mut tried: SmallVec<[SocketAddr; 4]> = SmallVec::new();
    let mut attempt = 0;
    // The attempts' future is built inside `select!`, not bound to a local first: a local
    // moved into `select!` keeps its own slot in this future beside the moved copy, which
    // doubled the size of every request's future (and the bytes copied to set it up).
    tokio::select! {
        done = async {
            loop {
                attempt += 1;
                let last = attempt >= max_attempts;
                let Some((ep, in_flight)) = up.start(hash, &tried, attempt == 1) else {
                    return local_done(local(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no-healthy-upstream",
                    ));
                };
                tried.push(ep);
                let lane = lanes.as_ref().filter(|l| l.usable(up, ep));
                let via = if lane.is_some() {
                    Via::Lane
                } else {
                    Via::Pool { h2 }
                };
                let body = upload.body();
                let Some(upstream_req) = build(
                    &parts,
                    body,
                    ep,
                    conn.map(|c| &c.forwarded_for),
                    traceparent,
                    via,
                    protocol_upgrade.clone(),
                ) else {
                    return local_done(local(StatusCode::BAD_REQUEST, "bad-request"));
                };
                // Pinned where it is built: binding it first and pinning the binding would keep two
                // slots for it in the request's future.
                let mut sent = std::pin::pin!(async {
                    match lane {
                        Some(lanes) => lanes
                            .send(up, &client.connector, ep, upstream_req)
                            .await
                            .map_err(SendFailure::from),
                        None => client
                            .pool
                            .request(upstream_req)
                            .await
                            .map_err(SendFailure::from),
                    }
                });
                let result = match retries.per_try_timeout {
                    Some(t) => match tokio::time::timeout(t, sent.as_mut()).await {
                        Ok(r) => r.map_err(Some),
                        Err(_) => Err(None),
                    },
                    None => sent.await.map_err(Some),
                };
                let fail = |resp| Done {
                    resp,
                    endpoint: Some(ep),
                    attempts: attempt,
                };
                match result {
                    Ok(mut resp) => {
                        let status = resp.status();
                        let outcome = if status.is_server_error() {
                            Outcome::Failure
                        } else {
                            Outcome::Success
                        };
                        up.report(ep, outcome);
                        if !last
                            && retries.retry_on_status_codes.contains(&status.as_u16())
                            && upload.can_resend()
                            && up.try_retry()
                        {
                            continue;
                        }
                        if status == StatusCode::SWITCHING_PROTOCOLS {
                            if let Some(downstream) = downstream_upgrade.take() {
                                let upstream_upgrade = hyper::upgrade::on(&mut resp);
                                let (mut head, _) = resp.into_parts();
                                let protocol = head
                                    .headers
                                    .get(http::header::UPGRADE)
                                    .cloned()
                                    .or_else(|| protocol_upgrade.clone());
                                strip_hop_by_hop(&mut head.headers);
                                if let Some(p) = protocol {
                                    upgrade::restore(&mut head.headers, p);
                                }
                                tokio::spawn(upgrade::splice(
                                    downstream,
                                    upstream_upgrade,
                                    up.clone(),
                                    (in_flight, permit),
                                ));
                                return Done {
                                    resp: Response::from_parts(head, ProxyBody::empty()),
                                    endpoint: Some(ep),
                                    attempts: attempt,
                                };
                            }
                        }
                        let (mut head, body) = resp.into_parts();
                        strip_hop_by_hop(&mut head.headers);
                        let body = IdleTimeout::new(
                            body,
                            up.cfg.stream_idle_timeout,
                            Some(up.clone()),
                            "response",
                        );
                        return Done {
                            resp: Response::from_parts(
                                head,
                                ProxyBody::upstream(body, (in_flight, permit)),
                            ),
                            endpoint: Some(ep),
                            attempts: attempt,
                        };
                    }
                    // The per-try timeout fired.
                    Err(None) => {
                        up.metrics.timeouts.fetch_add(1, Relaxed);
                        up.report(ep, Outcome::Failure);
                        if !last && upload.can_resend() && up.try_retry() {
                            continue;
                        }
                        return fail(local(StatusCode::GATEWAY_TIMEOUT, "upstream-timeout"));
                    }
                    // The client's body failed, not the endpoint: no report, no retry.
                    Err(Some(f)) if upload.client_failure().is_some() => {
                        tracing::debug!(upstream = %up.name, error = %f.error, "client request body failed");
                        return fail(match upload.client_failure() {
                            Some(ClientFailure::Idle) => {
                                local(StatusCode::REQUEST_TIMEOUT, "request-body-timeout")
                            }
                            _ => local(StatusCode::BAD_REQUEST, "bad-request-body"),
                        });
                    }
                    Err(Some(f)) => match f {
                        SendFailure { overflow: true, .. } => {
                            up.metrics.overflow.fetch_add(1, Relaxed);
                            return fail(local(StatusCode::SERVICE_UNAVAILABLE, "overflow"));
                        }
                        SendFailure {
                            connect: true,
                            error: e,
                            ..
                        } => {
                            up.metrics.connect_failures.fetch_add(1, Relaxed);
                            up.report(ep, Outcome::Failure);
                            tracing::debug!(upstream = %up.name, endpoint = %ep, error = %e, "connect failed");
                            if !last
                                && retries.retry_on_connect_failure
                                && upload.can_resend()
                                && up.try_retry()
                            {
                                continue;
                            }
                            return fail(local(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "upstream-connect-error",
                            ));
                        }
                        SendFailure { error: e, .. } => {
                            // Reset or closed before a response (often a pooled connection whose
                            // endpoint just died). The request may have been processed, so only
                            // idempotent methods are sent again (Envoy's `reset` retry condition).
                            up.report(ep, Outcome::Failure);
                            tracing::debug!(upstream = %up.name, endpoint = %ep, error = %e, "upstream reset");
                            if !last
                                && parts.method.is_idempotent()
                                && upload.can_resend()
                                && up.try_retry()
                            {
                                continue;
                            }
                            return fail(local(StatusCode::BAD_GATEWAY, "upstream-reset"));
                        }
                    },
                }
            }
        } => done,
        _ = async {
            // As Envoy's route timeout: from the end of the request. An upload takes what it
            // takes, bounded by `stream_idle_timeout_ms` between its frames.
            upload.sent().await;
            tokio::time::sleep(timeout).await;
        } => timed_out(),
    }
}

/// The request as sent to `addr`: same method, path, headers (less hop-by-hop ones, but the
/// upgrade ones for an upgrade) and body, plus `x-forwarded-for` and the proxy's `traceparent`.
fn build(
    parts: &http::request::Parts,
    body: AttemptBody<Incoming>,
    addr: SocketAddr,
    forwarded_for: Option<&HeaderValue>,
    traceparent: &HeaderValue,
    via: Via,
    protocol_upgrade: Option<HeaderValue>,
) -> Option<Request<AttemptBody<Incoming>>> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let mut uri = http::uri::Parts::default();
    uri.path_and_query = Some(path_and_query);
    if let Via::Pool { .. } = via {
        // The pool finds its connection by the URI's authority, then writes the origin form.
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = Some(authority(addr)?);
    }
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = Uri::from_parts(uri).ok()?;
    *req.version_mut() = match via {
        Via::Pool { h2: true } => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    let headers = req.headers_mut();
    // Room for what is added below, so inserting them never grows the map.
    let _ = headers.try_reserve(parts.headers.len() + 3);
    headers.extend(parts.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    strip_hop_by_hop(headers);
    if let Some(p) = protocol_upgrade {
        upgrade::restore(headers, p);
    }
    if !headers.contains_key(http::header::HOST) {
        let host = match (parts.uri.authority(), via) {
            (Some(a), _) => HeaderValue::from_str(a.as_str()).ok(),
            // A client without `Host` (HTTP/1.0): the endpoint's address, as the pool writes.
            (None, Via::Lane) => endpoint_host(addr),
            (None, Via::Pool { .. }) => None,
        };
        if let Some(v) = host {
            headers.insert(http::header::HOST, v);
        }
    }
    if let Some(ip) = forwarded_for {
        let value = match headers.get(&X_FORWARDED_FOR) {
            Some(prev) => {
                HeaderValue::from_bytes(&[prev.as_bytes(), b", ", ip.as_bytes()].concat()).ok()
            }
            None => Some(ip.clone()),
        };
        if let Some(v) = value {
            headers.insert(X_FORWARDED_FOR, v);
        }
    }
    headers.insert(TRACEPARENT, traceparent.clone());
    Some(req)
}

/// How an attempt leaves, which decides the form of its URI.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// hyper-util's pool: an absolute URI (the pool keys on its authority).
    Pool { h2: bool },
    /// The client connection's own upstream connection: the origin form, as sent.
    Lane,
}

/// Whether the client connection stays open after this request: HTTP/1.1 unless it says
/// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive` (RFC 9112 §9.3).
fn keeps_alive(parts: &http::request::Parts) -> bool {
    let says =
        |token: &str| connection_tokens(&parts.headers).any(|t| t.eq_ignore_ascii_case(token));
    match parts.version {
        Version::HTTP_11 => !says("close"),
        Version::HTTP_10 => says("keep-alive"),
        _ => false,
    }
}

/// `addr` as a `Host` value: without the default port, and an IPv6 host in brackets.
fn endpoint_host(addr: SocketAddr) -> Option<HeaderValue> {
    let a = authority(addr)?;
    let host = if addr.port() == 80 {
        a.host()
    } else {
        a.as_str()
    };
    HeaderValue::from_str(host).ok()
}

/// `addr` as a URI authority, written without a heap `String` on the way.
fn authority(addr: SocketAddr) -> Option<http::uri::Authority> {
    let mut text = Text::<64>::default();
    write!(text, "{addr}").ok()?;
    http::uri::Authority::try_from(text.as_bytes()).ok()
}

/// A short text built on the stack (an address, an IP).
struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Text {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Text<N> {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> std::fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The comma-separated tokens of every `Connection` header, trimmed.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// A cheap first look (length and first letter) that rules out nearly every end-to-end header
/// before it is compared with the nine hop-by-hop names.
fn may_be_hop_by_hop(name: &HeaderName) -> bool {
    let n = name.as_str().as_bytes();
    matches!(
        (n.len(), n.first()),
        (2 | 7 | 17, Some(b't'))
            | (10, Some(b'c' | b'k'))
            | (7, Some(b'u'))
            | (16 | 18 | 19, Some(b'p'))
    )
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names marks which hop-by-hop headers are present (bit 8:
    // `transfer-encoding`): most messages have none, and the rest one or two, so only those
    // are removed (a removal hashes; nine of them per message cost more than the pass).
    let mut present = 0u16;
    for name in headers.keys() {
        if !may_be_hop_by_hop(name) {
            continue;
        }
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        } else if name == http::header::TRANSFER_ENCODING {
            present |= 1 << HOP_BY_HOP.len();
        }
    }
    if present == 0 {
        return;
    }
    // Headers named by `Connection` are hop-by-hop too. Its usual tokens are skipped at once
    // (`keep-alive` is in the list above; `close` names no header), and looking another up by
    // `&str` parses it on the stack: a name is only built (and allocated) for a header that is
    // there to remove.
    let named: SmallVec<[HeaderName; 2]> = connection_tokens(headers)
        .filter(|t| !t.eq_ignore_ascii_case("close") && !t.eq_ignore_ascii_case("keep-alive"))
        .filter(|t| headers.contains_key(*t))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    // gRPC needs `te: trailers` end to end; any other `te` is hop-by-hop.
    let te_trailers = headers
        .get(http::header::TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    for name in &named {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
    if present & (1 << HOP_BY_HOP.len()) != 0 {
        headers.remove(http::header::TRANSFER_ENCODING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_look_lets_every_hop_by_hop_name_through() {
        for name in HOP_BY_HOP.iter().chain([&http::header::TRANSFER_ENCODING]) {
            assert!(may_be_hop_by_hop(name), "{name}");
        }
        for name in [
            "content-type",
            "content-length",
            "date",
            "server",
            "host",
            "etag",
        ] {
            let name = HeaderName::from_static(name);
            assert!(!may_be_hop_by_hop(&name), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Session, close"),
            ("keep-alive", "timeout=5"),
            ("x-session", "abc"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("x-kept", "1"),
            ("content-type", "text/plain"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["content-type: text/plain", "te: trailers", "x-kept: 1"],
            "only end-to-end headers (and gRPC's `te: trailers`) are left"
        );

        // `te` other than `trailers` goes; a message without hop-by-hop headers is untouched.
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("gzip"));
        h.insert("x-a", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-a"));
        let mut plain = HeaderMap::new();
        plain.insert("x-b", HeaderValue::from_static("2"));
        let before = plain.clone();
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain, before);
    }

    #[test]
    fn endpoint_host_drops_only_the_default_port_and_keeps_ipv6_brackets() {
        let host = |a: &str| endpoint_host(a.parse().expect("addr")).expect("host");
        assert_eq!(host("10.0.0.5:80"), "10.0.0.5");
        assert_eq!(host("10.0.0.5:8080"), "10.0.0.5:8080");
        assert_eq!(host("[::1]:80"), "[::1]");
        assert_eq!(host("[::1]:9000"), "[::1]:9000");
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_tokens() {
        let parts = |version, connection: Option<&str>| {
            let mut b = Request::builder().version(version);
            if let Some(c) = connection {
                b = b.header(http::header::CONNECTION, c);
            }
            b.body(()).expect("request").into_parts().0
        };
        assert!(keeps_alive(&parts(Version::HTTP_11, None)));
        assert!(!keeps_alive(&parts(
            Version::HTTP_11,
            Some("Upgrade, Close")
        )));
        assert!(!keeps_alive(&parts(Version::HTTP_10, None)));
        assert!(keeps_alive(&parts(Version::HTTP_10, Some("keep-alive"))));
        assert!(!keeps_alive(&parts(Version::HTTP_2, None)));
    }
}
