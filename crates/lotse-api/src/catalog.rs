//! `/v1/catalog/*`: register, deregister, datacenters, nodes, services, service, node,
//! node-services, with Consul's answers (`agent/catalog_endpoint.go`,
//! `agent/consul/catalog_endpoint.go`).
//!
//! ```text
//!  PUT register ─► catalog_decode (400s) ─► Consul's RPC checks (500s) ─► CatalogRegister
//!  GET reads    ─► catalog_query (400s, 500s) ─► blocking read on the service / node / table
//!               ─► catalog_json rows ─► ?filter ─► JSON + X-Consul-* headers
//! ```
//!
//! Reads watch the narrowest [`WatchKey`]: a query on one service wakes only when something a
//! health query on that name shows changes, not on every catalog write. Each read's closure
//! only collects (clones) under the store's read lock; rows are built, filtered and written
//! after it is released. `/v1/catalog/service/:s` bodies go through the [`RenderCache`].

pub(crate) mod register;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Extension, Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use lotse_core::catalog::{Node, Service};
use lotse_core::{Table, WatchKey};
use lotse_server::QueryMeta;
use serde::Serialize;

use crate::catalog_filter::{node_service_shape, node_shape, service_node_shape};
use crate::catalog_json::{self as cj, NodeServiceJson};
use crate::catalog_query::{with_query_meta, Query, Reply};
use crate::params::Params;
use crate::render_cache::{Endpoint, RenderCache};
use crate::reply::{json, json_bytes, ApiError};
use crate::State;

pub use register::{deregister, register};

pub async fn datacenters(AxState(state): AxState<State>, params: Params) -> Response {
    json(&[&state.agent.datacenter], params.pretty())
}

/// `GET /v1/catalog/nodes[?node-meta=]`.
pub async fn nodes(AxState(state): AxState<State>, params: Params) -> Reply {
    let q = Query::new(&state, &params, &node_shape())?;
    let node_meta = params.node_meta();
    let watch = [WatchKey::Table(Table::Nodes)];
    let (meta, nodes) = q
        .read(&state, &watch, |s| {
            let (i, nodes) = s.catalog_nodes(&node_meta);
            (i, nodes.into_iter().cloned().collect::<Vec<Node>>())
        })
        .await?;
    Ok(q.rows(&meta, &params, nodes.iter().map(cj::node)))
}

/// `GET /v1/catalog/services`: every service name with its instances' tags.
pub async fn services(AxState(state): AxState<State>, params: Params) -> Reply {
    let q = Query::new(&state, &params, &service_node_shape())?;
    let node_meta = params.node_meta();
    let mut watch = vec![WatchKey::Table(Table::Services)];
    if !node_meta.is_empty() {
        watch.push(WatchKey::Table(Table::Nodes));
    }
    if q.filter.is_none() {
        let (meta, services) = q
            .read(&state, &watch, |s| {
                let (i, names) = s.catalog_services(&node_meta);
                let owned = names
                    .into_iter()
                    .map(|(n, tags)| {
                        (
                            n.to_string(),
                            tags.into_iter().map(str::to_string).collect(),
                        )
                    })
                    .collect::<BTreeMap<String, Vec<String>>>();
                (i, owned)
            })
            .await?;
        return Ok(with_query_meta(json(&services, params.pretty()), &meta));
    }
    // Consul filters the state store's raw rows, whose node fields (address, meta...) are
    // still empty: a filter on them matches nothing, as there. The instances are copied out
    // under the lock and filtered after it.
    let (meta, rows) = q
        .read(&state, &watch, |s| {
            let (i, rows) = s.all_instances(&node_meta);
            let owned = rows
                .into_iter()
                .map(|(n, svc)| (n.name.clone(), svc.clone()));
            (i, owned.collect::<Vec<(String, Service)>>())
        })
        .await?;
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (node, svc) in &rows {
        let bare = Node {
            name: node.clone(),
            ..Node::default()
        };
        if q.keeps(&cj::service_node(&bare, svc)) {
            let tags = out.entry(svc.name.as_str()).or_default();
            tags.extend(svc.tags.iter().map(String::as_str));
        }
    }
    for tags in out.values_mut() {
        tags.sort_unstable();
        tags.dedup();
    }
    Ok(with_query_meta(json(&out, params.pretty()), &meta))
}

/// `GET /v1/catalog/service/:service`: the instances with their nodes' fields.
pub async fn service(
    AxState(state): AxState<State>,
    Extension(cache): Extension<Arc<RenderCache>>,
    path: Option<Path<String>>,
    params: Params,
) -> Reply {
    let shape = service_node_shape();
    let (q, name) = Query::named(&state, &params, &shape, path, "Missing service name")?;
    let pretty = params.pretty();
    let endpoint = Endpoint::CatalogService;
    cache
        .service(
            &state,
            &params,
            &q,
            endpoint,
            &name,
            false,
            |s, sq| {
                let (_, rows) = s.catalog_service(&name, sq);
                let owned = rows.into_iter().map(|(n, svc)| (n.clone(), svc.clone()));
                owned.collect::<Vec<(Node, Service)>>()
            },
            |rows| {
                let rows = rows.iter().map(|(n, s)| cj::service_node(n, s));
                json_bytes(&rows.filter(|r| q.keeps(r)).collect::<Vec<_>>(), pretty)
            },
        )
        .await
}

