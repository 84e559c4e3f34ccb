//! Connect: Consul's `NodeService.Validate()` / `ValidateForAgent()` over a service's kind,
//! `Proxy` and `Connect` blocks, and the blocks' canonical JSON text as the catalog stores it.
//!
//! Not checked (departure): `validateOpaqueProxyConfig` (the free-form `Proxy.Config`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::keys::{bool_of, int_of, list_of, obj_of, str_of, Object};

/// Which of Consul's two validations: `Validate()` (what the catalog would accept) adds the
/// connect-proxy port rule to `ValidateForAgent()` (the agent assigns sidecar ports itself).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Catalog,
    Agent,
}

const GATEWAYS: [&str; 4] = [
    "mesh-gateway",
    "terminating-gateway",
    "ingress-gateway",
    "api-gateway",
];

/// Validates a canonical `ServiceDefinition` object; the error is go-multierror's text
/// (`1 error occurred:\n\t* <msg>\n\n`).
pub(super) fn validate(service: &Object, scope: Scope) -> Result<(), String> {
    let mut errors: Vec<String> = Vec::new();
    let kind = str_of(service, "Kind");
    let port = int_of(service, "Port");
    let socket_path = str_of(service, "SocketPath");
    let empty = Object::new();
    let proxy = with_defaults(obj_of(service, "Proxy").unwrap_or(&empty));
    let connect = obj_of(service, "Connect").unwrap_or(&empty);
    let native = bool_of(connect, "Native");
    let sidecar = obj_of(connect, "SidecarService");
    let text = |field: &str| str_of(&proxy, field);

    if kind == "connect-proxy" {
        if scope == Scope::Catalog && port == 0 && socket_path.is_empty() {
            errors.push(format!("Port or SocketPath must be set for a {kind}"));
        }
        let destination = text("DestinationServiceName");
        if destination.trim().is_empty() {
            errors.push(
                "Proxy.DestinationServiceName must be non-empty for Connect proxy services".into(),
            );
        }
        if destination == "*" {
            errors.push(
                "Proxy.DestinationServiceName must not be a wildcard for Connect proxy services"
                    .into(),
            );
        }
        if native {
            errors.push("A Proxy cannot also be Connect Native, only typical services".into());
        }
        validate_upstreams(list_of(&proxy, "Upstreams"), &mut errors);
        let expose = obj_of(&proxy, "Expose").unwrap_or(&empty);
        validate_expose_paths(list_of(expose, "Paths"), &mut errors);
    }
    if GATEWAYS.contains(&kind) {
        if port == 0 && kind != "ingress-gateway" && kind != "api-gateway" {
            errors.push(format!("Port must be non-zero for a {kind}"));
        }
        if sidecar.is_some() {
            errors.push(format!("A {kind} cannot have a sidecar service defined"));
        }
        for field in [
            "DestinationServiceName",
            "DestinationServiceID",
            "LocalServiceAddress",
        ] {
            if !text(field).is_empty() {
                errors.push(format!(
                    "The Proxy.{field} configuration is invalid for a {kind}"
                ));
            }
        }
        if int_of(&proxy, "LocalServicePort") != 0 {
            errors.push(format!(
                "The Proxy.LocalServicePort configuration is invalid for a {kind}"
            ));
        }
        if !text("LocalServiceSocketPath").is_empty() {
            errors.push(format!(
                "The Proxy.LocalServiceSocketPath configuration is invalid for a {kind}"
            ));
        }
        if !list_of(&proxy, "Upstreams").is_empty() {
            errors.push(format!(
                "The Proxy.Upstreams configuration is invalid for a {kind}"
            ));
        }
    }
    if let Some(sidecar) = sidecar {
        if !str_of(sidecar, "ID").is_empty() {
            errors.push(
                "A SidecarService cannot specify an ID as this is managed by the agent".into(),
            );
        }
        if obj_of(sidecar, "Connect").is_some_and(|c| c.contains_key("SidecarService")) {
            errors.push("A SidecarService cannot have a nested SidecarService".into());
        }
    }
    if native && port == 0 && socket_path.is_empty() {
        errors.push("Port or SocketPath must be set for a Connect native service.".into());
    }
    match errors.as_slice() {
        [] => Ok(()),
        [one] => Err(format!("1 error occurred:\n\t* {one}\n\n")),
        many => Err(format!(
            "{} errors occurred:\n\t{}\n\n",
            many.len(),
            many.iter()
                .map(|e| format!("* {e}"))
                .collect::<Vec<_>>()
                .join("\n\t")
        )),
    }
}

