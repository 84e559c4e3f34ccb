//! # lotse-dns: Consul's DNS interface
//!
//! ```text
//!  UDP datagram ─► udp loop (one per core, inline) ─┐
//!  TCP stream ──► hickory-server (framing, idle) ───┴► Responder: decode, classify the name,
//!        records from the CatalogView (kept current by the store's change feed), cut to
//!        the client's size (TC), encode ─► reply;  foreign names ─► Recursor
//! ```
//!
//! * [`config`]: `domain`, `alt_domain`, `recursors` and `dns_config`, with Consul's defaults.
//! * [`name`]: what a question's name asks for (`node`, `service`, RFC 2782, `addr`, PTR).
//! * [`view`]: the catalog as DNS needs it, built on first use and dropped on change.
//! * [`records`]: resource records as Consul writes them.
//! * [`respond`]: one request to one reply, synchronously (and what the fuzz target drives).
//! * [`serve`], [`udp`], [`hickory_handler`], [`recursor`]: the transports and the waits.
//! * [`relay`]: a client agent's listener, which hands every query to a server's responder
//!   over server RPC ([`DnsServer::rpc_handler`] answers there).
#![forbid(unsafe_code)]

pub mod config;
pub mod hickory_handler;
pub mod name;
pub mod records;
pub mod recursor;
pub mod relay;
pub mod respond;
pub mod serve;
#[cfg(any(test, feature = "fuzzing"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod udp;
pub mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lotse_core::Changes;
use lotse_server::watch_hub::ChangeListener;
use lotse_server::Server;

pub use config::{DnsConfig, RecursorStrategy, SoaConfig};
use serve::Core;
use view::CatalogView;

/// How long a TCP connection may sit without a request before it is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {addr} ({proto}): {source}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: std::io::Error,
    },
    #[error("invalid DNS configuration: {0}")]
    Config(String),
}

/// Which UDP path serves datagrams: Lotse's own loop (default), or hickory-server's (kept
/// so the benchmark can compare the two in one run: `LOTSE_DNS_UDP=hickory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpPath {
    Inline,
    Hickory,
}

impl UdpPath {
    pub fn from_env() -> UdpPath {
        match std::env::var("LOTSE_DNS_UDP").as_deref() {
            Ok("hickory") => UdpPath::Hickory,
            _ => UdpPath::Inline,
        }
    }
}

/// The running DNS interface; dropping it does not stop it, [`DnsServer::shutdown`] does.
pub struct DnsServer {
    core: Arc<Core>,
    udp: Option<udp::Workers>,
    hickory: hickory_server::Server<hickory_handler::Handler>,
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub view: Arc<CatalogView>,
}

/// UDP worker threads: `LOTSE_DNS_UDP_THREADS`, else one per core.
fn udp_threads() -> usize {
    std::env::var("LOTSE_DNS_UDP_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// See [`DnsServer::reloader`].
#[derive(Clone)]
pub struct DnsReloader(Arc<Core>);

impl DnsReloader {
    pub fn reload(&self, cfg: DnsConfig) -> Result<(), DnsError> {
        self.0.reload(cfg).map_err(DnsError::Config)
    }
}

/// Feeds the store's changes to the view.
struct ViewListener(Arc<CatalogView>);

impl ChangeListener for ViewListener {
    fn changed(&self, changes: &[Changes]) {
        self.0.invalidate(changes)
    }
    fn reset(&self) {
        self.0.reset()
    }
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` (port 0: any free port, the same for both) and serves.
    pub async fn start(
        cfg: DnsConfig,
        server: Arc<Server>,
        addr: SocketAddr,
        udp_path: UdpPath,
    ) -> Result<DnsServer, DnsError> {
        let view = CatalogView::new(server.clone());
        server.hub().listen(Arc::new(ViewListener(view.clone())));
        let core = Arc::new(Core::new(cfg, view.clone(), Some(server)).map_err(DnsError::Config)?);

        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DnsError::Bind {
                addr,
                proto: "tcp",
                source,
            })?;
        let tcp_addr = tcp.local_addr().map_err(|source| DnsError::Bind {
            addr,
            proto: "tcp",
            source,
        })?;
        let udp_bind = SocketAddr::new(addr.ip(), tcp_addr.port());
        let workers = match udp_path {
            UdpPath::Inline => udp_threads(),
            UdpPath::Hickory => 1,
        };
        let nonblocking = udp_path == UdpPath::Hickory;
        let sockets =
            udp::bind(udp_bind, workers, nonblocking).map_err(|source| DnsError::Bind {
                addr: udp_bind,
                proto: "udp",
                source,
            })?;
        let udp_addr = sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or(udp_bind);

        let mut hickory =
            hickory_server::Server::new(hickory_handler::Handler { core: core.clone() });
        hickory.register_listener(tcp, TCP_IDLE_TIMEOUT, 64);
        let udp_err = |source| DnsError::Bind {
            addr: udp_addr,
            proto: "udp",
            source,
        };
        let udp_workers = match udp_path {
            UdpPath::Inline => Some(
                udp::Workers::start(sockets, core.clone(), tokio::runtime::Handle::current())
                    .map_err(udp_err)?,
            ),
            UdpPath::Hickory => {
                for sock in sockets {
                    hickory
                        .register_socket(tokio::net::UdpSocket::from_std(sock).map_err(udp_err)?);
                }
                None
            }
        };
        Ok(DnsServer {
            core,
            udp: udp_workers,
            hickory,
            udp_addr,
            tcp_addr,
            view,
        })
    }

    /// Answers client agents' queries (server RPC `Forward.Dns`) as this server's own
    /// listener answers them.
    pub fn rpc_handler(&self) -> lotse_server::DnsHandler {
        let core = self.core.clone();
        Arc::new(move |query: Vec<u8>, tcp: bool| {
            let core = core.clone();
            Box::pin(async move {
                let transport = if tcp {
                    respond::Transport::Tcp
                } else {
                    respond::Transport::Udp
                };
                core.respond(&query, transport).await
            })
        })
    }

    /// Something that applies a reloaded `dns_config` (and `recursors`, `domain`, ...) to the
    /// running server, as Consul reloads them; the listeners stay.
    pub fn reloader(&self) -> DnsReloader {
        DnsReloader(self.core.clone())
    }

    /// Stops listening; requests in flight over TCP get a moment to finish.
    pub async fn shutdown(mut self) {
        if let Some(workers) = self.udp.take() {
            // The threads notice within a fraction of a second; waiting for them blocks.
            let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
        }
        let _ =
            tokio::time::timeout(Duration::from_secs(1), self.hickory.shutdown_gracefully()).await;
    }
}
