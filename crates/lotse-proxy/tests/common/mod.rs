//! What the engine's process-internal tests share: a proxy with one upstream `svc` over a
//! static endpoint set, listening on a free loopback port.

use std::net::SocketAddr;

use lotse_proxy::{Proxy, ProxySpec, Source, UpstreamConfig, UpstreamSpec};

/// Starts a proxy whose one upstream has `config` (Consul's upstream `Config` JSON, which must
/// have no unknown keys) and `endpoints`; returns it and its listener's address.
pub async fn start(config: serde_json::Value, endpoints: Vec<SocketAddr>) -> (Proxy, SocketAddr) {
    let (config, unknown) = UpstreamConfig::from_json(&config, "config").expect("config");
    assert!(unknown.is_empty(), "unknown keys: {unknown:?}");
    let spec = ProxySpec {
        proxy_id: "test".into(),
        config_version: 1,
        agent: None,
        upstreams: vec![UpstreamSpec {
            name: "svc".into(),
            bind: "127.0.0.1:0".parse().expect("addr"),
            source: Source::Static(endpoints),
            config,
        }],
        gateways: Vec::new(),
        admin_bind: None,
    };
    let proxy = Proxy::start(spec).await.expect("start");
    let addr = proxy.upstreams()[0].bind;
    (proxy, addr)
}
