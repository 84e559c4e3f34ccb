//! Resource records as Consul writes them: owner names, targets under `<dc>.<domain>`, TTLs.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record};

use crate::config::DnsConfig;
use crate::view::{Address, Instance, NodeRecord};

/// The names answers are built under: the domain a question was asked in.
#[derive(Debug, Clone)]
pub struct Zone {
    /// `consul.` (or the alternative domain), as a name.
    pub apex: Name,
    /// The same, as text with its trailing dot.
    pub text: String,
    /// The local datacenter and `<dc>.<domain>` as a name, built once: most names an answer
    /// makes end in it.
    dc: String,
    dc_suffix: Name,
}

impl Zone {
    pub fn new(domain: &str, datacenter: &str) -> Option<Zone> {
        Some(Zone {
            apex: Name::from_ascii(domain).ok()?,
            text: domain.to_string(),
            dc: datacenter.to_string(),
            dc_suffix: Name::from_ascii(format!("{datacenter}.{domain}")).ok()?,
        })
    }

    /// `relative` (`n1.node`) under `<dc>.<domain>`.
    pub fn in_dc(&self, relative: &Name, dc: &str) -> Option<Name> {
        if dc == self.dc {
            relative.clone().append_domain(&self.dc_suffix).ok()
        } else {
            let suffix = Name::from_ascii(format!("{dc}.{}", self.text)).ok()?;
            relative.clone().append_domain(&suffix).ok()
        }
    }

    /// `<label>.<dc>.<domain>`, e.g. `web1.node.dc1.consul.`; None if it is no valid name
    /// (a registered node name can be anything).
    pub fn under_dc(&self, label: &str, dc: &str) -> Option<Name> {
        Name::from_ascii(format!("{label}.{dc}.{}", self.text)).ok()
    }

    pub fn node_name(&self, node: &str, dc: &str) -> Option<Name> {
        self.under_dc(&format!("{node}.node"), dc)
    }

    /// Consul's SOA: `ns.<domain>` and `hostmaster.<domain>`, serial = the Unix time.
    pub fn soa(&self, cfg: &DnsConfig, serial: u32) -> Option<Record> {
        let mname = Name::from_ascii(format!("ns.{}", self.text)).ok()?;
        let rname = Name::from_ascii(format!("hostmaster.{}", self.text)).ok()?;
        let s = cfg.soa;
        let soa = SOA::new(
            mname,
            rname,
            serial,
            clamp_i32(s.refresh),
            clamp_i32(s.retry),
            clamp_i32(s.expire),
            s.min_ttl,
        );
        // The SOA's own TTL is its minimum, so a negative answer is cached that long.
        Some(Record::from_rdata(
            self.apex.clone(),
            s.min_ttl,
            RData::SOA(soa),
        ))
    }
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// The A or AAAA record for `ip` under `owner`, if the question's type wants that family
/// (`want_v4`/`want_v6`).
pub fn ip_record(
    owner: &Name,
    ip: IpAddr,
    ttl: u32,
    want_v4: bool,
    want_v6: bool,
) -> Option<Record> {
    match ip {
        IpAddr::V4(v4) if want_v4 => Some(Record::from_rdata(owner.clone(), ttl, RData::A(A(v4)))),
        IpAddr::V6(v6) if want_v6 => Some(Record::from_rdata(
            owner.clone(),
            ttl,
            RData::AAAA(AAAA(v6)),
        )),
        _ => None,
    }
}

/// The record for an address: A/AAAA for an IP, a CNAME for a host name.
pub fn address_record(
    owner: &Name,
    addr: &Address,
    ttl: u32,
    want_v4: bool,
    want_v6: bool,
) -> Option<Record> {
    match addr {
        Address::Ip(ip) => ip_record(owner, *ip, ttl, want_v4, want_v6),
        Address::Host(host) => {
            let target = Name::from_ascii(fqdn(host)).ok()?;
            Some(Record::from_rdata(
                owner.clone(),
                ttl,
                RData::CNAME(CNAME(target)),
            ))
        }
    }
}

fn fqdn(host: &str) -> String {
    if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    }
}

/// Node meta as TXT records, one per `key=value`.
pub fn meta_txt<'n>(
    owner: &Name,
    node: &'n NodeRecord,
    ttl: u32,
) -> impl Iterator<Item = Record> + 'n {
    let owner = owner.clone();
    node.meta_rdata
        .iter()
        .map(move |rdata| Record::from_rdata(owner.clone(), ttl, rdata.clone()))
}

/// An SRV answer for `inst` and the records that resolve its target (additional section).
///
/// As Consul: the target is `<hex-ip>.addr.<dc>.<domain>` whenever the service has its own
/// IP (even the node's), the host name itself when its address is a name, and otherwise the
/// node's name `<node>.node.<dc>.<domain>`. Node meta goes along as TXT records under the
/// node's name.
pub fn srv(
    zone: &Zone,
    owner: &Name,
    inst: &Instance,
    ttl: u32,
    meta_in_extra: bool,
) -> Option<(Record, Vec<Record>)> {
    let node = &inst.node;
    let node_name = zone.in_dc(node.label.as_ref()?, &node.datacenter)?;
    let (target, mut extra) = match (&inst.service_address, &inst.own_target) {
        (Some(Address::Ip(ip)), Some(own)) => {
            let t = zone.in_dc(own, &node.datacenter)?;
            let rec = ip_record(&t, *ip, ttl, true, true)?;
            (t, vec![rec])
        }
        (Some(Address::Host(_)), Some(host)) => (host.clone(), Vec::new()),
        (Some(_), None) => return None,
        (None, _) => {
            let extra = node
                .address
                .as_ref()
                .and_then(|a| address_record(&node_name, a, ttl, true, true))
                .into_iter()
                .collect();
            (node_name.clone(), extra)
        }
    };
    if meta_in_extra {
        extra.extend(meta_txt(&node_name, node, ttl));
    }
    let rec = Record::from_rdata(
        owner.clone(),
        ttl,
        RData::SRV(SRV::new(1, inst.weight, inst.port, target)),
    );
    Some((rec, extra))
}

pub fn ptr(owner: &Name, target: Name, ttl: u32) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::PTR(PTR(target)))
}

pub fn ns(owner: &Name, target: Name, ttl: u32) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::NS(NS(target)))
}
