//! Custom broadcasts: tags, leave intents and user events, riding foca's piggyback queue.
//!
//! foca disseminates opaque byte strings and asks a `BroadcastHandler` whether each one it
//! receives is *new* (keep spreading it) or *stale* (drop it). That decision needs memory, the
//! `Ledger`: the newest tags per node, the leave intents, and a bounded window of recent user
//! events for deduplication. foca owns the handler, and the core needs to read the ledger, so
//! both hold an `Arc<Mutex<Ledger>>`; both live on the driver task, so the lock is never
//! contended.
//!
//! The same encoded notices travel in TCP push/pull, and are fed back through
//! `Foca::add_broadcast`, so one code path decides what is new whatever way it arrived.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use serde::{Deserialize, Serialize};

use crate::member::UserEvent;

/// Serf's event buffer size: how many recent user events we remember (for dedup and so that
/// push/pull can hand them to late joiners).
pub const EVENT_BUFFER: usize = 512;
/// Maximum encoded user-event notice, as serf's `UserEventSizeLimit`.
pub const USER_EVENT_LIMIT: usize = 512;
/// Maximum encoded tags notice, as serf's tag limit.
pub const TAGS_LIMIT: usize = 512;
/// Bound on remembered tag records and leave intents (far above the 10k-node target).
const MAX_RECORDS: usize = 65_536;

/// A custom broadcast. Variants are only ever added, never reordered (postcard tags by index).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Notice {
    /// A node's tags; (gen, version) orders them.
    Tags {
        /// Node name.
        name: Arc<str>,
        /// Identity generation of the node when it set them.
        gen: u64,
        /// Bumped on every `set_tags`.
        version: u64,
        /// The tags.
        tags: BTreeMap<String, String>,
    },
    /// A node announced that it leaves (so its Down becomes Left, not Failed).
    Leave {
        /// Node name.
        name: Arc<str>,
        /// Identity generation that leaves.
        gen: u64,
    },
    /// A user event.
    User {
        /// Lamport time.
        ltime: u64,
        /// Random id; with `ltime` it identifies the event.
        id: u64,
        /// Firing node.
        origin: String,
        /// Payload.
        payload: Vec<u8>,
    },
}

impl Notice {
    /// Encodes for the wire.
    pub fn encode(&self) -> Result<Vec<u8>, crate::GossipError> {
        postcard::to_stdvec(self).map_err(|e| crate::GossipError::Encode(e.to_string()))
    }
}

/// What foca keeps per queued broadcast, to let fresher ones replace stale ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeKey {
    /// Tags of a node at (gen, version).
    Tags(Arc<str>, u64, u64),
    /// Leave intent of a node at gen.
    Leave(Arc<str>, u64),
    /// User event (ltime, id).
    User(u64, u64),
}

impl foca::Invalidates for NoticeKey {
    fn invalidates(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Tags(a, ag, av), Self::Tags(b, bg, bv)) => a == b && (ag, av) >= (bg, bv),
            _ => self == other,
        }
    }
}

