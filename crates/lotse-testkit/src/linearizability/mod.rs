//! A Porcupine-style linearizability checker (Wing & Gong's search with Lowe's memoisation).
//!
//! A history is a list of operations, each with the time it was invoked and the time its
//! answer arrived (or none, if the client never learned the outcome). The history is
//! linearizable if every operation can be given one instant between its invocation and its
//! answer at which it took effect atomically, such that the model (a register or a mutex)
//! accepts every operation's answer in that order. Keys are independent objects, so the
//! history is split by key and each key checked alone: the search is exponential only in the
//! number of operations in flight at once on one key.
//!
//! Lock-delay, a rule about real time rather than order, is checked apart
//! ([`check_lock_delays`]).

mod history;
mod lock_delay;
mod model;
mod search;

pub use history::{load_history, HistoryError, Op, Outcome};
pub use lock_delay::{check_lock_delays, LockDelayBreach};
pub use model::{Call, State};
pub use search::{check_history, check_key, KeyReport, Verdict};

#[cfg(test)]
mod tests;
