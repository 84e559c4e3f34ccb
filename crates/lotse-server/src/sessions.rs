//! Sessions: creation, renewal, destruction, and the leader's TTL timers.
//!
//! As in Consul, renewals are not written to the log: the leader keeps a deadline per TTL
//! session in memory and, when one passes (at twice the TTL, Consul's grace), appends a
//! `SessionDestroy` stamped with its clock. A new leader starts every timer afresh, so a
//! leadership change can only lengthen a session's life, never cut it short.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lotse_core::node::SERF_HEALTH;
use lotse_core::session::ServiceCheckRef;
use lotse_core::{Command, Session, SessionBehavior};
use tokio::time::Instant;

use crate::{now_ms, Server, ServerError};

/// Consul invalidates a session only after twice its TTL.
const TTL_MULTIPLIER: u32 = 2;
/// How often the leader looks for expired sessions.
const TICK: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct SessionTimers {
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl SessionTimers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.deadlines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arm(&self, id: &str, ttl: Duration) {
        self.lock()
            .insert(id.to_string(), Instant::now() + ttl * TTL_MULTIPLIER);
    }

    fn disarm(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Arms a timer for every listed session that has none (a create whose caller went away
    /// before the timer was armed, or a session written just before a leadership change).
    fn arm_missing(&self, sessions: &[(String, Duration)]) {
        let mut timers = self.lock();
        for (id, ttl) in sessions {
            timers
                .entry(id.clone())
                .or_insert_with(|| Instant::now() + *ttl * TTL_MULTIPLIER);
        }
    }

    /// Is the session's deadline still in the past (not renewed meanwhile)?
    fn still_expired(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|d| *d <= Instant::now())
    }

    fn expired(&self) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// A session as a client asks for it; `None` fields take Consul's defaults.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    pub name: String,
    pub node: Option<String>,
    pub lock_delay: Option<Duration>,
    pub behavior: SessionBehavior,
    /// The TTL as given (`"30s"`) and parsed.
    pub ttl: Option<(String, Duration)>,
    pub node_checks: Option<Vec<String>>,
    pub service_checks: Vec<ServiceCheckRef>,
}

/// Consul's default lock-delay.
pub const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);

/// Parses a Go-style TTL string (a duration); Consul's error texts are the caller's to produce.
impl Server {
    pub async fn session_create(&self, req: SessionRequest) -> Result<(u64, String), ServerError> {
        let id = uuid::Uuid::new_v4().to_string();
        let session = Session {
            id: id.clone(),
            name: req.name,
            node: req.node.unwrap_or_else(|| self.config.node_name.clone()),
            lock_delay_ns: req.lock_delay.unwrap_or(DEFAULT_LOCK_DELAY).as_nanos() as u64,
            behavior: req.behavior,
            ttl: req.ttl.as_ref().map(|(s, _)| s.clone()).unwrap_or_default(),
            node_checks: req
                .node_checks
                .unwrap_or_else(|| vec![SERF_HEALTH.to_string()]),
            service_checks: req.service_checks,
            create_index: 0,
            modify_index: 0,
        };
        // Armed before the write: if the caller goes away mid-write the timer still runs (and a
        // timer for a session that never got created only destroys nothing).
        if let Some(ttl) = req.ttl.as_ref().map(|(_, d)| *d).filter(|d| !d.is_zero()) {
            self.sessions.arm(&id, ttl);
        }
        match self
            .write(Command::SessionCreate {
                session,
                now_ms: now_ms(),
            })
            .await
        {
            Ok((index, _)) => Ok((index, id)),
            Err(e) => {
                self.sessions.disarm(&id);
                Err(e)
            }
        }
    }

    /// Renews a TTL session on the leader. `None` if there is no such session.
    pub async fn session_renew(&self, id: &str) -> Result<Option<(u64, Session)>, ServerError> {
        self.check_consistency(crate::Consistency::Default).await?;
        let found = self.peek(|s| {
            let (index, sess) = s.session_get(id);
            sess.cloned().map(|sess| (index, sess))
        });
        if let Some((_, s)) = &found {
            if let Some(ttl) = parse_ttl(&s.ttl) {
                self.sessions.arm(id, ttl);
            }
        }
        Ok(found)
    }

    pub async fn session_destroy(&self, id: &str) -> Result<u64, ServerError> {
        let (index, _) = self
            .write(Command::SessionDestroy {
                id: id.to_string(),
                now_ms: now_ms(),
            })
            .await?;
        self.sessions.disarm(id);
        Ok(index)
    }

    /// TTL sessions in the store, with their parsed TTLs.
    fn ttl_sessions(&self) -> Vec<(String, Duration)> {
        self.peek(|s| s.session_ttls())
            .into_iter()
            .filter_map(|(id, ttl)| parse_ttl(&ttl).map(|d| (id, d)))
            .collect()
    }

