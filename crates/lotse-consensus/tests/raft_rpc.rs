//! `GrpcNetwork` sorts every outcome the way openraft's replication needs: an answer from the
//! peer's Raft (even a refusal) comes back as a value, the peer's Raft errors as
//! `RemoteError`, a dead address as `Unreachable` (openraft backs off), a missed deadline as
//! `Timeout`.

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

mod support;

use std::time::Duration;

use lotse_consensus::network::GrpcNetwork;
use lotse_consensus::openraft::error::{Fatal, RPCError, RaftError};
use lotse_consensus::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use lotse_consensus::openraft::raft::VoteRequest;
use lotse_consensus::openraft::{BasicNode, Vote};
use lotse_consensus::Peers;
use support::{listener, Node, Spec};

#[tokio::test]
async fn raft_rpcs_map_answers_and_failures_for_openraft() {
    let root = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Spec {
        id: 1,
        listener: listener().await,
        dir: root.path().join("n1"),
        bootstrap: true,
        initial_members: None,
        snapshot_threshold: 16384,
    })
    .await;
    assert!(node.consensus.wait_leader(Duration::from_secs(5)).await);

    let mut network = GrpcNetwork::new(9, Peers::new());
    let mut client = network.new_client(1, &BasicNode::new(&node.addr)).await;
    let opt = || RPCOption::new(Duration::from_secs(2));

    // A stale candidate is refused by the peer's Raft: an answer, not an error.
    let stale = VoteRequest::new(Vote::new(0, 9), None);
    let resp = client.vote(stale.clone(), opt()).await.expect("an answer");
    assert!(!resp.vote_granted);
    assert!(
        resp.vote > Vote::new(0, 9),
        "the sender learns the higher vote"
    );

    // The same address asked as another node (a server rebuilt there under a new ID): it
    // refuses instead of voting as the node the sender meant.
    let mut impostor = network.new_client(7, &BasicNode::new(&node.addr)).await;
    match impostor.vote(stale.clone(), opt()).await {
        Err(RPCError::Network(e)) => {
            assert!(e.to_string().contains("not 7"), "{e}");
        }
        other => panic!("expected a refusal for the wrong target, got {other:?}"),
    }

    // A server that accepts connections but never answers (hung): the call's deadline ends it.
    let hung = listener().await;
    let hung_addr = hung.local_addr().expect("addr").to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let mut silent = network.new_client(3, &BasicNode::new(&hung_addr)).await;
    let started = std::time::Instant::now();
    match silent
        .vote(stale.clone(), RPCOption::new(Duration::from_millis(200)))
        .await
    {
        Err(RPCError::Timeout(t)) => {
            assert_eq!(t.target, 3);
            assert_eq!(t.timeout, Duration::from_millis(200));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    holder.abort();

    // The peer's Raft stopped but its server still answers: a remote (fatal) Raft error.
    node.consensus.raft.shutdown().await.expect("shutdown");
    match client.vote(stale.clone(), opt()).await {
        Err(RPCError::RemoteError(remote)) => {
            assert_eq!(remote.target, 1);
            assert!(
                matches!(remote.source, RaftError::Fatal(Fatal::Stopped)),
                "{remote:?}"
            );
        }
        other => panic!("expected a remote error, got {other:?}"),
    }

    // Nobody listens: unreachable, so openraft backs off instead of retrying at once.
    let addr = node.addr.clone();
    node.stop().await;
    let mut gone = network.new_client(1, &BasicNode::new(&addr)).await;
    match gone.vote(stale.clone(), opt()).await {
        Err(RPCError::Unreachable(_)) => {}
        other => panic!("expected unreachable, got {other:?}"),
    }
    let mut bad = network
        .new_client(2, &BasicNode::new("not an address/"))
        .await;
    match bad.vote(stale, opt()).await {
        Err(RPCError::Unreachable(_)) => {}
        other => panic!("expected unreachable, got {other:?}"),
    }
}
