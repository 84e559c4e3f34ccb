//! `lotse lock [options] PREFIX CHILD...`, like `consul lock`: hold a lock in the KV store
//! (`PREFIX/.lock`, acquired with a session) while a child process runs.
//!
//! The flow follows consul's `api.Lock` and `command/lock`:
//! 1. create a session (TTL 15s, behavior release) and renew it every TTL/2;
//! 2. read `PREFIX/.lock`; while another session holds it, wait with blocking queries
//!    (`?index=`); when free, `PUT ?acquire=SESSION&flags=<lock flag>`; if that fails without a
//!    holder (lock-delay), retry after 5s. `-timeout` bounds the whole wait;
//! 3. run the child (through `$SHELL -c` or `/bin/sh -c` unless `-shell=false`) with
//!    `CONSUL_LOCK_HELD=true`, forwarding SIGINT/SIGTERM to it, while a monitor watches the key;
//! 4. when the child exits, or the lock is lost, or we are told to stop (the child then gets
//!    SIGTERM, and SIGKILL after 5s), release the key, destroy the session and delete the key if
//!    nobody else holds it.
//!
//! Exit code: 0, or with `-child-exit-code` 2 if the child failed (consul's behavior); 1 when
//! the lock could not be set up or acquired. With `-n` > 1 a semaphore is used instead
//! (see [`super::semaphore`]).

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser};

use super::flags::{self, parse_bool, HttpFlags};
use super::http::{Client, Query};
use super::kv::{go_path_join, LOCK_FLAG_VALUE};
use super::semaphore;

pub const SYNOPSIS: &str = "Execute a command holding a lock";

/// How long a child gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Session TTL of the lock's session.
const SESSION_TTL: Duration = Duration::from_secs(15);
/// How long one blocking query waits while the lock is held by someone else.
const LOCK_WAIT: Duration = Duration::from_secs(15);
/// Pause after a failed acquisition without a holder (lock-delay in effect).
const LOCK_RETRY: Duration = Duration::from_secs(5);
/// Pause between monitor retries after server errors.
const MONITOR_RETRY_TIME: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(name = "lock")]
struct LockArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Exit 2 if the child process exited with an error if this is true, otherwise this
    /// doesn't propagate an error from the child. The default value is false.
    #[arg(long = "child-exit-code", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    child_exit_code: bool,
    /// Optional limit on the number of concurrent lock holders. The underlying implementation
    /// switches from a lock to a semaphore when the value is greater than 1. The default value
    /// is 1.
    #[arg(
        long = "n",
        default_value_t = 1,
        value_name = "int",
        allow_negative_numbers = true
    )]
    limit: i64,
    /// Number of times to retry if Lotse returns a 500 error while monitoring the lock. This
    /// allows riding out brief periods of unavailability without causing leader elections, but
    /// increases the amount of time required to detect a lost lock in some cases. The default
    /// value is 3, with a 1s wait between retries. Set this value to 0 to disable retires.
    #[arg(
        long = "monitor-retry",
        default_value_t = 3,
        value_name = "int",
        allow_negative_numbers = true
    )]
    monitor_retry: i64,
    /// Optional name to associate with the lock session. It not provided, one is generated
    /// based on the provided child command.
    #[arg(long, default_value = "", value_name = "string")]
    name: String,
    /// Pass stdin to the child process.
    #[arg(long = "pass-stdin", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pass_stdin: bool,
    /// Use a shell to run the command (can set a custom shell via the SHELL environment
    /// variable).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    shell: bool,
    /// Maximum amount of time to wait to acquire the lock, specified as a duration like "1s" or
    /// "3h". The default value is 0.
    #[arg(long, default_value = "0", value_name = "duration", value_parser = flags::go_duration_value,
          allow_hyphen_values = true)]
    timeout: i128,
    /// DEPRECATED. Use -timeout instead.
    #[arg(long = "try", default_value = "0", value_name = "duration", value_parser = flags::go_duration_value,
          allow_hyphen_values = true)]
    r#try: i128,
    /// Enable verbose (debugging) output.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    verbose: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<LockArgs>(
        "Usage: lotse lock [options] prefix child...

  Acquires a lock or semaphore at a given path, and invokes a child process
  when successful. The child process can assume the lock is held while it
  executes. If the lock is lost or communication is disrupted the child
  process will be sent a SIGTERM signal and given time to gracefully exit.
  After the grace period expires the process will be hard terminated.

  When -n=1, only a single lock holder or leader exists providing mutual
  exclusion. Setting a higher value switches to a semaphore allowing multiple
  holders to coordinate.

  The prefix provided must have write privileges.",
    )
}

