//! `/v1/status/leader` and `/v1/status/peers`.

use axum::extract::State as AxState;

use crate::params::Params;
use crate::reply::{json, ApiResult};
use crate::State;

pub async fn leader(AxState(state): AxState<State>, params: Params) -> ApiResult {
    params.check_dc(&state)?;
    let leader = state.server()?.leader_addr().unwrap_or_default();
    Ok(json(&leader, params.pretty()))
}

pub async fn peers(AxState(state): AxState<State>, params: Params) -> ApiResult {
    params.check_dc(&state)?;
    Ok(json(&state.server()?.peers(), params.pretty()))
}
