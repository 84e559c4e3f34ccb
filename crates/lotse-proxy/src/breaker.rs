//! Circuit breaking and load shedding: limits that answer at once instead of queueing without
//! end.
//!
//! * [`Gate`]: a counter with a ceiling (concurrent requests, requests in flight on a listener).
//!   Entering past the ceiling fails immediately; the caller answers 503.
//! * [`ConnectionLimit`]: at most `max_connections` open upstream connections; a new one waits
//!   for a free slot (a *pending* request) unless `max_pending_requests` are already waiting,
//!   in which case it fails at once (overflow).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A concurrency ceiling.
#[derive(Debug)]
pub struct Gate {
    limit: u32,
    count: AtomicU32,
}

/// One unit inside a [`Gate`], given back on drop.
#[derive(Debug)]
pub struct GatePermit {
    gate: Arc<Gate>,
}

impl Gate {
    pub fn new(limit: u32) -> Arc<Gate> {
        Arc::new(Gate {
            limit,
            count: AtomicU32::new(0),
        })
    }

    /// Enters, or `None` when the gate is full.
    pub fn try_enter(self: &Arc<Self>) -> Option<GatePermit> {
        let before = self.count.fetch_add(1, Ordering::AcqRel);
        if before >= self.limit {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(GatePermit { gate: self.clone() })
    }

    pub fn current(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.gate.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionDenied {
    /// `max_pending_requests` were already waiting.
    Overflow,
    /// No connection slot came free within the connect timeout.
    Timeout,
}

/// The ceiling on upstream connections of one upstream, with its pending queue.
#[derive(Debug)]
pub struct ConnectionLimit {
    slots: Arc<Semaphore>,
    pending: Arc<Gate>,
}

impl ConnectionLimit {
    pub fn new(max_connections: u32, max_pending: u32) -> Self {
        ConnectionLimit {
            slots: Arc::new(Semaphore::new(max_connections as usize)),
            pending: Gate::new(max_pending),
        }
    }

    /// A slot for one connection, held for the connection's life.
    pub async fn acquire(&self, wait: Duration) -> Result<OwnedSemaphorePermit, ConnectionDenied> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let _pending = self.pending.try_enter().ok_or(ConnectionDenied::Overflow)?;
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            // The semaphore is never closed; treat it as a timeout all the same.
            Ok(Err(_)) | Err(_) => Err(ConnectionDenied::Timeout),
        }
    }

    /// Slots free now (a connection being opened already holds one).
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    pub fn pending(&self) -> u32 {
        self.pending.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_refuses_past_its_limit_and_frees_on_drop() {
        let g = Gate::new(2);
        let a = g.try_enter().expect("first");
        let _b = g.try_enter().expect("second");
        assert!(g.try_enter().is_none());
        assert_eq!(g.current(), 2);
        drop(a);
        assert!(g.try_enter().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn connections_wait_then_overflow() {
        let limit = Arc::new(ConnectionLimit::new(1, 1));
        let held = limit.acquire(Duration::from_secs(1)).await.expect("slot");
        // One waits (pending) ...
        let l2 = limit.clone();
        let waiter = tokio::spawn(async move { l2.acquire(Duration::from_secs(5)).await.is_ok() });
        tokio::task::yield_now().await;
        assert_eq!(limit.pending(), 1);
        // ... a second would be the second pending: overflow at once.
        assert_eq!(
            limit.acquire(Duration::from_secs(5)).await.err(),
            Some(ConnectionDenied::Overflow)
        );
        drop(held);
        assert!(waiter.await.expect("join"));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_slot_times_out() {
        let limit = ConnectionLimit::new(1, 5);
        let _held = limit.acquire(Duration::from_secs(1)).await.expect("slot");
        assert_eq!(
            limit.acquire(Duration::from_millis(100)).await.err(),
            Some(ConnectionDenied::Timeout)
        );
    }
}
