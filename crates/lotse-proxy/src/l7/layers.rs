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

use super::body::{local, ProxyBody};
use super::ClientConn;
use crate::breaker::GatePermit;
use crate::ratelimit::Limited;
use crate::upstream::Upstream;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The future of a layer that either answers at once or passes the request on: no box of its
/// own (the inner service's future is already one), so admitting a request allocates nothing.
pub enum Answer<F> {
    /// Answered here (429, 503) without calling the inner service.
    Now(Option<Response<ProxyBody>>),
    /// The inner service's answer; `permit`, if any, is then held by its body.
    Inner { fut: F, permit: Option<GatePermit> },
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<Response<ProxyBody>, Infallible>> + Unpin,
{
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Answer::Now(resp) => match resp.take() {
                Some(r) => Poll::Ready(Ok(r)),
                // Polled after it completed, which hyper never does.
                None => Poll::Pending,
            },
            Answer::Inner { fut, permit } => {
                let Poll::Ready(result) = Pin::new(fut).poll(cx) else {
                    return Poll::Pending;
                };
                let Ok(mut resp) = result;
                if let Some(p) = permit.take() {
                    resp.body_mut().hold(p);
                }
                // Done: the inner future is never polled again.
                *self = Answer::Now(None);
                Poll::Ready(Ok(resp))
            }
        }
    }
}

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
    S::Future: Send + Unpin + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(permit) = self.up.shed.try_enter() else {
            self.up.metrics.shed.fetch_add(1, Relaxed);
            self.up.metrics.response(503);
            tracing::debug!(upstream = %self.up.name, "request shed");
            return Answer::Now(Some(local(StatusCode::SERVICE_UNAVAILABLE, "shed")));
        };
        Answer::Inner {
            fut: self.inner.call(req),
            permit: Some(permit),
        }
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
    S::Future: Send + Unpin + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let pass = |inner: &mut S, req| Answer::Inner {
            fut: inner.call(req),
            permit: None,
        };
        if !self.up.limiter.is_limited() {
            return pass(&mut self.inner, req);
        }
        let client = req
            .extensions()
            .get::<ClientConn>()
            .map(|c| c.addr.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if let Err(which) = self.up.limiter.check(client, self.up.clock.now()) {
            self.up.metrics.rate_limited.fetch_add(1, Relaxed);
            self.up.metrics.response(429);
            let reason = match which {
                Limited::Client => "rate-limited-client",
                Limited::Route => "rate-limited",
            };
            tracing::debug!(upstream = %self.up.name, client = %client, reason, "request rate limited");
            return Answer::Now(Some(local(StatusCode::TOO_MANY_REQUESTS, reason)));
        }
        pass(&mut self.inner, req)
    }
}
