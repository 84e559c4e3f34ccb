//! Group commit at the proposal level.
//!
//! openraft 0.9 appends one client write at a time and waits for its fsync before it takes the
//! next, so concurrent writes would each pay a full fsync. Instead every write goes through this
//! batcher: it takes all proposals waiting in its queue, proposes them as one
//! `Command::Batch` log entry, and hands each caller its own outcome. While one batch is being
//! made durable the next one gathers, so under load one fsync covers every write that arrived
//! meanwhile; alone, a write goes through at once and pays only its own fsync.
//!
//! Commands in a batch share the log index: their `ModifyIndex` is the index of the entry that
//! made them durable. Indexes stay monotonic and every state a reader can see has its own index,
//! which is what blocking queries and CAS rely on.

use std::sync::Arc;

use lotse_consensus::LotseRaft;
use lotse_core::{Command, Outcome};
use tokio::sync::{mpsc, oneshot};

use crate::openraft_error::classify_write;
use crate::telemetry::Telemetry;
use crate::ServerError;

/// At most this many commands per log entry...
const MAX_BATCH: usize = 1024;
/// ...and about this many bytes.
const MAX_BATCH_BYTES: usize = 4 << 20;

pub(crate) type Reply = oneshot::Sender<Result<(u64, Outcome), ServerError>>;

pub(crate) struct Proposal {
    pub(crate) cmd: Command,
    pub(crate) reply: Reply,
}

pub(crate) fn spawn(raft: LotseRaft, telemetry: Arc<Telemetry>) -> mpsc::UnboundedSender<Proposal> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(raft, rx, telemetry));
    tx
}

async fn run(
    raft: LotseRaft,
    mut rx: mpsc::UnboundedReceiver<Proposal>,
    telemetry: Arc<Telemetry>,
) {
    let mut pending: Option<Proposal> = None;
    loop {
        let first = match pending.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.cmd.approx_size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.cmd.approx_size();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        // A proposal that would overflow the byte budget waits for the next round.
        if batch.len() > 1 && bytes > MAX_BATCH_BYTES {
            pending = batch.pop();
        }
        // A caller that stopped waiting (its hold timeout passed while an earlier batch could
        // not commit) was told the write failed and may have retried elsewhere: proposing its
        // command now would apply it behind its back.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        telemetry.record_batch(batch.len());
        if batch.len() == 1 {
            let Some(p) = batch.pop() else { continue };
            let kind = p.cmd.kind();
            let res = raft.client_write(p.cmd).await;
            telemetry.record_apply(kind, started.elapsed());
            let _ = p.reply.send(match res {
                Ok(r) => settle(r.log_id.index, r.data),
                Err(e) => Err(classify_write(&e)),
            });
            continue;
        }
        let (cmds, replies): (Vec<Command>, Vec<(Reply, &'static str)>) = batch
            .into_iter()
            .map(|p| {
                let kind = p.cmd.kind();
                (p.cmd, (p.reply, kind))
            })
            .unzip();
        let res = raft.client_write(Command::Batch(cmds)).await;
        let elapsed = started.elapsed();
        match res {
            Ok(r) => {
                let index = r.log_id.index;
                let outcomes = match r.data {
                    Outcome::Batch(o) if o.len() == replies.len() => o,
                    other => {
                        let e = ServerError::Raft(format!("batch answered with {other:?}"));
                        for (reply, _) in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                        continue;
                    }
                };
                for ((reply, kind), outcome) in replies.into_iter().zip(outcomes) {
                    telemetry.record_apply(kind, elapsed);
                    let _ = reply.send(settle(index, outcome));
                }
            }
            Err(e) => {
                let e = classify_write(&e);
                for (reply, _) in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// A refused command is an error for its caller; anything else is its outcome.
fn settle(index: u64, outcome: Outcome) -> Result<(u64, Outcome), ServerError> {
    match outcome {
        Outcome::Rejected(e) => Err(ServerError::Rejected(e)),
        other => Ok((index, other)),
    }
}
