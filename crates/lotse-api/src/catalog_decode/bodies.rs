//! `structs.RegisterRequest`, `structs.DeregisterRequest` and their parts
//! (`structs.NodeService`, `structs.HealthCheck`) decoded into catalog rows plus what Consul
//! validates after decoding (kept raw here: a check's status text, `PeerName`s).

use std::collections::BTreeMap;

use lotse_core::catalog::{CheckStatus, HealthCheck, Node, Service, ServiceAddress, Weights};
use serde_json::Value;

use super::blocks::{connect, definition, proxy, Definition};
use super::{DecodeError, GoObject};

/// `structs.NodeService` fields (`RaftIndex` is embedded, so its fields are known too).
const SERVICE_FIELDS: [&str; 17] = [
    "Kind",
    "ID",
    "Service",
    "Tags",
    "Address",
    "TaggedAddresses",
    "Meta",
    "Port",
    "SocketPath",
    "Weights",
    "EnableTagOverride",
    "Locality",
    "Proxy",
    "Connect",
    "PeerName",
    "CreateIndex",
    "ModifyIndex",
];

/// `structs.HealthCheck` fields.
const CHECK_FIELDS: [&str; 17] = [
    "Node",
    "CheckID",
    "Name",
    "Status",
    "Notes",
    "Output",
    "ServiceID",
    "ServiceName",
    "ServiceTags",
    "Type",
    "Interval",
    "Timeout",
    "ExposedPort",
    "PeerName",
    "Definition",
    "CreateIndex",
    "ModifyIndex",
];

/// `structs.RegisterRequest` fields (`WriteRequest` brings `Token`, `RaftIndex` the indexes).
const REGISTER_FIELDS: [&str; 15] = [
    "Datacenter",
    "ID",
    "Node",
    "Address",
    "TaggedAddresses",
    "NodeMeta",
    "Service",
    "Check",
    "Checks",
    "Locality",
    "SkipNodeUpdate",
    "PeerName",
    "Token",
    "CreateIndex",
    "ModifyIndex",
];

/// `structs.DeregisterRequest` fields; its `UnmarshalJSON` also lets the obsolete `Address`
/// through.
const DEREGISTER_FIELDS: [&str; 7] = [
    "Datacenter",
    "Node",
    "ServiceID",
    "CheckID",
    "PeerName",
    "Token",
    "Address",
];

/// A decoded `NodeService`.
#[derive(Debug, Clone)]
pub struct ServiceBody {
    pub service: Service,
    pub peer_name: String,
}

/// A decoded `HealthCheck`: the row (status `critical` until [`CheckBody::status`] is
/// resolved) plus what the endpoint still validates or derives.
#[derive(Debug, Clone)]
pub struct CheckBody {
    pub check: HealthCheck,
    /// The status as sent (`""` means `critical`).
    pub status: String,
    pub peer_name: String,
    pub definition: Definition,
}

impl CheckBody {
    /// The status as Consul stores it: empty means `critical`; None for a status the catalog
    /// cannot hold (Consul stores any text; Lotse only its three states).
    pub fn resolved_status(&self) -> Option<CheckStatus> {
        match self.status.as_str() {
            "" => Some(CheckStatus::Critical),
            s => CheckStatus::parse(s),
        }
    }
}

/// A decoded `RegisterRequest`. `node.datacenter` is the body's `Datacenter` (empty if none).
#[derive(Debug, Clone)]
pub struct RegisterBody {
    pub node: Node,
    pub skip_node_update: bool,
    pub service: Option<ServiceBody>,
    /// `Check` and then `Checks`, as Consul folds them.
    pub checks: Vec<CheckBody>,
    pub peer_name: String,
}

fn tagged_addresses(o: &GoObject<'_>) -> Result<BTreeMap<String, ServiceAddress>, DecodeError> {
    o.object_map("TaggedAddresses", "ServiceAddress")?
        .into_iter()
        .map(|(k, a)| {
            a.known(&["Address", "Port"])?;
            Ok((
                k,
                ServiceAddress {
                    address: a.string("Address")?,
                    port: a.int("Port")?,
                },
            ))
        })
        .collect()
}

/// `Weights`, as `NodeService.ToServiceNode` keeps them: Consul's defaults when absent or
/// invalid (`Passing` < 1, `Warning` < 0, either above 65535).
pub fn weights(w: Option<GoObject<'_>>) -> Result<Weights, DecodeError> {
    let Some(w) = w else {
        return Ok(Weights::default());
    };
    w.known(&["Passing", "Warning"])?;
    let (passing, warning) = (w.int("Passing")?, w.int("Warning")?);
    if passing < 1 || warning < 0 || passing > 65535 || warning > 65535 {
        return Ok(Weights::default());
    }
    Ok(Weights { passing, warning })
}

/// A `structs.Locality`, checked and dropped (the catalog does not keep localities).
fn locality(o: &GoObject<'_>, field: &str) -> Result<(), DecodeError> {
    if let Some(l) = o.object(field, "Locality")? {
        l.known(&["Region", "Zone"])?;
        l.string("Region")?;
        l.string("Zone")?;
    }
    Ok(())
}

