//! # Health probes: one run of one check, as Consul's agent runs it
//!
//! Each probe is a plain async function from a check definition and a timeout to a
//! [`ProbeResult`]: a [`Status`] and the output text that the catalog shows. The check
//! scheduler owns intervals, jitter, `success_before_passing`/`failures_before_critical` and
//! storage; a probe only probes, once, and never runs past its timeout.
//!
//! ```text
//!  scheduler ──(definition, timeout)──► probe::{http,tcp,udp,script,grpc,h2ping}
//!                                            │
//!            tcp::dial ◄─────────────────────┤ (http, grpc, h2ping dial through it)
//!            tls::connect ◄──────────────────┘ (rustls + ring; system roots or skip-verify)
//!                                            │
//!  scheduler ◄──────── ProbeResult { status, output } (output formatted as Consul does)
//! ```
//!
//! Semantics follow hashicorp/consul `agent/checks/check.go` (`CheckHTTP`, `CheckTCP`,
//! `CheckUDP`, `CheckMonitor`, `CheckH2PING`) and `agent/checks/grpc.go`; the output texts
//! are Consul's, including the Go runtime's error wording where it is cheap to reproduce
//! (`consul_text`), so scripts and dashboards that grep check output keep working.
//!
//! Layout: one file per kind, plus `tls` (the shared rustls client config), `tail` (the
//! bounded output buffer) and `consul_text` (Go-style durations and error texts).
//!
//! Invariants every probe keeps, whatever the peer does:
//! * it returns within `timeout` (plus scheduling slack): every await is under one deadline;
//! * it holds at most [`OUTPUT_LIMIT`] bytes of peer- or process-supplied output;
//! * nothing a peer sends can panic it.

mod consul_text;
mod grpc;
mod h2ping;
mod http;
mod script;
mod tail;
mod tcp;
mod tls;
mod udp;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::grpc::{grpc, GrpcProbe};
pub use self::h2ping::{h2ping, H2PingProbe};
pub use self::http::{http, validate_http_url, HttpProbe};
pub use self::script::script;
pub use self::tcp::tcp;
pub use self::udp::udp;

/// Most bytes of body (HTTP) or of combined stdout+stderr (script) a probe keeps: Consul's
/// `DefaultBufSize`. Like Consul's circular buffer, the *last* bytes are kept.
pub const OUTPUT_LIMIT: usize = 4096;

/// The timeout a zero `timeout` stands for: Consul's default for network checks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The timeout a zero `timeout` stands for in script checks: Consul's `CheckMonitor` default.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// A check's health: the catalog's own status type, so a result needs no translation.
pub use lotse_core::catalog::CheckStatus as Status;

/// What one run of a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub status: Status,
    /// Human-readable output, worded as Consul words it.
    pub output: String,
}

impl ProbeResult {
    fn passing(output: impl Into<String>) -> Self {
        ProbeResult {
            status: Status::Passing,
            output: output.into(),
        }
    }

    fn warning(output: impl Into<String>) -> Self {
        ProbeResult {
            status: Status::Warning,
            output: output.into(),
        }
    }

    fn critical(output: impl Into<String>) -> Self {
        ProbeResult {
            status: Status::Critical,
            output: output.into(),
        }
    }
}

/// A zero timeout means "unset": Consul then uses its default.
fn effective_timeout(timeout: Duration, default: Duration) -> Duration {
    if timeout.is_zero() {
        default
    } else {
        timeout
    }
}
