//! `PUT /v1/agent/service/register` (and a config `services` block): Consul's
//! `AgentRegisterService` refusals in its order, then the stored service with the agent's
//! defaults (`ID` from the name, weights, tagged addresses), its checks and its sidecar.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lotse_core::catalog::{Service, ServiceAddress, Weights};
use serde_json::Value;

use super::check::RawCheck;
use super::keys::{
    bool_of, canonical, int_of, list_of, obj_of, str_map_of, str_of, strings_of, Object,
};
use super::proxy::{self, connect_json, proxy_json, Scope};
use super::schema::SERVICE;
use super::sidecar;
use crate::definition::{CheckDefinition, CheckKind, DefinitionError, ServiceDefinition};

const BAD_STATUS: &str = "Status for checks must 'passing', 'warning', 'critical'";

pub(super) fn decode(body: &Value) -> Result<ServiceDefinition, DefinitionError> {
    let obj = canonical(body, &SERVICE)?;
    let name = str_of(&obj, "Name");
    if name.is_empty() {
        return Err(bad("Missing service name"));
    }
    // Consul's ipaddr.IsAny: the text, not the parsed address.
    if matches!(str_of(&obj, "Address"), "0.0.0.0" | "::" | "[::]") {
        return Err(bad("Invalid service address"));
    }
    if let Some(weights) = obj_of(&obj, "Weights") {
        validate_weights(weights).map_err(|e| bad(format!("Invalid Weights: {e}")))?;
    }
    validate_meta(str_of(&obj, "Kind"), &str_map_of(&obj, "Meta"))
        .map_err(|e| bad(format!("Invalid Service Meta: {e}")))?;
    proxy::validate(&obj, Scope::Catalog).map_err(|e| bad(format!("Validation failed: {e}")))?;

    let checks = validated_checks(&obj).map_err(|e| bad(format!("Invalid check: {e}")))?;
    if checks.iter().any(|(raw, _)| raw.initial_status().is_none()) {
        return Err(bad(BAD_STATUS));
    }
    let sidecar_obj = obj_of(&obj, "Connect").and_then(|c| obj_of(c, "SidecarService"));
    if let Some(sc) = sidecar_obj {
        let sidecar_checks = validated_checks(sc)
            .map_err(|e| bad(format!("Invalid check in sidecar_service: {e}")))?;
        if sidecar_checks
            .iter()
            .any(|(raw, _)| raw.initial_status().is_none())
        {
            return Err(bad(BAD_STATUS));
        }
    }

    let id = match str_of(&obj, "ID") {
        "" => name.to_string(),
        id => id.to_string(),
    };
    let mut service = service_fields(&obj, id);
    service.weights = weights_or_default(&obj);
    add_default_tagged_addresses(&mut service);
    service.proxy_json = proxy_json(obj_of(&obj, "Proxy"));
    // The parent is stored without its SidecarService: that is registration sugar.
    service.connect_json = connect_json(obj_of(&obj, "Connect"));
    let token = str_of(&obj, "Token").to_string();
    let sidecar = match sidecar_obj {
        Some(sc) => Some(Box::new(sidecar::derive(&service, &token, sc)?)),
        None => None,
    };

    // Consul refuses these in AddService, after everything above, with a 500.
    validate_tagged_addresses(&service.tagged_addresses)?;
    if let Some(sc) = &sidecar {
        validate_tagged_addresses(&sc.service.tagged_addresses)?;
    }
    Ok(ServiceDefinition {
        checks: build_checks(checks, &service, &token),
        service,
        sidecar,
        token,
    })
}

/// A service's checks in Consul's order (`Check` unless empty, then `Checks`), each passed
/// through `Validate()` and Lotse's probe rules; the first refusal's message.
pub(super) fn validated_checks(obj: &Object) -> Result<Vec<(RawCheck, CheckKind)>, String> {
    let single = obj
        .get("Check")
        .map(RawCheck::from_value)
        .filter(|c| !c.is_empty());
    let listed = list_of(obj, "Checks").iter().map(RawCheck::from_value);
    single
        .into_iter()
        .chain(listed)
        .map(|raw| {
            raw.validate()?;
            let kind = raw.kind()?;
            Ok((raw, kind))
        })
        .collect()
}

/// Consul's IDs (`service:<id>`, `service:<id>:<n>` when there are several) and names.
pub(super) fn build_checks(
    checks: Vec<(RawCheck, CheckKind)>,
    service: &Service,
    token: &str,
) -> Vec<CheckDefinition> {
    let several = checks.len() > 1;
    checks
        .into_iter()
        .enumerate()
        .map(|(i, (mut raw, kind))| {
            let id = match (raw.id.is_empty(), several) {
                (false, _) => raw.id.clone(),
                (true, false) => format!("service:{}", service.id),
                (true, true) => format!("service:{}:{}", service.id, i + 1),
            };
            let name = match raw.name.is_empty() {
                true => format!("Service '{}' check", service.name),
                false => raw.name.clone(),
            };
            raw.service_id = service.id.clone();
            raw.token = token.to_string();
            raw.into_definition(kind, id, name)
        })
        .collect()
}

