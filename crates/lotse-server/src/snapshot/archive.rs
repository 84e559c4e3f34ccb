//! The snapshot archive: what `GET /v1/snapshot` answers, `PUT /v1/snapshot` takes and
//! `lotse snapshot save|restore|inspect` handle. Laid out as Consul's (`snapshot/archive.go`):
//! a gzip-compressed tar of
//!
//! ```text
//!   meta.json   {"Version":1,"ID":"2-41-1764252000000","Index":41,"Term":2,"Size":1234,
//!                "LotseFormat":1,"ImageFormat":3}
//!   state.bin   the store image, byte for byte what Raft snapshots hold
//!               (`lotse_consensus::state_machine::encode_image`: a codec byte, then postcard)
//!   SHA256SUMS  "<hex>  meta.json\n<hex>  state.bin\n" (sha256sum's format)
//! ```
//!
//! Only byte buffers in and out: no files, no sockets. Reading verifies everything before it
//! returns anything, so a caller that got an [`Archive`] holds a checked one. `Version` is
//! Consul's (Raft snapshot version 1); `LotseFormat` is this layout's version, and an archive
//! without it (Consul's own, say) is refused as foreign rather than misread.

use std::io::Read;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Consul's `meta.json` `Version` (hashicorp/raft's snapshot version).
pub const META_VERSION: u32 = 1;
/// The archive layout this build writes and reads.
pub const LOTSE_FORMAT: u32 = 1;

const META: &str = "meta.json";
const STATE: &str = "state.bin";
const SUMS: &str = "SHA256SUMS";

/// `meta.json`. Consul's field names; the two `Lotse*`/`Image*` fields are ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveMeta {
    pub version: u32,
    #[serde(rename = "ID")]
    pub id: String,
    pub index: u64,
    pub term: u64,
    /// The length of `state.bin` in bytes.
    pub size: u64,
    pub lotse_format: u32,
    /// The store image's own format (`lotse_core::snapshot::SNAPSHOT_FORMAT` when written).
    pub image_format: u32,
}

/// A verified archive: its metadata and the store image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub meta: ArchiveMeta,
    pub state: Vec<u8>,
}

/// Why an archive was refused. Nothing was restored in any case. The texts follow Consul's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// Not gzip, not tar, or cut short.
    #[error("failed reading snapshot: {0}")]
    Unreadable(String),
    /// A file the layout does not have.
    #[error("unexpected file {0:?} in snapshot")]
    UnexpectedFile(String),
    /// `meta.json` is not JSON of our shape (a foreign archive lacks `LotseFormat`).
    #[error("failed to decode snapshot metadata: {0}")]
    Meta(String),
    /// A checksum did not match, or a file or its checksum is missing.
    #[error("failed checking integrity of snapshot: {0}")]
    Integrity(String),
    /// Written by a layout or version this build does not read.
    #[error("unsupported snapshot version: {0}")]
    Version(String),
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds the gzip-compressed tar. `modified` is the files' mtime (seconds since the epoch).
pub fn write(meta: &ArchiveMeta, state: &[u8], modified: u64) -> Vec<u8> {
    let mut meta_json = serde_json::to_vec(meta).unwrap_or_default();
    // Go's json.Encoder ends the document with a newline.
    meta_json.push(b'\n');
    write_files(&meta_json, state, modified)
}

/// The archive of these two files, with their checksums.
fn write_files(meta_json: &[u8], state: &[u8], modified: u64) -> Vec<u8> {
    let sums = format!(
        "{}  {META}\n{}  {STATE}\n",
        sha256_hex(meta_json),
        sha256_hex(state)
    );
    let gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [(META, meta_json), (STATE, state), (SUMS, sums.as_bytes())] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(modified);
        header.set_entry_type(tar::EntryType::Regular);
        // Writing into a Vec fails only on a path the header cannot hold; ours are fixed.
        let _ = tar.append_data(&mut header, name, data);
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_default()
}

/// Reads and verifies an archive: every file present, every checksum right, versions known.
pub fn read(archive: &[u8]) -> Result<Archive, ArchiveError> {
    let unreadable = |e: std::io::Error| ArchiveError::Unreadable(e.to_string());
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let (mut meta, mut state, mut sums) = (None, None, None);
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let name = entry
            .path()
            .map_err(unreadable)?
            .to_string_lossy()
            .into_owned();
        let slot = match name.as_str() {
            META => &mut meta,
            STATE => &mut state,
            SUMS => &mut sums,
            _ => return Err(ArchiveError::UnexpectedFile(name)),
        };
        let mut data = Vec::with_capacity(entry.size().min(1 << 30) as usize);
        entry.read_to_end(&mut data).map_err(unreadable)?;
        *slot = Some(data);
    }
    let (Some(meta_json), Some(state)) = (meta, state) else {
        return Err(ArchiveError::Integrity(
            "file missing for \"state.bin\" or \"meta.json\"".into(),
        ));
    };
    verify_sums(sums.as_deref().unwrap_or_default(), &meta_json, &state)?;
    let meta: ArchiveMeta =
        serde_json::from_slice(&meta_json).map_err(|e| ArchiveError::Meta(e.to_string()))?;
    if meta.lotse_format != LOTSE_FORMAT {
        return Err(ArchiveError::Version(format!(
            "archive format {} (this build reads {LOTSE_FORMAT})",
            meta.lotse_format
        )));
    }
    if meta.version != META_VERSION {
        return Err(ArchiveError::Version(format!(
            "snapshot version {} (this build reads {META_VERSION})",
            meta.version
        )));
    }
    if meta.size != state.len() as u64 {
        return Err(ArchiveError::Integrity(format!(
            "state.bin holds {} bytes, meta.json says {}",
            state.len(),
            meta.size
        )));
    }
    Ok(Archive { meta, state })
}

