//! The Raft log and vote: in memory for reads, on redb for durability, written by one thread
//! that group-commits.
//!
//! openraft calls [`RaftLogStorage::append`] and may go on before the entries are durable; it
//! waits for the [`LogFlushed`] callback before counting them as persisted. So `append` puts the
//! entries in memory (readable at once, as openraft requires) and queues them for the writer
//! thread. The writer takes everything queued, writes it in **one** redb transaction, commits
//! with an fsync, and only then fires the callbacks. Under load each fsync covers every append
//! that arrived while the previous one ran. All writes (appends, truncation, purge, vote,
//! snapshots) go through the same queue, so they reach the disk in the order openraft issued
//! them, as its correctness rules demand.

// openraft's `StorageError` is large, and the storage traits return it; it is built only on
// the rare failure path.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageError, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{decode, encode};
use crate::{ConsensusError, Entry, LogId, NodeId, TypeConfig};

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE_KEY: &str = "vote";
const PURGED_KEY: &str = "last_purged";
const COMMITTED_KEY: &str = "committed";
pub(crate) const SNAPSHOT_META_KEY: &str = "snapshot_meta";
pub(crate) const SNAPSHOT_DATA_KEY: &str = "snapshot_data";
/// The snapshot image and its meta, in a table of their own. Not in [`META`]: redb copies a
/// B-tree page on write, and `META` takes a small write on every commit (`committed`), so a
/// multi-megabyte image sharing its page was copied on every commit (measured: register rate
/// from 17k/s down to 210/s once a 37 MB snapshot existed). Data directories written before
/// this kept the image in `META`; it is read from there until the next snapshot moves it.
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");

/// Counters for the writer, exported as metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Durable commits (fsyncs) done by the writer.
    pub commits: AtomicU64,
    /// Log entries made durable.
    pub entries: AtomicU64,
    /// Total time spent in commits, in microseconds.
    pub commit_micros: AtomicU64,
}

