//! The `lotse agent` command line: Consul's agent flags, parsed Go style (see `goflags`).
//!
//! Flags that set configuration keys are turned into a JSON value with the keys' file names
//! (`-http-port 1` becomes `{"ports": {"http": 1}}`) and decoded like a file, so flags and files
//! share one set of checks. Consul flags Lotse does not implement yet are accepted and produce a
//! warning, like unimplemented keys in files.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value;

use super::{set_path, ConfigError, Kind};

const H_MODE: &str = "Mode";
const H_CLUSTER: &str = "Cluster membership";
const H_NET: &str = "Addresses and ports";
const H_FILES: &str = "Configuration files";
const H_LOG: &str = "Logging";
const H_OTHER: &str = "Other";

/// A flag that sets a configuration key.
struct Spec {
    flag: &'static str,
    key: &'static str,
    kind: Kind,
    value_name: &'static str,
    heading: &'static str,
    help: &'static str,
}

const fn spec(
    flag: &'static str,
    key: &'static str,
    kind: Kind,
    value_name: &'static str,
    heading: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        flag,
        key,
        kind,
        value_name,
        heading,
        help,
    }
}

/// Flags that map to configuration keys (file key in the second column).
const SPECS: &[Spec] = &[
    spec("server", "server", Kind::Bool, "", H_MODE, "Run in server mode (takes part in Raft; needs -data-dir unless -dev)."),
    spec("bootstrap-expect", "bootstrap_expect", Kind::Int, "N", H_MODE, "Number of servers to wait for before bootstrapping the cluster (needs -server; not with -dev)."),
    spec("bootstrap", "bootstrap", Kind::Bool, "", H_MODE, "Bootstrap a single server on its own (same as -bootstrap-expect 1)."),
    spec("data-dir", "data_dir", Kind::Str, "PATH", H_MODE, "Directory for the agent's state. Required unless -dev."),
    spec("node", "node_name", Kind::Str, "NAME", H_CLUSTER, "Name of this node; unique in the cluster. [default: the host name]"),
    spec("node-id", "node_id", Kind::Str, "UUID", H_CLUSTER, "Unique ID of this node (a UUID). [default: generated and kept in the data dir]"),
    spec("datacenter", "datacenter", Kind::Str, "DC", H_CLUSTER, "Datacenter of the agent: lowercase letters, digits, - and _. [default: dc1]"),
    spec("primary-datacenter", "primary_datacenter", Kind::Str, "DC", H_CLUSTER, "The datacenter authoritative for ACLs. [default: the agent's datacenter]"),
    spec("retry-join", "retry_join", Kind::List, "ADDR", H_CLUSTER, "Address of an agent to join, retried until it succeeds. Repeatable."),
    spec("retry-interval", "retry_interval", Kind::Str, "DURATION", H_CLUSTER, "Time between join attempts, e.g. 30s. [default: 30s]"),
    spec("join", "start_join", Kind::List, "ADDR", H_CLUSTER, "Address of an agent to join at start (no retries). Repeatable."),
    spec("retry-max", "retry_max", Kind::Int, "N", H_CLUSTER, "Number of -retry-join attempts before exiting with code 1; 0 retries forever. [default: 0]"),
    spec("rejoin", "rejoin_after_leave", Kind::Bool, "", H_CLUSTER, "Rejoin the cluster at start even if this agent left it gracefully before."),
    spec("encrypt", "encrypt", Kind::Str, "KEY", H_CLUSTER, "Gossip encryption key: 16, 24 or 32 bytes, base64-encoded (as from consul keygen)."),
    spec("node-meta", "node_meta", Kind::Map, "KEY:VALUE", H_CLUSTER, "Metadata for this node as key:value. Repeatable."),
    spec("bind", "bind_addr", Kind::Str, "IP", H_NET, "Address to bind cluster communication to. [default: 0.0.0.0; -dev: 127.0.0.1]"),
    spec("client", "client_addr", Kind::Str, "IP", H_NET, "Address to bind client interfaces (HTTP, DNS) to. [default: 127.0.0.1]"),
    spec("advertise", "advertise_addr", Kind::Str, "IP", H_NET, "Address to advertise to other nodes. [default: the bind address]"),
    spec("http-port", "ports.http", Kind::Int, "PORT", H_NET, "HTTP API port; -1 disables it. [default: 8500]"),
    spec("dns-port", "ports.dns", Kind::Int, "PORT", H_NET, "DNS port; -1 disables it. [default: 8600]"),
    spec("server-port", "ports.server", Kind::Int, "PORT", H_NET, "Server RPC port. [default: 8300]"),
    spec("serf-lan-port", "ports.serf_lan", Kind::Int, "PORT", H_NET, "Serf LAN gossip port. [default: 8301]"),
    spec("serf-wan-port", "ports.serf_wan", Kind::Int, "PORT", H_NET, "Serf WAN gossip port; -1 disables it. [default: 8302]"),
    spec("grpc-port", "ports.grpc", Kind::Int, "PORT", H_NET, "gRPC port; -1 disables it. [default: -1]"),
    spec("domain", "domain", Kind::Str, "DOMAIN", H_NET, "Domain answered by the DNS interface. [default: consul.]"),
    spec("alt-domain", "alt_domain", Kind::Str, "DOMAIN", H_NET, "A second domain answered by the DNS interface, like -domain."),
    spec("recursor", "recursors", Kind::List, "ADDR", H_NET, "Upstream DNS server for other names: IP or IP:port (port 53 by default). Repeatable."),
    spec("log-level", "log_level", Kind::Str, "LEVEL", H_LOG, "trace, debug, info, warn or error (err). [default: info]"),
    spec("log-json", "log_json", Kind::Bool, "", H_LOG, "Write logs as JSON lines."),
    spec("enable-script-checks", "enable_script_checks", Kind::Bool, "", H_OTHER, "Allow health checks that run scripts (registered by API or config)."),
    spec("enable-local-script-checks", "enable_local_script_checks", Kind::Bool, "", H_OTHER, "Allow script checks only from configuration files."),
];

