//! One upstream's live state: its endpoints (a `watch` fed by discovery), the balancer's
//! memory, outlier detection, the retry budget, the breakers and limiters, and its metrics.
//!
//! Decisions are taken under one short-held mutex per upstream and never across an `await`.
//! Endpoint state (ejection, requests in flight) is keyed by address, so it survives a new
//! endpoint set and is dropped only for endpoints that left it.

use foldhash::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smallvec::SmallVec;
use tokio::sync::watch;

use crate::balance::{self, ring::Ring, Candidate};
use crate::breaker::{ConnectionLimit, Gate};
use crate::budget::RetryBudget;
use crate::clock::SharedClock;
use crate::config::{Policy, Protocol, UpstreamConfig};
use crate::endpoint::EndpointSet;
use crate::metrics::{Sample, UpstreamMetrics};
use crate::outlier::{Detector, Outcome};
use crate::ratelimit::RateLimiter;

/// What the admin endpoint says about discovery.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiscoveryStatus {
    /// `static`, `agent`.
    pub source: String,
    /// True while the agent cannot be reached and the last known endpoints keep serving.
    pub stale: bool,
    pub last_error: Option<String>,
    pub consecutive_errors: u64,
}

struct State {
    detector: Detector,
    budget: RetryBudget,
    in_flight: HashMap<SocketAddr, u32>,
    ring: Option<(u64, Ring)>,
    rng: StdRng,
    seen_version: u64,
    /// The addresses of the endpoint set of `seen_version` (outlier detection's percentage
    /// cap and success-rate judging need them; kept so a report allocates nothing).
    live: Vec<SocketAddr>,
}

pub struct Upstream {
    /// The destination service (or a listener's name).
    pub name: String,
    pub bind: SocketAddr,
    pub cfg: UpstreamConfig,
    pub clock: SharedClock,
    pub endpoints: watch::Receiver<EndpointSet>,
    pub limiter: RateLimiter,
    /// Circuit breaker: requests in flight to the upstream.
    pub concurrency: Arc<Gate>,
    /// Load shedding: requests (or connections) in flight on the listener.
    pub shed: Arc<Gate>,
    pub connections: ConnectionLimit,
    pub metrics: UpstreamMetrics,
    pub discovery: Mutex<DiscoveryStatus>,
    rr: AtomicU64,
    state: Mutex<State>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .finish()
    }
}

impl Upstream {
    pub fn new(
        name: String,
        bind: SocketAddr,
        cfg: UpstreamConfig,
        clock: SharedClock,
        endpoints: watch::Receiver<EndpointSet>,
        seed: u64,
    ) -> Arc<Upstream> {
        let now = clock.now();
        Arc::new(Upstream {
            limiter: RateLimiter::new(cfg.rate_limit.clone(), now),
            concurrency: Gate::new(cfg.limits.max_concurrent_requests),
            shed: Gate::new(cfg.max_in_flight),
            connections: ConnectionLimit::new(
                cfg.limits.max_connections,
                cfg.limits.max_pending_requests,
            ),
            metrics: UpstreamMetrics::default(),
            discovery: Mutex::new(DiscoveryStatus::default()),
            rr: AtomicU64::new(0),
            state: Mutex::new(State {
                detector: Detector::new(cfg.outlier.clone()),
                budget: RetryBudget::new(&cfg.retries),
                in_flight: HashMap::default(),
                ring: None,
                rng: StdRng::seed_from_u64(seed),
                seen_version: 0,
                live: Vec::new(),
            }),
            name,
            bind,
            cfg,
            clock,
            endpoints,
        })
    }

