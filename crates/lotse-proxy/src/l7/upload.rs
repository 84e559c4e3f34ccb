//! The request body on its way upstream: streamed at once, with a copy kept for retries.
//!
//! Every body streams to the endpoint as the client sends it (no waiting for the end: a gRPC
//! client stream or a large upload starts moving at once). The frames pulled from the client
//! are also kept, up to `max_request_body_bytes` in all, so another attempt can replay them
//! and then go on pulling from the client where the last attempt stopped (Envoy's retry
//! buffer). Once a body outgrows the limit the copy is dropped and the request cannot be sent
//! again ([`Upload::can_resend`]): it goes to one endpoint, except after a failure that
//! consumed nothing (a refused connection).
//!
//! One attempt at a time owns the client's body: starting an attempt supersedes the previous
//! one, whose body then ends in an error (hyper may still be polling it on a connection that
//! answered early). The client's body is watched for stalls (`stream_idle_timeout_ms`), and a
//! failure on the client's side is remembered ([`Upload::client_failure`]) so it is answered
//! 400/408 and not blamed on the endpoint.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;

use super::body::BoxError;
use super::idle::{IdleTimeout, StreamIdle};

/// What went wrong on the client's side of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFailure {
    /// The client's body broke off (reset, malformed chunking).
    Broken,
    /// The client sent nothing for `stream_idle_timeout_ms`.
    Idle,
}

struct Shared<B> {
    source: IdleTimeout<B>,
    /// Data frames pulled from the client so far.
    pulled: usize,
    /// Copies of them while `replayable`.
    kept: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    /// False once a pulled frame was not kept: the body cannot be sent again.
    replayable: bool,
    trailers: Option<HeaderMap>,
    source_done: bool,
    failure: Option<ClientFailure>,
    /// The attempt that owns the body now.
    epoch: u64,
    /// Turns true once the client's body has been read to its end.
    done: watch::Sender<bool>,
}

/// A request's body, shared by its attempts.
pub struct Upload<B> {
    /// `None` for a request without a body (most of them): nothing to share, keep or watch.
    shared: Option<Arc<Mutex<Shared<B>>>>,
    /// The client's `Content-Length`, if it sent one.
    length: Option<u64>,
    done: Option<watch::Receiver<bool>>,
}

impl<B> Upload<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Wraps the client's body; `limit` bounds the copy kept for retries, `idle` the time the
    /// client may send nothing.
    pub fn new(body: B, limit: usize, length: Option<u64>, idle: Option<Duration>) -> Self {
        if body.is_end_stream() {
            return Upload {
                shared: None,
                length,
                done: None,
            };
        }
        let (done, done_rx) = watch::channel(false);
        Upload {
            shared: Some(Arc::new(Mutex::new(Shared {
                source: IdleTimeout::new(body, idle, None, "request"),
                pulled: 0,
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                replayable: true,
                trailers: None,
                source_done: false,
                failure: None,
                epoch: 0,
                done,
            }))),
            length,
            done: Some(done_rx),
        }
    }

    fn lock(&self) -> Option<MutexGuard<'_, Shared<B>>> {
        let shared = self.shared.as_ref()?;
        Some(shared.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether another attempt could send the whole body again.
    pub fn can_resend(&self) -> bool {
        self.lock()
            .is_none_or(|s| s.replayable && s.failure.is_none())
    }

    /// Whether the body outgrew the retry copy.
    pub fn is_streamed(&self) -> bool {
        self.lock().is_some_and(|s| !s.replayable)
    }

    /// Set when the client's side of the body failed.
    pub fn client_failure(&self) -> Option<ClientFailure> {
        self.lock()?.failure
    }

    /// Resolves once the client's body has been read to its end (never, if it never ends).
    pub async fn sent(&self) {
        if let Some(done) = &self.done {
            let mut done = done.clone();
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// The body for a new attempt, which supersedes the previous one's.
    pub fn body(&self) -> AttemptBody<B> {
        let epoch = self.lock().map_or(0, |mut s| {
            s.epoch += 1;
            s.epoch
        });
        AttemptBody {
            shared: self.shared.clone(),
            epoch,
            pos: 0,
            trailers_sent: false,
            length: self.length,
        }
    }
}

/// One attempt's view of the body: the kept frames first, then the client's (none at all
/// without `shared`).
pub struct AttemptBody<B> {
    shared: Option<Arc<Mutex<Shared<B>>>>,
    epoch: u64,
    /// Data frames this attempt has sent.
    pos: usize,
    trailers_sent: bool,
    length: Option<u64>,
}

/// The body error of an attempt that lost the body to a later one, or that needed frames no
/// longer kept.
#[derive(Debug, thiserror::Error)]
pub enum AttemptBodyError {
    #[error("request body taken over by a later attempt")]
    Superseded,
    #[error("request body already sent and not kept (over max_request_body_bytes)")]
    NotKept,
    #[error("client request body: {0}")]
    Client(#[source] BoxError),
}

impl<B> Body for AttemptBody<B>
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
        let Some(shared) = &this.shared else {
            return Poll::Ready(None);
        };
        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        if s.epoch != this.epoch {
            return Poll::Ready(Some(Err(Box::new(AttemptBodyError::Superseded))));
        }
        if this.pos < s.pulled {
            if !s.replayable {
                return Poll::Ready(Some(Err(Box::new(AttemptBodyError::NotKept))));
            }
            let frame = s.kept[this.pos].clone();
            this.pos += 1;
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        if s.source_done {
            if let (Some(t), false) = (&s.trailers, this.trailers_sent) {
                this.trailers_sent = true;
                return Poll::Ready(Some(Ok(Frame::trailers(t.clone()))));
            }
            return Poll::Ready(None);
        }
        match Pin::new(&mut s.source).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                s.source_done = true;
                s.done.send_replace(true);
                match (&s.trailers, this.trailers_sent) {
                    (Some(t), false) => {
                        this.trailers_sent = true;
                        Poll::Ready(Some(Ok(Frame::trailers(t.clone()))))
                    }
                    _ => Poll::Ready(None),
                }
            }
            Poll::Ready(Some(Err(e))) => {
                s.failure = Some(if e.is::<StreamIdle>() {
                    ClientFailure::Idle
                } else {
                    ClientFailure::Broken
                });
                Poll::Ready(Some(Err(Box::new(AttemptBodyError::Client(e)))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        s.pulled += 1;
                        this.pos += 1;
                        if s.replayable && s.kept_bytes + data.len() <= s.limit {
                            s.kept_bytes += data.len();
                            s.kept.push(data.clone());
                        } else if s.replayable {
                            s.replayable = false;
                            s.kept = Vec::new();
                            s.kept_bytes = 0;
                        }
                        Frame::data(data)
                    }
                    Err(frame) => {
                        if let Some(t) = frame.trailers_ref() {
                            s.trailers = Some(t.clone());
                            this.trailers_sent = true;
                        }
                        frame
                    }
                };
                // Trailers end a body; and hyper may stop polling once `is_end_stream` says
                // so: note the end now.
                if s.trailers.is_some() || s.source.is_end_stream() {
                    s.source_done = true;
                    s.done.send_replace(true);
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let s = shared.lock().unwrap_or_else(|p| p.into_inner());
        s.epoch == self.epoch
            && s.source_done
            && self.pos >= s.pulled
            && (s.trailers.is_none() || self.trailers_sent)
    }

    fn size_hint(&self) -> SizeHint {
        // Read before the first frame, to choose Content-Length over chunked framing.
        match self.length {
            Some(n) if self.pos == 0 => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
