//! User events: validation and size texts, the wire format, filters, the ring, the index
//! function, and the two endpoints through the router (fire without gossip, blocking list).

use std::time::{Duration, Instant};

use axum::body::Body;
use lotse_core::catalog::Service;
use serde_json::Value;

use super::*;
use crate::test_state;

fn event(name: &str) -> UserEvent {
    UserEvent {
        id: new_id(),
        name: name.into(),
        payload: Vec::new(),
        node_filter: String::new(),
        service_filter: String::new(),
        tag_filter: String::new(),
        version: EVENT_VERSION,
        ltime: 0,
    }
}

fn service(name: &str, tags: &[&str]) -> Service {
    Service {
        id: format!("{name}-1"),
        name: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Service::default()
    }
}

async fn call(state: &crate::State, method: &str, uri: &str, body: &str) -> (u16, u64, String) {
    let mut app = crate::router(state.clone());
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = match tower_service::Service::call(&mut app, req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (status, index, body) = test_state::parts(resp).await;
    (status, index, String::from_utf8(body.to_vec()).unwrap())
}

#[test]
fn uuid_to_u64_xors_the_halves_as_consul() {
    // 0xb54fe1107af5cafc ^ 0xd1fbafc8ba432b1c
    assert_eq!(
        uuid_to_u64("b54fe110-7af5-cafc-d1fb-afc8ba432b1c"),
        7_256_511_592_453_824_992
    );
    assert_eq!(uuid_to_u64("00000000-0000-0000-0000-000000000000"), 0);
    assert_eq!(uuid_to_u64("00000000-0000-0001-0000-000000000003"), 2);
    assert_eq!(uuid_to_u64("not-a-uuid"), 0);
}

#[test]
fn new_ids_are_go_uuids() {
    let id = new_id();
    assert_eq!(id.len(), 36);
    assert_eq!(
        id.char_indices()
            .filter(|(_, c)| *c == '-')
            .map(|(i, _)| i)
            .collect::<Vec<_>>(),
        vec![8, 13, 18, 23]
    );
    assert_ne!(id, new_id());
}

#[test]
fn validation_uses_consuls_texts() {
    let mut ev = event("");
    assert_eq!(validate(&ev).unwrap_err(), "User event missing name");
    ev.name = "deploy".into();
    assert!(validate(&ev).is_ok());
    ev.tag_filter = "v1".into();
    assert_eq!(
        validate(&ev).unwrap_err(),
        "Cannot provide tag filter without service filter"
    );
    ev.tag_filter.clear();
    ev.node_filter = "(".into();
    assert_eq!(
        validate(&ev).unwrap_err(),
        "Invalid node filter: error parsing regexp: missing closing ): `(`"
    );
    ev.node_filter = "web-.*".into();
    ev.service_filter = "a)".into();
    assert_eq!(
        validate(&ev).unwrap_err(),
        "Invalid service filter: error parsing regexp: unexpected ): `a)`"
    );
    ev.service_filter = "api".into();
    ev.tag_filter = "[".into();
    assert!(validate(&ev)
        .unwrap_err()
        .starts_with("Invalid tag filter: error parsing regexp: missing closing ]"));
}

#[test]
fn size_limit_is_serfs_512_bytes() {
    let mut ev = event("deploy");
    ev.payload = vec![b'x'; 100];
    assert!(check_size(&ev).is_ok());
    ev.payload = vec![b'x'; 600];
    assert_eq!(
        check_size(&ev).unwrap_err(),
        "user event exceeds configured limit of 512 bytes before encoding"
    );
    // Just under the raw limit, the encoded message is what goes over.
    ev.payload = vec![b'x'; 512 - 13 - 6 - 60];
    assert_eq!(
        check_size(&ev).unwrap_err(),
        "encoded user event exceeds configured limit of 512 bytes after encoding"
    );
    // The largest payload that passes still fits the pool's own limit once encoded.
    let mut n = 0;
    while {
        ev.payload = vec![b'x'; n + 1];
        check_size(&ev).is_ok()
    } {
        n += 1;
    }
    assert!(n > 300, "largest payload {n}");
    ev.payload = vec![b'x'; n];
    assert!(encode(&ev).unwrap().len() + 64 <= USER_EVENT_SIZE_LIMIT);
}

#[test]
fn wire_round_trips_every_field_and_refuses_garbage() {
    let mut ev = event("deploy/v2");
    ev.payload = b"\x00\xffpayload".to_vec();
    ev.node_filter = "^web".into();
    ev.service_filter = "api".into();
    ev.tag_filter = "v\\d".into();
    let bytes = encode(&ev).unwrap();
    let back = decode(&bytes, 42).unwrap();
    assert_eq!(back, UserEvent { ltime: 42, ..ev });
    assert!(decode(b"\x07garbage", 1).is_err());
    assert!(decode(b"", 1).is_err());
}

#[test]
fn json_has_consuls_shape() {
    let mut ev = event("deploy");
    ev.id = "b54fe110-7af5-cafc-d1fb-afc8ba432b1c".into();
    assert_eq!(
        serde_json::to_string(&ev).unwrap(),
        r#"{"ID":"b54fe110-7af5-cafc-d1fb-afc8ba432b1c","Name":"deploy","Payload":null,"NodeFilter":"","ServiceFilter":"","TagFilter":"","Version":1,"LTime":0}"#
    );
    ev.payload = b"hi".to_vec();
    let v: Value = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["Payload"], "aGk=");
}

