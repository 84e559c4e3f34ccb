//! `GET /v1/agent/health/service/id/:id` and `/name/:name`: a local service's health as an
//! HTTP status, for load balancers that only look at the code.
//!
//! | aggregated status           | code |
//! |-----------------------------|------|
//! | passing (also: no checks)   | 200  |
//! | warning                     | 429  |
//! | critical, maintenance       | 503  |
//! | no such service             | 404  |
//!
//! The status is Consul's `api.HealthChecks.AggregatedStatus` over the service's checks and
//! the node's: a maintenance check (`_node_maintenance`, `_service_maintenance:*`) makes it
//! `maintenance`, whatever the other checks say. Every answer carries it in
//! `X-Consul-Reason`; `?format=text` (or `Accept: text/plain`) answers with just that text.

use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lotse_agent::agent::{NODE_MAINTENANCE, SERVICE_MAINTENANCE_PREFIX};
use lotse_core::catalog::{CheckStatus, HealthCheck, Service};
use lotse_server::Access;
use serde::Serialize;

use crate::agent_services::{authorize, path_id};
use crate::catalog_json::{agent_service, api_health_check, AgentServiceJson, HealthCheckJson};
use crate::params::Params;
use crate::reply::{ApiError, ApiResult};
use crate::State;

/// `AgentServiceChecksInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceHealthJson<'a> {
    pub aggregated_status: &'static str,
    pub service: Option<AgentServiceJson<'a>>,
    pub checks: Option<Vec<HealthCheckJson<'a>>>,
}

/// `api.HealthChecks.AggregatedStatus`: maintenance > critical > warning > passing.
pub fn aggregated_status<'a>(checks: impl IntoIterator<Item = &'a HealthCheck>) -> &'static str {
    let mut worst = CheckStatus::Passing;
    for c in checks {
        if c.check_id == NODE_MAINTENANCE || c.check_id.starts_with(SERVICE_MAINTENANCE_PREFIX) {
            return "maintenance";
        }
        worst = worst.max(c.status);
    }
    worst.as_str()
}

/// The HTTP code for an aggregated status.
pub fn status_code(status: &str) -> StatusCode {
    match status {
        "passing" => StatusCode::OK,
        "warning" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Consul's `returnTextPlain`: an `Accept` starting with `text/plain`, else `?format=text`.
fn wants_text(headers: &HeaderMap, params: &Params) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.starts_with("text/plain") || params.get("format") == Some("text")
}

/// Consul's `CodeWithPayloadError` answer: the code, `X-Consul-Reason`, and either the JSON
/// payload or the reason as `text/plain`.
fn answer<T: Serialize>(
    code: StatusCode,
    reason: &str,
    payload: &T,
    text: bool,
    pretty: bool,
) -> Response {
    let mut resp = if text {
        (
            code,
            [(header::CONTENT_TYPE, "text/plain")],
            reason.to_string(),
        )
            .into_response()
    } else {
        let mut r = crate::reply::json(payload, pretty);
        *r.status_mut() = code;
        r
    };
    if let Ok(v) = HeaderValue::from_str(reason) {
        resp.headers_mut().insert("X-Consul-Reason", v);
    }
    resp
}

fn service_health<'a>(
    service: &'a Service,
    checks: &'a [HealthCheck],
    dc: &'a str,
) -> (StatusCode, &'static str, ServiceHealthJson<'a>) {
    let status = aggregated_status(checks);
    let mut sorted: Vec<&HealthCheck> = checks.iter().collect();
    sorted.sort_by(|a, b| a.check_id.cmp(&b.check_id));
    let body = ServiceHealthJson {
        aggregated_status: status,
        service: Some(agent_service(service, dc)),
        checks: Some(sorted.into_iter().map(api_health_check).collect()),
    };
    (status_code(status), status, body)
}

/// What both endpoints check first: the path's ID or name (empty: Consul's text, answered as
/// a 500, see [`by_id`]), then the ACL seam; and whether the answer is wanted as plain text.
fn prologue(
    state: &State,
    params: &Params,
    headers: &HeaderMap,
    path: Option<Path<String>>,
    missing: &str,
) -> Result<(String, bool), ApiError> {
    let id = path_id(path);
    if id.is_empty() {
        // Consul returns a *pointer* to an HTTPError here, which its error mapping does not
        // recognise, so the text goes out as a 500.
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, missing));
    }
    authorize(state, params, Access::Read)?;
    Ok((id, wants_text(headers, params)))
}

