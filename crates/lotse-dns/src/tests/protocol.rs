//! What is refused before a lookup (miekg/dns's checks in front of Consul), names that are
//! not ours, and the two steps that must wait (recursion, a confirmed read).

use hickory_proto::op::Header;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::*;
use crate::testing::*;

fn catalog() -> TestCatalog {
    let c = TestCatalog::new();
    c.register(
        node("foo", "10.1.2.3"),
        Some(service("web1", "web", 80)),
        vec![],
    );
    c
}

fn handle(r: &Responder, raw: &[u8], t: Transport) -> Step {
    r.handle(raw, t)
}

/// The reply to `raw`, which must be a bare header (no sections).
fn header_only(r: &Responder, raw: &[u8]) -> Header {
    for t in [Transport::Udp, Transport::Tcp] {
        let Step::Reply(bytes) = handle(r, raw, t) else {
            panic!("no reply to {raw:02x?}");
        };
        assert_eq!(bytes.len(), 12, "a bare header: {bytes:02x?}");
        check_reply(raw, &bytes, t).unwrap();
    }
    let Step::Reply(bytes) = handle(r, raw, Transport::Udp) else {
        unreachable!()
    };
    Header::read(&mut BinDecoder::new(&bytes)).unwrap()
}

#[test]
fn short_and_response_messages_are_dropped() {
    let c = catalog();
    let r = c.responder(cfg());
    for raw in [&[][..], &[0x12], &[0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0]] {
        for t in [Transport::Udp, Transport::Tcp] {
            assert!(matches!(handle(&r, raw, t), Step::Drop), "{raw:02x?}");
        }
    }
    // QR set: a response, never answered (so two servers cannot ping-pong).
    let mut m = query("web.service.consul.", RecordType::A);
    m.metadata.message_type = MessageType::Response;
    let raw = m.to_vec().unwrap();
    assert!(matches!(handle(&r, &raw, Transport::Udp), Step::Drop));
    // Even a response that does not decode.
    let mut raw = raw[..14].to_vec();
    raw[2] |= 0x80;
    assert!(matches!(handle(&r, &raw, Transport::Udp), Step::Drop));
}

