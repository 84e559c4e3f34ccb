//! Starting a proxy from a [`ProxySpec`]: bind every listener first (so a taken port fails the
//! start, naming it), then spawn per upstream its discovery task and its listener, and the
//! admin endpoint. [`Proxy::shutdown`] stops the accept loops and discovery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, AdminState};
use crate::clock::{SharedClock, SystemClock};
use crate::config::UpstreamConfig;
use crate::connector::{Connector, HyperConnector, TcpConnector};
use crate::endpoint::{Endpoint, EndpointSet};
use crate::upstream::Upstream;
use crate::{discovery, l4, l7, ProxyError};

pub use crate::discovery::AgentAddr;

/// Where an upstream's endpoints come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Healthy instances of this service, from the agent.
    Service(String),
    /// Fixed addresses (a sidecar's public listener to its local service).
    Static(Vec<SocketAddr>),
}

#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// The name in metrics and the admin listing (the destination service's name).
    pub name: String,
    pub bind: SocketAddr,
    pub source: Source,
    pub config: UpstreamConfig,
}

#[derive(Debug, Clone)]
pub struct ProxySpec {
    pub proxy_id: String,
    /// Bumped by the caller whenever the spec changes; shown by the admin endpoint.
    pub config_version: u64,
    pub agent: Option<AgentAddr>,
    pub upstreams: Vec<UpstreamSpec>,
    pub admin_bind: Option<SocketAddr>,
}

/// A running proxy.
pub struct Proxy {
    pub upstreams: Vec<Arc<Upstream>>,
    /// The admin endpoint's address, once bound.
    pub admin_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Bind {
            addr,
            what: what.to_string(),
            source,
        })
}

impl Proxy {
    /// Starts the proxy on the current tokio runtime with the real clock and plain TCP.
    pub async fn start(spec: ProxySpec) -> Result<Proxy, ProxyError> {
        Proxy::start_with(spec, SystemClock::shared(), Arc::new(TcpConnector)).await
    }

    /// Starts with a given clock and connector (tests; TLS later).
    pub async fn start_with(
        spec: ProxySpec,
        clock: SharedClock,
        connector: Arc<dyn Connector>,
    ) -> Result<Proxy, ProxyError> {
        for (i, u) in spec.upstreams.iter().enumerate() {
            if matches!(u.source, Source::Service(_)) && spec.agent.is_none() {
                return Err(ProxyError::config(
                    format!("upstreams[{i}]"),
                    "discovery needs an agent address",
                ));
            }
        }
        let mut listeners = Vec::new();
        for u in &spec.upstreams {
            listeners.push(bind(u.bind, &format!("upstream {}", u.name)).await?);
        }
        let admin_listener = match spec.admin_bind {
            Some(a) => Some(bind(a, "admin").await?),
            None => None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut upstreams = Vec::new();
        for (i, (u, listener)) in spec.upstreams.into_iter().zip(listeners).enumerate() {
            let bound = listener.local_addr().unwrap_or(u.bind);
            let initial = match &u.source {
                Source::Static(addrs) => EndpointSet::new(
                    1,
                    addrs
                        .iter()
                        .map(|a| Endpoint {
                            id: a.to_string(),
                            addr: *a,
                            weight: 1,
                        })
                        .collect(),
                ),
                Source::Service(_) => EndpointSet::default(),
            };
            let (tx, rx) = watch::channel(initial);
            let up = Upstream::new(
                u.name.clone(),
                bound,
                u.config,
                clock.clone(),
                rx,
                rand::random::<u64>() ^ i as u64,
            );
            match (&u.source, &spec.agent) {
                (Source::Service(service), Some(agent)) => {
                    tasks.push(tokio::spawn(discovery::run(
                        agent.clone(),
                        service.clone(),
                        tx,
                        up.clone(),
                        shutdown_rx.clone(),
                    )));
                }
                _ => {
                    let mut st = up.discovery.lock().unwrap_or_else(|p| p.into_inner());
                    st.source = "static".into();
                    drop(st);
                    // Keep the sender alive so the set stays readable.
                    let mut rx = shutdown_rx.clone();
                    tasks.push(tokio::spawn(async move {
                        let _tx = tx;
                        let _ = rx.changed().await;
                    }));
                }
            }
            if up.cfg.protocol.is_l7() {
                let mut b = Client::builder(TokioExecutor::new());
                b.pool_idle_timeout(Duration::from_secs(30))
                    .pool_max_idle_per_host(64);
                if up.cfg.protocol != crate::Protocol::Http {
                    b.http2_only(true);
                }
                let client = b.build(HyperConnector {
                    upstream: up.clone(),
                    connector: connector.clone(),
                });
                tasks.push(tokio::spawn(l7::serve(
                    listener,
                    up.clone(),
                    client,
                    shutdown_rx.clone(),
                )));
            } else {
                tasks.push(tokio::spawn(l4::serve(
                    listener,
                    up.clone(),
                    connector.clone(),
                    shutdown_rx.clone(),
                )));
            }
            tracing::info!(upstream = %up.name, listener = %bound, protocol = ?up.cfg.protocol, "upstream listening");
            upstreams.push(up);
        }
        let mut admin_addr = None;
        if let Some(l) = admin_listener {
            admin_addr = l.local_addr().ok();
            let state = Arc::new(AdminState {
                proxy_id: spec.proxy_id.clone(),
                config_version: spec.config_version,
                upstreams: upstreams.clone(),
            });
            tasks.push(tokio::spawn(admin::serve(l, state, shutdown_rx.clone())));
        }
        Ok(Proxy {
            upstreams,
            admin_addr,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting and following the agent; open connections finish on their own tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
