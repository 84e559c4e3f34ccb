//! The DNS keys through `build`: `domain`, `alt_domain`, `recursors`, `addresses { dns }` and
//! `dns_config { ... }` in both file formats, flags and environment, merging across sources,
//! Consul's checks.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lotse_dns::config::{DnsConfig, RecursorStrategy, SoaConfig};
use serde_json::json;

use super::{err, ip, ok, run};

/// Writes `name` into `dir` and returns its path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f.display().to_string()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn defaults_are_dns_config_defaults() {
    let c = ok(&["-data-dir", "/tmp/x"]).config;
    assert_eq!(c.dns, DnsConfig::default());
    assert_eq!(c.dns.domain, "consul.");
    assert_eq!(c.dns.datacenter, "dc1");
    assert_eq!(c.dns_addr, ip("127.0.0.1"));
    assert_eq!(c.ports.dns, 8600);

    // The domain is normalized (the raw one stays in `domain`), the datacenter follows the
    // agent's, the listener follows client_addr.
    let c = ok(&[
        "-dev",
        "-domain",
        ".Example.COM",
        "-datacenter",
        "EU-1",
        "-client",
        "0.0.0.0",
    ])
    .config;
    assert_eq!(c.domain, ".Example.COM");
    assert_eq!(
        c.dns,
        DnsConfig {
            domain: "example.com.".into(),
            datacenter: "eu-1".into(),
            ..DnsConfig::default()
        }
    );
    assert_eq!(c.dns_addr, ip("0.0.0.0"));
}

const FULL_HCL: &str = r#"
domain     = "Example.COM"
alt_domain = "Alt.Test"
datacenter = "eu-1"
recursors  = ["8.8.8.8", "1.1.1.1:5353", "[2001:db8::1]:54", "2001:db8::2", "8.8.8.8:53"]
addresses {
  dns = "127.0.0.2"
}
dns_config {
  allow_stale                     = false
  max_stale                       = "10s"
  node_ttl                        = "30s"
  service_ttl = {
    "*"   = "5s"
    "db*" = "1m"
    "web" = "1h30m"
  }
  udp_answer_limit                = 5
  a_record_limit                  = 2
  enable_truncate                 = false
  only_passing                    = true
  disable_compression             = true
  enable_additional_node_meta_txt = false
  recursor_strategy               = "random"
  recursor_timeout                = "500ms"
  soa {
    refresh = 1
    retry   = 2
    expire  = 3
    min_ttl = 4
  }
}
"#;

fn full_json() -> String {
    json!({
        "domain": "Example.COM",
        "alt_domain": "Alt.Test",
        "datacenter": "eu-1",
        "recursors": ["8.8.8.8", "1.1.1.1:5353", "[2001:db8::1]:54", "2001:db8::2", "8.8.8.8:53"],
        "addresses": {"dns": "127.0.0.2"},
        "dns_config": {
            "allow_stale": false,
            "max_stale": "10s",
            "node_ttl": "30s",
            "service_ttl": {"*": "5s", "db*": "1m", "web": "1h30m"},
            "udp_answer_limit": 5,
            "a_record_limit": 2,
            "enable_truncate": false,
            "only_passing": true,
            "disable_compression": true,
            "enable_additional_node_meta_txt": false,
            "recursor_strategy": "random",
            "recursor_timeout": "500ms",
            "soa": {"refresh": 1, "retry": 2, "expire": 3, "min_ttl": 4}
        }
    })
    .to_string()
}

fn full_expected() -> DnsConfig {
    DnsConfig {
        domain: "example.com.".into(),
        alt_domain: Some("alt.test.".into()),
        datacenter: "eu-1".into(),
        allow_stale: false,
        max_stale: secs(10),
        node_ttl: secs(30),
        service_ttl: vec![
            ("*".into(), secs(5)),
            ("db*".into(), secs(60)),
            ("web".into(), secs(5400)),
        ],
        udp_answer_limit: 5,
        a_record_limit: 2,
        enable_truncate: false,
        only_passing: true,
        disable_compression: true,
        enable_additional_node_meta_txt: false,
        // Duplicates dropped (8.8.8.8 and 8.8.8.8:53 are one), port 53 added.
        recursors: vec![
            sa("8.8.8.8:53"),
            sa("1.1.1.1:5353"),
            sa("[2001:db8::1]:54"),
            sa("[2001:db8::2]:53"),
        ],
        recursor_strategy: RecursorStrategy::Random,
        recursor_timeout: Duration::from_millis(500),
        soa: SoaConfig {
            refresh: 1,
            retry: 2,
            expire: 3,
            min_ttl: 4,
        },
    }
}

