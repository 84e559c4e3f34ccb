//! The `Forward` service: what followers and client agents ask of a server (usually the
//! leader). This crate only carries the calls; what they mean belongs to the server facade,
//! which implements [`ForwardHandler`]. Commands and their replies travel as opaque bytes so
//! their encoding stays the facade's (it uses [`crate::codec`]).

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::pb;
use super::pb::forward_client::ForwardClient as GrpcForwardClient;
use super::{RpcError, MAX_MESSAGE_BYTES};

/// A whole HTTP API request, forwarded to another server to be answered there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path_and_query: String,
    /// In order; a name may repeat. Values are bytes: HTTP allows non-UTF-8 header values.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// The answer to a forwarded [`HttpRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// What the server facade does with forwarded calls. Errors are gRPC statuses so the facade
/// chooses what the caller sees (e.g. `FailedPrecondition` for "not the leader"). Avoid
/// `Unavailable`: [`ForwardClient`] reads a status tonic made locally as "unreachable", but a
/// remote `Unavailable` is passed on as [`RpcError::Status`] like any other.
#[tonic::async_trait]
pub trait ForwardHandler: Send + Sync + 'static {
    /// Apply an encoded `lotse_core::Command`; the reply (index and outcome, or an error kind)
    /// is encoded by the facade too.
    async fn apply(&self, command: Vec<u8>) -> Result<Vec<u8>, Status>;
    /// A read index: `consistent` asks for leadership confirmed by a quorum first.
    async fn read_index(&self, consistent: bool) -> Result<u64, Status>;
    /// Answer an HTTP API request as if it had arrived here.
    async fn http(&self, request: HttpRequest) -> Result<HttpReply, Status>;
    /// A client agent's call; payload and reply are encoded by the facade.
    async fn agent_call(&self, call: Vec<u8>) -> Result<Vec<u8>, Status>;
    /// A leadership transfer's step here: hold elections for `window`, or (`campaign`) run
    /// for leader until leading or `window` passed; answers whether this server leads.
    async fn election(&self, _campaign: bool, _window: Duration) -> Result<bool, Status> {
        Err(Status::unimplemented(
            "this server takes no leadership transfers",
        ))
    }
    /// A client agent's DNS query (`tcp`: it came over TCP, so no UDP size cut); `None`: send
    /// nothing back.
    async fn dns(&self, _query: Vec<u8>, _tcp: bool) -> Result<Option<Vec<u8>>, Status> {
        Err(Status::unimplemented("this server answers no DNS"))
    }
}

/// A handler for servers that take no forwarded calls (tests, or before the facade is up).
pub struct NoForwarding;

#[tonic::async_trait]
impl ForwardHandler for NoForwarding {
    async fn apply(&self, _command: Vec<u8>) -> Result<Vec<u8>, Status> {
        Err(Status::unimplemented(
            "this server takes no forwarded calls",
        ))
    }
    async fn read_index(&self, _consistent: bool) -> Result<u64, Status> {
        Err(Status::unimplemented(
            "this server takes no forwarded calls",
        ))
    }
    async fn http(&self, _request: HttpRequest) -> Result<HttpReply, Status> {
        Err(Status::unimplemented(
            "this server takes no forwarded calls",
        ))
    }
    async fn agent_call(&self, _call: Vec<u8>) -> Result<Vec<u8>, Status> {
        Err(Status::unimplemented(
            "this server takes no forwarded calls",
        ))
    }
}

/// The gRPC adapter from the generated service to a [`ForwardHandler`].
pub(crate) struct ForwardService {
    pub(crate) handler: Arc<dyn ForwardHandler>,
}

#[tonic::async_trait]
impl pb::forward_server::Forward for ForwardService {
    async fn apply(&self, req: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        let data = self.handler.apply(req.into_inner().data).await?;
        Ok(Response::new(pb::Payload { data }))
    }

