//! `/v1/agent/self`, `/v1/agent/members` and the root page.

use std::collections::BTreeMap;

use axum::extract::State as AxState;
use axum::http::header;
use axum::response::IntoResponse;
use lotse_server::{Access, Resource};
use serde_json::{json as j, Value};

use crate::params::Params;
use crate::reply::{json, ApiResult};
use crate::State;

/// This agent as a gossip member, in Consul's `/v1/agent/members` shape. Until gossip lands the
/// agent knows only itself, always alive.
pub fn self_member(state: &State) -> Value {
    let a = &state.agent;
    let mut tags = BTreeMap::from([
        ("build", format!("{}:lotse", a.version)),
        ("dc", a.datacenter.clone()),
        ("id", a.node_id.clone()),
        ("role", if a.server { "consul" } else { "node" }.to_string()),
        ("segment", String::new()),
        ("vsn", "2".into()),
        ("vsn_max", "3".into()),
        ("vsn_min", "2".into()),
    ]);
    if a.server {
        tags.insert("port", a.server_port.to_string());
        tags.insert("raft_vsn", "3".into());
        if a.bootstrap_expect > 0 {
            tags.insert("expect", a.bootstrap_expect.to_string());
        }
    }
    j!({
        "Name": a.node_name,
        "Addr": a.bind_addr,
        "Port": a.serf_lan_port,
        "Tags": tags,
        "Status": 1,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

pub async fn members(AxState(state): AxState<State>, params: Params) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Agent, Access::Read)?;
    let Some(gossip) = &state.gossip else {
        return Ok(json(&[self_member(&state)], params.pretty()));
    };
    // Consul lists the WAN pool's servers as `<node>.<dc>`; with one datacenter that is
    // this pool's servers.
    let wan = params.has("wan");
    let members: Vec<Value> = gossip
        .members()
        .iter()
        .filter(|m| !wan || m.tags.get("role").map(String::as_str) == Some("consul"))
        .map(|m| {
            let name = if wan {
                format!("{}.{}", m.name, m.tags.get("dc").map_or("", String::as_str))
            } else {
                m.name.clone()
            };
            j!({
                "Name": name,
                "Addr": m.addr.to_string(),
                "Port": m.port,
                "Tags": m.tags,
                "Status": m.status as u8,
                "ProtocolMin": 1,
                "ProtocolMax": 5,
                "ProtocolCur": 2,
                "DelegateMin": 2,
                "DelegateMax": 5,
                "DelegateCur": 4,
            })
        })
        .collect();
    Ok(json(&members, params.pretty()))
}

/// Resident memory in bytes, from /proc (0 where that is not available).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

pub async fn self_(AxState(state): AxState<State>, params: Params) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Agent, Access::Read)?;
    let a = &state.agent;
    let mut stats = j!({
        "agent": {
            "check_monitors": "0",
            "check_ttls": "0",
            "checks": "0",
            "services": "0",
        },
        "build": {
            "prerelease": "",
            "revision": "",
            "version": a.version,
            "version_metadata": "lotse",
        },
        "consul": {
            "server": a.server.to_string(),
        },
        "runtime": {
            "arch": std::env::consts::ARCH,
            "os": std::env::consts::OS,
            "version": "rust",
            "rss_bytes": rss_bytes().to_string(),
        },
    });
    match state.server.as_ref() {
        Some(server) => {
            let raft: BTreeMap<&str, String> = server.raft_stats().into_iter().collect();
            let (kv_keys, sessions) = server.peek(|s| (s.kv_len(), s.session_count()));
            stats["consul"] = j!({
                "server": "true",
                "leader": server.is_leader().to_string(),
                "leader_addr": server.leader_addr().unwrap_or_default(),
                "bootstrap": (a.bootstrap_expect == 1).to_string(),
                "known_datacenters": "1",
            });
            stats["raft"] = j!(raft);
            stats["runtime"]["uptime_seconds"] = j!(server.uptime().as_secs().to_string());
            stats["kv"] = j!({
                "keys": kv_keys.to_string(),
                "sessions": sessions.to_string(),
                "blocking_queries": server.hub().parked().to_string(),
            });
        }
        // A client agent reports the servers it knows, as Consul's does.
        None => {
            let known = state.servers.as_ref().map_or(0, |s| s.addrs().len());
            stats["consul"]["known_servers"] = j!(known.to_string());
        }
    }
    let body = j!({
        "Config": {
            "Datacenter": a.datacenter,
            "PrimaryDatacenter": a.primary_datacenter,
            "NodeName": a.node_name,
            "NodeID": a.node_id,
            "Revision": "",
            "Server": a.server,
            "Version": a.version,
            "BuildDate": "",
        },
        "DebugConfig": {
            "DevMode": a.dev,
            "BootstrapExpect": a.bootstrap_expect,
            "ClientAddrs": [a.client_addr],
            "BindAddr": a.bind_addr,
            "HTTPPort": a.http_port,
            "ServerPort": a.server_port,
            "SerfPortLAN": a.serf_lan_port,
            "DNSDomain": a.domain,
            "KVMaxValueSize": state.limits.kv_max_value_size,
            "TxnMaxReqLen": state.limits.txn_max_req_len,
        },
        "Coord": null,
        "Member": self_member(&state),
        "Stats": stats,
        "Meta": {},
        "xDS": null,
    });
    Ok(json(&body, params.pretty()))
}

/// `GET /`: a short page pointing at the API (the web UI comes with its own issue).
pub async fn index(AxState(state): AxState<State>) -> impl IntoResponse {
    let body = format!(
        "<!doctype html><title>Lotse</title><h1>Lotse {}</h1>\
         <p>Node <b>{}</b> in datacenter <b>{}</b>. The HTTP API is under <code>/v1/</code>.</p>",
        state.agent.version, state.agent.node_name, state.agent.datacenter
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}
