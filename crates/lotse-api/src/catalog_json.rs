//! The one place that turns catalog rows into Consul's JSON: `structs.Node`,
//! `structs.ServiceNode`, `structs.NodeService`, `structs.HealthCheck`,
//! `structs.CheckServiceNode` and the agent's `api.AgentService`.
//!
//! Fields are declared in Go's struct order (encoding/json writes them so) and follow Go's
//! `omitempty` rules field by field; `Namespace`/`Partition` never appear (Consul CE). The core
//! keeps a map that Consul would hold as `nil` and one registered as `{}` alike, so an empty
//! map is written the way a registration without it reads: `null` where Consul has no
//! `omitempty`, absent where it has.
//!
//! The blocks the catalog keeps as JSON text (a service's `Proxy` and `Connect`, a check's
//! `Definition`) are written back in Go's form ([`JsonText`], [`blocks`]) whoever stored them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use lotse_core::catalog::{HealthCheck, Node, Service, ServiceAddress, ServiceEntry};
use serde::ser::Serializer;
use serde::Serialize;

mod agent;
mod blocks;
mod ordered;

pub use agent::{agent_service, AgentServiceJson};
pub use blocks::{canonical_connect, canonical_proxy, is_zero_proxy, ACCESS_LOGS};
pub use ordered::Ordered;

// ---------------------------------------------------------------------------------------------
// Stored JSON text, written back in order

/// How a stored block is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// A service's `Proxy`: Go's `ConnectProxyConfig` order and zero fields.
    Proxy,
    /// A service's `Connect`.
    Connect,
    /// As stored (a check's `Definition`, written in Go's order by its decoders); `{}` when
    /// empty.
    Verbatim,
    /// `api.HealthCheckDefinition`'s zero value as its `MarshalJSON` writes it, whatever is
    /// stored: the agent's health endpoints copy no definition into their `api.HealthCheck`s.
    ApiZero,
}

/// A JSON block kept as text by the catalog, serialised in Go's form (a `serde_json::Value`
/// would sort its keys). Empty or unreadable text stands for the block's zero value.
#[derive(Debug, Clone, Copy)]
pub struct JsonText<'a> {
    text: &'a str,
    block: Block,
}

impl<'a> JsonText<'a> {
    pub fn new(text: &'a str, block: Block) -> JsonText<'a> {
        JsonText { text, block }
    }

    /// The block as it is written out.
    pub fn ordered(&self) -> Ordered {
        if self.block == Block::ApiZero {
            return blocks::zero_api_definition();
        }
        // Most services carry no proxy or connect block: skip the parser for them.
        let stored = if self.text.is_empty() {
            Ordered::Object(Vec::new())
        } else {
            serde_json::from_str::<Ordered>(self.text)
                .unwrap_or_else(|_| Ordered::Object(Vec::new()))
        };
        match self.block {
            Block::Proxy => blocks::canonical_proxy(&stored),
            Block::Connect => blocks::canonical_connect(&stored),
            Block::Verbatim | Block::ApiZero => stored,
        }
    }
}

impl Serialize for JsonText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The common case, a service without proxy or connect block and a check without a
        // stored definition, is written from a value built once: these blocks are on every
        // row of the largest answers.
        static ZERO_PROXY: OnceLock<Ordered> = OnceLock::new();
        static EMPTY: Ordered = Ordered::Object(Vec::new());
        match (self.block, self.text.is_empty()) {
            (Block::Proxy, true) => ZERO_PROXY
                .get_or_init(|| blocks::canonical_proxy(&EMPTY))
                .serialize(s),
            (Block::Connect | Block::Verbatim, true) => EMPTY.serialize(s),
            _ => self.ordered().serialize(s),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small shapes

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightsJson {
    pub passing: i64,
    pub warning: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddressJson<'a> {
    pub address: &'a str,
    pub port: i64,
}

pub(crate) fn tagged(
    m: &BTreeMap<String, ServiceAddress>,
) -> BTreeMap<&str, ServiceAddressJson<'_>> {
    m.iter()
        .map(|(k, a)| {
            (
                k.as_str(),
                ServiceAddressJson {
                    address: &a.address,
                    port: a.port,
                },
            )
        })
        .collect()
}

pub(crate) fn weights(s: &Service) -> WeightsJson {
    WeightsJson {
        passing: s.weights.passing,
        warning: s.weights.warning,
    }
}

/// A map that Go holds as `nil` unless something was registered: `null` when empty.
fn nil_if_empty<K, V>(m: &BTreeMap<K, V>) -> Option<&BTreeMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

// ---------------------------------------------------------------------------------------------
// Node

/// `structs.Node` (`Partition`, `PeerName` and `Locality` are omitempty and never set here).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeJson<'a> {
    #[serde(rename = "ID")]
    pub id: &'a str,
    pub node: &'a str,
    pub address: &'a str,
    pub datacenter: &'a str,
    pub tagged_addresses: Option<&'a BTreeMap<String, String>>,
    pub meta: Option<&'a BTreeMap<String, String>>,
    pub create_index: u64,
    pub modify_index: u64,
}

