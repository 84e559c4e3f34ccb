//! Sessions, as Consul's `structs.Session`.

use serde::{Deserialize, Serialize};

/// What happens to the keys a session holds when the session is invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SessionBehavior {
    /// Locks are released; the keys stay.
    #[default]
    Release,
    /// The keys are deleted.
    Delete,
}

impl SessionBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionBehavior::Release => "release",
            SessionBehavior::Delete => "delete",
        }
    }
}

/// A check a session depends on, bound to a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCheckRef {
    pub id: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub node: String,
    /// Lock-delay in nanoseconds, as Consul stores and reports it.
    pub lock_delay_ns: u64,
    pub behavior: SessionBehavior,
    /// The TTL as the client gave it (`"30s"`), empty when none. The leader enforces it.
    pub ttl: String,
    pub node_checks: Vec<String>,
    pub service_checks: Vec<ServiceCheckRef>,
    pub create_index: u64,
    pub modify_index: u64,
}
