//! Clients: each issues one operation at a time (register reads, writes and compare-and-sets,
//! lock acquires and releases, destroying and replacing its session) against some node, and
//! records what it saw for the checker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lotse_core::kv::KvWrite;
use lotse_core::{Command, Outcome, Session};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cluster::{Cluster, WriteResult, WRITE_TIMEOUT};
use crate::linearizability::{Call, Op, Outcome as Seen};

pub const REGISTERS: usize = 3;
pub const LOCKS: usize = 1;

pub fn register_key(i: usize) -> String {
    format!("sim/r{i}")
}

pub fn lock_key(i: usize) -> String {
    format!("sim/lock{i}")
}

/// The lock-delay of every client session: long enough that acquires race it, short enough
/// that the lock is free most of a run.
pub const LOCK_DELAY_MS: u64 = 1000;

/// The `generation`th session of `client` (a client replaces its session after destroying it).
pub fn session_id(client: u64, generation: u64) -> String {
    format!("00000000-0000-0000-{generation:04x}-{client:012}")
}

/// A client's session: no checks, no TTL, [`LOCK_DELAY_MS`]; it ends only when its client
/// destroys it, as a client that crashed would have its session invalidated.
pub fn client_session(client: u64, generation: u64) -> Session {
    Session {
        id: session_id(client, generation),
        name: format!("client-{client}"),
        node: "sim".into(),
        lock_delay_ns: LOCK_DELAY_MS * 1_000_000,
        behavior: Default::default(),
        ttl: String::new(),
        node_checks: Vec::new(),
        service_checks: Vec::new(),
        create_index: 0,
        modify_index: 0,
    }
}

/// What one client knows about its session.
struct ClientSession {
    client: u64,
    generation: u64,
    /// `None` between destroying one session and creating the next.
    live: Option<String>,
    /// Per lock: its last operation there was an acquire answered `true`, so it holds it.
    held: Vec<bool>,
}

pub struct Workload {
    pub cluster: Arc<Cluster>,
    pub history: Arc<Mutex<Vec<Op>>>,
    pub values: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    /// [`super::Bug::StaleReads`]: skip the leadership confirmation before reading.
    pub stale_reads: bool,
    /// [`super::Bug::FastLockClock`]: stamp acquires a lock-delay late.
    pub fast_lock_clock: bool,
}

impl Workload {
    fn record(&self, op: Op) {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(op);
    }

