//! The typed walk over a service definition: config-file keys in, API fields out, with
//! mapstructure's two kinds of complaint collected on the way (a value of the wrong type, a key
//! that maps to nothing) and reported together by [`Decoder::finish`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{api_value, default_weights, go_kind, known_kind, norm};
use crate::cli::services::{Registration, ServiceAddress};

#[derive(Debug, Default)]
pub struct Decoder {
    /// `'path' expected type 'T', got unconvertible type 'U', value: 'v'`
    decode_errors: Vec<String>,
    /// Paths of keys no field took.
    unused: Vec<String>,
}

/// How a field of a block decoded by table ([`Decoder::block`]) is decoded.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Strings,
    Header,
    /// A nested service definition (`connect.sidecar_service`).
    Service,
    /// Read (and type-checked) but not sent: the API check has no such field.
    Dropped,
}

/// A block's fields for [`Decoder::block`]: config key (normalized), API field, kind.
type Fields = [(&'static str, &'static str, Kind)];

/// A check's config keys (normalized), with the API field each fills. consul's `args` is also
/// spelled `scriptargs`; `id` becomes the service check's `CheckID`.
const CHECK_FIELDS: &Fields = &[
    ("id", "CheckID", Kind::Str),
    ("name", "Name", Kind::Str),
    ("notes", "Notes", Kind::Str),
    ("serviceid", "", Kind::Dropped),
    ("token", "", Kind::Dropped),
    ("status", "Status", Kind::Str),
    ("args", "ScriptArgs", Kind::Strings),
    ("scriptargs", "ScriptArgs", Kind::Strings),
    ("http", "HTTP", Kind::Str),
    ("header", "Header", Kind::Header),
    ("method", "Method", Kind::Str),
    ("body", "Body", Kind::Str),
    ("disableredirects", "DisableRedirects", Kind::Bool),
    ("outputmaxsize", "OutputMaxSize", Kind::Int),
    ("tcp", "TCP", Kind::Str),
    ("tcpusetls", "TCPUseTLS", Kind::Bool),
    ("udp", "UDP", Kind::Str),
    ("interval", "Interval", Kind::Str),
    ("dockercontainerid", "DockerContainerID", Kind::Str),
    ("shell", "Shell", Kind::Str),
    ("grpc", "GRPC", Kind::Str),
    ("grpcusetls", "GRPCUseTLS", Kind::Bool),
    ("tlsservername", "TLSServerName", Kind::Str),
    ("tlsskipverify", "TLSSkipVerify", Kind::Bool),
    ("aliasnode", "AliasNode", Kind::Str),
    ("aliasservice", "AliasService", Kind::Str),
    ("timeout", "Timeout", Kind::Str),
    ("ttl", "TTL", Kind::Str),
    ("h2ping", "H2PING", Kind::Str),
    ("h2pingusetls", "H2PingUseTLS", Kind::Bool),
    ("successbeforepassing", "SuccessBeforePassing", Kind::Int),
    ("failuresbeforewarning", "FailuresBeforeWarning", Kind::Int),
    (
        "failuresbeforecritical",
        "FailuresBeforeCritical",
        Kind::Int,
    ),
    (
        "deregistercriticalserviceafter",
        "DeregisterCriticalServiceAfter",
        Kind::Str,
    ),
    ("osservice", "OSService", Kind::Str),
];

/// `connect`: whether the service is native, or the whole definition of its sidecar.
const CONNECT_FIELDS: &Fields = &[
    ("native", "Native", Kind::Bool),
    ("sidecarservice", "SidecarService", Kind::Service),
];

/// `locality`: where the service runs.
const LOCALITY_FIELDS: &Fields = &[("region", "Region", Kind::Str), ("zone", "Zone", Kind::Str)];

