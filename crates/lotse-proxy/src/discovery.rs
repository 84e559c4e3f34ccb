//! Endpoints from the local agent: a blocking query per destination service,
//! `GET /v1/health/service/<name>?passing&index=N&wait=30s`, published into a
//! `watch::Sender<EndpointSet>` whenever the set of instances changes.
//!
//! A new set only changes where *new* requests and connections go; open connections stay
//! where they are. If the agent cannot be reached (or answers an error), the last known set
//! keeps serving, the upstream's discovery status turns `stale` (admin listing, the
//! `lotse_proxy_discovery_stale` gauge, a warning in the log) and the query is retried with a
//! capped backoff. Consul's rules for indexes: an index that goes backwards resets to 0.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::sync::watch;

use crate::endpoint::{Endpoint, EndpointSet};
use crate::upstream::Upstream;

/// How the proxy reaches the agent's HTTP API.
#[derive(Debug, Clone)]
pub struct AgentAddr {
    /// `http://127.0.0.1:8500`
    pub base: String,
    pub token: Option<String>,
}

const WAIT: &str = "30s";
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A health answer larger than this is refused (services of 5,000 instances are ~5 MiB).
const MAX_BODY: usize = 32 << 20;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    #[serde(default)]
    node: Node,
    service: Service,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Node {
    #[serde(default)]
    address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Service {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    weights: Option<Weights>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Weights {
    #[serde(default)]
    passing: u32,
}

/// Turns the agent's health answer into endpoints. Instances with an address that is not an
/// IP (a hostname) are resolved; those that fail to resolve are left out and logged.
async fn endpoints(body: &[u8]) -> Result<Vec<Endpoint>, String> {
    let entries: Vec<Entry> =
        serde_json::from_slice(body).map_err(|e| format!("bad health answer: {e}"))?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let host = if e.service.address.is_empty() {
            e.node.address
        } else {
            e.service.address
        };
        let addr = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, e.service.port),
            Err(_) => match tokio::net::lookup_host((host.as_str(), e.service.port)).await {
                Ok(mut it) => match it.next() {
                    Some(a) => a,
                    None => continue,
                },
                Err(err) => {
                    tracing::warn!(instance = %e.service.id, host = %host, error = %err, "cannot resolve instance address");
                    continue;
                }
            },
        };
        out.push(Endpoint {
            id: e.service.id,
            addr,
            weight: e.service.weights.map(|w| w.passing).unwrap_or(1).max(1),
        });
    }
    Ok(out)
}

fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Follows `service` on the agent until `shutdown` turns true.
pub async fn run(
    agent: AgentAddr,
    service: String,
    tx: watch::Sender<EndpointSet>,
    up: Arc<Upstream>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut index: u64 = 0;
    let mut backoff = Duration::from_millis(250);
    {
        let mut st = up.discovery.lock().unwrap_or_else(|p| p.into_inner());
        st.source = format!("agent {}", agent.base);
    }
    loop {
        let url = format!(
            "{}/v1/health/service/{}?passing&index={index}&wait={WAIT}",
            agent.base.trim_end_matches('/'),
            escape(&service)
        );
        let result = tokio::select! {
            r = query(&client, &url, agent.token.as_deref()) => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok((new_index, body)) => {
                let eps = endpoints(&body).await;
                match eps {
                    Ok(eps) => {
                        backoff = Duration::from_millis(250);
                        mark_ok(&up);
                        // Consul: an index that goes backwards (a restarted agent) resets.
                        let next = if new_index < index { 0 } else { new_index };
                        let count = eps.len();
                        if publish(&tx, new_index, eps) {
                            tracing::info!(upstream = %up.name, service = %service, index = new_index, endpoints = count, "endpoints updated");
                        }
                        index = next;
                        if new_index == 0 {
                            // No index to block on: poll instead of spinning.
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                _ = shutdown.changed() => return,
                            }
                        }
                        continue;
                    }
                    Err(e) => mark_error(&up, &service, e),
                }
            }
            Err(e) => mark_error(&up, &service, e),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Publishes `eps` if they differ from the current set (or none was published yet); true if
/// it did. Every answer is compared, not only one whose index moved: a restarted agent can
/// answer a different set at the index this query last saw.
///
/// The published version only grows, whatever the agent's index does: the upstream rebuilds
/// what it derives from a set (live list, hash ring, in-flight counts) when the version
/// changes, so a restarted agent repeating an old index must not repeat an old version.
fn publish(tx: &watch::Sender<EndpointSet>, index: u64, eps: Vec<Endpoint>) -> bool {
    let mut set = EndpointSet::new(index.max(1), eps);
    tx.send_if_modified(|cur| {
        if cur.version != 0 && cur.endpoints == set.endpoints {
            return false;
        }
        set.version = set.version.max(cur.version.saturating_add(1));
        *cur = set;
        true
    })
}

fn mark_ok(up: &Upstream) {
    let mut st = up.discovery.lock().unwrap_or_else(|p| p.into_inner());
    if st.stale {
        tracing::info!(upstream = %up.name, "agent reachable again");
    }
    st.stale = false;
    st.consecutive_errors = 0;
    up.metrics.discovery_stale.store(false, Relaxed);
}

fn mark_error(up: &Upstream, service: &str, err: String) {
    up.metrics.discovery_errors.fetch_add(1, Relaxed);
    up.metrics.discovery_stale.store(true, Relaxed);
    let mut st = up.discovery.lock().unwrap_or_else(|p| p.into_inner());
    if !st.stale {
        tracing::warn!(upstream = %up.name, service = %service, error = %err, "agent unreachable, keeping the last known endpoints");
    }
    st.stale = true;
    st.consecutive_errors += 1;
    st.last_error = Some(err);
}

async fn query(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
    token: Option<&str>,
) -> Result<(u64, Bytes), String> {
    let mut req = Request::get(url);
    if let Some(t) = token {
        req = req.header("X-Consul-Token", t);
    }
    let req = req
        .body(Empty::new())
        .map_err(|e| format!("bad request: {e}"))?;
    // The agent holds the query up to `wait` plus wait/16 of jitter: allow some more.
    let resp = tokio::time::timeout(Duration::from_secs(40), client.request(req))
        .await
        .map_err(|_| "agent did not answer in 40s".to_string())?
        .map_err(|e| format!("agent unreachable: {e}"))?;
    let status = resp.status();
    let index = resp
        .headers()
        .get("x-consul-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let body = tokio::time::timeout(
        Duration::from_secs(10),
        Limited::new(resp.into_body(), MAX_BODY).collect(),
    )
    .await
    .map_err(|_| "agent answer timed out".to_string())?
    .map_err(|e| format!("reading the agent's answer: {e}"))?
    .to_bytes();
    if status != StatusCode::OK {
        return Err(format!(
            "agent answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    Ok((index, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_health_entries() {
        let body = br#"[
          {"Node": {"Address": "127.0.0.2"}, "Service": {"ID": "a", "Address": "", "Port": 80, "Weights": {"Passing": 3}}},
          {"Node": {"Address": "127.0.0.2"}, "Service": {"ID": "b", "Address": "127.0.0.3", "Port": 81}}
        ]"#;
        let eps = endpoints(body).await.expect("valid");
        assert_eq!(eps[0].addr, "127.0.0.2:80".parse().expect("addr"));
        assert_eq!(eps[0].weight, 3);
        assert_eq!(eps[1].addr, "127.0.0.3:81".parse().expect("addr"));
        assert_eq!(eps[1].weight, 1);
        assert!(endpoints(b"{").await.is_err());
    }

    fn ep(port: u16) -> Endpoint {
        Endpoint {
            id: format!("e{port}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            weight: 1,
        }
    }

    #[test]
    fn a_restarted_agent_repeating_an_index_still_publishes_its_set_under_a_new_version() {
        let (tx, rx) = watch::channel(EndpointSet::new(0, Vec::new()));
        assert!(publish(&tx, 57, vec![ep(1)]));
        assert_eq!(rx.borrow().version, 57);
        // The same answer again (a blocking query that timed out): nothing new.
        assert!(!publish(&tx, 57, vec![ep(1)]));
        assert_eq!(rx.borrow().version, 57);
        // The agent restarted and its index came round to 57 again, with other instances.
        assert!(publish(&tx, 57, vec![ep(2)]));
        let set = rx.borrow().clone();
        assert_eq!(
            set.endpoints
                .iter()
                .map(|e| e.addr.port())
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(set.version, 58, "never the version the upstream last saw");
        // An index that went backwards still moves the version forward.
        assert!(publish(&tx, 3, vec![ep(3)]));
        assert_eq!(rx.borrow().version, 59);
        // A later index is used as it is.
        assert!(publish(&tx, 100, vec![ep(4)]));
        assert_eq!(rx.borrow().version, 100);
    }

    #[test]
    fn the_first_answer_is_published_even_when_empty() {
        let (tx, rx) = watch::channel(EndpointSet::new(0, Vec::new()));
        assert!(publish(&tx, 0, Vec::new()));
        assert_eq!(rx.borrow().version, 1);
        assert!(!publish(&tx, 0, Vec::new()));
    }

    #[test]
    fn escapes_names() {
        assert_eq!(escape("web-1.v2"), "web-1.v2");
        assert_eq!(escape("a b/c"), "a%20b%2Fc");
    }
}
