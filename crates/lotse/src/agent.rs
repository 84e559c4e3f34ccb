//! `lotse agent`: the composition root. Loads the configuration, starts logging, the server
//! (consensus + facade; a client agent calls servers instead, `client`) and the HTTP API, and handles signals: SIGINT/SIGTERM stop gracefully
//! (stop accepting, let in-flight requests finish for a bounded time, stop consensus; every
//! acknowledged write is already on disk), SIGHUP and `PUT /v1/agent/reload` reload what can
//! be reloaded (the service and check definitions of the configuration, and the log level).
//!
//! `definitions` hands the configuration's services and checks to the local agent;
//! `config_reload` is the one reload path both triggers share.

mod client;
mod cluster;
mod config_reload;
mod definitions;
mod keyring;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lotse_api::request_limits::RequestLimiter;
use lotse_api::{AgentInfo, ApiState, Limits};
use lotse_server::{Server, ServerConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::layer::{Layer as _, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::{self, AgentConfig};
use config_reload::Reloader;

/// How long in-flight requests (parked blocking queries among them) may run after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Raises the soft limit on open files to the hard limit, as Go's runtime does for Consul: every
/// HTTP connection and parked blocking query holds one, and distributions still default the
/// soft limit to 1024. Per-client limits (`limits.http_max_conns_per_client`) then keep one
/// client from taking them all.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let was = limit.current;
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => {
                tracing::debug!(from = ?was, to = ?limit.current, "raised the open-file limit")
            }
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
}

pub fn main(args: &[String]) -> ExitCode {
    let loaded = match config::load(args) {
        Ok(l) => l,
        Err(e) if e.is_help() => {
            println!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("==> {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let logs = lotse_api::monitor::LogHub::new();
    let filter_handle = init_logging(&loaded.config, &logs);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lotse")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("==> cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(loaded.config, args.to_vec(), filter_handle, logs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("==> {e}");
            ExitCode::FAILURE
        }
    }
}

/// Consul's level names onto tracing's.
fn level_directive(level: &str) -> String {
    match level {
        "err" | "error" => "error",
        "warn" => "warn",
        "debug" => "debug",
        "trace" => "trace",
        _ => "info",
    }
    .to_string()
}

fn filter_for(level: &str) -> EnvFilter {
    // Our own crates at the chosen level; openraft's chatter one step quieter.
    let l = level_directive(level);
    let raft = if l == "trace" || l == "debug" {
        "info"
    } else {
        "warn"
    };
    // hickory-server logs two INFO lines per DNS request: its own lines at WARN unless
    // tracing (our DNS code reports what matters).
    let hickory = if l == "trace" { "debug" } else { "warn" };
    EnvFilter::new(format!(
        "{l},openraft={raft},hickory_server={hickory},hickory_proto={hickory},hickory_net={hickory}"
    ))
}

/// Logs go to stdout at the configured level (reloadable), and to `/v1/agent/monitor`
/// listeners at whatever level they asked for: each output has its own filter, so a monitor at
/// DEBUG sees debug lines while stdout stays at INFO.
fn init_logging(cfg: &AgentConfig, logs: &Arc<lotse_api::monitor::LogHub>) -> FilterHandle {
    let (filter, handle) = reload::Layer::new(filter_for(&cfg.log_level));
    if cfg.log_json {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stdout)
                    .with_filter(filter),
            )
            .with(lotse_api::monitor::layer(logs.clone()))
            .init();
    } else {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_writer(std::io::stdout)
                    .with_filter(filter),
            )
            .with(lotse_api::monitor::layer(logs.clone()))
            .init();
    }
    handle
}

