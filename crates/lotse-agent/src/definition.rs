//! Service and check definitions as the agent holds them: what a registration (HTTP body or
//! config file block) asked for, validated, with Consul's defaults filled in.
//!
//! ```text
//!   JSON body / config block ──decode──► ServiceDefinition ──► local state ──► catalog rows
//!                                          └─ CheckDefinition ──► check runner (probe kind)
//! ```
//!
//! [`decode`] turns request JSON into these types with Consul's key rules (case-insensitive,
//! snake_case aliases) and its validation texts.

pub mod decode;

use std::collections::BTreeMap;
use std::time::Duration;

use lotse_core::catalog::{CheckStatus, Service};

/// What a check probes, and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CheckKind {
    Http {
        url: String,
        method: String,
        header: BTreeMap<String, Vec<String>>,
        body: String,
        tls_server_name: String,
        tls_skip_verify: bool,
        disable_redirects: bool,
    },
    Tcp {
        addr: String,
    },
    Udp {
        addr: String,
    },
    /// Passes only while something reports in within the TTL.
    Ttl,
    /// `args` run without a shell.
    Script {
        args: Vec<String>,
    },
    Grpc {
        target: String,
        use_tls: bool,
        tls_skip_verify: bool,
    },
    H2Ping {
        addr: String,
        use_tls: bool,
        tls_skip_verify: bool,
    },
    /// Mirrors the health of a service (on `node`, or on this agent when empty) or of a node.
    Alias {
        node: String,
        service: String,
    },
}

impl CheckKind {
    /// Consul's `Type` for the catalog.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Ttl => "ttl",
            CheckKind::Script { .. } => "script",
            CheckKind::Grpc { .. } => "grpc",
            CheckKind::H2Ping { .. } => "h2ping",
            CheckKind::Alias { .. } => "alias",
        }
    }
}

/// A check as registered with this agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckDefinition {
    /// Defaults: `service:<service id>` (`:<n>` when a service has several), else the name.
    pub id: String,
    pub name: String,
    pub notes: String,
    /// The local service this check belongs to (empty: a node-level check).
    pub service_id: String,
    /// The status before the first result (critical unless the registration said otherwise).
    pub initial_status: CheckStatus,
    pub kind: CheckKind,
    /// Zero for TTL and alias checks; at least 1 s otherwise (Consul clamps).
    pub interval: Duration,
    /// The probe's timeout (Consul's default: 10 s; for HTTP/TCP/... at most the interval).
    pub timeout: Option<Duration>,
    /// TTL checks only.
    pub ttl: Duration,
    /// Remove the check's service once the check has been critical this long (at least 1 min).
    pub deregister_critical_service_after: Option<Duration>,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
    /// Bytes of output kept (Consul's default: 4 KiB).
    pub output_max_size: usize,
    /// The ACL token the check was registered with (never logged).
    pub token: String,
}

/// A service as registered with this agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceDefinition {
    /// The catalog row, with defaults filled (ID from the name, weights, tagged addresses).
    pub service: Service,
    /// Its checks, IDs already assigned.
    pub checks: Vec<CheckDefinition>,
    /// The sidecar proxy service derived from `Connect.SidecarService`, kept for the proxy
    /// issue; registered beside its parent.
    pub sidecar: Option<Box<ServiceDefinition>>,
    pub token: String,
}

/// Why a definition was refused. `status` is the HTTP status Consul answers with; the text is
/// Consul's (e.g. `Invalid check: TTL must be > 0 for TTL checks`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DefinitionError {
    pub status: u16,
    pub message: String,
}

impl DefinitionError {
    pub fn bad_request(message: impl Into<String>) -> DefinitionError {
        DefinitionError {
            status: 400,
            message: message.into(),
        }
    }
}
