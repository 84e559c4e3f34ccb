//! The driver: the one task that owns the sockets, the timers and the `GossipCore`.
//!
//! ```text
//!  UDP socket ──open──▶ ┐
//!  TCP accept ─(task)─▶ ├─▶ select! ─▶ GossipCore ─▶ flush: seal+send packets, arm timers,
//!  API commands ──────▶ │                             publish events and the member snapshot
//!  timer heap, push/pull and reap ticks ┘
//! ```
//! The API never touches the core: it sends `Command`s over a bounded channel and reads the
//! published snapshot (`Shared`). TCP exchanges run in their own tasks (bounded by a
//! semaphore) so a slow peer never stalls the UDP path.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Arc, Mutex, PoisonError, RwLock,
    },
    time::Duration,
};

use foca::Timer;
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::{broadcast, mpsc, oneshot, Semaphore},
    time::{interval, Instant, MissedTickBehavior},
};
use tracing::{debug, warn};

use crate::{
    core::{GossipCore, PushPull},
    envelope,
    identity::NodeId,
    keyring::KeyringHandle,
    member::{Member, MemberEvent, UserEvent},
    push_pull, Timing,
};

/// Concurrent inbound TCP exchanges.
const MAX_TCP_TASKS: usize = 16;

/// What the API asks of the driver.
pub(crate) enum Command {
    SetTags(std::collections::BTreeMap<String, String>),
    Fire(Vec<u8>),
    State(oneshot::Sender<PushPull>),
    Merge(PushPull),
    Serve(PushPull, oneshot::Sender<PushPull>),
    LeaveIntent(oneshot::Sender<()>),
    LeaveFinish(oneshot::Sender<()>),
    Backlog(oneshot::Sender<usize>),
    ForceLeave(String, bool, oneshot::Sender<bool>),
    Shutdown,
}

/// Logs at most one warning per period, counting the rest.
pub(crate) struct WarnLimiter {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    fn new() -> Self {
        Self {
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    pub(crate) fn warn(&self, from: SocketAddr, what: &str, err: &dyn std::fmt::Display) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(5)) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        warn!(%from, error = %err, suppressed, "dropped {what}");
    }
}

/// What the driver publishes for the API.
pub(crate) struct Shared {
    pub name: String,
    pub timing: Timing,
    pub members: RwLock<Vec<Member>>,
    pub health: AtomicU32,
    pub member_tx: broadcast::Sender<MemberEvent>,
    pub user_tx: broadcast::Sender<UserEvent>,
    pub clock: Arc<AtomicU64>,
    pub keyring: KeyringHandle,
    /// Test hook: drop every packet in and out.
    pub fault: AtomicBool,
    pub warn: WarnLimiter,
}

impl Shared {
    pub(crate) fn new(name: String, timing: Timing, keyring: KeyringHandle) -> Self {
        Self {
            name,
            timing,
            members: RwLock::new(Vec::new()),
            health: AtomicU32::new(0),
            member_tx: broadcast::channel(1024).0,
            user_tx: broadcast::channel(1024).0,
            clock: Arc::new(AtomicU64::new(0)),
            keyring,
            fault: AtomicBool::new(false),
            warn: WarnLimiter::new(),
        }
    }

    pub(crate) fn faulty(&self) -> bool {
        self.fault.load(Ordering::Relaxed)
    }
}

/// foca's timers, ordered by deadline.
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    items: HashMap<u64, Timer<NodeId>>,
    seq: u64,
}

impl Timers {
    fn push(&mut self, at: Instant, t: Timer<NodeId>) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.items.insert(self.seq, t);
    }

    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Timer<NodeId>> {
        let Reverse((at, seq)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.items.remove(&seq)
    }
}

pub(crate) struct Driver {
    pub core: GossipCore,
    pub udp: Arc<UdpSocket>,
    pub tcp: TcpListener,
    pub rx: mpsc::Receiver<Command>,
    pub tx: mpsc::WeakSender<Command>,
    pub shared: Arc<Shared>,
}

