//! What a question's name asks for, read as Consul reads it.
//!
//! The name is lowercased and the domain (or the alternative domain) is stripped; what is left
//! is read from the right: an optional datacenter (`<dc>` or `<dc>.dc`), then the kind of
//! lookup (`node`, `service`, `addr`, ...), then what is looked up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A question, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The domain itself (`consul.`): only SOA and NS have answers.
    Apex,
    /// `<node>.node[.<dc>]`.
    Node { name: String, dc: Option<String> },
    /// `[<tag>.]<service>.service[.<dc>]` and RFC 2782's `_<service>._<tag>.service[.<dc>]`.
    Service {
        name: String,
        tag: Option<String>,
        dc: Option<String>,
    },
    /// `<hex-ip>.addr[.<dc>]`.
    Addr(IpAddr),
    /// An `addr` label of a length that is no address: an empty answer, as Consul gives.
    AddrOddLength,
    /// A reverse name (`in-addr.arpa.` or `ip6.arpa.`) for this address.
    Ptr(IpAddr),
    /// Inside our domain but not a name Consul answers (or a kind Lotse does not serve).
    Invalid,
    /// Outside our domains: for the recursors, if any.
    Foreign,
}

/// Which of the agent's domains the name was asked under (answers name the same one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Under {
    Domain,
    AltDomain,
}

/// Reads `qname` (any case, with or without the trailing dot). `srv` is whether the question
/// is for SRV records: then, as in Consul, `_name._tag` needs no `.service` label.
pub fn classify(qname: &str, srv: bool, domain: &str, alt_domain: Option<&str>) -> (Lookup, Under) {
    let name = lowercase_fqdn(qname);
    if name.ends_with(".arpa.") {
        return (
            reverse_ip(&name).map_or(Lookup::Foreign, Lookup::Ptr),
            Under::Domain,
        );
    }
    // The longer domain first, so an alternative domain under the main one (or the other way
    // round) is recognised whole.
    let mut domains = vec![(domain, Under::Domain)];
    if let Some(alt) = alt_domain {
        domains.push((alt, Under::AltDomain));
        domains.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
    }
    let Some((rest, under)) = domains
        .iter()
        .find_map(|(d, u)| strip_domain(&name, d).map(|r| (r, *u)))
    else {
        return (Lookup::Foreign, Under::Domain);
    };
    if rest.is_empty() {
        return (Lookup::Apex, under);
    }
    let labels: Vec<&str> = rest.split('.').collect();
    (parse_labels(&labels, srv), under)
}

fn lowercase_fqdn(qname: &str) -> String {
    let mut n = qname.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// The labels before `domain` (`"a.b"` for `a.b.consul.`), `""` for the domain itself, or
/// None when the name is not under it.
fn strip_domain<'n>(name: &'n str, domain: &str) -> Option<&'n str> {
    if name == domain {
        return Some("");
    }
    let rest = name.strip_suffix(domain)?;
    rest.strip_suffix('.')
}

/// As Consul's `dispatch`: the rightmost kind label decides; what precedes it is the subject,
/// what follows it the locality.
fn parse_labels(labels: &[&str], srv: bool) -> Lookup {
    for i in (0..labels.len()).rev() {
        let (kind, subject, suffix) = match labels[i] {
            k @ ("service" | "connect" | "virtual" | "ingress" | "node" | "query" | "addr") => {
                (k, &labels[..i], &labels[i + 1..])
            }
            l if srv && l.starts_with('_') => ("service", &labels[..=i], &labels[i + 1..]),
            _ => continue,
        };
        if subject.is_empty() {
            return Lookup::Invalid;
        }
        return match kind {
            "node" => match datacenter(suffix) {
                Some(dc) => Lookup::Node {
                    name: subject.join("."),
                    dc,
                },
                None => Lookup::Invalid,
            },
            "service" => match datacenter(suffix) {
                Some(dc) => service(subject, dc),
                None => Lookup::Invalid,
            },
            "addr" => addr(subject),
            // Prepared queries, Connect, ingress and virtual IPs are not served.
            _ => Lookup::Invalid,
        };
    }
    Lookup::Invalid
}

/// The locality after the kind: nothing, `<dc>`, or `<dc>.dc` (peers and partitions are
/// Enterprise or cluster-peering features: not names here).
fn datacenter(suffix: &[&str]) -> Option<Option<String>> {
    match suffix {
        [] => Some(None),
        [dc] => Some(Some(dc.to_string())),
        [dc, "dc"] => Some(Some(dc.to_string())),
        _ => None,
    }
}

fn service(subject: &[&str], dc: Option<String>) -> Lookup {
    // RFC 2782: `_name._tag`, where `_tcp` means "any tag".
    if let [name, proto] = subject {
        if let (Some(name), Some(tag)) = (name.strip_prefix('_'), proto.strip_prefix('_')) {
            return Lookup::Service {
                name: name.to_string(),
                tag: (tag != "tcp").then(|| tag.to_string()),
                dc,
            };
        }
    }
    let Some((name, tag)) = subject.split_last() else {
        return Lookup::Invalid;
    };
    Lookup::Service {
        name: name.to_string(),
        tag: (!tag.is_empty()).then(|| tag.join(".")),
        dc,
    }
}

/// `<hex>.addr`: 8 hex digits an IPv4 address, 32 an IPv6 one; bad hex is no name, another
/// length an empty answer (Consul's quirks, kept).
fn addr(subject: &[&str]) -> Lookup {
    let [label] = subject else {
        return Lookup::Invalid;
    };
    match label.len() / 2 {
        4 | 16 => hex_ip(label).map_or(Lookup::Invalid, Lookup::Addr),
        _ => Lookup::AddrOddLength,
    }
}

