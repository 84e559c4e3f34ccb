//! `lotse watch -type TYPE [options] [handler...]`, as `consul watch` (`command/watch` over
//! `api/watch`): a loop of blocking queries on one view (`key`, `keyprefix`, `services`,
//! `nodes`, `service`, `checks`, `event`).
//!
//! Without a handler the first result is printed (indented JSON) and the command exits. With
//! one, the handler runs (through `$SHELL -c`, `/bin/sh` by default, unless `-shell=false`)
//! with the result as JSON on stdin and `CONSUL_INDEX` in its environment, first at once and
//! then each time the index moves and the result changed; a failing handler stops the watch
//! with exit code 1. SIGINT/SIGTERM end the watch with exit code 0.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::{ArgAction, Parser};
use serde::{Deserialize, Serialize};

use super::flags::{self, parse_bool, HttpFlags};
use super::http::{encode_path, kv_path, ApiError, Client, Query};

mod json;

use json::{compact, encoder_line, indent};

pub const SYNOPSIS: &str = "Watch for changes in Lotse";

/// `api/watch`'s retry base and cap after a failed query.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(180);
/// The wait sent with each blocking query: the server's default, made explicit so the
/// client's read timeout accounts for it.
const BLOCK_WAIT: Duration = Duration::from_secs(300);

#[derive(Parser, Debug)]
#[command(name = "watch")]
struct WatchArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Specifies the watch type. One of key, keyprefix, services, nodes, service, checks, or
    /// event.
    #[arg(
        long = "type",
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    watch_type: String,
    /// Specifies the key to watch. Only for 'key' type.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    key: String,
    /// Specifies the key prefix to watch. Only for 'keyprefix' type.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    prefix: String,
    /// Specifies the service to watch. Required for 'service' type, optional for 'checks'
    /// type.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    service: String,
    /// Specifies the service tag to filter on. Optional for 'service' type.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    tag: String,
    /// Specifies if only hosts passing all checks are displayed. Optional for 'service' type,
    /// must be one of `[true|false]`. Defaults false.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "[true|false]"
    )]
    passingonly: String,
    /// Use a shell to run the command (can set a custom shell via the SHELL environment
    /// variable).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "true", value_parser = parse_bool, action = ArgAction::Set,
          hide_default_value = true)]
    shell: bool,
    /// Specifies the states to watch. Optional for 'checks' type.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    state: String,
    /// Specifies an event name to watch. Only for 'event' type.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    name: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<WatchArgs>(
        "Usage: lotse watch [options] [child...]

  Watches for changes in a given data view from Lotse. If a child process
  is specified, it will be invoked with the latest results on changes. Otherwise,
  the latest values are dumped to stdout and the watch terminates.

  Providing the watch type is required, and other parameters may be required
  or supported depending on the watch type.",
    )
}

/// What one watch queries.
#[derive(Debug, Clone, PartialEq)]
enum View {
    Key(String),
    KeyPrefix(String),
    Services,
    Nodes,
    Service {
        name: String,
        tag: String,
        passing_only: bool,
    },
    /// Checks in a state (`any` by default) or of a service.
    Checks {
        service: String,
        state: String,
    },
    Event(String),
}

