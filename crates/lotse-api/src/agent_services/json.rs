//! The agent endpoints' additions to [`crate::catalog_json`]'s `api.AgentService`: the content
//! hash of `GET /v1/agent/service/:id` and the shape `?filter=` checks selectors against.

use serde_json::Value;

use crate::catalog_json::AgentServiceJson;

/// The service with its `ContentHash`: FNV-1a (64 bit, the hash Consul's hashstructure uses)
/// over the compact JSON of everything but the hash, in hex. Stable for an unchanged
/// definition: the field order is fixed, maps are sorted and stored blocks keep their order.
pub fn with_content_hash(mut s: AgentServiceJson<'_>) -> AgentServiceJson<'_> {
    s.content_hash = None;
    let bytes = serde_json::to_vec(&s).unwrap_or_default();
    s.content_hash = Some(format!("{:x}", fnv1a_64(&bytes)));
    s
}

pub(crate) fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// What `?filter=` may select on `/v1/agent/services`: `api.AgentService`'s fields without
/// `bexpr:"-"`, which are `structs.NodeService`'s less `SocketPath`.
pub fn shape() -> Value {
    let mut shape = crate::catalog_filter::node_service_shape();
    if let Some(o) = shape.as_object_mut() {
        o.remove("SocketPath");
    }
    shape
}
