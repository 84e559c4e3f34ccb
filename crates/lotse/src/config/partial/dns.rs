//! The DNS keys of one source: `recursors`, `addresses { dns }` and the `dns_config { ... }`
//! block (Consul's names; the defaults are `lotse_dns::DnsConfig::default()`).
//!
//! Every value is checked here, so that an error names the key and the file: a wrong type, a
//! negative `udp_answer_limit`/`a_record_limit` (Consul refuses both), an unknown
//! `recursor_strategy`, an SOA field outside 0..=2^32-1, a recursor that is not an IP address.
//! Unknown keys in the block warn, as everywhere in this loader; `use_cache`, `cache_max_age`
//! and `prefer_namespace` are Consul keys Lotse accepts and ignores with a warning.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use lotse_dns::config::RecursorStrategy;
use serde_json::Value;

use super::{ConfigError, Cx};

/// `dns_config { ... }` as one source sets it.
#[derive(Debug, Default, Clone)]
pub struct PartialDns {
    pub allow_stale: Option<bool>,
    pub max_stale: Option<Duration>,
    pub node_ttl: Option<Duration>,
    /// Merged key by key across sources (as Consul merges maps).
    pub service_ttl: BTreeMap<String, Duration>,
    pub udp_answer_limit: Option<usize>,
    pub a_record_limit: Option<usize>,
    pub enable_truncate: Option<bool>,
    pub only_passing: Option<bool>,
    pub disable_compression: Option<bool>,
    pub enable_additional_node_meta_txt: Option<bool>,
    pub recursor_strategy: Option<RecursorStrategy>,
    pub recursor_timeout: Option<Duration>,
    pub soa: PartialSoa,
}

/// `dns_config { soa { ... } }`, in seconds.
#[derive(Debug, Default, Clone)]
pub struct PartialSoa {
    pub refresh: Option<u32>,
    pub retry: Option<u32>,
    pub expire: Option<u32>,
    pub min_ttl: Option<u32>,
}

/// `addresses { ... }`: only `dns` is implemented.
#[derive(Debug, Default, Clone)]
pub struct PartialAddresses {
    pub dns: Option<String>,
}

/// Consul keys of `dns_config` that Lotse accepts and ignores (with a warning).
const UNIMPLEMENTED_DNS: &[&str] = &["use_cache", "cache_max_age", "prefer_namespace"];
/// Consul keys of `addresses` that Lotse does not implement yet.
const UNIMPLEMENTED_ADDRESSES: &[&str] = &["http", "https", "grpc", "grpc_tls"];

impl PartialDns {
    /// `later` on top of `self`, key by key.
    pub fn merge(&mut self, later: &PartialDns) {
        over!(self, later; allow_stale, max_stale, node_ttl, udp_answer_limit, a_record_limit,
            enable_truncate, only_passing, disable_compression, enable_additional_node_meta_txt,
            recursor_strategy, recursor_timeout);
        self.service_ttl
            .extend(later.service_ttl.iter().map(|(k, v)| (k.clone(), *v)));
        over!(self.soa, later.soa; refresh, retry, expire, min_ttl);
    }
}

/// Decodes a `dns_config` value (a map, or the list of maps of repeated HCL blocks) into `dns`.
pub fn decode_dns_config(dns: &mut PartialDns, v: &Value, cx: &mut Cx) -> Result<(), ConfigError> {
    for (k, v) in cx.object("dns_config", v)? {
        let key = format!("dns_config.{k}");
        match k.as_str() {
            "allow_stale" => dns.allow_stale = Some(cx.bool(&key, v)?),
            "max_stale" => dns.max_stale = Some(cx.duration(&key, v)?),
            "node_ttl" => dns.node_ttl = Some(cx.duration(&key, v)?),
            "service_ttl" => {
                for (name, ttl) in cx.object(&key, v)? {
                    let tkey = format!("{key}.{name}");
                    dns.service_ttl
                        .insert(name.clone(), cx.duration(&tkey, ttl)?);
                }
            }
            "udp_answer_limit" => dns.udp_answer_limit = Some(non_negative(cx, &key, v)?),
            "a_record_limit" => dns.a_record_limit = Some(non_negative(cx, &key, v)?),
            "enable_truncate" => dns.enable_truncate = Some(cx.bool(&key, v)?),
            "only_passing" => dns.only_passing = Some(cx.bool(&key, v)?),
            "disable_compression" => dns.disable_compression = Some(cx.bool(&key, v)?),
            "enable_additional_node_meta_txt" => {
                dns.enable_additional_node_meta_txt = Some(cx.bool(&key, v)?)
            }
            "recursor_strategy" => {
                // Consul: "" is the default (sequential); anything else unknown is an error.
                let s = cx.string(&key, v)?;
                dns.recursor_strategy = Some(match s.as_str() {
                    "" | "sequential" => RecursorStrategy::Sequential,
                    "random" => RecursorStrategy::Random,
                    _ => {
                        return Err(cx.err(
                            &key,
                            format!(
                                "invalid strategy {s:?}: expected \"sequential\" or \"random\""
                            ),
                        ))
                    }
                });
            }
            "recursor_timeout" => dns.recursor_timeout = Some(cx.duration(&key, v)?),
            "soa" => {
                for (sk, sv) in cx.object(&key, v)? {
                    let skey = format!("{key}.{sk}");
                    let slot = match sk.as_str() {
                        "refresh" => &mut dns.soa.refresh,
                        "retry" => &mut dns.soa.retry,
                        "expire" => &mut dns.soa.expire,
                        "min_ttl" => &mut dns.soa.min_ttl,
                        _ => {
                            cx.unknown(&skey);
                            continue;
                        }
                    };
                    let n = cx.uint(&skey, sv)?;
                    *slot = Some(u32::try_from(n).map_err(|_| {
                        cx.err(
                            &skey,
                            format!("{n} is too large: the most is {} seconds", u32::MAX),
                        )
                    })?);
                }
            }
            other if UNIMPLEMENTED_DNS.contains(&other) => cx.unimplemented(&key),
            _ => cx.unknown(&key),
        }
    }
    Ok(())
}

