//! Consul's snapshot save and restore (`/v1/snapshot`), over the facade.
//!
//! ```text
//!  save:    check_consistency ─► copy the store (read lock) ─► encode image ─► archive (gzip tar)
//!  restore: archive ─► verify sums + versions ─► decode image ─► write(Command::Restore)
//!                                                                  └─► every replica, in log order
//! ```
//!
//! * Save is served from this server's own store after the consistency check: on a follower
//!   `default` first asks the leader for a read index and waits until it has applied it, so the
//!   archive holds every write acknowledged before the request (no copy of the image crosses
//!   the server RPC). `?stale` skips the check, as for any read.
//! * Restore verifies and decodes the whole archive before it proposes anything: a corrupt or
//!   foreign archive changes nothing. The image then travels as one log entry, so it must fit
//!   a server RPC message ([`RESTORE_MAX_STATE_BYTES`]). Applying it replaces the store on every
//!   replica and wakes every blocking query (the state machine calls the observer's `reset`);
//!   no index a query reports goes below the entry's (see `lotse_core`'s `store/restore.rs`).
//! * Sessions come back with the image. The leader's TTL timers follow the sessions table: its
//!   index moved, so the leader's next tick arms a fresh timer for every restored TTL session
//!   that has none (`reconcile_timers`).

pub mod archive;
pub mod stats;

use std::time::{SystemTime, UNIX_EPOCH};

use lotse_consensus::rpc::MAX_MESSAGE_BYTES;
use lotse_consensus::state_machine::{decode_image, encode_image};
use lotse_core::snapshot::SNAPSHOT_FORMAT;
use lotse_core::{Command, Store};

use crate::{Consistency, QueryMeta, Server, ServerError};
use archive::{ArchiveError, ArchiveMeta, LOTSE_FORMAT, META_VERSION};

/// The largest store image a restore takes: the log entry that carries it, with its framing,
/// must fit one server RPC message (64 MiB), or followers could never receive it.
pub const RESTORE_MAX_STATE_BYTES: usize = MAX_MESSAGE_BYTES - (64 << 10);

/// Why a restore was refused or failed. Only [`SnapshotError::Server`] can have happened after
/// the restore was proposed; the others changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The archive is corrupt, foreign or of an unknown version.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The checksums matched but the store image inside cannot be decoded by this build.
    #[error("failed to decode snapshot state: {0}")]
    Image(String),
    /// The image cannot travel as one log entry.
    #[error("snapshot state is {size} bytes; a restore takes at most {limit} bytes (one Raft log entry must fit a {max} byte server RPC message)", max = MAX_MESSAGE_BYTES)]
    TooLarge { size: usize, limit: usize },
    /// Writing the restore through Raft failed (no leader, shutting down...).
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A saved archive and the log position it holds.
#[derive(Debug)]
pub struct Saved {
    pub meta: QueryMeta,
    pub archive: Vec<u8>,
    pub index: u64,
}

fn unix_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Verifies an archive and decodes its image for a restore; touches nothing.
pub fn prepare_restore(archive: &[u8]) -> Result<(ArchiveMeta, Store), SnapshotError> {
    let a = archive::read(archive)?;
    if a.state.len() > RESTORE_MAX_STATE_BYTES {
        return Err(SnapshotError::TooLarge {
            size: a.state.len(),
            limit: RESTORE_MAX_STATE_BYTES,
        });
    }
    let store = decode_image(&a.state).map_err(SnapshotError::Image)?;
    Ok((a.meta, store))
}

