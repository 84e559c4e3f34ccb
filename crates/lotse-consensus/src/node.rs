//! Starting a server's consensus: storage, state machine, openraft, and bootstrap; and the
//! few cluster operations the server facade needs (membership, read index, last contact).
//!
//! Timing follows Consul's `performance.raft_multiplier` (m): heartbeat 50 ms × m, election
//! timeout 200–400 ms × m. A follower that has seen a leader waits out openraft's leader lease
//! (= the maximum election timeout) plus one random election timeout before it campaigns, so a
//! dead leader is replaced after 600–800 ms × m (measured 0.7–0.86 s at m = 1 on loopback;
//! Consul's default m = 5 gives 3–4 s). openraft also uses the heartbeat interval as the
//! AppendEntries deadline, so a follower's fsync must fit into 50 ms × m.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, SnapshotPolicy};
use redb::backends::InMemoryBackend;
use redb::Database;

use crate::log_store::{LogStats, LogStore};
use crate::network::GrpcNetwork;
use crate::rpc::{LeaderContact, Peers};
use crate::state_machine::{ApplyObserver, SharedState, StateMachine};
use crate::{ConsensusError, LotseRaft, NodeId};

/// A failed membership change; `ForwardToLeader` inside says where to send it instead.
pub type MembershipError = RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>;
/// A failed leadership check; `ForwardToLeader` inside names the leader if one is known.
pub type ReadIndexError = RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>;

/// Heartbeat period for `raft_multiplier` = 1.
const HEARTBEAT_MS: u64 = 50;
/// Election timeout range for `raft_multiplier` = 1.
const ELECTION_MIN_MS: u64 = 200;
const ELECTION_MAX_MS: u64 = 400;
/// Deadline for one snapshot chunk: it carries up to 3 MiB and the last one waits for the
/// follower to install the whole image, so it is not tied to the heartbeat.
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;

/// redb's page cache for the Raft log.
const REDB_CACHE_BYTES: usize = 16 << 20;

pub struct ConsensusConfig {
    pub node_id: NodeId,
    /// The server RPC address other servers would reach this one at (`127.0.0.1:8300`).
    pub rpc_addr: String,
    /// Where the log lives; `None` keeps everything in memory (`-dev`).
    pub data_dir: Option<PathBuf>,
    /// Take a snapshot (and compact the log) after this many applied entries.
    pub snapshot_threshold: u64,
    /// Bootstrap a cluster if this node has no state yet: of `initial_members`, or of this
    /// server alone.
    pub bootstrap: bool,
    /// Consul's `performance.raft_multiplier` (1 = fastest failover; Consul's default is 5).
    /// Scales every Raft timer (see the module docs); 0 is taken as 1.
    pub raft_multiplier: u32,
    /// With `bootstrap`: the first voters, node id → server RPC address, this server included.
    /// Every one of them may bootstrap with the same map (openraft accepts the same initial
    /// membership from each). `None` bootstraps this server alone.
    pub initial_members: Option<BTreeMap<NodeId, String>>,
}

/// A running consensus node.
pub struct Consensus {
    pub raft: LotseRaft,
    pub state: Arc<SharedState>,
    pub node_id: NodeId,
    pub rpc_addr: String,
    pub log_stats: Arc<LogStats>,
    /// The channels to other servers, shared with forwarding clients.
    pub peers: Peers,
    /// When the current leader last reached this node (fed by the Raft RPC service).
    pub leader_contact: Arc<LeaderContact>,
    /// See [`ReadFloor`]: every linearizable read goes through [`linearizable_read`] with it.
    pub read_floor: ReadFloor,
}

