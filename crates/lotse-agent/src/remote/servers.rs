//! The servers a client agent can call, and failover between them.
//!
//! The list comes from gossip (every alive member tagged as a server, at its RPC address).
//! A client sticks to one server while it answers, as Consul's clients do, so that its calls
//! share one connection; the first choice is random, which spreads clients over servers.
//! When the preferred server fails, the call goes on to the others in random order.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lotse_consensus::rpc::{ForwardClient, Peers, RpcError};
use lotse_server::{from_status, never_delivered, ServerError};
use rand::seq::SliceRandom;

/// Which failures move a call on to the next server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tries {
    /// Writes: only a call that certainly never reached a server (it cannot have had an
    /// effect); any other failure is reported, never re-sent.
    OnlyUndelivered,
    /// Reads: any failure to get an answer (a read has no effect to duplicate).
    AnyFailure,
}

#[derive(Default)]
struct List {
    /// RPC addresses (`ip:port`), sorted.
    addrs: Vec<String>,
    /// The server that answered last.
    preferred: Option<String>,
}

pub struct Servers {
    list: Mutex<List>,
    /// Counts the servers known, so callers can wait for the first.
    known: tokio::sync::watch::Sender<usize>,
    peers: Peers,
}

impl Servers {
    pub fn new(peers: Peers) -> Arc<Servers> {
        Arc::new(Servers {
            list: Mutex::new(List::default()),
            known: tokio::sync::watch::Sender::new(0),
            peers,
        })
    }

    /// Replaces the list (from gossip). The preference survives if its server is still listed.
    pub fn set(&self, mut addrs: Vec<String>) {
        addrs.sort();
        addrs.dedup();
        let n = addrs.len();
        {
            let mut list = self.lock();
            if list.addrs == addrs {
                return;
            }
            if let Some(p) = &list.preferred {
                if !addrs.contains(p) {
                    list.preferred = None;
                }
            }
            tracing::info!(servers = ?addrs, "the servers this client agent can call changed");
            list.addrs = addrs;
        }
        self.known.send_replace(n);
    }

    /// The servers known now.
    pub fn addrs(&self) -> Vec<String> {
        self.lock().addrs.clone()
    }

    /// The server calls go to first, if one answered lately.
    pub fn preferred(&self) -> Option<String> {
        self.lock().preferred.clone()
    }

    /// Forgets the preferred server (it answered, but without a leader): the next call starts
    /// with another, as Consul's client moves on from a server that reports no leader.
    pub fn demote_preferred(&self) {
        self.lock().preferred = None;
    }

    /// Waits until at least one server is known, up to `timeout`.
    pub async fn wait_known(&self, timeout: Duration) -> bool {
        let mut rx = self.known.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Calls `f` on the preferred server, then on the others until one answers or a failure
    /// that `tries` does not move on from. No server known: "No known Consul servers".
    pub async fn call<T, F, Fut>(&self, tries: Tries, mut f: F) -> Result<T, ServerError>
    where
        F: FnMut(ForwardClient) -> Fut,
        Fut: Future<Output = Result<T, RpcError>>,
    {
        let order = self.order();
        let mut last = None;
        for addr in order {
            let result = match self.peers.forward_client(&addr) {
                Ok(client) => f(client).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => {
                    self.lock().preferred = Some(addr);
                    return Ok(v);
                }
                Err(e) => {
                    self.drop_preference(&addr);
                    if !(tries == Tries::AnyFailure || never_delivered(&e)) {
                        return Err(call_error(e));
                    }
                    tracing::debug!(server = %addr, error = %e, "server call failed; trying the next");
                    last = Some(e);
                }
            }
        }
        Err(last.map_or(ServerError::NoServers, call_error))
    }

    /// The preferred server first, then the others shuffled.
    fn order(&self) -> Vec<String> {
        let list = self.lock();
        let mut rest: Vec<String> = list
            .addrs
            .iter()
            .filter(|a| Some(*a) != list.preferred.as_ref())
            .cloned()
            .collect();
        rest.shuffle(&mut rand::thread_rng());
        list.preferred.iter().cloned().chain(rest).collect()
    }

    fn drop_preference(&self, addr: &str) {
        let mut list = self.lock();
        if list.preferred.as_deref() == Some(addr) {
            list.preferred = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, List> {
        // The list holds no invariant a panicking holder could break.
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a failed call tells the agent's caller: a server's own refusal as the facade error
/// it stands for, anything else as Consul's "rpc error making call".
fn call_error(e: RpcError) -> ServerError {
    match e {
        RpcError::Status { status, .. } => match from_status(&status) {
            ServerError::Raft(_) => ServerError::Rpc(status.message().to_string()),
            other => other,
        },
        other => ServerError::Rpc(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(addrs: &[&str]) -> Arc<Servers> {
        let s = Servers::new(Peers::new());
        s.set(addrs.iter().map(|a| a.to_string()).collect());
        s
    }

    #[tokio::test]
    async fn no_server_known_is_consuls_no_known_servers() {
        let s = servers(&[]);
        let got: Result<(), _> = s.call(Tries::AnyFailure, |_| async { Ok(()) }).await;
        assert_eq!(got, Err(ServerError::NoServers));
        assert!(!s.wait_known(Duration::from_millis(10)).await);
    }

    #[tokio::test]
    async fn an_undelivered_call_moves_on_and_the_answering_server_is_preferred() {
        let s = servers(&["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
        let answered = s
            .call(Tries::OnlyUndelivered, |c| async move {
                if c.addr() == "127.0.0.1:2" {
                    Ok(c.addr().to_string())
                } else {
                    Err(RpcError::Unreachable {
                        addr: c.addr().to_string(),
                        reason: "tcp connect error".into(),
                    })
                }
            })
            .await;
        assert_eq!(answered.as_deref(), Ok("127.0.0.1:2"));
        assert_eq!(s.preferred().as_deref(), Some("127.0.0.1:2"));
        assert_eq!(s.order()[0], "127.0.0.1:2");
    }

    #[tokio::test]
    async fn a_write_that_may_have_arrived_is_never_sent_again() {
        let s = servers(&["127.0.0.1:1", "127.0.0.1:2"]);
        let mut calls = 0;
        let got: Result<(), _> = s
            .call(Tries::OnlyUndelivered, |c| {
                calls += 1;
                async move {
                    Err(RpcError::Timeout {
                        addr: c.addr().to_string(),
                        after: Duration::from_secs(1),
                    })
                }
            })
            .await;
        assert_eq!(calls, 1);
        assert!(matches!(got, Err(ServerError::Rpc(_))), "{got:?}");
        // A read moves on after the same failure.
        let mut calls = 0;
        let _: Result<(), _> = s
            .call(Tries::AnyFailure, |c| {
                calls += 1;
                async move {
                    Err(RpcError::Timeout {
                        addr: c.addr().to_string(),
                        after: Duration::from_secs(1),
                    })
                }
            })
            .await;
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn a_server_that_leaves_the_list_loses_the_preference() {
        let s = servers(&["127.0.0.1:1", "127.0.0.1:2"]);
        s.lock().preferred = Some("127.0.0.1:1".into());
        s.set(vec!["127.0.0.1:2".into(), "127.0.0.1:3".into()]);
        assert_eq!(s.preferred(), None);
        assert_eq!(s.addrs(), vec!["127.0.0.1:2", "127.0.0.1:3"]);
        assert!(s.wait_known(Duration::from_millis(10)).await);
    }
}
