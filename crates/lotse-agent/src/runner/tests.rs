use super::*;
use lotse_core::catalog::CheckStatus::{Critical, Passing, Warning};

fn thresholds(pass: u32, warn: u32, crit: u32) -> Thresholds {
    Thresholds {
        success_before_passing: pass,
        failures_before_warning: warn,
        failures_before_critical: crit,
        successes: pass,
        failures: crit,
    }
}

#[test]
fn without_thresholds_every_result_is_reported() {
    let mut t = thresholds(0, 0, 0);
    assert_eq!(t.judge(Passing), Some(Passing));
    assert_eq!(t.judge(Critical), Some(Critical));
    assert_eq!(t.judge(Warning), Some(Warning));
}

#[test]
fn the_first_result_is_reported_at_once() {
    let mut t = thresholds(3, 2, 3);
    assert_eq!(t.judge(Critical), Some(Critical));
    let mut t = thresholds(3, 2, 3);
    assert_eq!(t.judge(Passing), Some(Passing));
}

#[test]
fn flapping_is_damped_by_the_thresholds() {
    let mut t = thresholds(2, 1, 3);
    assert_eq!(t.judge(Passing), Some(Passing));
    // Failures: warning after 1, critical after 3.
    assert_eq!(t.judge(Critical), Some(Warning));
    assert_eq!(t.judge(Critical), Some(Warning));
    assert_eq!(t.judge(Critical), Some(Critical));
    // Successes: one is not enough to pass again; two are.
    assert_eq!(t.judge(Passing), None);
    assert_eq!(t.judge(Passing), Some(Passing));
    // A failure in between restarts the count.
    assert_eq!(t.judge(Critical), Some(Warning));
    assert_eq!(t.judge(Passing), None);
}

fn check(id: &str, service: &str, status: CheckStatus) -> HealthCheck {
    HealthCheck {
        service_id: service.into(),
        status,
        output: format!("{id} out"),
        ..HealthCheck::new("n1", id, id)
    }
}

#[test]
fn alias_takes_the_worst_of_node_and_service_checks() {
    let node = check("serfHealth", "", Passing);
    let web = check("web-check", "web", Warning);
    let other = check("db-check", "db", Critical);
    let (s, out) = alias_status(&[&node, &web, &other], "web", true, None);
    assert_eq!(s, Warning);
    assert!(
        out.contains("web-check") && out.contains("web-check out"),
        "{out}"
    );
    let (s, out) = alias_status(&[&node], "web", true, None);
    assert_eq!((s, out.as_str()), (Passing, "All checks passing."));
    let (s, out) = alias_status(&[], "web", true, None);
    assert_eq!((s, out.as_str()), (Passing, "No checks found."));
    let (s, out) = alias_status(&[&node], "web", false, None);
    assert_eq!((s, out.as_str()), (Critical, "Service not found"));
    let bad_node = check("serfHealth", "", Critical);
    assert_eq!(
        alias_status(&[&bad_node, &web], "web", true, None).0,
        Critical
    );
}

#[test]
fn a_node_level_alias_check_does_not_alias_itself() {
    // The alias check sits on the node it watches, critical until its first result: were it
    // counted, it would stay critical however healthy the service is.
    let own = check("alias-web", "", Critical);
    let web = check("web-check", "web", Passing);
    let (s, _) = alias_status(&[&own, &web], "web", true, Some("alias-web"));
    assert_eq!(s, Passing);
    // Watching another node, a check of the same ID there is not itself.
    assert_eq!(alias_status(&[&own, &web], "web", true, None).0, Critical);
}

#[test]
fn an_alias_check_backs_off_as_consul_does() {
    let waits: Vec<u64> = (1..=10).map(|n| alias_backoff(n).as_secs()).collect();
    assert_eq!(waits, vec![0, 0, 0, 2, 4, 8, 16, 32, 60, 60]);
}
