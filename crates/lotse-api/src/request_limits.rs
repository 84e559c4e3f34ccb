//! `limits.request_limits`: Consul's global read and write rate limits on a server.
//!
//! Every request a server serves (from its own HTTP port or forwarded by a client agent or
//! another server) is a read (`GET`, `HEAD`) or a write (anything else), and each kind draws
//! from its own token bucket: `read_rate` or `write_rate` tokens a second, holding ten
//! seconds' worth (Consul's burst multiplier). `/v1/status/*`, `/v1/operator/*` and the
//! agent's own endpoints (`/v1/agent/*`, `/v1/event/*`) are exempt, as Consul's are: an
//! overloaded server must still say who leads and let operators act.
//!
//! In `enforcing` mode a request over the limit is answered at once, with Consul's words:
//! a write on the leader gets 503 (no other server can take it: retry later), anything else
//! 429 (another server may serve it). `permissive` counts and logs without refusing;
//! `disabled` (the default) does nothing. The mode and rates reload with the configuration.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State as AxState};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::State;

/// Consul's `rate.ErrRetryElsewhere`, answered with 429.
pub const RETRY_ELSEWHERE: &str =
    "rate limit exceeded, try again later or against a different server";
/// Consul's `rate.ErrRetryLater`, answered with 503.
pub const RETRY_LATER: &str =
    "rate limit exceeded for operation that can only be performed by the leader, try again later";

/// A bucket holds this many seconds of its rate (Consul's `requestLimitsBurstMultiplier`).
const BURST_SECONDS: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Disabled,
    Permissive,
    Enforcing,
}

impl Mode {
    /// Consul's names; `None` for anything else.
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "" | "disabled" => Some(Mode::Disabled),
            "permissive" => Some(Mode::Permissive),
            "enforcing" => Some(Mode::Enforcing),
            _ => None,
        }
    }
}

/// The configured limits; a rate of `f64::INFINITY` (the default) never limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestLimits {
    pub mode: Mode,
    pub read_rate: f64,
    pub write_rate: f64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            mode: Mode::Disabled,
            read_rate: f64::INFINITY,
            write_rate: f64::INFINITY,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

