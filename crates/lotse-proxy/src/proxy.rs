//! Starting a proxy from a [`ProxySpec`]: bind every listener first (so a taken port fails the
//! start, naming it), then spawn per upstream its discovery task and its listener, and the
//! admin endpoint. [`Proxy::reconfigure`] applies a new set of upstream listeners (a changed
//! sidecar registration): unchanged upstreams keep running untouched, changed or removed ones
//! stop accepting (their open connections finish on their own tasks), new ones start.
//! [`Proxy::reconfigure_gateways`] does the same for gateway listeners (a reloaded
//! `lotse gateway -config` file), swapping a kept listener's routes in place.
//! [`Proxy::shutdown`] stops every accept loop and discovery task.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
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
use crate::gateway::running::RunningGateway;
use crate::gateway::GatewaySpec;
use crate::upstream::Upstream;
use crate::{discovery, l4, l7, ProxyError};

pub use crate::discovery::AgentAddr;

/// Where an upstream's endpoints come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Healthy instances of this service, from the agent.
    Service(String),
    /// Fixed addresses (a sidecar's public listener to its local service).
    Static(Vec<SocketAddr>),
}

#[derive(Debug, Clone, PartialEq)]
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
    /// Edge listeners routing by host and path (`lotse gateway`).
    pub gateways: Vec<GatewaySpec>,
    pub admin_bind: Option<SocketAddr>,
}

/// A running proxy.
pub struct Proxy {
    /// The admin endpoint's address, once bound.
    pub admin_addr: Option<SocketAddr>,
    running: Vec<Running>,
    gateways: Vec<RunningGateway>,
    admin: Arc<AdminState>,
    env: Env,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// One upstream listener with its own stop switch.
struct Running {
    spec: UpstreamSpec,
    up: Arc<Upstream>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        tracing::info!(upstream = %self.up.name, listener = %self.up.bind, "upstream stopped");
    }
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
        check_agent(&spec.upstreams, &spec.gateways, spec.agent.is_some())?;
        let mut listeners = Vec::new();
        for u in &spec.upstreams {
            listeners.push(bind(u.bind, &format!("upstream {}", u.name)).await?);
        }
        let mut gateway_listeners = Vec::new();
        for g in &spec.gateways {
            gateway_listeners.push(bind(g.bind, &format!("gateway {}", g.name)).await?);
        }
        let admin_listener = match spec.admin_bind {
            Some(a) => Some(bind(a, "admin").await?),
            None => None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let env = Env {
            clock,
            connector,
            agent: spec.agent.clone(),
        };
        let mut running = Vec::new();
        for (u, listener) in spec.upstreams.into_iter().zip(listeners) {
            running.push(env.run(u, listener));
        }
        let mut tasks = Vec::new();
        let gateways = spec
            .gateways
            .into_iter()
            .zip(gateway_listeners)
            .map(|(g, listener)| RunningGateway::start(&env, g, listener))
            .collect();
        let admin = Arc::new(AdminState {
            proxy_id: spec.proxy_id.clone(),
            config_version: spec.config_version.into(),
            upstreams: Mutex::new(Vec::new()),
        });
        let mut admin_addr = None;
        if let Some(l) = admin_listener {
            admin_addr = l.local_addr().ok();
            tasks.push(tokio::spawn(admin::serve(
                l,
                admin.clone(),
                shutdown_rx.clone(),
            )));
        }
        let proxy = Proxy {
            admin_addr,
            running,
            gateways,
            admin,
            env,
            shutdown,
            tasks,
        };
        proxy.publish();
        Ok(proxy)
    }

