//! The free-form blocks of a registration: a service's `Proxy` (`ConnectProxyConfig`, with
//! its snake_case aliases) and `Connect` (`ServiceConnect`), and a check's `Definition`
//! (`HealthCheckDefinition`). Each becomes the JSON text the catalog stores, empty for the
//! block's zero value.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{duration_text, DecodeError, GoObject};
use crate::catalog_json::{
    canonical_connect, canonical_proxy, is_zero_proxy, Ordered, ACCESS_LOGS,
};

fn ordered(v: &Value) -> Ordered {
    serde_json::from_value(v.clone()).unwrap_or(Ordered::Null)
}

fn text(o: &Ordered) -> String {
    serde_json::to_string(o).unwrap_or_default()
}

/// Proxy fields and the snake_case spelling `ConnectProxyConfig.UnmarshalJSON` also takes
/// (used when the Go spelling is absent or zero).
const PROXY_FIELDS: [(&str, Option<&str>); 13] = [
    ("EnvoyExtensions", None),
    ("DestinationServiceName", Some("destination_service_name")),
    ("DestinationServiceID", Some("destination_service_id")),
    ("LocalServiceAddress", Some("local_service_address")),
    ("LocalServicePort", Some("local_service_port")),
    ("LocalServiceSocketPath", Some("local_service_socket_path")),
    ("Mode", None),
    ("Config", None),
    ("Upstreams", None),
    ("MeshGateway", Some("mesh_gateway")),
    ("Expose", None),
    ("TransparentProxy", Some("transparent_proxy")),
    ("AccessLogs", Some("access_logs")),
];

/// A `Proxy` block: type-checked at its top level and in its small structs, upstreams and
/// `Config` kept as given. Empty text for the zero proxy.
pub fn proxy(p: &GoObject<'_>) -> Result<String, DecodeError> {
    let names: Vec<&str> = PROXY_FIELDS
        .iter()
        .flat_map(|(go, snake)| std::iter::once(*go).chain(*snake))
        .collect();
    p.known(&names)?;
    let mut fields: Vec<(String, Ordered)> = Vec::new();
    for (go, snake) in PROXY_FIELDS {
        let value = match go {
            "DestinationServiceName"
            | "DestinationServiceID"
            | "LocalServiceAddress"
            | "LocalServiceSocketPath"
            | "Mode" => {
                let mut s = p.string(go)?;
                if s.is_empty() {
                    if let Some(alias) = snake {
                        s = p.string(alias)?;
                    }
                }
                Ordered::String(s)
            }
            "LocalServicePort" => {
                let mut n = p.int(go)?;
                if n == 0 {
                    n = p.int("local_service_port")?;
                }
                Ordered::Number(n.into())
            }
            "MeshGateway" | "Expose" | "TransparentProxy" | "AccessLogs" => {
                let strukt = match go {
                    "MeshGateway" => "MeshGatewayConfig",
                    "Expose" => "ExposeConfig",
                    "TransparentProxy" => "TransparentProxyConfig",
                    _ => "AccessLogsConfig",
                };
                let block = match p.object(go, strukt)? {
                    Some(b) => Some(b),
                    None => match snake {
                        Some(alias) => p.object(alias, strukt)?,
                        None => None,
                    },
                };
                match block {
                    None => continue,
                    Some(b) => small_struct(&b, go)?,
                }
            }
            _ => match p.raw(go) {
                None => continue,
                Some(v) => {
                    let ok = match go {
                        "Config" => v.is_object(),
                        _ => v.is_array(),
                    };
                    if !ok {
                        return Err(format!(
                            "json: cannot unmarshal {} into Go struct field ConnectProxyConfig.{go}",
                            super::kind(v)
                        ));
                    }
                    ordered(v)
                }
            },
        };
        fields.push((go.to_string(), value));
    }
    let proxy = Ordered::Object(fields);
    if is_zero_proxy(&proxy) {
        return Ok(String::new());
    }
    Ok(text(&canonical_proxy(&proxy)))
}

