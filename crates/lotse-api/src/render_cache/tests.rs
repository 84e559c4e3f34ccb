//! The cache's own rules, and the proof that it never serves a stale answer: after every one
//! of a few hundred random catalog writes, every query variant answered through a shared
//! cache equals the same query answered through an empty one.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, Path, State as AxState};
use axum::response::IntoResponse;
use lotse_core::catalog::{CheckStatus, HealthCheck, Service};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::test_state::{self, deregister, node, parts, register};
use crate::{catalog, health};

fn key(service: &str, query: &str) -> Key {
    let params = Params::from_query(query).unwrap();
    Key::new(Endpoint::HealthService, service, &params, "dc1", false)
}

#[test]
fn an_entry_serves_only_its_exact_index_and_an_older_render_never_replaces_it() {
    let cache = RenderCache::new();
    let k = key("web", "");
    cache.put(k.clone(), 7, Bytes::from_static(b"seven"));
    assert_eq!(cache.get(&k, 7).as_deref(), Some(&b"seven"[..]));
    assert_eq!(cache.get(&k, 6), None);
    assert_eq!(cache.get(&k, 8), None);
    // A slow render of an older state lands after a newer one: the newer one stays.
    cache.put(k.clone(), 9, Bytes::from_static(b"nine"));
    cache.put(k.clone(), 8, Bytes::from_static(b"eight"));
    assert_eq!(cache.get(&k, 9).as_deref(), Some(&b"nine"[..]));
    assert_eq!(cache.get(&k, 8), None);
    assert_eq!(cache.size().0, 1);
    assert_eq!(cache.stats(), (2, 3));
}

#[test]
fn keys_hold_every_input_of_the_body_and_ignore_what_does_not_change_it() {
    let same = [
        ("tag=a&tag=b", "tag=b&tag=a&tag=a"),
        ("", "filter="),
        ("", "dc=dc1"),
        ("node-meta=r:1&node-meta=r:2", "node-meta=r:2"),
        ("index=5&wait=1s&stale", ""),
    ];
    for (a, b) in same {
        assert_eq!(key("web", a), key("web", b), "{a} vs {b}");
    }
    let different = [
        ("tag=a", "tag=A"),
        ("", "pretty"),
        ("", "filter=Service.Port == 80"),
        ("", "node-meta=r:1"),
        ("", "near=n2"),
        ("", "dc=dc2"),
    ];
    for (a, b) in different {
        assert_ne!(key("web", a), key("web", b), "{a} vs {b}");
    }
    assert_ne!(key("web", ""), key("api", ""));
    let p = Params::from_query("").unwrap();
    assert_ne!(
        Key::new(Endpoint::HealthService, "web", &p, "dc1", true),
        Key::new(Endpoint::HealthService, "web", &p, "dc1", false)
    );
    assert_ne!(
        Key::new(Endpoint::HealthService, "web", &p, "dc1", false),
        Key::new(Endpoint::CatalogService, "web", &p, "dc1", false)
    );
}

#[test]
fn the_cache_keeps_within_its_bounds_and_evicts_the_least_recently_used() {
    let cache = RenderCache::new();
    let first = key("s0", "");
    cache.put(first.clone(), 1, Bytes::from_static(b"x"));
    for i in 1..MAX_ENTRIES + 50 {
        // Keep the first entry in use: it must survive every eviction.
        assert!(cache.get(&first, 1).is_some(), "evicted at {i}");
        cache.put(key(&format!("s{i}"), ""), 1, Bytes::from_static(b"x"));
    }
    assert_eq!(cache.size().0, MAX_ENTRIES);
    assert!(cache.get(&key("s1", ""), 1).is_none(), "the oldest went");
    // An answer above the per-entry limit is not kept (and drops the older one it replaces).
    let big = Bytes::from(vec![b' '; MAX_ENTRY_BYTES + 1]);
    cache.put(first.clone(), 2, big);
    assert!(cache.get(&first, 2).is_none());
    assert!(cache.get(&first, 1).is_none());
    // Large answers are evicted to stay under the byte budget.
    for i in 0..5 {
        let body = Bytes::from(vec![b' '; MAX_ENTRY_BYTES - 1024]);
        cache.put(key(&format!("big{i}"), ""), 1, body);
    }
    assert!(cache.size().1 <= MAX_BYTES);
}

