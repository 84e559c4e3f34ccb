//! What the API registered survives a restart, and what it removed stays removed.

use super::*;
use crate::local::Source;

fn options(dir: &std::path::Path) -> AgentOptions {
    AgentOptions {
        data_dir: Some(dir.into()),
        ..AgentOptions::default()
    }
}

fn check_ids(a: &Agent) -> Vec<String> {
    a.checks().into_iter().map(|c| c.check_id).collect()
}

#[tokio::test]
async fn checks_removed_after_their_services_registration_stay_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server().await;
    let a = Agent::start(s.clone(), options(dir.path())).unwrap();
    let web =
        service(json!({"Name": "web", "Port": 80, "Checks": [{"TTL": "30s"}, {"TTL": "60s"}]}));
    a.register_service(web, false, Source::Remote)
        .await
        .unwrap();
    a.deregister_check("service:web:1").await.unwrap();
    let db = service(json!({"Name": "db", "Port": 81, "Check": {"TTL": "30s"}}));
    a.register_service(db, false, Source::Remote).await.unwrap();
    let extra = check(json!({"Name": "extra", "ServiceID": "db", "TTL": "30s"}));
    a.register_check(extra, Source::Remote).await.unwrap();
    // Registered again replacing its checks: `extra` goes.
    let db = service(json!({"Name": "db", "Port": 81, "Check": {"TTL": "30s"}}));
    a.register_service(db, true, Source::Remote).await.unwrap();
    let want = vec!["service:db".to_string(), "service:web:2".to_string()];
    assert_eq!(check_ids(&a), want);
    drop(a);

    let again = Agent::start(s, options(dir.path())).unwrap();
    assert_eq!(check_ids(&again), want, "a removed check came back");
    assert_eq!(ids(&again), vec!["db".to_string(), "web".to_string()]);
}

fn ids(a: &Agent) -> Vec<String> {
    a.services().into_iter().map(|s| s.id).collect()
}

#[tokio::test]
async fn a_service_file_with_its_checks_inside_is_split_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    // As Lotse wrote it before checks had files of their own.
    let old =
        service(json!({"Name": "web", "Port": 80, "Checks": [{"TTL": "30s"}, {"TTL": "60s"}]}));
    crate::persist::Persist::open(dir.path())
        .unwrap()
        .save_service(&old)
        .unwrap();
    let s = server().await;
    let a = Agent::start(s.clone(), options(dir.path())).unwrap();
    assert_eq!(check_ids(&a), vec!["service:web:1", "service:web:2"]);
    a.deregister_check("service:web:1").await.unwrap();
    drop(a);
    let again = Agent::start(s, options(dir.path())).unwrap();
    assert_eq!(check_ids(&again), vec!["service:web:2"]);
}
