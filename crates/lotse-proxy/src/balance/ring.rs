//! Consistent hashing on a ring (Envoy's `ring_hash`; `maglev` is accepted as a name and maps
//! here too).
//!
//! Every endpoint gets points on a 64-bit ring in proportion to its weight (at least
//! [`MIN_RING_SIZE`] points in all); a request's key (a header or a cookie) hashes to a point
//! and goes to the next endpoint clockwise that is allowed (not ejected, not yet tried). When an
//! endpoint leaves, only the keys on its arcs move. The ring is rebuilt only when the endpoint
//! set's version changes.

use http::HeaderMap;

use crate::config::HashOn;
use crate::endpoint::Endpoint;

pub const MIN_RING_SIZE: usize = 1024;

/// A built ring: sorted `(point, endpoint index)`.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub fn build(endpoints: &[Endpoint]) -> Ring {
        let total: u64 = endpoints.iter().map(|e| u64::from(e.weight.max(1))).sum();
        let mut points = Vec::new();
        if total == 0 {
            return Ring { points };
        }
        for (index, e) in endpoints.iter().enumerate() {
            let share = (MIN_RING_SIZE as u64 * u64::from(e.weight.max(1))).div_ceil(total);
            let key = e.addr.to_string();
            for replica in 0..share.max(1) {
                points.push((hash_bytes(format!("{key}_{replica}").as_bytes()), index));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The endpoint for `hash`: the first point at or after it (wrapping) whose endpoint is
    /// `allowed`. `None` when no endpoint is allowed.
    pub fn lookup(&self, hash: u64, allowed: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|(p, _)| *p < hash);
        let n = self.points.len();
        (0..n)
            .map(|i| self.points[(start + i) % n].1)
            .find(|&idx| allowed(idx))
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The hash key of a request under `policies`: the first policy whose header or cookie is
/// present. `None`: no key (the caller falls back to a random pick, as Envoy does).
pub fn request_hash(policies: &[HashOn], headers: &HeaderMap) -> Option<u64> {
    for policy in policies {
        match policy {
            HashOn::Header(name) => {
                if let Some(v) = headers.get(name.as_str()) {
                    return Some(hash_bytes(v.as_bytes()));
                }
            }
            HashOn::Cookie(name) => {
                for value in headers.get_all(http::header::COOKIE) {
                    let Ok(text) = value.to_str() else { continue };
                    for pair in text.split(';') {
                        if let Some((k, v)) = pair.trim().split_once('=') {
                            if k == name {
                                return Some(hash_bytes(v.as_bytes()));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

/// FNV-1a, then splitmix64's finalizer so that similar keys spread over the whole ring.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(n: u16) -> Vec<Endpoint> {
        (0..n)
            .map(|i| Endpoint {
                id: format!("e{i}"),
                addr: format!("127.0.0.1:{}", 9000 + i).parse().expect("addr"),
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn same_key_same_endpoint() {
        let ring = Ring::build(&eps(3));
        assert!(ring.len() >= MIN_RING_SIZE);
        let h = hash_bytes(b"user-42");
        let first = ring.lookup(h, |_| true);
        for _ in 0..10 {
            assert_eq!(ring.lookup(h, |_| true), first);
        }
    }

    #[test]
    fn keys_spread_and_only_a_removed_endpoints_keys_move() {
        let three = Ring::build(&eps(3));
        let mut hits = [0; 3];
        let mut moved = 0;
        for k in 0..3000u32 {
            let h = hash_bytes(format!("key-{k}").as_bytes());
            let before = three.lookup(h, |_| true).expect("endpoint");
            hits[before] += 1;
            // Endpoint 2 not allowed (ejected): its keys move, the others stay put.
            let after = three.lookup(h, |i| i != 2).expect("endpoint");
            if before != 2 {
                assert_eq!(before, after);
            } else {
                moved += 1;
                assert_ne!(after, 2);
            }
        }
        assert!(hits.iter().all(|&h| h > 600), "{hits:?}");
        assert_eq!(moved, hits[2]);
        assert_eq!(three.lookup(1, |_| false), None);
    }

    #[test]
    fn hash_from_header_or_cookie() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; session=abc".parse().expect("value"));
        let by_cookie = [HashOn::Cookie("session".into())];
        assert_eq!(request_hash(&by_cookie, &h), Some(hash_bytes(b"abc")));
        let by_header = [HashOn::Header("x-user".into())];
        assert_eq!(request_hash(&by_header, &h), None);
        h.insert("x-user", "bob".parse().expect("value"));
        assert_eq!(request_hash(&by_header, &h), Some(hash_bytes(b"bob")));
    }
}
