//! Response bodies: what the proxy streams back (an upstream's body, or its own short answer),
//! and the permits each holds until it is done.
//!
//! [`ProxyBody`] is an enum, not a boxed trait object: a forwarded response (nearly every one)
//! takes one allocation for its body and permits together (a boxed body in a boxed guard took
//! two) and no dynamic dispatch. That one box keeps a `Response` small (160 bytes, not 280):
//! a response is moved a dozen times on its way out through the layers and hyper. Only a body
//! asked to hold a second layer's permit is boxed again (the `Boxed` case).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
use hyper::body::Incoming;

use super::idle::IdleTimeout;
use crate::breaker::GatePermit;
use crate::upstream::InFlight;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a forwarded response's body holds until it ends: the endpoint's in-flight mark and
/// the upstream's concurrency permit.
pub type Forwarded = (InFlight, GatePermit);

/// A response body as the proxy sends it.
pub struct ProxyBody {
    kind: Kind,
    /// An outer layer's permit (the listener's load-shedding gate), held until the body ends.
    held: Option<GatePermit>,
}

enum Kind {
    /// An upstream's body, cut if it stalls, holding its permits.
    Upstream(Box<UpstreamBody>),
    /// The whole body at once (the proxy's own answers, cache hits); `None` once sent.
    Full(Option<Bytes>),
    /// A body wrapped to hold a second layer's permit ([`ProxyBody::hold`]).
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

struct UpstreamBody {
    body: IdleTimeout<Incoming>,
    _permits: Forwarded,
}

impl ProxyBody {
    /// An upstream's body; `permits` are released when it ends or is dropped.
    pub fn upstream(body: IdleTimeout<Incoming>, permits: Forwarded) -> Self {
        Self::of(Kind::Upstream(Box::new(UpstreamBody {
            body,
            _permits: permits,
        })))
    }

    /// A body of `bytes`, sent as one frame (none if empty).
    pub fn full(bytes: Bytes) -> Self {
        Self::of(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    pub fn empty() -> Self {
        Self::of(Kind::Full(None))
    }

    fn of(kind: Kind) -> Self {
        ProxyBody { kind, held: None }
    }

    /// Keeps `permit` until this body ends or is dropped.
    pub fn hold(&mut self, permit: GatePermit) {
        if self.held.is_none() {
            self.held = Some(permit);
            return;
        }
        // A second layer's permit (not a stack Lotse builds today): wrap, and hold it there.
        let inner = std::mem::replace(self, ProxyBody::empty());
        *self = ProxyBody {
            kind: Kind::Boxed(inner.boxed_unsync()),
            held: Some(permit),
        };
    }
}

/// A response the proxy makes itself (429, 503, ...): a one-line text body, and
/// `x-lotse-proxy` naming why, so a client (and a test) can tell it from the upstream's.
pub fn local(status: StatusCode, reason: &'static str) -> Response<ProxyBody> {
    let mut line = String::with_capacity(reason.len() + 1);
    line.push_str(reason);
    line.push('\n');
    let mut r = Response::new(ProxyBody::full(Bytes::from(line)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert("x-lotse-proxy", http::HeaderValue::from_static(reason));
    r
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Upstream(up) => Pin::new(&mut up.body).poll_frame(cx),
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream(up) => up.body.is_end_stream(),
            Kind::Full(data) => data.is_none(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream(up) => up.body.size_hint(),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::Gate;

    #[test]
    fn a_response_stays_small() {
        // It is moved a dozen times per request: a body held inline made it 280 bytes.
        assert!(std::mem::size_of::<Response<ProxyBody>>() <= 160);
    }

    #[tokio::test]
    async fn a_full_body_is_one_frame_and_an_empty_one_none() {
        let body = ProxyBody::full(Bytes::from_static(b"abc"));
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(!body.is_end_stream());
        let got = body.collect().await.expect("collect").to_bytes();
        assert_eq!(got, Bytes::from_static(b"abc"));
        let empty = ProxyBody::full(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn held_permits_last_until_the_body_is_dropped() {
        let gate = Gate::new(2);
        let mut body = ProxyBody::full(Bytes::from_static(b"x"));
        body.hold(gate.try_enter().expect("first permit"));
        // A second permit wraps the body; both stay taken.
        body.hold(gate.try_enter().expect("second permit"));
        assert!(gate.try_enter().is_none(), "both permits are held");
        let got = (&mut body).collect().await.expect("collect").to_bytes();
        assert_eq!(got, Bytes::from_static(b"x"));
        assert!(
            gate.try_enter().is_none(),
            "a finished body still holds until dropped"
        );
        drop(body);
        assert!(gate.try_enter().is_some());
    }
}
