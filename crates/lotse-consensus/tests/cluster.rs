//! Three real servers on loopback sockets, talking Raft over the gRPC server port: they elect
//! a leader, replicate writes, survive the leader's death, take a restarted member back, and
//! bring a late learner up to date with a snapshot sent over `InstallSnapshot`.

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

mod support;

use std::time::{Duration, Instant};

use lotse_consensus::Consensus;
use support::{agreed_leader, cluster, listener, rebind, set, Node, Spec};

const WRITES: usize = 200;

/// Writes `keys` through `leader`, `concurrency` at a time; returns the last log index.
async fn write_all(leader: &Consensus, keys: &[String], concurrency: usize) -> u64 {
    let mut last = 0;
    for chunk in keys.chunks(concurrency) {
        let mut tasks = Vec::new();
        for key in chunk {
            let raft = leader.raft.clone();
            let cmd = set(key, &format!("v-{key}"));
            tasks.push(tokio::spawn(async move { raft.client_write(cmd).await }));
        }
        for t in tasks {
            let resp = t.await.expect("task").expect("write acknowledged");
            last = last.max(resp.log_id.index);
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_replicate_fail_over_and_catch_up() {
    let root = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut nodes = cluster(root.path(), 3, 16384).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    let leader = agreed_leader(&refs, Duration::from_secs(5))
        .await
        .expect("a leader is elected");
    eprintln!("first leader elected after {:?}", started.elapsed());

    // Writes through the leader are applied everywhere.
    let keys: Vec<String> = (0..WRITES).map(|i| format!("k/{i}")).collect();
    let t = Instant::now();
    let last = write_all(&nodes[leader].consensus, &keys, 20).await;
    eprintln!("{WRITES} writes acknowledged in {:?}", t.elapsed());
    for n in &nodes {
        n.wait_applied(last, Duration::from_secs(5)).await;
        assert_eq!(n.kv("k/7").as_deref(), Some(&b"v-k/7"[..]), "node {}", n.id);
        assert_eq!(
            n.kv("k/199").as_deref(),
            Some(&b"v-k/199"[..]),
            "node {}",
            n.id
        );
    }
    // Followers know how long ago the leader reached them; the leader says zero.
    for n in &nodes {
        let contact = n
            .consensus
            .last_leader_contact()
            .expect("leader contact known");
        assert!(
            contact < Duration::from_secs(1),
            "node {}: {contact:?}",
            n.id
        );
    }
    assert_eq!(
        nodes[leader].consensus.last_leader_contact(),
        Some(Duration::ZERO)
    );

    // The leader dies: the survivors elect a new one quickly and keep every acknowledged write.
    let old = nodes.remove(leader);
    let old_id = old.id;
    let died = Instant::now();
    let (_, old_addr, old_dir) = old.stop().await;
    let refs: Vec<&Node> = nodes.iter().collect();
    let new_leader = agreed_leader(&refs, Duration::from_secs(2))
        .await
        .expect("a new leader within 2 s");
    let failover = died.elapsed();
    eprintln!("failover took {failover:?}");
    assert!(failover < Duration::from_secs(2));
    assert_ne!(nodes[new_leader].id, old_id);
    for n in &nodes {
        for key in &keys {
            assert!(n.kv(key).is_some(), "node {} lost {key}", n.id);
        }
    }
    let more: Vec<String> = (0..50).map(|i| format!("after/{i}")).collect();
    let last = write_all(&nodes[new_leader].consensus, &more, 10).await;
    for n in &nodes {
        n.wait_applied(last, Duration::from_secs(5)).await;
        assert!(n.kv("after/49").is_some(), "node {}", n.id);
    }

    // The old leader comes back with its data and catches up as a follower.
    let back = Node::start(Spec {
        id: old_id,
        listener: rebind(&old_addr).await,
        dir: old_dir,
        bootstrap: true,
        initial_members: None,
        snapshot_threshold: 16384,
    })
    .await;
    back.wait_applied(last, Duration::from_secs(10)).await;
    assert!(back.kv("after/49").is_some());
    assert!(back.kv("k/0").is_some());
    assert_eq!(
        back.consensus.raft.metrics().borrow().current_leader,
        Some(nodes[new_leader].id)
    );
    nodes.push(back);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_added_after_compaction_receives_a_snapshot() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path(), 1, 16).await;
    let leader = &nodes[0];
    assert!(leader.consensus.wait_leader(Duration::from_secs(5)).await);

    // openraft keeps 1,000 entries behind the newest snapshot; write past that so the log's
    // head is purged and a new member can only be brought up by a snapshot.
    let keys: Vec<String> = (0..1300).map(|i| format!("s/{i}")).collect();
    let last = write_all(&leader.consensus, &keys, 100).await;
    let purged = leader
        .consensus
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.purged.is_some(), "log purged")
        .await
        .expect("log compacted")
        .purged;
    eprintln!("leader purged up to {purged:?}, last index {last}");

    let learner = Node::start(Spec {
        id: 2,
        listener: listener().await,
        dir: root.path().join("n2"),
        bootstrap: false,
        initial_members: None,
        snapshot_threshold: 16,
    })
    .await;
    let t = Instant::now();
    nodes[0]
        .consensus
        .add_learner(2, learner.addr.clone())
        .await
        .expect("learner added");
    learner.wait_applied(last, Duration::from_secs(10)).await;
    eprintln!("learner caught up in {:?}", t.elapsed());

    let metrics = learner.consensus.raft.metrics().borrow().clone();
    let snapshot = metrics.snapshot.expect("learner holds a snapshot");
    assert!(
        snapshot.index >= purged.map_or(0, |p| p.index),
        "the learner's state came from a snapshot ({snapshot:?}), not from the purged log"
    );
    assert_eq!(learner.kv("s/0").as_deref(), Some(&b"v-s/0"[..]));
    assert_eq!(learner.kv("s/1299").as_deref(), Some(&b"v-s/1299"[..]));

    // It keeps following after the snapshot.
    let more = vec!["late".to_string()];
    let last = write_all(&nodes[0].consensus, &more, 1).await;
    learner.wait_applied(last, Duration::from_secs(5)).await;
    assert!(learner.kv("late").is_some());

    nodes.push(learner);
    for n in nodes {
        n.stop().await;
    }
}
