//! The admin endpoint (Envoy's admin port, 127.0.0.1:19000 by default):
//!
//! * `GET /stats/prometheus` and `GET /metrics`: every upstream's metrics, Prometheus text.
//! * `GET /upstreams` (also `/clusters?format=json`): upstreams, their endpoints and state
//!   (healthy/ejected, requests in flight, failures), discovery status and the config version.
//! * `GET /ready`: `LIVE` (the proxy's own health, for a check registered with the agent).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics;
use crate::upstream::Upstream;

/// What the admin endpoint shows; replaced in place when the proxy is reconfigured.
pub struct AdminState {
    pub proxy_id: String,
    pub config_version: AtomicU64,
    pub upstreams: Mutex<Vec<Arc<Upstream>>>,
}

impl AdminState {
    fn current(&self) -> Vec<Arc<Upstream>> {
        self.upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn prometheus(&self) -> String {
        let upstreams = self.current();
        let counts: Vec<(usize, usize)> = upstreams.iter().map(|u| u.sample_counts()).collect();
        let samples: Vec<metrics::Sample<'_>> = upstreams
            .iter()
            .zip(counts)
            .map(|(u, c)| u.sample(c))
            .collect();
        metrics::render(&samples)
    }

    pub fn listing(&self) -> serde_json::Value {
        serde_json::json!({
            "proxy_id": self.proxy_id,
            "config_version": self.config_version.load(Ordering::Relaxed),
            "upstreams": self.current().iter().map(|u| u.status()).collect::<Vec<_>>(),
        })
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

fn route(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != http::Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/stats/prometheus" | "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.prometheus(),
        ),
        "/upstreams" | "/clusters" => {
            let body =
                serde_json::to_string_pretty(&state.listing()).unwrap_or_else(|_| "{}".into());
            reply(StatusCode::OK, "application/json", body)
        }
        "/ready" => reply(StatusCode::OK, "text/plain", "LIVE\n".into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "admin endpoints: /stats/prometheus /metrics /upstreams /ready\n".into(),
        ),
    }
}

pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = route(&state, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
