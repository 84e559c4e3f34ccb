//! The configuration's `service`/`check` definitions, handed to the agent at start and on
//! every reload. `Agent::load_config_definitions` replaces what the previous configuration
//! registered; what the HTTP API registered stays.

use std::sync::Arc;

use lotse_agent::definition::{decode, CheckDefinition, ServiceDefinition};
use lotse_agent::Agent;

use crate::config::AgentConfig;

/// The configuration's definitions, decoded. The configuration validated each of them when it
/// was loaded, so an error here means the decoder changed its mind; it is reported all the same.
pub fn decode(cfg: &AgentConfig) -> Result<(Vec<ServiceDefinition>, Vec<CheckDefinition>), String> {
    let services = cfg
        .services
        .iter()
        .map(|v| decode::service(v).map_err(|e| format!("config: invalid service: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let checks = cfg
        .checks
        .iter()
        .map(|v| decode::check(v).map_err(|e| format!("config: invalid check: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((services, checks))
}

/// Registers the configuration's definitions with the agent (replacing the previous ones).
/// Refusals the agent makes itself (a script check where scripts are disabled, no free
/// sidecar port) come back as the error.
pub async fn register(agent: &Arc<Agent>, cfg: &AgentConfig) -> Result<(), String> {
    let (services, checks) = decode(cfg)?;
    let (n_services, n_checks) = (services.len(), checks.len());
    agent
        .load_config_definitions(services, checks)
        .await
        .map_err(|e| {
            format!("cannot register the services and checks of the configuration: {e}")
        })?;
    tracing::info!(
        services = n_services,
        checks = n_checks,
        "registered the configured services and checks"
    );
    Ok(())
}
