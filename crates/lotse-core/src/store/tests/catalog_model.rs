//! The plain model [`catalog_prop`](super::catalog_prop) checks the store against: nodes,
//! instances, checks, sessions bound to checks and the locks they hold, in ordinary maps, with
//! Consul's rules written out the simplest way (a transaction copies the model and puts the
//! copy back when an operation fails).

use std::collections::BTreeMap;

use crate::catalog::CheckStatus;
use crate::session::SessionBehavior;

pub(super) const NODES: [&str; 3] = ["n0", "n1", "n2"];
/// Node IDs: two that differ only in case (so they clash), one more, and none.
pub(super) const NODE_IDS: [&str; 4] = ["id-a", "ID-A", "id-b", ""];
pub(super) const SERVICE_IDS: [&str; 3] = ["s0", "s1", "s2"];
pub(super) const NAMES: [&str; 2] = ["web", "db"];
pub(super) const CHECK_IDS: [&str; 4] = ["c0", "c1", "c2", crate::node::SERF_HEALTH];
pub(super) const STATUSES: [CheckStatus; 3] = [
    CheckStatus::Passing,
    CheckStatus::Warning,
    CheckStatus::Critical,
];
/// The index of `serfHealth` in [`CHECK_IDS`].
pub(super) const SERF: usize = 3;
pub(super) const SESSIONS: [&str; 3] = ["x0", "x1", "x2"];
pub(super) const KEYS: [&str; 2] = ["k0", "k1"];

/// `SESSIONS[i]`'s behaviour and lock-delay: release, delete, release with 2.5 s.
pub(super) fn session_kind(i: usize) -> (SessionBehavior, u64) {
    match i {
        0 => (SessionBehavior::Release, 0),
        1 => (SessionBehavior::Delete, 0),
        _ => (SessionBehavior::Release, 2_500_000_000),
    }
}

/// A check to register: (check, service or None for node-level, status), as indexes.
pub(super) type CheckSpec = (usize, Option<usize>, usize);
/// An instance to register: (service ID, name, tag), as indexes.
pub(super) type ServiceSpec = (usize, usize, u8);

/// One catalog (or lock) operation of a transaction.
#[derive(Debug, Clone)]
pub(super) enum TxOp {
    NodeSet { node: usize, id: usize, address: u8 },
    NodeDelete(usize),
    ServiceSet { node: usize, service: ServiceSpec },
    ServiceDelete(usize, usize),
    CheckSet { node: usize, check: CheckSpec },
    CheckDelete(usize, usize),
    Lock { key: usize, session: usize },
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Register {
        node: usize,
        id: usize,
        address: u8,
        /// Consul's `SkipNodeUpdate`: an existing node's record is left as it is.
        skip: bool,
        service: Option<ServiceSpec>,
        checks: Vec<CheckSpec>,
    },
    /// The first log format's node registration, with `serfHealth` at a status. It carries
    /// no time: the lock-delays it starts count from 0.
    Legacy {
        node: usize,
        id: usize,
        status: usize,
    },
    DeregisterNode(usize),
    DeregisterService(usize, usize),
    DeregisterCheck(usize, usize),
    /// Checks: (check, named as a service check?).
    SessionCreate {
        session: usize,
        node: usize,
        checks: Vec<(usize, bool)>,
    },
    SessionDestroy(usize),
    Lock {
        key: usize,
        session: usize,
    },
    /// `fail` appends an operation that fails, so the whole transaction must roll back.
    Txn {
        ops: Vec<TxOp>,
        fail: bool,
    },
}

#[derive(Debug, Default, Clone)]
pub(super) struct Model {
    /// node → (ID, address)
    pub(super) nodes: BTreeMap<String, (String, String)>,
    /// (node, service id) → (name, tag)
    pub(super) services: BTreeMap<(String, String), (String, String)>,
    /// (node, check id) → (service id, status)
    pub(super) checks: BTreeMap<(String, String), (String, CheckStatus)>,
    /// session → (node, the checks it is bound to)
    pub(super) sessions: BTreeMap<String, (String, Vec<String>)>,
    /// key → the session holding it
    pub(super) keys: BTreeMap<String, Option<String>>,
    /// key → end of its lock-delay
    pub(super) delays: BTreeMap<String, u64>,
}

