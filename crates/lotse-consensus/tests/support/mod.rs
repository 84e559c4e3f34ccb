//! A test cluster of real `Consensus` nodes in one runtime, each serving the server port on
//! a loopback socket with its own redb file.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lotse_consensus::rpc::forward::NoForwarding;
use lotse_consensus::{
    rpc_router, serve, ApplyObserver, Consensus, ConsensusConfig, ForwardHandler, NodeId,
};
use lotse_core::kv::KvWrite;
use lotse_core::{Changes, Command};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Quiet;

impl ApplyObserver for Quiet {
    fn applied(&self, _changes: &[Changes]) {}
    fn reset(&self) {}
}

pub fn set(key: &str, value: &str) -> Command {
    Command::KvSet(KvWrite {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
    })
}

/// A running node: consensus plus its gRPC server.
pub struct Node {
    pub id: NodeId,
    pub addr: String,
    pub dir: PathBuf,
    pub consensus: Consensus,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

pub struct Spec {
    pub id: NodeId,
    pub listener: TcpListener,
    pub dir: PathBuf,
    pub bootstrap: bool,
    pub initial_members: Option<BTreeMap<NodeId, String>>,
    pub snapshot_threshold: u64,
}

/// A free loopback port, bound (so nobody else takes it before the node starts).
pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

/// Binds `addr` again after its previous owner let go (bounded wait).
pub async fn rebind(addr: &str) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

impl Node {
    pub async fn start(spec: Spec) -> Node {
        Node::start_with(spec, Arc::new(NoForwarding)).await
    }

    pub async fn start_with(spec: Spec, forward: Arc<dyn ForwardHandler>) -> Node {
        let addr = spec.listener.local_addr().expect("local addr").to_string();
        let consensus = start_consensus(&spec, &addr).await;
        let routes = rpc_router(&consensus, forward);
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = spec.listener;
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = serve(listener, routes, shutdown).await {
                eprintln!("rpc server failed: {e}");
            }
        });
        Node {
            id: spec.id,
            addr,
            dir: spec.dir,
            consensus,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops Raft and the gRPC server, as a crash of the whole server process would.
    pub async fn stop(mut self) -> (NodeId, String, PathBuf) {
        let _ = self.consensus.raft.shutdown().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            // In-flight calls drain quickly; do not wait on a peer that keeps a call open.
            if tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
            {
                eprintln!("rpc server did not stop within 2 s");
                server.abort();
            }
        }
        (self.id, self.addr.clone(), self.dir.clone())
    }

    pub fn is_leader(&self) -> bool {
        self.consensus.raft.metrics().borrow().current_leader == Some(self.id)
    }

    pub fn applied_index(&self) -> u64 {
        self.consensus
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index)
    }

    /// Waits until this node has applied `index` (bounded).
    pub async fn wait_applied(&self, index: u64, within: Duration) {
        self.consensus
            .raft
            .wait(Some(within))
            .applied_index_at_least(Some(index), "applied")
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "node {} did not apply {index} within {within:?} (at {}): {e}",
                    self.id,
                    self.applied_index()
                )
            });
    }

    pub fn kv(&self, key: &str) -> Option<Vec<u8>> {
        let applied = self.consensus.state.read();
        applied.store.kv_get(key).1.map(|e| e.value.clone())
    }
}

async fn start_consensus(spec: &Spec, addr: &str) -> Consensus {
    // A restarted node's previous log writer may still hold its database for a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let cfg = ConsensusConfig {
            node_id: spec.id,
            rpc_addr: addr.to_string(),
            data_dir: Some(spec.dir.clone()),
            snapshot_threshold: spec.snapshot_threshold,
            bootstrap: spec.bootstrap,
            raft_multiplier: 1,
            initial_members: spec.initial_members.clone(),
        };
        match Consensus::start(cfg, Arc::new(Quiet)).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("node {} did not start: {e}", spec.id),
        }
    }
}

/// Starts `n` nodes bootstrapped together (ids 1..=n).
pub async fn cluster(root: &Path, n: u64, snapshot_threshold: u64) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(listener().await);
    }
    let members: BTreeMap<NodeId, String> = listeners
        .iter()
        .zip(1..)
        .map(|(l, id)| (id, l.local_addr().expect("addr").to_string()))
        .collect();
    let mut nodes = Vec::new();
    for (listener, id) in listeners.into_iter().zip(1..) {
        nodes.push(
            Node::start(Spec {
                id,
                listener,
                dir: root.join(format!("n{id}")),
                bootstrap: true,
                initial_members: Some(members.clone()),
                snapshot_threshold,
            })
            .await,
        );
    }
    nodes
}

/// Waits until every node in `nodes` agrees on one leader among them; returns its position.
pub async fn agreed_leader(nodes: &[&Node], within: Duration) -> Option<usize> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let leaders: Vec<Option<NodeId>> = nodes
            .iter()
            .map(|n| n.consensus.raft.metrics().borrow().current_leader)
            .collect();
        if let Some(Some(first)) = leaders.first() {
            if leaders.iter().all(|l| *l == Some(*first)) {
                if let Some(pos) = nodes.iter().position(|n| n.id == *first) {
                    return Some(pos);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}