/// The node's UUID: configured, else kept in `<data_dir>/node-id` (as Consul does), else new.
fn node_id(cfg: &AgentConfig) -> Result<String, String> {
    if let Some(id) = &cfg.node_id {
        return Ok(id.clone());
    }
    let Some(dir) = &cfg.data_dir else {
        return Ok(uuid::Uuid::new_v4().to_string());
    };
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => Ok(s.trim().to_string()),
        Ok(_) => Err(format!("{} does not hold a UUID", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            write_file_durably(&path, id.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_file_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn port(p: i32, what: &str) -> Result<u16, String> {
    u16::try_from(p).map_err(|_| format!("the {what} port is disabled or invalid ({p})"))
}

/// What the agent is: a server (Raft, the store, server RPC) or a client (calls servers).
enum Role {
    Server(Arc<Server>),
    Client(client::ClientRole),
}

impl Role {
    fn server(&self) -> Option<&Arc<Server>> {
        match self {
            Role::Server(s) => Some(s),
            Role::Client(_) => None,
        }
    }

    fn upstream(&self) -> Arc<dyn lotse_agent::Upstream> {
        match self {
            Role::Server(s) => s.clone(),
            Role::Client(c) => c.upstream.clone(),
        }
    }

    /// Stops what the role started (a start that failed half-way).
    async fn shutdown(&self) {
        if let Some(s) = self.server() {
            s.shutdown().await;
        }
    }
}

/// The DNS interface: a server's own responder, or a client's relay to a server's.
enum Dns {
    Server(lotse_dns::DnsServer),
    Relay(lotse_dns::relay::DnsRelay),
}

impl Dns {
    fn udp_addr(&self) -> SocketAddr {
        match self {
            Dns::Server(d) => d.udp_addr,
            Dns::Relay(r) => r.udp_addr,
        }
    }

    /// A client's relay has nothing to reload: the servers' DNS configuration answers.
    fn reloader(&self) -> Option<lotse_dns::DnsReloader> {
        match self {
            Dns::Server(d) => Some(d.reloader()),
            Dns::Relay(_) => None,
        }
    }

    fn rpc_handler(&self) -> Option<lotse_server::DnsHandler> {
        match self {
            Dns::Server(d) => Some(d.rpc_handler()),
            Dns::Relay(_) => None,
        }
    }

    async fn shutdown(self) {
        match self {
            Dns::Server(d) => d.shutdown().await,
            Dns::Relay(r) => r.shutdown().await,
        }
    }
}

async fn start_dns(
    cfg: &AgentConfig,
    role: &Role,
    addr: SocketAddr,
) -> Result<Dns, lotse_dns::DnsError> {
    match role {
        Role::Server(server) => lotse_dns::DnsServer::start(
            cfg.dns.clone(),
            server.clone(),
            addr,
            lotse_dns::UdpPath::from_env(),
        )
        .await
        .map(Dns::Server),
        Role::Client(client) => client.start_dns(addr).await.map(Dns::Relay),
    }
}

/// Starts consensus and the facade; the RPC listener is bound first, so a taken port stops
/// the start with a clear error.
async fn start_server(
    cfg: &AgentConfig,
    node_id: &str,
    advertise: std::net::IpAddr,
    server_port: u16,
    bootstrap: bool,
) -> Result<(Arc<Server>, tokio::net::TcpListener), String> {
    let rpc_addr = SocketAddr::new(cfg.bind_addr, server_port);
    let rpc_listener = tokio::net::TcpListener::bind(rpc_addr)
        .await
        .map_err(|e| format!("cannot listen for server RPC on {rpc_addr}: {e}"))?;
    let server = Server::start(ServerConfig {
        node_name: cfg.node_name.clone(),
        node_id: node_id.to_string(),
        datacenter: cfg.datacenter.clone(),
        advertise_addr: advertise.to_string(),
        server_port,
        data_dir: if cfg.dev { None } else { cfg.data_dir.clone() },
        bootstrap,
        snapshot_threshold: cfg.raft_snapshot_threshold,
        session_ttl_min: cfg.session_ttl_min,
        raft_multiplier: cfg.raft_multiplier,
        rpc_hold_timeout: cfg.rpc_hold_timeout,
        autopilot: cfg.autopilot,
    })
    .await
    .map_err(|e| format!("cannot start the server: {e}"))?;
    // A server that bootstraps alone leads within milliseconds: register this node (with its
    // serfHealth, which sessions need) before serving, so that the first request finds it.
    if bootstrap && server.wait_leader(Duration::from_secs(10)).await {
        if let Err(e) = server.ensure_self_registered().await {
            tracing::warn!(error = %e, "cannot register this node yet");
        }
    }
    Ok((server, rpc_listener))
}

async fn run(
    cfg: AgentConfig,
    args: Vec<String>,
    filter: FilterHandle,
    logs: Arc<lotse_api::monitor::LogHub>,
) -> Result<(), String> {
    let started = Instant::now();
    let node_id = node_id(&cfg)?;
    let advertise = match cfg.advertise_addr {
        Some(a) => a,
        // This workplace only ever uses loopback: an unspecified bind advertises 127.0.0.1.
        None if cfg.bind_addr.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        None => cfg.bind_addr,
    };
    let server_port = port(cfg.ports.server, "server")?;
    let serf_port = port(cfg.ports.serf_lan, "serf_lan")?;
    // One server bootstraps alone; more find each other through gossip first.
    let bootstrap = cfg.server && (cfg.dev || cfg.bootstrap || cfg.bootstrap_expect == 1);
    let (role, rpc_listener) = if cfg.server {
        let (server, listener) =
            start_server(&cfg, &node_id, advertise, server_port, bootstrap).await?;
        (Role::Server(server), Some(listener))
    } else {
        (
            Role::Client(client::ClientRole::start(&cfg, &node_id, advertise)),
            None,
        )
    };
    let gossip = cluster::start_gossip(lotse_gossip::GossipConfig {
        node_name: cfg.node_name.clone(),
        bind: SocketAddr::new(cfg.bind_addr, serf_port),
        advertise: SocketAddr::new(advertise, serf_port),
        tags: cluster::Tags {
            node_id: node_id.clone(),
            datacenter: cfg.datacenter.clone(),
            server_port: cfg.server.then_some(server_port),
            bootstrap_expect: cfg.bootstrap_expect,
        }
        .to_map(),
        keyring: keyring::load(&cfg)?,
        timing: gossip_timing(&cfg),
    })
    .await;
    let gossip = match gossip {
        Ok(g) => g,
        Err(e) => {
            role.shutdown().await;
            return Err(e);
        }
    };
    match &role {
        Role::Server(server) => cluster::feed_members(gossip.clone(), server.clone()),
        Role::Client(c) => {
            client::feed_servers(gossip.clone(), c.servers.clone(), cfg.datacenter.clone())
        }
    }

    let local = lotse_agent::Agent::start(
        role.upstream(),
        lotse_agent::AgentOptions {
            enable_script_checks: cfg.enable_script_checks,
            enable_local_script_checks: cfg.enable_local_script_checks,
            ae_interval: cfg.ae_interval,
            check_update_interval: cfg.check_update_interval,
            check_reap_interval: cfg.check_reap_interval,
            node_meta: cfg.node_meta.clone(),
            data_dir: if cfg.dev { None } else { cfg.data_dir.clone() },
        },
    );
    let local = match local {
        Ok(l) => l,
        Err(e) => {
            role.shutdown().await;
            return Err(e.to_string());
        }
    };
    // As Consul, a definition the agent refuses stops the start.
    if let Err(e) = definitions::register(&local, &cfg).await {
        role.shutdown().await;
        return Err(e);
    }
    // DNS answers from the server's catalog (a client relays to a server's responder);
    // `-dns-port -1` turns it off.
    let dns = match u16::try_from(cfg.ports.dns) {
        Ok(p) if p > 0 => match start_dns(&cfg, &role, SocketAddr::new(cfg.dns_addr, p)).await {
            Ok(d) => Some(d),
            Err(e) => {
                role.shutdown().await;
                return Err(e.to_string());
            }
        },
        _ => None,
    };
    let dns_addr = dns.as_ref().map(|d| d.udp_addr().to_string());
    let request_limits = Arc::new(RequestLimiter::new(cfg.limits.request_limits));
    let reloader = Reloader::new(
        args,
        filter,
        local.clone(),
        dns.as_ref().and_then(Dns::reloader),
        request_limits.clone(),
    );

    let http_port = port(cfg.ports.http, "http")?;
    let http_addr = SocketAddr::new(cfg.client_addr, http_port);
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {http_addr}: {e}"))?;
    // User events arriving through the pool, filtered for this agent, for `/v1/event/list`.
    let events = Arc::new(lotse_api::event::EventLog::default());
    lotse_api::event::start_receiver(
        events.clone(),
        gossip.clone(),
        local.clone(),
        cfg.node_name.clone(),
    );
    // `PUT /v1/agent/leave`: leave gracefully, then stop.
    let (leave_tx, mut leave_rx) = tokio::sync::mpsc::channel::<()>(1);
    let state = Arc::new(ApiState {
        server: role.server().cloned(),
        servers: match &role {
            Role::Server(_) => None,
            Role::Client(c) => Some(c.servers.clone()),
        },
        telemetry: role
            .server()
            .map_or_else(Default::default, |s| s.telemetry.clone()),
        agent: AgentInfo {
            node_name: cfg.node_name.clone(),
            node_id: node_id.clone(),
            datacenter: cfg.datacenter.clone(),
            primary_datacenter: cfg
                .primary_datacenter
                .clone()
                .unwrap_or_else(|| cfg.datacenter.clone()),
            server: cfg.server,
            dev: cfg.dev,
            version: env!("CARGO_PKG_VERSION").to_string(),
            bind_addr: advertise.to_string(),
            client_addr: cfg.client_addr.to_string(),
            http_port,
            serf_lan_port: cfg.ports.serf_lan.max(0) as u16,
            server_port,
            bootstrap_expect: cfg.bootstrap_expect,
            domain: cfg.domain.clone(),
        },
        limits: Limits {
            kv_max_value_size: cfg.limits.kv_max_value_size as usize,
            txn_max_req_len: cfg.limits.txn_max_req_len as usize,
            txn_max_ops: cfg.limits.txn_max_ops as usize,
        },
        request_limits,
        local: local.clone(),
        reload: Some(reloader.hook()),
        logs,
        gossip: Some(gossip.clone()),
        keyring_path: keyring::path(&cfg),
        leave: Some(Arc::new(move || {
            let _ = leave_tx.try_send(());
        })),
        events: events.clone(),
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let rpc = match (role.server(), rpc_listener) {
        (Some(server), Some(rpc_listener)) => {
            let mut stop_for_rpc = stop_rx.clone();
            let routes = server.rpc_routes(lotse_server::ForwardHandlers {
                http: Some(lotse_api::forwarded::handler(state.clone())),
                agent: Some(lotse_agent::remote::answer_clients(Arc::downgrade(server))),
                dns: dns.as_ref().and_then(Dns::rpc_handler),
            });
            Some(tokio::spawn(lotse_consensus::rpc::serve(
                rpc_listener,
                routes,
                async move {
                    let _ = stop_for_rpc.wait_for(|s| *s).await;
                },
            )))
        }
        _ => None,
    };
    if let Some(server) = role.server() {
        if !bootstrap && cfg.bootstrap_expect > 1 {
            cluster::bootstrap_when_ready(server.clone(), cfg.bootstrap_expect, server.rpc_peers());
        }
    }
    if !cfg.start_join.is_empty() {
        match cluster::join(&gossip, &cfg.start_join, serf_port).await {
            Ok(n) => tracing::info!(joined = n, "joined the cluster (start_join)"),
            Err(e) => {
                let _ = stop_tx.send(true);
                role.shutdown().await;
                return Err(format!("Failed to join {:?}: {e}", cfg.start_join));
            }
        }
    }
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<String>(1);
    if !cfg.retry_join.is_empty() {
        let (g, addrs, interval, max) = (
            gossip.clone(),
            cfg.retry_join.clone(),
            cfg.retry_interval,
            cfg.retry_max,
        );
        let fatal = fatal_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = cluster::retry_join(g, addrs, serf_port, interval, max).await {
                let _ = fatal.send(e).await;
            }
        });
    }
    let mut stop_for_http = stop_rx.clone();
    let conn_limit = lotse_api::conn_limit::ConnLimit::new(
        usize::try_from(cfg.limits.http_max_conns_per_client).unwrap_or(usize::MAX),
    );
    let http = tokio::spawn(lotse_api::serve(state, listener, conn_limit, async move {
        let _ = stop_for_http.wait_for(|s| *s).await;
    }));
    tracing::info!(
        node = %cfg.node_name,
        datacenter = %cfg.datacenter,
        server = cfg.server,
        dev = cfg.dev,
        http = %http_addr,
        dns = dns_addr.as_deref().unwrap_or("off"),
        data_dir = ?cfg.data_dir,
        ready_ms = started.elapsed().as_millis() as u64,
        "lotse agent running"
    );
    println!(
        "==> Lotse agent running! (HTTP on {http_addr}, DNS on {}, node {})",
        dns_addr.as_deref().unwrap_or("off"),
        cfg.node_name
    );

    let stopped = tokio::select! {
        why = wait_for_stop(&reloader) => Ok(why),
        Some(()) = leave_rx.recv() => Ok(Stop::Leave),
        Some(e) = fatal_rx.recv() => Err(e),
    };
    let leave = match &stopped {
        Ok(Stop::Interrupt) => !cfg.skip_leave_on_interrupt,
        Ok(Stop::Terminate) => cfg.leave_on_terminate,
        Ok(Stop::Leave) => true,
        Err(_) => false,
    };
    tracing::info!(?stopped, leave, "shutting down");
    if leave {
        graceful_leave(role.server(), &gossip).await;
    }
    // A server stops campaigning before it stops answering Raft: a node on its way out
    // must not win an election (with no one left to serve it).
    if let Some(server) = role.server() {
        server.stop_campaigning();
    }
    gossip.shutdown().await;
    let _ = stop_tx.send(true);
    // Parked blocking queries answer now, with what they have, instead of being cut off.
    if let Some(server) = role.server() {
        server.begin_shutdown();
    }
    match tokio::time::timeout(DRAIN_TIMEOUT, http).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server error"),
        Err(_) => tracing::warn!("in-flight requests still running after the drain timeout"),
        _ => {}
    }
    if let Some(dns) = dns {
        dns.shutdown().await;
    }
    if let Some(rpc) = rpc {
        if tokio::time::timeout(DRAIN_TIMEOUT, rpc).await.is_err() {
            tracing::warn!("server rpc connections still open after the drain timeout");
        }
    }
    role.shutdown().await;
    tracing::info!("shutdown complete");
    stopped.map(|_| ())
}

/// A graceful leave: a server first takes itself out of the Raft configuration (so the
/// others' quorum shrinks with it), then the pool is told, so the leader deregisters the node
/// instead of marking it failed.
async fn graceful_leave(server: Option<&Arc<Server>>, gossip: &lotse_gossip::Gossip) {
    if let Some(server) = server {
        if let Err(e) = server.leave_raft().await {
            tracing::warn!(error = %e, "could not leave the Raft configuration");
        }
    }
    gossip.leave(Duration::from_secs(5)).await;
}

/// Maps the configured gossip timing onto the pool's.
fn gossip_timing(cfg: &AgentConfig) -> lotse_gossip::Timing {
    let g = &cfg.gossip_lan;
    lotse_gossip::Timing {
        probe_interval: g.probe_interval,
        probe_timeout: g.probe_timeout,
        suspicion_mult: g.suspicion_mult,
        gossip_interval: g.gossip_interval,
        gossip_nodes: g.gossip_nodes as usize,
        retransmit_mult: g.retransmit_mult,
        reap_after: cfg.reconnect_timeout,
        // memberlist's LAN ratio (probe 1 s, push/pull 30 s): a pool tuned to probe faster
        // also reconnects to members it lost (partitions) sooner.
        push_pull_interval: g.probe_interval * 30,
        ..lotse_gossip::Timing::default()
    }
}

/// Why the agent stops.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Interrupt,
    Terminate,
    /// `PUT /v1/agent/leave`.
    Leave,
}

/// Returns on SIGINT or SIGTERM; handles SIGHUP (reload, in the background) meanwhile.
async fn wait_for_stop(reloader: &Arc<Reloader>) -> Stop {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping on ctrl-c only");
        let _ = tokio::signal::ctrl_c().await;
        return Stop::Interrupt;
    };
    loop {
        tokio::select! {
            _ = int.recv() => return Stop::Interrupt,
            _ = term.recv() => return Stop::Terminate,
            _ = hup.recv() => {
                let reloader = reloader.clone();
                // The reload logs its own failure.
                tokio::spawn(async move { reloader.reload().await });
            }
        }
    }
}
