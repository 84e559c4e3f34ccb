//! `GET /v1/snapshot` (save) and `PUT /v1/snapshot` (restore), as Consul's
//! `agent/snapshot_endpoint.go`: the body is the gzip-compressed tar archive of
//! `lotse_server::snapshot::archive`, in either direction.
//!
//! Save takes `?stale` / `?consistent` like any read (a follower serves `default` after a read
//! index from the leader) and answers with `X-Consul-Index` = the log index the archive holds.
//! Restore reads at most [`RESTORE_BODY_LIMIT`] bytes (Consul's 413 text above), verifies the
//! whole archive first and answers 200 with an empty body once every replica will apply it;
//! a corrupt or foreign archive is a 500 with the reason, as Consul answers, and changes
//! nothing.

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use lotse_server::snapshot::SnapshotError;
use lotse_server::{Access, Resource};

use crate::body::read_body;
use crate::params::Params;
use crate::reply::{allow, with_meta, ApiError, ApiResult};
use crate::State;

/// The largest archive `PUT /v1/snapshot` reads. Generous (the archive is compressed), but
/// bounded: the store image inside must still fit one Raft entry
/// (`lotse_server::snapshot::RESTORE_MAX_STATE_BYTES`), which the restore checks.
pub const RESTORE_BODY_LIMIT: usize = 512 << 20;

const DOC: &str = "https://developer.hashicorp.com/consul/api-docs/snapshot";

/// The snapshot routes.
pub fn routes() -> Router<State> {
    Router::new().route(
        "/v1/snapshot",
        allow(get(save).put(restore), "OPTIONS,GET,PUT"),
    )
}

/// `GET /v1/snapshot`: the archive, with the query headers.
pub async fn save(AxState(state): AxState<State>, params: Params) -> ApiResult {
    let opts = params.query_options(&state)?;
    // Consul asks for a management token: the archive holds every secret in the store.
    state.authorize(opts.token.as_deref(), Resource::Operator, Access::Write)?;
    let saved = state.server()?.snapshot_save(opts.consistency).await?;
    let resp = (
        [(header::CONTENT_TYPE, "application/x-gzip")],
        saved.archive,
    )
        .into_response();
    Ok(with_meta(resp, &saved.meta))
}

/// `PUT /v1/snapshot`: restores the archive in the body across the cluster.
pub async fn restore(
    AxState(state): AxState<State>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    params.check_dc(&state)?;
    state.authorize(params.token.as_deref(), Resource::Operator, Access::Write)?;
    let archive = read_body(&headers, body, RESTORE_BODY_LIMIT, DOC).await?;
    match state.server()?.snapshot_restore(archive).await {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(SnapshotError::Server(e)) => Err(e.into()),
        Err(e @ SnapshotError::TooLarge { .. }) => {
            Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}
