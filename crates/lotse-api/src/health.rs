//! `/v1/health/*`: node, checks, state, service, with Consul's answers
//! (`agent/health_endpoint.go`, `agent/consul/health_endpoint.go`). Every list is `[]` when
//! empty, every `ServiceTags`/`Tags` `[]` when there are none, and every answer blocks.

use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use lotse_core::catalog::{CheckStatus, HealthCheck, Node, Service};
use lotse_core::store::ServiceQuery;
use lotse_core::{Table, WatchKey};

use crate::catalog::{
    answer, blocking, filter_for, missing, service_filters, with_query_meta, Reply,
};
use crate::catalog_filter::{self as filter, keeps};
use crate::catalog_json as cj;
use crate::params::Params;
use crate::reply::{json, ApiError};
use crate::State;

fn check_rows<'a>(
    checks: &'a [HealthCheck],
    filter: Option<&crate::filter::Filter>,
) -> Vec<cj::HealthCheckJson<'a>> {
    checks
        .iter()
        .map(cj::health_check)
        .filter(|r| keeps(filter, r))
        .collect()
}

pub async fn node_missing() -> Response {
    missing("node")
}

pub async fn node(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    answer(node_reply(&state, &params, name).await)
}

async fn node_reply(state: &State, params: &Params, name: String) -> Reply {
    if name.is_empty() {
        return Err(missing("node"));
    }
    let filter = filter_for(params, &filter::health_check_shape())?;
    let watch = [WatchKey::Node(name.clone())];
    let (meta, checks) = blocking(state, params, &watch, |s| {
        let (i, checks) = s.node_health(&name);
        (i, checks.into_iter().cloned().collect::<Vec<_>>())
    })
    .await?;
    let rows = check_rows(&checks, filter.as_ref());
    Ok(with_query_meta(json(&rows, params.pretty()), &meta))
}

pub async fn checks_missing() -> Response {
    missing("service")
}

pub async fn checks(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    answer(checks_reply(&state, &params, name).await)
}

/// Only the checks of the service's instances: node-level checks are not included.
async fn checks_reply(state: &State, params: &Params, name: String) -> Reply {
    if name.is_empty() {
        return Err(missing("service"));
    }
    let node_meta = params.node_meta();
    let filter = filter_for(params, &filter::health_check_shape())?;
    let watch = [WatchKey::Service(name.clone())];
    let (meta, checks) = blocking(state, params, &watch, |s| {
        let (i, checks) = s.service_checks(&name, &node_meta);
        (i, checks.into_iter().cloned().collect::<Vec<_>>())
    })
    .await?;
    let rows = check_rows(&checks, filter.as_ref());
    Ok(with_query_meta(json(&rows, params.pretty()), &meta))
}

pub async fn state_missing() -> Response {
    ApiError::bad_request("Missing check state").into_response()
}

pub async fn state(
    AxState(state): AxState<State>,
    Path(wanted): Path<String>,
    params: Params,
) -> Response {
    answer(state_reply(&state, &params, wanted).await)
}

/// `any` or one status. As in Consul, no other value is refused: it matches no check.
async fn state_reply(state: &State, params: &Params, wanted: String) -> Reply {
    if wanted.is_empty() {
        return Err(state_missing().await);
    }
    let node_meta = params.node_meta();
    let filter = filter_for(params, &filter::health_check_shape())?;
    let mut watch = vec![WatchKey::Table(Table::Checks)];
    if !node_meta.is_empty() {
        watch.push(WatchKey::Table(Table::Nodes));
    }
    let status = match wanted.as_str() {
        "any" => Some(None),
        s => CheckStatus::parse(s).map(Some),
    };
    let (meta, checks) = blocking(state, params, &watch, |s| {
        let (i, checks) = match status {
            Some(status) => s.checks_in_state(status, &node_meta),
            None => (s.watch_index(&WatchKey::Table(Table::Checks)), Vec::new()),
        };
        let i = if node_meta.is_empty() {
            i
        } else {
            i.max(s.watch_index(&WatchKey::Table(Table::Nodes)))
        };
        (i, checks.into_iter().cloned().collect::<Vec<_>>())
    })
    .await?;
    let rows = check_rows(&checks, filter.as_ref());
    Ok(with_query_meta(json(&rows, params.pretty()), &meta))
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

/// One instance with its node and its checks, owned out of the store.
type Entry = (Node, Service, Vec<HealthCheck>);

async fn service_reply(state: &State, params: &Params, name: String) -> Reply {
    if name.is_empty() {
        return Err(missing("service"));
    }
    let (tags, node_meta) = service_filters(params);
    let filter = filter_for(params, &filter::service_entry_shape())?;
    // Consul reads `?passing` after its read, so a bad value still gets the query headers.
    let passing = params.go_bool("passing");
    let watch = [WatchKey::Service(name.clone())];
    let (meta, entries) = blocking(state, params, &watch, |s| {
        let q = ServiceQuery {
            tags: &tags,
            node_meta: &node_meta,
        };
        let (i, entries) = s.service_health(&name, &q, passing.unwrap_or(false));
        let owned: Vec<Entry> = entries
            .into_iter()
            .map(|e| {
                let checks = e.checks.into_iter().cloned().collect();
                (e.node.clone(), e.service.clone(), checks)
            })
            .collect();
        (i, owned)
    })
    .await?;
    if passing.is_none() {
        let resp = ApiError::bad_request("Invalid value for ?passing").into_response();
        return Err(with_query_meta(resp, &meta));
    }
    let rows: Vec<_> = entries
        .iter()
        .map(|(n, s, checks)| cj::ServiceEntryJson {
            node: cj::node(n),
            service: cj::node_service(s),
            checks: checks.iter().map(cj::health_check).collect(),
        })
        .filter(|r| keeps(filter.as_ref(), r))
        .collect();
    Ok(with_query_meta(json(&rows, params.pretty()), &meta))
}
