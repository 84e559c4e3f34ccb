//! Random edit sequences against the indexes: after every step they equal what a scan of the
//! maps gives, and what anti-entropy's plan sees as dirty is exactly the entries with
//! `!in_sync` (the definition before the indexes existed).

use proptest::prelude::*;

use super::*;

const SERVICES: [&str; 3] = ["s0", "s1", "s2"];
/// A check's service: node-level, a local service, or one never registered locally.
const CHECK_SERVICES: [&str; 5] = ["", "s0", "s1", "s2", "gone"];
const CHECKS: [&str; 5] = ["c0", "c1", "c2", "c3", "c4"];
const STATUSES: [CheckStatus; 3] = [
    CheckStatus::Passing,
    CheckStatus::Warning,
    CheckStatus::Critical,
];

#[derive(Debug, Clone)]
enum Op {
    AddService {
        svc: usize,
        tags: usize,
    },
    RemoveService {
        svc: usize,
    },
    AddCheck {
        check: usize,
        svc: usize,
        status: usize,
    },
    RemoveCheck {
        check: usize,
    },
    UpdateCheck {
        check: usize,
        status: usize,
        output: usize,
        defer: Option<u64>,
        stale: bool,
    },
    MarkServiceSynced {
        svc: usize,
        stale: bool,
    },
    MarkCheckSynced {
        check: usize,
        stale: bool,
    },
    MarkServiceOut {
        svc: usize,
    },
    MarkCheckOut {
        check: usize,
    },
    AdoptTags {
        svc: usize,
        tags: usize,
    },
    ReleaseDeferred,
    Advance {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let svc = 0..SERVICES.len();
    let check = || 0..CHECKS.len();
    prop_oneof![
        (svc.clone(), 0..3usize).prop_map(|(svc, tags)| Op::AddService { svc, tags }),
        svc.clone().prop_map(|svc| Op::RemoveService { svc }),
        (check(), 0..CHECK_SERVICES.len(), 0..STATUSES.len())
            .prop_map(|(check, svc, status)| Op::AddCheck { check, svc, status }),
        check().prop_map(|check| Op::RemoveCheck { check }),
        (
            check(),
            0..STATUSES.len(),
            0..3usize,
            proptest::option::of(0..20u64),
            any::<bool>()
        )
            .prop_map(|(check, status, output, defer, stale)| Op::UpdateCheck {
                check,
                status,
                output,
                defer,
                stale
            }),
        (svc.clone(), any::<bool>()).prop_map(|(svc, stale)| Op::MarkServiceSynced { svc, stale }),
        (check(), any::<bool>()).prop_map(|(check, stale)| Op::MarkCheckSynced { check, stale }),
        svc.clone().prop_map(|svc| Op::MarkServiceOut { svc }),
        check().prop_map(|check| Op::MarkCheckOut { check }),
        (svc, 0..3usize).prop_map(|(svc, tags)| Op::AdoptTags { svc, tags }),
        Just(Op::ReleaseDeferred),
        (0..15u64).prop_map(|secs| Op::Advance { secs }),
    ]
}

fn tags(i: usize) -> Vec<String> {
    (0..i).map(|t| format!("t{t}")).collect()
}

fn apply(s: &mut LocalState, op: &Op, now: &mut Instant) {
    match *op {
        Op::AddService { svc, tags: t } => {
            let mut def = service(SERVICES[svc]);
            def.service.tags = tags(t);
            s.add_service(def, Source::Remote);
        }
        Op::RemoveService { svc } => {
            s.remove_service(SERVICES[svc]);
        }
        Op::AddCheck { check, svc, status } => {
            let r = row(CHECKS[check], CHECK_SERVICES[svc], STATUSES[status]);
            s.add_check(r, None, Source::Remote, *now);
        }
        Op::RemoveCheck { check } => {
            s.remove_check(CHECKS[check]);
        }
        Op::UpdateCheck {
            check,
            status,
            output,
            defer,
            stale,
        } => {
            let id = CHECKS[check];
            let from = s.checks.get(id).map(|c| c.registration - u64::from(stale));
            let defer_until = defer.map(|d| *now + Duration::from_secs(d));
            s.update_check(
                id,
                from,
                STATUSES[status],
                format!("out{output}"),
                defer_until,
                *now,
            );
        }
        Op::MarkServiceSynced { svc, stale } => {
            let id = SERVICES[svc];
            if let Some(v) = s.services.get(id).map(|x| x.version - u64::from(stale)) {
                s.mark_service_synced(id, v);
            }
        }
        Op::MarkCheckSynced { check, stale } => {
            let id = CHECKS[check];
            if let Some(v) = s.checks.get(id).map(|x| x.version - u64::from(stale)) {
                s.mark_check_synced(id, v);
            }
        }
        Op::MarkServiceOut { svc } => {
            s.mark_service_out_of_sync(SERVICES[svc]);
        }
        Op::MarkCheckOut { check } => {
            s.mark_check_out_of_sync(CHECKS[check]);
        }
        Op::AdoptTags { svc, tags: t } => s.adopt_remote_tags(SERVICES[svc], &tags(t)),
        Op::ReleaseDeferred => s.release_deferred(*now),
        Op::Advance { secs } => *now += Duration::from_secs(secs),
    }
}

/// What anti-entropy's plan reads through the indexes equals the old scans of the maps.
fn assert_plan_view_matches_scans(s: &LocalState) {
    let dirty_services: Vec<&String> = s.dirty_services().iter().collect();
    let scanned: Vec<&String> = s
        .services()
        .values()
        .filter(|x| !x.in_sync)
        .map(|x| &x.def.service.id)
        .collect();
    assert_eq!(dirty_services, scanned, "out-of-sync services");
    let dirty_checks: Vec<&String> = s.dirty_checks().iter().collect();
    let scanned: Vec<&String> = s
        .checks()
        .values()
        .filter(|c| !c.in_sync)
        .map(|c| &c.row.check_id)
        .collect();
    assert_eq!(dirty_checks, scanned, "out-of-sync checks");
    // Each service's out-of-sync checks, as the plan groups them into its registration.
    for sid in CHECK_SERVICES {
        let grouped: Vec<&String> = s
            .check_ids_of(sid)
            .filter(|id| s.dirty_checks().contains(*id))
            .collect();
        let scanned: Vec<&String> = s
            .checks()
            .values()
            .filter(|c| !c.in_sync && c.row.service_id == sid)
            .map(|c| &c.row.check_id)
            .collect();
        assert_eq!(grouped, scanned, "out-of-sync checks of {sid:?}");
        for with_node in [false, true] {
            let scanned: Vec<&HealthCheck> = s
                .checks()
                .values()
                .map(|c| &c.row)
                .filter(|c| c.service_id == sid || (with_node && c.service_id.is_empty()))
                .collect();
            assert_eq!(s.checks_of(sid, with_node), scanned, "checks_of({sid:?})");
        }
    }
    let earliest = s
        .checks()
        .values()
        .filter_map(|c| c.output_deferred_until)
        .min();
    assert_eq!(s.earliest_deferral(), earliest, "earliest deferral");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn indexes_match_the_maps_after_any_edit_sequence(ops in proptest::collection::vec(op(), 1..60)) {
        let mut s = LocalState::default();
        let mut now = Instant::now();
        for op in &ops {
            apply(&mut s, op, &mut now);
            s.assert_consistent();
            assert_plan_view_matches_scans(&s);
        }
    }
}
