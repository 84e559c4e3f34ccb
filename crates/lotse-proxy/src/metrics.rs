//! Per-upstream counters and a latency histogram, rendered in the Prometheus text format by
//! the admin endpoint.
//!
//! Plain atomics, like the agent's own telemetry (`lotse-api`'s `/v1/agent/metrics` renders
//! hand-kept atomics too): recording costs one relaxed add, there is no global registry, and two
//! proxies in one test process do not share counters. Names follow
//! `lotse_proxy_<name>_{total,seconds}` with one `upstream` label (plus `class` for status).

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// Everything counted for one upstream (or listener).
#[derive(Debug, Default)]
pub struct UpstreamMetrics {
    /// Answers by status class: index 0 = 1xx ... 4 = 5xx.
    pub responses: [AtomicU64; 5],
    pub latency: Histogram,
    pub retries: AtomicU64,
    pub ejections: AtomicU64,
    pub rate_limited: AtomicU64,
    pub shed: AtomicU64,
    /// Refused by a circuit breaker (max connections/pending/concurrent requests).
    pub overflow: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Request timeouts, per-try timeouts and idle streams (either way, upgrades included).
    pub timeouts: AtomicU64,
    /// Connections switched to another protocol (`101`, e.g. WebSocket).
    pub upgrades: AtomicU64,
    /// Downstream connections open now (clients of the listener).
    pub active_connections: AtomicU64,
    /// Upstream connections open now.
    pub upstream_connections: AtomicU64,
    /// Connections accepted (L4: each one is a "request").
    pub connections: AtomicU64,
    pub discovery_errors: AtomicU64,
    pub discovery_stale: AtomicBool,
    /// Gateway routes: answers served from the response cache.
    pub cache_hits: AtomicU64,
    /// Gateway routes: requests refused 401 (no or bad API key or JWT).
    pub unauthorized: AtomicU64,
}

impl UpstreamMetrics {
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }
}

/// The numbers for one upstream at render time.
pub struct Sample<'a> {
    pub upstream: &'a str,
    pub metrics: &'a UpstreamMetrics,
    pub endpoints_healthy: usize,
    pub endpoints_ejected: usize,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(
    out: &mut String,
    name: &str,
    help: &str,
    samples: &[Sample<'_>],
    f: impl Fn(&UpstreamMetrics) -> u64,
) {
    family(out, name, "counter", help);
    for s in samples {
        let _ = writeln!(
            out,
            "{name}{{upstream=\"{}\"}} {}",
            s.upstream,
            f(s.metrics)
        );
    }
}

/// The Prometheus text exposition of `samples`.
pub fn render(samples: &[Sample<'_>]) -> String {
    let mut out = String::new();
    let name = "lotse_proxy_requests_total";
    family(
        &mut out,
        name,
        "counter",
        "Requests answered, by status class (L7).",
    );
    for s in samples {
        for (i, c) in s.metrics.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{upstream=\"{}\",class=\"{}xx\"}} {}",
                s.upstream,
                i + 1,
                c.load(Relaxed)
            );
        }
    }
    let name = "lotse_proxy_request_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Time from request to response headers, retries included.",
    );
    for s in samples {
        let h = &s.metrics.latency;
        let mut cumulative = 0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += h.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{upstream=\"{}\",le=\"{b}\"}} {cumulative}",
                s.upstream
            );
        }
        let count = h.count.load(Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{upstream=\"{}\",le=\"+Inf\"}} {count}",
            s.upstream
        );
        let _ = writeln!(
            out,
            "{name}_sum{{upstream=\"{}\"}} {}",
            s.upstream,
            h.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{upstream=\"{}\"}} {count}", s.upstream);
    }
    counter(
        &mut out,
        "lotse_proxy_retries_total",
        "Retries sent.",
        samples,
        |m| m.retries.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_ejections_total",
        "Endpoints ejected by outlier detection.",
        samples,
        |m| m.ejections.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_rate_limited_total",
        "Requests refused with 429.",
        samples,
        |m| m.rate_limited.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_shed_total",
        "Requests shed with 503 (listener concurrency limit).",
        samples,
        |m| m.shed.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_overflow_total",
        "Requests refused by a circuit breaker (503).",
        samples,
        |m| m.overflow.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_connect_failures_total",
        "Failed connection attempts to endpoints.",
        samples,
        |m| m.connect_failures.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_timeouts_total",
        "Attempts, requests or streams (idle bodies, upgraded connections) that timed out.",
        samples,
        |m| m.timeouts.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_upgrades_total",
        "Connections upgraded (101 Switching Protocols, e.g. WebSocket).",
        samples,
        |m| m.upgrades.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_connections_total",
        "Downstream connections accepted.",
        samples,
        |m| m.connections.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_discovery_errors_total",
        "Failed discovery queries to the agent.",
        samples,
        |m| m.discovery_errors.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_cache_hits_total",
        "Answers served from the gateway's response cache.",
        samples,
        |m| m.cache_hits.load(Relaxed),
    );
    counter(
        &mut out,
        "lotse_proxy_unauthorized_total",
        "Requests refused with 401 (API key or JWT).",
        samples,
        |m| m.unauthorized.load(Relaxed),
    );
    let name = "lotse_proxy_active_connections";
    family(&mut out, name, "gauge", "Downstream connections open now.");
    for s in samples {
        let _ = writeln!(
            out,
            "{name}{{upstream=\"{}\"}} {}",
            s.upstream,
            s.metrics.active_connections.load(Relaxed)
        );
    }
    let name = "lotse_proxy_upstream_connections";
    family(
        &mut out,
        name,
        "gauge",
        "Connections to endpoints open now.",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{name}{{upstream=\"{}\"}} {}",
            s.upstream,
            s.metrics.upstream_connections.load(Relaxed)
        );
    }
    let name = "lotse_proxy_discovery_stale";
    family(
        &mut out,
        name,
        "gauge",
        "1 while the agent is unreachable and the last known endpoints serve.",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{name}{{upstream=\"{}\"}} {}",
            s.upstream,
            u8::from(s.metrics.discovery_stale.load(Relaxed))
        );
    }
    let name = "lotse_proxy_endpoints";
    family(&mut out, name, "gauge", "Endpoints by state.");
    for s in samples {
        let _ = writeln!(
            out,
            "{name}{{upstream=\"{}\",state=\"healthy\"}} {}",
            s.upstream, s.endpoints_healthy
        );
        let _ = writeln!(
            out,
            "{name}{{upstream=\"{}\",state=\"ejected\"}} {}",
            s.upstream, s.endpoints_ejected
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_classes_and_histogram() {
        let m = UpstreamMetrics::default();
        m.response(200);
        m.response(204);
        m.response(503);
        m.latency.observe(Duration::from_millis(3));
        m.latency.observe(Duration::from_secs(30));
        let text = render(&[Sample {
            upstream: "db",
            metrics: &m,
            endpoints_healthy: 2,
            endpoints_ejected: 1,
        }]);
        assert!(text.contains("lotse_proxy_requests_total{upstream=\"db\",class=\"2xx\"} 2"));
        assert!(text.contains("lotse_proxy_requests_total{upstream=\"db\",class=\"5xx\"} 1"));
        assert!(text.contains(
            "lotse_proxy_request_duration_seconds_bucket{upstream=\"db\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "lotse_proxy_request_duration_seconds_bucket{upstream=\"db\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("lotse_proxy_endpoints{upstream=\"db\",state=\"ejected\"} 1"));
    }
}
