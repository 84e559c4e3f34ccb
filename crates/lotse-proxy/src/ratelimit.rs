//! Token buckets: one for the route, one per client IP address. A request takes a token from
//! its client's bucket and then from the route's; an empty bucket means 429.
//!
//! Our own small bucket rather than `governor`: it runs on the proxy's injected clock (tests
//! step time instead of sleeping) and its state is two floats. The per-client map is bounded:
//! past [`MAX_CLIENTS`] entries, buckets that have refilled (idle clients) are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::{Bucket, RateLimitConfig};

pub const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(b: Bucket, now: Duration) -> Self {
        TokenBucket {
            rate: b.per_second,
            burst: b.burst,
            tokens: b.burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Takes one token; `false` when the bucket is empty.
    pub fn try_take(&mut self, now: Duration) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&mut self, now: Duration) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// Which limit a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Client,
    Route,
}

#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    route: Mutex<Option<TokenBucket>>,
    clients: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl RateLimiter {
    pub fn new(cfg: RateLimitConfig, now: Duration) -> Self {
        RateLimiter {
            route: Mutex::new(cfg.route.map(|b| TokenBucket::new(b, now))),
            cfg,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any bucket is configured (if not, `check` always admits and the clock need not
    /// be read).
    pub fn is_limited(&self) -> bool {
        self.cfg.per_client.is_some() || self.cfg.route.is_some()
    }

    /// Admits or refuses one request from `client` at `now`.
    pub fn check(&self, client: IpAddr, now: Duration) -> Result<(), Limited> {
        if let Some(b) = self.cfg.per_client {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
                clients.retain(|_, bucket| !bucket.is_full(now));
            }
            let bucket = clients
                .entry(client)
                .or_insert_with(|| TokenBucket::new(b, now));
            if !bucket.try_take(now) {
                return Err(Limited::Client);
            }
        }
        let mut route = self.route.lock().unwrap_or_else(|p| p.into_inner());
        match route.as_mut() {
            Some(bucket) => {
                if bucket.try_take(now) {
                    Ok(())
                } else {
                    Err(Limited::Route)
                }
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn bucket_allows_burst_then_rate() {
        let mut b = TokenBucket::new(
            Bucket {
                per_second: 2.0,
                burst: 3.0,
            },
            Duration::ZERO,
        );
        let t = Duration::ZERO;
        assert_eq!((0..10).filter(|_| b.try_take(t)).count(), 3);
        let t = t + Duration::from_millis(500);
        assert!(b.try_take(t));
        assert!(!b.try_take(t));
        // Long idle: refills to the burst, no more.
        let t = t + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.try_take(t)).count(), 3);
    }

    #[test]
    fn per_client_buckets_are_separate_and_route_is_shared() {
        let cfg = RateLimitConfig {
            route: Some(Bucket {
                per_second: 1.0,
                burst: 3.0,
            }),
            per_client: Some(Bucket {
                per_second: 1.0,
                burst: 2.0,
            }),
        };
        let l = RateLimiter::new(cfg, Duration::ZERO);
        let t = Duration::ZERO;
        assert_eq!(l.check(A, t), Ok(()));
        assert_eq!(l.check(A, t), Ok(()));
        assert_eq!(l.check(A, t), Err(Limited::Client));
        assert_eq!(l.check(B, t), Ok(()));
        assert_eq!(l.check(B, t), Err(Limited::Route));
        let t = Duration::from_secs(1);
        assert_eq!(l.check(B, t), Ok(()));
    }
}