/// Consul agent flags Lotse accepts but does not implement yet: (flag, is boolean).
const COMPAT: &[(&str, bool)] = &[
    ("ui", true),
    ("ui-dir", false),
    ("ui-content-path", false),
    ("advertise-wan", false),
    ("allow-write-http-from", false),
    ("check_output_max_size", false),
    ("disable-host-node-id", true),
    ("disable-keyring-file", true),
    ("https-port", false),
    ("join-wan", false),
    ("log-file", false),
    ("log-rotate-bytes", false),
    ("log-rotate-duration", false),
    ("log-rotate-max-files", false),
    ("non-voting-server", true),
    ("pid-file", false),
    ("protocol", false),
    ("raft-protocol", false),
    ("retry-interval-wan", false),
    ("retry-join-wan", false),
    ("retry-max-wan", false),
    ("segment", false),
    ("serf-lan-bind", false),
    ("serf-lan-allowed-cidrs", false),
    ("serf-wan-bind", false),
    ("serf-wan-allowed-cidrs", false),
    ("syslog", true),
    ("auto-reload-config", true),
    ("grpc-tls-port", false),
];

const ABOUT: &str =
    "Runs a Lotse agent: a Consul-compatible server (with -server or -dev) or client.";

const AFTER_HELP: &str = "\
Flags take one or two dashes and their value as the next argument or after '=':
  -node web1, --node web1 and -node=web1 are the same. Boolean flags are set by
  their name alone (-dev) or explicitly with '=' (-dev=false).

