//! The objects a key may be: a register (read, write, compare-and-set) or a mutex (acquire and
//! release by session). Both keep their state as one optional string: the register's value or
//! the lock holder's session.

use serde::{Deserialize, Serialize};

/// A key's state: the register's value, or the session holding the lock.
pub type State = Option<String>;

/// An operation's input and, where the client learned it, its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Call {
    /// A read that returned `value` (`None`: the key did not exist).
    Read {
        #[serde(default)]
        value: Option<String>,
        /// How it was read (`default`, `consistent`, ...): carried into reports, not checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
    },
    Write {
        value: String,
    },
    /// Sets `value` if the register holds `expect`. (Consul compares modify indexes; with
    /// unique written values, "index unchanged since the read of `expect`" is the same test.)
    Cas {
        expect: String,
        value: String,
        #[serde(default)]
        result: Option<bool>,
    },
    Acquire {
        session: String,
        #[serde(default)]
        result: Option<bool>,
    },
    Release {
        session: String,
        #[serde(default)]
        result: Option<bool>,
    },
}

impl Call {
    pub(crate) fn is_read(&self) -> bool {
        matches!(self, Call::Read { .. })
    }

    /// Whether an answered operation carries its answer (a read's answer may be "absent").
    pub(crate) fn has_answer(&self) -> bool {
        match self {
            Call::Read { .. } | Call::Write { .. } => true,
            Call::Cas { result, .. }
            | Call::Acquire { result, .. }
            | Call::Release { result, .. } => result.is_some(),
        }
    }

    /// The state after this operation takes effect in `state`, or `None` if its answer is
    /// impossible there. An operation whose answer is unknown does what the model says it
    /// would: the search tries every instant, including after the history's end.
    pub fn step(&self, state: &State) -> Option<State> {
        match self {
            Call::Read { value, .. } => (value == state).then(|| state.clone()),
            Call::Write { value } => Some(Some(value.clone())),
            Call::Cas {
                expect,
                value,
                result,
            } => {
                let holds = state.as_deref() == Some(expect.as_str());
                decide(holds, *result, || Some(value.clone()), state)
            }
            Call::Acquire { session, result } => {
                let free = state.as_ref().is_none_or(|h| h == session);
                decide(free, *result, || Some(session.clone()), state)
            }
            Call::Release { session, result } => {
                let holds = state.as_deref() == Some(session.as_str());
                decide(holds, *result, || None, state)
            }
        }
    }
}

/// A conditional operation: it succeeds exactly when `applies`; a known answer must agree.
fn decide(
    applies: bool,
    answer: Option<bool>,
    after: impl FnOnce() -> State,
    state: &State,
) -> Option<State> {
    if answer.is_some_and(|a| a != applies) {
        return None;
    }
    Some(if applies { after() } else { state.clone() })
}