#[test]
fn filters_match_node_service_and_tag() {
    let services = vec![service("api", &["v1", "blue"]), service("db", &[])];
    let mut ev = event("deploy");
    assert!(should_process(&ev, "web-1", &services));

    ev.node_filter = "^web-".into();
    assert!(should_process(&ev, "web-1", &services));
    assert!(!should_process(&ev, "db-1", &services));
    ev.node_filter.clear();

    ev.service_filter = "^ap".into();
    assert!(should_process(&ev, "n", &services));
    assert!(!should_process(&ev, "n", &[]));
    ev.tag_filter = "^blu".into();
    assert!(should_process(&ev, "n", &services));
    ev.tag_filter = "green".into();
    assert!(!should_process(&ev, "n", &services));
    // The tag must be on a service whose name matched.
    ev.service_filter = "db".into();
    ev.tag_filter = "v1".into();
    assert!(!should_process(&ev, "n", &services));

    // A filter that does not compile rejects the event.
    ev.service_filter.clear();
    ev.tag_filter.clear();
    ev.node_filter = "(".into();
    assert!(!should_process(&ev, "n", &services));
}

#[test]
fn ingest_drops_garbage_and_filtered_events() {
    let log = EventLog::default();
    let raw = |payload: Vec<u8>, ltime| lotse_gossip::UserEvent {
        ltime,
        payload,
        origin: "n2".into(),
    };
    ingest(&log, &raw(b"not an event".to_vec(), 1), "n1", &[]);
    let mut elsewhere = event("deploy");
    elsewhere.node_filter = "^n2$".into();
    ingest(&log, &raw(encode(&elsewhere).unwrap(), 2), "n1", &[]);
    assert!(log.list().is_empty());
    let here = event("deploy");
    ingest(&log, &raw(encode(&here).unwrap(), 3), "n1", &[]);
    ingest(&log, &raw(encode(&here).unwrap(), 3), "n1", &[]);
    let list = log.list();
    assert_eq!(list.len(), 1, "stored once");
    assert_eq!(list[0].ltime, 3);
    assert_eq!(list[0].id, here.id);
}

#[test]
fn ring_keeps_the_last_256_in_arrival_order_and_dedups() {
    let log = EventLog::default();
    let mut rx = log.subscribe();
    let events: Vec<UserEvent> = (0..300).map(|i| event(&format!("e{i}"))).collect();
    for ev in &events {
        assert!(log.push(ev.clone()));
    }
    assert!(rx.has_changed().unwrap());
    rx.borrow_and_update();
    let list = log.list();
    assert_eq!(list.len(), RING_SIZE);
    assert_eq!(list.first().unwrap().name, "e44");
    assert_eq!(list.last().unwrap().name, "e299");
    assert!(!log.push(events[299].clone()), "duplicate ID");
    assert!(!rx.has_changed().unwrap(), "a duplicate wakes nobody");
    assert_eq!(log.list().len(), RING_SIZE);
}

