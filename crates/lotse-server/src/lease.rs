//! The leader's lease, measured so that a stalled Raft core cannot make it look fresh.
//!
//! openraft reports `millis_since_quorum_ack` as the age it computed when it last published
//! its metrics, not at the time of reading: while its core is stalled (a slow fsync, a starved
//! runtime) the published value stays small and a lease computed from it would stay fresh
//! while the followers, hearing nothing, elect someone else. So a task stamps each published
//! value with the time it was seen, and the lease adds the time since.

use std::sync::Mutex;
use std::time::Instant;

use lotse_consensus::LotseRaft;

/// The last published quorum-ack age and when it was seen.
#[derive(Default)]
pub(crate) struct LeaseClock {
    seen: Mutex<Option<(u64, Instant)>>,
}

impl LeaseClock {
    /// Watches `raft`'s metrics until they close (the node shut down).
    pub(crate) fn spawn_watch(self: &std::sync::Arc<Self>, raft: &LotseRaft) {
        let clock = std::sync::Arc::downgrade(self);
        let mut metrics = raft.metrics();
        tokio::spawn(async move {
            loop {
                let ms = metrics.borrow_and_update().millis_since_quorum_ack;
                let Some(clock) = clock.upgrade() else { return };
                if let Ok(mut seen) = clock.seen.lock() {
                    *seen = ms.map(|ms| (ms, Instant::now()));
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
