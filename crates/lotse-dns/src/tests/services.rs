//! Service lookups: health filtering, SRV weights, targets and additional records, dedup,
//! CNAMEs for host-name addresses, tags, TTLs, `a_record_limit`, shuffling.

use std::collections::BTreeSet;
use std::time::Duration;

use lotse_core::catalog::{CheckStatus::*, Weights};

use super::*;
use crate::testing::*;

/// `web` on five nodes: passing (n1), warning (n2), critical (n3), on a node whose own check
/// is critical (n4), and without checks (n5). Weights 10 when passing, 3 when warning.
fn health() -> TestCatalog {
    let c = TestCatalog::new();
    let weighted = |id: &str| lotse_core::catalog::Service {
        weights: Weights {
            passing: 10,
            warning: 3,
        },
        ..service(id, "web", 8080)
    };
    let status = [Some(Passing), Some(Warning), Some(Critical), None, None];
    for (i, st) in status.iter().enumerate() {
        let n = format!("n{}", i + 1);
        let id = format!("w{}", i + 1);
        let checks = st
            .map(|s| vec![check(&n, &format!("{id}-check"), &id, s)])
            .unwrap_or_default();
        c.register(
            node(&n, &format!("10.0.1.{}", i + 1)),
            Some(weighted(&id)),
            checks,
        );
    }
    // n4's node check is critical: every service on it is out.
    c.register(
        node("n4", "10.0.1.4"),
        None,
        vec![check("n4", "serfHealth", "", Critical)],
    );
    c
}

#[test]
fn critical_instances_are_left_out_warning_ones_kept() {
    let c = health();
    let r = c.responder(cfg());
    let m = ask_tcp(&r, "web.service.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(ips(&m.answers), ["10.0.1.1", "10.0.1.2", "10.0.1.5"]);
    assert!(m.authorities.is_empty());
    assert!(!m.metadata.truncation);

    let m = ask_tcp(&r, "web.service.consul.", RecordType::SRV);
    assert_eq!(
        srvs(&m.answers),
        [
            (3, 8080, "n2.node.dc1.consul.".into()),
            (10, 8080, "n1.node.dc1.consul.".into()),
            (10, 8080, "n5.node.dc1.consul.".into()),
        ],
        "weights by health"
    );
}

#[test]
fn only_passing_leaves_out_warnings_too() {
    let c = health();
    let r = c.responder(DnsConfig {
        only_passing: true,
        ..cfg()
    });
    let m = ask_tcp(&r, "web.service.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.0.1.1", "10.0.1.5"]);
    let m = ask_tcp(&r, "web.service.consul.", RecordType::SRV);
    assert_eq!(m.answers.len(), 2);
}

#[test]
fn a_service_with_no_healthy_instance_is_nxdomain() {
    let c = TestCatalog::new();
    c.register(
        node("n1", "10.0.0.1"),
        Some(service("db1", "db", 5432)),
        vec![check("n1", "c", "db1", Critical)],
    );
    c.register(
        node("n2", "10.0.0.2"),
        Some(service("db2", "db", 5432)),
        vec![check("n2", "c", "db2", Warning)],
    );
    let r = c.responder(DnsConfig {
        only_passing: true,
        ..cfg()
    });
    for qtype in [RecordType::A, RecordType::SRV, RecordType::ANY] {
        let m = ask(&r, "db.service.consul.", qtype);
        assert_negative(&m, ResponseCode::NXDomain, "consul.");
    }
    // Instances that exist but have no record of the asked type: NODATA with the SOA.
    let r = c.responder(cfg());
    let m = ask(&r, "db.service.consul.", RecordType::AAAA);
    assert_negative(&m, ResponseCode::NoError, "consul.");
    let m = ask(&r, "db.service.consul.", RecordType::MX);
    assert_negative(&m, ResponseCode::NoError, "consul.");
}

