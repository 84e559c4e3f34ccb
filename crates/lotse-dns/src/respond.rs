//! From a request's bytes to a reply's bytes: classify the question, gather records from the
//! catalog view, cut the answer to what the transport allows, encode.
//!
//! Everything here is synchronous and touches no socket, so the UDP loop answers inline and
//! the fuzz target drives exactly what serves traffic. Two things need to wait and are
//! handed back instead of done ([`Step`]): forwarding to the recursors, and (with
//! `allow_stale = false`) confirming leadership before reading.
//!
//! The behaviour is Consul's classic `agent/dns.go` (and the miekg/dns checks in front of
//! it); where Lotse departs, the comment says so.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder, NameEncoding};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::config::DnsConfig;
use crate::name::{classify, Lookup, Under};
use crate::records::{self, Zone};
use crate::view::{Address, CatalogView, Instance, PtrTarget};

/// How the request arrived: it bounds the reply's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A UDP reply without EDNS0 is at most this long (RFC 1035).
const PLAIN_UDP_SIZE: usize = 512;
/// The largest reply over TCP: Consul's 64 KiB less the header's overhead.
const MAX_TCP_SIZE: usize = 65_523;
/// The largest reply over UDP, whatever buffer the client offers: Consul's
/// `maxUDPDatagramSize` (65,535 less room for IP and UDP headers). A datagram much past this
/// cannot be sent at all (over IPv4 at most 65,507 bytes of payload fit).
const MAX_UDP_SIZE: usize = 65_467;
/// Consul never sends more than this many answers to a 512-byte client, whatever
/// `udp_answer_limit` says.
const MAX_UDP_ANSWER_LIMIT: usize = 8;
/// The smallest an answer record can be on the wire (compressed owner, A data): it bounds how
/// many instances are worth turning into records for a reply of a given size.
const MIN_RECORD_SIZE: usize = 16;

/// What to do with a request.
pub enum Step {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Send nothing (a response, or less than a header).
    Drop,
    /// Forward the request as it came to the recursors.
    Recurse(Box<Message>),
    /// Confirm the read first (leadership), then call [`Responder::answer_confirmed`].
    Confirm(Box<Message>),
}

pub struct Responder {
    cfg: DnsConfig,
    view: Arc<CatalogView>,
    zone: Zone,
    alt: Option<Zone>,
    /// Whether lookups must be confirmed with the leader before reading.
    confirm_reads: bool,
}

/// The records of a reply before it is cut and encoded.
#[derive(Default)]
struct Reply {
    rcode: Option<ResponseCode>,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    /// Records were left out because they would not fit.
    cut: bool,
    /// For SRV answers: `extra_ends[k]` is how many additional records the first `k` answers
    /// need (their targets' records come in answer order), so a cut keeps a prefix of each
    /// section without sorting anything out.
    extra_ends: Option<Vec<usize>>,
    /// A reply about a name that is not ours (REFUSED, or SERVFAIL when recursion failed):
    /// no AA bit.
    not_ours: bool,
}

impl Reply {
    fn code(rcode: ResponseCode) -> Reply {
        Reply {
            rcode: Some(rcode),
            ..Reply::default()
        }
    }
}

impl Responder {
    pub fn new(
        cfg: DnsConfig,
        view: Arc<CatalogView>,
        confirm_reads: bool,
    ) -> Result<Responder, String> {
        let zone = Zone::new(&cfg.domain, &cfg.datacenter)
            .ok_or_else(|| format!("invalid domain {:?}", cfg.domain))?;
        let alt = match &cfg.alt_domain {
            Some(d) => Some(
                Zone::new(d, &cfg.datacenter).ok_or_else(|| format!("invalid alt_domain {d:?}"))?,
            ),
            None => None,
        };
        Ok(Responder {
            cfg,
            view,
            zone,
            alt,
            confirm_reads,
        })
    }