/// The floor under a restored leader's read index.
///
/// openraft 0.9 restores a server that led before it stopped as leader again, in the same
/// term, without an election and without a new entry (and it ignores a request to campaign
/// while it leads). Its read index is then `max(committed, first entry of its term)`, and the
/// committed index it reloaded is not fsynced (`log_store`: it rides on the next durable
/// write), so after a power loss it can lie below writes that were acknowledged before: a
/// `consistent` read could miss them. Found by the simulation (`lotse-testkit::sim`, seed 1565:
/// a read right after every server lost power returned a value two acknowledged writes old).
/// Such a leader reads only once it has applied its whole log as it found it at start, which
/// it re-commits by replicating it, as Raft asks of a leader before it serves reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadFloor {
    /// The term in which the server was restored as leader (0: it was not).
    pub term: u64,
    /// Its last log index at that moment.
    pub index: u64,
}

impl ReadFloor {
    /// Taken right after start (after `is_initialized`, so openraft's startup has run).
    pub fn at_start(raft: &LotseRaft) -> ReadFloor {
        let m = raft.metrics();
        let m = m.borrow();
        if m.state == openraft::ServerState::Leader {
            ReadFloor {
                term: m.current_term,
                index: m.last_log_index.unwrap_or(0),
            }
        } else {
            ReadFloor::default()
        }
    }
}

/// openraft's linearizable read (a quorum round, then the wait until everything committed
/// before it is applied) on top of [`ReadFloor`]. Returns the read index.
pub async fn linearizable_read(raft: &LotseRaft, floor: ReadFloor) -> Result<u64, ReadIndexError> {
    // The term before the round: the round may end in a later term (this server stepped
    // down meanwhile) yet have been confirmed in the floor's term. Only a server that was
    // already past that term when the read began (elected since, with an entry of its own
    // that the read index covers) needs no floor. Found by the simulation, seed 6588.
    let term_before = raft.metrics().borrow().current_term;
    let index = raft.ensure_linearizable().await?.map_or(0, |l| l.index);
    if floor.term != 0 && term_before <= floor.term && floor.index > index {
        raft.wait(None)
            .applied_index_at_least(Some(floor.index), "restored leader's log")
            .await
            .map_err(|_| RaftError::Fatal(openraft::error::Fatal::Stopped))?;
        return Ok(floor.index);
    }
    Ok(index)
}

/// openraft's configuration for a server (before `validate`): Consul's timings scaled by
/// `raft_multiplier`, a snapshot every `snapshot_threshold` applied entries. Public so that the
/// simulation (`lotse-testkit`) runs what servers run.
pub fn raft_config(raft_multiplier: u32, snapshot_threshold: u64) -> Config {
    let m = u64::from(raft_multiplier.max(1));
    Config {
        cluster_name: "lotse".into(),
        heartbeat_interval: HEARTBEAT_MS * m,
        election_timeout_min: ELECTION_MIN_MS * m,
        election_timeout_max: ELECTION_MAX_MS * m,
        install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_threshold.max(16)),
        max_in_snapshot_log_to_keep: 1000,
        max_payload_entries: 512,
        ..Config::default()
    }
}

impl Consensus {
    pub async fn start(
        cfg: ConsensusConfig,
        observer: Arc<dyn ApplyObserver>,
    ) -> Result<Consensus, ConsensusError> {
        let db = Arc::new(open_db(cfg.data_dir.as_ref())?);
        let snapshot_index = StateMachine::stored_snapshot_index(&db)?;
        let (log_store, persist) = LogStore::open(db.clone(), snapshot_index)?;
        let log_stats = log_store.stats();
        let sm = StateMachine::open(db, persist, observer)?;
        let state = sm.shared();

        let config = Arc::new(
            raft_config(cfg.raft_multiplier, cfg.snapshot_threshold)
                .validate()
                .map_err(|e| ConsensusError::Raft(e.to_string()))?,
        );
        // Connections to other servers leave from this server's own address.
        let peers = match cfg.rpc_addr.parse::<std::net::SocketAddr>() {
            Ok(a) => Peers::bound_to(a.ip()),
            Err(_) => Peers::new(),
        };
        let network = GrpcNetwork::new(cfg.node_id, peers.clone());
        let raft = LotseRaft::new(cfg.node_id, config, network, log_store, sm)
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;

        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        if !initialized && cfg.bootstrap {
            let members: BTreeMap<NodeId, BasicNode> = match &cfg.initial_members {
                Some(members) => members
                    .iter()
                    .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
                    .collect(),
                None => BTreeMap::from([(cfg.node_id, BasicNode::new(cfg.rpc_addr.clone()))]),
            };
            raft.initialize(members)
                .await
                .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        } else if initialized {
            // A lone voter need not wait out an election timeout after a restart. In a real
            // cluster an immediate election would only disturb a healthy leader.
            let voters: Vec<NodeId> = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            if voters == [cfg.node_id] {
                let _ = raft.trigger().elect().await;
            }
        }
        let read_floor = ReadFloor::at_start(&raft);
        Ok(Consensus {
            raft,
            state,
            node_id: cfg.node_id,
            rpc_addr: cfg.rpc_addr,
            log_stats,
            peers,
            leader_contact: Arc::new(LeaderContact::default()),
            read_floor,
        })
    }

