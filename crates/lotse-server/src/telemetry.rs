//! The server's counters, kept as atomics so the hot path never takes a lock. The API renders
//! them as Consul's JSON metrics and as Prometheus text.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A running count and sum, enough for Consul's sample fields (count, sum, mean).
#[derive(Debug, Default)]
pub struct Sample {
    pub count: AtomicU64,
    pub sum_micros: AtomicU64,
    pub max_micros: AtomicU64,
}

impl Sample {
    fn record(&self, d: Duration) {
        let us = d.as_micros() as u64;
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(us, Relaxed);
        self.max_micros.fetch_max(us, Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Telemetry {
    /// Time from proposing a command to its outcome, per command family.
    pub kvs_apply: Sample,
    pub txn_apply: Sample,
    pub session_apply: Sample,
    pub other_apply: Sample,
    pub http_requests: AtomicU64,
    pub http_errors: AtomicU64,
    /// HTTP connections refused with 429: their client IP had `http_max_conns_per_client` open.
    pub http_conns_refused: AtomicU64,
    /// Requests over `limits.request_limits` (refused when enforcing, else only counted).
    pub rate_limited_reads: AtomicU64,
    pub rate_limited_writes: AtomicU64,
    pub sessions_expired: AtomicU64,
    /// Log entries proposed by the write batcher, and the commands they carried.
    pub batches: AtomicU64,
    pub batched_commands: AtomicU64,
    /// DNS: time to answer a question from the catalog (Consul's `consul.dns.domain_query`).
    pub dns_domain_query: Sample,
    /// DNS: questions forwarded to the recursors, and those no recursor answered.
    pub dns_recursed: AtomicU64,
    pub dns_recursor_failures: AtomicU64,
}

impl Telemetry {
    pub fn record_apply(&self, kind: &str, d: Duration) {
        let s = match kind {
            k if k.starts_with("kv_") => &self.kvs_apply,
            "txn" => &self.txn_apply,
            k if k.starts_with("session_") => &self.session_apply,
            _ => &self.other_apply,
        };
        s.record(d);
    }

    pub fn record_dns_query(&self, d: Duration) {
        self.dns_domain_query.record(d);
    }

    pub(crate) fn record_batch(&self, commands: usize) {
        self.batches.fetch_add(1, Relaxed);
        self.batched_commands.fetch_add(commands as u64, Relaxed);
    }
}