impl Decoder {
    /// consul's error texts: mapstructure's decode errors first (they stop the load before
    /// unused keys are looked at), then the unused keys as a go-multierror list.
    pub fn finish(self) -> Result<(), String> {
        if !self.decode_errors.is_empty() {
            let mut errs = self.decode_errors;
            errs.sort();
            let list: Vec<String> = errs.iter().map(|e| format!("* {e}")).collect();
            return Err(format!(
                "{} error(s) decoding:\n\n{}",
                errs.len(),
                list.join("\n")
            ));
        }
        if !self.unused.is_empty() {
            let n = self.unused.len();
            let mut out = if n == 1 {
                "1 error occurred:\n".to_string()
            } else {
                format!("{n} errors occurred:\n")
            };
            for k in &self.unused {
                out.push_str(&format!("\t* invalid config key {k}\n"));
            }
            out.push('\n');
            return Err(out);
        }
        Ok(())
    }

    fn mismatch(&mut self, path: &str, expected: &str, v: &Value) {
        self.decode_errors.push(format!(
            "'{path}' expected type '{expected}', got unconvertible type '{}', value: '{}'",
            go_kind(v),
            go_value(v)
        ));
    }

    fn string(&mut self, path: &str, v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => {
                self.mismatch(path, "string", other);
                String::new()
            }
        }
    }

    /// mapstructure turns any number into an int (truncating), nothing else.
    fn int(&mut self, path: &str, v: &Value) -> i64 {
        match v {
            Value::Number(n) => n
                .as_i64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
            Value::Null => 0,
            other => {
                self.mismatch(path, "int", other);
                0
            }
        }
    }

    fn bool(&mut self, path: &str, v: &Value) -> bool {
        match v {
            Value::Bool(b) => *b,
            Value::Null => false,
            other => {
                self.mismatch(path, "bool", other);
                false
            }
        }
    }

    fn strings(&mut self, path: &str, v: &Value) -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.string(&format!("{path}[{i}]"), item))
                .collect(),
            Value::Null => Vec::new(),
            other => {
                self.mismatch(path, "[]string", other);
                Vec::new()
            }
        }
    }

    fn string_map(&mut self, path: &str, v: &Value) -> BTreeMap<String, String> {
        let Some(m) = self.object(path, "map[string]string", v) else {
            return BTreeMap::new();
        };
        m.iter()
            .map(|(k, v)| (k.clone(), self.string(&format!("{path}[{k}]"), v)))
            .collect()
    }

    /// An object; HCL's one-element list of blocks counts as the block itself (consul's
    /// `HookWeakDecodeFromSlice`). `None` for null or a mismatch (recorded).
    fn object<'a>(
        &mut self,
        path: &str,
        expected: &str,
        v: &'a Value,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            Value::Array(items) if items.len() == 1 && items[0].is_object() => items[0].as_object(),
            Value::Null => None,
            other => {
                self.mismatch(path, expected, other);
                None
            }
        }
    }

    /// Objects of a list field (`checks`); a single HCL block is a list of one.
    fn objects<'a>(&mut self, path: &str, v: &'a Value) -> Vec<(String, &'a Value)> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect(),
            Value::Object(_) => vec![(format!("{path}[0]"), v)],
            Value::Null => Vec::new(),
            other => {
                self.mismatch(path, "[]config.CheckDefinition", other);
                Vec::new()
            }
        }
    }

    /// One service definition at `path` (`service`, `services[1]`, `...sidecar_service`).
    pub fn service(&mut self, path: &str, v: &Value) -> Option<Registration> {
        let m = self.object(path, "config.ServiceDefinition", v)?;
        let mut r = Registration {
            weights: Some(default_weights()),
            ..Default::default()
        };
        let mut check = None;
        for (key, value) in m {
            let p = format!("{path}.{key}");
            match norm(key).as_str() {
                "kind" => {
                    let kind = self.string(&p, value);
                    r.kind = if known_kind(&kind) {
                        kind
                    } else {
                        String::new()
                    };
                }
                "id" => r.id = self.string(&p, value),
                "name" => r.name = self.string(&p, value),
                "tags" => r.tags = self.strings(&p, value),
                "address" => r.address = self.string(&p, value),
                "socketpath" => r.socket_path = self.string(&p, value),
                "taggedaddresses" => r.tagged_addresses = self.tagged_addresses(&p, value),
                "meta" => r.meta = self.string_map(&p, value),
                "port" => r.port = self.int(&p, value),
                "check" => check = self.check(&p, value),
                "checks" => {
                    for (cp, c) in self.objects(&p, value) {
                        r.checks.extend(self.check(&cp, c));
                    }
                }
                "token" => {
                    self.string(&p, value);
                }
                "weights" => {
                    if let Some(w) = self.object(&p, "config.ServiceWeights", value) {
                        let weights = r.weights.get_or_insert_with(default_weights);
                        for (k, v) in w {
                            let wp = format!("{p}.{k}");
                            match norm(k).as_str() {
                                "passing" => weights.passing = self.int(&wp, v),
                                "warning" => weights.warning = self.int(&wp, v),
                                _ => self.unused.push(wp),
                            }
                        }
                    }
                }
                "enabletagoverride" => r.enable_tag_override = self.bool(&p, value),
                "proxy" => {
                    r.proxy = self
                        .object(&p, "config.ServiceProxy", value)
                        .map(|m| api_value(&Value::Object(m.clone())));
                }
                "connect" => {
                    r.connect = self.block(&p, "config.ServiceConnect", CONNECT_FIELDS, value);
                }
                "locality" => {
                    r.locality = self.block(&p, "config.Locality", LOCALITY_FIELDS, value);
                }
                _ => self.unused.push(p),
            }
        }
        // consul's builder appends the single `check` after the `checks` list.
        r.checks.extend(check);
        Some(r)
    }

    fn tagged_addresses(&mut self, path: &str, v: &Value) -> BTreeMap<String, ServiceAddress> {
        let mut out = BTreeMap::new();
        let Some(m) = self.object(path, "map[string]config.ServiceAddress", v) else {
            return out;
        };
        for (name, addr) in m {
            let ap = format!("{path}.{name}");
            let Some(fields) = self.object(&ap, "config.ServiceAddress", addr) else {
                continue;
            };
            let mut sa = ServiceAddress::default();
            for (k, v) in fields {
                let fp = format!("{ap}.{k}");
                match norm(k).as_str() {
                    "address" => sa.address = self.string(&fp, v),
                    "port" => sa.port = self.int(&fp, v),
                    _ => self.unused.push(fp),
                }
            }
            out.insert(name.clone(), sa);
        }
        out
    }

    /// A check in the API's `AgentServiceCheck` form.
    fn check(&mut self, path: &str, v: &Value) -> Option<Value> {
        self.block(path, "config.CheckDefinition", CHECK_FIELDS, v)
    }

    /// A block whose keys `fields` maps to API fields, in the API's JSON form with zero fields
    /// left out (the API structs are `omitempty`); `expected` is its Go type, for errors.
    fn block(&mut self, path: &str, expected: &str, fields: &Fields, v: &Value) -> Option<Value> {
        let m = self.object(path, expected, v)?;
        let mut out = Map::new();
        for (key, value) in m {
            let p = format!("{path}.{key}");
            let n = norm(key);
            let Some(&(_, field, kind)) = fields.iter().find(|(k, _, _)| *k == n) else {
                self.unused.push(p);
                continue;
            };
            let api: Value = match kind {
                Kind::Str => Value::from(self.string(&p, value)),
                Kind::Int => Value::from(self.int(&p, value)),
                Kind::Bool => Value::from(self.bool(&p, value)),
                Kind::Strings => Value::from(self.strings(&p, value)),
                Kind::Header => {
                    let mut h = Map::new();
                    if let Some(hm) = self.object(&p, "map[string][]string", value) {
                        for (name, values) in hm {
                            let vs = self.strings(&format!("{p}[{name}]"), values);
                            h.insert(name.clone(), Value::from(vs));
                        }
                    }
                    Value::Object(h)
                }
                Kind::Service => match self.service(&p, value) {
                    Some(s) => serde_json::to_value(s).expect("a registration serializes"),
                    None => Value::Null,
                },
                Kind::Dropped => {
                    self.string(&p, value);
                    continue;
                }
            };
            if !is_zero(&api) {
                out.insert(field.to_string(), api);
            }
        }
        Some(Value::Object(out))
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// Go's `%v` of a decoded JSON value.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}
