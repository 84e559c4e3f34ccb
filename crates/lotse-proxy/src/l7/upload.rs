//! The request body on its way upstream.
//!
//! A body that fits in `max_request_body_bytes` is buffered ([`Upload::Buffered`]) so a retry
//! can send it again. A larger one (by `Content-Length`, or found out while reading) is
//! streamed ([`Upload::Streamed`]): what was read so far, then the rest of the client's body,
//! to one endpoint. A streamed body is kept in a shared slot until an attempt first polls it;
//! an attempt that fails before sending a byte (a refused connection: hyper never polls the
//! body) leaves it in the slot, so that case can still be retried. Once taken it is gone, and
//! [`Upload::can_resend`] says so.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::body::BoxError;
use super::idle::IdleTimeout;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::sync::watch;

/// What is left of a streamed body: the frames read while deciding, then the rest.
pub struct Pending<B> {
    prefix: VecDeque<Bytes>,
    rest: B,
    /// Turns true once the body has been read to its end (dropped: the attempt gave up).
    done: watch::Sender<bool>,
}

impl<B: Body> Pending<B> {
    fn check_end(&self) -> bool {
        let end = self.prefix.is_empty() && self.rest.is_end_stream();
        if end {
            self.done.send_replace(true);
        }
        end
    }
}

type Slot<B> = Arc<Mutex<Option<Pending<B>>>>;

pub enum Upload<B> {
    Buffered(Bytes),
    Streamed {
        slot: Slot<B>,
        /// The client's `Content-Length`, if it sent one.
        length: Option<u64>,
        done: watch::Receiver<bool>,
    },
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("request body: {0}")]
pub struct ReadError(#[source] pub BoxError);

impl<B> Upload<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Reads `body` into memory while it fits in `limit` bytes; streams it otherwise.
    /// `length` is the client's `Content-Length`.
    pub async fn read(mut body: B, limit: usize, length: Option<u64>) -> Result<Self, ReadError> {
        if body.is_end_stream() {
            return Ok(Upload::Buffered(Bytes::new()));
        }
        let streamed = |prefix, rest| {
            let (done, done_rx) = watch::channel(false);
            Upload::Streamed {
                slot: Arc::new(Mutex::new(Some(Pending { prefix, rest, done }))),
                length,
                done: done_rx,
            }
        };
        if length.is_some_and(|n| n > limit as u64) {
            return Ok(streamed(VecDeque::new(), body));
        }
        let mut chunks: VecDeque<Bytes> = VecDeque::new();
        let mut size = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError(e.into()))?;
            // Request trailers are dropped for a buffered body (as before buffering existed:
            // HTTP/1.1 clients rarely send them, and a retry could not replay them anyway).
            let Ok(data) = frame.into_data() else {
                continue;
            };
            size += data.len();
            chunks.push_back(data);
            if size > limit {
                return Ok(streamed(chunks, body));
            }
        }
        Ok(Upload::Buffered(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop_front().unwrap_or_default(),
            _ => {
                let mut all = Vec::with_capacity(size);
                for c in chunks {
                    all.extend_from_slice(&c);
                }
                Bytes::from(all)
            }
        }))
    }

    /// Whether another attempt could send the body again.
    pub fn can_resend(&self) -> bool {
        match self {
            Upload::Buffered(_) => true,
            Upload::Streamed { slot, .. } => {
                slot.lock().unwrap_or_else(|p| p.into_inner()).is_some()
            }
        }
    }

    /// Resolves once the body has been sent whole (at once for a buffered one), or the
    /// attempt that took it has gone.
    pub async fn sent(&self) {
        if let Upload::Streamed { done, .. } = self {
            let mut done = done.clone();
            let _ = done.wait_for(|d| *d).await;
        }
    }

    pub fn is_streamed(&self) -> bool {
        matches!(self, Upload::Streamed { .. })
    }

    /// The body for one attempt.
    pub fn body(&self, idle: Option<std::time::Duration>) -> ReqBody<B> {
        match self {
            Upload::Buffered(b) => ReqBody::Full(Full::new(b.clone())),
            Upload::Streamed { slot, length, .. } => ReqBody::Stream(IdleTimeout::new(
                Streamed {
                    slot: slot.clone(),
                    taken: None,
                    length: *length,
                },
                idle,
                None,
                "request",
            )),
        }
    }
}

