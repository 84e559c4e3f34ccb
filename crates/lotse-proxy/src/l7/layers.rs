//! The outer tower layers of the L7 stack: load shedding and rate limiting. Both answer at once
//! (503, 429) rather than queue; both are cheap enough to run before anything else.
//!
//! The services are always ready (`poll_ready` is `Ready`): admission is decided per request in
//! `call`, which is what lets an overloaded proxy answer fast instead of applying backpressure
//! to the accept loop.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::body::{guard, local, ProxyBody};
use super::ClientAddr;
use crate::ratelimit::Limited;
use crate::upstream::Upstream;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Load shedding: at most `load_shed.max_in_flight` requests in flight on the listener.
#[derive(Clone)]
pub struct ShedLayer {
    up: Arc<Upstream>,
}

impl ShedLayer {
    pub fn new(up: Arc<Upstream>) -> Self {
        ShedLayer { up }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;
    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            up: self.up.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    up: Arc<Upstream>,
}

impl<S, B> Service<Request<B>> for Shed<S>
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
        let Some(permit) = self.up.shed.try_enter() else {
            self.up.metrics.shed.fetch_add(1, Relaxed);
            self.up.metrics.response(503);
            tracing::debug!(upstream = %self.up.name, "request shed");
            return Box::pin(async { Ok(local(StatusCode::SERVICE_UNAVAILABLE, "shed")) });
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(guard(resp, permit))
        })
    }
}

/// Rate limiting: the client's token bucket, then the route's.
#[derive(Clone)]
pub struct RateLimitLayer {
    up: Arc<Upstream>,
}

impl RateLimitLayer {
    pub fn new(up: Arc<Upstream>) -> Self {
        RateLimitLayer { up }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            up: self.up.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    up: Arc<Upstream>,
}

impl<S, B> Service<Request<B>> for RateLimit<S>
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
        let client = req
            .extensions()
            .get::<ClientAddr>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if let Err(which) = self.up.limiter.check(client, self.up.clock.now()) {
            self.up.metrics.rate_limited.fetch_add(1, Relaxed);
            self.up.metrics.response(429);
            let reason = match which {
                Limited::Client => "rate-limited-client",
                Limited::Route => "rate-limited",
            };
            tracing::debug!(upstream = %self.up.name, client = %client, reason, "request rate limited");
            return Box::pin(async move { Ok(local(StatusCode::TOO_MANY_REQUESTS, reason)) });
        }
        Box::pin(self.inner.call(req))
    }
}
