//! `check_row`: the catalog row of a definition, `Definition` JSON as Consul writes it.

use std::time::Duration;

use lotse_core::catalog::CheckStatus;
use serde_json::json;

use super::{chk, svc};
use crate::definition::decode::{check_row, go_duration_string, parse_go_duration};

#[test]
fn http_service_check_row_carries_type_durations_and_definition() {
    let def = svc(json!({"Name": "web", "ID": "w1", "Tags": ["a"], "Check": {
        "HTTP": "http://127.0.0.1:8080/health", "Interval": "10s", "Timeout": "1s",
        "Header": {"X-A": ["1"]}, "TLSSkipVerify": true, "Status": "passing",
        "DeregisterCriticalServiceAfter": "90s", "Notes": "n"}}));
    let row = check_row(&def.checks[0], "node1", Some(&def.service));
    assert_eq!(
        (row.node.as_str(), row.check_id.as_str()),
        ("node1", "service:w1")
    );
    assert_eq!(
        (row.name.as_str(), row.notes.as_str()),
        ("Service 'web' check", "n")
    );
    assert_eq!(
        (row.status, row.check_type.as_str()),
        (CheckStatus::Passing, "http")
    );
    assert_eq!((row.interval.as_str(), row.timeout.as_str()), ("10s", "1s"));
    assert_eq!(
        (row.service_id.as_str(), row.service_name.as_str()),
        ("w1", "web")
    );
    assert_eq!(row.service_tags, ["a"]);
    assert_eq!((row.output.as_str(), row.exposed_port), ("", 0));
    // Go's field order: MarshalJSON's duration fields first, then the struct's.
    assert_eq!(
        row.definition_json,
        concat!(
            r#"{"Interval":"10s","Timeout":"1s","DeregisterCriticalServiceAfter":"1m30s","#,
            r#""HTTP":"http://127.0.0.1:8080/health","TLSSkipVerify":true,"#,
            r#""Header":{"X-A":["1"]},"Method":"GET"}"#
        )
    );
}

#[test]
fn ttl_row_has_no_interval_and_a_nanosecond_ttl_in_its_definition() {
    let def = chk(json!({"Name": "mem", "TTL": "30s", "ServiceID": "web", "OutputMaxSize": 100}));
    let row = check_row(&def, "n", None);
    assert_eq!(
        (row.check_id.as_str(), row.check_type.as_str()),
        ("mem", "ttl")
    );
    assert_eq!((row.interval.as_str(), row.timeout.as_str()), ("", ""));
    assert_eq!(
        (row.service_id.as_str(), row.service_name.as_str()),
        ("web", "")
    );
    assert_eq!(row.status, CheckStatus::Critical);
    // Consul's MarshalJSON renders TTL as Go's default: a number of nanoseconds.
    assert_eq!(
        row.definition_json,
        r#"{"OutputMaxSize":100,"TTL":30000000000}"#
    );
}

#[test]
fn every_kind_fills_its_definition_fields() {
    let cases = [
        (
            json!({"TCP": "h:1", "Interval": "1m30s"}),
            "tcp",
            r#"{"Interval":"1m30s","TCP":"h:1"}"#,
        ),
        (
            json!({"UDP": "h:1", "Interval": "1h"}),
            "udp",
            r#"{"Interval":"1h0m0s","UDP":"h:1"}"#,
        ),
        (
            json!({"Args": ["a", "b"], "Interval": "500ms"}),
            "script",
            r#"{"Interval":"1s","ScriptArgs":["a","b"]}"#,
        ),
        (
            json!({"GRPC": "h:1/s", "GRPCUseTLS": true, "Interval": "1s"}),
            "grpc",
            r#"{"Interval":"1s","GRPC":"h:1/s","GRPCUseTLS":true}"#,
        ),
        (
            json!({"H2PING": "h:1", "Interval": "1s"}),
            "h2ping",
            r#"{"Interval":"1s","H2PING":"h:1","H2PingUseTLS":true}"#,
        ),
        (
            json!({"AliasNode": "n2", "AliasService": "db"}),
            "alias",
            r#"{"AliasNode":"n2","AliasService":"db"}"#,
        ),
        (
            json!({"HTTP": "https://h", "Method": "PUT", "Body": "{}", "DisableRedirects": true,
                "TLSServerName": "sni", "Interval": "2s"}),
            "http",
            r#"{"Interval":"2s","HTTP":"https://h","TLSServerName":"sni","Method":"PUT","Body":"{}","DisableRedirects":true}"#,
        ),
    ];
    for (check, kind, definition) in cases {
        let mut body = check.clone();
        body["Name"] = json!("c");
        let row = check_row(&chk(body), "n", None);
        assert_eq!(row.check_type, kind, "{check}");
        assert_eq!(row.definition_json, definition, "{check}");
        let parsed: serde_json::Value =
            serde_json::from_str(&row.definition_json).unwrap_or_default();
        assert!(parsed.is_object());
    }
}

#[test]
fn public_duration_helpers_are_gos() {
    assert_eq!(go_duration_string(Duration::from_secs(10)), "10s");
    assert_eq!(go_duration_string(Duration::from_secs(90)), "1m30s");
    assert_eq!(go_duration_string(Duration::from_secs(3600)), "1h0m0s");
    assert_eq!(go_duration_string(Duration::from_millis(500)), "500ms");
    assert_eq!(go_duration_string(Duration::ZERO), "0s");
    assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
    assert!(parse_go_duration("10").is_err());
}
