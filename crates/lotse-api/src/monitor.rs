//! `GET /v1/agent/monitor`: the agent's log, streamed to HTTP clients as Consul streams it.
//!
//! ```text
//!  tracing event ─► layer (per-layer filter: is anyone listening at this level?)
//!                     │ formats hclog text and/or JSON, only the formats someone asked for
//!                     ▼
//!                  LogHub: broadcast of 512 lines ─► one Subscription per monitor request
//!                                                      └► chunked body, one line per `\n`
//! ```
//!
//! The hub never makes the agent wait: a client that reads too slowly loses the lines it fell
//! behind on (the broadcast's lag), and is told how many, as Consul's monitor does. When nobody
//! listens, the layer's filter refuses every event, so nothing is formatted at all.

mod layer;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use lotse_server::{Access, Resource};
use tokio::sync::broadcast;

pub(crate) use layer::civil_from_days;
pub use layer::layer;

use crate::params::Params;
use crate::reply::{ApiError, ApiResult};
use crate::State;

/// Lines a subscriber may fall behind by before it loses the oldest (Consul's buffer size).
pub const BUFFER: usize = 512;

/// A log level as hclog names them, from the most to the least severe. The discriminant is
/// the verbosity (0 stands for "nobody listens" in the hub's atomics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    /// Consul's accepted names (`logging.ValidateLogLevel`), case-insensitive; hclog's `OFF`
    /// is not among them.
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_uppercase().as_str() {
            "TRACE" => Some(LogLevel::Trace),
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARN" => Some(LogLevel::Warn),
            "ERR" | "ERROR" => Some(LogLevel::Error),
            _ => None,
        }
    }

    pub fn of(level: &tracing::Level) -> LogLevel {
        match *level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::TRACE => LogLevel::Trace,
        }
    }

    fn verbosity(self) -> u8 {
        self as u8
    }
}

/// One log event, formatted in the formats someone was listening for when it happened.
#[derive(Debug)]
pub struct LogLine {
    pub level: LogLevel,
    /// hclog's text form, without the final newline.
    pub text: Option<String>,
    /// hclog's JSON form, without the final newline.
    pub json: Option<String>,
}

/// Listener counts per format (text, JSON) and verbosity (index 1..=5).
type Listeners = [[usize; 6]; 2];

/// Where the log layer publishes and monitor requests subscribe.
pub struct LogHub {
    lines: broadcast::Sender<Arc<LogLine>>,
    /// The most verbose level a text listener wants (0: none); read on every event.
    text_level: AtomicU8,
    /// The same for JSON listeners.
    json_level: AtomicU8,
    listeners: Mutex<Listeners>,
}

impl LogHub {
    pub fn new() -> Arc<LogHub> {
        Arc::new(LogHub {
            lines: broadcast::channel(BUFFER).0,
            text_level: AtomicU8::new(0),
            json_level: AtomicU8::new(0),
            listeners: Mutex::new([[0; 6]; 2]),
        })
    }

    /// Starts listening: lines at `level` or more severe, in JSON or hclog text.
    pub fn subscribe(self: &Arc<Self>, level: LogLevel, json: bool) -> Subscription {
        // Count the listener before taking the receiver: an event published in between is
        // formatted for nobody, never missing a format someone needs.
        self.count(level, json, true);
        Subscription {
            hub: self.clone(),
            rx: self.lines.subscribe(),
            level,
            json,
        }
    }

    /// Does anyone listen at `level`? (The layer's filter: false means the event is skipped
    /// before its fields are even visited.)
    pub fn enabled(&self, level: LogLevel) -> bool {
        let (text, json) = self.wants(level);
        text || json
    }

