//! The objects a key may be: a register (read, write, compare-and-set) or a mutex (acquire and
//! release by session, and the session's invalidation, which frees what it held). Both keep
//! their state as one optional string: the register's value, or the lock's holder (marked
//! when a lock-delay may be in force, see [`LOCK_DELAYED`]).

use serde::{Deserialize, Serialize};

/// A key's state: the register's value, or the session holding the lock.
pub type State = Option<String>;

/// Marks a lock on which a lock-delay may be in force: its holder was invalidated with a
/// delay. Until the delay ends, which is a matter of real time outside the model (and of
/// the servers' clocks, which may jump), any acquire may be refused, even by a session that
/// took the lock meanwhile; so once delayed, a lock keeps the mark. The mark only excuses
/// refusals: two holders at once are still an anomaly, and acquires inside a delay are
/// checked apart ([`super::lock_delay`]). The state is the mark followed by the holder's
/// session, if any. (No session ID or written value holds a NUL.)
pub const LOCK_DELAYED: &str = "\0lock-delay";

/// A lock's state, decoded: its holder, and whether a lock-delay may be in force.
fn lock_state(state: &State) -> (Option<&str>, bool) {
    match state.as_deref() {
        None => (None, false),
        Some(s) => match s.strip_prefix(LOCK_DELAYED) {
            Some("") => (None, true),
            Some(holder) => (Some(holder), true),
            None => (Some(s), false),
        },
    }
}

fn lock(holder: Option<&str>, delayed: bool) -> State {
    match (holder, delayed) {
        (None, false) => None,
        (Some(h), false) => Some(h.to_string()),
        (h, true) => Some(format!("{LOCK_DELAYED}{}", h.unwrap_or(""))),
    }
}

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
    /// The session was destroyed: a lock it held is free, though no other session may take it
    /// for the session's lock-delay. The delay is a real-time rule, checked apart from the
    /// order ([`super::lock_delay`]); for that, `held` records that the client knew its
    /// session held this lock when it asked (its last operation on the key was an acquire
    /// answered `true`), and `lock_delay_ms` the session's delay.
    Invalidate {
        session: String,
        #[serde(default)]
        held: bool,
        #[serde(default)]
        lock_delay_ms: u64,
    },
}

impl Call {
    pub(crate) fn is_read(&self) -> bool {
        matches!(self, Call::Read { .. })
    }

    /// Whether an answered operation carries its answer (a read's answer may be "absent").
    pub(crate) fn has_answer(&self) -> bool {
        match self {
            Call::Read { .. } | Call::Write { .. } | Call::Invalidate { .. } => true,
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
                let (holder, delayed) = lock_state(state);
                let free = holder.is_none_or(|h| h == session);
                if delayed && free && *result == Some(false) {
                    return Some(state.clone()); // refused by the delay
                }
                decide(free, *result, || lock(Some(session), delayed), state)
            }
            Call::Release { session, result } => {
                let (holder, delayed) = lock_state(state);
                let holds = holder == Some(session.as_str());
                decide(holds, *result, || lock(None, delayed), state)
            }
            Call::Invalidate {
                session,
                lock_delay_ms,
                ..
            } => {
                let (holder, delayed) = lock_state(state);
                Some(if holder == Some(session.as_str()) {
                    lock(None, delayed || *lock_delay_ms > 0)
                } else {
                    state.clone()
                })
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
