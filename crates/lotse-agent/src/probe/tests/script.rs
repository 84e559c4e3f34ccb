//! Script probe: exit codes, merged output, truncation, timeout and group kill.

use std::time::{Duration, Instant};

use super::{assert_prompt, assert_result, QUICK, SHORT};
use crate::probe::{script, Status};

fn sh(command: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), command.into()]
}

#[tokio::test]
async fn exit_codes_map_as_nagios_plugins_do() {
    let r = script(&sh("echo all good"), QUICK).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (Status::Passing, "all good\n")
    );
    let r = script(&sh("echo degraded; exit 1"), QUICK).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (Status::Warning, "degraded\n")
    );
    let r = script(&sh("echo down; exit 2"), QUICK).await;
    assert_eq!((r.status, r.output.as_str()), (Status::Critical, "down\n"));
    let r = script(&sh("kill -9 $$"), QUICK).await;
    assert_eq!(r.status, Status::Critical);
}

#[tokio::test]
async fn stdout_and_stderr_interleave_in_one_output() {
    let r = script(&sh("echo one; echo two >&2; echo three"), QUICK).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (Status::Passing, "one\ntwo\nthree\n")
    );
}

#[tokio::test]
async fn large_output_keeps_the_tail_with_consuls_note() {
    let r = script(&sh("head -c 10000 /dev/zero | tr '\\0' a; echo END"), QUICK).await;
    assert_eq!(r.status, Status::Passing);
    assert!(
        r.output
            .starts_with("Captured 4096 of 10004 bytes\n...\naaa"),
        "{:.60}",
        r.output
    );
    assert!(r.output.ends_with("aaaEND\n"));
    assert_eq!(
        r.output.len(),
        "Captured 4096 of 10004 bytes\n...\n".len() + 4096
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    // The background sleep is a grandchild: only a process-group kill reaches it.
    let args = sh("sleep 30 & echo $!; wait");
    let started = Instant::now();
    let r = script(&args, SHORT).await;
    assert_prompt(started, SHORT);
    assert_result(&r, Status::Critical, "Timed out (300ms) running check\n\n");
    let pid = r
        .output
        .rsplit("\n\n")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(pid.parse::<u32>().is_ok(), "no pid in {:?}", r.output);
    assert!(
        gone_or_zombie(&pid).await,
        "grandchild {pid} survived the timeout"
    );
}

/// Whether a process has died (a zombie, if its new parent has not reaped it yet, is dead).
async fn gone_or_zombie(pid: &str) -> bool {
    for _ in 0..50 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|s| s.split_whitespace().next());
                if matches!(state, Some("Z") | Some("X")) {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn commands_that_cannot_start_are_critical_with_gos_wording() {
    let r = script(&["/no/such/check".to_owned()], QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        "fork/exec /no/such/check: no such file or directory",
    );
    let r = script(&["no-such-check-binary".to_owned()], QUICK).await;
    assert_result(
        &r,
        Status::Critical,
        "exec: \"no-such-check-binary\": executable file not found in $PATH",
    );
    let r = script(&[], QUICK).await;
    assert_result(&r, Status::Critical, "need an executable to run");
}
