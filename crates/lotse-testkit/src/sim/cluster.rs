//! The simulated cluster: its nodes, the network, and the handles clients use.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use lotse_consensus::openraft::error::{ClientWriteError, RaftError};
use lotse_consensus::openraft::BasicNode;
use lotse_consensus::NodeId;
use lotse_core::{Command, Outcome};
use rand::rngs::StdRng;
use rand::Rng;
use tokio::time::Instant;

use super::net::SimNet;
use super::node::{Leaders, Running, SimNode};

/// What became of one write as its client saw it.
#[derive(Debug)]
pub enum WriteResult {
    Applied(Outcome),
    /// Refused before it could take effect (not the leader, or truncated away).
    NotApplied(Option<NodeId>),
    /// No answer in time, or the node died: it may still take effect.
    Unknown,
}

pub struct Cluster {
    pub net: SimNet,
    pub nodes: tokio::sync::Mutex<Vec<SimNode>>,
    /// What clients see: the running nodes' handles, updated on every start and crash.
    up: Mutex<BTreeMap<NodeId, Running>>,
    pub leaders: Leaders,
    pub started: Instant,
    /// Every client's latest idea of the leader.
    pub leader_hint: Mutex<Option<NodeId>>,
    /// How far each node's wall clock is off (ms; absent: right). Only the stamps commands
    /// carry read it: no replica reads a clock while applying.
    clock_offsets: Mutex<BTreeMap<NodeId, i64>>,
    /// When some clock was off: (from, to) in the history's nanoseconds.
    pub clock_faults: Mutex<Vec<(u64, u64)>>,
}

pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    pub fn new(net: SimNet, nodes: Vec<SimNode>) -> Cluster {
        Cluster {
            net,
            nodes: tokio::sync::Mutex::new(nodes),
            up: Mutex::new(BTreeMap::new()),
            leaders: Leaders::default(),
            started: Instant::now(),
            leader_hint: Mutex::new(None),
            clock_offsets: Mutex::new(BTreeMap::new()),
            clock_faults: Mutex::new(Vec::new()),
        }
    }

    /// Simulated nanoseconds since the start: the history's clock.
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Simulated wall clock for commands that carry one.
    pub fn now_ms(&self) -> u64 {
        1_700_000_000_000 + self.started.elapsed().as_millis() as u64
    }

    /// `node`'s wall clock, for the commands it stamps.
    pub fn node_now_ms(&self, node: NodeId) -> u64 {
        let offsets = self.clock_offsets.lock().unwrap_or_else(|e| e.into_inner());
        let off = offsets.get(&node).copied().unwrap_or(0);
        self.now_ms().saturating_add_signed(off)
    }

    /// Sets `node`'s clock `offset_ms` off (0: right again).
    pub fn set_clock_offset(&self, node: NodeId, offset_ms: i64) {
        let mut offsets = self.clock_offsets.lock().unwrap_or_else(|e| e.into_inner());
        offsets.insert(node, offset_ms);
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.up_map().keys().copied().collect()
    }

    fn up_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Running>> {
        self.up.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn handle(&self, id: NodeId) -> Option<Running> {
        self.up_map().get(&id).cloned()
    }

    /// Starts every node that is down (all of them the first time, with `bootstrap`).
    pub async fn start_down(&self, bootstrap: bool) -> Result<(), String> {
        let mut nodes = self.nodes.lock().await;
        let members: BTreeMap<NodeId, BasicNode> = nodes
            .iter()
            .map(|n| (n.id, BasicNode::new(format!("sim-{}", n.id))))
            .collect();
        for n in nodes.iter_mut() {
            if n.running().is_none() {
                let r = n
                    .start(
                        &self.net,
                        &self.leaders,
                        self.started,
                        bootstrap.then_some(&members),
                    )
                    .await?;
                self.up_map().insert(n.id, r);
            }
        }
        Ok(())
    }

    pub async fn crash(&self, id: NodeId, rng: &mut StdRng) {
        self.up_map().remove(&id);
        let mut nodes = self.nodes.lock().await;
        if let Some(n) = nodes.iter_mut().find(|n| n.id == id) {
            n.crash(&self.net, rng).await;
        }
    }

    pub async fn restart(&self, id: NodeId) -> Result<(), String> {
        let mut nodes = self.nodes.lock().await;
        if let Some(n) = nodes.iter_mut().find(|n| n.id == id) {
            if n.running().is_none() {
                let r = n
                    .start(&self.net, &self.leaders, self.started, None)
                    .await?;
                self.up_map().insert(id, r);
            }
        }
        Ok(())
    }

    /// The node a client should try: the last leader it heard of, or a random running one.
    pub fn pick(&self, rng: &mut StdRng) -> Option<(NodeId, Running)> {
        let hint = *self.leader_hint.lock().unwrap_or_else(|e| e.into_inner());
        let up = self.up_map();
        if let Some(h) = hint.filter(|_| rng.gen_bool(0.8)) {
            if let Some(r) = up.get(&h) {
                return Some((h, r.clone()));
            }
        }
        if up.is_empty() {
            return None;
        }
        let i = rng.gen_range(0..up.len());
        up.iter().nth(i).map(|(id, r)| (*id, r.clone()))
    }

    pub fn hint(&self, leader: Option<NodeId>) {
        *self.leader_hint.lock().unwrap_or_else(|e| e.into_inner()) = leader;
    }

    /// The node every running node names as leader, if one does and it leads.
    pub fn current_leader(&self) -> Option<NodeId> {
        let up = self.up_map();
        up.iter().find_map(|(id, r)| {
            let m = r.raft.metrics().borrow().clone();
            (m.current_leader == Some(*id)).then_some(*id)
        })
    }

    /// One write through `node`.
    ///
    /// openraft answers "forward to leader" both when it refuses a proposal outright and when
    /// it truncates a proposed entry, which another node holding it may still commit (seed
    /// 4423). Only a node that was not leading when asked, and whose vote did not change
    /// until it answered, certainly refused before proposing.
    pub async fn write(&self, node: &Running, cmd: Command) -> WriteResult {
        let (vote, leading) = {
            let m = node.raft.metrics().borrow().clone();
            (m.vote, m.current_leader == Some(m.id))
        };
        match tokio::time::timeout(WRITE_TIMEOUT, node.raft.client_write(cmd)).await {
            Err(_) => WriteResult::Unknown,
            Ok(Ok(resp)) => WriteResult::Applied(resp.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                let unchanged = node.raft.metrics().borrow().vote == vote;
                if !leading && unchanged {
                    WriteResult::NotApplied(f.leader_id)
                } else {
                    self.hint(f.leader_id);
                    WriteResult::Unknown
                }
            }
            Ok(Err(_)) => WriteResult::Unknown,
        }
    }

    /// A write that must succeed (setup): retried through whoever leads, within `budget`.
    pub async fn write_surely(&self, cmd: Command, budget: Duration) -> Result<Outcome, String> {
        let deadline = Instant::now() + budget;
        while Instant::now() < deadline {
            if let Some(id) = self.current_leader() {
                if let Some(r) = self.handle(id) {
                    if let WriteResult::Applied(o) = self.write(&r, cmd.clone()).await {
                        return Ok(o);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no leader took {} within {budget:?}", cmd.kind()))
    }
}
