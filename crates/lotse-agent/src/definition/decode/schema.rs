//! The Go structs a registration decodes into (Consul's `agent/structs`), as field tables for
//! [`super::keys`]. Field names are Consul's JSON names; aliases are the spellings Consul
//! accepts besides them that snake_case normalisation does not already cover (`args`), plus
//! Lotse's lenient `ID`/`CheckID` pair.

use super::keys::{Field, Schema, Ty};

const fn f(go: &'static str, ty: Ty) -> Field {
    Field {
        go,
        ty,
        aliases: &[],
    }
}

const fn alias(go: &'static str, ty: Ty, aliases: &'static [&'static str]) -> Field {
    Field { go, ty, aliases }
}

/// `structs.ServiceDefinition` (a `services` block, or a sidecar's).
pub(super) static SERVICE: Schema = Schema {
    go: "ServiceDefinition",
    strict: true,
    fields: &[
        f("Kind", Ty::Str),
        f("ID", Ty::Str),
        f("Name", Ty::Str),
        f("Tags", Ty::Strings),
        f("Address", Ty::Str),
        f(
            "TaggedAddresses",
            Ty::Map(&SERVICE_ADDRESS, "map[string]structs.ServiceAddress"),
        ),
        f("Meta", Ty::StrMap),
        f("Port", Ty::Int),
        f("SocketPath", Ty::Str),
        f("Check", Ty::Struct(&CHECK_TYPE)),
        f("Checks", Ty::List(&CHECK_TYPE, "structs.CheckTypes")),
        f("Weights", Ty::Struct(&WEIGHTS)),
        f("Token", Ty::Str),
        f("EnableTagOverride", Ty::Bool),
        f("Proxy", Ty::Struct(&PROXY)),
        f("Connect", Ty::Struct(&CONNECT)),
        // Newer Consul; Lotse's catalog has no place for it: accepted and dropped.
        f("Locality", Ty::Struct(&LOCALITY)),
        f("Namespace", Ty::Enterprise("Namespaces")),
        f("Partition", Ty::Enterprise("Partitions")),
    ],
    shared: &[],
};

/// What `CheckType` and `CheckDefinition` both have: the check's name, status and probe.
static CHECK_FIELDS: &[Field] = &[
    f("Name", Ty::Str),
    f("Status", Ty::Str),
    f("Notes", Ty::Str),
    alias("ScriptArgs", Ty::Strings, &["args"]),
    f("HTTP", Ty::Str),
    f("H2PING", Ty::Str),
    f("H2PingUseTLS", Ty::Bool),
    f("Header", Ty::Header),
    f("Method", Ty::Str),
    f("Body", Ty::Str),
    f("DisableRedirects", Ty::Bool),
    f("TCP", Ty::Str),
    f("UDP", Ty::Str),
    f("Interval", Ty::Duration),
    f("AliasNode", Ty::Str),
    f("AliasService", Ty::Str),
    f("DockerContainerID", Ty::Str),
    f("Shell", Ty::Str),
    f("GRPC", Ty::Str),
    f("GRPCUseTLS", Ty::Bool),
    f("OSService", Ty::Str),
    f("TLSServerName", Ty::Str),
    f("TLSSkipVerify", Ty::Bool),
    f("Timeout", Ty::Duration),
    f("TTL", Ty::Duration),
    f("SuccessBeforePassing", Ty::Int),
    f("FailuresBeforeWarning", Ty::Int),
    f("FailuresBeforeCritical", Ty::Int),
    f("DeregisterCriticalServiceAfter", Ty::Duration),
    f("OutputMaxSize", Ty::Int),
];

/// `structs.CheckType`: a service's `Check` or one of its `Checks`.
pub(super) static CHECK_TYPE: Schema = Schema {
    go: "CheckType",
    strict: true,
    fields: &[
        // Consul knows only `CheckID` here; `ID` is Lotse being lenient (config files use it).
        alias("CheckID", Ty::Str, &["ID"]),
        // Set by Consul when a proxy exposes the check; accepted and ignored.
        f("ProxyHTTP", Ty::Str),
        f("ProxyGRPC", Ty::Str),
        // Accepted and ignored, as Consul does (the check belongs to the enclosing service).
        f("ServiceID", Ty::Str),
    ],
    shared: CHECK_FIELDS,
};

/// `structs.CheckDefinition`: the body of `/v1/agent/check/register`, a `checks` block.
pub(super) static CHECK_DEFINITION: Schema = Schema {
    go: "CheckDefinition",
    strict: true,
    fields: &[
        // Consul knows only `ID` here; `CheckID` is Lotse being lenient.
        alias("ID", Ty::Str, &["CheckID"]),
        f("ServiceID", Ty::Str),
        f("Token", Ty::Str),
        f("Namespace", Ty::Enterprise("Namespaces")),
        f("Partition", Ty::Enterprise("Partitions")),
    ],
    shared: CHECK_FIELDS,
};

static WEIGHTS: Schema = Schema {
    go: "Weights",
    strict: true,
    fields: &[f("Passing", Ty::Int), f("Warning", Ty::Int)],
    shared: &[],
};

static SERVICE_ADDRESS: Schema = Schema {
    go: "ServiceAddress",
    strict: true,
    fields: &[f("Address", Ty::Str), f("Port", Ty::Int)],
    shared: &[],
};

static LOCALITY: Schema = Schema {
    go: "Locality",
    strict: true,
    fields: &[f("Region", Ty::Str), f("Zone", Ty::Str)],
    shared: &[],
};

/// `structs.ServiceConnect`. Consul decodes it with plain `json.Unmarshal`: unknown keys are
/// ignored (and so dropped here).
pub(super) static CONNECT: Schema = Schema {
    go: "ServiceConnect",
    strict: false,
    fields: &[
        f("Native", Ty::Bool),
        f("SidecarService", Ty::Struct(&SERVICE)),
        f("PeerMeta", Ty::FreeMap),
    ],
    shared: &[],
};

/// `structs.ConnectProxyConfig`.
pub(super) static PROXY: Schema = Schema {
    go: "ConnectProxyConfig",
    strict: true,
    fields: &[
        f(
            "EnvoyExtensions",
            Ty::List(&ENVOY_EXTENSION, "[]structs.EnvoyExtension"),
        ),
        f("DestinationServiceName", Ty::Str),
        f("DestinationServiceID", Ty::Str),
        f("LocalServiceAddress", Ty::Str),
        f("LocalServicePort", Ty::Int),
        f("LocalServiceSocketPath", Ty::Str),
        f("Mode", Ty::Str),
        f("Config", Ty::FreeMap),
        f("Upstreams", Ty::List(&UPSTREAM, "structs.Upstreams")),
        f("MeshGateway", Ty::Struct(&MESH_GATEWAY)),
        f("Expose", Ty::Struct(&EXPOSE)),
        f("TransparentProxy", Ty::Struct(&TRANSPARENT_PROXY)),
        f("AccessLogs", Ty::Struct(&ACCESS_LOGS)),
        f("MutualTLSMode", Ty::Str),
    ],
    shared: &[],
};

/// `structs.Upstream`.
pub(super) static UPSTREAM: Schema = Schema {
    go: "Upstream",
    strict: true,
    fields: &[
        f("DestinationType", Ty::Str),
        f("DestinationNamespace", Ty::Str),
        f("DestinationPartition", Ty::Str),
        f("DestinationPeer", Ty::Str),
        f("DestinationName", Ty::Str),
        f("Datacenter", Ty::Str),
        f("LocalBindAddress", Ty::Str),
        f("LocalBindPort", Ty::Int),
        f("LocalBindSocketPath", Ty::Str),
        f("LocalBindSocketMode", Ty::Str),
        f("Config", Ty::FreeMap),
        f("MeshGateway", Ty::Struct(&MESH_GATEWAY)),
        f("CentrallyConfigured", Ty::Bool),
    ],
    shared: &[],
};

static MESH_GATEWAY: Schema = Schema {
    go: "MeshGatewayConfig",
    strict: true,
    fields: &[f("Mode", Ty::Str)],
    shared: &[],
};

static EXPOSE: Schema = Schema {
    go: "ExposeConfig",
    strict: true,
    fields: &[
        f("Checks", Ty::Bool),
        f("Paths", Ty::List(&EXPOSE_PATH, "[]structs.ExposePath")),
    ],
    shared: &[],
};

static EXPOSE_PATH: Schema = Schema {
    go: "ExposePath",
    strict: true,
    fields: &[
        f("ListenerPort", Ty::Int),
        f("Path", Ty::Str),
        f("LocalPathPort", Ty::Int),
        f("Protocol", Ty::Str),
        f("ParsedFromCheck", Ty::Bool),
    ],
    shared: &[],
};

static TRANSPARENT_PROXY: Schema = Schema {
    go: "TransparentProxyConfig",
    strict: true,
    fields: &[
        f("OutboundListenerPort", Ty::Int),
        f("DialedDirectly", Ty::Bool),
    ],
    shared: &[],
};

static ACCESS_LOGS: Schema = Schema {
    go: "AccessLogsConfig",
    strict: true,
    fields: &[
        f("Enabled", Ty::Bool),
        f("DisableListenerLogs", Ty::Bool),
        f("Type", Ty::Str),
        f("Path", Ty::Str),
        f("JSONFormat", Ty::Str),
        f("TextFormat", Ty::Str),
    ],
    shared: &[],
};

static ENVOY_EXTENSION: Schema = Schema {
    go: "EnvoyExtension",
    strict: true,
    fields: &[
        f("Name", Ty::Str),
        f("Required", Ty::Bool),
        f("Arguments", Ty::FreeMap),
        f("ConsulVersion", Ty::Str),
        f("EnvoyVersion", Ty::Str),
    ],
    shared: &[],
};