/// `GET /v1/agent/health/service/id/:id`.
pub async fn by_id(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
    headers: HeaderMap,
) -> ApiResult {
    let (id, text) = prologue(&state, &params, &headers, path, "Missing serviceID")?;
    let pretty = params.pretty();
    let Some((service, checks)) = state.local.service_health(&id) else {
        let body = ServiceHealthJson {
            aggregated_status: "critical",
            service: None,
            checks: None,
        };
        let reason = format!("ServiceId {id} not found");
        return Ok(answer(StatusCode::NOT_FOUND, &reason, &body, text, pretty));
    };
    let (code, status, body) = service_health(&service, &checks, state.local.datacenter());
    Ok(answer(code, status, &body, text, pretty))
}

/// `GET /v1/agent/health/service/name/:name`: every local instance, the code of the worst.
pub async fn by_name(
    AxState(state): AxState<State>,
    path: Option<Path<String>>,
    params: Params,
    headers: HeaderMap,
) -> ApiResult {
    let (name, text) = prologue(&state, &params, &headers, path, "Missing service Name")?;
    let dc = state.local.datacenter();
    let mut instances: Vec<(Service, Vec<HealthCheck>)> = state
        .local
        .services()
        .into_iter()
        .filter(|s| s.name == name)
        .filter_map(|s| state.local.service_health(&s.id))
        .collect();
    instances.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let mut code = StatusCode::NOT_FOUND;
    let mut reason = format!("ServiceName {name} Not Found");
    let mut bodies = Vec::with_capacity(instances.len());
    for (service, checks) in &instances {
        let (c, status, body) = service_health(service, checks, dc);
        // The first instance replaces the 404; after that the highest code (the worst) wins.
        if code == StatusCode::NOT_FOUND || code.as_u16() < c.as_u16() {
            code = c;
            reason = status.to_string();
        }
        bodies.push(body);
    }
    Ok(answer(code, &reason, &bodies, text, params.pretty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn check(id: &str, status: CheckStatus) -> HealthCheck {
        let mut c = HealthCheck::new("n1", id, id);
        c.status = status;
        c
    }

    #[test]
    fn aggregation_puts_maintenance_above_critical() {
        assert_eq!(aggregated_status(&[]), "passing");
        let mixed = [
            check("a", CheckStatus::Passing),
            check("b", CheckStatus::Warning),
        ];
        assert_eq!(aggregated_status(&mixed), "warning");
        let crit = [
            check("a", CheckStatus::Critical),
            check("b", CheckStatus::Warning),
        ];
        assert_eq!(aggregated_status(&crit), "critical");
        let maint = [
            check("a", CheckStatus::Passing),
            check("_service_maintenance:web", CheckStatus::Critical),
        ];
        assert_eq!(aggregated_status(&maint), "maintenance");
        assert_eq!(
            aggregated_status(&[check("_node_maintenance", CheckStatus::Critical)]),
            "maintenance"
        );
        assert_eq!(status_code("passing"), StatusCode::OK);
        assert_eq!(status_code("warning"), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status_code("critical"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_code("maintenance"), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn checks_here_are_api_health_checks_with_zero_values() {
        let mut c = check("service:web1", CheckStatus::Passing);
        c.check_type = "ttl".into();
        c.interval = "10s".into();
        let v = serde_json::to_value(api_health_check(&c)).unwrap();
        assert_eq!(v["Type"], "");
        assert!(v.get("Interval").is_none());
        assert_eq!(v["ServiceTags"], Value::Null);
        assert_eq!(v["Definition"]["Interval"], "0s");
        assert_eq!(v["Definition"]["Header"], Value::Null);
        let not_found = ServiceHealthJson {
            aggregated_status: "critical",
            service: None,
            checks: None,
        };
        assert_eq!(
            serde_json::to_value(&not_found).unwrap(),
            json!({"AggregatedStatus": "critical", "Service": null, "Checks": null})
        );
    }
}
