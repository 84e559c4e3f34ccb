//! What a sidecar proxies, read from the agent: the `connect-proxy` service registered for a
//! service (`-sidecar-for`) or named directly (`-proxy-id`), as Consul's `connect proxy` finds
//! it. Its `Proxy.Upstreams` become listeners on `LocalBindAddress:LocalBindPort` (default
//! 127.0.0.1) with each upstream's `Config`; its own port becomes the public listener in front
//! of `LocalServiceAddress:LocalServicePort` (bound on `Proxy.Config.bind_address`, else the
//! service's `Address`, else 0.0.0.0, as Consul's proxies do). [`watch`] follows the
//! registration (a blocking query on its content hash) and hands changed listener sets to the
//! running proxy.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lotse_proxy::{Source, UpstreamConfig, UpstreamSpec};
use serde_json::Value;

use super::super::http::{encode_component, Client, Query};

/// The proxy service's ID for `-sidecar-for <id>`, with Consul's errors.
pub fn proxy_id_for(client: &Client, target: &str) -> Result<String, String> {
    let services: serde_json::Map<String, Value> = client
        .request_ok("GET", "/v1/agent/services", &Query::default(), None)
        .and_then(|r| r.json())
        .map_err(|e| format!("Failed looking up sidecar proxy info for {target}: {e}"))?;
    let mut ids: Vec<String> = services
        .values()
        .filter(|s| s.get("Kind").and_then(Value::as_str) == Some("connect-proxy"))
        .filter(|s| {
            s.pointer("/Proxy/DestinationServiceID")
                .and_then(Value::as_str)
                == Some(target)
        })
        .filter_map(|s| s.get("ID").and_then(Value::as_str).map(str::to_string))
        .collect();
    ids.sort();
    match ids.len() {
        0 => Err(format!(
            "No sidecar proxy registered for {target}: Failed looking up sidecar proxy info for {target}"
        )),
        1 => Ok(ids.remove(0)),
        _ => Err(format!(
            "More than one sidecar proxy registered for {target}.\n    Start proxy with -proxy-id and one of the following IDs: {}",
            ids.join(", ")
        )),
    }
}

/// The listeners of the registered proxy service `proxy_id`, and config warnings.
pub fn listeners(
    client: &Client,
    proxy_id: &str,
) -> Result<(Vec<UpstreamSpec>, Vec<String>), String> {
    let path = format!("/v1/agent/service/{}", encode_component(proxy_id));
    let svc: Value = client
        .request_ok("GET", &path, &Query::default(), None)
        .and_then(|r| r.json())
        .map_err(|e| format!("Failed looking up proxy service {proxy_id}: {e}"))?;
    if svc.get("Kind").and_then(Value::as_str) != Some("connect-proxy") {
        return Err(format!("Service {proxy_id} is not a connect-proxy"));
    }
    let proxy = svc.get("Proxy").cloned().unwrap_or(Value::Null);
    let mut specs = Vec::new();
    let mut warnings = Vec::new();
    let empty = Vec::new();
    let upstreams = proxy
        .get("Upstreams")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (i, u) in upstreams.iter().enumerate() {
        let path = format!("Proxy.Upstreams[{i}]");
        let kind = u
            .get("DestinationType")
            .and_then(Value::as_str)
            .unwrap_or("service");
        if !kind.is_empty() && kind != "service" {
            warnings.push(format!(
                "{path}: DestinationType {kind:?} is not supported yet, skipped"
            ));
            continue;
        }
        let name = u
            .get("DestinationName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{path}.DestinationName: required"))?;
        let port = u
            .get("LocalBindPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{path}.LocalBindPort: required (1-65535)"))?;
        let ip = bind_ip(
            u.get("LocalBindAddress"),
            "127.0.0.1",
            &format!("{path}.LocalBindAddress"),
        )?;
        let (config, unknown) = UpstreamConfig::from_json(
            u.get("Config").unwrap_or(&Value::Null),
            &format!("{path}.Config"),
        )
        .map_err(|e| e.to_string())?;
        warnings.extend(
            unknown
                .into_iter()
                .map(|k| format!("{k}: unknown key, ignored")),
        );
        // The name labels metrics and the admin listing: keep it unique.
        let label = if specs.iter().any(|s: &UpstreamSpec| s.name == name) {
            format!("{name}:{port}")
        } else {
            name.to_string()
        };
        specs.push(UpstreamSpec {
            name: label,
            bind: SocketAddr::new(ip, port),
            source: Source::Service(name.to_string()),
            config,
        });
    }
    // The public listener, in front of the local service.
    let public_port = svc
        .get("Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    let local_port = proxy
        .get("LocalServicePort")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    if public_port > 0 && local_port > 0 {
        let proxy_config = proxy.get("Config").cloned().unwrap_or(Value::Null);
        let bind = proxy_config
            .get("bind_address")
            .or_else(|| svc.get("Address"))
            .cloned();
        let ip = bind_ip(bind.as_ref(), "0.0.0.0", "Proxy.Config.bind_address")?;
        let local_ip = bind_ip(
            proxy.get("LocalServiceAddress"),
            "127.0.0.1",
            "Proxy.LocalServiceAddress",
        )?;
        // Consul's inbound keys: `protocol`, `local_connect_timeout_ms`,
        // `local_request_timeout_ms`; the rest of Proxy.Config is for other proxies.
        let mut inbound = serde_json::Map::new();
        for (from, to) in [
            ("protocol", "protocol"),
            ("local_connect_timeout_ms", "connect_timeout_ms"),
            ("local_request_timeout_ms", "request_timeout_ms"),
        ] {
            if let Some(v) = proxy_config.get(from) {
                inbound.insert(to.to_string(), v.clone());
            }
        }
        let config = UpstreamConfig::from_json(&Value::Object(inbound), "Proxy.Config")
            .map_err(|e| e.to_string())?
            .0;
        let dest = proxy
            .get("DestinationServiceName")
            .and_then(Value::as_str)
            .unwrap_or("local_app");
        specs.push(UpstreamSpec {
            name: format!("{dest}-public"),
            bind: SocketAddr::new(ip, public_port),
            source: Source::Static(vec![SocketAddr::new(local_ip, local_port)]),
            config,
        });
    }
    Ok((specs, warnings))
}