    /// Which formats `level` is wanted in.
    pub(crate) fn wants(&self, level: LogLevel) -> (bool, bool) {
        let v = level.verbosity();
        (
            v <= self.text_level.load(Ordering::Relaxed),
            v <= self.json_level.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn publish(&self, line: LogLine) {
        // An error only means every subscriber left meanwhile.
        let _ = self.lines.send(Arc::new(line));
    }

    fn count(&self, level: LogLevel, json: bool, add: bool) {
        let mut l = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let row = &mut l[usize::from(json)];
        let slot = &mut row[usize::from(level.verbosity())];
        *slot = if add {
            *slot + 1
        } else {
            slot.saturating_sub(1)
        };
        let most_verbose = (1..=5u8).rev().find(|&v| row[usize::from(v)] > 0);
        let target = if json {
            &self.json_level
        } else {
            &self.text_level
        };
        // Stored under the lock, so two subscribers changing at once cannot store stale maxima.
        target.store(most_verbose.unwrap_or(0), Ordering::Relaxed);
    }
}

/// One monitor request's view of the log. Dropping it stops the formatting it asked for.
pub struct Subscription {
    hub: Arc<LogHub>,
    rx: broadcast::Receiver<Arc<LogLine>>,
    level: LogLevel,
    json: bool,
}

/// Most lines gathered into one chunk of the response.
const LINES_PER_CHUNK: usize = 64;

impl Subscription {
    /// The next lines for this subscriber (each ending in `\n`), waiting for at least one.
    /// `None` when the hub is gone.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = String::new();
        let mut lines = 0;
        loop {
            let got = if lines == 0 {
                self.rx.recv().await
            } else {
                match self.rx.try_recv() {
                    Ok(l) => Ok(l),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Err(broadcast::error::RecvError::Lagged(n))
                    }
                    // Empty (or closed): send what we have.
                    Err(_) => break,
                }
            };
            match got {
                Ok(line) => {
                    if line.level > self.level {
                        continue;
                    }
                    let text = if self.json { &line.json } else { &line.text };
                    if let Some(t) = text {
                        out.push_str(t);
                        out.push('\n');
                        lines += 1;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Consul's note for a reader that fell behind its buffer.
                    out.push_str(&format!(
                        "Monitor dropped {n} logs during monitor request\n"
                    ));
                    lines += 1;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    if lines == 0 {
                        return None;
                    }
                    break;
                }
            }
            if lines >= LINES_PER_CHUNK {
                break;
            }
        }
        Some(Bytes::from(out))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.count(self.level, self.json, false);
    }
}

/// The response body: the subscription's lines until the client goes away.
fn stream_body(sub: Subscription) -> Body {
    let stream = futures_util::stream::unfold(sub, |mut sub| async move {
        let chunk = sub.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), sub))
    });
    Body::from_stream(stream)
}

/// `?loglevel` (default INFO) with Consul's 400 for a name it does not know.
fn level_param(params: &Params) -> Result<LogLevel, ApiError> {
    match params.get("loglevel").filter(|l| !l.is_empty()) {
        None => Ok(LogLevel::Info),
        Some(l) => LogLevel::parse(l)
            .ok_or_else(|| ApiError::bad_request(format!("Unknown log level: {l}"))),
    }
}

/// Starts a monitor on `hub` at `level`, in JSON with `?logjson` (any value).
pub fn monitor_response(hub: &Arc<LogHub>, level: LogLevel, params: &Params) -> ApiResult {
    let sub = hub.subscribe(level, params.has("logjson"));
    // Go's server sniffs an empty first write as plain text; Consul sends the headers at once.
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        stream_body(sub),
    )
        .into_response())
}

/// `GET /v1/agent/monitor?loglevel=&logjson`.
pub async fn monitor(AxState(state): AxState<State>, params: Params) -> ApiResult {
    state.authorize(params.token.as_deref(), Resource::Agent, Access::Read)?;
    let level = level_param(&params)?;
    monitor_response(&state.logs, level, &params)
}

impl std::fmt::Debug for LogHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHub")
            .field("text_level", &self.text_level.load(Ordering::Relaxed))
            .field("json_level", &self.json_level.load(Ordering::Relaxed))
            .finish()
    }
}