/// The queries compared after each write: every input the key holds, in several values.
const HEALTH_QUERIES: [&str; 12] = [
    "",
    "pretty",
    "tag=a",
    "tag=a&tag=b",
    "tag=A",
    "passing",
    "passing=1&tag=b",
    "passing=maybe",
    "node-meta=rack:r1",
    "filter=Checks.Status == critical",
    "filter=Service.Port == 8081&passing",
    "near=_agent&dc=dc1",
];
const CATALOG_QUERIES: [&str; 5] = [
    "",
    "pretty",
    "tag=b",
    "node-meta=rack:r2",
    "filter=ServicePort != 8080",
];

/// The answer to `GET /v1/<endpoint>/service/web?<q>` through `cache`.
async fn answer(
    state: &State,
    cache: &Arc<RenderCache>,
    endpoint: Endpoint,
    q: &str,
) -> (u16, u64, Bytes) {
    let params = Params::from_query(q).unwrap();
    let (state, cache) = (AxState(state.clone()), Extension(cache.clone()));
    let path = Some(Path("web".to_string()));
    let reply = match endpoint {
        Endpoint::HealthService => health::service(state, cache, path, params).await,
        Endpoint::CatalogService => catalog::service(state, cache, path, params).await,
    };
    parts(reply.into_response()).await
}

async fn health_answer(state: &State, cache: &Arc<RenderCache>, q: &str) -> (u16, u64, Bytes) {
    answer(state, cache, Endpoint::HealthService, q).await
}

async fn catalog_answer(state: &State, cache: &Arc<RenderCache>, q: &str) -> (u16, u64, Bytes) {
    answer(state, cache, Endpoint::CatalogService, q).await
}

/// One random catalog write that may or may not touch service `web` (its instances, their
/// checks, their nodes and node-level checks) or only service `api`.
async fn random_write(state: &State, rng: &mut StdRng) {
    let nodes = ["na", "nb", "nc"];
    let n = nodes[rng.gen_range(0..nodes.len())];
    let rack = if rng.gen_bool(0.5) { "r1" } else { "r2" };
    let status = [
        CheckStatus::Passing,
        CheckStatus::Warning,
        CheckStatus::Critical,
    ][rng.gen_range(0..3)];
    let id = format!("web-{}", rng.gen_range(0..3));
    let drop_node = rng.gen_bool(0.3);
    // Writes the store refuses (a check for a service not on the node) are part of the mix.
    let _ = match rng.gen_range(0..9) {
        // The node itself (address, meta), which every instance on it shows.
        0 => register(state, node(n, "", &[("rack", rack)]), None, vec![]).await,
        1 | 2 => {
            let tags = ["a", "b", "B"]
                .into_iter()
                .filter(|_| rng.gen_bool(0.5))
                .map(str::to_string)
                .collect();
            let service = Service {
                id,
                name: "web".into(),
                tags,
                port: 8080 + rng.gen_range(0..2),
                ..Service::default()
            };
            register(state, node(n, "", &[("rack", rack)]), Some(service), vec![]).await
        }
        3 => {
            let mut c = HealthCheck::new(n, &format!("c-{id}"), "check");
            c.service_id = id;
            c.status = status;
            c.output = format!("{}", rng.gen::<u16>());
            register(state, node(n, "", &[("rack", rack)]), None, vec![c]).await
        }
        // A node-level check, which every instance on the node shows.
        4 => {
            let mut c = HealthCheck::new(n, "serf", "node check");
            c.status = status;
            register(state, node(n, "", &[("rack", rack)]), None, vec![c]).await
        }
        5 => deregister(state, n, Some(&id), None).await,
        6 => deregister(state, n, None, Some(&format!("c-{id}"))).await,
        7 if drop_node => deregister(state, n, None, None).await,
        // Another service: `web`'s index stays, so its entries must keep serving.
        _ => {
            let api = Service {
                id: "api-1".into(),
                name: "api".into(),
                port: rng.gen_range(1..1000),
                ..Service::default()
            };
            let keep_node = lotse_core::catalog::RegisterRequest {
                node: node(n, "", &[]),
                skip_node_update: true,
                service: Some(api),
                checks: vec![],
            };
            let cmd = lotse_core::Command::CatalogRegister {
                req: Box::new(keep_node),
                now_ms: lotse_server::now_ms(),
            };
            crate::test_state::srv(state).write(cmd).await.map(|_| ())
        }
    };
}