fn bind_ip(v: Option<&Value>, default: &str, field: &str) -> Result<IpAddr, String> {
    let s = v
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(default);
    s.parse::<IpAddr>()
        .map_err(|_| format!("{field}: {s:?} is not an IP address"))
}

/// Follows the proxy service's registration on a thread of its own (the CLI's HTTP client
/// blocks): a blocking query on `?hash=` returns when the registration changes; the new
/// listeners go to `tx`. A deregistered service or a broken config is logged and the running
/// configuration kept. Ends when the receiver is gone.
pub fn watch(client: Client, proxy_id: String, tx: tokio::sync::mpsc::Sender<Vec<UpstreamSpec>>) {
    let spawned = std::thread::Builder::new()
        .name("lotse-proxy-config".into())
        .spawn(move || {
            let path = format!("/v1/agent/service/{}", encode_component(&proxy_id));
            let mut hash = String::new();
            while !tx.is_closed() {
                let mut q = Query::read();
                if !hash.is_empty() {
                    q = q.param("hash", &hash);
                    q.wait_time = Some(Duration::from_secs(30));
                }
                let resp = match client.request("GET", &path, &q, None) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the proxy registration");
                        std::thread::sleep(Duration::from_secs(2));
                        continue;
                    }
                };
                if resp.status != 200 {
                    tracing::warn!(proxy = %proxy_id, status = resp.status, "proxy registration not readable; keeping the running configuration");
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
                let new_hash = resp
                    .json::<Value>()
                    .ok()
                    .and_then(|v| v.get("ContentHash").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                if new_hash.is_empty() {
                    // No content hash to block on: poll.
                    std::thread::sleep(Duration::from_secs(5));
                }
                if !hash.is_empty() && new_hash != hash {
                    match listeners(&client, &proxy_id) {
                        Ok((specs, warnings)) => {
                            for w in warnings {
                                tracing::warn!(proxy = %proxy_id, "{w}");
                            }
                            tracing::info!(proxy = %proxy_id, "proxy registration changed");
                            if tx.blocking_send(specs).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(proxy = %proxy_id, error = %e, "new proxy registration refused; keeping the running configuration");
                        }
                    }
                }
                hash = new_hash;
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot follow the proxy registration");
    }
}
