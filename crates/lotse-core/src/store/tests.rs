//! Tests of the state store: unit tests per area (checked against Consul's state store semantics
//! in `agent/consul/state/{kvs,txn,session}.go`) and model-based property tests.
//!
//! Every submodule uses the small harness below: [`H`] applies commands at increasing indexes,
//! and the builders make commands and fixtures short to write.

use super::*;
use crate::kv::KvWrite;
use crate::node::{Node, NodeCheck, SERF_HEALTH};
use crate::session::{ServiceCheckRef, Session, SessionBehavior};
use crate::txn::{KvOp, KvVerb, TxnError, TxnOp, TxnResult};

mod catalog_model;
mod catalog_prop;
mod catalog_reads;
mod catalog_store;
mod kv;
mod prop;
mod restore;
mod sessions;
mod snapshot;
mod txn;
mod txn_catalog;
mod watch;

/// The node every fixture session lives on.
const NODE: &str = "node1";

/// A store plus the next log index to apply at.
struct H {
    store: Store,
    next: u64,
}

impl H {
    /// An empty store; the first command is applied at index 1.
    fn new() -> H {
        H {
            store: Store::new(),
            next: 1,
        }
    }

    /// A store with [`NODE`] registered (with a passing `serfHealth` check) at index 1.
    fn with_node() -> H {
        let mut h = H::new();
        h.apply(Command::NodeRegister {
            node: node(NODE),
            checks: vec![check(SERF_HEALTH, "passing")],
        });
        h
    }

    /// [`H::with_node`] plus sessions `s1` and `s2` (release, no lock-delay).
    fn with_sessions() -> H {
        let mut h = H::with_node();
        h.ok(Command::SessionCreate {
            session: session("s1"),
            now_ms: 0,
        });
        h.ok(Command::SessionCreate {
            session: session("s2"),
            now_ms: 0,
        });
        h
    }

    /// Applies `cmd` at the next index.
    fn apply(&mut self, cmd: Command) -> (Outcome, Changes) {
        let index = self.next;
        self.next += 1;
        self.store.apply(index, &cmd)
    }

    /// Applies `cmd` and returns only its outcome.
    fn out(&mut self, cmd: Command) -> Outcome {
        self.apply(cmd).0
    }

    /// Applies `cmd`, which must answer `true` (or `Done`).
    fn ok(&mut self, cmd: Command) -> Changes {
        let desc = format!("{cmd:?}");
        let (out, changes) = self.apply(cmd);
        assert!(
            matches!(
                out,
                Outcome::Bool(true) | Outcome::Done | Outcome::Txn(Ok(_))
            ),
            "{desc} answered {out:?}"
        );
        changes
    }

    /// The index of the last applied command.
    fn idx(&self) -> u64 {
        self.next - 1
    }

    /// The entry at `key`, which must exist.
    fn get(&self, key: &str) -> KvEntry {
        self.store
            .kv_get(key)
            .1
            .cloned()
            .unwrap_or_else(|| panic!("key {key:?} is missing"))
    }

    fn has(&self, key: &str) -> bool {
        self.store.kv_get(key).1.is_some()
    }

    fn wi(&self, key: &WatchKey) -> u64 {
        self.store.watch_index(key)
    }
}

fn write(key: &str, value: &str) -> KvWrite {
    KvWrite {
        key: key.to_string(),
        value: value.as_bytes().to_vec(),
        flags: 0,
    }
}

fn set(key: &str, value: &str) -> Command {
    Command::KvSet(write(key, value))
}

fn cas(key: &str, value: &str, index: u64) -> Command {
    Command::KvCas {
        write: write(key, value),
        index,
    }
}

fn lock(key: &str, value: &str, session: &str) -> Command {
    lock_at(key, value, session, 0)
}

fn lock_at(key: &str, value: &str, session: &str, now_ms: u64) -> Command {
    Command::KvLock {
        write: write(key, value),
        session: session.to_string(),
        now_ms,
    }
}

fn unlock(key: &str, value: &str, session: &str) -> Command {
    Command::KvUnlock {
        write: write(key, value),
        session: session.to_string(),
    }
}

fn delete(key: &str) -> Command {
    Command::KvDelete {
        key: key.to_string(),
    }
}

fn delete_cas(key: &str, index: u64) -> Command {
    Command::KvDeleteCas {
        key: key.to_string(),
        index,
    }
}

fn delete_tree(prefix: &str) -> Command {
    Command::KvDeleteTree {
        prefix: prefix.to_string(),
    }
}

fn destroy(id: &str, now_ms: u64) -> Command {
    Command::SessionDestroy {
        id: id.to_string(),
        now_ms,
    }
}

fn create(session: Session) -> Command {
    Command::SessionCreate { session, now_ms: 0 }
}

fn txn(ops: Vec<TxnOp>) -> Command {
    Command::Txn { ops, now_ms: 0 }
}

fn node(name: &str) -> Node {
    Node {
        id: format!("id-{name}"),
        name: name.to_string(),
        address: "127.0.0.1".to_string(),
        datacenter: "dc1".to_string(),
        meta: Default::default(),
        create_index: 0,
        modify_index: 0,
    }
}

fn check(id: &str, status: &str) -> NodeCheck {
    NodeCheck {
        node: NODE.to_string(),
        check_id: id.to_string(),
        name: id.to_string(),
        status: status.to_string(),
        output: String::new(),
        create_index: 0,
        modify_index: 0,
    }
}

/// A session on [`NODE`] with no checks, behaviour release and no lock-delay.
fn session(id: &str) -> Session {
    Session {
        id: id.to_string(),
        name: String::new(),
        node: NODE.to_string(),
        lock_delay_ns: 0,
        behavior: SessionBehavior::Release,
        ttl: String::new(),
        node_checks: vec![],
        service_checks: vec![],
        create_index: 0,
        modify_index: 0,
    }
}

/// A transaction KV operation; refine it with struct update syntax.
fn op(verb: KvVerb, key: &str) -> KvOp {
    KvOp {
        verb,
        key: key.to_string(),
        value: Vec::new(),
        flags: 0,
        index: 0,
        session: String::new(),
    }
}

fn kv(verb: KvVerb, key: &str) -> TxnOp {
    TxnOp::Kv(op(verb, key))
}

fn kv_val(verb: KvVerb, key: &str, value: &str) -> TxnOp {
    TxnOp::Kv(KvOp {
        value: value.as_bytes().to_vec(),
        ..op(verb, key)
    })
}

fn kv_idx(verb: KvVerb, key: &str, index: u64) -> TxnOp {
    TxnOp::Kv(KvOp {
        index,
        ..op(verb, key)
    })
}

/// The KV entry of a transaction result that must be one.
fn kv_result(r: &TxnResult) -> &KvEntry {
    match r {
        TxnResult::Kv(e) => e,
        other => panic!("expected a KV result, got {other:?}"),
    }
}

fn kv_sess(verb: KvVerb, key: &str, session: &str) -> TxnOp {
    TxnOp::Kv(KvOp {
        session: session.to_string(),
        ..op(verb, key)
    })
}

/// The sorted, deduplicated keys a change reports.
fn keys_of(c: &Changes) -> Vec<String> {
    let mut k = c.keys.clone();
    k.sort();
    k.dedup();
    k
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The store as it should be after a command that changed nothing but `last_index`.
fn unchanged(before: &Store, after: &Store) -> Store {
    let mut expected = before.clone();
    expected.last_index = after.last_index;
    expected
}