/// One attempt's view of a streamed body: takes it from the slot on first poll.
pub struct Streamed<B> {
    slot: Slot<B>,
    taken: Option<Pending<B>>,
    length: Option<u64>,
}

/// The error of an attempt that found the body already sent by an earlier one (never
/// expected: [`Upload::can_resend`] is checked before retrying).
#[derive(Debug, thiserror::Error)]
#[error("request body already sent")]
pub struct AlreadySent;

impl<B> Body for Streamed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.taken.is_none() {
            this.taken = this.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if this.taken.is_none() {
                return Poll::Ready(Some(Err(Box::new(AlreadySent))));
            }
        }
        let Some(p) = this.taken.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(chunk) = p.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        let polled = Pin::new(&mut p.rest).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            p.done.send_replace(true);
        } else {
            // hyper may stop polling once `is_end_stream` says so; note the end either way.
            p.check_end();
        }
        polled.map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.taken.as_ref().is_some_and(|p| p.check_end())
    }

    fn size_hint(&self) -> SizeHint {
        // Read before the first frame, to choose Content-Length over chunked framing.
        match (self.length, &self.taken) {
            (Some(n), None) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// The request body type of the upstream client.
pub enum ReqBody<B> {
    Full(Full<Bytes>),
    Stream(IdleTimeout<Streamed<B>>),
}

impl<B> Body for ReqBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ReqBody::Full(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|never| match never {}))),
            ReqBody::Stream(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Full(b) => b.is_end_stream(),
            ReqBody::Stream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Full(b) => b.size_hint(),
            ReqBody::Stream(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of given frames, then (if `stall`) one that never comes.
    struct Frames {
        frames: VecDeque<Bytes>,
        stall: bool,
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.frames.pop_front() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None if self.stall => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    fn frames(parts: &[&'static [u8]]) -> Frames {
        Frames {
            frames: parts.iter().map(|p| Bytes::from_static(p)).collect(),
            stall: false,
        }
    }

    #[tokio::test]
    async fn small_bodies_are_buffered_and_resendable() {
        let up = Upload::read(frames(&[b"ab", b"cd"]), 10, None)
            .await
            .expect("read");
        assert!(!up.is_streamed());
        assert!(up.can_resend());
        for _ in 0..2 {
            let body = up.body(None).collect().await.expect("body").to_bytes();
            assert_eq!(&body[..], b"abcd");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_streams_once_with_what_was_read_first() {
        let up = Upload::read(frames(&[b"abcd", b"efgh", b"ij"]), 6, None)
            .await
            .expect("read");
        assert!(up.is_streamed());
        // An attempt that never polled its body (a refused connection) leaves it for the next.
        drop(up.body(None));
        assert!(up.can_resend());
        let body = up.body(None).collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"abcdefghij");
        assert!(!up.can_resend());
        tokio::time::timeout(std::time::Duration::from_secs(5), up.sent())
            .await
            .expect("sent whole");
        let err = up.body(None).collect().await.expect_err("gone");
        assert!(err.is::<AlreadySent>(), "{err}");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_streams_without_reading() {
        // The body stalls after its first frame: reading it would hang; declaring it must not.
        let body = Frames {
            frames: [Bytes::from_static(b"x")].into(),
            stall: true,
        };
        let up = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            Upload::read(body, 4, Some(100)),
        )
        .await
        .expect("no read")
        .expect("ok");
        assert!(up.is_streamed());
        assert_eq!(up.body(None).size_hint().exact(), Some(100));
    }
}
