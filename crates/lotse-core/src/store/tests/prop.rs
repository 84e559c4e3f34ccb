//! Model-based property tests: random command sequences over a tiny key and session space (so
//! that collisions, contention and re-creation happen often), checked after every step against
//! a plain model and a set of invariants.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::SnapshotImage;

const KEYS: [&str; 4] = ["a", "a/b", "a/c", "b"];
const SESSIONS: [&str; 3] = ["s0", "s1", "s2"];
const PREFIXES: [&str; 5] = ["", "a", "a/", "b", "c"];
const VERBS: [KvVerb; 12] = [
    KvVerb::Set,
    KvVerb::Delete,
    KvVerb::DeleteCas,
    KvVerb::DeleteTree,
    KvVerb::Cas,
    KvVerb::Lock,
    KvVerb::Unlock,
    KvVerb::Get,
    KvVerb::GetTree,
    KvVerb::CheckIndex,
    KvVerb::CheckSession,
    KvVerb::CheckNotExists,
];

/// A CAS / check index, resolved against the model when the step runs.
#[derive(Debug, Clone)]
enum Idx {
    Zero,
    /// The key's current ModifyIndex (0 when it is missing).
    Current,
    Other(u64),
}

/// Which session a lock/unlock/check names: `None` for none, `Some(i < 3)` for `SESSIONS[i]`,
/// `Some(3)` for the key's current holder (or else the first live session, or none).
type Sp = Option<usize>;

#[derive(Debug, Clone)]
struct TOp {
    verb: KvVerb,
    key: usize,
    prefix: usize,
    value: u8,
    idx: Idx,
    session: Sp,
}

#[derive(Debug, Clone)]
enum Op {
    Noop,
    Set {
        key: usize,
        value: u8,
        flags: u64,
    },
    Cas {
        key: usize,
        value: u8,
        idx: Idx,
    },
    Lock {
        key: usize,
        value: u8,
        session: Sp,
    },
    Unlock {
        key: usize,
        value: u8,
        session: Sp,
    },
    Delete {
        key: usize,
    },
    DeleteCas {
        key: usize,
        idx: Idx,
    },
    DeleteTree {
        prefix: usize,
    },
    Txn {
        ops: Vec<TOp>,
    },
    Create {
        session: usize,
        delete: bool,
        delay_halves: u64,
        on_node: bool,
    },
    Destroy {
        session: usize,
    },
    /// Reaps tombstones up to `last_index * quarters / 4`.
    Reap {
        quarters: u64,
    },
}

#[derive(Debug, Clone)]
struct Step {
    /// Milliseconds the leader's clock moves before this command.
    dt: u64,
    op: Op,
}

fn idx() -> impl Strategy<Value = Idx> {
    prop_oneof![
        2 => Just(Idx::Zero),
        5 => Just(Idx::Current),
        2 => (1u64..50).prop_map(Idx::Other),
    ]
}

fn key() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn sess() -> impl Strategy<Value = Sp> {
    prop_oneof![1 => Just(None), 9 => (0..SESSIONS.len()).prop_map(Some), 4 => Just(Some(SESSIONS.len()))]
}

fn value() -> impl Strategy<Value = u8> {
    0u8..3
}

