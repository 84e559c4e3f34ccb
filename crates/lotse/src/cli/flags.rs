//! Go-style flag parsing for the CLI commands, the HTTP flags every command shares, small
//! helpers that reproduce Go formatting (durations, indented JSON, usage text), and the steps
//! every command's `run` shares: refusing positional arguments ([`client_no_args`]), connecting
//! ([`HttpFlags::client`]) and reporting a failure ([`fail`]). Commands with no flags of their
//! own (`info`, `reload`, `catalog datacenters`) parse with [`http_only_client`].
//!
//! Those steps print consul's message on stderr themselves and hand back the exit code, so a
//! `run` returns it as it is (`Err(code) => return code`).
//!
//! consul parses flags with Go's `flag` package: flags come first and parsing stops at the first
//! non-flag argument (or `--`); `-flag`, `--flag`, `-flag=v` and `-flag v` are all accepted and
//! boolean flags take an optional `=true|false`. [`parse`] splits the arguments the same way,
//! rewrites the flag part with [`crate::goflags::normalize`] and lets clap do the rest; the
//! remaining (positional) arguments land in the command's `args` field.

use std::collections::HashMap;
use std::fmt::Display;
use std::time::Duration;

use clap::{ArgAction, CommandFactory};

use super::http::{Client, HttpConfig};

pub const HTTP_HEADING: &str = "HTTP API Options";

/// The HTTP API flags of consul's commands (`-http-addr`, `-token`, `-token-file`,
/// `-datacenter`, `-stale`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HttpFlags {
    /// The `address` and port of the Lotse HTTP agent. The value can be an IP address or DNS
    /// address, but it must also include the port. This can also be specified via the
    /// LOTSE_HTTP_ADDR or CONSUL_HTTP_ADDR environment variable. The default value is
    /// http://127.0.0.1:8500.
    #[arg(long = "http-addr", value_name = "address", help_heading = HTTP_HEADING)]
    pub http_addr: Option<String>,

    /// ACL token to use in the request. This can also be specified via the LOTSE_HTTP_TOKEN or
    /// CONSUL_HTTP_TOKEN environment variable. If unspecified, the query will default to the
    /// token of the Lotse agent at the HTTP address.
    #[arg(long, value_name = "value", help_heading = HTTP_HEADING)]
    pub token: Option<String>,

    /// File containing the ACL token to use in the request instead of one specified via the
    /// -token argument or CONSUL_HTTP_TOKEN environment variable. This can also be specified via
    /// the CONSUL_HTTP_TOKEN_FILE environment variable.
    #[arg(long = "token-file", value_name = "value", help_heading = HTTP_HEADING)]
    pub token_file: Option<String>,

    /// Name of the datacenter to query. If unspecified, this will default to the datacenter of
    /// the queried agent.
    #[arg(long, value_name = "value", help_heading = HTTP_HEADING)]
    pub datacenter: Option<String>,

    /// Permit any Lotse server (non-leader) to respond to this request. This allows for lower
    /// latency and higher throughput, but can result in stale data. This option has no effect
    /// on non-read operations. The default value is false.
    #[arg(long, help_heading = HTTP_HEADING, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false", value_parser = parse_bool,
          action = ArgAction::Set, hide_default_value = true)]
    pub stale: bool,
}

