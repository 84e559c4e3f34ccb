//! The retry budget: retries may add at most `percent`% of the requests of the last
//! [`WINDOW_SECS`] seconds, plus `min_per_second` every second (Finagle's and Linkerd's rule).
//!
//! Why a budget and not only a retry count: when every endpoint is failing, per-request retries
//! multiply the load by `1 + num_retries` exactly when the upstream can least take it; a budget
//! caps the extra load at a fixed share, while a single bad endpoint (a small share of
//! requests failing) is still retried around in full.

use std::time::Duration;

use crate::config::RetryConfig;

pub const WINDOW_SECS: u64 = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    second: u64,
    requests: u64,
    retries: u64,
}

/// Counts of requests and retries in one-second slots over a sliding window.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    ratio: f64,
    min_per_second: u64,
    slots: [Slot; WINDOW_SECS as usize],
}

impl RetryBudget {
    pub fn new(cfg: &RetryConfig) -> Self {
        RetryBudget {
            ratio: (cfg.budget_percent / 100.0).max(0.0),
            min_per_second: u64::from(cfg.budget_min_per_second),
            slots: [Slot::default(); WINDOW_SECS as usize],
        }
    }

    fn slot(&mut self, now: Duration) -> &mut Slot {
        let second = now.as_secs();
        let slot = &mut self.slots[(second % WINDOW_SECS) as usize];
        if slot.second != second {
            *slot = Slot {
                second,
                ..Slot::default()
            };
        }
        slot
    }

    fn totals(&self, now: Duration) -> (u64, u64) {
        let second = now.as_secs();
        self.slots
            .iter()
            .filter(|s| s.second + WINDOW_SECS > second && s.second <= second)
            .fold((0, 0), |(q, r), s| (q + s.requests, r + s.retries))
    }

    /// Counts one original request (not its retries).
    pub fn record_request(&mut self, now: Duration) {
        self.slot(now).requests += 1;
    }

    /// Takes a retry from the budget; `false` when it is spent (the caller gives up).
    pub fn try_retry(&mut self, now: Duration) -> bool {
        let (requests, retries) = self.totals(now);
        let allowed = self.min_per_second * WINDOW_SECS + (self.ratio * requests as f64) as u64;
        if retries < allowed {
            self.slot(now).retries += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    fn budget(percent: f64, min: u32) -> RetryBudget {
        let mut cfg = UpstreamConfig::default().retries;
        cfg.budget_percent = percent;
        cfg.budget_min_per_second = min;
        RetryBudget::new(&cfg)
    }

    #[test]
    fn retries_bounded_by_share_of_requests() {
        let mut b = budget(20.0, 0);
        let now = Duration::from_secs(100);
        for _ in 0..100 {
            b.record_request(now);
        }
        let granted = (0..100).filter(|_| b.try_retry(now)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn minimum_per_second_without_traffic() {
        let mut b = budget(20.0, 3);
        let now = Duration::from_secs(5);
        let granted = (0..100).filter(|_| b.try_retry(now)).count();
        assert_eq!(granted, 3 * WINDOW_SECS as usize);
    }

    #[test]
    fn window_slides() {
        let mut b = budget(50.0, 0);
        let t0 = Duration::from_secs(10);
        for _ in 0..10 {
            b.record_request(t0);
        }
        assert_eq!((0..10).filter(|_| b.try_retry(t0)).count(), 5);
        // Ten seconds on, those requests and retries have left the window.
        let t1 = t0 + Duration::from_secs(WINDOW_SECS);
        assert!(!b.try_retry(t1));
        for _ in 0..4 {
            b.record_request(t1);
        }
        assert_eq!((0..10).filter(|_| b.try_retry(t1)).count(), 2);
    }
}
