//! Fixtures shared by this crate's unit tests.

use lotse_core::catalog::{CheckStatus, HealthCheck, Node, RegisterRequest, Service};
use lotse_core::Command;

/// Registers service `db` on node `other` (10.0.0.3) with its check `db-up` in `status`: the
/// target the alias-check tests watch. `now_ms` is the leader's timestamp in the command.
pub(crate) fn register_db(status: CheckStatus, now_ms: u64) -> Command {
    Command::CatalogRegister {
        req: Box::new(RegisterRequest {
            node: Node {
                name: "other".into(),
                address: "10.0.0.3".into(),
                ..Default::default()
            },
            skip_node_update: false,
            service: Some(Service {
                id: "db".into(),
                name: "db".into(),
                ..Default::default()
            }),
            checks: vec![HealthCheck {
                status,
                service_id: "db".into(),
                ..HealthCheck::new("other", "db-up", "db up")
            }],
        }),
        now_ms,
    }
}
