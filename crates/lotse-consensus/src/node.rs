//! Starting a server's consensus: storage, state machine, openraft, and bootstrap.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, SnapshotPolicy};
use redb::backends::InMemoryBackend;
use redb::Database;

use crate::log_store::{LogStats, LogStore};
use crate::network::NoPeers;
use crate::state_machine::{ApplyObserver, SharedState, StateMachine};
use crate::{ConsensusError, LotseRaft, NodeId};

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
    /// Bootstrap a one-server cluster if this node has no state yet.
    pub bootstrap: bool,
}

/// A running consensus node.
pub struct Consensus {
    pub raft: LotseRaft,
    pub state: Arc<SharedState>,
    pub node_id: NodeId,
    pub rpc_addr: String,
    pub log_stats: Arc<LogStats>,
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

        let config = Config {
            cluster_name: "lotse".into(),
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_threshold.max(16)),
            max_in_snapshot_log_to_keep: 1000,
            max_payload_entries: 512,
            ..Config::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| ConsensusError::Raft(e.to_string()))?,
        );
        let raft = LotseRaft::new(cfg.node_id, config, NoPeers, log_store, sm)
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;

        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        if !initialized && cfg.bootstrap {
            let members = BTreeMap::from([(cfg.node_id, BasicNode::new(cfg.rpc_addr.clone()))]);
            raft.initialize(members)
                .await
                .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        } else if initialized {
            // A lone voter need not wait out an election timeout after a restart.
            let _ = raft.trigger().elect().await;
        }
        Ok(Consensus {
            raft,
            state,
            node_id: cfg.node_id,
            rpc_addr: cfg.rpc_addr,
            log_stats,
        })
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
