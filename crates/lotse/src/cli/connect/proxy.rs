//! `lotse connect proxy`: builds a [`ProxySpec`] from the agent's registration (`-sidecar-for`,
//! `-proxy-id`) or from flags (`-service`, `-upstream NAME:PORT`), starts the proxy on a small
//! tokio runtime and runs until SIGINT/SIGTERM. Logs (access log included) are JSON lines on
//! stderr.

use std::net::SocketAddr;

use clap::{ArgAction, Parser};
use lotse_proxy::{AgentAddr, Proxy, ProxySpec, Source, UpstreamConfig, UpstreamSpec};

use super::super::flags::{self, HttpFlags};
use super::super::http::{encode_component, Client, Query};
use super::{log_writer, sidecar};

#[derive(Parser, Debug)]
#[command(name = "connect proxy")]
struct ProxyArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The ID of a service instance on the local agent that this proxy should become a sidecar
    /// for. It requires that the proxy service is registered with the agent as a
    /// connect-proxy with Proxy.DestinationServiceID set to this value.
    #[arg(long = "sidecar-for", value_name = "string", default_value = "")]
    sidecar_for: String,
    /// The proxy's ID on the local agent.
    #[arg(long = "proxy-id", value_name = "string", default_value = "")]
    proxy_id: String,
    /// Name of the service this proxy is representing (ad hoc mode, with -upstream).
    #[arg(long, value_name = "string", default_value = "")]
    service: String,
    /// Upstream service to support connecting to, formatted as NAME:PORT: the proxy listens
    /// on 127.0.0.1:PORT and forwards (TCP) to healthy instances of NAME. May be repeated.
    #[arg(long, value_name = "value", action = ArgAction::Append)]
    upstream: Vec<String>,
    /// Address to listen on for inbound connections to the proxied service (ad hoc mode, with
    /// -service-addr): the public listener.
    #[arg(long, value_name = "string", default_value = "")]
    listen: String,
    /// Address of the local service to proxy inbound connections to (ad hoc mode, with
    /// -listen).
    #[arg(long = "service-addr", value_name = "string", default_value = "")]
    service_addr: String,
    /// Address for the admin endpoint (/stats/prometheus, /upstreams, /ready); "" disables it.
    #[arg(
        long = "admin-bind",
        value_name = "string",
        default_value = "127.0.0.1:19000"
    )]
    admin_bind: String,
    /// Log level: trace, debug, info, warn or error.
    #[arg(long = "log-level", value_name = "string", default_value = "info")]
    log_level: String,
    /// Write one JSON access-log line per request or connection (off by default, as Consul's
    /// proxies keep access logs off unless `proxy-defaults` turns them on).
    #[arg(long = "access-log")]
    access_log: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_proxy() -> String {
    flags::usage::<ProxyArgs>(
        "Usage: lotse connect proxy [options]

  Runs Lotse's built-in proxy: a listener per upstream on 127.0.0.1 that
  forwards to the healthy instances of the destination service, with load
  balancing, retries, circuit breaking, outlier detection, rate limits and
  load shedding, plus the public listener in front of the local service.

  Upstream settings come from each upstream's `config` in the sidecar
  registration (protocol, limits, passive_health_check, load_balancer,
  retries, rate_limit, load_shed, *_timeout_ms).

      $ lotse connect proxy -sidecar-for web-1
      $ lotse connect proxy -service web -upstream db:9191 -upstream cache:9192",
    )
}

