//! The leader's lease, measured so that a stalled Raft core cannot make it look fresh.
//!
//! openraft reports `millis_since_quorum_ack` as the age it computed when it last published
//! its metrics, not at the time of reading: while its core is stalled (a slow fsync, a starved
//! runtime) the published value stays small and a lease computed from it would stay fresh
//! while the followers, hearing nothing, elect someone else. So a task stamps each published
//! value with a time, and the lease adds the time since.
//!
//! The stamp is when the task last looked *before* this value, not when it saw it: the value
//! was published somewhere in between, and the task itself can be late. A process stopped
//! (`SIGSTOP`) right after openraft published, and resumed seconds later, would otherwise
//! stamp that old value with the time of its resumption and serve a `default` read from a
//! lease long gone, after another leader took writes (a Jepsen-style run found exactly that).
//! The price: the lease looks older by at most the gap between two publications.

use std::sync::Mutex;
use std::time::Instant;

use lotse_consensus::openraft::RaftMetrics;
use lotse_consensus::{LotseRaft, NodeId};

type Metrics =
    tokio::sync::watch::Receiver<RaftMetrics<NodeId, lotse_consensus::openraft::BasicNode>>;

/// The last published quorum-ack age and when it was seen.
#[derive(Default)]
pub(crate) struct LeaseClock {
    seen: Mutex<Option<(u64, Instant)>>,
}

impl LeaseClock {
    /// Watches `raft`'s metrics until they close (the node shut down).
    pub(crate) fn spawn_watch(self: &std::sync::Arc<Self>, raft: &LotseRaft) {
        self.spawn_watch_metrics(raft.metrics());
    }

    fn spawn_watch_metrics(self: &std::sync::Arc<Self>, mut metrics: Metrics) {
        let clock = std::sync::Arc::downgrade(self);
        // Every value seen was published after the previous look.
        let mut looked = Instant::now();
        tokio::spawn(async move {
            loop {
                let ms = metrics.borrow_and_update().millis_since_quorum_ack;
                let published_after = std::mem::replace(&mut looked, Instant::now());
                let Some(clock) = clock.upgrade() else { return };
                if let Ok(mut seen) = clock.seen.lock() {
                    *seen = ms.map(|ms| (ms, published_after));
                }
                drop(clock);
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// Milliseconds since a quorum last acknowledged this leader, at least; `None` if unknown.
    pub(crate) fn quorum_ack_age_ms(&self) -> Option<u64> {
        let seen = *self.seen.lock().ok()?;
        seen.map(|(ms, at)| ms.saturating_add(at.elapsed().as_millis() as u64))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use lotse_consensus::openraft::RaftMetrics;

    use super::LeaseClock;

    fn acked_ms_ago(ms: u64) -> RaftMetrics<u64, lotse_consensus::openraft::BasicNode> {
        let mut m = RaftMetrics::new_initial(1);
        m.millis_since_quorum_ack = Some(ms);
        m
    }

    /// The process stalls between openraft publishing a fresh ack and the watcher seeing it
    /// (as under SIGSTOP): the lease must count the stall, not start afresh when it ends.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stall_between_publication_and_observation_ages_the_lease() {
        let (tx, rx) = tokio::sync::watch::channel(acked_ms_ago(5));
        let clock = Arc::new(LeaseClock::default());
        clock.spawn_watch_metrics(rx);
        tokio::task::yield_now().await;
        let fresh = clock.quorum_ack_age_ms().expect("a first look");
        assert!(fresh < 100, "{fresh}");

        tx.send_replace(acked_ms_ago(3));
        // Stopped before the watcher runs: the runtime's only thread sleeps.
        std::thread::sleep(Duration::from_millis(400));
        tokio::task::yield_now().await;
        let age = clock.quorum_ack_age_ms().expect("a second look");
        assert!(age >= 400, "a lease that slept 400 ms looks {age} ms old");
    }
}
