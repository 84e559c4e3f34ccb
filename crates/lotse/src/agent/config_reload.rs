//! Reloading the configuration (SIGHUP and `PUT /v1/agent/reload`): every source is read
//! again, then what can change at run time is applied: the service and check definitions,
//! the DNS settings (`dns_config`, `recursors`, `domain`, `alt_domain`), the request rate
//! limits (`limits.request_limits`), then the log level. A configuration that does not load,
//! or definitions the agent refuses,
//! leave the running configuration as it was (and the error is logged and returned).

use std::sync::Arc;

use lotse_agent::Agent;
use lotse_api::request_limits::RequestLimiter;
use lotse_api::ReloadHook;

use super::{definitions, filter_for, FilterHandle};
use crate::config;

pub struct Reloader {
    /// What followed `lotse agent`: the same flags, files and directories are read again.
    args: Vec<String>,
    filter: FilterHandle,
    agent: Arc<Agent>,
    /// The running DNS interface's settings, if it runs.
    dns: Option<lotse_dns::DnsReloader>,
    /// The server's request rate limiter (unused on a client agent).
    request_limits: Arc<RequestLimiter>,
    /// One reload at a time, so that a SIGHUP and a `PUT /v1/agent/reload` arriving together
    /// do not interleave their definition swaps.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        args: Vec<String>,
        filter: FilterHandle,
        agent: Arc<Agent>,
        dns: Option<lotse_dns::DnsReloader>,
        request_limits: Arc<RequestLimiter>,
    ) -> Arc<Reloader> {
        Arc::new(Reloader {
            args,
            filter,
            agent,
            dns,
            request_limits,
            one_at_a_time: tokio::sync::Mutex::new(()),
        })
    }

    /// The hook the HTTP API calls for `PUT /v1/agent/reload`.
    pub fn hook(self: &Arc<Self>) -> ReloadHook {
        let this = self.clone();
        Arc::new(move || {
            let this = this.clone();
            Box::pin(async move { this.reload().await })
        })
    }

    /// Reloads; a failure is logged here (SIGHUP has no one else to tell) and returned.
    pub async fn reload(&self) -> Result<(), String> {
        let _guard = self.one_at_a_time.lock().await;
        let result = self.apply().await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
        }
        result
    }

    async fn apply(&self) -> Result<(), String> {
        let loaded = config::reload(&self.args).map_err(|e| e.to_string())?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        if let Some(dns) = &self.dns {
            // The listeners (ports, addresses) stay; what they answer follows the new config.
            // First, because it can only refuse a domain that is no DNS name, and then
            // nothing else has changed yet.
            dns.reload(loaded.config.dns.clone())
                .map_err(|e| e.to_string())?;
        }
        definitions::register(&self.agent, &loaded.config).await?;
        self.request_limits
            .update(loaded.config.limits.request_limits);
        let level = &loaded.config.log_level;
        match self.filter.reload(filter_for(level)) {
            Ok(()) => tracing::info!(log_level = %level, "configuration reloaded"),
            // Not worth failing the reload over: the definitions are in place.
            Err(e) => tracing::warn!(error = %e, "cannot apply the new log level"),
        }
        Ok(())
    }
}
