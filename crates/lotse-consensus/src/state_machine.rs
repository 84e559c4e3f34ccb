//! The Raft state machine: committed entries applied to the pure store, snapshots built from and
//! installed into it.

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lotse_core::snapshot::{
    SnapshotError, SnapshotHeader, SnapshotImage, SnapshotImageV2, SNAPSHOT_FORMAT,
};
use lotse_core::{Changes, Outcome, Store};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, RaftSnapshotBuilder, StorageError, StorageIOError, StoredMembership,
};
use redb::{Database, ReadableDatabase};

use crate::codec::{decode, encode};
use crate::log_store::{Persist, META, SNAPSHOT, SNAPSHOT_DATA_KEY, SNAPSHOT_META_KEY};
use crate::{ConsensusError, Entry, LogId, NodeId, TypeConfig};

/// Told about every batch of applied commands, after the store lock is released.
pub trait ApplyObserver: Send + Sync + 'static {
    /// `changes` holds what each applied command touched.
    fn applied(&self, changes: &[Changes]);
    /// The whole store was replaced (a snapshot was installed): anything may have changed.
    fn reset(&self);
}

/// The applied state, under one lock so a snapshot sees a store and the log position it
/// corresponds to together.
#[derive(Debug, Default)]
pub struct Applied {
    pub store: Store,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// The state shared between the state machine (writer) and the server's reads.
#[derive(Debug, Default)]
pub struct SharedState {
    applied: RwLock<Applied>,
}

impl SharedState {
    /// Locks the applied state for reading. Keep the guard short: applies wait for it.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        self.applied.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Applied> {
        self.applied.write().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct StateMachine {
    shared: Arc<SharedState>,
    observer: Arc<dyn ApplyObserver>,
    persist: Persist,
    db: Arc<Database>,
    snapshots_built: u64,
}

fn sm_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(openraft::AnyError::error(e.to_string())).into()
}

fn snap_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, openraft::AnyError::error(e.to_string())).into()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
}

impl StateMachine {
    /// Opens the state machine, restoring the latest stored snapshot if there is one.
    /// The last log index covered by the stored snapshot (0 if none).
    pub fn stored_snapshot_index(db: &Database) -> Result<u64, ConsensusError> {
        Ok(read_snapshot(db)?
            .and_then(|(meta, _)| meta.last_log_id)
            .map_or(0, |l| l.index))
    }

    pub fn open(
        db: Arc<Database>,
        persist: Persist,
        observer: Arc<dyn ApplyObserver>,
    ) -> Result<StateMachine, ConsensusError> {
        let shared = Arc::new(SharedState::default());
        if let Some((meta, data)) = read_snapshot(&db)? {
            let store = decode_image(&data)
                .map_err(|e| ConsensusError::Corrupt(format!("snapshot: {e}")))?;
            let mut a = shared.write();
            a.store = store;
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership;
        }
        Ok(StateMachine {
            shared,
            observer,
            persist,
            db,
            snapshots_built: 0,
        })
    }

    pub fn shared(&self) -> Arc<SharedState> {
        self.shared.clone()
    }
}

/// Decodes a snapshot image (also the `state.bin` of a snapshot archive). The format comes
/// first: an image of another layout is refused by name, never misread field by field; the
/// previous format (2) is read and converted.
pub fn decode_image(data: &[u8]) -> Result<Store, String> {
    let header: SnapshotHeader = decode(data).map_err(|e| e.to_string())?;
    let image: SnapshotImage = match header.format {
        SNAPSHOT_FORMAT => decode(data).map_err(|e| e.to_string())?,
        2 => decode::<SnapshotImageV2>(data)
            .map_err(|e| e.to_string())?
            .into(),
        other => return Err(SnapshotError::Format(other).to_string()),
    };
    image.into_store().map_err(|e| e.to_string())
}

/// Encodes `store` as a snapshot image, exactly as Raft snapshots store it.
pub fn encode_image(store: &Store) -> Vec<u8> {
    encode(&SnapshotImage::of(store))
}

/// A stored snapshot: its meta and its encoded image.
type StoredParts = (SnapshotMeta<NodeId, BasicNode>, Vec<u8>);

fn read_snapshot(db: &Database) -> Result<Option<StoredParts>, ConsensusError> {
    let corrupt = |e: &dyn std::fmt::Display| ConsensusError::Corrupt(format!("snapshot: {e}"));
    let read = db.begin_read().map_err(|e| corrupt(&e))?;
    // The snapshot's own table first; older data directories kept it in `META`.
    for table in [SNAPSHOT, META] {
        let t = match read.open_table(table) {
            Ok(t) => t,
            // A fresh database (or one from before the snapshot table): nothing there.
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(corrupt(&e)),
        };
        if let (Some(m), Some(d)) = (
            t.get(SNAPSHOT_META_KEY).map_err(|e| corrupt(&e))?,
            t.get(SNAPSHOT_DATA_KEY).map_err(|e| corrupt(&e))?,
        ) {
            let stored: StoredSnapshot = decode(m.value()).map_err(|e| corrupt(&e))?;
            return Ok(Some((stored.meta, d.value().to_vec())));
        }
    }
    Ok(None)
}