impl Server {
    /// `GET /v1/snapshot`: the whole store as an archive, after the `mode` consistency check.
    pub async fn snapshot_save(&self, mode: Consistency) -> Result<Saved, ServerError> {
        self.check_consistency(mode).await?;
        // Copy under the read lock, encode and compress outside it (applies wait only for
        // the copy, as when Raft builds a snapshot).
        let (store, last) = {
            let a = self.consensus.state.read();
            (a.store.clone(), a.last_applied)
        };
        let index = last.map_or(0, |l| l.index);
        let term = last.map_or(0, |l| l.leader_id.term);
        let archive = tokio::task::spawn_blocking(move || {
            let state = encode_image(&store);
            let now = unix_now();
            let meta = ArchiveMeta {
                version: META_VERSION,
                id: format!("{term}-{index}-{}", now.as_millis()),
                index,
                term,
                size: state.len() as u64,
                lotse_format: LOTSE_FORMAT,
                image_format: SNAPSHOT_FORMAT,
            };
            archive::write(&meta, &state, now.as_secs())
        })
        .await
        .map_err(|e| ServerError::Raft(format!("snapshot encoding failed: {e}")))?;
        let mut meta = self.query_meta(mode);
        meta.index = index.max(1);
        tracing::info!(index, bytes = archive.len(), "snapshot saved");
        Ok(Saved {
            meta,
            archive,
            index,
        })
    }

    /// `PUT /v1/snapshot`: verifies `archive` and restores it across the cluster. Returns the
    /// log index of the restore.
    pub async fn snapshot_restore(&self, archive: Vec<u8>) -> Result<u64, SnapshotError> {
        let (meta, store) = tokio::task::spawn_blocking(move || prepare_restore(&archive))
            .await
            .map_err(|e| ServerError::Raft(format!("snapshot decoding failed: {e}")))??;
        let (index, _) = self.write(Command::Restore(Box::new(store))).await?;
        tracing::info!(
            id = %meta.id,
            saved_index = meta.index,
            index,
            "snapshot restored"
        );
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_core::kv::KvWrite;

    fn archive_of(state: &[u8]) -> Vec<u8> {
        let meta = ArchiveMeta {
            version: META_VERSION,
            id: "1-1-0".into(),
            index: 1,
            term: 1,
            size: state.len() as u64,
            lotse_format: LOTSE_FORMAT,
            image_format: SNAPSHOT_FORMAT,
        };
        archive::write(&meta, state, 0)
    }

    #[test]
    fn a_saved_store_comes_back_whole() {
        let mut store = Store::new();
        store.apply(
            7,
            &Command::KvSet(KvWrite {
                key: "k".into(),
                value: b"v".to_vec(),
                flags: 0,
            }),
        );
        let (meta, back) = prepare_restore(&archive_of(&encode_image(&store))).expect("restores");
        assert_eq!(meta.index, 1);
        assert_eq!(back, store);
    }

    #[test]
    fn an_image_this_build_cannot_decode_is_refused_by_name() {
        // A well-formed archive around an image of a future format.
        let mut image = encode_image(&Store::new());
        image[1] = 99; // the format field follows the codec byte (a one-byte varint here)
        match prepare_restore(&archive_of(&image)) {
            Err(SnapshotError::Image(why)) => assert!(why.contains("format 99"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    /// Format 2 (before the restore floor) is still read: it is format 3 without the last
    /// field, which for a store never restored is a single zero byte.
    #[test]
    fn images_of_the_previous_format_still_decode() {
        let mut store = Store::new();
        store.apply(
            3,
            &Command::KvSet(KvWrite {
                key: "old".into(),
                value: b"layout".to_vec(),
                flags: 0,
            }),
        );
        let mut v2 = encode_image(&store);
        assert_eq!((v2[1], v2.last()), (3, Some(&0)));
        v2[1] = 2;
        v2.pop();
        let (_, back) = prepare_restore(&archive_of(&v2)).expect("format 2 decodes");
        assert_eq!(back, store);
    }

    /// The image rides in one log entry, which must fit one server RPC message.
    #[test]
    fn an_image_larger_than_a_log_entry_can_carry_is_refused() {
        let state = vec![0u8; RESTORE_MAX_STATE_BYTES + 1];
        match prepare_restore(&archive_of(&state)) {
            Err(e @ SnapshotError::TooLarge { .. }) => {
                assert!(e.to_string().contains("one Raft log entry"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
}
