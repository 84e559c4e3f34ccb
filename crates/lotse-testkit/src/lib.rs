//! Lotse's test kit. Dev-only: nothing in the product depends on it.
//!
//! [`linearizability`] checks histories that fault-injection runs (`tests/jepsen`) record against
//! real `lotse` processes: did every key behave as one atomic register, every lock as one mutex?
//! [`sim`] runs a whole server cluster in one process on simulated network, disks and time.

pub mod linearizability;
pub mod sim;
