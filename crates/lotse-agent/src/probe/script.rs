//! Script probe: Consul's `CheckMonitor` for `args` checks (Nagios plugin conventions).
//!
//! * The command runs without a shell (`args[0]` with `args[1..]`), stdin from `/dev/null`,
//!   stdout and stderr into *one* pipe, so their lines interleave as the script wrote them
//!   (Go does the same when both are the same writer).
//! * Exit 0 is passing, 1 warning, anything else (including death by signal) critical.
//! * Output keeps the last [`OUTPUT_LIMIT`] bytes; when more was written it reads
//!   `Captured 4096 of <total> bytes\n...\n<tail>`, as Consul prints it.
//! * The command runs in its own process group. On timeout the whole group is killed
//!   (`SIGKILL`, as Consul's `KillCommandSubtree`) and the result is critical with
//!   `Timed out (<timeout>) running check` plus, after a blank line, the output so far.
//!   If the probe future is dropped while the command runs, the group is killed too.
//!
//! Consul's older `script` field (a string run by `$SHELL -c`) is gone from Consul's
//! agent; callers pass `["sh", "-c", "..."]` instead.
//!
//! Like Consul, the run ends when the command has exited *and* its output pipe is closed: a
//! background child that keeps the pipe open keeps the check running until the timeout.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::AsyncReadExt as _;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use super::consul_text::{go_duration, io_error};
use super::tail::Tail;
use super::{effective_timeout, ProbeResult, DEFAULT_SCRIPT_TIMEOUT, OUTPUT_LIMIT};

/// Runs `args` and maps its exit code and output to a result.
pub async fn script(args: &[String], timeout: Duration) -> ProbeResult {
    let timeout = effective_timeout(timeout, DEFAULT_SCRIPT_TIMEOUT);
    let Some((program, rest)) = args.split_first() else {
        return ProbeResult::critical("need an executable to run");
    };
    let (mut child, output, group) = match start(program, rest) {
        Ok(started) => started,
        Err(e) => return ProbeResult::critical(e),
    };
    let mut group = group;
    let mut tail = Tail::new(OUTPUT_LIMIT);
    let finished = tokio::time::timeout(timeout, run(&mut child, output, &mut tail)).await;
    match finished {
        Err(_elapsed) => {
            group.kill();
            // SIGKILL cannot be ignored: the direct child is reaped at once.
            let _ = child.kill().await;
            group.disarm();
            let mut msg = format!("Timed out ({}) running check", go_duration(timeout));
            let out = captured(&tail);
            if !out.is_empty() {
                msg.push_str("\n\n");
                msg.push_str(&out);
            }
            ProbeResult::critical(msg)
        }
        Ok(Err(e)) => {
            group.kill();
            group.disarm();
            ProbeResult::critical(io_error(&e))
        }
        Ok(Ok(status)) => {
            group.disarm();
            classify(status, captured(&tail))
        }
    }
}

/// Spawns the command in a new process group with stdout and stderr on one pipe.
fn start(program: &str, args: &[String]) -> Result<(Child, pipe::Receiver, GroupGuard), String> {
    let pipe_error = |e: io::Error| format!("exec: output pipe: {}", io_error(&e));
    let (reader, writer) = io::pipe().map_err(pipe_error)?;
    let writer2 = writer.try_clone().map_err(pipe_error)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = command.spawn();
    // The command holds our copies of the pipe's write end: drop it, so the pipe reaches
    // end-of-file once the script and its children have closed theirs.
    drop(command);
    let child = spawned.map_err(|e| start_error(program, &e))?;
    let group = GroupGuard(child.id().and_then(|id| Pid::from_raw(id as i32)));
    let output = pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(pipe_error)?;
    Ok((child, output, group))
}

/// Collects output until end-of-file, then reaps the child.
async fn run(
    child: &mut Child,
    mut output: pipe::Receiver,
    tail: &mut Tail,
) -> io::Result<ExitStatus> {
    let mut buf = [0u8; 8192];
    loop {
        match output.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => tail.write(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(error = %e, "check output read failed");
                break;
            }
        }
    }
    child.wait().await
}

fn classify(status: ExitStatus, output: String) -> ProbeResult {
    match status.code() {
        Some(0) => ProbeResult::passing(output),
        Some(1) => ProbeResult::warning(output),
        _ => ProbeResult::critical(output),
    }
}

/// The output as Consul reports it, with its note when the front was dropped.
fn captured(tail: &Tail) -> String {
    if tail.truncated() {
        format!(
            "Captured {} of {} bytes\n...\n{}",
            tail.len(),
            tail.total(),
            tail.text()
        )
    } else {
        tail.text()
    }
}

/// Go's wording for a command that could not start.
fn start_error(program: &str, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound && !program.contains('/') {
        format!("exec: {program:?}: executable file not found in $PATH")
    } else {
        format!("fork/exec {program}: {}", io_error(e))
    }
}

/// Kills the command's process group when dropped while armed: a cancelled probe leaves no
/// script (nor its children) behind. Disarmed once the child is reaped, so a group id that
/// the kernel may hand out again is never signalled.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            // ESRCH (the group is already gone) is the only expected error.
            let _ = kill_process_group(pgid, Signal::KILL);
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
