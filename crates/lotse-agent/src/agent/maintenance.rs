//! Maintenance mode: a critical check of type `maintenance` on a service or on the node, as
//! Consul adds it (persisted like any API check; enabling twice keeps the first reason).

use lotse_core::catalog::HealthCheck;
use tokio::time::Instant;

use super::{Agent, AgentError};
use crate::local::Source;

/// The node-maintenance check's ID, and the prefix of service-maintenance ones.
pub const NODE_MAINTENANCE: &str = "_node_maintenance";
pub const SERVICE_MAINTENANCE_PREFIX: &str = "_service_maintenance:";

impl Agent {
    pub async fn service_maintenance(
        &self,
        id: &str,
        enable: bool,
        reason: &str,
    ) -> Result<(), AgentError> {
        let edit = self.edit().await;
        let Some(service) = self.service(id) else {
            return Err(AgentError::unknown_service(id));
        };
        let check_id = format!("{SERVICE_MAINTENANCE_PREFIX}{id}");
        let mut row = HealthCheck::new(self.node_name(), &check_id, "Service Maintenance Mode");
        row.notes = notes_or(
            reason,
            "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.",
        );
        row.service_id = service.id;
        row.service_name = service.name;
        row.service_tags = service.tags;
        row.check_type = "maintenance".into();
        self.maintenance(&check_id, enable, row)?;
        drop(edit);
        self.sync_soon().await;
        Ok(())
    }

    pub async fn node_maintenance(&self, enable: bool, reason: &str) -> Result<(), AgentError> {
        let edit = self.edit().await;
        let mut row = HealthCheck::new(self.node_name(), NODE_MAINTENANCE, "Node Maintenance Mode");
        row.notes = notes_or(
            reason,
            "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.",
        );
        row.check_type = "maintenance".into();
        self.maintenance(NODE_MAINTENANCE, enable, row)?;
        drop(edit);
        self.sync_soon().await;
        Ok(())
    }

    /// Adds the maintenance check (once: enabling again keeps the first reason) or removes
    /// it. The caller holds the edit lock.
    fn maintenance(
        &self,
        check_id: &str,
        enable: bool,
        row: HealthCheck,
    ) -> Result<(), AgentError> {
        let present = self.state().checks().contains_key(check_id);
        match (enable, present) {
            (true, false) => {
                self.persisted(|p| p.save_check(&row, None))?;
                let now = Instant::now();
                self.change(|s| {
                    s.add_check(row, None, Source::Remote, now);
                    ((), true)
                });
            }
            (false, true) => {
                self.unpersist(|p| p.remove_check(check_id));
                self.change(|s| ((), s.remove_check(check_id)));
            }
            _ => {}
        }
        Ok(())
    }
}

fn notes_or(reason: &str, default: &str) -> String {
    if reason.is_empty() { default } else { reason }.to_string()
}