    async fn read_index(
        &self,
        req: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexReply>, Status> {
        let index = self.handler.read_index(req.into_inner().consistent).await?;
        Ok(Response::new(pb::ReadIndexReply { index }))
    }

    async fn http(&self, req: Request<pb::HttpRequest>) -> Result<Response<pb::HttpReply>, Status> {
        let req = req.into_inner();
        let request = HttpRequest {
            method: req.method,
            path_and_query: req.path_and_query,
            headers: from_pb_headers(req.headers),
            body: req.body,
        };
        let reply = self.handler.http(request).await?;
        Ok(Response::new(pb::HttpReply {
            status: u32::from(reply.status),
            headers: to_pb_headers(reply.headers),
            body: reply.body,
        }))
    }

    async fn agent_call(&self, req: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        let data = self.handler.agent_call(req.into_inner().data).await?;
        Ok(Response::new(pb::Payload { data }))
    }

    async fn election(
        &self,
        req: Request<pb::ElectionRequest>,
    ) -> Result<Response<pb::ElectionReply>, Status> {
        let req = req.into_inner();
        let window = Duration::from_millis(req.window_ms);
        let leads = self.handler.election(req.campaign, window).await?;
        Ok(Response::new(pb::ElectionReply { leads }))
    }

    async fn dns(&self, req: Request<pb::DnsQuery>) -> Result<Response<pb::DnsReply>, Status> {
        let req = req.into_inner();
        let reply = self.handler.dns(req.query, req.tcp).await?;
        Ok(Response::new(pb::DnsReply {
            answered: reply.is_some(),
            reply: reply.unwrap_or_default(),
        }))
    }
}

fn to_pb_headers(headers: Vec<(String, Vec<u8>)>) -> Vec<pb::Header> {
    headers
        .into_iter()
        .map(|(name, value)| pb::Header { name, value })
        .collect()
}

fn from_pb_headers(headers: Vec<pb::Header>) -> Vec<(String, Vec<u8>)> {
    headers.into_iter().map(|h| (h.name, h.value)).collect()
}

/// Calls the `Forward` service of one server over a pooled channel (see
/// [`super::Peers::forward_client`]). Cheap to clone.
#[derive(Clone)]
pub struct ForwardClient {
    addr: String,
    grpc: GrpcForwardClient<Channel>,
}

impl ForwardClient {
    pub fn new(addr: &str, channel: Channel) -> ForwardClient {
        ForwardClient {
            addr: addr.to_string(),
            grpc: GrpcForwardClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        }
    }

    /// The server this client calls.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends an encoded command; returns the handler's encoded reply.
    pub async fn apply(&self, command: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, RpcError> {
        let mut grpc = self.grpc.clone();
        let req = with_deadline(pb::Payload { data: command }, timeout);
        let reply = self.bounded(timeout, grpc.apply(req)).await?;
        Ok(reply.data)
    }

    /// Sends a client agent's encoded call; returns the server's encoded reply.
    pub async fn agent_call(&self, call: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, RpcError> {
        let mut grpc = self.grpc.clone();
        let req = with_deadline(pb::Payload { data: call }, timeout);
        let reply = self.bounded(timeout, grpc.agent_call(req)).await?;
        Ok(reply.data)
    }

    /// One step of a leadership transfer on this server (see [`ForwardHandler::election`]).
    pub async fn election(
        &self,
        campaign: bool,
        window: Duration,
        timeout: Duration,
    ) -> Result<bool, RpcError> {
        let mut grpc = self.grpc.clone();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let req = with_deadline(
            pb::ElectionRequest {
                campaign,
                window_ms,
            },
            timeout,
        );
        let reply = self.bounded(timeout, grpc.election(req)).await?;
        Ok(reply.leads)
    }

    /// Has the server answer a DNS query; `None`: it sends nothing back.
    pub async fn dns(
        &self,
        query: Vec<u8>,
        tcp: bool,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, RpcError> {
        let mut grpc = self.grpc.clone();
        let req = with_deadline(pb::DnsQuery { query, tcp }, timeout);
        let reply = self.bounded(timeout, grpc.dns(req)).await?;
        Ok(reply.answered.then_some(reply.reply))
    }

    pub async fn read_index(&self, consistent: bool, timeout: Duration) -> Result<u64, RpcError> {
        let mut grpc = self.grpc.clone();
        let req = with_deadline(pb::ReadIndexRequest { consistent }, timeout);
        let reply = self.bounded(timeout, grpc.read_index(req)).await?;
        Ok(reply.index)
    }

    pub async fn http(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpReply, RpcError> {
        let mut grpc = self.grpc.clone();
        let req = with_deadline(
            pb::HttpRequest {
                method: request.method,
                path_and_query: request.path_and_query,
                headers: to_pb_headers(request.headers),
                body: request.body,
            },
            timeout,
        );
        let reply = self.bounded(timeout, grpc.http(req)).await?;
        let status = u16::try_from(reply.status).map_err(|_| RpcError::Status {
            addr: self.addr.clone(),
            status: Status::internal(format!("bad HTTP status {}", reply.status)),
        })?;
        Ok(HttpReply {
            status,
            headers: from_pb_headers(reply.headers),
            body: reply.body,
        })
    }

    /// Runs one call under `timeout` (also sent to the server as `grpc-timeout`, so it can give
    /// up too) and classifies its failure.
    async fn bounded<T>(
        &self,
        timeout: Duration,
        call: impl std::future::Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, RpcError> {
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(RpcError::Timeout {
                addr: self.addr.clone(),
                after: timeout,
            }),
            Ok(Err(status)) => Err(RpcError::from_status(&self.addr, timeout, status)),
            Ok(Ok(reply)) => Ok(reply.into_inner()),
        }
    }
}

pub(crate) fn with_deadline<T>(message: T, timeout: Duration) -> Request<T> {
    let mut req = Request::new(message);
    req.set_timeout(timeout);
    req
}
