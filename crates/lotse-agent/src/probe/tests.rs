//! Probe tests: every probe against small servers started in-process on 127.0.0.1
//! ephemeral ports ([`servers`]). Timeouts are a few hundred milliseconds so the suite stays
//! fast; each test asserts the status and the part of Consul's output a user would read.

mod grpc;
mod h2ping;
mod http;
mod script;
mod servers;
mod tcp_udp;

use std::time::{Duration, Instant};

use super::{ProbeResult, Status};

/// The timeout the tests give probes that are expected to answer at once.
const QUICK: Duration = Duration::from_secs(5);
/// The timeout the tests give probes that are expected to run into it.
const SHORT: Duration = Duration::from_millis(300);

#[track_caller]
fn assert_result(r: &ProbeResult, status: Status, output_part: &str) {
    assert_eq!(r.status, status, "output: {}", r.output);
    assert!(
        r.output.contains(output_part),
        "{output_part:?} not in output {:?}",
        r.output
    );
}

/// Asserts that a probe expected to time out did so promptly.
#[track_caller]
fn assert_prompt(started: Instant, timeout: Duration) {
    let took = started.elapsed();
    assert!(took >= timeout, "returned before its timeout: {took:?}");
    assert!(
        took < timeout + Duration::from_millis(700),
        "overran its timeout: {took:?}"
    );
}

#[test]
fn status_names_are_consuls() {
    assert_eq!(
        [Status::Passing, Status::Warning, Status::Critical].map(Status::as_str),
        ["passing", "warning", "critical"]
    );
}
