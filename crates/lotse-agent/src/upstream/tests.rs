//! The agent against a fake catalog: a bare [`Store`] behind [`Upstream`], with no `Server`
//! and no Raft. Proves the seam: anti-entropy writes only through `Upstream::write`, repairs
//! the drift `Upstream::node_view` shows, and alias checks follow `Upstream::watch_health`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lotse_core::catalog::Service;
use lotse_core::catalog::{CheckStatus, DeregisterRequest, HealthCheck, Node, RegisterRequest};
use lotse_core::{Command, Outcome, Store};
use lotse_server::ServerError;
use serde_json::json;

use super::{AliasStatus, AliasTarget, NodeView, Upstream};
use crate::definition::decode;
use crate::test_support::register_db;
use crate::{Agent, AgentOptions, Source};

/// An in-memory catalog. Every command applies at the next index; `writes` logs what came
/// through [`Upstream::write`] (not what a test applied behind the agent's back).
struct FakeCatalog {
    node: Node,
    store: Mutex<Store>,
    index: tokio::sync::watch::Sender<u64>,
    writes: Mutex<Vec<Command>>,
    /// Health reads fail (a server out of reach).
    unreachable: AtomicBool,
}

impl FakeCatalog {
    fn new(name: &str) -> Arc<FakeCatalog> {
        Arc::new(FakeCatalog {
            node: Node {
                id: "9b0e3d7a-0000-4000-8000-000000000002".into(),
                name: name.into(),
                address: "10.0.0.2".into(),
                datacenter: "dc1".into(),
                ..Default::default()
            },
            store: Mutex::new(Store::new()),
            index: tokio::sync::watch::channel(0).0,
            writes: Mutex::new(Vec::new()),
            unreachable: AtomicBool::new(false),
        })
    }

    /// Applies `cmd` as the leader would, without logging it as the agent's.
    fn apply(&self, cmd: &Command) -> (u64, Outcome) {
        let mut store = self.store.lock().unwrap();
        let index = store.last_index() + 1;
        let (outcome, _) = store.apply(index, cmd);
        drop(store);
        self.index.send_replace(index);
        (index, outcome)
    }

    fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store.lock().unwrap())
    }

    fn writes(&self) -> Vec<Command> {
        self.writes.lock().unwrap().clone()
    }
}

#[async_trait]
impl Upstream for FakeCatalog {
    fn node_name(&self) -> &str {
        &self.node.name
    }

    fn datacenter(&self) -> &str {
        &self.node.datacenter
    }

    fn self_node(&self) -> Node {
        self.node.clone()
    }

    fn node_count(&self) -> usize {
        self.read(|s| s.catalog_counts().0)
    }

    fn has_leader(&self) -> bool {
        true
    }

    async fn wait_leader_known(&self, _timeout: Duration) -> bool {
        true
    }

    async fn write(&self, cmd: Command) -> Result<(u64, Outcome), ServerError> {
        self.writes.lock().unwrap().push(cmd.clone());
        match self.apply(&cmd) {
            (_, Outcome::Rejected(e)) => Err(ServerError::Rejected(e)),
            answer => Ok(answer),
        }
    }

    async fn node_view(&self, node: &str) -> Result<NodeView, ServerError> {
        Ok(self.read(|s| NodeView::read(s, node)))
    }

