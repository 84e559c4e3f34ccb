//! The catalog operations of `/v1/txn`: Consul's `api.TxnNodeOp`, `api.TxnServiceOp` and
//! `api.TxnCheckOp` decoded and converted as its `convertOps` does (only the fields it
//! copies reach the store), checked as its `Txn.preCheck` does (each failure is an error of
//! that operation, answered with 409), and their results written as `structs.TxnResult`s.
//!
//! What `convertOps` copies: a node's ID, name, address, datacenter (the agent's when
//! empty), tagged addresses, meta and CAS index; a service's ID, name, kind, tags, address,
//! meta, port, weights, tag override, CAS index and a few proxy fields; a check's node, ID,
//! name, status, notes, output, service ID/name/tags, exposed port, CAS index and the HTTP,
//! TCP, gRPC and OS-service parts of its definition.
//!
//! Each operation is decoded whole first (any decode error is the body's 400), then its verb
//! and pre-apply checks decide between an operation and a refusal.

use lotse_core::catalog::{CheckStatus, HealthCheck, Node, Service};
use lotse_core::txn::{CatalogVerb, CheckOp, NodeOp, ServiceOp, TxnError, TxnOp};
use serde_json::Value;

use crate::catalog::validate::{node_pre_apply, service_pre_apply};
use crate::catalog_decode::{
    check_as, definition, proxy, weights, CheckStruct, DecodeError, Definition, GoObject,
};
use crate::catalog_json::Ordered;
use crate::reply::ApiError;

/// An operation, a refusal of that operation (409), or a body that does not decode (400).
pub type Decoded = Result<Result<TxnOp, TxnError>, ApiError>;

/// An operation's verb as sent, and its object decoded.
type Parts<T> = (String, T);

/// Turns decoded parts into the operation: a verb Consul does not know, or a failed pre-apply
/// check (run for every verb but `get`), refuses operation `i`.
fn finish<T>(
    i: usize,
    decoded: Result<Parts<T>, DecodeError>,
    what: &str,
    pre_apply: impl FnOnce(&mut T) -> Result<(), String>,
    op: impl FnOnce(CatalogVerb, T) -> TxnOp,
) -> Decoded {
    let (text, mut object) = decoded.map_err(ApiError::bad_request)?;
    let refuse = |what: String| Ok(Err(TxnError { op_index: i, what }));
    let Some(verb) = CatalogVerb::parse(&text) else {
        return refuse(format!("unknown {what} operation: {text}"));
    };
    if verb != CatalogVerb::Get {
        if let Err(e) = pre_apply(&mut object) {
            return refuse(e);
        }
    }
    Ok(Ok(op(verb, object)))
}

/// `{"Verb": ..., "Node": api.Node}`.
pub fn node_op(i: usize, v: &Value, datacenter: &str) -> Decoded {
    finish(
        i,
        decode_node_op(v, datacenter),
        "node",
        |node| node_pre_apply(&node.name, &node.id),
        |verb, node| TxnOp::Node(NodeOp { verb, node }),
    )
}

fn decode_node_op(v: &Value, datacenter: &str) -> Result<Parts<Node>, DecodeError> {
    let op = GoObject::root(v, "TxnNodeOp", "api.TxnNodeOp")?;
    op.known(&["Verb", "Node"])?;
    let mut node = Node::default();
    if let Some(n) = op.object("Node", "Node")? {
        n.known(&[
            "ID",
            "Node",
            "Address",
            "Datacenter",
            "TaggedAddresses",
            "Meta",
            "CreateIndex",
            "ModifyIndex",
            "Partition",
            "PeerName",
            "Locality",
        ])?;
        n.string("Partition")?;
        n.string("PeerName")?;
        n.uint("CreateIndex")?;
        node = Node {
            id: n.string("ID")?,
            name: n.string("Node")?,
            address: n.string("Address")?,
            datacenter: n.string("Datacenter")?,
            tagged_addresses: n.string_map("TaggedAddresses")?,
            meta: n.string_map("Meta")?,
            create_index: 0,
            modify_index: n.uint("ModifyIndex")?,
        };
    }
    if node.datacenter.is_empty() {
        node.datacenter = datacenter.to_string();
    }
    Ok((op.string("Verb")?, node))
}

/// The proxy fields `convertOps` copies, from a decoded proxy block.
fn proxy_subset(canonical: &str) -> String {
    let Ok(Ordered::Object(fields)) = serde_json::from_str::<Ordered>(canonical) else {
        return String::new();
    };
    const KEPT: [&str; 7] = [
        "TransparentProxy",
        "DestinationServiceName",
        "DestinationServiceID",
        "LocalServiceAddress",
        "LocalServicePort",
        "LocalServiceSocketPath",
        "MeshGateway",
    ];
    let kept: Vec<(String, Ordered)> = fields
        .into_iter()
        .filter(|(k, _)| KEPT.contains(&k.as_str()))
        .collect();
    serde_json::to_string(&Ordered::Object(kept)).unwrap_or_default()
}

