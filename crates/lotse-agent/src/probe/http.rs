//! HTTP(S) probe: Consul's `CheckHTTP`.
//!
//! One request on a fresh connection (Consul disables keep-alives: a pooled connection that
//! died between intervals would fail a healthy check). `2xx` is passing, `429` warning,
//! anything else critical; the output is `HTTP <method> <url>: <code> <reason> Output: <body>`
//! with the last [`OUTPUT_LIMIT`] bytes of the body (Consul's circular buffer). Redirects are
//! followed as Go's client follows them (at most 10; 301/302/303 turn into GET) unless
//! `disable_redirects`. Errors are Go's `url.Error` texts: `Get "<url>": <cause>`.
//!
//! One deadline covers dial, TLS, request, headers and body, like Go's `Client.Timeout`.
//! If it passes while the body is still arriving, the status line already received decides
//! (Consul logs the read error and reports the status with the partial body).

mod redirect;

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

use super::consul_text::url_error;
use super::tail::Tail;
use super::{effective_timeout, tcp, tls, ProbeResult, DEFAULT_TIMEOUT, OUTPUT_LIMIT};

/// Consul's `User-Agent` for HTTP checks, sent unless the check sets its own.
pub const USER_AGENT: &str = "Consul Health Check";
/// Consul's `Accept`, sent unless the check sets its own.
pub const ACCEPT: &str = "text/plain, text/*, */*";

/// An HTTP check definition (Consul's `http`, `method`, `header`, `body`, `tls_skip_verify`,
/// `tls_server_name`, `disable_redirects`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpProbe {
    pub url: String,
    /// Empty means `GET`.
    pub method: String,
    /// Consul's `map[string][]string`, flattened: one pair per value, in order. A `Host`
    /// entry sets the Host header of the first request (as Go's `req.Host`).
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub tls_skip_verify: bool,
    /// The name sent as SNI and verified; empty means the URL's host.
    pub tls_server_name: String,
    pub disable_redirects: bool,
}

/// Whether `url` can be probed at all: an absolute `http`/`https` URL with a host. For
/// registration, where Consul rejects a URL its client could never request.
pub fn validate_http_url(url: &str) -> Result<(), String> {
    parse_url(url).map(|_| ())
}

/// Runs one HTTP check.
pub async fn http(p: &HttpProbe, timeout: Duration) -> ProbeResult {
    let deadline = Instant::now() + effective_timeout(timeout, DEFAULT_TIMEOUT);
    let method = if p.method.is_empty() {
        "GET"
    } else {
        p.method.as_str()
    };
    let fail = |url: &str, err: &str| ProbeResult::critical(url_error(method, url, err));

    if let Err(e) = p.url.parse::<Uri>() {
        return ProbeResult::critical(format!("parse {:?}: {e}", p.url));
    }
    let headers = match build_headers(&p.headers) {
        Ok(h) => h,
        Err(e) => return fail(&p.url, &e),
    };
    let host_override = p
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"));
    let mut hop = redirect::Hop {
        method: match Method::from_bytes(method.as_bytes()) {
            Ok(m) => m,
            // Go's `http.NewRequest` errors are not wrapped in a `url.Error`.
            Err(_) => return ProbeResult::critical(format!("net/http: invalid method {method:?}")),
        },
        url: p.url.clone(),
        body: Bytes::from(p.body.clone()),
        host: host_override.map(|(_, v)| v.clone()),
        headers,
    };

    let mut redirects = 0;
    let response = loop {
        let sent = timeout_at(deadline, send(p, &hop, deadline)).await;
        let (response, conn) = match sent {
            Err(_elapsed) => {
                let why =
                    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
                return fail(&hop.url, why);
            }
            Ok(Err(e)) => return fail(&hop.url, &e),
            Ok(Ok(exchange)) => exchange,
        };
        if p.disable_redirects {
            break (response, conn);
        }
        match redirect::next_hop(&hop, &response) {
            Ok(None) => break (response, conn),
            Ok(Some(next)) => {
                redirects += 1;
                if redirects >= redirect::MAX_REDIRECTS {
                    return fail(&next.url, "stopped after 10 redirects");
                }
                hop = next;
            }
            Err(e) => return fail(&hop.url, &e),
        }
    };

    let (response, _conn) = response;
    let status = response.status();
    let status_text = status_line(&response);
    let body = read_tail(response.into_body(), deadline).await;
    let output = format!(
        "HTTP {method} {}: {status_text} Output: {}",
        p.url,
        body.text()
    );
    match status.as_u16() {
        200..=299 => ProbeResult::passing(output),
        429 => ProbeResult::warning(output),
        _ => ProbeResult::critical(output),
    }
}

