//! The reaper: every `check_reap_interval`, deregisters the services that have a check
//! critical for longer than its `deregister_critical_service_after` (Consul's
//! `reapServicesInternal`), with their checks and sidecar.

use std::sync::Weak;

use tokio::time::Instant;

use super::Agent;

/// Runs until the agent goes; holds it only while reaping.
pub(super) async fn run(agent: Weak<Agent>) {
    loop {
        let period = match agent.upgrade() {
            Some(a) => a.options.check_reap_interval,
            None => return,
        };
        tokio::time::sleep(period).await;
        match agent.upgrade() {
            Some(a) => a.reap().await,
            None => return,
        }
    }
}

impl Agent {
    /// Deregisters services whose checks stayed critical past `deregister_critical_service_after`.
    /// Each is judged again at the moment it is removed: a service registered again since the
    /// list was made (its check passing, or no longer set to be reaped) stays.
    pub(crate) async fn reap(&self) {
        let doomed = self.state().services_to_reap(Instant::now());
        self.reap_these(doomed).await;
    }

    /// Deregisters the listed services that are still to be reaped.
    pub(super) async fn reap_these(&self, doomed: Vec<String>) {
        let mut reaped = false;
        for id in doomed {
            let edit = self.edit().await;
            if self.remove_service_if(&id, |s| s.should_reap(&id, Instant::now())) {
                tracing::info!(service = %id, "deregistered a service with a long-critical check");
                reaped = true;
            }
            drop(edit);
        }
        if reaped {
            self.sync_soon().await;
        }
    }
}