/// What the two node endpoints read: the node (if any) and its services.
type NodeRead = Option<(Node, Vec<Service>)>;

/// The node endpoints' prologue and read: the checks before the read, then the node named
/// `name` at the end of the path as Consul finds it: by name, else as the only node whose ID
/// starts with `name` ([`lotse_core::Store::resolve_node`]).
///
/// What the answer depends on is watched and folded into its index: the node named `name`
/// (it may come or go); and, while `name` is not a node's name, the nodes whose ID it
/// prefixes, now and when the query began (one may come, go, or stop being the only one: the
/// nodes table is watched, and a node's index outlives it, so a departure moves the answer's
/// index too). A write to any other node wakes the query but leaves its index alone.
#[allow(clippy::result_large_err)]
async fn read_node(
    state: &State,
    params: &Params,
    path: Option<Path<String>>,
) -> Result<(Query, QueryMeta, NodeRead), Response> {
    let shape = node_service_shape();
    let (q, name) = Query::named(state, params, &shape, path, "Missing node name")?;
    let name = name.as_str();
    let (by_name, began) = state
        .server()?
        .peek(|s| (s.node(name).is_some(), nodes_by_id_prefix(s, name)));
    let mut watch = vec![WatchKey::Node(name.to_string())];
    if !by_name {
        watch.push(WatchKey::Table(Table::Nodes));
        watch.extend(began.iter().cloned().map(WatchKey::Node));
    }
    let (meta, found) = q
        .read(state, &watch, |s| {
            let (i, found) = s.catalog_node(name);
            let i = if found.as_ref().is_some_and(|(n, _)| n.name == name) {
                i
            } else {
                let now = nodes_by_id_prefix(s, name);
                let prefixed = began.iter().chain(&now).map(|n| s.node_index(n));
                prefixed.fold(i.max(s.node_index(name)), u64::max)
            };
            let owned = found.map(|(n, svcs)| (n.clone(), svcs.into_iter().cloned().collect()));
            (i, owned)
        })
        .await?;
    Ok((q, meta, found))
}

/// The names of the nodes whose ID starts with `prefix` (ignoring case), as
/// [`lotse_core::Store::resolve_node`] matches them (two characters or more).
fn nodes_by_id_prefix(s: &lotse_core::Store, prefix: &str) -> Vec<String> {
    if prefix.len() < 2 {
        return Vec::new();
    }
    let prefix = prefix.to_ascii_lowercase();
    let (_, nodes) = s.catalog_nodes(&[]);
    nodes
        .into_iter()
        .filter(|n| n.id.to_ascii_lowercase().starts_with(&prefix))
        .map(|n| n.name.clone())
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeServices<'a> {
    node: Option<cj::NodeJson<'a>>,
    services: BTreeMap<&'a str, NodeServiceJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeServiceList<'a> {
    node: Option<cj::NodeJson<'a>>,
    services: Option<Vec<NodeServiceJson<'a>>>,
}

/// `GET /v1/catalog/node/:node`: the node and its services by ID.
pub async fn node(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> Reply {
    let (q, meta, found) = read_node(&state, &params, path).await?;
    // An unknown node is `null` (Consul marshals a nil *NodeServices).
    let body = found.as_ref().map(|(n, services)| NodeServices {
        node: Some(cj::node(n)),
        services: services
            .iter()
            .map(|s| (s.id.as_str(), cj::node_service(s)))
            .filter(|(_, row)| q.keeps(row))
            .collect(),
    });
    Ok(with_query_meta(json(&body, params.pretty()), &meta))
}

/// `GET /v1/catalog/node-services/:node`: the node and a list of its services.
pub async fn node_services(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> Reply {
    let (q, meta, found) = read_node(&state, &params, path).await?;
    // Unknown node: both fields null (a zero struct); no services: a nil list.
    let body = match &found {
        None => NodeServiceList {
            node: None,
            services: None,
        },
        Some((n, services)) => NodeServiceList {
            node: Some(cj::node(n)),
            services: (!services.is_empty()).then(|| {
                services
                    .iter()
                    .map(cj::node_service)
                    .filter(|row| q.keeps(row))
                    .collect()
            }),
        },
    };
    Ok(with_query_meta(json(&body, params.pretty()), &meta))
}

/// 500s Consul's RPC layer returns (not `HTTPError`s).
pub(crate) fn rpc_error(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, reason)
}

#[cfg(test)]
mod tests;
