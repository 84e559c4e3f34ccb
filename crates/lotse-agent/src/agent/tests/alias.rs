//! Alias checks against the real server: the `Server` side of `Upstream::watch_health`.

use lotse_server::now_ms;

use super::*;
use crate::local::Source;
use crate::test_support::register_db;

async fn until_status(a: &Agent, id: &str, want: CheckStatus) {
    for _ in 0..500 {
        if local_check(a, id).map(|c| c.status) == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never became {want:?}: {:?}", local_check(a, id));
}

#[tokio::test]
async fn an_alias_check_follows_a_service_on_another_node_at_once() {
    let (s, a) = agent().await;
    s.write(register_db(CheckStatus::Passing, now_ms()))
        .await
        .unwrap();
    let alias = check(json!({"Name": "db-alias", "AliasNode": "other", "AliasService": "db"}));
    a.register_check(alias, Source::Remote).await.unwrap();
    until_status(&a, "db-alias", CheckStatus::Passing).await;
    // Seconds, not the minute of ALIAS_RECHECK: the change woke the parked read.
    s.write(register_db(CheckStatus::Critical, now_ms()))
        .await
        .unwrap();
    until_status(&a, "db-alias", CheckStatus::Critical).await;
    s.write(register_db(CheckStatus::Passing, now_ms()))
        .await
        .unwrap();
    until_status(&a, "db-alias", CheckStatus::Passing).await;
}

#[tokio::test]
async fn a_node_alias_on_its_own_node_ignores_itself_and_sees_the_others() {
    let (_s, a) = agent().await;
    // The alias check is one of this node's checks: were it counted, its own first status
    // (critical) would keep it critical.
    let alias = check(json!({"Name": "self-alias", "AliasNode": NODE}));
    a.register_check(alias, Source::Remote).await.unwrap();
    until_status(&a, "self-alias", CheckStatus::Passing).await;
    let ttl = check(json!({"Name": "ttl", "TTL": "30s"}));
    a.register_check(ttl, Source::Remote).await.unwrap();
    // The TTL check starts critical; once anti-entropy wrote it, the alias follows.
    until_status(&a, "self-alias", CheckStatus::Critical).await;
}
