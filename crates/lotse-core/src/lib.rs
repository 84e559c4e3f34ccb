//! # lotse-core: the pure state store
//!
//! Everything Lotse replicates lives here as plain data and deterministic functions:
//!
//! ```text
//!   Command (from the Raft log) ──► Store::apply(index, cmd) ──► (Outcome, Changes)
//!                                        │                          │
//!                     queries (kv, session, txn reads)      what a blocking query
//!                     return (index, answer)                  watching it must re-run
//! ```
//!
//! * [`command`] defines the tagged, versioned [`Command`] enum that is written to the log, and
//!   the [`Outcome`] a command produces. Variants are only ever added, never renumbered.
//! * [`store`] holds the tables (KV, tombstones, sessions, lock-delays, and the catalog's nodes,
//!   service instances and checks) and applies commands. It has no clock: time-dependent rules
//!   (lock-delay) use the timestamps the leader put in the command. Every table a transaction
//!   can change keeps a journal while it runs, so a failed one is undone at the cost of what it
//!   changed.
//! * [`catalog`] and [`node`] are the catalog's records (the latter those of the first log
//!   format); [`session`] and [`kv`] the sessions' and keys'.
//! * [`watch`] names what a query read ([`WatchKey`]) and what a command touched ([`Changes`]),
//!   so the server can wake exactly the blocking queries that need to run again.
//! * [`snapshot`] is the versioned, serialisable image of the whole store.
//!
//! No tokio, no I/O, no system time: a test or a simulation controls every input.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod command;
pub mod kv;
pub mod node;
pub mod session;
pub mod snapshot;
pub mod store;
pub mod txn;
pub mod watch;

pub use command::{Command, Outcome};
pub use kv::KvEntry;
pub use session::{Session, SessionBehavior};
pub use store::{Store, StoreError};
pub use watch::{Changes, Table, WatchKey};
