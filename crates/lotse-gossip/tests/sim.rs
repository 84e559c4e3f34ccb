//! The simulation at 200 members: one death is noticed by everyone within memberlist-like
//! bounds, and 10% packet loss causes few false positives.

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

use std::time::Duration;

use lotse_gossip::sim::{run, SimConfig, SimReport};

#[test]
fn two_hundred_members_detect_one_failure() {
    let cfg = SimConfig::new(200, 0.0);
    let r = run(&cfg);
    println!("{}\n{}", SimReport::header(), r.row());
    assert_eq!(r.detected_by, 199, "{r:?}");
    // Probe period 1 s, suspicion 4 * log10(200) = 9.2 s, then dissemination.
    let all = r.all_detect.expect("everyone detected");
    assert!(
        all >= Duration::from_secs(5) && all < Duration::from_secs(20),
        "{r:?}"
    );
    assert_eq!(r.false_positive_members, 0, "{r:?}");
    assert!(
        r.bytes_per_member_sec > 0.0 && r.bytes_per_member_sec < 2_000.0,
        "{r:?}"
    );
}

#[test]
fn two_hundred_members_under_ten_percent_loss() {
    let r = run(&SimConfig::new(200, 0.1));
    println!("{}\n{}", SimReport::header(), r.row());
    assert_eq!(r.detected_by, 199, "{r:?}");
    // Indirect probes and suspicion keep false positives rare (< 5% of members).
    assert!(r.false_positive_members < 10, "{r:?}");
    // No live member was told it is down (see `notify_down_members` in config.rs).
    assert_eq!(r.rejoins, 0, "{r:?}");
}
