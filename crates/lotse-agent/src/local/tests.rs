mod props;

use super::*;
use std::time::Duration;

use lotse_core::catalog::Service;

fn service(id: &str) -> ServiceDefinition {
    ServiceDefinition {
        service: Service {
            id: id.into(),
            name: "web".into(),
            ..Default::default()
        },
        checks: Vec::new(),
        sidecar: None,
        token: String::new(),
    }
}

fn row(id: &str, service_id: &str, status: CheckStatus) -> HealthCheck {
    HealthCheck {
        service_id: service_id.into(),
        status,
        ..HealthCheck::new("n1", id, id)
    }
}

fn ttl_def(id: &str, service_id: &str, ttl: Duration) -> CheckDefinition {
    CheckDefinition {
        id: id.into(),
        name: id.into(),
        notes: String::new(),
        service_id: service_id.into(),
        initial_status: CheckStatus::Critical,
        kind: CheckKind::Ttl,
        interval: Duration::ZERO,
        timeout: None,
        ttl,
        deregister_critical_service_after: None,
        success_before_passing: 0,
        failures_before_warning: 0,
        failures_before_critical: 0,
        output_max_size: 4096,
        token: String::new(),
    }
}

fn now() -> Instant {
    Instant::now()
}

/// A state with one node-level check `c` of `status`.
fn with_check(status: CheckStatus) -> LocalState {
    let mut s = LocalState::default();
    s.add_check(row("c", "", status), None, Source::Remote, now());
    s.assert_consistent();
    s
}

#[test]
fn changes_mark_entries_out_of_sync_and_versions_guard_the_mark() {
    let mut s = with_check(CheckStatus::Passing);
    let v = s.checks["c"].version;
    // A result arrives while the write of version `v` is in flight...
    assert!(s.update_check("c", None, CheckStatus::Critical, "down".into(), None, now()));
    s.assert_consistent();
    // ...so the write's success must not mark the newer state as synced.
    s.mark_check_synced("c", v);
    s.assert_consistent();
    assert!(!s.checks["c"].in_sync);
    let v2 = s.checks["c"].version;
    s.mark_check_synced("c", v2);
    s.assert_consistent();
    assert!(s.checks["c"].in_sync);
    // The same result again is no change at all.
    assert!(!s.update_check("c", None, CheckStatus::Critical, "down".into(), None, now()));
    s.assert_consistent();
    assert!(s.checks["c"].in_sync);
}

#[test]
fn re_registering_a_check_keeps_its_status_and_output() {
    let mut s = with_check(CheckStatus::Critical);
    s.update_check("c", None, CheckStatus::Passing, "fine".into(), None, now());
    s.assert_consistent();
    let mut again = row("c", "", CheckStatus::Critical);
    again.notes = "new notes".into();
    s.add_check(again, None, Source::Remote, now());
    s.assert_consistent();
    let c = &s.checks["c"].row;
    assert_eq!(
        (c.status, c.output.as_str(), c.notes.as_str()),
        (CheckStatus::Passing, "fine", "new notes")
    );
}

#[test]
fn removing_a_service_removes_its_checks_and_remembers_the_deletion() {
    let mut s = LocalState::default();
    s.add_service(service("web1"), Source::Remote);
    s.assert_consistent();
    s.add_check(
        row("c1", "web1", CheckStatus::Passing),
        None,
        Source::Remote,
        now(),
    );
    s.assert_consistent();
    s.add_check(
        row("node", "", CheckStatus::Passing),
        None,
        Source::Remote,
        now(),
    );
    s.assert_consistent();
    assert_eq!(s.remove_service("web1"), Some(vec!["c1".to_string()]));
    s.assert_consistent();
    assert_eq!(s.remove_service("web1"), None);
    s.assert_consistent();
    assert!(s.deleted_services.contains("web1"));
    assert!(!s.checks.contains_key("c1") && s.checks.contains_key("node"));
    // Registering it again forgets the pending deletion.
    s.add_service(service("web1"), Source::Remote);
    s.assert_consistent();
    assert!(!s.deleted_services.contains("web1"));
}

#[test]
fn output_only_changes_wait_in_sync_but_status_changes_do_not() {
    let mut s = with_check(CheckStatus::Passing);
    let v = s.checks["c"].version;
    s.mark_check_synced("c", v);
    s.assert_consistent();
    let t0 = now();
    let later = t0 + Duration::from_secs(60);
    assert!(s.update_check(
        "c",
        None,
        CheckStatus::Passing,
        "new output".into(),
        Some(later),
        t0
    ));
    s.assert_consistent();
    // Still in sync as far as anti-entropy goes, until the deferral falls due.
    assert!(s.checks["c"].in_sync);
    assert_eq!(s.earliest_deferral(), Some(later));
    s.release_deferred(t0 + Duration::from_secs(59));
    s.assert_consistent();
    assert!(s.checks["c"].in_sync);
    s.release_deferred(later);
    s.assert_consistent();
    assert!(!s.checks["c"].in_sync);
    assert_eq!(s.earliest_deferral(), None);

    s.update_check(
        "c",
        None,
        CheckStatus::Passing,
        "again".into(),
        Some(later),
        t0,
    );
    s.assert_consistent();
    s.update_check(
        "c",
        None,
        CheckStatus::Warning,
        "worse".into(),
        Some(later),
        t0,
    );
    s.assert_consistent();
    assert_eq!(s.checks["c"].output_deferred_until, None);
    assert!(!s.checks["c"].in_sync);
}

