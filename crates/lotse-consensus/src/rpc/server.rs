//! Serving the server port: both services on one listener, one HTTP/2 connection per peer.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use super::forward::{ForwardHandler, ForwardService};
use super::pb::forward_server::ForwardServer;
use super::pb::raft_server::RaftServer;
use super::raft_service::RaftService;
use super::{RpcError, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MAX_MESSAGE_BYTES};
use crate::Consensus;

/// Streams a peer may reset before they were accepted (see `serve`).
const MAX_PENDING_RESETS: usize = 4096;

/// The `Raft` and `Forward` services of this server, ready to be served (or extended with
/// more services via `Routes::add_service`).
pub fn rpc_router(consensus: &Consensus, forward: Arc<dyn ForwardHandler>) -> Routes {
    let raft = RaftServer::new(RaftService {
        raft: consensus.raft.clone(),
        contact: consensus.leader_contact.clone(),
        node_id: consensus.node_id,
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let forward = ForwardServer::new(ForwardService { handler: forward })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Routes::new(raft).add_service(forward)
}

/// Serves `routes` on `listener` until `shutdown` completes. Then the listener is closed at
/// once and calls in flight are allowed to finish.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RpcError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "server rpc listening");
    }
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        // Callers give up on calls (read-index and forwarding deadlines), which resets their
        // streams; h2's default tolerates only 20 such pending resets before it drops the
        // whole connection (a rapid-reset guard meant for the open internet), taking every
        // other call between the two servers with it.
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS))
        // A peer's connection that a partition left mute is dropped here too: the caller's
        // side closing it is not enough, since its FIN is lost with the rest (see the
        // constants).
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| RpcError::Serve(e.to_string()))
}
