//! The semaphore behind `lotse lock -n N` (N > 1), following consul's `api.Semaphore`:
//! every contender holds `PREFIX/<session>` (acquired with its session, behavior delete), and
//! `PREFIX/.lock` holds `{"Limit":N,"Holders":{"<session>":true,...}}`, updated with CAS. A
//! holder whose contender key is gone (its session died) is pruned by the others.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::http::{ApiError, Client, KvPair, Query};
use super::kv::go_path_join;

/// The flag consul puts on the keys of a semaphore.
pub const SEMAPHORE_FLAG_VALUE: u64 = 0xe0f69a2baa414de0;

/// Pause while waiting for a slot (the blocking query's wait time).
const WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SemaphoreLock {
    #[serde(rename = "Limit")]
    pub limit: i64,
    #[serde(rename = "Holders", default, deserialize_with = "null_as_empty")]
    pub holders: BTreeMap<String, bool>,
}

/// Go decodes a JSON `null` map as an empty (nil) map.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, bool>, D::Error> {
    Ok(Option::<BTreeMap<String, bool>>::deserialize(d)?.unwrap_or_default())
}

pub fn lock_key(prefix: &str) -> String {
    go_path_join(&[prefix, ".lock"])
}

pub fn contender_key(prefix: &str, session: &str) -> String {
    go_path_join(&[prefix, session])
}

/// The coordination entry among `pairs`, or an empty one (index 0, no value).
fn find_lock(pairs: &[KvPair], prefix: &str) -> KvPair {
    let key = lock_key(prefix);
    pairs
        .iter()
        .find(|p| p.key == key)
        .cloned()
        .unwrap_or(KvPair {
            key,
            flags: SEMAPHORE_FLAG_VALUE,
            ..Default::default()
        })
}

fn decode(pair: &KvPair, limit: i64) -> Result<SemaphoreLock, String> {
    if pair.value.is_none() {
        return Ok(SemaphoreLock {
            limit,
            holders: BTreeMap::new(),
        });
    }
    serde_json::from_slice(&pair.value_bytes()).map_err(|e| format!("lock decoding failed: {e}"))
}

/// Drops holders whose session holds no key under the prefix any more.
pub fn prune_dead_holders(lock: &mut SemaphoreLock, pairs: &[KvPair]) {
    let alive: std::collections::HashSet<&str> = pairs
        .iter()
        .map(KvPair::session_id)
        .filter(|s| !s.is_empty())
        .collect();
    lock.holders.retain(|h, _| alive.contains(h.as_str()));
}

fn cas_lock(
    client: &Client,
    prefix: &str,
    lock: &SemaphoreLock,
    index: u64,
) -> Result<bool, String> {
    let body = serde_json::to_vec(lock).expect("semaphore lock serializes");
    client
        .kv_put(
            &lock_key(prefix),
            &body,
            Query::write()
                .param("flags", SEMAPHORE_FLAG_VALUE)
                .param("cas", index),
        )
        .map_err(|e| format!("failed to update lock: {e}"))
}