/// Consul's per-upstream rules (CE: every partition is `default`), duplicates by target and
/// by local bind address.
fn validate_upstreams(upstreams: &[Value], errors: &mut Vec<String>) {
    let mut targets = BTreeSet::new();
    let mut binds = BTreeSet::new();
    let empty = Object::new();
    for u in upstreams {
        let u = u.as_object().unwrap_or(&empty);
        let s = |field: &str| str_of(u, field);
        let central = bool_of(u, "CentrallyConfigured");
        let partition = match s("DestinationPartition") {
            "" => "default",
            p => p,
        };
        if s("DestinationPeer").is_empty() {
            if !s("Datacenter").is_empty() && partition != "default" {
                errors.push(
                    "upstreams cannot target another datacenter in non default partition".into(),
                );
                continue;
            }
        } else if partition != "default" {
            errors.push("upstreams must target peers in the same partition as the service".into());
            continue;
        }
        if let Some(problem) = upstream_problem(u) {
            errors.push(problem);
            continue;
        }
        let (port, socket) = (int_of(u, "LocalBindPort"), s("LocalBindSocketPath"));
        let key = format!(
            "[type={:?}, name={:?}, partition={:?}, namespace={:?}, peer={:?}, datacenter={:?}]",
            s("DestinationType"),
            s("DestinationName"),
            s("DestinationPartition"),
            s("DestinationNamespace"),
            s("DestinationPeer"),
            s("Datacenter"),
        );
        if !targets.insert(key.clone()) {
            errors.push(format!("upstreams cannot contain duplicates of {key}"));
            continue;
        }
        let addr = if port == 0 && s("LocalBindAddress").is_empty() && !socket.is_empty() {
            socket.to_string()
        } else {
            let host = match s("LocalBindAddress") {
                "" => "127.0.0.1",
                h => h,
            };
            join_host_port(host, port)
        };
        if !binds.insert(addr.clone()) && !central {
            errors.push(format!(
                "upstreams cannot contain duplicates by local bind address and port or unix path; {addr:?} is specified twice"
            ));
        }
    }
}

/// Consul's `Upstream.Validate()`.
fn upstream_problem(u: &Object) -> Option<String> {
    let s = |field: &str| str_of(u, field);
    let central = bool_of(u, "CentrallyConfigured");
    let (port, socket) = (int_of(u, "LocalBindPort"), s("LocalBindSocketPath"));
    let name = s("DestinationName");
    let kind = s("DestinationType");
    if !matches!(kind, "service" | "prepared_query" | "") {
        return Some(format!("unknown upstream destination type: {kind:?}"));
    }
    let problem = if name.is_empty() {
        "upstream destination name cannot be empty"
    } else if name == "*" && !central {
        "upstream destination name cannot be a wildcard"
    } else if !s("DestinationPeer").is_empty() && !s("Datacenter").is_empty() {
        "upstream cannot specify both destination peer and datacenter"
    } else if port == 0 && socket.is_empty() && !central {
        "upstream local bind port or local socket path must be defined and nonzero"
    } else if port != 0 && !socket.is_empty() && !central {
        "only one of upstream local bind port or local socket path can be defined and nonzero"
    } else {
        return None;
    };
    Some(problem.to_string())
}

fn validate_expose_paths(paths: &[Value], errors: &mut Vec<String>) {
    let mut listeners = BTreeSet::new();
    let empty = Object::new();
    for p in paths {
        let p = p.as_object().unwrap_or(&empty);
        let (path, port) = (str_of(p, "Path"), int_of(p, "ListenerPort"));
        if path.is_empty() {
            errors.push("expose.paths: empty path exposed".into());
        }
        if !listeners.insert(port) {
            errors.push("expose.paths: duplicate listener ports exposed".into());
        }
        if port <= 0 || port > 65535 {
            errors.push(format!("expose.paths: invalid listener port: {port}"));
        }
        let protocol = str_of(p, "Protocol").to_lowercase();
        if !protocol.is_empty() && protocol != "http" && protocol != "http2" {
            errors.push(format!(
                "protocol '{protocol}' not supported for path: {path}, must be in: [http http2]"
            ));
        }
    }
}

/// Go's `net.JoinHostPort`.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The proxy block as Consul's `NodeService()` leaves it: upstreams without a destination
/// type are `service` upstreams.
pub(super) fn with_defaults(proxy: &Object) -> Object {
    let mut proxy = proxy.clone();
    if let Some(Value::Array(upstreams)) = proxy.get_mut("Upstreams") {
        for u in upstreams.iter_mut().filter_map(Value::as_object_mut) {
            if str_of(u, "DestinationType").is_empty() {
                u.insert("DestinationType".into(), Value::String("service".into()));
            }
        }
    }
    proxy
}

/// `Service.proxy_json`: the canonical block with defaults, empty when there is none.
pub(super) fn proxy_json(proxy: Option<&Object>) -> String {
    match proxy {
        Some(p) if !p.is_empty() => Value::Object(with_defaults(p)).to_string(),
        _ => String::new(),
    }
}

/// `Service.connect_json`: the canonical block without `SidecarService` (registration
/// sugar, never stored), empty when nothing else is left.
pub(super) fn connect_json(connect: Option<&Object>) -> String {
    let mut connect: BTreeMap<&str, &Value> = connect
        .map(|c| c.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default();
    connect.remove("SidecarService");
    if connect.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&connect).unwrap_or_default()
    }
}