/// Something the main loop reacts to.
#[derive(Debug)]
enum Event {
    Signal(&'static str),
    Acquired(Result<bool, String>),
    ChildExited(Result<ExitStatus, String>),
    LockLost,
}

fn verbose(on: bool, msg: &str) {
    if on {
        println!("{msg}");
    }
}

/// The session name consul derives when `-name` is not given.
pub fn default_session_name(child: &[String], prefix: &str) -> String {
    format!("Lotse lock for '{}' at '{}'", child.join(" "), prefix)
}

/// The key of the lock: `PREFIX/.lock`, joined like Go's `path.Join`.
pub fn lock_key(prefix: &str) -> String {
    go_path_join(&[prefix, ".lock"])
}

/// How Go prints an `*exec.ExitError`: `exit status N` or `signal: NAME`.
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => format!("signal: {}", signal_name(sig)),
        None => "unknown exit status".into(),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        3 => "quit".into(),
        6 => "aborted".into(),
        9 => "killed".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        n => format!("signal {n}"),
    }
}

/// Sends a signal to a process with the system's `kill` (the crate forbids unsafe code, so no
/// direct syscall).
fn send_signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid} failed"))
    }
}

/// Delivers SIGINT/SIGTERM received by this process as events. Returns once the handlers are
/// installed, so no signal can slip by with its default action.
fn listen_for_signals(tx: Sender<Event>) {
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(_) => {
                let _ = ready_tx.send(());
                return;
            }
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let int = signal(SignalKind::interrupt());
            let term = signal(SignalKind::terminate());
            let _ = ready_tx.send(());
            let (Ok(mut int), Ok(mut term)) = (int, term) else {
                return;
            };
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "INT",
                    _ = term.recv() => "TERM",
                };
                if tx.send(Event::Signal(name)).is_err() {
                    return;
                }
            }
        });
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
}

/// Renews the session every TTL/2 until told to stop (or the session is gone).
fn spawn_renewer(client: Client, session: String, stop: Receiver<()>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut last_ok = Instant::now();
        let mut wait = SESSION_TTL / 2;
        loop {
            match stop.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            match client.session_renew(&session) {
                Ok(true) => {
                    last_ok = Instant::now();
                    wait = SESSION_TTL / 2;
                }
                Ok(false) => return,
                Err(_) => {
                    if last_ok.elapsed() >= SESSION_TTL {
                        return;
                    }
                    wait = Duration::from_secs(1);
                }
            }
        }
    })
}

/// A lock (`-n=1`) or a semaphore (`-n` > 1) at a prefix.
#[derive(Debug, Clone)]
enum Mode {
    Lock { key: String },
    Semaphore { prefix: String, limit: i64 },
}

impl Mode {
    fn acquire(
        &self,
        client: &Client,
        session: &str,
        timeout: Option<Duration>,
    ) -> Result<bool, String> {
        match self {
            Mode::Lock { key } => acquire_lock(client, key, session, timeout),
            Mode::Semaphore { prefix, limit } => {
                semaphore::acquire(client, prefix, *limit, session, timeout)
            }
        }
    }

    /// Whether `session` still holds the lock or its slot, and the index to block on next.
    fn holds(
        &self,
        client: &Client,
        session: &str,
        q: Query,
    ) -> Result<(bool, u64), super::http::ApiError> {
        match self {
            Mode::Lock { key } => client
                .kv_get(key, q)
                .map(|(pair, index)| (pair.is_some_and(|p| p.session_id() == session), index)),
            Mode::Semaphore { prefix, limit } => {
                semaphore::holds(client, prefix, *limit, session, q)
            }
        }
    }

    fn release(&self, client: &Client, session: &str) -> Result<(), String> {
        match self {
            Mode::Lock { key } => client
                .kv_put(
                    key,
                    b"",
                    Query::write()
                        .param("flags", LOCK_FLAG_VALUE)
                        .param("release", session),
                )
                .map(|_| ())
                .map_err(|e| format!("failed to release lock: {e}")),
            Mode::Semaphore { prefix, limit } => {
                semaphore::release(client, prefix, *limit, session)
            }
        }
    }

