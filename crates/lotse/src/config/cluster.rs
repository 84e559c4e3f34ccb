//! The merged cluster-membership keys turned into their final values, with Consul's defaults
//! (`agent/config/default.go`, the builder's server/client rules) and checks:
//!
//! - `encrypt`: base64 (Go's standard alphabet, padded) of a 16, 24 or 32-byte key; empty
//!   means no encryption. `encrypt_verify_incoming`/`_outgoing` default to true.
//! - `performance { raft_multiplier }`: 5 unless set (1 in `-dev`); Consul refuses anything
//!   outside 1..=10, an explicit 0 included.
//! - `leave_on_terminate` defaults to true on clients, `skip_leave_on_interrupt` on servers.
//! - `reconnect_timeout`: 72h when unset or 0. Consul's documentation asks for at least 8h but
//!   its builder accepts less, so Lotse accepts it too and warns.
//! - `gossip_lan { }`: memberlist's `DefaultLANConfig`, or Consul's faster `-dev` timings.

use std::time::Duration;

use base64::Engine as _;

use super::partial::{Partial, PartialGossipLan};
use super::{invalid, ConfigError};

/// Consul's `consul.DefaultRaftMultiplier` and `MaxRaftMultiplier`.
pub const DEFAULT_RAFT_MULTIPLIER: u32 = 5;
pub const MAX_RAFT_MULTIPLIER: u32 = 10;

/// `autopilot { ... }` (Consul OSS keys; the Enterprise ones warn as unimplemented): the
/// server's own settings type, with Consul's defaults.
pub use lotse_server::autopilot::AutopilotConfig;

/// `gossip_lan { ... }`: the LAN failure detector's timings (memberlist's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipLanConfig {
    /// Members each gossip round sends to; default 3.
    pub gossip_nodes: u32,
    /// Time between gossip rounds; default 200ms (`-dev`: 100ms).
    pub gossip_interval: Duration,
    /// Time between failure probes; default 1s (`-dev`: 100ms).
    pub probe_interval: Duration,
    /// How long a probe waits for an ack before asking others; default 500ms (`-dev`: 100ms).
    pub probe_timeout: Duration,
    /// Scales how long a suspected member has to refute before it is declared dead;
    /// default 4 (`-dev`: 3).
    pub suspicion_mult: u32,
    /// Scales how many times a message is retransmitted; default 4.
    pub retransmit_mult: u32,
}

impl GossipLanConfig {
    /// memberlist's `DefaultLANConfig`, which Consul uses unless told otherwise.
    pub const LAN: GossipLanConfig = GossipLanConfig {
        gossip_nodes: 3,
        gossip_interval: Duration::from_millis(200),
        probe_interval: Duration::from_secs(1),
        probe_timeout: Duration::from_millis(500),
        suspicion_mult: 4,
        retransmit_mult: 4,
    };
}

impl Default for GossipLanConfig {
    fn default() -> Self {
        Self::LAN
    }
}

/// Consul's `-dev` defaults for these keys (its `DevSource`); files and flags still win.
pub(super) fn dev_defaults(p: &mut Partial) {
    p.performance.raft_multiplier = Some(1);
    p.gossip_lan.merge(&PartialGossipLan {
        gossip_interval: Some(Duration::from_millis(100)),
        probe_interval: Some(Duration::from_millis(100)),
        probe_timeout: Some(Duration::from_millis(100)),
        suspicion_mult: Some(3),
        ..PartialGossipLan::default()
    });
}

/// The final values, moved into `AgentConfig` by `config::finalize`.
pub(super) struct Cluster {
    pub encrypt: Option<Vec<u8>>,
    pub encrypt_verify_incoming: bool,
    pub encrypt_verify_outgoing: bool,
    pub raft_multiplier: u32,
    pub leave_drain_time: Duration,
    pub rpc_hold_timeout: Duration,
    pub reconnect_timeout: Duration,
    pub leave_on_terminate: bool,
    pub skip_leave_on_interrupt: bool,
    pub rejoin_after_leave: bool,
    pub retry_max: u32,
    pub raft_trailing_logs: u64,
    pub autopilot: AutopilotConfig,
    pub gossip_lan: GossipLanConfig,
}

const RECONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(72 * 3600);
const RECONNECT_TIMEOUT_MIN: Duration = Duration::from_secs(8 * 3600);