/// Instances with every kind of address.
fn addresses() -> TestCatalog {
    let c = TestCatalog::new();
    c.register(
        node_meta("plain", "10.0.0.1", &[("key", "value")]),
        Some(service("a", "mixed", 1001)),
        vec![],
    );
    c.register(
        node_meta("own", "10.0.0.2", &[("zone", "b")]),
        Some(addressed("b", "mixed", 1002, "192.168.0.9")),
        vec![],
    );
    c.register(
        node("host", "10.0.0.3"),
        Some(addressed("c", "mixed", 1003, "www.example.org")),
        vec![],
    );
    c.register(
        node("six", "2001:db8::6"),
        Some(service("d", "mixed", 1004)),
        vec![],
    );
    c.register(
        node("named", "node.example.net"),
        Some(service("e", "mixed", 1005)),
        vec![],
    );
    c
}

#[test]
fn srv_targets_and_additional_records() {
    let c = addresses();
    let r = c.responder(cfg());
    let m = ask_tcp(&r, "mixed.service.consul.", RecordType::SRV);
    assert_eq!(
        srvs(&m.answers),
        [
            (1, 1001, "plain.node.dc1.consul.".into()),
            // A service address of its own: the `addr` name, even for an IP.
            (1, 1002, "c0a80009.addr.dc1.consul.".into()),
            // A host name: the name itself.
            (1, 1003, "www.example.org.".into()),
            (1, 1004, "six.node.dc1.consul.".into()),
            (1, 1005, "named.node.dc1.consul.".into()),
        ]
    );
    let extra: BTreeSet<(String, RecordType)> = m
        .additionals
        .iter()
        .map(|r| (r.name.to_ascii(), r.record_type()))
        .collect();
    let want: BTreeSet<(String, RecordType)> = [
        ("plain.node.dc1.consul.", RecordType::A),
        ("plain.node.dc1.consul.", RecordType::TXT),
        ("c0a80009.addr.dc1.consul.", RecordType::A),
        // Node meta goes under the node's name even when the target is an `addr` name.
        ("own.node.dc1.consul.", RecordType::TXT),
        ("six.node.dc1.consul.", RecordType::AAAA),
        ("named.node.dc1.consul.", RecordType::CNAME),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    assert_eq!(extra, want);
    assert_eq!(
        ips(&m.additionals),
        ["10.0.0.1", "192.168.0.9", "2001:db8::6"]
    );
    assert_eq!(txts(&m.additionals), ["key=value", "zone=b"]);
    // Every SRV's target that is ours resolves in the additional section.
    for srv in &m.answers {
        let RData::SRV(s) = &srv.data else {
            unreachable!()
        };
        if s.target.to_ascii().ends_with(".consul.") {
            assert!(
                m.additionals
                    .iter()
                    .any(|e| e.name == s.target && e.record_type() != RecordType::TXT),
                "no address for {}",
                s.target
            );
        }
    }

    // Without meta in the additional section.
    let r = c.responder(DnsConfig {
        enable_additional_node_meta_txt: false,
        ..cfg()
    });
    let m = ask_tcp(&r, "mixed.service.consul.", RecordType::SRV);
    assert!(txts(&m.additionals).is_empty());
}

#[test]
fn a_answers_prefer_ips_over_cnames() {
    let c = addresses();
    let r = c.responder(cfg());
    // IPs win: no CNAME once any instance has an IP of the asked family.
    let m = ask_tcp(&r, "mixed.service.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.0.0.1", "192.168.0.9"]);
    assert!(types(&m.answers).iter().all(|t| *t == RecordType::A));
    let m = ask_tcp(&r, "mixed.service.consul.", RecordType::AAAA);
    assert_eq!(types(&m.answers), [RecordType::AAAA]);
    let m = ask_tcp(&r, "mixed.service.consul.", RecordType::ANY);
    assert_eq!(ips(&m.answers), ["10.0.0.1", "192.168.0.9", "2001:db8::6"]);
}