    /// Removes the coordination key unless it is in use; `Ok(false)`: in use.
    fn destroy(&self, client: &Client) -> Result<bool, String> {
        match self {
            Mode::Lock { key } => destroy_lock(client, key),
            Mode::Semaphore { prefix, limit } => semaphore::destroy(client, prefix, *limit),
        }
    }

    fn session_behavior(&self) -> &'static str {
        match self {
            Mode::Lock { .. } => "release",
            Mode::Semaphore { .. } => "delete",
        }
    }
}

/// The acquisition loop of consul's `Lock.Lock`. `Ok(true)`: held; `Ok(false)`: timed out.
fn acquire_lock(
    client: &Client,
    key: &str,
    session: &str,
    timeout: Option<Duration>,
) -> Result<bool, String> {
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut wait_index: Option<u64> = None;
    loop {
        let mut wait_time = LOCK_WAIT;
        if let Some(limit) = timeout {
            if attempts > 0 {
                let elapsed = start.elapsed();
                if elapsed > limit {
                    return Ok(false);
                }
                wait_time = limit - elapsed;
            }
        }
        attempts += 1;

        let mut q = Query::read();
        q.wait_index = wait_index;
        q.wait_time = Some(wait_time);
        let began = Instant::now();
        let (pair, index) = client
            .kv_get(key, q)
            .map_err(|e| format!("failed to read lock: {e}"))?;
        pace(began, wait_index, index);
        if let Some(p) = &pair {
            if p.flags != LOCK_FLAG_VALUE {
                return Err("Existing key does not match lock use".into());
            }
            if p.session_id() == session {
                return Ok(true);
            }
            if !p.session_id().is_empty() {
                wait_index = Some(index);
                continue;
            }
        }

        let locked = client
            .kv_put(
                key,
                b"",
                Query::write()
                    .param("flags", LOCK_FLAG_VALUE)
                    .param("acquire", session),
            )
            .map_err(|e| format!("failed to acquire lock: {e}"))?;
        if locked {
            return Ok(true);
        }
        // Why did it fail? A holder: wait for it. None: lock-delay, retry later.
        let (pair, index) = client
            .kv_get(key, Query::read())
            .map_err(|e| e.to_string())?;
        if pair.as_ref().is_some_and(|p| !p.session_id().is_empty()) {
            wait_index = Some(index);
        } else {
            wait_index = None;
            let pause = match timeout {
                Some(limit) => {
                    LOCK_RETRY.min(limit.saturating_sub(start.elapsed()) + Duration::from_millis(1))
                }
                None => LOCK_RETRY,
            };
            thread::sleep(pause);
        }
    }
}

/// Guards against servers that answer blocking queries at once without a new index: a fast
/// answer with an unchanged (or missing) index gets a short pause before the next query.
pub(super) fn pace(began: Instant, wait_index: Option<u64>, index: u64) {
    let unchanged = index == 0 || wait_index == Some(index);
    if unchanged && wait_index.is_some() && began.elapsed() < Duration::from_millis(200) {
        thread::sleep(Duration::from_millis(250));
    }
}

/// Watches the lock (or semaphore); sends `LockLost` when our session no longer holds it.
fn spawn_monitor(
    client: Client,
    mode: Mode,
    session: String,
    retries: u32,
    stopping: Arc<AtomicBool>,
    tx: Sender<Event>,
) {
    thread::spawn(move || {
        let mut wait_index: Option<u64> = None;
        let mut left = retries;
        loop {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let mut q = Query::read();
            q.consistent = true;
            q.wait_index = wait_index;
            q.wait_time = Some(LOCK_WAIT);
            let began = Instant::now();
            match mode.holds(&client, &session, q) {
                Err(e) => {
                    if left > 0 && e.is_retryable() {
                        left -= 1;
                        wait_index = None;
                        thread::sleep(MONITOR_RETRY_TIME);
                        continue;
                    }
                    break;
                }
                Ok((held, index)) => {
                    pace(began, wait_index, index);
                    if held {
                        wait_index = Some(index);
                        left = retries;
                        continue;
                    }
                    break;
                }
            }
        }
        if !stopping.load(Ordering::SeqCst) {
            let _ = tx.send(Event::LockLost);
        }
    });
}

