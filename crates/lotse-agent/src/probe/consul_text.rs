//! Texts as Consul's Go runtime prints them: durations (`time.Duration.String`), socket
//! errors (`dial tcp 127.0.0.1:1: connect: connection refused`) and HTTP client errors
//! (`Get "http://…": …`). Check output is read by people and grepped by scripts written
//! against Consul, so the wording is kept where reproducing it is cheap.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

/// Go's `time.Duration.String()`: `0s`, `250ms`, `1.5s`, `1m0s`, `2h0m0s`.
pub(super) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", decimal(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", decimal(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(
        out,
        "{}s",
        decimal(s * 1_000_000_000 + ns % 1_000_000_000, 1_000_000_000)
    );
    out
}

/// `v / unit` with the fraction's trailing zeros trimmed, as Go prints it.
fn decimal(v: u128, unit: u128) -> String {
    let (int, rem) = (v / unit, v % unit);
    if rem == 0 {
        return int.to_string();
    }
    let width = unit.ilog10() as usize;
    let frac = format!("{rem:0width$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// An I/O error as Go's `syscall.Errno` prints it: `connection refused`, `i/o timeout`.
pub(super) fn io_error(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::TimedOut {
        return "i/o timeout".to_owned();
    }
    let text = e.to_string();
    let text = match e.raw_os_error() {
        // Rust prints strerror plus " (os error N)"; Go prints strerror in lower case.
        Some(code) => text
            .trim_end_matches(&format!(" (os error {code})"))
            .to_owned(),
        None => text,
    };
    lower_first(&text)
}

/// A failed name lookup as Go's resolver words it: `no such host` when the name does not
/// exist, otherwise the resolver's own message.
pub(super) fn lookup_error(e: &io::Error) -> String {
    let text = e.to_string();
    let known_missing = [
        "Name or service not known",
        "No address associated",
        "nodename nor servname",
    ];
    if known_missing.iter().any(|m| text.contains(m)) {
        return "no such host".to_owned();
    }
    lower_first(text.trim_start_matches("failed to lookup address information: "))
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Go's `url.Error` operation name: the method with only its first letter upper case.
pub(super) fn url_op(method: &str) -> String {
    let mut chars = method.chars();
    match chars.next() {
        Some(c) => c
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// Go's `*url.Error` text: `Get "http://127.0.0.1:1/": <err>`.
pub(super) fn url_error(method: &str, url: &str, err: &str) -> String {
    format!("{} \"{url}\": {err}", url_op(method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(15), "15ns"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(3600 + 61), "1h1m1s"),
            (Duration::from_micros(2), "2µs"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn os_errors_lose_the_rust_suffix() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(io_error(&e), "connection refused");
        assert_eq!(
            io_error(&io::Error::from(io::ErrorKind::TimedOut)),
            "i/o timeout"
        );
    }

    #[test]
    fn url_errors_name_the_method_as_go_does() {
        assert_eq!(
            url_error("GET", "http://x/", "boom"),
            "Get \"http://x/\": boom"
        );
        assert_eq!(url_op("POST"), "Post");
    }
}
