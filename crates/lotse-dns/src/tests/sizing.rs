//! Cutting replies to size: `udp_answer_limit` (only for 512-byte clients), EDNS0 buffer
//! sizes (honoured and echoed), the TC flag, and the largest replies over TCP.

use std::collections::HashSet;
use std::time::Instant;

use hickory_proto::rr::rdata::{A, SRV};

use super::*;
use crate::testing::*;

/// The largest reply over TCP (Consul's 64 KiB less the overhead).
const MAX_TCP: usize = 65_523;

/// `n` instances of `web`, each on its own node `nNNNN` (fixed width, so every record of a
/// kind has one size) at 10.x.y.z.
fn many(n: usize) -> TestCatalog {
    many_named(n, |i| format!("n{i:04}"))
}

fn many_named(n: usize, name: impl Fn(usize) -> String) -> TestCatalog {
    let c = TestCatalog::new();
    for i in 0..n {
        let addr = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        c.register(
            node(&name(i), &addr),
            Some(service(&format!("w{i}"), "web", 80)),
            vec![],
        );
    }
    c
}

/// Every SRV answer's target has its address among the additional records, and every
/// additional record belongs to a target.
fn assert_srv_extras_match(m: &Message) {
    let targets: Vec<&Name> = m
        .answers
        .iter()
        .map(|a| match &a.data {
            RData::SRV(s) => &s.target,
            other => panic!("not an SRV: {other:?}"),
        })
        .collect();
    for t in &targets {
        assert!(
            m.additionals
                .iter()
                .any(|e| e.name == **t && matches!(e.data, RData::A(_) | RData::AAAA(_))),
            "SRV target {t} has no address record"
        );
    }
    for e in &m.additionals {
        assert!(
            targets.iter().any(|t| **t == e.name),
            "additional record {} belongs to no SRV answer",
            e.name
        );
    }
}

/// The size of reply `m` (whose bytes are `raw`) with one more answer, for an instance of
/// [`many`]`(n)` it left out: an A record, or an SRV record with its A.
fn with_one_more(m: &Message, raw: &[u8], n: usize) -> usize {
    // Re-encoding the reply gives its size back.
    assert_eq!(m.to_vec().unwrap().len(), raw.len());
    let owner = m.queries[0].name().clone();
    let mut bigger = m.clone();
    if let Some(RData::SRV(_)) = m.answers.first().map(|a| &a.data) {
        let used: HashSet<String> = m.additionals.iter().map(|e| e.name.to_ascii()).collect();
        let spare = (0..n)
            .map(|i| format!("n{i:04}.node.dc1.consul."))
            .find(|t| !used.contains(t))
            .expect("an instance left out");
        let target = name(&spare);
        bigger.answers.push(Record::from_rdata(
            owner,
            0,
            RData::SRV(SRV::new(1, 1, 80, target.clone())),
        ));
        bigger.additionals.push(Record::from_rdata(
            target,
            0,
            RData::A(A::new(10, 99, 99, 99)),
        ));
    } else {
        bigger.answers.push(Record::from_rdata(
            owner,
            0,
            RData::A(A::new(10, 99, 99, 99)),
        ));
    }
    bigger.to_vec().unwrap().len()
}

#[test]
fn udp_answer_limit_applies_only_to_512_byte_clients() {
    let c = many(10);
    let r = c.responder(cfg());
    let count = |req: Message, t: Transport| {
        let m = exchange(&r, &req, t);
        (m.answers.len(), m.metadata.truncation)
    };
    let q = "web.service.consul.";
    // Default 3, with TC (Lotse's enable_truncate default).
    assert_eq!(count(query(q, RecordType::A), Transport::Udp), (3, true));
    assert_eq!(count(query(q, RecordType::ANY), Transport::Udp), (3, true));
    // EDNS at (or below) 512 is still a 512-byte client.
    assert_eq!(
        count(query_edns(q, RecordType::A, 512), Transport::Udp),
        (3, true)
    );
    assert_eq!(
        count(query_edns(q, RecordType::A, 100), Transport::Udp),
        (3, true)
    );
    // Above 512 only the size counts.
    assert_eq!(
        count(query_edns(q, RecordType::A, 513), Transport::Udp),
        (10, false)
    );
    assert_eq!(
        count(query_edns(q, RecordType::A, 4096), Transport::Udp),
        (10, false)
    );
    // TCP: no count limit.
    assert_eq!(count(query(q, RecordType::A), Transport::Tcp), (10, false));

    // SRV answers are limited the same way, with their additional records in step.
    let m = ask(&r, q, RecordType::SRV);
    assert_eq!(m.answers.len(), 3);
    assert!(m.metadata.truncation);
    assert_srv_extras_match(&m);
    assert_eq!(m.additionals.len(), 3);

    for (limit, want) in [(0, 0), (1, 1), (5, 5), (8, 8), (9, 8), (20, 8), (1000, 8)] {
        let r = c.responder(DnsConfig {
            udp_answer_limit: limit,
            ..cfg()
        });
        for qtype in [RecordType::A, RecordType::SRV] {
            let m = ask(&r, q, qtype);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{limit}");
            assert_eq!(m.answers.len(), want, "udp_answer_limit {limit}, {qtype}");
            assert!(m.metadata.truncation, "udp_answer_limit {limit}");
            assert!(m.authorities.is_empty(), "a cut answer carries no SOA");
            let m = exchange(&r, &query_edns(q, qtype, 1232), Transport::Udp);
            assert_eq!(m.answers.len(), 10);
            let m = ask_tcp(&r, q, qtype);
            assert_eq!(m.answers.len(), 10);
        }
    }
}

