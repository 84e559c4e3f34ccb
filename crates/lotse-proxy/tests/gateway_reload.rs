//! Reloading a gateway's configuration (`Proxy::reconfigure_gateways`, what `lotse gateway`
//! does on SIGHUP): a kept listener never closes and its unchanged routes keep their state;
//! dropped listeners close; new ones open; the config version moves.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use lotse_proxy::gateway::validate::Validation;
use lotse_proxy::{GatewaySpec, Proxy, ProxySpec, RouteSpec, Source, UpstreamConfig, UpstreamSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn upstream(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(name))))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// A free loopback address (bound, then released).
async fn free() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

fn route(prefix: &str, name: &str, bind: SocketAddr, ep: SocketAddr) -> RouteSpec {
    let (config, _) =
        UpstreamConfig::from_json(&serde_json::json!({"protocol": "http"}), "config").expect("cfg");
    RouteSpec {
        host: None,
        path_prefix: prefix.into(),
        api_keys_prefix: None,
        jwt: None,
        cache: None,
        upstream: UpstreamSpec {
            name: name.into(),
            bind,
            source: Source::Static(vec![ep]),
            config,
        },
    }
}

fn gateway(bind: SocketAddr, routes: Vec<RouteSpec>) -> GatewaySpec {
    GatewaySpec {
        name: format!("gw-{}", bind.port()),
        bind,
        validation: Validation::default(),
        routes,
    }
}

async fn get(client: &Client<HttpConnector, Empty<Bytes>>, url: String) -> (u16, String) {
    let resp = client
        .request(Request::get(url).body(Empty::new()).expect("req"))
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One keep-alive request on `conn`; the body of a 200.
async fn on(conn: &mut TcpStream, path: &str) -> String {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).await.expect("read"), 1, "closed");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn a_reload_swaps_routes_in_place_and_moves_listeners() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let first = free().await;
    let spec = ProxySpec {
        proxy_id: "gw".into(),
        config_version: 1,
        agent: None,
        upstreams: Vec::new(),
        gateways: vec![gateway(first, vec![route("/", "site", first, a)])],
        admin_bind: None,
    };
    let mut proxy = Proxy::start(spec).await.expect("start");
    // One client connection, kept open across the reload.
    let mut conn = TcpStream::connect(first).await.expect("connect");
    assert_eq!(on(&mut conn, "/b/x").await, "a");
    let site = proxy.upstreams()[0].clone();

    // Same listener, one route added: "/" is unchanged and keeps its upstream state.
    proxy
        .reconfigure_gateways(
            vec![gateway(
                first,
                vec![route("/b/", "bee", first, b), route("/", "site", first, a)],
            )],
            2,
        )
        .await
        .expect("reload");
    assert_eq!(proxy.config_version(), 2);
    // The open connection sees the new routes: the listener never closed.
    assert_eq!(on(&mut conn, "/b/x").await, "b");
    assert_eq!(on(&mut conn, "/other").await, "a");
    let names: Vec<String> = proxy.upstreams().iter().map(|u| u.name.clone()).collect();
    assert_eq!(names, ["bee", "site"]);
    assert!(Arc::ptr_eq(&site, &proxy.upstreams()[1]));

    // The first listener dropped, a second one opened.
    let second = free().await;
    proxy
        .reconfigure_gateways(
            vec![gateway(second, vec![route("/", "site", second, b)])],
            3,
        )
        .await
        .expect("reload");
    assert_eq!(proxy.config_version(), 3);
    let fresh: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    assert_eq!(
        get(&fresh, format!("http://{second}/")).await,
        (200, "b".into())
    );
    assert!(TcpStream::connect(first).await.is_err());
    proxy.shutdown().await;
}
