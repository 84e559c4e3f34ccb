//! gRPC probe: Consul's `CheckGRPC` (`agent/checks/grpc.go`), the standard
//! `grpc.health.v1.Health/Check`.
//!
//! The target is `host:port` or `host:port/service`; the service (empty: the whole server)
//! goes in the request. `SERVING` is passing (`gRPC check <target>: success`); any other
//! status is critical (`gRPC <target> serving status: NOT_SERVING`); an RPC error is
//! critical with grpc-go's wording (`rpc error: code = NotFound desc = …`).
//!
//! The client is tonic's generated `HealthClient` over one hyper HTTP/2 connection (no
//! tonic transport, no pool: one connection per run, dropped after, as Consul does).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::http::{drive, error_chain, AbortOnDrop};
use super::tcp::{dial, split_host_port};
use super::{effective_timeout, tls, ProbeResult, DEFAULT_TIMEOUT};

/// A gRPC check definition (Consul's `grpc`, `grpc_use_tls`, `tls_skip_verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcProbe {
    /// `host:port` or `host:port/service`.
    pub target: String,
    pub use_tls: bool,
    pub tls_skip_verify: bool,
}

/// Runs one gRPC health check.
pub async fn grpc(p: &GrpcProbe, timeout: Duration) -> ProbeResult {
    let deadline = Instant::now() + effective_timeout(timeout, DEFAULT_TIMEOUT);
    let (server, service) = p.target.split_once('/').unwrap_or((p.target.as_str(), ""));
    match timeout_at(deadline, check(p, server, service, deadline)).await {
        Err(_elapsed) => ProbeResult::critical(
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        ),
        Ok(Err(e)) => ProbeResult::critical(e),
        Ok(Ok(status)) if status == ServingStatus::Serving as i32 => {
            ProbeResult::passing(format!("gRPC check {}: success", p.target))
        }
        Ok(Ok(status)) => {
            // Go prints an enum value it does not know as its number.
            let name = ServingStatus::try_from(status)
                .map_or_else(|_| status.to_string(), |s| s.as_str_name().to_owned());
            ProbeResult::critical(format!("gRPC {} serving status: {name}", p.target))
        }
    }
}

/// Connects and asks; the serving status as sent, or the error as grpc-go words it.
async fn check(
    p: &GrpcProbe,
    server: &str,
    service: &str,
    deadline: Instant,
) -> Result<i32, String> {
    let unavailable = |why: String| {
        format!("rpc error: code = Unavailable desc = connection error: desc = \"{why}\"")
    };
    let stream = dial(server, deadline)
        .await
        .map_err(|e| unavailable(format!("transport: Error while dialing: {e}")))?;
    let (channel, _conn) = if p.use_tls {
        let host = split_host_port(server).map(|(h, _)| h).unwrap_or_default();
        let handshake =
            |e: String| unavailable(format!("transport: authentication handshake failed: {e}"));
        let config = tls::client_config(p.tls_skip_verify, tls::ALPN_H2).map_err(handshake)?;
        let stream = tls::connect(stream, host, config)
            .await
            .map_err(handshake)?;
        connect(stream).await.map_err(unavailable)?
    } else {
        connect(stream).await.map_err(unavailable)?
    };
    let scheme = if p.use_tls { "https" } else { "http" };
    let origin: Uri = format!("{scheme}://{server}")
        .parse()
        .map_err(|e| format!("grpc: invalid target {server:?}: {e}"))?;
    let mut client = HealthClient::with_origin(channel, origin);
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    let response = client.check(request).await.map_err(|s| go_status(&s))?;
    Ok(response.into_inner().status)
}

/// An HTTP/2 client connection on `io`, driven by a task that dies with the returned guard.
async fn connect<IO>(io: IO) -> Result<(H2Channel, AbortOnDrop), String>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| error_chain(&e))?;
    Ok((H2Channel(sender), drive(conn)))
}

/// grpc-go's `status.Error` text: `rpc error: code = NotFound desc = unknown service`.
fn go_status(status: &tonic::Status) -> String {
    let code = match status.code() {
        tonic::Code::Ok => "OK".to_owned(),
        tonic::Code::Cancelled => "Canceled".to_owned(),
        other => format!("{other:?}"),
    };
    format!("rpc error: code = {code} desc = {}", status.message())
}

/// A hyper HTTP/2 connection as the tower service tonic's generated client calls. Its
/// errors are `Unavailable` statuses worded as grpc-go's transport words them (tonic would
/// otherwise report them as `Unknown` and drop the cause).
struct H2Channel(SendRequest<tonic::body::Body>);

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, tonic::Status>> + Send>>;

fn transport_error(e: &hyper::Error) -> tonic::Status {
    tonic::Status::unavailable(format!("connection error: desc = \"{}\"", error_chain(e)))
}

impl tower_service::Service<Request<tonic::body::Body>> for H2Channel {
    type Response = Response<Incoming>;
    type Error = tonic::Status;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(|e| transport_error(&e))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let response = self.0.send_request(request);
        Box::pin(async move { response.await.map_err(|e| transport_error(&e)) })
    }
}
