//! Outlier detection (passive health checking): an endpoint that fails `max_failures` times in
//! a row (5xx answers, or gateway failures: refused or reset connections, timeouts) is ejected
//! for `base_ejection_time × times ejected` (capped at `max_ejection_time`), then readmitted.
//!
//! Never more than `max_ejection_percent` of the endpoints are ejected at once, but at least one
//! may be when the percentage is above 0 (Envoy's rule; with 3 endpoints and the default 10%, one
//! can still be ejected). Each `interval` of good behaviour after a readmission forgives one step
//! of the multiplier. All decisions take `now` as an argument: the caller owns the clock.
//!
//! With `success_rate` configured, [`Detector::evaluate`] also ejects, once per `interval`,
//! the endpoints whose success rate stands out below the others' ([`success_rate`]), under
//! the same cap and with the same growing ejection time.

pub mod success_rate;

use foldhash::HashMap;
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
    /// Outcomes in the current success-rate interval.
    #[serde(skip)]
    window_ok: u64,
    #[serde(skip)]
    window_total: u64,
}

/// The per-endpoint failure state of one upstream.
#[derive(Debug, Clone)]
pub struct Detector {
    cfg: OutlierConfig,
    health: HashMap<SocketAddr, Health>,
    /// When the current success-rate interval began (at the first report).
    window_start: Option<Duration>,
}

