//! The invariants checked after a run has healed and settled: one leader per term, the same
//! command at every index on every server, and the same state everywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use lotse_consensus::openraft::storage::RaftLogStorage;
use lotse_consensus::openraft::RaftLogReader;
use lotse_consensus::{codec, NodeId};
use tokio::time::Instant;

use super::cluster::Cluster;
use super::node::Running;
use super::workload::{lock_key, register_key, LOCKS, REGISTERS};

/// Terms in which more than one node led, with when each was first seen leading.
///
/// Not a violation: openraft 0.9 (without its `single-term-leader` feature) orders leaders by
/// (term, node id), so a candidate with a higher id may still win a term a lower one already
/// won, and the lower one's entries can then no longer commit. Seen at bootstrap, when every
/// server calls `initialize` and campaigns at once. What it would break (entries, state,
/// reads) is checked directly by the other checks.
pub fn shared_terms(c: &Cluster) -> Vec<String> {
    let l = c.leaders.lock().unwrap_or_else(|e| e.into_inner());
    l.iter()
        .filter(|(_, nodes)| nodes.len() > 1)
        .map(|(term, nodes)| {
            format!("term {term} had leaders {nodes:?} (node: first seen leading at ms)")
        })
        .collect()
}

/// Waits until every node has applied the same last index, with a leader: the cluster
/// recovers once healed. `Err` says what never converged.
pub async fn settle(c: &Cluster, budget: Duration) -> Result<(), String> {
    let deadline = Instant::now() + budget;
    let mut last = String::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(lead) = c.current_leader() else {
            last = "no leader".into();
            continue;
        };
        let handles: Vec<(NodeId, Running)> = c
            .ids()
            .into_iter()
            .filter_map(|id| c.handle(id).map(|r| (id, r)))
            .collect();
        let Some(leader) = c.handle(lead) else {
            continue;
        };
        let target = leader.raft.metrics().borrow().last_log_index;
        let applied: BTreeMap<NodeId, Option<u64>> = handles
            .iter()
            .map(|(id, r)| (*id, r.state.read().last_applied.map(|l| l.index)))
            .collect();
        if target.is_some() && applied.values().all(|a| *a == target) {
            return Ok(());
        }
        last = format!("leader {lead} at {target:?}, applied {applied:?}");
    }
    Err(format!("no convergence after healing: {last}"))
}

/// Every pair of nodes holds the same entry at every index both still have, and the same
/// state: the workload's keys and the applied position.
pub async fn same_logs_and_state(c: &Cluster) -> Vec<String> {
    let mut problems = Vec::new();
    let handles: Vec<(NodeId, Running)> = c
        .ids()
        .into_iter()
        .filter_map(|id| c.handle(id).map(|r| (id, r)))
        .collect();
    let mut logs: Vec<(NodeId, BTreeMap<u64, Vec<u8>>)> = Vec::new();
    for (id, r) in &handles {
        let mut store = r.log.clone();
        let state = match store.get_log_state().await {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("node {id}: log state: {e}"));
                continue;
            }
        };
        let first = state.last_purged_log_id.map_or(0, |l| l.index + 1);
        let last = state.last_log_id.map_or(0, |l| l.index);
        if first > last {
            // Everything is in the snapshot: no entries to compare.
            continue;
        }
        let mut reader = r.log.clone();
        match reader.try_get_log_entries(first..=last).await {
            Ok(entries) => logs.push((
                *id,
                entries
                    .iter()
                    .map(|e| (e.log_id.index, codec::encode(e)))
                    .collect(),
            )),
            Err(e) => problems.push(format!("node {id}: read log {first}..={last}: {e}")),
        }
    }
    for (i, (a, la)) in logs.iter().enumerate() {
        for (b, lb) in &logs[i + 1..] {
            for (index, ea) in la {
                if let Some(eb) = lb.get(index) {
                    if ea != eb {
                        problems.push(format!(
                            "index {index}: node {a} and node {b} hold different entries"
                        ));
                    }
                }
            }
        }
    }
    let keys: Vec<String> = (0..REGISTERS)
        .map(register_key)
        .chain((0..LOCKS).map(lock_key))
        .collect();
    let states: Vec<(NodeId, String)> = handles
        .iter()
        .map(|(id, r)| {
            let a = r.state.read();
            let kv: Vec<_> = keys.iter().map(|k| a.store.kv_get(k).1.cloned()).collect();
            (
                *id,
                format!("{:?} {:?}", a.last_applied.map(|l| l.index), kv),
            )
        })
        .collect();
    for w in states.windows(2) {
        if w[0].1 != w[1].1 {
            problems.push(format!(
                "node {} and node {} differ: {} vs {}",
                w[0].0, w[1].0, w[0].1, w[1].1
            ));
        }
    }
    problems
}
