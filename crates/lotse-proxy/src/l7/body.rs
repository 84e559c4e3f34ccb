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

/// A body that keeps `guard` alive until it is finished or dropped.
pub struct Guarded<B> {
    inner: B,
    _guard: Box<dyn Send>,
}

impl<B> Guarded<B> {
    pub fn new(inner: B, guard: impl Send + 'static) -> Self {
        Guarded {
            inner,
            _guard: Box::new(guard),
        }
    }
}

/// Wraps a response's body so `guard` lives as long as it.
pub fn guard(resp: Response<ProxyBody>, guard: impl Send + 'static) -> Response<ProxyBody> {
    resp.map(|b| Guarded::new(b, guard).boxed_unsync())
}

impl<B> Body for Guarded<B>
where
    B: Body + Unpin,
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