    /// Answers what can be answered at once; see [`Step`].
    pub fn handle(&self, raw: &[u8], transport: Transport) -> Step {
        let req = match decode(raw) {
            Ok(Some(m)) => m,
            Ok(None) => return Step::Drop,
            Err(header) => return Step::Reply(self.error(&header, ResponseCode::FormErr)),
        };
        if let Some(code) = refusal(&req) {
            let header = Header {
                metadata: req.metadata,
                counts: Default::default(),
            };
            return Step::Reply(self.error(&header, code));
        }
        let (lookup, _) = self.classify(&req.queries[0]);
        let unknown_ptr = || matches!(lookup, Lookup::Ptr(ip) if self.view.ptr(ip).is_empty());
        if !self.cfg.recursors.is_empty() && (lookup == Lookup::Foreign || unknown_ptr()) {
            return Step::Recurse(Box::new(req));
        }
        if lookup == Lookup::Foreign {
            let reply = Reply {
                rcode: Some(ResponseCode::Refused),
                not_ours: true,
                ..Reply::default()
            };
            return Step::Reply(self.encode_reply(&req, reply, transport));
        }
        if self.confirm_reads {
            return Step::Confirm(Box::new(req));
        }
        Step::Reply(self.answer_confirmed(&req, transport))
    }

    /// Answers a request whose read was confirmed (or needs no confirmation).
    pub fn answer_confirmed(&self, req: &Message, transport: Transport) -> Vec<u8> {
        let q = &req.queries[0];
        let (lookup, under) = self.classify(q);
        let zone = match (under, &self.alt) {
            (Under::AltDomain, Some(alt)) => alt,
            _ => &self.zone,
        };
        let reply = self.lookup(&lookup, zone, q, req, transport);
        self.encode_reply(req, reply, transport)
    }

    /// A reply with only a header: for a request that could not be read in full, or that
    /// miekg/dns would refuse before Consul saw it.
    pub fn error(&self, header: &Header, rcode: ResponseCode) -> Vec<u8> {
        let mut meta = Metadata::response_from_request(&header.metadata);
        meta.response_code = rcode;
        encode_parts(&meta, &[], &[], &[], &[], None, false).unwrap_or_default()
    }

    /// A SERVFAIL: the leader could not confirm the read, or (`not_ours`) no recursor
    /// answered.
    pub fn servfail(&self, req: &Message, transport: Transport, not_ours: bool) -> Vec<u8> {
        let reply = Reply {
            rcode: Some(ResponseCode::ServFail),
            not_ours,
            ..Reply::default()
        };
        self.encode_reply(req, reply, transport)
    }

    fn classify(&self, q: &Query) -> (Lookup, Under) {
        classify(
            &q.name().to_ascii(),
            q.query_type() == RecordType::SRV,
            &self.cfg.domain,
            self.cfg.alt_domain.as_deref(),
        )
    }

    fn lookup(
        &self,
        lookup: &Lookup,
        zone: &Zone,
        q: &Query,
        req: &Message,
        transport: Transport,
    ) -> Reply {
        let owner = q.name();
        let qtype = q.query_type();
        let local = |dc: &Option<String>| dc.as_deref().is_none_or(|d| d == self.cfg.datacenter);
        if let Lookup::Ptr(ip) = lookup {
            return self.ptr(*ip, owner, qtype);
        }
        // As Consul: SOA and NS questions on any name in the domain are about the domain.
        let mut reply = match (qtype, lookup) {
            (RecordType::SOA, _) => {
                let mut r = Reply::default();
                r.answers.extend(zone.soa(&self.cfg, serial()));
                self.nameservers(zone, &mut r.authorities, &mut r.additionals);
                return r;
            }
            (RecordType::NS, _) => {
                let mut r = Reply::default();
                self.nameservers(zone, &mut r.answers, &mut r.additionals);
                return r;
            }
            (RecordType::AXFR, _) => return Reply::code(ResponseCode::NotImp),
            (_, Lookup::Node { name, dc }) if local(dc) => self.node(name, owner, qtype),
            (_, Lookup::Service { name, tag, dc }) if local(dc) => {
                let size = max_size(req, transport);
                let plain = transport == Transport::Udp && size == PLAIN_UDP_SIZE;
                let spelled = spelled_zone(owner, zone, &self.cfg.datacenter);
                self.service(&spelled, name, tag.as_deref(), owner, qtype, size, plain)
            }
            (_, Lookup::Addr(ip)) => addr(*ip, owner, qtype, self.cfg.node_ttl_secs()),
            // Consul's quirk: an `addr` label of another length is an empty answer.
            (_, Lookup::AddrOddLength) => return Reply::default(),
            _ => Reply::code(ResponseCode::NXDomain),
        };
        // A name that does not exist, or has no records of the asked type, carries the SOA
        // so resolvers can cache the negative answer. (Consul leaves it out of a node's
        // empty answer; RFC 2308 wants it there, and it costs nothing.)
        if reply.answers.is_empty() && !reply.cut && reply.authorities.is_empty() {
            reply.authorities.extend(zone.soa(&self.cfg, serial()));
        }
        reply
    }

