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
use serde_json::{json, Value};

use crate::agent_services::authorize;
use crate::catalog_json::{agent_service, AgentServiceJson};
use crate::params::Params;
use crate::reply::{ApiError, ApiResult};
use crate::State;

/// Consul's `api.HealthCheck` as this endpoint fills it: only the identity, status and output
/// are copied; the rest keeps Go's zero values.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ApiCheckJson<'a> {
    pub node: &'a str,
    #[serde(rename = "CheckID")]
    pub check_id: &'a str,
    pub name: &'a str,
    pub status: &'static str,
    pub notes: &'a str,
    pub output: &'a str,
    #[serde(rename = "ServiceID")]
    pub service_id: &'a str,
    pub service_name: &'a str,
    /// Copied as is: a nil list (none) is `null` here, unlike `/v1/agent/checks`.
    pub service_tags: Option<&'a [String]>,
    #[serde(rename = "Type")]
    pub check_type: &'static str,
    pub exposed_port: i64,
    pub definition: Value,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `api.HealthCheckDefinition`'s zero value as its `MarshalJSON` writes it.
fn zero_definition() -> Value {
    json!({
        "Interval": "0s", "Timeout": "0s", "DeregisterCriticalServiceAfter": "0s",
        "HTTP": "", "Header": null, "Method": "", "Body": "", "TLSServerName": "",
        "TLSSkipVerify": false, "TCP": "", "TCPUseTLS": false, "UDP": "", "GRPC": "",
        "OSService": "", "GRPCUseTLS": false
    })
}

fn api_check(c: &HealthCheck) -> ApiCheckJson<'_> {
    ApiCheckJson {
        node: &c.node,
        check_id: &c.check_id,
        name: &c.name,
        status: c.status.as_str(),
        notes: &c.notes,
        output: &c.output,
        service_id: &c.service_id,
        service_name: &c.service_name,
        service_tags: (!c.service_tags.is_empty()).then_some(c.service_tags.as_slice()),
        check_type: "",
        exposed_port: 0,
        definition: zero_definition(),
        create_index: 0,
        modify_index: 0,
    }
}

/// `AgentServiceChecksInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceHealthJson<'a> {
    pub aggregated_status: &'static str,
    pub service: Option<AgentServiceJson<'a>>,
    pub checks: Option<Vec<ApiCheckJson<'a>>>,
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
        checks: Some(sorted.into_iter().map(api_check).collect()),
    };
    (status_code(status), status, body)
}

/// `GET /v1/agent/health/service/id/:id`.
pub async fn by_id(
    AxState(state): AxState<State>,
    id: Option<Path<String>>,
    params: Params,
    headers: HeaderMap,
) -> ApiResult {
    let id = id.map(|Path(id)| id).unwrap_or_default();
    if id.is_empty() {
        // Consul returns a *pointer* to an HTTPError here, which its error mapping does not
        // recognise, so the text goes out as a 500.
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Missing serviceID",
        ));
    }
    authorize(&state, &params, Access::Read)?;
    let text = wants_text(&headers, &params);
    let dc = state.local.datacenter();
    match state.local.service_health(&id) {
        Some((service, checks)) => {
            let (code, status, body) = service_health(&service, &checks, dc);
            Ok(answer(code, status, &body, text, params.pretty()))
        }
        None => {
            let reason = format!("ServiceId {id} not found");
            let body = ServiceHealthJson {
                aggregated_status: "critical",
                service: None,
                checks: None,
            };
            Ok(answer(
                StatusCode::NOT_FOUND,
                &reason,
                &body,
                text,
                params.pretty(),
            ))
        }
    }
}

/// `GET /v1/agent/health/service/name/:name`: every local instance, the code of the worst.
pub async fn by_name(
    AxState(state): AxState<State>,
    name: Option<Path<String>>,
    params: Params,
    headers: HeaderMap,
) -> ApiResult {
    let name = name.map(|Path(n)| n).unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Missing service Name",
        ));
    }
    authorize(&state, &params, Access::Read)?;
    let text = wants_text(&headers, &params);
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
        let v = serde_json::to_value(api_check(&c)).unwrap();
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
