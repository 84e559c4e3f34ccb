//! `/v1/catalog/*`: register, deregister, datacenters, nodes, services, service, node,
//! node-services, with Consul's answers (`agent/catalog_endpoint.go`,
//! `agent/consul/catalog_endpoint.go`).
//!
//! ```text
//!  PUT register ─► catalog_decode (400s) ─► Consul's RPC checks (500s) ─► CatalogRegister
//!  GET reads    ─► params (400s) ─► blocking read on the service / node / table watched
//!               ─► ?filter (400) ─► catalog_json rows ─► JSON + X-Consul-* headers
//! ```
//!
//! Reads watch the narrowest [`WatchKey`]: a query on one service wakes only when something a
//! health query on that name shows changes, not on every catalog write.

pub(crate) mod register;

use std::collections::BTreeMap;

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lotse_core::catalog::{Node, Service};
use lotse_core::store::ServiceQuery;
use lotse_core::{Store, Table, WatchKey};
use lotse_server::QueryMeta;
use serde::Serialize;

use crate::catalog_filter::{self as filter, keeps};
use crate::catalog_json::{self as cj, NodeServiceJson};
use crate::params::Params;
use crate::reply::{json, with_meta, ApiError};
use crate::State;

pub use register::{deregister, register};

/// A handler's answer; the error side is already a full response (some carry query headers).
pub(crate) type Reply = Result<Response, Response>;

/// Runs a handler body and answers either side.
pub(crate) fn answer(r: Reply) -> Response {
    r.unwrap_or_else(|e| e)
}

/// The query headers Consul sets on a blocking read, plus its backend header.
pub(crate) fn with_query_meta(resp: Response, meta: &QueryMeta) -> Response {
    let mut resp = with_meta(resp, meta);
    resp.headers_mut().insert(
        "X-Consul-Query-Backend",
        HeaderValue::from_static("blocking-query"),
    );
    resp
}

/// An error Consul's read handlers return after deferring `setMeta` on an empty reply: an
/// unknown datacenter, a bad filter, a failed read. Index 1, no known leader, no effective
/// consistency.
pub(crate) fn after_meta(e: ApiError) -> Response {
    let mut resp = e.into_response();
    let h = resp.headers_mut();
    h.insert("X-Consul-Index", HeaderValue::from_static("1"));
    h.insert("X-Consul-KnownLeader", HeaderValue::from_static("false"));
    h.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    h.insert(
        "X-Consul-Query-Backend",
        HeaderValue::from_static("blocking-query"),
    );
    resp
}

/// A blocking read as Consul's catalog and health handlers do it: query-string errors first
/// (400, no headers), then the datacenter, then the read.
pub(crate) async fn blocking<T>(
    state: &State,
    params: &Params,
    watch: &[WatchKey],
    f: impl Fn(&Store) -> (u64, T),
) -> Result<(QueryMeta, T), Response> {
    let opts = params
        .blocking_options()
        .map_err(IntoResponse::into_response)?;
    params.check_dc(state).map_err(after_meta)?;
    state
        .server
        .blocking_read(&opts, watch, f)
        .await
        .map_err(|e| after_meta(e.into()))
}

/// The `?filter=` of a read, checked against `shape` before anything is read.
#[allow(clippy::result_large_err)] // the error is the finished reply, made once per request
pub(crate) fn filter_for(
    params: &Params,
    shape: &serde_json::Value,
) -> Result<Option<crate::filter::Filter>, Response> {
    filter::from_params(params, shape).map_err(after_meta)
}

pub(crate) fn missing(what: &str) -> Response {
    ApiError::bad_request(format!("Missing {what} name")).into_response()
}

/// The `?tag=` values (every one must match) and `?node-meta=` pairs of a request.
pub(crate) fn service_filters(params: &Params) -> (Vec<String>, Vec<(String, String)>) {
    let tags = params.all("tag").into_iter().map(str::to_string).collect();
    (tags, params.node_meta())
}

pub async fn datacenters(AxState(state): AxState<State>, params: Params) -> Response {
    json(&[&state.agent.datacenter], params.pretty())
}

pub async fn nodes(AxState(state): AxState<State>, params: Params) -> Response {
    answer(nodes_reply(&state, &params).await)
}

async fn nodes_reply(state: &State, params: &Params) -> Reply {
    let node_meta = params.node_meta();
    let filter = filter_for(params, &filter::node_shape())?;
    let watch = [WatchKey::Table(Table::Nodes)];
    let (meta, nodes) = blocking(state, params, &watch, |s| {
        let (i, nodes) = s.catalog_nodes(&node_meta);
        (i, nodes.into_iter().cloned().collect::<Vec<Node>>())
    })
    .await?;
    let rows: Vec<_> = nodes
        .iter()
        .map(cj::node)
        .filter(|r| keeps(filter.as_ref(), r))
        .collect();
    Ok(with_query_meta(json(&rows, params.pretty()), &meta))
}

