//! Check fields: kinds by Consul's precedence, durations, clamps and defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use lotse_core::catalog::CheckStatus;
use serde_json::json;

use super::{chk, chk_err, service_check, S};
use crate::definition::CheckKind;

#[test]
fn kind_follows_consuls_type_precedence() {
    let tcp = || CheckKind::Tcp { addr: "h:1".into() };
    let cases = [
        // grpc > http > ttl(needs no interval) > tcp > udp > alias > script > h2ping
        (
            json!({"GRPC": "h:1", "HTTP": "http://h/", "Interval": "1s"}),
            "grpc",
        ),
        (
            json!({"HTTP": "http://h/", "TCP": "h:1", "Interval": "1s"}),
            "http",
        ),
        (json!({"TCP": "h:1", "UDP": "h:2", "Interval": "1s"}), "tcp"),
        (
            json!({"UDP": "h:2", "Args": ["x"], "Interval": "1s"}),
            "udp",
        ),
        (
            json!({"Args": ["x"], "H2PING": "h:3", "Interval": "1s"}),
            "script",
        ),
        (json!({"H2PING": "h:3", "Interval": "1s"}), "h2ping"),
        (json!({"AliasService": "db"}), "alias"),
        (json!({"TTL": "1s"}), "ttl"),
    ];
    for (body, want) in cases {
        assert_eq!(service_check(body.clone()).kind.type_name(), want, "{body}");
    }
    assert_eq!(
        service_check(json!({"TCP": "h:1", "Interval": "1s"})).kind,
        tcp()
    );
    // A TTL check may carry HTTP settings it never uses (but no target: that needs an interval).
    let c = service_check(json!({"TTL": "1s", "Method": "POST", "Shell": "/bin/sh"}));
    assert_eq!(c.kind, CheckKind::Ttl);
}

#[test]
fn intervals_timeouts_and_deregister_delays_are_clamped_as_consul_does() {
    let c = service_check(json!({"TCP": "h:1", "Interval": "100ms", "Timeout": "50ms"}));
    assert_eq!(
        (c.interval, c.timeout),
        (Duration::from_secs(1), Some(Duration::from_millis(50)))
    );
    let c = service_check(json!({"TCP": "h:1", "Interval": "1m30s"}));
    assert_eq!((c.interval, c.timeout), (Duration::from_secs(90), None));
    let c = service_check(json!({"TCP": "h:1", "Interval": 2_500_000_000u64, "Timeout": "-5s"}));
    assert_eq!((c.interval, c.timeout), (Duration::from_millis(2500), None));
    let c = service_check(json!({"TTL": "30s", "DeregisterCriticalServiceAfter": "10s"}));
    assert_eq!(
        c.deregister_critical_service_after,
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        (c.ttl, c.interval),
        (Duration::from_secs(30), Duration::ZERO)
    );
    let c = service_check(json!({"TTL": "30s", "DeregisterCriticalServiceAfter": "-1s"}));
    assert_eq!(c.deregister_critical_service_after, None);
    // An alias check ignores an interval; a TTL check ignores a negative one.
    let c = service_check(json!({"AliasService": "db", "Interval": "10s"}));
    assert_eq!(c.interval, Duration::ZERO);
    let c = service_check(json!({"TTL": "1.5s", "Interval": "-1s"}));
    assert_eq!(
        (c.kind, c.ttl.as_nanos()),
        (CheckKind::Ttl, u128::from(3 * S / 2))
    );
}

#[test]
fn thresholds_and_output_size_default_as_in_consul() {
    let c = service_check(json!({"TTL": "1s"}));
    let counts = (
        c.success_before_passing,
        c.failures_before_warning,
        c.failures_before_critical,
    );
    assert_eq!((counts, c.output_max_size), ((0, 0, 0), 4096));
    let c = service_check(json!({"TTL": "1s", "FailuresBeforeCritical": 3}));
    assert_eq!(
        (c.failures_before_warning, c.failures_before_critical),
        (3, 3)
    );
    let c = service_check(json!({"TTL": "1s", "FailuresBeforeCritical": 3,
                                 "FailuresBeforeWarning": 1, "SuccessBeforePassing": 2}));
    assert_eq!(
        (c.success_before_passing, c.failures_before_warning),
        (2, 1)
    );
    // A check may lower the agent's output limit, not raise it.
    assert_eq!(
        service_check(json!({"TTL": "1s", "OutputMaxSize": 100})).output_max_size,
        100
    );
    assert_eq!(
        service_check(json!({"TTL": "1s", "OutputMaxSize": 1 << 20})).output_max_size,
        4096
    );
}

