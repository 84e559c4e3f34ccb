//! User events: `/v1/event/fire/{name}` and `/v1/event/list`.

use axum::Router;

use crate::State;

/// The user events this agent received, newest last.
#[derive(Default)]
pub struct EventLog {}

/// The event routes.
pub fn routes() -> Router<State> {
    Router::new()
}
