//! `lotse-proxy`: the data plane of Lotse, a sidecar (ambassador) and an edge gateway.
//!
//! A service talks to `127.0.0.1:<local_bind_port>`; the proxy finds the healthy instances of
//! the destination service (blocking queries on the local agent), picks one, forwards, retries,
//! breaks circuits, limits and sheds load, and reports what happened.
//!
//! ```text
//!  agent /v1/health/service/X ──(discovery: blocking query)──▶ watch<EndpointSet>
//!                                                                  │ (live, no reconnects)
//!  client ─▶ listener 127.0.0.1:port ─▶ shed ─▶ rate limit ─▶ forward ─────┤
//!            (L7: hyper auto h1/h2c)     503     429         │ breakers (503 on overflow)
//!            (L4: tcp splice)                                │ balancer (rr / p2c / ring hash)
//!                                                            │ retries (budget, timeouts)
//!                                                            │ outlier detection (eject)
//!                                                            ▼
//!                                              connector (the TLS seam) ─▶ endpoint
//! ```
//!
//! Layout: the decisions are pure and run on an injected [`clock::Clock`]: [`balance`],
//! [`budget`], [`outlier`], [`ratelimit`], [`breaker`]. The I/O sits at the edge: [`connector`]
//! (outbound connections), [`l7`] and [`l4`] (listeners), [`discovery`] (the agent),
//! [`admin`] (metrics and state). [`upstream`] ties one upstream's state together;
//! [`gateway`] routes one edge listener to many upstreams by host and path (and is reloaded in
//! place); [`proxy`] starts everything from a [`ProxySpec`] and applies new ones.
#![forbid(unsafe_code)]

pub mod admin;
pub mod balance;
pub mod breaker;
pub mod budget;
pub mod clock;
pub mod config;
pub mod connector;
pub mod discovery;
pub mod endpoint;
mod error;
pub mod gateway;
pub mod l4;
pub mod l7;
pub mod metrics;
pub mod outlier;
pub mod proxy;
pub mod ratelimit;
pub mod trace;
pub mod upstream;

pub use config::{Protocol, UpstreamConfig};
pub use error::ProxyError;
pub use gateway::{GatewaySpec, RouteSpec};
pub use proxy::{AgentAddr, Proxy, ProxySpec, Source, UpstreamSpec};
