//! Lifeguard's local health awareness (memberlist's `awareness`).
//!
//! SWIM assumes the prober is healthy. When *we* are slow (CPU starved, packets queued), our
//! probes time out and we wrongly suspect healthy peers. Lifeguard makes a node distrust
//! itself: the score rises on every probe round that failed and every time the pool suspected
//! us (we had to refute), and falls on every clean probe round. Probe period and probe timeout
//! are multiplied by `score + 1`, at most 8x (memberlist's `AwarenessMaxMultiplier`).

use foca::{Header, Incarnation, Message, State};

use crate::identity::NodeId;

/// Highest score; the multiplier is `score + 1`.
pub const MAX_SCORE: u32 = 7;

/// The health score and what it has already counted.
#[derive(Debug, Default)]
pub struct Awareness {
    score: u32,
    /// Highest incarnation of ours already counted as suspected (one bump per suspicion).
    counted: Option<Incarnation>,
}

impl Awareness {
    /// 0 is healthy; up to `MAX_SCORE`.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// A probe round ended; `failed` if the probed member never answered.
    pub fn probe_round(&mut self, failed: bool) {
        self.score = if failed {
            (self.score + 1).min(MAX_SCORE)
        } else {
            self.score.saturating_sub(1)
        };
    }

    /// Someone gossiped that we are suspect at `incarnation`.
    pub fn suspected(&mut self, incarnation: Incarnation) {
        if self.counted.is_none_or(|c| incarnation > c) {
            self.counted = Some(incarnation);
            self.score = (self.score + 1).min(MAX_SCORE);
        }
    }
}

/// If `packet` (a foca datagram) carries an update saying `me` is suspect, its incarnation.
///
/// This re-reads foca's wire format (postcard header, big-endian u16 count, members) because
/// foca refutes suspicion internally without telling us. Anything malformed yields `None`;
/// foca itself decides what to do with the packet.
pub fn suspicion_of(me: &NodeId, packet: &[u8]) -> Option<Incarnation> {
    let (header, rest): (Header<NodeId>, &[u8]) = postcard::take_from_bytes(packet).ok()?;
    if matches!(header.message, Message::Broadcast) || rest.len() < 2 {
        return None;
    }
    let count = u16::from_be_bytes([rest[0], rest[1]]);
    let mut rest = &rest[2..];
    // Bounded by `count` and by the packet length (every member takes at least one byte).
    for _ in 0..count {
        let (m, tail): (foca::Member<NodeId>, &[u8]) = postcard::take_from_bytes(rest).ok()?;
        if m.id() == me && m.state() == State::Suspect {
            return Some(m.incarnation());
        }
        rest = tail;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Codec;

    fn id(n: &str) -> NodeId {
        NodeId::new(n, "127.0.0.1:1".parse().unwrap(), 1)
    }

    fn packet(updates: &[foca::Member<NodeId>]) -> Vec<u8> {
        let mut buf = Vec::new();
        let header = Header {
            src: id("b"),
            src_incarnation: 0,
            dst: id("a"),
            message: Message::Gossip,
        };
        foca::PostcardCodec
            .encode_header(&header, &mut buf)
            .unwrap();
        buf.extend_from_slice(&(updates.len() as u16).to_be_bytes());
        for m in updates {
            foca::PostcardCodec.encode_member(m, &mut buf).unwrap();
        }
        buf
    }

    #[test]
    fn finds_suspicion_about_us_only() {
        let me = id("a");
        let p = packet(&[
            foca::Member::alive(id("c")),
            foca::Member::new(me.clone(), 3, State::Suspect),
        ]);
        assert_eq!(suspicion_of(&me, &p), Some(3));
        assert_eq!(suspicion_of(&id("c"), &p), None);
        let p = packet(&[foca::Member::new(id("c"), 3, State::Suspect)]);
        assert_eq!(suspicion_of(&me, &p), None);
        assert_eq!(suspicion_of(&me, &[1, 2, 3]), None);
    }

    #[test]
    fn score_rises_and_falls_within_bounds() {
        let mut a = Awareness::default();
        for _ in 0..20 {
            a.probe_round(true);
        }
        assert_eq!(a.score(), MAX_SCORE);
        for _ in 0..20 {
            a.probe_round(false);
        }
        assert_eq!(a.score(), 0);
        a.suspected(2);
        a.suspected(2);
        assert_eq!(a.score(), 1, "one bump per suspected incarnation");
        a.suspected(3);
        assert_eq!(a.score(), 2);
    }
}
