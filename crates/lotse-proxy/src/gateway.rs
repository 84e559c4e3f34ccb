//! The edge gateway: one listener, many routes. A request goes to the route whose host matches
//! (exact, `*.suffix` wildcard, or any when the route names none) with the longest matching
//! path prefix; host-specific routes win ties over host-less ones. Each route is an upstream of
//! its own (discovery, balancing, retries, breakers, and its own token buckets: the per-route
//! rate limit) behind the same L7 stack as a sidecar's. No route: 404.
//!
//! Edge duties: [`validate`] (allowed methods, header and body size limits) runs in front of
//! the router for the whole listener; [`auth`] wraps the routes that ask for it, with API keys
//! kept in the KV store ([`apikeys`]) and/or JWTs ([`jwt`], HS256 and RS256); [`cache`] keeps
//! shareable `GET` answers in memory.
//!
//! A reload ([`crate::Proxy::reconfigure_gateways`]) swaps a listener's stack in place
//! ([`running`]), keeping the routes that did not change.
//!
//! ```text
//!   listener → Validate → Router ─┬─ route A: Auth → Cache → Shed → RateLimit → Forward → upstream A
//!                                 └─ route B: Auth → Cache → Shed → RateLimit → Forward → upstream B
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tower_service::Service;

pub mod apikeys;
pub mod auth;
pub mod cache;
pub mod jwt;
pub mod running;
pub mod validate;

use crate::l7::layers::BoxFuture;
use crate::l7::{local, ProxyBody, Stack};

use crate::upstream::Upstream;
use crate::UpstreamSpec;

/// One route: which requests, and the upstream that serves them.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    /// Lowercase host to match (`api.example.com`, `*.example.com`); `None`: any host.
    pub host: Option<String>,
    pub path_prefix: String,
    /// Require an API key from the entries under this KV prefix ([`apikeys`]).
    pub api_keys_prefix: Option<String>,
    /// Require (or, with API keys too, accept) a JWT verified with these keys ([`jwt`]).
    pub jwt: Option<jwt::JwtConfig>,
    /// Cache shareable `GET` answers ([`cache`]).
    pub cache: Option<cache::CacheConfig>,
    /// The route's upstream (its `bind` is unused: the gateway's listener serves it).
    pub upstream: UpstreamSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GatewaySpec {
    pub name: String,
    pub bind: SocketAddr,
    pub validation: validate::Validation,
    pub routes: Vec<RouteSpec>,
}

/// A route's full stack.
pub type RouteStack = auth::Auth<cache::Cache<Stack>>;

struct Route {
    host: Option<String>,
    prefix: String,
    stack: RouteStack,
}

/// Picks a route per request and hands the request to its stack.
#[derive(Clone)]
pub struct Router {
    routes: Arc<Vec<Route>>,
    name: Arc<str>,
}

impl Router {
    pub fn new(name: &str, routes: Vec<(RouteSpec, Arc<Upstream>, RouteStack)>) -> Router {
        let routes = routes
            .into_iter()
            .map(|(spec, _, stack)| Route {
                host: spec.host.map(|h| h.to_ascii_lowercase()),
                prefix: spec.path_prefix,
                stack,
            })
            .collect();
        Router {
            routes: Arc::new(routes),
            name: name.into(),
        }
    }

    fn pick(&self, host: Option<&str>, path: &str) -> Option<usize> {
        select(
            self.routes
                .iter()
                .map(|r| (r.host.as_deref(), r.prefix.as_str())),
            host,
            path,
        )
    }
}

/// The index of the best route among `(host, prefix)` pairs for a request.
pub fn select<'a>(
    routes: impl Iterator<Item = (Option<&'a str>, &'a str)>,
    host: Option<&str>,
    path: &str,
) -> Option<usize> {
    let host = host.map(|h| {
        // Strip a port (but not from a bracketed IPv6 literal's inside).
        let h = match h.rsplit_once(':') {
            Some((name, port))
                if !name.ends_with(']')
                    && !name.contains(':')
                    && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            Some((name, port))
                if name.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => h,
        };
        h.to_ascii_lowercase()
    });
    let host_matches = |pattern: Option<&str>| match (pattern, host.as_deref()) {
        (None, _) => true,
        (Some(p), Some(h)) => match p.strip_prefix("*.") {
            Some(suffix) => {
                h.len() > suffix.len() + 1
                    && h.ends_with(suffix)
                    && h.as_bytes()[h.len() - suffix.len() - 1] == b'.'
            }
            None => p == h,
        },
        (Some(_), None) => false,
    };
    routes
        .enumerate()
        .filter(|(_, (h, prefix))| host_matches(*h) && path.starts_with(prefix))
        .max_by_key(|(i, (h, prefix))| (prefix.len(), h.is_some(), usize::MAX - i))
        .map(|(i, _)| i)
}

impl Service<Request<Incoming>> for Router {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ProxyBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .map(str::to_string);
        match self.pick(host.as_deref(), req.uri().path()) {
            Some(i) => {
                let mut stack = self.routes[i].stack.clone();
                Box::pin(stack.call(req))
            }
            None => {
                tracing::info!(target: "lotse_proxy::access", gateway = %self.name, host = %host.unwrap_or_default(), path = %req.uri().path(), status = 404, "access");
                Box::pin(async { Ok(local(StatusCode::NOT_FOUND, "no-route")) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(
        routes: &[(Option<&'static str>, &'static str)],
        host: Option<&str>,
        path: &str,
    ) -> Option<usize> {
        select(routes.iter().copied(), host, path)
    }

    #[test]
    fn longest_prefix_wins() {
        let r = [(None, "/"), (None, "/api/"), (None, "/api/v2/")];
        assert_eq!(pick(&r, None, "/api/v2/users"), Some(2));
        assert_eq!(pick(&r, None, "/api/v1"), Some(1));
        assert_eq!(pick(&r, None, "/index.html"), Some(0));
    }

    #[test]
    fn hosts_exact_wildcard_and_any() {
        let r = [
            (Some("api.example.com"), "/"),
            (Some("*.example.com"), "/"),
            (None, "/static/"),
        ];
        assert_eq!(pick(&r, Some("API.example.com:8080"), "/x"), Some(0));
        assert_eq!(pick(&r, Some("www.example.com"), "/x"), Some(1));
        assert_eq!(pick(&r, Some("example.com"), "/x"), None);
        assert_eq!(pick(&r, Some("other.org"), "/static/a.css"), Some(2));
        // A longer prefix beats a host match; at equal prefixes a host match beats none.
        assert_eq!(pick(&r, Some("api.example.com"), "/static/a.css"), Some(2));
        let tie = [(None, "/"), (Some("a.b"), "/")];
        assert_eq!(pick(&tie, Some("a.b"), "/"), Some(1));
        assert_eq!(pick(&r, None, "/x"), None);
    }
}