/// consul's `watch.Parse` over the flags given: the view, or its error text. Every parameter
/// given must be one the type uses (`Invalid parameters: [..]`).
fn plan(a: &WatchArgs, passing_only: Option<bool>, stale: bool) -> Result<View, String> {
    let mut given: Vec<&str> = Vec::new();
    for (name, set) in [
        ("key", !a.key.is_empty()),
        ("prefix", !a.prefix.is_empty()),
        ("service", !a.service.is_empty()),
        ("tag", !a.tag.is_empty()),
        ("stale", stale),
        ("state", !a.state.is_empty()),
        ("name", !a.name.is_empty()),
        ("passingonly", passing_only.is_some()),
    ] {
        if set {
            given.push(name);
        }
    }
    let (view, uses): (View, &[&str]) = match a.watch_type.as_str() {
        "key" => {
            if a.key.is_empty() {
                return Err("Must specify a single key to watch".into());
            }
            (View::Key(a.key.clone()), &["key", "stale"])
        }
        "keyprefix" => {
            if a.prefix.is_empty() {
                return Err("Must specify a single prefix to watch".into());
            }
            (View::KeyPrefix(a.prefix.clone()), &["prefix", "stale"])
        }
        "services" => (View::Services, &["stale"]),
        "nodes" => (View::Nodes, &["stale"]),
        "service" => {
            if a.service.is_empty() {
                return Err("Must specify a single service to watch".into());
            }
            let view = View::Service {
                name: a.service.clone(),
                tag: a.tag.clone(),
                passing_only: passing_only.unwrap_or(false),
            };
            (view, &["service", "tag", "passingonly", "stale"])
        }
        "checks" => {
            if !a.service.is_empty() && !a.state.is_empty() {
                return Err("Cannot specify service and state".into());
            }
            let state = if a.service.is_empty() && a.state.is_empty() {
                "any".to_string()
            } else {
                a.state.clone()
            };
            let view = View::Checks {
                service: a.service.clone(),
                state,
            };
            (view, &["service", "state", "stale"])
        }
        // The stale setting does not apply to events.
        "event" => (View::Event(a.name.clone()), &["name"]),
        other => return Err(format!("Unsupported watch type: {other}")),
    };
    let mut bad: Vec<&str> = given.into_iter().filter(|g| !uses.contains(g)).collect();
    if !bad.is_empty() {
        bad.sort();
        return Err(format!("Invalid parameters: [{}]", bad.join(" ")));
    }
    Ok(view)
}

impl View {
    fn type_name(&self) -> &'static str {
        match self {
            View::Key(_) => "key",
            View::KeyPrefix(_) => "keyprefix",
            View::Services => "services",
            View::Nodes => "nodes",
            View::Service { .. } => "service",
            View::Checks { .. } => "checks",
            View::Event(_) => "event",
        }
    }
}

/// A KV entry as consul's `api.KVPair` marshals it (its field order, `Session` always there).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvPair {
    #[serde(default)]
    key: String,
    #[serde(default)]
    create_index: u64,
    #[serde(default)]
    modify_index: u64,
    #[serde(default)]
    lock_index: u64,
    #[serde(default)]
    flags: u64,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    session: String,
}

/// An event as `api.UserEvent` marshals it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    node_filter: String,
    #[serde(default)]
    service_filter: String,
    #[serde(default)]
    tag_filter: String,
    #[serde(default)]
    version: i64,
    #[serde(rename = "LTime", default)]
    ltime: u64,
}

fn to_json<T: Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Transport(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::Transport(format!("failed to decode response: {e}")))
}

/// One query of `view`, blocking on `last` (the previous index, if any): the new index and
/// the result as compact JSON.
fn fetch(client: &Client, view: &View, last: Option<u64>) -> Result<(u64, String), ApiError> {
    let mut q = Query::read();
    if let Some(i) = last.filter(|i| *i > 0) {
        q.wait_index = Some(i);
        q.wait_time = Some(BLOCK_WAIT);
    }
    let (path, not_found_is_null) = match view {
        View::Key(key) => (kv_path(key), true),
        View::KeyPrefix(prefix) => {
            q = q.flag("recurse");
            (kv_path(prefix), true)
        }
        View::Services => ("/v1/catalog/services".to_string(), false),
        View::Nodes => ("/v1/catalog/nodes".to_string(), false),
        View::Service {
            name,
            tag,
            passing_only,
        } => {
            if !tag.is_empty() {
                q = q.param("tag", tag);
            }
            if *passing_only {
                q = q.param("passing", 1);
            }
            (format!("/v1/health/service/{}", encode_path(name)), false)
        }
        View::Checks { service, state } if state.is_empty() => {
            (format!("/v1/health/checks/{}", encode_path(service)), false)
        }
        View::Checks { state, .. } => (format!("/v1/health/state/{}", encode_path(state)), false),
        View::Event(name) => {
            q.read = false;
            if !name.is_empty() {
                q = q.param("name", name);
            }
            ("/v1/event/list".to_string(), false)
        }
    };
    let resp = client.request("GET", &path, &q, None)?;
    if resp.status == 404 && not_found_is_null {
        // The Go client answers a missing key (or prefix) with nil: `null`.
        return Ok((resp.index, "null".to_string()));
    }
    if !(200..300).contains(&resp.status) {
        return Err(ApiError::Status(
            resp.status,
            String::from_utf8_lossy(&resp.body).trim().to_string(),
        ));
    }
    let json = match view {
        View::Key(_) => {
            let pairs: Vec<KvPair> = decode(&resp.body)?;
            match pairs.first() {
                Some(p) => to_json(p)?,
                None => "null".to_string(),
            }
        }
        View::KeyPrefix(_) => to_json(&decode::<Vec<KvPair>>(&resp.body)?)?,
        View::Event(_) => {
            let mut events: Vec<Event> = decode(&resp.body)?;
            // Only the events after the one last seen (api/watch's eventWatch).
            if let Some(i) = events
                .iter()
                .position(|e| Some(lotse_api::event::uuid_to_u64(&e.id)) == last)
            {
                events.drain(..=i);
            }
            to_json(&events)?
        }
        _ => String::from_utf8_lossy(&resp.body).into_owned(),
    };
    Ok((resp.index, compact(&json)))
}

