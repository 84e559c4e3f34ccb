//! Anti-entropy against the real store.

use lotse_core::catalog::{DeregisterRequest, RegisterRequest};
use lotse_core::node::SERF_HEALTH;
use lotse_core::Command;
use lotse_server::now_ms;

use super::*;
use crate::local::Source;

async fn write(s: &Server, cmd: Command) {
    s.write(cmd).await.expect("write");
}

fn register(a: &Agent, service: Option<Service>, checks: Vec<HealthCheck>) -> Command {
    Command::CatalogRegister {
        req: Box::new(RegisterRequest {
            node: a.node(),
            skip_node_update: true,
            service,
            checks,
        }),
        now_ms: now_ms(),
    }
}

#[tokio::test]
async fn a_full_sync_of_an_agent_in_sync_writes_nothing() {
    let (s, a) = agent().await;
    let web = |tag: &str| {
        service(json!({"Name": "web", "Tags": [tag], "Port": 80, "Check": {"TTL": "30s"}}))
    };
    a.register_service(web("a"), false, Source::Remote)
        .await
        .unwrap();
    let extra = check(json!({"Name": "extra", "ServiceID": "web", "TTL": "30s"}));
    a.register_check(extra, Source::Remote).await.unwrap();
    // The service's tags change: the check registered on its own carries them in the catalog
    // (the store fills them in), so it must locally too, or every full sync rewrites it.
    a.register_service(web("b"), false, Source::Remote)
        .await
        .unwrap();
    // A service with EnableTagOverride whose tags someone changed in the catalog: adopted.
    let api = service(json!({"Name": "api", "Tags": ["x"], "Port": 81, "EnableTagOverride": true}));
    a.register_service(api, false, Source::Remote)
        .await
        .unwrap();
    let api_check = check(json!({"Name": "api-check", "ServiceID": "api", "TTL": "30s"}));
    a.register_check(api_check, Source::Remote).await.unwrap();
    let mut edited = catalog_service(&s, "api").expect("api in the catalog");
    edited.tags = vec!["y".into()];
    write(&s, register(&a, Some(edited), Vec::new())).await;
    a.sync_full().await.unwrap();
    assert_eq!(a.service("api").unwrap().tags, vec!["y".to_string()]);
    assert_eq!(
        local_check(&a, "api-check").unwrap().service_tags,
        vec!["y".to_string()]
    );

    a.sync_full().await.unwrap();
    let before = last_log_index(&s);
    a.sync_full().await.unwrap();
    a.sync_changes().await.unwrap();
    assert_eq!(
        last_log_index(&s),
        before,
        "a sync with nothing to do wrote"
    );
}

#[tokio::test]
async fn a_full_sync_removes_foreign_rows_but_never_the_servers_own() {
    let (s, a) = agent().await;
    assert!(catalog_service(&s, lotse_server::CONSUL_SERVICE).is_some());
    assert!(catalog_check(&s, SERF_HEALTH).is_some());
    let foreign = Service {
        id: "foreign".into(),
        name: "foreign".into(),
        ..Default::default()
    };
    let foreign_check = HealthCheck::new(NODE, "foreign-check", "foreign check");
    write(&s, register(&a, Some(foreign), vec![foreign_check])).await;
    write(
        &s,
        register(&a, None, vec![HealthCheck::new(NODE, "node-check", "n")]),
    )
    .await;
    a.sync_full().await.unwrap();
    assert!(catalog_service(&s, "foreign").is_none());
    assert!(catalog_check(&s, "foreign-check").is_none());
    assert!(catalog_check(&s, "node-check").is_none());
    assert!(catalog_service(&s, lotse_server::CONSUL_SERVICE).is_some());
    assert!(catalog_check(&s, SERF_HEALTH).is_some());

    // A local check that took serfHealth's ID and went again does not take the node's gossip
    // health with it.
    let imposter = check(json!({"ID": SERF_HEALTH, "Name": "imposter", "TTL": "30s"}));
    a.register_check(imposter, Source::Remote).await.unwrap();
    a.deregister_check(SERF_HEALTH).await.unwrap();
    assert!(catalog_check(&s, SERF_HEALTH).is_some());
    assert!(a.state().deleted_checks.is_empty());
}

