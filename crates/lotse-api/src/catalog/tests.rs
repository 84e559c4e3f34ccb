//! Blocking reads of the catalog handlers that depend on more than one row.

use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::response::IntoResponse;

use super::node;
use crate::params::Params;
use crate::test_state::{self, parts, register};

async fn node_answer(state: &crate::State, name: &str, query: &str) -> (u16, u64, String) {
    let params = Params::from_query(query).unwrap();
    let reply = node(AxState(state.clone()), Some(Path(name.to_string())), params).await;
    let (status, index, body) = parts(reply.into_response()).await;
    (status, index, String::from_utf8(body.to_vec()).unwrap())
}

/// `/v1/catalog/node/abcd` finds the only node whose ID starts with `abcd`. When a second one
/// appears the prefix is ambiguous and the answer is `null`: a query blocked on the first
/// answer must wake with a newer index, though neither node's name is `abcd`.
#[tokio::test]
async fn a_node_found_by_id_prefix_wakes_its_watchers_when_the_prefix_turns_ambiguous() {
    let state = test_state::state().await;
    let a = test_state::node("node-a", "abcd0000-0000-4000-8000-000000000001", &[]);
    register(&state, a, None, vec![]).await.unwrap();
    let (status, index, body) = node_answer(&state, "abcd", "").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""Node":"node-a""#), "{body}");

    let watcher = {
        let state = state.clone();
        let q = format!("index={index}&wait=30s");
        tokio::spawn(async move { node_answer(&state, "abcd", &q).await })
    };
    // Writes to other nodes wake it (it watches the nodes table) but do not answer it.
    let other = test_state::node("node-x", "ffff0000-0000-4000-8000-000000000009", &[]);
    register(&state, other, None, vec![]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!watcher.is_finished(), "answered on another node's write");
    let b = test_state::node("node-b", "ABCD0000-0000-4000-8000-000000000002", &[]);
    register(&state, b, None, vec![]).await.unwrap();
    let (status, woken_index, body) = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("the watcher wakes")
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "null"));
    assert!(woken_index > index, "{woken_index} > {index}");
    // And the unknown-by-prefix answer's index never goes below the one it replaced.
    let (_, now, _) = node_answer(&state, "abcd", "").await;
    assert!(now >= woken_index);
    // Gone again: the prefix finds node-b alone, and a query blocked on `null` wakes.
    let watcher = {
        let state = state.clone();
        let q = format!("index={now}&wait=30s");
        tokio::spawn(async move { node_answer(&state, "abcd", &q).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    test_state::deregister(&state, "node-a", None, None)
        .await
        .unwrap();
    let (_, last, body) = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("the watcher wakes")
        .unwrap();
    assert!(body.contains(r#""Node":"node-b""#), "{body}");
    assert!(last > now);
}
