//! Bolero fuzz targets for what this crate decodes from other servers and from disk: every
//! type [`crate::codec::decode`] reads (commands, log entries, openraft's RPCs and their
//! replies, snapshot images) and the protobuf messages of the `Raft`/`Forward` services.
//!
//! Under `cargo test` each target replays its seed corpus
//! (`src/__fuzz__/fuzz__<target>/corpus`) and then runs bolero's random engine for its
//! default second. Coverage-guided (libFuzzer):
//!
//! ```sh
//! cargo bolero test fuzz::fuzz_codec_decode -p lotse-consensus --sanitizer NONE -T 60s
//! ```
//!
//! The seeds are written by `write_seed_corpus` (into the committed corpus with
//! `LOTSE_WRITE_SEEDS=1` after a format change; into a scratch directory otherwise).

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{CommittedLeaderId, EntryPayload, Vote};
use prost::Message as _;
use serde::{de::DeserializeOwned, Serialize};

use crate::codec::{decode, encode, CodecError, FORMAT_V1};
use crate::rpc::pb;
use crate::state_machine::{decode_image, encode_image};
use crate::{Entry, LogId, NodeId, TypeConfig};
use lotse_core::kv::KvWrite;
use lotse_core::Command;

/// Decodes `bytes` as a `T`. A record that decodes re-encodes to bytes that decode to a value
/// encoding the same way (postcard has one encoding per value, so this is a round trip). A
/// record that does not decode is refused for the right reason.
fn check<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    match decode::<T>(bytes) {
        Ok(value) => {
            let canonical = encode(&value);
            let back: T = decode(&canonical)
                .unwrap_or_else(|e| panic!("re-encoded {bytes:?} does not decode: {e}"));
            assert_eq!(encode(&back), canonical, "re-encoding of {bytes:?} drifts");
        }
        Err(CodecError::Empty) => assert!(bytes.is_empty()),
        Err(CodecError::Format(v)) => assert_eq!((bytes[0], v == FORMAT_V1), (v, false)),
        Err(CodecError::Decode(_)) => assert_eq!(bytes[0], FORMAT_V1),
    }
}

type RaftResult<T, E = openraft::error::Infallible> = Result<T, RaftError<NodeId, E>>;

/// The types [`decode`] is used for, in the order the input's first byte picks them.
const DECODERS: &[fn(&[u8])] = &[
    check::<Command>,
    check::<Entry>,
    check::<AppendEntriesRequest<TypeConfig>>,
    check::<VoteRequest<NodeId>>,
    check::<InstallSnapshotRequest<TypeConfig>>,
    check::<RaftResult<AppendEntriesResponse<NodeId>>>,
    check::<RaftResult<VoteResponse<NodeId>>>,
    check::<RaftResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError>>,
    check::<Vote<NodeId>>,
    check::<Option<LogId>>,
    |bytes| {
        // A snapshot image that decodes is a store; its image decodes to the same image.
        if let Ok(store) = decode_image(bytes) {
            let image = encode_image(&store);
            let back = decode_image(&image).expect("an image we wrote decodes");
            assert_eq!(encode_image(&back), image);
        }
    },
];

/// First byte: which type; the rest: the record (format byte, then postcard).
#[test]
fn fuzz_codec_decode() {
    bolero::check!().for_each(|input: &[u8]| {
        if let Some((&which, record)) = input.split_first() {
            DECODERS[usize::from(which) % DECODERS.len()](record);
        }
    });
}

/// A message that decodes re-encodes to one that decodes to the same message.
fn check_pb<M: prost::Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(m) = M::decode(bytes) {
        let again = M::decode(m.encode_to_vec().as_slice()).expect("re-encoded message decodes");
        assert_eq!(again, m);
    }
}

const PB_DECODERS: &[fn(&[u8])] = &[
    check_pb::<pb::Payload>,
    check_pb::<pb::ReadIndexRequest>,
    check_pb::<pb::ReadIndexReply>,
    check_pb::<pb::HttpRequest>,
    check_pb::<pb::HttpReply>,
    check_pb::<pb::ElectionRequest>,
    check_pb::<pb::ElectionReply>,
    check_pb::<pb::DnsQuery>,
    check_pb::<pb::DnsReply>,
];

