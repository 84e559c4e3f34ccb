//! Every refusal, with Consul's text, and the order Consul checks them in.

use serde_json::{json, Value};

use super::{chk_err, svc_err};

fn bad(body: Value, want: &str) {
    assert_eq!(svc_err(body.clone()), (400, want.to_string()), "{body}");
}

fn one_error(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

fn with_check(check: Value) -> Value {
    json!({"Name": "web", "Check": check})
}

#[test]
fn service_refusals_have_consuls_texts() {
    bad(json!({}), "Missing service name");
    bad(json!(null), "Missing service name");
    for any in ["0.0.0.0", "::", "[::]"] {
        bad(
            json!({"Name": "web", "Address": any}),
            "Invalid service address",
        );
    }
    let weights = [
        (json!({}), "Passing must be greater than 0"),
        (
            json!({"Passing": 0, "Warning": 1}),
            "Passing must be greater than 0",
        ),
        (
            json!({"Passing": 1, "Warning": -1}),
            "Warning must be greater or equal than 0",
        ),
        (
            json!({"Passing": 65536, "Warning": 1}),
            "DNS Weight must be between 0 and 65535",
        ),
        (
            json!({"Passing": 1, "Warning": 65536}),
            "DNS Weight must be between 0 and 65535",
        ),
    ];
    for (w, msg) in weights {
        bad(
            json!({"Name": "web", "Weights": w}),
            &format!("Invalid Weights: {msg}"),
        );
    }
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(513);
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let meta = [
        (json!({"a b": "v"}), "Couldn't load metadata pair ('a b', 'v'): Key contains invalid characters".to_string()),
        (json!({"": "v"}), "Couldn't load metadata pair ('', 'v'): Key cannot be blank".into()),
        (json!({&long_key: "v"}), format!("Couldn't load metadata pair ('{long_key}', 'v'): Key is too long (limit: 128 characters)")),
        (json!({"consul-x": "v"}), "Couldn't load metadata pair ('consul-x', 'v'): Key prefix 'consul-' is reserved for internal use".into()),
        (json!({"k": &long_value}), format!("Couldn't load metadata pair ('k', '{long_value}'): Value is too long (limit: 512 characters)")),
        (Value::Object(many), "Node metadata cannot contain more than 64 key/value pairs".into()),
    ];
    for (m, msg) in meta {
        bad(
            json!({"Name": "web", "Meta": m}),
            &format!("Invalid Service Meta: {msg}"),
        );
    }
}

#[test]
fn connect_validation_refusals_are_multierror_texts() {
    let failed = |body: Value, errors: &[&str]| {
        let text = match errors {
            [one] => one_error(one),
            many => format!(
                "{} errors occurred:\n\t{}\n\n",
                many.len(),
                many.iter()
                    .map(|e| format!("* {e}"))
                    .collect::<Vec<_>>()
                    .join("\n\t")
            ),
        };
        bad(body, &format!("Validation failed: {text}"));
    };
    failed(
        json!({"Name": "p", "Kind": "connect-proxy"}),
        &[
            "Port or SocketPath must be set for a connect-proxy",
            "Proxy.DestinationServiceName must be non-empty for Connect proxy services",
        ],
    );
    failed(
        json!({"Name": "p", "Kind": "connect-proxy", "Port": 1,
               "Proxy": {"DestinationServiceName": "*"}, "Connect": {"Native": true}}),
        &[
            "Proxy.DestinationServiceName must not be a wildcard for Connect proxy services",
            "A Proxy cannot also be Connect Native, only typical services",
        ],
    );
    let proxy = |upstreams: Value| {
        json!({"Name": "p", "Kind": "connect-proxy", "Port": 1,
               "Proxy": {"DestinationServiceName": "web", "Upstreams": upstreams}})
    };
    let upstream_cases = [
        (json!([{"DestinationType": "x", "DestinationName": "db", "LocalBindPort": 1}]), "unknown upstream destination type: \"x\""),
        (json!([{"LocalBindPort": 1}]), "upstream destination name cannot be empty"),
        (json!([{"DestinationName": "*", "LocalBindPort": 1}]), "upstream destination name cannot be a wildcard"),
        (json!([{"DestinationName": "db", "DestinationPeer": "p", "Datacenter": "dc2", "LocalBindPort": 1}]), "upstream cannot specify both destination peer and datacenter"),
        (json!([{"DestinationName": "db"}]), "upstream local bind port or local socket path must be defined and nonzero"),
        (json!([{"DestinationName": "db", "LocalBindPort": 1, "LocalBindSocketPath": "/s"}]), "only one of upstream local bind port or local socket path can be defined and nonzero"),
        (json!([{"DestinationName": "db", "LocalBindPort": 1}, {"DestinationName": "db", "LocalBindPort": 2}]),
         "upstreams cannot contain duplicates of [type=\"service\", name=\"db\", partition=\"\", namespace=\"\", peer=\"\", datacenter=\"\"]"),
        (json!([{"DestinationName": "a", "LocalBindPort": 1}, {"DestinationName": "b", "LocalBindPort": 1}]),
         "upstreams cannot contain duplicates by local bind address and port or unix path; \"127.0.0.1:1\" is specified twice"),
        (json!([{"DestinationName": "a", "LocalBindPort": 1, "DestinationPartition": "p", "Datacenter": "dc2"}]), "upstreams cannot target another datacenter in non default partition"),
    ];
    for (upstreams, msg) in upstream_cases {
        failed(proxy(upstreams), &[msg]);
    }
    failed(
        json!({"Name": "p", "Kind": "connect-proxy", "Port": 1, "Proxy": {"DestinationServiceName": "web",
               "Expose": {"Paths": [{"ListenerPort": 0, "Protocol": "GRPC"}]}}}),
        &[
            "expose.paths: empty path exposed",
            "expose.paths: invalid listener port: 0",
            "protocol 'grpc' not supported for path: , must be in: [http http2]",
        ],
    );
    failed(
        json!({"Name": "gw", "Kind": "mesh-gateway"}),
        &["Port must be non-zero for a mesh-gateway"],
    );
    failed(
        json!({"Name": "gw", "Kind": "terminating-gateway", "Port": 1, "Connect": {"SidecarService": {}},
               "Proxy": {"DestinationServiceName": "x", "LocalServicePort": 1, "Upstreams": [{}]}}),
        &[
            "A terminating-gateway cannot have a sidecar service defined",
            "The Proxy.DestinationServiceName configuration is invalid for a terminating-gateway",
            "The Proxy.LocalServicePort configuration is invalid for a terminating-gateway",
            "The Proxy.Upstreams configuration is invalid for a terminating-gateway",
        ],
    );
    failed(
        json!({"Name": "web", "Connect": {"SidecarService": {"ID": "x", "Connect": {"SidecarService": {}}}}}),
        &[
            "A SidecarService cannot specify an ID as this is managed by the agent",
            "A SidecarService cannot have a nested SidecarService",
        ],
    );
    failed(
        json!({"Name": "web", "Connect": {"Native": true}}),
        &["Port or SocketPath must be set for a Connect native service."],
    );
    // An ingress gateway needs no port; a socket path stands for a port.
    svc_ok(json!({"Name": "ig", "Kind": "ingress-gateway"}));
    svc_ok(json!({"Name": "web", "SocketPath": "/s", "Connect": {"Native": true}}));
}

fn svc_ok(body: Value) {
    super::svc(body);
}

#[test]
fn check_refusals_have_consuls_texts_in_validate_order() {
    let cases = [
        (
            json!({"TTL": "1s", "Interval": "1s"}),
            "Interval and TTL cannot both be specified",
        ),
        (
            json!({"HTTP": "http://h/"}),
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        (
            json!({"TCP": "h:1", "Interval": "-1s"}),
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        (
            json!({"TCP": "h:1", "Interval": "1s", "AliasService": "db"}),
            "Interval cannot be set for Alias checks",
        ),
        (
            json!({"AliasNode": "n", "TTL": "1s"}),
            "TTL must be not be set for Alias checks",
        ),
        (json!({"Name": "nothing"}), "TTL must be > 0 for TTL checks"),
        (
            json!({"TTL": "1s", "OutputMaxSize": -1}),
            "MaxOutputMaxSize must be positive",
        ),
        (
            json!({"TTL": "1s", "FailuresBeforeWarning": 2, "FailuresBeforeCritical": 1}),
            "FailuresBeforeWarning can't be higher than FailuresBeforeCritical",
        ),
        // Lotse's own refusals (Consul would register these and fail every probe).
        (
            json!({"Args": ["x"], "DockerContainerID": "c", "Interval": "1s"}),
            "Docker checks are not supported by Lotse",
        ),
        (
            json!({"OSService": "sshd", "Interval": "1s"}),
            "OSService checks are not supported by Lotse",
        ),
        (
            json!({"HTTP": "localhost:8080/health", "Interval": "1s"}),
            "HTTP URL localhost:8080/health is invalid",
        ),
        (
            json!({"HTTP": "ftp://h/", "Interval": "1s"}),
            "HTTP URL ftp://h/ is invalid",
        ),
        (
            json!({"HTTP": "http:///path", "Interval": "1s"}),
            "HTTP URL http:///path is invalid",
        ),
        (
            json!({"HTTP": "http://h:port/", "Interval": "1s"}),
            "HTTP URL http://h:port/ is invalid",
        ),
        (
            json!({"TCP": "localhost", "Interval": "1s"}),
            "TCP address localhost is invalid",
        ),
        (
            json!({"TCP": "::1:80", "Interval": "1s"}),
            "TCP address ::1:80 is invalid",
        ),
        (
            json!({"TCP": "h:http", "Interval": "1s"}),
            "TCP address h:http is invalid",
        ),
        (
            json!({"TCP": "h:70000", "Interval": "1s"}),
            "TCP address h:70000 is invalid",
        ),
        (
            json!({"UDP": "h", "Interval": "1s"}),
            "UDP address h is invalid",
        ),
        (
            json!({"H2PING": "h:+1", "Interval": "1s"}),
            "H2PING address h:+1 is invalid",
        ),
    ];
    for (check, msg) in cases {
        bad(with_check(check.clone()), &format!("Invalid check: {msg}"));
        let mut registered = check.clone();
        registered["Name"] = json!("c");
        assert_eq!(
            chk_err(registered).1,
            format!("Invalid check: {msg}"),
            "{check}"
        );
    }
    // Checks[] entries are validated even when empty (only Check may be empty).
    bad(
        json!({"Name": "web", "Checks": [{}]}),
        "Invalid check: TTL must be > 0 for TTL checks",
    );
    bad(
        json!({"Name": "web", "Checks": [null]}),
        "Invalid check: TTL must be > 0 for TTL checks",
    );
    let status = "Status for checks must 'passing', 'warning', 'critical'";
    bad(with_check(json!({"TTL": "1s", "Status": "ok"})), status);
    bad(
        with_check(json!({"TTL": "1s", "Status": "Passing"})),
        status,
    );
}

#[test]
fn sidecar_refusals_have_consuls_texts() {
    let sidecar =
        |sc: Value| json!({"Name": "web", "Port": 1111, "Connect": {"SidecarService": sc}});
    bad(
        sidecar(json!({"check": {"TCP": "foo"}})),
        "Invalid check in sidecar_service: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
    );
    bad(
        sidecar(json!({"checks": [{"TCP": "foo"}]})),
        "Invalid check in sidecar_service: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
    );
    bad(
        sidecar(json!({"check": {"TCP": "h:1", "Interval": 10, "Status": "unsupported-status"}})),
        "Status for checks must 'passing', 'warning', 'critical'",
    );
    bad(
        sidecar(json!({"Meta": {"consul-x": "1"}})),
        "Invalid SidecarService: Couldn't load metadata pair ('consul-x', '1'): Key prefix 'consul-' is reserved for internal use",
    );
    let (status, msg) = svc_err(sidecar(json!({"Kind": "mesh-gateway"})));
    assert_eq!(status, 400);
    let want =
        "Failed Validation: 5 errors occurred:\n\t* Port must be non-zero for a mesh-gateway\n\t* \
                The Proxy.DestinationServiceName configuration is invalid for a mesh-gateway\n";
    assert!(msg.starts_with(want), "{msg}");
}

#[test]
fn tagged_address_refusals_are_500s_as_in_consuls_add_service() {
    for (key, addr, family) in [
        ("lan_ipv4", "::1", "ipv4"),
        ("wan_ipv4", "h", "ipv4"),
        ("lan_ipv6", "10.0.0.1", "ipv6"),
    ] {
        let body = json!({"Name": "web", "TaggedAddresses": {key: {"Address": addr}}});
        let want = format!("Service tagged address \"{key}\" must be a valid {family} address");
        assert_eq!(svc_err(body), (500, want));
    }
    let body = json!({"Name": "web", "Connect": {"SidecarService": {
        "TaggedAddresses": {"lan_ipv4": {"Address": "x"}}}}});
    assert_eq!(svc_err(body).0, 500);
}

#[test]
fn refusals_come_in_consuls_order() {
    bad(json!({"Address": "0.0.0.0", "Port": "x"}),
        "Request decode failed: json: cannot unmarshal string into Go struct field ServiceDefinition.Port of type int");
    bad(
        json!({"Address": "0.0.0.0", "Weights": {}}),
        "Missing service name",
    );
    bad(
        json!({"Name": "w", "Address": "0.0.0.0", "Weights": {}}),
        "Invalid service address",
    );
    bad(
        json!({"Name": "w", "Weights": {}, "Meta": {"": ""}}),
        "Invalid Weights: Passing must be greater than 0",
    );
    bad(
        json!({"Name": "w", "Meta": {"": ""}, "Kind": "mesh-gateway"}),
        "Invalid Service Meta: Couldn't load metadata pair ('', ''): Key cannot be blank",
    );
    bad(
        json!({"Name": "w", "Kind": "mesh-gateway", "Check": {}}),
        &format!(
            "Validation failed: {}",
            one_error("Port must be non-zero for a mesh-gateway")
        ),
    );
    bad(
        json!({"Name": "w", "Checks": [{"TTL": "1s", "Status": "x"}, {}]}),
        "Invalid check: TTL must be > 0 for TTL checks",
    );
    bad(
        json!({"Name": "w", "Check": {"TTL": "1s", "Status": "x"}, "Connect": {"SidecarService": {"Check": {"TCP": "h:1"}}}}),
        "Status for checks must 'passing', 'warning', 'critical'",
    );
    bad(json!({"Name": "w", "Connect": {"SidecarService": {"Meta": {"": ""}, "Check": {"TCP": "h:1"}}}}),
        "Invalid check in sidecar_service: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks");
}

#[test]
fn check_register_refusals_come_in_consuls_order() {
    assert_eq!(
        chk_err(json!({"TTL": "1s", "Status": "x"})),
        (400, "Missing check name".into())
    );
    assert_eq!(
        chk_err(json!({"Name": "c", "Status": "x"})),
        (400, "Bad check status".into())
    );
    assert_eq!(
        chk_err(json!({"Name": "c", "Status": ""})).1,
        "Invalid check: TTL must be > 0 for TTL checks"
    );
    assert_eq!(
        chk_err(json!({"Name": "c", "Foo": 1})).1,
        "Request decode failed: json: unknown field \"Foo\""
    );
}