Where the configuration comes from (later sources override earlier ones):
  1. built-in defaults (and the -dev defaults: server, bind 127.0.0.1, bootstrap-expect 1)
  2. -config-file and -config-dir, in the order given; a directory contributes its
     *.json and *.hcl files in lexical order. Keys are Consul's (node_name, ports.http, ...).
  3. LOTSE_* environment variables: LOTSE_ + the file key in capitals, nested keys
     joined with '_' (LOTSE_NODE_NAME, LOTSE_PORTS_HTTP, LOTSE_ACL_ENABLED), and
     LOTSE_ + a flag name in capitals (LOTSE_HTTP_PORT, LOTSE_NODE). Lists: comma-separated.
  4. command-line flags, then -hcl fragments.
  Lists such as retry_join are concatenated across sources instead of overridden.
  Unknown keys and keys Lotse does not implement yet are reported as warnings.

Examples:
  lotse agent -dev
  lotse agent -server -bootstrap-expect 3 -data-dir /var/lib/lotse -retry-join 10.0.0.2
  lotse agent -config-dir /etc/lotse.d -log-level debug";

fn after_help() -> String {
    let mut compat = String::new();
    let mut line = String::from(" ");
    for (flag, _) in COMPAT {
        if line.len() + flag.len() > 76 {
            compat.push_str(line.trim_end());
            compat.push('\n');
            line = String::from(" ");
        }
        line.push_str(&format!(" -{flag}"));
    }
    compat.push_str(&line);
    format!(
        "{AFTER_HELP}\n\nConsul flags accepted but not implemented yet (each logs a warning):\n{compat}"
    )
}

/// The `lotse agent` clap command.
pub fn command() -> Command {
    let mut cmd = Command::new("agent")
        .bin_name("lotse agent")
        .about(ABOUT)
        .after_help(after_help())
        .disable_version_flag(true)
        .next_line_help(false)
        .arg(go_bool(Arg::new("dev").long("dev"))
            .help("Development mode: an in-memory server that bootstraps itself; nothing is persisted.")
            .help_heading(H_MODE))
        .arg(Arg::new("config-file").long("config-file").value_name("PATH")
            .action(ArgAction::Append).help_heading(H_FILES)
            .help("A configuration file (.json or .hcl). Repeatable; read in the order given."))
        .arg(Arg::new("config-dir").long("config-dir").value_name("DIR")
            .action(ArgAction::Append).help_heading(H_FILES)
            .help("A directory whose *.json and *.hcl files are read in lexical order. Repeatable."))
        .arg(Arg::new("config-format").long("config-format").value_name("json|hcl")
            .value_parser(["json", "hcl"]).help_heading(H_FILES)
            .help("Read all configuration files in this format, whatever their extension."))
        .arg(Arg::new("hcl").long("hcl").value_name("HCL").action(ArgAction::Append)
            .help_heading(H_FILES)
            .help("A configuration fragment in HCL, applied after all flags. Repeatable."));
    for s in SPECS {
        let mut a = Arg::new(s.flag)
            .long(s.flag)
            .help(s.help)
            .help_heading(s.heading);
        a = match s.kind {
            Kind::Bool => go_bool(a),
            Kind::Int => a
                .value_name(s.value_name)
                .allow_negative_numbers(true)
                .value_parser(clap::value_parser!(i64)),
            Kind::Str => a.value_name(s.value_name),
            Kind::List | Kind::Map => a.value_name(s.value_name).action(ArgAction::Append),
        };
        cmd = cmd.arg(a);
    }
    for (flag, is_bool) in COMPAT {
        let a = Arg::new(*flag).long(*flag).hide(true);
        cmd = cmd.arg(if *is_bool {
            go_bool(a)
        } else {
            a.action(ArgAction::Append).value_name("VALUE")
        });
    }
    cmd
}

/// A Go-style boolean flag: `-x` means true, `-x=false` sets it explicitly.
fn go_bool(a: Arg) -> Arg {
    a.num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .value_name("true|false")
        .value_parser(parse_go_bool)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {s:?} (use true or false)")),
    }
}