pub fn node(n: &Node) -> NodeJson<'_> {
    NodeJson {
        id: &n.id,
        node: &n.name,
        address: &n.address,
        datacenter: &n.datacenter,
        tagged_addresses: nil_if_empty(&n.tagged_addresses),
        meta: nil_if_empty(&n.meta),
        create_index: n.create_index,
        modify_index: n.modify_index,
    }
}

// ---------------------------------------------------------------------------------------------
// ServiceNode: /v1/catalog/service/:service

/// `structs.ServiceNode` as `/v1/catalog/service/:s` writes it: the node's fields first, then
/// the instance's; `ServiceTags` is `[]` and `ServiceMeta` `{}` (the handler and `PartialClone`
/// make them so), `ServiceLocality` is always `null`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceNodeJson<'a> {
    #[serde(rename = "ID")]
    pub id: &'a str,
    pub node: &'a str,
    pub address: &'a str,
    pub datacenter: &'a str,
    pub tagged_addresses: Option<&'a BTreeMap<String, String>>,
    pub node_meta: Option<&'a BTreeMap<String, String>>,
    pub service_kind: &'a str,
    #[serde(rename = "ServiceID")]
    pub service_id: &'a str,
    pub service_name: &'a str,
    pub service_tags: &'a [String],
    pub service_address: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub service_tagged_addresses: BTreeMap<&'a str, ServiceAddressJson<'a>>,
    pub service_weights: WeightsJson,
    pub service_meta: &'a BTreeMap<String, String>,
    pub service_port: i64,
    pub service_socket_path: &'a str,
    pub service_enable_tag_override: bool,
    pub service_proxy: JsonText<'a>,
    pub service_connect: JsonText<'a>,
    pub service_locality: Option<()>,
    pub create_index: u64,
    pub modify_index: u64,
}

