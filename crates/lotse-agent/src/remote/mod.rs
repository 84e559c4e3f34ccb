//! Client agents: an agent without Raft reaches the catalog through the servers.
//!
//! ```text
//!  client agent                                   any server
//!  Agent ─► RemoteUpstream ─► Servers::call ──RPC 8300 Forward.AgentCall──► answer_clients
//!  HTTP API (non-agent paths) ─► Servers ─────RPC 8300 Forward.Http──────► the server's router
//!                                   ▲                                           │
//!        gossip members (role=consul, port tag) ──► Servers::set                Server (facade):
//!                                                                               writes go to the
//!                                                                               leader, reads local
//! ```
//!
//! * [`wire`]: the calls and their answers, in the consensus codec.
//! * [`servers`]: the alive servers, which one this agent prefers, and failover: a call that
//!   certainly never reached a server is tried on the next one; a read may be tried on the
//!   next one after any failure, a write only when it certainly had no effect.
//! * [`upstream`]: [`RemoteUpstream`], the agent's [`crate::Upstream`] over those calls.
//! * [`answer`]: the server side, [`answer_clients`], answering with the server's own
//!   [`crate::Upstream`] implementation, so a client agent sees exactly what a server's agent
//!   sees.

mod answer;
mod servers;
mod upstream;
mod wire;

pub use answer::answer_clients;
pub use servers::{Servers, Tries};
pub use upstream::RemoteUpstream;

#[cfg(test)]
mod tests;
