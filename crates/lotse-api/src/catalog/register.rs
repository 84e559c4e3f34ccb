//! `PUT /v1/catalog/register` and `PUT /v1/catalog/deregister`: the body decoded as Consul's
//! HTTP handler does (400s), then checked as its `Catalog.Register` / `Catalog.Deregister` RPC
//! does (500s, in the same order), then written.

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use lotse_core::catalog::{DeregisterRequest, RegisterRequest, Service};
use lotse_core::Command;
use lotse_server::{now_ms, Access, Resource};
use serde_json::Value;

use super::rpc_error;
use crate::catalog_decode::{self as decode, reword_enterprise, RegisterBody};
use crate::ci_json;
use crate::kv::read_body;
use crate::params::Params;
use crate::reply::{json, ApiError, ApiResult};
use crate::State;

/// Catalog bodies are small; Consul bounds them only by Raft's entry size.
const BODY_LIMIT: usize = 4 * 1024 * 1024;
const CATALOG_DOC: &str = "https://developer.hashicorp.com/consul/api-docs/catalog";

/// Reads a JSON body as Consul's `decodeBody`: an empty body is `EOF`.
async fn body_json(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(headers, body, BODY_LIMIT, CATALOG_DOC).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Request decode failed: EOF"));
    }
    ci_json::parse(&bytes)
}

fn decode_failed(e: String) -> ApiError {
    ApiError::bad_request(format!("Request decode failed: {}", reword_enterprise(e)))
}

/// The body's datacenter, defaulted to the agent's; another one cannot be reached.
fn check_datacenter(dc: &str, state: &State) -> Result<(), ApiError> {
    if dc.is_empty() || dc == state.agent.datacenter {
        Ok(())
    } else {
        Err(rpc_error("No path to datacenter"))
    }
}

/// hashicorp/go-uuid's `ParseUUID`, with its error texts.
fn parse_uuid(id: &str) -> Result<(), String> {
    if id.len() != 36 {
        return Err("uuid string is wrong length".into());
    }
    let b = id.as_bytes();
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return Err("uuid is improperly formatted".into());
    }
    for (i, c) in id.char_indices() {
        if [8, 13, 18, 23].contains(&i) {
            continue;
        }
        if !c.is_ascii_hexdigit() {
            return Err(format!(
                "encoding/hex: invalid byte: U+{:04X} {c:?}",
                c as u32
            ));
        }
    }
    Ok(())
}

/// go-multierror's text for a list of errors.
fn multierror(errors: &[String]) -> String {
    if errors.len() == 1 {
        return format!("1 error occurred:\n\t* {}\n\n", errors[0]);
    }
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} errors occurred:\n\t{}\n\n",
        errors.len(),
        points.join("\n\t")
    )
}

const GATEWAYS: [&str; 4] = [
    "mesh-gateway",
    "terminating-gateway",
    "ingress-gateway",
    "api-gateway",
];

/// Consul's `NodeService.Validate()` for what the catalog stores of a service (upstream
/// and expose-path details, kept as given, are not checked).
fn validate_service(s: &Service) -> Result<(), String> {
    let proxy: Value = serde_json::from_str(&s.proxy_json).unwrap_or(Value::Null);
    let text = |f: &str| {
        proxy
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let native = serde_json::from_str::<Value>(&s.connect_json)
        .ok()
        .and_then(|c| c.get("Native").and_then(Value::as_bool))
        .unwrap_or(false);
    let mut errors = Vec::new();
    let kind = s.kind.as_str();
    if kind == "connect-proxy" {
        if s.port == 0 && s.socket_path.is_empty() {
            errors.push(format!("Port or SocketPath must be set for a {kind}"));
        }
        let dest = text("DestinationServiceName");
        if dest.trim().is_empty() {
            errors.push(
                "Proxy.DestinationServiceName must be non-empty for Connect proxy services".into(),
            );
        }
        if dest == "*" {
            errors.push(
                "Proxy.DestinationServiceName must not be a wildcard for Connect proxy services"
                    .into(),
            );
        }
        if native {
            errors.push("A Proxy cannot also be Connect Native, only typical services".into());
        }
    }
    if GATEWAYS.contains(&kind) {
        if s.port == 0 && kind != "ingress-gateway" && kind != "api-gateway" {
            errors.push(format!("Port must be non-zero for a {kind}"));
        }
        for f in [
            "DestinationServiceName",
            "DestinationServiceID",
            "LocalServiceAddress",
            "LocalServiceSocketPath",
        ] {
            if !text(f).is_empty() {
                errors.push(format!(
                    "The Proxy.{f} configuration is invalid for a {kind}"
                ));
            }
        }
        if proxy
            .get("LocalServicePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            != 0
        {
            errors.push(format!(
                "The Proxy.LocalServicePort configuration is invalid for a {kind}"
            ));
        }
        if proxy
            .get("Upstreams")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty())
        {
            errors.push(format!(
                "The Proxy.Upstreams configuration is invalid for a {kind}"
            ));
        }
    }
    if native && s.port == 0 && s.socket_path.is_empty() {
        errors.push("Port or SocketPath must be set for a Connect native service.".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errors))
    }
}

