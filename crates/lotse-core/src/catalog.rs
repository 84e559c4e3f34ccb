//! The service catalog's records, as Consul's `structs.Node`, `structs.NodeService` and
//! `structs.HealthCheck`, and the requests that change them.
//!
//! Fields a replica never interprets (a service's `Proxy` and `Connect` blocks, a check's
//! `Definition`) are kept as the JSON text the agent sent: the store only stores and returns
//! them, and the log encoding (postcard) cannot carry a free-form JSON value.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Is record `$a` the same as `$b` but for its Raft indexes (so that registering it again
/// changes nothing)? One copy of `$a`, given `$b`'s indexes, compared whole: a field added
/// later takes part without anyone having to list it.
macro_rules! same_but_indexes {
    ($a:expr, $b:expr) => {{
        let mut a = $a.clone();
        a.create_index = $b.create_index;
        a.modify_index = $b.modify_index;
        a == *$b
    }};
}

/// A node: one machine running an agent (or an external node registered through the catalog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Node {
    /// The node's UUID (may be empty for external nodes).
    pub id: String,
    pub name: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Node {
    /// Same registration, ignoring the indexes: re-registering it changes nothing.
    pub fn same_as(&self, o: &Node) -> bool {
        same_but_indexes!(self, o)
    }
}

/// An address a service is reachable at under a name (`lan`, `wan`, `lan_ipv4`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServiceAddress {
    pub address: String,
    pub port: i64,
}

/// How much of the traffic an instance gets, by its health (DNS SRV weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub passing: i64,
    pub warning: i64,
}

impl Default for Weights {
    /// Consul's defaults when a registration gives none.
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// One service instance on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Service {
    pub id: String,
    /// The service's name (Consul's `Service`).
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: i64,
    pub socket_path: String,
    pub weights: Weights,
    pub enable_tag_override: bool,
    /// Empty for a typical service; `connect-proxy`, `mesh-gateway`, ... otherwise.
    pub kind: String,
    /// Consul's `Proxy` block as JSON text; empty when none.
    pub proxy_json: String,
    /// Consul's `Connect` block as JSON text; empty when none.
    pub connect_json: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Service {
    /// Same registration, ignoring the indexes: re-registering it changes nothing.
    pub fn same_as(&self, o: &Service) -> bool {
        same_but_indexes!(self, o)
    }

    /// Does the instance carry `tag`? Consul compares tags case-insensitively.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// A check's health, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CheckStatus {
    Passing,
    Warning,
    Critical,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }

    /// Parses Consul's status names.
    pub fn parse(s: &str) -> Option<CheckStatus> {
        match s {
            "passing" => Some(CheckStatus::Passing),
            "warning" => Some(CheckStatus::Warning),
            "critical" => Some(CheckStatus::Critical),
            _ => None,
        }
    }
}

/// One health check on a node, for the node itself (`service_id` empty) or one of its services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: CheckStatus,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    /// Filled in by the store from the service, whatever the request said.
    pub service_name: String,
    pub service_tags: Vec<String>,
    /// `http`, `tcp`, `ttl`, ... (empty for a check only the catalog knows).
    pub check_type: String,
    /// Go duration texts as Consul reports them (`"10s"`), empty when none.
    pub interval: String,
    pub timeout: String,
    pub exposed_port: i64,
    /// Consul's `Definition` block as JSON text; empty when none.
    pub definition_json: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl HealthCheck {
    /// A check with `id` and `name` on `node`, critical, with every other field empty.
    pub fn new(node: &str, id: &str, name: &str) -> HealthCheck {
        HealthCheck {
            node: node.into(),
            check_id: id.into(),
            name: name.into(),
            status: CheckStatus::Critical,
            notes: String::new(),
            output: String::new(),
            service_id: String::new(),
            service_name: String::new(),
            service_tags: Vec::new(),
            check_type: String::new(),
            interval: String::new(),
            timeout: String::new(),
            exposed_port: 0,
            definition_json: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Same registration, ignoring the indexes: re-registering it changes nothing.
    pub fn same_as(&self, o: &HealthCheck) -> bool {
        same_but_indexes!(self, o)
    }
}

/// Consul's `RegisterRequest`: a node, optionally one service, and checks, applied atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub node: Node,
    /// Leave an existing node's record as it is (Consul's `SkipNodeUpdate`).
    pub skip_node_update: bool,
    pub service: Option<Service>,
    pub checks: Vec<HealthCheck>,
}

/// Consul's `DeregisterRequest`: a check, a service (and its checks), or the whole node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeregisterRequest {
    pub node: String,
    /// Set: remove this service and its checks.
    pub service_id: Option<String>,
    /// Set (and no service): remove this check.
    pub check_id: Option<String>,
}

/// One row of `/v1/health/service/:s`: an instance with its node and every check that bears
/// on it (the node's own checks and the instance's).
#[derive(Debug, Clone)]
pub struct ServiceEntry<'a> {
    pub node: &'a Node,
    pub service: &'a Service,
    pub checks: Vec<&'a HealthCheck>,
}

/// The worst status among `checks` (passing when there are none).
pub fn aggregate_status<'a>(checks: impl IntoIterator<Item = &'a HealthCheck>) -> CheckStatus {
    checks
        .into_iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(CheckStatus::Passing)
}

/// Does `node` carry every `key: value` of `filters` in its meta (Consul's `node-meta`, ANDed)?
pub fn node_meta_matches(node: &Node, filters: &[(String, String)]) -> bool {
    filters
        .iter()
        .all(|(k, v)| node.meta.get(k).is_some_and(|have| have == v))
}
