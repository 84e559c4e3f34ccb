//! Stream idle timeouts (Envoy's `stream_idle_timeout`): a body that moves no frame for the
//! configured time ends with an error, which makes hyper abort the stream (HTTP/1.1: close the
//! connection; HTTP/2: reset the stream) and drop the permits the body holds. The same clock
//! watches upgraded connections ([`Activity`]).
//!
//! The timer is not reset per frame: a frame only records when it passed, and the sleep, when
//! it fires, re-arms itself at `last activity + timeout` if something moved in between. A busy
//! stream therefore costs one clock read per frame, not a timer-wheel update.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::body::BoxError;
use crate::upstream::Upstream;

/// The error a body ends with when it stalled.
#[derive(Debug, thiserror::Error)]
#[error("stream idle for {0:?}")]
pub struct StreamIdle(pub Duration);

/// Wraps a body with an idle timeout; `None` passes everything through.
pub struct IdleTimeout<B> {
    inner: B,
    timeout: Option<Duration>,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    fired: bool,
    /// Counted and logged against this upstream when the timeout fires.
    upstream: Option<Arc<Upstream>>,
    what: &'static str,
}

impl<B> IdleTimeout<B> {
    pub fn new(
        inner: B,
        timeout: Option<Duration>,
        upstream: Option<Arc<Upstream>>,
        what: &'static str,
    ) -> Self {
        IdleTimeout {
            inner,
            timeout,
            last: Instant::now(),
            sleep: None,
            fired: false,
            upstream,
            what,
        }
    }

    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.fired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if this.timeout.is_some() {
                this.last = Instant::now();
            }
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let Some(timeout) = this.timeout else {
            return Poll::Pending;
        };
        let last = this.last;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last + timeout)));
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = this.last + timeout;
            if Instant::now() >= deadline {
                this.fired = true;
                if let Some(up) = &this.upstream {
                    up.metrics.timeouts.fetch_add(1, Relaxed);
                    tracing::info!(upstream = %up.name, body = this.what, idle_ms = timeout.as_millis() as u64, "stream idle timeout");
                }
                return Poll::Ready(Some(Err(Box::new(StreamIdle(timeout)))));
            }
            sleep.as_mut().reset(deadline);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.fired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// When an upgraded connection last moved bytes, shared by its two directions.
#[derive(Debug)]
pub struct Activity {
    base: Instant,
    /// Milliseconds since `base`.
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    pub fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Relaxed))
    }

    /// Resolves once nothing has moved for `timeout` (never, for `None`).
    pub async fn idle(&self, timeout: Option<Duration>) {
        let Some(timeout) = timeout else {
            return std::future::pending().await;
        };
        loop {
            let deadline = self.last() + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use std::convert::Infallible;

    /// A body whose frames arrive through a channel, so a test decides when bytes move.
    struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
        }
    }

    fn channel_body() -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        (tx, ChannelBody(rx))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_ends_with_an_error_and_a_moving_one_does_not() {
        let (tx, body) = channel_body();
        let mut b = IdleTimeout::new(body, Some(Duration::from_secs(5)), None, "test");
        // Frames every 4 s keep it alive past the 5 s timeout.
        for i in 0..3u8 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            tx.send(Bytes::from(vec![i])).await.expect("send");
            let f = b.frame().await.expect("frame").expect("data");
            assert_eq!(f.into_data().expect("data"), Bytes::from(vec![i]));
        }
        let start = Instant::now();
        let err = b.frame().await.expect("a frame").expect_err("idle");
        assert!(err.is::<StreamIdle>(), "{err}");
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(b.frame().await.is_none());
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn no_timeout_waits_for_ever() {
        let (tx, body) = channel_body();
        let mut b = IdleTimeout::new(body, None, None, "test");
        let waited = tokio::time::timeout(Duration::from_secs(3600), b.frame()).await;
        assert!(waited.is_err());
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn activity_resolves_after_quiet_time() {
        let a = Activity::new();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        a.touch();
        a.idle(Some(Duration::from_secs(5))).await;
        assert_eq!(start.elapsed(), Duration::from_secs(8));
    }
}
