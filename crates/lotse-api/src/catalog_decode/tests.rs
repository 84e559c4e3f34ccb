//! Request decoding as Go's `encoding/json` with `DisallowUnknownFields` does it.

use super::*;
use serde_json::json;

fn reg(v: Value) -> Result<RegisterBody, String> {
    register(&v)
}

#[test]
fn keys_match_ignoring_case() {
    let b = reg(json!({
        "node": "n1",
        "ADDRESS": "10.0.0.1",
        "nodemeta": {"rack": "r1"},
        "Service": {"service": "web", "port": 80, "tags": ["a"]},
        "check": {"name": "c", "status": "passing"},
    }))
    .unwrap();
    assert_eq!(b.node.name, "n1");
    assert_eq!(b.node.address, "10.0.0.1");
    assert_eq!(b.node.meta["rack"], "r1");
    let s = b.service.unwrap().service;
    assert_eq!((s.name.as_str(), s.port, s.tags.len()), ("web", 80, 1));
    assert_eq!(b.checks.len(), 1);
    assert_eq!(b.checks[0].status, "passing");
}

#[test]
fn unknown_fields_are_refused_at_any_depth() {
    assert_eq!(
        reg(json!({"Node": "n1", "Bogus": 1})).unwrap_err(),
        r#"json: unknown field "Bogus""#
    );
    assert_eq!(
        reg(json!({"Node": "n1", "Service": {"Service": "w", "Name": "w"}})).unwrap_err(),
        r#"json: unknown field "Name""#
    );
    assert_eq!(
        reworded(reg(json!({"Node": "n1", "Namespace": "x"})).unwrap_err()),
        r#"json: unknown field "Namespace" - Namespaces are a Consul Enterprise feature"#
    );
    // Token and the raft indexes are fields of the request.
    assert!(reg(json!({"Node": "n1", "Token": "t", "ModifyIndex": 3})).is_ok());
}

fn reworded(e: String) -> String {
    reword_enterprise(e)
}

#[test]
fn wrong_types_are_gos_unmarshal_errors() {
    assert_eq!(
        reg(json!({"Node": 3})).unwrap_err(),
        "json: cannot unmarshal number into Go struct field RegisterRequest.Node of type string"
    );
    assert_eq!(
        reg(json!({"Node": "n", "Service": {"Port": "80"}})).unwrap_err(),
        "json: cannot unmarshal string into Go struct field NodeService.Service.Port of type int"
    );
    assert_eq!(
        register(&json!([1])).unwrap_err(),
        "json: cannot unmarshal array into Go value of type structs.RegisterRequest"
    );
}

#[test]
fn check_and_checks_are_folded_in_that_order() {
    let b = reg(json!({
        "Node": "n1",
        "Check": {"CheckID": "first"},
        "Checks": [{"CheckID": "second"}, null, {"CheckID": "third"}],
    }))
    .unwrap();
    let ids: Vec<&str> = b.checks.iter().map(|c| c.check.check_id.as_str()).collect();
    assert_eq!(ids, ["first", "second", "third"]);
}

#[test]
fn invalid_weights_become_the_defaults() {
    let w = |v: Value| {
        reg(json!({"Node": "n", "Service": {"Service": "s", "Weights": v}}))
            .unwrap()
            .service
            .unwrap()
            .service
            .weights
    };
    assert_eq!(w(json!({"Passing": 3, "Warning": 2})).passing, 3);
    assert_eq!(w(json!({"Passing": 0, "Warning": 2})).passing, 1);
    assert_eq!(w(json!({"Passing": 2, "Warning": -1})).warning, 1);
    assert_eq!(w(Value::Null).passing, 1);
}

#[test]
fn a_definition_is_stored_in_go_order_and_names_the_check_type() {
    let b = reg(json!({
        "Node": "n",
        "Check": {"CheckID": "c", "Definition": {
            "HTTP": "http://x/health", "Interval": "10s", "Timeout": 1_000_000_000u64,
            "TTL": "0s", "Unknown": "ignored (Definition decodes leniently)"
        }},
    }))
    .unwrap();
    let c = &b.checks[0];
    assert_eq!(
        c.check.definition_json,
        r#"{"Interval":"10s","Timeout":"1s","HTTP":"http://x/health"}"#
    );
    assert_eq!(c.definition.check_type(), "http");
    let ttl = definition(&GoObject::root(&json!({"TTL": "30s"}), "D", "D").unwrap()).unwrap();
    assert_eq!(ttl.to_text(), r#"{"TTL":30000000000}"#);
    assert_eq!(ttl.check_type(), "ttl");
    let bad = reg(json!({"Node": "n", "Check": {"Definition": {"Interval": "10"}}}));
    assert_eq!(bad.unwrap_err(), r#"time: missing unit in duration "10""#);
}

#[test]
fn a_proxy_takes_snake_case_aliases_and_is_stored_canonical() {
    let b = reg(json!({"Node": "n", "Service": {
        "Service": "web-proxy", "Kind": "connect-proxy", "Port": 21000,
        "Proxy": {"destination_service_name": "web", "LocalServicePort": 8080,
                  "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191}]},
    }}))
    .unwrap();
    let s = b.service.unwrap().service;
    assert_eq!(
        s.proxy_json,
        concat!(
            r#"{"DestinationServiceName":"web","LocalServicePort":8080,"Mode":"","#,
            r#""Upstreams":[{"DestinationName":"db","LocalBindPort":9191}],"#,
            r#""MeshGateway":{},"Expose":{}}"#
        )
    );
    let zero = reg(json!({"Node": "n", "Service": {"Service": "w", "Proxy": {"Mode": ""}}}));
    assert_eq!(zero.unwrap().service.unwrap().service.proxy_json, "");
    let bad = reg(json!({"Node": "n", "Service": {"Service": "w", "Proxy": {"Nope": 1}}}));
    assert_eq!(bad.unwrap_err(), r#"json: unknown field "Nope""#);
}

#[test]
fn connect_decodes_leniently() {
    let b = reg(json!({"Node": "n", "Service": {
        "Service": "w", "Connect": {"Native": true, "Whatever": 1}
    }}))
    .unwrap();
    assert_eq!(
        b.service.unwrap().service.connect_json,
        r#"{"Native":true}"#
    );
}

#[test]
fn deregister_tolerates_the_obsolete_address() {
    let [dc, node, sid, cid, _] =
        deregister(&json!({"node": "n1", "ServiceID": "web1", "Address": "x"})).unwrap();
    assert_eq!(
        (dc.as_str(), node.as_str(), sid.as_str(), cid.as_str()),
        ("", "n1", "web1", "")
    );
    assert_eq!(
        deregister(&json!({"Node": "n1", "Service": "x"})).unwrap_err(),
        r#"json: unknown field "Service""#
    );
}
