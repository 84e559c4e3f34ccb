//! Edits that overlap: runners of replaced or removed checks, concurrent registrations, TTL
//! reports against expiry, the reaper against a re-registration, the agent going away.

use tokio::time::{sleep, Instant};

use super::*;
use crate::local::Source;
use crate::persist::Persist;

#[tokio::test]
async fn a_runner_of_a_replaced_or_removed_check_cannot_report() {
    let (s, a) = agent().await;
    a.register_check(check(json!({"Name": "c", "TTL": "30s"})), Source::Remote)
        .await
        .unwrap();
    let old = registration(&a, "c");
    a.register_check(check(json!({"Name": "c", "TTL": "60s"})), Source::Remote)
        .await
        .unwrap();
    let new = registration(&a, "c");
    // The old runner, finishing a probe as it is replaced, reports: dropped.
    a.record_result("c", old, CheckStatus::Passing, "stale".into(), false);
    assert_eq!(
        status(local_check(&a, "c")).unwrap().0,
        CheckStatus::Critical
    );
    // One runner, of the registration the state holds.
    assert_eq!(a.runners().len(), 1);
    assert_eq!(a.runners()["c"].registration, new);

    a.deregister_check("c").await.unwrap();
    assert!(a.runners().is_empty());
    // The runner of the removed check reports late: the check stays gone.
    a.record_result("c", new, CheckStatus::Passing, "late".into(), false);
    assert!(local_check(&a, "c").is_none());
    a.sync_changes().await.unwrap();
    assert!(catalog_check(&s, "c").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_id_leave_state_runner_and_disk_agreeing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_s, a) = agent_with(AgentOptions {
        data_dir: Some(dir.path().into()),
        ..AgentOptions::default()
    })
    .await;
    for _ in 0..20 {
        let ttl = check(json!({"ID": "c", "Name": "ttl", "TTL": "30s"}));
        let tcp = check(json!({"ID": "c", "Name": "tcp", "TCP": "127.0.0.1:1", "Interval": "1h"}));
        let (a1, a2) = (a.clone(), a.clone());
        let one = tokio::spawn(async move { a1.register_check(ttl, Source::Remote).await });
        let two = tokio::spawn(async move { a2.register_check(tcp, Source::Remote).await });
        one.await.unwrap().unwrap();
        two.await.unwrap().unwrap();
        let (def, reg) = {
            let st = a.state();
            let c = &st.checks()["c"];
            (c.def.clone(), c.registration)
        };
        assert_eq!(a.runners()["c"].registration, reg);
        let on_disk = Persist::open(dir.path()).unwrap().load_checks();
        assert_eq!(on_disk.len(), 1);
        assert_eq!(on_disk[0].definition, def, "disk and memory disagree");
    }
}

#[tokio::test]
async fn a_ttl_check_expires_only_when_no_report_came_within_its_ttl() {
    let (s, a) = agent().await;
    a.register_check(check(json!({"Name": "t", "TTL": "10s"})), Source::Remote)
        .await
        .unwrap();
    // Paused, the clock jumps to the next timer whenever the runtime idles, as it does while
    // a write waits on the raft log's thread: with the server stopped, writes fail at once
    // (and the agent keeps going locally), so the clock moves only with the test's sleeps.
    s.shutdown().await;
    tokio::time::pause();
    let secs = |n| Duration::from_secs(n);
    a.ttl_update("t", CheckStatus::Passing, "ok").await.unwrap();
    sleep(secs(7)).await;
    a.ttl_update("t", CheckStatus::Passing, "ok").await.unwrap();
    sleep(secs(7)).await;
    assert_eq!(
        status(local_check(&a, "t")).unwrap().0,
        CheckStatus::Passing
    );
    sleep(secs(4)).await;
    let expired = Some((
        CheckStatus::Critical,
        "TTL expired (last output before timeout follows): ok".to_string(),
    ));
    assert_eq!(status(local_check(&a, "t")), expired);

    // Registered again (its runner restarts, its clock too), then a report at once.
    a.register_check(check(json!({"Name": "t", "TTL": "10s"})), Source::Remote)
        .await
        .unwrap();
    a.ttl_update("t", CheckStatus::Passing, "back")
        .await
        .unwrap();
    sleep(secs(9)).await;
    assert_eq!(
        status(local_check(&a, "t")).unwrap().0,
        CheckStatus::Passing
    );
    sleep(secs(2)).await;
    assert_eq!(
        status(local_check(&a, "t")).unwrap().0,
        CheckStatus::Critical
    );
}

/// Moves the tokio clock forward by `by` at once, then lets it run in real time again.
async fn jump(by: Duration) {
    tokio::time::pause();
    sleep(by).await;
    tokio::time::resume();
}

#[tokio::test]
async fn the_reaper_spares_a_service_registered_again_since_it_looked() {
    let (s, a) = agent_with(AgentOptions {
        // The test reaps by hand.
        check_reap_interval: Duration::from_secs(24 * 3600),
        ..AgentOptions::default()
    })
    .await;
    let doomed =
        json!({"Name": "web", "Check": {"TTL": "10s", "DeregisterCriticalServiceAfter": "1m"}});
    a.register_service(service(doomed.clone()), false, Source::Remote)
        .await
        .unwrap();
    // The clock jumps while nothing is written, and runs again for the writes: with a paused
    // clock, a write waiting on the log's fsync thread (real time) would see its timeout
    // pass at once.
    jump(Duration::from_secs(61)).await;
    let listed = a.state().services_to_reap(Instant::now());
    assert_eq!(listed, vec!["web".to_string()]);
    // Registered again before the reaper gets to it, no longer to be reaped.
    let spared = service(json!({"Name": "web", "Check": {"TTL": "10s"}}));
    a.register_service(spared, true, Source::Remote)
        .await
        .unwrap();
    a.reap_these(listed).await;
    assert!(a.service("web").is_some());
    assert!(catalog_service(&s, "web").is_some());

    // What is still to be reaped is.
    let db = json!({"Name": "db", "Check": {"TTL": "10s", "DeregisterCriticalServiceAfter": "1m"}});
    a.register_service(service(db), false, Source::Remote)
        .await
        .unwrap();
    jump(Duration::from_secs(61)).await;
    a.reap().await;
    assert!(a.service("db").is_none());
    assert!(catalog_service(&s, "db").is_none());
    assert!(a.service("web").is_some());
}

#[tokio::test]
async fn dropping_the_agent_stops_what_it_started() {
    let (_s, a) = agent().await;
    a.register_check(check(json!({"Name": "t", "TTL": "10s"})), Source::Remote)
        .await
        .unwrap();
    let weak = Arc::downgrade(&a);
    drop(a);
    // Anti-entropy and the reaper hold the agent only while they work: it goes at once
    // (and its Drop aborts them), not at their next wake-up a minute later.
    for _ in 0..200 {
        if weak.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the agent is still alive: a task it spawned holds it");
}
