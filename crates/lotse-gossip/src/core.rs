//! The sans-IO membership core: foca plus everything foca does not know about.
//!
//! foca knows identities and Up/Down. Lotse also needs serf's view: statuses (Alive, Leaving,
//! Left, Failed), tags, a reap window, user events and a health score. `GossipCore` keeps that
//! view next to foca and is driven purely by its inputs:
//!
//! ```text
//!  packet bytes ─┐                       ┌─▶ packets to send  (addr, bytes)
//!  timer fired  ─┼─▶ GossipCore ─(foca)──┼─▶ timers to arm    (delay, timer)
//!  api command  ─┤    member table       ├─▶ member events
//!  now: Instant ─┘    ledger, health     └─▶ user events
//! ```
//!
//! No sockets, no clock reads, no tasks: the driver (or a test) owns all of that.
//!
//! Lifeguard (`lifeguard.rs`): the probe period and probe timeout are scaled by the local
//! health score + 1 when foca asks for those timers.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{atomic::AtomicU64, Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use foca::{Foca, Notification, OwnedNotification, PostcardCodec, Runtime, Timer};
use rand::{rngs::StdRng, RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::{
    identity::NodeId,
    lifeguard::{self, Awareness},
    member::{Member, MemberEvent, MemberStatus, UserEvent},
    notice::{Ledger, Notice, NoticeHandler, TAGS_LIMIT},
    GossipError, Timing,
};

/// Bound on members accepted in one push/pull.
const MAX_PUSH_PULL_MEMBERS: usize = 100_000;
/// Bound on notices accepted in one push/pull.
const MAX_PUSH_PULL_NOTICES: usize = 200_000;

type FocaCore = Foca<NodeId, PostcardCodec, StdRng, NoticeHandler>;

/// Collects what foca asks for during one call.
#[derive(Default)]
pub struct Outbox {
    /// Datagrams to send (not yet sealed).
    pub packets: Vec<(SocketAddr, Vec<u8>)>,
    /// Timers to arm.
    pub timers: Vec<(Duration, Timer<NodeId>)>,
    notes: Vec<OwnedNotification<NodeId>>,
    /// Probe timers are stretched by `awareness + 1` (Lifeguard).
    awareness: u32,
}

impl Runtime<NodeId> for Outbox {
    fn notify(&mut self, n: Notification<'_, NodeId>) {
        // DataSent/DataReceived fire for every packet; we do not need them.
        if !matches!(n, Notification::DataReceived(_) | Notification::DataSent(_)) {
            self.notes.push(n.to_owned());
        }
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.packets.push((to.addr, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        let after = match event {
            Timer::ProbeRandomMember(_) | Timer::SendIndirectProbe { .. } => {
                after.saturating_mul(self.awareness + 1)
            }
            _ => after,
        };
        self.timers.push((after, event));
    }
}

/// Full state exchanged over TCP (join and periodic anti-entropy).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushPull {
    /// Who sends it.
    pub from: NodeId,
    /// foca's full membership view, including the sender itself.
    pub members: Vec<foca::Member<NodeId>>,
    /// Encoded notices (tags, leave intents, recent user events).
    pub notices: Vec<Vec<u8>>,
    /// The sender's user-event Lamport clock.
    pub ltime: u64,
}

struct Entry {
    id: NodeId,
    status: MemberStatus,
    since: Instant,
    /// (gen, version) of the tags last reported in an event.
    tags_seen: (u64, u64),
    /// False while we wait for the member's tags (see `reconcile`); hidden until then.
    announced: bool,
}

/// See the module docs.
pub struct GossipCore {
    foca: FocaCore,
    out: Outbox,
    ledger: Arc<Mutex<Ledger>>,
    timing: Timing,
    members: BTreeMap<Arc<str>, Entry>,
    events: Vec<MemberEvent>,
    user_events: Vec<UserEvent>,
    tags_version: u64,
    health: Awareness,
    leaving: bool,
    sized_for: usize,
    changed: bool,
    rng: StdRng,
}

impl GossipCore {
    /// A core for `id` with initial `tags`. `clock` is the user-event Lamport clock.
    pub fn new(
        id: NodeId,
        tags: BTreeMap<String, String>,
        timing: Timing,
        clock: Arc<AtomicU64>,
        seed: u64,
        now: Instant,
    ) -> Result<Self, GossipError> {
        let ledger = Arc::new(Mutex::new(Ledger::new(clock)));
        let handler = NoticeHandler {
            ledger: ledger.clone(),
        };
        let foca = Foca::with_custom_broadcast(
            id.clone(),
            timing.foca_config(1),
            StdRng::seed_from_u64(seed),
            PostcardCodec,
            handler,
        );
        let mut members = BTreeMap::new();
        members.insert(
            id.name.clone(),
            Entry {
                id: id.clone(),
                status: MemberStatus::Alive,
                since: now,
                tags_seen: (id.gen, 0),
                announced: true,
            },
        );
        let mut core = Self {
            foca,
            out: Outbox::default(),
            ledger,
            timing,
            members,
            events: Vec::new(),
            user_events: Vec::new(),
            tags_version: 0,
            health: Awareness::default(),
            leaving: false,
            sized_for: 1,
            changed: true,
            rng: StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
        };
        core.set_tags(tags, now)?;
        Ok(core)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Our current identity.
    pub fn identity(&self) -> &NodeId {
        self.foca.identity()
    }

    /// Lifeguard health score, 0 (healthy) to `lifeguard::MAX_SCORE`.
    pub fn health(&self) -> u32 {
        self.health.score()
    }

    /// Handles one opened datagram. Malformed input is dropped (logged at debug).
    pub fn handle_packet(&mut self, data: &[u8], now: Instant) {
        if let Some(inc) = lifeguard::suspicion_of(self.foca.identity(), data) {
            self.health.suspected(inc);
            self.out.awareness = self.health.score();
        }
        if let Err(e) = self.foca.handle_data(data, &mut self.out) {
            debug!(error = %e, "dropped gossip packet");
        }
        self.after(now);
    }

    /// Handles a timer that foca asked for earlier.
    pub fn handle_timer(&mut self, timer: Timer<NodeId>, now: Instant) {
        let probe_round = matches!(timer, Timer::ProbeRandomMember(_));
        let before = self.out.notes.len();
        if let Err(e) = self.foca.handle_timer(timer, &mut self.out) {
            debug!(error = %e, "timer failed");
        }
        if probe_round {
            let failed = self.out.notes[before..]
                .iter()
                .any(|n| matches!(n, OwnedNotification::ProbeFailed(..)));
            self.health.probe_round(failed);
            self.out.awareness = self.health.score();
        }
        self.after(now);
    }

    /// Replaces our tags and re-announces them.
    pub fn set_tags(
        &mut self,
        tags: BTreeMap<String, String>,
        now: Instant,
    ) -> Result<(), GossipError> {
        let id = self.identity().clone();
        let notice = Notice::Tags {
            name: id.name.clone(),
            gen: id.gen,
            version: self.tags_version + 1,
            tags,
        };
        let bytes = notice.encode()?;
        if bytes.len() > TAGS_LIMIT {
            return Err(GossipError::TooLarge {
                what: "tags",
                size: bytes.len(),
                limit: TAGS_LIMIT,
            });
        }
        self.tags_version += 1;
        self.add_notice(&bytes, now);
        if let Some(e) = self.members.get_mut(&id.name) {
            e.tags_seen = (id.gen, self.tags_version);
        }
        if let Some(m) = self.member(&id.name) {
            self.events.push(MemberEvent::Update(m));
        }
        Ok(())
    }

    fn reannounce_tags(&mut self, now: Instant) {
        let tags = self
            .ledger()
            .tags
            .get(&self.identity().name)
            .map(|r| r.tags.clone())
            .unwrap_or_default();
        if let Err(e) = self.set_tags(tags, now) {
            warn!(error = %e, "cannot re-announce tags");
        }
    }

    /// Queues an encoded notice for dissemination (and records it locally).
    pub fn add_notice(&mut self, bytes: &[u8], now: Instant) {
        if let Err(e) = self.foca.add_broadcast(bytes) {
            debug!(error = %e, "notice not added");
        }
        self.after(now);
    }

    /// First step of a graceful leave: announce the intent.
    pub fn leave_intent(&mut self, now: Instant) {
        self.leaving = true;
        let id = self.identity().clone();
        if let Some(e) = self.members.get_mut(&id.name) {
            e.status = MemberStatus::Leaving;
        }
        let notice = Notice::Leave {
            name: id.name.clone(),
            gen: id.gen,
        };
        if let Ok(bytes) = notice.encode() {
            self.add_notice(&bytes, now);
        }
        if let Err(e) = self.foca.gossip(&mut self.out) {
            debug!(error = %e, "gossip failed");
        }
        self.after(now);
    }

    /// Custom broadcasts (leave intent, events, tags) not yet fully disseminated; 0 when
    /// there is nobody to disseminate them to.
    pub fn broadcast_backlog(&self) -> usize {
        if self.foca.num_members() == 0 {
            0
        } else {
            self.foca.custom_broadcast_backlog()
        }
    }

    /// Last step of a graceful leave: declare ourselves down to the pool.
    pub fn leave_finish(&mut self, now: Instant) {
        if let Err(e) = self.foca.leave_cluster(&mut self.out) {
            debug!(error = %e, "leave failed");
        }
        let name = self.identity().name.clone();
        if let Some(e) = self.members.get_mut(&name) {
            e.status = MemberStatus::Left;
            e.since = now;
        }
        self.changed = true;
        self.after(now);
    }

    /// Consul's `force-leave`: a failed member is announced as having left, on its behalf (a
    /// leave notice for its current generation, which every member applies as it would the
    /// member's own), so it ends `Left` everywhere instead of waiting to be reaped as failed.
    /// With `prune` it is also forgotten here at once. An alive member is not touched (it
    /// would only refute). Returns whether the member is known.
    pub fn force_leave(&mut self, name: &str, prune: bool, now: Instant) -> bool {
        let Some(e) = self.members.get(name) else {
            return false;
        };
        if !matches!(e.status, MemberStatus::Failed | MemberStatus::Left) {
            return true;
        }
        let notice = Notice::Leave {
            name: e.id.name.clone(),
            gen: e.id.gen,
        };
        match notice.encode() {
            Ok(bytes) => self.add_notice(&bytes, now),
            Err(err) => warn!(error = %err, "cannot encode a force-leave"),
        }
        if prune {
            if let Some(m) = self.member(name) {
                self.events.push(MemberEvent::Reap(m));
            }
            self.members.remove(name);
            self.ledger().forget(name);
            self.changed = true;
        }
        true
    }

    /// Our full state for a TCP push/pull.
    pub fn push_pull_state(&self) -> PushPull {
        let me = self.identity().clone();
        let mut members: Vec<_> = self.foca.iter_membership_state().cloned().collect();
        members.push(if self.leaving {
            foca::Member::down(me.clone())
        } else {
            foca::Member::alive(me.clone())
        });
        let ledger = self.ledger();
        let notices = ledger
            .all_notices()
            .iter()
            .filter_map(|n| n.encode().ok())
            .collect();
        let ltime = ledger.clock.load(std::sync::atomic::Ordering::SeqCst);
        PushPull {
            from: me,
            members,
            notices,
            ltime,
        }
    }

    /// Merges a peer's full state.
    pub fn apply_push_pull(&mut self, pp: PushPull, now: Instant) {
        if pp.members.len() > MAX_PUSH_PULL_MEMBERS || pp.notices.len() > MAX_PUSH_PULL_NOTICES {
            warn!(from = ?pp.from, "oversized push/pull dropped");
            return;
        }
        if self.leaving {
            return;
        }
        if let Err(e) = self
            .foca
            .apply_many(pp.members.into_iter(), true, &mut self.out)
        {
            debug!(error = %e, "push/pull members not applied");
        }
        for n in &pp.notices {
            if let Err(e) = self.foca.add_broadcast(n) {
                debug!(error = %e, "push/pull notice not applied");
            }
        }
        self.ledger()
            .clock
            .fetch_max(pp.ltime, std::sync::atomic::Ordering::SeqCst);
        self.after(now);
    }

    /// How long a new member stays hidden while we wait for its tags.
    fn tags_grace(&self) -> Duration {
        self.timing.probe_interval * 5
    }

    /// Announces members whose tags did not arrive in time, and reaps failed and left
    /// members older than `reap_after`.
    pub fn tick(&mut self, now: Instant) {
        let grace = self.tags_grace();
        let late: Vec<Arc<str>> = self
            .members
            .iter_mut()
            .filter(|(_, e)| !e.announced && now.saturating_duration_since(e.since) >= grace)
            .map(|(n, e)| {
                e.announced = true;
                n.clone()
            })
            .collect();
        for name in late {
            debug!(member = %name, "no tags heard; announcing the member without them");
            if let Some(m) = self.member(&name) {
                self.events.push(MemberEvent::Join(m));
                self.changed = true;
            }
        }
        let me = self.identity().name.clone();
        let reap_after = self.timing.reap_after;
        let due: Vec<Arc<str>> = self
            .members
            .iter()
            .filter(|(n, e)| {
                **n != me
                    && matches!(e.status, MemberStatus::Failed | MemberStatus::Left)
                    && now.saturating_duration_since(e.since) >= reap_after
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            if let Some(m) = self.member(&name) {
                self.events.push(MemberEvent::Reap(m));
            }
            self.members.remove(&name);
            self.ledger().forget(&name);
            self.changed = true;
        }
    }

    /// A random peer for periodic push/pull: an alive one, else a failed one (reconnect).
    pub fn push_pull_target(&mut self) -> Option<SocketAddr> {
        let me = self.identity().name.clone();
        for want in [MemberStatus::Alive, MemberStatus::Failed] {
            let cands: Vec<SocketAddr> = self
                .members
                .iter()
                .filter(|(n, e)| **n != me && e.status == want)
                .map(|(_, e)| e.id.addr)
                .collect();
            if !cands.is_empty() {
                return cands.get(self.rng.random_range(0..cands.len())).copied();
            }
        }
        None
    }

    /// Serf's reconnect: a random failed member, picked with probability failed / alive (at
    /// most 1), for an extra push/pull besides the periodic one. Without it the two sides of a
    /// healed partition never meet again: each still has alive members of its own for the
    /// periodic push/pull and never probes or gossips to members it declared failed.
    pub fn reconnect_target(&mut self) -> Option<SocketAddr> {
        let me = self.identity().name.clone();
        let failed: Vec<SocketAddr> = self
            .members
            .iter()
            .filter(|(n, e)| **n != me && e.status == MemberStatus::Failed)
            .map(|(_, e)| e.id.addr)
            .collect();
        if failed.is_empty() {
            return None;
        }
        let alive = self
            .members
            .values()
            .filter(|e| e.status == MemberStatus::Alive)
            .count()
            .max(1);
        let chance = (failed.len() as f64 / alive as f64).min(1.0);
        if !self.rng.random_bool(chance) {
            return None;
        }
        failed.get(self.rng.random_range(0..failed.len())).copied()
    }

    /// Everyone we know, including ourselves and not yet reaped failed/left members.
    pub fn members(&self) -> Vec<Member> {
        self.members
            .iter()
            .filter(|(_, e)| e.announced)
            .filter_map(|(n, _)| self.member(n))
            .collect()
    }

    fn member(&self, name: &str) -> Option<Member> {
        let e = self.members.get(name)?;
        let tags = self
            .ledger()
            .tags
            .get(name)
            .map(|r| r.tags.clone())
            .unwrap_or_default();
        Some(Member {
            name: name.to_string(),
            addr: e.id.addr.ip(),
            port: e.id.addr.port(),
            tags,
            status: e.status,
        })
    }

    /// Drains datagrams to send.
    pub fn take_packets(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        std::mem::take(&mut self.out.packets)
    }

    /// Drains timers to arm.
    pub fn take_timers(&mut self) -> Vec<(Duration, Timer<NodeId>)> {
        std::mem::take(&mut self.out.timers)
    }

    /// Drains membership events.
    pub fn take_events(&mut self) -> Vec<MemberEvent> {
        std::mem::take(&mut self.events)
    }

    /// Drains user events to deliver locally.
    pub fn take_user_events(&mut self) -> Vec<UserEvent> {
        std::mem::take(&mut self.user_events)
    }

    /// Whether the member list changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Turns foca's notifications and the ledger's news into our member table and events.
    fn after(&mut self, now: Instant) {
        let mut dirty: BTreeSet<Arc<str>> = BTreeSet::new();
        let mut renamed_self = false;
        for n in std::mem::take(&mut self.out.notes) {
            match n {
                OwnedNotification::MemberUp(id) | OwnedNotification::MemberDown(id) => {
                    dirty.insert(id.name);
                }
                OwnedNotification::Rename(_, new) => {
                    dirty.insert(new.name);
                }
                OwnedNotification::Rejoin(new) => {
                    info!(
                        gen = new.gen,
                        "declared down by the pool, rejoined with a new generation"
                    );
                    if let Some(e) = self.members.get_mut(&new.name) {
                        e.id = new.clone();
                    }
                    renamed_self = true;
                }
                OwnedNotification::Defunct if !self.leaving => {
                    warn!("declared down by the pool and cannot rejoin");
                }
                _ => {}
            }
        }
        {
            let ledger = self.ledger.clone();
            let mut l = ledger.lock().unwrap_or_else(PoisonError::into_inner);
            dirty.extend(l.tags_changed.drain(..));
            dirty.extend(l.new_leaves.drain(..));
            self.user_events.append(&mut l.delivered);
        }
        for name in dirty {
            self.reconcile(name, now);
        }
        if renamed_self {
            self.changed = true;
            self.reannounce_tags(now);
        }
        self.resize();
    }

    fn resize(&mut self) {
        let n = self.foca.num_members() + 1;
        let t = &self.timing;
        if t.suspicion_timeout(n) != t.suspicion_timeout(self.sized_for)
            || t.retransmits(n) != t.retransmits(self.sized_for)
        {
            if let Err(e) = self.foca.set_config(t.foca_config(n)) {
                warn!(error = %e, "cannot resize foca config");
            }
        }
        self.sized_for = n;
    }

    fn reconcile(&mut self, name: Arc<str>, now: Instant) {
        if name == self.identity().name {
            return;
        }
        let view = self
            .foca
            .iter_membership_state()
            .find(|m| m.id().name == name)
            .map(|m| (m.id().clone(), m.state() != foca::State::Down));
        let (tag_ver, intent) = {
            let l = self.ledger();
            (
                l.tags
                    .get(&name)
                    .map(|r| (r.gen, r.version))
                    .unwrap_or((0, 0)),
                l.leaving.get(&name).copied(),
            )
        };
        let Some((id, active)) = view else { return };
        let leaving = intent.is_some_and(|g| g >= id.gen);
        // serf's Join carries the tags; ours travel separately and usually arrive within a
        // gossip round or two. Until they do (or `tags_grace` passes) a new member is kept
        // hidden, so that users never classify a server as a client for lack of its tags.
        let has_tags = tag_ver != (0, 0);
        let event = match self.members.get_mut(&name) {
            None if active => {
                self.members.insert(
                    name.clone(),
                    Entry {
                        id,
                        status: if leaving {
                            MemberStatus::Leaving
                        } else {
                            MemberStatus::Alive
                        },
                        since: now,
                        tags_seen: tag_ver,
                        announced: has_tags,
                    },
                );
                has_tags.then_some(MemberEvent::Join as fn(Member) -> MemberEvent)
            }
            None => None,
            Some(e) if active && !e.announced => {
                e.id = id;
                e.tags_seen = tag_ver;
                e.status = if leaving {
                    MemberStatus::Leaving
                } else {
                    MemberStatus::Alive
                };
                e.announced = has_tags;
                has_tags.then_some(MemberEvent::Join as fn(Member) -> MemberEvent)
            }
            Some(e) if !e.announced => {
                // Went down before we ever announced it: forget it quietly.
                self.members.remove(&name);
                None
            }
            Some(e) if active => {
                let was_up = matches!(e.status, MemberStatus::Alive | MemberStatus::Leaving);
                let moved = e.id != id;
                let retagged = e.tags_seen != tag_ver;
                e.id = id;
                e.tags_seen = tag_ver;
                e.status = if leaving {
                    MemberStatus::Leaving
                } else {
                    MemberStatus::Alive
                };
                if !was_up {
                    e.since = now;
                    Some(MemberEvent::Join as fn(Member) -> MemberEvent)
                } else if moved || retagged {
                    Some(MemberEvent::Update as fn(Member) -> MemberEvent)
                } else {
                    None
                }
            }
            Some(e) => {
                if e.id.gen > id.gen {
                    None // stale news about an older generation
                } else {
                    let was_up = matches!(e.status, MemberStatus::Alive | MemberStatus::Leaving);
                    let status = if leaving {
                        MemberStatus::Left
                    } else {
                        MemberStatus::Failed
                    };
                    let upgrade = e.status == MemberStatus::Failed && status == MemberStatus::Left;
                    e.id = id;
                    if was_up || upgrade {
                        e.status = status;
                        e.since = now;
                    }
                    match (was_up, status) {
                        (true, MemberStatus::Left) => {
                            Some(MemberEvent::Leave as fn(Member) -> MemberEvent)
                        }
                        (true, _) => Some(MemberEvent::Failed as fn(Member) -> MemberEvent),
                        _ => None,
                    }
                }
            }
        };
        self.changed = true;
        if let (Some(make), Some(m)) = (event, self.member(&name)) {
            debug!(member = %m.name, status = ?m.status, "membership changed");
            self.events.push(make(m));
        }
    }
}

#[cfg(test)]
mod tests;
