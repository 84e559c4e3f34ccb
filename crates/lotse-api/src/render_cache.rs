//! Rendered answers of the hottest blocking endpoints (`/v1/health/service/:s` and
//! `/v1/catalog/service/:s`), shared by every request that asks the same question of the same
//! state.
//!
//! **Why.** One change to a service wakes every blocking query parked on it, and each would
//! copy the instances out of the store under its read lock and render the same JSON again:
//! with 1,000 watchers of a 5,000-instance service that is 1,000 copies and renderings of
//! megabytes per change, all of them identical. Here the read closure first looks the answer
//! up (one map lookup under the cache's mutex, while the store's read lock is held); on a hit
//! the body is handed out as a reference-counted [`Bytes`] and nothing is copied or rendered.
//! On a miss the closure only clones the rows; they are rendered after the lock is released
//! and the body is stored for the next watcher. A render runs on the woken task's own worker
//! thread, so one change costs about one rendering per worker thread, not one per watcher.
//!
//! **Why it is never stale.** An entry is the body for one [`Key`] at one service index, and
//! it is used only when the service's index in the store is *exactly* that index, read under
//! the same read lock as a fresh answer would be. That is sound because:
//! * the store moves a service's index with everything these answers show: its instances,
//!   their nodes, every check on those nodes, the service name and tags copied into checks
//!   (`lotse-core::store::catalog`); a name never seen has index 1 and answers `[]`;
//! * every state a reader can observe has its own index: a Raft entry (a batch included) is
//!   applied under one write lock and takes the entry's log index, so no two observable
//!   states of a service share an index;
//! * the key holds every request input the body depends on: endpoint, service name, tags,
//!   node-meta, `?passing`, `?filter`, pretty-printing (which `-dev` turns on), and `?dc` and
//!   `?near` (accepted and without effect today, but they would change the body with
//!   federation or coordinates). Headers (`X-Consul-Index`, `KnownLeader`...) are made per
//!   request and are not cached.
//!
//! An older render never replaces a newer one. Bounds: at most [`MAX_ENTRIES`] entries and
//! [`MAX_BYTES`] of bodies, least recently used evicted first; a body above
//! [`MAX_ENTRY_BYTES`] is rendered per request and not kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::response::Response;
use lotse_core::store::ServiceQuery;
use lotse_core::{Store, WatchKey};
use lotse_server::QueryMeta;

use crate::catalog_query::{after_meta, service_filters, with_query_meta, Query, Reply};
use crate::params::Params;
use crate::reply::{json_response, ApiError};
use crate::State;

/// Most answers kept.
pub const MAX_ENTRIES: usize = 256;
/// Most bytes of answers kept.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Largest answer kept: a quarter of the budget, so one answer cannot flush all others.
pub const MAX_ENTRY_BYTES: usize = MAX_BYTES / 4;

/// The endpoints whose answers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    HealthService,
    CatalogService,
}

/// Everything an answer's body depends on besides the store's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    endpoint: Endpoint,
    service: String,
    /// Every `?tag=` must match, so their order and repeats do not matter: sorted, unique.
    tags: Vec<String>,
    /// `?node-meta=` as the query reads it (last value of a key wins, sorted by key).
    node_meta: Vec<(String, String)>,
    passing: bool,
    /// The expression as given; empty means none (as Consul reads an empty `?filter=`).
    filter: String,
    pretty: bool,
    /// Empty for the agent's own datacenter (given or not): the only one that is answered.
    dc: String,
    near: String,
}

impl Key {
    /// The key of a request for `service` on `endpoint`, with `?passing` already read.
    pub fn new(
        endpoint: Endpoint,
        service: &str,
        params: &Params,
        local_dc: &str,
        passing: bool,
    ) -> Key {
        let mut tags: Vec<String> = params.all("tag").into_iter().map(str::to_string).collect();
        tags.sort();
        tags.dedup();
        let dc = params.get("dc").filter(|dc| *dc != local_dc).unwrap_or("");
        Key {
            endpoint,
            service: service.to_string(),
            tags,
            node_meta: params.node_meta(),
            passing,
            filter: params.get("filter").unwrap_or("").to_string(),
            pretty: params.pretty(),
            dc: dc.to_string(),
            near: params.get("near").unwrap_or("").to_string(),
        }
    }

    fn weight(&self, body: &Bytes) -> usize {
        body.len() + self.service.len() + self.filter.len() + 128
    }
}

struct Entry {
    index: u64,
    body: Bytes,
    /// The clock reading of the last use, for least-recently-used eviction.
    used: u64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
}

/// The cache; one per router ([`crate::router`] hands it to the handlers as an extension).
#[derive(Default)]
pub struct RenderCache {
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a read closure found.
enum Found<T> {
    /// A body rendered before, for exactly this index.
    Cached(Bytes),
    /// The rows to render, at `index`.
    Rows { index: u64, rows: T },
}

impl RenderCache {
    pub fn new() -> RenderCache {
        RenderCache::default()
    }