    pub fn protocol(&self) -> Protocol {
        self.cfg.protocol
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current endpoint set, with per-endpoint state pruned if it changed.
    fn current(&self, st: &mut State) -> EndpointSet {
        let set = self.endpoints.borrow().clone();
        if set.version != st.seen_version {
            let live: Vec<SocketAddr> = set.endpoints.iter().map(|e| e.addr).collect();
            st.detector.retain(&live);
            st.in_flight.retain(|a, n| *n > 0 || live.contains(a));
            st.ring = None;
            st.seen_version = set.version;
            st.live = live;
        }
        set
    }

    /// Picks an endpoint for a request (or connection): never an ejected one nor one in `tried`
    /// while others remain; when every endpoint is ejected, all of them are candidates again
    /// (Envoy's panic mode: better a likely failure than a certain one). `hash` selects on the
    /// ring under `ring_hash`.
    pub fn pick(&self, hash: Option<u64>, tried: &[SocketAddr]) -> Option<SocketAddr> {
        let now = self.clock.now();
        self.pick_locked(&mut self.lock(), now, hash, tried)
    }

    /// An attempt's start under one lock and one clock read: the request counted for the retry
    /// budget (on its `first` attempt), an endpoint picked ([`Upstream::pick`]) and marked in
    /// flight (least-request's input) until the returned guard drops.
    pub fn start(
        self: &Arc<Self>,
        hash: Option<u64>,
        tried: &[SocketAddr],
        first: bool,
    ) -> Option<(SocketAddr, InFlight)> {
        let now = self.clock.now();
        let mut st = self.lock();
        if first {
            st.budget.record_request(now);
        }
        let addr = self.pick_locked(&mut st, now, hash, tried)?;
        *st.in_flight.entry(addr).or_insert(0) += 1;
        let in_flight = InFlight {
            upstream: self.clone(),
            addr,
        };
        Some((addr, in_flight))
    }

    fn pick_locked(
        &self,
        st: &mut State,
        now: Duration,
        hash: Option<u64>,
        tried: &[SocketAddr],
    ) -> Option<SocketAddr> {
        let set = self.current(st);
        let eps = &set.endpoints;
        if eps.is_empty() {
            return None;
        }
        // Every endpoint with whether it is ejected and whether this request tried it; then
        // the best tier that has any: fresh, then tried, then (panic mode) ejected too.
        let marked: SmallVec<[(Candidate, bool, bool); 8]> = eps
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let candidate = Candidate {
                    index: i,
                    weight: e.weight,
                    in_flight: st.in_flight.get(&e.addr).copied().unwrap_or(0),
                };
                (
                    candidate,
                    st.detector.is_ejected(e.addr, now),
                    tried.contains(&e.addr),
                )
            })
            .collect();
        let fresh = marked.iter().any(|&(_, ejected, tried)| !ejected && !tried);
        let healthy = fresh || marked.iter().any(|&(_, ejected, _)| !ejected);
        let candidates: SmallVec<[Candidate; 8]> = marked
            .into_iter()
            .filter(|&(_, ejected, tried)| {
                if fresh {
                    !ejected && !tried
                } else {
                    !healthy || !ejected
                }
            })
            .map(|(c, _, _)| c)
            .collect();
        let pos = match (self.cfg.policy, hash) {
            (Policy::RingHash, Some(h)) => {
                if st.ring.as_ref().map(|(v, _)| *v) != Some(set.version) {
                    st.ring = Some((set.version, Ring::build(eps)));
                }
                let allowed: Vec<usize> = candidates.iter().map(|c| c.index).collect();
                let ring = st.ring.as_ref().map(|(_, r)| r);
                ring.and_then(|r| r.lookup(h, |i| allowed.contains(&i)))
                    .and_then(|idx| candidates.iter().position(|c| c.index == idx))
            }
            (Policy::RingHash, None) => Some(st.rng.gen_range(0..candidates.len())),
            (Policy::LeastRequest, _) => balance::least_request(&mut st.rng, &candidates),
            (Policy::RoundRobin, _) => {
                balance::round_robin(self.rr.fetch_add(1, Relaxed), &candidates)
            }
        }?;
        eps.get(candidates[pos].index).map(|e| e.addr)
    }

    /// Feeds outlier detection with one attempt's outcome.
    pub fn report(&self, addr: SocketAddr, outcome: Outcome) {
        let now = self.clock.now();
        let mut guard = self.lock();
        self.current(&mut guard);
        let st = &mut *guard;
        let live = &st.live;
        if let Some(for_) = st.detector.report(addr, outcome, now, live) {
            self.metrics.ejections.fetch_add(1, Relaxed);
            tracing::warn!(upstream = %self.name, endpoint = %addr, ejected_for_ms = for_.as_millis() as u64, reason = "consecutive_failures", "endpoint ejected");
        }
        for (ejected, for_) in st.detector.evaluate(now, live) {
            self.metrics.ejections.fetch_add(1, Relaxed);
            tracing::warn!(upstream = %self.name, endpoint = %ejected, ejected_for_ms = for_.as_millis() as u64, reason = "success_rate", "endpoint ejected");
        }
    }

    /// Takes a retry from the budget.
    pub fn try_retry(&self) -> bool {
        let now = self.clock.now();
        let ok = self.lock().budget.try_retry(now);
        if ok {
            self.metrics.retries.fetch_add(1, Relaxed);
        }
        ok
    }

    /// The admin endpoint's view of this upstream.
    pub fn status(&self) -> UpstreamStatus {
        let now = self.clock.now();
        let mut st = self.lock();
        let set = self.current(&mut st);
        let endpoints = set
            .endpoints
            .iter()
            .map(|e| {
                let ejected = st.detector.is_ejected(e.addr, now);
                let (health, left) = st.detector.state(e.addr, now);
                EndpointStatus {
                    id: e.id.clone(),
                    address: e.addr,
                    weight: e.weight,
                    state: if ejected { "ejected" } else { "healthy" },
                    in_flight: st.in_flight.get(&e.addr).copied().unwrap_or(0),
                    consecutive_failures: health.consecutive_failures,
                    times_ejected: health.times_ejected,
                    ejected_for_ms: left.map(|d| d.as_millis() as u64),
                }
            })
            .collect();
        drop(st);
        UpstreamStatus {
            name: self.name.clone(),
            listener: self.bind,
            protocol: self.cfg.protocol,
            policy: self.cfg.policy,
            endpoints_version: set.version,
            discovery: self
                .discovery
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            requests_in_flight: self.concurrency.current(),
            upstream_connections: self.metrics.upstream_connections.load(Relaxed),
            active_connections: self.metrics.active_connections.load(Relaxed),
            endpoints,
        }
    }

    /// Counts for the Prometheus rendering.
    pub fn sample_counts(&self) -> (usize, usize) {
        let s = self.status();
        let ejected = s.endpoints.iter().filter(|e| e.state == "ejected").count();
        (s.endpoints.len() - ejected, ejected)
    }

    pub fn sample<'a>(&'a self, counts: (usize, usize)) -> Sample<'a> {
        Sample {
            upstream: &self.name,
            metrics: &self.metrics,
            endpoints_healthy: counts.0,
            endpoints_ejected: counts.1,
        }
    }
}

