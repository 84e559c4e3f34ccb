//! Key matching: Go's case-insensitivity, snake_case everywhere, aliases, and the exact
//! bodies py-consul sends.

use std::time::Duration;

use lotse_core::catalog::{CheckStatus, ServiceAddress, Weights};
use serde_json::json;

use super::{chk, service_check, svc, S};
use crate::definition::CheckKind;

#[test]
fn service_keys_match_in_any_case_and_in_snake_case() {
    for key in ["Name", "name", "NAME", "nAmE", "n_a_m_e"] {
        assert_eq!(svc(json!({ key: "web" })).service.name, "web", "{key}");
    }
    for key in [
        "TaggedAddresses",
        "tagged_addresses",
        "taggedaddresses",
        "Tagged_Addresses",
    ] {
        let def = svc(json!({"Name": "web", key: {"lan": {"address": "10.0.0.1", "port": 80}}}));
        let lan = ServiceAddress {
            address: "10.0.0.1".into(),
            port: 80,
        };
        assert_eq!(def.service.tagged_addresses.get("lan"), Some(&lan), "{key}");
    }
    for key in [
        "EnableTagOverride",
        "enable_tag_override",
        "enabletagoverride",
    ] {
        assert!(
            svc(json!({"Name": "web", key: true}))
                .service
                .enable_tag_override,
            "{key}"
        );
    }
    for key in ["SocketPath", "socket_path", "SOCKETPATH"] {
        assert_eq!(
            svc(json!({"Name": "web", key: "/s"})).service.socket_path,
            "/s"
        );
    }
    let def = svc(
        json!({"name": "web", "id": "w1", "TAGS": ["a"], "meta": {"k": "v"},
                         "port": 80, "address": "h", "token": "t", "kind": ""}),
    );
    assert_eq!(
        (
            def.service.id.as_str(),
            def.service.tags.as_slice(),
            def.service.port
        ),
        ("w1", ["a".to_string()].as_slice(), 80)
    );
    assert_eq!(
        (def.service.address.as_str(), def.token.as_str()),
        ("h", "t")
    );
    assert_eq!(def.service.meta.get("k").map(String::as_str), Some("v"));
}

#[test]
fn check_keys_match_in_any_case_snake_case_and_aliases() {
    let cases: &[(&str, serde_json::Value)] = &[
        ("DeregisterCriticalServiceAfter", json!("2m")),
        ("deregister_critical_service_after", json!("2m")),
        ("DEREGISTERCRITICALSERVICEAFTER", json!("2m")),
    ];
    for (key, v) in cases {
        let c = service_check(json!({"TTL": "10s", *key: v}));
        assert_eq!(
            c.deregister_critical_service_after,
            Some(Duration::from_secs(120))
        );
    }
    for key in [
        "ScriptArgs",
        "script_args",
        "args",
        "Args",
        "ARGS",
        "scriptargs",
    ] {
        let c = service_check(json!({key: ["/bin/true"], "interval": "10s"}));
        assert_eq!(
            c.kind,
            CheckKind::Script {
                args: vec!["/bin/true".into()]
            },
            "{key}"
        );
    }
    for key in [
        "TLSSkipVerify",
        "tls_skip_verify",
        "tlsskipverify",
        "Tls_Skip_Verify",
    ] {
        let c = service_check(json!({"grpc": "h:1", "interval": "1s", key: true}));
        let CheckKind::Grpc {
            tls_skip_verify, ..
        } = c.kind
        else {
            panic!("{c:?}")
        };
        assert!(tls_skip_verify, "{key}");
    }
    for (key, get) in [
        ("success_before_passing", 0),
        ("SuccessBeforePassing", 0),
        ("failures_before_critical", 1),
        ("FAILURESBEFORECRITICAL", 1),
        ("failures_before_warning", 2),
    ] {
        let c = service_check(json!({"ttl": "1s", "failures_before_critical": 5, key: 3}));
        let got = [
            c.success_before_passing,
            c.failures_before_critical,
            c.failures_before_warning,
        ];
        assert_eq!(got[get], 3, "{key}");
    }
    for key in ["output_max_size", "OutputMaxSize"] {
        assert_eq!(
            service_check(json!({"ttl": "1s", key: 100})).output_max_size,
            100
        );
    }
    let c = service_check(
        json!({"http": "https://h/", "interval": "1s", "tls_server_name": "x",
                                 "disable_redirects": true, "method": "POST", "body": "b"}),
    );
    let CheckKind::Http {
        tls_server_name,
        disable_redirects,
        method,
        body,
        ..
    } = c.kind
    else {
        panic!()
    };
    assert_eq!((tls_server_name.as_str(), disable_redirects), ("x", true));
    assert_eq!((method.as_str(), body.as_str()), ("POST", "b"));
    let c = service_check(json!({"alias_service": "db", "alias_node": "n1"}));
    assert_eq!(
        c.kind,
        CheckKind::Alias {
            node: "n1".into(),
            service: "db".into()
        }
    );
    let c = service_check(json!({"h2ping": "h:1", "interval": "1s", "h2ping_use_tls": false}));
    assert!(matches!(c.kind, CheckKind::H2Ping { use_tls: false, .. }));
}

