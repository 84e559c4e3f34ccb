//! Coalescing leadership confirmations for `consistent` reads (as etcd batches read
//! indexes): one quorum round serves every read that arrived before it started.
//!
//! A read may only be answered by a round that *started after the read arrived*: a round
//! already in flight could have been acknowledged by a quorum before a write the reader
//! already saw. So each read waits for the next round to start and finish; while a round
//! runs, everything that arrives joins the following one. Under load there are at most two
//! rounds per round trip instead of one per read.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::ServerError;

/// One confirmation round (a quorum heartbeat and the wait for the leader's apply).
pub(crate) type Confirm =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), ServerError>> + Send>> + Send + Sync>;

/// Where the rounds are.
struct Rounds {
    /// Rounds started so far (the number of the newest).
    started: u64,
    /// A round is running.
    in_flight: bool,
    /// Someone arrived while it ran: start another when it ends.
    wanted: bool,
}

/// See the module docs.
pub(crate) struct ReadBarrier {
    rounds: Mutex<Rounds>,
    /// The newest finished round and its outcome.
    done: watch::Sender<(u64, Result<(), ServerError>)>,
    confirm: Confirm,
}

impl ReadBarrier {
    pub(crate) fn new(confirm: Confirm) -> Arc<ReadBarrier> {
        Arc::new(ReadBarrier {
            rounds: Mutex::new(Rounds {
                started: 0,
                in_flight: false,
                wanted: false,
            }),
            done: watch::channel((0, Ok(()))).0,
            confirm,
        })
    }

    /// Waits for a confirmation round that started after this call and returns its outcome.
    /// Rounds run on a task of their own, so a reader that goes away stops nobody else's.
    pub(crate) async fn confirm(self: &Arc<Self>) -> Result<(), ServerError> {
        let mut done = self.done.subscribe();
        let mine = {
            let mut r = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
            if r.in_flight {
                r.wanted = true;
                r.started + 1
            } else {
                r.in_flight = true;
                r.started += 1;
                tokio::spawn(self.clone().run_from(r.started));
                r.started
            }
        };
        loop {
            {
                let (finished, outcome) = &*done.borrow_and_update();
                if *finished >= mine {
                    return outcome.clone();
                }
            }
            if done.changed().await.is_err() {
                return Err(ServerError::ShuttingDown);
            }
        }
    }

    /// Runs round `first` and, while readers keep arriving, the rounds after it.
    async fn run_from(self: Arc<Self>, first: u64) {
        let mut round = first;
        loop {
            let outcome = (self.confirm)().await;
            // The previous round's value is replaced, not read.
            let _previous = self.done.send_replace((round, outcome));
            let mut r = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
            if r.wanted {
                r.wanted = false;
                r.started += 1;
                round = r.started;
            } else {
                r.in_flight = false;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    fn counting(rounds: Arc<AtomicU64>, each: Duration) -> Confirm {
        Box::new(move || {
            let rounds = rounds.clone();
            Box::pin(async move {
                rounds.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(each).await;
                Ok(())
            })
        })
    }

    #[tokio::test]
    async fn concurrent_reads_share_rounds() {
        let rounds = Arc::new(AtomicU64::new(0));
        let barrier = ReadBarrier::new(counting(rounds.clone(), Duration::from_millis(20)));
        barrier.confirm().await.expect("confirmed");
        assert_eq!(rounds.load(Ordering::SeqCst), 1);
        // 50 readers at once: the first starts a round, the rest share the next one.
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let b = barrier.clone();
            readers.spawn(async move { b.confirm().await });
        }
        while let Some(r) = readers.join_next().await {
            assert!(r.expect("joined").is_ok());
        }
        let total = rounds.load(Ordering::SeqCst);
        assert!((2..=3).contains(&total), "{total} rounds for 51 reads");
    }

    #[tokio::test]
    async fn a_reader_never_uses_a_round_that_started_before_it() {
        let started = Arc::new(AtomicU64::new(0));
        let (release_tx, release_rx) = watch::channel(0u64);
        let confirm: Confirm = {
            let started = started.clone();
            Box::new(move || {
                let n = started.fetch_add(1, Ordering::SeqCst) + 1;
                let mut rx = release_rx.clone();
                Box::pin(async move {
                    let _ = rx.wait_for(|r| *r >= n).await;
                    Ok(())
                })
            })
        };
        let barrier = ReadBarrier::new(confirm);
        let first = {
            let b = barrier.clone();
            tokio::spawn(async move { b.confirm().await })
        };
        while started.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // Arrives while round 1 runs: must wait for round 2.
        let second = {
            let b = barrier.clone();
            tokio::spawn(async move { b.confirm().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        release_tx.send_replace(1);
        first.await.expect("joined").expect("round 1");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !second.is_finished(),
            "answered by a round that began before it"
        );
        assert_eq!(started.load(Ordering::SeqCst), 2);
        release_tx.send_replace(2);
        second.await.expect("joined").expect("round 2");
    }

    #[tokio::test]
    async fn a_failed_round_fails_its_readers_and_a_dropped_reader_stops_nobody() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let confirm: Confirm = {
            let fail = fail.clone();
            Box::new(move || {
                let failing = fail.load(Ordering::SeqCst);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    if failing {
                        Err(ServerError::NoLeader)
                    } else {
                        Ok(())
                    }
                })
            })
        };
        let barrier = ReadBarrier::new(confirm);
        assert_eq!(barrier.confirm().await, Err(ServerError::NoLeader));
        fail.store(false, Ordering::SeqCst);
        // A reader that gives up mid-round does not stop the round for the next one.
        let gave_up = tokio::time::timeout(Duration::from_millis(1), barrier.confirm()).await;
        assert!(gave_up.is_err());
        assert!(barrier.confirm().await.is_ok());
    }
}