#[test]
fn enable_truncate_false_cuts_silently() {
    let c = many(10);
    let r = c.responder(DnsConfig {
        enable_truncate: false,
        ..cfg()
    });
    let m = ask(&r, "web.service.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 3);
    assert!(!m.metadata.truncation);
    let m = ask(&r, "web.service.consul.", RecordType::SRV);
    assert_eq!(m.answers.len(), 3);
    assert!(!m.metadata.truncation);
    assert_srv_extras_match(&m);
    // Cut by size, too.
    let c = many(300);
    let r = c.responder(DnsConfig {
        enable_truncate: false,
        ..cfg()
    });
    let req = query_edns("web.service.consul.", RecordType::A, 1232);
    let m = exchange(&r, &req, Transport::Udp);
    assert!(!m.answers.is_empty() && m.answers.len() < 300);
    assert!(!m.metadata.truncation);
}

#[test]
fn edns_size_is_honoured_and_echoed() {
    let c = many(300);
    let r = c.responder(cfg());
    for size in [600u16, 1232, 1400, 4096] {
        for qtype in [RecordType::A, RecordType::SRV] {
            let req = query_edns("web.service.consul.", qtype, size);
            let raw = raw_reply(&r, &req, Transport::Udp);
            assert!(raw.len() <= usize::from(size), "{} > {size}", raw.len());
            let m = Message::from_vec(&raw).unwrap();
            assert!(m.metadata.truncation, "{size} {qtype}");
            assert!(!m.answers.is_empty());
            assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(size));
            if qtype == RecordType::SRV {
                assert_srv_extras_match(&m);
            }
            // As many answers as fit: one more would not.
            let grown = with_one_more(&m, &raw, 300);
            assert!(
                grown > usize::from(size),
                "{} answers in {} bytes of {size}: room for more",
                m.answers.len(),
                raw.len()
            );
        }
    }
    // A reply that fits: the client's own size is echoed, whatever it is.
    let c = many(2);
    let r = c.responder(cfg());
    for size in [512u16, 1232, 12345, 65535] {
        let m = exchange(
            &r,
            &query_edns("web.service.consul.", RecordType::A, size),
            Transport::Udp,
        );
        assert_eq!(m.answers.len(), 2);
        assert!(!m.metadata.truncation);
        assert_eq!(m.edns.as_ref().unwrap().max_payload(), size);
    }
    // Over TCP as well.
    let m = exchange(
        &r,
        &query_edns("web.service.consul.", RecordType::A, 1232),
        Transport::Tcp,
    );
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
    // Negative answers too.
    let m = exchange(
        &r,
        &query_edns("nope.service.consul.", RecordType::A, 1232),
        Transport::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
    // No OPT in the request, none in the reply.
    let m = ask(&r, "web.service.consul.", RecordType::A);
    assert!(m.edns.is_none());
}

#[test]
fn a_cut_reply_keeps_its_opt_record_and_sets_tc() {
    let c = many(300);
    let r = c.responder(cfg());
    let m = exchange(
        &r,
        &query_edns("web.service.consul.", RecordType::SRV, 1232),
        Transport::Udp,
    );
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some());
    assert_srv_extras_match(&m);
}

#[test]
fn udp_replies_stay_under_the_largest_datagram() {
    // A client that offers 65,535 bytes gets at most what one UDP datagram carries (Consul
    // caps the size at 65,535 - 68, so the reply is always deliverable).
    let c = many(5000);
    let r = c.responder(cfg());
    for qtype in [RecordType::A, RecordType::SRV] {
        let req = query_edns("web.service.consul.", qtype, 65535);
        let raw = raw_reply(&r, &req, Transport::Udp);
        assert!(raw.len() <= 65_467, "{qtype}: {} bytes", raw.len());
        let m = Message::from_vec(&raw).unwrap();
        // (hickory-proto compresses only the first 120 names of a message, so a large reply
        // holds fewer records than Consul's would.)
        assert!(m.answers.len() > 500, "{qtype}: {}", m.answers.len());
        assert!(m.metadata.truncation);
    }
}

