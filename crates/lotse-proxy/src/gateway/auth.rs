//! Authentication of gateway routes: an API key from the KV store ([`super::apikeys`]) or a
//! JWT ([`super::jwt`]), presented as `X-API-Key: <key>` or `Authorization: Bearer <token>`.
//! A bearer value shaped like a JWT (three dot-separated parts) is verified as one when the
//! route has JWT keys; otherwise it is looked up as an API key. A route with neither lets every
//! request through; with either, a missing or refused credential gets 401 with
//! `WWW-Authenticate`.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Request, Response, StatusCode};
use tokio::sync::watch;
use tower_service::Service;

use super::apikeys::KeySet;
use super::jwt::{self, JwtConfig};
use crate::l7::layers::BoxFuture;
use crate::l7::{local, ProxyBody};
use crate::upstream::Upstream;

/// The key a request presents, if any.
fn presented<B>(req: &Request<B>) -> Option<&str> {
    if let Some(k) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Wraps a route's stack: with keys, only requests with a known key pass.
#[derive(Clone)]
pub struct Auth<S> {
    pub inner: S,
    pub keys: Option<watch::Receiver<KeySet>>,
    pub jwt: Option<Arc<JwtConfig>>,
    /// The route's upstream, for its metrics.
    pub upstream: Arc<Upstream>,
}

impl<S> Auth<S> {
    /// Who the credential belongs to (key name or JWT `sub`), or why it was refused.
    fn check<B>(&self, req: &Request<B>) -> Result<String, &'static str> {
        let token = presented(req).ok_or("no credential")?;
        if let Some(cfg) = &self.jwt {
            if token.split('.').count() == 3 {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                return match jwt::verify(token, cfg, now) {
                    Ok(claims) => Ok(claims
                        .get("sub")
                        .and_then(|s| s.as_str())
                        .unwrap_or("jwt")
                        .to_string()),
                    Err(e) => {
                        tracing::debug!(error = %e, "jwt refused");
                        Err("bad token")
                    }
                };
            }
        }
        match &self.keys {
            Some(keys) => keys
                .borrow()
                .lookup(token)
                .map(str::to_string)
                .ok_or("unknown key"),
            None => Err("unknown key"),
        }
    }
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ProxyBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.keys.is_some() || self.jwt.is_some() {
            match self.check(&req) {
                Ok(name) => tracing::debug!(client = %name, "credential accepted"),
                Err(reason) => {
                    self.upstream.metrics.unauthorized.fetch_add(1, Relaxed);
                    self.upstream.metrics.response(401);
                    let mut r = local(StatusCode::UNAUTHORIZED, "unauthorized");
                    r.headers_mut().insert(
                        http::header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"lotse-gateway\""),
                    );
                    tracing::info!(target: "lotse_proxy::access", path = %req.uri().path(), status = 401, reason, "access");
                    return Box::pin(async move { Ok(r) });
                }
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_from_either_header() {
        let mut r = Request::new(());
        assert_eq!(presented(&r), None);
        r.headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(presented(&r), Some("abc"));
        r.headers_mut()
            .insert("x-api-key", HeaderValue::from_static("xyz"));
        assert_eq!(presented(&r), Some("xyz"));
    }
}
