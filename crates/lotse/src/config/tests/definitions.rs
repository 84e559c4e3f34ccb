//! `service`/`services`/`check`/`checks` and the anti-entropy timing keys, through `build`:
//! both file formats, single and repeated blocks, merging across sources, load-time errors.

use std::path::Path;
use std::time::Duration;

use lotse_agent::definition::decode;
use serde_json::json;

use super::{err, ok, run};
use crate::config::{AgentConfig, ConfigError};

/// Writes `name` into `dir` and returns its path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f.display().to_string()
}

/// The `name` of every configured service, in order.
fn service_names(c: &AgentConfig) -> Vec<String> {
    c.services
        .iter()
        .map(|v| decode::service(v).unwrap().service.name)
        .collect()
}

#[test]
fn json_service_services_check_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "svc.json",
        &json!({
            "service": {"name": "web", "port": 80, "tags": ["a"],
                        "check": {"http": "http://127.0.0.1:80/health", "interval": "10s"}},
            "services": [{"name": "db", "port": 5432}, {"name": "cache"}],
            "check": {"id": "mem", "name": "Memory", "ttl": "30s"},
            "checks": [{"name": "disk", "ttl": "1m"}]
        })
        .to_string(),
    );
    let l = ok(&["-dev", "-config-file", &f]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    // As in Consul, a source's `services` come first, then its single `service`.
    assert_eq!(service_names(&c), ["db", "cache", "web"]);
    let web = decode::service(&c.services[2]).unwrap();
    assert_eq!(web.service.port, 80);
    assert_eq!(web.service.tags, ["a"]);
    assert_eq!(web.checks.len(), 1);
    let checks: Vec<String> = c
        .checks
        .iter()
        .map(|v| decode::check(v).unwrap().name)
        .collect();
    assert_eq!(checks, ["disk", "Memory"]);
}

#[test]
fn hcl_single_and_repeated_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let single = write(
        dir.path(),
        "single.hcl",
        r#"
service {
  name = "web"
  port = 8080
  tags = ["v1"]
  check {
    http     = "http://127.0.0.1:8080/health"
    interval = "10s"
  }
}
"#,
    );
    let c = ok(&["-dev", "-config-file", &single]).config;
    assert_eq!(service_names(&c), ["web"]);
    let web = decode::service(&c.services[0]).unwrap();
    assert_eq!((web.service.port, web.checks.len()), (8080, 1));

    // Repeated blocks of all four keys, and a `services = [...]` list.
    let repeated = write(
        dir.path(),
        "repeated.hcl",
        r#"
service {
  name = "a"
}
service {
  name = "b"
  check {
    ttl = "10s"
  }
  check {
    ttl = "20s"
  }
}
services {
  name = "c"
  checks {
    ttl = "5s"
  }
}
services {
  name = "d"
}
check {
  name = "n1"
  ttl  = "30s"
}
check {
  name = "n2"
  ttl  = "30s"
}
checks = [{ name = "n0", ttl = "1m" }]
"#,
    );
    let l = ok(&["-dev", "-config-file", &repeated]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(service_names(&c), ["c", "d", "a", "b"]);
    // Repeated `check` blocks in a service are all its checks; a single `checks` block is one.
    assert_eq!(decode::service(&c.services[3]).unwrap().checks.len(), 2);
    assert_eq!(decode::service(&c.services[0]).unwrap().checks.len(), 1);
    let checks: Vec<String> = c
        .checks
        .iter()
        .map(|v| decode::check(v).unwrap().name)
        .collect();
    assert_eq!(checks, ["n0", "n1", "n2"]);

    let list = write(
        dir.path(),
        "list.hcl",
        r#"
services = [
  { name = "x", port = 1 },
  { name = "y", port = 2, checks = [{ ttl = "10s" }] },
]
"#,
    );
    assert_eq!(
        service_names(&ok(&["-dev", "-config-file", &list]).config),
        ["x", "y"]
    );
}

#[test]
fn json_and_hcl_definitions_decode_alike() {
    let dir = tempfile::tempdir().unwrap();
    let j = write(
        dir.path(),
        "s.json",
        &json!({"service": {
            "name": "web", "id": "web-1", "port": 8080, "tags": ["v1", "blue"],
            "meta": {"team": "a"}, "enable_tag_override": true,
            "checks": [{"http": "http://127.0.0.1:8080/", "interval": "10s", "timeout": "1s"},
                       {"ttl": "30s", "notes": "n"}],
            "connect": {"sidecar_service": {}}
        }})
        .to_string(),
    );
    let h = write(
        dir.path(),
        "s.hcl",
        r#"
service {
  name = "web"
  id   = "web-1"
  port = 8080
  tags = ["v1", "blue"]
  meta {
    team = "a"
  }
  enable_tag_override = true
  check {
    http     = "http://127.0.0.1:8080/"
    interval = "10s"
    timeout  = "1s"
  }
  check {
    ttl   = "30s"
    notes = "n"
  }
  connect {
    sidecar_service {}
  }
}
"#,
    );
    let jd = decode::service(&ok(&["-dev", "-config-file", &j]).config.services[0]).unwrap();
    let hd = decode::service(&ok(&["-dev", "-config-file", &h]).config.services[0]).unwrap();
    assert_eq!(jd, hd);
    assert_eq!(jd.service.id, "web-1");
    assert_eq!(jd.checks.len(), 2);
    assert!(jd.sidecar.is_some());
}

