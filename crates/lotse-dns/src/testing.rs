//! Test scaffolding shared by the unit tests and the fuzz target (feature `fuzzing`): a store
//! behind a lock that keeps a [`CatalogView`] current the way the server's change feed does,
//! builders for catalog records, a small populated catalog, and the invariants every reply
//! must keep.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use hickory_proto::op::Message;
use lotse_core::catalog::{
    CheckStatus, DeregisterRequest, HealthCheck, Node, RegisterRequest, Service, Weights,
};
use lotse_core::{Changes, Command, Outcome, Store};

use crate::config::DnsConfig;
use crate::respond::{self, Responder, Step, Transport};
use crate::view::{CatalogView, StoreSource};

/// A plain store behind a lock: what the view reads.
pub struct StoreCell(pub RwLock<Store>);

impl StoreSource for StoreCell {
    fn with_store(&self, f: &mut dyn FnMut(&Store)) {
        f(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A store, the view over it, and the next log index: [`TestCatalog::apply`] applies a
/// command and then tells the view what changed, as the server's change feed does.
pub struct TestCatalog {
    pub cell: Arc<StoreCell>,
    pub view: Arc<CatalogView>,
    next: Mutex<u64>,
}

impl Default for TestCatalog {
    fn default() -> Self {
        TestCatalog::new()
    }
}

impl TestCatalog {
    /// An empty catalog with a view that reads it.
    pub fn new() -> TestCatalog {
        let cell = Arc::new(StoreCell(RwLock::new(Store::new())));
        let view = CatalogView::new(cell.clone());
        TestCatalog::with_view(cell, view)
    }

    /// A catalog over `cell` feeding `view` (which may read the store through another source).
    pub fn with_view(cell: Arc<StoreCell>, view: Arc<CatalogView>) -> TestCatalog {
        TestCatalog {
            cell,
            view,
            next: Mutex::new(1),
        }
    }

    /// Applies `cmd` at the next index, then invalidates the view; panics if it was refused.
    pub fn apply(&self, cmd: Command) -> Changes {
        let (outcome, changes) = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let mut store = self.cell.0.write().unwrap_or_else(|p| p.into_inner());
            let r = store.apply(*next, &cmd);
            *next += 1;
            r
        };
        assert!(
            !matches!(outcome, Outcome::Rejected(_)),
            "{cmd:?} was refused: {outcome:?}"
        );
        self.view.invalidate(std::slice::from_ref(&changes));
        changes
    }

    /// Registers `node`, optionally with a service, and checks.
    pub fn register(&self, node: Node, service: Option<Service>, checks: Vec<HealthCheck>) {
        self.apply(Command::CatalogRegister {
            req: Box::new(RegisterRequest {
                node,
                skip_node_update: false,
                service,
                checks,
            }),
            now_ms: 0,
        });
    }

    /// Removes a node (or one of its services, or one check).
    pub fn deregister(&self, node: &str, service_id: Option<&str>, check_id: Option<&str>) {
        self.apply(Command::CatalogDeregister {
            req: DeregisterRequest {
                node: node.into(),
                service_id: service_id.map(Into::into),
                check_id: check_id.map(Into::into),
            },
            now_ms: 0,
        });
    }

    /// A responder over this catalog's view (reads need no confirmation).
    pub fn responder(&self, cfg: DnsConfig) -> Responder {
        Responder::new(cfg, self.view.clone(), false).expect("valid DNS config")
    }
}

/// A node in `dc1` at `address` (an IP or a host name; empty: none).
pub fn node(name: &str, address: &str) -> Node {
    Node {
        name: name.into(),
        address: address.into(),
        datacenter: "dc1".into(),
        ..Node::default()
    }
}

/// `node` with meta.
pub fn node_meta(name: &str, address: &str, meta: &[(&str, &str)]) -> Node {
    Node {
        meta: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..node(name, address)
    }
}

/// An instance of `name` with ID `id` on `port` and no address of its own.
pub fn service(id: &str, name: &str, port: i64) -> Service {
    Service {
        id: id.into(),
        name: name.into(),
        port,
        weights: Weights::default(),
        ..Service::default()
    }
}

/// `service` with tags.
pub fn tagged(id: &str, name: &str, port: i64, tags: &[&str]) -> Service {
    Service {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..service(id, name, port)
    }
}

/// `service` with its own address.
pub fn addressed(id: &str, name: &str, port: i64, address: &str) -> Service {
    Service {
        address: address.into(),
        ..service(id, name, port)
    }
}

/// A check on `node` (a node check when `service_id` is empty).
pub fn check(node: &str, id: &str, service_id: &str, status: CheckStatus) -> HealthCheck {
    HealthCheck {
        service_id: service_id.into(),
        status,
        ..HealthCheck::new(node, id, id)
    }
}

/// A small catalog with one of everything DNS answers: IPv4, IPv6 and host-name addresses,
/// tags, node meta (a long value and an RFC 1035 key among them), warning and critical
/// instances, duplicate instances, `consul` servers for NS, and a 40-instance service.
pub fn sample_catalog() -> TestCatalog {
    use CheckStatus::*;
    let c = TestCatalog::new();
    let long = "x".repeat(300);
    for (i, srv) in ["server1", "server2", "server3", "server4"]
        .iter()
        .enumerate()
    {
        let addr = format!("10.0.0.{}", i + 1);
        c.register(
            node_meta(srv, &addr, &[("role", "server")]),
            Some(service("consul", "consul", 8300)),
            vec![check(srv, "serfHealth", "", Passing)],
        );
    }
    c.register(
        node_meta(
            "foo",
            "10.1.0.1",
            &[
                ("key", "value"),
                ("rfc1035-raw", "plain text"),
                ("long", &long),
            ],
        ),
        Some(tagged("web1", "web", 80, &["v1", "primary"])),
        vec![check("foo", "web1-check", "web1", Passing)],
    );
    c.register(
        node("bar", "10.1.0.2"),
        Some(tagged("web2", "web", 80, &["v2"])),
        vec![check("bar", "web2-check", "web2", Warning)],
    );
    c.register(
        node("baz", "10.1.0.3"),
        Some(tagged("web3", "web", 80, &["v1"])),
        vec![check("baz", "web3-check", "web3", Critical)],
    );
    c.register(
        node("bar", "10.1.0.2"),
        Some(service("web2b", "web", 81)),
        vec![],
    );
    c.register(
        node("bar", "10.1.0.2"),
        Some(service("web2c", "web", 81)),
        vec![],
    );
    c.register(
        node("v6", "fe80::1"),
        Some(service("db1", "db", 5432)),
        vec![],
    );
    c.register(
        node("host", "db.example.com"),
        Some(service("db2", "db", 5432)),
        vec![],
    );
    c.register(
        node("own", "10.1.0.4"),
        Some(addressed("api1", "api", 9000, "192.168.0.9")),
        vec![],
    );
    c.register(
        node("own", "10.1.0.4"),
        Some(addressed("ext", "external", 443, "www.example.org")),
        vec![],
    );
    c.register(node("dotted.name", "10.1.0.5"), None, vec![]);
    for i in 0..40 {
        let n = format!("many{i:02}");
        c.register(
            node(&n, &format!("10.2.0.{i}")),
            Some(service(&format!("big{i}"), "big", 1000 + i)),
            vec![],
        );
    }
    c
}

/// The largest reply `req` may get over `transport` (None: the request does not decode, and
/// the reply, if any, is a bare header).
pub fn reply_limit(req: &[u8], transport: Transport) -> usize {
    match Message::from_vec(req) {
        Ok(m) => respond::max_size(&m, transport),
        Err(_) => 12,
    }
}

/// Responders over `c` in a spread of configurations: Consul's defaults; an alternative
/// domain with the other switches flipped; recursors (foreign names and PTR misses are
/// recursed) with confirmed reads.
pub fn sample_responders(c: &TestCatalog) -> Vec<Responder> {
    let flipped = DnsConfig {
        alt_domain: Some("alt.example.".into()),
        only_passing: true,
        disable_compression: true,
        enable_truncate: false,
        enable_additional_node_meta_txt: false,
        udp_answer_limit: 0,
        a_record_limit: 2,
        ..DnsConfig::default()
    };
    let recursing = DnsConfig {
        domain: "lotse.test.".into(),
        alt_domain: Some("consul.".into()),
        udp_answer_limit: 8,
        recursors: vec!["127.0.0.1:53".parse().expect("literal")],
        node_ttl: std::time::Duration::from_secs(30),
        ..DnsConfig::default()
    };
    vec![
        c.responder(DnsConfig::default()),
        c.responder(flipped),
        Responder::new(recursing, c.view.clone(), true).expect("valid DNS config"),
    ]
}

/// Runs `raw` through `r` as a transport would (a recursion that found no upstream answers
/// SERVFAIL; a read that needs confirming is confirmed) and checks the reply: `Ok(None)` when
/// the request is rightly dropped.
pub fn drive(r: &Responder, raw: &[u8], transport: Transport) -> Result<Option<Message>, String> {
    let bytes = match r.handle(raw, transport) {
        Step::Reply(b) => b,
        Step::Drop => {
            // Only what has no full header, or is a response, goes unanswered.
            return if raw.len() < 12 || raw[2] & 0x80 != 0 {
                Ok(None)
            } else {
                Err("a query was dropped".into())
            };
        }
        Step::Recurse(req) => r.servfail(&req, transport, true),
        Step::Confirm(req) => r.answer_confirmed(&req, transport),
    };
    check_reply(raw, &bytes, transport).map(Some)
}

/// What every reply must be: a DNS message that decodes, is a response, carries the
/// request's ID, and fits the transport.
pub fn check_reply(req: &[u8], reply: &[u8], transport: Transport) -> Result<Message, String> {
    let limit = reply_limit(req, transport);
    if reply.len() > limit {
        return Err(format!(
            "reply of {} bytes over the {limit}-byte limit",
            reply.len()
        ));
    }
    let m = Message::from_vec(reply).map_err(|e| format!("reply does not decode: {e}"))?;
    if req.len() >= 2 && m.metadata.id != u16::from_be_bytes([req[0], req[1]]) {
        return Err(format!("reply ID {} is not the request's", m.metadata.id));
    }
    if m.metadata.message_type != hickory_proto::op::MessageType::Response {
        return Err("reply is not a response".into());
    }
    // A reply with a question repeats the request's.
    if !m.queries.is_empty() {
        let asked = Message::from_vec(req)
            .map(|q| q.queries)
            .unwrap_or_default();
        if m.queries != asked {
            return Err(format!("reply question {:?}, asked {asked:?}", m.queries));
        }
    }
    Ok(m)
}

/// The sample catalog and its responders, built once: what the property tests and the fuzz
/// target throw input at.
pub struct Fixture {
    // Kept alive for the responders' view.
    _catalog: TestCatalog,
    pub responders: Vec<Responder>,
}

pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let catalog = sample_catalog();
    let responders = sample_responders(&catalog);
    Fixture {
        _catalog: catalog,
        responders,
    }
});
