//! Response caching for gateway routes: `GET` (and `HEAD`) answers that say they may be shared
//! (`Cache-Control: max-age=N` or `s-maxage=N`, not `private`/`no-store`/`no-cache`, no
//! `Set-Cookie`, no `Vary` but `Accept-Encoding`) are kept for that long, within a memory bound.
//!
//! Requests with `Authorization` or `Cache-Control: no-cache`/`no-store` bypass the cache.
//! Only answers with a `Content-Length` up to `max_entry_bytes` are stored (the body is read
//! whole, then served from memory); the oldest entries go first when `max_bytes` is exceeded.
//! Hits carry `Age` and `x-lotse-cache: hit`. Expiry runs on the injected clock.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower_service::Service;

use crate::clock::SharedClock;
use crate::l7::layers::BoxFuture;
use crate::l7::{local, ProxyBody};
use crate::upstream::Upstream;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheConfig {
    pub max_bytes: usize,
    pub max_entry_bytes: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    stored_at: Duration,
    expires_at: Duration,
}

impl Entry {
    fn size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len())
                .sum::<usize>()
    }
}

/// The store: entries by key, and their insertion order for eviction.
#[derive(Debug)]
pub struct Store {
    cfg: CacheConfig,
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Store {
    pub fn new(cfg: CacheConfig) -> Self {
        Store {
            cfg,
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }

    fn get(&mut self, key: &str, now: Duration) -> Option<Entry> {
        let e = self.entries.get(key)?;
        if now < e.expires_at {
            return Some(e.clone());
        }
        self.remove(key);
        None
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.size();
            self.order.retain(|k| k != key);
        }
    }

    fn put(&mut self, key: String, e: Entry) {
        let size = e.size();
        if size > self.cfg.max_entry_bytes || size > self.cfg.max_bytes {
            return;
        }
        self.remove(&key);
        // Bounded: each turn removes one entry.
        while self.bytes + size > self.cfg.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.entries.remove(&oldest) {
                self.bytes -= old.size();
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.entries.insert(key, e);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The directives of a `Cache-Control` header, lowercased.
fn directives(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect()
}

/// How long a response may be shared, if at all.
pub fn shared_lifetime(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::OK || headers.contains_key(http::header::SET_COOKIE) {
        return None;
    }
    if let Some(vary) = headers
        .get(http::header::VARY)
        .and_then(|v| v.to_str().ok())
    {
        if vary
            .split(',')
            .any(|v| !v.trim().eq_ignore_ascii_case("accept-encoding"))
        {
            return None;
        }
    }
    let d = directives(headers);
    if d.iter()
        .any(|x| x == "private" || x == "no-store" || x == "no-cache")
    {
        return None;
    }
    let age = |name: &str| {
        d.iter()
            .find_map(|x| x.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok())
    };
    age("s-maxage")
        .or_else(|| age("max-age"))
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

fn cacheable_request<B>(req: &Request<B>) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && !req.headers().contains_key(http::header::AUTHORIZATION)
        && !req.headers().contains_key(http::header::UPGRADE)
        && !directives(req.headers())
            .iter()
            .any(|x| x == "no-cache" || x == "no-store")
}

fn key<B>(req: &Request<B>) -> String {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    format!("{} {host}{pq}", req.method())
}

/// Wraps a route's stack with the cache (`store: None`: no caching).
#[derive(Clone)]
pub struct Cache<S> {
    pub inner: S,
    pub store: Option<Arc<Mutex<Store>>>,
    pub clock: SharedClock,
    /// The route's upstream, for its metrics.
    pub upstream: Arc<Upstream>,
}

impl<S, B> Service<Request<B>> for Cache<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ProxyBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(store) = self.store.clone().filter(|_| cacheable_request(&req)) else {
            return Box::pin(self.inner.call(req));
        };
        let k = key(&req);
        let now = self.clock.now();
        let hit = store.lock().unwrap_or_else(|p| p.into_inner()).get(&k, now);
        if let Some(e) = hit {
            self.upstream.metrics.cache_hits.fetch_add(1, Relaxed);
            self.upstream.metrics.response(e.status.as_u16());
            let mut r = Response::new(ProxyBody::full(e.body));
            *r.status_mut() = e.status;
            *r.headers_mut() = e.headers;
            let age = now.saturating_sub(e.stored_at).as_secs();
            r.headers_mut()
                .insert(http::header::AGE, HeaderValue::from(age));
            r.headers_mut()
                .insert("x-lotse-cache", HeaderValue::from_static("hit"));
            return Box::pin(async move { Ok(r) });
        }
        let clock = self.clock.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let Some(ttl) = shared_lifetime(resp.status(), resp.headers()) else {
                return Ok(resp);
            };
            let max_entry = store
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cfg
                .max_entry_bytes;
            let small = resp
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|n| n <= max_entry);
            if !small {
                return Ok(resp);
            }
            let (head, body) = resp.into_parts();
            let body = match body.collect().await {
                Ok(b) => b.to_bytes(),
                // The upstream broke off before anything went to the client: a clean 502.
                Err(e) => {
                    tracing::debug!(error = %e, "upstream body failed while caching");
                    return Ok(local(StatusCode::BAD_GATEWAY, "upstream-reset"));
                }
            };
            let now = clock.now();
            let entry = Entry {
                status: head.status,
                headers: head.headers.clone(),
                body: body.clone(),
                stored_at: now,
                expires_at: now + ttl,
            };
            store
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .put(k, entry);
            let mut r = Response::from_parts(head, ProxyBody::full(body));
            r.headers_mut()
                .insert("x-lotse-cache", HeaderValue::from_static("miss"));
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn lifetime_follows_cache_control() {
        let ok = StatusCode::OK;
        let life = |pairs: &[(&str, &str)]| shared_lifetime(ok, &headers(pairs));
        assert_eq!(
            life(&[("cache-control", "public, max-age=60")]),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            life(&[("cache-control", "max-age=60, s-maxage=5")]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(life(&[("cache-control", "private, max-age=60")]), None);
        assert_eq!(life(&[("cache-control", "no-store")]), None);
        assert_eq!(life(&[]), None);
        assert_eq!(
            life(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]),
            None
        );
        assert_eq!(
            life(&[("cache-control", "max-age=60"), ("vary", "Cookie")]),
            None
        );
        assert_eq!(
            life(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            shared_lifetime(
                StatusCode::NOT_FOUND,
                &headers(&[("cache-control", "max-age=60")])
            ),
            None
        );
    }

    fn entry(body: &'static [u8], now: Duration, ttl: u64) -> Entry {
        Entry {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body),
            stored_at: now,
            expires_at: now + Duration::from_secs(ttl),
        }
    }

    #[test]
    fn entries_expire_and_the_oldest_go_first() {
        let mut s = Store::new(CacheConfig {
            max_bytes: 10,
            max_entry_bytes: 6,
        });
        let t = Duration::from_secs(100);
        s.put("a".into(), entry(b"aaaa", t, 10));
        s.put("b".into(), entry(b"bbbb", t, 10));
        assert_eq!(s.bytes(), 8);
        s.put("c".into(), entry(b"cccc", t, 10)); // evicts "a"
        assert!(s.get("a", t).is_none());
        assert!(s.get("b", t).is_some());
        s.put("big".into(), entry(b"0123456789", t, 10)); // larger than an entry may be
        assert!(s.get("big", t).is_none());
        assert!(s.get("c", t + Duration::from_secs(10)).is_none()); // expired
        assert_eq!(s.bytes(), 4);
    }

    #[test]
    fn only_plain_gets_are_served_from_the_cache() {
        let mut r = Request::new(());
        assert!(cacheable_request(&r));
        r.headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-cache"));
        assert!(!cacheable_request(&r));
        let mut r = Request::new(());
        r.headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer x"));
        assert!(!cacheable_request(&r));
        let mut r = Request::new(());
        *r.method_mut() = Method::POST;
        assert!(!cacheable_request(&r));
    }
}