/// First byte: which message; the rest: its protobuf encoding.
#[test]
fn fuzz_rpc_messages() {
    bolero::check!().for_each(|input: &[u8]| {
        if let Some((&which, msg)) = input.split_first() {
            PB_DECODERS[usize::from(which) % PB_DECODERS.len()](msg);
        }
    });
}

/// Writes the seed corpora: one real record of each decoded type, and a few protobuf
/// messages.
#[test]
fn write_seed_corpus() {
    let _cleanup = SeedRoot;
    let write = |target: &str, name: &str, which: u8, bytes: &[u8]| {
        let dir = seed_root().join(format!("fuzz__{target}")).join("corpus");
        std::fs::create_dir_all(&dir).expect("corpus directory");
        let data = [&[which][..], bytes].concat();
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("seed written");
    };
    let log_id = LogId::new(CommittedLeaderId::new(3, 1), 42);
    let cmd = Command::KvSet(KvWrite {
        key: "a/b".into(),
        value: vec![0, 1, 2, 255],
        flags: 7,
    });
    let entry = Entry {
        log_id,
        payload: EntryPayload::Normal(cmd.clone()),
    };
    let vote = Vote::new_committed(3, 1);
    write("codec_decode", "command-kv-set", 0, &encode(&cmd));
    write("codec_decode", "entry", 1, &encode(&entry));
    let append = AppendEntriesRequest::<TypeConfig> {
        vote,
        prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 41)),
        entries: vec![entry.clone(), entry],
        leader_commit: Some(log_id),
    };
    write("codec_decode", "append-entries", 2, &encode(&append));
    let vote_req = VoteRequest::<NodeId> {
        vote: Vote::new(4, 2),
        last_log_id: Some(log_id),
    };
    write("codec_decode", "vote-request", 3, &encode(&vote_req));
    let ok: RaftResult<AppendEntriesResponse<NodeId>> = Ok(AppendEntriesResponse::Success);
    write("codec_decode", "append-entries-ok", 5, &encode(&ok));
    let higher: RaftResult<VoteResponse<NodeId>> = Ok(VoteResponse {
        vote: Vote::new(5, 3),
        vote_granted: false,
        last_log_id: None,
    });
    write("codec_decode", "vote-response", 6, &encode(&higher));
    write("codec_decode", "vote", 8, &encode(&vote));
    write("codec_decode", "log-id", 9, &encode(&Some(log_id)));
    let mut store = lotse_core::Store::new();
    let _ = store.apply(1, &cmd);
    write("codec_decode", "snapshot-image", 10, &encode_image(&store));

    let http = pb::HttpRequest {
        method: "GET".into(),
        path_and_query: "/v1/kv/a?recurse".into(),
        headers: vec![pb::Header {
            name: "X-Consul-Token".into(),
            value: b"t".to_vec(),
        }],
        body: b"{}".to_vec(),
    };
    write("rpc_messages", "http-request", 3, &http.encode_to_vec());
    let payload = pb::Payload { data: encode(&cmd) };
    write("rpc_messages", "payload", 0, &payload.encode_to_vec());
    let dns = pb::DnsQuery {
        query: vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        tcp: true,
    };
    write("rpc_messages", "dns-query", 7, &dns.encode_to_vec());
}

/// Where `write_seed_corpus` writes: the committed corpus with `LOTSE_WRITE_SEEDS=1` (after a
/// format change), else a scratch directory, so that every test run still builds the seeds
/// and checks they can be made.
fn seed_root() -> std::path::PathBuf {
    if std::env::var_os("LOTSE_WRITE_SEEDS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/__fuzz__")
    } else {
        std::env::temp_dir().join(format!("lotse-seeds-{}", std::process::id()))
    }
}

/// Removes the scratch directory when the test ends.
struct SeedRoot;

impl Drop for SeedRoot {
    fn drop(&mut self) {
        if std::env::var_os("LOTSE_WRITE_SEEDS").is_none() {
            let _ = std::fs::remove_dir_all(seed_root());
        }
    }
}
