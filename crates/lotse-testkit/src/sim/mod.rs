//! Deterministic simulation of a Lotse server cluster in one process.
//!
//! Five servers run the real consensus stack (openraft core, `lotse-consensus`'s log store and
//! state machine, `lotse-core`'s store) on a single-threaded tokio runtime with paused time.
//! Their network ([`net`]) and disks ([`disk`]) are simulated: messages are delayed, lost and
//! partitioned, machines crash and lose unsynced writes. Every random choice (network, faults,
//! disks, clients, election timeouts) comes from one seed, and nothing runs outside the
//! runtime (the log writer runs as a task, [`lotse_consensus::log_store::Writer::Task`]), so a
//! seed replays exactly: the run's digest says so. That includes tokio's own choices (which
//! ready branch of a `select!` goes first), seeded through `rng_seed`, which needs the
//! `tokio_unstable` cfg that `.cargo/config.toml` sets; built without it, runs of one seed can
//! differ where two events fall on the same simulated instant.
//!
//! Checked: after healing, the cluster converges,
//! every server holds the same entry at every index and the same state; the clients' history
//! of register and lock operations is linearizable ([`crate::linearizability`]), which also
//! means no acknowledged write was lost and no two sessions held the lock at once. Clients
//! destroy their sessions now and then, as crashed clients' sessions are invalidated, and no
//! other session may take a lock so freed within its lock-delay
//! ([`crate::linearizability::check_lock_delays`]). Leaders are
//! recorded per term throughout; openraft 0.9 lets a higher node id win a term a lower one
//! already won (its leader ids are (term, node) pairs), so two leaders in one term are counted
//! (`shared_terms`), not failed: see `checks::shared_terms`.
//!
//! Clock jumps move one node's wall clock, which stamps the session and lock commands it
//! proposes; no replica reads a clock while applying, so every other check holds through
//! them. Lock-delay does trust the clocks: an acquire inside a delay while some clock was off
//! is counted (`lock_delays_cut_by_clock`), not failed.
//!
//! Not simulated: gossip membership (it has a simulation of its own, `lotse-gossip::sim`) and
//! the server facade (leases, `default` reads, forwarding, the write batcher; covered by the
//! Jepsen-style runs against real processes).

mod checks;
mod cluster;
pub mod disk;
mod nemesis;
pub mod net;
mod node;
mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lotse_consensus::openraft::Config;
use lotse_consensus::raft_config;
use lotse_core::kv::KvWrite;
use lotse_core::node::Node;
use lotse_core::{Command, Outcome, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::linearizability::{
    check_history, check_lock_delays, Call, Op, Outcome as Seen, Verdict,
};
use cluster::Cluster;
use nemesis::Nemesis;
use node::SimNode;
use workload::{client_session, register_key, Workload, REGISTERS};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    pub clients: u64,
    /// Simulated time under load and faults.
    pub duration: Duration,
    pub faults: bool,
    /// A defect planted on purpose, to show that the checks catch it.
    pub bug: Option<Bug>,
}

/// Defects the simulation can plant (tests prove the checks find each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Reads answer from whichever node was asked, without confirming leadership: a follower
    /// or a deposed leader serves what it has.
    StaleReads,
    /// Every other fsync is acknowledged without making anything durable (a disk cache that
    /// lies), so a crash can lose writes the log store was told were safe.
    LyingDisk,
    /// Lock acquires are stamped a lock-delay late, as by a server whose clock runs ahead by
    /// that much: every acquire sees the delay already over.
    FastLockClock,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 5,
            clients: 4,
            duration: Duration::from_secs(20),
            faults: true,
            bug: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct SimReport {
    pub seed: u64,
    pub ops: usize,
    pub ok_ops: usize,
    pub unknown_ops: usize,
    pub faults: Vec<String>,
    pub crashes: u32,
    pub terms_with_leader: usize,
    /// Terms led by more than one node (openraft's (term, node) leader order allows it; see
    /// `checks::shared_terms`).
    pub shared_terms: Vec<String>,
    pub messages_delivered: u64,
    pub messages_lost: u64,
    /// Acquires inside a lock-delay while some server's clock had jumped (not failures:
    /// lock-delay trusts the clocks).
    pub lock_delays_cut_by_clock: usize,
    /// Broken invariants; empty when the run passed.
    pub violations: Vec<String>,
    /// A digest of everything observable (history, faults, final state): equal for two runs of
    /// one seed when the simulation is deterministic.
    pub digest: u64,
    pub history: Vec<Op>,
}

impl SimReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn summary(&self) -> String {
        format!(
            "seed {}: {}; {} ops ({} ok, {} unknown), {} faults, {} crashes, {} terms with a leader \
             ({} shared), messages {} delivered / {} lost, {} lock-delays cut by a clock jump, \
             digest {:016x}",
            self.seed,
            if self.passed() { "ok".to_string() } else { format!("VIOLATED: {}", self.violations.join("; ")) },
            self.ops,
            self.ok_ops,
            self.unknown_ops,
            self.faults.len(),
            self.crashes,
            self.terms_with_leader,
            self.shared_terms.len(),
            self.messages_delivered,
            self.messages_lost,
            self.lock_delays_cut_by_clock,
            self.digest
        )
    }
}

