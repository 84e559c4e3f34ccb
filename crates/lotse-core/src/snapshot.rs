//! The serialisable image of the whole store, with a format version so an old snapshot is
//! either read correctly or refused loudly, never misread.

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreV2};

/// Bumped whenever the snapshot layout changes incompatibly. 2: the full catalog (nodes with
/// tagged addresses, services, checks and their indexes). 3: the store's restore floor (the
/// log index of the last snapshot restore). Format 2 is still read ([`SnapshotImageV2`]).
pub const SNAPSHOT_FORMAT: u32 = 3;

/// The oldest format this build still reads.
pub const SNAPSHOT_FORMAT_OLDEST: u32 = 2;

/// The first field of every image, whatever its format: read alone, it tells whether the rest
/// can be decoded at all (postcard reads fields in order and ignores what follows).
#[derive(Debug, Deserialize)]
pub struct SnapshotHeader {
    pub format: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotImage {
    pub format: u32,
    pub store: Store,
}

/// An image of format 2 (no restore floor); decode it when the header says 2.
#[derive(Debug, Deserialize)]
pub struct SnapshotImageV2 {
    pub format: u32,
    pub store: StoreV2,
}

impl From<SnapshotImageV2> for SnapshotImage {
    fn from(v: SnapshotImageV2) -> SnapshotImage {
        SnapshotImage {
            format: SNAPSHOT_FORMAT,
            store: v.store.into(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The snapshot was written by a newer (or unknown) format; nothing was loaded.
    #[error("snapshot format {0} is not supported (this build reads {SNAPSHOT_FORMAT_OLDEST} to {SNAPSHOT_FORMAT})")]
    Format(u32),
}

impl SnapshotImage {
    pub fn of(store: &Store) -> SnapshotImage {
        SnapshotImage {
            format: SNAPSHOT_FORMAT,
            store: store.clone(),
        }
    }

    /// Turns a decoded image back into a store, rebuilding derived indexes.
    pub fn into_store(self) -> Result<Store, SnapshotError> {
        if self.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format(self.format));
        }
        let mut store = self.store;
        store.after_restore();
        Ok(store)
    }
}
