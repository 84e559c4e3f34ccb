//! The search: Wing & Gong's backtracking over a list of call and return events, with Lowe's
//! cache of (set of operations linearized, state) pairs already explored, as Porcupine does.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::history::Op;
use super::model::State;

/// The result for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Linearizable,
    /// No order explains the answers. `stuck` is the operation whose answer no order could
    /// reach (by index into the key's operations); `prefix` the longest order that explained
    /// every answer before it.
    Anomaly {
        stuck: usize,
        prefix: Vec<usize>,
    },
    /// The search ran out of time.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    pub key: String,
    pub ops: usize,
    pub verdict: Verdict,
    /// Search steps taken: a measure of how hard the key was.
    pub steps: u64,
}

/// Checks each key of a history alone, giving each `budget` of time.
pub fn check_history(history: &BTreeMap<String, Vec<Op>>, budget: Duration) -> Vec<KeyReport> {
    history
        .iter()
        .map(|(key, ops)| {
            let (verdict, steps) = check_key(ops, budget);
            KeyReport {
                key: key.clone(),
                ops: ops.len(),
                verdict,
                steps,
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    time: u64,
}

/// A doubly linked list over event slots `1..=2n`, slot 0 being the head.
struct Events {
    events: Vec<Event>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each operation, the slots of its call and its return.
    slots: Vec<(usize, usize)>,
}

const END: usize = usize::MAX;

impl Events {
    fn new(ops: &[Op]) -> Self {
        let mut events: Vec<Event> = ops
            .iter()
            .enumerate()
            .flat_map(|(i, op)| {
                [
                    Event {
                        op: i,
                        is_call: true,
                        time: op.invoke,
                    },
                    Event {
                        op: i,
                        is_call: false,
                        time: op.deadline(),
                    },
                ]
            })
            .collect();
        // At equal times calls come first: the two operations then count as concurrent, the
        // permissive reading of a clock's resolution.
        events.sort_by_key(|e| (e.time, !e.is_call));
        let n = events.len();
        let mut slots = vec![(0, 0); ops.len()];
        for (i, e) in events.iter().enumerate() {
            let slot = i + 1;
            if e.is_call {
                slots[e.op].0 = slot;
            } else {
                slots[e.op].1 = slot;
            }
        }
        let next = (0..=n).map(|i| if i == n { END } else { i + 1 }).collect();
        let prev = (0..=n).map(|i| i.saturating_sub(1)).collect();
        let mut events_by_slot = Vec::with_capacity(n + 1);
        events_by_slot.push(Event {
            op: usize::MAX,
            is_call: false,
            time: 0,
        });
        events_by_slot.extend(events);
        Events {
            events: events_by_slot,
            next,
            prev,
            slots,
        }
    }

    fn first(&self) -> usize {
        self.next[0]
    }

    fn unlink(&mut self, slot: usize) {
        let (p, n) = (self.prev[slot], self.next[slot]);
        self.next[p] = n;
        if n != END {
            self.prev[n] = p;
        }
    }

    /// Undoes `unlink(slot)`; valid only in the reverse order of the unlinks.
    fn relink(&mut self, slot: usize) {
        let (p, n) = (self.prev[slot], self.next[slot]);
        self.next[p] = slot;
        if n != END {
            self.prev[n] = slot;
        }
    }

    /// Takes an operation's call and return out of the list.
    fn lift(&mut self, op: usize) {
        let (call, ret) = self.slots[op];
        self.unlink(call);
        self.unlink(ret);
    }

    fn unlift(&mut self, op: usize) {
        let (call, ret) = self.slots[op];
        self.relink(ret);
        self.relink(call);
    }
}

/// A set of operation indexes, hashed as a whole into the cache.
#[derive(Clone, PartialEq, Eq, Hash)]
struct OpSet(Vec<u64>);

impl OpSet {
    fn new(n: usize) -> Self {
        OpSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Checks one key's operations (all on the same object, starting absent or unheld).
/// Returns the verdict and the number of search steps.
pub fn check_key(ops: &[Op], budget: Duration) -> (Verdict, u64) {
    let started = Instant::now();
    let mut events = Events::new(ops);
    let mut linearized = OpSet::new(ops.len());
    let mut seen: HashSet<(OpSet, State)> = HashSet::new();
    // Each entry: the operation linearized and the state before it.
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut longest: Vec<usize> = Vec::new();
    let mut stuck = 0;
    let mut steps: u64 = 0;
    let mut slot = events.first();
    while events.first() != END {
        steps += 1;
        if steps.is_multiple_of(65_536) && started.elapsed() > budget {
            return (Verdict::Unknown, steps);
        }
        let e = events.events[slot];
        if e.is_call {
            if let Some(after) = ops[e.op].call.step(&state) {
                linearized.set(e.op);
                if seen.insert((linearized.clone(), after.clone())) {
                    stack.push((e.op, std::mem::replace(&mut state, after)));
                    events.lift(e.op);
                    slot = events.first();
                    continue;
                }
                linearized.clear(e.op);
            }
            slot = events.next[slot];
        } else {
            // An answer arrived before any order could place this operation: back up.
            if stack.len() >= longest.len() {
                longest = stack.iter().map(|(op, _)| *op).collect();
                stuck = e.op;
            }
            let Some((op, before)) = stack.pop() else {
                return (
                    Verdict::Anomaly {
                        stuck,
                        prefix: longest,
                    },
                    steps,
                );
            };
            linearized.clear(op);
            state = before;
            events.unlift(op);
            slot = events.next[events.slots[op].0];
        }
    }
    (Verdict::Linearizable, steps)
}
