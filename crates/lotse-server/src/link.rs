//! The facade's side of server RPC: calling the leader ([`apply`], [`read_index`]) and
//! answering such calls as the leader ([`FacadeForward`]).
//!
//! Wire conventions between two facades:
//! * `Apply` carries a `Command` in the consensus codec; its reply is the codec encoding of
//!   `Result<(index, Outcome), ServerError>` from the leader's write.
//! * A leader that refuses a call before doing anything ("not the leader") answers
//!   `FailedPrecondition`; "No cluster leader" is `Aborted`. Only these, and a connection
//!   that was never made, tell the caller the call certainly had no effect.

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::time::Duration;

use lotse_consensus::codec;
use lotse_consensus::rpc::{ForwardHandler, HttpReply, HttpRequest, Peers, RpcError};
use lotse_core::{Command, Outcome};
use tonic::{Code, Status};

use crate::{Consistency, Server, ServerError};

/// Why a call to the leader did not give an answer.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// It certainly had no effect there: safe to try again (maybe elsewhere).
    NotSent(String),
    /// It may or may not have had an effect: report, never re-send.
    Failed(String),
}

/// The answer a forwarded write gets.
type WriteAnswer = Result<(u64, Outcome), ServerError>;

pub(crate) fn encode_command(cmd: &Command) -> Vec<u8> {
    codec::encode(cmd)
}

pub(crate) fn decode_command(bytes: &[u8]) -> Result<Command, ServerError> {
    codec::decode(bytes)
        .map_err(|e| ServerError::Raft(format!("cannot decode a forwarded command: {e}")))
}

/// Whether a failed call certainly never reached the peer's handler (so it is safe to send
/// it again, to this server or another).
pub fn never_delivered(e: &RpcError) -> bool {
    match e {
        RpcError::BadAddress { .. } => true,
        // hyper's connector reports a connection that was never made as "tcp connect error"
        // (refused, unreachable, timed out connecting). A connection that broke after the
        // request went out ("connection reset", "closed") may have delivered it: not retried.
        RpcError::Unreachable { reason, .. } => {
            let r = reason.to_ascii_lowercase();
            r.contains("tcp connect error") || r.contains("dns error")
        }
        RpcError::Status { status, .. } => {
            matches!(status.code(), Code::FailedPrecondition | Code::Aborted)
        }
        _ => false,
    }
}

fn link_error(e: RpcError) -> LinkError {
    if never_delivered(&e) {
        LinkError::NotSent(e.to_string())
    } else {
        LinkError::Failed(e.to_string())
    }
}

