//! The server's side of client agents' calls: each is answered by the server's own
//! [`Upstream`] implementation (writes through the facade, which forwards them to the leader;
//! reads from this server's replica, as a server's own agent reads them).

use std::sync::{Arc, Weak};
use std::time::Duration;

use lotse_consensus::codec;
use lotse_core::Command;
use lotse_server::{AgentCallHandler, Server, ServerError};

use super::wire::{AgentCall, AgentReply, Answer};
use crate::upstream::Upstream;

/// The longest a client's alias watch parks here; the client asks again after it.
const MAX_WATCH: Duration = Duration::from_secs(600);

/// The handler a server registers for `Forward.AgentCall`.
pub fn answer_clients(server: Weak<Server>) -> AgentCallHandler {
    Arc::new(move |bytes: Vec<u8>| {
        let server = server.clone();
        Box::pin(async move {
            let answer = match server.upgrade() {
                Some(s) => answer(&s, &bytes).await,
                None => Err(ServerError::ShuttingDown),
            };
            codec::encode(&answer)
        })
    })
}

async fn answer(server: &Server, bytes: &[u8]) -> Answer {
    let call: AgentCall = codec::decode(bytes)
        .map_err(|e| ServerError::Invalid(format!("cannot decode a client agent's call: {e}")))?;
    match call {
        AgentCall::Write(cmd) => {
            // A client agent writes only its own catalog rows (anti-entropy): anything else
            // (KV, sessions, restores) comes through the HTTP API, with its checks.
            if !matches!(
                cmd,
                Command::CatalogRegister { .. } | Command::CatalogDeregister { .. }
            ) {
                return Err(ServerError::Invalid(
                    "a client agent may only write catalog registrations".into(),
                ));
            }
            let (index, outcome) = Upstream::write(server, cmd).await?;
            Ok(AgentReply::Written { index, outcome })
        }
        AgentCall::NodeView { node } => Ok(AgentReply::NodeView(
            Upstream::node_view(server, &node).await?,
        )),
        AgentCall::WatchHealth {
            target,
            last_index,
            wait_ms,
        } => {
            let wait = Duration::from_millis(wait_ms).min(MAX_WATCH);
            let (index, status) = server.watch_health(&target, last_index, wait).await?;
            Ok(AgentReply::Health { index, status })
        }
        AgentCall::Status => Ok(AgentReply::Status {
            leader_known: Upstream::has_leader(server),
            nodes: Upstream::node_count(server) as u64,
        }),
    }
}