#[tokio::test]
async fn cached_answers_equal_fresh_ones_after_every_change() {
    let state = test_state::state().await;
    let shared = Arc::new(RenderCache::new());
    let mut rng = StdRng::seed_from_u64(0x10753);
    for step in 0..150 {
        random_write(&state, &mut rng).await;
        for q in HEALTH_QUERIES {
            let fresh = health_answer(&state, &Arc::new(RenderCache::new()), q).await;
            // Twice: the first may render (or find an entry of an earlier step), the second
            // must find this step's.
            for _ in 0..2 {
                let cached = health_answer(&state, &shared, q).await;
                assert_eq!(cached, fresh, "step {step}, health query {q:?}");
            }
        }
        for q in CATALOG_QUERIES {
            let fresh = catalog_answer(&state, &Arc::new(RenderCache::new()), q).await;
            let cached = catalog_answer(&state, &shared, q).await;
            assert_eq!(cached, fresh, "step {step}, catalog query {q:?}");
        }
    }
    let (hits, misses) = shared.stats();
    // Every second health query per step is a hit, and writes to other services leave
    // entries in place.
    assert!(hits > 150 * 11, "hits {hits}, misses {misses}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchers_woken_by_one_change_share_one_rendering() {
    let state = test_state::state().await;
    for i in 0..200 {
        let service = Service {
            id: format!("web-{i}"),
            name: "web".into(),
            port: 8080,
            ..Service::default()
        };
        let n = node(&format!("node-{i}"), "", &[("rack", "r1")]);
        let mut c = HealthCheck::new(&n.name, &format!("c-{i}"), "check");
        c.service_id = service.id.clone();
        c.status = CheckStatus::Passing;
        register(&state, n, Some(service), vec![c]).await.unwrap();
    }
    let cache = Arc::new(RenderCache::new());
    let (_, index, _) = health_answer(&state, &cache, "").await;
    const WATCHERS: usize = 50;
    let parked_before = crate::test_state::srv(&state).hub().parked();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let (state, cache) = (state.clone(), cache.clone());
        let q = format!("index={index}&wait=30s");
        watchers.push(tokio::spawn(async move {
            health_answer(&state, &cache, &q).await
        }));
    }
    let parked = async {
        while crate::test_state::srv(&state).hub().parked() < parked_before + WATCHERS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), parked)
        .await
        .expect("every watcher parks");
    let (hits, misses) = cache.stats();
    let mut c = HealthCheck::new("node-7", "c-7", "check");
    c.service_id = "web-7".into();
    c.status = CheckStatus::Critical;
    register(&state, node("node-7", "", &[("rack", "r1")]), None, vec![c])
        .await
        .unwrap();
    let fresh = health_answer(&state, &Arc::new(RenderCache::new()), "").await;
    assert!(fresh.1 > index);
    for w in watchers {
        let answer = tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(answer, fresh);
    }
    let (hits_after, misses_after) = cache.stats();
    // A miss renders on its own worker thread before the body is stored, so at most one
    // watcher per worker thread can miss; all the others share a rendering.
    assert!(
        misses_after - misses <= 2,
        "misses {}",
        misses_after - misses
    );
    assert!(hits_after - hits >= (WATCHERS - 2) as u64);
}
