//! The core without sockets: two or three cores, a hand-pumped network and a virtual clock.

use std::{
    collections::BTreeMap,
    sync::{atomic::AtomicU64, Arc},
    time::{Duration, Instant},
};

use super::*;

struct Net {
    cores: Vec<GossipCore>,
    timers: Vec<(Instant, usize, Timer<NodeId>)>,
    now: Instant,
    /// Deliver every datagram twice (duplicates must be harmless).
    duplicate: bool,
}

impl Net {
    fn new(n: usize) -> Self {
        let now = Instant::now();
        let mut t = Timing::scaled(0.1);
        t.reap_after = Duration::from_secs(5);
        let cores = (0..n)
            .map(|i| {
                let id = NodeId::new(
                    &format!("c{i}"),
                    format!("127.0.0.1:{}", 9000 + i).parse().unwrap(),
                    1,
                );
                let tags = BTreeMap::from([("role".to_string(), "node".to_string())]);
                GossipCore::new(
                    id,
                    tags,
                    t.clone(),
                    Arc::new(AtomicU64::new(0)),
                    i as u64,
                    now,
                )
                .unwrap()
            })
            .collect();
        Self {
            cores,
            timers: Vec::new(),
            now,
            duplicate: false,
        }
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.cores.iter().position(|c| c.identity().addr == addr)
    }

    /// Delivers packets and fires timers until `dur` of virtual time has passed.
    fn run(&mut self, dur: Duration) {
        let end = self.now + dur;
        for _ in 0..100_000 {
            let mut moved = false;
            for i in 0..self.cores.len() {
                for (after, t) in self.cores[i].take_timers() {
                    self.timers.push((self.now + after, i, t));
                }
                for (to, data) in self.cores[i].take_packets() {
                    moved = true;
                    if let Some(j) = self.index_of(to) {
                        self.cores[j].handle_packet(&data, self.now);
                        if self.duplicate {
                            self.cores[j].handle_packet(&data, self.now);
                        }
                    }
                }
            }
            if moved {
                continue;
            }
            self.timers.sort_by_key(|(at, _, _)| *at);
            if self.timers.first().is_none_or(|(at, _, _)| *at > end) {
                break;
            }
            let (at, i, t) = self.timers.remove(0);
            self.now = self.now.max(at);
            self.cores[i].handle_timer(t, self.now);
        }
        self.now = end;
        for c in &mut self.cores {
            c.tick(end);
        }
    }

    fn join_all(&mut self) {
        for i in 1..self.cores.len() {
            let a = self.cores[0].push_pull_state();
            let b = self.cores[i].push_pull_state();
            self.cores[i].apply_push_pull(a, self.now);
            self.cores[0].apply_push_pull(b, self.now);
        }
        self.run(Duration::from_secs(2));
    }

    fn status(&self, at: usize, name: &str) -> Option<MemberStatus> {
        self.cores[at]
            .members()
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.status)
    }
}

#[test]
fn push_pull_join_makes_everyone_alive_with_join_events() {
    let mut net = Net::new(3);
    net.join_all();
    for (i, c) in net.cores.iter_mut().enumerate() {
        let ms = c.members();
        assert_eq!(ms.len(), 3, "core {i}: {ms:?}");
        assert!(ms
            .iter()
            .all(|m| m.status == MemberStatus::Alive && m.tags["role"] == "node"));
        let joins = c
            .take_events()
            .into_iter()
            .filter(|e| matches!(e, MemberEvent::Join(_)))
            .count();
        assert_eq!(joins, 2, "core {i}");
    }
}

#[test]
fn user_events_are_delivered_once_despite_duplicates() {
    let mut net = Net::new(3);
    net.duplicate = true;
    net.join_all();
    let notice = Notice::User {
        ltime: 5,
        id: 1,
        origin: "c0".into(),
        payload: b"hi".to_vec(),
    };
    let now = net.now;
    net.cores[0].add_notice(&notice.encode().unwrap(), now);
    net.run(Duration::from_secs(3));
    for c in &mut net.cores {
        let got = c.take_user_events();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].payload, b"hi");
        assert_eq!(got[0].ltime, 5);
    }
}

#[test]
fn tags_update_and_leave_then_reap() {
    let mut net = Net::new(3);
    net.join_all();
    net.cores[1].take_events();
    let now = net.now;
    let tags = BTreeMap::from([("role".to_string(), "consul".to_string())]);
    net.cores[0].set_tags(tags.clone(), now).unwrap();
    net.run(Duration::from_secs(2));
    let ev = net.cores[1].take_events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, MemberEvent::Update(m) if m.name == "c0" && m.tags == tags)),
        "{ev:?}"
    );
    let now = net.now;
    net.cores[2].leave_intent(now);
    net.run(Duration::from_secs(1));
    assert_eq!(net.status(0, "c2"), Some(MemberStatus::Leaving));
    let now = net.now;
    net.cores[2].leave_finish(now);
    net.run(Duration::from_secs(2));
    assert_eq!(net.status(0, "c2"), Some(MemberStatus::Left));
    assert_eq!(net.status(1, "c2"), Some(MemberStatus::Left));
    let ev = net.cores[1].take_events();
    assert!(ev
        .iter()
        .any(|e| matches!(e, MemberEvent::Leave(m) if m.name == "c2")));
    net.run(Duration::from_secs(6));
    assert_eq!(net.status(1, "c2"), None, "reaped after reap_after");
    let ev = net.cores[1].take_events();
    assert!(ev
        .iter()
        .any(|e| matches!(e, MemberEvent::Reap(m) if m.name == "c2")));
}

#[test]
fn oversized_tags_are_refused() {
    let mut net = Net::new(1);
    let now = net.now;
    let big = BTreeMap::from([("k".to_string(), "v".repeat(600))]);
    assert!(matches!(
        net.cores[0].set_tags(big, now),
        Err(GossipError::TooLarge { what: "tags", .. })
    ));
}

#[test]
fn garbage_packets_are_dropped() {
    let mut net = Net::new(2);
    net.join_all();
    let now = net.now;
    for junk in [&[][..], &[0u8], &[0xff; 64], &[1, 2, 3, 4, 5, 6, 7, 8]] {
        net.cores[0].handle_packet(junk, now);
    }
    let mut pp = net.cores[1].push_pull_state();
    pp.notices.push(vec![0xff, 0xff, 0xff]);
    net.cores[0].apply_push_pull(pp, now);
    net.run(Duration::from_secs(1));
    assert_eq!(net.status(0, "c1"), Some(MemberStatus::Alive));
}