#[test]
fn definitions_append_across_sources_in_merge_order() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    std::fs::create_dir(&conf).unwrap();
    write(&conf, "10-a.hcl", "service {\n  name = \"a\"\n}\n");
    write(
        &conf,
        "20-b.json",
        r#"{"service": {"name": "b"}, "check": {"name": "c1", "ttl": "10s"}}"#,
    );
    let file = write(
        dir.path(),
        "base.json",
        r#"{"services": [{"name": "first"}]}"#,
    );
    let c = ok(&[
        "-dev",
        "-config-file",
        &file,
        "-config-dir",
        conf.to_str().unwrap(),
        "-hcl",
        "service {\n  name = \"from-hcl\"\n}\n",
    ])
    .config;
    assert_eq!(service_names(&c), ["first", "a", "b", "from-hcl"]);
    assert_eq!(c.checks.len(), 1);
}

#[test]
fn bad_definition_names_the_file_and_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(
        dir.path(),
        "web.hcl",
        "service {\n  name = \"web\"\n  check {\n    http = \"http://127.0.0.1/\"\n  }\n}\n",
    );
    let e = err(&["-dev", "-config-file", &h]);
    assert!(
        e.starts_with(&format!("config: service \"web\" in {h}: Invalid check: ")),
        "{e}"
    );
    assert!(e.contains("Interval must be > 0"), "{e}");

    // A bad service among good ones in a later file still fails the whole load.
    let good = write(dir.path(), "good.json", r#"{"service": {"name": "ok"}}"#);
    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"services": [{"name": "ok2"}, {"name": "api", "check": {"notes": "no kind"}}]}"#,
    );
    let e = err(&["-dev", "-config-file", &good, "-config-file", &bad]);
    assert!(
        e.starts_with(&format!("config: service \"api\" in {bad}: ")),
        "{e}"
    );
    assert!(e.contains("TTL must be > 0 for TTL checks"), "{e}");

    // A node-level check is named by its name, else its ID.
    let c = write(dir.path(), "check.json", r#"{"check": {"id": "mem"}}"#);
    let e = err(&["-dev", "-config-file", &c]);
    assert!(
        e.starts_with(&format!("config: check \"mem\" in {c}: ")),
        "{e}"
    );

    // The wrong shape altogether is a value error naming the key.
    let s = write(dir.path(), "shape.json", r#"{"service": "web"}"#);
    let e = err(&["-dev", "-config-file", &s]);
    assert!(
        e.contains("\"service\"") && e.contains(&s) && e.contains("a map (block)"),
        "{e}"
    );
    assert!(matches!(
        run(&["-dev", "-config-file", &h], &[]),
        Err(ConfigError::Definition {
            kind: "service",
            ..
        })
    ));
}

#[test]
fn anti_entropy_durations() {
    let c = ok(&["-dev"]).config;
    assert_eq!(c.ae_interval, Duration::from_secs(60));
    assert_eq!(c.check_update_interval, Duration::from_secs(300));
    assert_eq!(c.check_reap_interval, Duration::from_secs(30));

    let l = ok(&[
        "-dev",
        "-hcl",
        "ae_interval = \"10s\"\ncheck_update_interval = \"0s\"\ncheck_reap_interval = \"1s\"",
    ]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.ae_interval, Duration::from_secs(10));
    // 0 turns the deferral of output-only updates off.
    assert_eq!(l.config.check_update_interval, Duration::ZERO);
    assert_eq!(l.config.check_reap_interval, Duration::from_secs(1));

    let c = run(&["-dev"], &[("LOTSE_AE_INTERVAL", "2m")])
        .unwrap()
        .config;
    assert_eq!(c.ae_interval, Duration::from_secs(120));

    let cases: &[(&str, &str)] = &[
        (
            "ae_interval = \"0s\"",
            "ae_interval cannot be 0s. Must be positive",
        ),
        (
            "check_reap_interval = \"0\"",
            "check_reap_interval cannot be 0s",
        ),
        ("ae_interval = \"-1s\"", "must not be negative"),
        ("check_update_interval = 5", "duration string"),
    ];
    for (hcl, want) in cases {
        let e = err(&["-dev", "-hcl", hcl]);
        assert!(e.contains(want), "{hcl}: {e}");
    }
}