    /// The body kept for `key` if it was rendered at exactly `index`.
    pub fn get(&self, key: &Key, index: u64) -> Option<Bytes> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.clock += 1;
        let now = e.clock;
        let found = e.map.get_mut(key).filter(|entry| entry.index == index);
        let body = found.map(|entry| {
            entry.used = now;
            entry.body.clone()
        });
        let counter = if body.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Relaxed);
        body
    }

    /// Keeps `body` as the answer to `key` at `index`, unless a newer one is kept already.
    pub fn put(&self, key: Key, index: u64, body: Bytes) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.map.get(&key).is_some_and(|old| old.index > index) {
            return;
        }
        if let Some(old) = e.map.remove(&key) {
            e.bytes = e.bytes.saturating_sub(key.weight(&old.body));
        }
        let weight = key.weight(&body);
        if weight > MAX_ENTRY_BYTES {
            return;
        }
        e.clock += 1;
        let used = e.clock;
        while !e.map.is_empty() && (e.map.len() >= MAX_ENTRIES || e.bytes + weight > MAX_BYTES) {
            e.evict_oldest();
        }
        e.bytes += weight;
        e.map.insert(key, Entry { index, body, used });
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }

    /// (entries, bytes) kept now.
    pub fn size(&self) -> (usize, usize) {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        (e.map.len(), e.bytes)
    }

    /// A read of service `name` on `endpoint` through the cache, answered whole with its
    /// query headers. `rows` collects, under the store's read lock, the instances that `?tag`
    /// and `?node-meta` select; `render` writes them (with `?filter` and pretty-printing)
    /// after the lock is released. The body depends on the service's index alone.
    #[allow(clippy::too_many_arguments)]
    pub async fn service<T>(
        &self,
        state: &State,
        params: &Params,
        q: &Query,
        endpoint: Endpoint,
        name: &str,
        passing: bool,
        rows: impl Fn(&Store, &ServiceQuery<'_>) -> T,
        render: impl FnOnce(T) -> Result<Bytes, ApiError>,
    ) -> Reply {
        let (tags, node_meta) = service_filters(params);
        let watch = [WatchKey::Service(name.to_string())];
        let key = Key::new(endpoint, name, params, &state.agent.datacenter, passing);
        let collect = |s: &Store| {
            let sq = ServiceQuery {
                tags: &tags,
                node_meta: &node_meta,
            };
            rows(s, &sq)
        };
        let index_of = |s: &Store| s.service_index(name);
        let (meta, body) = self
            .read(state, q, &watch, &key, index_of, collect, render)
            .await?;
        Ok(with_query_meta(json_response(body), &meta))
    }

    /// A blocking read whose body is looked up here first. `index_of` is the index the body
    /// depends on (the service's); `rows` collects, under the store's read lock, what
    /// `render` turns into the body after the lock is released.
    #[allow(clippy::too_many_arguments)]
    async fn read<T>(
        &self,
        state: &State,
        q: &Query,
        watch: &[WatchKey],
        key: &Key,
        index_of: impl Fn(&Store) -> u64,
        rows: impl Fn(&Store) -> T,
        render: impl FnOnce(T) -> Result<Bytes, ApiError>,
    ) -> Result<(QueryMeta, Bytes), Response> {
        let min_index = q.opts.min_index;
        // `None`: the index has not passed `?index=`, so the query goes back to sleep and the
        // rows are not needed (unless the wait runs out: then they are read once more below).
        let (mut meta, found) = q
            .read(state, watch, |s| {
                let index = index_of(s);
                if min_index > 0 && index <= min_index {
                    return (index, None);
                }
                (index, Some(self.lookup(s, key, index, &rows)))
            })
            .await?;
        let found = match found {
            Some(found) => found,
            None => {
                let (index, found) = state.server()?.peek(|s| {
                    let index = index_of(s);
                    (index, self.lookup(s, key, index, &rows))
                });
                meta.index = index.max(1);
                found
            }
        };
        match found {
            Found::Cached(body) => Ok((meta, body)),
            Found::Rows { index, rows } => {
                let body = render(rows).map_err(after_meta)?;
                self.put(key.clone(), index, body.clone());
                Ok((meta, body))
            }
        }
    }

    fn lookup<T>(&self, s: &Store, key: &Key, index: u64, rows: impl Fn(&Store) -> T) -> Found<T> {
        match self.get(key, index) {
            Some(body) => Found::Cached(body),
            None => Found::Rows {
                index,
                rows: rows(s),
            },
        }
    }
}

impl Entries {
    fn evict_oldest(&mut self) {
        let oldest = self
            .map
            .iter()
            .min_by_key(|(_, e)| e.used)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            if let Some(old) = self.map.remove(&k) {
                self.bytes = self.bytes.saturating_sub(k.weight(&old.body));
            }
        }
    }
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.size();
        let (hits, misses) = self.stats();
        f.debug_struct("RenderCache")
            .field("entries", &entries)
            .field("bytes", &bytes)
            .field("hits", &hits)
            .field("misses", &misses)
            .finish()
    }
}

#[cfg(test)]
mod tests;
