//! The identity foca gossips about: node name, address and a generation.
//!
//! foca needs an identity that can be *renewed*: once the cluster has declared an identity
//! Down, that exact identity can never come back. A restarted (or wrongly declared dead) node
//! therefore rejoins with the same name and a higher `gen`. foca's `Addr` is the name, so two
//! identities with the same name conflict and the one with the higher generation wins.
//! The name is an `Arc<str>` because foca clones `addr()` while scanning its member list.

use std::{fmt, net::SocketAddr, sync::Arc};

use serde::{Deserialize, Serialize};

/// One incarnation of a node in the pool, as gossiped on the wire.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    /// The node name; unique in the pool.
    pub name: Arc<str>,
    /// Where the node answers UDP and TCP.
    pub addr: SocketAddr,
    /// Generation: bumped on every restart or rejoin; higher wins.
    pub gen: u64,
}

impl NodeId {
    /// Builds an identity.
    pub fn new(name: &str, addr: SocketAddr, gen: u64) -> Self {
        Self {
            name: Arc::from(name),
            addr,
            gen,
        }
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.name, self.addr, self.gen)
    }
}

impl foca::Identity for NodeId {
    type Addr = Arc<str>;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            name: self.name.clone(),
            addr: self.addr,
            gen: self.gen.saturating_add(1),
        })
    }

    fn addr(&self) -> Arc<str> {
        self.name.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Higher generation wins; the socket address only breaks ties deterministically
        // (two live nodes misconfigured with one name).
        (self.gen, self.addr) > (adversary.gen, adversary.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    #[test]
    fn renewed_identity_wins_over_old() {
        let a = NodeId::new("n1", "127.0.0.1:1".parse().unwrap(), 5);
        let b = a.renew().unwrap();
        assert_eq!(b.gen, 6);
        assert!(b.win_addr_conflict(&a));
        assert!(!a.win_addr_conflict(&b));
        assert_eq!(a.addr(), b.addr());
    }
}
