//! Agent configuration: `lotse agent` flags, JSON/HCL files and directories, `LOTSE_*`
//! environment variables, merged the way Consul merges them, then validated.
//!
//! # Sources, in merge order (later wins)
//!
//! 1. Built-in defaults (Consul's, see [`AgentConfig`]), then the `-dev` defaults: `server`,
//!    `bind_addr = 127.0.0.1` and, after validation, `bootstrap_expect = 1`.
//! 2. `-config-file` / `-config-dir`, in the order given on the command line (both flags accept
//!    a file or a directory, as in Consul). A directory contributes its `*.json` and `*.hcl`
//!    files, not sub-directories, in lexical order. The format comes from the extension, or
//!    from `-config-format` for every file. Keys are Consul's (`node_name`, `ports { http }`).
//! 3. `LOTSE_*` environment variables (Lotse's own; Consul has none).
//! 4. Command-line flags, then `-hcl` fragments (as in Consul).
//!
//! Scalars: the last source that sets a value wins. Lists (`retry_join`, `start_join`,
//! `recursors`, and the `service`/`services`/`check`/`checks` definitions) are concatenated
//! instead; as in Consul the command-line's list entries come first, then the files', then the
//! environment's. Maps (`ports`, `limits`, `acl`, `acl.tokens`, `node_meta`, `addresses`,
//! `dns_config`, `dns_config.soa`, `dns_config.service_ttl`) merge key by key. HCL blocks
//! written twice (`ports { } ports { }`) are read in order.
//!
//! # Environment variables
//!
//! The rule: `LOTSE_` + the configuration-file key in capitals, with nested keys joined by `_`:
//! `LOTSE_NODE_NAME`, `LOTSE_DATACENTER`, `LOTSE_DATA_DIR`, `LOTSE_LOG_LEVEL`,
//! `LOTSE_PORTS_HTTP`, `LOTSE_LIMITS_KV_MAX_VALUE_SIZE`, `LOTSE_ACL_ENABLED`,
//! `LOTSE_ACL_TOKENS_AGENT`. In addition every flag that sets a key has its flag name as an
//! alias, `LOTSE_` + flag in capitals with `-` as `_`: `LOTSE_HTTP_PORT`, `LOTSE_DNS_PORT`,
//! `LOTSE_NODE`, `LOTSE_BIND`, `LOTSE_CLIENT`, `LOTSE_JOIN`... When both spellings are set the
//! key spelling wins. Booleans take Go's forms (`true`, `false`, `1`, `0`, `t`, `f`); lists are
//! comma-separated (`LOTSE_RETRY_JOIN=10.0.0.1,10.0.0.2`); durations use Go syntax. Only keys
//! Lotse implements have a variable (see `env::KEYS`); other `LOTSE_*` variables are not
//! read, since the CLI uses the prefix for its own settings (`LOTSE_HTTP_ADDR`, ...).
//!
//! # Warnings and errors
//!
//! Nothing is ignored silently: an unknown key, a Consul key Lotse does not implement yet and
//! a deprecated key each produce a warning naming the key and the file ([`Loaded::warnings`];
//! the caller logs them). A malformed file is an error naming the file, line, column and
//! reason; a value of the wrong type is an error naming the key and the source. Validation
//! follows Consul's messages (`data_dir cannot be empty`, `'bootstrap_expect > 0' not allowed
//! in dev mode`, ...).
//!
//! # Service and check definitions
//!
//! `service { }` / `services = [..]` and `check { }` / `checks = [..]` take Consul's keys (see
//! `partial/definitions.rs`); each source's definitions are validated as it is read, so a bad
//! one is an error naming the file and the service: the agent does not start, and a reload
//! keeps what is running. The agent registers them after start and replaces them on reload.
//!
//! # DNS
//!
//! `domain`, `alt_domain`, `recursors` (`-recursor`), `addresses { dns }`, `ports { dns }` and
//! `dns_config { ... }` take Consul's keys and defaults (see `lotse_dns::config::DnsConfig`)
//! and end up in [`AgentConfig::dns`] and [`AgentConfig::dns_addr`]. A recursor is an IP
//! address, `IP:port` or `[IPv6]:port` (port 53 by default); duplicates are dropped, as in
//! Consul. Checks follow Consul's: negative `udp_answer_limit`/`a_record_limit`, an unknown
//! `recursor_strategy` and an `alt_domain` starting with `service.`, `node.`, ... or the
//! datacenter are errors. `dns_config { use_cache, cache_max_age, prefer_namespace }` are
//! accepted and ignored with a warning.
//!
//! # Cluster membership
//!
//! `encrypt` (`-encrypt`), `encrypt_verify_incoming`/`_outgoing`, `performance { raft_multiplier,
//! leave_drain_time, rpc_hold_timeout }`, `reconnect_timeout`, `leave_on_terminate`,
//! `skip_leave_on_interrupt`, `rejoin_after_leave` (`-rejoin`), `retry_max` (`-retry-max`),
//! `raft_trailing_logs`, `autopilot { }` and `gossip_lan { }` take Consul's keys, defaults and
//! checks (see `cluster.rs`); `-dev` takes Consul's dev values (`raft_multiplier = 1`, faster
//! gossip). `gossip_lan` is undocumented in Consul too; tests use it to speed failure
//! detection up.
//!
//! # Lotse extensions and differences
//!
//! - `limits.txn_max_ops` (default 128): the most operations one `/v1/txn` request may hold.
//!   Consul hard-codes 128; Lotse makes it configurable.
//! - `limits.http_max_conns_per_client` (default 200) is Consul's; a connection closed by its
//!   client during a blocking wait keeps its slot until the query answers (see
//!   `docs/design-notes.md`, HTTP serving).
//! - `limits.request_limits` (`mode`, `read_rate`, `write_rate`) is Consul's global rate
//!   limit, applied by servers to the HTTP requests they serve (Consul applies it to RPCs);
//!   see `lotse_api::request_limits`.
//! - `-dev` keeps `log_level = info` (Consul's dev mode logs at debug) and leaves gRPC off.
//! - `bootstrap_expect = 1` is kept as is (and sets `bootstrap`); `-bootstrap` and `-dev`
//!   both yield `bootstrap_expect = 1`, so the agent only needs to look at `bootstrap_expect`.
//! - HCL is read with an HCL2 parser; Consul's HCL1 files parse the same except that a block
//!   nested in a block on the same line (`acl { tokens { agent = "x" } }`) must be split over
//!   lines or written as `acl = { tokens = { agent = "x" } }`.
//! - go-sockaddr templates (`{{ GetPrivateIP }}`) in addresses and recursors are not supported
//!   yet, nor are host names as recursors (Consul resolves them once at start).
//! - `dns_config.enable_truncate` defaults to true (Consul: false), see `lotse_dns`.
//! - An `alt_domain` equal to `domain` is ignored with a warning (Consul accepts it; it has no
//!   effect there either). An empty `domain` is refused (Consul would answer for the root).
//! - `addresses` takes one address per key (Consul: a space-separated list); only `dns` is
//!   implemented.
//! - HCL2 cannot quote attribute names in a block: write `service_ttl = { "*" = "5s" }` with
//!   `=` (Consul's HCL1 also takes `service_ttl { "*" = "5s" }`).

