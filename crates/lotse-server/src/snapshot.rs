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
use lotse_core::Command;

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
        let (meta, store) = tokio::task::spawn_blocking(move || {
            let a = archive::read(&archive)?;
            if a.state.len() > RESTORE_MAX_STATE_BYTES {
                return Err(SnapshotError::TooLarge {
                    size: a.state.len(),
                    limit: RESTORE_MAX_STATE_BYTES,
                });
            }
            let store = decode_image(&a.state).map_err(SnapshotError::Image)?;
            Ok((a.meta, store))
        })
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