/// The catalog row's plain fields as given (no defaults beyond Go's zero values).
pub(super) fn service_fields(obj: &Object, id: String) -> Service {
    let tagged_addresses = obj_of(obj, "TaggedAddresses")
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let empty = Object::new();
                    let a = v.as_object().unwrap_or(&empty);
                    let address = str_of(a, "Address").to_string();
                    (
                        k.clone(),
                        ServiceAddress {
                            address,
                            port: int_of(a, "Port"),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Service {
        id,
        name: str_of(obj, "Name").to_string(),
        tags: strings_of(obj, "Tags"),
        address: str_of(obj, "Address").to_string(),
        tagged_addresses,
        meta: str_map_of(obj, "Meta"),
        port: int_of(obj, "Port"),
        socket_path: str_of(obj, "SocketPath").to_string(),
        weights: Weights::default(),
        enable_tag_override: bool_of(obj, "EnableTagOverride"),
        kind: str_of(obj, "Kind").to_string(),
        proxy_json: String::new(),
        connect_json: String::new(),
        create_index: 0,
        modify_index: 0,
    }
}

/// The given weights when valid, else Consul's `{1, 1}` (the catalog's rule: an invalid
/// sidecar weight is never refused, only replaced).
pub(super) fn weights_or_default(obj: &Object) -> Weights {
    match obj_of(obj, "Weights") {
        Some(w) if validate_weights(w).is_ok() => Weights {
            passing: int_of(w, "Passing"),
            warning: int_of(w, "Warning"),
        },
        _ => Weights::default(),
    }
}

/// Consul's `ValidateWeights`.
fn validate_weights(w: &Object) -> Result<(), &'static str> {
    let (passing, warning) = (int_of(w, "Passing"), int_of(w, "Warning"));
    if passing < 1 {
        Err("Passing must be greater than 0")
    } else if warning < 0 {
        Err("Warning must be greater or equal than 0")
    } else if passing > 65535 || warning > 65535 {
        Err("DNS Weight must be between 0 and 65535")
    } else {
        Ok(())
    }
}

/// Consul's `ValidateServiceMetadata` (without the `consul-` exemption the servers have).
/// Pairs are checked in key order (Go's map order is random; the first bad pair is reported).
pub(super) fn validate_meta(kind: &str, meta: &BTreeMap<String, String>) -> Result<(), String> {
    if meta.len() > 64 {
        return Err("Node metadata cannot contain more than 64 key/value pairs".into());
    }
    for (key, value) in meta {
        let problem = if key.is_empty() {
            "Key cannot be blank".to_string()
        } else if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            "Key contains invalid characters".to_string()
        } else if key.len() > 128 {
            "Key is too long (limit: 128 characters)".to_string()
        } else if key.starts_with("consul-")
            && !(kind == "mesh-gateway" && key == "consul-wan-federation")
        {
            "Key prefix 'consul-' is reserved for internal use".to_string()
        } else if value.len() > 512 {
            "Value is too long (limit: 512 characters)".to_string()
        } else {
            continue;
        };
        return Err(format!(
            "Couldn't load metadata pair ('{key}', '{value}'): {problem}"
        ));
    }
    Ok(())
}

/// Go's `net.ParseIP(..).To4() != nil`: true for IPv4 (also IPv4-mapped IPv6), false for
/// other IPv6, None when not an IP.
fn ip_is_v4(text: &str) -> Option<bool> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(true),
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().is_some()),
    }
}

/// The agent's default tagged addresses: when the address is an IP, `lan_`/`wan_` +
/// `ipv4`/`ipv6` pointing at it, unless given.
pub(super) fn add_default_tagged_addresses(service: &mut Service) {
    let Some(v4) = ip_is_v4(&service.address) else {
        return;
    };
    let family = if v4 { "ipv4" } else { "ipv6" };
    for prefix in ["lan", "wan"] {
        service
            .tagged_addresses
            .entry(format!("{prefix}_{family}"))
            .or_insert_with(|| ServiceAddress {
                address: service.address.clone(),
                port: service.port,
            });
    }
}

/// Consul's `validateService` tagged-address rules (a 500 from `AddService`). Consul checks
/// `lan_ipv6` twice and `wan_ipv6` never; so does Lotse.
fn validate_tagged_addresses(
    tagged: &BTreeMap<String, ServiceAddress>,
) -> Result<(), DefinitionError> {
    for (key, want_v4) in [("lan_ipv4", true), ("wan_ipv4", true), ("lan_ipv6", false)] {
        if let Some(sa) = tagged.get(key) {
            if ip_is_v4(&sa.address) != Some(want_v4) {
                let family = if want_v4 { "ipv4" } else { "ipv6" };
                return Err(DefinitionError {
                    status: 500,
                    message: format!(
                        "Service tagged address {key:?} must be a valid {family} address"
                    ),
                });
            }
        }
    }
    Ok(())
}

fn bad(message: impl Into<String>) -> DefinitionError {
    DefinitionError::bad_request(message)
}