/// Runs one seed to the end and checks it.
pub fn run(cfg: &SimConfig) -> SimReport {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true);
    // tokio's `select!` (openraft's core loop uses it) picks which ready branch to poll first
    // from the runtime's own generator; seeded, the same seed makes the same choices.
    #[cfg(tokio_unstable)]
    builder.rng_seed(tokio::runtime::RngSeed::from_bytes(&cfg.seed.to_le_bytes()));
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            return SimReport {
                seed: cfg.seed,
                violations: vec![format!("cannot build the runtime: {e}")],
                ..SimReport::default()
            }
        }
    };
    let report = rt.block_on(simulate(cfg));
    // Tasks still parked (replication loops of shut-down nodes) are dropped with the runtime.
    rt.shutdown_background();
    report
}

/// openraft's server configuration with this node's own fixed election timeout. openraft
/// draws each timeout from a thread-local generator the seed cannot reach; a range of one
/// millisecond leaves it no choice, and the seed picks the node's timeout instead.
fn node_config(rng: &mut StdRng) -> Result<Arc<Config>, String> {
    let mut c = raft_config(1, 100);
    let t = rng.gen_range(200..400);
    c.election_timeout_min = t;
    c.election_timeout_max = t + 1;
    // Keep little log behind a snapshot, so lagging nodes need snapshots installed.
    c.max_in_snapshot_log_to_keep = 20;
    c.validate().map(Arc::new).map_err(|e| e.to_string())
}