/// A refusal: `Err(true)` the command was rejected (or the transaction failed), `Err(false)`
/// it answered `false` (a lock not taken). Either way nothing changed.
type Step = Result<(), bool>;

impl Model {
    pub(super) fn apply(&mut self, op: &Op, now: u64) -> Step {
        match op {
            Op::Register {
                node,
                id,
                address,
                skip,
                service,
                checks,
            } => {
                let keep = *skip && self.nodes.contains_key(NODES[*node]);
                let record = (!keep).then_some((*id, *address));
                self.register(*node, record, *service, checks, now)
            }
            Op::Legacy { node, id, status } => {
                let record = Some((*id, 0));
                self.register(*node, record, None, &[(SERF, None, *status)], 0)
            }
            Op::DeregisterNode(n) => {
                self.remove_node(NODES[*n], now);
                Ok(())
            }
            Op::DeregisterService(n, s) => {
                self.remove_service(NODES[*n], SERVICE_IDS[*s], now);
                Ok(())
            }
            Op::DeregisterCheck(n, c) => {
                self.remove_check(NODES[*n], CHECK_IDS[*c], now);
                Ok(())
            }
            Op::SessionCreate {
                session,
                node,
                checks,
            } => self.create_session(SESSIONS[*session], NODES[*node], checks),
            Op::SessionDestroy(s) => {
                self.destroy(SESSIONS[*s], now);
                Ok(())
            }
            Op::Lock { key, session } => self.lock(KEYS[*key], SESSIONS[*session], now),
            Op::Txn { ops, fail } => {
                let saved = self.clone();
                let mut failed = *fail;
                for op in ops {
                    failed |= self.txn_op(op, now).is_err();
                }
                if failed {
                    *self = saved;
                    return Err(true);
                }
                Ok(())
            }
        }
    }

    fn txn_op(&mut self, op: &TxOp, now: u64) -> Step {
        match op {
            TxOp::NodeSet { node, id, address } => {
                self.register(*node, Some((*id, *address)), None, &[], now)
            }
            TxOp::NodeDelete(n) => {
                self.remove_node(NODES[*n], now);
                Ok(())
            }
            TxOp::ServiceSet { node, service } => {
                self.register(*node, None, Some(*service), &[], now)
            }
            TxOp::ServiceDelete(n, s) => {
                self.remove_service(NODES[*n], SERVICE_IDS[*s], now);
                Ok(())
            }
            TxOp::CheckSet { node, check } => self.register(*node, None, None, &[*check], now),
            TxOp::CheckDelete(n, c) => {
                self.remove_check(NODES[*n], CHECK_IDS[*c], now);
                Ok(())
            }
            TxOp::Lock { key, session } => self.lock(KEYS[*key], SESSIONS[*session], now),
        }
    }

    /// A registration; `node_record` None keeps the stored node, which must exist.
    fn register(
        &mut self,
        node: usize,
        node_record: Option<(usize, u8)>,
        service: Option<ServiceSpec>,
        checks: &[CheckSpec],
        now: u64,
    ) -> Step {
        let n = NODES[node].to_string();
        if let Some((id, _)) = node_record {
            let id = NODE_IDS[id];
            let clash = self.nodes.iter().any(|(other, (oid, _))| {
                *other != n && !id.is_empty() && oid.eq_ignore_ascii_case(id)
            });
            if clash {
                return Err(true);
            }
        } else if !self.nodes.contains_key(&n) {
            return Err(true);
        }
        let new_service = service.map(|(s, name, tag)| {
            let id = SERVICE_IDS[s].to_string();
            (id, NAMES[name].to_string(), format!("t{tag}"))
        });
        for (_, sid, _) in checks {
            if let Some(sid) = sid {
                let sid = SERVICE_IDS[*sid];
                let in_request = new_service.as_ref().is_some_and(|(id, _, _)| id == sid);
                if !in_request && !self.services.contains_key(&(n.clone(), sid.to_string())) {
                    return Err(true);
                }
            }
        }
        if let Some((id, address)) = node_record {
            let record = (NODE_IDS[id].to_string(), format!("10.0.0.{address}"));
            self.nodes.insert(n.clone(), record);
        }
        if let Some((id, name, tag)) = new_service {
            self.services.insert((n.clone(), id), (name, tag));
        }
        for (c, sid, status) in checks {
            let sid = sid.map_or(String::new(), |s| SERVICE_IDS[s].to_string());
            let id = CHECK_IDS[*c].to_string();
            self.checks
                .insert((n.clone(), id.clone()), (sid, STATUSES[*status]));
            // As Consul: every critical write invalidates the sessions bound to the check.
            if STATUSES[*status] == CheckStatus::Critical {
                self.invalidate_check(&n, &id, now);
            }
        }
        Ok(())
    }