impl HttpFlags {
    /// The effective client configuration: flags first, then the environment, then defaults.
    pub fn config(&self) -> Result<HttpConfig, String> {
        let env = |names: &[&str]| -> Option<String> {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        let addr = self
            .http_addr
            .clone()
            .or_else(|| env(&["LOTSE_HTTP_ADDR", "CONSUL_HTTP_ADDR"]))
            .unwrap_or_else(|| "127.0.0.1:8500".to_string());
        let mut token = self.token.clone().filter(|t| !t.is_empty());
        if token.is_none() {
            let file = self
                .token_file
                .clone()
                .or_else(|| env(&["LOTSE_HTTP_TOKEN_FILE", "CONSUL_HTTP_TOKEN_FILE"]));
            if let Some(file) = file {
                let data = std::fs::read_to_string(&file)
                    .map_err(|e| format!("Error loading token file: {e}"))?;
                token = Some(data.trim().to_string()).filter(|t| !t.is_empty());
            }
        }
        if token.is_none() {
            token = env(&["LOTSE_HTTP_TOKEN", "CONSUL_HTTP_TOKEN"]);
        }
        Ok(HttpConfig {
            base: normalize_addr(&addr)?,
            token,
            datacenter: self.datacenter.clone().filter(|d| !d.is_empty()),
            stale: self.stale,
        })
    }

    /// A client for the agent; on error consul's `Error connecting to Consul agent` message is
    /// printed and the exit code (1) returned.
    pub fn client(&self) -> Result<Client, i32> {
        self.config()
            .map(Client::new)
            .map_err(|e| fail("Error connecting to Lotse agent", e))
    }
}

/// The arguments of a command that has only the HTTP flags and takes no positional arguments.
#[derive(clap::Parser, Debug)]
pub struct HttpOnlyArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// Parses the arguments of a command with only the HTTP flags ([`HttpOnlyArgs`]) and gives its
/// client; errors as [`parse`] and [`client_no_args`] report them.
pub fn http_only_client(args: &[String]) -> Result<Client, i32> {
    let a: HttpOnlyArgs = parse(args)?;
    client_no_args(&a.http, &a.args)
}

/// consul's check in commands that take no positional arguments: any is refused with
/// `Too many arguments (expected 0, got N)` and exit code 1.
pub fn no_args(args: &[String]) -> Result<(), i32> {
    if args.is_empty() {
        Ok(())
    } else {
        eprintln!("Too many arguments (expected 0, got {})", args.len());
        Err(1)
    }
}

/// The client of a command that takes no positional arguments: [`no_args`], then
/// [`HttpFlags::client`], in consul's order.
pub fn client_no_args(http: &HttpFlags, args: &[String]) -> Result<Client, i32> {
    no_args(args)?;
    http.client()
}

/// A command's failure as consul's commands report it: `context: err` on stderr, exit code 1.
pub fn fail(context: &str, err: impl Display) -> i32 {
    eprintln!("{context}: {err}");
    1
}

/// Turns `host:port`, `http://host:port` (with or without a trailing slash) into a base URL.
pub fn normalize_addr(addr: &str) -> Result<String, String> {
    let addr = addr.trim();
    let rest = if let Some(r) = addr.strip_prefix("http://") {
        r
    } else if addr.starts_with("https://") {
        return Err(format!("HTTPS is not supported by this client: {addr}"));
    } else if addr.starts_with("unix://") {
        return Err(format!(
            "unix sockets are not supported by this client: {addr}"
        ));
    } else if addr.contains("://") {
        return Err(format!("unsupported scheme in address: {addr}"));
    } else {
        addr
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(format!("missing host in address: {addr:?}"));
    }
    Ok(format!("http://{rest}"))
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("parse error".to_string()),
    }
}

/// Go's `time.ParseDuration`, in nanoseconds (may be negative).
pub fn parse_go_duration(s: &str) -> Result<i128, String> {
    let err = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            other => {
                return Err(format!(
                    "time: unknown unit \"{other}\" in duration \"{s}\""
                ))
            }
        };
        total += value * scale;
    }
    let n = total.round() as i128;
    Ok(if neg { -n } else { n })
}

pub fn go_duration_value(s: &str) -> Result<i128, String> {
    parse_go_duration(s)
}

pub fn nanos_to_duration(n: i128) -> Duration {
    Duration::from_nanos(n.max(0) as u64)
}

/// What the Go-style splitter knows about a command's flags: long name -> takes a separate
/// value (`-name value`) or not.
fn flag_table(cmd: &clap::Command) -> HashMap<String, bool> {
    cmd.get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            let takes = a.get_action().takes_values() && !a.is_require_equals_set();
            Some((long.to_string(), takes))
        })
        .collect()
}

