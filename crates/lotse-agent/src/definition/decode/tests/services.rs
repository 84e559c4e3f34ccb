//! What a service registration becomes: Consul's defaults and the stored blocks.

use lotse_core::catalog::{CheckStatus, ServiceAddress, Weights};
use serde_json::json;

use super::svc;

fn tagged(address: &str) -> Vec<(String, String, i64)> {
    let def = svc(json!({"Name": "web", "Address": address, "Port": 80}));
    def.service
        .tagged_addresses
        .into_iter()
        .map(|(k, v)| (k, v.address, v.port))
        .collect()
}

#[test]
fn id_weights_and_zero_values_default_as_in_consul() {
    let def = svc(json!({"Name": "web"}));
    assert_eq!(def.service.id, "web");
    assert_eq!(
        def.service.weights,
        Weights {
            passing: 1,
            warning: 1
        }
    );
    assert!(def.checks.is_empty() && def.sidecar.is_none());
    assert!(def.service.tagged_addresses.is_empty());
    assert_eq!(
        (
            def.service.proxy_json.as_str(),
            def.service.connect_json.as_str()
        ),
        ("", "")
    );
    let def = svc(json!({"Name": "web", "ID": "", "Weights": {"Passing": 3, "Warning": 0}}));
    assert_eq!(def.service.id, "web");
    assert_eq!(
        def.service.weights,
        Weights {
            passing: 3,
            warning: 0
        }
    );
    // null is absent, as Go leaves the field at its zero value.
    let def = svc(json!({"Name": "web", "Tags": null, "Port": null, "Check": null}));
    assert!(def.service.tags.is_empty() && def.checks.is_empty());
}

#[test]
fn tagged_addresses_follow_the_address_family() {
    let v4 = |k: &str| (k.to_string(), "10.0.0.5".to_string(), 80);
    assert_eq!(tagged("10.0.0.5"), vec![v4("lan_ipv4"), v4("wan_ipv4")]);
    let v6 = |k: &str| (k.to_string(), "2001:db8::1".to_string(), 80);
    assert_eq!(tagged("2001:db8::1"), vec![v6("lan_ipv6"), v6("wan_ipv6")]);
    // Go's To4() sees an IPv4-mapped IPv6 address as IPv4.
    assert_eq!(tagged("::ffff:10.0.0.5")[0].0, "lan_ipv4");
    assert!(tagged("web.example.com").is_empty());
    assert!(tagged("").is_empty());
    // Given ones are kept as given.
    let def = svc(json!({"Name": "web", "Address": "10.0.0.5", "Port": 80,
                         "TaggedAddresses": {"wan_ipv4": {"Address": "1.2.3.4", "Port": 443}}}));
    let wan = ServiceAddress {
        address: "1.2.3.4".into(),
        port: 443,
    };
    assert_eq!(def.service.tagged_addresses.get("wan_ipv4"), Some(&wan));
    assert_eq!(
        def.service.tagged_addresses.get("lan_ipv4").map(|a| a.port),
        Some(80)
    );
}

#[test]
fn check_ids_names_and_statuses_default_as_in_consul() {
    let def = svc(json!({"Name": "web", "ID": "w1", "Check": {"TTL": "10s"}}));
    let c = &def.checks[0];
    assert_eq!(
        (c.id.as_str(), c.name.as_str()),
        ("service:w1", "Service 'web' check")
    );
    assert_eq!(
        (c.service_id.as_str(), c.initial_status),
        ("w1", CheckStatus::Critical)
    );
    // Check first, then Checks; numbered from 1 over all of them when there are several;
    // a given ID or name is kept but still counts.
    let def = svc(
        json!({"Name": "web", "Check": {"TTL": "1s", "Status": "passing"},
        "Checks": [{"TTL": "1s", "CheckID": "mine", "Name": "Mine"}, {"TTL": "1s", "Status": "warning"}]}),
    );
    let got: Vec<(&str, &str, CheckStatus)> = def
        .checks
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.initial_status))
        .collect();
    assert_eq!(
        got,
        [
            ("service:web:1", "Service 'web' check", CheckStatus::Passing),
            ("mine", "Mine", CheckStatus::Critical),
            ("service:web:3", "Service 'web' check", CheckStatus::Warning),
        ]
    );
    // An empty Check is no check, and does not count.
    let def = svc(json!({"Name": "web", "Check": {}, "Checks": [{"TTL": "1s"}]}));
    assert_eq!(def.checks.len(), 1);
    assert_eq!(def.checks[0].id, "service:web");
    // The service's token goes to its checks.
    let def = svc(json!({"Name": "web", "Token": "tok", "Check": {"TTL": "1s"}}));
    assert_eq!(def.checks[0].token, "tok");
}

#[test]
fn proxy_block_is_kept_canonical_with_go_field_names() {
    let def = svc(json!({
        "name": "web-proxy", "kind": "connect-proxy", "port": 21000,
        "proxy": {
            "destination_service_name": "web", "local_service_port": 8080,
            "upstreams": [{"destination_name": "db", "local_bind_port": 9191,
                           "config": {"connect_timeout_ms": 500}}],
            "mesh_gateway": {"mode": "local"},
            "config": {"protocol": "http", "nested_Key": {"a_b": 1}},
        },
    }));
    let want = json!({
        "Config": {"nested_Key": {"a_b": 1}, "protocol": "http"},
        "DestinationServiceName": "web",
        "LocalServicePort": 8080,
        "MeshGateway": {"Mode": "local"},
        "Upstreams": [{"Config": {"connect_timeout_ms": 500}, "DestinationName": "db",
                       "DestinationType": "service", "LocalBindPort": 9191}],
    });
    assert_eq!(def.service.proxy_json, want.to_string());
    assert_eq!(def.service.kind, "connect-proxy");
}

#[test]
fn connect_block_is_kept_without_its_sidecar_and_unknown_keys() {
    let def = svc(json!({"Name": "web", "Port": 80,
        "Connect": {"Native": true, "Whatever": 1, "sidecar_service": {}}}));
    assert_eq!(def.service.connect_json, r#"{"Native":true}"#);
    assert!(def.sidecar.is_some());
    let def = svc(json!({"Name": "web", "Connect": {"SidecarService": {}}}));
    assert_eq!(def.service.connect_json, "");
}

#[test]
fn enterprise_keys_are_accepted_when_empty() {
    let def = svc(json!({"Name": "web", "Namespace": "", "partition": null}));
    assert_eq!(def.service.name, "web");
}

#[test]
fn locality_is_accepted_and_dropped() {
    let def = svc(json!({"Name": "web", "Locality": {"Region": "r", "Zone": "z"}}));
    assert_eq!(def.service.name, "web");
}

#[test]
fn mesh_gateway_may_carry_the_wan_federation_meta_key() {
    let def = svc(json!({"Name": "gw", "Kind": "mesh-gateway", "Port": 443,
                         "Meta": {"consul-wan-federation": "1"}}));
    assert_eq!(def.service.kind, "mesh-gateway");
}
