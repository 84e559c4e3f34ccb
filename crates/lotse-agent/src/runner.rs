//! One task per check: interval probes, TTL timers and alias checks, each reporting results
//! to the agent. Dropping a [`Runner`] stops its task.
//!
//! Interval checks start after a random stagger within their interval (so a thousand checks
//! registered together do not fire together), then run every interval. Results pass through
//! Consul's flapping thresholds ([`Thresholds`]) before they reach the local state.

use std::sync::{Arc, Weak};
use std::time::Duration;

use lotse_core::catalog::{CheckStatus, HealthCheck};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::agent::{truncate_output, Agent};
use crate::definition::{CheckDefinition, CheckKind};
use crate::local::TtlNext;
use crate::probe::{self, ProbeResult};
use crate::upstream::AliasTarget;

/// How long an alias check waits for a change before it looks again anyway.
const ALIAS_RECHECK: Duration = Duration::from_secs(60);

pub(crate) struct Runner {
    task: JoinHandle<()>,
    /// The registration of the check this runner runs; it reports under it.
    pub(crate) registration: u64,
    /// Wakes a TTL runner to look at its deadline again (a report moved it).
    wake: Arc<Notify>,
}

impl Runner {
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the task that runs registration `registration` of `def`.
pub(crate) fn start(agent: &Arc<Agent>, def: &CheckDefinition, registration: u64) -> Runner {
    let weak = Arc::downgrade(agent);
    let def = def.clone();
    let wake = Arc::new(Notify::new());
    let task = match def.kind {
        CheckKind::Ttl => tokio::spawn(run_ttl(weak, def.id, registration, wake.clone())),
        CheckKind::Alias { .. } => tokio::spawn(run_alias(weak, def, registration)),
        _ => tokio::spawn(run_interval(weak, def, registration)),
    };
    Runner {
        task,
        registration,
        wake,
    }
}

/// Consul's `StatusHandler`: a status is reported only after enough results agree.
/// Counters start at their thresholds, so the first result is reported at once.
#[derive(Debug, Clone)]
pub(crate) struct Thresholds {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes: u32,
    failures: u32,
}

impl Thresholds {
    pub(crate) fn new(def: &CheckDefinition) -> Thresholds {
        Thresholds {
            success_before_passing: def.success_before_passing,
            failures_before_warning: def.failures_before_warning,
            failures_before_critical: def.failures_before_critical,
            successes: def.success_before_passing,
            failures: def.failures_before_critical,
        }
    }

    /// The status to report for `result`, or None to keep the current one.
    pub(crate) fn judge(&mut self, result: CheckStatus) -> Option<CheckStatus> {
        if result == CheckStatus::Critical {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.failures_before_critical {
                Some(CheckStatus::Critical)
            } else if self.failures >= self.failures_before_warning {
                Some(CheckStatus::Warning)
            } else {
                None
            }
        } else {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes >= self.success_before_passing).then_some(result)
        }
    }
}

async fn probe_once(def: &CheckDefinition) -> ProbeResult {
    let timeout = def.timeout.unwrap_or(Duration::ZERO);
    match &def.kind {
        CheckKind::Http {
            url,
            method,
            header,
            body,
            tls_server_name,
            tls_skip_verify,
            disable_redirects,
        } => {
            let headers = header
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                .collect();
            let p = probe::HttpProbe {
                url: url.clone(),
                method: method.clone(),
                headers,
                body: body.clone(),
                tls_skip_verify: *tls_skip_verify,
                tls_server_name: tls_server_name.clone(),
                disable_redirects: *disable_redirects,
            };
            probe::http(&p, timeout).await
        }
        CheckKind::Tcp { addr } => probe::tcp(addr, timeout).await,
        CheckKind::Udp { addr } => probe::udp(addr, timeout).await,
        CheckKind::Script { args } => probe::script(args, timeout).await,
        CheckKind::Grpc {
            target,
            use_tls,
            tls_skip_verify,
        } => {
            let p = probe::GrpcProbe {
                target: target.clone(),
                use_tls: *use_tls,
                tls_skip_verify: *tls_skip_verify,
            };
            probe::grpc(&p, timeout).await
        }
        CheckKind::H2Ping {
            addr,
            use_tls,
            tls_skip_verify,
        } => {
            let p = probe::H2PingProbe {
                addr: addr.clone(),
                use_tls: *use_tls,
                tls_skip_verify: *tls_skip_verify,
            };
            probe::h2ping(&p, timeout).await
        }
        // Not interval checks; `start` never sends them here.
        CheckKind::Ttl | CheckKind::Alias { .. } => ProbeResult {
            status: CheckStatus::Critical,
            output: String::new(),
        },
    }
}

