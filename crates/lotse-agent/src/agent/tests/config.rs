//! Configuration reloads: all or nothing, and what stays across them.

use super::*;
use crate::local::Source;

fn with_sidecar(name: &str, port: i64) -> ServiceDefinition {
    service(json!({
        "Name": name,
        "Port": port,
        "Connect": {"SidecarService": {"Check": {"TTL": "30s"}}}
    }))
}

fn ids(a: &Agent) -> Vec<String> {
    a.services().into_iter().map(|s| s.id).collect()
}

#[tokio::test]
async fn a_reload_that_runs_out_of_sidecar_ports_changes_nothing() {
    let (s, a) = agent().await;
    let old = service(json!({"Name": "old", "Port": 90}));
    a.load_config_definitions(vec![old, with_sidecar("web", 80)], Vec::new())
        .await
        .unwrap();
    assert_eq!(a.service("web-sidecar-proxy").unwrap().port, 21000);
    // The API takes every other port of the sidecar range.
    for port in 21001..=21255 {
        let svc = service(json!({"Name": format!("s{port}"), "Port": port}));
        a.register_service(svc, false, Source::Remote)
            .await
            .unwrap();
    }
    let before = ids(&a);
    // web keeps its sidecar's port; api's sidecar finds none free.
    let err = a
        .load_config_definitions(
            vec![with_sidecar("web", 80), with_sidecar("api", 81)],
            Vec::new(),
        )
        .await
        .unwrap_err();
    assert!(
        err.message.contains("no port provided for sidecar_service"),
        "{err}"
    );
    assert_eq!(ids(&a), before, "a refused reload changed the services");
    assert!(a.service("old").is_some() && a.service("api").is_none());
    assert!(catalog_service(&s, "old").is_some());
}

#[tokio::test]
async fn a_reload_keeps_a_sidecar_its_port_and_its_checks_status() {
    let (_s, a) = agent().await;
    let config = || vec![with_sidecar("web", 80)];
    a.load_config_definitions(config(), Vec::new())
        .await
        .unwrap();
    let check_id = "service:web-sidecar-proxy";
    a.ttl_update(check_id, CheckStatus::Passing, "up")
        .await
        .unwrap();
    // Another sidecar takes the lowest free port meanwhile.
    let other = service(json!({"Name": "db", "Port": 82, "Connect": {"SidecarService": {}}}));
    a.register_service(other, false, Source::Remote)
        .await
        .unwrap();
    assert_eq!(a.service("db-sidecar-proxy").unwrap().port, 21001);

    a.load_config_definitions(config(), Vec::new())
        .await
        .unwrap();
    assert_eq!(a.service("web-sidecar-proxy").unwrap().port, 21000);
    assert_eq!(
        status(local_check(&a, check_id)),
        Some((CheckStatus::Passing, "up".to_string())),
        "the reload reset the sidecar's check"
    );
    assert!(a.state().deleted_services.is_empty());
}

#[tokio::test]
async fn a_reload_with_a_check_of_an_unknown_service_is_refused_whole() {
    let (_s, a) = agent().await;
    let web = || service(json!({"Name": "web", "Port": 80}));
    a.load_config_definitions(vec![web()], Vec::new())
        .await
        .unwrap();
    let orphan = check(json!({"Name": "orphan", "ServiceID": "nope", "TTL": "30s"}));
    let err = a
        .load_config_definitions(Vec::new(), vec![orphan])
        .await
        .unwrap_err();
    assert_eq!(err.message, r#"ServiceID "nope" does not exist"#);
    assert!(
        a.service("web").is_some(),
        "a refused reload removed a service"
    );
    // A check of a service the same configuration registers is fine, as is one of an API
    // service.
    let api = service(json!({"Name": "api", "Port": 81}));
    a.register_service(api, false, Source::Remote)
        .await
        .unwrap();
    let on_web = check(json!({"Name": "w", "ServiceID": "web", "TTL": "30s"}));
    let on_api = check(json!({"Name": "a", "ServiceID": "api", "TTL": "30s"}));
    a.load_config_definitions(vec![web()], vec![on_web, on_api])
        .await
        .unwrap();
    assert_eq!(local_check(&a, "w").unwrap().service_name, "web");
    assert_eq!(local_check(&a, "a").unwrap().service_name, "api");
    // Dropped from the configuration, a check of an API service goes too.
    a.load_config_definitions(vec![web()], Vec::new())
        .await
        .unwrap();
    assert!(local_check(&a, "a").is_none() && local_check(&a, "w").is_none());
    assert!(a.service("api").is_some());
}

#[tokio::test]
async fn a_sidecars_script_check_needs_scripts_enabled() {
    let (_s, a) = agent().await;
    let scripted = service(json!({
        "Name": "web",
        "Port": 80,
        "Connect": {"SidecarService": {"Check": {"Args": ["true"], "Interval": "10s"}}}
    }));
    let err = a
        .load_config_definitions(vec![scripted], Vec::new())
        .await
        .unwrap_err();
    assert!(err.message.contains("Scripts are disabled"), "{err}");
    assert!(a.services().is_empty());
}