impl Detector {
    pub fn new(cfg: OutlierConfig) -> Self {
        Detector {
            cfg,
            health: HashMap::default(),
            window_start: None,
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
        let cfg = &self.cfg;
        let h = self.health.entry(addr).or_default();
        if h.ejected_until.is_none_or(|u| now >= u) {
            h.window_total += 1;
            h.window_ok += u64::from(outcome == Outcome::Success);
        }
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
                self.eject(addr, now, live)
            }
        }
    }

    /// Ejects `addr` unless the cap (`max_ejection_percent`, at least one) is reached.
    fn eject(&mut self, addr: SocketAddr, now: Duration, live: &[SocketAddr]) -> Option<Duration> {
        if self.cfg.max_ejection_percent == 0 {
            return None;
        }
        let cap = (live.len() * self.cfg.max_ejection_percent as usize / 100).max(1);
        if self.ejected_among(live, now) >= cap {
            return None;
        }
        let cfg = &self.cfg;
        let h = self.health.entry(addr).or_default();
        h.times_ejected = h.times_ejected.saturating_add(1);
        let for_ = cfg
            .base_ejection_time
            .saturating_mul(h.times_ejected)
            .min(cfg.max_ejection_time.max(cfg.base_ejection_time));
        h.ejected_until = Some(now + for_);
        h.consecutive_failures = 0;
        Some(for_)
    }

    /// Runs the success-rate test if an `interval` has passed since the last one (cheap
    /// otherwise); returns the endpoints it ejected, worst first, and for how long.
    pub fn evaluate(&mut self, now: Duration, live: &[SocketAddr]) -> Vec<(SocketAddr, Duration)> {
        let Some(sr) = self.cfg.success_rate else {
            return Vec::new();
        };
        let start = *self.window_start.get_or_insert(now);
        if now < start + self.cfg.interval {
            return Vec::new();
        }
        self.window_start = Some(now);
        let mut judged: Vec<(SocketAddr, f64)> = live
            .iter()
            .filter_map(|a| {
                let h = self.health.get(a)?;
                let ejected = h.ejected_until.is_some_and(|u| now < u);
                (!ejected && h.window_total >= u64::from(sr.request_volume))
                    .then(|| (*a, h.window_ok as f64 / h.window_total as f64))
            })
            .collect();
        for h in self.health.values_mut() {
            h.window_ok = 0;
            h.window_total = 0;
        }
        if judged.len() < sr.minimum_hosts as usize {
            return Vec::new();
        }
        let rates: Vec<f64> = judged.iter().map(|(_, r)| *r).collect();
        let threshold = success_rate::threshold(&rates, sr.stdev_factor);
        judged.sort_by(|a, b| a.1.total_cmp(&b.1));
        judged
            .into_iter()
            .take_while(|(_, rate)| *rate < threshold)
            .filter_map(|(a, _)| self.eject(a, now, live).map(|d| (a, d)))
            .collect()
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

    fn success_rate_detector(hosts: u32, volume: u32, factor: f64) -> Detector {
        let mut d = detector(0, 50);
        d.cfg.interval = Duration::from_secs(10);
        d.cfg.success_rate = Some(crate::config::SuccessRateConfig {
            minimum_hosts: hosts,
            request_volume: volume,
            stdev_factor: factor,
        });
        d
    }

    /// `ok` successes then `bad` failures for each endpoint, at `t`.
    fn feed(d: &mut Detector, live: &[SocketAddr], per: &[(u32, u32)], t: Duration) {
        for (a, (ok, bad)) in live.iter().zip(per) {
            for _ in 0..*ok {
                d.report(*a, Outcome::Success, t, live);
            }
            for _ in 0..*bad {
                d.report(*a, Outcome::Failure, t, live);
            }
        }
    }

    #[test]
    fn success_rate_ejects_the_endpoint_that_stands_out_once_per_interval() {
        let live = addrs(5);
        let mut d = success_rate_detector(5, 10, 1.9);
        let t0 = Duration::from_secs(1);
        assert!(d.evaluate(t0, &live).is_empty()); // starts the first interval
                                                   // Four at 100%, one at 50%: no consecutive-failure ejection (max_failures 0).
        let per = [(20, 0), (20, 0), (20, 0), (20, 0), (10, 10)];
        feed(&mut d, &live, &per, t0);
        assert!(d.evaluate(t0 + Duration::from_secs(9), &live).is_empty());
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            d.evaluate(t1, &live),
            vec![(live[4], Duration::from_secs(30))]
        );
        assert!(d.is_ejected(live[4], t1));
        // A new interval: counts start over, and an ejected endpoint is not judged.
        feed(&mut d, &live, &per[..4], t1);
        assert!(d.evaluate(t1 + Duration::from_secs(10), &live).is_empty());
    }

    #[test]
    fn success_rate_needs_volume_and_hosts_and_ignores_uniform_failure() {
        let live = addrs(5);
        let t0 = Duration::ZERO;
        let t1 = Duration::from_secs(10);
        // Too few requests on the bad one: not judged, so fewer than minimum_hosts.
        let mut d = success_rate_detector(5, 10, 1.9);
        d.evaluate(t0, &live);
        feed(
            &mut d,
            &live,
            &[(20, 0), (20, 0), (20, 0), (20, 0), (2, 5)],
            t0,
        );
        assert!(d.evaluate(t1, &live).is_empty());
        // Everyone failing alike: nobody stands out.
        let mut d = success_rate_detector(5, 10, 1.9);
        d.evaluate(t0, &live);
        feed(&mut d, &live, &[(2, 18); 5], t0);
        assert!(d.evaluate(t1, &live).is_empty());
        // Off unless configured.
        let mut off = detector(0, 50);
        off.evaluate(t0, &live);
        feed(
            &mut off,
            &live,
            &[(20, 0), (20, 0), (20, 0), (20, 0), (0, 20)],
            t0,
        );
        assert!(off.evaluate(t1, &live).is_empty());
    }

    #[test]
    fn success_rate_ejections_respect_the_cap() {
        let live = addrs(6);
        let mut d = success_rate_detector(5, 10, 0.5);
        d.cfg.max_ejection_percent = 20; // one of six
        d.evaluate(Duration::ZERO, &live);
        let per = [(20, 0), (20, 0), (20, 0), (20, 0), (0, 20), (5, 15)];
        feed(&mut d, &live, &per, Duration::ZERO);
        let out = d.evaluate(Duration::from_secs(10), &live);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, live[4], "the worst goes first");
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
