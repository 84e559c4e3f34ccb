//! The cluster-membership keys through `build`: `encrypt`, `performance { }`, leave and join
//! behaviour, `autopilot { }`, `gossip_lan { }`, in both file formats, flags and environment,
//! merging across sources, Consul's defaults and checks.

use std::path::Path;
use std::time::Duration;

use super::super::{AutopilotConfig, GossipLanConfig};
use super::{err, ok, run};

/// `"1234567890123456"`: a 16-byte key.
const KEY16: &str = "MTIzNDU2Nzg5MDEyMzQ1Ng==";
/// Bytes 0..24 and 0..32.
const KEY24: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
const KEY32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f.display().to_string()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn client_defaults_match_consul() {
    let l = ok(&["-data-dir", "/tmp/x"]);
    let c = l.config;
    assert_eq!(c.encrypt, None);
    assert!(c.encrypt_verify_incoming && c.encrypt_verify_outgoing);
    assert_eq!(c.raft_multiplier, 5);
    assert_eq!(c.leave_drain_time, secs(5));
    assert_eq!(c.rpc_hold_timeout, secs(7));
    assert_eq!(c.reconnect_timeout, secs(72 * 3600));
    // A client leaves on SIGTERM and on SIGINT.
    assert!(c.leave_on_terminate && !c.skip_leave_on_interrupt);
    assert!(!c.rejoin_after_leave);
    assert_eq!(c.retry_max, 0);
    assert_eq!(c.raft_trailing_logs, 10240);
    assert_eq!(
        c.autopilot,
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold: ms(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: secs(10),
        }
    );
    assert_eq!(
        c.gossip_lan,
        GossipLanConfig {
            gossip_nodes: 3,
            gossip_interval: ms(200),
            probe_interval: secs(1),
            probe_timeout: ms(500),
            suspicion_mult: 4,
            retransmit_mult: 4,
        }
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn server_defaults_stay_members_on_signals() {
    let c = ok(&["-server", "-bootstrap-expect=3", "-data-dir=/tmp/x"]).config;
    assert!(!c.leave_on_terminate && c.skip_leave_on_interrupt);
    assert_eq!(c.raft_multiplier, 5);
    assert_eq!(c.gossip_lan, GossipLanConfig::LAN);
    // Explicit values win over the mode's defaults, both ways.
    let c = ok(&[
        "-server",
        "-bootstrap",
        "-data-dir=/tmp/x",
        "-hcl",
        "leave_on_terminate = true\nskip_leave_on_interrupt = false",
    ])
    .config;
    assert!(c.leave_on_terminate && !c.skip_leave_on_interrupt);
    let c = ok(&[
        "-data-dir=/tmp/x",
        "-hcl",
        "leave_on_terminate = false\nskip_leave_on_interrupt = true",
    ])
    .config;
    assert!(!c.leave_on_terminate && c.skip_leave_on_interrupt);
}

#[test]
fn dev_mode_takes_consuls_dev_timings() {
    let l = ok(&["-dev"]);
    let c = l.config;
    assert_eq!(c.raft_multiplier, 1);
    assert_eq!(
        c.gossip_lan,
        GossipLanConfig {
            gossip_nodes: 3,
            gossip_interval: ms(100),
            probe_interval: ms(100),
            probe_timeout: ms(100),
            suspicion_mult: 3,
            retransmit_mult: 4,
        }
    );
    assert!(!c.leave_on_terminate && c.skip_leave_on_interrupt);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    // A file still overrides the dev values, key by key.
    let c = ok(&[
        "-dev",
        "-hcl",
        "performance { raft_multiplier = 3 }",
        "-hcl",
        "gossip_lan = { probe_interval = \"2s\" }",
    ])
    .config;
    assert_eq!(c.raft_multiplier, 3);
    assert_eq!(c.gossip_lan.probe_interval, secs(2));
    assert_eq!(c.gossip_lan.probe_timeout, ms(100));
}

const JSON: &str = r#"{
  "encrypt": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
  "encrypt_verify_incoming": false,
  "encrypt_verify_outgoing": false,
  "performance": {"raft_multiplier": 2, "leave_drain_time": "1s", "rpc_hold_timeout": "3s"},
  "reconnect_timeout": "9h",
  "leave_on_terminate": false,
  "skip_leave_on_interrupt": true,
  "rejoin_after_leave": true,
  "retry_max": 7,
  "raft_trailing_logs": 500,
  "autopilot": {
    "cleanup_dead_servers": false,
    "last_contact_threshold": "1s",
    "max_trailing_logs": 10,
    "min_quorum": 3,
    "server_stabilization_time": "30s"
  },
  "gossip_lan": {
    "gossip_nodes": 4,
    "gossip_interval": "50ms",
    "probe_interval": "200ms",
    "probe_timeout": "100ms",
    "suspicion_mult": 2,
    "retransmit_mult": 3
  }
}"#;

const HCL: &str = r#"
encrypt = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
encrypt_verify_incoming = false
encrypt_verify_outgoing = false
performance {
  raft_multiplier = 2
  leave_drain_time = "1s"
  rpc_hold_timeout = "3s"
}
reconnect_timeout = "9h"
leave_on_terminate = false
skip_leave_on_interrupt = true
rejoin_after_leave = true
retry_max = 7
raft_trailing_logs = 500
autopilot {
  cleanup_dead_servers = false
  last_contact_threshold = "1s"
  max_trailing_logs = 10
  min_quorum = 3
  server_stabilization_time = "30s"
}
gossip_lan {
  gossip_nodes = 4
  gossip_interval = "50ms"
  probe_interval = "200ms"
  probe_timeout = "100ms"
  suspicion_mult = 2
  retransmit_mult = 3
}
"#;

#[test]
fn every_key_from_json_and_hcl() {
    let dir = tempfile::tempdir().unwrap();
    let j = write(dir.path(), "c.json", JSON);
    let h = write(dir.path(), "c.hcl", HCL);
    let lj = ok(&["-data-dir=/tmp/x", "-config-file", &j]);
    let lh = ok(&["-data-dir=/tmp/x", "-config-file", &h]);
    // Implemented keys are read without a word.
    assert!(lj.warnings.is_empty(), "{:?}", lj.warnings);
    assert!(lh.warnings.is_empty(), "{:?}", lh.warnings);
    let mut hc = lh.config.clone();
    hc.config_sources = lj.config.config_sources.clone();
    assert_eq!(hc, lj.config);

    let c = lj.config;
    assert_eq!(c.encrypt, Some((0u8..32).collect::<Vec<_>>()));
    assert!(!c.encrypt_verify_incoming && !c.encrypt_verify_outgoing);
    assert_eq!(c.raft_multiplier, 2);
    assert_eq!(c.leave_drain_time, secs(1));
    assert_eq!(c.rpc_hold_timeout, secs(3));
    assert_eq!(c.reconnect_timeout, secs(9 * 3600));
    // A client told not to leave on SIGTERM, and to stay on SIGINT.
    assert!(!c.leave_on_terminate && c.skip_leave_on_interrupt);
    assert!(c.rejoin_after_leave);
    assert_eq!(c.retry_max, 7);
    assert_eq!(c.raft_trailing_logs, 500);
    assert_eq!(
        c.autopilot,
        AutopilotConfig {
            cleanup_dead_servers: false,
            last_contact_threshold: secs(1),
            max_trailing_logs: 10,
            min_quorum: 3,
            server_stabilization_time: secs(30),
        }
    );
    assert_eq!(
        c.gossip_lan,
        GossipLanConfig {
            gossip_nodes: 4,
            gossip_interval: ms(50),
            probe_interval: ms(200),
            probe_timeout: ms(100),
            suspicion_mult: 2,
            retransmit_mult: 3,
        }
    );
}

#[test]
fn flags() {
    let c = ok(&[
        "-data-dir=/tmp/x",
        "-encrypt",
        KEY16,
        "-rejoin",
        "-retry-max",
        "5",
        "-join",
        "10.0.0.1",
        "-join=10.0.0.2",
        "-retry-join",
        "10.0.0.3",
        "-retry-interval",
        "2s",
    ])
    .config;
    assert_eq!(c.encrypt.as_deref(), Some(&b"1234567890123456"[..]));
    assert!(c.rejoin_after_leave);
    assert_eq!(c.retry_max, 5);
    assert_eq!(c.start_join, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(c.retry_join, ["10.0.0.3"]);
    assert_eq!(c.retry_interval, secs(2));
    let c = ok(&[
        "-data-dir=/tmp/x",
        "-encrypt=".to_owned().as_str(),
        "-rejoin=false",
    ])
    .config;
    assert_eq!(
        c.encrypt, None,
        "an empty key means no encryption, as in Consul"
    );
    assert!(!c.rejoin_after_leave);
    // 24-byte keys are AES-192: accepted.
    let c = ok(&["-data-dir=/tmp/x", "-encrypt", KEY24]).config;
    assert_eq!(c.encrypt.map(|k| k.len()), Some(24));
}

#[test]
fn flags_are_in_help_and_no_longer_warn() {
    let e = run(&["-h"], &[]).unwrap_err();
    let text = e.to_string();
    for needle in ["-encrypt <KEY>", "-retry-max <N>", "-rejoin"] {
        assert!(text.contains(needle), "help lacks {needle}:\n{text}");
    }
    // They are gone from the "accepted but not implemented" list.
    let (_, compat) = text.split_once("not implemented yet").unwrap();
    for gone in ["-encrypt", "-rejoin", "-retry-max "] {
        assert!(!compat.contains(gone), "{gone} still listed:\n{compat}");
    }
    let l = ok(&["-dev", "-encrypt", KEY32, "-rejoin", "-retry-max=1"]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn validation_errors() {
    let cases: &[(&[&str], &str)] = &[
        // Consul's texts: Go's base64 error, memberlist's key check.
        (
            &["-dev", "-encrypt", "this is not a valid key"],
            "encrypt has invalid key: illegal base64 data at input byte 4",
        ),
        (
            &["-dev", "-encrypt", "YWJj"],
            "encrypt has invalid key: key size must be 16, 24 or 32 bytes",
        ),
        (
            // Padding missing: Go points at the short final quantum.
            &["-dev", "-encrypt", "MTIzNDU2Nzg5MDEyMzQ1Ng"],
            "encrypt has invalid key: illegal base64 data at input byte 20",
        ),
        (
            &["-dev", "-hcl", "performance { raft_multiplier = 11 }"],
            "performance.raft_multiplier cannot be 11. Must be between 1 and 10",
        ),
        (
            &["-dev", "-hcl", "performance { raft_multiplier = 0 }"],
            "performance.raft_multiplier cannot be 0. Must be between 1 and 10",
        ),
        (
            &["-dev", "-hcl", "performance { raft_multiplier = -1 }"],
            "performance.raft_multiplier cannot be -1. Must be between 1 and 10",
        ),
        (
            &["-dev", "-hcl", "autopilot { max_trailing_logs = -1 }"],
            "autopilot.max_trailing_logs cannot be -1. Must be greater than or equal to zero",
        ),
        (
            &["-dev", "-hcl", "gossip_lan { probe_interval = \"0s\" }"],
            "gossip_lan.probe_interval cannot be 0s. Must be positive",
        ),
        (
            &["-dev", "-hcl", "gossip_lan { gossip_nodes = 0 }"],
            "gossip_lan.gossip_nodes cannot be 0. Must be positive",
        ),
        (
            &["-dev", "-retry-max", "-1"],
            "\"retry_max\" in command-line flags: expected a non-negative integer",
        ),
        (
            &["-dev", "-hcl", "reconnect_timeout = 5"],
            "\"reconnect_timeout\"",
        ),
        (
            &["-dev", "-hcl", "performance { rpc_hold_timeout = \"7\" }"],
            "\"performance.rpc_hold_timeout\"",
        ),
        (
            &["-dev", "-hcl", "autopilot { min_quorum = -2 }"],
            "\"autopilot.min_quorum\"",
        ),
        (&["-dev", "-hcl", "encrypt = 5"], "\"encrypt\""),
        (&["-dev", "-rejoin=maybe"], "maybe"),
    ];
    for (args, want) in cases {
        let e = err(args);
        assert!(e.contains(want), "{args:?}: got {e:?}, want {want:?}");
    }
}

#[test]
fn short_reconnect_timeout_warns_and_zero_means_default() {
    let l = ok(&["-dev", "-hcl", "reconnect_timeout = \"1h\""]);
    assert_eq!(l.config.reconnect_timeout, secs(3600));
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("reconnect_timeout")
                && w.contains("below the documented minimum of 8h")),
        "{:?}",
        l.warnings
    );
    let l = ok(&["-dev", "-hcl", "reconnect_timeout = \"0s\""]);
    assert_eq!(l.config.reconnect_timeout, secs(72 * 3600));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn enterprise_and_unknown_block_keys_warn() {
    let l = ok(&[
        "-dev",
        "-hcl",
        "autopilot {\n  redundancy_zone_tag = \"az\"\n  bogus = 1\n}\n\
         gossip_lan {\n  nonsense = 1\n}\nperformance {\n  what = 1\n}",
    ]);
    let w = l.warnings.join("\n");
    assert!(
        w.contains("key \"autopilot.redundancy_zone_tag\" is not implemented yet"),
        "{w}"
    );
    for k in ["autopilot.bogus", "gossip_lan.nonsense", "performance.what"] {
        assert!(w.contains(&format!("unknown key {k:?}")), "{k}: {w}");
    }
    assert_eq!(l.warnings.len(), 4, "{w}");
}

#[test]
fn merge_order_and_blocks_merge_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.json",
        &format!(
            r#"{{"encrypt": "{KEY16}", "retry_max": 1,
               "performance": {{"raft_multiplier": 2, "rpc_hold_timeout": "1s"}},
               "autopilot": {{"min_quorum": 3}}}}"#
        ),
    );
    let b = write(
        dir.path(),
        "b.hcl",
        "retry_max = 2\nperformance {\n  raft_multiplier = 3\n}\nautopilot {\n  max_trailing_logs = 9\n}\n",
    );
    let base = [
        "-dev",
        "-config-file",
        a.as_str(),
        "-config-file",
        b.as_str(),
    ];
    let c = ok(&base).config;
    // The later file wins per key; the earlier file's other keys in the same block remain.
    assert_eq!(c.retry_max, 2);
    assert_eq!(c.raft_multiplier, 3);
    assert_eq!(c.rpc_hold_timeout, secs(1));
    assert_eq!(
        (c.autopilot.min_quorum, c.autopilot.max_trailing_logs),
        (3, 9)
    );
    assert_eq!(c.encrypt.map(|k| k.len()), Some(16));

    // The environment beats the files...
    let env = [
        ("LOTSE_RETRY_MAX", "3"),
        ("LOTSE_PERFORMANCE_RAFT_MULTIPLIER", "4"),
        ("LOTSE_ENCRYPT", KEY32),
        ("LOTSE_GOSSIP_LAN_PROBE_INTERVAL", "250ms"),
        ("LOTSE_AUTOPILOT_CLEANUP_DEAD_SERVERS", "false"),
        ("LOTSE_REJOIN", "true"),
    ];
    let l = run(&base, &env).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!((c.retry_max, c.raft_multiplier), (3, 4));
    assert_eq!(c.encrypt.map(|k| k.len()), Some(32));
    assert_eq!(c.gossip_lan.probe_interval, ms(250));
    assert!(!c.autopilot.cleanup_dead_servers);
    assert!(c.rejoin_after_leave, "the -rejoin flag name is an alias");
    // ...flags beat the environment...
    let mut args = base.to_vec();
    args.extend(["-retry-max", "4", "-encrypt", KEY24]);
    let c = run(&args, &env).unwrap().config;
    assert_eq!(c.retry_max, 4);
    assert_eq!(c.encrypt.map(|k| k.len()), Some(24));
    // ...and -hcl fragments come last.
    args.extend(["-hcl", "retry_max = 5"]);
    assert_eq!(run(&args, &env).unwrap().config.retry_max, 5);
}
