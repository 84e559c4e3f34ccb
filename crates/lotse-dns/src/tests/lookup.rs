//! Name forms and record types: nodes, `addr` names, SOA and NS, PTR, negative answers.

use std::time::Duration;

use lotse_core::catalog::CheckStatus::*;

use super::*;
use crate::config::SoaConfig;
use crate::testing::*;

/// `foo` (IPv4, meta), `six` (IPv6), `cn` (host name), `dotted.name`; a `web` service.
fn nodes() -> TestCatalog {
    let c = TestCatalog::new();
    c.register(
        node_meta(
            "foo",
            "10.1.2.3",
            &[("key", "value"), ("rfc1035-x", "raw text")],
        ),
        None,
        vec![],
    );
    c.register(node("six", "2001:db8::1"), None, vec![]);
    c.register(node("cn", "www.example.com"), None, vec![]);
    c.register(node("dotted.name", "10.9.9.9"), None, vec![]);
    c.register(node("Upper", "10.7.7.7"), None, vec![]);
    c.register(
        node("bar", "10.1.2.4"),
        Some(service("web1", "web", 80)),
        vec![],
    );
    c
}

#[test]
fn node_a_any_txt_and_aaaa() {
    let c = nodes();
    let r = c.responder(cfg());

    let m = ask(&r, "foo.node.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_available);
    assert!(m.metadata.recursion_desired, "RD is echoed");
    assert_eq!(m.metadata.id, 4242);
    assert_eq!(ips(&m.answers), ["10.1.2.3"]);
    assert_eq!(m.answers[0].name, name("foo.node.consul."));
    assert_eq!(m.answers[0].ttl, 0, "node_ttl defaults to 0");
    // Node meta rides along in the additional section of an A answer.
    assert_eq!(txts(&m.additionals), ["key=value", "raw text"]);
    assert!(m.authorities.is_empty());

    // ANY: the address and the meta, all in the answer.
    let m = ask(&r, "foo.node.consul.", RecordType::ANY);
    assert_eq!(
        types(&m.answers),
        [RecordType::A, RecordType::TXT, RecordType::TXT]
    );
    assert_eq!(txts(&m.answers), ["key=value", "raw text"]);
    assert!(m.additionals.is_empty());

    // TXT: only the meta.
    let m = ask(&r, "foo.node.consul.", RecordType::TXT);
    assert_eq!(types(&m.answers), [RecordType::TXT, RecordType::TXT]);

    // AAAA for an IPv4 node: NODATA, with the SOA (Lotse's departure from Consul).
    let m = ask(&r, "foo.node.consul.", RecordType::AAAA);
    assert_negative(&m, ResponseCode::NoError, "consul.");

    // SRV on a node: NODATA as well.
    let m = ask(&r, "foo.node.consul.", RecordType::SRV);
    assert_negative(&m, ResponseCode::NoError, "consul.");

    // IPv6 nodes answer AAAA, and NODATA for A.
    let m = ask(&r, "six.node.consul.", RecordType::AAAA);
    assert_eq!(ips(&m.answers), ["2001:db8::1"]);
    let m = ask(&r, "six.node.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NoError, "consul.");
    let m = ask(&r, "six.node.consul.", RecordType::ANY);
    assert_eq!(ips(&m.answers), ["2001:db8::1"]);
}

#[test]
fn node_meta_txt_in_additional_can_be_turned_off() {
    let c = nodes();
    let r = c.responder(DnsConfig {
        enable_additional_node_meta_txt: false,
        ..cfg()
    });
    let m = ask(&r, "foo.node.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.1.2.3"]);
    assert!(m.additionals.is_empty());
    // TXT and ANY questions still get the meta.
    let m = ask(&r, "foo.node.consul.", RecordType::TXT);
    assert_eq!(txts(&m.answers), ["key=value", "raw text"]);
}

#[test]
fn node_with_a_host_name_is_a_cname() {
    let c = nodes();
    let r = c.responder(cfg());
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::ANY] {
        let m = ask(&r, "cn.node.consul.", qtype);
        assert_eq!(types(&m.answers), [RecordType::CNAME], "{qtype}");
        let RData::CNAME(t) = &m.answers[0].data else {
            unreachable!()
        };
        assert_eq!(t.0, name("www.example.com."));
    }
}

