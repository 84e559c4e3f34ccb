//! The sidecar Consul derives from `Connect.SidecarService`.

use std::time::Duration;

use lotse_core::catalog::{CheckStatus, ServiceAddress};
use serde_json::{json, Value};

use super::svc;
use crate::definition::{CheckKind, ServiceDefinition};

fn sidecar_of(body: Value) -> ServiceDefinition {
    match svc(body).sidecar {
        Some(sidecar) => *sidecar,
        None => panic!("no sidecar"),
    }
}

fn proxy(def: &ServiceDefinition) -> Value {
    serde_json::from_str(&def.service.proxy_json).unwrap_or(Value::Null)
}

#[test]
fn an_empty_sidecar_service_gets_consuls_defaults() {
    let body = json!({"name": "web", "id": "web1", "port": 8080, "address": "10.0.0.5",
                      "tags": ["t"], "meta": {"m": "1"}, "token": "tok",
                      "connect": {"sidecar_service": {}}});
    let sc = sidecar_of(body);
    let s = &sc.service;
    assert_eq!(
        (s.id.as_str(), s.name.as_str()),
        ("web1-sidecar-proxy", "web-sidecar-proxy")
    );
    assert_eq!(
        (s.kind.as_str(), s.port, s.address.as_str()),
        ("connect-proxy", 0, "10.0.0.5")
    );
    assert_eq!(s.tags, ["t"]);
    assert_eq!(s.meta.get("m").map(String::as_str), Some("1"));
    assert_eq!(s.connect_json, "");
    assert_eq!(sc.token, "tok");
    assert!(sc.sidecar.is_none());
    let want = json!({"DestinationServiceName": "web", "DestinationServiceID": "web1",
                      "LocalServiceAddress": "127.0.0.1", "LocalServicePort": 8080});
    assert_eq!(proxy(&sc), want);
    // Its default tagged addresses wait for the port.
    assert_eq!(s.tagged_addresses.get("lan_ipv4").map(|a| a.port), Some(0));

    let listening = &sc.checks[0];
    assert_eq!(listening.id, "service:web1-sidecar-proxy:1");
    assert_eq!(listening.name, "Connect Sidecar Listening");
    assert_eq!(
        listening.kind,
        CheckKind::Tcp {
            addr: "10.0.0.5:0".into()
        }
    );
    assert_eq!(listening.interval, Duration::from_secs(10));
    assert_eq!(
        (listening.service_id.as_str(), listening.token.as_str()),
        ("web1-sidecar-proxy", "tok")
    );
    let alias = &sc.checks[1];
    assert_eq!(alias.id, "service:web1-sidecar-proxy:2");
    assert_eq!(alias.name, "Connect Sidecar Aliasing web1");
    assert_eq!(
        alias.kind,
        CheckKind::Alias {
            node: String::new(),
            service: "web1".into()
        }
    );
    assert_eq!(
        (alias.interval, alias.initial_status),
        (Duration::ZERO, CheckStatus::Critical)
    );
    assert_eq!(sc.checks.len(), 2);
}

#[test]
fn assigning_the_port_fixes_the_listening_check_and_tagged_addresses() {
    let mut sc = sidecar_of(json!({"Name": "web", "Port": 80, "Address": "10.0.0.5",
                                   "Connect": {"SidecarService": {}}}));
    sc.assign_sidecar_port(21000);
    assert_eq!(sc.service.port, 21000);
    assert_eq!(
        sc.checks[0].kind,
        CheckKind::Tcp {
            addr: "10.0.0.5:21000".into()
        }
    );
    let lan = ServiceAddress {
        address: "10.0.0.5".into(),
        port: 21000,
    };
    assert_eq!(sc.service.tagged_addresses.get("lan_ipv4"), Some(&lan));
    // A sidecar with a port keeps it.
    sc.assign_sidecar_port(21001);
    assert_eq!(sc.service.port, 21000);
}

#[test]
fn given_sidecar_fields_win_over_the_defaults() {
    let sc = sidecar_of(
        json!({"Name": "web", "Port": 80, "Tags": ["p"], "Meta": {"a": "1"},
        "Connect": {"SidecarService": {
            "Name": "custom", "Port": 21500, "Address": "::1", "Tags": ["s"], "Meta": {"b": "2"},
            "Token": "own", "Weights": {"Passing": 0, "Warning": 0},
            "Proxy": {"local_service_port": 9000, "local_service_address": "10.1.1.1",
                      "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]},
        }}}),
    );
    let s = &sc.service;
    assert_eq!(
        (s.name.as_str(), s.port, s.address.as_str()),
        ("custom", 21500, "::1")
    );
    assert_eq!(
        (s.tags.as_slice(), sc.token.as_str()),
        (["s".to_string()].as_slice(), "own")
    );
    assert_eq!(s.meta.get("b").map(String::as_str), Some("2"));
    assert!(!s.meta.contains_key("a"));
    // An invalid sidecar weight is replaced, not refused (the catalog's rule).
    assert_eq!((s.weights.passing, s.weights.warning), (1, 1));
    let p = proxy(&sc);
    assert_eq!(
        (
            p["LocalServicePort"].clone(),
            p["LocalServiceAddress"].clone()
        ),
        (json!(9000), json!("10.1.1.1"))
    );
    assert_eq!(p["Upstreams"][0]["DestinationType"], json!("service"));
    assert_eq!(
        sc.checks[0].kind,
        CheckKind::Tcp {
            addr: "[::1]:21500".into()
        }
    );
    assert_eq!(sc.checks[0].token, "own");
    assert_eq!(
        s.tagged_addresses.get("lan_ipv6").map(|a| a.port),
        Some(21500)
    );
}

#[test]
fn a_sidecar_with_its_own_checks_gets_no_default_ones() {
    let sc = sidecar_of(json!({"Name": "web", "Connect": {"SidecarService": {
        "Checks": [{"TCP": "127.0.0.1:21000", "Interval": "5s"}, {"TTL": "1m", "Name": "t"}]}}}));
    let got: Vec<(&str, &str)> = sc
        .checks
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "service:web-sidecar-proxy:1",
                "Service 'web-sidecar-proxy' check"
            ),
            ("service:web-sidecar-proxy:2", "t"),
        ]
    );
}

#[test]
fn the_local_service_comes_from_the_parents_socket_or_port() {
    let sc = sidecar_of(json!({"Name": "web", "SocketPath": "/run/web.sock",
                               "Connect": {"SidecarService": {}}}));
    let p = proxy(&sc);
    assert_eq!(p["LocalServiceSocketPath"], json!("/run/web.sock"));
    assert!(p.get("LocalServiceAddress").is_none() && p.get("LocalServicePort").is_none());
    // No address anywhere: the listening check dials the local service address.
    let sc = sidecar_of(json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}));
    assert_eq!(
        sc.checks[0].kind,
        CheckKind::Tcp {
            addr: "127.0.0.1:0".into()
        }
    );
    assert!(sc.service.tagged_addresses.is_empty());
    // A given socket path keeps the address and port unset.
    let sc = sidecar_of(
        json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": {
        "Proxy": {"LocalServiceSocketPath": "/s"}}}}),
    );
    assert!(proxy(&sc).get("LocalServicePort").is_none());
}

#[test]
fn the_parent_is_stored_without_its_sidecar_block() {
    let def = svc(json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": {"Port": 1}}}));
    assert_eq!(def.service.connect_json, "");
    assert!(!def.service.proxy_json.contains("Sidecar"));
}