    /// Every upstream: the listeners' first, then the gateway routes'.
    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        self.running
            .iter()
            .map(|r| r.up.clone())
            .chain(
                self.gateways
                    .iter()
                    .flat_map(|g| g.routes.iter().map(|r| r.up.clone())),
            )
            .collect()
    }

    fn publish(&self) {
        *self
            .admin
            .upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = self.upstreams();
    }

    /// Applies a new set of upstream listeners as configuration `version`. Unchanged upstreams
    /// (same spec) keep their state and connections; the others are stopped (open connections
    /// finish) and started anew. A listener that cannot bind is reported after the others have
    /// been applied.
    pub async fn reconfigure(
        &mut self,
        upstreams: Vec<UpstreamSpec>,
        version: u64,
    ) -> Result<(), ProxyError> {
        let (keep, stop): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| upstreams.contains(&r.spec));
        for r in stop {
            r.stop().await;
        }
        let mut running = keep;
        let mut first_error = None;
        for u in upstreams {
            if running.iter().any(|r| r.spec == u) {
                continue;
            }
            match bind(u.bind, &format!("upstream {}", u.name)).await {
                Ok(listener) => running.push(self.env.run(u, listener)),
                Err(e) => {
                    tracing::warn!(error = %e, "upstream not started");
                    first_error.get_or_insert(e);
                }
            }
        }
        self.running = running;
        self.admin.config_version.store(version, Ordering::Relaxed);
        self.publish();
        tracing::info!(
            version,
            upstreams = self.running.len(),
            "configuration applied"
        );
        first_error.map_or(Ok(()), Err)
    }

    /// Applies a new set of gateway listeners as configuration `version` (a reloaded file).
    /// A listener whose address is in both keeps accepting: its routes are swapped in place,
    /// unchanged routes keeping their state. Listeners no longer named stop; new ones start.
    /// A config that needs an agent the proxy has not got is refused whole (nothing changes);
    /// a listener that cannot bind is reported after the others have been applied.
    pub async fn reconfigure_gateways(
        &mut self,
        gateways: Vec<GatewaySpec>,
        version: u64,
    ) -> Result<(), ProxyError> {
        check_agent(&[], &gateways, self.env.agent.is_some())?;
        let mut old: Vec<Option<RunningGateway>> = std::mem::take(&mut self.gateways)
            .into_iter()
            .map(Some)
            .collect();
        // Listeners no longer named stop first, so a new one may take an address over.
        for slot in old.iter_mut() {
            let gone = slot
                .as_ref()
                .is_some_and(|o| !gateways.iter().any(|g| g.bind == o.configured));
            if gone {
                if let Some(g) = slot.take() {
                    g.stop().await;
                }
            }
        }
        let mut first_error = None;
        for g in gateways {
            let same = old
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| o.configured == g.bind));
            if let Some(mut running) = same.and_then(|i| old[i].take()) {
                running.update(&self.env, g).await;
                self.gateways.push(running);
                continue;
            }
            match bind(g.bind, &format!("gateway {}", g.name)).await {
                Ok(listener) => self
                    .gateways
                    .push(RunningGateway::start(&self.env, g, listener)),
                Err(e) => {
                    tracing::warn!(error = %e, "gateway listener not started");
                    first_error.get_or_insert(e);
                }
            }
        }
        // Two listeners of the new config on one address: the second found nothing to keep.
        for g in old.into_iter().flatten() {
            g.stop().await;
        }
        self.admin.config_version.store(version, Ordering::Relaxed);
        self.publish();
        tracing::info!(
            version,
            gateways = self.gateways.len(),
            "gateway configuration applied"
        );
        first_error.map_or(Ok(()), Err)
    }

    /// The configuration version the admin endpoint shows.
    pub fn config_version(&self) -> u64 {
        self.admin.config_version.load(Ordering::Relaxed)
    }

    /// Stops accepting and following the agent; open connections finish on their own tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for r in self.running {
            r.stop().await;
        }
        for g in self.gateways {
            g.stop().await;
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Refuses upstreams that discover through an agent when there is none.
fn check_agent(
    upstreams: &[UpstreamSpec],
    gateways: &[GatewaySpec],
    have_agent: bool,
) -> Result<(), ProxyError> {
    let needs_agent = upstreams
        .iter()
        .chain(
            gateways
                .iter()
                .flat_map(|g| g.routes.iter().map(|r| &r.upstream)),
        )
        .any(|u| matches!(u.source, Source::Service(_)));
    if needs_agent && !have_agent {
        return Err(ProxyError::config(
            "agent",
            "discovery needs an agent address",
        ));
    }
    Ok(())
}

/// What building upstreams needs.
pub(crate) struct Env {
    pub clock: SharedClock,
    connector: Arc<dyn Connector>,
    pub agent: Option<AgentAddr>,
}

impl Env {
    /// Starts one upstream listener with its own stop switch.
    fn run(&self, mut u: UpstreamSpec, listener: TcpListener) -> Running {
        let bound = listener.local_addr().unwrap_or(u.bind);
        // Remembered with the port actually bound, so a later spec naming it compares equal.
        u.bind = bound;
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let up = self.upstream(u.clone(), bound, &stop_rx, &mut tasks);
        if up.cfg.protocol.is_l7() {
            let client = self.client(&up);
            tasks.push(tokio::spawn(l7::serve(
                listener,
                up.clone(),
                client,
                stop_rx,
            )));
        } else {
            let c = self.connector.clone();
            tasks.push(tokio::spawn(l4::serve(listener, up.clone(), c, stop_rx)));
        }
        tracing::info!(upstream = %up.name, listener = %bound, protocol = %up.cfg.protocol, "upstream listening");
        Running {
            spec: u,
            up,
            stop,
            tasks,
        }
    }

    /// An upstream with its endpoint source running (discovery task, or a fixed set).
    pub(crate) fn upstream(
        &self,
        u: UpstreamSpec,
        bound: SocketAddr,
        stop: &watch::Receiver<bool>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Arc<Upstream> {
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
        let seed = rand::random::<u64>();
        let up = Upstream::new(
            u.name.clone(),
            bound,
            u.config,
            self.clock.clone(),
            rx,
            seed,
        );
        match (&u.source, &self.agent) {
            (Source::Service(service), Some(agent)) => {
                tasks.push(tokio::spawn(discovery::run(
                    agent.clone(),
                    service.clone(),
                    tx,
                    up.clone(),
                    stop.clone(),
                )));
            }
            _ => {
                up.discovery
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .source = "static".into();
                // Keep the sender alive so the set stays readable.
                let mut rx = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let _tx = tx;
                    let _ = rx.changed().await;
                }));
            }
        }
        up
    }

    /// The pooled HTTP client of an L7 upstream (HTTP/2 only for `http2`/`grpc`).
    pub(crate) fn client(&self, up: &Arc<Upstream>) -> l7::HttpClient {
        let mut b = Client::builder(TokioExecutor::new());
        b.pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64);
        if up.cfg.protocol != crate::Protocol::Http {
            b.http2_only(true);
        }
        l7::HttpClient {
            pool: b.build(HyperConnector {
                upstream: up.clone(),
                connector: self.connector.clone(),
            }),
            connector: self.connector.clone(),
        }
    }
}