fn top() -> impl Strategy<Value = TOp> {
    (
        proptest::sample::select(VERBS.to_vec()),
        key(),
        0..PREFIXES.len(),
        value(),
        idx(),
        sess(),
    )
        .prop_map(|(verb, key, prefix, value, idx, session)| TOp {
            verb,
            key,
            prefix,
            value,
            idx,
            session,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Noop),
        6 => (key(), value(), 0u64..2).prop_map(|(key, value, flags)| Op::Set { key, value, flags }),
        4 => (key(), value(), idx()).prop_map(|(key, value, idx)| Op::Cas { key, value, idx }),
        8 => (key(), value(), sess()).prop_map(|(key, value, session)| Op::Lock { key, value, session }),
        5 => (key(), value(), sess()).prop_map(|(key, value, session)| Op::Unlock { key, value, session }),
        3 => key().prop_map(|key| Op::Delete { key }),
        3 => (key(), idx()).prop_map(|(key, idx)| Op::DeleteCas { key, idx }),
        2 => (0..PREFIXES.len()).prop_map(|prefix| Op::DeleteTree { prefix }),
        6 => proptest::collection::vec(top(), 0..6).prop_map(|ops| Op::Txn { ops }),
        7 => (0..SESSIONS.len(), any::<bool>(), 0u64..3, proptest::bool::weighted(0.9)).prop_map(
            |(session, delete, delay_halves, on_node)| Op::Create { session, delete, delay_halves, on_node },
        ),
        5 => (0..SESSIONS.len()).prop_map(|session| Op::Destroy { session }),
        2 => (0u64..=4).prop_map(|quarters| Op::Reap { quarters }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let dt = prop_oneof![4 => 0u64..30, 1 => 0u64..1500];
    // Up to three sessions created first (so that locks have someone to hold them), then the
    // random commands.
    let initial = proptest::collection::vec((any::<bool>(), 0u64..3), 0..=SESSIONS.len());
    let rest = proptest::collection::vec((dt, op()).prop_map(|(dt, op)| Step { dt, op }), 1..37);
    (initial, rest).prop_map(|(initial, rest)| {
        let mut steps: Vec<Step> = initial
            .into_iter()
            .enumerate()
            .map(|(session, (delete, delay_halves))| Step {
                dt: 0,
                op: Op::Create {
                    session,
                    delete,
                    delay_halves,
                    on_node: true,
                },
            })
            .collect();
        steps.extend(rest);
        steps
    })
}

// ---- the model ----

/// What the store should hold: the live entries with their exact indexes, the live sessions
/// (behaviour, lock-delay in ms), and lock-delay deadlines. No tombstones, no derived indexes.
#[derive(Debug, Clone, Default)]
struct Model {
    kv: BTreeMap<String, KvEntry>,
    sessions: BTreeMap<String, (SessionBehavior, u64)>,
    delays: BTreeMap<String, u64>,
}

fn val(v: u8) -> Vec<u8> {
    if v == 0 {
        Vec::new()
    } else {
        vec![b'0' + v]
    }
}

impl Model {
    fn resolve(&self, key: &str, i: &Idx) -> u64 {
        match i {
            Idx::Zero => 0,
            Idx::Current => self.kv.get(key).map_or(0, |e| e.modify_index),
            Idx::Other(n) => *n,
        }
    }

    fn set(&mut self, i: u64, key: &str, value: &[u8], flags: u64) -> KvEntry {
        let old = self.kv.get(key);
        // Consul: rewriting exactly what is stored is a no-op (ModifyIndex stays).
        if let Some(o) = old.filter(|o| o.value == value && o.flags == flags) {
            return o.clone();
        }
        let e = KvEntry {
            key: key.to_string(),
            value: value.to_vec(),
            flags,
            lock_index: old.map_or(0, |o| o.lock_index),
            session: old.and_then(|o| o.session.clone()),
            create_index: old.map_or(i, |o| o.create_index),
            modify_index: i,
        };
        self.kv.insert(key.to_string(), e.clone());
        e
    }

    fn cas_ok(&self, key: &str, c: u64) -> bool {
        match self.kv.get(key) {
            None => c == 0,
            Some(e) => c != 0 && e.modify_index == c,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn lock(
        &mut self,
        i: u64,
        key: &str,
        value: &[u8],
        flags: u64,
        s: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        if s.is_empty() {
            return Err(StoreError::MissingSession);
        }
        if !self.sessions.contains_key(s) {
            return Err(StoreError::InvalidSession(s.to_string()));
        }
        if self.delays.get(key).is_some_and(|until| now < *until) {
            return Ok(false);
        }
        let (lock_index, create_index) = match self.kv.get(key) {
            None => (1, i),
            Some(e) if e.session.as_deref() == Some(s) => (e.lock_index, e.create_index),
            Some(e) if e.session.is_some() => return Ok(false),
            Some(e) => (e.lock_index + 1, e.create_index),
        };
        let e = KvEntry {
            key: key.to_string(),
            value: value.to_vec(),
            flags,
            lock_index,
            session: Some(s.to_string()),
            create_index,
            modify_index: i,
        };
        self.kv.insert(key.to_string(), e);
        Ok(true)
    }

    fn unlock(
        &mut self,
        i: u64,
        key: &str,
        value: &[u8],
        flags: u64,
        s: &str,
    ) -> Result<bool, StoreError> {
        if s.is_empty() {
            return Err(StoreError::MissingSession);
        }
        let Some(e) = self.kv.get_mut(key) else {
            return Ok(false);
        };
        if e.session.as_deref() != Some(s) {
            return Ok(false);
        }
        e.session = None;
        e.value = value.to_vec();
        e.flags = flags;
        e.modify_index = i;
        Ok(true)
    }

    fn delete_cas(&mut self, key: &str, c: u64) -> bool {
        match self.kv.get(key) {
            None => true,
            Some(e) if e.modify_index != c => false,
            Some(_) => {
                self.kv.remove(key);
                true
            }
        }
    }

    fn delete_tree(&mut self, prefix: &str) {
        self.kv.retain(|k, _| !k.starts_with(prefix));
    }

    fn tree(&self, prefix: &str) -> Vec<KvEntry> {
        self.kv
            .values()
            .filter(|e| e.key.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// One transaction operation: its results, or `Err(())` when it fails.
    fn txn_op(&mut self, i: u64, op: &KvOp, now: u64) -> Result<Vec<KvEntry>, ()> {
        let k = op.key.as_str();
        let blank = |mut e: KvEntry| {
            e.value.clear();
            vec![e]
        };
        match op.verb {
            KvVerb::Set => Ok(blank(self.set(i, k, &op.value, op.flags))),
            KvVerb::Cas => {
                if !self.cas_ok(k, op.index) {
                    return Err(());
                }
                Ok(blank(self.set(i, k, &op.value, op.flags)))
            }
            KvVerb::Lock => match self.lock(i, k, &op.value, op.flags, &op.session, now) {
                Ok(true) => Ok(blank(self.kv[k].clone())),
                _ => Err(()),
            },
            KvVerb::Unlock => match self.unlock(i, k, &op.value, op.flags, &op.session) {
                Ok(true) => Ok(blank(self.kv[k].clone())),
                _ => Err(()),
            },
            KvVerb::Delete => {
                self.kv.remove(k);
                Ok(vec![])
            }
            KvVerb::DeleteCas => self.delete_cas(k, op.index).then(Vec::new).ok_or(()),
            KvVerb::DeleteTree => {
                self.delete_tree(k);
                Ok(vec![])
            }
            KvVerb::Get => self.kv.get(k).map(|e| vec![e.clone()]).ok_or(()),
            KvVerb::GetTree => Ok(self.tree(k)),
            KvVerb::CheckIndex => match self.kv.get(k) {
                Some(e) if e.modify_index == op.index => Ok(blank(e.clone())),
                _ => Err(()),
            },
            KvVerb::CheckSession => match self.kv.get(k) {
                Some(e) if e.session.as_deref().unwrap_or("") == op.session => Ok(blank(e.clone())),
                _ => Err(()),
            },
            KvVerb::CheckNotExists => (!self.kv.contains_key(k)).then(Vec::new).ok_or(()),
        }
    }

    /// A whole transaction: all results, or the position of the first failing op (and the
    /// model unchanged).
    fn txn(&mut self, i: u64, ops: &[KvOp], now: u64) -> Result<Vec<KvEntry>, usize> {
        let mut work = self.clone();
        let mut results = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            match work.txn_op(i, op, now) {
                Ok(r) => results.extend(r),
                Err(()) => return Err(n),
            }
        }
        *self = work;
        Ok(results)
    }

    fn destroy(&mut self, i: u64, s: &str, now: u64) {
        let Some((behavior, delay)) = self.sessions.remove(s) else {
            return;
        };
        let held: Vec<String> = self
            .kv
            .values()
            .filter(|e| e.session.as_deref() == Some(s))
            .map(|e| e.key.clone())
            .collect();
        for k in held {
            if delay > 0 {
                self.delays.insert(k.clone(), now + delay);
            }
            match behavior {
                SessionBehavior::Release => {
                    let e = self.kv.get_mut(&k).unwrap();
                    e.session = None;
                    e.modify_index = i;
                }
                SessionBehavior::Delete => {
                    self.kv.remove(&k);
                }
            }
        }
    }
}

/// What the model expects a command's outcome to be: `Txn` carries only success or the first
/// failing position, checked separately.
#[derive(Debug, PartialEq)]
enum Expect {
    Outcome(Outcome),
    TxnOk(Vec<KvEntry>),
    TxnErrAt(usize),
}

fn kv_write(key: &str, value: u8, flags: u64) -> KvWrite {
    KvWrite {
        key: key.to_string(),
        value: val(value),
        flags,
    }
}

fn session_name(m: &Model, key: &str, s: Sp) -> String {
    match s {
        None => String::new(),
        Some(i) if i < SESSIONS.len() => SESSIONS[i].to_string(),
        Some(_) => {
            m.kv.get(key)
                .and_then(|e| e.session.clone())
                .or_else(|| m.sessions.keys().next().cloned())
                .unwrap_or_default()
        }
    }
}

/// Turns a step into the command to apply and the model's expectation, updating the model.
fn run_model(m: &mut Model, i: u64, last_index: u64, now: u64, op: &Op) -> (Command, Expect) {
    use Expect::Outcome as O;
    match op {
        Op::Noop => (Command::Noop, O(Outcome::Done)),
        Op::Set { key, value, flags } => {
            let w = kv_write(KEYS[*key], *value, *flags);
            m.set(i, &w.key, &w.value, w.flags);
            (Command::KvSet(w), O(Outcome::Bool(true)))
        }
        Op::Cas { key, value, idx } => {
            let w = kv_write(KEYS[*key], *value, 0);
            let c = m.resolve(&w.key, idx);
            let ok = m.cas_ok(&w.key, c);
            if ok {
                m.set(i, &w.key, &w.value, w.flags);
            }
            (Command::KvCas { write: w, index: c }, O(Outcome::Bool(ok)))
        }
        Op::Lock {
            key,
            value,
            session,
        } => {
            let w = kv_write(KEYS[*key], *value, 1);
            let s = session_name(m, &w.key, *session);
            let out = match m.lock(i, &w.key, &w.value, w.flags, &s, now) {
                Ok(b) => Outcome::Bool(b),
                Err(e) => Outcome::Rejected(e),
            };
            (
                Command::KvLock {
                    write: w,
                    session: s,
                    now_ms: now,
                },
                O(out),
            )
        }
        Op::Unlock {
            key,
            value,
            session,
        } => {
            let w = kv_write(KEYS[*key], *value, 0);
            let s = session_name(m, &w.key, *session);
            let out = match m.unlock(i, &w.key, &w.value, w.flags, &s) {
                Ok(b) => Outcome::Bool(b),
                Err(e) => Outcome::Rejected(e),
            };
            (
                Command::KvUnlock {
                    write: w,
                    session: s,
                },
                O(out),
            )
        }
        Op::Delete { key } => {
            m.kv.remove(KEYS[*key]);
            (delete(KEYS[*key]), O(Outcome::Bool(true)))
        }
        Op::DeleteCas { key, idx } => {
            let c = m.resolve(KEYS[*key], idx);
            let ok = m.delete_cas(KEYS[*key], c);
            (delete_cas(KEYS[*key], c), O(Outcome::Bool(ok)))
        }
        Op::DeleteTree { prefix } => {
            m.delete_tree(PREFIXES[*prefix]);
            (delete_tree(PREFIXES[*prefix]), O(Outcome::Bool(true)))
        }
        Op::Txn { ops } => {
            let ops: Vec<KvOp> = ops
                .iter()
                .map(|t| {
                    let tree = matches!(t.verb, KvVerb::DeleteTree | KvVerb::GetTree);
                    let key = if tree {
                        PREFIXES[t.prefix]
                    } else {
                        KEYS[t.key]
                    };
                    KvOp {
                        verb: t.verb,
                        key: key.to_string(),
                        value: val(t.value),
                        flags: u64::from(t.value % 2),
                        index: m.resolve(key, &t.idx),
                        session: session_name(m, key, t.session),
                    }
                })
                .collect();
            let expect = match m.txn(i, &ops, now) {
                Ok(r) => Expect::TxnOk(r),
                Err(at) => Expect::TxnErrAt(at),
            };
            (
                Command::Txn {
                    ops: ops.into_iter().map(TxnOp::Kv).collect(),
                    now_ms: now,
                },
                expect,
            )
        }
        Op::Create {
            session: s,
            delete,
            delay_halves,
            on_node,
        } => {
            let id = SESSIONS[*s];
            let behavior = if *delete {
                SessionBehavior::Delete
            } else {
                SessionBehavior::Release
            };
            let delay_ms = delay_halves * 500;
            let sess = Session {
                behavior,
                lock_delay_ns: delay_ms * 1_000_000,
                node: if *on_node {
                    NODE.to_string()
                } else {
                    "ghost".to_string()
                },
                ..session(id)
            };
            let out = if m.sessions.contains_key(id) {
                Outcome::Rejected(StoreError::SessionExists)
            } else if !*on_node {
                Outcome::Rejected(StoreError::MissingNode)
            } else {
                m.sessions.insert(id.to_string(), (behavior, delay_ms));
                Outcome::Done
            };
            (
                Command::SessionCreate {
                    session: sess,
                    now_ms: now,
                },
                O(out),
            )
        }
        Op::Destroy { session: s } => {
            m.destroy(i, SESSIONS[*s], now);
            (destroy(SESSIONS[*s], now), O(Outcome::Bool(true)))
        }
        Op::Reap { quarters } => (
            Command::TombstoneReap {
                up_to_index: last_index * quarters / 4,
            },
            O(Outcome::Done),
        ),
    }
}

fn watched() -> Vec<WatchKey> {
    KEYS.iter()
        .chain(["zz", "a/"].iter())
        .map(|k| WatchKey::Key(k.to_string()))
        .chain(PREFIXES.iter().map(|p| WatchKey::Prefix(p.to_string())))
        .chain([Table::Kv, Table::Sessions, Table::Nodes].map(WatchKey::Table))
        .collect()
}

fn held_from_entries(store: &Store) -> BTreeMap<String, BTreeSet<String>> {
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in store.kv.entries.values() {
        if let Some(s) = &e.session {
            held.entry(s.clone()).or_default().insert(e.key.clone());
        }
    }
    held
}

/// Runs one random sequence, checking the model and every invariant after each step.
fn run(steps: &[Step]) {
    let mut h = H::with_node();
    let mut m = Model::default();
    let mut now: u64 = 1_000_000;
    let watched = watched();

    for (n, step) in steps.iter().enumerate() {
        now += step.dt;
        let i = h.next;
        let before = h.store.clone();
        let indexes_before: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();
        let (cmd, expect) = run_model(&mut m, i, before.last_index(), now, &step.op);
        let ctx = format!("step {n} at index {i}: {cmd:?}");
        let (out, changes) = h.apply(cmd.clone());
        let after = &h.store;

        // The outcome is the model's.
        match (&expect, &out) {
            (Expect::Outcome(e), o) => assert_eq!(o, e, "{ctx}"),
            (Expect::TxnOk(r), Outcome::Txn(Ok(got))) => {
                let got: Vec<KvEntry> = got.iter().map(|r| kv_result(r).clone()).collect();
                assert_eq!(&got, r, "{ctx}");
            }
            (Expect::TxnErrAt(at), Outcome::Txn(Err(errs))) => {
                assert!(!errs.is_empty(), "{ctx}");
                assert_eq!(errs[0].op_index, *at, "{ctx}: {errs:?}");
            }
            (e, o) => panic!("{ctx}: expected {e:?}, got {o:?}"),
        }

        // Values, holders and indexes match the model; sessions too.
        assert_eq!(after.kv.entries, m.kv, "{ctx}");
        let live: Vec<&String> = after.session_map().keys().collect();
        assert_eq!(live, m.sessions.keys().collect::<Vec<_>>(), "{ctx}");

        // last_index grows; entries' ModifyIndex grows and CreateIndex stays while a key lives.
        assert_eq!(after.last_index(), i, "{ctx}");
        assert!(after.last_index() > before.last_index(), "{ctx}");
        for (k, e) in &after.kv.entries {
            assert!(
                e.create_index <= e.modify_index && e.modify_index <= i,
                "{ctx}: {e:?}"
            );
            if let Some(old) = before.kv.entries.get(k) {
                assert!(e.modify_index >= old.modify_index, "{ctx}: {k}");
                // Only a transaction can delete a key and create it again in one command.
                if e.create_index != old.create_index {
                    assert!(
                        matches!(cmd, Command::Txn { .. }) && e.create_index == i,
                        "{ctx}: {k}"
                    );
                }
            }
        }

        // One holder per key, always a live session; the derived lock index agrees.
        for e in after.kv.entries.values() {
            if let Some(s) = &e.session {
                assert!(
                    after.session_map().contains_key(s),
                    "{ctx}: {e:?} held by a dead session"
                );
                assert!(e.lock_index >= 1, "{ctx}: {e:?}");
            }
        }
        assert_eq!(after.kv.held, held_from_entries(after), "{ctx}");

        // Watch indexes never go backwards, and one that moved was reported (a reap may raise
        // the floor of keys it does not report: nothing a query returns changed).
        let indexes_after: Vec<u64> = watched.iter().map(|w| h.wi(w)).collect();
        for ((w, b), a) in watched.iter().zip(&indexes_before).zip(&indexes_after) {
            assert!(a >= b, "{ctx}: {w:?} went back from {b} to {a}");
            if a != b && !matches!(cmd, Command::TombstoneReap { .. }) {
                assert!(
                    changes.affects(w),
                    "{ctx}: {w:?} moved {b} -> {a}, not in {changes:?}"
                );
            }
        }
        for k in KEYS {
            if let Some(e) = after.kv.entries.get(k) {
                assert_eq!(
                    h.wi(&WatchKey::Key(k.to_string())),
                    e.modify_index.max(1),
                    "{ctx}"
                );
            }
        }

        // Changes name every key whose entry differs, and only keys that really changed
        // (entry or tombstone).
        let all: BTreeSet<&String> = before
            .kv
            .entries
            .keys()
            .chain(after.kv.entries.keys())
            .collect();
        for k in all {
            if before.kv.entries.get(k) != after.kv.entries.get(k) {
                assert!(
                    changes.keys.contains(k),
                    "{ctx}: {k} changed, not in {changes:?}"
                );
            }
        }
        for k in &changes.keys {
            let differs = before.kv.entries.get(k) != after.kv.entries.get(k)
                || before.kv.tombstones.get(k) != after.kv.tombstones.get(k);
            assert!(differs, "{ctx}: {k} reported but unchanged");
        }
        if !changes.keys.is_empty() {
            assert!(changes.tables.contains(&Table::Kv), "{ctx}");
        }

        // A rolled-back transaction (or any refused command) changes nothing.
        let refused = matches!(
            out,
            Outcome::Txn(Err(_)) | Outcome::Rejected(_) | Outcome::Bool(false)
        );
        if refused {
            assert!(changes.is_empty(), "{ctx}: {changes:?}");
            assert_eq!(after, &unchanged(&before, after), "{ctx}");
        }
    }

    // The final store survives a snapshot, derived index included.
    let mut image = SnapshotImage::of(&h.store);
    image.store.kv.held.clear();
    let restored = image.into_store().unwrap();
    assert_eq!(restored, h.store);
}

/// No regression files: the suite must not write into the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_sequences_match_the_model(steps in steps()) {
        run(&steps);
    }
}

/// The same run, from a restored snapshot half-way: the two stores stay equal.
fn run_split(steps: &[Step], split: usize) {
    let mut a = H::with_node();
    let mut m = Model::default();
    let mut now = 1_000_000;
    let mut b: Option<H> = None;
    for (n, step) in steps.iter().enumerate() {
        if n == split {
            let mut image = SnapshotImage::of(&a.store);
            image.store.kv.held.clear();
            b = Some(H {
                store: image.into_store().unwrap(),
                next: a.next,
            });
        }
        now += step.dt;
        let (cmd, _) = run_model(&mut m, a.next, a.store.last_index(), now, &step.op);
        let oa = a.apply(cmd.clone());
        if let Some(b) = b.as_mut() {
            assert_eq!(b.apply(cmd), oa);
            assert_eq!(b.store, a.store);
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn restored_snapshot_replays_identically(steps in steps(), split in 0usize..40) {
        let split = split % steps.len();
        run_split(&steps, split);
    }
}