pub(super) fn finalize(
    p: &Partial,
    server: bool,
    warnings: &mut Vec<String>,
) -> Result<Cluster, ConfigError> {
    let encrypt = match p.encrypt.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(k) => {
            Some(decode_key(k).map_err(|e| invalid(format!("encrypt has invalid key: {e}")))?)
        }
    };

    let raft_multiplier = match p.performance.raft_multiplier {
        None => DEFAULT_RAFT_MULTIPLIER,
        Some(m) if (1..=i64::from(MAX_RAFT_MULTIPLIER)).contains(&m) => m as u32,
        Some(m) => {
            return Err(invalid(format!(
                "performance.raft_multiplier cannot be {m}. Must be between 1 and {MAX_RAFT_MULTIPLIER}"
            )))
        }
    };

    // Consul hands 0 to serf as "keep the default".
    let reconnect_timeout = p
        .reconnect_timeout
        .filter(|d| !d.is_zero())
        .unwrap_or(RECONNECT_TIMEOUT_DEFAULT);
    if reconnect_timeout < RECONNECT_TIMEOUT_MIN {
        warnings.push(format!(
            "reconnect_timeout = {reconnect_timeout:?} is below the documented minimum of 8h: \
             failed nodes are removed from the cluster sooner than Consul recommends"
        ));
    }

    let retry_max = p.retry_max.unwrap_or(0);
    let retry_max = u32::try_from(retry_max)
        .map_err(|_| invalid(format!("retry_max is too large: {retry_max}")))?;

    let a = &p.autopilot;
    let max_trailing_logs = a.max_trailing_logs.unwrap_or(250);
    let max_trailing_logs = u64::try_from(max_trailing_logs).map_err(|_| {
        invalid(format!(
            "autopilot.max_trailing_logs cannot be {max_trailing_logs}. Must be greater than or equal to zero"
        ))
    })?;
    let min_quorum = a.min_quorum.unwrap_or(0);
    let autopilot = AutopilotConfig {
        cleanup_dead_servers: a.cleanup_dead_servers.unwrap_or(true),
        last_contact_threshold: a
            .last_contact_threshold
            .unwrap_or(Duration::from_millis(200)),
        max_trailing_logs,
        min_quorum: u32::try_from(min_quorum)
            .map_err(|_| invalid(format!("autopilot.min_quorum is too large: {min_quorum}")))?,
        server_stabilization_time: a
            .server_stabilization_time
            .unwrap_or(Duration::from_secs(10)),
    };

    let g = &p.gossip_lan;
    let d = GossipLanConfig::LAN;
    let gossip_lan = GossipLanConfig {
        gossip_nodes: positive_count("gossip_lan.gossip_nodes", g.gossip_nodes, d.gossip_nodes)?,
        gossip_interval: positive(
            "gossip_lan.gossip_interval",
            g.gossip_interval,
            d.gossip_interval,
        )?,
        probe_interval: positive(
            "gossip_lan.probe_interval",
            g.probe_interval,
            d.probe_interval,
        )?,
        probe_timeout: positive("gossip_lan.probe_timeout", g.probe_timeout, d.probe_timeout)?,
        suspicion_mult: positive_count(
            "gossip_lan.suspicion_mult",
            g.suspicion_mult,
            d.suspicion_mult,
        )?,
        retransmit_mult: positive_count(
            "gossip_lan.retransmit_mult",
            g.retransmit_mult,
            d.retransmit_mult,
        )?,
    };

    Ok(Cluster {
        encrypt,
        encrypt_verify_incoming: p.encrypt_verify_incoming.unwrap_or(true),
        encrypt_verify_outgoing: p.encrypt_verify_outgoing.unwrap_or(true),
        raft_multiplier,
        leave_drain_time: p
            .performance
            .leave_drain_time
            .unwrap_or(Duration::from_secs(5)),
        rpc_hold_timeout: p
            .performance
            .rpc_hold_timeout
            .unwrap_or(Duration::from_secs(7)),
        reconnect_timeout,
        // Consul: a client leaves on SIGTERM, a server stays a member (its Raft peers keep it).
        leave_on_terminate: p.leave_on_terminate.unwrap_or(!server),
        skip_leave_on_interrupt: p.skip_leave_on_interrupt.unwrap_or(server),
        rejoin_after_leave: p.rejoin_after_leave.unwrap_or(false),
        retry_max,
        raft_trailing_logs: p.raft_trailing_logs.unwrap_or(10_240),
        autopilot,
        gossip_lan,
    })
}

/// A gossip timing: a zero would make memberlist spin or never probe.
fn positive(key: &str, v: Option<Duration>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(d) if d.is_zero() => Err(invalid(format!("{key} cannot be 0s. Must be positive"))),
        Some(d) => Ok(d),
    }
}

fn positive_count(key: &str, v: Option<u64>, default: u32) -> Result<u32, ConfigError> {
    match v {
        None => Ok(default),
        Some(0) => Err(invalid(format!("{key} cannot be 0. Must be positive"))),
        Some(n) => u32::try_from(n).map_err(|_| invalid(format!("{key} is too large: {n}"))),
    }
}

/// Go's `base64.StdEncoding.DecodeString` (which skips `\r` and `\n`) followed by
/// memberlist's `ValidateKey`; the error texts are theirs.
pub fn decode_key(key: &str) -> Result<Vec<u8>, String> {
    use base64::DecodeError;
    let clean: String = key.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| {
            // Go reports the offending byte, or for a short final quantum where it starts.
            let at = match e {
                DecodeError::InvalidByte(i, _) | DecodeError::InvalidLastSymbol(i, _) => i,
                DecodeError::InvalidLength(n) => n / 4 * 4,
                DecodeError::InvalidPadding => clean.len().saturating_sub(1) / 4 * 4,
            };
            format!("illegal base64 data at input byte {at}")
        })?;
    if ![16, 24, 32].contains(&bytes.len()) {
        return Err("key size must be 16, 24 or 32 bytes".to_string());
    }
    Ok(bytes)
}