    async fn watch_health(
        &self,
        target: &AliasTarget,
        last_index: u64,
        wait: Duration,
    ) -> Result<(u64, AliasStatus), ServerError> {
        if self.unreachable.load(Ordering::SeqCst) {
            return Err(ServerError::NoLeader);
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut moved = self.index.subscribe();
        loop {
            let (index, health) = self.read(|s| target.read(s));
            if last_index == 0 || index != last_index {
                return Ok((index, health));
            }
            if tokio::time::timeout_at(deadline, moved.changed())
                .await
                .is_err()
            {
                return Ok((index, health));
            }
        }
    }
}

fn register(node: &Node, service: Option<Service>, checks: Vec<HealthCheck>) -> Command {
    Command::CatalogRegister {
        req: Box::new(RegisterRequest {
            node: node.clone(),
            skip_node_update: false,
            service,
            checks,
        }),
        now_ms: 1,
    }
}

/// The services the agent wrote (registered) and removed (deregistered), in `writes`.
fn services_written(writes: &[Command]) -> (Vec<String>, Vec<String>) {
    let (mut registered, mut removed) = (Vec::new(), Vec::new());
    for w in writes {
        match w {
            Command::CatalogRegister { req, .. } => {
                registered.extend(req.service.as_ref().map(|s| s.id.clone()))
            }
            Command::CatalogDeregister { req, .. } => removed.extend(req.service_id.clone()),
            _ => {}
        }
    }
    (registered, removed)
}

/// Polls `done` for up to `within` (of tokio's clock: virtual in paused tests).
async fn until_within(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn until(what: &str, done: impl FnMut() -> bool) {
    until_within(Duration::from_secs(5), what, done).await
}

#[tokio::test]
async fn anti_entropy_writes_through_the_upstream_and_repairs_drift() {
    let catalog = FakeCatalog::new("c1");
    let agent = Agent::start(catalog.clone(), AgentOptions::default()).expect("agent starts");
    agent.sync_full().await.expect("first full sync");
    assert!(catalog.read(|s| s.node("c1").is_some()), "node registered");

    let web = decode::service(&json!({"Name": "web", "Port": 80, "Check": {"TTL": "30s"}}))
        .expect("valid service");
    agent
        .register_service(web, false, Source::Remote)
        .await
        .expect("registered");
    let (registered, _) = services_written(&catalog.writes());
    assert_eq!(registered, vec!["web".to_string()]);
    assert!(catalog.read(|s| s.service("c1", "web").is_some()));
    assert!(catalog.read(|s| s.check("c1", "service:web").is_some()));

    // Drift behind the agent's back: its service deleted, a stranger registered on its node.
    let node = catalog.node.clone();
    catalog.apply(&Command::CatalogDeregister {
        req: DeregisterRequest {
            node: "c1".into(),
            service_id: Some("web".into()),
            check_id: None,
        },
        now_ms: 1,
    });
    let stray = Service {
        id: "stray".into(),
        name: "stray".into(),
        ..Default::default()
    };
    catalog.apply(&register(&node, Some(stray), Vec::new()));
    let before = catalog.writes().len();
    agent.sync_full().await.expect("full sync");
    let (registered, removed) = services_written(&catalog.writes()[before..]);
    assert_eq!(
        (registered, removed),
        (vec!["web".to_string()], vec!["stray".to_string()])
    );
    assert!(catalog.read(|s| s.service("c1", "web").is_some()));
    assert!(catalog.read(|s| s.check("c1", "service:web").is_some()));
    assert!(catalog.read(|s| s.service("c1", "stray").is_none()));

    let before = catalog.writes().len();
    agent.sync_full().await.expect("full sync");
    assert_eq!(catalog.writes().len(), before, "a sync in sync wrote");
}

/// An agent on `catalog` with an alias check of `db` on node `other`, passing.
async fn alias_of_db(catalog: &Arc<FakeCatalog>) -> Arc<Agent> {
    catalog.apply(&register_db(CheckStatus::Passing, 1));
    let agent = Agent::start(catalog.clone(), AgentOptions::default()).expect("agent starts");
    let alias =
        decode::check(&json!({"Name": "db-alias", "AliasNode": "other", "AliasService": "db"}))
            .expect("valid check");
    agent
        .register_check(alias, Source::Remote)
        .await
        .expect("registered");
    // A new check starts critical; its first read makes it passing.
    until("the alias to pass", || {
        alias_health(&agent).0 == CheckStatus::Passing
    })
    .await;
    agent
}

fn alias_health(agent: &Agent) -> (CheckStatus, String) {
    let c = agent
        .checks()
        .into_iter()
        .find(|c| c.check_id == "db-alias")
        .expect("the alias check");
    (c.status, c.output)
}

#[tokio::test]
async fn an_alias_check_follows_its_target_through_the_upstream() {
    let catalog = FakeCatalog::new("c1");
    let agent = alias_of_db(&catalog).await;
    catalog.apply(&register_db(CheckStatus::Critical, 1));
    // Well within ALIAS_RECHECK: the blocking read answered because the target moved.
    until("the alias to follow its target to critical", || {
        alias_health(&agent).0 == CheckStatus::Critical
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_alias_check_turns_critical_while_its_upstream_fails_and_recovers_after() {
    let catalog = FakeCatalog::new("c1");
    let agent = alias_of_db(&catalog).await;
    catalog.unreachable.store(true, Ordering::SeqCst);
    // The parked read answers within ALIAS_RECHECK (a minute); the next ones fail.
    until_within(
        Duration::from_secs(70),
        "the alias to report the failure",
        || {
            alias_health(&agent)
                .1
                .starts_with("Failure checking aliased node or service")
        },
    )
    .await;
    assert_eq!(alias_health(&agent).0, CheckStatus::Critical);
    catalog.unreachable.store(false, Ordering::SeqCst);
    // After the backoff the read starts over (index 0) and answers at once.
    until("the alias to recover", || {
        alias_health(&agent).0 == CheckStatus::Passing
    })
    .await;
}
