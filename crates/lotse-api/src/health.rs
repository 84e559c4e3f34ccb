//! `/v1/health/*`: node, checks, state, service, with Consul's answers
//! (`agent/health_endpoint.go`, `agent/consul/health_endpoint.go`). Every list is `[]` when
//! empty, every `ServiceTags`/`Tags` `[]` when there are none, and every answer blocks.
//!
//! `/v1/health/service/:s` is the endpoint load balancers and service meshes park on by the
//! thousand; its bodies go through the [`RenderCache`].

use std::sync::Arc;

use axum::extract::{Extension, Path, State as AxState};
use axum::response::IntoResponse;
use lotse_core::catalog::{CheckStatus, HealthCheck, Node, Service};
use lotse_core::{Store, Table, WatchKey};

use crate::catalog_filter::{health_check_shape, service_entry_shape};
use crate::catalog_json as cj;
use crate::catalog_query::{with_query_meta, Query, Reply};
use crate::params::Params;
use crate::render_cache::{Endpoint, RenderCache};
use crate::reply::{json_bytes, ApiError};
use crate::State;

const MISSING_NODE: &str = "Missing node name";
const MISSING_SERVICE: &str = "Missing service name";

/// A blocking list of health checks: `read` collects them under the store's lock, they are
/// filtered and written outside it.
async fn checks_reply(
    state: &State,
    params: &Params,
    q: Query,
    watch: &[WatchKey],
    read: impl for<'s> Fn(&'s Store) -> (u64, Vec<&'s HealthCheck>),
) -> Reply {
    let (meta, checks) = q
        .read(state, watch, |s| {
            let (i, checks) = read(s);
            (i, checks.into_iter().cloned().collect::<Vec<_>>())
        })
        .await?;
    Ok(q.rows(&meta, params, checks.iter().map(cj::health_check)))
}

/// `GET /v1/health/node/:node`: every check on the node, its services' included.
pub async fn node(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> Reply {
    let (q, name) = Query::named(&state, &params, &health_check_shape(), path, MISSING_NODE)?;
    let watch = [WatchKey::Node(name.clone())];
    checks_reply(&state, &params, q, &watch, |s| s.node_health(&name)).await
}

/// `GET /v1/health/checks/:service`: only the checks of the service's instances, node-level
/// checks not included.
pub async fn checks(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> Reply {
    let (q, name) = Query::named(
        &state,
        &params,
        &health_check_shape(),
        path,
        MISSING_SERVICE,
    )?;
    let node_meta = params.node_meta();
    let watch = [WatchKey::Service(name.clone())];
    checks_reply(&state, &params, q, &watch, |s| {
        s.service_checks(&name, &node_meta)
    })
    .await
}

/// `GET /v1/health/state/:state`: `any` or one status. As in Consul, no other value is
/// refused: it matches no check.
pub async fn state(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> Reply {
    let (q, wanted) = Query::named(
        &state,
        &params,
        &health_check_shape(),
        path,
        "Missing check state",
    )?;
    let node_meta = params.node_meta();
    let mut watch = vec![WatchKey::Table(Table::Checks)];
    if !node_meta.is_empty() {
        watch.push(WatchKey::Table(Table::Nodes));
    }
    let status = match wanted.as_str() {
        "any" => Some(None),
        s => CheckStatus::parse(s).map(Some),
    };
    checks_reply(&state, &params, q, &watch, |s| match status {
        // With node-meta the store's index also counts the nodes' records.
        Some(status) => s.checks_in_state(status, &node_meta),
        None => (s.watch_index(&WatchKey::Table(Table::Checks)), Vec::new()),
    })
    .await
}

/// One instance with its node and its checks, owned out of the store.
type Entry = (Node, Service, Vec<HealthCheck>);

/// `GET /v1/health/service/:service`: each instance with its node and every check bearing on
/// it, `?tag`, `?node-meta`, `?passing`, `?filter`.
pub async fn service(
    AxState(state): AxState<State>,
    Extension(cache): Extension<Arc<RenderCache>>,
    path: Option<Path<String>>,
    params: Params,
) -> Reply {
    let shape = service_entry_shape();
    let (q, name) = Query::named(&state, &params, &shape, path, MISSING_SERVICE)?;
    let watch = [WatchKey::Service(name.clone())];
    // Consul reads `?passing` after its read, so a bad value still blocks and gets the headers.
    let Some(passing) = params.go_bool("passing") else {
        let (meta, ()) = q
            .read(&state, &watch, |s| (s.service_index(&name), ()))
            .await?;
        let resp = ApiError::bad_request("Invalid value for ?passing").into_response();
        return Err(with_query_meta(resp, &meta));
    };
    let pretty = params.pretty();
    let endpoint = Endpoint::HealthService;
    cache
        .service(
            &state,
            &params,
            &q,
            endpoint,
            &name,
            passing,
            |s, sq| {
                let (_, entries) = s.service_health(&name, sq, passing);
                let owned = entries.into_iter().map(|e| {
                    let checks = e.checks.into_iter().cloned().collect();
                    (e.node.clone(), e.service.clone(), checks)
                });
                owned.collect::<Vec<Entry>>()
            },
            |entries| {
                let rows = entries.iter().map(|(n, s, checks)| cj::ServiceEntryJson {
                    node: cj::node(n),
                    service: cj::node_service(s),
                    checks: checks.iter().map(cj::health_check).collect(),
                });
                json_bytes(&rows.filter(|r| q.keeps(r)).collect::<Vec<_>>(), pretty)
            },
        )
        .await
}
