//! Recorded operations, as the fault-injection driver writes them: one JSON object per line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Call;

/// What the client learned about an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The server answered; the answer is in the call.
    Ok,
    /// Certainly not applied (refused before it reached a server, or by a server that never
    /// proposed it). Dropped before checking.
    Fail,
    /// Unknown: timed out or the connection broke. It may take effect at any time after its
    /// invocation, even after the history ends.
    Info,
}

/// One operation on one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client (thread) that issued it; a client has one operation in flight at a time.
    pub process: u64,
    pub key: String,
    /// Monotonic nanoseconds, all from one clock.
    pub invoke: u64,
    /// When the answer arrived; `None` for an unknown outcome.
    #[serde(default)]
    pub complete: Option<u64>,
    pub outcome: Outcome,
    #[serde(flatten)]
    pub call: Call,
}

impl Op {
    /// The latest instant at which it may have taken effect.
    pub(crate) fn deadline(&self) -> u64 {
        match (self.outcome, self.complete) {
            (Outcome::Ok, Some(t)) => t,
            _ => u64::MAX,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history line {line}: {source}")]
    Parse {
        line: usize,
        source: serde_json::Error,
    },
    #[error("history line {line}: {reason}")]
    Invalid { line: usize, reason: String },
}

/// Reads a history (JSON lines) and splits it by key, keeping each key's operations in file
/// order. Operations that certainly did not happen, and reads whose answer never came, are
/// dropped: they constrain nothing.
pub fn load_history(text: &str) -> Result<BTreeMap<String, Vec<Op>>, HistoryError> {
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let op: Op =
            serde_json::from_str(raw).map_err(|source| HistoryError::Parse { line, source })?;
        if op.outcome == Outcome::Ok {
            match op.complete {
                Some(t) if t < op.invoke => {
                    return Err(HistoryError::Invalid {
                        line,
                        reason: format!("completed at {t}, before its invocation at {}", op.invoke),
                    })
                }
                None => {
                    return Err(HistoryError::Invalid {
                        line,
                        reason: "an ok operation needs its completion time".into(),
                    })
                }
                _ => {}
            }
            if !op.call.has_answer() {
                return Err(HistoryError::Invalid {
                    line,
                    reason: "an ok operation needs its result".into(),
                });
            }
        }
        let keep = match op.outcome {
            Outcome::Fail => false,
            Outcome::Info => !op.call.is_read(),
            Outcome::Ok => true,
        };
        if keep {
            by_key.entry(op.key.clone()).or_default().push(op);
        }
    }
    Ok(by_key)
}
