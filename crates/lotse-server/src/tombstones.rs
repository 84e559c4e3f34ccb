//! Tombstone reaping. A deleted key leaves a tombstone so that the index of a query on it (or on
//! a prefix above it) moves on delete. Kept forever they would grow without bound; like Consul
//! (`tombstone_ttl`, 15 minutes by default) the leader forgets them once they are old enough
//! that no reasonable blocking query still waits on them.
//!
//! Tombstones carry log indexes, not times, so the leader remembers which index was current
//! when, and reaps up to the index that was current a TTL ago. The command carries only that
//! index: every server forgets the same tombstones.

use std::collections::VecDeque;
use std::time::Duration;

use lotse_core::Command;
use tokio::time::Instant;

use crate::Server;

/// Consul's default `tombstone_ttl`.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);
/// How often the leader notes the current index.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

/// The leader's memory of which index was current when.
#[derive(Default)]
pub(crate) struct Reaper {
    checkpoints: VecDeque<(Instant, u64)>,
    reaped_up_to: u64,
}

impl Reaper {
    /// Forgets what an earlier term noted: a new leader starts counting afresh, which can only
    /// delay reaping.
    pub(crate) fn reset(&mut self) {
        self.checkpoints.clear();
    }

    /// Notes the current index and returns the index to reap up to, if a reap is due.
    pub(crate) fn tick(&mut self, now: Instant, current: u64, ttl: Duration) -> Option<u64> {
        let due_checkpoint = self
            .checkpoints
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= CHECKPOINT_EVERY);
        if due_checkpoint {
            self.checkpoints.push_back((now, current));
        }
        let mut target = None;
        while let Some((t, idx)) = self.checkpoints.front().copied() {
            if now.duration_since(t) < ttl {
                break;
            }
            target = Some(idx);
            self.checkpoints.pop_front();
        }
        let target = target.filter(|t| *t > self.reaped_up_to)?;
        self.reaped_up_to = target;
        Some(target)
    }
}

impl Server {
    /// Reaps old tombstones if any are due (leader only).
    pub(crate) async fn reap_tombstones(&self, reaper: &mut Reaper) {
        let current = self.peek(|s| s.last_index());
        let Some(up_to) = reaper.tick(Instant::now(), current, TOMBSTONE_TTL) else {
            return;
        };
        // An idle store must not grow a log entry every round for nothing.
        if !self.peek(|s| s.has_tombstones_up_to(up_to)) {
            return;
        }
        if let Err(e) = self
            .leader_write(Command::TombstoneReap { up_to_index: up_to })
            .await
        {
            tracing::warn!(error = %e, "cannot reap tombstones");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaps_only_what_was_current_a_ttl_ago() {
        let ttl = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut r = Reaper::default();
        assert_eq!(r.tick(t0, 10, ttl), None);
        assert_eq!(r.tick(t0 + Duration::from_secs(30), 20, ttl), None);
        assert_eq!(r.tick(t0 + Duration::from_secs(59), 25, ttl), None);
        assert_eq!(r.tick(t0 + Duration::from_secs(61), 30, ttl), Some(10));
        assert_eq!(r.tick(t0 + Duration::from_secs(91), 40, ttl), Some(20));
        // Nothing new became old enough: no reap.
        assert_eq!(r.tick(t0 + Duration::from_secs(95), 41, ttl), None);
    }

    #[test]
    fn a_new_term_starts_counting_afresh() {
        let ttl = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut r = Reaper::default();
        r.tick(t0, 10, ttl);
        r.reset();
        assert_eq!(r.tick(t0 + Duration::from_secs(61), 30, ttl), None);
    }
}
