//! Decode errors: unknown fields, wrong JSON types, Consul Enterprise keys.

use serde_json::{json, Value};

use super::{chk_err, svc, svc_err};

fn decode_failed(body: Value, want: &str) {
    let want = format!("Request decode failed: {want}");
    assert_eq!(svc_err(body.clone()), (400, want), "{body}");
}

#[test]
fn unknown_fields_are_refused_where_consul_refuses_them() {
    decode_failed(
        json!({"Name": "web", "Foo": 1}),
        r#"json: unknown field "Foo""#,
    );
    // Consul has no such service field (py-consul sends `id`); Service is Name's catalog name.
    decode_failed(
        json!({"Name": "web", "service_id": "w"}),
        r#"json: unknown field "service_id""#,
    );
    decode_failed(
        json!({"Service": "web"}),
        r#"json: unknown field "Service""#,
    );
    decode_failed(
        json!({"Name": "web", "Check": {"TTL": "1s", "Bogus": true}}),
        r#"json: unknown field "Bogus""#,
    );
    // The pre-1.0 `script` string (py-consul's docker and legacy helpers still send it).
    decode_failed(
        json!({"Name": "web", "Check": {"script": "x", "interval": "1s"}}),
        r#"json: unknown field "script""#,
    );
    decode_failed(
        json!({"Name": "web", "Checks": [{"TTL": "1s", "Token": "t"}]}),
        r#"json: unknown field "Token""#,
    );
    decode_failed(
        json!({"Name": "web", "Proxy": {"Nope": 1}}),
        r#"json: unknown field "Nope""#,
    );
    decode_failed(
        json!({"Name": "web", "Proxy": {"Upstreams": [{"Nope": 1}]}}),
        r#"json: unknown field "Nope""#,
    );
    decode_failed(
        json!({"Name": "web", "Weights": {"Passing": 1, "Critical": 1}}),
        r#"json: unknown field "Critical""#,
    );
    decode_failed(
        json!({"Name": "web", "TaggedAddresses": {"lan": {"Addr": "x"}}}),
        r#"json: unknown field "Addr""#,
    );
    decode_failed(
        json!({"Name": "web", "Connect": {"SidecarService": {"Nope": 1}}}),
        r#"json: unknown field "Nope""#,
    );
    assert_eq!(
        chk_err(json!({"Name": "c", "TTL": "1s", "ProxyHTTP": "x"})).1,
        "Request decode failed: json: unknown field \"ProxyHTTP\""
    );
    // Consul decodes Connect leniently: unknown keys there are dropped.
    assert_eq!(
        svc(json!({"Name": "web", "Connect": {"Nope": 1}}))
            .service
            .connect_json,
        ""
    );
    // Free-form maps take anything.
    svc(
        json!({"Name": "p", "Kind": "connect-proxy", "Port": 1, "Proxy": {
        "DestinationServiceName": "web", "Config": {"Any_Thing": [1, {"x": null}]}}}),
    );
}

#[test]
fn enterprise_keys_are_refused_when_set() {
    decode_failed(
        json!({"Name": "web", "Namespace": "team"}),
        r#"json: unknown field "Namespace" - Namespaces are a Consul Enterprise feature"#,
    );
    decode_failed(
        json!({"Name": "web", "partition": "p"}),
        r#"json: unknown field "partition" - Partitions are a Consul Enterprise feature"#,
    );
    let want = r#"Request decode failed: json: unknown field "Namespace" - Namespaces are a Consul Enterprise feature"#;
    assert_eq!(
        chk_err(json!({"Name": "c", "TTL": "1s", "Namespace": "x"})).1,
        want
    );
    // Not a CheckType field at all.
    decode_failed(
        json!({"Name": "web", "Check": {"TTL": "1s", "Namespace": ""}}),
        r#"json: unknown field "Namespace""#,
    );
}

#[test]
fn wrong_json_types_are_gos_unmarshal_errors() {
    let field = |f: &str, what: &str, ty: &str| {
        format!("json: cannot unmarshal {what} into Go struct field {f} of type {ty}")
    };
    let cases = [
        (
            json!({"Name": 1}),
            field("ServiceDefinition.Name", "number", "string"),
        ),
        (
            json!({"Name": "w", "Port": "80"}),
            field("ServiceDefinition.Port", "string", "int"),
        ),
        (
            json!({"Name": "w", "Port": 1.5}),
            field("ServiceDefinition.Port", "number 1.5", "int"),
        ),
        (
            json!({"Name": "w", "Tags": "a"}),
            field("ServiceDefinition.Tags", "string", "[]string"),
        ),
        (
            json!({"Name": "w", "Tags": [1]}),
            field("ServiceDefinition.Tags", "number", "string"),
        ),
        (
            json!({"Name": "w", "Meta": {"k": 1}}),
            field("ServiceDefinition.Meta", "number", "string"),
        ),
        (
            json!({"Name": "w", "Meta": []}),
            field("ServiceDefinition.Meta", "array", "map[string]string"),
        ),
        (
            json!({"Name": "w", "EnableTagOverride": "true"}),
            field("ServiceDefinition.EnableTagOverride", "string", "bool"),
        ),
        (
            json!({"Name": "w", "Check": []}),
            field("ServiceDefinition.Check", "array", "structs.CheckType"),
        ),
        (
            json!({"Name": "w", "Checks": {}}),
            field("ServiceDefinition.Checks", "object", "structs.CheckTypes"),
        ),
        (
            json!({"Name": "w", "Checks": ["x"]}),
            field("ServiceDefinition.Checks", "string", "structs.CheckType"),
        ),
        (
            json!({"Name": "w", "Weights": {"Passing": "1"}}),
            field("Weights.Passing", "string", "int"),
        ),
        (
            json!({"Name": "w", "TaggedAddresses": {"lan": "1.2.3.4"}}),
            field(
                "ServiceDefinition.TaggedAddresses",
                "string",
                "structs.ServiceAddress",
            ),
        ),
        (
            json!({"Name": "w", "Check": {"Interval": [1]}}),
            field("CheckType.Interval", "array", "time.Duration"),
        ),
        (
            json!({"Name": "w", "Check": {"Header": {"a": "b"}}}),
            field("CheckType.Header", "string", "[]string"),
        ),
        (
            json!({"Name": "w", "Check": {"TLSSkipVerify": 1}}),
            field("CheckType.TLSSkipVerify", "number", "bool"),
        ),
        (
            json!({"Name": "w", "Proxy": {"Config": "x"}}),
            field(
                "ConnectProxyConfig.Config",
                "string",
                "map[string]interface {}",
            ),
        ),
        (
            json!({"Name": "w", "Proxy": {"LocalServicePort": "1"}}),
            field("ConnectProxyConfig.LocalServicePort", "string", "int"),
        ),
        (
            json!({"Name": "w", "Namespace": 1}),
            field("ServiceDefinition.Namespace", "number", "string"),
        ),
    ];
    for (body, want) in cases {
        decode_failed(body, &want);
    }
    decode_failed(
        json!([]),
        "json: cannot unmarshal array into Go value of type structs.ServiceDefinition",
    );
    decode_failed(
        json!("web"),
        "json: cannot unmarshal string into Go value of type structs.ServiceDefinition",
    );
    let want = "Request decode failed: json: cannot unmarshal number into Go value of type structs.CheckDefinition";
    assert_eq!(chk_err(json!(1)).1, want);
    // Go's zero value for a null inside a list: an empty string.
    assert_eq!(
        svc(json!({"Name": "w", "Tags": ["a", null]})).service.tags,
        ["a", ""]
    );
}