pub fn run_proxy(args: &[String]) -> i32 {
    let a: ProxyArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Err(code) = flags::no_args(&a.args) {
        return code;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _log = init_logging(&a.log_level, a.access_log);
    let spec = match spec(&a, &client) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let sidecar = !a.sidecar_for.is_empty() || !a.proxy_id.is_empty();
    serve(spec, if sidecar { Some(client) } else { None }, None)
}

/// Re-reads a configuration (the gateway's file) on SIGHUP; an error names the field.
pub type Reload = Box<dyn Fn() -> Result<ProxySpec, String> + Send>;

/// Runs `spec` on a small runtime until SIGINT/SIGTERM. With `check_client`, the proxy's own
/// health check is registered on its service (sidecar mode) and removed on the way out. With
/// `reload`, SIGHUP applies a re-read configuration's gateways (a broken one is logged and the
/// running configuration kept).
pub fn serve(spec: ProxySpec, check_client: Option<Client>, reload: Option<Reload>) -> i32 {
    // One worker is tokio's current-thread scheduler: no work stealing and no cross-thread
    // wake-ups, which is all a single worker would pay them for. A sidecar (`connect proxy`)
    // runs one by default: it fronts one service instance and shares its machine with it, and
    // one worker costs about 14 % less CPU per request than two (bench/README.md). An edge
    // gateway serves everyone and keeps two.
    let workers = proxy_workers(if reload.is_some() { 2 } else { 1 });
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = match builder.thread_name("lotse-proxy").enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return flags::fail("Error starting the runtime", e),
    };
    let proxy_id = spec.proxy_id.clone();
    let admin_bind = spec.admin_bind;
    rt.block_on(async move {
        let mut proxy = match Proxy::start(spec).await {
            Ok(p) => p,
            Err(e) => return flags::fail("Error starting the proxy", e),
        };
        let mut check = None;
        if let Some(admin) = proxy.admin_addr {
            tracing::info!(admin = %admin, "proxy running");
            if let Some(client) = &check_client {
                check = register_check(client, &proxy_id, admin).await;
            }
        }
        // Sidecar: follow the registration and apply changed upstreams live.
        let (tx, mut changes) = tokio::sync::mpsc::channel(1);
        if let Some(client) = &check_client {
            sidecar::watch(client.clone(), proxy_id.clone(), tx);
        }
        let signal = wait_for_signal();
        tokio::pin!(signal);
        let mut hangups = hangups(reload.is_some());
        let mut version = proxy.config_version();
        loop {
            tokio::select! {
                _ = &mut signal => break,
                Some(upstreams) = changes.recv() => {
                    version += 1;
                    if let Err(e) = proxy.reconfigure(upstreams, version).await {
                        tracing::warn!(error = %e, "configuration partly applied");
                    }
                }
                Some(()) = hangups.recv() => {
                    let Some(reload) = &reload else { continue };
                    match reload() {
                        Ok(new) => {
                            if new.admin_bind != admin_bind {
                                tracing::warn!("admin_bind changes apply at the next start");
                            }
                            version += 1;
                            match proxy.reconfigure_gateways(new.gateways, version).await {
                                Ok(()) => tracing::info!(version, "configuration reloaded"),
                                Err(e) => tracing::warn!(version, error = %e, "configuration reloaded in part"),
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "reload failed; keeping the running configuration"),
                    }
                }
            }
        }
        tracing::info!("proxy stopping");
        if let (Some(id), Some(client)) = (check, &check_client) {
            deregister_check(client, &id).await;
        }
        proxy.shutdown().await;
        0
    })
}

/// The proxy's own health check on its service (an HTTP check of the admin `/ready`), so the
/// catalog shows a sidecar whose process is gone as critical. Failing to register it is logged,
/// not fatal: the data plane works without it.
async fn register_check(client: &Client, proxy_id: &str, admin: SocketAddr) -> Option<String> {
    let id = format!("lotse-proxy-ready:{proxy_id}");
    let body = serde_json::json!({
        "ID": id,
        "Name": "Lotse proxy ready",
        "ServiceID": proxy_id,
        "HTTP": format!("http://{admin}/ready"),
        "Interval": "10s",
        "Timeout": "2s",
    });
    let c = client.clone();
    let result = tokio::task::spawn_blocking(move || {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        c.request_ok(
            "PUT",
            "/v1/agent/check/register",
            &Query::default(),
            Some(&bytes),
        )
    })
    .await;
    match result {
        Ok(Ok(_)) => Some(id),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot register the proxy's health check");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot register the proxy's health check");
            None
        }
    }
}

async fn deregister_check(client: &Client, id: &str) {
    let c = client.clone();
    let path = format!("/v1/agent/check/deregister/{}", encode_component(id));
    let _ =
        tokio::task::spawn_blocking(move || c.request_ok("PUT", &path, &Query::default(), None))
            .await;
}