async fn run_interval(agent: Weak<Agent>, def: CheckDefinition, registration: u64) {
    let interval = def.interval.max(Duration::from_secs(1));
    tokio::time::sleep(interval.mul_f64(rand::random::<f64>())).await;
    let mut thresholds = Thresholds::new(&def);
    loop {
        let result = probe_once(&def).await;
        let Some(a) = agent.upgrade() else { return };
        if let Some(status) = thresholds.judge(result.status) {
            let output = truncate_output(&result.output, def.output_max_size);
            a.record_result(&def.id, registration, status, output, true);
        }
        drop(a);
        tokio::time::sleep(interval).await;
    }
}

/// A TTL check turns critical when no report came within the TTL. The deadline lives in the
/// local state, where a report moves it and the expiry reads it under one lock (see
/// `LocalState::expire_ttl`); this task only sleeps until it.
async fn run_ttl(agent: Weak<Agent>, id: String, registration: u64, wake: Arc<Notify>) {
    loop {
        let Some(a) = agent.upgrade() else { return };
        let next = a.expire_ttl(&id, registration);
        drop(a);
        match next {
            TtlNext::Stop => return,
            TtlNext::Until(deadline) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = wake.notified() => {}
                }
            }
            TtlNext::AwaitReport => wake.notified().await,
        }
    }
}

/// Mirrors the health of a service (or a whole node) from the catalog, through blocking
/// reads of the target's health ([`Upstream::watch_health`](crate::upstream::Upstream)).
async fn run_alias(agent: Weak<Agent>, def: CheckDefinition, registration: u64) {
    let CheckKind::Alias { node, service } = &def.kind else {
        return;
    };
    let (upstream, target) = {
        let Some(a) = agent.upgrade() else { return };
        let local = a.node_name();
        let node = if node.is_empty() { local } else { node };
        let target = AliasTarget {
            node: node.to_string(),
            service: service.clone(),
            own_check: (node == local).then(|| def.id.clone()),
        };
        (a.upstream.clone(), target)
    };
    let mut index = 0;
    let mut failures = 0u32;
    loop {
        let answer = upstream.watch_health(&target, index, ALIAS_RECHECK).await;
        let Some(a) = agent.upgrade() else { return };
        match answer {
            Ok((i, health)) => {
                index = i;
                failures = 0;
                a.record_result(&def.id, registration, health.status, health.output, false);
            }
            Err(e) => {
                // Only a remote catalog fails here. Consul's rule: critical from the second
                // failure in a row, retries at once up to three failures, then backs off.
                // Unlike Consul, the next read starts from index 0, so a recovered upstream
                // corrects the failure status at once instead of after a blocked minute.
                failures = failures.saturating_add(1);
                index = 0;
                tracing::warn!(check = %def.id, error = %e, "alias check cannot read its target");
                if failures > 1 {
                    let output = format!("Failure checking aliased node or service: {e}");
                    a.record_result(&def.id, registration, CheckStatus::Critical, output, false);
                }
                drop(a);
                tokio::time::sleep(alias_backoff(failures)).await;
            }
        }
    }
}

/// How long an alias check waits after `failures` failed reads in a row (Consul's
/// `checkAliasBackoffMin`, `checkAliasBackoffMaxWait`): nothing up to 3, then 1 s doubling
/// up to `ALIAS_RECHECK`.
fn alias_backoff(failures: u32) -> Duration {
    const BACKOFF_AFTER: u32 = 3;
    if failures <= BACKOFF_AFTER {
        return Duration::ZERO;
    }
    Duration::from_secs(1)
        .saturating_mul(1 << (failures - BACKOFF_AFTER).min(6))
        .min(ALIAS_RECHECK)
}

/// Consul's alias rule: the worst of the node's checks and the aliased service's checks (an
/// empty `service` aliases the node alone); a service that is not registered is critical.
/// `own` is the alias check's ID when it lives on the node it watches: a node-level alias
/// check is one of that node's checks, and counting itself would keep it critical forever.
pub(crate) fn alias_status(
    checks: &[&HealthCheck],
    service: &str,
    service_exists: bool,
    own: Option<&str>,
) -> (CheckStatus, String) {
    if !service_exists {
        return (CheckStatus::Critical, "Service not found".to_string());
    }
    let mut status = CheckStatus::Passing;
    let mut output = "No checks found.".to_string();
    for c in checks {
        if !c.service_id.is_empty() && c.service_id != service {
            continue;
        }
        if own == Some(c.check_id.as_str()) {
            continue;
        }
        if c.status > status {
            status = c.status;
            output = format!("Aliased check {:?} failing: {}", c.name, c.output);
        } else if status == CheckStatus::Passing {
            output = "All checks passing.".to_string();
        }
    }
    (status, output)
}

#[cfg(test)]
mod tests;