    /// NS records for the domain: up to three servers (healthy instances of the `consul`
    /// service, shuffled) by their node names, with their addresses as glue.
    fn nameservers(&self, zone: &Zone, ns: &mut Vec<Record>, glue: &mut Vec<Record>) {
        let servers = self.view.service("consul");
        let ttl = self.cfg.node_ttl_secs();
        // `only_passing` applies here too, as in Consul's `lookupServiceNodes`.
        let mut nodes: Vec<_> = servers
            .instances
            .iter()
            .filter(|i| !self.cfg.only_passing || i.passing)
            .map(|i| i.node.clone())
            .collect();
        nodes.shuffle(&mut rand::thread_rng());
        for node in nodes {
            if ns.len() == 3 {
                break;
            }
            // Consul skips servers whose names are no plain DNS label.
            if !node
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                continue;
            }
            let lower = node.name.to_ascii_lowercase();
            let Some(target) = zone.node_name(&lower, &node.datacenter) else {
                continue;
            };
            if ns
                .iter()
                .any(|r| matches!(&r.data, RData::NS(n) if n.0 == target))
            {
                continue;
            }
            if let Some(a) = node.address.as_ref() {
                glue.extend(records::address_record(&target, a, ttl, true, true));
            }
            ns.push(records::ns(&zone.apex, target, ttl));
        }
    }

    /// A node: its address (A, AAAA, or a CNAME for a host name) and its meta as TXT (in the
    /// answer for TXT and ANY, else in the additional section).
    fn node(&self, name: &str, owner: &Name, qtype: RecordType) -> Reply {
        let Some(node) = self.view.node(name) else {
            return Reply::code(ResponseCode::NXDomain);
        };
        let ttl = self.cfg.node_ttl_secs();
        let mut r = Reply::default();
        let (v4, v6) = families(qtype);
        if let Some(a) = node.address.as_ref() {
            r.answers
                .extend(records::address_record(owner, a, ttl, v4, v6));
        }
        match qtype {
            RecordType::TXT | RecordType::ANY => {
                r.answers.extend(records::meta_txt(owner, &node, ttl))
            }
            RecordType::A | RecordType::AAAA if self.cfg.enable_additional_node_meta_txt => {
                r.additionals.extend(records::meta_txt(owner, &node, ttl))
            }
            _ => {}
        }
        r
    }

    /// A service: its instances that are not critical (with `only_passing`, passing), with
    /// the tag if one was asked, in random order, as A/AAAA records or as SRV records with
    /// their targets' addresses as additional records.
    #[allow(clippy::too_many_arguments)]
    fn service(
        &self,
        zone: &Zone,
        name: &str,
        tag: Option<&str>,
        owner: &Name,
        qtype: RecordType,
        max_size: usize,
        plain_udp: bool,
    ) -> Reply {
        let set = self.view.service(name);
        let only_passing = self.cfg.only_passing;
        let order: Vec<&Instance> = set
            .instances
            .iter()
            .filter(|i| (!only_passing || i.passing) && tag.is_none_or(|t| i.has_tag(t)))
            .collect();
        if order.is_empty() {
            return Reply::code(ResponseCode::NXDomain);
        }
        let ttl = self.cfg.service_ttl_for(name);
        // Records are made only for instances that could fit: a 5,000-instance service
        // costs what fits in the reply, not what exists.
        let mut fit = max_size / MIN_RECORD_SIZE;
        if plain_udp {
            fit = fit.min(self.cfg.udp_answer_limit.min(MAX_UDP_ANSWER_LIMIT));
        }
        let order = Shuffled::new(order);
        if qtype == RecordType::SRV {
            return self.srv_records(zone, owner, order, ttl, fit);
        }
        // `a_record_limit` shapes the answer, as in Consul (serviceNodeRecords): stopping at
        // it leaves out nothing the client could get over TCP, so it is no cut (no TC). Only
        // the transport's limit, when it is the lower one, is.
        let a_limit = self.cfg.a_record_limit;
        let limited_by_transport = a_limit == 0 || fit < a_limit;
        if !limited_by_transport {
            fit = a_limit;
        }
        let (v4, v6) = families(qtype);
        let mut r = Reply::default();
        let mut seen: Seen<&Address> = Seen::new(fit);
        let mut cname: Option<Record> = None;
        for inst in order {
            let Some(addr) = inst.address() else { continue };
            // One record per address: several instances on one host are one A record.
            if seen.contains(&addr) {
                continue;
            }
            if r.answers.len() == fit {
                r.cut = limited_by_transport;
                break;
            }
            seen.insert(addr);
            match addr {
                Address::Ip(_) => r
                    .answers
                    .extend(records::address_record(owner, addr, ttl, v4, v6)),
                // A host name is answered with a CNAME only when no instance has an IP.
                Address::Host(_) if cname.is_none() => {
                    cname = records::address_record(owner, addr, ttl, v4, v6)
                }
                Address::Host(_) => {}
            }
        }
        if r.answers.is_empty() {
            r.answers.extend(cname);
        }
        r
    }

    fn srv_records(
        &self,
        zone: &Zone,
        owner: &Name,
        order: Shuffled<'_>,
        ttl: u32,
        fit: usize,
    ) -> Reply {
        let meta = self.cfg.enable_additional_node_meta_txt;
        let mut r = Reply::default();
        // One SRV per node, address and port: instances that differ only by ID collapse.
        let mut seen: Seen<(&str, Option<&Address>, u16)> = Seen::new(fit);
        // Targets already resolved in the additional section (instances on one node share
        // their node's records).
        let mut targets: Seen<Name> = Seen::new(fit);
        let mut extra_ends = vec![0];
        for inst in order {
            let key = (inst.node.name.as_str(), inst.address(), inst.port);
            if seen.contains(&key) {
                continue;
            }
            if r.answers.len() == fit {
                r.cut = true;
                break;
            }
            seen.insert(key);
            if let Some((srv, extra)) = records::srv(zone, owner, inst, ttl, meta) {
                let target = match &srv.data {
                    RData::SRV(s) => Some(s.target.clone()),
                    _ => None,
                };
                r.answers.push(srv);
                if target.is_some_and(|t| targets.insert(t)) {
                    r.additionals.extend(extra);
                }
                extra_ends.push(r.additionals.len());
            }
        }
        r.extra_ends = Some(extra_ends);
        r
    }

    /// PTR: the first node (by name) with that address, else the first service instance;
    /// TTL 0 and always under the main domain, as Consul answers.
    fn ptr(&self, ip: IpAddr, owner: &Name, qtype: RecordType) -> Reply {
        let targets = self.view.ptr(ip);
        let Some(first) = targets.first() else {
            // (Consul up to 1.17.2 answered SERVFAIL here; later versions NXDOMAIN.)
            let mut r = Reply::code(ResponseCode::NXDomain);
            r.authorities.extend(self.zone.soa(&self.cfg, serial()));
            return r;
        };
        let name = match first {
            PtrTarget::Node { name, datacenter } => self.zone.node_name(name, datacenter),
            PtrTarget::Service { name } => self
                .zone
                .under_dc(&format!("{name}.service"), &self.cfg.datacenter),
        };
        let mut r = Reply::default();
        r.answers.extend(name.map(|n| records::ptr(owner, n, 0)));
        if qtype == RecordType::SOA {
            r.authorities.extend(self.zone.soa(&self.cfg, serial()));
        }
        r
    }

    /// Cuts `reply` to the transport's size and encodes it.
    fn encode_reply(&self, req: &Message, mut reply: Reply, transport: Transport) -> Vec<u8> {
        let mut meta = Metadata::response_from_request(&req.metadata);
        meta.authoritative = !reply.not_ours;
        meta.recursion_available = !self.cfg.recursors.is_empty();
        meta.response_code = reply.rcode.unwrap_or(ResponseCode::NoError);
        // As Consul: the client's own buffer size is echoed back (but a REFUSED comes from
        // miekg/dns's mux, which adds no OPT record).
        let refused = reply.rcode == Some(ResponseCode::Refused);
        let edns = req.edns.as_ref().filter(|_| !refused).map(|e| {
            let mut out = Edns::new();
            out.set_max_payload(e.max_payload().max(PLAIN_UDP_SIZE as u16));
            out
        });
        let compress = !self.cfg.disable_compression;
        let limit = max_size(req, transport);
        // A reply cut short says so (TC) with `enable_truncate`, so a resolver can ask again
        // over TCP.
        let say_cut = self.cfg.enable_truncate;
        meta.truncation = reply.cut && say_cut;
        let encode = |answers: &[Record],
                      authorities: &[Record],
                      additionals: &[Record],
                      meta: &Metadata| {
            encode_parts(
                meta,
                &req.queries,
                answers,
                authorities,
                additionals,
                edns.as_ref(),
                compress,
            )
        };
        let full = encode(
            &reply.answers,
            &reply.authorities,
            &reply.additionals,
            &meta,
        );
        let full_len = match full {
            Ok(b) if b.len() <= limit => return b,
            Ok(b) => Some(b.len()),
            Err(_) => None,
        };
        // Cut: the most answers that fit, with only the additional records their targets
        // need; the authority section goes first, as in Consul.
        reply.authorities.clear();
        meta.truncation = say_cut;
        let additionals_for = |k: usize| -> &[Record] {
            match &reply.extra_ends {
                Some(ends) => &reply.additionals[..ends[k]],
                None => &[],
            }
        };
        let n = reply.answers.len();
        let try_k = |k: usize| {
            encode(&reply.answers[..k], &[], additionals_for(k), &meta)
                .ok()
                .filter(|b| b.len() <= limit)
        };
        // Answers are much alike in size: start from the proportional guess and step from
        // there (two or three encodings), rather than bisecting from nothing (eight or more).
        let guess = match full_len {
            Some(len) => {
                let base = encode(&[], &[], &[], &meta).map_or(0, |b| b.len());
                let room = limit.saturating_sub(base);
                let used = len.saturating_sub(base).max(1);
                // (All `n` may fit once the authority section is gone.)
                (n * room / used).min(n)
            }
            None => n / 2,
        };
        largest_fitting(n, guess, try_k)
            .or_else(|| encode(&[], &[], &[], &meta).ok())
            .unwrap_or_default()
    }
}

