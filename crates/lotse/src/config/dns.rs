//! The merged DNS keys turned into `lotse_dns::DnsConfig` and the DNS listener's address,
//! with Consul's checks (`builder.go`): `alt_domain` may not start with a label the DNS
//! interface dispatches on, recursors are deduplicated, the listener defaults to `client_addr`.

use std::net::IpAddr;
use std::time::Duration;

use lotse_dns::config::{normalize_domain, DnsConfig, SoaConfig};

use super::partial::Partial;
use super::{invalid, parse_ip, ConfigError};

/// Builds the DNS settings from the merged sources. `datacenter` is already validated and
/// lower-cased; `client_addr` is the default listener address.
pub(super) fn finalize(
    p: &Partial,
    datacenter: &str,
    client_addr: IpAddr,
    warnings: &mut Vec<String>,
) -> Result<(DnsConfig, IpAddr), ConfigError> {
    let domain = normalize_domain(p.domain.as_deref().unwrap_or("consul."));
    if domain == "." {
        // Consul would take over the root; no one means that.
        return Err(invalid("domain cannot be empty"));
    }

    let alt_domain = match p.alt_domain.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            let alt = normalize_domain(raw);
            // Consul's isValidAltDomain: `^(service|connect|node|query|addr|<dc>)\.(<dc>\.)?`.
            let first = alt.split('.').next().unwrap_or("");
            if ["service", "connect", "node", "query", "addr", datacenter].contains(&first) {
                return Err(invalid(format!(
                    "alt_domain cannot start with {{service,connect,node,query,addr,{datacenter}}}"
                )));
            }
            if alt == "." {
                return Err(invalid("alt_domain cannot be the root domain"));
            }
            if alt == domain {
                // Consul accepts this and it changes nothing; say so instead of answering twice.
                warnings.push(format!(
                    "config: alt_domain {raw:?} is the same as domain {domain:?}; ignoring it"
                ));
                None
            } else {
                Some(alt)
            }
        }
    };

    // Consul drops repeated recursors, keeping the first.
    let mut recursors = Vec::new();
    for r in &p.recursors {
        if !recursors.contains(r) {
            recursors.push(*r);
        }
    }

    let d = &p.dns;
    let def = DnsConfig::default();
    let soa = SoaConfig {
        refresh: d.soa.refresh.unwrap_or(def.soa.refresh),
        retry: d.soa.retry.unwrap_or(def.soa.retry),
        expire: d.soa.expire.unwrap_or(def.soa.expire),
        min_ttl: d.soa.min_ttl.unwrap_or(def.soa.min_ttl),
    };
    let dns = DnsConfig {
        domain,
        alt_domain,
        datacenter: datacenter.to_string(),
        allow_stale: d.allow_stale.unwrap_or(def.allow_stale),
        max_stale: d.max_stale.unwrap_or(def.max_stale),
        node_ttl: d.node_ttl.unwrap_or(def.node_ttl),
        service_ttl: d.service_ttl.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        udp_answer_limit: d.udp_answer_limit.unwrap_or(def.udp_answer_limit),
        a_record_limit: d.a_record_limit.unwrap_or(def.a_record_limit),
        enable_truncate: d.enable_truncate.unwrap_or(def.enable_truncate),
        only_passing: d.only_passing.unwrap_or(def.only_passing),
        disable_compression: d.disable_compression.unwrap_or(def.disable_compression),
        enable_additional_node_meta_txt: d
            .enable_additional_node_meta_txt
            .unwrap_or(def.enable_additional_node_meta_txt),
        recursors,
        recursor_strategy: d.recursor_strategy.unwrap_or(def.recursor_strategy),
        // 0 is Consul's "unset": its DNS client then waits its own default, 2s.
        recursor_timeout: d
            .recursor_timeout
            .filter(|t| *t != Duration::ZERO)
            .unwrap_or(def.recursor_timeout),
        soa,
    };

    let dns_addr = match p
        .addresses
        .dns
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => client_addr,
        Some(s) if s.starts_with("unix://") => {
            return Err(invalid("DNS address cannot be a unix socket"));
        }
        Some(s) => parse_ip("addresses.dns", s)?,
    };
    Ok((dns, dns_addr))
}
