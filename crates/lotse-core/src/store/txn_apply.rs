//! Applying a transaction: every operation in order against the live tables while a journal
//! records how to undo each change; the first error rolls all of them back.
//!
//! Every table a transaction can change keeps a journal while it runs: the KV table its own,
//! the catalog tables, the sessions and the lock-delays a [`JournaledMap`] each (catalog
//! operations, see [`super::txn_catalog`], can invalidate sessions and so release keys and
//! start lock-delays). A rollback costs what the transaction changed, whatever the size of
//! the catalog.
//!
//! [`JournaledMap`]: super::journal::JournaledMap

use super::{Changes, Store};
use crate::kv::KvWrite;
use crate::txn::{KvOp, KvVerb, TxnError, TxnOp, TxnOutcome, TxnResult};

impl Store {
    pub(super) fn apply_txn(
        &mut self,
        index: u64,
        ops: &[TxnOp],
        now_ms: u64,
        changes: &mut Changes,
    ) -> TxnOutcome {
        let mut local = Changes::default();
        let mut results = Vec::new();
        let mut errors = Vec::new();
        self.begin_journals();
        // As Consul: every operation runs (against what the earlier ones left) and every
        // failure is reported; any failure rolls the whole transaction back.
        for (i, op) in ops.iter().enumerate() {
            let outcome = match op {
                TxnOp::Kv(op) => self.txn_kv(index, op, now_ms, &mut local),
                TxnOp::Node(op) => self.txn_node(index, op, now_ms, &mut local),
                TxnOp::Service(op) => self.txn_service(index, op, now_ms, &mut local),
                TxnOp::Check(op) => self.txn_check(index, op, now_ms, &mut local),
            };
            match outcome {
                Ok(r) => results.extend(r),
                Err(what) => errors.push(TxnError { op_index: i, what }),
            }
        }
        if !errors.is_empty() {
            self.rollback_journals();
            return Err(errors);
        }
        self.commit_journals();
        changes.merge(local);
        Ok(results)
    }

    /// Starts recording every change, so that a failed transaction can be undone.
    fn begin_journals(&mut self) {
        self.kv.begin();
        self.catalog.begin();
        self.sessions.begin();
        self.lock_delays.begin();
    }

    /// Keeps the transaction's changes.
    fn commit_journals(&mut self) {
        self.kv.commit();
        self.catalog.commit();
        self.sessions.commit();
        self.lock_delays.commit();
    }

    /// Undoes every change the transaction made, derived lookups included.
    fn rollback_journals(&mut self) {
        self.kv.rollback();
        self.catalog.rollback();
        self.sessions.rollback();
        self.lock_delays.rollback();
    }

    /// Runs a transaction of reads only, without changing anything (Consul serves these
    /// without going through the log).
    pub fn read_txn(&self, ops: &[TxnOp]) -> TxnOutcome {
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let outcome = match op {
                TxnOp::Kv(op) => self.txn_kv_read(op),
                TxnOp::Node(op) => self.txn_node_read(op),
                TxnOp::Service(op) => self.txn_service_read(op),
                TxnOp::Check(op) => self.txn_check_read(op),
            };
            match outcome {
                Ok(r) => results.extend(r),
                Err(what) => errors.push(TxnError { op_index: i, what }),
            }
        }
        if errors.is_empty() {
            Ok(results)
        } else {
            Err(errors)
        }
    }

    fn txn_kv(
        &mut self,
        index: u64,
        op: &KvOp,
        now_ms: u64,
        changes: &mut Changes,
    ) -> Result<Vec<TxnResult>, String> {
        let write = || KvWrite {
            key: op.key.clone(),
            value: op.value.clone(),
            flags: op.flags,
        };
        let key = &op.key;
        let entry = match op.verb {
            KvVerb::Set => self.kv_set(index, &write(), None, changes),
            KvVerb::Cas => {
                if !self.kv_cas_allowed(key, op.index) {
                    return Err(format!("failed to set key {key:?}, index is stale"));
                }
                self.kv_set(index, &write(), None, changes)
            }
            KvVerb::Lock => match self.kv_lock(index, &write(), &op.session, now_ms, changes) {
                Ok(true) => self.kv.get(key).cloned(),
                Ok(false) => {
                    return Err(format!("failed to lock key {key:?}, lock is already held"))
                }
                Err(e) => return Err(e.to_string()),
            },
            KvVerb::Unlock => match self.kv_unlock(index, &write(), &op.session, changes) {
                Ok(true) => self.kv.get(key).cloned(),
                Ok(false) => {
                    return Err(format!(
                    "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                ))
                }
                Err(e) => return Err(e.to_string()),
            },
            KvVerb::Delete => {
                self.kv_delete(index, key, changes);
                None
            }
            KvVerb::DeleteCas => {
                if !self.kv_delete_cas(index, key, op.index, changes) {
                    return Err(format!("failed to delete key {key:?}, index is stale"));
                }
                None
            }
            KvVerb::DeleteTree => {
                self.kv_delete_tree(index, key, changes);
                None
            }
            KvVerb::Get
            | KvVerb::GetTree
            | KvVerb::CheckIndex
            | KvVerb::CheckSession
            | KvVerb::CheckNotExists => return self.txn_kv_read(op),
        };
        Ok(without_value(entry))
    }

    fn txn_kv_read(&self, op: &KvOp) -> Result<Vec<TxnResult>, String> {
        let key = &op.key;
        let entry = match op.verb {
            KvVerb::Get => match self.kv.get(key) {
                Some(e) => return Ok(vec![TxnResult::Kv(e.clone())]),
                None => return Err(format!("key {key:?} doesn't exist")),
            },
            KvVerb::GetTree => {
                return Ok(self
                    .kv
                    .range(key)
                    .map(|e| TxnResult::Kv(e.clone()))
                    .collect())
            }
            KvVerb::CheckIndex => match self.kv.get(key) {
                None => return Err(format!("failed to check index, key {key:?} doesn't exist")),
                Some(e) if e.modify_index != op.index => {
                    return Err(format!(
                        "failed index check for key {key:?}, current modify index {} != {}",
                        e.modify_index, op.index
                    ))
                }
                Some(e) => Some(e.clone()),
            },
            KvVerb::CheckSession => match self.kv.get(key) {
                None => {
                    return Err(format!(
                        "failed to check session, key {key:?} doesn't exist"
                    ))
                }
                Some(e) if e.session.as_deref().unwrap_or("") != op.session => {
                    return Err(format!(
                        "failed session check for key {key:?}, current session {:?} != {:?}",
                        e.session.as_deref().unwrap_or(""),
                        op.session
                    ))
                }
                Some(e) => Some(e.clone()),
            },
            KvVerb::CheckNotExists => {
                if self.kv.get(key).is_some() {
                    return Err(format!("key {key:?} exists"));
                }
                None
            }
            _ => return Err(format!("unknown KV verb for a read: {:?}", op.verb)),
        };
        Ok(without_value(entry))
    }
}

/// Consul returns the entry without its value for everything but `get`.
fn without_value(entry: Option<crate::kv::KvEntry>) -> Vec<TxnResult> {
    entry
        .map(|mut e| {
            e.value.clear();
            vec![TxnResult::Kv(e)]
        })
        .unwrap_or_default()
}