/// The encoding of the largest `k <= n` for which `try_k(k)` is `Some`, assuming that
/// whatever fits with `k` answers fits with fewer: steps from `guess` one at a time while that
/// is cheap, then bisects.
fn largest_fitting(
    n: usize,
    guess: usize,
    mut try_k: impl FnMut(usize) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    const STEPS: usize = 3;
    // Invariant: `lo` fits (or is None: nothing known to fit yet), `hi` does not.
    let (mut lo, mut hi): (Option<(usize, Vec<u8>)>, usize) = (None, n + 1);
    let mut k = guess.min(n);
    for _ in 0..STEPS {
        match try_k(k) {
            Some(b) => {
                lo = Some((k, b));
                if k + 1 >= hi {
                    break;
                }
                k += 1;
            }
            None => {
                hi = k;
                if k == 0 {
                    break;
                }
                k -= 1;
            }
        }
        if lo.as_ref().is_some_and(|(l, _)| l + 1 >= hi) {
            break;
        }
    }
    // Bisect what is left between the best fit known and the smallest misfit.
    loop {
        let from = lo.as_ref().map_or(0, |(l, _)| l + 1);
        if from >= hi {
            break;
        }
        let mid = from + (hi - from) / 2;
        match try_k(mid) {
            Some(b) => lo = Some((mid, b)),
            None => hi = mid,
        }
    }
    lo.map(|(_, b)| b)
}