/// Consul's `validateMetadata` for service meta (the `consul-` prefix is reserved).
fn validate_meta(s: &Service) -> Result<(), String> {
    if s.meta.len() > 64 {
        return Err("Node metadata cannot contain more than 64 key/value pairs".into());
    }
    for (k, v) in &s.meta {
        let why = if k.is_empty() {
            Some("Key cannot be blank".to_string())
        } else if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Some("Key contains invalid characters".to_string())
        } else if k.len() > 128 {
            Some("Key is too long (limit: 128 characters)".to_string())
        } else if k.starts_with("consul-")
            && !(s.kind == "mesh-gateway" && k == "consul-wan-federation")
        {
            Some("Key prefix 'consul-' is reserved for internal use".to_string())
        } else if v.len() > 512 {
            Some("Value is too long (limit: 512 characters)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(format!("Couldn't load metadata pair ('{k}', '{v}'): {why}"));
        }
    }
    Ok(())
}

/// Consul's `servicePreApply`: validation, the ID defaulted to the name, the address checked.
pub(crate) fn service_pre_apply(s: &mut Service) -> Result<(), String> {
    validate_service(s)?;
    if s.id.is_empty() && !s.name.is_empty() {
        s.id = s.name.clone();
    }
    if !s.id.is_empty() && s.name.is_empty() {
        return Err(
            "Must provide service name (Service.Service) when service ID is provided".into(),
        );
    }
    if matches!(s.address.as_str(), "0.0.0.0" | "::" | "[::]") {
        return Err("Invalid service address".into());
    }
    Ok(())
}

/// Consul's `nodePreApply`.
pub(crate) fn node_pre_apply(name: &str, id: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Must provide node".into());
    }
    if !id.is_empty() {
        parse_uuid(id).map_err(|e| format!("Bad node ID: {e}"))?;
    }
    Ok(())
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
                .server
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
    let v = body_json(&headers, body).await?;
    let body = decode::register(&v).map_err(decode_failed)?;
    let req = pre_apply(body, &state)?;
    state.server.authorize(
        params.token.as_deref(),
        Resource::Node(&req.node.name),
        Access::Write,
    )?;
    state
        .server
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
    let v = body_json(&headers, body).await?;
    let [dc, node, service_id, check_id, _peer] = decode::deregister(&v).map_err(decode_failed)?;
    check_datacenter(&dc, &state)?;
    if node.is_empty() {
        return Err(rpc_error("Must provide node"));
    }
    state.server.authorize(
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
        .server
        .write(Command::CatalogDeregister {
            req,
            now_ms: now_ms(),
        })
        .await?;
    Ok(json(&true, params.pretty()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_checked_with_go_uuid_texts() {
        assert!(parse_uuid("40e4a748-2192-161a-0510-9bf59fe950b5").is_ok());
        assert_eq!(
            parse_uuid("abc").unwrap_err(),
            "uuid string is wrong length"
        );
        assert_eq!(
            parse_uuid("40e4a748x2192-161a-0510-9bf59fe950b5").unwrap_err(),
            "uuid is improperly formatted"
        );
        assert_eq!(
            parse_uuid("g0e4a748-2192-161a-0510-9bf59fe950b5").unwrap_err(),
            "encoding/hex: invalid byte: U+0067 'g'"
        );
    }

    #[test]
    fn connect_proxies_need_a_port_and_a_destination() {
        let s = Service {
            id: "p".into(),
            name: "p".into(),
            kind: "connect-proxy".into(),
            ..Service::default()
        };
        assert_eq!(
            validate_service(&s).unwrap_err(),
            "2 errors occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\t\
             * Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n"
        );
        let ok = Service {
            port: 8080,
            proxy_json: r#"{"DestinationServiceName":"web","Mode":""}"#.into(),
            ..s
        };
        assert!(validate_service(&ok).is_ok());
    }

    #[test]
    fn service_ids_default_to_the_name_and_any_addresses_are_refused() {
        let mut s = Service {
            name: "web".into(),
            ..Service::default()
        };
        service_pre_apply(&mut s).unwrap();
        assert_eq!(s.id, "web");
        let mut s = Service {
            id: "web1".into(),
            ..Service::default()
        };
        assert_eq!(
            service_pre_apply(&mut s).unwrap_err(),
            "Must provide service name (Service.Service) when service ID is provided"
        );
        let mut s = Service {
            name: "web".into(),
            address: "0.0.0.0".into(),
            ..Service::default()
        };
        assert_eq!(
            service_pre_apply(&mut s).unwrap_err(),
            "Invalid service address"
        );
    }

    #[test]
    fn service_meta_keys_follow_consuls_rules() {
        let with = |k: &str| Service {
            meta: [(k.to_string(), "v".to_string())].into_iter().collect(),
            ..Service::default()
        };
        assert!(validate_meta(&with("ok_key-1")).is_ok());
        assert_eq!(
            validate_meta(&with("bad key")).unwrap_err(),
            "Couldn't load metadata pair ('bad key', 'v'): Key contains invalid characters"
        );
        assert!(validate_meta(&with("consul-x"))
            .unwrap_err()
            .ends_with("Key prefix 'consul-' is reserved for internal use"));
    }
}
