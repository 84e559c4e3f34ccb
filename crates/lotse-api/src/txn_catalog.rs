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

use lotse_core::catalog::{HealthCheck, Node, Service};
use lotse_core::txn::{CatalogVerb, CheckOp, NodeOp, ServiceOp, TxnError, TxnOp};
use serde_json::Value;

use crate::catalog::register::{node_pre_apply, service_pre_apply};
use crate::catalog_decode::{definition, proxy, weights, Definition, GoObject};
use crate::catalog_json::Ordered;
use crate::reply::ApiError;

/// An operation, a refusal of that operation (409), or a body that does not decode (400).
pub type Decoded = Result<Result<TxnOp, TxnError>, ApiError>;

fn bad(e: String) -> ApiError {
    ApiError::bad_request(e)
}

fn refuse(i: usize, what: impl Into<String>) -> Decoded {
    Ok(Err(TxnError {
        op_index: i,
        what: what.into(),
    }))
}

/// The operation's verb and its object (`Node`, `Service`, `Check`).
fn verb_of(op: &GoObject<'_>) -> Result<(String, Option<CatalogVerb>), ApiError> {
    let verb = op.string("Verb").map_err(bad)?;
    let parsed = CatalogVerb::parse(&verb);
    Ok((verb, parsed))
}

/// `{"Verb": ..., "Node": api.Node}`.
pub fn node_op(i: usize, v: &Value, datacenter: &str) -> Decoded {
    let op = GoObject::root(v, "TxnNodeOp", "api.TxnNodeOp").map_err(bad)?;
    op.known(&["Verb", "Node"]).map_err(bad)?;
    let n = op.object("Node", "Node").map_err(bad)?;
    let node = match &n {
        None => Node::default(),
        Some(n) => {
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
            ])
            .map_err(bad)?;
            n.string("Partition").map_err(bad)?;
            n.string("PeerName").map_err(bad)?;
            n.uint("CreateIndex").map_err(bad)?;
            Node {
                id: n.string("ID").map_err(bad)?,
                name: n.string("Node").map_err(bad)?,
                address: n.string("Address").map_err(bad)?,
                datacenter: n.string("Datacenter").map_err(bad)?,
                tagged_addresses: n.string_map("TaggedAddresses").map_err(bad)?,
                meta: n.string_map("Meta").map_err(bad)?,
                create_index: 0,
                modify_index: n.uint("ModifyIndex").map_err(bad)?,
            }
        }
    };
    let node = Node {
        datacenter: if node.datacenter.is_empty() {
            datacenter.to_string()
        } else {
            node.datacenter
        },
        ..node
    };
    let (text, verb) = verb_of(&op)?;
    let Some(verb) = verb else {
        return refuse(i, format!("unknown node operation: {text}"));
    };
    if verb != CatalogVerb::Get {
        if let Err(e) = node_pre_apply(&node.name, &node.id) {
            return refuse(i, e);
        }
    }
    Ok(Ok(TxnOp::Node(NodeOp { verb, node })))
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
    let op = GoObject::root(v, "TxnServiceOp", "api.TxnServiceOp").map_err(bad)?;
    op.known(&["Verb", "Node", "Service"]).map_err(bad)?;
    let node = op.string("Node").map_err(bad)?;
    let mut service = Service::default();
    if let Some(s) = op.object("Service", "AgentService").map_err(bad)? {
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
        ])
        .map_err(bad)?;
        for ignored in [
            "SocketPath",
            "ContentHash",
            "PeerName",
            "Namespace",
            "Partition",
        ] {
            s.string(ignored).map_err(bad)?;
        }
        let proxy_json = match s
            .object("Proxy", "AgentServiceConnectProxyConfig")
            .map_err(bad)?
        {
            Some(p) => proxy_subset(&proxy(&p).map_err(bad)?),
            None => String::new(),
        };
        service = Service {
            id: s.string("ID").map_err(bad)?,
            name: s.string("Service").map_err(bad)?,
            tags: s.strings("Tags").map_err(bad)?,
            address: s.string("Address").map_err(bad)?,
            meta: s.string_map("Meta").map_err(bad)?,
            port: s.int("Port").map_err(bad)?,
            weights: weights(s.object("Weights", "AgentWeights").map_err(bad)?).map_err(bad)?,
            enable_tag_override: s.bool("EnableTagOverride").map_err(bad)?,
            kind: s.string("Kind").map_err(bad)?,
            proxy_json,
            modify_index: s.uint("ModifyIndex").map_err(bad)?,
            ..Service::default()
        };
    }
    let (text, verb) = verb_of(&op)?;
    let Some(verb) = verb else {
        return refuse(i, format!("unknown service operation: {text}"));
    };
    if verb != CatalogVerb::Get {
        if let Err(e) = service_pre_apply(&mut service) {
            return refuse(i, e);
        }
    }
    Ok(Ok(TxnOp::Service(ServiceOp {
        verb,
        node,
        service,
    })))
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
    let op = GoObject::root(v, "TxnCheckOp", "api.TxnCheckOp").map_err(bad)?;
    op.known(&["Verb", "Check"]).map_err(bad)?;
    let mut check = HealthCheck::new("", "", "");
    let mut status = String::new();
    if let Some(c) = op.object("Check", "HealthCheck").map_err(bad)? {
        c.known(&[
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
            "Namespace",
            "Partition",
            "ExposedPort",
            "PeerName",
            "Definition",
            "CreateIndex",
            "ModifyIndex",
        ])
        .map_err(bad)?;
        for ignored in ["Type", "Namespace", "Partition", "PeerName"] {
            c.string(ignored).map_err(bad)?;
        }
        let def = match c
            .object("Definition", "HealthCheckDefinition")
            .map_err(bad)?
        {
            Some(d) => {
                let old = (
                    d.duration("IntervalDuration").map_err(bad)?,
                    d.duration("TimeoutDuration").map_err(bad)?,
                    d.duration("DeregisterCriticalServiceAfterDuration")
                        .map_err(bad)?,
                );
                definition_subset(&definition(&d).map_err(bad)?, old)
            }
            None => Definition::default(),
        };
        check = HealthCheck::new(
            &c.string("Node").map_err(bad)?,
            &c.string("CheckID").map_err(bad)?,
            &c.string("Name").map_err(bad)?,
        );
        status = c.string("Status").map_err(bad)?;
        check.notes = c.string("Notes").map_err(bad)?;
        check.output = c.string("Output").map_err(bad)?;
        check.service_id = c.string("ServiceID").map_err(bad)?;
        check.service_name = c.string("ServiceName").map_err(bad)?;
        check.service_tags = c.strings("ServiceTags").map_err(bad)?;
        check.exposed_port = c.int("ExposedPort").map_err(bad)?;
        check.definition_json = def.to_text();
        check.modify_index = c.uint("ModifyIndex").map_err(bad)?;
    }
    let (text, verb) = verb_of(&op)?;
    let Some(verb) = verb else {
        return refuse(i, format!("unknown check operation: {text}"));
    };
    if verb != CatalogVerb::Get {
        // checkPreApply.
        if check.check_id.is_empty() && !check.name.is_empty() {
            check.check_id = check.name.clone();
        }
        match status.as_str() {
            "" => {}
            s => match lotse_core::catalog::CheckStatus::parse(s) {
                Some(st) => check.status = st,
                None => {
                    return refuse(
                        i,
                        format!("invalid check status {s:?} (passing, warning or critical)"),
                    )
                }
            },
        }
    }
    Ok(Ok(TxnOp::Check(CheckOp { verb, check })))
}