/// Membership for what one reply has used: a scan for the few answers of a UDP reply, a hash
/// set for the thousands a TCP reply can hold.
enum Seen<T> {
    Few(Vec<T>),
    Many(HashSet<T>),
}

impl<T: Hash + Eq> Seen<T> {
    fn new(expected: usize) -> Self {
        if expected <= 32 {
            Seen::Few(Vec::with_capacity(expected))
        } else {
            Seen::Many(HashSet::with_capacity(expected.min(1024)))
        }
    }

    fn contains(&self, t: &T) -> bool {
        match self {
            Seen::Few(v) => v.contains(t),
            Seen::Many(h) => h.contains(t),
        }
    }

    /// True if `t` was not there yet.
    fn insert(&mut self, t: T) -> bool {
        match self {
            Seen::Few(v) if v.contains(&t) => false,
            Seen::Few(v) => {
                v.push(t);
                true
            }
            Seen::Many(h) => h.insert(t),
        }
    }
}

/// Instances in random order, shuffled only as far as they are taken (one Fisher–Yates step
/// per item): a reply that takes 3 of 5,000 instances costs 3 steps, not 5,000.
struct Shuffled<'a> {
    items: Vec<&'a Instance>,
    next: usize,
    rng: rand::rngs::ThreadRng,
}