/// One of the proxy's small structs, its fields checked.
fn small_struct(b: &GoObject<'_>, which: &str) -> Result<Ordered, DecodeError> {
    let fields: Vec<(String, Ordered)> = match which {
        "MeshGateway" => {
            b.known(&["Mode"])?;
            vec![("Mode".into(), Ordered::String(b.string("Mode")?))]
        }
        "TransparentProxy" => {
            b.known(&[
                "OutboundListenerPort",
                "DialedDirectly",
                "outbound_listener_port",
                "dialed_directly",
            ])?;
            let port = match b.int("OutboundListenerPort")? {
                0 => b.int("outbound_listener_port")?,
                n => n,
            };
            let direct = b.bool("DialedDirectly")? || b.bool("dialed_directly")?;
            vec![
                ("OutboundListenerPort".into(), Ordered::Number(port.into())),
                ("DialedDirectly".into(), Ordered::Bool(direct)),
            ]
        }
        "Expose" => {
            b.known(&["Checks", "Paths"])?;
            let mut f = vec![("Checks".into(), Ordered::Bool(b.bool("Checks")?))];
            match b.raw("Paths") {
                Some(v @ Value::Array(_)) => f.push(("Paths".into(), ordered(v))),
                Some(v) => {
                    return Err(format!(
                        "json: cannot unmarshal {} into Go struct field ExposeConfig.Paths of type []structs.ExposePath",
                        super::kind(v)
                    ))
                }
                None => {}
            }
            f
        }
        _ => {
            b.known(&ACCESS_LOGS)?;
            ACCESS_LOGS
                .iter()
                .map(|&f| {
                    let v = match f {
                        "Enabled" | "DisableListenerLogs" => Ordered::Bool(b.bool(f)?),
                        _ => Ordered::String(b.string(f)?),
                    };
                    Ok((f.to_string(), v))
                })
                .collect::<Result<_, DecodeError>>()?
        }
    };
    Ok(Ordered::Object(fields))
}

/// A `Connect` block. `ServiceConnect.UnmarshalJSON` uses plain `json.Unmarshal`, so unknown
/// keys are ignored, as Consul does. Empty text when nothing is set.
pub fn connect(c: &GoObject<'_>) -> Result<String, DecodeError> {
    let mut fields = vec![("Native".to_string(), Ordered::Bool(c.bool("Native")?))];
    let sidecar = c.raw("SidecarService").or_else(|| c.raw("sidecar_service"));
    if let Some(v) = sidecar {
        fields.push(("SidecarService".into(), ordered(v)));
    }
    if let Some(v) = c.raw("PeerMeta") {
        fields.push(("PeerMeta".into(), ordered(v)));
    }
    match canonical_connect(&Ordered::Object(fields)) {
        Ordered::Object(f) if f.is_empty() => Ok(String::new()),
        o => Ok(text(&o)),
    }
}

/// A check's `Definition` (`HealthCheckDefinition`), durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definition {
    pub http: String,
    pub tls_server_name: String,
    pub tls_skip_verify: bool,
    pub header: BTreeMap<String, Vec<String>>,
    pub method: String,
    pub body: String,
    pub disable_redirects: bool,
    pub tcp: String,
    pub udp: String,
    pub h2ping: String,
    pub os_service: String,
    pub h2ping_use_tls: bool,
    pub interval: i64,
    pub output_max_size: u64,
    pub timeout: i64,
    pub deregister_critical_service_after: i64,
    pub script_args: Vec<String>,
    pub docker_container_id: String,
    pub shell: String,
    pub grpc: String,
    pub grpc_use_tls: bool,
    pub alias_node: String,
    pub alias_service: String,
    pub ttl: i64,
}

/// A `Definition` block as `HealthCheckDefinition.UnmarshalJSON` reads it: plain
/// `json.Unmarshal` (unknown keys ignored), durations as Go text or nanoseconds.
pub fn definition(d: &GoObject<'_>) -> Result<Definition, DecodeError> {
    let mut header = BTreeMap::new();
    if let Some(v) = d.raw("Header") {
        let Value::Object(m) = v else {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field HealthCheckDefinition.Header of type map[string][]string",
                super::kind(v)
            ));
        };
        for (k, vals) in m {
            let list = match vals {
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_default())
                    .collect(),
                _ => Vec::new(),
            };
            header.insert(k.clone(), list);
        }
    }
    Ok(Definition {
        http: d.string("HTTP")?,
        tls_server_name: d.string("TLSServerName")?,
        tls_skip_verify: d.bool("TLSSkipVerify")?,
        header,
        method: d.string("Method")?,
        body: d.string("Body")?,
        disable_redirects: d.bool("DisableRedirects")?,
        tcp: d.string("TCP")?,
        udp: d.string("UDP")?,
        h2ping: d.string("H2PING")?,
        os_service: d.string("OSService")?,
        h2ping_use_tls: d.bool("H2PingUseTLS")?,
        interval: d.duration("Interval")?,
        output_max_size: d.uint("OutputMaxSize")?,
        timeout: d.duration("Timeout")?,
        deregister_critical_service_after: d.duration("DeregisterCriticalServiceAfter")?,
        script_args: d.strings("ScriptArgs")?,
        docker_container_id: d.string("DockerContainerID")?,
        shell: d.string("Shell")?,
        grpc: d.string("GRPC")?,
        grpc_use_tls: d.bool("GRPCUseTLS")?,
        alias_node: d.string("AliasNode")?,
        alias_service: d.string("AliasService")?,
        ttl: d.duration("TTL")?,
    })
}