/// A request in flight to one endpoint.
pub struct InFlight {
    upstream: Arc<Upstream>,
    addr: SocketAddr,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.upstream.lock();
        if let Some(n) = st.in_flight.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EndpointStatus {
    pub id: String,
    pub address: SocketAddr,
    pub weight: u32,
    pub state: &'static str,
    pub in_flight: u32,
    pub consecutive_failures: u32,
    pub times_ejected: u32,
    pub ejected_for_ms: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamStatus {
    pub name: String,
    pub listener: SocketAddr,
    pub protocol: Protocol,
    pub policy: Policy,
    pub endpoints_version: u64,
    pub discovery: DiscoveryStatus,
    pub requests_in_flight: u32,
    pub upstream_connections: u64,
    pub active_connections: u64,
    pub endpoints: Vec<EndpointStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::endpoint::Endpoint;
    use std::time::Duration;

    fn upstream(
        n: u16,
        cfg: UpstreamConfig,
    ) -> (Arc<Upstream>, watch::Sender<EndpointSet>, Arc<ManualClock>) {
        let eps = (0..n)
            .map(|i| Endpoint {
                id: format!("e{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i)),
                weight: 1,
            })
            .collect();
        let (tx, rx) = watch::channel(EndpointSet::new(1, eps));
        let clock = ManualClock::new();
        let up = Upstream::new(
            "db".into(),
            SocketAddr::from(([127, 0, 0, 1], 1)),
            cfg,
            clock.clone(),
            rx,
            1,
        );
        (up, tx, clock)
    }

    #[test]
    fn ejected_endpoint_is_skipped_until_readmitted() {
        let mut cfg = UpstreamConfig::default();
        cfg.outlier.max_failures = 2;
        cfg.outlier.max_ejection_percent = 50;
        cfg.outlier.base_ejection_time = Duration::from_secs(5);
        let (up, _tx, clock) = upstream(3, cfg);
        let bad = SocketAddr::from(([127, 0, 0, 1], 9001));
        up.report(bad, Outcome::Failure);
        up.report(bad, Outcome::Failure);
        assert_eq!(up.metrics.ejections.load(Relaxed), 1);
        for _ in 0..30 {
            assert_ne!(up.pick(None, &[]), Some(bad));
        }
        clock.advance(Duration::from_secs(5));
        let picks: Vec<_> = (0..30).filter_map(|_| up.pick(None, &[])).collect();
        assert!(picks.contains(&bad));
    }

    #[test]
    fn retries_avoid_tried_endpoints() {
        let (up, _tx, _) = upstream(2, UpstreamConfig::default());
        let first = up.pick(None, &[]).expect("endpoint");
        for _ in 0..10 {
            let again = up.pick(None, &[first]).expect("endpoint");
            assert_ne!(again, first);
        }
        // With every endpoint tried, any may be picked again.
        let all = [
            first,
            SocketAddr::from(([127, 0, 0, 1], 9000)),
            SocketAddr::from(([127, 0, 0, 1], 9001)),
        ];
        assert!(up.pick(None, &all).is_some());
    }

    #[test]
    fn endpoint_set_changes_apply_to_the_next_pick() {
        let (up, tx, _) = upstream(1, UpstreamConfig::default());
        let added = Endpoint {
            id: "new".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 9100)),
            weight: 1,
        };
        let mut eps = (*up.endpoints.borrow().endpoints).clone();
        eps.push(added.clone());
        tx.send_replace(EndpointSet::new(2, eps));
        let picks: Vec<_> = (0..4).filter_map(|_| up.pick(None, &[])).collect();
        assert!(picks.contains(&added.addr));
        assert_eq!(up.status().endpoints_version, 2);
    }

    #[test]
    fn ring_hash_is_sticky() {
        let cfg = UpstreamConfig {
            policy: Policy::RingHash,
            ..UpstreamConfig::default()
        };
        let (up, _tx, _) = upstream(3, cfg);
        let a = up.pick(Some(42), &[]).expect("endpoint");
        for _ in 0..10 {
            assert_eq!(up.pick(Some(42), &[]), Some(a));
        }
    }

    #[test]
    fn in_flight_counts_follow_guards() {
        let (up, _tx, _) = upstream(1, UpstreamConfig::default());
        let addr = SocketAddr::from(([127, 0, 0, 1], 9000));
        let (picked, g) = up.start(None, &[], true).expect("endpoint");
        assert_eq!(picked, addr);
        assert_eq!(up.status().endpoints[0].in_flight, 1);
        drop(g);
        assert_eq!(up.status().endpoints[0].in_flight, 0);
    }
}
