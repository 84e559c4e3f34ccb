//! # lotse-server: the facade between the API adapters and consensus
//!
//! ```text
//!  api (http) ──► Server ──► authorize ──► write: Raft client_write ──► Outcome + index
//!                       └──► read: consistency mode check ──► Store query ──► (index, answer)
//!                                  └─ blocking: park on the WatchHub until the index moves
//! ```
//!
//! * [`Server`] owns the consensus node, the [`WatchHub`], the session TTL timers and the
//!   telemetry counters. Adapters never touch the store directly.
//! * [`query`]: consistency modes and blocking-query options.
//! * [`sessions`]: the leader's TTL timers (renewals live only on the leader, as in Consul).
//! * [`authorizer`]: the ACL seam; allows everything until the ACL issue lands.
//! * `forward` / `link`: where a request is served (here or on the leader) and the server
//!   RPC calls between facades; `transfer`: handing leadership to another voter.
#![forbid(unsafe_code)]

pub mod authorizer;
pub mod autopilot;
mod batcher;
mod forward;
mod lease;
mod link;
pub mod members;
pub mod operator;
pub mod query;
mod read_barrier;
pub mod sessions;
pub mod snapshot;
pub mod telemetry;
mod tombstones;
mod transfer;
pub mod watch_hub;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lotse_consensus::{ApplyObserver, Consensus, ConsensusConfig};
use lotse_core::catalog::{CheckStatus, HealthCheck, Node, RegisterRequest, Service};
use lotse_core::node::SERF_HEALTH;
use lotse_core::{Changes, Command, Store, StoreError};
use openraft_error::classify;

pub use authorizer::{Access, AllowAll, Authorizer, Resource};
pub use link::{
    from_status, never_delivered, AgentCallHandler, DnsHandler, FacadeForward, ForwardHandlers,
    HttpHandler,
};
/// The shapes of a forwarded HTTP request and its answer.
pub mod link_types {
    pub use lotse_consensus::rpc::{HttpReply, HttpRequest};
}
pub use query::{Consistency, QueryMeta, QueryOptions};
pub use telemetry::Telemetry;
pub use watch_hub::WatchHub;

mod openraft_error;

/// What the agent tells the server about itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub node_name: String,
    pub node_id: String,
    pub datacenter: String,
    /// The address the node advertises (`bind_addr`).
    pub advertise_addr: String,
    pub server_port: u16,
    pub data_dir: Option<std::path::PathBuf>,
    pub bootstrap: bool,
    pub snapshot_threshold: u64,
    pub session_ttl_min: Duration,
    /// Consul's `performance.raft_multiplier` (1 fastest; 5 Consul's default): scales Raft's
    /// heartbeat, election timeout and this leader's lease.
    pub raft_multiplier: u32,
    /// How long a request waits for a leader before "No cluster leader" (`rpc_hold_timeout`).
    pub rpc_hold_timeout: Duration,
    /// Autopilot's settings at start.
    pub autopilot: autopilot::AutopilotConfig,
}

/// An agent's node record as the agent registers it (servers and client agents alike): its
/// advertised address as every tagged address, and Consul's default network segment.
pub fn agent_node(id: &str, name: &str, address: &str, datacenter: &str) -> Node {
    Node {
        id: id.to_string(),
        name: name.to_string(),
        address: address.to_string(),
        datacenter: datacenter.to_string(),
        tagged_addresses: ["lan", "lan_ipv4", "wan", "wan_ipv4"]
            .into_iter()
            .map(|k| (k.to_string(), address.to_string()))
            .collect(),
        meta: [("consul-network-segment".to_string(), String::new())]
            .into_iter()
            .collect(),
        create_index: 0,
        modify_index: 0,
    }
}