/// What the command line asked for.
#[derive(Debug, Default)]
pub struct Parsed {
    pub dev: bool,
    /// `-config-file`/`-config-dir` paths, interleaved in command-line order.
    pub config_paths: Vec<PathBuf>,
    pub config_format: Option<String>,
    pub hcl: Vec<String>,
    /// The configuration keys the flags set, as a file would spell them.
    pub values: Value,
    pub warnings: Vec<String>,
}

/// Parses the arguments that follow `lotse agent`.
pub fn parse(args: &[String]) -> Result<Parsed, ConfigError> {
    let cmd = command();
    let mut argv = vec!["lotse agent".to_string()];
    argv.extend(long_unknowns(crate::goflags::normalize(&cmd, args)));
    let m = cmd.try_get_matches_from(argv)?;
    let mut out = Parsed {
        dev: m.get_one::<bool>("dev").copied().unwrap_or(false),
        config_format: m.get_one::<String>("config-format").cloned(),
        hcl: m
            .get_many::<String>("hcl")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        values: Value::Object(Default::default()),
        ..Parsed::default()
    };
    let mut paths: Vec<(usize, PathBuf)> = Vec::new();
    for id in ["config-file", "config-dir"] {
        if let (Some(vals), Some(idx)) = (m.get_many::<String>(id), m.indices_of(id)) {
            paths.extend(idx.zip(vals).map(|(i, v)| (i, PathBuf::from(v))));
        }
    }
    paths.sort_by_key(|(i, _)| *i);
    out.config_paths = paths.into_iter().map(|(_, p)| p).collect();

    for s in SPECS {
        if let Some(v) = flag_value(&m, s)? {
            set_path(&mut out.values, s.key, v);
        }
    }
    for (flag, _) in COMPAT {
        if m.value_source(flag) == Some(clap::parser::ValueSource::CommandLine) {
            out.warnings.push(format!(
                "config: flag -{flag} is not implemented yet by Lotse; ignoring it"
            ));
        }
    }
    Ok(out)
}

/// Go has no short flags: `-no-such-flag` is a (misspelt) long flag. Rewrite the single-dash
/// words goflags left alone so that clap names the whole flag and suggests the nearest one,
/// instead of complaining about `-n`. (`-h` and negative numbers are untouched.)
fn long_unknowns(args: Vec<String>) -> Vec<String> {
    let mut rewriting = true;
    args.into_iter()
        .map(|a| {
            if a == "--" {
                rewriting = false;
            }
            let b = a.as_bytes();
            if rewriting && b.len() > 2 && b[0] == b'-' && b[1].is_ascii_alphabetic() {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

fn flag_value(m: &ArgMatches, s: &Spec) -> Result<Option<Value>, ConfigError> {
    Ok(match s.kind {
        Kind::Bool => m.get_one::<bool>(s.flag).map(|b| Value::Bool(*b)),
        Kind::Int => m.get_one::<i64>(s.flag).map(|i| Value::from(*i)),
        Kind::Str => m
            .get_one::<String>(s.flag)
            .map(|v| Value::String(v.clone())),
        Kind::List => m
            .get_many::<String>(s.flag)
            .map(|v| Value::Array(v.map(|x| Value::String(x.clone())).collect())),
        Kind::Map => match m.get_many::<String>(s.flag) {
            None => None,
            Some(vals) => {
                let mut obj = serde_json::Map::new();
                for kv in vals {
                    let (k, v) = kv.split_once(':').ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "invalid value {kv:?} for -{}: expected key:value",
                            s.flag
                        ))
                    })?;
                    obj.insert(k.to_string(), Value::String(v.to_string()));
                }
                Some(Value::Object(obj))
            }
        },
    })
}

