//! `?filter=` on the catalog and health endpoints: the shape of each endpoint's items (the
//! selectors go-bexpr derives from Consul's Go types, fields tagged `bexpr:"-"` left out) and
//! the glue that keeps the matching rows.
//!
//! Rows stay typed (so their JSON keeps Go's field order); each is turned into a
//! `serde_json::Value` only to be tested.

use serde::Serialize;
use serde_json::{json, Value};

use crate::filter::{Filter, FilterError};
use crate::params::Params;
use crate::reply::ApiError;

/// Consul's answer to a filter that does not parse or does not fit the items.
pub fn filter_error(e: FilterError) -> ApiError {
    ApiError::bad_request(format!(
        "Failed to create boolean expression evaluator: {e}"
    ))
}

/// The request's `?filter=` checked against `shape` (None: no filter, or an empty one).
pub fn from_params(params: &Params, shape: &Value) -> Result<Option<Filter>, ApiError> {
    match params.get("filter") {
        None | Some("") => Ok(None),
        Some(expr) => Filter::parse(expr, shape).map(Some).map_err(filter_error),
    }
}

/// Does `row` pass `filter` (always, without one)?
pub fn keeps<T: Serialize>(filter: Option<&Filter>, row: &T) -> bool {
    match filter {
        None => true,
        Some(f) => serde_json::to_value(row).is_ok_and(|v| f.matches(&v)),
    }
}

fn weights() -> Value {
    json!({"Passing": 0, "Warning": 0})
}

fn service_addresses() -> Value {
    json!({"*": {"Address": "", "Port": 0}})
}

/// `structs.ConnectProxyConfig` (`Config` and upstreams' `Config` are `bexpr:"-"`).
fn proxy() -> Value {
    let mesh_gateway = json!({"Mode": ""});
    json!({
        "DestinationServiceName": "",
        "DestinationServiceID": "",
        "LocalServiceAddress": "",
        "LocalServicePort": 0,
        "LocalServiceSocketPath": "",
        "Mode": "",
        "Upstreams": [{
            "DestinationType": "",
            "DestinationNamespace": "",
            "DestinationPartition": "",
            "DestinationPeer": "",
            "DestinationName": "",
            "Datacenter": "",
            "LocalBindAddress": "",
            "LocalBindPort": 0,
            "LocalBindSocketPath": "",
            "LocalBindSocketMode": "",
            "MeshGateway": mesh_gateway,
            "CentrallyConfigured": false,
        }],
        "MeshGateway": mesh_gateway,
        "Expose": {
            "Checks": false,
            "Paths": [{
                "ListenerPort": 0,
                "Path": "",
                "LocalPathPort": 0,
                "Protocol": "",
                "ParsedFromCheck": false,
            }],
        },
        "TransparentProxy": {"OutboundListenerPort": 0, "DialedDirectly": false},
        "AccessLogs": {
            "Enabled": false,
            "DisableListenerLogs": false,
            "Type": "",
            "Path": "",
            "JSONFormat": "",
            "TextFormat": "",
        },
    })
}

/// `structs.ServiceConnect` (`SidecarService` and `PeerMeta` are `bexpr:"-"`).
fn connect() -> Value {
    json!({"Native": false})
}

/// `structs.Node`: `/v1/catalog/nodes`.
pub fn node_shape() -> Value {
    json!({
        "ID": "",
        "Node": "",
        "Address": "",
        "Datacenter": "",
        "Partition": "",
        "PeerName": "",
        "TaggedAddresses": {},
        "Meta": {},
    })
}

/// `structs.ServiceNode`: `/v1/catalog/service/:s` and `/v1/catalog/services`.
pub fn service_node_shape() -> Value {
    json!({
        "ID": "",
        "Node": "",
        "Address": "",
        "Datacenter": "",
        "TaggedAddresses": {},
        "NodeMeta": {},
        "ServiceKind": "",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "ServiceAddress": "",
        "ServiceTaggedAddresses": service_addresses(),
        "ServiceWeights": weights(),
        "ServiceMeta": {},
        "ServicePort": 0,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": false,
        "ServiceProxy": proxy(),
        "ServiceConnect": connect(),
        "PeerName": "",
    })
}

/// `structs.NodeService`: the values of `/v1/catalog/node/:n`'s `Services`, the list of
/// `/v1/catalog/node-services/:n`.
pub fn node_service_shape() -> Value {
    json!({
        "Kind": "",
        "ID": "",
        "Service": "",
        "Tags": [],
        "Address": "",
        "TaggedAddresses": service_addresses(),
        "Meta": {},
        "Port": 0,
        "SocketPath": "",
        "Weights": weights(),
        "EnableTagOverride": false,
        "Proxy": proxy(),
        "Connect": connect(),
        "PeerName": "",
    })
}

/// `structs.HealthCheck` (`Definition` is `bexpr:"-"`): the health check lists.
pub fn health_check_shape() -> Value {
    json!({
        "Node": "",
        "CheckID": "",
        "Name": "",
        "Status": "",
        "Notes": "",
        "Output": "",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "PeerName": "",
    })
}

/// `structs.CheckServiceNode`: `/v1/health/service/:s`.
pub fn service_entry_shape() -> Value {
    json!({
        "Node": node_shape(),
        "Service": node_service_shape(),
        "Checks": [health_check_shape()],
    })
}
