//! `lotse-gossip`: the LAN gossip pool: who is alive, with which tags, plus user events.
//!
//! Consul runs serf over memberlist; Lotse runs the same ideas over [foca] (SWIM with
//! suspicion, sans-IO). This crate owns everything around foca that serf adds: statuses
//! (Alive, Leaving, Left, Failed) with a reap window, tags, user events with a Lamport clock,
//! TCP push/pull anti-entropy, the AES-GCM envelope with a rotating keyring, and Lifeguard-style
//! slowing when the local node is the unhealthy one.
//!
//! ```text
//!   Gossip (pool.rs)  ── commands (bounded mpsc) ──▶  Driver task (driver.rs)
//!     members(), subscribe(), ...  ◀── snapshot + broadcast channels ──┘   │ owns
//!                                                                        ▼
//!   UDP :8301 ◀─ envelope.rs (seal/open, keyring.rs) ─▶ GossipCore (core.rs, sans-IO)
//!   TCP :8301 ◀─ push_pull.rs (full state)           ─▶   foca (SWIM) + member table
//!                                                           + notice.rs (tags, leave
//!                                                             intents, user events)
//! ```
//!
//! * `identity`: what foca gossips (name, address, generation); a restarted node comes back
//!   with a higher generation under the same name.
//! * `core`: pure state machine; time and randomness come in as values, so it is testable
//!   without sockets. `sim` runs bare foca with our configuration on a simulated network.
//! * `driver`: the only place with sockets and timers.
//! * `lifeguard`: the local health score that slows our probing when we are the sick one.
//! * `notice`: custom broadcasts (tags, leave intents, user events) and their dedup ledger.
//!
//! Statuses: a member that announced a leave intent and then went down is `Left`; one that
//! went down without an intent is `Failed`. Both stay listed for `Timing::reap_after`, then a
//! `Reap` event removes them. A new member is listed (and `Join` is emitted) once its tags are
//! known, or after five probe intervals without them.
//!
//! Wire formats are postcard; enums are only ever extended at the end.
//!
//! [foca]: https://docs.rs/foca
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod core;
mod driver;
pub mod envelope;
mod error;
#[cfg(test)]
mod fuzz;
pub mod identity;
pub mod keyring;
pub mod lifeguard;
pub mod member;
pub mod notice;
mod pool;
pub mod push_pull;
#[doc(hidden)]
pub mod sim;

pub use config::{GossipConfig, Timing};
pub use error::GossipError;
pub use keyring::{Keyring, KeyringHandle};
pub use member::{Member, MemberEvent, MemberStatus, UserEvent};
pub use pool::Gossip;
