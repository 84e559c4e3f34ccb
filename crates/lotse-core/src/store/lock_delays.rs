//! Lock-delay deadlines, in the leader's milliseconds, per key, with the order in which they
//! run out: dropping the expired ones (every session invalidation does) then costs what
//! expired, not a scan of every delay. A mass expiry (the leader's TTL timers firing together,
//! a node failing with many sessions) destroys thousands of sessions in one batch.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::journal::{Journal, JournaledMap};

/// Serialised exactly as the map of deadlines by key.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct LockDelays {
    until: JournaledMap<String, u64>,
    /// Derived: (deadline, key), earliest first.
    #[serde(skip)]
    by_deadline: BTreeSet<(u64, String)>,
}

fn reindex(
    by_deadline: &mut BTreeSet<(u64, String)>,
    key: &str,
    was: Option<u64>,
    now: Option<u64>,
) {
    if let Some(w) = was {
        by_deadline.remove(&(w, key.to_string()));
    }
    if let Some(n) = now {
        by_deadline.insert((n, key.to_string()));
    }
}

impl LockDelays {
    /// Is `key` inside a lock-delay at `now_ms`?
    pub(crate) fn delays(&self, key: &str, now_ms: u64) -> bool {
        self.until.get(key).is_some_and(|until| now_ms < *until)
    }

    /// `key` may not be locked before `until`.
    pub(crate) fn start(&mut self, key: &str, until: u64) {
        let was = self.until.insert(key.to_string(), until);
        reindex(&mut self.by_deadline, key, was, Some(until));
    }

    /// Forgets every delay over at `now_ms`.
    pub(crate) fn expire(&mut self, now_ms: u64) {
        while let Some((until, key)) = self.by_deadline.first().cloned() {
            if until > now_ms {
                break;
            }
            self.by_deadline.pop_first();
            self.until.remove(&key);
        }
    }

    /// Drops the order, as decoding an image leaves it.
    #[cfg(test)]
    pub(crate) fn forget_order(&mut self) {
        self.by_deadline.clear();
    }

    /// Recomputes the order after loading a snapshot.
    pub(crate) fn rebuild(&mut self) {
        self.by_deadline = self.until.iter().map(|(k, u)| (*u, k.clone())).collect();
    }

    pub(crate) fn begin(&mut self) {
        self.until.begin();
    }

    pub(crate) fn commit(&mut self) {
        self.until.commit();
    }

    /// Undoes every change since [`LockDelays::begin`], the order included.
    pub(crate) fn rollback(&mut self) {
        let LockDelays { until, by_deadline } = self;
        until.rollback(|key, was, now| reindex(by_deadline, key, was.copied(), now.copied()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_drops_what_ran_out_and_rollback_restores_it() {
        let mut d = LockDelays::default();
        d.start("a", 10);
        d.start("b", 20);
        d.start("a", 30);
        let before = d.clone();
        d.begin();
        d.expire(20);
        assert!(!d.delays("b", 15) && d.delays("a", 25));
        d.start("c", 40);
        d.rollback();
        assert_eq!(d, before);
        assert!(d.delays("b", 15));
        let mut restored = before.clone();
        restored.forget_order();
        restored.rebuild();
        assert_eq!(restored, before);
    }
}