/// `{"Verb": ..., "Node": "name", "Service": api.AgentService}`.
pub fn service_op(i: usize, v: &Value) -> Decoded {
    finish(
        i,
        decode_service_op(v),
        "service",
        |(_, service)| service_pre_apply(service),
        |verb, (node, service)| {
            TxnOp::Service(ServiceOp {
                verb,
                node,
                service,
            })
        },
    )
}

fn decode_service_op(v: &Value) -> Result<Parts<(String, Service)>, DecodeError> {
    let op = GoObject::root(v, "TxnServiceOp", "api.TxnServiceOp")?;
    op.known(&["Verb", "Node", "Service"])?;
    let node = op.string("Node")?;
    let mut service = Service::default();
    if let Some(s) = op.object("Service", "AgentService")? {
        s.known(&[
            "Kind",
            "ID",
            "Service",
            "Tags",
            "Meta",
            "Port",
            "Address",
            "SocketPath",
            "TaggedAddresses",
            "Weights",
            "EnableTagOverride",
            "CreateIndex",
            "ModifyIndex",
            "ContentHash",
            "Proxy",
            "Connect",
            "PeerName",
            "Namespace",
            "Partition",
            "Datacenter",
            "Locality",
        ])?;
        for ignored in [
            "SocketPath",
            "ContentHash",
            "PeerName",
            "Namespace",
            "Partition",
        ] {
            s.string(ignored)?;
        }
        let proxy_json = match s.object("Proxy", "AgentServiceConnectProxyConfig")? {
            Some(p) => proxy_subset(&proxy(&p)?),
            None => String::new(),
        };
        service = Service {
            id: s.string("ID")?,
            name: s.string("Service")?,
            tags: s.strings("Tags")?,
            address: s.string("Address")?,
            meta: s.string_map("Meta")?,
            port: s.int("Port")?,
            weights: weights(s.object("Weights", "AgentWeights")?)?,
            enable_tag_override: s.bool("EnableTagOverride")?,
            kind: s.string("Kind")?,
            proxy_json,
            modify_index: s.uint("ModifyIndex")?,
            ..Service::default()
        };
    }
    Ok((op.string("Verb")?, (node, service)))
}

/// The definition fields `convertOps` copies (durations from `Interval` or, for old
/// clients, `IntervalDuration`).
fn definition_subset(d: &Definition, old: (i64, i64, i64)) -> Definition {
    let pick = |new: i64, old: i64| if new != 0 { new } else { old };
    Definition {
        http: d.http.clone(),
        tls_server_name: d.tls_server_name.clone(),
        tls_skip_verify: d.tls_skip_verify,
        header: d.header.clone(),
        method: d.method.clone(),
        body: d.body.clone(),
        tcp: d.tcp.clone(),
        grpc: d.grpc.clone(),
        grpc_use_tls: d.grpc_use_tls,
        os_service: d.os_service.clone(),
        interval: pick(d.interval, old.0),
        timeout: pick(d.timeout, old.1),
        deregister_critical_service_after: pick(d.deregister_critical_service_after, old.2),
        ..Definition::default()
    }
}

/// `{"Verb": ..., "Check": api.HealthCheck}`.
pub fn check_op(i: usize, v: &Value) -> Decoded {
    finish(
        i,
        decode_check_op(v),
        "check",
        // checkPreApply, then the status the catalog can hold ("" stays the row's default).
        |(check, status)| {
            if check.check_id.is_empty() && !check.name.is_empty() {
                check.check_id = check.name.clone();
            }
            if !status.is_empty() {
                check.status = CheckStatus::parse(status).ok_or_else(|| {
                    format!("invalid check status {status:?} (passing, warning or critical)")
                })?;
            }
            Ok(())
        },
        |verb, (check, _)| TxnOp::Check(CheckOp { verb, check }),
    )
}

/// The check (only what `convertOps` copies) and its status as sent.
fn decode_check_op(v: &Value) -> Result<Parts<(HealthCheck, String)>, DecodeError> {
    let op = GoObject::root(v, "TxnCheckOp", "api.TxnCheckOp")?;
    op.known(&["Verb", "Check"])?;
    let mut check = HealthCheck::new("", "", "");
    let mut status = String::new();
    if let Some(c) = op.object("Check", "HealthCheck")? {
        let body = check_as(&c, CheckStruct::Api)?;
        let def = match c.object("Definition", "HealthCheckDefinition")? {
            Some(d) => {
                let old = (
                    d.duration("IntervalDuration")?,
                    d.duration("TimeoutDuration")?,
                    d.duration("DeregisterCriticalServiceAfterDuration")?,
                );
                definition_subset(&definition(&d)?, old)
            }
            None => Definition::default(),
        };
        let b = body.check;
        check = HealthCheck::new(&b.node, &b.check_id, &b.name);
        check.notes = b.notes;
        check.output = b.output;
        check.service_id = b.service_id;
        check.service_name = b.service_name;
        check.service_tags = b.service_tags;
        check.exposed_port = b.exposed_port;
        check.definition_json = def.to_text();
        check.modify_index = b.modify_index;
        status = body.status;
    }
    Ok((op.string("Verb")?, (check, status)))
}
