//! The agent's one way to the catalog: [`Upstream`].
//!
//! The agent holds no replicated state. What it needs from the servers is small: who it is
//! (node name, datacenter, node record), whether a leader is known, writes (anti-entropy's
//! registrations), the catalog's view of its own node (anti-entropy's full-sync diff), the
//! node count (the full-sync stagger) and blocking reads of one node's health (alias
//! checks). [`Upstream`] is exactly that, in domain terms, so that the agent runs the same
//! against the local server (this file's `impl Upstream for Server`, which reads the store
//! and the watch hub directly) and against a remote one (a client agent: server RPC).
//!
//! ```text
//!  Agent ──► anti_entropy ──► Upstream::write / node_view / node_count
//!        └─► runner (alias) ──► Upstream::watch_health  (blocking-query shaped)
//!  impl Upstream for Server: Server::write, Server::peek, WatchHub::watch
//! ```

#[cfg(test)]
mod tests;

use std::time::Duration;

use async_trait::async_trait;
use lotse_core::catalog::{CheckStatus, HealthCheck, Node, Service};
use lotse_core::{Command, Outcome, Store, WatchKey};
use lotse_server::{Server, ServerError};

use crate::runner::alias_status;

/// What the agent needs from the catalog. Object-safe: the agent holds an
/// `Arc<dyn Upstream>`. Every method answers for this agent's datacenter.
#[async_trait]
pub trait Upstream: Send + Sync {
    /// This agent's node name.
    fn node_name(&self) -> &str;

    /// This agent's datacenter.
    fn datacenter(&self) -> &str;

    /// This agent's node record as it registers it, before the agent adds its `node_meta`.
    fn self_node(&self) -> Node;

    /// How many nodes the cluster has (stretches the full-sync period; a cheap local answer,
    /// not a read that can fail).
    fn node_count(&self) -> usize;

    /// Whether some server is known to lead. False makes the agent leave a change to the
    /// anti-entropy loop instead of writing it before answering.
    fn has_leader(&self) -> bool;

    /// Waits until a leader is known, up to `timeout`; false if none became known.
    async fn wait_leader_known(&self, timeout: Duration) -> bool;

    /// Applies `cmd` through the leader. Returns the log index and the outcome; a command
    /// the store refused is `Err(ServerError::Rejected(_))` (anti-entropy repairs a check
    /// refused for `MissingService`).
    async fn write(&self, cmd: Command) -> Result<(u64, Outcome), ServerError>;

    /// The catalog's rows for node `node`: what anti-entropy's full sync compares with the
    /// local state.
    async fn node_view(&self, node: &str) -> Result<NodeView, ServerError>;

    /// The health an alias check mirrors, blocking-query shaped: answers at once if
    /// `last_index` is 0 or the target's index moved away from it, else when it moves, or
    /// after `wait` with the current health. The index returned goes into the next call.
    async fn watch_health(
        &self,
        target: &AliasTarget,
        last_index: u64,
        wait: Duration,
    ) -> Result<(u64, AliasStatus), ServerError>;
}

/// The catalog's rows for one node.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeView {
    /// The node record, if registered.
    pub node: Option<Node>,
    /// Its service instances.
    pub services: Vec<Service>,
    /// Its checks, node-level and service-level.
    pub checks: Vec<HealthCheck>,
}

/// What an alias check mirrors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AliasTarget {
    /// The node whose health counts (never empty: the agent fills in its own name).
    pub node: String,
    /// The aliased service's ID on that node; empty: the node alone.
    pub service: String,
    /// The alias check's own ID when it lives on the node it watches: it is one of that
    /// node's checks, and counting itself would keep it critical forever.
    pub own_check: Option<String>,
}

/// The status an alias check takes, with its output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AliasStatus {
    pub status: CheckStatus,
    pub output: String,
}

impl AliasTarget {
    /// The alias status from the target node's checks and whether the aliased service is
    /// registered: what a remote implementation computes from its blocking query's answer.
    pub fn status_of(&self, checks: &[&HealthCheck], service_exists: bool) -> AliasStatus {
        let (status, output) = alias_status(
            checks,
            &self.service,
            service_exists,
            self.own_check.as_deref(),
        );
        AliasStatus { status, output }
    }

    /// The target's index and health in `store`.
    pub(crate) fn read(&self, store: &Store) -> (u64, AliasStatus) {
        let (index, checks) = store.node_health(&self.node);
        let exists = self.service.is_empty() || store.service(&self.node, &self.service).is_some();
        (index, self.status_of(&checks, exists))
    }
}

impl NodeView {
    /// Node `name`'s rows in `store`, read as anti-entropy always has: the node by its exact
    /// name, its services as the catalog's node endpoint resolves them, its health checks.
    pub(crate) fn read(store: &Store, name: &str) -> NodeView {
        let (_, found) = store.catalog_node(name);
        let services = found
            .map(|(_, svcs)| svcs.into_iter().cloned().collect())
            .unwrap_or_default();
        let (_, checks) = store.node_health(name);
        NodeView {
            node: store.node(name).cloned(),
            services,
            checks: checks.into_iter().cloned().collect(),
        }
    }
}

/// The agent of a server: everything is read from this server's own store, which may lag
/// the leader by a little; anti-entropy's next full sync catches up.
#[async_trait]
impl Upstream for Server {
    fn node_name(&self) -> &str {
        &self.config.node_name
    }

    fn datacenter(&self) -> &str {
        &self.config.datacenter
    }

    fn self_node(&self) -> Node {
        Server::self_node(self)
    }

    fn node_count(&self) -> usize {
        self.peek(|s| s.catalog_counts().0)
    }

    fn has_leader(&self) -> bool {
        Server::has_leader(self)
    }

    async fn wait_leader_known(&self, timeout: Duration) -> bool {
        Server::wait_leader_known(self, timeout).await
    }

    async fn write(&self, cmd: Command) -> Result<(u64, Outcome), ServerError> {
        Server::write(self, cmd).await
    }

    async fn node_view(&self, node: &str) -> Result<NodeView, ServerError> {
        Ok(self.peek(|s| NodeView::read(s, node)))
    }

    async fn watch_health(
        &self,
        target: &AliasTarget,
        last_index: u64,
        wait: Duration,
    ) -> Result<(u64, AliasStatus), ServerError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the read: a change after it wakes this waiter.
            let watch = self.hub().watch(&[WatchKey::Node(target.node.clone())]);
            let (index, health) = self.peek(|s| target.read(s));
            if last_index == 0 || index != last_index {
                return Ok((index, health));
            }
            if tokio::time::timeout_at(deadline, watch.changed())
                .await
                .is_err()
            {
                return Ok((index, health));
            }
        }
    }
}