async fn simulate(cfg: &SimConfig) -> SimReport {
    let mut report = SimReport {
        seed: cfg.seed,
        ..SimReport::default()
    };
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let net = net::SimNet::new(StdRng::seed_from_u64(rng.gen()));
    let mut nodes = Vec::new();
    for id in 1..=cfg.nodes as u64 {
        match node_config(&mut rng) {
            Ok(c) => nodes.push(SimNode::new(id, c, cfg.bug == Some(Bug::LyingDisk))),
            Err(e) => {
                report.violations.push(e);
                return report;
            }
        }
    }
    let cluster = Arc::new(Cluster::new(net, nodes));
    let history = Arc::new(Mutex::new(Vec::new()));
    if let Err(e) = setup(&cluster, cfg, &history).await {
        report.violations.push(format!("setup: {e}"));
        return report;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workload = Arc::new(Workload {
        cluster: cluster.clone(),
        history: history.clone(),
        values: Arc::new(AtomicU64::new(1)),
        stop: stop.clone(),
        stale_reads: cfg.bug == Some(Bug::StaleReads),
        fast_lock_clock: cfg.bug == Some(Bug::FastLockClock),
    });
    let clients: Vec<_> = (1..=cfg.clients)
        .map(|id| tokio::spawn(workload.clone().client(id, rng.gen())))
        .collect();
    let nemesis = Nemesis {
        cluster: cluster.clone(),
        stop: stop.clone(),
        log: Vec::new(),
        error: None,
    };
    let nemesis = if cfg.faults {
        Some(tokio::spawn(nemesis.run(rng.gen())))
    } else {
        None
    };
    tokio::time::sleep(cfg.duration).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    if let Some(n) = nemesis {
        match n.await {
            Ok(n) => {
                report.faults = n.log;
                if let Some(e) = n.error {
                    report.violations.push(format!("nemesis: {e}"));
                }
            }
            Err(e) => report.violations.push(format!("nemesis task: {e}")),
        }
    }

    // Heal: every link, every node.
    cluster.net.heal();
    if let Err(e) = cluster.start_down(false).await {
        report
            .violations
            .push(format!("restart after the run: {e}"));
    }
    if let Err(e) = checks::settle(&cluster, Duration::from_secs(30)).await {
        report.violations.push(e);
    } else {
        final_reads(&cluster, &history, &mut report).await;
        report
            .violations
            .extend(checks::same_logs_and_state(&cluster).await);
    }
    report.shared_terms = checks::shared_terms(&cluster);

    let ops = std::mem::take(&mut *history.lock().unwrap_or_else(|e| e.into_inner()));
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in &ops {
        if op.outcome != Seen::Fail {
            by_key.entry(op.key.clone()).or_default().push(op.clone());
        }
    }
    for r in check_history(&by_key, Duration::from_secs(30)) {
        match r.verdict {
            Verdict::Linearizable => {}
            Verdict::Anomaly { stuck, .. } => report.violations.push(format!(
                "{} not linearizable: no order explains {:?}",
                r.key, by_key[&r.key][stuck]
            )),
            Verdict::Unknown => report
                .violations
                .push(format!("{}: checker ran out of time", r.key)),
        }
    }

    // The delay is stamped in whole milliseconds: 1 ms of slack. Lock-delay is measured by
    // the servers' wall clocks, so a clock jump between the invalidation and the acquire can
    // shorten it (as in Consul): such breaches are counted, not failed.
    let clock_faults = cluster
        .clock_faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for breach in check_lock_delays(&by_key, 1_000_000) {
        let from = breach.invalidate.invoke;
        let to = breach.acquire.complete.unwrap_or(u64::MAX);
        if clock_faults.iter().any(|(a, b)| *a <= to && from <= *b) {
            report.lock_delays_cut_by_clock += 1;
        } else {
            report
                .violations
                .push(format!("lock-delay breached: {breach}"));
        }
    }

    report.ops = ops.len();
    report.ok_ops = ops.iter().filter(|o| o.outcome == Seen::Ok).count();
    report.unknown_ops = ops.iter().filter(|o| o.outcome == Seen::Info).count();
    report.crashes = cluster.nodes.lock().await.iter().map(|n| n.crashes).sum();
    {
        let mut nodes = cluster.nodes.lock().await;
        for n in nodes.iter_mut() {
            if let Some(r) = cluster.handle(n.id) {
                n.note_panic(&r.raft).await;
            }
            if n.panics > 0 {
                report.violations.push(format!(
                    "node {}: its Raft core panicked {} times",
                    n.id, n.panics
                ));
            }
        }
    }
    report.terms_with_leader = cluster
        .leaders
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len();
    (report.messages_delivered, report.messages_lost) = cluster.net.counts();
    report.digest = digest(&ops, &report.faults, &final_state(&cluster));
    report.history = ops;

    let ids = cluster.ids();
    for id in ids {
        if let Some(r) = cluster.handle(id) {
            let _ = r.raft.shutdown().await;
        }
    }
    report
}

/// Starts the cluster and registers what sessions need: a node and each client's first
/// session (no checks, no TTL; clients destroy and replace their sessions as they go).
async fn setup(c: &Cluster, cfg: &SimConfig, history: &Mutex<Vec<Op>>) -> Result<(), String> {
    c.start_down(true).await?;
    let budget = Duration::from_secs(10);
    let node = Node {
        id: "00000000-0000-0000-0000-000000000000".into(),
        name: "sim".into(),
        address: "127.0.0.1".into(),
        datacenter: "dc1".into(),
        meta: BTreeMap::new(),
        create_index: 0,
        modify_index: 0,
    };
    c.write_surely(
        Command::NodeRegister {
            node,
            checks: Vec::new(),
        },
        budget,
    )
    .await?;
    for client in 1..=cfg.clients {
        let session = client_session(client, 0);
        match c
            .write_surely(
                Command::SessionCreate {
                    session,
                    now_ms: c.now_ms(),
                },
                budget,
            )
            .await?
        {
            Outcome::Rejected(e) if e != StoreError::SessionExists => {
                return Err(format!("session for client {client}: {e}"))
            }
            _ => {}
        }
    }
    // Something to read at the start of every register (in the history like any write).
    for i in 0..REGISTERS {
        let w = KvWrite {
            key: register_key(i),
            value: b"0".to_vec(),
            flags: 0,
        };
        let invoke = c.now_ns();
        c.write_surely(Command::KvSet(w), budget).await?;
        history.lock().unwrap_or_else(|e| e.into_inner()).push(Op {
            process: 0,
            key: register_key(i),
            invoke,
            complete: Some(c.now_ns()),
            outcome: Seen::Ok,
            call: Call::Write { value: "0".into() },
        });
    }
    Ok(())
}

/// One linearizable read of every register through the leader, once settled: a lost
/// acknowledged write shows up here even if no client read the key again.
async fn final_reads(c: &Cluster, history: &Mutex<Vec<Op>>, report: &mut SimReport) {
    let Some(lead) = c.current_leader().and_then(|id| c.handle(id)) else {
        report
            .violations
            .push("no leader for the final reads".into());
        return;
    };
    for i in 0..REGISTERS {
        let key = register_key(i);
        let invoke = c.now_ns();
        if let Err(e) = lotse_consensus::linearizable_read(&lead.raft, lead.read_floor).await {
            report.violations.push(format!("final read of {key}: {e}"));
            continue;
        }
        let value = lead
            .state
            .read()
            .store
            .kv_get(&key)
            .1
            .map(|e| String::from_utf8_lossy(&e.value).into_owned());
        history.lock().unwrap_or_else(|e| e.into_inner()).push(Op {
            process: 0,
            key,
            invoke,
            complete: Some(c.now_ns()),
            outcome: Seen::Ok,
            call: Call::Read {
                value,
                mode: Some("final".into()),
            },
        });
    }
}

fn final_state(c: &Cluster) -> String {
    c.ids()
        .into_iter()
        .filter_map(|id| c.handle(id))
        .map(|r| {
            let a = r.state.read();
            format!("{:?}", a.last_applied)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// FNV-1a over the history, the faults and the final positions.
fn digest(ops: &[Op], faults: &[String], state: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for op in ops {
        eat(serde_json::to_string(op).unwrap_or_default().as_bytes());
    }
    for f in faults {
        eat(f.as_bytes());
    }
    eat(state.as_bytes());
    h
}