#[test]
fn host_name_only_services_are_one_cname() {
    let c = TestCatalog::new();
    c.register(
        node("n1", "10.0.0.1"),
        Some(addressed("x1", "ext", 80, "one.example.com")),
        vec![],
    );
    c.register(
        node("n2", "10.0.0.2"),
        Some(addressed("x2", "ext", 80, "two.example.com.")),
        vec![],
    );
    let r = c.responder(cfg());
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::ANY] {
        for _ in 0..8 {
            let m = ask(&r, "ext.service.consul.", qtype);
            assert_eq!(types(&m.answers), [RecordType::CNAME], "{qtype}");
            let RData::CNAME(t) = &m.answers[0].data else {
                unreachable!()
            };
            assert!(
                t.0 == name("one.example.com.") || t.0 == name("two.example.com."),
                "{t:?}"
            );
            assert_eq!(m.answers[0].name, name("ext.service.consul."));
        }
    }
}

#[test]
fn instances_on_one_address_are_one_record() {
    let c = TestCatalog::new();
    // Three instances on one node, two ports.
    c.register(
        node("n1", "10.0.0.1"),
        Some(service("db1", "db", 5000)),
        vec![],
    );
    c.register(
        node("n1", "10.0.0.1"),
        Some(service("db2", "db", 5000)),
        vec![],
    );
    c.register(
        node("n1", "10.0.0.1"),
        Some(service("db3", "db", 5001)),
        vec![],
    );
    // Two nodes whose instances share a service address.
    c.register(
        node("n2", "10.0.0.2"),
        Some(addressed("api1", "api", 80, "192.168.1.1")),
        vec![],
    );
    c.register(
        node("n3", "10.0.0.3"),
        Some(addressed("api2", "api", 80, "192.168.1.1")),
        vec![],
    );
    let r = c.responder(cfg());
    for qtype in [RecordType::A, RecordType::ANY] {
        let m = ask(&r, "db.service.consul.", qtype);
        assert_eq!(ips(&m.answers), ["10.0.0.1"], "{qtype}");
    }
    let m = ask(&r, "db.service.consul.", RecordType::SRV);
    assert_eq!(
        srvs(&m.answers),
        [
            (1, 5000, "n1.node.dc1.consul.".into()),
            (1, 5001, "n1.node.dc1.consul.".into())
        ]
    );
    assert_eq!(
        types(&m.additionals),
        [RecordType::A],
        "one A for one target"
    );

    let m = ask(&r, "api.service.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["192.168.1.1"]);
    let m = ask(&r, "api.service.consul.", RecordType::SRV);
    assert_eq!(m.answers.len(), 2, "one SRV per node");
    assert_eq!(ips(&m.additionals), ["192.168.1.1"], "one A per target");
}

#[test]
fn tags_and_name_forms() {
    let c = TestCatalog::new();
    c.register(
        node("n1", "10.0.0.1"),
        Some(tagged("d1", "db", 5432, &["Primary", "v1"])),
        vec![],
    );
    c.register(
        node("n2", "10.0.0.2"),
        Some(tagged("d2", "db", 5432, &["replica"])),
        vec![],
    );
    c.register(
        node("n3", "10.0.0.3"),
        Some(service("D3", "DB", 5432)),
        vec![],
    );
    let r = c.responder(cfg());
    let a = |q: &str| ips(&ask_tcp(&r, q, RecordType::A).answers);
    let srv = |q: &str| srvs(&ask_tcp(&r, q, RecordType::SRV).answers).len();
    // Registered names in any case are one service.
    assert_eq!(
        a("db.service.consul."),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    assert_eq!(
        a("Db.Service.Consul."),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    assert_eq!(
        a("db.service.dc1.consul."),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    assert_eq!(
        a("db.service.dc1.dc.consul."),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    // Tags, without case.
    assert_eq!(a("primary.db.service.consul."), ["10.0.0.1"]);
    assert_eq!(a("PRIMARY.db.service.consul."), ["10.0.0.1"]);
    assert_eq!(a("replica.db.service.consul."), ["10.0.0.2"]);
    // RFC 2782: `_tcp` is no tag; another `_tag` is.
    assert_eq!(srv("_db._tcp.service.consul."), 3);
    assert_eq!(srv("_db._primary.service.consul."), 1);
    assert_eq!(srv("_db._tcp.consul."), 3, "SRV needs no `service` label");
    assert_eq!(srv("_db._replica.dc1.consul."), 1);
    for q in [
        "nope.db.service.consul.",
        "v1.primary.db.service.consul.",
        "_db._nope.service.consul.",
        "banana._db._primary.service.consul.",
    ] {
        let m = ask(&r, q, RecordType::SRV);
        assert_negative(&m, ResponseCode::NXDomain, "consul.");
    }
}

#[test]
fn service_ttl_applies_to_service_records_only() {
    let c = TestCatalog::new();
    c.register(
        node("n1", "10.0.0.1"),
        Some(service("db1", "db", 5432)),
        vec![],
    );
    c.register(
        node("n2", "10.0.0.2"),
        Some(service("w", "web", 80)),
        vec![],
    );
    let r = c.responder(DnsConfig {
        service_ttl: vec![
            ("d*".into(), Duration::from_secs(42)),
            ("*".into(), Duration::from_secs(5)),
        ],
        node_ttl: Duration::from_secs(7),
        ..cfg()
    });
    let m = ask(&r, "db.service.consul.", RecordType::SRV);
    assert_eq!(m.answers[0].ttl, 42);
    assert!(m.additionals.iter().all(|e| e.ttl == 42));
    assert_eq!(
        ask(&r, "db.service.consul.", RecordType::A).answers[0].ttl,
        42
    );
    assert_eq!(
        ask(&r, "web.service.consul.", RecordType::A).answers[0].ttl,
        5
    );
    assert_eq!(ask(&r, "n1.node.consul.", RecordType::A).answers[0].ttl, 7);
}

/// `n` instances of `web`, each on its own node `nNNNN` at 10.x.y.z.
fn many(n: usize) -> TestCatalog {
    let c = TestCatalog::new();
    for i in 0..n {
        let name = format!("n{i:04}");
        let addr = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        c.register(
            node(&name, &addr),
            Some(service(&format!("w{i}"), "web", 80)),
            vec![],
        );
    }
    c
}

#[test]
fn a_record_limit_caps_a_answers_but_not_srv() {
    let c = many(6);
    let r = c.responder(DnsConfig {
        a_record_limit: 2,
        ..cfg()
    });
    for qtype in [RecordType::A, RecordType::ANY] {
        let m = ask_tcp(&r, "web.service.consul.", qtype);
        assert_eq!(m.answers.len(), 2, "{qtype}");
        // A policy cap, not a cut: asking again over TCP would give no more, so no TC
        // (Consul applies the limit while building records, not while trimming).
        assert!(!m.metadata.truncation, "{qtype}");
        let m = exchange(
            &r,
            &query_edns("web.service.consul.", qtype, 4096),
            Transport::Udp,
        );
        assert_eq!(m.answers.len(), 2, "{qtype}");
        assert!(!m.metadata.truncation, "{qtype}");
    }
    let m = ask_tcp(&r, "web.service.consul.", RecordType::SRV);
    assert_eq!(m.answers.len(), 6);
    // Below the UDP answer limit, that limit still decides (and cuts).
    let r = c.responder(DnsConfig {
        a_record_limit: 5,
        udp_answer_limit: 2,
        ..cfg()
    });
    let m = ask(&r, "web.service.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 2);
    assert!(m.metadata.truncation);
}

#[test]
fn answers_are_shuffled() {
    let c = many(8);
    let r = c.responder(cfg());
    let mut firsts = BTreeSet::new();
    let mut orders = BTreeSet::new();
    for _ in 0..64 {
        let m = ask_tcp(&r, "web.service.consul.", RecordType::A);
        assert_eq!(m.answers.len(), 8);
        let order: Vec<String> = m
            .answers
            .iter()
            .map(|a| match &a.data {
                RData::A(a) => a.0.to_string(),
                _ => unreachable!(),
            })
            .collect();
        firsts.insert(order[0].clone());
        orders.insert(order);
    }
    assert!(firsts.len() >= 4, "first answers seen: {firsts:?}");
    assert!(
        orders.len() >= 32,
        "only {} orders in 64 replies",
        orders.len()
    );
    // Over plain UDP the three answers are a random subset.
    let mut seen = BTreeSet::new();
    for _ in 0..64 {
        seen.extend(ips(&ask(&r, "web.service.consul.", RecordType::A).answers));
    }
    assert_eq!(seen.len(), 8);
}