/// Builds snapshots from a consistent view of the applied state.
pub struct SnapshotBuilder {
    shared: Arc<SharedState>,
    persist: Persist,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // Copy under the read lock (cheap next to encoding), encode outside it so applies wait
        // only for the copy.
        let (image, last_applied, membership) = {
            let a = self.shared.read();
            (
                SnapshotImage::of(&a.store),
                a.last_applied,
                a.membership.clone(),
            )
        };
        let data = encode(&image);
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.seq),
            None => format!("0-0-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let bytes = data.len();
        // Image and meta in one transaction; an older snapshot never replaces a newer one.
        self.persist
            .put_snapshot(
                meta.last_log_id.map_or(0, |l| l.index),
                encode(&StoredSnapshot { meta: meta.clone() }),
                data.clone(),
            )
            .await
            .map_err(snap_error)?;
        tracing::info!(index = ?meta.last_log_id.map(|l| l.index), bytes, "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let a = self.shared.read();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let mut changes = Vec::new();
        let mut reset = false;
        {
            let mut a = self.shared.write();
            for entry in entries {
                a.last_applied = Some(entry.log_id);
                let outcome = match entry.payload {
                    EntryPayload::Blank => Outcome::Done,
                    EntryPayload::Membership(m) => {
                        a.membership = StoredMembership::new(Some(entry.log_id), m);
                        Outcome::Done
                    }
                    EntryPayload::Normal(cmd) => {
                        // A restore replaced everything: every watcher re-runs, as after a
                        // snapshot install.
                        reset |= cmd.replaces_store();
                        let (outcome, c) = a.store.apply(entry.log_id.index, &cmd);
                        if !c.is_empty() {
                            changes.push(c);
                        }
                        outcome
                    }
                };
                outcomes.push(outcome);
            }
        }
        if reset {
            self.observer.reset();
        } else if !changes.is_empty() {
            self.observer.applied(&changes);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        SnapshotBuilder {
            shared: self.shared.clone(),
            persist: self.persist.clone(),
            seq: self.snapshots_built,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let store = decode_image(&data).map_err(sm_error)?;
        self.persist
            .put_snapshot(
                meta.last_log_id.map_or(0, |l| l.index),
                encode(&StoredSnapshot { meta: meta.clone() }),
                data,
            )
            .await
            .map_err(snap_error)?;
        {
            let mut a = self.shared.write();
            a.store = store;
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        }
        self.observer.reset();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let found = read_snapshot(&self.db).map_err(snap_error)?;
        Ok(found.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_store::LogStore;
    use openraft::{CommittedLeaderId, LogId, StoredMembership};

    fn stored(index: u64) -> Vec<u8> {
        encode(&StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
                last_membership: StoredMembership::default(),
                snapshot_id: format!("1-{index}-0"),
            },
        })
    }

    /// The image lives in its own table: the small keys written on every commit never share
    /// (and so never copy) its pages.
    #[tokio::test]
    async fn snapshots_are_kept_apart_from_the_per_commit_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Arc::new(Database::create(dir.path().join("raft.redb")).expect("db"));
        let (_log, persist) = LogStore::open(db.clone(), 0).expect("opens");
        persist
            .put_snapshot(7, stored(7), vec![42; 1 << 20])
            .await
            .expect("snapshot written");
        let read = db.begin_read().expect("read");
        let meta = read.open_table(META).expect("meta table");
        assert!(meta.get(SNAPSHOT_DATA_KEY).expect("get").is_none());
        let snap = read.open_table(SNAPSHOT).expect("snapshot table");
        assert_eq!(
            snap.get(SNAPSHOT_DATA_KEY)
                .expect("get")
                .map(|v| v.value().len()),
            Some(1 << 20)
        );
        drop((meta, snap, read));
        let (m, d) = read_snapshot(&db).expect("reads").expect("present");
        assert_eq!(
            (m.last_log_id.map(|l| l.index), d.len()),
            (Some(7), 1 << 20)
        );
    }

    /// A data directory from before the snapshot table still restores, and its next snapshot
    /// moves the image out of the per-commit table.
    #[tokio::test]
    async fn an_image_left_in_the_meta_table_is_read_and_then_moved() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Arc::new(Database::create(dir.path().join("raft.redb")).expect("db"));
        {
            let txn = db.begin_write().expect("write");
            {
                let mut meta = txn.open_table(META).expect("meta");
                meta.insert(SNAPSHOT_META_KEY, stored(3).as_slice())
                    .expect("insert");
                meta.insert(SNAPSHOT_DATA_KEY, [1u8, 2, 3].as_slice())
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let (m, d) = read_snapshot(&db).expect("reads").expect("present");
        assert_eq!(
            (m.last_log_id.map(|l| l.index), d),
            (Some(3), vec![1, 2, 3])
        );
        let (_log, persist) = LogStore::open(db.clone(), 0).expect("opens");
        persist
            .put_snapshot(9, stored(9), vec![9; 10])
            .await
            .expect("snapshot written");
        let read = db.begin_read().expect("read");
        let meta = read.open_table(META).expect("meta table");
        assert!(meta.get(SNAPSHOT_DATA_KEY).expect("get").is_none());
        assert!(meta.get(SNAPSHOT_META_KEY).expect("get").is_none());
        drop((meta, read));
        let (m, d) = read_snapshot(&db).expect("reads").expect("present");
        assert_eq!((m.last_log_id.map(|l| l.index), d), (Some(9), vec![9; 10]));
    }
}
