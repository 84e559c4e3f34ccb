//! In-process servers for the probe tests, all on 127.0.0.1 ephemeral ports. Their tasks
//! live on the test's runtime and end with it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_rustls::TlsAcceptor;

/// What a test HTTP server saw of one request.
#[derive(Debug)]
pub(super) struct Seen {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    /// The TLS SNI name, on TLS servers.
    pub(super) sni: Option<String>,
    pub(super) h2: bool,
}

pub(super) type Handler = Arc<dyn Fn(Seen) -> Response<Full<Bytes>> + Send + Sync>;

pub(super) fn respond(code: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

/// A hyper server (HTTP/1.1, or HTTP/2 when TLS negotiates `h2`) calling `handler`.
pub(super) async fn http_server(tls: Option<TlsAcceptor>, handler: Handler) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (handler, tls) = (handler.clone(), tls.clone());
            tokio::spawn(async move {
                let Some(acceptor) = tls else {
                    return serve_http(TokioIo::new(stream), false, None, handler).await;
                };
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let conn = stream.get_ref().1;
                let sni = conn.server_name().map(str::to_owned);
                let h2 = conn.alpn_protocol() == Some(b"h2".as_slice());
                serve_http(TokioIo::new(stream), h2, sni, handler).await;
            });
        }
    });
    addr
}

async fn serve_http<IO>(io: TokioIo<IO>, h2: bool, sni: Option<String>, handler: Handler)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let svc = service_fn(move |req: Request<Incoming>| {
        let (handler, sni) = (handler.clone(), sni.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned();
            let seen = Seen {
                method: parts.method,
                path,
                headers: parts.headers,
                body,
                sni,
                h2,
            };
            Ok::<_, Infallible>(handler(seen))
        }
    });
    if h2 {
        let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        let _ = builder.serve_connection(io, svc).await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, svc)
            .await;
    }
}

/// A TCP server that hands each connection to `f` (for misbehaving peers).
pub(super) async fn raw_server<F, Fut>(f: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(f(stream));
        }
    });
    addr
}

/// An address nothing listens on (bound, then released).
pub(super) async fn closed_tcp_addr() -> SocketAddr {
    listener().await.1
}

pub(super) async fn closed_udp_addr() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    s.local_addr().expect("local addr")
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost` and `127.0.0.1`.
pub(super) fn tls_acceptor(alpn: &[&[u8]]) -> TlsAcceptor {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("self-signed cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server cert");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// An HTTP/2 server (prior-knowledge h2c, or TLS) that only answers PINGs and refuses
/// streams: `h2` acknowledges PING frames while the connection is polled.
pub(super) async fn h2_server(tls: Option<TlsAcceptor>) -> SocketAddr {
    async fn serve<IO: AsyncRead + AsyncWrite + Unpin>(io: IO) {
        let Ok(mut conn) = h2::server::handshake(io).await else {
            return;
        };
        while let Some(Ok((_req, mut respond))) = conn.accept().await {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
        }
    }
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve(stream).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream).await;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A gRPC server with tonic-health's `Health` service: `""` and `svc.up` SERVING,
/// `svc.down` NOT_SERVING, anything else unknown.
pub(super) async fn grpc_server(tls: Option<TlsAcceptor>) -> SocketAddr {
    use tonic_health::ServingStatus;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("svc.up", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("svc.down", ServingStatus::NotServing)
        .await;
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        let _reporter = reporter;
        while let Ok((stream, _)) = listener.accept().await {
            let (health, tls) = (health.clone(), tls.clone());
            tokio::spawn(async move {
                let svc = hyper_util::service::TowerToHyperService::new(health);
                let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                match tls {
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                }
            });
        }
    });
    addr
}
