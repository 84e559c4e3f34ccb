//! `GET /v1/snapshot` (save) and `PUT /v1/snapshot` (restore).

use axum::Router;

use crate::State;

/// The snapshot routes.
pub fn routes() -> Router<State> {
    Router::new()
}
