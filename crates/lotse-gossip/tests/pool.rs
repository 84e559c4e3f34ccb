//! Several real `Gossip` instances on 127.0.0.1 in one runtime, with fast timing.

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use lotse_gossip::{
    Gossip, GossipConfig, GossipError, Keyring, MemberEvent, MemberStatus, Timing, UserEvent,
};
use tokio::sync::broadcast;

const K1: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const K2: &str = "H3/9gBxcKKRf45CaI2DlRg==";

fn timing() -> Timing {
    Timing::scaled(0.1)
}

async fn start_with(name: &str, keyring: Option<Keyring>, timing: Timing) -> Gossip {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Gossip::start(GossipConfig {
        node_name: name.into(),
        bind: any,
        advertise: any,
        tags: BTreeMap::from([("role".to_string(), "node".to_string())]),
        keyring,
        timing,
    })
    .await
    .expect("start")
}

async fn start(name: &str) -> Gossip {
    start_with(name, None, timing()).await
}

/// Polls `f` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

fn status(g: &Gossip, name: &str) -> Option<MemberStatus> {
    g.members()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

fn alive_count(g: &Gossip) -> usize {
    g.members()
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .count()
}

/// Starts `n` nodes, each joining through a different earlier node, and waits for convergence.
async fn cluster(n: usize) -> Vec<Gossip> {
    let mut nodes: Vec<Gossip> = Vec::new();
    for i in 0..n {
        let g = start(&format!("n{i}")).await;
        if i > 0 {
            let seed = nodes[(i - 1) / 2 % i].clone();
            let seed: &Gossip = &seed;
            assert_eq!(g.join(&[seed.local_addr()]).await.expect("join"), 1);
        }
        nodes.push(g);
    }
    for g in &nodes {
        assert!(
            eventually(Duration::from_secs(10), || alive_count(g) == n).await,
            "no convergence: {:?}",
            g.members()
        );
    }
    nodes
}

fn drain<T: Clone>(rx: &mut broadcast::Receiver<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_through_any_member_reaches_everyone_with_tags() {
    let nodes = cluster(5).await;
    // A member can be seen alive a moment before its tags arrive (they are gossiped apart).
    for g in &nodes {
        let tagged = || {
            g.members()
                .iter()
                .all(|m| m.tags.get("role").map(String::as_str) == Some("node"))
        };
        assert!(
            eventually(Duration::from_secs(10), tagged).await,
            "{:?}",
            g.members()
        );
        for m in g.members() {
            assert_eq!(m.addr.to_string(), "127.0.0.1");
        }
    }
    for g in &nodes {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_fails_when_nobody_answers() {
    let g = start("lonely").await;
    // A port we bound and closed: nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = g.join(&[dead]).await.unwrap_err();
    assert!(
        matches!(err, GossipError::JoinFailed { attempted: 1, .. }),
        "{err}"
    );
    assert_eq!(g.members().len(), 1);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_member_is_failed_then_alive_again() {
    let nodes = cluster(4).await;
    let mut events = nodes[0].subscribe();
    let victim = &nodes[3];
    victim.set_fault_drop_all(true);
    let t0 = Instant::now();
    for g in &nodes[..3] {
        assert!(
            eventually(Duration::from_secs(8), || status(g, "n3")
                == Some(MemberStatus::Failed))
            .await,
            "not failed: {:?}",
            g.members()
        );
    }
    let detect = t0.elapsed();
    // probe 100 ms + suspicion 400 ms + dissemination: well under 8 s.
    assert!(detect < Duration::from_secs(8), "{detect:?}");
    // Lifeguard: the isolated node's own probes fail, so its health score rises.
    assert!(
        eventually(Duration::from_secs(5), || victim.health_score() > 0).await,
        "health stayed 0"
    );
    victim.set_fault_drop_all(false);
    for g in &nodes[..3] {
        assert!(
            eventually(Duration::from_secs(15), || status(g, "n3")
                == Some(MemberStatus::Alive))
            .await,
            "did not come back: {:?}",
            g.members()
        );
    }
    let seen = drain(&mut events);
    assert!(seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Failed(m) if m.name == "n3")));
    assert!(seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Join(m) if m.name == "n3")));
    // Healthy again once probes succeed.
    assert!(eventually(Duration::from_secs(10), || victim.health_score() == 0).await);
    for g in &nodes {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_without_leave_is_failed_and_reaped() {
    let mut t = timing();
    t.reap_after = Duration::from_millis(1500);
    let a = start_with("a", None, t.clone()).await;
    let b = start_with("b", None, t.clone()).await;
    let c = start_with("c", None, t.clone()).await;
    b.join(&[a.local_addr()]).await.unwrap();
    c.join(&[b.local_addr()]).await.unwrap();
    for g in [&a, &b, &c] {
        assert!(eventually(Duration::from_secs(10), || alive_count(g) == 3).await);
    }
    let mut events = a.subscribe();
    c.shutdown().await;
    drop(c);
    for g in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(8), || status(g, "c")
                == Some(MemberStatus::Failed))
            .await,
            "{:?}",
            g.members()
        );
    }
    // Then reaped after `reap_after`.
    assert!(eventually(Duration::from_secs(6), || status(&a, "c").is_none()).await);
    let seen = drain(&mut events);
    assert!(seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Failed(m) if m.name == "c")));
    assert!(seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Reap(m) if m.name == "c")));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_rejoins_under_same_name() {
    let nodes = cluster(3).await;
    nodes[2].shutdown().await;
    assert!(
        eventually(Duration::from_secs(8), || status(&nodes[0], "n2")
            == Some(MemberStatus::Failed))
        .await
    );
    let again = start("n2").await;
    again.join(&[nodes[0].local_addr()]).await.unwrap();
    for g in &nodes[..2] {
        assert!(
            eventually(Duration::from_secs(8), || status(g, "n2")
                == Some(MemberStatus::Alive))
            .await,
            "{:?}",
            g.members()
        );
    }
    assert!(eventually(Duration::from_secs(8), || alive_count(&again) == 3).await);
    for g in nodes[..2].iter().chain([&again]) {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leave_is_left_not_failed() {
    let nodes = cluster(4).await;
    let mut events = nodes[0].subscribe();
    nodes[3].leave(Duration::from_secs(2)).await;
    assert_eq!(status(&nodes[3], "n3"), Some(MemberStatus::Left));
    nodes[3].shutdown().await;
    for g in &nodes[..3] {
        assert!(
            eventually(Duration::from_secs(5), || status(g, "n3")
                == Some(MemberStatus::Left))
            .await,
            "{:?}",
            g.members()
        );
    }
    // It stays Left (does not turn into Failed later).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status(&nodes[1], "n3"), Some(MemberStatus::Left));
    let seen = drain(&mut events);
    assert!(seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Leave(m) if m.name == "n3")));
    assert!(!seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Failed(m) if m.name == "n3")));
    for g in &nodes[..3] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_update_propagates() {
    let nodes = cluster(4).await;
    let mut events = nodes[3].subscribe();
    let tags = BTreeMap::from([
        ("role".to_string(), "consul".to_string()),
        ("dc".to_string(), "dc1".to_string()),
    ]);
    nodes[0].set_tags(tags.clone());
    for g in &nodes {
        assert!(
            eventually(Duration::from_secs(5), || {
                g.members().iter().any(|m| m.name == "n0" && m.tags == tags)
            })
            .await,
            "{:?}",
            g.members()
        );
    }
    let seen = drain(&mut events);
    assert!(seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Update(m) if m.name == "n0" && m.tags == tags)));
    for g in &nodes {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_events_reach_every_member_exactly_once() {
    let nodes = cluster(4).await;
    let mut subs: Vec<_> = nodes.iter().map(|g| g.subscribe_user_events()).collect();
    let mut fired = Vec::new();
    for (i, g) in nodes.iter().enumerate().take(3) {
        fired.push(
            g.fire_user_event(format!("deploy-{i}").into_bytes())
                .unwrap(),
        );
    }
    // Lamport times are distinct per origin clock.
    assert_eq!(fired.len(), 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, rx) in subs.iter_mut().enumerate() {
        let got: Vec<UserEvent> = drain(rx);
        let mut payloads: Vec<String> = got
            .iter()
            .map(|e| String::from_utf8(e.payload.clone()).unwrap())
            .collect();
        payloads.sort();
        assert_eq!(
            payloads,
            ["deploy-0", "deploy-1", "deploy-2"],
            "node {i}: {got:?}"
        );
        assert!(got
            .iter()
            .any(|e| e.origin == "n1" && e.payload == b"deploy-1"));
    }
    // A node joining later gets the recent events through push/pull.
    let late = start("late").await;
    let mut late_rx = late.subscribe_user_events();
    late.join(&[nodes[2].local_addr()]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = drain(&mut late_rx);
    assert_eq!(got.len(), 3, "{got:?}");
    // And its clock moved past every delivered event.
    let next = late.fire_user_event(b"after".to_vec()).unwrap();
    assert!(next > *fired.iter().max().unwrap());
    // Too large is refused.
    let err = nodes[0].fire_user_event(vec![0; 600]).unwrap_err();
    assert!(matches!(err, GossipError::TooLarge { .. }), "{err}");
    for g in nodes.iter().chain([&late]) {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_and_plaintext_pools_do_not_mix() {
    let t = timing();
    let enc = start_with("enc", Some(Keyring::from_base64(K1).unwrap()), t.clone()).await;
    let enc2 = start_with("enc2", Some(Keyring::from_base64(K2).unwrap()), t.clone()).await;
    let plain = start_with("plain", None, t.clone()).await;
    assert!(plain.join(&[enc.local_addr()]).await.is_err());
    assert!(enc.join(&[plain.local_addr()]).await.is_err());
    assert!(
        enc2.join(&[enc.local_addr()]).await.is_err(),
        "different keys"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    for g in [&enc, &enc2, &plain] {
        assert_eq!(g.members().len(), 1, "{:?}", g.members());
    }
    for g in [&enc, &enc2, &plain] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_rotation_keeps_the_pool_together() {
    let t = timing();
    let mut nodes: Vec<Gossip> = Vec::new();
    for i in 0..3 {
        let g = start_with(
            &format!("k{i}"),
            Some(Keyring::from_base64(K1).unwrap()),
            t.clone(),
        )
        .await;
        if i > 0 {
            g.join(&[nodes[0usize].local_addr()]).await.unwrap();
        }
        nodes.push(g);
    }
    for g in &nodes {
        assert!(eventually(Duration::from_secs(10), || alive_count(g) == 3).await);
    }
    let mut events = nodes[0].subscribe();
    for g in &nodes {
        g.keyring().install(K2).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for g in &nodes {
        g.keyring().use_key(K2).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = nodes[0].keyring().remove(K2).unwrap_err().to_string();
    assert!(
        err.contains("Removing the primary key is not allowed"),
        "{err}"
    );
    for g in &nodes {
        g.keyring().remove(K1).unwrap();
        assert_eq!(g.keyring().list(), vec![K2.to_string()]);
    }
    // Several suspicion timeouts later, still together.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for g in &nodes {
        assert_eq!(alive_count(g), 3, "{:?}", g.members());
    }
    assert!(
        !drain(&mut events)
            .iter()
            .any(|e| matches!(e, MemberEvent::Failed(_))),
        "a member failed during rotation"
    );
    // A node with only the old key can no longer join; one with the new key can.
    let old = start_with("old", Some(Keyring::from_base64(K1).unwrap()), t.clone()).await;
    assert!(old.join(&[nodes[1].local_addr()]).await.is_err());
    let new = start_with("new", Some(Keyring::from_base64(K2).unwrap()), t.clone()).await;
    new.join(&[nodes[1].local_addr()]).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || alive_count(&nodes[0]) == 4).await);
    for g in nodes.iter().chain([&old, &new]) {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_udp_and_tcp_input_is_dropped() {
    use tokio::io::AsyncWriteExt;
    let nodes = cluster(2).await;
    let target = nodes[0].local_addr();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [
        &[][..],
        &[0u8],
        &[0, 0xff, 0xff, 0xff],
        &[1; 40],
        &[7; 1500],
    ] {
        udp.send_to(junk, target).await.unwrap();
    }
    // A frame announcing 16 MiB and then nothing; a frame of garbage; a connection closed early.
    let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
    s.write_all(&(16u32 << 20).to_be_bytes()).await.unwrap();
    let mut s2 = tokio::net::TcpStream::connect(target).await.unwrap();
    s2.write_all(&[0, 0, 0, 4, 0, 9, 9, 9]).await.unwrap();
    drop(tokio::net::TcpStream::connect(target).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop((s, s2));
    // Still a healthy pool that accepts a newcomer.
    let late = start("late").await;
    late.join(&[target]).await.unwrap();
    for g in nodes.iter().chain([&late]) {
        assert!(
            eventually(Duration::from_secs(5), || alive_count(g) == 3).await,
            "{:?}",
            g.members()
        );
    }
    for g in nodes.iter().chain([&late]) {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_leave_turns_a_failed_member_left_everywhere() {
    let nodes = cluster(4).await;
    nodes[3].shutdown().await;
    for g in &nodes[..3] {
        assert!(
            eventually(Duration::from_secs(8), || status(g, "n3")
                == Some(MemberStatus::Failed))
            .await
        );
    }
    // An alive member is known but untouched; an unknown one is reported as such.
    assert!(nodes[0].force_leave("n1", false).await.unwrap());
    assert!(!nodes[0].force_leave("nobody", false).await.unwrap());
    assert!(nodes[0].force_leave("n3", false).await.unwrap());
    for g in &nodes[..3] {
        assert!(
            eventually(Duration::from_secs(8), || status(g, "n3")
                == Some(MemberStatus::Left))
            .await,
            "{:?}",
            g.members()
        );
        assert_eq!(status(g, "n1"), Some(MemberStatus::Alive));
    }
    // With prune it is also gone from the local list at once.
    assert!(nodes[1].force_leave("n3", true).await.unwrap());
    assert!(eventually(Duration::from_secs(2), || status(&nodes[1], "n3").is_none()).await);
    for g in &nodes[..3] {
        g.shutdown().await;
    }
}