/// Flag-name aliases for environment variables: (`LOTSE_` + flag in capitals, key, kind) for
/// every flag whose name differs from its key's.
pub fn env_aliases() -> impl Iterator<Item = (String, &'static str, Kind)> {
    SPECS.iter().filter_map(|s| {
        let from_flag = format!("LOTSE_{}", s.flag.replace('-', "_").to_uppercase());
        let from_key = format!("LOTSE_{}", s.key.replace('.', "_").to_uppercase());
        (from_flag != from_key && s.kind != Kind::Map).then_some((from_flag, s.key, s.kind))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, ConfigError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flag_forms_are_equivalent() {
        let forms: &[&[&str]] = &[
            &["-node", "n1", "-http-port", "18500"],
            &["--node", "n1", "--http-port", "18500"],
            &["-node=n1", "-http-port=18500"],
            &["--node=n1", "--http-port=18500"],
        ];
        for f in forms {
            let v = p(f).unwrap().values;
            assert_eq!(v["node_name"], "n1", "{f:?}");
            assert_eq!(v["ports"]["http"], 18500, "{f:?}");
        }
    }

    #[test]
    fn go_bools() {
        for (args, want) in [
            (&["-dev"][..], true),
            (&["-dev=true"][..], true),
            (&["--dev=1"][..], true),
            (&["-dev=false"][..], false),
            (&["-dev=F"][..], false),
            (&[][..], false),
        ] {
            assert_eq!(p(args).unwrap().dev, want, "{args:?}");
        }
        assert_eq!(p(&["-server=false"]).unwrap().values["server"], false);
        // A bool flag never takes the next argument as its value (as in Go).
        assert!(p(&["-dev", "true"]).is_err());
        let err = p(&["-dev=maybe"]).unwrap_err().to_string();
        assert!(err.contains("invalid boolean"), "{err}");
    }

    #[test]
    fn negative_ports_and_repeatables() {
        let r = p(&[
            "-dns-port",
            "-1",
            "-retry-join",
            "a",
            "-retry-join=b",
            "-join",
            "c",
            "-node-meta",
            "rack:r1",
        ])
        .unwrap();
        assert_eq!(r.values["ports"]["dns"], -1);
        assert_eq!(r.values["retry_join"], serde_json::json!(["a", "b"]));
        assert_eq!(r.values["start_join"], serde_json::json!(["c"]));
        assert_eq!(r.values["node_meta"]["rack"], "r1");
    }

    #[test]
    fn config_paths_keep_command_line_order() {
        let r = p(&[
            "-config-dir",
            "d1",
            "-config-file",
            "f1",
            "-config-dir=d2",
            "-config-file",
            "f2",
        ])
        .unwrap();
        let got: Vec<_> = r.config_paths.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(got, ["d1", "f1", "d2", "f2"]);
    }

    #[test]
    fn errors_and_help_come_from_clap() {
        let err = p(&["-http-port", "abc"]).unwrap_err();
        assert!(err.to_string().contains("invalid value 'abc'"), "{err}");
        assert_eq!(err.exit_code(), 2);
        let err = p(&["-no-such-flag"]).unwrap_err();
        assert!(err.to_string().contains("'--no-such-flag'"), "{err}");
        let err = p(&["-nod", "x"]).unwrap_err();
        assert!(
            err.to_string().contains("--node"),
            "suggests the nearest flag: {err}"
        );
        for h in ["-h", "-help", "--help"] {
            let e = p(&[h]).unwrap_err();
            assert!(e.is_help(), "{h}");
            assert_eq!(e.exit_code(), 0);
            let text = e.to_string();
            assert!(
                text.contains("-config-dir") && text.contains("LOTSE_NODE_NAME"),
                "{text}"
            );
        }
        let err = p(&["-config-format", "yaml"]).unwrap_err().to_string();
        assert!(err.contains("yaml"), "{err}");
    }

    #[test]
    fn compat_flags_warn() {
        let r = p(&["-ui", "-pid-file=/x", "-syslog"]).unwrap();
        assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("-ui is not implemented yet"));
    }

    #[test]
    fn command_is_well_formed() {
        command().debug_assert();
    }
}