impl<'a> Shuffled<'a> {
    fn new(items: Vec<&'a Instance>) -> Self {
        Shuffled {
            items,
            next: 0,
            rng: rand::thread_rng(),
        }
    }
}

impl<'a> Iterator for Shuffled<'a> {
    type Item = &'a Instance;

    fn next(&mut self) -> Option<&'a Instance> {
        let n = self.items.len();
        if self.next >= n {
            return None;
        }
        let j = self.rng.gen_range(self.next..n);
        self.items.swap(self.next, j);
        self.next += 1;
        Some(self.items[self.next - 1])
    }
}

/// What miekg/dns refuses before Consul sees a request: opcodes other than QUERY and NOTIFY
/// (NOTIMP), and anything but exactly one question (FORMERR).
fn refusal(req: &Message) -> Option<ResponseCode> {
    if !matches!(req.metadata.op_code, OpCode::Query | OpCode::Notify) {
        Some(ResponseCode::NotImp)
    } else if req.queries.len() != 1 {
        Some(ResponseCode::FormErr)
    } else {
        None
    }
}

/// The domain as the question spelled it (`CoNsUl.` in `web.service.CoNsUl.`): as Consul's
/// `getResponseDomain`, the names an answer makes (SRV targets and the records naming them)
/// are built under it, so they match the question's case.
fn spelled_zone<'z>(qname: &Name, zone: &'z Zone, datacenter: &str) -> Cow<'z, Zone> {
    let n = usize::from(zone.apex.num_labels());
    let total = usize::from(qname.num_labels());
    if total < n {
        return Cow::Borrowed(zone);
    }
    // The question's last labels, compared byte for byte with the zone's (no allocation in
    // the usual case: the same spelling).
    let same = qname.iter().skip(total - n).eq(zone.apex.iter());
    if same {
        return Cow::Borrowed(zone);
    }
    let mut text = qname.trim_to(n).to_ascii();
    if !text.ends_with('.') {
        text.push('.');
    }
    if !text.eq_ignore_ascii_case(&zone.text) {
        return Cow::Borrowed(zone);
    }
    Zone::new(&text, datacenter).map_or(Cow::Borrowed(zone), Cow::Owned)
}

