//! # lotse-agent: what every agent does for the services on its machine
//!
//! * [`agent`]: the [`Agent`]: local services and checks (`agent/services`, `agent/checks`),
//!   maintenance, config reloads (`agent/config_definitions`), the reaper; it owns the check
//!   runners (`runner`: one task per check) and anti-entropy (`anti_entropy`: partial sync on
//!   every change, full sync every `ae_interval`, stretched with cluster size).
//! * [`local`]: the local state with its sync flags; `persist` keeps what the API registered
//!   across restarts (`<data_dir>/agent/`).
//! * [`definition`]: service and check definitions, decoded and validated as Consul does.
//! * [`upstream`]: [`Upstream`], everything the agent asks of the catalog (writes, its node's
//!   rows, alias targets' health), implemented here for the local `Server`; a client agent
//!   implements it over server RPC.
//! * [`remote`]: client agents: [`remote::RemoteUpstream`] (the agent's [`Upstream`] over
//!   server RPC, with failover across the servers gossip reports) and the servers' side of
//!   those calls ([`remote::answer_clients`]).
//! * [`probe`]: one health probe of each kind (HTTP, TCP, UDP, script, gRPC, H2PING), each a
//!   plain async function from a check definition to a status and its output.
#![forbid(unsafe_code)]

pub mod agent;
mod anti_entropy;
pub mod definition;
pub mod local;
mod persist;
pub mod probe;
pub mod remote;
mod runner;
#[cfg(test)]
mod test_support;
pub mod upstream;

pub use agent::{Agent, AgentError, AgentOptions};
pub use anti_entropy::scale_factor;
pub use local::Source;
pub use upstream::{AliasStatus, AliasTarget, NodeView, Upstream};
