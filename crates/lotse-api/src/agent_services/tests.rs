use std::collections::BTreeMap;

use lotse_core::catalog::{Service, ServiceAddress, Weights};
use serde_json::{json, Value};

use super::json::{fnv1a_64, shape, with_content_hash};
use crate::catalog_json::agent_service;

fn web() -> Service {
    Service {
        id: "web1".into(),
        name: "web".into(),
        tags: vec!["v1".into()],
        address: "10.0.0.5".into(),
        tagged_addresses: BTreeMap::from([(
            "lan_ipv4".to_string(),
            ServiceAddress {
                address: "10.0.0.5".into(),
                port: 8080,
            },
        )]),
        meta: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        port: 8080,
        weights: Weights {
            passing: 3,
            warning: 1,
        },
        ..Service::default()
    }
}

#[test]
fn the_agent_view_of_a_service_has_consuls_fields() {
    let v = serde_json::to_value(agent_service(&web(), "dc1")).unwrap();
    assert_eq!(
        v,
        json!({
            "ID": "web1", "Service": "web", "Tags": ["v1"], "Meta": {"env": "prod"},
            "Port": 8080, "Address": "10.0.0.5",
            "TaggedAddresses": {"lan_ipv4": {"Address": "10.0.0.5", "Port": 8080}},
            "Weights": {"Passing": 3, "Warning": 1},
            "EnableTagOverride": false, "Datacenter": "dc1"
        })
    );
    let bare = Service {
        id: "x".into(),
        name: "x".into(),
        ..Service::default()
    };
    let v = serde_json::to_value(agent_service(&bare, "dc1")).unwrap();
    assert_eq!(
        (&v["Tags"], &v["Meta"], &v["Port"]),
        (&json!([]), &json!({}), &json!(0))
    );
}

#[test]
fn the_content_hash_is_stable_and_moves_with_the_definition() {
    let (one, two) = (web(), web());
    let a = with_content_hash(agent_service(&one, "dc1"));
    let b = with_content_hash(agent_service(&two, "dc1"));
    let h = a.content_hash.clone().unwrap();
    assert_eq!(Some(h.clone()), b.content_hash);
    assert!(h.chars().all(|c| c.is_ascii_hexdigit()), "{h}");
    // Hashing a view that already has a hash gives the same hash (it is left out).
    assert_eq!(with_content_hash(a).content_hash, Some(h.clone()));

    let mut changed = web();
    changed.tags.push("v2".into());
    let c = with_content_hash(agent_service(&changed, "dc1"));
    assert_ne!(c.content_hash, Some(h.clone()));
    let v = serde_json::to_value(&c).unwrap();
    assert!(v["ContentHash"].is_string());
    // FNV-1a 64 reference values.
    assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
    assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
}

#[test]
fn the_filter_shape_accepts_consuls_selectors() {
    let s = shape();
    for expr in [
        "Service == web",
        "v1 in Tags",
        "Meta.env == prod",
        "Port == 8080",
        "TaggedAddresses.lan_ipv4.Port == 8080",
        "Weights.Passing == 3",
        "EnableTagOverride == false",
        "Proxy.DestinationServiceName == web",
        "Proxy.Upstreams.DestinationName == db",
        "Connect.Native == true",
        "Kind == \"\"",
        "PeerName == \"\"",
    ] {
        crate::filter::Filter::parse(expr, &s).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
    // `bexpr:"-"` fields of api.AgentService are not selectable.
    assert!(crate::filter::Filter::parse("Datacenter == dc1", &s).is_err());
    assert!(crate::filter::Filter::parse("SocketPath == x", &s).is_err());
    let f = crate::filter::Filter::parse("Meta.env == prod and Port == 8080", &s).unwrap();
    let v: Value = serde_json::to_value(agent_service(&web(), "dc1")).unwrap();
    assert!(f.matches(&v));
}

#[test]
fn agent_lists_keep_the_rows_the_filter_matches_under_their_keys() {
    use crate::params::Params;
    let (web, mut db) = (web(), web());
    db.id = "db1".into();
    db.meta = BTreeMap::from([("env".to_string(), "qa".to_string())]);
    let rows = || {
        [&web, &db]
            .into_iter()
            .map(|s| (s.id.as_str(), agent_service(s, "dc1")))
    };
    let q = |query: &str| Params::from_query(query).unwrap();
    let kept = super::keyed(&q("filter=Meta.env == qa"), &shape(), rows()).unwrap();
    assert_eq!(kept.keys().copied().collect::<Vec<_>>(), ["db1"]);
    let all = super::keyed(&q(""), &shape(), rows()).unwrap();
    assert_eq!(all.keys().copied().collect::<Vec<_>>(), ["db1", "web1"]);
    let e = super::keyed(&q("filter=Meta.env =="), &shape(), rows()).unwrap_err();
    assert_eq!(e.status.as_u16(), 400);
    assert!(e
        .reason
        .starts_with("Failed to create boolean expression evaluator: "));
}
