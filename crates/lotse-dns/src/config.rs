//! What the DNS interface is told by the agent's configuration: `domain`, `alt_domain`,
//! `recursors` and the `dns_config { ... }` block, under Consul's names and defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// The DNS interface's settings. [`DnsConfig::default`] holds Consul's defaults (but see
/// `enable_truncate`).
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// `domain`, lowercase with its trailing dot; default `consul.`.
    pub domain: String,
    /// `alt_domain`: a second domain answered like the first (lowercase, trailing dot).
    pub alt_domain: Option<String>,
    /// This agent's datacenter: the `<dc>` in answers and the only one that can be asked.
    pub datacenter: String,
    /// `allow_stale`: answer from this server's copy without asking the leader; default true.
    pub allow_stale: bool,
    /// `max_stale`: with `allow_stale`, how far behind the leader this copy may be before a
    /// lookup asks the leader; default 87600h (Consul's "ten years").
    pub max_stale: Duration,
    /// `node_ttl`: TTL of node records; default 0.
    pub node_ttl: Duration,
    /// `service_ttl`: TTL per service name; a name ending in `*` is a prefix (the longest one
    /// wins) and `*` alone is the fallback. Default: empty (TTL 0).
    pub service_ttl: Vec<(String, Duration)>,
    /// `udp_answer_limit`: answers in a UDP reply to a query without EDNS; default 3.
    pub udp_answer_limit: usize,
    /// `a_record_limit`: A/AAAA answers in any reply; 0 (default) means no limit.
    pub a_record_limit: usize,
    /// `enable_truncate`: set TC when a UDP answer was cut. Consul defaults to false and cuts
    /// silently; Lotse defaults to true so resolvers retry over TCP for the whole set.
    pub enable_truncate: bool,
    /// `only_passing`: leave out instances with a warning check too; default false.
    pub only_passing: bool,
    /// `disable_compression`: no name compression in replies; default false.
    pub disable_compression: bool,
    /// `enable_additional_node_meta_txt`: node meta as TXT records in the additional
    /// section of service answers; default true.
    pub enable_additional_node_meta_txt: bool,
    /// `recursors`: upstream servers for names outside our domains, tried in order.
    pub recursors: Vec<SocketAddr>,
    /// `recursor_strategy`: `sequential` (default) or `random`.
    pub recursor_strategy: RecursorStrategy,
    /// `recursor_timeout`: per upstream attempt; default 2s.
    pub recursor_timeout: Duration,
    /// `soa { ... }`.
    pub soa: SoaConfig,
}

/// The order in which recursors are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecursorStrategy {
    #[default]
    Sequential,
    Random,
}

/// `dns_config { soa { ... } }`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaConfig {
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub min_ttl: u32,
}

impl Default for SoaConfig {
    fn default() -> Self {
        SoaConfig {
            refresh: 3600,
            retry: 600,
            expire: 86400,
            min_ttl: 0,
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            domain: "consul.".into(),
            alt_domain: None,
            datacenter: "dc1".into(),
            allow_stale: true,
            max_stale: Duration::from_secs(87600 * 3600),
            node_ttl: Duration::ZERO,
            service_ttl: Vec::new(),
            udp_answer_limit: 3,
            a_record_limit: 0,
            enable_truncate: true,
            only_passing: false,
            disable_compression: false,
            enable_additional_node_meta_txt: true,
            recursors: Vec::new(),
            recursor_strategy: RecursorStrategy::Sequential,
            recursor_timeout: Duration::from_secs(2),
            soa: SoaConfig::default(),
        }
    }
}

/// A domain as the server compares it: lowercase, one trailing dot, no leading dot.
pub fn normalize_domain(domain: &str) -> String {
    let d = domain.trim().trim_start_matches('.').to_ascii_lowercase();
    if d.ends_with('.') {
        d
    } else {
        format!("{d}.")
    }
}

impl DnsConfig {
    /// The TTL of a service's records: an exact `service_ttl` entry, else the longest
    /// matching `prefix*` entry, else `*`, else 0 (as Consul's `GetTTLForService`).
    pub fn service_ttl_for(&self, service: &str) -> u32 {
        if let Some((_, d)) = self.service_ttl.iter().find(|(k, _)| k == service) {
            return secs(*d);
        }
        self.service_ttl
            .iter()
            .filter_map(|(k, d)| {
                let prefix = k.strip_suffix('*')?;
                service.starts_with(prefix).then_some((prefix.len(), *d))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, d)| secs(d))
            .unwrap_or(0)
    }

    pub fn node_ttl_secs(&self) -> u32 {
        secs(self.node_ttl)
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ttl_prefers_exact_then_longest_prefix_then_star() {
        let c = DnsConfig {
            service_ttl: vec![
                ("*".into(), Duration::from_secs(5)),
                ("db*".into(), Duration::from_secs(66)),
                ("db-m*".into(), Duration::from_secs(77)),
                ("db-master".into(), Duration::from_secs(1)),
            ],
            ..DnsConfig::default()
        };
        assert_eq!(c.service_ttl_for("db-master"), 1);
        assert_eq!(c.service_ttl_for("db-main"), 77);
        assert_eq!(c.service_ttl_for("dbx"), 66);
        assert_eq!(c.service_ttl_for("web"), 5);
        assert_eq!(DnsConfig::default().service_ttl_for("web"), 0);
    }

    #[test]
    fn domains_are_normalized() {
        assert_eq!(normalize_domain("Consul"), "consul.");
        assert_eq!(normalize_domain(".example.com."), "example.com.");
    }
}
