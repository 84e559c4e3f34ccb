//! One simulated server: the real log store, state machine and openraft core, on a
//! [`SimDisk`] and the [`SimNet`]; crashed and restarted at the nemesis's will.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lotse_consensus::log_store::{LogStore, Writer};
use lotse_consensus::openraft::error::Fatal;
use lotse_consensus::openraft::{BasicNode, Config, ServerState};
use lotse_consensus::state_machine::StateMachine;
use lotse_consensus::{ApplyObserver, LotseRaft, NodeId, ReadFloor, SharedState};
use lotse_core::Changes;
use rand::rngs::StdRng;
use redb::Database;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::disk::SimDisk;
use super::net::{SimFactory, SimNet};

/// Bytes of durable log entries kept in memory: small, so that reads go to the disk too.
const LOG_MEMORY: usize = 64 << 10;

/// For every term, each node that led in it and when (simulated ms) it was first seen leading;
/// more than one node in a term breaks Raft's safety.
pub type Leaders = Arc<Mutex<BTreeMap<u64, BTreeMap<NodeId, u64>>>>;

struct Quiet;

impl ApplyObserver for Quiet {
    fn applied(&self, _changes: &[Changes]) {}
    fn reset(&self) {}
}

/// The handles of a running node.
#[derive(Clone)]
pub struct Running {
    pub raft: LotseRaft,
    pub state: Arc<SharedState>,
    pub log: LogStore,
    /// What `Consensus` keeps for reads after a restart ([`ReadFloor`]).
    pub read_floor: ReadFloor,
}

pub struct SimNode {
    pub id: NodeId,
    pub config: Arc<Config>,
    disk: SimDisk,
    running: Option<(Running, JoinHandle<()>)>,
    /// Times it crashed.
    pub crashes: u32,
    /// Times its Raft core was found to have panicked (openraft's own assertions, which
    /// inconsistent storage trips): a violation, even if a restart hid it.
    pub panics: u32,
}

impl SimNode {
    /// `lying_disk`: see [`super::Bug::LyingDisk`].
    pub fn new(id: NodeId, config: Arc<Config>, lying_disk: bool) -> SimNode {
        SimNode {
            id,
            config,
            disk: if lying_disk {
                SimDisk::lying()
            } else {
                SimDisk::default()
            },
            running: None,
            crashes: 0,
            panics: 0,
        }
    }

    pub fn running(&self) -> Option<&Running> {
        self.running.as_ref().map(|(r, _)| r)
    }

    /// Starts the node from what its disk holds; `bootstrap` initialises a new cluster.
    pub async fn start(
        &mut self,
        net: &SimNet,
        leaders: &Leaders,
        started: Instant,
        bootstrap: Option<&BTreeMap<NodeId, BasicNode>>,
    ) -> Result<Running, String> {
        let db = Database::builder()
            .create_with_backend(self.disk.clone())
            .map_err(|e| format!("node {}: open disk: {e}", self.id))?;
        let db = Arc::new(db);
        let snapshot_index = StateMachine::stored_snapshot_index(&db)
            .map_err(|e| format!("node {}: {e}", self.id))?;
        let (log, persist) =
            LogStore::open_with(db.clone(), snapshot_index, LOG_MEMORY, Writer::Task)
                .map_err(|e| format!("node {}: {e}", self.id))?;
        let sm = StateMachine::open(db, persist, Arc::new(Quiet))
            .map_err(|e| format!("node {}: {e}", self.id))?;
        let state = sm.shared();
        let factory = SimFactory {
            id: self.id,
            net: net.clone(),
        };
        let raft = LotseRaft::new(self.id, self.config.clone(), factory, log.clone(), sm)
            .await
            .map_err(|e| format!("node {}: raft: {e}", self.id))?;
        if let Some(members) = bootstrap {
            raft.initialize(members.clone())
                .await
                .map_err(|e| format!("node {}: initialize: {e}", self.id))?;
        } else {
            // Round-trips through the core, so openraft's startup (which may restore this node
            // as leader) has run before the read floor is taken, as in `Consensus::start`.
            let _ = raft.is_initialized().await;
        }
        let read_floor = ReadFloor::at_start(&raft);
        let watcher = tokio::spawn(watch_leadership(
            self.id,
            raft.clone(),
            leaders.clone(),
            started,
        ));
        let running = Running {
            raft,
            state,
            log,
            read_floor,
        };
        net.attach(self.id, running.raft.clone());
        self.running = Some((running.clone(), watcher));
        Ok(running)
    }

    /// Power cut: the network loses the node, its disk keeps only what was synced (and some
    /// luck), and the old process can no longer write.
    pub async fn crash(&mut self, net: &SimNet, rng: &mut StdRng) {
        let Some((running, watcher)) = self.running.take() else {
            return;
        };
        net.detach(self.id);
        self.disk = self.disk.crash(rng);
        watcher.abort();
        let _ = running.raft.shutdown().await;
        self.note_panic(&running.raft).await;
        self.crashes += 1;
    }

    /// Counts a panic of `raft`'s core, if it had one (asked after it stopped, or of a live
    /// node, whose core answers unless it died).
    pub async fn note_panic(&mut self, raft: &LotseRaft) {
        if let Err(Fatal::Panicked) = raft.with_raft_state(|_| ()).await {
            self.panics += 1;
        }
    }
}

/// Records each term in which this node became leader.
async fn watch_leadership(id: NodeId, raft: LotseRaft, leaders: Leaders, started: Instant) {
    let mut rx = raft.metrics();
    loop {
        {
            let m = rx.borrow_and_update();
            if m.state == ServerState::Leader {
                let mut l = leaders.lock().unwrap_or_else(|e| e.into_inner());
                let at = started.elapsed().as_millis() as u64;
                l.entry(m.current_term).or_default().entry(id).or_insert(at);
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
