//! The one error type at the crate's boundary.

use std::net::SocketAddr;

/// What went wrong while configuring or starting the proxy. Runtime failures of single
/// requests are answered on the wire (502/503/504/429) and counted, never returned here.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A configuration value is missing or malformed; `field` is its path
    /// (`upstreams[0].config.limits.max_connections`). Nothing was started.
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: String, reason: String },
    /// A listener could not bind its address. Listeners started before it were stopped.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ProxyError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ProxyError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