fn spec(a: &ProxyArgs, client: &Client) -> Result<ProxySpec, String> {
    let agent = AgentAddr {
        base: client.config.base.clone(),
        token: client.config.token.clone(),
    };
    let admin_bind = if a.admin_bind.is_empty() {
        None
    } else {
        Some(a.admin_bind.parse::<SocketAddr>().map_err(|_| {
            format!(
                "-admin-bind: {:?} is not an address (IP:PORT)",
                a.admin_bind
            )
        })?)
    };
    let (proxy_id, upstreams, warnings) = if !a.sidecar_for.is_empty() || !a.proxy_id.is_empty() {
        if !a.upstream.is_empty() {
            return Err("-upstream cannot be combined with -sidecar-for or -proxy-id".into());
        }
        let id = if a.proxy_id.is_empty() {
            sidecar::proxy_id_for(client, &a.sidecar_for)?
        } else {
            a.proxy_id.clone()
        };
        let (ups, warnings) = sidecar::listeners(client, &id)?;
        (id, ups, warnings)
    } else if !a.service.is_empty() {
        let mut ups = Vec::new();
        for (i, u) in a.upstream.iter().enumerate() {
            let (name, port) = u
                .rsplit_once(':')
                .and_then(|(n, p)| Some((n, p.parse::<u16>().ok()?)))
                .filter(|(n, p)| !n.is_empty() && *p > 0)
                .ok_or_else(|| format!("-upstream[{i}]: {u:?}: expected NAME:PORT"))?;
            ups.push(UpstreamSpec {
                name: name.to_string(),
                bind: SocketAddr::from(([127, 0, 0, 1], port)),
                source: Source::Service(name.to_string()),
                config: UpstreamConfig::default(),
            });
        }
        match (a.listen.is_empty(), a.service_addr.is_empty()) {
            (true, true) => {}
            (false, false) => {
                let listen: SocketAddr = a
                    .listen
                    .parse()
                    .map_err(|_| format!("-listen: {:?} is not IP:PORT", a.listen))?;
                let local: SocketAddr = a
                    .service_addr
                    .parse()
                    .map_err(|_| format!("-service-addr: {:?} is not IP:PORT", a.service_addr))?;
                ups.push(UpstreamSpec {
                    name: format!("{}-public", a.service),
                    bind: listen,
                    source: Source::Static(vec![local]),
                    config: UpstreamConfig::default(),
                });
            }
            _ => return Err("-listen and -service-addr go together".into()),
        }
        (format!("{}-proxy", a.service), ups, Vec::new())
    } else {
        return Err("One of -sidecar-for, -proxy-id or -service is required".into());
    };
    for w in warnings {
        tracing::warn!(proxy = %proxy_id, "{w}");
    }
    if upstreams.is_empty() {
        tracing::warn!(proxy = %proxy_id, "no upstreams and no public listener: only the admin endpoint runs");
    }
    Ok(ProxySpec {
        proxy_id,
        config_version: 1,
        agent: Some(agent),
        upstreams,
        gateways: Vec::new(),
        admin_bind,
    })
}

/// JSON logs on stderr at `level`; the access log (target `lotse_proxy::access`) only when
/// asked for: a line per request costs more than forwarding the request does. Lines are
/// written by a thread of their own ([`log_writer`]); keep the guard until the proxy exits.
#[must_use = "dropping the guard stops the log"]
pub fn init_logging(level: &str, access_log: bool) -> Option<log_writer::LogGuard> {
    let access = if access_log { "info" } else { "off" };
    let filter =
        tracing_subscriber::EnvFilter::try_new(format!("{level},lotse_proxy::access={access}"))
            .unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!("info,lotse_proxy::access={access}"))
            });
    // Without its thread (the system refused one), lines are written in place, as before.
    let (writer, guard) = match log_writer::spawn(std::io::stderr(), log_writer::QUEUE_BYTES) {
        Ok((w, g)) => (log_writer::ProxyLog::Queue(w), Some(g)),
        Err(e) => {
            eprintln!("the log's writer thread did not start ({e}); writing logs in place");
            (log_writer::ProxyLog::Stderr, None)
        }
    };
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_current_span(false)
        .try_init();
    guard
}

/// The proxy runtime's worker threads: `LOTSE_PROXY_WORKERS`, else `default`.
fn proxy_workers(default: usize) -> usize {
    std::env::var("LOTSE_PROXY_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(default)
}

/// SIGHUPs as a stream (only when `wanted`: otherwise SIGHUP keeps its default action).
fn hangups(wanted: bool) -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    if wanted {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        // Several SIGHUPs while one reload runs make one more reload.
                        let _ = tx.try_send(());
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch SIGHUP; reload needs a restart"),
        }
    }
    #[cfg(not(unix))]
    let _ = (wanted, tx);
    rx
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
