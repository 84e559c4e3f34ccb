//! End-to-end tests of `build`: flags, fixture files, directories, environment, validation.
//! Fixtures live in `crates/lotse/testdata/config/`.

use lotse_api::request_limits::{Mode, RequestLimits};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

mod cluster;
mod definitions;
mod dns;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/config")
        .join(name)
        .display()
        .to_string()
}

pub(super) fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    build(&args, &|n| env.get(n).cloned(), &|| {
        Some("testhost".to_string())
    })
}

pub(super) fn ok(args: &[&str]) -> Loaded {
    run(args, &[]).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub(super) fn err(args: &[&str]) -> String {
    match run(args, &[]) {
        Ok(l) => panic!("{args:?} should fail, got {:?}", l.config),
        Err(e) => e.to_string(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn defaults_match_consul() {
    let c = ok(&["-data-dir", "/tmp/x"]).config;
    assert!(!c.dev && !c.server && !c.bootstrap);
    assert_eq!(c.bootstrap_expect, 0);
    assert_eq!(c.node_name, "testhost");
    assert_eq!(c.datacenter, "dc1");
    assert_eq!(c.primary_datacenter, None);
    assert_eq!(c.bind_addr, ip("0.0.0.0"));
    assert_eq!(c.client_addr, ip("127.0.0.1"));
    assert_eq!(
        c.ports,
        Ports {
            http: 8500,
            dns: 8600,
            server: 8300,
            serf_lan: 8301,
            serf_wan: 8302,
            grpc: -1
        }
    );
    assert_eq!(c.retry_interval, Duration::from_secs(30));
    assert_eq!(c.log_level, "info");
    assert_eq!(c.domain, "consul.");
    assert_eq!(
        c.limits,
        Limits {
            kv_max_value_size: 524288,
            txn_max_req_len: 524288,
            txn_max_ops: 128,
            http_max_conns_per_client: 200,
            request_limits: RequestLimits::default(),
        }
    );
    assert_eq!(c.session_ttl_min, Duration::from_secs(10));
    assert_eq!(c.raft_snapshot_threshold, 16384);
    assert_eq!(c.raft_snapshot_interval, Duration::from_secs(30));
    assert!(!c.acl.enabled);
    assert_eq!(c.acl.default_policy, "allow");
    assert_eq!(c.acl.down_policy, "extend-cache");
    assert!(c.config_sources.is_empty());
}

#[test]
fn dev_mode() {
    let l = ok(&["-dev"]);
    let c = l.config;
    assert!(c.dev && c.server && c.bootstrap);
    assert_eq!(c.bootstrap_expect, 1);
    assert_eq!(c.bind_addr, ip("127.0.0.1"));
    assert_eq!(c.data_dir, None);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    // A file may still move the bind address in dev mode.
    assert_eq!(
        ok(&["-dev", "-bind", "127.0.0.2"]).config.bind_addr,
        ip("127.0.0.2")
    );
}

#[test]
fn durable_server() {
    let c = ok(&["-server", "-bootstrap-expect", "1", "-data-dir", "/tmp/d"]).config;
    assert!(c.server && c.bootstrap && !c.dev);
    assert_eq!(c.bootstrap_expect, 1);
    assert_eq!(c.data_dir, Some(PathBuf::from("/tmp/d")));
    let c = ok(&["-server", "-bootstrap", "-data-dir", "/tmp/d"]).config;
    assert_eq!((c.bootstrap, c.bootstrap_expect), (true, 1));
    let l = ok(&["-server", "-bootstrap-expect=3", "-data-dir=/tmp/d"]);
    assert_eq!((l.config.bootstrap, l.config.bootstrap_expect), (false, 3));
    assert!(
        l.warnings.iter().any(|w| w.contains("expecting 3 servers")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn json_and_hcl_are_equivalent() {
    let j = ok(&["-config-file", &fixture("full.json")]);
    let h = ok(&["-config-file", &fixture("full.hcl")]);
    assert_eq!(
        j.warnings,
        vec!["bootstrap_expect > 0: expecting 3 servers".to_string()]
    );
    assert_eq!(h.warnings, j.warnings);
    let mut hc = h.config.clone();
    hc.config_sources = j.config.config_sources.clone();
    assert_eq!(hc, j.config);
    let c = j.config;
    assert_eq!(c.config_sources, vec![fixture("full.json")]);
    assert!(c.server);
    assert_eq!(c.bootstrap_expect, 3);
    assert_eq!(c.node_name, "web-1");
    assert_eq!(
        c.node_id.as_deref(),
        Some("adf4238a-882b-9ddc-4a9d-5b6758e4159e")
    );
    assert_eq!(c.node_meta.get("rack").map(String::as_str), Some("r1"));
    assert_eq!(c.datacenter, "eu-west_1");
    assert_eq!(c.primary_datacenter.as_deref(), Some("eu-west_1"));
    assert_eq!(c.bind_addr, ip("10.0.0.5"));
    assert_eq!(c.client_addr, ip("0.0.0.0"));
    assert_eq!(c.advertise_addr, Some(ip("10.0.0.5")));
    assert_eq!(
        c.ports,
        Ports {
            http: 18500,
            dns: -1,
            server: 18300,
            serf_lan: 18301,
            serf_wan: 18302,
            grpc: 18502
        }
    );
    assert_eq!(c.retry_join, ["10.0.0.6", "10.0.0.7"]);
    assert_eq!(c.retry_interval, Duration::from_secs(90));
    assert_eq!(c.log_level, "debug");
    assert!(c.log_json && c.enable_script_checks && c.enable_local_script_checks);
    assert_eq!(c.domain, "lotse.");
    assert_eq!(
        c.limits,
        Limits {
            kv_max_value_size: 1024,
            txn_max_req_len: 2048,
            txn_max_ops: 64,
            http_max_conns_per_client: 50,
            request_limits: RequestLimits {
                mode: Mode::Enforcing,
                read_rate: 500.0,
                write_rate: 200.5,
            },
        }
    );
    assert_eq!(c.session_ttl_min, Duration::from_millis(500));
    assert_eq!(c.raft_snapshot_threshold, 1000);
    assert_eq!(c.raft_snapshot_interval, Duration::from_secs(120));
    assert!(c.acl.enabled && c.acl.enable_token_persistence);
    assert_eq!(c.acl.default_policy, "deny");
    assert_eq!(c.acl.down_policy, "async-cache");
    assert_eq!(c.acl.token_ttl, Duration::from_secs(3600));
    assert_eq!(c.acl.tokens.initial_management.as_deref(), Some("root"));
    assert_eq!(c.acl.tokens.agent.as_deref(), Some("agent-token"));
    assert_eq!(c.acl.tokens.default.as_deref(), Some("anon"));
}

#[test]
fn config_format_overrides_extension() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("agent.conf");
    std::fs::write(&f, "node_name = \"conf\"\n").unwrap();
    let f = f.display().to_string();
    let c = ok(&["-dev", "-config-format=hcl", "-config-file", &f]).config;
    assert_eq!(c.node_name, "conf");
    // Without -config-format the file is skipped, with a warning.
    let l = ok(&["-dev", "-config-file", &f]);
    assert_eq!(l.config.node_name, "testhost");
    assert!(l
        .warnings
        .iter()
        .any(|w| w.contains("skipping file") && w.contains("agent.conf")));
}

#[test]
fn config_dir_reads_json_and_hcl_in_lexical_order() {
    let l = ok(&["-dev", "-config-dir", &fixture("dir")]);
    let c = &l.config;
    assert_eq!(c.node_name, "from-dir-20");
    assert_eq!(c.retry_join, ["dir-a", "dir-b"]);
    assert_eq!((c.ports.http, c.ports.dns), (20001, 10002));
    assert_eq!(
        c.config_sources,
        [fixture("dir/10-first.json"), fixture("dir/20-second.hcl")]
    );
    // notes.txt is skipped with a warning; sub/ is not read at all.
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("notes.txt"));
}

#[test]
fn merge_order_file_dir_env_flags() {
    let file = fixture("base.json");
    let dir = fixture("dir");
    let args = [
        "-dev",
        "-config-file",
        &file,
        "-config-dir",
        &dir,
        "-node",
        "from-flag",
    ];
    let env = [
        ("LOTSE_NODE_NAME", "from-env"),
        ("LOTSE_DATACENTER", "env-dc"),
    ];

    // Flags beat everything.
    let c = run(&args, &env).unwrap().config;
    assert_eq!(c.node_name, "from-flag");
    // The environment beats files and directories.
    assert_eq!(c.datacenter, "env-dc");
    let c = run(&args[..5], &env).unwrap().config;
    assert_eq!(c.node_name, "from-env");
    // A directory given after a file beats the file; the file's other keys remain.
    let c = run(&args[..5], &[]).unwrap().config;
    assert_eq!(c.node_name, "from-dir-20");
    assert_eq!(c.datacenter, "file-dc");
    assert_eq!(c.log_level, "warn");
    assert_eq!((c.ports.http, c.ports.dns), (20001, 10002));
    // Given the other way round, the file wins.
    let c = run(&["-dev", "-config-dir", &dir, "-config-file", &file], &[])
        .unwrap()
        .config;
    assert_eq!(c.node_name, "from-file");
    assert_eq!((c.ports.http, c.ports.dns), (1111, 2222));
    // Lists append: command-line entries first (as Consul), then files in order, then env.
    let c = run(
        &[
            "-dev",
            "-retry-join",
            "flag-a",
            "-config-file",
            &file,
            "-config-dir",
            &dir,
        ],
        &[("LOTSE_RETRY_JOIN", "env-a")],
    )
    .unwrap()
    .config;
    assert_eq!(
        c.retry_join,
        ["flag-a", "file-a", "dir-a", "dir-b", "env-a"]
    );
    // -hcl fragments come after the flags.
    let c = ok(&[
        "-dev",
        "-hcl",
        "node_name = \"from-hcl\"",
        "-node",
        "from-flag",
    ])
    .config;
    assert_eq!(c.node_name, "from-hcl");
}

#[test]
fn env_overrides() {
    let l = run(
        &["-dev"],
        &[
            ("LOTSE_NODE_NAME", "env-node"),
            ("LOTSE_DATACENTER", "ENVDC"),
            ("LOTSE_LOG_LEVEL", "warn"),
            ("LOTSE_HTTP_PORT", "18555"),
            ("LOTSE_DATA_DIR", "/tmp/env-data"),
            ("LOTSE_ACL_ENABLED", "true"),
        ],
    )
    .unwrap();
    let c = l.config;
    assert_eq!(c.node_name, "env-node");
    assert_eq!(c.datacenter, "envdc");
    assert_eq!(c.log_level, "warn");
    assert_eq!(c.ports.http, 18555);
    assert_eq!(c.data_dir, Some(PathBuf::from("/tmp/env-data")));
    assert!(c.acl.enabled);
    // The flag beats the variable.
    let c = run(&["-dev", "-http-port", "1"], &[("LOTSE_HTTP_PORT", "2")])
        .unwrap()
        .config;
    assert_eq!(c.ports.http, 1);
}

#[test]
fn unknown_and_unimplemented_keys_warn_with_file() {
    let f = fixture("unknown.json");
    let l = ok(&["-dev", "-config-file", &f]);
    assert_eq!(l.config.node_name, "u1");
    let w = l.warnings.join("\n");
    assert!(
        w.contains(&format!(
            "config: ignoring unknown key \"nonsense_key\" in {f}"
        )),
        "{w}"
    );
    assert!(
        w.contains("key \"telemetry\" is not implemented yet") && w.contains(&f),
        "{w}"
    );
    assert!(
        w.contains("key \"ports.https\" is not implemented yet"),
        "{w}"
    );
    assert_eq!(l.warnings.len(), 3, "{w}");
    // HCL too, and every listed unimplemented key.
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("u.hcl");
    std::fs::write(
        &h,
        "nonsense_key = 1\nui_config {\n  enabled = true\n}\nconnect {\n  enabled = true\n}\n\
         telemetry {\n  disable_hostname = true\n}\nservices = []\nchecks = []\n\
         recursors = [\"8.8.8.8\"]\ndns_config {\n  allow_stale = true\n}\ntls {\n}\npid_file = \"k\"\n",
    )
    .unwrap();
    let l = ok(&["-dev", "-config-file", h.to_str().unwrap()]);
    // `services` and `checks` are implemented: empty lists are read without a word.
    assert!(
        !l.warnings
            .iter()
            .any(|w| w.contains("\"services\"") || w.contains("\"checks\"")),
        "{:?}",
        l.warnings
    );
    assert!(l.config.services.is_empty() && l.config.checks.is_empty());
    // `recursors` and `dns_config` are implemented now: read without a word.
    assert!(
        !l.warnings
            .iter()
            .any(|w| w.contains("\"recursors\"") || w.contains("dns_config")),
        "{:?}",
        l.warnings
    );
    assert_eq!(l.config.dns.recursors, ["8.8.8.8:53".parse().unwrap()]);
    for k in ["ui_config", "connect", "telemetry", "tls", "pid_file"] {
        assert!(
            l.warnings
                .iter()
                .any(|w| w.contains(&format!("key {k:?} is not implemented yet"))),
            "{k}: {:?}",
            l.warnings
        );
    }
    assert!(l
        .warnings
        .iter()
        .any(|w| w.contains("unknown key \"nonsense_key\"")));
}

#[test]
fn malformed_files_report_file_line_and_reason() {
    let f = fixture("bad.json");
    let e = err(&["-dev", "-config-file", &f]);
    assert!(
        e.contains(&f) && e.contains("line 4, column 3") && e.contains("expected `,` or `}`"),
        "{e}"
    );
    let f = fixture("bad.hcl");
    let e = err(&["-dev", "-config-file", &f]);
    assert!(
        e.contains(&f) && e.contains("line 3, column 10") && e.contains("invalid expression"),
        "{e}"
    );
    let e = err(&["-dev", "-hcl", "node_name = "]);
    assert!(e.contains("-hcl flag #1") && e.contains("line 1"), "{e}");
}

#[test]
fn wrong_type_names_key_and_file() {
    let f = fixture("wrongtype.json");
    let e = err(&["-dev", "-config-file", &f]);
    assert_eq!(
        e,
        format!("config: invalid value for \"ports.http\" in {f}: expected an integer, found string \"abc\"")
    );
}

#[test]
fn missing_config_file_is_an_error() {
    let e = err(&["-dev", "-config-file", "/nonexistent/lotse.json"]);
    assert!(
        e.contains("/nonexistent/lotse.json") && e.contains("No such file"),
        "{e}"
    );
    let e = err(&["-dev", "-config-dir", "/nonexistent/lotse.d"]);
    assert!(e.contains("/nonexistent/lotse.d"), "{e}");
}

#[test]
fn validation_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["-server"], "data_dir cannot be empty"),
        (&[], "data_dir cannot be empty"),
        (&["-dev", "-bootstrap-expect", "1"], "'bootstrap_expect > 0' not allowed in dev mode"),
        (&["-data-dir=/tmp/x", "-bootstrap-expect", "3"], "'bootstrap_expect > 0' requires 'server = true'"),
        (&["-data-dir=/tmp/x", "-bootstrap"], "'bootstrap = true' requires 'server = true'"),
        (&["-data-dir=/tmp/x", "-server", "-bootstrap", "-bootstrap-expect=3"], "mutually exclusive"),
        (&["-data-dir=/tmp/x", "-server", "-bootstrap-expect=-1"], "bootstrap_expect cannot be -1"),
        (&["-dev", "-http-port", "70000"], "ports.http: invalid port: 70000"),
        (&["-dev", "-serf-lan-port=65536"], "ports.serf_lan: invalid port: 65536"),
        (&["-dev", "-datacenter", "dc 1"], "datacenter can only contain lowercase alphanumeric, - or _ characters. received: \"dc 1\""),
        (&["-dev", "-primary-datacenter", "a.b"], "primary_datacenter can only contain"),
        (&["-dev", "-bind", "not-an-ip"], "bind_addr: invalid ip address: not-an-ip"),
        (&["-dev", "-client", "127.0.0.1 ::1"], "multiple addresses"),
        (&["-dev", "-bind", "{{ GetPrivateIP }}"], "go-sockaddr templates"),
        (&["-dev", "-advertise", "0.0.0.0"], "Advertise address cannot be 0.0.0.0"),
        (&["-dev", "-node-id", "nope"], "node_id: invalid UUID \"nope\""),
        (&["-dev", "-node", " "], "node_name cannot be empty"),
        (&["-dev", "-log-level", "loud"], "Invalid log level: \"loud\""),
        (&["-dev", "-retry-interval", "30"], "missing unit"),
        (&["-dev", "-node-meta", "novalue"], "expected key:value"),
        (&["-dev", "-hcl", "acl = { default_policy = \"maybe\" }"], "acl.default_policy must be"),
        (&["-dev", "-config-format", "yaml"], "yaml"),
        (&["-dev", "-hcl", "limits = { request_limits = { mode = \"strict\" } }"], "invalid value for \"limits.request_limits.mode\" in -hcl flag #1: unknown mode \"strict\""),
        (&["-dev", "-hcl", "limits = { request_limits = { read_rate = -1 } }"], "\"limits.request_limits.read_rate\" in -hcl flag #1: expected a non-negative number"),
        (&["-dev", "-hcl", "limits = { request_limits = { write_rate = \"fast\" } }"], "\"limits.request_limits.write_rate\" in -hcl flag #1: expected a non-negative number, found string \"fast\""),
    ];
    for (args, want) in cases {
        let e = err(args);
        assert!(e.contains(want), "{args:?}: got {e:?}, want {want:?}");
    }
}

#[test]
fn data_dir_that_is_a_file_is_rejected() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let e = err(&[
        "-server",
        "-bootstrap",
        "-data-dir",
        f.path().to_str().unwrap(),
    ]);
    assert!(e.contains("is not a directory"), "{e}");
}

#[test]
fn ports_at_or_below_zero_are_disabled() {
    let c = ok(&[
        "-dev",
        "-dns-port",
        "-1",
        "-grpc-port=0",
        "-serf-wan-port",
        "-5",
    ])
    .config;
    assert_eq!((c.ports.dns, c.ports.grpc, c.ports.serf_wan), (-1, -1, -1));
}

#[test]
fn misc_flags() {
    let c = ok(&[
        "-dev",
        "-log-level=ERR",
        "-log-json",
        "-domain",
        "example.",
        "-enable-script-checks=true",
        "-join",
        "j1",
        "-retry-interval=250ms",
        "-client",
        "[::1]",
        "-datacenter=MyDC",
    ])
    .config;
    assert_eq!(c.log_level, "error");
    assert!(c.log_json && c.enable_script_checks && c.enable_local_script_checks);
    assert_eq!(c.domain, "example.");
    assert_eq!(c.start_join, ["j1"]);
    assert_eq!(c.retry_interval, Duration::from_millis(250));
    assert_eq!(c.client_addr, ip("::1"));
    assert_eq!(c.datacenter, "mydc");
}

#[test]
fn help_teaches() {
    let e = run(&["-h"], &[]).unwrap_err();
    assert!(e.is_help());
    let text = e.to_string();
    for needle in [
        "lotse agent",
        "-dev",
        "-config-file",
        "-retry-join",
        "LOTSE_NODE_NAME",
        "Examples",
    ] {
        assert!(text.contains(needle), "help lacks {needle}:\n{text}");
    }
}