#[test]
fn service_check_id_comes_from_check_id_or_id_and_service_id_is_ignored() {
    for key in ["CheckID", "checkid", "check_id", "ID", "id"] {
        assert_eq!(
            service_check(json!({key: "c1", "ttl": "1s"})).id,
            "c1",
            "{key}"
        );
    }
    let c = service_check(json!({"ttl": "1s", "ServiceID": "other", "service_id": "x"}));
    assert_eq!(
        (c.id.as_str(), c.service_id.as_str()),
        ("service:web", "web")
    );
    // A Check holding only a ServiceID is Consul's empty CheckType: no check at all.
    assert!(svc(json!({"Name": "web", "Check": {"ServiceID": "x"}}))
        .checks
        .is_empty());
}

#[test]
fn registered_check_id_comes_from_id_or_check_id() {
    for key in ["ID", "id", "CheckID", "check_id"] {
        assert_eq!(
            chk(json!({"Name": "mem", key: "m1", "TTL": "1s"})).id,
            "m1",
            "{key}"
        );
    }
    // The exact Go spelling wins over another spelling of the same field.
    let c = chk(json!({"Name": "mem", "ID": "exact", "id": "other", "TTL": "1s"}));
    assert_eq!(c.id, "exact");
    for key in ["ServiceID", "service_id", "serviceid"] {
        assert_eq!(
            chk(json!({"Name": "m", key: "web", "TTL": "1s"})).service_id,
            "web"
        );
    }
}

