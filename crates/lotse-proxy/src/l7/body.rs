//! Response bodies: what the proxy streams back (an upstream's body, or its own short answer),
//! and [`Guarded`], which holds permits until the body is done.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A response the proxy makes itself (429, 503, ...): a one-line text body, and
/// `x-lotse-proxy` naming why, so a client (and a test) can tell it from the upstream's.
pub fn local(status: StatusCode, reason: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{reason}\n")))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert("x-lotse-proxy", http::HeaderValue::from_static(reason));
    r
}

/// A body that keeps `guard` alive until it is finished or dropped. The guard is held by
/// value, not boxed: every response carries one or two.
pub struct Guarded<B, G> {
    inner: B,
    _guard: G,
}

impl<B, G> Guarded<B, G> {
    pub fn new(inner: B, guard: G) -> Self {
        Guarded {
            inner,
            _guard: guard,
        }
    }
}

/// Wraps a response's body so `guard` lives as long as it, and boxes the two at once (one
/// allocation: a body need not be boxed before it is guarded).
pub fn guard<B>(resp: Response<B>, guard: impl Send + Unpin + 'static) -> Response<ProxyBody>
where
    B: Body<Data = Bytes, Error = BoxError> + Send + Unpin + 'static,
{
    resp.map(|b| Guarded::new(b, guard).boxed_unsync())
}

impl<B, G> Body for Guarded<B, G>
where
    B: Body + Unpin,
    G: Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