fn start_child(args: &[String], pass_stdin: bool, shell: bool) -> std::io::Result<Child> {
    let mut cmd = if shell {
        let sh = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        let mut c = Command::new(sh);
        c.arg("-c").arg(args.join(" "));
        c
    } else {
        let mut c = Command::new(&args[0]);
        c.args(&args[1..]);
        c
    };
    cmd.env("CONSUL_LOCK_HELD", "true")
        .env("LOTSE_LOCK_HELD", "true");
    cmd.stdin(if pass_stdin {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    cmd.spawn()
}

/// SIGTERM, then SIGKILL after the grace period unless the child exited.
fn kill_child(pid: u32, events: &Receiver<Event>, verbose_on: bool) -> Result<(), String> {
    // The child may have exited already (e.g. on a forwarded signal).
    while let Ok(ev) = events.try_recv() {
        if matches!(ev, Event::ChildExited(_)) {
            verbose(verbose_on, "Child terminated");
            return Ok(());
        }
    }
    verbose(verbose_on, &format!("Terminating child pid {pid}"));
    let term = send_signal(pid, "TERM");
    let deadline = Instant::now() + KILL_GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::ChildExited(_)) => {
                verbose(verbose_on, "Child terminated");
                return Ok(());
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    term.map_err(|e| format!("Failed to terminate {pid}: {e}"))?;
    verbose(
        verbose_on,
        &format!(
            "Child did not exit after grace period of {}s",
            KILL_GRACE.as_secs()
        ),
    );
    verbose(verbose_on, &format!("Killing child pid {pid}"));
    send_signal(pid, "KILL").map_err(|e| format!("Failed to kill {pid}: {e}"))
}

/// consul's `Lock.Destroy`: delete the key unless someone holds it. `Ok(false)`: in use.
fn destroy_lock(client: &Client, key: &str) -> Result<bool, String> {
    let (pair, _) = client
        .kv_get(key, Query::read())
        .map_err(|e| format!("failed to read lock: {e}"))?;
    let Some(pair) = pair else { return Ok(true) };
    if pair.flags != LOCK_FLAG_VALUE {
        return Err("Existing key does not match lock use".into());
    }
    if !pair.session_id().is_empty() {
        return Ok(false);
    }
    client
        .kv_delete(key, Query::write().param("cas", pair.modify_index))
        .map_err(|e| format!("failed to remove lock: {e}"))
}

pub fn run(args: &[String]) -> i32 {
    let a: LockArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if a.limit <= 0 {
        eprintln!("Lock holder limit must be positive");
        return 1;
    }
    if a.args.len() < 2 {
        eprintln!("Key prefix and child command must be specified");
        return 1;
    }
    let prefix = a.args[0].trim_start_matches('/').to_string();
    let child_args = a.args[1..].to_vec();
    let timeout_ns = if a.timeout != 0 { a.timeout } else { a.r#try };
    if timeout_ns < 0 {
        eprintln!("Timeout must be positive");
        return 1;
    }
    let name = if a.name.is_empty() {
        default_session_name(&child_args, &prefix)
    } else {
        a.name.clone()
    };
    let timeout = (timeout_ns > 0).then(|| flags::nanos_to_duration(timeout_ns));
    if a.monitor_retry < 0 {
        eprintln!("Number for 'monitor-retry' must be >= 0");
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    // consul checks the agent answers before anything else.
    if let Err(e) = client.agent_self() {
        if matches!(e, super::http::ApiError::Transport(_)) {
            return flags::fail("Error querying Lotse agent", e);
        }
    }
    let mode = if a.limit == 1 {
        let key = lock_key(&prefix);
        verbose(a.verbose, &format!("Setting up lock at path: {key}"));
        Mode::Lock { key }
    } else {
        if prefix.is_empty() {
            eprintln!("Lock setup failed: missing prefix");
            return 1;
        }
        verbose(
            a.verbose,
            &format!(
                "Setting up semaphore (limit {}) at prefix: {prefix}",
                a.limit
            ),
        );
        Mode::Semaphore {
            prefix: prefix.clone(),
            limit: a.limit,
        }
    };

    let (tx, events) = mpsc::channel::<Event>();
    listen_for_signals(tx.clone());

    verbose(a.verbose, "Attempting lock acquisition");
    let session = match client.session_create(&serde_json::json!({
        "Name": name,
        "TTL": format!("{}s", SESSION_TTL.as_secs()),
        "Behavior": mode.session_behavior(),
        "LockDelay": "15s",
    })) {
        Ok(id) => id,
        Err(e) => return flags::fail("Lock acquisition failed: failed to create session", e),
    };
    let (renew_stop, renew_rx) = mpsc::channel::<()>();
    let renewer = spawn_renewer(client.clone(), session.clone(), renew_rx);
    let holder = Holder {
        client: client.clone(),
        session: session.clone(),
        renew_stop,
        renewer: Some(renewer),
    };

    // Acquire in a thread so that a signal can interrupt a long wait.
    {
        let (client, mode, session, tx) =
            (client.clone(), mode.clone(), session.clone(), tx.clone());
        thread::spawn(move || {
            let _ = tx.send(Event::Acquired(mode.acquire(&client, &session, timeout)));
        });
    }
    let acquired = loop {
        match events.recv() {
            Ok(Event::Acquired(r)) => break r,
            Ok(Event::Signal(_)) | Err(_) => break Ok(false),
            Ok(_) => continue,
        }
    };
    match acquired {
        Ok(true) => {}
        Ok(false) => {
            holder.end();
            eprintln!("Shutdown triggered or timeout during lock acquisition");
            return 1;
        }
        Err(e) => {
            holder.end();
            return flags::fail("Lock acquisition failed", e);
        }
    }

    let stopping = Arc::new(AtomicBool::new(false));
    spawn_monitor(
        client.clone(),
        mode.clone(),
        session.clone(),
        u32::try_from(a.monitor_retry).unwrap_or(u32::MAX),
        stopping.clone(),
        tx.clone(),
    );

    // Run the child while holding the lock.
    verbose(a.verbose, "Starting handler");
    if a.pass_stdin {
        verbose(a.verbose, "Stdin passed to handler process");
    }
    let mut child_code = 0;
    match start_child(&child_args, a.pass_stdin, a.shell) {
        Err(e) => {
            eprintln!("Error starting handler: {e}");
            child_code = 2;
        }
        Ok(mut child) => {
            let pid = child.id();
            {
                let tx = tx.clone();
                thread::spawn(move || {
                    let _ = tx.send(Event::ChildExited(child.wait().map_err(|e| e.to_string())));
                });
            }
            let kill = loop {
                match events.recv() {
                    Ok(Event::ChildExited(result)) => {
                        let failed = match &result {
                            Ok(status) if status.success() => None,
                            Ok(status) => Some(describe_exit(status)),
                            Err(e) => Some(e.clone()),
                        };
                        if let Some(why) = failed {
                            eprintln!("Error running handler: {why}");
                            child_code = 2;
                        }
                        verbose(a.verbose, "Child terminated, releasing lock");
                        break false;
                    }
                    Ok(Event::LockLost) => {
                        verbose(a.verbose, "Lock lost, killing child");
                        break true;
                    }
                    Ok(Event::Signal(sig)) => {
                        // Forward the signal, then shut down like consul does.
                        if let Err(e) = send_signal(pid, sig) {
                            eprintln!("Warning, could not forward signal: {e}");
                        }
                        verbose(a.verbose, "Shutdown triggered, killing child");
                        break true;
                    }
                    Ok(Event::Acquired(_)) => continue,
                    Err(_) => break true,
                }
            };
            if kill {
                if let Err(e) = kill_child(pid, &events, a.verbose) {
                    eprintln!("{e}");
                }
            }
        }
    }

    // Release the lock, end the session, and remove the key if nobody else took it.
    stopping.store(true, Ordering::SeqCst);
    let released = mode.release(&client, &session);
    holder.end();
    if let Err(e) = released {
        return flags::fail("Lock release failed", e);
    }
    match mode.destroy(&client) {
        Ok(true) => verbose(a.verbose, "Cleanup succeeded"),
        Ok(false) => verbose(a.verbose, "Cleanup aborted, lock in use"),
        Err(e) => return flags::fail("Lock cleanup failed", e),
    }
    if a.child_exit_code {
        child_code
    } else {
        0
    }
}

/// The lock's session and its renewer; `end` stops renewing and destroys the session.
struct Holder {
    client: Client,
    session: String,
    renew_stop: Sender<()>,
    renewer: Option<thread::JoinHandle<()>>,
}

impl Holder {
    fn end(mut self) {
        let _ = self.renew_stop.send(());
        if let Some(r) = self.renewer.take() {
            let _ = r.join();
        }
        let _ = self.client.session_destroy(&self.session);
    }
}

#[cfg(test)]
mod tests;