#[test]
fn node_name_forms() {
    let c = nodes();
    let r = c.responder(DnsConfig {
        node_ttl: Duration::from_secs(30),
        ..cfg()
    });
    for q in [
        "foo.node.consul.",
        "foo.node.consul",
        "foo.node.dc1.consul.",
        "foo.node.dc1.dc.consul.",
        "FOO.Node.CONSUL.",
    ] {
        let m = ask(&r, q, RecordType::A);
        assert_eq!(ips(&m.answers), ["10.1.2.3"], "{q}");
        // The owner is the question as asked, case included.
        let asked = name(&format!("{}.", q.trim_end_matches('.')));
        assert!(
            m.answers[0].name.eq_case(&asked),
            "{q}: {:?}",
            m.answers[0].name
        );
        assert!(
            m.queries[0].name().eq_case(&asked),
            "the question is echoed as sent"
        );
        assert_eq!(m.answers[0].ttl, 30, "node_ttl");
    }
    // Dots in node names; a node registered with capitals.
    let m = ask(&r, "dotted.name.node.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.9.9.9"]);
    let m = ask(&r, "upper.node.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.7.7.7"]);
    // The rightmost kind label wins: `web.service.node` is the node `web.service`.
    let m = ask(&r, "web.service.node.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
}

#[test]
fn unknown_names_are_nxdomain_with_the_soa() {
    let c = nodes();
    let r = c.responder(cfg());
    for q in [
        "nope.node.consul.",
        "foo.node.dc2.consul.",
        "foo.node.dc1.extra.more.consul.",
        "bar.service.consul.",
        "web.service.dc2.consul.",
        "consul.",
        "node.consul.",
        "service.consul.",
        "nonexisting.consul.",
        "x.query.consul.",
        "web.connect.consul.",
        "web.ingress.consul.",
        "web.virtual.consul.",
        "7g000001.addr.consul.",
        "7f000001x.addr.consul.",
        "ns.consul.",
    ] {
        for qtype in [
            RecordType::A,
            RecordType::SRV,
            RecordType::ANY,
            RecordType::TXT,
        ] {
            let m = ask(&r, q, qtype);
            assert_negative(&m, ResponseCode::NXDomain, "consul.");
            assert!(m.metadata.authoritative, "{q} {qtype}");
        }
    }
}

#[test]
fn soa_settings_and_ttl() {
    let c = nodes();
    let r = c.responder(DnsConfig {
        soa: SoaConfig {
            refresh: 1,
            retry: 2,
            expire: 3,
            min_ttl: 60,
        },
        ..cfg()
    });
    let m = ask(&r, "consul.", RecordType::SOA);
    assert_eq!(types(&m.answers), [RecordType::SOA]);
    let RData::SOA(s) = &m.answers[0].data else {
        unreachable!()
    };
    assert_eq!((s.refresh, s.retry, s.expire, s.minimum), (1, 2, 3, 60));
    assert_eq!(m.answers[0].ttl, 60, "the SOA's TTL is its minimum");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    assert!(s.serial.abs_diff(now) < 5, "serial is the Unix time");

    // Defaults.
    let r = c.responder(cfg());
    let m = ask(&r, "nope.node.consul.", RecordType::A);
    let RData::SOA(s) = &m.authorities[0].data else {
        unreachable!()
    };
    assert_eq!(
        (s.refresh, s.retry, s.expire, s.minimum),
        (3600, 600, 86400, 0)
    );
}

