//! Outlier detection (passive health checking): an endpoint that fails `max_failures` times in
//! a row (5xx answers, or gateway failures: refused or reset connections, timeouts) is ejected
//! for `base_ejection_time × times ejected` (capped at `max_ejection_time`), then readmitted.
//!
//! Never more than `max_ejection_percent` of the endpoints are ejected at once, but at least one
//! may be when the percentage is above 0 (Envoy's rule; with 3 endpoints and the default 10%, one
//! can still be ejected). Each `interval` of good behaviour after a readmission forgives one step
//! of the multiplier. All decisions take `now` as an argument: the caller owns the clock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::OutlierConfig;

/// What one attempt against an endpoint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A 5xx answer or a gateway failure.
    Failure,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    pub consecutive_failures: u32,
    pub times_ejected: u32,
    #[serde(skip)]
    pub ejected_until: Option<Duration>,
    #[serde(skip)]
    forgiven_at: Duration,
}

/// The per-endpoint failure state of one upstream.
#[derive(Debug, Clone)]
pub struct Detector {
    cfg: OutlierConfig,
    health: HashMap<SocketAddr, Health>,
}

impl Detector {
    pub fn new(cfg: OutlierConfig) -> Self {
        Detector {
            cfg,
            health: HashMap::new(),
        }
    }

    /// Whether `addr` is ejected at `now`; readmits it (and returns false) once its time is up.
    pub fn is_ejected(&mut self, addr: SocketAddr, now: Duration) -> bool {
        let Some(h) = self.health.get_mut(&addr) else {
            return false;
        };
        match h.ejected_until {
            Some(until) if now < until => true,
            Some(until) => {
                h.ejected_until = None;
                h.consecutive_failures = 0;
                h.forgiven_at = until;
                tracing::info!(endpoint = %addr, "endpoint readmitted");
                false
            }
            None => false,
        }
    }

    /// Records an attempt's outcome; returns the ejection time if this ejected the endpoint.
    /// `live` is the current endpoint set (for the percentage cap).
    pub fn report(
        &mut self,
        addr: SocketAddr,
        outcome: Outcome,
        now: Duration,
        live: &[SocketAddr],
    ) -> Option<Duration> {
        let ejected_now = self.ejected_among(live, now);
        let cfg = &self.cfg;
        let h = self.health.entry(addr).or_default();
        match outcome {
            Outcome::Success => {
                h.consecutive_failures = 0;
                if h.times_ejected > 0
                    && h.ejected_until.is_none()
                    && now >= h.forgiven_at + cfg.interval
                {
                    h.times_ejected -= 1;
                    h.forgiven_at = now;
                }
                None
            }
            Outcome::Failure => {
                if h.ejected_until.is_some_and(|u| now < u) {
                    return None;
                }
                h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                if cfg.max_failures == 0 || h.consecutive_failures < cfg.max_failures {
                    return None;
                }
                if cfg.max_ejection_percent == 0 {
                    return None;
                }
                let cap = (live.len() * cfg.max_ejection_percent as usize / 100).max(1);
                if ejected_now >= cap {
                    return None;
                }
                h.times_ejected = h.times_ejected.saturating_add(1);
                let for_ = cfg
                    .base_ejection_time
                    .saturating_mul(h.times_ejected)
                    .min(cfg.max_ejection_time.max(cfg.base_ejection_time));
                h.ejected_until = Some(now + for_);
                h.consecutive_failures = 0;
                Some(for_)
            }
        }
    }

    fn ejected_among(&self, live: &[SocketAddr], now: Duration) -> usize {
        live.iter()
            .filter(|a| {
                self.health
                    .get(a)
                    .and_then(|h| h.ejected_until)
                    .is_some_and(|u| now < u)
            })
            .count()
    }

    /// The state of `addr`, and how long it stays ejected (for the admin listing).
    pub fn state(&self, addr: SocketAddr, now: Duration) -> (Health, Option<Duration>) {
        let h = self.health.get(&addr).cloned().unwrap_or_default();
        let left = h.ejected_until.filter(|u| now < *u).map(|u| u - now);
        (h, left)
    }

    /// Forgets endpoints that left the set.
    pub fn retain(&mut self, live: &[SocketAddr]) {
        self.health.retain(|a, _| live.contains(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 9000 + i)))
            .collect()
    }

    fn detector(max_failures: u32, pct: u32) -> Detector {
        let mut cfg = UpstreamConfig::default().outlier;
        cfg.max_failures = max_failures;
        cfg.max_ejection_percent = pct;
        cfg.base_ejection_time = Duration::from_secs(30);
        Detector::new(cfg)
    }

    #[test]
    fn consecutive_failures_eject_then_readmit() {
        let live = addrs(3);
        let mut d = detector(3, 50);
        let t = Duration::from_secs(1);
        assert_eq!(d.report(live[0], Outcome::Failure, t, &live), None);
        assert_eq!(d.report(live[0], Outcome::Failure, t, &live), None);
        assert_eq!(
            d.report(live[0], Outcome::Failure, t, &live),
            Some(Duration::from_secs(30))
        );
        assert!(d.is_ejected(live[0], t + Duration::from_secs(29)));
        assert!(!d.is_ejected(live[0], t + Duration::from_secs(30)));
        assert!(!d.is_ejected(live[1], t));
    }

    #[test]
    fn a_success_resets_the_count() {
        let live = addrs(3);
        let mut d = detector(2, 50);
        let t = Duration::ZERO;
        d.report(live[0], Outcome::Failure, t, &live);
        d.report(live[0], Outcome::Success, t, &live);
        assert_eq!(d.report(live[0], Outcome::Failure, t, &live), None);
    }

    #[test]
    fn ejection_time_grows_with_times_ejected() {
        let live = addrs(3);
        let mut d = detector(1, 50);
        let mut t = Duration::ZERO;
        assert_eq!(
            d.report(live[0], Outcome::Failure, t, &live),
            Some(Duration::from_secs(30))
        );
        t += Duration::from_secs(30);
        assert!(!d.is_ejected(live[0], t));
        assert_eq!(
            d.report(live[0], Outcome::Failure, t, &live),
            Some(Duration::from_secs(60))
        );
        t += Duration::from_secs(60);
        assert!(!d.is_ejected(live[0], t));
        // Good behaviour for an interval forgives one step.
        t += Duration::from_secs(10);
        d.report(live[0], Outcome::Success, t, &live);
        assert_eq!(d.state(live[0], t).0.times_ejected, 1);
    }

    #[test]
    fn never_more_than_max_ejection_percent() {
        let live = addrs(4);
        let mut d = detector(1, 50);
        let t = Duration::ZERO;
        assert!(d.report(live[0], Outcome::Failure, t, &live).is_some());
        assert!(d.report(live[1], Outcome::Failure, t, &live).is_some());
        // 2 of 4 ejected = 50%: the third stays in.
        assert_eq!(d.report(live[2], Outcome::Failure, t, &live), None);
        assert!(!d.is_ejected(live[2], t));
    }

    #[test]
    fn at_least_one_unless_disabled() {
        let live = addrs(3);
        let mut d = detector(1, 10);
        assert!(d
            .report(live[0], Outcome::Failure, Duration::ZERO, &live)
            .is_some());
        assert_eq!(
            d.report(live[1], Outcome::Failure, Duration::ZERO, &live),
            None
        );
        let mut off = detector(1, 0);
        assert_eq!(
            off.report(live[0], Outcome::Failure, Duration::ZERO, &live),
            None
        );
    }
}