mod cluster;
mod dns;
mod duration;
mod env;
pub(crate) mod files;
mod flags;
#[cfg(test)]
mod fuzz;
mod partial;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lotse_api::request_limits::RequestLimits;
use serde_json::Value;

pub use cluster::{AutopilotConfig, GossipLanConfig};
use files::Format;
use partial::{Cx, Partial};

/// The result of [`load`]: the configuration and the warnings to log.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: AgentConfig,
    /// Unknown, unimplemented and deprecated keys and flags, skipped files, and Consul's
    /// advisory warnings (e.g. an even `bootstrap_expect`). Log each at warn level.
    pub warnings: Vec<String>,
}

/// Why the configuration could not be loaded.
///
/// For [`ConfigError::Flags`] print the message to stdout when [`ConfigError::is_help`] (it is
/// the help text), else to stderr; exit with [`ConfigError::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command-line flags, or `-h`/`-help`: clap's message.
    #[error("{}", .0.to_string().trim_end())]
    Flags(#[from] clap::Error),
    /// A file or directory could not be read (e.g. a missing `-config-file`).
    #[error("config: cannot read {}: {error}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// A malformed JSON or HCL file.
    #[error("{}", syntax_message(.origin, *.line, *.column, .reason))]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// A known key with a value of the wrong type or form.
    #[error("config: invalid value for {key:?} in {origin}: {reason}")]
    Value {
        origin: String,
        key: String,
        reason: String,
    },
    /// A `service`/`check` definition the agent would refuse (the decoder's message, as
    /// Consul's HTTP API words it). Nothing is registered: at start the agent does not start,
    /// on reload the running definitions stay.
    #[error("config: {kind}{} in {origin}: {reason}", .name.as_ref().map(|n| format!(" {n:?}")).unwrap_or_default())]
    Definition {
        /// `service` or `check`.
        kind: &'static str,
        /// Its name (else ID), when it has one.
        name: Option<String>,
        origin: String,
        reason: String,
    },
    /// The merged configuration is invalid (Consul's validation messages).
    #[error("{0}")]
    Invalid(String),
}