#[test]
fn large_names_are_cut_by_size_at_512() {
    // As Consul's `TestDNS_ServiceLookup_LargeResponses`: long targets, no EDNS.
    let long = |i: usize| format!("{}{i}", "x".repeat(60));
    let c = many_named(8, long);
    let r = c.responder(DnsConfig {
        udp_answer_limit: 8,
        ..cfg()
    });
    let req = query("_web._tcp.service.consul.", RecordType::SRV);
    let raw = raw_reply(&r, &req, Transport::Udp);
    assert!(raw.len() <= 512, "{}", raw.len());
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.metadata.truncation);
    assert!((1..8).contains(&m.answers.len()), "{}", m.answers.len());
    assert_eq!(m.answers.len(), m.additionals.len());
    assert_srv_extras_match(&m);
    // Over TCP all of them.
    let m = exchange(&r, &req, Transport::Tcp);
    assert_eq!(m.answers.len(), 8);
    assert!(!m.metadata.truncation);
}

#[test]
fn tcp_replies_are_cut_at_64k_too() {
    let c = many(5000);
    let r = c.responder(cfg());

    // A: as many 16-byte records as fit.
    let started = Instant::now();
    let req = query("web.service.consul.", RecordType::A);
    let raw = raw_reply(&r, &req, Transport::Tcp);
    let m = check_reply(&req.to_vec().unwrap(), &raw, Transport::Tcp).unwrap();
    assert!(raw.len() <= MAX_TCP);
    assert!(
        raw.len() + 16 > MAX_TCP,
        "room for another A in {} bytes",
        raw.len()
    );
    assert!(m.metadata.truncation, "TC over TCP too, when cut");
    let unique: HashSet<String> = ips(&m.answers).into_iter().collect();
    assert_eq!(unique.len(), m.answers.len());
    eprintln!(
        "A over TCP: {} answers in {} bytes, {:?}",
        m.answers.len(),
        raw.len(),
        started.elapsed()
    );

    // SRV: as many SRV records as fit, each with the A record of its target.
    let started = Instant::now();
    let req = query("web.service.consul.", RecordType::SRV);
    let raw = raw_reply(&r, &req, Transport::Tcp);
    let elapsed = started.elapsed();
    let m = check_reply(&req.to_vec().unwrap(), &raw, Transport::Tcp).unwrap();
    assert!(raw.len() <= MAX_TCP);
    assert!(m.metadata.truncation);
    assert_srv_extras_match(&m);
    assert_eq!(m.additionals.len(), m.answers.len());
    eprintln!(
        "SRV over TCP: {} answers in {} bytes, {elapsed:?}",
        m.answers.len(),
        raw.len()
    );
    // With one more SRV and its A it would not fit.
    let grown = with_one_more(&m, &raw, 5000);
    assert!(grown > MAX_TCP, "{grown} bytes would still fit");
    eprintln!("one more SRV and its A: {} bytes", grown - raw.len());
    assert!(
        grown - raw.len() < 100,
        "one SRV and A take {} bytes",
        grown - raw.len()
    );
}

#[test]
fn tcp_replies_that_fit_are_whole() {
    let c = many(500);
    let r = c.responder(cfg());
    let m = ask_tcp(&r, "web.service.consul.", RecordType::SRV);
    assert_eq!(m.answers.len(), 500);
    assert_eq!(m.additionals.len(), 500);
    assert!(!m.metadata.truncation);
    assert_srv_extras_match(&m);
}

#[test]
fn a_cut_drops_the_authority_section_first() {
    // SOA questions carry the NS records in the authority section: a reply too long for
    // 512 bytes loses them before any answer (here: NS names of 63 characters).
    let c = TestCatalog::new();
    for i in 0..3 {
        let n = format!("{}{i}", "s".repeat(62));
        c.register(
            node(&n, &format!("10.0.0.{i}")),
            Some(service("consul", "consul", 8300)),
            vec![],
        );
    }
    let r = c.responder(DnsConfig {
        disable_compression: true,
        ..cfg()
    });
    let m = ask_tcp(&r, "consul.", RecordType::SOA);
    assert_eq!(m.authorities.len(), 3);
    let req = query("consul.", RecordType::SOA);
    let whole = raw_reply(&r, &req, Transport::Tcp).len();
    assert!(whole > 512, "{whole}");
    let m = ask(&r, "consul.", RecordType::SOA);
    assert_eq!(types(&m.answers), [RecordType::SOA]);
    assert!(m.authorities.is_empty());
    assert!(m.metadata.truncation);
}

#[test]
fn compression_can_be_disabled() {
    let c = many(20);
    let compressed = raw_reply(
        &c.responder(cfg()),
        &query("web.service.consul.", RecordType::SRV),
        Transport::Tcp,
    );
    let r = c.responder(DnsConfig {
        disable_compression: true,
        ..cfg()
    });
    let req = query("web.service.consul.", RecordType::SRV);
    let plain = raw_reply(&r, &req, Transport::Tcp);
    assert!(plain.len() > compressed.len() + 20 * 20);
    let m = Message::from_vec(&plain).unwrap();
    assert_eq!(m.answers.len(), 20);
    // And the cut still fits.
    let m = exchange(
        &r,
        &query_edns("web.service.consul.", RecordType::SRV, 600),
        Transport::Udp,
    );
    assert!(m.metadata.truncation);
    assert_srv_extras_match(&m);
}
