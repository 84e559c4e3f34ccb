//! The full path of one request, waits included: the synchronous [`Responder`] plus the two
//! things it hands back (forwarding to the recursors, confirming a read with the leader).
//!
//! The responder and recursors are swapped whole when the configuration is reloaded; a
//! request in flight finishes with the settings it started with.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use arc_swap::ArcSwap;
use lotse_server::{Consistency, Server};

use crate::config::DnsConfig;
use crate::recursor::Recursor;
use crate::respond::{Responder, Step, Transport};
use crate::view::CatalogView;

/// What a configuration decides.
pub struct Settings {
    pub responder: Responder,
    pub recursor: Recursor,
}

impl Settings {
    pub fn new(cfg: DnsConfig, view: Arc<CatalogView>) -> Result<Settings, String> {
        let recursor = Recursor::new(
            cfg.recursors.clone(),
            cfg.recursor_strategy,
            cfg.recursor_timeout,
        );
        let confirm_reads = !cfg.allow_stale;
        Ok(Settings {
            responder: Responder::new(cfg, view, confirm_reads)?,
            recursor,
        })
    }
}

/// Everything a transport needs to answer a request.
pub struct Core {
    settings: ArcSwap<Settings>,
    view: Arc<CatalogView>,
    /// Confirms reads with the leader when `allow_stale` is off (None in tests).
    server: Option<Arc<Server>>,
}

impl Core {
    pub fn new(
        cfg: DnsConfig,
        view: Arc<CatalogView>,
        server: Option<Arc<Server>>,
    ) -> Result<Core, String> {
        Ok(Core {
            settings: ArcSwap::from_pointee(Settings::new(cfg, view.clone())?),
            view,
            server,
        })
    }

    /// The server's counters (None in tests).
    pub fn telemetry(&self) -> Option<&lotse_server::Telemetry> {
        self.server.as_deref().map(|s| &*s.telemetry)
    }

    /// Applies a reloaded configuration; the running one stays if it is refused.
    pub fn reload(&self, cfg: DnsConfig) -> Result<(), String> {
        let s = Settings::new(cfg, self.view.clone())?;
        self.settings.store(Arc::new(s));
        Ok(())
    }

    /// Answers what can be answered at once (timing it for the metrics); the settings used
    /// come along for [`Core::finish`].
    pub fn handle(&self, raw: &[u8], transport: Transport) -> (Arc<Settings>, Step) {
        let started = std::time::Instant::now();
        let settings = self.settings.load_full();
        let step = settings.responder.handle(raw, transport);
        if let (Step::Reply(_), Some(t)) = (&step, self.telemetry()) {
            t.record_dns_query(started.elapsed());
        }
        (settings, step)
    }

    /// The reply to `raw`, or None to send nothing.
    pub async fn respond(&self, raw: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let (settings, step) = self.handle(raw, transport);
        self.finish(&settings, step, raw, transport).await
    }

    /// Completes a [`Step`] that had to wait; `raw` is the request as it came (recursors get
    /// it unchanged, as Consul forwards it).
    pub async fn finish(
        &self,
        settings: &Settings,
        step: Step,
        raw: &[u8],
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let responder = &settings.responder;
        match step {
            Step::Reply(bytes) => Some(bytes),
            Step::Drop => None,
            Step::Recurse(req) => {
                let telemetry = self.telemetry();
                if let Some(t) = telemetry {
                    t.dns_recursed.fetch_add(1, Relaxed);
                }
                Some(
                    match settings.recursor.forward(&req, raw, transport).await {
                        Some(reply) => reply,
                        None => {
                            if let Some(t) = telemetry {
                                t.dns_recursor_failures.fetch_add(1, Relaxed);
                            }
                            responder.servfail(&req, transport, true)
                        }
                    },
                )
            }
            Step::Confirm(req) => {
                let confirmed = match &self.server {
                    Some(s) => s.check_consistency(Consistency::Default).await.is_ok(),
                    None => true,
                };
                Some(if confirmed {
                    responder.answer_confirmed(&req, transport)
                } else {
                    responder.servfail(&req, transport, false)
                })
            }
        }
    }
}