/// One unit of work for the writer thread.
pub(crate) enum Job {
    Append {
        records: Vec<(u64, Vec<u8>)>,
        done: LogFlushed<TypeConfig>,
    },
    /// Removes every entry at or after the index.
    Truncate { from: u64 },
    /// Removes every entry at or before the index and records the purge point.
    Purge { upto: u64, record: Vec<u8> },
    /// Writes one metadata record (vote, snapshot parts).
    Meta { key: &'static str, value: Vec<u8> },
    /// Records the committed log id. Needs no fsync of its own: losing the newest one only
    /// means re-applying entries that are in the log anyway, so it rides on the next durable
    /// commit instead of costing one.
    Committed(Vec<u8>),
    /// A snapshot's image and meta, written together in one transaction. `index` is the last
    /// log index it covers (0 for none): a snapshot older than the stored one is dropped, so
    /// a slow build can never overwrite a newer installed snapshot.
    Snapshot {
        index: u64,
        meta: Vec<u8>,
        data: Vec<u8>,
    },
    /// Acknowledged once every job queued before it is durable.
    Barrier(oneshot::Sender<Result<(), String>>),
}

/// Bytes of durable entries kept in memory for openraft's reads; older ones are read back from
/// redb. Entries not yet durable always stay (openraft must read them; the disk has none yet).
const MEM_LIMIT: usize = 32 << 20;

struct Mem {
    /// The tail of the log: every entry not yet durable, and durable ones up to `MEM_LIMIT`
    /// bytes. Invariant: if the log has any entry, the newest one is here.
    entries: BTreeMap<u64, (Entry, usize)>,
    /// Encoded bytes of `entries`.
    bytes: usize,
    /// The budget for durable entries in memory (`MEM_LIMIT` outside tests).
    limit: usize,
    last_purged: Option<LogId>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId>,
}

impl Mem {
    fn insert(&mut self, e: Entry, size: usize) {
        if let Some((_, old)) = self.entries.insert(e.log_id.index, (e, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
    }

    /// Drops entries at or after `from`.
    fn truncate(&mut self, from: u64) {
        let tail = self.entries.split_off(&from);
        self.bytes -= tail.values().map(|(_, n)| n).sum::<usize>();
    }

    /// Drops entries at or before `upto`.
    fn purge(&mut self, upto: u64) {
        let keep = self.entries.split_off(&upto.saturating_add(1));
        let gone = std::mem::replace(&mut self.entries, keep);
        self.bytes -= gone.values().map(|(_, n)| n).sum::<usize>();
    }

    /// Forgets the oldest durable entries while over the memory budget, keeping the newest.
    fn evict(&mut self, durable: u64) {
        while self.bytes > self.limit && self.entries.len() > 1 {
            match self.entries.first_key_value() {
                Some((&i, _)) if i <= durable => {
                    if let Some((_, (_, n))) = self.entries.pop_first() {
                        self.bytes -= n;
                    }
                }
                _ => break,
            }
        }
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.first_key_value().map(|(i, _)| *i)
    }
}

struct Inner {
    mem: Mutex<Mem>,
    db: Arc<Database>,
    /// The highest log index the writer has made durable (lowered by truncation).
    durable: Arc<AtomicU64>,
    jobs: mpsc::UnboundedSender<Job>,
    stats: Arc<LogStats>,
}

/// The log store; clones share state and also serve as openraft's log reader.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

/// A handle to queue writes on the log writer (used for snapshots).
#[derive(Clone)]
pub struct Persist {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Persist {
    /// Stores a snapshot (image and meta in one transaction) and waits until it is durable.
    pub async fn put_snapshot(
        &self,
        index: u64,
        meta: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<(), String> {
        self.jobs
            .send(Job::Snapshot { index, meta, data })
            .map_err(|_| "log writer stopped".to_string())?;
        self.barrier().await
    }

    /// Waits until everything queued so far is durable.
    pub async fn barrier(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Barrier(tx))
            .map_err(|_| "log writer stopped".to_string())?;
        rx.await.map_err(|_| "log writer stopped".to_string())?
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ConsensusError {
    ConsensusError::Corrupt(format!("{what}: {e}"))
}

impl LogStore {
    /// Loads the log and vote from `db` and starts the writer thread.
    /// `snapshot_index` is the last index covered by the stored snapshot (0 if none).
    pub fn open(
        db: Arc<Database>,
        snapshot_index: u64,
    ) -> Result<(LogStore, Persist), ConsensusError> {
        Self::open_with_memory_limit(db, snapshot_index, MEM_LIMIT)
    }

    /// As [`LogStore::open`], keeping at most `limit` bytes of durable entries in memory
    /// (tests use a tiny limit to drive every read through the disk).
    pub fn open_with_memory_limit(
        db: Arc<Database>,
        snapshot_index: u64,
        limit: usize,
    ) -> Result<(LogStore, Persist), ConsensusError> {
        Self::open_with(db, snapshot_index, limit, Writer::Thread)
    }

    /// As [`LogStore::open_with_memory_limit`], with the writer run as `writer` says.
    pub fn open_with(
        db: Arc<Database>,
        snapshot_index: u64,
        limit: usize,
        writer: Writer,
    ) -> Result<(LogStore, Persist), ConsensusError> {
        let mut mem = Mem {
            entries: BTreeMap::new(),
            bytes: 0,
            limit,
            last_purged: None,
            vote: None,
            committed: None,
        };
        {
            let txn = db.begin_write().map_err(|e| corrupt("begin", e))?;
            // Creating the tables up front lets every later read assume they exist.
            txn.open_table(LOG).map_err(|e| corrupt("open log", e))?;
            txn.open_table(META).map_err(|e| corrupt("open meta", e))?;
            txn.open_table(SNAPSHOT)
                .map_err(|e| corrupt("open snapshot", e))?;
            txn.commit().map_err(|e| corrupt("commit", e))?;
        }
        let read = db.begin_read().map_err(|e| corrupt("begin read", e))?;
        let meta = read.open_table(META).map_err(|e| corrupt("open meta", e))?;
        let get = |key: &str| -> Result<Option<Vec<u8>>, ConsensusError> {
            Ok(meta
                .get(key)
                .map_err(|e| corrupt(key, e))?
                .map(|v| v.value().to_vec()))
        };
        if let Some(v) = get(VOTE_KEY)? {
            mem.vote = Some(decode(&v).map_err(|e| corrupt("vote", e))?);
        }
        if let Some(v) = get(PURGED_KEY)? {
            mem.last_purged = Some(decode(&v).map_err(|e| corrupt("last purged", e))?);
        }
        if let Some(v) = get(COMMITTED_KEY)? {
            // Stored as the `Option<LogId>` openraft handed to `save_committed`.
            mem.committed = decode(&v).map_err(|e| corrupt("committed", e))?;
        }
        let log = read.open_table(LOG).map_err(|e| corrupt("open log", e))?;
        // Only the tail comes into memory; older entries are read from disk when asked for.
        for row in log.iter().map_err(|e| corrupt("log", e))?.rev() {
            let (k, v) = row.map_err(|e| corrupt("log", e))?;
            let entry: Entry = decode(v.value()).map_err(|e| corrupt("log entry", e))?;
            debug_assert_eq!(entry.log_id.index, k.value());
            mem.insert(entry, v.value().len());
            if mem.bytes > limit {
                break;
            }
        }
        drop((log, meta, read));

        let durable = Arc::new(AtomicU64::new(
            mem.entries.last_key_value().map_or(0, |(i, _)| *i),
        ));
        let (jobs, mut rx) = mpsc::unbounded_channel();
        let stats = Arc::new(LogStats::default());
        let mut state = WriterState {
            db: db.clone(),
            stats: stats.clone(),
            durable: durable.clone(),
            snapshot_index,
            failed: None,
        };
        match writer {
            Writer::Thread => {
                std::thread::Builder::new()
                    .name("lotse-raft-log".into())
                    .spawn(move || {
                        while let Some(first) = rx.blocking_recv() {
                            state.write(drain(first, &mut rx));
                        }
                    })
                    .map_err(|e| ConsensusError::Raft(format!("cannot start log writer: {e}")))?;
            }
            Writer::Task => {
                tokio::spawn(async move {
                    while let Some(first) = rx.recv().await {
                        state.write(drain(first, &mut rx));
                    }
                });
            }
        }
        let store = LogStore {
            inner: Arc::new(Inner {
                mem: Mutex::new(mem),
                db,
                durable,
                jobs: jobs.clone(),
                stats,
            }),
        };
        Ok((store, Persist { jobs }))
    }

    pub fn stats(&self) -> Arc<LogStats> {
        self.inner.stats.clone()
    }

    fn mem(&self) -> MutexGuard<'_, Mem> {
        // A poisoned lock means a panic while holding it; the data is still consistent because
        // every critical section is a single map operation.
        self.inner.mem.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self, job: Job) -> Result<(), StorageError<NodeId>> {
        self.inner.jobs.send(job).map_err(|_| {
            StorageIOError::write_logs(openraft::AnyError::error("log writer stopped")).into()
        })
    }

    async fn queue_and_wait(&self, job: Job) -> Result<(), StorageError<NodeId>> {
        self.queue(job)?;
        let (tx, rx) = oneshot::channel();
        self.queue(Job::Barrier(tx))?;
        let res = rx
            .await
            .unwrap_or_else(|_| Err("log writer stopped".to_string()));
        res.map_err(|e| StorageIOError::write_logs(openraft::AnyError::error(e)).into())
    }
}

/// Where the log writer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A thread of its own: redb's commits and fsyncs block, and must not stall the runtime.
    Thread,
    /// A task on the caller's tokio runtime, writing inline. For deterministic simulation
    /// (`lotse-testkit`): on a single-threaded runtime with paused time, a write then happens
    /// at a definite point of the schedule instead of racing a thread against simulated time.
    Task,
}

/// The first queued job and every other already waiting, up to a batch's size.
fn drain(first: Job, rx: &mut mpsc::UnboundedReceiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < 8192 {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
    batch
}

/// The log writer: batches every queued job into one durable transaction.
struct WriterState {
    db: Arc<Database>,
    stats: Arc<LogStats>,
    durable: Arc<AtomicU64>,
    snapshot_index: u64,
    failed: Option<String>,
}

impl WriterState {
    fn write(&mut self, batch: Vec<Job>) {
        let started = std::time::Instant::now();
        // After one failed batch nothing more is written: a later batch committing on top of a
        // failed one could leave a hole in the log. The node must be restarted.
        let result = match &self.failed {
            Some(e) => Err(e.clone()),
            None => write_batch(&self.db, &batch, &mut self.snapshot_index),
        };
        if let Err(e) = &result {
            if self.failed.is_none() {
                tracing::error!(error = %e, "raft log write failed; refusing all further writes");
                self.failed = Some(e.clone());
            }
        }
        let synced = batch.iter().any(|j| !matches!(j, Job::Committed(_)));
        if result.is_ok() && synced {
            let newest = batch
                .iter()
                .filter_map(|j| match j {
                    Job::Append { records, .. } => records.last().map(|(i, _)| *i),
                    _ => None,
                })
                .max();
            if let Some(i) = newest {
                self.durable.fetch_max(i, Ordering::Release);
            }
            let n: usize = batch
                .iter()
                .map(|j| match j {
                    Job::Append { records, .. } => records.len(),
                    _ => 0,
                })
                .sum();
            let stats = &self.stats;
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.entries.fetch_add(n as u64, Ordering::Relaxed);
            stats
                .commit_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        for job in batch {
            match job {
                Job::Append { done, .. } => done.log_io_completed(
                    result
                        .clone()
                        .map_err(|e| std::io::Error::other(e.to_string())),
                ),
                Job::Barrier(tx) => {
                    let _ = tx.send(result.clone());
                }
                _ => {}
            }
        }
    }
}

fn write_batch(db: &Database, batch: &[Job], snapshot_index: &mut u64) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    if batch.iter().all(|j| matches!(j, Job::Committed(_))) {
        txn.set_durability(Durability::None)
            .map_err(|e| e.to_string())?;
    }
    {
        let mut log = txn.open_table(LOG).map_err(|e| e.to_string())?;
        let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
        for job in batch {
            match job {
                Job::Append { records, .. } => {
                    for (i, bytes) in records {
                        log.insert(*i, bytes.as_slice())
                            .map_err(|e| e.to_string())?;
                    }
                }
                Job::Truncate { from } => {
                    log.retain_in(*from.., |_, _| false)
                        .map_err(|e| e.to_string())?;
                }
                Job::Purge { upto, record } => {
                    log.retain_in(..=*upto, |_, _| false)
                        .map_err(|e| e.to_string())?;
                    meta.insert(PURGED_KEY, record.as_slice())
                        .map_err(|e| e.to_string())?;
                }
                Job::Meta { key, value } => {
                    meta.insert(*key, value.as_slice())
                        .map_err(|e| e.to_string())?;
                }
                Job::Snapshot {
                    index,
                    meta: m,
                    data,
                } => {
                    if *index >= *snapshot_index {
                        let mut snap = txn.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
                        snap.insert(SNAPSHOT_DATA_KEY, data.as_slice())
                            .map_err(|e| e.to_string())?;
                        snap.insert(SNAPSHOT_META_KEY, m.as_slice())
                            .map_err(|e| e.to_string())?;
                        // An image left in `META` by an older build leaves the hot table.
                        meta.remove(SNAPSHOT_DATA_KEY).map_err(|e| e.to_string())?;
                        meta.remove(SNAPSHOT_META_KEY).map_err(|e| e.to_string())?;
                        *snapshot_index = *index;
                    }
                }
                Job::Committed(value) => {
                    meta.insert(COMMITTED_KEY, value.as_slice())
                        .map_err(|e| e.to_string())?;
                }
                Job::Barrier(_) => {}
            }
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        // The memory part first: anything older than what memory holds is durable and stays
        // on disk (eviction only drops durable entries), so the two parts meet without a gap.
        let (first_in_mem, tail) = {
            let mem = self.mem();
            let tail: Vec<Entry> = mem
                .entries
                .range(range.clone())
                .map(|(_, (e, _))| e.clone())
                .collect();
            (mem.first_index(), tail)
        };
        let Some(first_in_mem) = first_in_mem.filter(|f| start < *f) else {
            return Ok(tail);
        };
        let mut out = self.read_from_disk(start, first_in_mem, &range)?;
        out.extend(tail);
        Ok(out)
    }
}

/// A failed read of the log from disk, as openraft's storage error.
fn read_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read_logs(openraft::AnyError::error(e.to_string())).into()
}

impl LogStore {
    /// Entries in `[start, before)` that are also in `range`, from redb.
    fn read_from_disk<RB: RangeBounds<u64>>(
        &self,
        start: u64,
        before: u64,
        range: &RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let read = self.inner.db.begin_read().map_err(read_error)?;
        let log = read.open_table(LOG).map_err(read_error)?;
        let mut out = Vec::new();
        for row in log.range(start..before).map_err(read_error)? {
            let (k, v) = row.map_err(read_error)?;
            if !range.contains(&k.value()) {
                break;
            }
            out.push(decode(v.value()).map_err(read_error)?);
        }
        Ok(out)
    }

    /// Keeps the invariant that memory holds the newest entry: after a truncation below the
    /// memory window, the newest surviving entry is read back from disk.
    fn refill_tail(&self) -> Result<(), StorageError<NodeId>> {
        if !self.mem().entries.is_empty() {
            return Ok(());
        }
        let read = self.inner.db.begin_read().map_err(read_error)?;
        let log = read.open_table(LOG).map_err(read_error)?;
        let last = log.last().map_err(read_error)?;
        if let Some((_, v)) = last {
            let entry: Entry = decode(v.value()).map_err(read_error)?;
            self.mem().insert(entry, v.value().len());
        }
        Ok(())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let mem = self.mem();
        let last = mem.entries.values().next_back().map(|(e, _)| e.log_id);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: last.or(mem.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.mem().vote = Some(*vote);
        self.queue_and_wait(Job::Meta {
            key: VOTE_KEY,
            value: encode(vote),
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.mem().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.mem().committed = committed;
        // Not waited for: losing the newest committed marker only means re-applying entries
        // that are in the log anyway.
        self.queue(Job::Committed(encode(&committed)))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError<NodeId>> {
        Ok(self.mem().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut records = Vec::new();
        {
            let mut mem = self.mem();
            for e in entries {
                let bytes = encode(&e);
                let index = e.log_id.index;
                mem.insert(e, bytes.len());
                records.push((index, bytes));
            }
            mem.evict(self.inner.durable.load(Ordering::Acquire));
        }
        self.queue(Job::Append {
            records,
            done: callback,
        })
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        self.mem().truncate(log_id.index);
        self.queue_and_wait(Job::Truncate { from: log_id.index })
            .await?;
        // Entries from here on are new and not durable until the writer says so.
        self.inner
            .durable
            .fetch_min(log_id.index.saturating_sub(1), Ordering::Release);
        self.refill_tail()
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        {
            let mut mem = self.mem();
            mem.purge(log_id.index);
            mem.last_purged = Some(log_id);
        }
        self.queue_and_wait(Job::Purge {
            upto: log_id.index,
            record: encode(&log_id),
        })
        .await
    }
}
