//! Bolero fuzz targets for what arrives from the network: the envelope around every
//! datagram, Lifeguard's re-reading of foca's wire format, and the core that handles an
//! opened datagram.
//!
//! Under `cargo test` each target replays its seed corpus
//! (`src/__fuzz__/fuzz__<target>/corpus`) and then runs bolero's random engine for its
//! default second. Coverage-guided (libFuzzer):
//!
//! ```sh
//! cargo bolero test fuzz::fuzz_envelope_open -p lotse-gossip --sanitizer NONE -T 60s
//! ```
//!
//! The binary seeds are written by `write_seed_corpus` (into the committed corpus with
//! `LOTSE_WRITE_SEEDS=1` after a wire-format change; into a scratch directory otherwise).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foca::{Codec, Header, Member, Message, PostcardCodec, State};

use crate::config::Timing;
use crate::core::GossipCore;
use crate::envelope::{open, seal, OpenError, OVERHEAD};
use crate::identity::NodeId;
use crate::keyring::Keyring;
use crate::lifeguard::{suspicion_of, MAX_SCORE};

/// The rings a packet may be opened with: none, one AES-256 key, and an AES-128 primary with
/// the AES-256 key installed beside it (a rotation in progress).
fn rings() -> [Option<Keyring>; 3] {
    let old = Keyring::new(vec![1; 32]).expect("a 32-byte key");
    let mut rotating = Keyring::new(vec![2; 16]).expect("a 16-byte key");
    rotating.install(vec![1; 32]).expect("a 32-byte key");
    [None, Some(old), Some(rotating)]
}

/// `open` of any bytes, with any ring, is a value (never a panic) that keeps the envelope's
/// rules; and `seal` then `open` gives the payload back, also across a key rotation.
#[test]
fn fuzz_envelope_open() {
    let rings = rings();
    bolero::check!().for_each(|input: &[u8]| {
        let Some((&which, packet)) = input.split_first() else {
            return;
        };
        let ring = rings[usize::from(which) % rings.len()].as_ref();
        match open(ring, packet) {
            Ok(payload) => match ring {
                None => assert_eq!(payload, packet[1..], "plaintext opens to itself"),
                Some(_) => assert_eq!(payload.len() + OVERHEAD, packet.len()),
            },
            Err(e) => match packet.first() {
                None => assert_eq!(e, OpenError::Truncated),
                Some(0) if ring.is_some() => assert_eq!(e, OpenError::UnexpectedPlaintext),
                Some(0) => panic!("plaintext refused without a ring: {e}"),
                Some(_) => {}
            },
        }
        // Round trips: the same ring, and the old key's packets at the rotating ring.
        for r in &rings {
            let sealed = seal(r.as_ref(), packet);
            assert_eq!(open(r.as_ref(), &sealed).as_deref(), Ok(packet));
        }
        let from_old = seal(rings[1].as_ref(), packet);
        assert_eq!(open(rings[2].as_ref(), &from_old).as_deref(), Ok(packet));
        let from_new = seal(rings[2].as_ref(), packet);
        assert_eq!(open(rings[1].as_ref(), &from_new), Err(OpenError::NoKey));
    });
}

fn id(name: &str, gen: u64) -> NodeId {
    NodeId::new(name, "127.0.0.1:1".parse().expect("literal"), gen)
}

/// foca's datagram: the header, a big-endian member count, the members.
fn packet(message: Message<NodeId>, updates: &[Member<NodeId>]) -> Vec<u8> {
    let header = Header {
        src: id("b", 1),
        src_incarnation: 0,
        dst: id("a", 1),
        message,
    };
    let mut buf = Vec::new();
    PostcardCodec
        .encode_header(&header, &mut buf)
        .expect("encodes");
    buf.extend_from_slice(&(updates.len() as u16).to_be_bytes());
    for m in updates {
        PostcardCodec.encode_member(m, &mut buf).expect("encodes");
    }
    buf
}

/// Any bytes: `suspicion_of` answers (never panics). And for a packet built from the input
/// (every 4 bytes one member update), it finds exactly the first update that says we are
/// suspect; a truncated copy yields that answer or `None`, never another incarnation.
#[test]
fn fuzz_suspicion_of() {
    let me = id("a", 1);
    bolero::check!().for_each(|input: &[u8]| {
        let _ = suspicion_of(&me, input);
        let Some((&first, rest)) = input.split_first() else {
            return;
        };
        let updates: Vec<Member<NodeId>> = rest
            .chunks_exact(4)
            .map(|c| {
                let name = ["a", "b", "c"][usize::from(c[0]) % 3];
                let state = [State::Alive, State::Suspect, State::Down][usize::from(c[1]) % 3];
                Member::new(
                    id(name, u64::from(c[1] >> 7) + 1),
                    u16::from_be_bytes([c[2], c[3]]),
                    state,
                )
            })
            .collect();
        let message = match first % 4 {
            0 => Message::Gossip,
            1 => Message::Broadcast,
            2 => Message::Ping(first),
            _ => Message::Announce,
        };
        let broadcast = matches!(message, Message::Broadcast);
        let p = packet(message, &updates);
        let expected = if broadcast {
            None
        } else {
            updates
                .iter()
                .find(|m| m.id() == &me && m.state() == State::Suspect)
                .map(Member::incarnation)
        };
        assert_eq!(suspicion_of(&me, &p), expected);
        let cut = usize::from(first) % (p.len() + 1);
        let got = suspicion_of(&me, &p[..cut]);
        assert!(got.is_none() || got == expected, "{got:?} from {cut} bytes");
    });
}