/// Splits `args` like Go's `flag.Parse`: the flag part (each flag with its value) and the
/// positional rest. Errors carry Go's message.
fn split_go_args(
    table: &HashMap<String, bool>,
    args: &[String],
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(format!("bad flag syntax: {arg}"));
        }
        let (name, has_value) = match body.split_once('=') {
            Some((n, _)) => (n, true),
            None => (body, false),
        };
        let Some(&takes_value) = table.get(name) else {
            return Err(format!("flag provided but not defined: -{name}"));
        };
        flags.push(arg.clone());
        if takes_value && !has_value {
            match args.get(i + 1) {
                Some(v) => flags.push(v.clone()),
                None => return Err(format!("flag needs an argument: -{name}")),
            }
            i += 1;
        }
        i += 1;
    }
    Ok((flags, args[i..].to_vec()))
}

/// Parses a command's arguments Go-style into `T`, whose positional arguments must be one
/// `Vec<String>` field. On error prints the message and the command's usage on stderr and
/// returns exit code 1.
pub fn parse<T: clap::Parser>(args: &[String]) -> Result<T, i32> {
    let cmd = T::command();
    let table = flag_table(&cmd);
    let (flag_part, rest) = match split_go_args(&table, args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            return Err(1);
        }
    };
    let mut argv = vec!["lotse".to_string()];
    argv.extend(crate::goflags::normalize(&cmd, &flag_part));
    argv.push("--".to_string());
    argv.extend(rest);
    let matches = cmd
        .no_binary_name(false)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .try_get_matches_from(argv);
    match matches.and_then(|m| T::from_arg_matches(&m)) {
        Ok(v) => Ok(v),
        Err(e) => {
            eprintln!("{}", clap_error_message(&e));
            Err(1)
        }
    }
}

fn clap_error_message(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let get = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    match (get(ContextKind::InvalidArg), get(ContextKind::InvalidValue)) {
        (Some(arg), Some(value)) => {
            let name = arg
                .split_whitespace()
                .next()
                .unwrap_or(&arg)
                .trim_start_matches('-');
            let name = name.split('=').next().unwrap_or(name);
            format!("invalid value \"{value}\" for flag -{name}: parse error")
        }
        _ => {
            let text = e.render().to_string();
            text.lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string()
        }
    }
}

/// consul-style help: the command's usage text, then its flags grouped under
/// "HTTP API Options" and "Command Options".
pub fn usage<T: CommandFactory>(text: &str) -> String {
    let cmd = T::command();
    let mut http = Vec::new();
    let mut own = Vec::new();
    for a in cmd.get_arguments() {
        let Some(long) = a.get_long() else { continue };
        if long == "help" || long == "version" || a.is_hide_set() {
            continue;
        }
        let takes = a.get_action().takes_values() && !a.is_require_equals_set();
        let mut line = format!("  -{long}");
        if takes {
            let value_name = a
                .get_value_names()
                .and_then(|v| v.first().map(|s| s.to_string()))
                .unwrap_or_else(|| "value".to_string());
            line.push_str(&format!("=<{value_name}>"));
        }
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        line.push('\n');
        line.push_str(&wrap(&help, 5, 80));
        if a.get_help_heading() == Some(HTTP_HEADING) {
            http.push(line);
        } else {
            own.push(line);
        }
    }
    let mut out = text.trim_end().to_string();
    if !http.is_empty() {
        out.push_str("\n\nHTTP API Options\n\n");
        out.push_str(&http.join("\n"));
    }
    if !own.is_empty() {
        out.push_str("\n\nCommand Options\n\n");
        out.push_str(&own.join("\n"));
    }
    out
}

fn wrap(text: &str, indent: usize, width: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > width {
            out.push_str(&pad);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&pad);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// JSON as Go's `json.MarshalIndent(v, "", indent)` prints it (HTML characters escaped).
pub fn json_indent<T: serde::Serialize + ?Sized>(v: &T, indent: &[u8]) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)
        .expect("serializing a JSON value cannot fail");
    let s = String::from_utf8(buf).expect("serde_json writes UTF-8");
    go_json_escape(&s)
}

