//! `Connect.SidecarService`: the sidecar proxy Consul derives from a service registration
//! (`sidecarServiceFromNodeService`), with its defaults and its two default checks.
//!
//! The port is not chosen here (that needs the agent's other services): a sidecar without one
//! comes back with port 0, its default listening check dialing `<addr>:0` and its default
//! tagged addresses on port 0; [`ServiceDefinition::assign_sidecar_port`] fixes all three.

use std::time::Duration;

use lotse_core::catalog::{CheckStatus, Service};
use serde_json::Value;

use super::check::DEFAULT_OUTPUT_MAX_SIZE;
use super::keys::{int_of, number, obj_of, str_map_of, str_of, Object};
use super::proxy::{self, connect_json, join_host_port, proxy_json, Scope};
use super::service::{
    add_default_tagged_addresses, build_checks, service_fields, validate_meta, validated_checks,
    weights_or_default,
};
use crate::definition::{CheckDefinition, CheckKind, DefinitionError, ServiceDefinition};

const SUFFIX: &str = "-sidecar-proxy";
const LISTENING_CHECK: &str = "Connect Sidecar Listening";

/// Derives the sidecar of `parent` from its canonical `SidecarService` object. The caller
/// has validated the parent (so the sidecar has no ID and no nested sidecar) and the
/// sidecar's checks.
pub(super) fn derive(
    parent: &Service,
    parent_token: &str,
    sc: &Object,
) -> Result<ServiceDefinition, DefinitionError> {
    if sc.contains_key("Meta") {
        validate_meta(str_of(sc, "Kind"), &str_map_of(sc, "Meta"))
            .map_err(|e| bad(format!("Invalid SidecarService: {e}")))?;
    }
    let mut service = service_fields(sc, format!("{}{SUFFIX}", parent.id));
    service.weights = weights_or_default(sc);
    if service.meta.is_empty() {
        service.meta = parent.meta.clone();
    }
    if service.tags.is_empty() {
        service.tags = parent.tags.clone();
    }
    if service.kind.is_empty() {
        service.kind = "connect-proxy".into();
    }
    if service.name.is_empty() {
        service.name = format!("{}{SUFFIX}", parent.name);
    }
    if service.address.is_empty() {
        service.address = parent.address.clone();
    }

    let mut proxy = obj_of(sc, "Proxy").cloned().unwrap_or_default();
    let set = |p: &mut Object, field: &str, v: Value| {
        p.insert(field.to_string(), v);
    };
    if str_of(&proxy, "DestinationServiceName").is_empty() {
        set(
            &mut proxy,
            "DestinationServiceName",
            parent.name.clone().into(),
        );
    }
    if str_of(&proxy, "DestinationServiceID").is_empty() {
        set(&mut proxy, "DestinationServiceID", parent.id.clone().into());
    }
    let local_address_missing = str_of(&proxy, "LocalServiceAddress").is_empty();
    let local_port_missing = int_of(&proxy, "LocalServicePort") < 1;
    if str_of(&proxy, "LocalServiceSocketPath").is_empty()
        && (local_address_missing || local_port_missing)
    {
        if !parent.socket_path.is_empty() {
            set(
                &mut proxy,
                "LocalServiceSocketPath",
                parent.socket_path.clone().into(),
            );
        } else {
            if local_address_missing {
                set(&mut proxy, "LocalServiceAddress", "127.0.0.1".into());
            }
            if local_port_missing {
                set(&mut proxy, "LocalServicePort", number(parent.port));
            }
        }
    }
    service.proxy_json = proxy_json(Some(&proxy));
    service.connect_json = connect_json(obj_of(sc, "Connect"));

    // Consul's `sidecar.ValidateForAgent()` on the derived service.
    let mut derived = sc.clone();
    derived.insert("Kind".into(), service.kind.clone().into());
    derived.insert("Proxy".into(), Value::Object(proxy.clone()));
    proxy::validate(&derived, Scope::Agent).map_err(|e| bad(format!("Failed Validation: {e}")))?;

    let token = match str_of(sc, "Token") {
        "" => parent_token.to_string(),
        t => t.to_string(),
    };
    let own_checks =
        validated_checks(sc).map_err(|e| bad(format!("Invalid check in sidecar_service: {e}")))?;
    let checks = if own_checks.is_empty() {
        let check_address = match service.address.as_str() {
            "" => str_of(&proxy, "LocalServiceAddress"),
            a => a,
        };
        default_checks(&service, &parent.id, check_address, &token)
    } else {
        build_checks(own_checks, &service, &token)
    };
    add_default_tagged_addresses(&mut service);
    Ok(ServiceDefinition {
        service,
        checks,
        sidecar: None,
        token,
    })
}

/// Consul's `sidecarDefaultChecks`: the proxy listens, and mirrors its service's health.
fn default_checks(
    sidecar: &Service,
    parent_id: &str,
    address: &str,
    token: &str,
) -> Vec<CheckDefinition> {
    let check = |n: usize, name: String, kind: CheckKind, interval: Duration| CheckDefinition {
        id: format!("service:{}:{n}", sidecar.id),
        name,
        notes: String::new(),
        service_id: sidecar.id.clone(),
        initial_status: CheckStatus::Critical,
        kind,
        interval,
        timeout: None,
        ttl: Duration::ZERO,
        deregister_critical_service_after: None,
        success_before_passing: 0,
        failures_before_warning: 0,
        failures_before_critical: 0,
        output_max_size: DEFAULT_OUTPUT_MAX_SIZE,
        token: token.to_string(),
    };
    vec![
        check(
            1,
            LISTENING_CHECK.into(),
            CheckKind::Tcp {
                addr: join_host_port(address, sidecar.port),
            },
            Duration::from_secs(10),
        ),
        check(
            2,
            format!("Connect Sidecar Aliasing {parent_id}"),
            CheckKind::Alias {
                node: String::new(),
                service: parent_id.to_string(),
            },
            Duration::ZERO,
        ),
    ]
}

impl ServiceDefinition {
    /// Gives a sidecar registered without a port the one the agent picked (Consul: the lowest
    /// free one of 21000-21255): the service's port, its default tagged addresses and its
    /// default listening check follow. Does nothing when the service already has a port.
    pub fn assign_sidecar_port(&mut self, port: i64) {
        if self.service.port != 0 {
            return;
        }
        self.service.port = port;
        for sa in self.service.tagged_addresses.values_mut() {
            if sa.address == self.service.address && sa.port == 0 {
                sa.port = port;
            }
        }
        let first = format!("service:{}:1", self.service.id);
        for c in &mut self.checks {
            if let CheckKind::Tcp { addr } = &mut c.kind {
                if c.id == first && c.name == LISTENING_CHECK {
                    if let Some(host) = addr.strip_suffix(":0") {
                        *addr = format!("{host}:{port}");
                    }
                }
            }
        }
    }
}

fn bad(message: impl Into<String>) -> DefinitionError {
    DefinitionError::bad_request(message)
}
