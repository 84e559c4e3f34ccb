//! The DNS interface's own view of the catalog: per service name, the instances that are not
//! critical, already reduced to what an answer needs; per node name, its address and meta;
//! per address, the names that point at it (PTR).
//!
//! Entries are built on first use from the store and dropped when the store reports a change
//! to what they show ([`CatalogView::invalidate`], called for every applied command), so a
//! lookup costs a hash-map read, never a scan of the catalog. A change that lands while an
//! entry is being built makes the builder's copy unusable for caching ([`CatalogView::seq`]),
//! so a stale entry can never outlive the change that made it stale.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData};
use lotse_core::catalog::{aggregate_status, CheckStatus, Node};
use lotse_core::store::ServiceQuery;
use lotse_core::{Changes, Store, Table};

/// Negative entries (names nothing answers to) kept at most, so random names cannot grow the
/// cache without end; beyond this, misses are answered but not remembered.
const MAX_NEGATIVE: usize = 10_000;

/// Where the view reads the store: the server's copy in the agent, a plain store in tests.
pub trait StoreSource: Send + Sync + 'static {
    fn with_store(&self, f: &mut dyn FnMut(&Store));
}

impl StoreSource for lotse_server::Server {
    fn with_store(&self, f: &mut dyn FnMut(&Store)) {
        self.peek(|s| f(s))
    }
}

/// An address as registered: an IP, or a host name (answered with a CNAME).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    Ip(IpAddr),
    Host(String),
}

impl Address {
    fn parse(s: &str) -> Option<Address> {
        if s.is_empty() {
            return None;
        }
        Some(match s.parse::<IpAddr>() {
            Ok(ip) => Address::Ip(ip),
            Err(_) => Address::Host(s.to_string()),
        })
    }
}

/// A node as DNS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    pub datacenter: String,
    pub address: Option<Address>,
    /// `<node>.node`, relative, parsed once (None: the name is no DNS name); answers put it
    /// under `<dc>.<domain>`.
    pub label: Option<Name>,
    /// Node meta as TXT record data (`key=value`, sorted by key), built once.
    pub meta_rdata: Vec<RData>,
}

impl NodeRecord {
    pub(crate) fn from_node(n: &Node) -> NodeRecord {
        NodeRecord {
            name: n.name.clone(),
            datacenter: n.datacenter.clone(),
            address: Address::parse(&n.address),
            label: relative_name(&format!("{}.node", n.name)),
            meta_rdata: n
                .meta
                .iter()
                .map(|(k, v)| txt_rdata(&meta_txt(k, v)))
                .collect(),
        }
    }
}

/// A relative name (`n1.node`), to be put under a zone; None if it is no valid name.
pub(crate) fn relative_name(s: &str) -> Option<Name> {
    let mut n = Name::from_ascii(s).ok()?;
    n.set_fqdn(false);
    Some(n)
}

/// One TXT record's data for `text`. A text longer than one TXT string (255 bytes; node
/// meta values may be longer) is split into several strings of the one record, as RFC 7208
/// does for long SPF texts, rather than made into a record that cannot be sent.
pub(crate) fn txt_rdata(text: &str) -> RData {
    let mut parts: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
    if parts.is_empty() {
        parts.push(b"");
    }
    RData::TXT(TXT::from_bytes(parts))
}

/// Node meta as a TXT string, as Consul's `generateMeta` writes it: `key=value` with RFC 1464
/// escaping, or the value alone for keys starting with `rfc1035-`.
pub fn meta_txt(k: &str, v: &str) -> String {
    if k.as_bytes()
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"rfc1035-"))
    {
        return v.to_string();
    }
    let mut key = k.replace('`', "``").replace('=', "`=");
    let lead = key.len() - key.trim_start_matches(' ').len();
    let trail = key.len() - key.trim_end_matches(' ').len();
    if lead == key.len() {
        key = "` ".repeat(lead);
    } else {
        let core = key[lead..key.len() - trail].to_string();
        key = format!("{}{core}{}", "` ".repeat(lead), "` ".repeat(trail));
    }
    format!("{key}={}", v.replace('`', "``"))
}

/// One instance that is not critical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub node: Arc<NodeRecord>,
    /// The service ID (SRV answers are one per node, address and port, not per ID).
    pub id: String,
    /// The service's own address, when it has one (else the node's is used).
    pub service_address: Option<Address>,
    /// The SRV target for the service's own address, built once: `<hex-ip>.addr` (relative,
    /// to be put under a zone) for an IP, the host name (absolute) for a name.
    pub own_target: Option<Name>,
    pub port: u16,
    /// Every check on the instance and its node passes (else one warns).
    pub passing: bool,
    /// SRV weight: `Weights.Passing` or `Weights.Warning`, by health.
    pub weight: u16,
    pub tags: Vec<String>,
}

