//! `Gossip`: the handle the agent holds. Cheap to clone; every clone talks to one driver.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{atomic::Ordering, Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rand::RngExt;
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::{broadcast, mpsc, oneshot},
    task::JoinHandle,
};

use crate::{
    core::GossipCore,
    driver::{Command, Driver, Shared},
    identity::NodeId,
    keyring::KeyringHandle,
    notice::{Notice, USER_EVENT_LIMIT},
    push_pull, GossipConfig, GossipError, Member, MemberEvent, UserEvent,
};

/// Depth of the API -> driver command queue.
const COMMAND_QUEUE: usize = 1024;

/// A running member of the LAN gossip pool. Clone it freely.
#[derive(Clone)]
pub struct Gossip {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    cmd: mpsc::Sender<Command>,
    task: Mutex<Option<JoinHandle<()>>>,
    local_addr: SocketAddr,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Last handle gone: stop the driver (it would also stop on the closed channel).
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), GossipError> {
    let err = |source| GossipError::Bind { addr, source };
    // With port 0 the UDP port is picked first and TCP must get the same number; another
    // process may hold it for TCP, so retry a few times.
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await.map_err(err)?;
        let local = udp.local_addr().map_err(err)?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(last.unwrap_or_else(|| std::io::Error::other("no port"))))
}

impl Gossip {
    /// Binds UDP and TCP on `cfg.bind` and starts the driver. The node is alone until `join`.
    pub async fn start(cfg: GossipConfig) -> Result<Gossip, GossipError> {
        let (udp, tcp) = bind(cfg.bind).await?;
        let local_addr = udp.local_addr().map_err(|source| GossipError::Bind {
            addr: cfg.bind,
            source,
        })?;
        let mut advertise = cfg.advertise;
        if advertise.port() == 0 {
            advertise.set_port(local_addr.port());
        }
        if advertise.ip().is_unspecified() {
            advertise.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        // A restarted node must come back with a higher generation than its previous life;
        // wall-clock milliseconds give that without persisting anything.
        let gen = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        let id = NodeId::new(&cfg.node_name, advertise, gen);
        let keyring = KeyringHandle::new(cfg.keyring);
        let shared = Arc::new(Shared::new(
            cfg.node_name.clone(),
            cfg.timing.clone(),
            keyring,
        ));
        let core = GossipCore::new(
            id,
            cfg.tags,
            cfg.timing,
            shared.clock.clone(),
            rand::rng().random(),
            std::time::Instant::now(),
        )?;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let driver = Driver {
            core,
            udp: Arc::new(udp),
            tcp,
            rx,
            tx: tx.downgrade(),
            shared: shared.clone(),
        };
        let task = tokio::spawn(driver.run());
        let g = Gossip {
            inner: Arc::new(Inner {
                shared,
                cmd: tx,
                task: Mutex::new(Some(task)),
                local_addr,
            }),
        };
        // Publish the initial snapshot (ourselves) before returning.
        let _ = g.state().await;
        Ok(g)
    }

    /// The bound address (useful when `bind` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    async fn send(&self, cmd: Command) -> Result<(), GossipError> {
        self.inner
            .cmd
            .send(cmd)
            .await
            .map_err(|_| GossipError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| GossipError::Stopped)
    }

    async fn state(&self) -> Result<crate::core::PushPull, GossipError> {
        self.ask(Command::State).await
    }

