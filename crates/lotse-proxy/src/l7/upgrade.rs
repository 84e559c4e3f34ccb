//! HTTP/1.1 upgrades (WebSocket and any other `Upgrade:` protocol) through the L7 path.
//!
//! The request goes through the whole stack like any other (shedding, rate limits, breakers,
//! balancing, retries on connect failure), with `Connection: upgrade` and `Upgrade` kept
//! (they are hop-by-hop and stripped otherwise). When the endpoint answers
//! `101 Switching Protocols`, the proxy answers 101 too, and once both sides have switched
//! (hyper's upgrade on the listener's connection and on the client's) it splices bytes both
//! ways until either side closes or nothing moves for `stream_idle_timeout`. An upgraded
//! connection keeps its request permit (the breaker on concurrent requests) and its
//! endpoint's in-flight count while open, as Envoy counts an upgraded stream as active.
//!
//! Upgrades need HTTP/1.1 on both sides: an `http2`/`grpc` upstream gets the request without
//! the upgrade headers (the endpoint answers it as a plain request).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::idle::Activity;
use crate::upstream::Upstream;

/// The `Upgrade` value of a request that asks for one (HTTP/1.1, `Connection: upgrade`).
pub fn requested(version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
    if version != Version::HTTP_11 {
        return None;
    }
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    headers.get(UPGRADE).cloned()
}

/// Puts the upgrade headers back after the hop-by-hop ones were stripped.
pub fn restore(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
}

/// Waits for both sides to switch, then splices until one closes or the stream idles.
/// `guard` (the request permit and the in-flight count) lives as long as the splice.
pub async fn splice(
    downstream: OnUpgrade,
    upstream: OnUpgrade,
    up: Arc<Upstream>,
    guard: impl Send + 'static,
) {
    let _guard = guard;
    let start = Instant::now();
    let (down, upc) = match tokio::join!(downstream, upstream) {
        (Ok(d), Ok(u)) => (d, u),
        (d, u) => {
            let error = d.err().or(u.err()).map(|e| e.to_string());
            tracing::debug!(upstream = %up.name, error = ?error, "upgrade did not complete");
            return;
        }
    };
    up.metrics
        .upgrades
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut upc = TokioIo::new(upc);
    let (result, idled) =
        splice_until_idle(TokioIo::new(down), &mut upc, up.cfg.stream_idle_timeout).await;
    if idled {
        up.metrics
            .timeouts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let (sent, received) = result.as_ref().copied().unwrap_or((0, 0));
    tracing::info!(
        target: "lotse_proxy::access",
        upstream = %up.name,
        upgraded = true,
        bytes_sent = sent,
        bytes_received = received,
        idle_timeout = idled,
        error = %result.err().map(|e| e.to_string()).unwrap_or_default(),
        duration_ms = start.elapsed().as_secs_f64() * 1000.0,
        "upgrade closed"
    );
}

/// Copies both ways between `down` and `up` until either side closes, or until nothing has
/// moved either way for `idle` (then `true`: the connection idled out and is dropped).
/// Shared by upgraded HTTP connections and the L4 (TCP) listener.
pub(crate) async fn splice_until_idle<D, U>(
    down: D,
    up: &mut U,
    idle: Option<std::time::Duration>,
) -> (io::Result<(u64, u64)>, bool)
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::new();
    let mut down = Touching {
        io: down,
        activity: activity.clone(),
    };
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut down, up) => (r, false),
        _ = activity.idle(idle) => (Ok((0, 0)), true),
    }
}

/// The downstream side of a splice, recording activity on every read and write (both
/// directions pass through it).
struct Touching<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Touching<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if r.is_ready() {
            self.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Touching<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if r.is_ready() {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn an_upgrade_needs_http11_connection_upgrade_and_a_protocol() {
        let ws = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(
            requested(Version::HTTP_11, &ws),
            Some(HeaderValue::from_static("websocket"))
        );
        assert_eq!(requested(Version::HTTP_2, &ws), None);
        assert_eq!(
            requested(Version::HTTP_11, &headers(&[("upgrade", "websocket")])),
            None
        );
        assert_eq!(
            requested(Version::HTTP_11, &headers(&[("connection", "upgrade")])),
            None
        );
    }
}
