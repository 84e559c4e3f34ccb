//! `/v1/agent/checks` and `/v1/agent/check/*`: the agent's own checks, and TTL reports.
//!
//! Texts and codes are Consul's: decode and validation failures 400 (from
//! `lotse_agent::definition::decode`), unknown IDs 404, a report on a check that is not a TTL
//! check 500 (from the [`lotse_agent::Agent`]).

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use lotse_agent::definition::decode;
use lotse_agent::Source;
use lotse_core::catalog::CheckStatus;
use lotse_server::Access;
use serde_json::Value;

use crate::agent_services::{authorize, definition_error, json_body, keyed, path_id, written};
use crate::catalog_decode::kind;
use crate::catalog_filter::health_check_shape;
use crate::catalog_json::health_check;
use crate::params::Params;
use crate::reply::{self, ApiError, ApiResult};
use crate::State;

/// `GET /v1/agent/checks`: `{checkID: HealthCheck}`, `{}` when there are none.
pub async fn list(AxState(state): AxState<State>, params: Params) -> ApiResult {
    authorize(&state, &params, Access::Read)?;
    let checks = state.local.checks();
    // The handler's form: `ServiceTags` is `[]` when there are none.
    let rows = checks
        .iter()
        .map(|c| (c.check_id.as_str(), health_check(c)));
    let out = keyed(&params, &health_check_shape(), rows)?;
    Ok(reply::json(&out, params.pretty()))
}

/// `PUT /v1/agent/check/register`.
pub async fn register(
    AxState(state): AxState<State>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let value = json_body(&headers, body).await?;
    let def = decode::check(&value).map_err(definition_error)?;
    written(
        &state,
        &params,
        state.local.register_check(def, Source::Remote),
    )
    .await
}

/// `PUT /v1/agent/check/deregister/:id`.
pub async fn deregister(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let id = path_id(path);
    written(&state, &params, state.local.deregister_check(&id)).await
}

/// A TTL report: `status` with `output`, on the check at the end of the path.
async fn report(
    state: &State,
    params: &Params,
    path: Option<Path<String>>,
    status: CheckStatus,
    output: &str,
) -> ApiResult {
    let id = path_id(path);
    written(state, params, state.local.ttl_update(&id, status, output)).await
}

/// `PUT /v1/agent/check/pass/:id?note=`.
pub async fn pass(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let note = params.get("note").unwrap_or("");
    report(&state, &params, path, CheckStatus::Passing, note).await
}

/// `PUT /v1/agent/check/warn/:id?note=`.
pub async fn warn(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let note = params.get("note").unwrap_or("");
    report(&state, &params, path, CheckStatus::Warning, note).await
}

/// `PUT /v1/agent/check/fail/:id?note=`.
pub async fn fail(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
) -> ApiResult {
    let note = params.get("note").unwrap_or("");
    report(&state, &params, path, CheckStatus::Critical, note).await
}

/// The body of `PUT /v1/agent/check/update/:id`, decoded as Consul's strict decoder does
/// (case-insensitive names, unknown fields refused).
fn parse_update(v: &Value) -> Result<(CheckStatus, String), ApiError> {
    let decode_failed =
        |why: String| ApiError::bad_request(format!("Request decode failed: {why}"));
    let mut status = String::new();
    let mut output = String::new();
    match v {
        Value::Null => {}
        Value::Object(o) => {
            for (k, val) in o {
                let slot = if k.eq_ignore_ascii_case("Status") {
                    &mut status
                } else if k.eq_ignore_ascii_case("Output") {
                    &mut output
                } else {
                    return Err(decode_failed(format!("json: unknown field {k:?}")));
                };
                match val {
                    Value::String(s) => *slot = s.clone(),
                    Value::Null => {}
                    other => {
                        return Err(decode_failed(format!(
                            "json: cannot unmarshal {} into Go struct field checkUpdate.{k} of type string",
                            kind(other)
                        )))
                    }
                }
            }
        }
        other => {
            return Err(decode_failed(format!(
                "json: cannot unmarshal {} into Go value of type agent.checkUpdate",
                kind(other)
            )))
        }
    }
    match CheckStatus::parse(&status) {
        Some(s) => Ok((s, output)),
        None => Err(ApiError::bad_request(format!(
            "Invalid check status: '{status}'"
        ))),
    }
}

/// `PUT /v1/agent/check/update/:id` with `{"Status": ..., "Output": ...}`.
pub async fn update(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let value = json_body(&headers, body).await?;
    let (status, output) = parse_update(&value)?;
    report(&state, &params, path, status, &output).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_core::catalog::HealthCheck;
    use serde_json::json;

    #[test]
    fn checks_show_as_consuls_health_check_with_tags_never_null() {
        let mut c = HealthCheck::new("n1", "_node_maintenance", "Node Maintenance Mode");
        c.check_type = "maintenance".into();
        let v = serde_json::to_value(health_check(&c)).unwrap();
        assert_eq!(v["ServiceTags"], json!([]));
        assert_eq!(v["Definition"], json!({}));
        assert_eq!(v["Type"], "maintenance");
        for expr in [
            "Status == critical",
            "ServiceName == web",
            "v1 in ServiceTags",
            "Type == ttl",
        ] {
            let shape = health_check_shape();
            crate::filter::Filter::parse(expr, &shape).unwrap_or_else(|e| panic!("{expr}: {e}"));
        }
    }

    #[test]
    fn updates_decode_strictly_with_consuls_texts() {
        let ok = parse_update(&json!({"status": "warning", "OUTPUT": "slow"})).unwrap();
        assert_eq!(ok, (CheckStatus::Warning, "slow".to_string()));
        let e = parse_update(&json!({"Status": "passing", "Note": "x"})).unwrap_err();
        assert_eq!(
            e.reason,
            r#"Request decode failed: json: unknown field "Note""#
        );
        let e = parse_update(&json!({"Output": "x"})).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.reason.as_str()),
            (400, "Invalid check status: ''")
        );
        let e = parse_update(&json!({"Status": "ok"})).unwrap_err();
        assert_eq!(e.reason, "Invalid check status: 'ok'");
        let e = parse_update(&json!({"Status": 1})).unwrap_err();
        assert!(e
            .reason
            .starts_with("Request decode failed: json: cannot unmarshal number"));
        let e = parse_update(&json!([1])).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
    }
}