impl Instance {
    /// The address clients connect to.
    pub fn address(&self) -> Option<&Address> {
        self.service_address.as_ref().or(self.node.address.as_ref())
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// See [`Instance::own_target`].
fn own_target(address: &str) -> Option<Name> {
    match Address::parse(address)? {
        Address::Ip(ip) => relative_name(&format!("{}.addr", crate::name::ip_hex(ip))),
        Address::Host(h) => {
            let mut n = Name::from_ascii(&h).ok()?;
            n.set_fqdn(true);
            Some(n)
        }
    }
}

/// Every instance of a service name (all case variants) that is not critical.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSet {
    pub instances: Vec<Instance>,
}

/// Who an address belongs to, for PTR answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PtrTarget {
    Node { name: String, datacenter: String },
    Service { name: String },
}

#[derive(Default)]
struct Caches {
    /// Registered service names by their lowercase form (rebuilt when the services table
    /// moves: only then can a name appear or go).
    names: Option<Arc<HashMap<String, Vec<String>>>>,
    services: HashMap<String, Arc<ServiceSet>>,
    nodes: HashMap<String, Option<Arc<NodeRecord>>>,
    negative: usize,
    ptr: Option<Arc<HashMap<IpAddr, Vec<PtrTarget>>>>,
}

pub struct CatalogView {
    source: Arc<dyn StoreSource>,
    caches: RwLock<Caches>,
    /// Bumped (under the cache lock) by every invalidation: a builder that saw another value
    /// before it read the store does not cache what it read.
    seq: AtomicU64,
}

