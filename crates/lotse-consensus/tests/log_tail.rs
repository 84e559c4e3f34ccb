//! The log store keeps only a bounded tail in memory: entries pushed out of it are read back
//! from redb, a truncation below the in-memory window keeps the newest surviving entry
//! readable, and a reopened store (which loads only its tail) serves the same log.

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lotse_consensus::log_store::LogStore;
use lotse_consensus::{Entry, LogId};
use lotse_core::kv::KvWrite;
use lotse_core::Command;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader};
use redb::Database;

/// Room for about two entries: everything durable beyond that is evicted.
const TINY: usize = 300;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Command::KvSet(KvWrite {
            key: format!("k{index}"),
            value: vec![index as u8; 100],
            flags: term,
        })),
    }
}

fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries
        .iter()
        .map(|e| (e.log_id.leader_id.term, e.log_id.index))
        .collect()
}

/// Opens the database, waiting for a previous store's writer thread to let go of it.
fn open(path: &std::path::Path) -> Arc<Database> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Database::create(path) {
            Ok(db) => return Arc::new(db),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reopen {}: {e}", path.display()),
        }
    }
}

#[tokio::test]
async fn evicted_entries_come_back_from_disk_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft.redb");
    {
        let (mut log, persist) =
            LogStore::open_with_memory_limit(open(&path), 0, TINY).expect("opens");
        log.blocking_append((0..10).map(|i| entry(1, i)))
            .await
            .expect("append");
        // The first batch is durable now, so this append pushes it out of memory.
        log.blocking_append((10..20).map(|i| entry(1, i)))
            .await
            .expect("append");
        let all = log.try_get_log_entries(0..20).await.expect("read");
        assert_eq!(ids(&all), (0..20).map(|i| (1, i)).collect::<Vec<_>>());
        let middle = log.try_get_log_entries(3..=12).await.expect("read");
        assert_eq!(ids(&middle), (3..=12).map(|i| (1, i)).collect::<Vec<_>>());
        match &middle[0].payload {
            EntryPayload::Normal(Command::KvSet(w)) => assert_eq!(w.value, vec![3u8; 100]),
            other => panic!("unexpected payload {other:?}"),
        }

        // Truncating below the in-memory window leaves the newest surviving entry readable.
        log.truncate(log_id(1, 5)).await.expect("truncate");
        let state = log.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 4)));
        let kept = log.try_get_log_entries(0..20).await.expect("read");
        assert_eq!(ids(&kept), (0..5).map(|i| (1, i)).collect::<Vec<_>>());

        // A new term's entries replace the truncated ones.
        log.blocking_append((5..8).map(|i| entry(2, i)))
            .await
            .expect("append");
        log.purge(log_id(1, 1)).await.expect("purge");
        drop((log, persist));
    }

    let (mut log, _persist) =
        LogStore::open_with_memory_limit(open(&path), 0, TINY).expect("reopens");
    let state = log.get_log_state().await.expect("state");
    assert_eq!(state.last_log_id, Some(log_id(2, 7)));
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1)));
    let all = log.try_get_log_entries(2..8).await.expect("read");
    let want: Vec<(u64, u64)> = (2..5)
        .map(|i| (1, i))
        .chain((5..8).map(|i| (2, i)))
        .collect();
    assert_eq!(ids(&all), want);
}