    /// Adds a server as a learner (it starts receiving the log) and waits until it has caught
    /// up. Returns the log index of the membership change. Leader only.
    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<u64, MembershipError> {
        let resp = self
            .raft
            .add_learner(id, BasicNode::new(addr), true)
            .await?;
        Ok(resp.log_id.index)
    }

    /// Makes exactly `voters` the voters (each must already be a voter or learner). Voters
    /// left out leave the cluster; learners stay learners. Leader only.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
    ) -> Result<u64, MembershipError> {
        let resp = self.raft.change_membership(voters, false).await?;
        Ok(resp.log_id.index)
    }

    /// Removes a server, voter or learner (Consul's `operator raft remove-peer`). `Ok(None)`
    /// if it was not a member. Leader only.
    pub async fn remove_server(&self, id: NodeId) -> Result<Option<u64>, MembershipError> {
        let (is_voter, is_member) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let is_voter = membership.voter_ids().any(|v| v == id);
            (is_voter, membership.get_node(&id).is_some())
        };
        let ids = BTreeSet::from([id]);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else if is_member {
            ChangeMembers::RemoveNodes(ids)
        } else {
            return Ok(None);
        };
        let resp = self.raft.change_membership(change, false).await?;
        Ok(Some(resp.log_id.index))
    }

    /// Time since this server last heard from the current leader (Consul's
    /// `X-Consul-LastContact`): zero on the leader, `None` if no leader is known or it has not
    /// reached this server since it started.
    pub fn last_leader_contact(&self) -> Option<Duration> {
        let leader = self.raft.metrics().borrow().current_leader?;
        if leader == self.node_id {
            return Some(Duration::ZERO);
        }
        self.leader_contact.since(leader)
    }

    /// The current leader's id and RPC address, if one is known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader?;
        let addr = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())?;
        Some((leader, addr))
    }

    /// Waits until this node is leader, up to `timeout`.
    pub async fn wait_leader(&self, timeout: Duration) -> bool {
        let id = self.node_id;
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader == Some(id), "leader")
            .await
            .is_ok()
    }
}

fn open_db(dir: Option<&PathBuf>) -> Result<Database, ConsensusError> {
    match dir {
        None => Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .map_err(|e| ConsensusError::Open {
                path: "memory".into(),
                reason: e.to_string(),
            }),
        Some(dir) => {
            let raft_dir = dir.join("raft");
            std::fs::create_dir_all(&raft_dir).map_err(|e| ConsensusError::Open {
                path: raft_dir.display().to_string(),
                reason: e.to_string(),
            })?;
            let path = raft_dir.join("raft.redb");
            // redb's page cache defaults to 1 GiB; the log is written once and rarely read
            // back (the tail lives in memory), so a small cache keeps the resident set small.
            Database::builder()
                .set_cache_size(REDB_CACHE_BYTES)
                .create(&path)
                .map_err(|e| ConsensusError::Open {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
        }
    }
}