#[test]
fn a_report_from_a_replaced_or_removed_registration_is_dropped() {
    let mut s = LocalState::default();
    let old = s.add_check(
        row("c", "", CheckStatus::Critical),
        None,
        Source::Remote,
        now(),
    );
    s.assert_consistent();
    let new = s.add_check(
        row("c", "", CheckStatus::Critical),
        None,
        Source::Remote,
        now(),
    );
    s.assert_consistent();
    assert_ne!(old, new);
    // The old runner, still finishing a probe, reports: ignored.
    assert!(!s.update_check(
        "c",
        Some(old),
        CheckStatus::Passing,
        "old".into(),
        None,
        now()
    ));
    s.assert_consistent();
    assert!(s.update_check(
        "c",
        Some(new),
        CheckStatus::Passing,
        "new".into(),
        None,
        now()
    ));
    s.assert_consistent();
    // Removed: a late report does not bring it back.
    assert!(s.remove_check("c"));
    s.assert_consistent();
    assert!(!s.update_check(
        "c",
        Some(new),
        CheckStatus::Warning,
        "late".into(),
        None,
        now()
    ));
    s.assert_consistent();
    assert!(!s.update_check("c", None, CheckStatus::Warning, "late".into(), None, now()));
    s.assert_consistent();
    assert!(!s.checks.contains_key("c"));
}

#[test]
fn a_ttl_report_and_the_expiry_are_ordered_by_the_deadline() {
    let mut s = LocalState::default();
    let t0 = now();
    let ttl = Duration::from_secs(10);
    let reg = s.add_check(
        row("t", "", CheckStatus::Critical),
        Some(ttl_def("t", "", ttl)),
        Source::Remote,
        t0,
    );
    s.assert_consistent();
    assert_eq!(s.expire_ttl("t", reg, t0), TtlNext::Until(t0 + ttl));
    s.assert_consistent();
    // The runner wakes at the deadline, but a report landed just before it took the lock:
    // the report wins and the clock starts again.
    let t1 = t0 + ttl;
    assert_eq!(
        s.ttl_report("t", CheckStatus::Passing, "ok".into(), t1),
        Some(true)
    );
    assert_eq!(s.expire_ttl("t", reg, t1), TtlNext::Until(t1 + ttl));
    assert_eq!(s.checks["t"].row.status, CheckStatus::Passing);
    // No report within the TTL: critical, and the runner waits for the next report.
    let t2 = t1 + ttl;
    assert_eq!(s.expire_ttl("t", reg, t2), TtlNext::AwaitReport);
    let c = &s.checks["t"].row;
    assert_eq!(
        (c.status, c.output.as_str()),
        (
            CheckStatus::Critical,
            "TTL expired (last output before timeout follows): ok"
        )
    );
    assert_eq!(s.expire_ttl("t", reg, t2 + ttl), TtlNext::AwaitReport);
    // A report just after the expiry is not overwritten by it.
    s.ttl_report("t", CheckStatus::Passing, "back".into(), t2);
    assert_eq!(s.expire_ttl("t", reg, t2), TtlNext::Until(t2 + ttl));
    assert_eq!(s.checks["t"].row.status, CheckStatus::Passing);
    // A runner of an older registration stops.
    let again = s.add_check(
        row("t", "", CheckStatus::Critical),
        Some(ttl_def("t", "", ttl)),
        Source::Remote,
        t2,
    );
    assert_eq!(s.expire_ttl("t", reg, t2 + ttl), TtlNext::Stop);
    assert_eq!(s.expire_ttl("t", again, t2), TtlNext::Until(t2 + ttl));
    // Only TTL checks take reports.
    s.add_check(
        row("m", "", CheckStatus::Critical),
        None,
        Source::Remote,
        t2,
    );
    assert_eq!(
        s.ttl_report("m", CheckStatus::Passing, String::new(), t2),
        None
    );
}

#[test]
fn check_rows_follow_their_services_name_and_tags() {
    let mut s = LocalState::default();
    let mut web = service("web1");
    web.service.tags = vec!["a".into()];
    s.add_service(web.clone(), Source::Remote);
    s.add_check(
        row("c", "web1", CheckStatus::Passing),
        None,
        Source::Remote,
        now(),
    );
    assert_eq!(s.checks["c"].row.service_tags, vec!["a".to_string()]);
    web.service.tags = vec!["b".into()];
    s.add_service(web, Source::Remote);
    assert_eq!(s.checks["c"].row.service_tags, vec!["b".to_string()]);
    s.adopt_remote_tags("web1", &["c".to_string()]);
    assert_eq!(s.services["web1"].def.service.tags, vec!["c".to_string()]);
    assert_eq!(s.checks["c"].row.service_tags, vec!["c".to_string()]);
}

#[test]
fn long_critical_checks_mark_their_service_for_reaping() {
    let mut s = LocalState::default();
    s.add_service(service("web1"), Source::Remote);
    let def = CheckDefinition {
        deregister_critical_service_after: Some(Duration::from_secs(60)),
        ..ttl_def("c", "web1", Duration::from_secs(10))
    };
    let t0 = now();
    s.add_check(
        row("c", "web1", CheckStatus::Critical),
        Some(def),
        Source::Remote,
        t0,
    );
    assert!(s.services_to_reap(t0).is_empty());
    assert_eq!(
        s.services_to_reap(t0 + Duration::from_secs(61)),
        vec!["web1".to_string()]
    );
    // Passing again clears the clock.
    s.update_check("c", None, CheckStatus::Passing, String::new(), None, t0);
    assert!(s.services_to_reap(t0 + Duration::from_secs(600)).is_empty());
}
