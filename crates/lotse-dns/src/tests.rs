//! In-process tests of [`Responder::handle`]: requests built and replies read with
//! hickory-proto, against a plain store kept in step with the view (see [`crate::testing`]).
//!
//! * `lookup`: name forms and record types: nodes, `addr`, SOA/NS, PTR, negative answers.
//! * `services`: health filtering, SRV weights/targets/additional records, dedup, CNAMEs.
//! * `sizing`: `udp_answer_limit`, EDNS sizes, TC, the 5,000-instance reply over TCP.
//! * `protocol`: FORMERR/NOTIMP/dropped requests, REFUSED, recursion and confirmation steps.
//! * `view`: the view's cache: reuse, invalidation, and the build/invalidate race.
//! * `prop`: property tests: no input panics, and every reply is a well-formed, sized reply.
//! * `fuzz`: the same checks as a bolero target (random under `cargo test`, coverage-guided
//!   under `cargo bolero test`).

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::config::DnsConfig;
use crate::respond::{Responder, Step, Transport};
use crate::testing::check_reply;

mod fuzz;
mod lookup;
mod prop;
mod protocol;
mod services;
mod sizing;
mod view;

/// A query for `name` and `qtype` with ID 4242 and RD set.
fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        qtype,
    ));
    m
}

/// `query` with an EDNS0 OPT record advertising `size`.
fn query_edns(name: &str, qtype: RecordType, size: u16) -> Message {
    let mut m = query(name, qtype);
    let mut e = Edns::new();
    e.set_max_payload(size);
    m.set_edns(e);
    m
}

/// Sends `req` and returns the reply, checking the invariants every reply keeps.
fn exchange(r: &Responder, req: &Message, transport: Transport) -> Message {
    let raw = req.to_vec().expect("request encodes");
    match r.handle(&raw, transport) {
        Step::Reply(bytes) => match check_reply(&raw, &bytes, transport) {
            Ok(m) => m,
            Err(e) => panic!("bad reply to {:?}: {e}", req.queries),
        },
        Step::Drop => panic!("request {:?} was dropped", req.queries),
        Step::Recurse(_) => panic!("request {:?} was sent to the recursors", req.queries),
        Step::Confirm(_) => panic!("request {:?} wants a confirmed read", req.queries),
    }
}

/// A question over UDP without EDNS.
fn ask(r: &Responder, name: &str, qtype: RecordType) -> Message {
    exchange(r, &query(name, qtype), Transport::Udp)
}

/// A question over TCP.
fn ask_tcp(r: &Responder, name: &str, qtype: RecordType) -> Message {
    exchange(r, &query(name, qtype), Transport::Tcp)
}

/// The reply's bytes (for size checks).
fn raw_reply(r: &Responder, req: &Message, transport: Transport) -> Vec<u8> {
    let raw = req.to_vec().expect("request encodes");
    match r.handle(&raw, transport) {
        Step::Reply(bytes) => bytes,
        _ => panic!("no reply to {:?}", req.queries),
    }
}

fn cfg() -> DnsConfig {
    DnsConfig::default()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("valid name")
}

/// The A/AAAA addresses in `records`, as text, sorted.
fn ips(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// The record types in `records`, in order.
fn types(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(|r| r.record_type()).collect()
}

/// The TXT strings in `records`, one string per record (its parts joined), sorted.
fn txts(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// The SRV records in `records` as (weight, port, target), sorted.
fn srvs(records: &[Record]) -> Vec<(u16, u16, String)> {
    let mut v: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => {
                assert_eq!(s.priority, 1, "SRV priority is always 1");
                Some((s.weight, s.port, s.target.to_ascii()))
            }
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Asserts a negative answer: `rcode`, no answers, and the zone's SOA as the only authority.
fn assert_negative(m: &Message, rcode: ResponseCode, apex: &str) {
    assert_eq!(m.metadata.response_code, rcode, "{m:?}");
    assert!(m.answers.is_empty(), "{:?}", m.answers);
    assert_eq!(types(&m.authorities), [RecordType::SOA], "{m:?}");
    let soa = &m.authorities[0];
    assert_eq!(soa.name, name(apex));
    let RData::SOA(s) = &soa.data else {
        unreachable!()
    };
    assert_eq!(s.mname, name(&format!("ns.{apex}")));
    assert_eq!(s.rname, name(&format!("hostmaster.{apex}")));
}