/// Decodes an `addresses` value into `addrs`.
pub fn decode_addresses(
    addrs: &mut PartialAddresses,
    v: &Value,
    cx: &mut Cx,
) -> Result<(), ConfigError> {
    for (k, v) in cx.object("addresses", v)? {
        let key = format!("addresses.{k}");
        match k.as_str() {
            "dns" => addrs.dns = Some(cx.string(&key, v)?),
            other if UNIMPLEMENTED_ADDRESSES.contains(&other) => cx.unimplemented(&key),
            _ => cx.unknown(&key),
        }
    }
    Ok(())
}

/// Consul's `udp_answer_limit`/`a_record_limit` are Go ints that validation refuses below 0.
fn non_negative(cx: &Cx, key: &str, v: &Value) -> Result<usize, ConfigError> {
    let n = cx.int(key, v)?;
    usize::try_from(n).map_err(|_| {
        cx.err(
            key,
            format!("cannot be {n}. Must be greater than or equal to zero"),
        )
    })
}

/// Decodes `recursors` (a list, or one string) into addresses.
pub fn decode_recursors(key: &str, v: &Value, cx: &Cx) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut out = Vec::new();
    for s in cx.strings(key, v)? {
        if s.contains("{{") {
            return Err(cx.err(key, template_error(&s)));
        }
        // As Consul (after template expansion), one string may hold several addresses.
        let mut words = s.split_whitespace().peekable();
        if words.peek().is_none() {
            return Err(cx.err(key, "an empty address"));
        }
        for word in words {
            out.push(parse_recursor(word).map_err(|e| cx.err(key, e))?);
        }
    }
    Ok(out)
}

fn template_error(s: &str) -> String {
    format!(
        "go-sockaddr templates are not supported by Lotse yet; give IP addresses \
         (IP or IP:port): {s:?}"
    )
}

/// One recursor: `ip`, `ip:port`, `[ipv6]:port`, `[ipv6]` or a bare IPv6 address; the port
/// defaults to 53 (as Consul's `recursorAddr`).
pub fn parse_recursor(s: &str) -> Result<SocketAddr, String> {
    if s.contains("{{") || s.contains("}}") {
        return Err(template_error(s));
    }
    if s.starts_with("unix://") {
        // Consul's wording.
        return Err(format!("DNS Recursors cannot be unix sockets: {s}"));
    }
    let addr = if let Ok(sa) = s.parse::<SocketAddr>() {
        sa
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else if let Some(ip) = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .and_then(|x| x.parse::<Ipv6Addr>().ok())
    {
        SocketAddr::new(ip.into(), 53)
    } else {
        return Err(format!(
            "invalid address {s:?}: expected an IP address or IP:port (host names are not \
             supported)"
        ));
    };
    if addr.ip().is_unspecified() {
        // Consul's wording.
        return Err(format!(
            "DNS recursor address cannot be 0.0.0.0, :: or [::]: {s:?}"
        ));
    }
    if addr.port() == 0 {
        return Err(format!("invalid port 0 in {s:?}"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::parse_recursor;

    #[test]
    fn recursor_forms() {
        let ok = [
            ("8.8.8.8", "8.8.8.8:53"),
            ("8.8.8.8:5353", "8.8.8.8:5353"),
            ("2001:db8::1", "[2001:db8::1]:53"),
            ("[2001:db8::1]", "[2001:db8::1]:53"),
            ("[2001:db8::1]:5353", "[2001:db8::1]:5353"),
        ];
        for (s, want) in ok {
            assert_eq!(parse_recursor(s).unwrap().to_string(), want, "{s}");
        }
        for (s, why) in [
            ("dns.google", "host names are not supported"),
            ("8.8.8.8:99999", "expected an IP address"),
            ("8.8.8.8:0", "invalid port 0"),
            ("0.0.0.0", "cannot be 0.0.0.0"),
            ("[::]:53", "cannot be 0.0.0.0"),
            ("{{ GetPrivateIP }}", "go-sockaddr templates"),
            ("unix:///tmp/dns.sock", "unix sockets"),
        ] {
            let e = parse_recursor(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
