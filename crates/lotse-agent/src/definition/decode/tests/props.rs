//! The decoder never panics, whatever JSON it is given, and refuses only with 400 or 500.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::definition::decode::{check, check_row, service};

/// Keys the decoder knows (in several spellings), and some it does not.
const KEYS: &[&str] = &[
    "Name",
    "name",
    "ID",
    "id",
    "CheckID",
    "Address",
    "Port",
    "Tags",
    "Meta",
    "Weights",
    "Passing",
    "Warning",
    "Check",
    "Checks",
    "TTL",
    "ttl",
    "Interval",
    "interval",
    "Timeout",
    "HTTP",
    "http",
    "TCP",
    "UDP",
    "GRPC",
    "H2PING",
    "args",
    "ScriptArgs",
    "AliasService",
    "AliasNode",
    "Status",
    "Header",
    "Method",
    "DockerContainerID",
    "OSService",
    "OutputMaxSize",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "DeregisterCriticalServiceAfter",
    "Kind",
    "Proxy",
    "Connect",
    "SidecarService",
    "sidecar_service",
    "Native",
    "Upstreams",
    "DestinationName",
    "DestinationServiceName",
    "LocalBindPort",
    "Expose",
    "Paths",
    "ListenerPort",
    "Config",
    "TaggedAddresses",
    "lan_ipv4",
    "Namespace",
    "SocketPath",
    "ServiceID",
    "Token",
    "bogus",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        prop_oneof![
            Just("10s".to_string()),
            Just("-1s".to_string()),
            Just("1.5h".to_string()),
            Just("passing".to_string()),
            Just("connect-proxy".to_string()),
            Just("mesh-gateway".to_string()),
            Just("http://127.0.0.1:1/".to_string()),
            Just("127.0.0.1:1".to_string()),
            Just("0.0.0.0".to_string()),
            Just("::1".to_string()),
            "\\PC{0,12}",
        ]
        .prop_map(Value::String),
    ]
}

fn json_ish() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_never_panics(body in json_ish()) {
        match service(&body) {
            Ok(def) => {
                for c in &def.checks {
                    let _ = check_row(c, "n", Some(&def.service));
                }
                prop_assert!(!def.service.id.is_empty());
            }
            Err(e) => prop_assert!(e.status == 400 || e.status == 500, "{e:?}"),
        }
        match check(&body) {
            Ok(def) => {
                let _ = check_row(&def, "n", None);
                prop_assert!(!def.id.is_empty());
            }
            Err(e) => prop_assert_eq!(e.status, 400),
        }
    }

    /// A service wrapped around random check bodies, so check fields get exercised deeply.
    #[test]
    fn random_checks_never_panic(check_body in json_ish(), sidecar in json_ish()) {
        let body = serde_json::json!({"Name": "web", "Port": 1, "Checks": [check_body.clone()],
            "Connect": {"SidecarService": sidecar}});
        let _ = service(&body);
        let _ = check(&check_body);
    }
}