/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; none of them can
/// appear outside strings in JSON text, so replacing them everywhere is exact.
fn go_json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Owned arguments from literals, for the commands' unit tests.
#[cfg(test)]
pub fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Reads consul's data argument: `@file`, `-` (stdin), or the literal value.
pub fn load_data_source(data: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = data.strip_prefix('@') {
        return std::fs::read(path).map_err(|e| format!("Failed to read file: {e}"));
    }
    if data == "-" {
        use std::io::Read;
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("Failed to read stdin: {e}"))?;
        return Ok(buf);
    }
    Ok(data.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        http: HttpFlags,
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
              default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
        recurse: bool,
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
              default_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
        shell: bool,
        #[arg(long, default_value_t = 0)]
        flags: u64,
        #[arg(num_args = 0.., allow_hyphen_values = true)]
        args: Vec<String>,
    }

    #[test]
    fn go_style_flags_then_positionals() {
        let t: T = parse(&argv(&[
            "-recurse",
            "-flags",
            "42",
            "--http-addr=1.2.3.4:5",
            "foo",
            "-shell=false",
        ]))
        .unwrap();
        assert!(t.recurse);
        assert!(t.shell);
        assert_eq!(t.flags, 42);
        assert_eq!(t.http.http_addr.as_deref(), Some("1.2.3.4:5"));
        assert_eq!(t.args, argv(&["foo", "-shell=false"]));
    }

    #[test]
    fn bool_flags_take_optional_values() {
        let t: T = parse(&argv(&["-shell=false", "-recurse=true", "-stale", "x"])).unwrap();
        assert!(!t.shell);
        assert!(t.recurse);
        assert!(t.http.stale);
        assert_eq!(t.args, argv(&["x"]));
        let t: T = parse(&argv(&["-recurse=0"])).unwrap();
        assert!(!t.recurse);
        assert!(t.args.is_empty());
    }

    #[test]
    fn double_dash_ends_flags() {
        let t: T = parse(&argv(&["-recurse", "--", "-flags", "1"])).unwrap();
        assert_eq!(t.args, argv(&["-flags", "1"]));
        assert_eq!(t.flags, 0);
    }

    #[test]
    fn unknown_flag_and_bad_values_fail_with_1() {
        assert_eq!(parse::<T>(&argv(&["-nope", "x"])).unwrap_err(), 1);
        assert_eq!(parse::<T>(&argv(&["-flags", "abc"])).unwrap_err(), 1);
        assert_eq!(parse::<T>(&argv(&["-flags"])).unwrap_err(), 1);
        assert_eq!(parse::<T>(&argv(&["-recurse=maybe"])).unwrap_err(), 1);
    }

    #[test]
    fn addresses() {
        for (addr, base) in [
            ("127.0.0.1:8500", "http://127.0.0.1:8500"),
            ("http://localhost:1/", "http://localhost:1"),
        ] {
            assert_eq!(normalize_addr(addr).unwrap(), base);
        }
        assert!(normalize_addr("https://x:1").is_err());
        assert!(normalize_addr("").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0").unwrap(), 0);
        assert_eq!(parse_go_duration("1s").unwrap(), 1_000_000_000);
        assert_eq!(parse_go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_go_duration("250ms").unwrap(), 250_000_000);
        assert_eq!(parse_go_duration("-2s").unwrap(), -2_000_000_000);
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("abc").is_err());
        assert!(parse_go_duration("1x").is_err());
    }

    #[test]
    fn json_like_go() {
        let v = serde_json::json!([{"key": "a<b>&", "value": ""}]);
        assert_eq!(
            json_indent(&v, b"\t"),
            "[\n\t{\n\t\t\"key\": \"a\\u003cb\\u003e\\u0026\",\n\t\t\"value\": \"\"\n\t}\n]"
        );
        assert_eq!(json_indent(&serde_json::json!([]), b"\t"), "[]");
    }

    #[test]
    fn usage_groups_flags() {
        let u = usage::<T>("Usage: lotse t [options]");
        assert!(
            u.contains("HTTP API Options\n\n  -http-addr=<address>\n"),
            "{u}"
        );
        assert!(u.contains("Command Options\n\n"), "{u}");
        assert!(u.contains("  -recurse\n"), "{u}");
        assert!(u.contains("  -flags=<"), "{u}");
    }
}