/// Checks `SHA256SUMS` as Consul's `DecodeAndVerify`: each listed file matches, and both files
/// are listed.
fn verify_sums(sums: &[u8], meta: &[u8], state: &[u8]) -> Result<(), ArchiveError> {
    let text = std::str::from_utf8(sums)
        .map_err(|_| ArchiveError::Integrity("SHA256SUMS is not text".into()))?;
    let mut seen = (false, false);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some((sum, file)) = line.split_once("  ") else {
            return Err(ArchiveError::Integrity(format!("malformed line {line:?}")));
        };
        let (data, flag) = match file {
            META => (meta, &mut seen.0),
            STATE => (state, &mut seen.1),
            other => {
                return Err(ArchiveError::Integrity(format!(
                    "list missing hash for {other:?}"
                )))
            }
        };
        if !sum.eq_ignore_ascii_case(&sha256_hex(data)) {
            return Err(ArchiveError::Integrity(format!(
                "hash check failed for {file:?}"
            )));
        }
        *flag = true;
    }
    match seen {
        (false, _) => Err(ArchiveError::Integrity(format!(
            "file missing for {META:?}"
        ))),
        (_, false) => Err(ArchiveError::Integrity(format!(
            "file missing for {STATE:?}"
        ))),
        _ => Ok(()),
    }
}

/// Rewrites an archive's files through `edit` without fixing the checksums: for tests that
/// tamper with an archive.
#[cfg(test)]
fn rewrite(archive: &[u8], mut edit: impl FnMut(&str, &mut Vec<u8>)) -> Vec<u8> {
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let mut out = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        edit(&name, &mut data);
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        out.append_data(&mut header, &name, data.as_slice())
            .unwrap();
    }
    out.into_inner().unwrap().finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(state: &[u8]) -> ArchiveMeta {
        ArchiveMeta {
            version: META_VERSION,
            id: "2-41-1764252000000".into(),
            index: 41,
            term: 2,
            size: state.len() as u64,
            lotse_format: LOTSE_FORMAT,
            image_format: 3,
        }
    }

    fn sample() -> (Vec<u8>, Vec<u8>) {
        let state: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        (write(&meta(&state), &state, 1_764_252_000), state)
    }

    #[test]
    fn an_archive_round_trips_and_is_gzip_with_consuls_three_files() {
        let (bytes, state) = sample();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
        let a = read(&bytes).expect("reads");
        assert_eq!(a.meta, meta(&state));
        assert_eq!(a.state, state);
        let mut names = Vec::new();
        let sums = std::cell::RefCell::new(String::new());
        rewrite(&bytes, |n, d| {
            names.push(n.to_string());
            if n == SUMS {
                *sums.borrow_mut() = String::from_utf8(d.clone()).unwrap();
            }
        });
        assert_eq!(names, [META, STATE, SUMS]);
        let sums = sums.into_inner();
        assert!(
            sums.ends_with(&format!("{}  state.bin\n", sha256_hex(&state))),
            "{sums}"
        );
        let json: serde_json::Value = {
            let mut m = Vec::new();
            rewrite(&bytes, |n, d| {
                if n == META {
                    m = d.clone();
                }
            });
            serde_json::from_slice(&m).unwrap()
        };
        for field in ["Version", "ID", "Index", "Term", "Size", "LotseFormat"] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
    }

    #[test]
    fn a_tampered_state_is_refused_by_its_checksum() {
        let (bytes, _) = sample();
        let bad = rewrite(&bytes, |n, d| {
            if n == STATE {
                d[10] ^= 1;
            }
        });
        let e = read(&bad).unwrap_err();
        assert_eq!(
            e,
            ArchiveError::Integrity("hash check failed for \"state.bin\"".into())
        );
        assert!(e
            .to_string()
            .starts_with("failed checking integrity of snapshot"));
        // A missing checksum list is no better.
        let bad = rewrite(&bytes, |n, d| {
            if n == SUMS {
                d.clear();
            }
        });
        assert!(matches!(read(&bad), Err(ArchiveError::Integrity(_))));
    }

    #[test]
    fn unknown_versions_and_foreign_or_broken_archives_are_refused() {
        let state = b"image".to_vec();
        let newer = ArchiveMeta {
            lotse_format: LOTSE_FORMAT + 1,
            ..meta(&state)
        };
        let e = read(&write(&newer, &state, 0)).unwrap_err();
        assert!(matches!(e, ArchiveError::Version(_)), "{e}");
        let consul = ArchiveMeta {
            version: 2,
            ..meta(&state)
        };
        assert!(matches!(
            read(&write(&consul, &state, 0)),
            Err(ArchiveError::Version(_))
        ));
        // Consul's own meta.json lacks LotseFormat: foreign, refused by name.
        let consul_meta = br#"{"Version":1,"ID":"2-5-1","Index":5,"Term":2,"Size":5}"#;
        let e = read(&write_files(consul_meta, &state, 0)).unwrap_err();
        assert!(matches!(e, ArchiveError::Meta(_)), "{e}");
        assert!(e.to_string().contains("LotseFormat"), "{e}");
        assert!(matches!(
            read(b"not gzip at all"),
            Err(ArchiveError::Unreadable(_))
        ));
        let (bytes, _) = sample();
        assert!(read(&bytes[..bytes.len() / 2]).is_err(), "truncated");
    }

    #[test]
    fn a_size_that_disagrees_with_the_state_is_refused() {
        let state = b"image".to_vec();
        let wrong = ArchiveMeta {
            size: 99,
            ..meta(&state)
        };
        assert!(matches!(
            read(&write(&wrong, &state, 0)),
            Err(ArchiveError::Integrity(_))
        ));
    }
}