fn syntax_message(origin: &str, line: usize, column: usize, reason: &str) -> String {
    if line == 0 {
        format!("config: failed to parse {origin}: {reason}")
    } else {
        format!("config: failed to parse {origin}: line {line}, column {column}: {reason}")
    }
}

impl ConfigError {
    /// True for `-h`/`-help`: the message is the help text and the exit code 0.
    pub fn is_help(&self) -> bool {
        matches!(self, ConfigError::Flags(e) if e.exit_code() == 0)
    }

    /// 0 for help, 2 for flag usage errors (as clap), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Flags(e) => e.exit_code().clamp(0, 255) as u8,
            _ => 1,
        }
    }
}

/// The agent's configuration after merging and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub dev: bool,
    /// Server mode; true in `-dev` unless a source sets `server = false`.
    pub server: bool,
    /// `bootstrap` / `-bootstrap`: bootstrap a lone server. Implies `bootstrap_expect == 1`.
    pub bootstrap: bool,
    /// 0 = unset (a server then waits to be joined); `-dev` and `-bootstrap` give 1.
    pub bootstrap_expect: u32,
    /// `data_dir` / `-data-dir`; required unless `-dev` (Consul requires it for clients too).
    pub data_dir: Option<PathBuf>,
    /// `node_name` / `-node`; default: the host name, else `"lotse"`.
    pub node_name: String,
    /// `node_id` / `-node-id`: a UUID, lower-cased. `None`: the agent picks one.
    pub node_id: Option<String>,
    /// `node_meta` / `-node-meta key:value`.
    pub node_meta: BTreeMap<String, String>,
    /// Default `"dc1"`; lower-cased; `[a-z0-9_-]+`.
    pub datacenter: String,
    /// `None` when unset: the agent's own datacenter is primary.
    pub primary_datacenter: Option<String>,
    /// `bind_addr` / `-bind`; default 0.0.0.0, `-dev`: 127.0.0.1.
    pub bind_addr: IpAddr,
    /// `client_addr` / `-client`; default 127.0.0.1.
    pub client_addr: IpAddr,
    /// `advertise_addr` / `-advertise`; `None`: derive from `bind_addr`.
    pub advertise_addr: Option<IpAddr>,
    pub ports: Ports,
    /// `retry_join` / `-retry-join`.
    pub retry_join: Vec<String>,
    /// `start_join` / `-join`: join once at start, no retries.
    pub start_join: Vec<String>,
    /// Default 30s.
    pub retry_interval: Duration,
    /// One of `trace`, `debug`, `info`, `warn`, `error` (`err` is read as `error`); default `info`.
    pub log_level: String,
    pub log_json: bool,
    pub enable_script_checks: bool,
    /// Defaults to `enable_script_checks`.
    pub enable_local_script_checks: bool,
    /// `domain` / `-domain` as written; default `"consul."`. The DNS interface uses the
    /// normalized form in `dns.domain`.
    pub domain: String,
    /// The DNS interface: `domain` (normalized), `alt_domain`, `recursors`, `datacenter` and
    /// the `dns_config { ... }` block. Defaults: `lotse_dns::DnsConfig::default()` with the
    /// agent's domain and datacenter.
    pub dns: lotse_dns::config::DnsConfig,
    /// `addresses { dns }`: the DNS listener's address; default `client_addr`. The port is
    /// `ports.dns` (-1: no DNS listener).
    pub dns_addr: IpAddr,
    pub limits: Limits,
    /// Default 10s.
    pub session_ttl_min: Duration,
    /// Default 16384.
    pub raft_snapshot_threshold: u64,
    /// Default 30s.
    pub raft_snapshot_interval: Duration,
    pub acl: AclConfig,
    /// `service` and `services` definitions from every source in merge order, as written
    /// (validated at load; `lotse_agent::definition::decode::service` reads them).
    pub services: Vec<Value>,
    /// `check` and `checks` definitions, likewise (`decode::check`).
    pub checks: Vec<Value>,
    /// Base period of anti-entropy's full sync; default 1m; must be positive.
    pub ae_interval: Duration,
    /// How long a check result that only changes the output may wait before it is synced;
    /// default 5m; 0 syncs every change at once.
    pub check_update_interval: Duration,
    /// How often services with long-critical checks are looked for; default 30s. Internal in
    /// Consul; must be positive.
    pub check_reap_interval: Duration,
    /// `encrypt` / `-encrypt`: the gossip key, decoded (16, 24 or 32 bytes). `None`: gossip
    /// is not encrypted.
    pub encrypt: Option<Vec<u8>>,
    /// Refuse unencrypted incoming gossip when a key is set; default true.
    pub encrypt_verify_incoming: bool,
    /// Encrypt outgoing gossip when a key is set; default true.
    pub encrypt_verify_outgoing: bool,
    /// `performance.raft_multiplier`: scales Raft's timeouts; 1..=10, default 5 (`-dev`: 1).
    pub raft_multiplier: u32,
    /// `performance.leave_drain_time`: how long a leaving server keeps serving RPCs; default 5s.
    pub leave_drain_time: Duration,
    /// `performance.rpc_hold_timeout`: how long an RPC waits out a leader election; default 7s.
    pub rpc_hold_timeout: Duration,
    /// How long a failed node stays a member before it is reaped; default 72h.
    pub reconnect_timeout: Duration,
    /// Leave the cluster on SIGTERM; default true for clients, false for servers.
    pub leave_on_terminate: bool,
    /// Do not leave on SIGINT; default true for servers, false for clients.
    pub skip_leave_on_interrupt: bool,
    /// `rejoin_after_leave` / `-rejoin`: rejoin at start even after a graceful leave.
    pub rejoin_after_leave: bool,
    /// `retry_max` / `-retry-max`: `retry_join` attempts before giving up (exit 1); 0 = forever.
    pub retry_max: u32,
    /// Log entries kept after a snapshot; default 10240.
    pub raft_trailing_logs: u64,
    pub autopilot: AutopilotConfig,
    pub gossip_lan: GossipLanConfig,
    /// The files actually read, in order.
    pub config_sources: Vec<String>,
}