/// Sends an encoded command to the leader at `addr`.
pub(crate) async fn apply(
    peers: &Peers,
    addr: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<WriteAnswer, LinkError> {
    let client = peers.forward_client(addr).map_err(link_error)?;
    let bytes = client.apply(payload, timeout).await.map_err(link_error)?;
    codec::decode::<WriteAnswer>(&bytes)
        .map_err(|e| LinkError::Failed(format!("cannot decode the leader's answer: {e}")))
}

/// Asks the leader at `addr` for a read index.
pub(crate) async fn read_index(
    peers: &Peers,
    addr: &str,
    consistent: bool,
    timeout: Duration,
) -> Result<Result<u64, ServerError>, LinkError> {
    let client = peers.forward_client(addr).map_err(link_error)?;
    match client.read_index(consistent, timeout).await {
        Ok(index) => Ok(Ok(index)),
        Err(RpcError::Status { status, .. }) => Ok(Err(from_status(&status))),
        Err(e) => Err(link_error(e)),
    }
}

fn to_status(e: &ServerError) -> Status {
    match e {
        // Refused before doing anything: the caller may try elsewhere.
        ServerError::NotLeader | ServerError::ShuttingDown => {
            Status::failed_precondition(e.to_string())
        }
        ServerError::NoLeader => Status::aborted(e.to_string()),
        ServerError::PermissionDenied => Status::permission_denied(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

/// The facade error a refusal from a peer's facade stands for.
pub fn from_status(s: &Status) -> ServerError {
    match s.code() {
        Code::FailedPrecondition => ServerError::NotLeader,
        Code::Aborted => ServerError::NoLeader,
        Code::PermissionDenied => ServerError::PermissionDenied,
        _ => ServerError::Raft(s.message().to_string()),
    }
}

/// Answers forwarded HTTP requests (the API router, supplied by the agent).
pub type HttpHandler = std::sync::Arc<
    dyn Fn(HttpRequest) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> + Send + Sync,
>;

/// Answers client agents' calls (`Forward.AgentCall`): encoded call in, encoded reply out.
/// The agent crate owns both the encoding and the answers (it is above this crate).
pub type AgentCallHandler =
    std::sync::Arc<dyn Fn(Vec<u8>) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>> + Send + Sync>;

/// Answers client agents' DNS queries with this server's responder: the query and whether
/// it came over TCP in, the reply (or `None`: send nothing) out.
pub type DnsHandler = std::sync::Arc<
    dyn Fn(Vec<u8>, bool) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send>> + Send + Sync,
>;

/// What the layers above the facade answer on the `Forward` service (each `None` refuses
/// its calls as unimplemented).
#[derive(Default, Clone)]
pub struct ForwardHandlers {
    /// Forwarded HTTP API requests (the agent's router).
    pub http: Option<HttpHandler>,
    /// Client agents' calls (the agent crate).
    pub agent: Option<AgentCallHandler>,
    /// Client agents' DNS queries (the DNS responder).
    pub dns: Option<DnsHandler>,
}

/// What this server answers on the `Forward` service: writes and read indexes as the leader,
/// leadership transfer steps, and through [`ForwardHandlers`] HTTP requests, client agents'
/// calls and their DNS queries.
pub struct FacadeForward {
    server: Weak<Server>,
    handlers: ForwardHandlers,
}

impl FacadeForward {
    pub fn new(server: Weak<Server>, handlers: ForwardHandlers) -> FacadeForward {
        FacadeForward { server, handlers }
    }

    fn server(&self) -> Result<std::sync::Arc<Server>, Status> {
        self.server
            .upgrade()
            .ok_or_else(|| to_status(&ServerError::ShuttingDown))
    }
}

#[tonic::async_trait]
impl ForwardHandler for FacadeForward {
    async fn apply(&self, command: Vec<u8>) -> Result<Vec<u8>, Status> {
        let server = self.server()?;
        let cmd = decode_command(&command).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if !server.is_leader() {
            return Err(to_status(&server.not_leader_error()));
        }
        // Handing over office: refused before doing anything, so the caller tries again.
        if server.is_transferring() {
            return Err(to_status(&ServerError::NotLeader));
        }
        let answer: WriteAnswer = server.write_local(cmd).await;
        Ok(codec::encode(&answer))
    }

    async fn read_index(&self, consistent: bool) -> Result<u64, Status> {
        let server = self.server()?;
        let mode = if consistent {
            Consistency::Consistent
        } else {
            Consistency::Default
        };
        server.read_index(mode).await.map_err(|e| to_status(&e))
    }

    async fn http(&self, request: HttpRequest) -> Result<HttpReply, Status> {
        match &self.handlers.http {
            Some(h) => Ok(h(request).await),
            None => Err(Status::unimplemented(
                "this server answers no forwarded HTTP",
            )),
        }
    }

    async fn election(&self, campaign: bool, window: Duration) -> Result<bool, Status> {
        let server = self.server()?;
        if campaign {
            Ok(server.campaign(window).await)
        } else {
            server.hold_elections(window);
            Ok(false)
        }
    }

    async fn agent_call(&self, call: Vec<u8>) -> Result<Vec<u8>, Status> {
        match &self.handlers.agent {
            Some(h) => Ok(h(call).await),
            None => Err(Status::unimplemented(
                "this server answers no client agents",
            )),
        }
    }

    async fn dns(&self, query: Vec<u8>, tcp: bool) -> Result<Option<Vec<u8>>, Status> {
        match &self.handlers.dns {
            Some(h) => Ok(h(query, tcp).await),
            None => Err(Status::unimplemented("this server answers no DNS")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable(reason: &str) -> RpcError {
        RpcError::Unreachable {
            addr: "127.0.0.1:1".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn only_calls_that_never_arrived_are_retried() {
        assert!(never_delivered(&unreachable("tcp connect error")));
        assert!(never_delivered(&RpcError::Status {
            addr: "a".into(),
            status: to_status(&ServerError::NotLeader),
        }));
        assert!(never_delivered(&RpcError::Status {
            addr: "a".into(),
            status: to_status(&ServerError::NoLeader),
        }));
        // A connection that broke after sending may have delivered the call.
        assert!(!never_delivered(&unreachable("connection reset by peer")));
        assert!(!never_delivered(&unreachable("connection closed")));
        assert!(!never_delivered(&RpcError::Timeout {
            addr: "a".into(),
            after: Duration::from_secs(1),
        }));
        assert!(!never_delivered(&RpcError::Status {
            addr: "a".into(),
            status: Status::internal("boom"),
        }));
    }

    #[test]
    fn errors_cross_the_wire_unchanged() {
        for e in [
            ServerError::NotLeader,
            ServerError::NoLeader,
            ServerError::PermissionDenied,
        ] {
            assert_eq!(from_status(&to_status(&e)), e);
        }
        let answer: WriteAnswer = Err(ServerError::Rejected(
            lotse_core::StoreError::InvalidSession("x".into()),
        ));
        let back: WriteAnswer = codec::decode(&codec::encode(&answer)).expect("decodes");
        assert_eq!(back, answer);
    }
}