    /// One client's loop until `stop`.
    pub async fn client(self: Arc<Self>, id: u64, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        // The modify index and value of this client's latest read, per register.
        let mut last_read: Vec<Option<(String, u64)>> = vec![None; REGISTERS];
        let mut sessions = ClientSession {
            client: id,
            generation: 0,
            live: Some(session_id(id, 0)),
            held: vec![false; LOCKS],
        };
        while !self.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(2..30))).await;
            let Some((node_id, node)) = self.cluster.pick(&mut rng) else {
                continue;
            };
            let which = rng.gen_range(0..REGISTERS + LOCKS);
            let invoke = self.cluster.now_ns();
            if which >= REGISTERS {
                let lock = which - REGISTERS;
                let Some(session) = sessions.live.clone() else {
                    self.replace_session(&node, &mut sessions).await;
                    continue;
                };
                if rng.gen_ratio(1, 8) {
                    self.destroy_session(node_id, &node, &mut sessions, session, &mut rng)
                        .await;
                    continue;
                }
                let key = lock_key(lock);
                let acquire = rng.gen_bool(0.5);
                let write = KvWrite {
                    key: key.clone(),
                    value: id.to_string().into_bytes(),
                    flags: 0,
                };
                let cmd = if acquire {
                    Command::KvLock {
                        write,
                        session: session.clone(),
                        now_ms: self.cluster.node_now_ms(node_id)
                            + if self.fast_lock_clock {
                                LOCK_DELAY_MS
                            } else {
                                0
                            },
                    }
                } else {
                    Command::KvUnlock {
                        write,
                        session: session.clone(),
                    }
                };
                let (outcome, result) = self.outcome_of(node_id, &node, cmd).await;
                if outcome != Seen::Fail {
                    sessions.held[lock] = acquire && result == Some(true);
                }
                let call = if acquire {
                    Call::Acquire { session, result }
                } else {
                    Call::Release { session, result }
                };
                self.finish(id, key, invoke, outcome, call);
                continue;
            }
            let key = register_key(which);
            match rng.gen_range(0..10) {
                0..=3 => {
                    let read = if self.stale_reads {
                        Ok(Ok(0))
                    } else {
                        let read = lotse_consensus::linearizable_read(&node.raft, node.read_floor);
                        tokio::time::timeout(WRITE_TIMEOUT, read).await
                    };
                    match read {
                        Ok(Ok(_)) => {
                            let entry = {
                                let a = node.state.read();
                                a.store.kv_get(&key).1.map(|e| {
                                    (
                                        String::from_utf8_lossy(&e.value).into_owned(),
                                        e.modify_index,
                                    )
                                })
                            };
                            last_read[which] = entry.clone();
                            let value = entry.map(|(v, _)| v);
                            self.finish(
                                id,
                                key,
                                invoke,
                                Seen::Ok,
                                Call::Read {
                                    value,
                                    mode: Some(format!("consistent@{node_id}")),
                                },
                            );
                        }
                        Ok(Err(e)) => {
                            if let Some(l) = e.forward_to_leader().and_then(|f| f.leader_id) {
                                self.cluster.hint(Some(l));
                            }
                        }
                        Err(_) => {}
                    }
                }
                4..=7 => {
                    let value = self.values.fetch_add(1, Ordering::Relaxed).to_string();
                    let cmd = Command::KvSet(KvWrite {
                        key: key.clone(),
                        value: value.clone().into_bytes(),
                        flags: 0,
                    });
                    let (outcome, _) = self.outcome_of(node_id, &node, cmd).await;
                    self.finish(id, key, invoke, outcome, Call::Write { value });
                }
                _ => {
                    // Compare-and-set on the modify index of this client's latest read; with
                    // unique values that is "still holds the value read".
                    let Some((expect, index)) = last_read[which].take() else {
                        continue;
                    };
                    let value = self.values.fetch_add(1, Ordering::Relaxed).to_string();
                    let cmd = Command::KvCas {
                        write: KvWrite {
                            key: key.clone(),
                            value: value.clone().into_bytes(),
                            flags: 0,
                        },
                        index,
                    };
                    let (outcome, result) = self.outcome_of(node_id, &node, cmd).await;
                    self.finish(
                        id,
                        key,
                        invoke,
                        outcome,
                        Call::Cas {
                            expect,
                            value,
                            result,
                        },
                    );
                }
            }
        }
    }

    /// Destroys the client's session, as a crashed client's would be: every lock it held is
    /// freed, under lock-delay. Retried until the outcome is known, so no session outlives
    /// its client holding a lock for the rest of the run. Destroying is idempotent, so the
    /// attempts are recorded as one operation (on every lock key) from the first attempt's
    /// invocation to the answer: the session ended somewhere in between, and its lock-delay
    /// started no earlier than that invocation.
    async fn destroy_session(
        &self,
        mut node_id: u64,
        node: &super::node::Running,
        sessions: &mut ClientSession,
        session: String,
        rng: &mut StdRng,
    ) {
        let mut node = node.clone();
        let invoke = self.cluster.now_ns();
        let mut maybe_applied = false;
        let outcome = loop {
            if self.stop.load(Ordering::Relaxed) {
                break if maybe_applied {
                    Seen::Info
                } else {
                    Seen::Fail
                };
            }
            let cmd = Command::SessionDestroy {
                id: session.clone(),
                now_ms: self.cluster.node_now_ms(node_id),
            };
            match self.outcome_of(node_id, &node, cmd).await.0 {
                Seen::Ok => break Seen::Ok,
                Seen::Info => maybe_applied = true,
                Seen::Fail => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some((id, r)) = self.cluster.pick(rng) {
                (node_id, node) = (id, r);
            }
        };
        for (lock, held) in sessions.held.iter_mut().enumerate() {
            let call = Call::Invalidate {
                session: session.clone(),
                held: *held,
                lock_delay_ms: LOCK_DELAY_MS,
            };
            self.finish(sessions.client, lock_key(lock), invoke, outcome, call);
            if outcome != Seen::Fail {
                *held = false;
            }
        }
        if outcome == Seen::Ok {
            sessions.live = None;
        }
    }

    /// Creates the client's next session; on any doubt the client tries a fresh one later
    /// (a session created unknowingly holds nothing and harms nobody).
    async fn replace_session(&self, node: &super::node::Running, sessions: &mut ClientSession) {
        sessions.generation += 1;
        let cmd = Command::SessionCreate {
            session: client_session(sessions.client, sessions.generation),
            now_ms: self.cluster.now_ms(),
        };
        if let WriteResult::Applied(Outcome::Done) = self.cluster.write(node, cmd).await {
            sessions.live = Some(session_id(sessions.client, sessions.generation));
        }
    }

    /// Runs a write and says what the client learned: its outcome and boolean answer.
    async fn outcome_of(
        &self,
        node_id: u64,
        node: &super::node::Running,
        cmd: Command,
    ) -> (Seen, Option<bool>) {
        match self.cluster.write(node, cmd).await {
            WriteResult::Applied(Outcome::Bool(b)) => {
                self.cluster.hint(Some(node_id));
                (Seen::Ok, Some(b))
            }
            // Refused by the store as a whole: no effect.
            WriteResult::Applied(_) => (Seen::Fail, None),
            WriteResult::NotApplied(leader) => {
                self.cluster.hint(leader);
                (Seen::Fail, None)
            }
            WriteResult::Unknown => (Seen::Info, None),
        }
    }

    fn finish(&self, process: u64, key: String, invoke: u64, outcome: Seen, call: Call) {
        let complete = (outcome == Seen::Ok).then(|| self.cluster.now_ns());
        self.record(Op {
            process,
            key,
            invoke,
            complete,
            outcome,
            call,
        });
    }
}
