//! Request validation at the edge, before routing: allowed methods (405 with `Allow`), a bound
//! on the total size of the headers (431) and on a declared body size (413). Bodies without a
//! `Content-Length` are still bounded by the route's `max_request_body_bytes` when buffered.

use std::convert::Infallible;
use std::task::{Context, Poll};

pub use http::Method;
use http::{HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::l7::layers::BoxFuture;
use crate::l7::{local, ProxyBody};

/// The rules; `None` or empty: no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validation {
    pub allowed_methods: Vec<Method>,
    pub max_header_bytes: Option<usize>,
    pub max_body_bytes: Option<u64>,
}

impl Validation {
    /// The refusal for a request, if any.
    pub fn check<B>(&self, req: &Request<B>) -> Option<Response<ProxyBody>> {
        if !self.allowed_methods.is_empty() && !self.allowed_methods.contains(req.method()) {
            let mut r = local(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
            let allow: Vec<&str> = self.allowed_methods.iter().map(Method::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            return Some(r);
        }
        if let Some(max) = self.max_header_bytes {
            let size: usize = req
                .headers()
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum();
            if size > max {
                return Some(local(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "headers-too-large",
                ));
            }
        }
        if let Some(max) = self.max_body_bytes {
            let declared = req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Some(local(StatusCode::PAYLOAD_TOO_LARGE, "request-too-large"));
            }
        }
        None
    }
}

#[derive(Clone)]
pub struct ValidateLayer {
    rules: std::sync::Arc<Validation>,
}

impl ValidateLayer {
    pub fn new(rules: Validation) -> Self {
        ValidateLayer {
            rules: std::sync::Arc::new(rules),
        }
    }
}

impl<S> Layer<S> for ValidateLayer {
    type Service = Validate<S>;
    fn layer(&self, inner: S) -> Validate<S> {
        Validate {
            inner,
            rules: self.rules.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Validate<S> {
    inner: S,
    rules: std::sync::Arc<Validation>,
}

impl<S, B> Service<Request<B>> for Validate<S>
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
        if let Some(refusal) = self.rules.check(&req) {
            tracing::info!(target: "lotse_proxy::access", method = %req.method(), path = %req.uri().path(), status = refusal.status().as_u16(), "access");
            return Box::pin(async move { Ok(refusal) });
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, headers: &[(&str, &str)]) -> Request<()> {
        let mut r = Request::new(());
        *r.method_mut() = method;
        for (k, v) in headers {
            r.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        r
    }

    #[test]
    fn refuses_methods_headers_and_bodies() {
        let v = Validation {
            allowed_methods: vec![Method::GET, Method::POST],
            max_header_bytes: Some(64),
            max_body_bytes: Some(10),
        };
        assert!(v.check(&req(Method::GET, &[])).is_none());
        let r = v.check(&req(Method::DELETE, &[])).expect("405");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()["allow"], "GET, POST");
        let big = "x".repeat(100);
        let r = v.check(&req(Method::GET, &[("x-big", &big)])).expect("431");
        assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let r = v
            .check(&req(Method::POST, &[("content-length", "11")]))
            .expect("413");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(v
            .check(&req(Method::POST, &[("content-length", "10")]))
            .is_none());
    }
}
