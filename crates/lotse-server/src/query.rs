//! Consistency modes and blocking queries.
//!
//! A blocking query (`?index=N&wait=D`) registers on the [`WatchHub`](crate::WatchHub) for the
//! keys its answer depends on *before* reading, then reads; if the answer's index is not newer
//! than `N` it sleeps until a watched key changes or the wait (plus up to wait/16 of jitter,
//! so that many clients do not return in lockstep) runs out.

use std::time::Duration;

use lotse_core::{Store, WatchKey};
use rand::Rng;

use crate::{Server, ServerError};

/// Consul's default and maximum blocking wait.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
pub const MAX_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Served by the leader (Consul's default mode).
    #[default]
    Default,
    /// The leader confirms its leadership with a quorum first.
    Consistent,
    /// Any server answers from its own copy.
    Stale,
}

impl Consistency {
    /// The value of `X-Consul-Effective-Consistency`.
    pub fn header_value(self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Consistent => "consistent",
            Consistency::Stale => "stale",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub consistency: Consistency,
    /// Block until the answer's index is greater than this (0: do not block).
    pub min_index: u64,
    /// How long to block at most (`None`: the default, 5 minutes).
    pub wait: Option<Duration>,
    pub token: Option<String>,
}

/// What the response headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryMeta {
    pub index: u64,
    pub known_leader: bool,
    pub last_contact_ms: u64,
    pub consistency: Consistency,
}

impl Server {
    /// Answers `f` once its index is newer than `opts.min_index`, or when the wait runs out.
    /// `watch` names everything `f` reads; `f` returns the index its answer depends on.
    pub async fn blocking_read<T>(
        &self,
        opts: &QueryOptions,
        watch: &[WatchKey],
        f: impl Fn(&Store) -> (u64, T),
    ) -> Result<(QueryMeta, T), ServerError> {
        self.check_consistency(opts.consistency).await?;
        let mut meta = self.query_meta(opts.consistency);
        if opts.min_index == 0 {
            let (index, value) = self.peek(&f);
            meta.index = index.max(1);
            return Ok((meta, value));
        }
        // As Consul: no wait, or a zero one, means the default.
        let wait = opts
            .wait
            .filter(|w| !w.is_zero())
            .unwrap_or(DEFAULT_WAIT)
            .min(MAX_WAIT);
        let jitter_ms = (wait.as_millis() / 16) as u64;
        let jitter = if jitter_ms > 0 {
            Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + wait + jitter;
        loop {
            let w = self.hub().watch(watch);
            let (index, value) = self.peek(&f);
            if index > opts.min_index
                || tokio::time::Instant::now() >= deadline
                || self.is_shutting_down()
            {
                meta.index = index.max(1);
                return Ok((meta, value));
            }
            // Not holding the answer while parked: a health query of a large service holds
            // megabytes, times every parked watcher (measured: 2 MB per parked query at 1,000
            // instances, bench/catalog).
            drop(value);
            if tokio::time::timeout_at(deadline, w.changed())
                .await
                .is_err()
            {
                drop(w);
                let (index, value) = self.peek(&f);
                meta.index = index.max(1);
                return Ok((meta, value));
            }
        }
    }
}