    /// Starts every TTL session's timer afresh (on gaining leadership).
    fn rearm_all_sessions(&self) {
        for (id, ttl) in self.ttl_sessions() {
            self.sessions.arm(&id, ttl);
        }
    }

    /// Arms a timer for TTL sessions that have none, if the sessions table moved since the
    /// last look (`seen` remembers its index).
    fn reconcile_timers(&self, seen: &mut u64) {
        let index = self.peek(|s| s.session_list().0);
        if index != *seen {
            self.sessions.arm_missing(&self.ttl_sessions());
            *seen = index;
        }
    }

    /// Destroys every expired session. The destroys are proposed together, so the write
    /// batcher folds them into a few log entries instead of one fsync each.
    async fn expire_sessions(self: &Arc<Self>) {
        let mut destroys = tokio::task::JoinSet::new();
        for id in self.sessions.expired() {
            let server = self.clone();
            destroys.spawn(async move {
                // A renewal may have landed since the deadline was read.
                if !server.sessions.still_expired(&id) {
                    return;
                }
                let destroyed = server
                    .leader_write(Command::SessionDestroy {
                        id: id.clone(),
                        now_ms: now_ms(),
                    })
                    .await;
                if destroyed.is_ok() {
                    server.sessions.disarm(&id);
                }
                match destroyed {
                    Ok(_) => {
                        server
                            .telemetry
                            .sessions_expired
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!(session = %id, "session ttl expired");
                    }
                    Err(e) => tracing::warn!(session = %id, error = %e, "cannot expire session"),
                }
            });
        }
        while destroys.join_next().await.is_some() {}
    }
}

/// Parses a stored TTL (`"30s"`, `"1m"`). Stored TTLs were validated on create.
pub fn parse_ttl(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    go_duration(s).filter(|d| !d.is_zero())
}

/// Parses Go's `time.ParseDuration` syntax: a sequence of decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h` (`"1h30m"`, `"1.5s"`, `"0"`). Negative durations are
/// refused.
pub fn go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * unit;
    }
    if !total.is_finite() || total > 1e10 {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

/// The leader's background work: register this node, keep session timers, expire sessions,
/// reap old tombstones.
pub(crate) async fn run_leader_duties(server: Weak<Server>) {
    // The term this loop last took office in (0: not leading).
    let mut led_term = 0;
    let mut sessions_seen = 0;
    let mut reaper = crate::tombstones::Reaper::default();
    let mut autopilot = crate::autopilot::AutopilotState::default();
    let mut resets_seen = 0;
    loop {
        tokio::time::sleep(if led_term != 0 {
            TICK
        } else {
            Duration::from_millis(20)
        })
        .await;
        let Some(s) = server.upgrade() else { return };
        if !s.is_leader() {
            led_term = 0;
            s.duty_term.store(0, std::sync::atomic::Ordering::Release);
            continue;
        }
        // A new term (even one won right after losing office between two ticks) starts over.
        let term = s.confirmed_term();
        if term == 0 || term != led_term {
            // Serve nothing that depends on the state until this term's first entry is applied
            // (Consul's readyForConsistentReads): before that the store may lag writes that
            // were acknowledged under an earlier term.
            if let Err(e) = s.catch_up_as_leader().await {
                tracing::warn!(error = %e, "new leader cannot confirm its state yet");
                continue;
            }
            let term = s.confirmed_term();
            if term == 0 {
                continue;
            }
            s.rearm_all_sessions();
            reaper.reset();
            sessions_seen = 0;
            led_term = term;
            s.duty_term
                .store(term, std::sync::atomic::Ordering::Release);
        }
        // Every tick, as Consul's leader reconciles members: if someone deregistered this
        // node or overwrote its serfHealth through the catalog API, it comes back. (A cheap
        // read when nothing is missing.)
        if let Err(e) = s.ensure_self_registered().await {
            tracing::warn!(error = %e, "cannot register this node");
        }
        if let Err(e) = s.reconcile_members().await {
            tracing::warn!(error = %e, "cannot reconcile gossip members into the catalog");
        }
        if let Err(e) = s.reconcile_raft(&mut autopilot).await {
            tracing::warn!(error = %e, "cannot reconcile the Raft configuration with the pool");
        }
        // A restore (or snapshot install) replaced every session: timers start afresh, as on
        // taking office.
        let resets = s.resets.load(std::sync::atomic::Ordering::Acquire);
        if resets != resets_seen {
            resets_seen = resets;
            s.rearm_all_sessions();
        }
        s.reconcile_timers(&mut sessions_seen);
        s.expire_sessions().await;
        s.reap_tombstones(&mut reaper).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "10", "s", "10x", "-5s", "1.2.3s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }
}