#[test]
fn every_key_from_hcl_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "dns.hcl", FULL_HCL);
    let j = write(dir.path(), "dns.json", &full_json());
    for f in [&h, &j] {
        let l = ok(&["-dev", "-config-file", f]);
        assert!(l.warnings.is_empty(), "{f}: {:?}", l.warnings);
        assert_eq!(l.config.dns, full_expected(), "{f}");
        assert_eq!(l.config.dns_addr, ip("127.0.0.2"), "{f}");
        assert_eq!(l.config.domain, "Example.COM", "{f}");
        assert_eq!(l.config.datacenter, "eu-1", "{f}");
    }
    // The lookup helpers see what was configured.
    let c = ok(&["-dev", "-config-file", &h]).config;
    assert_eq!(c.dns.service_ttl_for("web"), 5400);
    assert_eq!(c.dns.service_ttl_for("db-1"), 60);
    assert_eq!(c.dns.service_ttl_for("api"), 5);
    assert_eq!(c.dns.node_ttl_secs(), 30);
}

#[test]
fn hcl_repeated_blocks_and_empty_values() {
    let c = ok(&[
        "-dev",
        "-hcl",
        "dns_config {\n  only_passing = true\n}\ndns_config {\n  a_record_limit = 1\n  soa {\n    retry = 9\n  }\n  soa {\n    expire = 8\n  }\n}\n",
    ])
    .config;
    assert!(c.dns.only_passing);
    assert_eq!(c.dns.a_record_limit, 1);
    assert_eq!(
        c.dns.soa,
        SoaConfig {
            retry: 9,
            expire: 8,
            ..SoaConfig::default()
        }
    );
    // The inline object form is the same.
    let c = ok(&["-dev", "-hcl", "dns_config = { soa = { min_ttl = 7 } }"]).config;
    assert_eq!(c.dns.soa.min_ttl, 7);
    // Empty strings are "unset", as in Consul; "" is the default strategy; a recursor_timeout
    // of 0 is Consul's "unset" (its client then waits 2s).
    let c = ok(&[
        "-dev",
        "-hcl",
        "alt_domain = \"\"\naddresses {\n  dns = \"\"\n}\ndns_config {\n  recursor_strategy = \"\"\n  recursor_timeout = \"0s\"\n}\n",
    ])
    .config;
    assert_eq!(c.dns, DnsConfig::default());
    assert_eq!(c.dns_addr, c.client_addr);
    // Several addresses in one string (what a template would expand to).
    let c = ok(&["-dev", "-hcl", "recursors = \"10.0.0.1 10.0.0.2:5353\""]).config;
    assert_eq!(c.dns.recursors, [sa("10.0.0.1:53"), sa("10.0.0.2:5353")]);
}

#[test]
fn later_sources_override_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.json",
        &json!({
            "alt_domain": "first.test",
            "recursors": ["10.0.0.1"],
            "addresses": {"dns": "127.0.0.3"},
            "dns_config": {
                "allow_stale": false,
                "udp_answer_limit": 5,
                "recursor_strategy": "random",
                "service_ttl": {"*": "5s", "db": "10s"},
                "soa": {"refresh": 10, "retry": 20}
            }
        })
        .to_string(),
    );
    let b = write(
        dir.path(),
        "b.hcl",
        r#"
alt_domain = "second.test"
recursors  = ["10.0.0.2", "10.0.0.1"]
dns_config {
  udp_answer_limit = 7
  service_ttl = {
    db = "1s"
  }
  soa {
    retry = 30
  }
}
"#,
    );
    let c = ok(&["-dev", "-config-file", &a, "-config-file", &b]).config;
    let d = &c.dns;
    assert_eq!(d.alt_domain.as_deref(), Some("second.test."));
    // Lists append (then lose duplicates); maps merge key by key.
    assert_eq!(d.recursors, [sa("10.0.0.1:53"), sa("10.0.0.2:53")]);
    assert!(!d.allow_stale);
    assert_eq!(d.udp_answer_limit, 7);
    assert_eq!(d.recursor_strategy, RecursorStrategy::Random);
    assert_eq!(
        d.service_ttl,
        vec![("*".to_string(), secs(5)), ("db".to_string(), secs(1))]
    );
    assert_eq!(
        d.soa,
        SoaConfig {
            refresh: 10,
            retry: 30,
            ..SoaConfig::default()
        }
    );
    assert_eq!(c.dns_addr, ip("127.0.0.3"));

    // Flags and the environment: -recursor entries come first (as Consul's slices), the
    // environment's last; -alt-domain beats the files; LOTSE_DNS_CONFIG_* beat the files.
    let c = run(
        &[
            "-dev",
            "-recursor",
            "10.0.0.9",
            "-recursor=10.0.0.8:5300",
            "-config-file",
            &a,
            "-config-file",
            &b,
            "-alt-domain",
            "flag.test",
        ],
        &[
            ("LOTSE_RECURSORS", "10.0.0.7, 10.0.0.9"),
            ("LOTSE_DNS_CONFIG_UDP_ANSWER_LIMIT", "9"),
            ("LOTSE_DNS_CONFIG_ONLY_PASSING", "true"),
            ("LOTSE_DNS_CONFIG_MAX_STALE", "1m"),
            ("LOTSE_DNS_CONFIG_SOA_EXPIRE", "99"),
            ("LOTSE_ADDRESSES_DNS", "::1"),
        ],
    )
    .unwrap()
    .config;
    let d = &c.dns;
    assert_eq!(
        d.recursors,
        [
            sa("10.0.0.9:53"),
            sa("10.0.0.8:5300"),
            sa("10.0.0.1:53"),
            sa("10.0.0.2:53"),
            sa("10.0.0.7:53"),
        ]
    );
    assert_eq!(d.alt_domain.as_deref(), Some("flag.test."));
    assert_eq!(d.udp_answer_limit, 9);
    assert!(d.only_passing);
    assert_eq!(d.max_stale, secs(60));
    assert_eq!((d.soa.refresh, d.soa.retry, d.soa.expire), (10, 30, 99));
    assert_eq!(c.dns_addr, ip("::1"));
}