#[tokio::test]
async fn a_check_refused_for_a_service_the_catalog_lost_brings_the_service_back() {
    let (s, a) = agent().await;
    let web = service(json!({"Name": "web", "Port": 80, "Check": {"TTL": "30s"}}));
    a.register_service(web, false, Source::Remote)
        .await
        .unwrap();
    // Someone deletes the service through the catalog API; the agent still thinks it synced.
    write(
        &s,
        Command::CatalogDeregister {
            req: DeregisterRequest {
                node: NODE.into(),
                service_id: Some("web".into()),
                check_id: None,
            },
            now_ms: now_ms(),
        },
    )
    .await;
    assert!(catalog_service(&s, "web").is_none());
    // The check's result alone would be refused (its service is missing): the sync writes
    // the service with it instead of failing until the next full sync.
    a.ttl_update("service:web", CheckStatus::Passing, "fine")
        .await
        .unwrap();
    assert!(catalog_service(&s, "web").is_some());
    assert_eq!(
        status(catalog_check(&s, "service:web")),
        Some((CheckStatus::Passing, "fine".to_string()))
    );
    assert!(a.sync_changes().await.is_ok());
}

#[tokio::test]
async fn a_check_of_a_service_not_registered_yet_waits_for_it() {
    let (s, a) = agent().await;
    // As a persisted API check of a config service is restored before the config is loaded.
    let row = HealthCheck {
        service_id: "later".into(),
        ..HealthCheck::new(NODE, "early", "early")
    };
    let now = tokio::time::Instant::now();
    a.change(|st| (st.add_check(row, None, Source::Remote, now), true));
    assert!(
        a.sync_changes().await.is_ok(),
        "a check that cannot be written yet is no failure"
    );
    assert!(catalog_check(&s, "early").is_none());
    a.load_config_definitions(vec![service(json!({"Name": "later"}))], Vec::new())
        .await
        .unwrap();
    let c = catalog_check(&s, "early").expect("written with its service");
    assert_eq!(c.service_name, "later");
}

/// An agent whose output-only changes wait 30-90 s, with a TTL check `c` in the catalog.
async fn with_deferring_check() -> (Arc<Server>, Arc<Agent>) {
    let (s, a) = agent_with(AgentOptions {
        check_update_interval: Duration::from_secs(60),
        ..AgentOptions::default()
    })
    .await;
    a.register_check(check(json!({"Name": "c", "TTL": "1h"})), Source::Remote)
        .await
        .unwrap();
    (s, a)
}

#[tokio::test]
async fn output_only_changes_wait_for_their_deferral_then_are_written() {
    let (s, a) = with_deferring_check().await;
    a.ttl_update("c", CheckStatus::Passing, "a").await.unwrap();
    // A runner's output-only change: kept locally, not written yet (it waits 30-90 s).
    a.record_result(
        "c",
        registration(&a, "c"),
        CheckStatus::Passing,
        "b".into(),
        true,
    );
    a.sync_changes().await.unwrap();
    let before = last_log_index(&s);
    a.sync_full().await.unwrap();
    assert_eq!(
        last_log_index(&s),
        before,
        "a deferred output was written early"
    );
    assert_eq!(status(local_check(&a, "c")).unwrap().1, "b");
    assert_eq!(status(catalog_check(&s, "c")).unwrap().1, "a");
    // A status change goes at once, deferral or not.
    let reg = registration(&a, "c");
    a.record_result("c", reg, CheckStatus::Warning, "w".into(), true);
    a.sync_changes().await.unwrap();
    assert_eq!(
        status(catalog_check(&s, "c")),
        Some((CheckStatus::Warning, "w".to_string()))
    );
}

#[tokio::test]
async fn a_deferral_that_falls_due_wakes_anti_entropy_once_even_if_the_write_fails() {
    let (s, a) = with_deferring_check().await;
    // With the server stopped every write fails at once, and the paused clock moves only
    // when the runtime idles (see races.rs).
    s.shutdown().await;
    tokio::time::pause();
    a.record_result(
        "c",
        registration(&a, "c"),
        CheckStatus::Critical,
        "b".into(),
        true,
    );
    let c = a.state().checks()["c"].clone();
    assert!(c.in_sync && c.output_deferred_until.is_some());
    tokio::time::sleep(Duration::from_secs(91)).await;
    // Anti-entropy woke for it by itself and tried: the change is out of sync now, no longer
    // deferred, so a failed write cannot wake the loop again and again. (Were it left
    // deferred in the past, the loop would spin and this sleep never end.)
    let c = a.state().checks()["c"].clone();
    assert!(!c.in_sync && c.output_deferred_until.is_none());
    tokio::time::sleep(Duration::from_secs(600)).await;
}
