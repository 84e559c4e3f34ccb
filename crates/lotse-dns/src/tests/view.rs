//! The view's cache: entries are built once and reused, dropped by the changes that make them
//! stale, and never cached from a read that raced with a change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use lotse_core::catalog::CheckStatus::*;
use lotse_core::{Command, Store};

use super::*;
use crate::testing::*;
use crate::view::{CatalogView, StoreSource};

fn web(c: &TestCatalog, n: &str, addr: &str, status: lotse_core::catalog::CheckStatus) {
    c.register(
        node(n, addr),
        Some(service(&format!("web-{n}"), "web", 80)),
        vec![check(
            n,
            &format!("web-{n}-check"),
            &format!("web-{n}"),
            status,
        )],
    );
}

/// The A answers for `q` over TCP (NXDOMAIN: none).
fn a(r: &Responder, q: &str) -> Vec<String> {
    ips(&ask_tcp(r, q, RecordType::A).answers)
}

#[test]
fn entries_are_built_once_and_reused() {
    let c = TestCatalog::new();
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    assert_eq!(c.view.cached(), (0, 0));
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1"]);
    assert_eq!(c.view.cached(), (1, 0));
    assert_eq!(a(&r, "n1.node.consul."), ["10.0.0.1"]);
    assert_eq!(c.view.cached(), (1, 1));
    // Asking again (any type, any case, any form) reuses them.
    for _ in 0..3 {
        ask(&r, "WEB.service.consul.", RecordType::SRV);
        ask(&r, "_web._tcp.service.dc1.consul.", RecordType::SRV);
        ask(&r, "n1.node.consul.", RecordType::TXT);
        ask(&r, "N1.NODE.consul.", RecordType::A);
    }
    assert_eq!(c.view.cached(), (1, 1));
    // Misses are cached too.
    ask(&r, "nope.service.consul.", RecordType::A);
    ask(&r, "nope.node.consul.", RecordType::A);
    assert_eq!(c.view.cached(), (2, 2));
    // NS reads the `consul` service through the cache.
    ask(&r, "consul.", RecordType::NS);
    assert_eq!(c.view.cached(), (3, 2));
}

/// A source that counts reads of the store.
struct Counting {
    inner: Arc<StoreCell>,
    reads: AtomicUsize,
}

impl StoreSource for Counting {
    fn with_store(&self, f: &mut dyn FnMut(&Store)) {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.with_store(f)
    }
}

#[test]
fn a_cached_entry_costs_no_store_read() {
    let cell = Arc::new(StoreCell(RwLock::new(Store::new())));
    let source = Arc::new(Counting {
        inner: cell.clone(),
        reads: AtomicUsize::new(0),
    });
    let c = TestCatalog::with_view(cell, CatalogView::new(source.clone()));
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1"]);
    let after_first = source.reads.load(Ordering::SeqCst);
    assert!(after_first >= 1);
    for _ in 0..100 {
        assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1"]);
    }
    assert_eq!(source.reads.load(Ordering::SeqCst), after_first);
    // A change to something else (a KV write) does not drop the entry.
    c.apply(Command::KvSet(lotse_core::kv::KvWrite {
        key: "k".into(),
        value: b"v".to_vec(),
        flags: 0,
    }));
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1"]);
    assert_eq!(source.reads.load(Ordering::SeqCst), after_first);
    // A new node entry costs one read.
    a(&r, "n1.node.consul.");
    assert_eq!(source.reads.load(Ordering::SeqCst), after_first + 1);
    a(&r, "n1.node.consul.");
    assert_eq!(source.reads.load(Ordering::SeqCst), after_first + 1);
}