#[tokio::test]
async fn fire_validates_as_consul_and_needs_gossip() {
    let state = test_state::state().await;
    let (status, _, body) = call(&state, "PUT", "/v1/event/fire/", "").await;
    assert_eq!((status, body.as_str()), (400, "Missing name"));
    let (status, _, body) = call(&state, "PUT", "/v1/event/fire/_rexec", "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("reserved"), "{body}");
    let (status, _, body) = call(&state, "PUT", "/v1/event/fire/x?tag=v1", "").await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Cannot provide tag filter without service filter")
    );
    let (status, _, body) = call(&state, "PUT", "/v1/event/fire/x?node=(", "").await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("Invalid node filter: error parsing regexp"),
        "{body}"
    );
    let big = "x".repeat(1000);
    let (status, _, body) = call(&state, "PUT", "/v1/event/fire/x", &big).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "user event exceeds configured limit of 512 bytes before encoding"
        )
    );
    // A valid event with no gossip pool (unit tests): a 500, nothing stored.
    let (status, _, _) = call(&state, "PUT", "/v1/event/fire/deploy", "v1").await;
    assert_eq!(status, 500);
    assert!(state.events.list().is_empty());
    let (status, _, _) = call(&state, "GET", "/v1/event/fire/deploy", "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn list_filters_by_name_and_indexes_by_the_last_id() {
    let state = test_state::state().await;
    let (status, index, body) = call(&state, "GET", "/v1/event/list", "").await;
    assert_eq!((status, index, body.as_str()), (200, 1, "[]"));
    let (a, b) = (event("deploy"), event("restart"));
    state.events.push(a.clone());
    state.events.push(b.clone());
    let (_, index, body) = call(&state, "GET", "/v1/event/list", "").await;
    assert_eq!(index, uuid_to_u64(&b.id));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["ID"], a.id.as_str());
    assert_eq!(v[1]["Name"], "restart");
    let (_, index, body) = call(&state, "GET", "/v1/event/list?name=deploy", "").await;
    assert_eq!(index, uuid_to_u64(&a.id));
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, _, body) = call(&state, "GET", "/v1/event/list?index=x", "").await;
    assert_eq!((status, body.as_str()), (400, "Invalid index"));
    let (status, _, body) = call(&state, "GET", "/v1/event/list?index=1&wait=5", "").await;
    assert_eq!((status, body.as_str()), (400, "Invalid wait time"));
}

#[tokio::test]
async fn blocking_list_wakes_on_a_new_event_and_times_out_otherwise() {
    let state = test_state::state().await;
    let first = event("deploy");
    state.events.push(first.clone());
    let index = uuid_to_u64(&first.id);

    // Nothing new: answers the same list after `wait`.
    let started = Instant::now();
    let uri = format!("/v1/event/list?index={index}&wait=200ms");
    let (_, got, _) = call(&state, "GET", &uri, "").await;
    assert_eq!(got, index);
    assert!(started.elapsed() >= Duration::from_millis(190));

    // A new event of another name does not answer a name-filtered wait.
    let uri = format!("/v1/event/list?name=deploy&index={index}&wait=10s");
    let waiter = tokio::spawn({
        let state = state.clone();
        async move { call(&state, "GET", &uri, "").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    state.events.push(event("other"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    let second = event("deploy");
    let started = Instant::now();
    state.events.push(second.clone());
    let (status, got, body) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!((status, got), (200, uuid_to_u64(&second.id)));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}

/// Fire through the router into a real (single-member) gossip pool, and back through
/// [`start_receiver`] into the log: the path the agent wires up.
#[tokio::test]
async fn fired_events_come_back_through_gossip_and_filters() {
    let base = test_state::state().await;
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let gossip = lotse_gossip::Gossip::start(lotse_gossip::GossipConfig {
        node_name: "n1".into(),
        bind: any,
        advertise: any,
        tags: Default::default(),
        keyring: None,
        timing: Default::default(),
    })
    .await
    .expect("gossip starts");
    let state = std::sync::Arc::new(crate::ApiState {
        server: base.server.clone(),
        servers: None,
        telemetry: base.telemetry.clone(),
        agent: base.agent.clone(),
        request_limits: Default::default(),
        limits: base.limits,
        local: base.local.clone(),
        reload: None,
        logs: base.logs.clone(),
        gossip: Some(gossip.clone()),
        keyring_path: None,
        leave: None,
        events: Default::default(),
    });
    start_receiver(
        state.events.clone(),
        gossip.clone(),
        state.local.clone(),
        "n1".into(),
    );
    let (status, _, body) = call(&state, "PUT", "/v1/event/fire/skip?node=%5Eother%24", "").await;
    assert_eq!(status, 200, "{body}");
    let skipped: Value = serde_json::from_str(&body).unwrap();
    let (status, _, body) = call(&state, "PUT", "/v1/event/fire/deploy?node=%5En1%24", "v9").await;
    assert_eq!(status, 200, "{body}");
    let fired: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(fired["LTime"], 0, "Consul answers LTime 0");
    assert_eq!(fired["NodeFilter"], "^n1$");

    let deadline = Instant::now() + Duration::from_secs(5);
    let listed = loop {
        let list = state.events.list();
        if let Some(e) = list.iter().find(|e| e.id == fired["ID"]) {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "event never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(listed.payload, b"v9");
    assert_eq!(listed.name, "deploy");
    assert!(state.events.list().iter().all(|e| e.id != skipped["ID"]));
    gossip.shutdown().await;
}