/// A `structs.NodeService`.
pub fn service(o: &GoObject<'_>) -> Result<ServiceBody, DecodeError> {
    o.known(&SERVICE_FIELDS)?;
    locality(o, "Locality")?;
    let proxy_json = match o.object("Proxy", "ConnectProxyConfig")? {
        Some(p) => proxy(&p)?,
        None => String::new(),
    };
    let connect_json = match o.object("Connect", "ServiceConnect")? {
        Some(c) => connect(&c)?,
        None => String::new(),
    };
    let service = Service {
        id: o.string("ID")?,
        name: o.string("Service")?,
        tags: o.strings("Tags")?,
        address: o.string("Address")?,
        tagged_addresses: tagged_addresses(o)?,
        meta: o.string_map("Meta")?,
        port: o.int("Port")?,
        socket_path: o.string("SocketPath")?,
        weights: weights(o.object("Weights", "Weights")?)?,
        enable_tag_override: o.bool("EnableTagOverride")?,
        kind: o.string_as("Kind", "structs.ServiceKind")?,
        proxy_json,
        connect_json,
        create_index: o.uint("CreateIndex")?,
        modify_index: o.uint("ModifyIndex")?,
    };
    Ok(ServiceBody {
        service,
        peer_name: o.string("PeerName")?,
    })
}

/// Which Go struct a check is decoded as; the two share most fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStruct {
    /// `structs.HealthCheck`: `/v1/catalog/register`'s `Check` and `Checks`.
    Structs,
    /// `api.HealthCheck`: the `Check` of a `/v1/txn` operation. No `Interval`/`Timeout`, the
    /// Enterprise fields instead, and `CheckID` is a plain string.
    Api,
}

/// `structs.HealthCheck` fields `api.HealthCheck` does not have, and the reverse.
const STRUCTS_ONLY: [&str; 2] = ["Interval", "Timeout"];
const API_ONLY: [&str; 2] = ["Namespace", "Partition"];

/// A `structs.HealthCheck`.
pub fn check(o: &GoObject<'_>) -> Result<CheckBody, DecodeError> {
    check_as(o, CheckStruct::Structs)
}

/// A check decoded as the Go struct `strukt`: every field type-checked, the row filled with
/// what it carries (an `api.HealthCheck` leaves `Interval` and `Timeout` empty).
pub fn check_as(o: &GoObject<'_>, strukt: CheckStruct) -> Result<CheckBody, DecodeError> {
    let api = strukt == CheckStruct::Api;
    if api {
        let fields = CHECK_FIELDS.iter().filter(|f| !STRUCTS_ONLY.contains(f));
        o.known(&fields.chain(&API_ONLY).copied().collect::<Vec<_>>())?;
    } else {
        o.known(&CHECK_FIELDS)?;
    }
    let def = match o.object("Definition", "HealthCheckDefinition")? {
        Some(d) => definition(&d)?,
        None => Definition::default(),
    };
    let id_type = if api { "string" } else { "types.CheckID" };
    let mut check = HealthCheck::new(
        &o.string("Node")?,
        &o.string_as("CheckID", id_type)?,
        &o.string("Name")?,
    );
    check.notes = o.string("Notes")?;
    check.output = o.string("Output")?;
    check.service_id = o.string("ServiceID")?;
    check.service_name = o.string("ServiceName")?;
    check.service_tags = o.strings("ServiceTags")?;
    check.check_type = o.string("Type")?;
    if api {
        o.string("Namespace")?;
        o.string("Partition")?;
    } else {
        check.interval = o.string("Interval")?;
        check.timeout = o.string("Timeout")?;
    }
    check.exposed_port = o.int("ExposedPort")?;
    check.definition_json = def.to_text();
    check.create_index = o.uint("CreateIndex")?;
    check.modify_index = o.uint("ModifyIndex")?;
    Ok(CheckBody {
        check,
        status: o.string("Status")?,
        peer_name: o.string("PeerName")?,
        definition: def,
    })
}

/// `PUT /v1/catalog/register`'s body.
pub fn register(v: &Value) -> Result<RegisterBody, DecodeError> {
    let o = GoObject::root(v, "RegisterRequest", "structs.RegisterRequest")?;
    o.known(&REGISTER_FIELDS)?;
    locality(&o, "Locality")?;
    o.string("Token")?;
    let node = Node {
        id: o.string_as("ID", "types.NodeID")?,
        name: o.string("Node")?,
        address: o.string("Address")?,
        datacenter: o.string("Datacenter")?,
        tagged_addresses: o.string_map("TaggedAddresses")?,
        meta: o.string_map("NodeMeta")?,
        create_index: 0,
        modify_index: 0,
    };
    let service = o
        .object("Service", "NodeService")?
        .map(|s| service(&s))
        .transpose()?;
    let mut checks = Vec::new();
    if let Some(c) = o.object("Check", "HealthCheck")? {
        checks.push(check(&c)?);
    }
    for c in o.objects("Checks", "HealthCheck")? {
        checks.push(check(&c)?);
    }
    Ok(RegisterBody {
        node,
        skip_node_update: o.bool("SkipNodeUpdate")?,
        service,
        checks,
        peer_name: o.string("PeerName")?,
    })
}

/// `PUT /v1/catalog/deregister`'s body: (datacenter, node, service ID, check ID, peer name).
pub fn deregister(v: &Value) -> Result<[String; 5], DecodeError> {
    let o = GoObject::root(v, "DeregisterRequest", "structs.DeregisterRequest")?;
    o.known(&DEREGISTER_FIELDS)?;
    o.string("Token")?;
    o.string("Address")?;
    Ok([
        o.string("Datacenter")?,
        o.string("Node")?,
        o.string("ServiceID")?,
        o.string_as("CheckID", "types.CheckID")?,
        o.string("PeerName")?,
    ])
}