#[test]
fn anything_but_one_question_is_formerr() {
    let c = catalog();
    let r = c.responder(cfg());
    // No question.
    let mut m = Message::new(777, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    let h = header_only(&r, &m.to_vec().unwrap());
    assert_eq!(h.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(h.metadata.id, 777);
    assert_eq!(h.metadata.message_type, MessageType::Response);
    assert!(h.metadata.recursion_desired, "RD is echoed");
    assert!(!h.metadata.authoritative);
    // Two questions.
    let mut m = query("web.service.consul.", RecordType::A);
    m.add_query(Query::query(name("foo.node.consul."), RecordType::A));
    let h = header_only(&r, &m.to_vec().unwrap());
    assert_eq!(h.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(h.metadata.id, 4242);
}

#[test]
fn undecodable_requests_are_formerr_with_their_id() {
    let c = catalog();
    let r = c.responder(cfg());
    let good = query("web.service.consul.", RecordType::A)
        .to_vec()
        .unwrap();
    // The header promises a question that is not there, or is cut short.
    for cut in [12, 13, 20, good.len() - 1] {
        let h = header_only(&r, &good[..cut]);
        assert_eq!(
            h.metadata.response_code,
            ResponseCode::FormErr,
            "cut at {cut}"
        );
        assert_eq!(h.metadata.id, 4242);
    }
    // A label pointer that loops.
    let mut looping = good[..12].to_vec();
    looping.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let h = header_only(&r, &looping);
    assert_eq!(h.metadata.response_code, ResponseCode::FormErr);
    // An answer count with nothing behind it.
    let mut extra = good.clone();
    extra[7] = 1;
    let h = header_only(&r, &extra);
    assert_eq!(h.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn opcodes_other_than_query_and_notify_are_notimp() {
    let c = catalog();
    let r = c.responder(cfg());
    for op in [
        OpCode::Status,
        OpCode::Update,
        OpCode::Unknown(3),
        OpCode::Unknown(15),
    ] {
        let mut m = query("web.service.consul.", RecordType::A);
        m.metadata.op_code = op;
        let h = header_only(&r, &m.to_vec().unwrap());
        assert_eq!(h.metadata.response_code, ResponseCode::NotImp, "{op}");
        assert_eq!(h.metadata.op_code, op, "the opcode is echoed");
        assert_eq!(h.metadata.id, 4242);
    }
    // NOTIFY is answered like a query.
    let mut m = query("web.service.consul.", RecordType::A);
    m.metadata.op_code = OpCode::Notify;
    let reply = exchange(&r, &m, Transport::Udp);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ips(&reply.answers), ["10.1.2.3"]);
}

#[test]
fn zone_transfers_are_notimp() {
    let c = catalog();
    let r = c.responder(cfg());
    for q in ["consul.", "web.service.consul."] {
        let m = ask_tcp(&r, q, RecordType::AXFR);
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
        assert!(m.answers.is_empty() && m.authorities.is_empty(), "no SOA");
    }
}

#[test]
fn header_bits_are_copied_and_set() {
    let c = catalog();
    let r = c.responder(cfg());
    let mut m = query("web.service.consul.", RecordType::A);
    m.metadata.id = 0xbeef;
    m.metadata.recursion_desired = false;
    m.metadata.checking_disabled = true;
    let reply = exchange(&r, &m, Transport::Udp);
    assert_eq!(reply.metadata.id, 0xbeef);
    assert!(!reply.metadata.recursion_desired);
    assert!(reply.metadata.checking_disabled, "CD is echoed");
    assert!(reply.metadata.authoritative);
    assert!(!reply.metadata.recursion_available, "no recursors");
    assert!(!reply.metadata.authentic_data);
    assert_eq!(reply.queries, m.queries);
}

#[test]
fn foreign_names_are_refused_without_recursors() {
    let c = catalog();
    let r = c.responder(cfg());
    for q in [
        "example.com.",
        "notconsul.",
        "consul.example.",
        "1.2.3.in-addr.arpa.",
    ] {
        let m = exchange(&r, &query_edns(q, RecordType::A, 4096), Transport::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{q}");
        assert!(!m.metadata.authoritative, "{q}");
        assert!(m.edns.is_none(), "REFUSED carries no OPT (miekg's mux)");
        assert_eq!(m.queries.len(), 1);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
}

#[test]
fn foreign_names_and_ptr_misses_go_to_the_recursors() {
    let c = catalog();
    let r = c.responder(DnsConfig {
        recursors: vec!["127.0.0.1:53".parse().unwrap()],
        ..cfg()
    });
    for q in ["example.com.", "9.9.9.9.in-addr.arpa."] {
        let raw = query(q, RecordType::A).to_vec().unwrap();
        let Step::Recurse(req) = handle(&r, &raw, Transport::Udp) else {
            panic!("{q} was not recursed");
        };
        assert_eq!(req.metadata.id, 4242);
        // No recursor answered: SERVFAIL, not authoritative, RA set.
        let bytes = r.servfail(&req, Transport::Udp, true);
        let m = check_reply(&raw, &bytes, Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert!(!m.metadata.authoritative);
        assert!(m.metadata.recursion_available);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
    // Our names are never recursed, and RA says recursion is there.
    let m = ask(&r, "nope.service.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
    assert!(m.metadata.recursion_available);
    // A PTR that is ours is answered.
    let m = ask(&r, "3.2.1.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(types(&m.answers), [RecordType::PTR]);
}

#[test]
fn reads_wait_for_confirmation_when_stale_reads_are_off() {
    let c = catalog();
    let r = crate::respond::Responder::new(cfg(), c.view.clone(), true).unwrap();
    let raw = query("web.service.consul.", RecordType::A)
        .to_vec()
        .unwrap();
    let Step::Confirm(req) = handle(&r, &raw, Transport::Udp) else {
        panic!("not held for confirmation");
    };
    let m = check_reply(
        &raw,
        &r.answer_confirmed(&req, Transport::Udp),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(ips(&m.answers), ["10.1.2.3"]);
    // The leader could not confirm: SERVFAIL, still ours.
    let m = check_reply(
        &raw,
        &r.servfail(&req, Transport::Udp, false),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.metadata.authoritative);
    // Errors need no confirmation.
    let mut m = Message::new(1, MessageType::Query, OpCode::Query);
    m.metadata.op_code = OpCode::Update;
    assert!(matches!(
        handle(&r, &m.to_vec().unwrap(), Transport::Udp),
        Step::Reply(_)
    ));
}

#[test]
fn invalid_configuration_is_refused() {
    let c = catalog();
    for domain in ["bad..domain.", "x".repeat(300).as_str()] {
        let cfg = DnsConfig {
            domain: domain.to_string(),
            ..cfg()
        };
        assert!(
            Responder::new(cfg, c.view.clone(), false).is_err(),
            "{domain}"
        );
    }
}
