//! API-key authentication for gateway routes, with the keys kept in Lotse's KV store: every
//! entry under a prefix (`gateway/keys/alice` = `<the key>`) is a valid key, named after the
//! last segment of its path. A blocking query on the prefix (`?recurse&index=N`) keeps the set
//! current; a key deleted from the KV stops working within one query round trip.
//!
//! [`super::auth`] checks requests against the set ([`Keys::lookup`]). If the agent cannot be
//! reached, the last known keys stay in force.
//!
//! The set holds no key itself: each is stored as its HMAC-SHA256 tag under a random key made
//! when the set is built, and a presented key is looked up by its tag. A plain map of strings
//! compares the presented key with a stored one byte by byte, so its timing tells how long a
//! guessed prefix is right; here what the lookup compares are tags the client cannot compute,
//! and the HMAC itself runs in time independent of the key's content.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::sync::watch;

use crate::discovery::AgentAddr;

/// The keys in force, shared with the routes that check them.
pub type KeySet = Arc<Keys>;

/// API keys by HMAC tag; see the module doc for why.
pub struct Keys {
    mac: ring::hmac::Key,
    by_tag: HashMap<[u8; 32], String>,
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new(HashMap::new())
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: never the tags, nor anything derived from a key.
        f.debug_struct("Keys")
            .field("len", &self.by_tag.len())
            .finish()
    }
}

impl Keys {
    /// Builds the set from key → name.
    pub fn new(keys: HashMap<String, String>) -> Keys {
        let secret: [u8; 32] = rand::random();
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let by_tag = keys
            .into_iter()
            .map(|(key, name)| (tag(&mac, &key), name))
            .collect();
        Keys { mac, by_tag }
    }

    /// The name of the key presented, if it is one of the set.
    pub fn lookup(&self, presented: &str) -> Option<&str> {
        self.by_tag
            .get(&tag(&self.mac, presented))
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }
}

fn tag(mac: &ring::hmac::Key, key: &str) -> [u8; 32] {
    let t = ring::hmac::sign(mac, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&t.as_ref()[..32]);
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvEntry {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

/// The key set from a `GET /v1/kv/<prefix>?recurse` answer (values are base64).
pub fn keys_from(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let entries: Vec<KvEntry> =
        serde_json::from_slice(body).map_err(|e| format!("bad KV answer: {e}"))?;
    let mut out = HashMap::new();
    for e in entries {
        let Some(value) = e
            .value
            .as_deref()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        else {
            continue;
        };
        let Ok(key) = String::from_utf8(value) else {
            continue;
        };
        let key = key.trim().to_string();
        if key.is_empty() {
            continue;
        }
        let name = e.key.rsplit('/').next().unwrap_or_default().to_string();
        out.insert(key, name);
    }
    Ok(out)
}

/// Follows `prefix` in the KV store until `shutdown` turns true.
pub async fn follow(
    agent: AgentAddr,
    prefix: String,
    tx: watch::Sender<KeySet>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut index = 0u64;
    let mut backoff = Duration::from_millis(250);
    loop {
        let url = format!(
            "{}/v1/kv/{}?recurse&index={index}&wait=30s",
            agent.base.trim_end_matches('/'),
            prefix.trim_start_matches('/')
        );
        let result = tokio::select! {
            r = fetch(&client, &url, agent.token.as_deref()) => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok((new_index, body)) => {
                backoff = Duration::from_millis(250);
                let keys = if body.is_empty() {
                    Ok(HashMap::new())
                } else {
                    keys_from(&body)
                };
                match keys {
                    Ok(keys) => {
                        if new_index != index || index == 0 {
                            tracing::info!(prefix = %prefix, keys = keys.len(), "api keys updated");
                            tx.send_replace(Arc::new(Keys::new(keys)));
                        }
                        index = if new_index < index { 0 } else { new_index };
                        if new_index == 0 {
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                _ = shutdown.changed() => return,
                            }
                        }
                        continue;
                    }
                    Err(e) => tracing::warn!(prefix = %prefix, error = %e, "api keys not read"),
                }
            }
            Err(e) => {
                tracing::warn!(prefix = %prefix, error = %e, "api keys not read; keeping the last known")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn fetch(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
    token: Option<&str>,
) -> Result<(u64, Bytes), String> {
    let mut req = Request::get(url);
    if let Some(t) = token {
        req = req.header("X-Consul-Token", t);
    }
    let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(40), client.request(req))
        .await
        .map_err(|_| "agent did not answer in 40s".to_string())?
        .map_err(|e| format!("agent unreachable: {e}"))?;
    let status = resp.status();
    let index = resp
        .headers()
        .get("x-consul-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = tokio::time::timeout(
        Duration::from_secs(10),
        Limited::new(resp.into_body(), 8 << 20).collect(),
    )
    .await
    .map_err(|_| "agent answer timed out".to_string())?
    .map_err(|e| e.to_string())?
    .to_bytes();
    match status {
        // No key under the prefix: an empty set (every request refused).
        StatusCode::NOT_FOUND => Ok((index, Bytes::new())),
        StatusCode::OK => Ok((index, body)),
        s => Err(format!("agent answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_values_named_by_path() {
        // "s3cret" and "other" in base64.
        let body = br#"[{"Key": "gw/keys/alice", "Value": "czNjcmV0"},
                        {"Key": "gw/keys/bob", "Value": "b3RoZXI="},
                        {"Key": "gw/keys/empty", "Value": null}]"#;
        let keys = keys_from(body).expect("valid");
        assert_eq!(keys.get("s3cret").map(String::as_str), Some("alice"));
        assert_eq!(keys.get("other").map(String::as_str), Some("bob"));
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn lookups_find_exact_keys_only() {
        let keys = Keys::new(HashMap::from([
            ("s3cret".to_string(), "alice".to_string()),
            ("other".to_string(), "bob".to_string()),
        ]));
        assert_eq!(keys.lookup("s3cret"), Some("alice"));
        assert_eq!(keys.lookup("other"), Some("bob"));
        for wrong in ["s3cre", "s3cret ", "S3CRET", "", "s3cretx"] {
            assert_eq!(keys.lookup(wrong), None, "{wrong:?}");
        }
        assert!(Keys::default().is_empty());
        // The debug output names no key.
        assert!(!format!("{keys:?}").contains("s3cret"));
    }
}
