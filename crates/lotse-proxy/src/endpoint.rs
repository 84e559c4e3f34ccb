//! The instances of a destination service as the proxy sees them: an address, a weight, and
//! the version of the set they came in.

use std::net::SocketAddr;
use std::sync::Arc;

/// One healthy instance of a destination service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    /// The service instance ID (`web-1`), or the address for static endpoints.
    pub id: String,
    pub addr: SocketAddr,
    /// `Weights.Passing` of the instance (at least 1).
    pub weight: u32,
}

/// A complete endpoint set, replaced as a whole on every discovery change. Sorted by address,
/// so consistent hashing and round robin do not depend on the agent's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSet {
    /// Grows with every change of the set (0: never read; static sets use 1). Discovery uses
    /// the agent's `X-Consul-Index` when it is higher than the last version, else the last
    /// version plus one (`discovery::publish`).
    pub version: u64,
    pub endpoints: Arc<Vec<Endpoint>>,
}

impl EndpointSet {
    pub fn new(version: u64, mut endpoints: Vec<Endpoint>) -> Self {
        endpoints.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| a.id.cmp(&b.id)));
        endpoints.dedup_by(|a, b| a.addr == b.addr);
        EndpointSet {
            version,
            endpoints: Arc::new(endpoints),
        }
    }
}