/// `7f000001` → 127.0.0.1; 32 hex digits → an IPv6 address.
fn hex_ip(label: &str) -> Option<IpAddr> {
    if !label.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match label.len() {
        8 => u32::from_str_radix(label, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        32 => u128::from_str_radix(label, 16)
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        _ => None,
    }
}

/// The hex label of an address, as `addr` names and SRV targets spell it.
pub fn ip_hex(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

/// `4.3.2.1.in-addr.arpa.` → 1.2.3.4; nibble-reversed `ip6.arpa.` names likewise.
fn reverse_ip(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa.") {
        let mut octets = [0u8; 4];
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        for (i, p) in parts.iter().rev().enumerate() {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            octets[i] = p.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Some(rest) = name.strip_suffix(".ip6.arpa.") {
        let nibbles: Vec<&str> = rest.split('.').collect();
        if nibbles.len() != 32 {
            return None;
        }
        let mut v: u128 = 0;
        for nib in nibbles.iter().rev() {
            if nib.len() != 1 {
                return None;
            }
            v = (v << 4) | u128::from(u8::from_str_radix(nib, 16).ok()?);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(v)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(q: &str) -> Lookup {
        classify(q, false, "consul.", Some("alt.example.")).0
    }

    fn svc(name: &str, tag: Option<&str>, dc: Option<&str>) -> Lookup {
        Lookup::Service {
            name: name.into(),
            tag: tag.map(Into::into),
            dc: dc.map(Into::into),
        }
    }

    #[test]
    fn service_names_in_every_form() {
        assert_eq!(c("web.service.consul."), svc("web", None, None));
        assert_eq!(c("WEB.Service.CONSUL"), svc("web", None, None));
        assert_eq!(c("v1.web.service.consul."), svc("web", Some("v1"), None));
        assert_eq!(c("a.b.web.service.consul."), svc("web", Some("a.b"), None));
        assert_eq!(c("web.service.dc1.consul."), svc("web", None, Some("dc1")));
        assert_eq!(
            c("web.service.dc2.dc.consul."),
            svc("web", None, Some("dc2"))
        );
        assert_eq!(c("_web._tcp.service.consul."), svc("web", None, None));
        assert_eq!(
            c("_web._udp.service.consul."),
            svc("web", Some("udp"), None)
        );
        // For SRV questions the `service` label may be left out.
        let srv = |q: &str| classify(q, true, "consul.", None).0;
        assert_eq!(srv("_db._tcp.consul."), svc("db", None, None));
        assert_eq!(
            srv("_db._primary.dc1.consul."),
            svc("db", Some("primary"), Some("dc1"))
        );
        assert_eq!(c("_db._tcp.consul."), Lookup::Invalid);
        // The rightmost kind label wins; extra locality labels are no name.
        assert_eq!(
            c("web.service.node.consul."),
            Lookup::Node {
                name: "web.service".into(),
                dc: None
            }
        );
        assert_eq!(c("web.service.dc1.extra.more.consul."), Lookup::Invalid);
        assert_eq!(
            c("_web._v1.service.dc1.consul."),
            svc("web", Some("v1"), Some("dc1"))
        );
        assert_eq!(c("web.service.alt.example."), svc("web", None, None));
        assert_eq!(
            classify(
                "web.service.alt.example.",
                false,
                "consul.",
                Some("alt.example.")
            )
            .1,
            Under::AltDomain
        );
        // An alternative domain inside the main one is stripped whole.
        assert_eq!(
            classify(
                "web.service.test.consul.",
                false,
                "consul.",
                Some("test.consul.")
            ),
            (svc("web", None, None), Under::AltDomain)
        );
    }

    #[test]
    fn node_addr_and_reverse_names() {
        let node = |n: &str, dc: Option<&str>| Lookup::Node {
            name: n.into(),
            dc: dc.map(Into::into),
        };
        assert_eq!(c("foo.node.consul."), node("foo", None));
        assert_eq!(c("foo.bar.node.dc1.consul."), node("foo.bar", Some("dc1")));
        assert_eq!(
            c("7f000001.addr.dc1.consul."),
            Lookup::Addr("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            c("fe800000000000000000000000000001.addr.dc1.consul."),
            Lookup::Addr("fe80::1".parse().unwrap())
        );
        // Consul reads `len / 2` bytes: 7 digits are 3 (another length, an empty answer), 9
        // are 4 (then the hex fails: no name).
        assert_eq!(c("7f00001.addr.consul."), Lookup::AddrOddLength);
        assert_eq!(c("7f0000001.addr.consul."), Lookup::Invalid);
        assert_eq!(c("7f0000.addr.consul."), Lookup::AddrOddLength);
        assert_eq!(c("7g000001.addr.consul."), Lookup::Invalid);
        assert_eq!(
            c("4.3.2.1.in-addr.arpa."),
            Lookup::Ptr("1.2.3.4".parse().unwrap())
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.";
        assert_eq!(c(v6), Lookup::Ptr("fe80::1".parse().unwrap()));
        assert_eq!(c("1.2.3.in-addr.arpa."), Lookup::Foreign);
        assert_eq!(
            c("4.3.2.1.IN-ADDR.ARPA"),
            Lookup::Ptr("1.2.3.4".parse().unwrap())
        );
        assert_eq!(ip_hex("127.0.0.1".parse().unwrap()), "7f000001");
    }

    #[test]
    fn apex_invalid_and_foreign() {
        assert_eq!(c("consul."), Lookup::Apex);
        assert_eq!(c("nope.consul."), Lookup::Invalid);
        assert_eq!(c("service.consul."), Lookup::Invalid);
        assert_eq!(c("x.query.consul."), Lookup::Invalid);
        assert_eq!(c("example.com."), Lookup::Foreign);
        assert_eq!(c("notconsul."), Lookup::Foreign);
    }
}
