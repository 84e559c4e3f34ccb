//! What the pool tells its users: members, their status, and membership events.

use std::{collections::BTreeMap, net::IpAddr};

/// A member as seen by the local node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Advertised IP.
    pub addr: IpAddr,
    /// Advertised gossip port.
    pub port: u16,
    /// The member's tags (may be empty for a moment after it was first seen).
    pub tags: BTreeMap<String, String>,
    /// Its status.
    pub status: MemberStatus,
}

/// Member status with serf's numbering (what `/v1/agent/members` reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemberStatus {
    /// Unknown.
    None = 0,
    /// Answering probes.
    Alive = 1,
    /// Announced that it is leaving, not gone yet.
    Leaving = 2,
    /// Left gracefully.
    Left = 3,
    /// Stopped answering and did not refute suspicion.
    Failed = 4,
}

/// A change of membership, delivered by `Gossip::subscribe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member became alive (new, restarted, or back after a failure).
    Join(Member),
    /// An alive member's tags or address changed.
    Update(Member),
    /// A member left gracefully.
    Leave(Member),
    /// A member failed.
    Failed(Member),
    /// A failed or left member was forgotten after `reap_after`.
    Reap(Member),
}

impl MemberEvent {
    /// The member the event is about.
    pub fn member(&self) -> &Member {
        match self {
            Self::Join(m) | Self::Update(m) | Self::Leave(m) | Self::Failed(m) | Self::Reap(m) => m,
        }
    }
}

/// A user event (Consul's `consul event`), delivered once per member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEvent {
    /// Lamport time at which it was fired.
    pub ltime: u64,
    /// Opaque payload (Consul puts its JSON event here).
    pub payload: Vec<u8>,
    /// Name of the node that fired it.
    pub origin: String,
}
