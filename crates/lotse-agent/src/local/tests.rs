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

#[test]
fn changes_mark_entries_out_of_sync_and_versions_guard_the_mark() {
    let mut s = LocalState::default();
    s.add_check(row("c", "", CheckStatus::Passing), None, Source::Remote);
    let v = s.checks["c"].version;
    // A result arrives while the write of version `v` is in flight...
    assert!(s.update_check("c", CheckStatus::Critical, "down".into(), None));
    // ...so the write's success must not mark the newer state as synced.
    s.mark_check_synced("c", v);
    assert!(!s.checks["c"].in_sync);
    let v2 = s.checks["c"].version;
    s.mark_check_synced("c", v2);
    assert!(s.checks["c"].in_sync);
    // The same result again is no change at all.
    assert!(!s.update_check("c", CheckStatus::Critical, "down".into(), None));
    assert!(s.checks["c"].in_sync);
}

#[test]
fn re_registering_a_check_keeps_its_status_and_output() {
    let mut s = LocalState::default();
    s.add_check(row("c", "", CheckStatus::Critical), None, Source::Remote);
    s.update_check("c", CheckStatus::Passing, "fine".into(), None);
    let mut again = row("c", "", CheckStatus::Critical);
    again.notes = "new notes".into();
    s.add_check(again, None, Source::Remote);
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
    s.add_check(
        row("c1", "web1", CheckStatus::Passing),
        None,
        Source::Remote,
    );
    s.add_check(row("node", "", CheckStatus::Passing), None, Source::Remote);
    assert!(s.remove_service("web1"));
    assert!(!s.remove_service("web1"));
    assert!(s.deleted_services.contains("web1"));
    assert!(!s.checks.contains_key("c1") && s.checks.contains_key("node"));
    // Registering it again forgets the pending deletion.
    s.add_service(service("web1"), Source::Remote);
    assert!(!s.deleted_services.contains("web1"));
}

#[test]
fn output_only_changes_wait_but_status_changes_do_not() {
    let mut s = LocalState::default();
    s.add_check(row("c", "", CheckStatus::Passing), None, Source::Remote);
    let later = Instant::now() + Duration::from_secs(60);
    s.update_check("c", CheckStatus::Passing, "new output".into(), Some(later));
    assert_eq!(s.earliest_deferral(), Some(later));
    s.update_check("c", CheckStatus::Warning, "worse".into(), Some(later));
    assert_eq!(s.checks["c"].output_deferred_until, None);
    assert_eq!(s.earliest_deferral(), None);
}

#[test]
fn long_critical_checks_mark_their_service_for_reaping() {
    let mut s = LocalState::default();
    s.add_service(service("web1"), Source::Remote);
    let def = CheckDefinition {
        id: "c".into(),
        name: "c".into(),
        notes: String::new(),
        service_id: "web1".into(),
        initial_status: CheckStatus::Critical,
        kind: crate::definition::CheckKind::Ttl,
        interval: Duration::ZERO,
        timeout: None,
        ttl: Duration::from_secs(10),
        deregister_critical_service_after: Some(Duration::from_secs(60)),
        success_before_passing: 0,
        failures_before_warning: 0,
        failures_before_critical: 0,
        output_max_size: 4096,
        token: String::new(),
    };
    s.add_check(
        row("c", "web1", CheckStatus::Critical),
        Some(def),
        Source::Remote,
    );
    let now = Instant::now();
    assert!(s.services_to_reap(now).is_empty());
    assert_eq!(
        s.services_to_reap(now + Duration::from_secs(61)),
        vec!["web1".to_string()]
    );
    // Passing again clears the clock.
    s.update_check("c", CheckStatus::Passing, String::new(), None);
    assert!(s
        .services_to_reap(now + Duration::from_secs(600))
        .is_empty());
}
