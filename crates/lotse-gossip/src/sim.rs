//! A deterministic simulation of the foca core: N members, a lossy network and a virtual
//! clock in one process, no sockets.
//!
//! It answers the sizing questions a real test cannot reach: how long until *every* member
//! knows that one member died, how many live members get wrongly declared down under packet
//! loss, and how many bytes a member sends per second, all with the foca configuration that
//! `Timing::foca_config` produces for the live pool (memberlist LAN defaults unless told
//! otherwise). Identities are the real `NodeId`s, so packet sizes are realistic; the
//! envelope adds 1 byte (plaintext) or 29 bytes (AES-GCM) per packet on top.
//!
//! Not simulated: TCP push/pull, custom broadcasts and Lifeguard's slowdown (those live in
//! the driver and core around foca).

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use foca::{Foca, Notification, PostcardCodec, Runtime, Timer};
use rand::{rngs::StdRng, RngExt, SeedableRng};

use crate::{identity::NodeId, Timing};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of members.
    pub members: usize,
    /// Probability that any one packet is lost.
    pub loss: f64,
    /// RNG seed (the run is deterministic for a seed).
    pub seed: u64,
    /// Protocol timing.
    pub timing: Timing,
    /// Simulated time before the victim dies (steady state, also counted for false positives).
    pub warmup: Duration,
    /// Simulated time after the victim dies.
    pub observe: Duration,
    /// Mean one-way latency (uniform in [0.5x, 1.5x]).
    pub latency: Duration,
}

impl SimConfig {
    /// Defaults: memberlist LAN timing, 1 ms latency, 10 s warmup, observe long enough for
    /// the suspicion timeout plus dissemination.
    pub fn new(members: usize, loss: f64) -> Self {
        let timing = Timing::default();
        let observe = timing.suspicion_timeout(members) * 3 + Duration::from_secs(10);
        Self {
            members,
            loss,
            seed: 7,
            timing,
            warmup: Duration::from_secs(10),
            observe,
            latency: Duration::from_millis(1),
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// Members.
    pub members: usize,
    /// Packet loss rate.
    pub loss: f64,
    /// Time from the death until the first live member declared it down.
    pub first_detect: Option<Duration>,
    /// Time from the death until every live member had declared it down.
    pub all_detect: Option<Duration>,
    /// How many live members declared it down by the end.
    pub detected_by: usize,
    /// Distinct live members that some member wrongly declared down.
    pub false_positive_members: usize,
    /// Wrong down notifications in total.
    pub false_positive_events: usize,
    /// Live members that were themselves declared down and rejoined with a new identity.
    pub rejoins: usize,
    /// Mean foca payload bytes sent per member per simulated second.
    pub bytes_per_member_sec: f64,
    /// Mean packets sent per member per simulated second.
    pub packets_per_member_sec: f64,
    /// Wall-clock time of the run.
    pub wall: Duration,
}

impl SimReport {
    /// The table header matching `row`.
    pub fn header() -> &'static str {
        "members  loss  first_detect  all_detect  detected  fp_members  fp_events  rejoins  bytes/s/member  pkts/s/member  wall"
    }

    /// One table row.
    pub fn row(&self) -> String {
        let d = |x: Option<Duration>| {
            x.map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_else(|| "never".into())
        };
        format!(
            "{:>7}  {:>3.0}%  {:>12}  {:>10}  {:>8}  {:>10}  {:>9}  {:>7}  {:>14.0}  {:>13.1}  {:.1}s",
            self.members,
            self.loss * 100.0,
            d(self.first_detect),
            d(self.all_detect),
            self.detected_by,
            self.false_positive_members,
            self.false_positive_events,
            self.rejoins,
            self.bytes_per_member_sec,
            self.packets_per_member_sec,
            self.wall.as_secs_f64()
        )
    }
}

type SimFoca = Foca<NodeId, PostcardCodec, StdRng, foca::NoCustomBroadcast>;

#[derive(Default)]
struct Out {
    packets: Vec<(SocketAddr, Vec<u8>)>,
    timers: Vec<(Duration, Timer<NodeId>)>,
    down: Vec<NodeId>,
    rejoined: bool,
}

impl Runtime<NodeId> for Out {
    fn notify(&mut self, n: Notification<'_, NodeId>) {
        match n {
            Notification::MemberDown(id) => self.down.push(id.clone()),
            Notification::Rejoin(_) => self.rejoined = true,
            _ => {}
        }
    }
    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.packets.push((to.addr, data.to_vec()));
    }
    fn submit_after(&mut self, t: Timer<NodeId>, after: Duration) {
        self.timers.push((after, t));
    }
}

enum Event {
    Deliver(usize, Vec<u8>),
    Timer(usize, Timer<NodeId>),
}

fn addr_of(i: usize) -> SocketAddr {
    let b = (i as u32).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, b[1], b[2], b[3])), 8301)
}

struct World {
    nodes: Vec<SimFoca>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    rng: StdRng,
    cfg: SimConfig,
    dead: Option<usize>,
    bytes: u64,
    packets: u64,
    detected: Vec<Option<u64>>,
    fp_members: Vec<bool>,
    fp_events: usize,
    rejoined: Vec<bool>,
}