    fn remove_node(&mut self, n: &str, now: u64) {
        if self.nodes.remove(n).is_none() {
            return;
        }
        self.services.retain(|(sn, _), _| sn != n);
        self.checks.retain(|(cn, _), _| cn != n);
        let on_node: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, (sn, _))| sn == n)
            .map(|(id, _)| id.clone())
            .collect();
        for id in on_node {
            self.destroy(&id, now);
        }
    }

    fn remove_service(&mut self, n: &str, sid: &str, now: u64) {
        if self
            .services
            .remove(&(n.to_string(), sid.to_string()))
            .is_none()
        {
            return;
        }
        let gone: Vec<String> = self
            .checks
            .iter()
            .filter(|((cn, _), (csid, _))| cn == n && csid == sid)
            .map(|((_, c), _)| c.clone())
            .collect();
        for c in gone {
            self.remove_check(n, &c, now);
        }
    }

    fn remove_check(&mut self, n: &str, c: &str, now: u64) {
        if self
            .checks
            .remove(&(n.to_string(), c.to_string()))
            .is_some()
        {
            self.invalidate_check(n, c, now);
        }
    }

    fn invalidate_check(&mut self, n: &str, c: &str, now: u64) {
        let bound: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, (sn, checks))| sn == n && checks.iter().any(|x| x == c))
            .map(|(id, _)| id.clone())
            .collect();
        for id in bound {
            self.destroy(&id, now);
        }
    }

    fn create_session(&mut self, id: &str, n: &str, checks: &[(usize, bool)]) -> Step {
        if self.sessions.contains_key(id) || !self.nodes.contains_key(n) {
            return Err(true);
        }
        let mut bound = Vec::new();
        for (c, _) in checks {
            let c = CHECK_IDS[*c];
            match self.checks.get(&(n.to_string(), c.to_string())) {
                Some((_, status)) if *status != CheckStatus::Critical => bound.push(c.to_string()),
                _ => return Err(true),
            }
        }
        self.sessions.insert(id.to_string(), (n.to_string(), bound));
        Ok(())
    }

    fn destroy(&mut self, id: &str, now: u64) {
        if self.sessions.remove(id).is_none() {
            return;
        }
        let i = SESSIONS.iter().position(|s| *s == id).expect("fixture");
        let (behavior, delay_ns) = session_kind(i);
        let held: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, s)| s.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
            .collect();
        for k in held {
            if delay_ns > 0 {
                self.delays.insert(k.clone(), now + delay_ns / 1_000_000);
            }
            match behavior {
                SessionBehavior::Release => {
                    self.keys.insert(k, None);
                }
                SessionBehavior::Delete => {
                    self.keys.remove(&k);
                }
            }
        }
    }

    fn lock(&mut self, key: &str, session: &str, now: u64) -> Step {
        if !self.sessions.contains_key(session) {
            return Err(true);
        }
        if self.delays.get(key).is_some_and(|until| now < *until) {
            return Err(false);
        }
        match self.keys.get(key) {
            Some(Some(holder)) if holder != session => Err(false),
            _ => {
                self.keys.insert(key.to_string(), Some(session.to_string()));
                Ok(())
            }
        }
    }
}