/// The identity the `handle_packet` target's core has; the seeds are addressed to it.
fn fuzz_id(i: u16) -> NodeId {
    NodeId::new(
        &format!("c{i}"),
        format!("127.0.0.1:{}", 9000 + i).parse().expect("literal"),
        1,
    )
}

fn fuzz_core(i: u16, now: Instant) -> GossipCore {
    let tags = BTreeMap::from([("role".to_string(), "node".to_string())]);
    let timing = Timing::scaled(0.1);
    GossipCore::new(
        fuzz_id(i),
        tags,
        timing,
        Arc::new(AtomicU64::new(0)),
        7,
        now,
    )
    .expect("core starts")
}

/// One opened datagram at a core that knows one peer (`c1`), delivered twice (duplicates
/// happen) and followed by a tick: no panic, the Lifeguard score stays in range, and the node
/// still lists itself.
#[test]
fn fuzz_handle_packet() {
    bolero::check!().for_each(|data: &[u8]| {
        let now = Instant::now();
        let mut core = fuzz_core(0, now);
        core.apply_push_pull(fuzz_core(1, now).push_pull_state(), now);
        core.handle_packet(data, now);
        core.handle_packet(data, now);
        core.tick(now + Duration::from_millis(10));
        assert!(core.health() <= MAX_SCORE);
        assert!(
            core.members().iter().any(|m| m.name == "c0"),
            "we forgot ourselves"
        );
        let _ = core.take_packets();
        let _ = core.take_events();
    });
}

/// Writes the seed corpora: real datagrams between two cores (`c1` to `c0`) for
/// `handle_packet`, sealed and plain envelopes for `envelope_open`, and foca packets with a
/// suspicion for `suspicion_of`.
#[test]
fn write_seed_corpus() {
    let _cleanup = SeedRoot;
    let dir = |target: &str| {
        let d = seed_root().join(format!("fuzz__{target}")).join("corpus");
        std::fs::create_dir_all(&d).expect("corpus directory");
        d
    };
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::write(dir(target).join(format!("seed-{name}")), bytes).expect("seed written");
    };

    // Two cores joined by push/pull, then probing each other for a while.
    let mut now = Instant::now();
    let mut cores = [fuzz_core(0, now), fuzz_core(1, now)];
    let (a, b) = (cores[0].push_pull_state(), cores[1].push_pull_state());
    cores[0].apply_push_pull(b, now);
    cores[1].apply_push_pull(a, now);
    let mut timers: Vec<(Instant, usize, foca::Timer<NodeId>)> = Vec::new();
    let mut to_c0: Vec<Vec<u8>> = Vec::new();
    for _ in 0..2_000 {
        for (i, c) in cores.iter_mut().enumerate() {
            for (after, t) in c.take_timers() {
                timers.push((now + after, i, t));
            }
        }
        let mut moved = false;
        for i in 0..2 {
            for (to, data) in cores[i].take_packets() {
                moved = true;
                let j = usize::from(to.port() == 9001);
                if j == 0 && to_c0.len() < 12 && !to_c0.contains(&data) {
                    to_c0.push(data.clone());
                }
                cores[j].handle_packet(&data, now);
            }
        }
        if !moved {
            timers.sort_by_key(|(at, _, _)| *at);
            if timers.is_empty() {
                break;
            }
            let (at, i, t) = timers.remove(0);
            now = now.max(at);
            cores[i].handle_timer(t, now);
        }
    }
    assert!(!to_c0.is_empty(), "the cores exchanged no datagrams");
    for (n, p) in to_c0.iter().enumerate() {
        write("handle_packet", &format!("c1-to-c0-{n:02}"), p);
    }

    let rings = rings();
    write(
        "envelope_open",
        "plain",
        &[&[0u8, 0][..], b"hello"].concat(),
    );
    let sealed = seal(rings[1].as_ref(), &to_c0[0]);
    write(
        "envelope_open",
        "sealed-aes256",
        &[&[1u8][..], &sealed].concat(),
    );
    let sealed = seal(rings[2].as_ref(), &to_c0[0]);
    write(
        "envelope_open",
        "sealed-aes128",
        &[&[2u8][..], &sealed].concat(),
    );
    write(
        "envelope_open",
        "sealed-at-plain-ring",
        &[&[0u8][..], &sealed].concat(),
    );

    // Gossip carrying "a is suspect at 3" among other updates (4 bytes per update).
    write(
        "suspicion_of",
        "gossip-suspect",
        &[0, 2, 0, 0, 1, 0, 1, 0, 3, 0, 2, 0, 0],
    );
    write("suspicion_of", "broadcast", &[1, 0, 1, 0, 3]);
    let p = packet(
        Message::Gossip,
        &[Member::new(id("a", 1), 3, State::Suspect)],
    );
    write("suspicion_of", "raw-packet", &p);
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