/// `<hex>.addr`: the address in the answer, or (for another type) in the additional
/// section, as Consul does.
fn addr(ip: IpAddr, owner: &Name, qtype: RecordType, ttl: u32) -> Reply {
    let (v4, v6) = families(qtype);
    let mut r = Reply::default();
    match records::ip_record(owner, ip, ttl, v4, v6) {
        Some(rec) => r.answers.push(rec),
        None => r
            .additionals
            .extend(records::ip_record(owner, ip, ttl, true, true)),
    }
    r
}

/// Which address families a question's type asks for.
fn families(qtype: RecordType) -> (bool, bool) {
    match qtype {
        RecordType::A => (true, false),
        RecordType::AAAA => (false, true),
        RecordType::ANY => (true, true),
        _ => (false, false),
    }
}

/// The largest reply the client takes: 512 over plain UDP, its EDNS0 buffer (at least 512,
/// at most what a datagram carries) with EDNS0, 64 KiB over TCP.
pub(crate) fn max_size(req: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => MAX_TCP_SIZE,
        Transport::Udp => req.edns.as_ref().map_or(PLAIN_UDP_SIZE, |e| {
            usize::from(e.max_payload()).clamp(PLAIN_UDP_SIZE, MAX_UDP_SIZE)
        }),
    }
}

fn serial() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

/// Decodes a request: `Err(header)` when the header is readable but the rest is not (the
/// reply is FORMERR), `Ok(None)` for a response or less than a header (dropped).
pub fn decode(raw: &[u8]) -> Result<Option<Message>, Header> {
    let mut decoder = BinDecoder::new(raw);
    let Ok(header) = Header::read(&mut decoder) else {
        return Ok(None);
    };
    if header.metadata.message_type != MessageType::Query {
        return Ok(None);
    }
    match Message::from_vec(raw) {
        Ok(m) => Ok(Some(m)),
        Err(_) => Err(header),
    }
}

fn encode_parts(
    meta: &Metadata,
    queries: &[Query],
    answers: &[Record],
    authorities: &[Record],
    additionals: &[Record],
    edns: Option<&Edns>,
    compress: bool,
) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    if !compress {
        enc.set_name_encoding(NameEncoding::Uncompressed);
    }
    let header = hickory_proto::op::emit_message_parts(
        meta,
        &mut queries.iter(),
        &mut answers.iter(),
        &mut authorities.iter(),
        &mut additionals.iter(),
        edns,
        None,
        &mut enc,
    )?;
    // The encoder stops quietly at 64 KiB and counts what it wrote: a message that lost
    // records that way does not fit (else a TCP reply went out with SRV records whose
    // addresses were dropped).
    let c = header.counts;
    let complete = usize::from(c.answers) == answers.len()
        && usize::from(c.authorities) == authorities.len()
        && usize::from(c.additionals) == additionals.len() + usize::from(edns.is_some());
    if !complete {
        return Err(hickory_proto::ProtoError::Message(
            "the reply does not fit in a message",
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod search_tests {
    use super::largest_fitting;

    #[test]
    fn largest_fitting_finds_the_boundary_from_any_guess() {
        for n in 0..40usize {
            // `fit`: the largest k that fits (None: not even 0 answers fit).
            for fit in std::iter::once(None).chain((0..=n).map(Some)) {
                for guess in 0..=n + 2 {
                    let mut calls = 0;
                    let got = largest_fitting(n, guess, |k| {
                        calls += 1;
                        fit.filter(|f| k <= *f).map(|_| vec![k as u8])
                    });
                    assert_eq!(
                        got,
                        fit.map(|f| vec![f as u8]),
                        "n={n} fit={fit:?} guess={guess}"
                    );
                    assert!(
                        calls <= 3 + 7,
                        "n={n} fit={fit:?} guess={guess}: {calls} tries"
                    );
                }
            }
        }
    }
}