#[test]
fn ignored_and_unknown_keys_warn() {
    let l = ok(&[
        "-dev",
        "-hcl",
        "dns_config {\n  use_cache = true\n  cache_max_age = \"10s\"\n  prefer_namespace = true\n  \
         allow_stal = true\n  soa {\n    serial = 1\n  }\n}\naddresses {\n  http = \"0.0.0.0\"\n  \
         dnss = \"1.2.3.4\"\n}\n",
    ]);
    let w = l.warnings.join("\n");
    for k in [
        "dns_config.use_cache",
        "dns_config.cache_max_age",
        "dns_config.prefer_namespace",
        "addresses.http",
    ] {
        assert!(
            w.contains(&format!(
                "key {k:?} is not implemented yet by Lotse; ignoring it in -hcl flag #1"
            )),
            "{k}: {w}"
        );
    }
    for k in [
        "dns_config.allow_stal",
        "dns_config.soa.serial",
        "addresses.dnss",
    ] {
        assert!(
            w.contains(&format!("ignoring unknown key {k:?} in -hcl flag #1")),
            "{k}: {w}"
        );
    }
    assert_eq!(l.warnings.len(), 7, "{w}");
    assert_eq!(l.config.dns, DnsConfig::default());

    // alt_domain equal to domain changes nothing in Consul: ignored, with a word.
    let l = ok(&["-dev", "-domain", "example.", "-alt-domain", "EXAMPLE"]);
    assert_eq!(l.config.dns.alt_domain, None);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("alt_domain \"EXAMPLE\" is the same as domain")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "dns_config { udp_answer_limit = -1 }",
            "dns_config.udp_answer_limit",
            "cannot be -1. Must be greater than or equal to zero",
        ),
        (
            "dns_config { a_record_limit = -2 }",
            "dns_config.a_record_limit",
            "cannot be -2. Must be greater than or equal to zero",
        ),
        (
            "dns_config { udp_answer_limit = \"3\" }",
            "dns_config.udp_answer_limit",
            "expected an integer, found string \"3\"",
        ),
        (
            "dns_config { allow_stale = \"yes\" }",
            "dns_config.allow_stale",
            "expected a boolean",
        ),
        (
            "dns_config { only_passing = 1 }",
            "dns_config.only_passing",
            "expected a boolean",
        ),
        (
            "dns_config { max_stale = \"10\" }",
            "dns_config.max_stale",
            "missing unit",
        ),
        (
            "dns_config { node_ttl = 30 }",
            "dns_config.node_ttl",
            "duration string",
        ),
        (
            "dns_config { recursor_timeout = \"-1s\" }",
            "dns_config.recursor_timeout",
            "must not be negative",
        ),
        (
            "dns_config { service_ttl = { web = 5 } }",
            "dns_config.service_ttl.web",
            "duration string",
        ),
        (
            "dns_config { service_ttl = \"5s\" }",
            "dns_config.service_ttl",
            "a map",
        ),
        (
            "dns_config { recursor_strategy = \"round-robin\" }",
            "dns_config.recursor_strategy",
            "invalid strategy \"round-robin\"",
        ),
        (
            "dns_config { soa = { refresh = -1 } }",
            "dns_config.soa.refresh",
            "non-negative",
        ),
        (
            "dns_config { soa = { expire = 5000000000 } }",
            "dns_config.soa.expire",
            "too large",
        ),
        ("dns_config = 5", "dns_config", "a map"),
        ("recursors = [1]", "recursors", "list of strings"),
        (
            "recursors = [\"dns.google\"]",
            "recursors",
            "host names are not supported",
        ),
        (
            "recursors = [\"{{ GetPrivateIP }}\"]",
            "recursors",
            "go-sockaddr templates are not supported",
        ),
        (
            "recursors = [\"0.0.0.0\"]",
            "recursors",
            "cannot be 0.0.0.0",
        ),
        ("recursors = [\"\"]", "recursors", "an empty address"),
        ("alt_domain = 1", "alt_domain", "expected a string"),
        (
            "addresses { dns = 1 }",
            "addresses.dns",
            "expected a string",
        ),
    ];
    for (hcl, key, want) in cases {
        let e = err(&["-dev", "-hcl", hcl]);
        assert!(
            e.starts_with(&format!(
                "config: invalid value for {key:?} in -hcl flag #1: "
            )),
            "{hcl}: {e}"
        );
        assert!(e.contains(want), "{hcl}: got {e:?}, want {want:?}");
    }

    // In a file, the error names the file.
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.json",
        &json!({"dns_config": {"udp_answer_limit": -1}}).to_string(),
    );
    let e = err(&["-dev", "-config-file", &f]);
    assert_eq!(
        e,
        format!(
            "config: invalid value for \"dns_config.udp_answer_limit\" in {f}: cannot be -1. \
             Must be greater than or equal to zero"
        )
    );
    // From the environment, the variable.
    let e = run(&["-dev"], &[("LOTSE_DNS_CONFIG_A_RECORD_LIMIT", "-1")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("LOTSE_DNS_CONFIG_A_RECORD_LIMIT"), "{e}");
    let e = run(&["-dev"], &[("LOTSE_RECURSOR", "nope")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"recursors\"") && e.contains("LOTSE_RECURSOR"),
        "{e}"
    );
}