pub fn service_node<'a>(n: &'a Node, s: &'a Service) -> ServiceNodeJson<'a> {
    ServiceNodeJson {
        id: &n.id,
        node: &n.name,
        address: &n.address,
        datacenter: &n.datacenter,
        tagged_addresses: nil_if_empty(&n.tagged_addresses),
        node_meta: nil_if_empty(&n.meta),
        service_kind: &s.kind,
        service_id: &s.id,
        service_name: &s.name,
        service_tags: &s.tags,
        service_address: &s.address,
        service_tagged_addresses: tagged(&s.tagged_addresses),
        service_weights: weights(s),
        service_meta: &s.meta,
        service_port: s.port,
        service_socket_path: &s.socket_path,
        service_enable_tag_override: s.enable_tag_override,
        service_proxy: JsonText::new(&s.proxy_json, Block::Proxy),
        service_connect: JsonText::new(&s.connect_json, Block::Connect),
        service_locality: None,
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

// ---------------------------------------------------------------------------------------------
// NodeService: catalog/node, catalog/node-services, health/service, txn results

/// `structs.NodeService`: `Kind`, `TaggedAddresses`, `Port` and `SocketPath` are omitempty,
/// `Meta` is `null` when empty, `PeerName` is always written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeServiceJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub kind: &'a str,
    #[serde(rename = "ID")]
    pub id: &'a str,
    pub service: &'a str,
    pub tags: Option<&'a [String]>,
    pub address: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<&'a str, ServiceAddressJson<'a>>,
    pub meta: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub socket_path: &'a str,
    pub weights: WeightsJson,
    pub enable_tag_override: bool,
    pub proxy: JsonText<'a>,
    pub connect: JsonText<'a>,
    pub peer_name: &'a str,
    pub create_index: u64,
    pub modify_index: u64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The HTTP handlers' form: `Tags` is `[]` when there are none.
pub fn node_service(s: &Service) -> NodeServiceJson<'_> {
    NodeServiceJson {
        tags: Some(&s.tags),
        ..stored_node_service(s)
    }
}

/// The state store's form, as `/v1/txn` results show it: `Tags` is `null` when there are none.
pub fn stored_node_service(s: &Service) -> NodeServiceJson<'_> {
    NodeServiceJson {
        kind: &s.kind,
        id: &s.id,
        service: &s.name,
        tags: (!s.tags.is_empty()).then_some(s.tags.as_slice()),
        address: &s.address,
        tagged_addresses: tagged(&s.tagged_addresses),
        meta: nil_if_empty(&s.meta),
        port: s.port,
        socket_path: &s.socket_path,
        weights: weights(s),
        enable_tag_override: s.enable_tag_override,
        proxy: JsonText::new(&s.proxy_json, Block::Proxy),
        connect: JsonText::new(&s.connect_json, Block::Connect),
        peer_name: "",
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

// ---------------------------------------------------------------------------------------------
// HealthCheck

/// `structs.HealthCheck` (`PeerName` is omitempty and never set here), and the agent's
/// `api.HealthCheck`, which has the same fields less `Interval` and `Timeout`
/// ([`api_health_check`]).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheckJson<'a> {
    pub node: &'a str,
    #[serde(rename = "CheckID")]
    pub check_id: &'a str,
    pub name: &'a str,
    pub status: &'a str,
    pub notes: &'a str,
    pub output: &'a str,
    #[serde(rename = "ServiceID")]
    pub service_id: &'a str,
    pub service_name: &'a str,
    pub service_tags: Option<&'a [String]>,
    #[serde(rename = "Type")]
    pub check_type: &'a str,
    /// Always there in `structs.HealthCheck`, absent from `api.HealthCheck` (None).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<&'a str>,
    pub exposed_port: i64,
    pub definition: JsonText<'a>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The HTTP handlers' form: `ServiceTags` is `[]` when there are none.
pub fn health_check(c: &HealthCheck) -> HealthCheckJson<'_> {
    HealthCheckJson {
        service_tags: Some(&c.service_tags),
        ..stored_health_check(c)
    }
}

/// The state store's form (`/v1/txn` results): `ServiceTags` is `null` when there are none.
pub fn stored_health_check(c: &HealthCheck) -> HealthCheckJson<'_> {
    HealthCheckJson {
        node: &c.node,
        check_id: &c.check_id,
        name: &c.name,
        status: c.status.as_str(),
        notes: &c.notes,
        output: &c.output,
        service_id: &c.service_id,
        service_name: &c.service_name,
        service_tags: (!c.service_tags.is_empty()).then_some(c.service_tags.as_slice()),
        check_type: &c.check_type,
        interval: Some(&c.interval),
        timeout: Some(&c.timeout),
        exposed_port: c.exposed_port,
        definition: JsonText::new(&c.definition_json, Block::Verbatim),
        create_index: c.create_index,
        modify_index: c.modify_index,
    }
}

/// `api.HealthCheck` as the agent's health endpoints fill it: identity, status, output and
/// service fields copied (`ServiceTags` as stored: `null` when none), everything else Go's
/// zero value.
pub fn api_health_check(c: &HealthCheck) -> HealthCheckJson<'_> {
    HealthCheckJson {
        check_type: "",
        interval: None,
        timeout: None,
        exposed_port: 0,
        definition: JsonText::new("", Block::ApiZero),
        create_index: 0,
        modify_index: 0,
        ..stored_health_check(c)
    }
}

// ---------------------------------------------------------------------------------------------
// CheckServiceNode: /v1/health/service/:service

/// `structs.CheckServiceNode`: the instance, its node, and every check bearing on it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEntryJson<'a> {
    pub node: NodeJson<'a>,
    pub service: NodeServiceJson<'a>,
    pub checks: Vec<HealthCheckJson<'a>>,
}

pub fn service_entry<'a>(e: &ServiceEntry<'a>) -> ServiceEntryJson<'a> {
    ServiceEntryJson {
        node: node(e.node),
        service: node_service(e.service),
        checks: e.checks.iter().map(|c| health_check(c)).collect(),
    }
}

#[cfg(test)]
mod tests;