#[test]
fn addr_names() {
    let c = nodes();
    let r = c.responder(cfg());
    let m = ask(&r, "7f000001.addr.dc1.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["127.0.0.1"]);
    assert_eq!(m.answers[0].name, name("7f000001.addr.dc1.consul."));
    // The datacenter label is not checked.
    let m = ask(&r, "7f000001.addr.elsewhere.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["127.0.0.1"]);
    let m = ask(
        &r,
        "2607002040050808000000000000200e.addr.consul.",
        RecordType::AAAA,
    );
    assert_eq!(ips(&m.answers), ["2607:20:4005:808::200e"]);
    let m = ask(&r, "7f000001.addr.consul.", RecordType::ANY);
    assert_eq!(ips(&m.answers), ["127.0.0.1"]);

    // Another type: the address goes to the additional section.
    let m = ask(&r, "7f000001.addr.dc1.consul.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(ips(&m.additionals), ["127.0.0.1"]);
    let m = ask(&r, "7f000001.addr.dc1.consul.", RecordType::AAAA);
    assert_eq!(ips(&m.additionals), ["127.0.0.1"]);

    // Consul's quirk: another length is an empty answer, no SOA.
    for q in [
        "7f0000.addr.consul.",
        "7f00001.addr.consul.",
        "ab.addr.consul.",
    ] {
        let m = ask(&r, q, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{q}");
        assert!(
            m.answers.is_empty() && m.authorities.is_empty(),
            "{q}: {m:?}"
        );
        assert!(m.additionals.is_empty(), "{q}");
    }
}

/// `n` servers running the `consul` service.
fn servers(c: &TestCatalog, names: &[&str]) {
    for (i, s) in names.iter().enumerate() {
        c.register(
            node(s, &format!("10.0.0.{}", i + 1)),
            Some(service("consul", "consul", 8300)),
            vec![check(s, "serfHealth", "", Passing)],
        );
    }
}

#[test]
fn ns_and_soa_name_the_consul_servers() {
    let c = TestCatalog::new();
    let r = c.responder(cfg());
    // No servers: an empty NS answer.
    let m = ask(&r, "consul.", RecordType::NS);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());

    servers(&c, &["server1"]);
    let m = ask(&r, "consul.", RecordType::NS);
    assert_eq!(types(&m.answers), [RecordType::NS]);
    assert_eq!(m.answers[0].name, name("consul."));
    let RData::NS(ns) = &m.answers[0].data else {
        unreachable!()
    };
    assert_eq!(ns.0, name("server1.node.dc1.consul."));
    assert_eq!(ips(&m.additionals), ["10.0.0.1"]);
    assert_eq!(m.additionals[0].name, name("server1.node.dc1.consul."));

    // Any name in the domain: the question is about the domain.
    for q in ["something.node.consul.", "web.service.consul.", "consul."] {
        let m = ask(&r, q, RecordType::NS);
        assert_eq!(types(&m.answers), [RecordType::NS], "{q}");
        assert_eq!(m.answers[0].name, name("consul."), "{q}");
        let m = ask(&r, q, RecordType::SOA);
        assert_eq!(types(&m.answers), [RecordType::SOA], "{q}");
        assert_eq!(m.answers[0].name, name("consul."));
        assert_eq!(types(&m.authorities), [RecordType::NS]);
        assert_eq!(ips(&m.additionals), ["10.0.0.1"]);
    }
}

#[test]
fn ns_has_at_most_three_healthy_servers_with_plain_names() {
    let c = TestCatalog::new();
    servers(
        &c,
        &[
            "server1", "Server2", "server3", "server4", "server5", "bad_name", "dot.ted",
        ],
    );
    // server5 is critical, server4 warns.
    c.register(
        node("server5", "10.0.0.5"),
        None,
        vec![check("server5", "serfHealth", "", Critical)],
    );
    c.register(
        node("server4", "10.0.0.4"),
        None,
        vec![check("server4", "serfHealth", "", Warning)],
    );
    let r = c.responder(cfg());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let m = ask(&r, "consul.", RecordType::NS);
        assert_eq!(m.answers.len(), 3, "{m:?}");
        assert_eq!(m.additionals.len(), 3);
        for (ns, glue) in m.answers.iter().zip(&m.additionals) {
            let RData::NS(t) = &ns.data else {
                unreachable!()
            };
            // Glue follows its NS record, and names are lowercased.
            assert_eq!(glue.name, t.0);
            let text = t.0.to_ascii();
            assert_eq!(text, text.to_ascii_lowercase());
            assert!(
                !text.starts_with("server5"),
                "critical servers are no name servers"
            );
            assert!(
                !text.contains("bad_name") && !text.starts_with("dot."),
                "{text}"
            );
            seen.insert(text);
        }
    }
    // Shuffled: over 64 tries every healthy server turns up.
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "server1.node.dc1.consul.",
            "server2.node.dc1.consul.",
            "server3.node.dc1.consul.",
            "server4.node.dc1.consul."
        ]
    );

    // With only_passing, a server that warns is no name server either (as Consul's
    // `lookupServiceNodes` filters them).
    let r = c.responder(DnsConfig {
        only_passing: true,
        ..cfg()
    });
    for _ in 0..32 {
        let m = ask(&r, "consul.", RecordType::NS);
        assert_eq!(m.answers.len(), 3);
        for ns in &m.answers {
            let RData::NS(t) = &ns.data else {
                unreachable!()
            };
            assert!(!t.0.to_ascii().starts_with("server4"), "{:?}", m.answers);
        }
    }
}

