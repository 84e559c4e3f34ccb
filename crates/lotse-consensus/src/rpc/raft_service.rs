//! The receiving side of Raft between servers: decode the request, hand it to openraft,
//! encode openraft's whole `Result`. A remote Raft error (a higher vote, a stopped node) is an
//! answer, not a transport failure: the sender's openraft must see it to step down or retry.
//!
//! It also records when the current leader last reached this node, for Consul's
//! `X-Consul-LastContact` (openraft 0.9 only tracks that on the leader's side).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use serde::{de::DeserializeOwned, Serialize};
use tonic::{Request, Response, Status};

use super::pb;
use crate::codec::{decode, encode};
use crate::{LotseRaft, NodeId, TypeConfig};

/// When this node last accepted an AppendEntries (a heartbeat or entries), and from whom.
#[derive(Debug, Default)]
pub struct LeaderContact {
    last: Mutex<Option<(NodeId, Instant)>>,
}

impl LeaderContact {
    pub fn record(&self, leader: NodeId) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((leader, Instant::now()));
    }

    /// Time since `leader` last reached this node; `None` if it never has (since start).
    pub fn since(&self, leader: NodeId) -> Option<Duration> {
        match *self.last.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((from, at)) if from == leader => Some(at.elapsed()),
            _ => None,
        }
    }
}

/// gRPC metadata naming the Raft node a request is meant for.
pub(crate) const TARGET_HEADER: &str = "x-lotse-raft-target";

pub(crate) struct RaftService {
    pub(crate) raft: LotseRaft,
    pub(crate) contact: Arc<LeaderContact>,
    /// This server's Raft ID: requests meant for another are refused.
    pub(crate) node_id: NodeId,
}

impl RaftService {
    /// Refuses a request addressed to another node: a server rebuilt at a failed server's
    /// address (new data dir, new ID) must not answer as the old voter with an empty log.
    fn check_target<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some(v) = req.metadata().get(TARGET_HEADER) else {
            return Ok(());
        };
        match v.to_str().ok().and_then(|t| t.parse::<NodeId>().ok()) {
            Some(t) if t == self.node_id => Ok(()),
            Some(t) => Err(Status::failed_precondition(format!(
                "this server is raft node {}, not {t}",
                self.node_id
            ))),
            None => Err(Status::invalid_argument("malformed raft target")),
        }
    }
}

/// A request that does not decode was not produced by a compatible server; it is refused
/// without touching Raft state. (Never `Unavailable`: the sender reads that as unreachable.)
fn decode_request<T: DeserializeOwned>(req: Request<pb::Payload>) -> Result<T, Status> {
    let peer = req.remote_addr();
    decode(&req.into_inner().data).map_err(|e| {
        tracing::warn!(peer = ?peer, error = %e, "undecodable raft request");
        Status::invalid_argument(format!("undecodable raft request: {e}"))
    })
}

fn reply<T: Serialize>(result: &T) -> Response<pb::Payload> {
    Response::new(pb::Payload {
        data: encode(result),
    })
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        self.check_target(&req)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode_request(req)?;
        let leader = rpc.vote.leader_id().voted_for();
        let committed = rpc.vote.is_committed();
        let result = self.raft.append_entries(rpc).await;
        // Accepted (even with a log conflict to resolve) means the sender is our leader.
        if let (Ok(resp), Some(leader), true) = (&result, leader, committed) {
            if !matches!(resp, AppendEntriesResponse::HigherVote(_)) {
                self.contact.record(leader);
            }
        }
        Ok(reply(&result))
    }

    async fn vote(&self, req: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        self.check_target(&req)?;
        let rpc: VoteRequest<NodeId> = decode_request(req)?;
        Ok(reply(&self.raft.vote(rpc).await))
    }

    async fn install_snapshot(
        &self,
        req: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        self.check_target(&req)?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode_request(req)?;
        let leader = rpc.vote.leader_id().voted_for();
        let result = self.raft.install_snapshot(rpc).await;
        if let (Ok(_), Some(leader)) = (&result, leader) {
            self.contact.record(leader);
        }
        Ok(reply(&result))
    }
}
