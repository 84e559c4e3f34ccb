//! `PUT /v1/catalog/register` and `PUT /v1/catalog/deregister`: the body decoded as Consul's
//! HTTP handler does (400s), then checked as its `Catalog.Register` / `Catalog.Deregister` RPC
//! does (500s, in the same order), then written.

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use lotse_core::catalog::{DeregisterRequest, RegisterRequest};
use lotse_core::Command;
use lotse_server::{now_ms, Access, Resource};

use super::rpc_error;
use super::validate::{node_pre_apply, service_pre_apply, validate_meta};
use crate::body::json_body;
use crate::catalog_decode::{self as decode, reword_enterprise, DecodeError, RegisterBody};
use crate::params::Params;
use crate::reply::{json, ApiError, ApiResult};
use crate::State;

/// Catalog bodies are small; Consul bounds them only by Raft's entry size.
const BODY_LIMIT: usize = 4 * 1024 * 1024;
const CATALOG_DOC: &str = "https://developer.hashicorp.com/consul/api-docs/catalog";

/// Reads a body and decodes it with `decode`, as Consul's `decodeBody` into its request
/// struct: 400 `Request decode failed: ...` (an empty body is `EOF`).
async fn decode_body<T>(
    headers: &HeaderMap,
    body: Body,
    decode: impl FnOnce(&serde_json::Value) -> Result<T, DecodeError>,
) -> Result<T, ApiError> {
    let v = json_body(headers, body, BODY_LIMIT, CATALOG_DOC).await?;
    decode(&v).map_err(|e| {
        ApiError::bad_request(format!("Request decode failed: {}", reword_enterprise(e)))
    })
}

/// The body's datacenter, defaulted to the agent's; another one cannot be reached.
fn check_datacenter(dc: &str, state: &State) -> Result<(), ApiError> {
    if dc.is_empty() || dc == state.agent.datacenter {
        Ok(())
    } else {
        Err(rpc_error("No path to datacenter"))
    }
}

/// `Catalog.Register`'s checks in its order, turning the body into the store's request.
fn pre_apply(mut body: RegisterBody, state: &State) -> Result<RegisterRequest, ApiError> {
    let peered = !body.peer_name.is_empty()
        || body
            .service
            .as_ref()
            .is_some_and(|s| !s.peer_name.is_empty())
        || body.checks.iter().any(|c| !c.peer_name.is_empty());
    if peered {
        return Err(rpc_error("cannot register requests with PeerName in them"));
    }
    check_datacenter(&body.node.datacenter, state)?;
    if body.node.datacenter.is_empty() {
        body.node.datacenter = state.agent.datacenter.clone();
    }
    node_pre_apply(&body.node.name, &body.node.id).map_err(rpc_error)?;
    if body.node.address.is_empty() && !body.skip_node_update {
        return Err(rpc_error(
            "Must provide address if SkipNodeUpdate is not set",
        ));
    }
    let mut service = body.service.map(|s| s.service);
    if let Some(s) = service.as_mut() {
        service_pre_apply(s).map_err(rpc_error)?;
    }
    let node = body.node.name.clone();
    let mut checks = Vec::new();
    for mut c in body.checks {
        if c.check.node.is_empty() {
            c.check.node = node.clone();
        }
        if c.check.check_id.is_empty() && !c.check.name.is_empty() {
            c.check.check_id = c.check.name.clone();
        }
        if c.check.check_type.is_empty() {
            c.check.check_type = c.definition.check_type().to_string();
        }
        c.check.status = c.resolved_status().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Request decode failed: invalid check status {:?} (passing, warning or critical)",
                c.status
            ))
        })?;
        checks.push(c.check);
    }
    // vetRegisterWithACL (it runs with ACLs disabled too).
    for c in &mut checks {
        if !c.node.eq_ignore_ascii_case(&node) {
            return Err(rpc_error(format!(
                "Node '{}' for check '{}' doesn't match register request node '{node}'",
                c.node, c.check_id
            )));
        }
        c.node = node.clone();
        let in_request = service.as_ref().is_some_and(|s| s.id == c.service_id);
        let known = in_request
            || c.service_id.is_empty()
            || state
                .server()?
                .peek(|st| st.service(&node, &c.service_id).is_some());
        if !known {
            return Err(rpc_error(format!(
                "Unknown service ID '{}' for check ID '{}'",
                c.service_id, c.check_id
            )));
        }
    }
    if let Some(s) = &service {
        validate_meta(s).map_err(|e| {
            rpc_error(format!(
                "failed inserting service: Invalid Service Meta for node {node} and serviceID {}: {e}",
                s.id
            ))
        })?;
    }
    Ok(RegisterRequest {
        node: body.node,
        skip_node_update: body.skip_node_update,
        service,
        checks,
    })
}

pub async fn register(
    AxState(state): AxState<State>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let body = decode_body(&headers, body, decode::register).await?;
    let req = pre_apply(body, &state)?;
    state.authorize(
        params.token.as_deref(),
        Resource::Node(&req.node.name),
        Access::Write,
    )?;
    state
        .server()?
        .write(Command::CatalogRegister {
            req: Box::new(req),
            now_ms: now_ms(),
        })
        .await?;
    Ok(json(&true, params.pretty()))
}

pub async fn deregister(
    AxState(state): AxState<State>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let [dc, node, service_id, check_id, _peer] =
        decode_body(&headers, body, decode::deregister).await?;
    check_datacenter(&dc, &state)?;
    if node.is_empty() {
        return Err(rpc_error("Must provide node"));
    }
    state.authorize(
        params.token.as_deref(),
        Resource::Node(&node),
        Access::Write,
    )?;
    let req = DeregisterRequest {
        node,
        service_id: (!service_id.is_empty()).then_some(service_id),
        check_id: (!check_id.is_empty()).then_some(check_id),
    };
    state
        .server()?
        .write(Command::CatalogDeregister {
            req,
            now_ms: now_ms(),
        })
        .await?;
    Ok(json(&true, params.pretty()).into_response())
}
