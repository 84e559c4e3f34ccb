//! A gateway listener while it runs, and how a reload changes it in place.
//!
//! The accept loop serves a [`Switch`]: the listener's current `Validate → Router` stack held
//! in a `watch`, read once per request. A reload builds the new stack and swaps it in; the
//! listener never closes, so no client sees a refused connection, and requests already
//! dispatched finish on the stack they started with. Routes whose spec did not change are
//! carried over with their upstream (endpoints, ejections, rate-limit buckets, cache); changed
//! or removed routes stop following the agent once they are out of the stack.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_layer::Layer;
use tower_service::Service;

use super::validate::{Validate, ValidateLayer};
use super::{apikeys, auth, cache, GatewaySpec, RouteSpec, RouteStack, Router};
use crate::l7::layers::BoxFuture;
use crate::l7::{self, ProxyBody};
use crate::proxy::Env;
use crate::upstream::Upstream;

/// The stack a gateway listener serves.
pub type GatewayStack = Validate<Router>;

/// Serves whatever stack is current.
#[derive(Clone)]
pub struct Switch {
    current: watch::Receiver<GatewayStack>,
}

impl Service<Request<Incoming>> for Switch {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ProxyBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let mut stack = self.current.borrow().clone();
        stack.call(req)
    }
}

/// One route with its own stop switch (its discovery and API-key tasks).
pub(crate) struct RunningRoute {
    spec: RouteSpec,
    pub up: Arc<Upstream>,
    stack: RouteStack,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningRoute {
    fn start(env: &Env, r: RouteSpec, bound: SocketAddr) -> RunningRoute {
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut u = r.upstream.clone();
        // Gateway routes are HTTP; `protocol` may still choose HTTP/2 to the upstream.
        if !u.config.protocol.is_l7() {
            u.config.protocol = crate::Protocol::Http;
        }
        let up = env.upstream(u, bound, &stop_rx, &mut tasks);
        let keys = match (&r.api_keys_prefix, &env.agent) {
            (Some(prefix), Some(agent)) => {
                let (tx, rx) = watch::channel(Arc::default());
                tasks.push(tokio::spawn(apikeys::follow(
                    agent.clone(),
                    prefix.clone(),
                    tx,
                    stop_rx.clone(),
                )));
                Some(rx)
            }
            // Keys required but no agent to read them from: nothing is let through.
            (Some(_), None) => Some(watch::channel(Arc::default()).1),
            (None, _) => None,
        };
        let cached = cache::Cache {
            inner: l7::stack(&up, env.client(&up)),
            store: r.cache.map(|c| Arc::new(Mutex::new(cache::Store::new(c)))),
            clock: env.clock.clone(),
            upstream: up.clone(),
        };
        let stack = auth::Auth {
            inner: cached,
            keys,
            jwt: r.jwt.clone().map(Arc::new),
            upstream: up.clone(),
        };
        RunningRoute {
            spec: r,
            up,
            stack,
            stop,
            tasks,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// One gateway listener.
pub(crate) struct RunningGateway {
    /// The address as configured (a reload finds the listener by it).
    pub configured: SocketAddr,
    pub bound: SocketAddr,
    pub routes: Vec<RunningRoute>,
    current: watch::Sender<GatewayStack>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn build(name: &str, g: &GatewaySpec, routes: &[RunningRoute]) -> GatewayStack {
    let stacks = routes
        .iter()
        .map(|r| (r.spec.clone(), r.up.clone(), r.stack.clone()))
        .collect();
    ValidateLayer::new(g.validation.clone()).layer(Router::new(name, stacks))
}

impl RunningGateway {
    pub fn start(env: &Env, g: GatewaySpec, listener: TcpListener) -> RunningGateway {
        let bound = listener.local_addr().unwrap_or(g.bind);
        let routes: Vec<RunningRoute> = g
            .routes
            .iter()
            .map(|r| RunningRoute::start(env, r.clone(), bound))
            .collect();
        let (current, rx) = watch::channel(build(&g.name, &g, &routes));
        let (stop, stop_rx) = watch::channel(false);
        tracing::info!(gateway = %g.name, listener = %bound, "gateway listening");
        let task = tokio::spawn(l7::serve_stack(
            listener,
            Switch { current: rx },
            None,
            g.name.clone(),
            stop_rx,
        ));
        RunningGateway {
            configured: g.bind,
            bound,
            routes,
            current,
            stop,
            task,
        }
    }

    /// Applies `g` (same listener address): unchanged routes are kept, the stack is swapped,
    /// then the routes left out are stopped.
    pub async fn update(&mut self, env: &Env, g: GatewaySpec) {
        let mut old: Vec<Option<RunningRoute>> = std::mem::take(&mut self.routes)
            .into_iter()
            .map(Some)
            .collect();
        let mut kept = 0;
        for r in &g.routes {
            let same = old
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| &o.spec == r));
            match same.and_then(|i| old[i].take()) {
                Some(running) => {
                    kept += 1;
                    self.routes.push(running);
                }
                None => self
                    .routes
                    .push(RunningRoute::start(env, r.clone(), self.bound)),
            }
        }
        self.current.send_replace(build(&g.name, &g, &self.routes));
        let stopped: Vec<RunningRoute> = old.into_iter().flatten().collect();
        tracing::info!(gateway = %g.name, listener = %self.bound, routes = self.routes.len(), kept, stopped = stopped.len(), "gateway updated");
        for r in stopped {
            r.stop().await;
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        for r in self.routes {
            r.stop().await;
        }
        tracing::info!(listener = %self.bound, "gateway stopped");
    }
}