/// `consul.Consul().agent.service.register("web", service_id="web1", address="10.0.0.5",
/// port=8080, tags=["a"], meta={"k": "v"}, enable_tag_override=True, weights=...,
/// check=Check.http(..., timeout="1s", deregister="90s", header=...),
/// extra_checks=[Check.tcp(...), Check.grpc(..., use_tls=True, tls_skip_verify=True)],
/// tagged_addresses=..., connect={"sidecar_service": {}})`: py-consul 1.7 / main builds
/// exactly this body (consul/api/agent.py, consul/check.py).
#[test]
fn py_consul_service_register_body_decodes() {
    let body = json!({
        "name": "web", "enabletagoverride": true, "id": "web1", "address": "10.0.0.5",
        "port": 8080, "tags": ["a"], "meta": {"k": "v"},
        "checks": [
            {"http": "http://127.0.0.1:8080/health", "interval": "10s", "timeout": "1s",
             "DeregisterCriticalServiceAfter": "90s", "header": {"x-foo": ["bar", "baz"]}},
            {"tcp": "127.0.0.1:8080", "interval": "5s"},
            {"grpc": "127.0.0.1:9090/svc", "interval": "10s", "grpc_use_tls": true,
             "tls_skip_verify": true},
        ],
        "weights": {"Passing": 10, "Warning": 1},
        "tagged_addresses": {"lan": {"address": "10.0.0.5", "port": 8080}},
        "connect": {"sidecar_service": {}},
    });
    let def = svc(body);
    let s = &def.service;
    assert_eq!(
        (s.id.as_str(), s.name.as_str(), s.port),
        ("web1", "web", 8080)
    );
    assert!(s.enable_tag_override);
    assert_eq!(
        s.weights,
        Weights {
            passing: 10,
            warning: 1
        }
    );
    let keys: Vec<&str> = s.tagged_addresses.keys().map(String::as_str).collect();
    assert_eq!(keys, ["lan", "lan_ipv4", "wan_ipv4"]);
    let ids: Vec<&str> = def.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["service:web1:1", "service:web1:2", "service:web1:3"]);
    let http = &def.checks[0];
    assert_eq!(http.name, "Service 'web' check");
    assert_eq!(
        (http.interval, http.timeout),
        (Duration::from_secs(10), Some(Duration::from_secs(1)))
    );
    assert_eq!(
        http.deregister_critical_service_after,
        Some(Duration::from_secs(90))
    );
    let CheckKind::Http {
        url,
        header,
        method,
        ..
    } = &http.kind
    else {
        panic!()
    };
    assert_eq!(
        (url.as_str(), method.as_str()),
        ("http://127.0.0.1:8080/health", "GET")
    );
    assert_eq!(
        header.get("x-foo"),
        Some(&vec!["bar".to_string(), "baz".to_string()])
    );
    assert_eq!(
        def.checks[1].kind,
        CheckKind::Tcp {
            addr: "127.0.0.1:8080".into()
        }
    );
    let grpc = CheckKind::Grpc {
        target: "127.0.0.1:9090/svc".into(),
        use_tls: true,
        tls_skip_verify: true,
    };
    assert_eq!(def.checks[2].kind, grpc);
    assert!(def
        .checks
        .iter()
        .all(|c| c.initial_status == CheckStatus::Critical));
    let sidecar = def.sidecar.as_deref().map(|s| s.service.id.as_str());
    assert_eq!(sidecar, Some("web1-sidecar-proxy"));
}

/// py-consul's deprecated `register("web", ttl="10s")` (`Check._compat`).
#[test]
fn py_consul_legacy_ttl_body_decodes() {
    let def = svc(json!({"name": "web", "check": {"ttl": "10s"}}));
    assert_eq!(def.checks[0].id, "service:web");
    assert_eq!(
        (def.checks[0].kind.clone(), def.checks[0].ttl),
        (CheckKind::Ttl, Duration::from_secs(10))
    );
}

/// `agent.check.register(name, check, check_id=, notes=, service_id=)` bodies.
#[test]
fn py_consul_check_register_bodies_decode() {
    let c =
        chk(json!({"name": "mem", "ttl": "10s", "id": "mem1", "notes": "n", "serviceid": "web"}));
    assert_eq!(
        (c.id.as_str(), c.notes.as_str(), c.service_id.as_str()),
        ("mem1", "n", "web")
    );
    assert_eq!(
        (c.kind, c.ttl, c.interval),
        (CheckKind::Ttl, Duration::from_secs(10), Duration::ZERO)
    );
    // Check.script("/bin/true", 10): a string script becomes sh -c; 10 is 10 ns, raised to 1 s.
    let c = chk(json!({"name": "script_check", "args": ["sh", "-c", "/bin/true"], "interval": 10}));
    assert_eq!(c.id, "script_check");
    assert_eq!(c.interval, Duration::from_secs(1));
    assert!(matches!(c.kind, CheckKind::Script { ref args } if args.len() == 3));
    let c = chk(
        json!({"name": "h", "http": "http://localhost:8500", "interval": "100ms",
                       "timeout": "2s"}),
    );
    assert_eq!(
        (c.interval, c.timeout),
        (Duration::from_secs(1), Some(Duration::from_secs(2)))
    );
    let c = chk(
        json!({"name": "t", "tcp": "localhost:22", "interval": "10s",
                       "DeregisterCriticalServiceAfter": "10m"}),
    );
    assert_eq!(
        c.deregister_critical_service_after,
        Some(Duration::from_secs(600))
    );
    assert_eq!(c.interval.as_nanos(), u128::from(10 * S));
}
