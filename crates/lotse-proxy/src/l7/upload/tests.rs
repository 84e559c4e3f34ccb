use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

use super::{AttemptBodyError, ClientFailure, Upload};

/// A client body: given frames, then the end, an error, or a stall.
struct Client {
    frames: VecDeque<Frame<Bytes>>,
    then: Then,
}

#[derive(Clone, Copy)]
enum Then {
    End,
    Fail,
    Stall,
}

#[derive(Debug, thiserror::Error)]
#[error("client reset")]
struct Reset;

impl Body for Client {
    type Data = Bytes;
    type Error = Reset;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Reset>>> {
        match (self.frames.pop_front(), self.then) {
            (Some(f), _) => Poll::Ready(Some(Ok(f))),
            (None, Then::End) => Poll::Ready(None),
            (None, Then::Fail) => Poll::Ready(Some(Err(Reset))),
            (None, Then::Stall) => Poll::Pending,
        }
    }
}

fn client(parts: &[&'static [u8]], then: Then) -> Client {
    Client {
        frames: parts
            .iter()
            .map(|p| Frame::data(Bytes::from_static(p)))
            .collect(),
        then,
    }
}

async fn all<B: Body<Data = Bytes> + Unpin>(b: B) -> Result<Vec<u8>, B::Error> {
    Ok(b.collect().await?.to_bytes().to_vec())
}

#[tokio::test]
async fn a_body_within_the_limit_is_replayed_whole() {
    let up = Upload::new(client(&[b"ab", b"cd"], Then::End), 10, None, None);
    assert_eq!(all(up.body()).await.expect("first"), b"abcd");
    assert!(up.can_resend() && !up.is_streamed());
    assert_eq!(all(up.body()).await.expect("again"), b"abcd");
    tokio::time::timeout(Duration::from_secs(1), up.sent())
        .await
        .expect("sent");
}

#[tokio::test]
async fn a_body_over_the_limit_is_sent_once() {
    let up = Upload::new(client(&[b"abcd", b"efgh", b"ij"], Then::End), 6, None, None);
    // An attempt that never polled its body (a refused connection) costs nothing.
    drop(up.body());
    assert!(up.can_resend());
    assert_eq!(all(up.body()).await.expect("whole"), b"abcdefghij");
    assert!(up.is_streamed() && !up.can_resend());
    let err = all(up.body()).await.expect_err("not kept");
    assert!(matches!(
        err.downcast_ref::<AttemptBodyError>(),
        Some(AttemptBodyError::NotKept)
    ));
}

#[tokio::test]
async fn a_new_attempt_takes_over_where_the_last_stopped() {
    let up = Upload::new(client(&[b"ab", b"cd", b"ef"], Then::End), 100, None, None);
    let mut first = up.body();
    let f = first.frame().await.expect("frame").expect("data");
    assert_eq!(f.into_data().expect("data"), "ab");
    let second = up.body();
    let err = first.frame().await.expect("frame").expect_err("superseded");
    assert!(matches!(
        err.downcast_ref::<AttemptBodyError>(),
        Some(AttemptBodyError::Superseded)
    ));
    // "ab" replayed from the copy, the rest pulled from the client.
    assert_eq!(all(second).await.expect("whole"), b"abcdef");
}

#[tokio::test]
async fn frames_flow_before_the_body_ends() {
    // The client sends one frame and waits (a gRPC client stream): it goes out at once.
    let up = Upload::new(client(&[b"hello"], Then::Stall), 100, None, None);
    let mut b = up.body();
    let f = tokio::time::timeout(Duration::from_secs(1), b.frame())
        .await
        .expect("not held back")
        .expect("frame")
        .expect("data");
    assert_eq!(f.into_data().expect("data"), "hello");
}

#[tokio::test]
async fn a_broken_client_body_is_the_clients_failure() {
    let up = Upload::new(client(&[b"ab"], Then::Fail), 100, None, None);
    assert!(all(up.body()).await.is_err());
    assert_eq!(up.client_failure(), Some(ClientFailure::Broken));
    assert!(!up.can_resend());
}

#[tokio::test(start_paused = true)]
async fn a_stalled_client_body_times_out() {
    let idle = Some(Duration::from_secs(5));
    let up = Upload::new(client(&[b"ab"], Then::Stall), 100, None, idle);
    assert!(all(up.body()).await.is_err());
    assert_eq!(up.client_failure(), Some(ClientFailure::Idle));
}

#[tokio::test]
async fn trailers_are_sent_and_replayed() {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", "0".parse().expect("value"));
    let mut c = client(&[b"ab"], Then::End);
    c.frames.push_back(Frame::trailers(t.clone()));
    let up = Upload::new(c, 100, Some(2), None);
    assert_eq!(up.body().size_hint().exact(), Some(2));
    for _ in 0..2 {
        let got = up.body().collect().await.expect("body");
        assert_eq!(got.trailers(), Some(&t));
        assert_eq!(&got.to_bytes()[..], b"ab");
    }
}