impl Definition {
    /// The JSON `HealthCheckDefinition.MarshalJSON` writes: every field omitted when zero; the
    /// three durations it renders as text and `OutputMaxSize` first (its wrapper struct's
    /// fields), then the rest in struct order, `TTL` as nanoseconds. Empty for the zero value.
    pub fn to_text(&self) -> String {
        let mut f = Fields::default();
        f.duration("Interval", self.interval);
        if self.output_max_size > 0 {
            f.put(
                "OutputMaxSize",
                Ordered::Number(self.output_max_size.into()),
            );
        }
        f.duration("Timeout", self.timeout);
        f.duration(
            "DeregisterCriticalServiceAfter",
            self.deregister_critical_service_after,
        );
        f.text("HTTP", &self.http);
        f.text("TLSServerName", &self.tls_server_name);
        f.flag("TLSSkipVerify", self.tls_skip_verify);
        if !self.header.is_empty() {
            let header = self.header.iter().map(|(k, v)| {
                let vals = v.iter().map(|x| Ordered::String(x.clone())).collect();
                (k.clone(), Ordered::Array(vals))
            });
            f.put("Header", Ordered::Object(header.collect()));
        }
        f.text("Method", &self.method);
        f.text("Body", &self.body);
        f.flag("DisableRedirects", self.disable_redirects);
        f.text("TCP", &self.tcp);
        f.text("UDP", &self.udp);
        f.text("H2PING", &self.h2ping);
        f.text("OSService", &self.os_service);
        f.flag("H2PingUseTLS", self.h2ping_use_tls);
        if !self.script_args.is_empty() {
            let args = self.script_args.iter().cloned().map(Ordered::String);
            f.put("ScriptArgs", Ordered::Array(args.collect()));
        }
        f.text("DockerContainerID", &self.docker_container_id);
        f.text("Shell", &self.shell);
        f.text("GRPC", &self.grpc);
        f.flag("GRPCUseTLS", self.grpc_use_tls);
        f.text("AliasNode", &self.alias_node);
        f.text("AliasService", &self.alias_service);
        if self.ttl > 0 {
            f.put("TTL", Ordered::Number(self.ttl.into()));
        }
        if f.0.is_empty() {
            return String::new();
        }
        text(&Ordered::Object(f.0))
    }

    /// Consul's `CheckType().Type()` for a check registered without a `Type`.
    pub fn check_type(&self) -> &'static str {
        let every = self.interval > 0;
        let script = !self.script_args.is_empty();
        if !self.grpc.is_empty() && every {
            "grpc"
        } else if !self.http.is_empty() && every {
            "http"
        } else if self.ttl > 0 {
            "ttl"
        } else if !self.tcp.is_empty() && every {
            "tcp"
        } else if !self.udp.is_empty() && every {
            "udp"
        } else if !self.alias_node.is_empty() || !self.alias_service.is_empty() {
            "alias"
        } else if script && !self.docker_container_id.is_empty() && every {
            "docker"
        } else if script {
            "script"
        } else if !self.h2ping.is_empty() && every {
            "h2ping"
        } else if !self.os_service.is_empty() && every {
            "os_service"
        } else {
            ""
        }
    }
}

/// The fields of a block being written, each only when set (Go's `omitempty`).
#[derive(Default)]
struct Fields(Vec<(String, Ordered)>);

impl Fields {
    fn put(&mut self, name: &str, v: Ordered) {
        self.0.push((name.to_string(), v));
    }

    fn text(&mut self, name: &str, v: &str) {
        if !v.is_empty() {
            self.put(name, Ordered::String(v.to_string()));
        }
    }

    fn flag(&mut self, name: &str, v: bool) {
        if v {
            self.put(name, Ordered::Bool(true));
        }
    }

    /// A duration in nanoseconds, as Go's duration text.
    fn duration(&mut self, name: &str, ns: i64) {
        if ns > 0 {
            self.put(name, Ordered::String(duration_text(ns)));
        }
    }
}