#[test]
fn changes_show_in_the_next_answer() {
    let c = TestCatalog::new();
    web(&c, "n1", "10.0.0.1", Passing);
    web(&c, "n2", "10.0.0.2", Passing);
    let r = c.responder(cfg());
    let q = "web.service.consul.";
    assert_eq!(a(&r, q), ["10.0.0.1", "10.0.0.2"]);

    // A service check turns critical, then warns, then passes.
    web(&c, "n2", "10.0.0.2", Critical);
    assert_eq!(a(&r, q), ["10.0.0.1"]);
    web(&c, "n2", "10.0.0.2", Warning);
    assert_eq!(a(&r, q), ["10.0.0.1", "10.0.0.2"]);
    let only = c.responder(DnsConfig {
        only_passing: true,
        ..cfg()
    });
    assert_eq!(a(&only, q), ["10.0.0.1"]);
    web(&c, "n2", "10.0.0.2", Passing);
    assert_eq!(a(&only, q), ["10.0.0.1", "10.0.0.2"]);

    // A node check turns critical: every service on the node goes.
    c.register(
        node("n1", "10.0.0.1"),
        None,
        vec![check("n1", "serfHealth", "", Critical)],
    );
    assert_eq!(a(&r, q), ["10.0.0.2"]);
    c.deregister("n1", None, Some("serfHealth"));
    assert_eq!(a(&r, q), ["10.0.0.1", "10.0.0.2"]);

    // A node moves: its node entry, service entries and PTR follow.
    assert_eq!(a(&r, "n1.node.consul."), ["10.0.0.1"]);
    let ptr = |ip: &str| {
        let m = ask(&r, ip, RecordType::PTR);
        m.answers
            .first()
            .map(|p| match &p.data {
                RData::PTR(t) => t.0.to_ascii(),
                _ => unreachable!(),
            })
            .unwrap_or_default()
    };
    assert_eq!(ptr("1.0.0.10.in-addr.arpa."), "n1.node.dc1.consul.");
    web(&c, "n1", "10.0.0.11", Passing);
    assert_eq!(a(&r, "n1.node.consul."), ["10.0.0.11"]);
    assert_eq!(a(&r, q), ["10.0.0.11", "10.0.0.2"]);
    assert_eq!(ptr("1.0.0.10.in-addr.arpa."), "");
    assert_eq!(ptr("11.0.0.10.in-addr.arpa."), "n1.node.dc1.consul.");

    // Node meta changes show in SRV additional records.
    c.register(node_meta("n2", "10.0.0.2", &[("rack", "r1")]), None, vec![]);
    let m = ask_tcp(&r, q, RecordType::SRV);
    assert_eq!(txts(&m.additionals), ["rack=r1"]);

    // An instance is deregistered; then its node.
    c.deregister("n2", Some("web-n2"), None);
    assert_eq!(a(&r, q), ["10.0.0.11"]);
    assert_eq!(a(&r, "n2.node.consul."), ["10.0.0.2"]);
    c.deregister("n2", None, None);
    let m = ask(&r, "n2.node.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
    c.deregister("n1", None, None);
    let m = ask(&r, q, RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
}

#[test]
fn new_names_replace_cached_misses() {
    let c = TestCatalog::new();
    let r = c.responder(cfg());
    let m = ask(&r, "api.service.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
    let m = ask(&r, "box.node.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
    let m = ask(&r, "5.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
    // Registered in another case than asked.
    c.register(
        node("BOX", "10.0.0.5"),
        Some(service("a1", "API", 80)),
        vec![],
    );
    assert_eq!(a(&r, "api.service.consul."), ["10.0.0.5"]);
    assert_eq!(a(&r, "box.node.consul."), ["10.0.0.5"]);
    let m = ask(&r, "5.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(types(&m.answers), [RecordType::PTR]);
    // A second case variant of the name joins the first.
    c.register(
        node("other", "10.0.0.6"),
        Some(service("a2", "api", 80)),
        vec![],
    );
    assert_eq!(a(&r, "API.service.consul."), ["10.0.0.5", "10.0.0.6"]);
}

#[test]
fn reset_forgets_everything() {
    let c = TestCatalog::new();
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    a(&r, "web.service.consul.");
    a(&r, "n1.node.consul.");
    assert_eq!(c.view.cached(), (1, 1));
    c.view.reset();
    assert_eq!(c.view.cached(), (0, 0));
    // A store replaced behind the view's back (a snapshot install), then reset.
    *c.cell.0.write().unwrap() = Store::new();
    c.view.reset();
    let m = ask(&r, "web.service.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
}

#[test]
fn misses_are_remembered_only_up_to_a_bound() {
    let c = TestCatalog::new();
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    a(&r, "web.service.consul.");
    for i in 0..6_000 {
        ask(&r, &format!("miss{i}.service.consul."), RecordType::A);
        ask(&r, &format!("miss{i}.node.consul."), RecordType::A);
    }
    let (services, nodes) = c.view.cached();
    assert_eq!(services + nodes, 10_001, "10,000 misses and the one hit");
    // Positive entries are still cached beyond the bound.
    a(&r, "n1.node.consul.");
    assert_eq!(c.view.cached().1, nodes + 1);
    // Invalidated misses make room again.
    c.register(
        node("miss0", "10.9.0.1"),
        Some(service("m0", "miss0", 1)),
        vec![],
    );
    assert_eq!(c.view.cached(), (services - 1, nodes));
    ask(&r, "fresh.service.consul.", RecordType::A);
    assert_eq!(c.view.cached().0, services);
    // Still answered right, cached or not.
    assert_eq!(a(&r, "miss0.service.consul."), ["10.9.0.1"]);
    let m = ask(&r, "miss5999.node.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
}

/// A source that, once armed, runs a closure right after the next read of the store: a
/// change that lands while a view entry is being built, deterministically.
struct Racy {
    inner: Arc<StoreCell>,
    after_read: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl StoreSource for Racy {
    fn with_store(&self, f: &mut dyn FnMut(&Store)) {
        self.inner.with_store(f);
        let hook = self.after_read.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }
}

/// A catalog whose view reads through [`Racy`].
fn racy() -> (Arc<TestCatalog>, Arc<Racy>) {
    let cell = Arc::new(StoreCell(RwLock::new(Store::new())));
    let racy = Arc::new(Racy {
        inner: cell.clone(),
        after_read: Mutex::new(None),
    });
    let c = Arc::new(TestCatalog::with_view(cell, CatalogView::new(racy.clone())));
    (c, racy)
}

/// Arms `racy` to apply `change` to `c` right after the next store read.
fn arm(racy: &Racy, c: &Arc<TestCatalog>, change: impl FnOnce(&TestCatalog) + Send + 'static) {
    let c = Arc::downgrade(c);
    *racy.after_read.lock().unwrap() = Some(Box::new(move || {
        if let Some(c) = c.upgrade() {
            change(&c)
        }
    }));
}

#[test]
fn a_service_entry_read_before_a_change_is_not_cached() {
    let (c, racy) = racy();
    web(&c, "n1", "10.0.0.1", Passing);
    web(&c, "n2", "10.0.0.2", Passing);
    let r = c.responder(cfg());
    // The name index is built and cached first, so the next read is the service's.
    ask(&r, "other.service.consul.", RecordType::A);
    assert_eq!(c.view.cached(), (1, 0));
    arm(&racy, &c, |c| web(c, "n2", "10.0.0.2", Critical));
    // This answer was read before the change: it may show n2, but must not be kept.
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1", "10.0.0.2"]);
    assert!(racy.after_read.lock().unwrap().is_none(), "the change ran");
    assert_eq!(c.view.cached(), (1, 0), "the stale entry was not cached");
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1"]);
    assert_eq!(c.view.cached(), (2, 0));
}

#[test]
fn a_name_index_read_before_a_change_is_not_cached() {
    let (c, racy) = racy();
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    // The first read builds the name index: a new service lands right after it.
    arm(&racy, &c, |c| {
        c.register(
            node("n9", "10.0.0.9"),
            Some(service("a9", "api", 80)),
            vec![],
        )
    });
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1"]);
    assert!(racy.after_read.lock().unwrap().is_none());
    // Had the index been kept, `api` would be unknown until the next change to services.
    assert_eq!(a(&r, "api.service.consul."), ["10.0.0.9"]);
}

#[test]
fn a_service_built_from_a_stale_name_index_is_not_cached() {
    let (c, racy) = racy();
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    // While the name index is read for `web`, the name appears in another case (`WEB`, on
    // n2): the index read is stale, and so is a service entry built from it.
    arm(&racy, &c, |c| {
        c.register(
            node("n2", "10.0.0.2"),
            Some(service("w2", "WEB", 80)),
            vec![],
        )
    });
    let first = a(&r, "web.service.consul.");
    assert!(racy.after_read.lock().unwrap().is_none());
    assert!(first.contains(&"10.0.0.1".to_string()), "{first:?}");
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1", "10.0.0.2"]);
}

#[test]
fn a_node_entry_read_before_a_change_is_not_cached() {
    let (c, racy) = racy();
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    arm(&racy, &c, |c| web(c, "n1", "10.0.0.2", Passing));
    assert_eq!(a(&r, "n1.node.consul."), ["10.0.0.1"]);
    assert_eq!(c.view.cached(), (0, 0));
    assert_eq!(a(&r, "n1.node.consul."), ["10.0.0.2"]);
    // A miss read before the node is registered is not cached either.
    arm(&racy, &c, |c| web(c, "late", "10.0.0.3", Passing));
    let m = ask(&r, "late.node.consul.", RecordType::A);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
    assert_eq!(a(&r, "late.node.consul."), ["10.0.0.3"]);
}

#[test]
fn a_ptr_map_read_before_a_change_is_not_cached() {
    let (c, racy) = racy();
    web(&c, "n1", "10.0.0.1", Passing);
    let r = c.responder(cfg());
    arm(&racy, &c, |c| web(c, "n1", "10.0.0.2", Passing));
    let m = ask(&r, "1.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(types(&m.answers), [RecordType::PTR]);
    let m = ask(&r, "1.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_negative(&m, ResponseCode::NXDomain, "consul.");
    let m = ask(&r, "2.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(types(&m.answers), [RecordType::PTR]);
}

#[test]
fn changes_racing_with_lookups_on_threads_settle_right() {
    // Not deterministic: lookups on four threads while the health of an instance flips;
    // whatever interleaving happened, once the writes stop the answer is the last state.
    let c = Arc::new(TestCatalog::new());
    web(&c, "n1", "10.0.0.1", Passing);
    web(&c, "n2", "10.0.0.2", Passing);
    let r = Arc::new(c.responder(cfg()));
    let done = Arc::new(OnceLock::<()>::new());
    // Readers count their lookups, so the writes start only once all four are reading (on a
    // loaded machine the writes could otherwise finish before any reader ran).
    let looked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (r, done, looked) = (r.clone(), done.clone(), looked.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while done.get().is_none() {
                    let got = a(&r, "web.service.consul.");
                    assert!(!got.is_empty() && got.len() <= 2, "{got:?}");
                    a(&r, "n2.node.consul.");
                    n += 1;
                    if n == 1 {
                        looked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                n
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while looked.load(std::sync::atomic::Ordering::SeqCst) < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the readers never started"
        );
        std::thread::yield_now();
    }
    for i in 0..400 {
        let status = if i % 2 == 0 { Critical } else { Passing };
        web(&c, "n2", &format!("10.0.1.{}", i % 250), status);
    }
    web(&c, "n2", "10.0.0.2", Critical);
    done.set(()).unwrap();
    let lookups: usize = readers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(lookups > 0);
    assert_eq!(a(&r, "web.service.consul."), ["10.0.0.1"]);
    assert_eq!(a(&r, "n2.node.consul."), ["10.0.0.2"]);
}