/// `ports { ... }`: -1 means disabled (Consul turns any value <= 0 into -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Default 8500.
    pub http: i32,
    /// Default 8600.
    pub dns: i32,
    /// Server RPC; default 8300.
    pub server: i32,
    /// Default 8301.
    pub serf_lan: i32,
    /// Default 8302.
    pub serf_wan: i32,
    /// Default -1 (disabled).
    pub grpc: i32,
}

/// `limits { ... }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest KV value in bytes; default 524288.
    pub kv_max_value_size: u64,
    /// Largest `/v1/txn` request body in bytes; default 524288.
    pub txn_max_req_len: u64,
    /// Lotse extension: most operations in one `/v1/txn` request; default 128 (Consul's fixed limit).
    pub txn_max_ops: u64,
    /// Default 200; 0 means no limit.
    pub http_max_conns_per_client: u64,
    /// `request_limits { mode, read_rate, write_rate }`: default disabled, rates unlimited.
    pub request_limits: RequestLimits,
}

/// `acl { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct AclConfig {
    /// Default false.
    pub enabled: bool,
    /// `allow` (default) or `deny`.
    pub default_policy: String,
    /// `allow`, `deny`, `extend-cache` (default) or `async-cache`.
    pub down_policy: String,
    /// Default 30s.
    pub policy_ttl: Duration,
    /// Default 30s.
    pub role_ttl: Duration,
    /// Default 30s.
    pub token_ttl: Duration,
    pub enable_key_list_policy: bool,
    pub enable_token_replication: bool,
    pub enable_token_persistence: bool,
    pub tokens: AclTokens,
}

