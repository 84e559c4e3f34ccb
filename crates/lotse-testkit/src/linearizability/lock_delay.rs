//! Lock-delay: after a session holding a lock is invalidated, no other session may take that
//! lock until the session's lock-delay has passed (Consul's guard against a client that does
//! not yet know it lost its lock). That is a rule about real time, which the order search
//! cannot see, so it is checked here on its own, and only where the history proves a breach:
//!
//! * the invalidation answered, and its client knew the session held the lock (`held`);
//! * another session's acquire of that lock answered `true`;
//! * that acquire was invoked after the invalidation's answer, so it certainly took effect
//!   after it;
//! * and it answered before the invalidation's invocation plus the delay (less `slack`).
//!
//! The delay starts when the invalidation takes effect, stamped by a server's clock no
//! earlier than its invocation; the acquire is stamped no later than its answer. So such an
//! acquire was admitted inside the delay. `slack` absorbs the stamps' millisecond rounding and
//! any gap between the clients' clock and the servers'.

use std::collections::BTreeMap;

use super::history::{Op, Outcome};
use super::model::Call;

/// An acquire the history proves was admitted during another session's lock-delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockDelayBreach {
    pub key: String,
    pub invalidate: Op,
    pub acquire: Op,
}

impl std::fmt::Display for LockDelayBreach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        let (Call::Invalidate { lock_delay_ms, .. }, Some(done)) =
            (&self.invalidate.call, self.acquire.complete)
        else {
            return write!(f, "{}: lock-delay breach", self.key);
        };
        write!(
            f,
            "{}: acquired {:.1} ms after the holder's invalidation was invoked, inside its {} ms \
             lock-delay\n  invalidate: {}\n  acquire:    {}",
            self.key,
            ms(done.saturating_sub(self.invalidate.invoke)),
            lock_delay_ms,
            serde_json::to_string(&self.invalidate).unwrap_or_default(),
            serde_json::to_string(&self.acquire).unwrap_or_default(),
        )
    }
}

/// Every breach of lock-delay the history proves, key by key.
pub fn check_lock_delays(
    by_key: &BTreeMap<String, Vec<Op>>,
    slack_ns: u64,
) -> Vec<LockDelayBreach> {
    let mut breaches = Vec::new();
    for (key, ops) in by_key {
        for inv in ops {
            let (
                Call::Invalidate {
                    session,
                    held: true,
                    lock_delay_ms,
                },
                Outcome::Ok,
                Some(answered),
            ) = (&inv.call, inv.outcome, inv.complete)
            else {
                continue;
            };
            let window_end = inv
                .invoke
                .saturating_add(lock_delay_ms.saturating_mul(1_000_000))
                .saturating_sub(slack_ns);
            for acq in ops {
                let Call::Acquire {
                    session: taker,
                    result: Some(true),
                } = &acq.call
                else {
                    continue;
                };
                let inside = acq.outcome == Outcome::Ok
                    && taker != session
                    && acq.invoke > answered
                    && acq.complete.is_some_and(|c| c < window_end);
                if inside {
                    breaches.push(LockDelayBreach {
                        key: key.clone(),
                        invalidate: inv.clone(),
                        acquire: acq.clone(),
                    });
                }
            }
        }
    }
    breaches
}