#[test]
fn alt_domain_answers_under_the_alt_domain() {
    let c = nodes();
    servers(&c, &["server1"]);
    let r = c.responder(DnsConfig {
        alt_domain: Some("alt.example.".into()),
        ..cfg()
    });
    let m = ask(&r, "foo.node.alt.example.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.1.2.3"]);
    let m = ask(&r, "_web._tcp.service.alt.example.", RecordType::SRV);
    assert_eq!(
        srvs(&m.answers),
        [(1, 80, "bar.node.dc1.alt.example.".into())]
    );
    let m = ask(&r, "alt.example.", RecordType::NS);
    let RData::NS(t) = &m.answers[0].data else {
        unreachable!()
    };
    assert_eq!(t.0, name("server1.node.dc1.alt.example."));
    assert_eq!(m.answers[0].name, name("alt.example."));
    let m = ask(&r, "nope.node.alt.example.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "alt.example.");
    // The main domain still answers under itself.
    let m = ask(&r, "nope.node.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
}

#[test]
fn ptr_names_nodes_then_services() {
    let c = nodes();
    c.register(node("aaa", "10.1.2.3"), None, vec![]);
    c.register(
        node("svc-host", "10.5.5.5"),
        Some(addressed("api1", "api", 9000, "192.168.1.1")),
        vec![],
    );
    let r = c.responder(cfg());
    // Two nodes share 10.1.2.3: the first by name.
    for qtype in [RecordType::PTR, RecordType::ANY, RecordType::A] {
        let m = ask(&r, "3.2.1.10.in-addr.arpa.", qtype);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(types(&m.answers), [RecordType::PTR], "{qtype}");
        let RData::PTR(t) = &m.answers[0].data else {
            unreachable!()
        };
        assert_eq!(t.0, name("aaa.node.dc1.consul."));
        assert_eq!(m.answers[0].ttl, 0);
    }
    // A service's own address.
    let m = ask(&r, "1.1.168.192.in-addr.arpa.", RecordType::PTR);
    let RData::PTR(t) = &m.answers[0].data else {
        unreachable!()
    };
    assert_eq!(t.0, name("api.service.dc1.consul."));
    // IPv6.
    let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let m = ask(&r, v6, RecordType::PTR);
    let RData::PTR(t) = &m.answers[0].data else {
        unreachable!()
    };
    assert_eq!(t.0, name("six.node.dc1.consul."));
    // SOA questions add the SOA.
    let m = ask(&r, "3.2.1.10.in-addr.arpa.", RecordType::SOA);
    assert_eq!(types(&m.answers), [RecordType::PTR]);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
    // A miss: NXDOMAIN with the SOA (Consul ≥ 1.17.3 without recursors).
    let m = ask(&r, "9.9.9.9.in-addr.arpa.", RecordType::PTR);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
}

#[test]
fn ptr_always_answers_under_the_main_domain() {
    let c = nodes();
    let r = c.responder(DnsConfig {
        alt_domain: Some("alt.example.".into()),
        ..cfg()
    });
    let m = ask(&r, "3.2.1.10.in-addr.arpa.", RecordType::PTR);
    let RData::PTR(t) = &m.answers[0].data else {
        unreachable!()
    };
    assert_eq!(t.0, name("foo.node.dc1.consul."));
}

#[test]
fn other_domains() {
    let c = nodes();
    let r = c.responder(DnsConfig {
        domain: "example.internal.".into(),
        datacenter: "east".into(),
        ..cfg()
    });
    let m = ask(&r, "foo.node.east.example.internal.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.1.2.3"]);
    let m = ask(&r, "_web._tcp.service.example.internal.", RecordType::SRV);
    assert_eq!(m.answers.len(), 1);
    let m = ask(&r, "foo.node.dc1.example.internal.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "example.internal.");
}

#[test]
fn any_node_meta_is_served() {
    // Node meta is not validated the way service meta is: keys with multi-byte characters,
    // values longer than one TXT string (255 bytes), empty values.
    let long = "v".repeat(600);
    let c = TestCatalog::new();
    c.register(
        node_meta(
            "odd",
            "10.3.3.3",
            &[
                ("abcdefgé", "x"),
                ("é", "y"),
                ("rfc1035-é", "z"),
                ("long", &long),
                ("rfc1035-empty", ""),
            ],
        ),
        Some(service("s1", "odd", 80)),
        vec![],
    );
    let r = c.responder(cfg());
    let want = [
        String::new(),
        "abcdefgé=x".to_string(),
        format!("long={long}"),
        "z".to_string(),
        "é=y".to_string(),
    ];
    let m = ask_tcp(&r, "odd.node.consul.", RecordType::TXT);
    assert_eq!(txts(&m.answers), want);
    // A long value is split into 255-byte strings within its one record.
    let parts = m
        .answers
        .iter()
        .find_map(|a| match &a.data {
            RData::TXT(t) if t.txt_data.len() > 1 => Some(t.txt_data.len()),
            _ => None,
        })
        .expect("the long value");
    assert_eq!(parts, 3);
    let m = ask_tcp(&r, "odd.node.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), ["10.3.3.3"]);
    assert_eq!(txts(&m.additionals), want);
    let m = ask_tcp(&r, "odd.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m.answers), [(1, 80, "odd.node.dc1.consul.".into())]);
    assert_eq!(ips(&m.additionals), ["10.3.3.3"]);
    assert_eq!(txts(&m.additionals), want);
    assert!(!m.metadata.truncation);
}
