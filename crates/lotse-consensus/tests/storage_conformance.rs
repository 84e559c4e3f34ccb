//! openraft's own storage conformance suite against Lotse's log store and state machine: the
//! contract openraft relies on (log state, vote, append/truncate/purge, applied state,
//! snapshots), checked on the real redb-backed implementation, once with the normal memory
//! budget and once with a budget so small that every older entry is read back from disk.

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

use std::sync::Arc;

use lotse_consensus::log_store::LogStore;
use lotse_consensus::state_machine::StateMachine;
use lotse_consensus::{ApplyObserver, NodeId, TypeConfig};
use lotse_core::Changes;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use redb::backends::InMemoryBackend;
use redb::Database;

struct NoObserver;

impl ApplyObserver for NoObserver {
    fn applied(&self, _changes: &[Changes]) {}
    fn reset(&self) {}
}

struct Builder {
    memory_limit: Option<usize>,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for Builder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<NodeId>> {
        let db = Arc::new(
            Database::builder()
                .create_with_backend(InMemoryBackend::new())
                .expect("in-memory redb"),
        );
        let (log, persist) = match self.memory_limit {
            None => LogStore::open(db.clone(), 0),
            Some(limit) => LogStore::open_with_memory_limit(db.clone(), 0, limit),
        }
        .expect("log store opens");
        let sm =
            StateMachine::open(db, persist, Arc::new(NoObserver)).expect("state machine opens");
        Ok(((), log, sm))
    }
}

#[test]
fn passes_openraft_storage_suite() {
    Suite::test_all(Builder { memory_limit: None }).expect("conformance");
}

#[test]
fn passes_openraft_storage_suite_reading_from_disk() {
    Suite::test_all(Builder {
        memory_limit: Some(1),
    })
    .expect("conformance with every durable entry evicted from memory");
}
