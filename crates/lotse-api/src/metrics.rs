//! `/v1/agent/metrics`: Consul's JSON shape (`Gauges`, `Counters`, `Samples`) and, with
//! `?format=prometheus`, the Prometheus text format. Names follow Consul's where dashboards
//! expect them (`consul.kvs.apply`), and `lotse_<subsystem>_<name>` otherwise.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use std::sync::Arc;

use axum::extract::{Extension, State as AxState};
use axum::http::header;
use axum::response::IntoResponse;
use lotse_server::{telemetry::Sample, Access, Resource};
use serde_json::{json as j, Value};

use crate::agent::rss_bytes;
use crate::monitor::civil_from_days;
use crate::params::Params;
use crate::render_cache::RenderCache;
use crate::reply::{json, ApiResult};
use crate::State;

struct Snapshot {
    gauges: Vec<(&'static str, f64)>,
    counters: Vec<(&'static str, u64)>,
    /// name, count, sum (ms), max (ms)
    samples: Vec<(&'static str, u64, f64, f64)>,
}

fn sample(name: &'static str, s: &Sample) -> (&'static str, u64, f64, f64) {
    (
        name,
        s.count.load(Relaxed),
        s.sum_micros.load(Relaxed) as f64 / 1000.0,
        s.max_micros.load(Relaxed) as f64 / 1000.0,
    )
}

/// The agent's metrics; a server adds its store's and Raft's.
fn snapshot(state: &State, cache: &RenderCache) -> Snapshot {
    let t = &state.telemetry;
    let (cache_hits, cache_misses) = cache.stats();
    let (_, cache_bytes) = cache.size();
    let mut snap = Snapshot {
        gauges: vec![
            ("consul.runtime.alloc_bytes", rss_bytes() as f64),
            ("lotse.http.render_cache.bytes", cache_bytes as f64),
        ],
        counters: vec![
            ("lotse.http.requests", t.http_requests.load(Relaxed)),
            ("lotse.http.errors", t.http_errors.load(Relaxed)),
            (
                "lotse.http.conns_refused",
                t.http_conns_refused.load(Relaxed),
            ),
            (
                "lotse.rpc.rate_limit.exceeded.global_read",
                t.rate_limited_reads.load(Relaxed),
            ),
            (
                "lotse.rpc.rate_limit.exceeded.global_write",
                t.rate_limited_writes.load(Relaxed),
            ),
            ("lotse.http.render_cache.hits", cache_hits),
            ("lotse.http.render_cache.misses", cache_misses),
            ("lotse.dns.recursed", t.dns_recursed.load(Relaxed)),
            (
                "lotse.dns.recursor_failures",
                t.dns_recursor_failures.load(Relaxed),
            ),
        ],
        samples: vec![sample("consul.dns.domain_query", &t.dns_domain_query)],
    };
    if let Some(server) = &state.server {
        add_server_metrics(server, &mut snap);
    }
    snap
}

fn add_server_metrics(server: &lotse_server::Server, snap: &mut Snapshot) {
    let t = &server.telemetry;
    let (keys, sessions) = server.peek(|s| (s.kv_len(), s.session_count()));
    // Consul's catalog gauges (`consul.state.*`): nodes, service names, service instances.
    let (nodes, service_names, instances) = server.peek(|s| {
        let (nodes, instances, _) = s.catalog_counts();
        (nodes, s.catalog_services(&[]).1.len(), instances)
    });
    let raft: std::collections::HashMap<&str, String> = server.raft_stats().into_iter().collect();
    let num = |k: &str| {
        raft.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    snap.gauges.extend([
        ("lotse.kv.keys", keys as f64),
        ("consul.session.active", sessions as f64),
        ("consul.state.nodes", nodes as f64),
        ("consul.state.services", service_names as f64),
        ("consul.state.service_instances", instances as f64),
        ("lotse.http.blocking_queries", server.hub().parked() as f64),
        ("consul.raft.applied_index", num("applied_index")),
        ("consul.raft.last_index", num("last_log_index")),
        (
            "consul.server.isLeader",
            if server.is_leader() { 1.0 } else { 0.0 },
        ),
    ]);
    snap.counters.extend([
        (
            "consul.session_ttl.invalidate",
            t.sessions_expired.load(Relaxed),
        ),
        ("lotse.raft.log.commits", num("log_commits") as u64),
        (
            "lotse.raft.log.entries",
            num("log_entries_persisted") as u64,
        ),
        ("lotse.raft.batches", t.batches.load(Relaxed)),
        (
            "lotse.raft.batched_commands",
            t.batched_commands.load(Relaxed),
        ),
    ]);
    snap.samples.extend([
        sample("consul.kvs.apply", &t.kvs_apply),
        sample("consul.txn.apply", &t.txn_apply),
        sample("consul.session.apply", &t.session_apply),
        sample("consul.raft.apply", &t.other_apply),
    ]);
}

fn consul_json(s: &Snapshot) -> Value {
    let gauges: Vec<Value> = s
        .gauges
        .iter()
        .map(|(n, v)| j!({"Name": n, "Value": v, "Labels": {}}))
        .collect();
    let counters: Vec<Value> = s
        .counters
        .iter()
        .map(|(n, c)| {
            j!({"Name": n, "Count": c, "Rate": 0.0, "Sum": *c as f64, "Min": 1.0, "Max": 1.0,
                "Mean": 1.0, "Stddev": 0.0, "Labels": {}})
        })
        .collect();
    let samples: Vec<Value> = s
        .samples
        .iter()
        .map(|(n, count, sum, max)| {
            let mean = if *count > 0 { sum / *count as f64 } else { 0.0 };
            j!({"Name": n, "Count": count, "Rate": 0.0, "Sum": sum, "Min": 0.0, "Max": max,
                "Mean": mean, "Stddev": 0.0, "Labels": {}})
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    j!({
        "Timestamp": go_utc_timestamp(now),
        "Gauges": gauges,
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    })
}

/// `consul.kvs.apply` becomes `consul_kvs_apply`.
fn prom_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn prometheus(s: &Snapshot) -> String {
    let mut out = String::new();
    for (n, v) in &s.gauges {
        let n = prom_name(n);
        let _ = writeln!(out, "# TYPE {n} gauge\n{n} {v}");
    }
    for (n, c) in &s.counters {
        let n = prom_name(n);
        let _ = writeln!(out, "# TYPE {n}_total counter\n{n}_total {c}");
    }
    for (n, count, sum, _) in &s.samples {
        let n = prom_name(n);
        let _ = writeln!(
            out,
            "# TYPE {n}_seconds summary\n{n}_seconds_sum {}\n{n}_seconds_count {count}",
            sum / 1000.0
        );
    }
    out
}

pub async fn metrics(
    AxState(state): AxState<State>,
    Extension(cache): Extension<Arc<RenderCache>>,
    params: Params,
) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Agent, Access::Read)?;
    let snap = snapshot(&state, &cache);
    if params.get("format") == Some("prometheus") {
        return Ok((
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            prometheus(&snap),
        )
            .into_response());
    }
    Ok(json(&consul_json(&snap), params.pretty()))
}

/// Formats Unix seconds the way Consul's metrics do (Go's default `time.Time` layout, in UTC):
/// `2026-11-27 06:20:00 +0000 UTC`.
fn go_utc_timestamp(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_go_layout() {
        assert_eq!(go_utc_timestamp(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_utc_timestamp(1_795_760_400),
            "2026-11-27 06:20:00 +0000 UTC"
        );
        assert_eq!(
            go_utc_timestamp(951_782_400),
            "2000-02-29 00:00:00 +0000 UTC"
        );
    }
}