#[test]
fn validation_errors() {
    let cases: &[(&[&str], &str)] = &[
        // Consul's isValidAltDomain.
        (
            &["-dev", "-alt-domain", "service.alt"],
            "alt_domain cannot start with {service,connect,node,query,addr,dc1}",
        ),
        (
            &["-dev", "-alt-domain", "node.alt."],
            "alt_domain cannot start with",
        ),
        (
            &["-dev", "-datacenter=a", "-alt-domain=a.alt"],
            "alt_domain cannot start with {service,connect,node,query,addr,a}",
        ),
        (
            &["-dev", "-alt-domain", "."],
            "alt_domain cannot be the root domain",
        ),
        (&["-dev", "-domain", ""], "domain cannot be empty"),
        (&["-dev", "-domain", "."], "domain cannot be empty"),
        (
            &["-dev", "-recursor", "8.8.8.8:99999"],
            "expected an IP address or IP:port",
        ),
        (
            &["-dev", "-hcl", "addresses { dns = \"nope\" }"],
            "addresses.dns: invalid ip address: nope",
        ),
        (
            &[
                "-dev",
                "-hcl",
                "addresses { dns = \"unix:///tmp/dns.sock\" }",
            ],
            "DNS address cannot be a unix socket",
        ),
        (
            &["-dev", "-hcl", "addresses { dns = \"{{ GetPrivateIP }}\" }"],
            "addresses.dns: go-sockaddr templates",
        ),
        (
            &["-dev", "-hcl", "addresses { dns = \"127.0.0.1 ::1\" }"],
            "addresses.dns cannot contain multiple addresses",
        ),
    ];
    for (args, want) in cases {
        let e = err(args);
        assert!(e.contains(want), "{args:?}: got {e:?}, want {want:?}");
    }
    // Prefixes that are only part of a label are fine.
    let c = ok(&["-dev", "-alt-domain", "services.alt"]).config;
    assert_eq!(c.dns.alt_domain.as_deref(), Some("services.alt."));
}

#[test]
fn service_ttl_hcl_forms() {
    // A block of plain names works; quoted names (`"*"`, `"db*"`) need HCL2's `= { }` form.
    let c = ok(&[
        "-dev",
        "-hcl",
        "dns_config {\n  service_ttl {\n    web = \"5s\"\n  }\n}\n",
    ])
    .config;
    assert_eq!(c.dns.service_ttl, vec![("web".to_string(), secs(5))]);
    let e = err(&[
        "-dev",
        "-hcl",
        "dns_config {\n  service_ttl {\n    \"*\" = \"5s\"\n  }\n}\n",
    ]);
    assert!(e.contains("-hcl flag #1: line 3, column 5"), "{e}");
}