#[test]
fn http_defaults_method_and_keeps_header_lists() {
    let c = service_check(
        json!({"HTTP": "https://10.0.0.1:8443/health?x=1", "Interval": "10s",
                                 "Header": {"X-A": ["1", "2"], "X-B": null}}),
    );
    let mut header = BTreeMap::new();
    header.insert("X-A".to_string(), vec!["1".to_string(), "2".to_string()]);
    header.insert("X-B".to_string(), vec![]);
    let want = CheckKind::Http {
        url: "https://10.0.0.1:8443/health?x=1".into(),
        method: "GET".into(),
        header,
        body: String::new(),
        tls_server_name: String::new(),
        tls_skip_verify: false,
        disable_redirects: false,
    };
    assert_eq!(c.kind, want);
    for url in [
        "http://[::1]:80/",
        "HTTP://user:pw@h",
        "http://h:8080",
        "https://h#frag",
    ] {
        let c = service_check(json!({"HTTP": url, "Interval": "10s"}));
        assert_eq!(c.kind.type_name(), "http", "{url}");
    }
}

#[test]
fn h2ping_uses_tls_unless_told_not_to() {
    let tls = |body: serde_json::Value| match service_check(body).kind {
        CheckKind::H2Ping { use_tls, .. } => use_tls,
        other => panic!("{other:?}"),
    };
    assert!(tls(json!({"H2PING": "h:1", "Interval": "1s"})));
    assert!(tls(
        json!({"H2PING": "h:1", "Interval": "1s", "H2PingUseTLS": true})
    ));
    assert!(!tls(
        json!({"H2PING": "h:1", "Interval": "1s", "H2PingUseTLS": false})
    ));
    assert!(!tls(
        json!({"H2PING": "h:1", "Interval": "1s", "h2ping_use_tls": false})
    ));
}

#[test]
fn addresses_in_host_port_form_are_accepted() {
    for addr in [
        "127.0.0.1:80",
        "[::1]:8080",
        "localhost:0",
        ":8500",
        "db.internal:5432",
    ] {
        let c = service_check(json!({"TCP": addr, "Interval": "10s"}));
        assert_eq!(c.kind, CheckKind::Tcp { addr: addr.into() });
        let c = service_check(json!({"UDP": addr, "Interval": "10s"}));
        assert_eq!(c.kind, CheckKind::Udp { addr: addr.into() });
    }
}

#[test]
fn registered_check_defaults() {
    let c = chk(json!({"Name": "mem", "TTL": "10s"}));
    assert_eq!(
        (c.id.as_str(), c.name.as_str(), c.service_id.as_str()),
        ("mem", "mem", "")
    );
    assert_eq!(c.initial_status, CheckStatus::Critical);
    let c = chk(
        json!({"Name": "mem", "TTL": "10s", "Status": "passing", "Token": "t",
                       "Notes": "n", "ServiceID": "web", "Namespace": ""}),
    );
    assert_eq!(
        (c.initial_status, c.token.as_str()),
        (CheckStatus::Passing, "t")
    );
    assert_eq!((c.notes.as_str(), c.service_id.as_str()), ("n", "web"));
    let c = chk(json!({"Name": "h2", "H2PING": "h:1", "Interval": "1s"}));
    assert!(matches!(c.kind, CheckKind::H2Ping { use_tls: true, .. }));
    let c = chk(json!({"Name": "r", "HTTP": "http://h/", "Interval": "1s",
                       "disable_redirects": true}));
    assert!(matches!(
        c.kind,
        CheckKind::Http {
            disable_redirects: true,
            ..
        }
    ));
}

#[test]
fn durations_parse_as_go_and_bad_ones_are_decode_errors() {
    let ttl = |v: serde_json::Value| chk(json!({"Name": "t", "TTL": v})).ttl;
    assert_eq!(ttl(json!("1h")), Duration::from_secs(3600));
    assert_eq!(ttl(json!("1.5s")), Duration::from_millis(1500));
    assert_eq!(ttl(json!("500ms")), Duration::from_millis(500));
    assert_eq!(ttl(json!(10_000_000_000u64)), Duration::from_secs(10));
    assert_eq!(ttl(json!(1.5e9)), Duration::from_millis(1500));
    let err = |v: serde_json::Value| chk_err(json!({"Name": "t", "TTL": v}));
    let missing_unit = r#"Request decode failed: time: missing unit in duration "10""#;
    assert_eq!(err(json!("10")), (400, missing_unit.to_string()));
    let invalid = r#"Request decode failed: time: invalid duration "abc""#;
    assert_eq!(err(json!("abc")), (400, invalid.to_string()));
    let typed = "Request decode failed: json: cannot unmarshal bool into Go struct field \
                 CheckDefinition.TTL of type time.Duration";
    assert_eq!(err(json!(true)), (400, typed.to_string()));
    // A negative TTL parses, and is then no TTL at all.
    assert_eq!(
        err(json!("-5s")).1,
        "Invalid check: TTL must be > 0 for TTL checks"
    );
}