impl CatalogView {
    pub fn new(source: Arc<dyn StoreSource>) -> Arc<CatalogView> {
        Arc::new(CatalogView {
            source,
            caches: RwLock::new(Caches::default()),
            seq: AtomicU64::new(0),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Caches> {
        self.caches.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Caches> {
        self.caches.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The instances of service `name` (lowercase) that are not critical.
    pub fn service(&self, name: &str) -> Arc<ServiceSet> {
        if let Some(set) = self.read().services.get(name) {
            return set.clone();
        }
        // Before the name index is read: an index that a change made stale (even one read
        // from the cache just before the change dropped it) makes this entry stale too.
        let seq = self.seq.load(Ordering::Acquire);
        let names = self.names();
        let variants = names.get(name).map(Vec::as_slice).unwrap_or_default();
        let mut set = ServiceSet::default();
        if !variants.is_empty() {
            self.source
                .with_store(&mut |s| set = build_service(s, variants));
        }
        let set = Arc::new(set);
        let mut c = self.write();
        let negative = set.instances.is_empty();
        if self.seq.load(Ordering::Acquire) == seq && (!negative || c.negative < MAX_NEGATIVE) {
            c.negative += usize::from(negative);
            if let Some(old) = c.services.insert(name.to_string(), set.clone()) {
                c.negative -= usize::from(old.instances.is_empty());
            }
        }
        set
    }

    /// The lowercase-name index, built if a change dropped it.
    fn names(&self) -> Arc<HashMap<String, Vec<String>>> {
        if let Some(n) = self.read().names.clone() {
            return n;
        }
        let seq = self.seq.load(Ordering::Acquire);
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        self.source.with_store(&mut |s| {
            for n in s.service_names() {
                names
                    .entry(n.to_ascii_lowercase())
                    .or_default()
                    .push(n.to_string());
            }
        });
        let names = Arc::new(names);
        let mut c = self.write();
        if self.seq.load(Ordering::Acquire) == seq {
            c.names = Some(names.clone());
        }
        names
    }

    /// The node called `name` (lowercase), if any.
    pub fn node(&self, name: &str) -> Option<Arc<NodeRecord>> {
        if let Some(n) = self.read().nodes.get(name) {
            return n.clone();
        }
        let seq = self.seq.load(Ordering::Acquire);
        let mut found = None;
        self.source
            .with_store(&mut |s| found = find_node(s, name).map(NodeRecord::from_node));
        let found = found.map(Arc::new);
        let mut c = self.write();
        if self.seq.load(Ordering::Acquire) == seq && (found.is_some() || c.negative < MAX_NEGATIVE)
        {
            c.negative += usize::from(found.is_none());
            if let Some(old) = c.nodes.insert(name.to_string(), found.clone()) {
                c.negative -= usize::from(old.is_none());
            }
        }
        found
    }

    /// The names registered with address `ip`: nodes first (by name), then services.
    pub fn ptr(&self, ip: IpAddr) -> Vec<PtrTarget> {
        if let Some(map) = self.read().ptr.clone() {
            return map.get(&ip).cloned().unwrap_or_default();
        }
        let seq = self.seq.load(Ordering::Acquire);
        let mut map = HashMap::new();
        self.source.with_store(&mut |s| map = build_ptr(s));
        let map = Arc::new(map);
        let mut c = self.write();
        if self.seq.load(Ordering::Acquire) == seq {
            c.ptr = Some(map.clone());
        }
        map.get(&ip).cloned().unwrap_or_default()
    }

    /// Forgets what `changes` made stale. Called after every applied command.
    pub fn invalidate(&self, changes: &[Changes]) {
        let touches_catalog = changes.iter().any(|c| {
            !c.services.is_empty()
                || !c.nodes.is_empty()
                || c.tables
                    .iter()
                    .any(|t| matches!(t, Table::Nodes | Table::Services | Table::Checks))
        });
        if !touches_catalog {
            return;
        }
        let mut c = self.write();
        self.seq.fetch_add(1, Ordering::AcqRel);
        for ch in changes {
            for s in &ch.services {
                if let Some(old) = c.services.remove(&s.to_ascii_lowercase()) {
                    c.negative -= usize::from(old.instances.is_empty());
                }
            }
            for n in &ch.nodes {
                if let Some(old) = c.nodes.remove(&n.to_ascii_lowercase()) {
                    c.negative -= usize::from(old.is_none());
                }
            }
            if ch
                .tables
                .iter()
                .any(|t| matches!(t, Table::Nodes | Table::Services))
            {
                c.ptr = None;
            }
            if ch.tables.contains(&Table::Services) {
                c.names = None;
            }
        }
    }

    /// Forgets everything (the store was replaced by a snapshot).
    pub fn reset(&self) {
        let mut c = self.write();
        self.seq.fetch_add(1, Ordering::AcqRel);
        *c = Caches::default();
    }

    /// How many service and node entries are cached (for tests and metrics).
    pub fn cached(&self) -> (usize, usize) {
        let c = self.read();
        (c.services.len(), c.nodes.len())
    }
}

/// The instances of every name in `variants` (one service name in its registered cases).
fn build_service(s: &Store, variants: &[String]) -> ServiceSet {
    let mut nodes: HashMap<&str, Arc<NodeRecord>> = HashMap::new();
    let mut instances = Vec::new();
    for name in variants {
        let (_, entries) = s.service_health(name, &ServiceQuery::default(), false);
        for e in entries {
            let status = aggregate_status(e.checks.iter().copied());
            if status == CheckStatus::Critical {
                continue;
            }
            let passing = status == CheckStatus::Passing;
            let node = nodes
                .entry(e.node.name.as_str())
                .or_insert_with(|| Arc::new(NodeRecord::from_node(e.node)))
                .clone();
            let w = if passing {
                e.service.weights.passing
            } else {
                e.service.weights.warning
            };
            instances.push(Instance {
                node,
                id: e.service.id.clone(),
                service_address: Address::parse(&e.service.address),
                own_target: own_target(&e.service.address),
                port: u16::try_from(e.service.port).unwrap_or(0),
                passing,
                weight: u16::try_from(w.max(0)).unwrap_or(u16::MAX),
                tags: e.service.tags.clone(),
            });
        }
    }
    ServiceSet { instances }
}

/// The node named `lower`, compared without case (exact match first).
fn find_node<'s>(s: &'s Store, lower: &str) -> Option<&'s Node> {
    s.node(lower).or_else(|| {
        let (_, nodes) = s.catalog_nodes(&[]);
        nodes
            .into_iter()
            .find(|n| n.name.eq_ignore_ascii_case(lower))
    })
}

fn build_ptr(s: &Store) -> HashMap<IpAddr, Vec<PtrTarget>> {
    let mut map: HashMap<IpAddr, Vec<PtrTarget>> = HashMap::new();
    let (_, nodes) = s.catalog_nodes(&[]);
    for n in &nodes {
        if let Ok(ip) = n.address.parse::<IpAddr>() {
            map.entry(ip).or_default().push(PtrTarget::Node {
                name: n.name.clone(),
                datacenter: n.datacenter.clone(),
            });
        }
    }
    for name in s.service_names() {
        let (_, rows) = s.catalog_service(name, &ServiceQuery::default());
        for (_, svc) in rows {
            if let Ok(ip) = svc.address.parse::<IpAddr>() {
                let targets = map.entry(ip).or_default();
                let t = PtrTarget::Service {
                    name: svc.name.clone(),
                };
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::meta_txt;

    #[test]
    fn node_meta_is_written_as_rfc1464() {
        assert_eq!(meta_txt("key", "value"), "key=value");
        assert_eq!(meta_txt("rfc1035-x", "raw text"), "raw text");
        assert_eq!(meta_txt("a=b", "c"), "a`=b=c");
        assert_eq!(meta_txt(" k ", "v`"), "` k` =v``");
        assert_eq!(meta_txt("k", ""), "k=");
    }
}