impl Driver {
    pub(crate) async fn run(mut self) {
        let mut timers = Timers::default();
        let mut buf = vec![0u8; 65_536];
        let t = self.shared.timing.clone();
        let mut push_pull = interval(t.push_pull_interval.max(Duration::from_millis(10)));
        push_pull.set_missed_tick_behavior(MissedTickBehavior::Delay);
        push_pull.tick().await; // the first tick is immediate; skip it
        let mut reap = interval(
            t.probe_interval
                .min(t.reap_after / 4)
                .max(Duration::from_millis(5)),
        );
        reap.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let tcp_slots = Arc::new(Semaphore::new(MAX_TCP_TASKS));
        self.flush(&mut timers);
        // Every iteration handles one input; the loop ends on Shutdown or when all handles
        // are gone.
        loop {
            let wake = timers
                .next()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.on_datagram(&buf[..n.min(buf.len())], from),
                    Err(e) => debug!(error = %e, "udp receive failed"),
                },
                r = self.tcp.accept() => match r {
                    Ok((stream, from)) => self.on_stream(stream, from, &tcp_slots),
                    Err(e) => debug!(error = %e, "tcp accept failed"),
                },
                cmd = self.rx.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.on_command(cmd),
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    while let Some(timer) = timers.pop_due(now) {
                        self.core.handle_timer(timer, now.into_std());
                    }
                }
                _ = push_pull.tick() => self.periodic_push_pull(),
                _ = reap.tick() => self.core.tick(Instant::now().into_std()),
            }
            self.flush(&mut timers);
        }
        debug!(node = %self.shared.name, "gossip driver stopped");
    }

    fn on_datagram(&mut self, packet: &[u8], from: SocketAddr) {
        if self.shared.faulty() {
            return;
        }
        match self.shared.keyring.read(|r| envelope::open(r, packet)) {
            Ok(plain) => self.core.handle_packet(&plain, Instant::now().into_std()),
            Err(e) => self.shared.warn.warn(from, "udp packet", &e),
        }
    }

    fn on_stream(
        &mut self,
        stream: tokio::net::TcpStream,
        from: SocketAddr,
        slots: &Arc<Semaphore>,
    ) {
        if self.shared.faulty() {
            return;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%from, "too many push/pull connections; dropped");
            return;
        };
        let tx = self.tx.clone();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let merge = |theirs: PushPull| async move {
                let tx = tx.upgrade()?;
                let (reply, rx) = oneshot::channel();
                tx.send(Command::Serve(theirs, reply)).await.ok()?;
                rx.await.ok()
            };
            let r =
                push_pull::serve(stream, &shared.keyring, shared.timing.tcp_timeout, merge).await;
            if let Err(e) = r {
                shared.warn.warn(from, "push/pull stream", &e);
            }
        });
    }

    /// The periodic push/pull with a random member, and Serf's reconnect attempt with a
    /// failed one ([`GossipCore::reconnect_target`]).
    fn periodic_push_pull(&mut self) {
        if self.shared.faulty() {
            return;
        }
        let periodic = self.core.push_pull_target();
        let reconnect = self
            .core
            .reconnect_target()
            .filter(|r| Some(*r) != periodic);
        for addr in periodic.into_iter().chain(reconnect) {
            self.push_pull_with(addr);
        }
    }

    fn push_pull_with(&mut self, addr: SocketAddr) {
        let ours = self.core.push_pull_state();
        let tx = self.tx.clone();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            match push_pull::exchange(addr, &ours, &shared.keyring, shared.timing.tcp_timeout).await
            {
                Ok(theirs) => {
                    if let Some(tx) = tx.upgrade() {
                        let _ = tx.send(Command::Merge(theirs)).await;
                    }
                }
                Err(e) => debug!(%addr, error = %e, "periodic push/pull failed"),
            }
        });
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now().into_std();
        match cmd {
            Command::SetTags(tags) => {
                if let Err(e) = self.core.set_tags(tags, now) {
                    warn!(error = %e, "tags not updated");
                }
            }
            Command::Fire(bytes) => self.core.add_notice(&bytes, now),
            Command::State(reply) => {
                let _ = reply.send(self.core.push_pull_state());
            }
            Command::Merge(theirs) => {
                if !self.shared.faulty() {
                    self.core.apply_push_pull(theirs, now);
                }
            }
            Command::Serve(theirs, reply) => {
                if !self.shared.faulty() {
                    self.core.apply_push_pull(theirs, now);
                    let _ = reply.send(self.core.push_pull_state());
                }
            }
            Command::LeaveIntent(done) => {
                self.core.leave_intent(now);
                let _ = done.send(());
            }
            Command::LeaveFinish(done) => {
                self.core.leave_finish(now);
                let _ = done.send(());
            }
            Command::Backlog(reply) => {
                let _ = reply.send(self.core.broadcast_backlog());
            }
            Command::ForceLeave(name, prune, reply) => {
                let _ = reply.send(self.core.force_leave(&name, prune, now));
            }
            Command::Shutdown => {}
        }
    }

    fn flush(&mut self, timers: &mut Timers) {
        let packets = self.core.take_packets();
        if !self.shared.faulty() {
            for (to, data) in packets {
                let sealed = self.shared.keyring.read(|r| envelope::seal(r, &data));
                // Never block the driver on a full socket buffer: UDP may drop anyway.
                if let Err(e) = self.udp.try_send_to(&sealed, to) {
                    debug!(%to, error = %e, "udp send failed");
                }
            }
        }
        let now = Instant::now();
        for (after, t) in self.core.take_timers() {
            timers.push(now + after, t);
        }
        let events = self.core.take_events();
        let changed = self.core.take_changed() || !events.is_empty();
        for e in events {
            let _ = self.shared.member_tx.send(e);
        }
        for e in self.core.take_user_events() {
            let _ = self.shared.user_tx.send(e);
        }
        if changed {
            let snapshot = self.core.members();
            *self
                .shared
                .members
                .write()
                .unwrap_or_else(PoisonError::into_inner) = snapshot;
        }
        self.shared
            .health
            .store(self.core.health(), Ordering::Relaxed);
    }
}
