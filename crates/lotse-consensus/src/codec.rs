//! Versioned encodings for what the log store persists. Every record starts with a one-byte
//! format version; a record of an unknown version is refused (fatal), never guessed at.

use serde::{de::DeserializeOwned, Serialize};

/// The current record format.
pub const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error("unknown record format {0}")]
    Format(u8),
    #[error("cannot decode record: {0}")]
    Decode(#[from] postcard::Error),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    // postcard only fails on a writer error, and a Vec never fails to grow.
    out.extend(postcard::to_stdvec(value).unwrap_or_default());
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_V1, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(CodecError::Format(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entry;
    use lotse_core::kv::KvWrite;
    use lotse_core::Command;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 42),
            payload: EntryPayload::Normal(Command::KvSet(KvWrite {
                key: "a/b".into(),
                value: vec![0, 1, 2, 255],
                flags: 7,
            })),
        };
        let back: Entry = decode(&encode(&e)).expect("decodes");
        assert_eq!(back.log_id, e.log_id);
        assert_eq!(format!("{:?}", back.payload), format!("{:?}", e.payload));
    }

    #[test]
    fn unknown_versions_are_refused() {
        let mut bytes = encode(&5u64);
        bytes[0] = 9;
        assert!(matches!(decode::<u64>(&bytes), Err(CodecError::Format(9))));
        assert!(matches!(decode::<u64>(&[]), Err(CodecError::Empty)));
    }
}