/// `acl { tokens { ... } }` (`master`/`agent_master` are read as their new names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclTokens {
    pub initial_management: Option<String>,
    pub agent_recovery: Option<String>,
    pub agent: Option<String>,
    pub default: Option<String>,
    pub replication: Option<String>,
    pub config_file_service_registration: Option<String>,
    pub dns: Option<String>,
}

/// Decodes one source (a file or a `-hcl` fragment) into a partial configuration, collecting
/// its warnings.
fn decode_source(
    value: &Value,
    origin: &str,
    warnings: &mut Vec<String>,
) -> Result<Partial, ConfigError> {
    partial::decode(value, &mut Cx { origin, warnings })
}

/// Loads the configuration from `args` (what follows `lotse agent`), the files they name and
/// the process environment.
pub fn load(args: &[String]) -> Result<Loaded, ConfigError> {
    build(args, &|name| std::env::var(name).ok(), &default_hostname)
}

/// Same as [`load`], for SIGHUP; the caller applies what can change at run time.
pub fn reload(args: &[String]) -> Result<Loaded, ConfigError> {
    load(args)
}

/// The type of a configuration value, for flags and environment variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Str,
    List,
    Map,
}

/// Sets `root.a.b.c = v` for `path = "a.b.c"`, creating maps on the way.
fn set_path(root: &mut Value, path: &str, v: Value) {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let map = cur.as_object_mut().expect("just made an object");
        if parts.peek().is_none() {
            map.insert(part.to_string(), v);
            return;
        }
        cur = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

fn default_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

const FLAGS_ORIGIN: &str = "command-line flags";

fn build(
    args: &[String],
    getenv: &dyn Fn(&str) -> Option<String>,
    hostname: &dyn Fn() -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let mut parsed = flags::parse(args)?;
    warnings.append(&mut parsed.warnings);
    let forced = parsed
        .config_format
        .as_deref()
        .map(Format::from_flag)
        .transpose()?;

    let mut flag_values = partial::decode(
        &parsed.values,
        &mut Cx {
            origin: FLAGS_ORIGIN,
            warnings: &mut warnings,
        },
    )?;
    let flag_lists = flag_values.take_lists();

    let mut merged = Partial::default();
    if parsed.dev {
        merged.server = Some(true);
        merged.bind_addr = Some("127.0.0.1".to_string());
        cluster::dev_defaults(&mut merged);
    }
    merged.merge(&flag_lists);

    let mut sources = Vec::new();
    for path in &parsed.config_paths {
        for (file, format) in files::expand(path, forced, &mut warnings)? {
            let value = files::read(&file, format)?;
            let origin = file.display().to_string();
            merged.merge(&decode_source(&value, &origin, &mut warnings)?);
            sources.push(origin);
        }
    }
    for p in env::read(getenv, &mut warnings)? {
        merged.merge(&p);
    }
    merged.merge(&flag_values);
    for (i, text) in parsed.hcl.iter().enumerate() {
        let origin = format!("-hcl flag #{}", i + 1);
        let value = files::parse(text, Format::Hcl, &origin)?;
        merged.merge(&decode_source(&value, &origin, &mut warnings)?);
    }

    let config = finalize(merged, parsed.dev, sources, hostname, &mut warnings)?;
    Ok(Loaded { config, warnings })
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// Consul's `validateBasicName`: lowercase alphanumerics, `-` and `_`.
fn validate_basic_name(field: &str, value: &str, allow_empty: bool) -> Result<(), ConfigError> {
    if value.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err(invalid(format!("{field} cannot be empty")))
        };
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(invalid(format!(
            "{field} can only contain lowercase alphanumeric, - or _ characters. received: {value:?}"
        )));
    }
    Ok(())
}

