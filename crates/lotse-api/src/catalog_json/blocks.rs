//! Canonical forms of the free-form blocks a service carries, as Go's encoder writes them:
//! `ConnectProxyConfig.MarshalJSON` and `ServiceConnect`. Stored text may come from any writer
//! (this crate's decoder, the agent's) in any key order and with zero fields missing; the
//! answer is always in Go's order with Go's `omitempty` rules.

use super::Ordered;

fn is_zero(v: &Ordered) -> bool {
    match v {
        Ordered::Null => true,
        Ordered::Bool(b) => !b,
        Ordered::Number(n) => n.as_f64() == Some(0.0),
        Ordered::String(s) => s.is_empty(),
        Ordered::Array(a) => a.is_empty(),
        Ordered::Object(o) => o.is_empty(),
    }
}

fn get<'a>(fields: &'a [(String, Ordered)], name: &str) -> Option<&'a Ordered> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn fields_of(v: &Ordered) -> &[(String, Ordered)] {
    match v {
        Ordered::Object(f) => f,
        _ => &[],
    }
}

/// A struct whose fields are all `omitempty`: the given fields in `order`, zero ones dropped.
fn omitempty_struct(v: Option<&Ordered>, order: &[&str]) -> Ordered {
    let fields = v.map(fields_of).unwrap_or(&[]);
    Ordered::Object(
        order
            .iter()
            .filter_map(|name| {
                get(fields, name)
                    .filter(|v| !is_zero(v))
                    .map(|v| (name.to_string(), v.clone()))
            })
            .collect(),
    )
}

/// `TransparentProxyConfig` fields, in Go's order.
pub const TRANSPARENT_PROXY: [&str; 2] = ["OutboundListenerPort", "DialedDirectly"];
/// `AccessLogsConfig` fields, in Go's order.
pub const ACCESS_LOGS: [&str; 6] = [
    "Enabled",
    "DisableListenerLogs",
    "Type",
    "Path",
    "JSONFormat",
    "TextFormat",
];

/// `ConnectProxyConfig` as its `MarshalJSON` writes it: `TransparentProxy` and `AccessLogs`
/// first and only when not zero, then the struct's fields; `Mode` always, `MeshGateway` and
/// `Expose` always (structs), everything else only when set.
pub fn canonical_proxy(p: &Ordered) -> Ordered {
    let fields = fields_of(p);
    let mut out: Vec<(String, Ordered)> = Vec::new();
    for (name, order) in [
        ("TransparentProxy", &TRANSPARENT_PROXY[..]),
        ("AccessLogs", &ACCESS_LOGS[..]),
    ] {
        let block = omitempty_struct(get(fields, name), order);
        if !is_zero(&block) {
            out.push((name.to_string(), block));
        }
    }
    for name in [
        "EnvoyExtensions",
        "DestinationServiceName",
        "DestinationServiceID",
        "LocalServiceAddress",
        "LocalServicePort",
        "LocalServiceSocketPath",
    ] {
        if let Some(v) = get(fields, name).filter(|v| !is_zero(v)) {
            out.push((name.to_string(), v.clone()));
        }
    }
    let mode = get(fields, "Mode")
        .cloned()
        .unwrap_or(Ordered::String(String::new()));
    out.push(("Mode".into(), mode));
    for name in ["Config", "Upstreams"] {
        if let Some(v) = get(fields, name).filter(|v| !is_zero(v)) {
            out.push((name.to_string(), v.clone()));
        }
    }
    out.push((
        "MeshGateway".into(),
        omitempty_struct(get(fields, "MeshGateway"), &["Mode"]),
    ));
    out.push((
        "Expose".into(),
        omitempty_struct(get(fields, "Expose"), &["Checks", "Paths"]),
    ));
    Ordered::Object(out)
}

/// `ServiceConnect`: `Native`, `SidecarService`, `PeerMeta`, each only when set.
pub fn canonical_connect(c: &Ordered) -> Ordered {
    omitempty_struct(Some(c), &["Native", "SidecarService", "PeerMeta"])
}

/// Is this the zero proxy (nothing worth storing)?
pub fn is_zero_proxy(p: &Ordered) -> bool {
    canonical_proxy(p) == canonical_proxy(&Ordered::Object(Vec::new()))
}

/// `api.HealthCheckDefinition`'s zero value as its `MarshalJSON` writes it: the three
/// durations as text first (its wrapper's fields), then the struct's own fields in order.
pub fn zero_api_definition() -> Ordered {
    let s = |v: &str| Ordered::String(v.to_string());
    let fields = [
        ("Interval", s("0s")),
        ("Timeout", s("0s")),
        ("DeregisterCriticalServiceAfter", s("0s")),
        ("HTTP", s("")),
        ("Header", Ordered::Null),
        ("Method", s("")),
        ("Body", s("")),
        ("TLSServerName", s("")),
        ("TLSSkipVerify", Ordered::Bool(false)),
        ("TCP", s("")),
        ("TCPUseTLS", Ordered::Bool(false)),
        ("UDP", s("")),
        ("GRPC", s("")),
        ("OSService", s("")),
        ("GRPCUseTLS", Ordered::Bool(false)),
    ];
    Ordered::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