/// consul's `Semaphore.Acquire`. `Ok(true)`: a slot is ours; `Ok(false)`: timed out.
pub fn acquire(
    client: &Client,
    prefix: &str,
    limit: i64,
    session: &str,
    timeout: Option<Duration>,
) -> Result<bool, String> {
    let made = client.kv_put(
        &contender_key(prefix, session),
        b"",
        Query::write()
            .param("flags", SEMAPHORE_FLAG_VALUE)
            .param("acquire", session),
    );
    match made {
        Ok(true) => {}
        Ok(false) => return Err("failed to make contender entry: <nil>".into()),
        Err(e) => return Err(format!("failed to make contender entry: {e}")),
    }
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut wait_index: Option<u64> = None;
    loop {
        let mut wait_time = WAIT;
        if let Some(t) = timeout {
            if attempts > 0 {
                let elapsed = start.elapsed();
                if elapsed > t {
                    return Ok(false);
                }
                wait_time = t - elapsed;
            }
        }
        attempts += 1;
        let mut q = Query::read();
        q.wait_index = wait_index;
        q.wait_time = Some(wait_time);
        let began = Instant::now();
        let (pairs, index) = client
            .kv_list_q(prefix, q)
            .map_err(|e| format!("failed to read prefix: {e}"))?;
        super::lock::pace(began, wait_index, index);
        let lock_pair = find_lock(&pairs, prefix);
        if lock_pair.flags != SEMAPHORE_FLAG_VALUE {
            return Err("Existing key does not match semaphore use".into());
        }
        let mut lock = decode(&lock_pair, limit)?;
        if lock.limit != limit {
            return Err(format!(
                "semaphore limit conflict (lock: {}, local: {limit})",
                lock.limit
            ));
        }
        prune_dead_holders(&mut lock, &pairs);
        if lock.holders.len() as i64 >= lock.limit {
            wait_index = Some(index);
            continue;
        }
        lock.holders.insert(session.to_string(), true);
        if cas_lock(client, prefix, &lock, lock_pair.modify_index)? {
            return Ok(true);
        }
        // Lost a race with another contender: look again.
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `session` still holds a slot; also the index to block on next.
pub fn holds(
    client: &Client,
    prefix: &str,
    limit: i64,
    session: &str,
    q: Query,
) -> Result<(bool, u64), ApiError> {
    let (pairs, index) = client.kv_list_q(prefix, q)?;
    let lock_pair = find_lock(&pairs, prefix);
    let Ok(mut lock) = decode(&lock_pair, limit) else {
        return Ok((false, index));
    };
    prune_dead_holders(&mut lock, &pairs);
    Ok((lock.holders.contains_key(session), index))
}

/// consul's `Semaphore.Release`: leave the holders, delete the contender key.
pub fn release(client: &Client, prefix: &str, limit: i64, session: &str) -> Result<(), String> {
    let key = lock_key(prefix);
    loop {
        let (pair, _) = client
            .kv_get(&key, Query::read())
            .map_err(|e| e.to_string())?;
        let pair = pair.unwrap_or_default();
        let mut lock = decode(&pair, limit)?;
        if lock.holders.remove(session).is_none() {
            break;
        }
        if cas_lock(client, prefix, &lock, pair.modify_index)? {
            break;
        }
    }
    client
        .kv_delete(&contender_key(prefix, session), Query::write())
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// consul's `Semaphore.Destroy`: delete `.lock` unless a live holder remains. `Ok(false)`: in
/// use.
pub fn destroy(client: &Client, prefix: &str, limit: i64) -> Result<bool, String> {
    let pairs = client
        .kv_list(prefix)
        .map_err(|e| format!("failed to read prefix: {e}"))?;
    let lock_pair = find_lock(&pairs, prefix);
    if lock_pair.modify_index == 0 {
        return Ok(true);
    }
    if lock_pair.flags != SEMAPHORE_FLAG_VALUE {
        return Err("Existing key does not match semaphore use".into());
    }
    let mut lock = decode(&lock_pair, limit)?;
    prune_dead_holders(&mut lock, &pairs);
    if !lock.holders.is_empty() {
        return Ok(false);
    }
    client
        .kv_delete(
            &lock_pair.key,
            Query::write().param("cas", lock_pair.modify_index),
        )
        .map_err(|e| format!("failed to remove semaphore: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_value_is_consuls_json() {
        let mut l = SemaphoreLock {
            limit: 2,
            holders: BTreeMap::new(),
        };
        l.holders.insert("b".into(), true);
        l.holders.insert("a".into(), true);
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"Limit":2,"Holders":{"a":true,"b":true}}"#
        );
        let back: SemaphoreLock = serde_json::from_str(r#"{"Limit":3,"Holders":null}"#).unwrap();
        assert_eq!(
            back,
            SemaphoreLock {
                limit: 3,
                holders: BTreeMap::new()
            }
        );
    }

    #[test]
    fn keys() {
        assert_eq!(lock_key("svc/sem"), "svc/sem/.lock");
        assert_eq!(contender_key("svc/sem/", "abc"), "svc/sem/abc");
    }

    #[test]
    fn dead_holders_are_pruned() {
        let mut l = SemaphoreLock {
            limit: 2,
            holders: BTreeMap::new(),
        };
        l.holders.insert("live".into(), true);
        l.holders.insert("dead".into(), true);
        let pairs = vec![
            KvPair {
                key: "p/live".into(),
                session: Some("live".into()),
                ..Default::default()
            },
            KvPair {
                key: "p/.lock".into(),
                ..Default::default()
            },
        ];
        prune_dead_holders(&mut l, &pairs);
        assert_eq!(l.holders.keys().collect::<Vec<_>>(), vec!["live"]);
    }

    #[test]
    fn missing_lock_entry_is_empty_with_our_limit() {
        let p = find_lock(&[], "p");
        assert_eq!(p.modify_index, 0);
        let l = decode(&p, 4).unwrap();
        assert_eq!(
            l,
            SemaphoreLock {
                limit: 4,
                holders: BTreeMap::new()
            }
        );
    }
}