/// `WaitIndexVal.Next`: an index that went backwards resets the wait to 0.
fn next_index(new: u64, previous: Option<u64>) -> u64 {
    match previous {
        Some(p) if p > new => 0,
        _ => new,
    }
}

/// Runs the handler once with `input` on stdin; consul's error text on failure.
fn run_handler(args: &[String], shell: bool, index: u64, input: &str) -> Result<(), String> {
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
    cmd.env("CONSUL_INDEX", index.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("Error starting handler: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A handler that does not read its input closes the pipe early; not an error.
        let _ = stdin.write_all(input.as_bytes());
    }
    let status = child
        .wait()
        .map_err(|e| format!("Error executing handler: {e}"))?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let why = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {sig}"),
        _ => status.to_string(),
    };
    Err(format!("Error executing handler: {why}"))
}

/// SIGINT and SIGTERM end the watch with exit code 0, as consul's shutdown channel does.
fn exit_on_signal() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        });
    });
}

pub fn run(args: &[String]) -> i32 {
    let a: WatchArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if a.watch_type.is_empty() {
        eprintln!("Watch type must be specified");
        eprintln!();
        eprintln!("{}", help());
        return 1;
    }
    let passing_only = if a.passingonly.is_empty() {
        None
    } else {
        match parse_bool(&a.passingonly) {
            Ok(b) => Some(b),
            Err(_) => {
                eprintln!(
                    "Failed to parse passingonly flag: strconv.ParseBool: parsing {:?}: invalid syntax",
                    a.passingonly
                );
                return 1;
            }
        }
    };
    let view = match plan(&a, passing_only, a.http.stale) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    if let Err(e) = client.agent_self() {
        return flags::fail("Error querying Lotse agent", e);
    }
    exit_on_signal();
    watch(&client, &view, &a.args, a.shell)
}

/// The watch loop (`Plan.Run`): the exit code once it stops.
fn watch(client: &Client, view: &View, handler: &[String], shell: bool) -> i32 {
    let mut last_index: Option<u64> = None;
    let mut last_result: Option<String> = None;
    let mut failures: u32 = 0;
    loop {
        let (index, result) = match fetch(client, view, last_index) {
            Ok(r) => r,
            Err(e) => {
                failures += 1;
                last_index = None;
                let retry = (RETRY_INTERVAL * failures.saturating_mul(failures)).min(MAX_BACKOFF);
                eprintln!(
                    "[ERROR] watch: Watch errored: type={} error=\"{e}\" retry={}s",
                    view.type_name(),
                    retry.as_secs()
                );
                std::thread::sleep(retry);
                continue;
            }
        };
        failures = 0;
        if last_index == Some(index) {
            continue;
        }
        let old = last_index;
        last_index = Some(next_index(index, old));
        if old.is_some() && last_result.as_deref() == Some(result.as_str()) {
            continue;
        }
        if handler.is_empty() {
            // A closed stdout (`| head`) is not worth a panic.
            let _ = writeln!(std::io::stdout().lock(), "{}", indent(&result));
            return 0;
        }
        if let Err(e) = run_handler(handler, shell, index, &encoder_line(&result)) {
            eprintln!("{e}");
            return 1;
        }
        last_result = Some(result);
    }
}

#[cfg(test)]
mod tests;
