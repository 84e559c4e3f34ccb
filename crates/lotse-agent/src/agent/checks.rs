//! `/v1/agent/check/register`, `/deregister`, the TTL reports (`pass|warn|fail|update`), and
//! the results check runners record.

use std::sync::Arc;
use std::time::Duration;

use lotse_core::catalog::CheckStatus;
use tokio::time::Instant;

use super::{Agent, AgentError};
use crate::definition::decode::check_row;
use crate::definition::{CheckDefinition, CheckKind};
use crate::local::{later, Source};

impl Agent {
    pub async fn register_check(
        self: &Arc<Self>,
        def: CheckDefinition,
        source: Source,
    ) -> Result<(), AgentError> {
        self.allow_scripts(std::iter::once(&def), source)?;
        let edit = self.edit().await;
        let service = if def.service_id.is_empty() {
            None
        } else {
            Some(self.service(&def.service_id).ok_or_else(|| {
                AgentError::new(
                    404,
                    format!("ServiceID {:?} does not exist", def.service_id),
                )
            })?)
        };
        let row = check_row(&def, self.node_name(), service.as_ref());
        if source == Source::Remote {
            self.persisted(|p| p.save_check(&row, Some(&def)))?;
        }
        let now = Instant::now();
        let id = def.id.clone();
        self.change(|s| {
            s.add_check(row, Some(def), source, now);
            ((), true)
        });
        self.sync_runners_of([id.as_str()]);
        drop(edit);
        self.sync_soon().await;
        Ok(())
    }

    pub async fn deregister_check(&self, id: &str) -> Result<(), AgentError> {
        let edit = self.edit().await;
        if !self.change(|s| {
            let ok = s.remove_check(id);
            (ok, ok)
        }) {
            return Err(AgentError::unknown_check(id));
        }
        self.unpersist(|p| p.remove_check(id));
        self.stop_runners_of([id]);
        drop(edit);
        self.sync_soon().await;
        Ok(())
    }

    /// `/v1/agent/check/pass|warn|fail|update`: a TTL check's report. The result and the new
    /// deadline are set together, under the lock the TTL runner expires the check under.
    pub async fn ttl_update(
        &self,
        id: &str,
        status: CheckStatus,
        output: &str,
    ) -> Result<(), AgentError> {
        let now = Instant::now();
        self.change(|s| {
            let limit = match s.checks().get(id).map(|c| &c.def) {
                None => return (Err(AgentError::unknown_check(id)), false),
                Some(Some(d)) if d.kind == CheckKind::Ttl => d.output_max_size,
                Some(_) => {
                    let message = format!("CheckID {id:?} does not have associated TTL");
                    return (Err(AgentError::new(500, message)), false);
                }
            };
            let output = truncate_output(output, limit);
            let changed = s.ttl_report(id, status, output, now).unwrap_or(false);
            (Ok(()), changed)
        })?;
        // The runner sleeps until the old deadline: it looks again and sleeps until the new one.
        if let Some(r) = self.runners().get(id) {
            r.wake();
        }
        // A TTL report is the check's result: it syncs at once.
        self.sync_soon().await;
        Ok(())
    }

    /// Stores a result of registration `registration` of check `id` (a runner's report);
    /// output-only changes may wait for `check_update_interval`.
    pub(crate) fn record_result(
        &self,
        id: &str,
        registration: u64,
        status: CheckStatus,
        output: String,
        defer: bool,
    ) {
        let now = Instant::now();
        let defer_until = defer
            .then(|| deferral(self.options.check_update_interval, rand::random::<f64>()))
            .flatten()
            .map(|wait| later(now, wait));
        self.change(|s| {
            let changed = s.update_check(id, Some(registration), status, output, defer_until, now);
            ((), changed)
        });
    }
}

/// How long an output-only change waits: Consul's `interval/2 + RandomStagger(interval)`,
/// with `jitter` in `[0, 1)`; None when `check_update_interval` is 0 (never waits).
fn deferral(interval: Duration, jitter: f64) -> Option<Duration> {
    if interval.is_zero() {
        return None;
    }
    let stagger = Duration::try_from_secs_f64(interval.as_secs_f64() * jitter).unwrap_or(interval);
    Some((interval / 2).saturating_add(stagger))
}

/// Output longer than `limit` keeps its start and says how much there was (Consul's form).
pub(crate) fn truncate_output(output: &str, limit: usize) -> String {
    if limit == 0 || output.len() <= limit {
        return output.to_string();
    }
    let mut end = limit;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{} ... (captured {} of {} bytes)",
        &output[..end],
        limit,
        output.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_output_is_cut_on_a_character_boundary() {
        assert_eq!(truncate_output("short", 10), "short");
        assert_eq!(truncate_output("anything", 0), "anything");
        // 'é' is two bytes: a cut inside it backs off to the character's start.
        assert_eq!(truncate_output("aé", 2), "a ... (captured 2 of 3 bytes)");
        assert_eq!(truncate_output("éé", 1), " ... (captured 1 of 4 bytes)");
    }

    #[test]
    fn output_waits_between_half_and_one_and_a_half_intervals() {
        let i = Duration::from_secs(300);
        assert_eq!(deferral(Duration::ZERO, 0.5), None);
        assert_eq!(deferral(i, 0.0), Some(Duration::from_secs(150)));
        assert_eq!(deferral(i, 0.5), Some(Duration::from_secs(300)));
        assert!(deferral(i, 0.999).is_some_and(|d| d < Duration::from_secs(450)));
        // A configured interval of centuries does not overflow.
        assert!(deferral(Duration::MAX, 0.999_999_999).is_some());
    }
}