fn parse_ip(field: &str, s: &str) -> Result<IpAddr, ConfigError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(invalid(format!("{field} cannot be empty")));
    }
    if s.contains("{{") {
        return Err(invalid(format!(
            "{field}: go-sockaddr templates are not supported by Lotse yet; give an IP address: {s:?}"
        )));
    }
    if s.split_whitespace().count() > 1 {
        return Err(invalid(format!(
            "{field} cannot contain multiple addresses (not supported by Lotse yet): {s:?}"
        )));
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse()
        .map_err(|_| invalid(format!("{field}: invalid ip address: {s}")))
}

/// Consul's `portVal`: unset or <= 0 disables the port; above 65535 is an error.
fn port_val(name: &str, v: Option<i64>, default: i32) -> Result<i32, ConfigError> {
    match v {
        None => Ok(default),
        Some(p) if p <= 0 => Ok(-1),
        Some(p) if p > 65535 => Err(invalid(format!("{name}: invalid port: {p}"))),
        Some(p) => Ok(p as i32),
    }
}

fn finalize(
    p: Partial,
    dev: bool,
    config_sources: Vec<String>,
    hostname: &dyn Fn() -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<AgentConfig, ConfigError> {
    let server = p.server.unwrap_or(false);

    let datacenter = p
        .datacenter
        .as_deref()
        .unwrap_or("dc1")
        .trim()
        .to_lowercase();
    validate_basic_name("datacenter", &datacenter, false)?;
    let primary_datacenter = p
        .primary_datacenter
        .as_deref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    if let Some(pdc) = &primary_datacenter {
        validate_basic_name("primary_datacenter", pdc, true)?;
    }

    let data_dir = p
        .data_dir
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    match &data_dir {
        None if !dev => return Err(invalid("data_dir cannot be empty")),
        Some(d) if d.exists() && !d.is_dir() => {
            return Err(invalid(format!(
                "data_dir {:?} is not a directory",
                d.display().to_string()
            )))
        }
        _ => {}
    }

    let node_name = match &p.node_name {
        Some(n) => n.trim().to_string(),
        None => hostname().unwrap_or_else(|| "lotse".to_string()),
    };
    if node_name.is_empty() {
        return Err(invalid("node_name cannot be empty"));
    }
    if !node_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        warnings.push(format!(
            "Node name {node_name:?} will not be discoverable via DNS due to invalid characters. \
             Valid characters include all alpha-numerics and dashes."
        ));
    } else if node_name.len() > 63 {
        warnings.push(format!(
            "Node name {node_name:?} will not be discoverable via DNS due to it being too long. \
             Valid lengths are between 1 and 63 bytes."
        ));
    }

    let node_id = match p
        .node_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(id) => {
            let u = uuid::Uuid::try_parse(id)
                .map_err(|e| invalid(format!("node_id: invalid UUID {id:?}: {e}")))?;
            Some(u.hyphenated().to_string())
        }
    };

    let bind_addr = parse_ip("bind_addr", p.bind_addr.as_deref().unwrap_or("0.0.0.0"))?;
    let client_addr = parse_ip(
        "client_addr",
        p.client_addr.as_deref().unwrap_or("127.0.0.1"),
    )?;
    let advertise_addr = match p
        .advertise_addr
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => {
            let ip = parse_ip("advertise_addr", s)?;
            if ip.is_unspecified() {
                return Err(invalid("Advertise address cannot be 0.0.0.0, :: or [::]"));
            }
            Some(ip)
        }
    };

    let (dns, dns_addr) = dns::finalize(&p, &datacenter, client_addr, warnings)?;
    let cluster::Cluster {
        encrypt,
        encrypt_verify_incoming,
        encrypt_verify_outgoing,
        raft_multiplier,
        leave_drain_time,
        rpc_hold_timeout,
        reconnect_timeout,
        leave_on_terminate,
        skip_leave_on_interrupt,
        rejoin_after_leave,
        retry_max,
        raft_trailing_logs,
        autopilot,
        gossip_lan,
    } = cluster::finalize(&p, server, warnings)?;

    let ports = Ports {
        http: port_val("ports.http", p.ports.http, 8500)?,
        dns: port_val("ports.dns", p.ports.dns, 8600)?,
        server: port_val("ports.server", p.ports.server, 8300)?,
        serf_lan: port_val("ports.serf_lan", p.ports.serf_lan, 8301)?,
        serf_wan: port_val("ports.serf_wan", p.ports.serf_wan, 8302)?,
        grpc: port_val("ports.grpc", p.ports.grpc, -1)?,
    };

    // Bootstrap settings, checked as Consul does, on what the user asked for.
    let bootstrap = p.bootstrap.unwrap_or(false);
    let expect = p.bootstrap_expect.unwrap_or(0);
    if bootstrap && !server {
        return Err(invalid("'bootstrap = true' requires 'server = true'"));
    }
    if expect < 0 {
        return Err(invalid(format!(
            "bootstrap_expect cannot be {expect}. Must be greater than or equal to zero"
        )));
    }
    if expect > 0 && !server {
        return Err(invalid("'bootstrap_expect > 0' requires 'server = true'"));
    }
    if expect > 0 && dev {
        return Err(invalid("'bootstrap_expect > 0' not allowed in dev mode"));
    }
    if expect > 0 && bootstrap {
        return Err(invalid(
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive",
        ));
    }
    let expect = u32::try_from(expect)
        .map_err(|_| invalid(format!("bootstrap_expect is too large: {expect}")))?;
    if server && !dev && !bootstrap {
        if expect == 2 {
            warnings.push("bootstrap_expect = 2: A cluster with 2 servers will provide no failure \
                tolerance. See https://www.consul.io/docs/internals/consensus.html#deployment-table"
                .to_string());
        } else if expect > 2 && expect % 2 == 0 {
            warnings.push(
                "bootstrap_expect is even number: A cluster with an even number of \
                servers does not achieve optimum fault tolerance. See \
                https://www.consul.io/docs/internals/consensus.html#deployment-table"
                    .to_string(),
            );
        }
        if expect > 1 {
            warnings.push(format!("bootstrap_expect > 0: expecting {expect} servers"));
        }
    }
    if server && !dev && bootstrap {
        warnings.push("bootstrap = true: do not enable unless necessary".to_string());
    }
    // -dev and -bootstrap both mean "a lone server bootstraps itself".
    let bootstrap_expect = if server && (dev || bootstrap) {
        1
    } else {
        expect
    };
    let bootstrap = server && bootstrap_expect == 1;

    let log_level = match p
        .log_level
        .as_deref()
        .unwrap_or("info")
        .trim()
        .to_lowercase()
        .as_str()
    {
        l @ ("trace" | "debug" | "info" | "warn") => l.to_string(),
        "err" | "error" => "error".to_string(),
        other => {
            return Err(invalid(format!(
            "Invalid log level: {other:?}. Valid log levels are: trace, debug, info, warn, error"
        )))
        }
    };

    let acl_default = p
        .acl
        .default_policy
        .as_deref()
        .unwrap_or("allow")
        .to_string();
    if !matches!(acl_default.as_str(), "allow" | "deny") {
        return Err(invalid(format!(
            "acl.default_policy must be \"allow\" or \"deny\", got {acl_default:?}"
        )));
    }
    let acl_down = p
        .acl
        .down_policy
        .as_deref()
        .unwrap_or("extend-cache")
        .to_string();
    if !matches!(
        acl_down.as_str(),
        "allow" | "deny" | "extend-cache" | "async-cache"
    ) {
        return Err(invalid(format!(
            "acl.down_policy must be one of \"allow\", \"deny\", \"extend-cache\" or \"async-cache\", got {acl_down:?}"
        )));
    }
    let t = p.acl.tokens;
    let acl = AclConfig {
        enabled: p.acl.enabled.unwrap_or(false),
        default_policy: acl_default,
        down_policy: acl_down,
        policy_ttl: p.acl.policy_ttl.unwrap_or(Duration::from_secs(30)),
        role_ttl: p.acl.role_ttl.unwrap_or(Duration::from_secs(30)),
        token_ttl: p.acl.token_ttl.unwrap_or(Duration::from_secs(30)),
        enable_key_list_policy: p.acl.enable_key_list_policy.unwrap_or(false),
        enable_token_replication: p.acl.enable_token_replication.unwrap_or(false),
        enable_token_persistence: p.acl.enable_token_persistence.unwrap_or(false),
        tokens: t,
    };

    let limits = Limits {
        kv_max_value_size: p.limits.kv_max_value_size.unwrap_or(524_288),
        txn_max_req_len: p.limits.txn_max_req_len.unwrap_or(524_288),
        txn_max_ops: p.limits.txn_max_ops.unwrap_or(128),
        http_max_conns_per_client: p.limits.http_max_conns_per_client.unwrap_or(200),
        request_limits: RequestLimits {
            mode: p.limits.request_limits_mode.unwrap_or_default(),
            read_rate: p.limits.request_limits_read_rate.unwrap_or(f64::INFINITY),
            write_rate: p.limits.request_limits_write_rate.unwrap_or(f64::INFINITY),
        },
    };
    if limits.txn_max_ops == 0 {
        return Err(invalid("limits.txn_max_ops must be at least 1"));
    }

    let ae_interval = p.ae_interval.unwrap_or(Duration::from_secs(60));
    if ae_interval.is_zero() {
        // Consul's text; negative durations are already refused by the parser.
        return Err(invalid("ae_interval cannot be 0s. Must be positive"));
    }
    let check_reap_interval = p.check_reap_interval.unwrap_or(Duration::from_secs(30));
    if check_reap_interval.is_zero() {
        return Err(invalid(
            "check_reap_interval cannot be 0s. Must be positive",
        ));
    }

    let enable_script_checks = p.enable_script_checks.unwrap_or(false);
    Ok(AgentConfig {
        dev,
        server,
        bootstrap,
        bootstrap_expect,
        data_dir,
        node_name,
        node_id,
        node_meta: p.node_meta,
        datacenter,
        primary_datacenter,
        bind_addr,
        client_addr,
        advertise_addr,
        ports,
        retry_join: p.retry_join,
        start_join: p.start_join,
        retry_interval: p.retry_interval.unwrap_or(Duration::from_secs(30)),
        log_level,
        log_json: p.log_json.unwrap_or(false),
        enable_script_checks,
        enable_local_script_checks: p.enable_local_script_checks.unwrap_or(enable_script_checks),
        domain: p.domain.unwrap_or_else(|| "consul.".to_string()),
        dns,
        dns_addr,
        limits,
        session_ttl_min: p.session_ttl_min.unwrap_or(Duration::from_secs(10)),
        raft_snapshot_threshold: p.raft_snapshot_threshold.unwrap_or(16_384),
        raft_snapshot_interval: p.raft_snapshot_interval.unwrap_or(Duration::from_secs(30)),
        acl,
        services: p.services,
        checks: p.checks,
        ae_interval,
        check_update_interval: p.check_update_interval.unwrap_or(Duration::from_secs(300)),
        check_reap_interval,
        encrypt,
        encrypt_verify_incoming,
        encrypt_verify_outgoing,
        raft_multiplier,
        leave_drain_time,
        rpc_hold_timeout,
        reconnect_timeout,
        leave_on_terminate,
        skip_leave_on_interrupt,
        rejoin_after_leave,
        retry_max,
        raft_trailing_logs,
        autopilot,
        gossip_lan,
        config_sources,
    })
}