/// Parses an absolute http(s) URL; errors worded as Go's client words them.
fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("parse {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err(format!("unsupported protocol scheme {other:?}")),
        None => return Err("unsupported protocol scheme \"\"".to_owned()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("http: no Host in request URL".to_owned());
    }
    Ok(uri)
}

/// The check's headers plus Consul's defaults; `Host` is carried separately.
fn build_headers(pairs: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case("host") {
            continue;
        }
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("net/http: invalid header field name {name:?}"))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| format!("net/http: invalid header field value for {name:?}"))?;
        map.append(n, v);
    }
    if !map.contains_key(header::USER_AGENT) {
        map.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    }
    if !map.contains_key(header::ACCEPT) {
        map.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
    }
    Ok(map)
}

/// Aborts a connection's driver task when the exchange is dropped, so no task outlives
/// the probe (a peer that keeps the socket open must not keep a task alive).
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request on a new connection: dial, TLS (ALPN `h2`/`http/1.1`), send, await headers.
async fn send(
    p: &HttpProbe,
    hop: &redirect::Hop,
    deadline: Instant,
) -> Result<(Response<Incoming>, AbortOnDrop), String> {
    let uri = parse_url(&hop.url)?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = tcp::dial(&format!("{host}:{port}"), deadline).await?;
    if !https {
        return exchange(TokioIo::new(stream), false, request(hop, &uri, false)?).await;
    }
    let config = tls::client_config(p.tls_skip_verify, tls::ALPN_HTTP)?;
    let name = if p.tls_server_name.is_empty() {
        host
    } else {
        p.tls_server_name.as_str()
    };
    let stream = tls::connect(stream, name, config).await?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    exchange(TokioIo::new(stream), h2, request(hop, &uri, h2)?).await
}

/// The request for one hop. HTTP/1.1 gets origin-form, `Host` and `Connection: close`;
/// HTTP/2 gets the absolute URI (its `:authority`, which a `Host` override replaces).
fn request(hop: &redirect::Hop, uri: &Uri, h2: bool) -> Result<Request<Full<Bytes>>, String> {
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    // Go never sends URL userinfo in Host.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = hop.host.as_deref().unwrap_or(authority);
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut builder = Request::builder().method(hop.method.clone());
    if h2 {
        builder = builder.uri(format!(
            "{}://{host}{path}",
            uri.scheme_str().unwrap_or("https")
        ));
    } else {
        builder = builder
            .uri(path)
            .header(header::HOST, host)
            .header(header::CONNECTION, "close");
    }
    let mut req = builder
        .body(Full::new(hop.body.clone()))
        .map_err(|e| format!("net/http: invalid request: {e}"))?;
    req.headers_mut().extend(hop.headers.clone());
    // Go sends a length for any body, and `0` for an empty POST/PUT/PATCH.
    let payload_method = matches!(hop.method, Method::POST | Method::PUT | Method::PATCH);
    if !hop.body.is_empty() || payload_method {
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(hop.body.len()));
    }
    Ok(req)
}

/// Hands `io` to hyper's HTTP/1.1 or HTTP/2 client and waits for the response headers.
async fn exchange<IO>(
    io: TokioIo<IO>,
    h2: bool,
    req: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, AbortOnDrop), String>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let failed = |e: hyper::Error| error_chain(&e);
    if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(failed)?;
        let guard = drive(conn);
        Ok((sender.send_request(req).await.map_err(failed)?, guard))
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(failed)?;
        let guard = drive(conn);
        Ok((sender.send_request(req).await.map_err(failed)?, guard))
    }
}

/// Runs a connection's driver in its own task, for as long as the guard lives.
pub(super) fn drive<C>(conn: C) -> AbortOnDrop
where
    C: std::future::Future + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }))
}

/// Go's `resp.Status`: the code and the reason the server sent (or the standard one).
fn status_line(response: &Response<Incoming>) -> String {
    let code = response.status().as_u16();
    let sent = response.extensions().get::<hyper::ext::ReasonPhrase>();
    let reason = match sent {
        Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
        None => response
            .status()
            .canonical_reason()
            .unwrap_or_default()
            .to_owned(),
    };
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

/// Reads the body until its end or `deadline`, keeping only its last [`OUTPUT_LIMIT`] bytes.
/// A read error or the deadline ends the read; what was read still counts.
async fn read_tail(mut body: Incoming, deadline: Instant) -> Tail {
    let mut tail = Tail::new(OUTPUT_LIMIT);
    loop {
        match timeout_at(deadline, body.frame()).await {
            Err(_elapsed) => {
                tracing::debug!(read = tail.total(), "check body read timed out");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "check body read failed");
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    tail.write(data);
                }
            }
        }
    }
    tail
}

/// An error and its causes, `outer: inner: innermost`.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