/// Tokens refilled continuously at `rate` a second, up to `BURST_SECONDS` of them.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Bucket {
        Bucket {
            rate,
            tokens: capacity(rate),
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.rate.is_infinite() {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(capacity(self.rate));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// At least one token, so a rate below one a second still admits something; a rate of 0
/// admits nothing (as Go's limiter with no rate and no burst).
fn capacity(rate: f64) -> f64 {
    if rate <= 0.0 {
        0.0
    } else {
        (rate * BURST_SECONDS).max(1.0)
    }
}

#[derive(Debug)]
struct Inner {
    limits: RequestLimits,
    read: Bucket,
    write: Bucket,
}

/// The server's limiter, shared by every connection.
#[derive(Debug)]
pub struct RequestLimiter {
    inner: Mutex<Inner>,
}

impl Default for RequestLimiter {
    fn default() -> Self {
        RequestLimiter::new(RequestLimits::default())
    }
}

impl RequestLimiter {
    pub fn new(limits: RequestLimits) -> RequestLimiter {
        let now = Instant::now();
        RequestLimiter {
            inner: Mutex::new(Inner {
                limits,
                read: Bucket::new(limits.read_rate, now),
                write: Bucket::new(limits.write_rate, now),
            }),
        }
    }

    pub fn limits(&self) -> RequestLimits {
        self.lock().limits
    }

    /// Applies reloaded limits; a bucket whose rate changed starts full at its new size.
    pub fn update(&self, limits: RequestLimits) {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.limits.read_rate != limits.read_rate {
            inner.read = Bucket::new(limits.read_rate, now);
        }
        if inner.limits.write_rate != limits.write_rate {
            inner.write = Bucket::new(limits.write_rate, now);
        }
        inner.limits = limits;
    }

    /// Takes a token for one request of `kind`: `Some(mode)` when the bucket was empty, so
    /// the caller refuses (enforcing) or only reports (permissive) it.
    pub fn over_limit(&self, kind: Kind, now: Instant) -> Option<Mode> {
        let mut inner = self.lock();
        let mode = inner.limits.mode;
        if mode == Mode::Disabled {
            return None;
        }
        let bucket = match kind {
            Kind::Read => &mut inner.read,
            Kind::Write => &mut inner.write,
        };
        (!bucket.take(now)).then_some(mode)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which bucket a request draws from, or `None` if it is exempt.
pub fn classify(method: &Method, path: &str) -> Option<Kind> {
    const EXEMPT: [&str; 4] = ["/v1/status/", "/v1/operator/", "/v1/agent/", "/v1/event/"];
    if !path.starts_with("/v1/") || EXEMPT.iter().any(|p| path.starts_with(p)) {
        return None;
    }
    Some(match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => Kind::Read,
        _ => Kind::Write,
    })
}

/// The middleware: on a server, refuses (or reports) a request over its kind's limit before
/// any handler runs. Client agents have no limiter; their servers apply theirs.
pub async fn enforce(AxState(state): AxState<State>, req: Request, next: Next) -> Response {
    let (Some(server), Some(kind)) = (&state.server, classify(req.method(), req.uri().path()))
    else {
        return next.run(req).await;
    };
    let Some(mode) = state.request_limits.over_limit(kind, Instant::now()) else {
        return next.run(req).await;
    };
    let counter = match kind {
        Kind::Read => &state.telemetry.rate_limited_reads,
        Kind::Write => &state.telemetry.rate_limited_writes,
    };
    counter.fetch_add(1, Relaxed);
    let enforced = mode == Mode::Enforcing;
    tracing::debug!(
        method = %req.method(),
        path = req.uri().path(),
        limit_type = if kind == Kind::Read { "global/read" } else { "global/write" },
        limit_enforced = enforced,
        "request exceeded the allowed rate limit"
    );
    if !enforced {
        return next.run(req).await;
    }
    let (status, text) = if kind == Kind::Write && server.is_leader() {
        (StatusCode::SERVICE_UNAVAILABLE, RETRY_LATER)
    } else {
        (StatusCode::TOO_MANY_REQUESTS, RETRY_ELSEWHERE)
    };
    // hyper closes a connection whose request body was left unread, without saying so, and
    // a client that sends its next request on it meanwhile sees the connection drop. Read
    // what a write sent (as Go's server does, up to 256 KiB) so the connection stays usable;
    // past that, say that it closes.
    let drained = axum::body::to_bytes(req.into_body(), DRAIN_LIMIT)
        .await
        .is_ok();
    let mut resp = (status, text).into_response();
    if !drained {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// The most of a refused request's body read to keep its connection open.
const DRAIN_LIMIT: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(mode: Mode, read: f64, write: f64) -> RequestLimiter {
        RequestLimiter::new(RequestLimits {
            mode,
            read_rate: read,
            write_rate: write,
        })
    }

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let l = limiter(Mode::Enforcing, f64::INFINITY, 2.0);
        let t0 = Instant::now();
        // Ten seconds' worth at once...
        for _ in 0..20 {
            assert_eq!(l.over_limit(Kind::Write, t0), None);
        }
        assert_eq!(l.over_limit(Kind::Write, t0), Some(Mode::Enforcing));
        // ...then two a second.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(l.over_limit(Kind::Write, t1), None);
        assert_eq!(l.over_limit(Kind::Write, t1), None);
        assert_eq!(l.over_limit(Kind::Write, t1), Some(Mode::Enforcing));
        // Reads have their own, unlimited, bucket.
        for _ in 0..1000 {
            assert_eq!(l.over_limit(Kind::Read, t1), None);
        }
    }

    #[test]
    fn disabled_never_limits_and_permissive_only_reports() {
        let off = limiter(Mode::Disabled, 0.0, 0.0);
        let perm = limiter(Mode::Permissive, 0.1, 0.1);
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(off.over_limit(Kind::Read, now), None);
        }
        assert_eq!(
            perm.over_limit(Kind::Read, now),
            None,
            "one token even below 1/s"
        );
        assert_eq!(perm.over_limit(Kind::Read, now), Some(Mode::Permissive));
        let closed = limiter(Mode::Enforcing, 0.0, f64::INFINITY);
        assert_eq!(closed.over_limit(Kind::Read, now), Some(Mode::Enforcing));
    }

    #[test]
    fn a_reload_resizes_only_the_bucket_whose_rate_changed() {
        let l = limiter(Mode::Enforcing, 1.0, 1.0);
        let now = Instant::now();
        for _ in 0..10 {
            l.over_limit(Kind::Read, now);
            l.over_limit(Kind::Write, now);
        }
        assert!(l.over_limit(Kind::Read, now).is_some());
        l.update(RequestLimits {
            mode: Mode::Enforcing,
            read_rate: 5.0,
            write_rate: 1.0,
        });
        assert_eq!(l.over_limit(Kind::Read, now), None);
        assert!(l.over_limit(Kind::Write, now).is_some());
    }

    #[test]
    fn status_operator_and_agent_endpoints_are_exempt() {
        assert_eq!(classify(&Method::GET, "/v1/status/leader"), None);
        assert_eq!(
            classify(&Method::PUT, "/v1/operator/raft/transfer-leader"),
            None
        );
        assert_eq!(classify(&Method::PUT, "/v1/agent/service/register"), None);
        assert_eq!(classify(&Method::GET, "/ui/"), None);
        assert_eq!(classify(&Method::GET, "/v1/kv/a"), Some(Kind::Read));
        assert_eq!(classify(&Method::PUT, "/v1/kv/a"), Some(Kind::Write));
        assert_eq!(classify(&Method::DELETE, "/v1/kv/a"), Some(Kind::Write));
        assert_eq!(classify(&Method::PUT, "/v1/txn"), Some(Kind::Write));
    }

    #[test]
    fn mode_names_are_consuls() {
        assert_eq!(Mode::parse("enforcing"), Some(Mode::Enforcing));
        assert_eq!(Mode::parse("permissive"), Some(Mode::Permissive));
        assert_eq!(Mode::parse("disabled"), Some(Mode::Disabled));
        assert_eq!(Mode::parse("Enforcing"), None);
    }
}
