//! `api.AgentService`: a local service as the agent's endpoints write it.

use std::collections::BTreeMap;

use lotse_core::catalog::Service;
use serde::Serialize;

use super::{tagged, weights, Block, JsonText, ServiceAddressJson, WeightsJson};

/// Service kinds whose agent view carries a `Proxy` block.
const PROXY_KINDS: [&str; 5] = [
    "connect-proxy",
    "mesh-gateway",
    "terminating-gateway",
    "ingress-gateway",
    "api-gateway",
];

/// `api.AgentService`, as `/v1/agent/services` and `/v1/agent/service/:id` write a local
/// service: `Tags` `[]` and `Meta` `{}` when empty, `Port` always, indexes only when set,
/// `Proxy` only for proxies and gateways, `Connect` only for Connect-native services.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentServiceJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub kind: &'a str,
    #[serde(rename = "ID")]
    pub id: &'a str,
    pub service: &'a str,
    pub tags: &'a [String],
    pub meta: &'a BTreeMap<String, String>,
    pub port: i64,
    pub address: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub socket_path: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<&'a str, ServiceAddressJson<'a>>,
    pub weights: WeightsJson,
    pub enable_tag_override: bool,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub modify_index: u64,
    /// Set by `GET /v1/agent/service/:id` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<JsonText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<JsonText<'a>>,
    pub datacenter: &'a str,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// A service as the agent endpoints show it, in the agent's `datacenter`.
pub fn agent_service<'a>(s: &'a Service, datacenter: &'a str) -> AgentServiceJson<'a> {
    let native = serde_json::from_str::<serde_json::Value>(&s.connect_json)
        .ok()
        .and_then(|v| v.get("Native").and_then(serde_json::Value::as_bool))
        .unwrap_or(false);
    AgentServiceJson {
        kind: &s.kind,
        id: &s.id,
        service: &s.name,
        tags: &s.tags,
        meta: &s.meta,
        port: s.port,
        address: &s.address,
        socket_path: &s.socket_path,
        tagged_addresses: tagged(&s.tagged_addresses),
        weights: weights(s),
        enable_tag_override: s.enable_tag_override,
        create_index: s.create_index,
        modify_index: s.modify_index,
        content_hash: None,
        proxy: PROXY_KINDS
            .contains(&s.kind.as_str())
            .then(|| JsonText::new(&s.proxy_json, Block::Proxy)),
        connect: native.then(|| JsonText::new(r#"{"Native":true}"#, Block::Connect)),
        datacenter,
    }
}
