//! The operator endpoints through the router, on a single-server cluster (its leader), and
//! the pure parts: body decoding, health totals, time and duration text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use serde_json::Value;

use super::shapes::{decode_autopilot_config, rfc3339_seconds, AutopilotSettings};
use super::{HealthView, ServerView};
use crate::test_state;

const NODE_ID: &str = "3f4c2a1e-0000-4000-8000-000000000001";

async fn call(state: &crate::State, method: &str, uri: &str, body: &str) -> (u16, String) {
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
    let (status, _, body) = test_state::parts(resp).await;
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn raft_configuration_lists_the_leader_as_consul_shapes_it() {
    let state = test_state::state().await;
    let (status, body) = call(&state, "GET", "/v1/operator/raft/configuration", "").await;
    assert_eq!(status, 200, "{body}");
    // Consul's field order (structs.RaftServer), then the configuration's index.
    let order = [
        "\"ID\"",
        "\"Node\"",
        "\"Address\"",
        "\"Leader\"",
        "\"ProtocolVersion\"",
        "\"Voter\"",
        "\"LastIndex\"",
        "\"Index\"",
    ];
    let at: Vec<usize> = order.iter().map(|k| body.find(k).expect(k)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{body}");
    let v = parse(&body);
    let servers = v["Servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    let s = &servers[0];
    assert_eq!(s["ID"], NODE_ID);
    assert_eq!(s["Node"], "n1");
    assert_eq!(s["Address"], "127.0.0.1:8300");
    assert_eq!(
        (s["Leader"].as_bool(), s["Voter"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(s["ProtocolVersion"], "3");
    assert!(s["LastIndex"].as_u64().unwrap() >= 1, "{body}");
    // openraft writes a bootstrapped configuration at index 0.
    assert!(v["Index"].is_u64(), "{body}");
    // ?stale is served too; ?stale&consistent is Consul's 400.
    let (status, _) = call(&state, "GET", "/v1/operator/raft/configuration?stale", "").await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &state,
        "GET",
        "/v1/operator/raft/configuration?stale&consistent",
        "",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Cannot specify ?stale with ?consistent, conflicting semantics."
        )
    );
    let (status, body) = call(
        &state,
        "GET",
        "/v1/operator/raft/configuration?dc=other",
        "",
    )
    .await;
    assert_eq!((status, body.as_str()), (500, "No path to datacenter"));
}

#[tokio::test]
async fn removing_a_peer_needs_exactly_one_of_id_and_address() {
    let state = test_state::state().await;
    let (status, body) = call(&state, "DELETE", "/v1/operator/raft/peer", "").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove"
    );
    let (status, body) = call(
        &state,
        "DELETE",
        "/v1/operator/raft/peer?id=a&address=b",
        "",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Must specify only one of ?id or ?address")
    );
    let (status, body) = call(&state, "DELETE", "/v1/operator/raft/peer?id=nope", "").await;
    assert_eq!(
        (status, body.as_str()),
        (500, "id \"nope\" was not found in the Raft configuration")
    );
    let (status, body) = call(
        &state,
        "DELETE",
        "/v1/operator/raft/peer?address=10.9.9.9:8300",
        "",
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "address \"10.9.9.9:8300\" was not found in the Raft configuration"
    );
    let (status, _) = call(&state, "GET", "/v1/operator/raft/peer?id=x", "").await;
    assert_eq!(status, 405);
    // The server is still there.
    let (_, body) = call(&state, "GET", "/v1/operator/raft/configuration", "").await;
    assert_eq!(parse(&body)["Servers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_lone_server_has_no_one_to_transfer_leadership_to() {
    let state = test_state::state().await;
    let (status, body) = call(&state, "POST", "/v1/operator/raft/transfer-leader", "").await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "Failed to transfer Leader: no other voter to transfer leadership to"
    );
    let (status, body) = call(
        &state,
        "POST",
        "/v1/operator/raft/transfer-leader?id=nope",
        "",
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(body, "Failed to transfer Leader: cannot find peer \"nope\"");
    // Still the leader, still taking writes.
    let (status, _) = call(&state, "PUT", "/v1/kv/after-transfer", "x").await;
    assert_eq!(status, 200);
    let (status, _) = call(&state, "PUT", "/v1/operator/raft/transfer-leader", "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn autopilot_configuration_round_trips_with_check_and_set() {
    let state = test_state::state().await;
    let (status, body) = call(&state, "GET", "/v1/operator/autopilot/configuration", "").await;
    assert_eq!(status, 200, "{body}");
    let v = parse(&body);
    assert_eq!(v["CleanupDeadServers"], true);
    assert_eq!(v["LastContactThreshold"], "200ms");
    assert_eq!(v["MaxTrailingLogs"], 250);
    assert_eq!(v["MinQuorum"], 0);
    assert_eq!(v["ServerStabilizationTime"], "10s");
    assert_eq!(v["RedundancyZoneTag"], "");
    assert_eq!(v["DisableUpgradeMigration"], false);
    assert_eq!(v["UpgradeVersionTag"], "");
    let index = v["ModifyIndex"].as_u64().unwrap();
    assert!(index >= 1 && v["CreateIndex"].as_u64() == Some(index));

    let put = r#"{"cleanupdeadservers": false, "LastContactThreshold": "1s", "MaxTrailingLogs": 10,
                  "MinQuorum": 3, "ServerStabilizationTime": "1m30s", "RedundancyZoneTag": "zone"}"#;
    // A stale index changes nothing.
    let uri = format!("/v1/operator/autopilot/configuration?cas={}", index + 7);
    assert_eq!(
        call(&state, "PUT", &uri, put).await,
        (200, "false".to_string())
    );
    let (_, body) = call(&state, "GET", "/v1/operator/autopilot/configuration", "").await;
    assert_eq!(parse(&body)["MaxTrailingLogs"], 250);
    // The current one does.
    let uri = format!("/v1/operator/autopilot/configuration?cas={index}");
    assert_eq!(
        call(&state, "PUT", &uri, put).await,
        (200, "true".to_string())
    );
    let (_, body) = call(&state, "GET", "/v1/operator/autopilot/configuration", "").await;
    let v = parse(&body);
    assert_eq!(v["CleanupDeadServers"], false);
    assert_eq!(v["LastContactThreshold"], "1s");
    assert_eq!(v["MaxTrailingLogs"], 10);
    assert_eq!(v["MinQuorum"], 3);
    assert_eq!(v["ServerStabilizationTime"], "1m30s");
    assert_eq!(v["RedundancyZoneTag"], "zone");
    assert!(v["ModifyIndex"].as_u64().unwrap() > index);
    assert_eq!(v["CreateIndex"].as_u64(), Some(index));
    assert_eq!(
        crate::test_state::srv(&state)
            .autopilot_config()
            .max_trailing_logs,
        10
    );
    // The same index again is now stale; without ?cas a write always answers true, and a
    // field left out takes Consul's default.
    assert_eq!(
        call(&state, "PUT", &uri, put).await,
        (200, "false".to_string())
    );
    let (status, body) = call(&state, "PUT", "/v1/operator/autopilot/configuration", "{}").await;
    assert_eq!((status, body.as_str()), (200, "true"));
    assert_eq!(
        crate::test_state::srv(&state)
            .autopilot_config()
            .max_trailing_logs,
        250
    );
}

#[tokio::test]
async fn autopilot_configuration_put_errors_are_consuls() {
    let state = test_state::state().await;
    let uri = "/v1/operator/autopilot/configuration";
    let (status, body) = call(&state, "PUT", &format!("{uri}?cas=x"), "{}").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "Error parsing cas value: strconv.ParseUint: parsing \"x\": invalid syntax"
    );
    let (status, body) = call(&state, "PUT", uri, "").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Error parsing autopilot config: EOF")
    );
    let (status, body) = call(&state, "PUT", uri, r#"{"MaxTrailingLogs": "many"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body, "Error parsing autopilot config: json: cannot unmarshal string into Go struct field AutopilotConfiguration.MaxTrailingLogs of type uint64");
    let (status, body) = call(&state, "PUT", uri, r#"{"LastContactThreshold": "soon"}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Error parsing autopilot config: time: invalid duration \"soon\""
        )
    );
    let (status, _) = call(&state, "DELETE", uri, "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn autopilot_health_and_state_report_the_leader() {
    let state = test_state::state().await;
    let (status, body) = call(&state, "GET", "/v1/operator/autopilot/health", "").await;
    assert_eq!(status, 200, "{body}");
    let v = parse(&body);
    assert_eq!(
        (v["Healthy"].as_bool(), v["FailureTolerance"].as_u64()),
        (Some(true), Some(0))
    );
    let s = &v["Servers"][0];
    assert_eq!(s["ID"], NODE_ID);
    assert_eq!(s["Name"], "n1");
    assert_eq!(s["Address"], "127.0.0.1:8300");
    assert_eq!(s["SerfStatus"], "alive");
    assert_eq!(s["Version"], "test");
    assert_eq!(s["LastContact"], "0s");
    assert_eq!(
        (
            s["Leader"].as_bool(),
            s["Voter"].as_bool(),
            s["Healthy"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    assert!(s["LastTerm"].as_u64().unwrap() >= 1);
    assert!(s["StableSince"].as_str().unwrap().ends_with('Z'));
    let order = [
        "\"ID\"",
        "\"Name\"",
        "\"Address\"",
        "\"SerfStatus\"",
        "\"Version\"",
        "\"Leader\"",
        "\"LastContact\"",
        "\"LastTerm\"",
        "\"LastIndex\"",
        "\"Healthy\"",
        "\"Voter\"",
        "\"StableSince\"",
    ];
    let row = &body[body.find("\"Servers\"").unwrap()..];
    let at: Vec<usize> = order.iter().map(|k| row.find(k).expect(k)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{body}");

    let (status, body) = call(&state, "GET", "/v1/operator/autopilot/state", "").await;
    assert_eq!(status, 200, "{body}");
    let v = parse(&body);
    assert_eq!(v["Leader"], NODE_ID);
    assert_eq!(v["Voters"], serde_json::json!([NODE_ID]));
    let s = &v["Servers"][NODE_ID];
    assert_eq!(
        (s["Status"].as_str(), s["NodeType"].as_str()),
        (Some("leader"), Some("voter"))
    );
    assert_eq!(s["NodeStatus"], "alive");
    assert_eq!(v["OptimisticFailureTolerance"], 0);
}

fn server(id: &str, voter: bool, healthy: bool, alive: bool) -> ServerView {
    ServerView {
        id: id.into(),
        name: id.into(),
        address: format!("{id}:8300"),
        serf_status: if alive { "alive" } else { "failed" },
        version: "1".into(),
        leader: id == "a",
        voter,
        last_contact: Some(Duration::ZERO),
        last_term: 2,
        last_index: 10,
        healthy,
        stable_since: UNIX_EPOCH,
    }
}

#[test]
fn health_totals_follow_autopilots_rules() {
    let all = HealthView::new(vec![
        server("a", true, true, true),
        server("b", true, true, true),
        server("c", true, true, true),
    ]);
    assert!(all.healthy);
    assert_eq!(
        (all.failure_tolerance, all.optimistic_failure_tolerance),
        (1, 1)
    );
    // One voter lagging: unhealthy, no tolerance left, though all three are alive.
    let lagging = HealthView::new(vec![
        server("a", true, true, true),
        server("b", true, true, true),
        server("c", true, false, true),
    ]);
    assert!(!lagging.healthy);
    assert_eq!(
        (
            lagging.failure_tolerance,
            lagging.optimistic_failure_tolerance
        ),
        (0, 1)
    );
    // A learner does not count toward the quorum, but its health does toward `Healthy`.
    let learner = HealthView::new(vec![
        server("a", true, true, true),
        server("d", false, false, true),
    ]);
    assert!(!learner.healthy);
    assert_eq!(learner.failure_tolerance, 0);
    assert!(!HealthView::new(vec![]).healthy);
}

#[test]
fn autopilot_bodies_decode_as_consuls_api_does() {
    assert_eq!(
        decode_autopilot_config(b"null").unwrap(),
        AutopilotSettings::default()
    );
    let s = decode_autopilot_config(
        br#"{"lastcontactthreshold": 2000000, "ServerStabilizationTime": null,
        "DisableUpgradeMigration": true, "UpgradeVersionTag": "build", "CreateIndex": 9}"#,
    )
    .unwrap();
    assert_eq!(s.last_contact_threshold, Duration::from_millis(2));
    assert_eq!(s.server_stabilization_time, Duration::ZERO);
    assert!(s.disable_upgrade_migration && s.cleanup_dead_servers);
    assert_eq!(s.upgrade_version_tag, "build");
    let e = decode_autopilot_config(br#"{"MinQuorum": -1}"#).unwrap_err();
    assert_eq!(e.reason, "Error parsing autopilot config: json: cannot unmarshal number -1 into Go struct field AutopilotConfiguration.MinQuorum of type uint");
    let e = decode_autopilot_config(br#"{"CleanupDeadServers": "yes"}"#).unwrap_err();
    assert_eq!(e.reason, "Error parsing autopilot config: json: cannot unmarshal string into Go struct field AutopilotConfiguration.CleanupDeadServers of type bool");
    let e = decode_autopilot_config(b"[]").unwrap_err();
    assert_eq!(e.reason, "Error parsing autopilot config: json: cannot unmarshal array into Go value of type api.AutopilotConfiguration");
}

#[test]
fn stable_since_is_rfc3339_rounded_to_the_second() {
    let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_600);
    assert_eq!(rfc3339_seconds(t), "2023-11-14T22:13:21Z");
    assert_eq!(rfc3339_seconds(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert!(rfc3339_seconds(SystemTime::now()).starts_with("20"));
}
