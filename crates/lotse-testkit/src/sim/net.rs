//! The simulated network between Raft nodes: messages are delayed, lost, or cut by partitions,
//! all decided by the run's seeded random generator; a message to a crashed node finds nobody.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lotse_consensus::openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use lotse_consensus::openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use lotse_consensus::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use lotse_consensus::openraft::BasicNode;
use lotse_consensus::{LotseRaft, NodeId, TypeConfig};
use rand::rngs::StdRng;
use rand::Rng;

/// How the network behaves right now.
#[derive(Debug, Clone)]
pub struct Weather {
    /// Chance that one message (request or reply) is lost.
    pub loss: f64,
    /// One-way delay, drawn uniformly (milliseconds).
    pub delay_ms: (u64, u64),
}

impl Default for Weather {
    fn default() -> Self {
        Weather {
            loss: 0.0,
            delay_ms: (1, 5),
        }
    }
}

struct NetState {
    rng: StdRng,
    weather: Weather,
    /// Ordered pairs that cannot reach each other (both directions are inserted).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// The running nodes; a crashed one is absent.
    up: BTreeMap<NodeId, LotseRaft>,
    /// Messages delivered and lost, for the report.
    delivered: u64,
    lost: u64,
}

/// The network; clones share it.
#[derive(Clone)]
pub struct SimNet {
    state: Arc<Mutex<NetState>>,
}

impl SimNet {
    pub fn new(rng: StdRng) -> SimNet {
        SimNet {
            state: Arc::new(Mutex::new(NetState {
                rng,
                weather: Weather::default(),
                cut: BTreeSet::new(),
                up: BTreeMap::new(),
                delivered: 0,
                lost: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn attach(&self, id: NodeId, raft: LotseRaft) {
        self.lock().up.insert(id, raft);
    }

    pub fn detach(&self, id: NodeId) {
        self.lock().up.remove(&id);
    }

    pub fn set_weather(&self, w: Weather) {
        self.lock().weather = w;
    }

    /// Cuts every link between `a` and `b`, both ways.
    pub fn cut(&self, a: &[NodeId], b: &[NodeId]) {
        let mut s = self.lock();
        for x in a {
            for y in b {
                if x != y {
                    s.cut.insert((*x, *y));
                    s.cut.insert((*y, *x));
                }
            }
        }
    }

    pub fn heal(&self) {
        let mut s = self.lock();
        s.cut.clear();
        s.weather = Weather::default();
    }

    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.delivered, s.lost)
    }

    /// The fate of one message from `from` to `to`: its delay, or `None` if it is lost.
    fn fate(&self, from: NodeId, to: NodeId) -> Option<Duration> {
        let mut s = self.lock();
        let w = s.weather.clone();
        let lost = s.cut.contains(&(from, to)) || (w.loss > 0.0 && s.rng.gen_bool(w.loss));
        if lost {
            s.lost += 1;
            return None;
        }
        s.delivered += 1;
        Some(Duration::from_millis(
            s.rng.gen_range(w.delay_ms.0..=w.delay_ms.1),
        ))
    }

    fn target(&self, to: NodeId) -> Option<LotseRaft> {
        self.lock().up.get(&to).cloned()
    }
}

/// openraft's network factory for node `id`.
pub struct SimFactory {
    pub id: NodeId,
    pub net: SimNet,
}

pub struct SimConn {
    id: NodeId,
    target: NodeId,
    net: SimNet,
}

impl RaftNetworkFactory<TypeConfig> for SimFactory {
    type Network = SimConn;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> SimConn {
        SimConn {
            id: self.id,
            target,
            net: self.net.clone(),
        }
    }
}

type CallError<E> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl SimConn {
    /// Carries one request and its reply across the network, within openraft's deadline.
    async fn deliver<T, E, F, Fut>(
        &self,
        action: RPCTypes,
        option: &RPCOption,
        call: F,
    ) -> Result<T, CallError<E>>
    where
        E: std::error::Error,
        F: FnOnce(LotseRaft) -> Fut,
        Fut: Future<Output = Result<T, RaftError<NodeId, E>>>,
    {
        let ttl = option.hard_ttl();
        let timeout = || {
            RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout: ttl,
            })
        };
        let trip = async {
            // A lost message: the caller hears nothing until its deadline.
            let Some(delay) = self.net.fate(self.id, self.target) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(delay).await;
            let Some(raft) = self.net.target(self.target) else {
                return Err(unreachable::<E>("node is down"));
            };
            let reply = call(raft).await;
            let Some(back) = self.net.fate(self.target, self.id) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(back).await;
            Ok(reply)
        };
        match tokio::time::timeout(ttl, trip).await {
            Err(_) => Err(timeout()),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Ok(resp))) => Ok(resp),
            Ok(Ok(Err(RaftError::Fatal(f)))) => {
                // The target shut down (it is crashing) while handling the call.
                Err(RPCError::Network(NetworkError::new(&f)))
            }
            Ok(Ok(Err(remote))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, remote)))
            }
        }
    }
}

fn unreachable<E: std::error::Error>(why: &str) -> CallError<E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(why.to_string())))
}

impl RaftNetwork<TypeConfig> for SimConn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        AppendEntriesResponse<NodeId>,
        CallError<lotse_consensus::openraft::error::Infallible>,
    > {
        self.deliver(RPCTypes::AppendEntries, &option, |raft| async move {
            raft.append_entries(rpc).await
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, CallError<InstallSnapshotError>> {
        self.deliver(RPCTypes::InstallSnapshot, &option, |raft| async move {
            raft.install_snapshot(rpc).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, CallError<lotse_consensus::openraft::error::Infallible>> {
        self.deliver(RPCTypes::Vote, &option, |raft| async move {
            raft.vote(rpc).await
        })
        .await
    }

    /// A fixed, short backoff: simulated time is cheap, and a restarted node should be
    /// found again quickly.
    fn backoff(&self) -> lotse_consensus::openraft::network::Backoff {
        lotse_consensus::openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(
            100,
        )))
    }
}