impl World {
    fn schedule(&mut self, at_us: u64, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at_us, self.seq)));
        self.events.insert(self.seq, e);
    }

    fn absorb(&mut self, from: usize, now: u64, out: Out) {
        for (after, t) in out.timers {
            self.schedule(now + after.as_micros() as u64, Event::Timer(from, t));
        }
        for (to, data) in out.packets {
            self.bytes += data.len() as u64;
            self.packets += 1;
            if self.rng.random_bool(self.cfg.loss.clamp(0.0, 1.0)) {
                continue;
            }
            let Some(&dst) = self.by_addr.get(&to) else {
                continue;
            };
            let mean = self.cfg.latency.as_micros() as u64;
            let lat = mean / 2 + self.rng.random_range(0..=mean.max(1));
            self.schedule(now + lat, Event::Deliver(dst, data));
        }
        for id in out.down {
            let Some(&who) = self.by_addr.get(&id.addr) else {
                continue;
            };
            if Some(who) == self.dead {
                if self.detected[from].is_none() {
                    self.detected[from] = Some(now);
                }
            } else if id.gen == 1 {
                // A live member's original identity declared down: a false positive.
                self.fp_members[who] = true;
                self.fp_events += 1;
            }
        }
        if out.rejoined {
            self.rejoined[from] = true;
        }
    }
}

/// Runs one simulation.
pub fn run(cfg: &SimConfig) -> SimReport {
    let wall = Instant::now();
    let n = cfg.members.max(2);
    let fcfg = cfg.timing.foca_config(n);
    let ids: Vec<NodeId> = (0..n)
        .map(|i| NodeId::new(&format!("node-{i}"), addr_of(i), 1))
        .collect();
    let mut w = World {
        nodes: Vec::with_capacity(n),
        by_addr: ids.iter().enumerate().map(|(i, id)| (id.addr, i)).collect(),
        queue: BinaryHeap::new(),
        events: HashMap::new(),
        seq: 0,
        rng: StdRng::seed_from_u64(cfg.seed),
        cfg: cfg.clone(),
        dead: None,
        bytes: 0,
        packets: 0,
        detected: vec![None; n],
        fp_members: vec![false; n],
        fp_events: 0,
        rejoined: vec![false; n],
    };
    // Everyone starts knowing everyone (as after a push/pull), with timers at random phases.
    for (i, id) in ids.iter().enumerate() {
        let mut f = Foca::new(
            id.clone(),
            fcfg.clone(),
            StdRng::seed_from_u64(cfg.seed ^ (i as u64).wrapping_mul(0x9e37_79b9)),
            PostcardCodec,
        );
        let mut out = Out::default();
        let others = ids
            .iter()
            .filter(|o| *o != id)
            .cloned()
            .map(foca::Member::alive);
        let _ = f.apply_many(others, false, &mut out);
        out.packets.clear();
        let phase = w
            .rng
            .random_range(0..cfg.timing.probe_interval.as_micros() as u64);
        for (after, t) in std::mem::take(&mut out.timers) {
            w.schedule(after.as_micros() as u64 + phase, Event::Timer(i, t));
        }
        w.nodes.push(f);
    }
    let fail_at = cfg.warmup.as_micros() as u64;
    let end = fail_at + cfg.observe.as_micros() as u64;
    let victim = 0usize;
    // Each iteration consumes one queued event; the clock only moves forward and stops at `end`.
    while let Some(Reverse((at, seq))) = w.queue.pop() {
        if at > end {
            break;
        }
        if w.dead.is_none() && at >= fail_at {
            w.dead = Some(victim);
        }
        let Some(ev) = w.events.remove(&seq) else {
            continue;
        };
        let mut out = Out::default();
        let node = match ev {
            Event::Deliver(to, data) => {
                if w.dead == Some(to) {
                    continue;
                }
                let _ = w.nodes[to].handle_data(&data, &mut out);
                to
            }
            Event::Timer(i, t) => {
                if w.dead == Some(i) {
                    continue;
                }
                let _ = w.nodes[i].handle_timer(t, &mut out);
                i
            }
        };
        w.absorb(node, at, out);
    }
    let live = n - 1;
    let detected: Vec<u64> = w.detected.iter().flatten().copied().collect();
    let since = |t: u64| Duration::from_micros(t.saturating_sub(fail_at));
    let secs = (end as f64) / 1e6;
    SimReport {
        members: n,
        loss: cfg.loss,
        first_detect: detected.iter().min().map(|t| since(*t)),
        all_detect: (detected.len() == live)
            .then(|| detected.iter().max().map(|t| since(*t)))
            .flatten(),
        detected_by: detected.len(),
        false_positive_members: w.fp_members.iter().filter(|b| **b).count(),
        false_positive_events: w.fp_events,
        rejoins: w.rejoined.iter().filter(|b| **b).count(),
        bytes_per_member_sec: w.bytes as f64 / n as f64 / secs,
        packets_per_member_sec: w.packets as f64 / n as f64 / secs,
        wall: wall.elapsed(),
    }
}