/// Tags as last heard from one node.
#[derive(Clone, Debug, Default)]
pub struct TagRecord {
    /// Generation.
    pub gen: u64,
    /// Version within the generation.
    pub version: u64,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// The handler's memory; see the module docs.
#[derive(Debug)]
pub struct Ledger {
    /// Newest tags per node name.
    pub tags: HashMap<Arc<str>, TagRecord>,
    /// Leave intents: node name -> generation that leaves.
    pub leaving: HashMap<Arc<str>, u64>,
    /// Recent user events by (ltime, id).
    pub events: BTreeMap<(u64, u64), Notice>,
    /// Lamport clock for user events (shared with the API, which ticks it when firing).
    pub clock: Arc<AtomicU64>,
    /// Names whose tags changed since the core last looked.
    pub tags_changed: Vec<Arc<str>>,
    /// Names with a new leave intent since the core last looked.
    pub new_leaves: Vec<Arc<str>>,
    /// User events to deliver locally.
    pub delivered: Vec<UserEvent>,
}

impl Ledger {
    /// An empty ledger around the shared clock.
    pub fn new(clock: Arc<AtomicU64>) -> Self {
        Self {
            tags: HashMap::new(),
            leaving: HashMap::new(),
            events: BTreeMap::new(),
            clock,
            tags_changed: Vec::new(),
            new_leaves: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// Records a notice; `Some(key)` iff it is news (foca should spread it).
    pub fn receive(&mut self, notice: Notice) -> Option<NoticeKey> {
        match notice {
            Notice::Tags {
                name,
                gen,
                version,
                tags,
            } => {
                let newer = self
                    .tags
                    .get(&name)
                    .is_none_or(|r| (gen, version) > (r.gen, r.version));
                if !newer || (self.tags.len() >= MAX_RECORDS && !self.tags.contains_key(&name)) {
                    return None;
                }
                self.tags
                    .insert(name.clone(), TagRecord { gen, version, tags });
                self.tags_changed.push(name.clone());
                Some(NoticeKey::Tags(name, gen, version))
            }
            Notice::Leave { name, gen } => {
                if self.leaving.get(&name).is_some_and(|g| *g >= gen)
                    || (self.leaving.len() >= MAX_RECORDS && !self.leaving.contains_key(&name))
                {
                    return None;
                }
                self.leaving.insert(name.clone(), gen);
                self.new_leaves.push(name.clone());
                Some(NoticeKey::Leave(name, gen))
            }
            Notice::User {
                ltime,
                id,
                origin,
                payload,
            } => {
                let key = (ltime, id);
                if self.events.contains_key(&key) {
                    return None;
                }
                // Serf: once the buffer is full, anything older than its oldest entry is too
                // old to tell apart from an already delivered event, so it is dropped.
                if self.events.len() >= EVENT_BUFFER
                    && self
                        .events
                        .keys()
                        .next()
                        .is_some_and(|oldest| key < *oldest)
                {
                    return None;
                }
                // Witness the Lamport time.
                self.clock
                    .fetch_max(ltime.saturating_add(1), Ordering::SeqCst);
                self.delivered.push(UserEvent {
                    ltime,
                    payload: payload.clone(),
                    origin: origin.clone(),
                });
                self.events.insert(
                    key,
                    Notice::User {
                        ltime,
                        id,
                        origin,
                        payload,
                    },
                );
                while self.events.len() > EVENT_BUFFER {
                    self.events.pop_first();
                }
                Some(NoticeKey::User(ltime, id))
            }
        }
    }

    /// Every notice worth handing to a peer in a push/pull.
    pub fn all_notices(&self) -> Vec<Notice> {
        let mut out = Vec::with_capacity(self.tags.len() + self.leaving.len() + self.events.len());
        out.extend(self.tags.iter().map(|(name, r)| Notice::Tags {
            name: name.clone(),
            gen: r.gen,
            version: r.version,
            tags: r.tags.clone(),
        }));
        out.extend(self.leaving.iter().map(|(name, gen)| Notice::Leave {
            name: name.clone(),
            gen: *gen,
        }));
        out.extend(self.events.values().cloned());
        out
    }

    /// Forgets a reaped node.
    pub fn forget(&mut self, name: &str) {
        self.tags.remove(name);
        self.leaving.remove(name);
    }
}

/// foca's `BroadcastHandler`, backed by the shared ledger.
pub struct NoticeHandler {
    /// The ledger (shared with the core).
    pub ledger: Arc<Mutex<Ledger>>,
}

/// A custom broadcast that failed to decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed custom broadcast: {0}")]
pub struct BadNotice(String);

impl<T> foca::BroadcastHandler<T> for NoticeHandler {
    type Key = NoticeKey;
    type Error = BadNotice;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&T>,
    ) -> Result<Option<NoticeKey>, BadNotice> {
        let notice: Notice = postcard::from_bytes(data).map_err(|e| BadNotice(e.to_string()))?;
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(ledger.receive(notice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Invalidates;

    fn ledger() -> Ledger {
        Ledger::new(Arc::new(AtomicU64::new(0)))
    }

    fn user(ltime: u64, id: u64) -> Notice {
        Notice::User {
            ltime,
            id,
            origin: "a".into(),
            payload: vec![1],
        }
    }

    #[test]
    fn user_events_are_delivered_once_and_witness_the_clock() {
        let mut l = ledger();
        assert!(l.receive(user(10, 1)).is_some());
        assert!(l.receive(user(10, 1)).is_none());
        assert!(l.receive(user(10, 2)).is_some());
        assert_eq!(l.delivered.len(), 2);
        assert_eq!(l.clock.load(Ordering::SeqCst), 11);
    }

    #[test]
    fn event_buffer_is_bounded_and_drops_too_old() {
        let mut l = ledger();
        for i in 0..(EVENT_BUFFER as u64 + 10) {
            assert!(l.receive(user(100 + i, 0)).is_some());
        }
        assert_eq!(l.events.len(), EVENT_BUFFER);
        assert!(l.receive(user(1, 0)).is_none(), "older than the window");
    }

    #[test]
    fn tags_only_move_forward() {
        let mut l = ledger();
        let t = |gen, version, v: &str| Notice::Tags {
            name: "n".into(),
            gen,
            version,
            tags: [("role".to_string(), v.to_string())].into(),
        };
        assert!(l.receive(t(1, 2, "a")).is_some());
        assert!(l.receive(t(1, 1, "old")).is_none());
        assert!(l.receive(t(1, 2, "a")).is_none());
        assert!(l.receive(t(2, 0, "b")).is_some(), "new generation wins");
        assert_eq!(l.tags["n"].tags["role"], "b");
        let k_new = NoticeKey::Tags("n".into(), 2, 0);
        let k_old = NoticeKey::Tags("n".into(), 1, 5);
        assert!(k_new.invalidates(&k_old));
        assert!(!k_old.invalidates(&k_new));
        assert!(!NoticeKey::User(1, 1).invalidates(&NoticeKey::User(1, 2)));
    }
}
