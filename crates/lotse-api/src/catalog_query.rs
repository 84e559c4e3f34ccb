//! The read side the catalog and health endpoints share: the checks Consul makes before a
//! blocking read, in its order, the read, and the answer with its query headers.
//!
//! ```text
//!  query string ─► name ─► datacenter ─► ?filter ─► blocking read ─► rows ─► JSON + X-Consul-*
//!  400, no headers  400      500           400       500
//!                          └──── from here on every answer carries X-Consul-Index ────┘
//! ```
//!
//! Consul's handlers parse the query string first (its errors go out before any header is
//! set), then check the name, then defer `setMeta` and make the RPC: an unknown datacenter, a
//! bad filter (bexpr runs in the RPC) and a failed read all answer with the query headers.

use axum::extract::Path;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use lotse_core::{Store, WatchKey};
use lotse_server::{QueryMeta, QueryOptions};
use serde::Serialize;
use serde_json::Value;

use crate::catalog_filter::{self, keeps};
use crate::filter::Filter;
use crate::params::Params;
use crate::reply::{json, with_meta, ApiError};
use crate::State;

/// A handler's answer; the error side is already a full response (some carry query headers).
pub type Reply = Result<Response, Response>;

/// The query headers Consul sets on a blocking read, plus its backend header.
pub fn with_query_meta(resp: Response, meta: &QueryMeta) -> Response {
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
pub fn after_meta(e: ApiError) -> Response {
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

/// A path parameter that must not be empty (`/v1/catalog/service/` has none at all): the
/// name, or Consul's 400 with `missing` as its text.
#[allow(clippy::result_large_err)] // the error is the finished reply, made once per request
fn named(path: Option<Path<String>>, missing: &str) -> Result<String, Response> {
    match path {
        Some(Path(name)) if !name.is_empty() => Ok(name),
        _ => Err(ApiError::bad_request(missing).into_response()),
    }
}

/// A read that passed Consul's checks: its blocking options and its `?filter=`.
pub struct Query {
    pub opts: QueryOptions,
    pub filter: Option<Filter>,
}

impl Query {
    /// The checks before a read of items shaped as `shape`: query string, datacenter, filter.
    #[allow(clippy::result_large_err)]
    pub fn new(state: &State, params: &Params, shape: &Value) -> Result<Query, Response> {
        Query::checked(state, params, shape, || Ok(()))
    }

    /// [`Query::new`] for an endpoint named by its path: the name is checked after the query
    /// string and before the datacenter, as Consul's handlers do.
    #[allow(clippy::result_large_err)]
    pub fn named(
        state: &State,
        params: &Params,
        shape: &Value,
        path: Option<Path<String>>,
        missing: &str,
    ) -> Result<(Query, String), Response> {
        let mut name = String::new();
        let q = Query::checked(state, params, shape, || {
            name = named(path, missing)?;
            Ok(())
        })?;
        Ok((q, name))
    }

    #[allow(clippy::result_large_err)]
    fn checked(
        state: &State,
        params: &Params,
        shape: &Value,
        name: impl FnOnce() -> Result<(), Response>,
    ) -> Result<Query, Response> {
        let opts = params
            .blocking_options()
            .map_err(IntoResponse::into_response)?;
        name()?;
        params.check_dc(state).map_err(after_meta)?;
        let filter = catalog_filter::from_params(params, shape).map_err(after_meta)?;
        Ok(Query { opts, filter })
    }

    /// Blocks until `f`'s index passes `?index=` (or the wait runs out). `watch` must name
    /// everything `f` reads; `f` runs under the store's read lock, so it only collects.
    pub async fn read<T>(
        &self,
        state: &State,
        watch: &[WatchKey],
        f: impl Fn(&Store) -> (u64, T),
    ) -> Result<(QueryMeta, T), Response> {
        state
            .server()?
            .blocking_read(&self.opts, watch, f)
            .await
            .map_err(|e| after_meta(e.into()))
    }

    /// Does `row` pass the request's filter (always, without one)?
    pub fn keeps<R: Serialize>(&self, row: &R) -> bool {
        keeps(self.filter.as_ref(), row)
    }

    /// The rows that pass the filter, as a JSON list with the query headers.
    pub fn rows<R: Serialize>(
        &self,
        meta: &QueryMeta,
        params: &Params,
        rows: impl IntoIterator<Item = R>,
    ) -> Response {
        let rows: Vec<R> = rows.into_iter().filter(|r| self.keeps(r)).collect();
        with_query_meta(json(&rows, params.pretty()), meta)
    }
}

/// The `?tag=` values (every one must match) and `?node-meta=` pairs of a request.
pub fn service_filters(params: &Params) -> (Vec<String>, Vec<(String, String)>) {
    let tags = params.all("tag").into_iter().map(str::to_string).collect();
    (tags, params.node_meta())
}