/// A request failed. None of these left partial state behind. (Serde: a forwarded request's
/// error travels back from the leader as it was.)
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServerError {
    /// No leader is known, so the request could not be served (Consul's text).
    #[error("No cluster leader")]
    NoLeader,
    /// This server is not the leader and cannot forward yet.
    #[error("rpc error: not the leader")]
    NotLeader,
    /// The store refused the command as a whole.
    #[error("{0}")]
    Rejected(#[from] StoreError),
    /// The ACL system denied the request.
    #[error("Permission denied")]
    PermissionDenied,
    /// Consensus failed (storage broke or the node is shutting down).
    #[error("raft: {0}")]
    Raft(String),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// The request named something that does not exist or cannot be done (Consul's text).
    #[error("{0}")]
    Invalid(String),
    /// A client agent knows no server to send the request to (Consul's text).
    #[error("No known Consul servers")]
    NoServers,
    /// A client agent's call to a server failed without the server's answer (Consul's text).
    #[error("rpc error making call: {0}")]
    Rpc(String),
    /// The leader lost office after proposing the write: another leader may still commit it,
    /// so it is reported, never retried (Consul's text, hashicorp/raft's
    /// `ErrLeadershipLost`). Last: the codec encodes variants by position.
    #[error("leadership lost while committing log")]
    LeadershipLost,
}

/// Wakes blocking queries when the state machine applies commands.
struct HubObserver {
    hub: Arc<WatchHub>,
    /// Counts whole-state replacements (snapshot installs, restores): the leader re-arms
    /// every session timer after one.
    resets: Arc<std::sync::atomic::AtomicU64>,
}

impl ApplyObserver for HubObserver {
    fn applied(&self, changes: &[Changes]) {
        self.hub.notify(changes);
    }
    fn reset(&self) {
        self.resets
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        self.hub.notify_all();
    }
}

pub struct Server {
    pub config: ServerConfig,
    consensus: Consensus,
    hub: Arc<WatchHub>,
    pub telemetry: Arc<Telemetry>,
    sessions: sessions::SessionTimers,
    proposals: tokio::sync::mpsc::UnboundedSender<batcher::Proposal>,
    authorizer: Arc<dyn Authorizer>,
    started: std::time::Instant,
    /// The term in which this node, as leader, confirmed its state (0: none). Default reads are
    /// served locally only while it leads in that same term.
    ready_term: std::sync::atomic::AtomicU64,
    /// Set when shutdown begins: parked blocking queries answer at once.
    shutting_down: std::sync::atomic::AtomicBool,
    /// The gossip pool's members, for the leader to reconcile into the catalog.
    membership: members::Membership,
    /// How long a request waits for a leader ([`ServerConfig::rpc_hold_timeout`]).
    hold_timeout: Duration,
    /// How long after its last quorum contact a leader still serves `default` reads and takes
    /// writes without asking the quorum again.
    lease: Duration,
    /// Autopilot's settings in force.
    autopilot: std::sync::Mutex<autopilot::AutopilotConfig>,
    /// How many times the whole state was replaced (see `HubObserver`).
    resets: Arc<std::sync::atomic::AtomicU64>,
    /// The term the leader's duties loop took office in (0: not leading); see
    /// [`Server::leader_write`].
    duty_term: std::sync::atomic::AtomicU64,
    /// The age of the last quorum acknowledgement, measured at reading time.
    lease_clock: Arc<lease::LeaseClock>,
    /// Shares leadership confirmations among concurrent `consistent` reads.
    read_barrier: Arc<read_barrier::ReadBarrier>,
    /// A leadership transfer away from this leader is under way ([`transfer`]).
    transferring: std::sync::atomic::AtomicBool,
    /// This server campaigns no more (it is stopping); nothing turns elections back on.
    campaign_stopped: std::sync::atomic::AtomicBool,
    /// Elections are held until this many ms after `started` (a transfer elsewhere).
    held_until_ms: std::sync::atomic::AtomicU64,
    /// Orders every change of openraft's election switch ([`Server::set_campaigning`]).
    campaign_switch: std::sync::Mutex<()>,
}

/// One leadership confirmation: a quorum round, then the wait until this leader applied
/// everything committed before it. openraft gives up on a round that misses its quorum within
/// one heartbeat (`QuorumNotEnough`): a slow follower fsync must not fail the read, so rounds
/// are repeated until `hold`. "Not the leader" ends it at once.
///
/// A leader openraft restored in its old term reads only once its log as found at start is
/// applied ([`lotse_consensus::ReadFloor`]).
async fn confirm_round(
    raft: lotse_consensus::LotseRaft,
    floor: lotse_consensus::ReadFloor,
    hold: Duration,
) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, lotse_consensus::linearizable_read(&raft, floor)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => match classify(&e) {
                e
                @ (ServerError::NotLeader | ServerError::NoLeader | ServerError::ShuttingDown) => {
                    return Err(e)
                }
                other => tracing::debug!(error = %other, "leadership not confirmed yet; retrying"),
            },
            Err(_) => return Err(ServerError::NoLeader),
        }
        if tokio::time::Instant::now() + Duration::from_millis(25) >= deadline {
            return Err(ServerError::NoLeader);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Milliseconds since the Unix epoch by this machine's clock: only the leader reads it, to
/// stamp commands.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The service a server registers for itself (never an agent's to deregister).
pub const CONSUL_SERVICE: &str = "consul";

/// The node's gossip health check, as the agent reports it while it runs (until gossip lands,
/// an agent that answers is alive).
pub fn serf_health(node: &str) -> HealthCheck {
    HealthCheck {
        status: CheckStatus::Passing,
        output: "Agent alive and reachable".into(),
        ..HealthCheck::new(node, SERF_HEALTH, "Serf Health Status")
    }
}

/// A stable Raft node ID from the node's UUID.
fn raft_id(node_id: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in node_id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl Server {
    /// Starts consensus and the server's background duties (session TTLs, self-registration).
    pub async fn start(config: ServerConfig) -> Result<Arc<Server>, ServerError> {
        let hub = Arc::new(WatchHub::default());
        let resets = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let observer = Arc::new(HubObserver {
            hub: hub.clone(),
            resets: resets.clone(),
        });
        let consensus = Consensus::start(
            ConsensusConfig {
                node_id: raft_id(&config.node_id),
                rpc_addr: format!("{}:{}", config.advertise_addr, config.server_port),
                data_dir: config.data_dir.clone(),
                snapshot_threshold: config.snapshot_threshold,
                bootstrap: config.bootstrap,
                raft_multiplier: config.raft_multiplier,
                initial_members: None,
            },
            observer,
        )
        .await
        .map_err(|e| ServerError::Raft(e.to_string()))?;
        let config_hold = config.rpc_hold_timeout;
        // The election timeout's lower bound: no other server can have been elected before
        // this leader's followers stop hearing from it for that long.
        let lease = Duration::from_millis(200 * u64::from(config.raft_multiplier.max(1)));
        let read_barrier = {
            let (raft, floor, hold) = (
                consensus.raft.clone(),
                consensus.read_floor,
                config.rpc_hold_timeout,
            );
            read_barrier::ReadBarrier::new(Box::new(move || {
                Box::pin(confirm_round(raft.clone(), floor, hold))
            }))
        };
        let lease_clock = Arc::new(lease::LeaseClock::default());
        lease_clock.spawn_watch(&consensus.raft);
        let telemetry = Arc::new(Telemetry::default());
        let proposals = batcher::spawn(consensus.raft.clone(), telemetry.clone());
        let server = Arc::new(Server {
            autopilot: std::sync::Mutex::new(config.autopilot),
            config,
            consensus,
            hub,
            proposals,
            telemetry,
            sessions: sessions::SessionTimers::default(),
            authorizer: Arc::new(AllowAll),
            started: std::time::Instant::now(),
            ready_term: std::sync::atomic::AtomicU64::new(0),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            membership: members::Membership::default(),
            hold_timeout: config_hold,
            lease,
            resets,
            duty_term: std::sync::atomic::AtomicU64::new(0),
            lease_clock: lease_clock.clone(),
            read_barrier,
            transferring: std::sync::atomic::AtomicBool::new(false),
            campaign_stopped: std::sync::atomic::AtomicBool::new(false),
            held_until_ms: std::sync::atomic::AtomicU64::new(0),
            campaign_switch: std::sync::Mutex::new(()),
        });
        tokio::spawn(sessions::run_leader_duties(Arc::downgrade(&server)));
        Ok(server)
    }

    /// Waits until this server leads, up to `timeout`.
    pub async fn wait_leader(&self, timeout: Duration) -> bool {
        self.consensus.wait_leader(timeout).await
    }

    /// Whether some server is known to lead, or this server is the only voter (it elects
    /// itself at once, even when it just lost office to a clock jump or a restart).
    pub fn has_leader(&self) -> bool {
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        let me = self.consensus.node_id;
        m.current_leader.is_some() || m.membership_config.membership().voter_ids().eq([me])
    }

    /// Waits until a leader is known (anywhere), up to `timeout`.
    pub async fn wait_leader_known(&self, timeout: Duration) -> bool {
        self.consensus
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .is_ok()
    }

    pub fn is_leader(&self) -> bool {
        let m = self.consensus.raft.metrics();
        let leader = m.borrow().current_leader;
        leader == Some(self.consensus.node_id)
    }

    /// The leader's server RPC address, if one is known (`/v1/status/leader`).
    pub fn leader_addr(&self) -> Option<String> {
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// The voters' server RPC addresses (`/v1/status/peers`).
    pub fn peers(&self) -> Vec<String> {
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(_, n)| n.addr.clone())
            .collect()
    }

    /// Raft facts for `/v1/agent/self` Stats and metrics.
    pub fn raft_stats(&self) -> Vec<(&'static str, String)> {
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        let stats = &self.consensus.log_stats;
        use std::sync::atomic::Ordering::Relaxed;
        vec![
            ("state", format!("{:?}", m.state)),
            ("term", m.current_term.to_string()),
            ("last_log_index", m.last_log_index.unwrap_or(0).to_string()),
            (
                "applied_index",
                m.last_applied.map_or(0, |l| l.index).to_string(),
            ),
            (
                "commit_index",
                m.last_applied.map_or(0, |l| l.index).to_string(),
            ),
            (
                "last_snapshot_index",
                m.snapshot.map_or(0, |l| l.index).to_string(),
            ),
            (
                "num_peers",
                m.membership_config
                    .membership()
                    .voter_ids()
                    .count()
                    .saturating_sub(1)
                    .to_string(),
            ),
            ("log_commits", stats.commits.load(Relaxed).to_string()),
            (
                "log_entries_persisted",
                stats.entries.load(Relaxed).to_string(),
            ),
            (
                "log_commit_micros",
                stats.commit_micros.load(Relaxed).to_string(),
            ),
        ]
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn hub(&self) -> &WatchHub {
        &self.hub
    }

    /// Checks the ACL seam.
    pub fn authorize(
        &self,
        token: Option<&str>,
        resource: Resource<'_>,
        access: Access,
    ) -> Result<(), ServerError> {
        if self.authorizer.allows(token, resource, access) {
            Ok(())
        } else {
            Err(ServerError::PermissionDenied)
        }
    }

    /// Checks that a read in `mode` may be served from this server's store now: `stale`
    /// always; `default` and `consistent` on the leader as their definitions say, and on a
    /// follower after a read index from the leader ([`forward`]).
    pub async fn check_consistency(&self, mode: Consistency) -> Result<(), ServerError> {
        if mode == Consistency::Stale {
            return Ok(());
        }
        // A leader handing over office confirms nothing (a quorum round would renew the
        // voters' leases and keep them from electing the target): the read waits for the
        // next leader, as writes do.
        let deadline = tokio::time::Instant::now() + self.hold_timeout;
        while self.is_leader() && self.is_transferring() {
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::NoLeader);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.is_leader() {
            self.check_consistency_as_leader(mode).await
        } else {
            self.follower_read_index(mode).await
        }
    }

    /// `default`: served while this leader's lease is fresh in the term it confirmed;
    /// `consistent`: leadership confirmed with a quorum first.
    pub(crate) async fn check_consistency_as_leader(
        &self,
        mode: Consistency,
    ) -> Result<(), ServerError> {
        match mode {
            Consistency::Stale => Ok(()),
            Consistency::Default if self.ready_to_read() && self.lease_fresh() => Ok(()),
            Consistency::Default => self.catch_up_as_leader().await,
            Consistency::Consistent => self.confirm_leadership().await.map(|_| ()),
        }
    }

    /// A read index confirmed with a quorum; a leader cut off from its quorum gives up after
    /// the hold timeout with "No cluster leader". Concurrent reads share rounds
    /// ([`read_barrier`]).
    async fn confirm_leadership(&self) -> Result<(), ServerError> {
        self.read_barrier.confirm().await
    }

    /// Whether this leader heard from a quorum recently enough to serve `default` reads and
    /// take writes (Consul's leader lease). A lone voter is its own quorum.
    pub(crate) fn lease_fresh(&self) -> bool {
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        if m.membership_config.membership().voter_ids().count() <= 1 {
            return true;
        }
        drop(m);
        self.lease_clock
            .quorum_ack_age_ms()
            .is_some_and(|ms| ms <= self.lease.as_millis() as u64)
    }

    /// The newest log index this replica applied, from the state machine itself: openraft
    /// answers a client write before it publishes the metric, so the metric may lag a write a
    /// client was already told about (a read index must cover it).
    pub fn applied_index(&self) -> u64 {
        let applied = self
            .consensus
            .state
            .read()
            .last_applied
            .map_or(0, |l| l.index);
        applied
    }

    /// This node's current term and whether it leads in it.
    fn term_and_leadership(&self) -> (u64, bool) {
        let m = self.consensus.raft.metrics();
        let m = m.borrow();
        (
            m.current_term,
            m.current_leader == Some(self.consensus.node_id),
        )
    }

    /// Leads now, in the term in which it confirmed its state.
    fn ready_to_read(&self) -> bool {
        let (term, leads) = self.term_and_leadership();
        leads && term == self.ready_term.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Confirms leadership through the log (a read index) and waits until this term's entries
    /// are applied; then default reads may be served from the local store, for this term only.
    pub(crate) async fn catch_up_as_leader(&self) -> Result<(), ServerError> {
        let (term, _) = self.term_and_leadership();
        self.confirm_leadership().await?;
        // Recorded only if nothing changed meanwhile: a confirmation from an earlier term must
        // never vouch for a later one.
        if self.term_and_leadership() == (term, true) {
            self.ready_term
                .store(term, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }

    /// The term this node confirmed its leadership in (0: not a confirmed leader).
    pub(crate) fn confirmed_term(&self) -> u64 {
        if self.ready_to_read() {
            self.ready_term.load(std::sync::atomic::Ordering::Acquire)
        } else {
            0
        }
    }

    /// This server no longer starts elections (it is about to stop).
    pub fn stop_campaigning(&self) {
        self.campaign_stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.set_campaigning(false);
    }

    /// Starts shutting down: parked blocking queries answer now instead of being cut off.
    pub fn begin_shutdown(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
        self.hub.notify_all();
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs `f` on the store now (no blocking), after the consistency check.
    pub async fn read<T>(
        &self,
        mode: Consistency,
        f: impl FnOnce(&Store) -> T,
    ) -> Result<T, ServerError> {
        self.check_consistency(mode).await?;
        let a = self.consensus.state.read();
        Ok(f(&a.store))
    }

    /// Runs `f` on the store without any check: for the server's own bookkeeping.
    pub fn peek<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let a = self.consensus.state.read();
        f(&a.store)
    }

    /// Facts for response headers.
    pub fn query_meta(&self, mode: Consistency) -> QueryMeta {
        // A stale read says how old this replica may be; the others were confirmed.
        let last_contact_ms = match mode {
            Consistency::Stale => self
                .consensus
                .last_leader_contact()
                .map_or(0, |d| d.as_millis() as u64),
            _ => 0,
        };
        QueryMeta {
            index: 0,
            known_leader: self.leader_addr().is_some(),
            last_contact_ms,
            consistency: mode,
        }
    }

    /// Registers this agent's own node with its `serfHealth` check, if it is not registered
    /// with the same address already. (The agent's anti-entropy keeps it so afterwards; this
    /// covers a server before its agent is up.)
    pub async fn ensure_self_registered(&self) -> Result<(), ServerError> {
        let c = &self.config;
        let registered = self.peek(|s| {
            let same_node = s.node(&c.node_name).is_some_and(|n| {
                n.address == c.advertise_addr && n.id == c.node_id && n.datacenter == c.datacenter
            });
            let alive = s
                .check(&c.node_name, SERF_HEALTH)
                .is_some_and(|ch| ch.status == CheckStatus::Passing);
            let listed = s
                .service(&c.node_name, CONSUL_SERVICE)
                .is_some_and(|svc| svc.same_as(&self.consul_service()));
            same_node && alive && listed
        });
        if registered {
            return Ok(());
        }
        let req = RegisterRequest {
            node: self.self_node(),
            skip_node_update: false,
            service: Some(self.consul_service()),
            checks: vec![serf_health(&c.node_name)],
        };
        self.write(Command::CatalogRegister {
            req: Box::new(req),
            now_ms: now_ms(),
        })
        .await
        .map(|_| ())
    }

    /// The `consul` service every server registers for itself (port: its server RPC port), as
    /// Consul's leader does; clients and tools look servers up by it.
    pub fn consul_service(&self) -> Service {
        Service {
            id: CONSUL_SERVICE.into(),
            name: CONSUL_SERVICE.into(),
            port: i64::from(self.config.server_port),
            meta: [
                ("raft_version", "3"),
                ("non_voter", "false"),
                ("read_replica", "false"),
                ("version", env!("CARGO_PKG_VERSION")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        }
    }

    /// This agent's node record as it registers it.
    pub fn self_node(&self) -> Node {
        let c = &self.config;
        agent_node(&c.node_id, &c.node_name, &c.advertise_addr, &c.datacenter)
    }

    /// Stops consensus after in-flight writes finish.
    pub async fn shutdown(&self) {
        let _ = self.consensus.raft.shutdown().await;
    }
}

impl Server {
    /// The server RPC services (Raft between servers, forwarding to this facade), for the
    /// agent to serve on the server port; `handlers` answer what the layers above do
    /// (forwarded HTTP API requests, client agents' calls and DNS queries).
    pub fn rpc_routes(self: &Arc<Self>, handlers: ForwardHandlers) -> tonic::service::Routes {
        let forward = Arc::new(FacadeForward::new(Arc::downgrade(self), handlers));
        lotse_consensus::rpc::rpc_router(&self.consensus, forward)
    }
}
