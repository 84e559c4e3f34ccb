//! openraft's view of the other servers: [`GrpcNetwork`] sends Raft RPCs over the pooled
//! HTTP/2 channels of [`Peers`] to each target's `BasicNode.addr` (its server port).
//!
//! Failures are sorted the way openraft's replication wants them:
//! * not connected / connection broke → `Unreachable`: openraft backs off before retrying,
//!   instead of spinning on a dead server;
//! * no answer within `RPCOption::hard_ttl()` → `Timeout`;
//! * the peer refused the request or sent an undecodable reply → `Network`;
//! * the peer's Raft answered with an error → `RemoteError` (e.g. a higher vote);
//! * a request too big for one message → `PayloadTooLarge`, so openraft splits it.
//!
//! A single server has no targets, so openraft never asks for a client and nothing is sent.

use std::error::Error;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use crate::codec::{decode, encode};
use crate::rpc::forward::with_deadline;
use crate::rpc::pb::raft_client::RaftClient;
use crate::rpc::pb::Payload;
use crate::rpc::raft_service::TARGET_HEADER;
use crate::rpc::{Peers, RpcError, MAX_MESSAGE_BYTES};
use crate::{NodeId, TypeConfig};

/// Room left in a message for protobuf framing around the payload.
const FRAMING_SLACK: usize = 4096;

/// Makes a [`GrpcConnection`] per target; all of them share `peers`' channels.
#[derive(Clone)]
pub struct GrpcNetwork {
    id: NodeId,
    peers: Peers,
}

impl GrpcNetwork {
    /// `id` is this node's (openraft wants it in timeout reports).
    pub fn new(id: NodeId, peers: Peers) -> GrpcNetwork {
        GrpcNetwork { id, peers }
    }
}

/// One target's client. Holds the channel error if the target's address is unusable, so each
/// call reports it as `Unreachable` (openraft then backs off) rather than panicking.
pub struct GrpcConnection {
    id: NodeId,
    target: NodeId,
    node: BasicNode,
    client: Result<RaftClient<Channel>, String>,
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> GrpcConnection {
        let client = self
            .peers
            .channel(&node.addr)
            .map(|channel| {
                RaftClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES)
            })
            .map_err(|e| e.to_string());
        GrpcConnection {
            id: self.id,
            target,
            node: node.clone(),
            client,
        }
    }
}

type RaftResult<T, E> = Result<T, RaftError<NodeId, E>>;
type CallError<E> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl GrpcConnection {
    /// Sends one encoded request and decodes the remote `Result`.
    async fn call<T, E>(
        &mut self,
        action: RPCTypes,
        data: Vec<u8>,
        option: &RPCOption,
    ) -> Result<T, CallError<E>>
    where
        T: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        // openraft gives every AppendEntries the heartbeat interval (50 ms x multiplier) as
        // its deadline; a large message (a batch of big commands, a restore's whole image)
        // cannot cross and be made durable that fast, and would be resent forever. The
        // deadline grows with the payload: about 1 ms per 32 KiB on top.
        let ttl = option.hard_ttl() + Duration::from_millis((data.len() / (32 << 10)) as u64);
        let addr = self.node.addr.clone();
        let mut client = match &self.client {
            Ok(client) => client.clone(),
            Err(reason) => {
                let e = RpcError::BadAddress {
                    addr,
                    reason: reason.clone(),
                };
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        };
        let mut req = with_deadline(Payload { data }, ttl);
        // The receiver checks that it is the server meant: a server rebuilt at the same
        // address under a new ID must not vote or take entries as the old one.
        if let Ok(v) = self.target.to_string().parse() {
            req.metadata_mut().insert(TARGET_HEADER, v);
        }
        let call = async {
            match action {
                RPCTypes::AppendEntries => client.append_entries(req).await,
                RPCTypes::Vote => client.vote(req).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(req).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, call).await {
            Err(_) => Err(RpcError::Timeout { addr, after: ttl }),
            Ok(Err(status)) => Err(RpcError::from_status(&addr, ttl, status)),
            Ok(Ok(reply)) => {
                decode::<RaftResult<T, E>>(&reply.into_inner().data).map_err(|source| {
                    RpcError::Decode {
                        addr: addr.clone(),
                        source,
                    }
                })
            }
        };
        match reply {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))),
            Err(e) => Err(self.classify(action, e)),
        }
    }

    fn classify<E: Error>(&self, action: RPCTypes, e: RpcError) -> CallError<E> {
        match e {
            RpcError::Timeout { after, .. } => RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout: after,
            }),
            RpcError::Unreachable { .. } | RpcError::BadAddress { .. } => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            RpcError::Status { .. } | RpcError::Decode { .. } | RpcError::Serve(_) => {
                RPCError::Network(NetworkError::new(&e))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for GrpcConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let data = encode(&rpc);
        if data.len() + FRAMING_SLACK > MAX_MESSAGE_BYTES && rpc.entries.len() > 1 {
            let hint = (rpc.entries.len() / 2) as u64;
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        self.call(RPCTypes::AppendEntries, data, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(RPCTypes::InstallSnapshot, encode(&rpc), &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(RPCTypes::Vote, encode(&rpc), &option).await
    }

    /// Backs off 100 ms, 200 ms, … up to 2 s while a target stays unreachable: a restarted
    /// server is found again quickly, a dead one costs little.
    fn backoff(&self) -> openraft::network::Backoff {
        let steps = (1..20u64)
            .map(|i| Duration::from_millis(100 * i))
            .chain(std::iter::repeat(Duration::from_secs(2)));
        openraft::network::Backoff::new(steps)
    }
}
