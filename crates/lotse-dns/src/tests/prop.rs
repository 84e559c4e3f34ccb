//! Property tests: whatever arrives, [`Responder::handle`] does not panic, and every reply
//! decodes as a DNS response with the request's ID, within the transport's size.

use proptest::prelude::*;

use super::*;
use crate::testing::*;

/// Runs `raw` through every responder over both transports.
fn check_all(raw: &[u8]) -> Result<(), TestCaseError> {
    for r in &FIXTURE.responders {
        for t in [Transport::Udp, Transport::Tcp] {
            drive(r, raw, t).map_err(|e| TestCaseError::fail(format!("{t:?}: {e}")))?;
        }
    }
    Ok(())
}

/// Names that reach every kind of lookup, in the domains the responders serve.
const NAMES: &[&str] = &[
    "web.service.consul.",
    "v1.web.service.consul.",
    "_web._tcp.service.consul.",
    "_web._v1.service.dc1.consul.",
    "_web._tcp.consul.",
    "big.service.consul.",
    "db.service.consul.",
    "api.service.consul.",
    "external.service.consul.",
    "consul.service.consul.",
    "foo.node.consul.",
    "dotted.name.node.dc1.dc.consul.",
    "host.node.consul.",
    "v6.node.consul.",
    "nope.node.consul.",
    "7f000001.addr.dc1.consul.",
    "fe800000000000000000000000000001.addr.consul.",
    "7f0000.addr.consul.",
    "consul.",
    "x.query.consul.",
    "1.0.1.10.in-addr.arpa.",
    "9.0.2.10.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.",
    "8.8.8.8.in-addr.arpa.",
    "example.com.",
    "web.service.alt.example.",
    "foo.node.lotse.test.",
    "big.service.lotse.test.",
    ".",
];

fn qtypes() -> impl Strategy<Value = RecordType> {
    prop_oneof![
        Just(RecordType::A),
        Just(RecordType::AAAA),
        Just(RecordType::ANY),
        Just(RecordType::SRV),
        Just(RecordType::TXT),
        Just(RecordType::PTR),
        Just(RecordType::NS),
        Just(RecordType::SOA),
        Just(RecordType::AXFR),
        Just(RecordType::IXFR),
        Just(RecordType::CNAME),
        Just(RecordType::MX),
        any::<u16>().prop_map(RecordType::from),
    ]
}

/// A label: one from the names above, or random text (which may be no valid name; then the
/// known name is used).
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            "web", "service", "node", "addr", "dc1", "dc", "_web", "_tcp", "v1", "big",
            "foo", "consul", "query", "in-addr", "arpa", "7f000001", "alt", "example",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z0-9_-]{1,20}",
        1 => "[0-9a-f]{1,40}",
    ]
}

/// A query name: a known one, or labels put together (under one of our domains, often).
fn qname() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => proptest::sample::select(NAMES).prop_map(str::to_string),
        1 => (
            proptest::collection::vec(label(), 0..6),
            proptest::sample::select(vec!["consul.", "alt.example.", "lotse.test.", "in-addr.arpa.", "com."])
        )
            .prop_map(|(labels, domain)| {
                let mut n = labels.join(".");
                if !n.is_empty() {
                    n.push('.');
                }
                n + domain
            }),
    ]
}

prop_compose! {
    /// A well-formed query: any name and type, flags, opcode, and an EDNS0 size or none.
    fn valid_query()(
        id in any::<u16>(),
        qname in qname(),
        qtype in qtypes(),
        edns in proptest::option::of(any::<u16>()),
        rd in any::<bool>(),
        cd in any::<bool>(),
        notify in proptest::bool::weighted(0.05),
    ) -> Vec<u8> {
        let name = Name::from_ascii(&qname).unwrap_or_else(|_| Name::from_ascii("consul.").unwrap());
        let op = if notify { OpCode::Notify } else { OpCode::Query };
        let mut m = Message::new(id, MessageType::Query, op);
        m.metadata.recursion_desired = rd;
        m.metadata.checking_disabled = cd;
        m.add_query(Query::query(name, qtype));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().expect("query encodes")
    }
}

/// One change to a request's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Append),
    ]
}

fn mutate(mut raw: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = raw.len().max(1);
        match m {
            Mutation::Set(i, b) => {
                if !raw.is_empty() {
                    raw[i % len] = *b;
                }
            }
            Mutation::Flip(i, bit) => {
                if !raw.is_empty() {
                    raw[i % len] ^= 1 << bit;
                }
            }
            Mutation::Truncate(i) => raw.truncate(i % len),
            Mutation::Insert(i, b) => {
                let at = i % (raw.len() + 1);
                raw.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i % len;
                let end = (at + n).min(raw.len());
                if at < end {
                    raw.drain(at..end);
                }
            }
            Mutation::Append(b) => raw.extend_from_slice(b),
        }
    }
    raw
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..700)) {
        check_all(&raw)?;
    }

    #[test]
    fn arbitrary_bytes_behind_a_query_header_never_panic(
        id in any::<u16>(),
        flags in any::<u8>(),
        counts in proptest::array::uniform4(0u16..4),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // A header that looks like a query (QR clear), so the body is decoded.
        let mut raw = id.to_be_bytes().to_vec();
        raw.push(flags & 0x7f);
        raw.push(0);
        for c in counts {
            raw.extend_from_slice(&c.to_be_bytes());
        }
        raw.extend(body);
        check_all(&raw)?;
    }

    #[test]
    fn valid_queries_get_well_formed_replies(raw in valid_query()) {
        check_all(&raw)?;
        // A query in our domain is answered, with its question, over both transports.
        let r = &FIXTURE.responders[0];
        for t in [Transport::Udp, Transport::Tcp] {
            let m = drive(r, &raw, t).map_err(TestCaseError::fail)?;
            let m = m.ok_or_else(|| TestCaseError::fail("no reply"))?;
            prop_assert_eq!(m.queries.len(), 1);
        }
    }

    #[test]
    fn mutated_queries_never_panic(
        raw in valid_query(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        check_all(&mutate(raw, &mutations))?;
    }
}

#[test]
fn seed_corpus_is_valid_queries() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus") {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.starts_with("seed-") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let m = Message::from_vec(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(m.queries.len(), 1, "{file}");
        check_all(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let reply = drive(&FIXTURE.responders[0], &raw, Transport::Udp)
            .unwrap()
            .expect("answered");
        if m.metadata.op_code == OpCode::Query && m.queries[0].query_type() != RecordType::AXFR {
            assert_ne!(reply.metadata.response_code, ResponseCode::NotImp, "{file}");
            assert_ne!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "{file}"
            );
        }
        seeds += 1;
    }
    assert!(seeds >= 10, "{seeds} seeds");
}