    /// Does a TCP push/pull with each address. Returns how many answered; an error if none.
    pub async fn join(&self, addrs: &[SocketAddr]) -> Result<usize, GossipError> {
        let mut joined = 0;
        let mut last = String::from("no addresses given");
        for addr in addrs {
            if self.inner.shared.faulty() {
                last = "fault injection active".into();
                continue;
            }
            let ours = self.state().await?;
            let shared = &self.inner.shared;
            match push_pull::exchange(*addr, &ours, &shared.keyring, shared.timing.tcp_timeout)
                .await
            {
                Ok(theirs) => {
                    self.send(Command::Merge(theirs)).await?;
                    joined += 1;
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "join attempt failed");
                    last = format!("{addr}: {e}");
                }
            }
        }
        if joined == 0 {
            return Err(GossipError::JoinFailed {
                attempted: addrs.len(),
                last,
            });
        }
        Ok(joined)
    }

    /// Leaves gracefully: spreads the leave intent, waits until it has been sent out (or
    /// `timeout`), then declares itself down so the others record `Left`, not `Failed`.
    pub async fn leave(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        if self.ask(Command::LeaveIntent).await.is_err() {
            return;
        }
        let step = self.inner.shared.timing.gossip_interval;
        // Bounded by the deadline.
        while tokio::time::Instant::now() + step < deadline {
            match self.ask(Command::Backlog).await {
                Ok(0) | Err(_) => break,
                Ok(_) => tokio::time::sleep(step).await,
            }
        }
        let _ = self.ask(Command::LeaveFinish).await;
        // Let the down update go out before the caller shuts us down.
        let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(rest.min(step * 2)).await;
    }

    /// Consul's `force-leave`: a failed member becomes `Left` across the pool (with `prune`,
    /// it is also forgotten here at once). `Ok(false)`: no member of that name.
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<bool, GossipError> {
        let name = name.to_string();
        self.ask(|tx| Command::ForceLeave(name, prune, tx)).await
    }

    /// Everyone we know: ourselves, alive members, and failed/left ones until reaped.
    pub fn members(&self) -> Vec<Member> {
        self.inner
            .shared
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Membership events from now on. A receiver that lags loses the oldest events
    /// (`RecvError::Lagged`) and should re-read `members()`.
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.inner.shared.member_tx.subscribe()
    }

    /// Replaces our tags and re-announces them (tags over 512 encoded bytes are refused and
    /// logged).
    pub fn set_tags(&self, tags: BTreeMap<String, String>) {
        if self.inner.cmd.try_send(Command::SetTags(tags)).is_err() {
            tracing::warn!("tags update dropped: gossip driver busy or stopped");
        }
    }

    /// Fires a user event to every member (and ourselves); returns its Lamport time.
    pub fn fire_user_event(&self, payload: Vec<u8>) -> Result<u64, GossipError> {
        let shared = &self.inner.shared;
        let mut notice = Notice::User {
            ltime: u64::MAX, // worst case for the size check
            id: rand::rng().random(),
            origin: shared.name.clone(),
            payload,
        };
        let size = notice.encode()?.len();
        if size > USER_EVENT_LIMIT {
            return Err(GossipError::TooLarge {
                what: "user event",
                size,
                limit: USER_EVENT_LIMIT,
            });
        }
        let ltime = shared.clock.fetch_add(1, Ordering::SeqCst);
        if let Notice::User { ltime: l, .. } = &mut notice {
            *l = ltime;
        }
        let bytes = notice.encode()?;
        self.inner
            .cmd
            .try_send(Command::Fire(bytes))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => GossipError::Busy,
                mpsc::error::TrySendError::Closed(_) => GossipError::Stopped,
            })?;
        Ok(ltime)
    }

    /// User events from now on, each delivered once, including our own.
    pub fn subscribe_user_events(&self) -> broadcast::Receiver<UserEvent> {
        self.inner.shared.user_tx.subscribe()
    }

    /// The keyring (list/install/use/remove); operations fail when encryption is off.
    pub fn keyring(&self) -> KeyringHandle {
        self.inner.shared.keyring.clone()
    }

    /// Lifeguard local health: 0 is healthy, up to 7; probes slow down by `score + 1`.
    pub fn health_score(&self) -> u32 {
        self.inner.shared.health.load(Ordering::Relaxed)
    }

    /// Stops the driver and closes the sockets, without leaving (others will see `Failed`).
    pub async fn shutdown(&self) {
        let _ = self.inner.cmd.send(Command::Shutdown).await;
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Test hook: while `on`, every packet and stream in and out is dropped, as if the node
    /// were cut off from the network.
    #[doc(hidden)]
    pub fn set_fault_drop_all(&self, on: bool) {
        self.inner.shared.fault.store(on, Ordering::Relaxed);
    }
}