pub async fn services(AxState(state): AxState<State>, params: Params) -> Response {
    answer(services_reply(&state, &params).await)
}

async fn services_reply(state: &State, params: &Params) -> Reply {
    let node_meta = params.node_meta();
    let filter = filter_for(params, &filter::service_node_shape())?;
    let mut watch = vec![WatchKey::Table(Table::Services)];
    if !node_meta.is_empty() {
        watch.push(WatchKey::Table(Table::Nodes));
    }
    let (meta, services) = blocking(state, params, &watch, |s| {
        let Some(filter) = filter.as_ref() else {
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
            return (i, owned);
        };
        // Consul filters the state store's raw rows, whose node fields (address, meta...)
        // are still empty: a filter on them matches nothing, as there.
        let (i, rows) = s.all_instances(&node_meta);
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (n, svc) in rows {
            let bare = Node {
                name: n.name.clone(),
                ..Node::default()
            };
            if keeps(Some(filter), &cj::service_node(&bare, svc)) {
                out.entry(svc.name.clone())
                    .or_default()
                    .extend(svc.tags.iter().cloned());
            }
        }
        for tags in out.values_mut() {
            tags.sort();
            tags.dedup();
        }
        (i, out)
    })
    .await?;
    Ok(with_query_meta(json(&services, params.pretty()), &meta))
}

pub async fn service_missing() -> Response {
    missing("service")
}

pub async fn service(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    answer(service_reply(&state, &params, name).await)
}

async fn service_reply(state: &State, params: &Params, name: String) -> Reply {
    if name.is_empty() {
        return Err(missing("service"));
    }
    let (tags, node_meta) = service_filters(params);
    let filter = filter_for(params, &filter::service_node_shape())?;
    let watch = [WatchKey::Service(name.clone())];
    let (meta, rows) = blocking(state, params, &watch, |s| {
        let q = ServiceQuery {
            tags: &tags,
            node_meta: &node_meta,
        };
        let (i, rows) = s.catalog_service(&name, &q);
        let owned: Vec<(Node, Service)> = rows
            .into_iter()
            .map(|(n, svc)| (n.clone(), svc.clone()))
            .collect();
        (i, owned)
    })
    .await?;
    let rows: Vec<_> = rows
        .iter()
        .map(|(n, s)| cj::service_node(n, s))
        .filter(|r| keeps(filter.as_ref(), r))
        .collect();
    Ok(with_query_meta(json(&rows, params.pretty()), &meta))
}

/// What the two node endpoints read: the node (if any) and its services.
type NodeRead = Option<(Node, Vec<Service>)>;

/// Reads `name` as Consul's node endpoints do: by name, else by ID prefix. Watches the name,
/// the node it resolves to now, and (when it resolves to none) the nodes table, where a node
/// it would resolve to could appear.
async fn read_node(
    state: &State,
    params: &Params,
    name: &str,
) -> Result<(QueryMeta, NodeRead), Response> {
    let resolved = state
        .server
        .peek(|s| s.resolve_node(name).map(|n| n.name.clone()));
    let mut watch = vec![WatchKey::Node(name.to_string())];
    match resolved {
        Some(n) if n != name => watch.push(WatchKey::Node(n)),
        Some(_) => {}
        None => watch.push(WatchKey::Table(Table::Nodes)),
    }
    blocking(state, params, &watch, |s| {
        let (i, found) = s.catalog_node(name);
        let owned = found.map(|(n, svcs)| (n.clone(), svcs.into_iter().cloned().collect()));
        (i, owned)
    })
    .await
}

pub async fn node_missing() -> Response {
    missing("node")
}

pub async fn node(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    answer(node_reply(&state, &params, &name).await)
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

async fn node_reply(state: &State, params: &Params, name: &str) -> Reply {
    if name.is_empty() {
        return Err(missing("node"));
    }
    let filter = filter_for(params, &filter::node_service_shape())?;
    let (meta, found) = read_node(state, params, name).await?;
    // An unknown node is `null` (Consul marshals a nil *NodeServices).
    let body = found.as_ref().map(|(n, services)| NodeServices {
        node: Some(cj::node(n)),
        services: services
            .iter()
            .map(|s| (s.id.as_str(), cj::node_service(s)))
            .filter(|(_, row)| keeps(filter.as_ref(), row))
            .collect(),
    });
    Ok(with_query_meta(json(&body, params.pretty()), &meta))
}

pub async fn node_services_missing() -> Response {
    missing("node")
}

pub async fn node_services(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    answer(node_services_reply(&state, &params, &name).await)
}

async fn node_services_reply(state: &State, params: &Params, name: &str) -> Reply {
    if name.is_empty() {
        return Err(missing("node"));
    }
    let filter = filter_for(params, &filter::node_service_shape())?;
    let (meta, found) = read_node(state, params, name).await?;
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
                    .filter(|row| keeps(filter.as_ref(), row))
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
