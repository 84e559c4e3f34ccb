//! Go's `time.ParseDuration` and `time.Duration.String`, to the character: registrations carry
//! durations as Go text (`"10s"`, `"1m30s"`, `"1.5h"`) and the catalog reports them the same way.
//!
//! Durations are signed nanosecond counts (`i64`), as in Go: `"-5s"` parses (Consul's
//! validation, not the parser, decides what a negative interval means).

/// Nanoseconds per unit, as Go's `unitMap` (both spellings of micro).
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

const OVERFLOW: u64 = 1 << 63;

/// Parses Go duration text. The error is Go's text (`time: invalid duration "abc"`,
/// `time: missing unit in duration "10"`, `time: unknown unit "x" in duration "1x"`).
pub fn parse(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(text));
    let mut s = text.as_bytes();
    let mut neg = false;
    if let Some((&c, rest)) = s.split_first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = rest;
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // [0-9]*
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &s[..digits] {
            if whole > OVERFLOW / 10 {
                return Err(invalid());
            }
            whole = whole * 10 + u64::from(c - b'0');
            if whole > OVERFLOW {
                return Err(invalid());
            }
        }
        s = &s[digits..];
        let pre = digits > 0;
        // (\.[0-9]*)?
        let (mut frac, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..digits] {
                if overflow {
                    continue;
                }
                if frac > (OVERFLOW - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = frac * 10 + u64::from(c - b'0');
                if y > OVERFLOW {
                    overflow = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
            post = digits > 0;
            s = &s[digits..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // The unit: everything up to the next digit or '.'.
        let unit_len = s
            .iter()
            .take_while(|&&c| !(c == b'.' || c.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(text)));
        }
        let unit_text = String::from_utf8_lossy(&s[..unit_len]);
        s = &s[unit_len..];
        let Some(unit) = unit_nanos(&unit_text) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(&unit_text),
                quote(text)
            ));
        };
        if whole > OVERFLOW / unit {
            return Err(invalid());
        }
        whole *= unit;
        if frac > 0 {
            // Go uses float64 here too: nanosecond-exact for fractions of an hour.
            whole += (frac as f64 * (unit as f64 / scale)) as u64;
            if whole > OVERFLOW {
                return Err(invalid());
            }
        }
        // Both are at most 2^63, so the sum can reach 2^64: checked (Go wraps here).
        total = match total.checked_add(whole) {
            Some(t) if t <= OVERFLOW => t,
            _ => return Err(invalid()),
        };
    }
    if neg {
        // total <= 2^63, so the negation fits (i64::MIN at most).
        return Ok(-(total as i128) as i64);
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Go's `time.quote`: printable ASCII kept (with `"` and `\` escaped), every other byte `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() && c >= ' ' && c != '\u{7f}' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push('"');
    out
}

/// Go's `Duration.String()`: `"0s"`, `"500ms"`, `"1.5µs"`, `"1m30s"`, `"1h0m0s"`, `"-5s"`.
pub fn format(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let frac = frac_text(&mut u, prec);
        out.push_str(&u.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let frac = frac_text(&mut u, 9);
        let secs = u % 60;
        let mins = u / 60;
        if mins > 0 {
            let hours = mins / 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            out.push_str(&format!("{}m", mins % 60));
        }
        out.push_str(&format!("{secs}{frac}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Go's `fmtFrac`: the `prec` low decimal digits of `v` as `.ddd` without trailing zeros
/// (nothing when they are all zero); leaves the integer part in `v`.
fn frac_text(v: &mut u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let frac = *v % div;
    *v /= div;
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::{format, parse};

    const S: i64 = 1_000_000_000;

    #[test]
    fn parses_go_duration_text() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("10s", 10 * S),
            ("1m30s", 90 * S),
            ("500ms", S / 2),
            ("1h", 3600 * S),
            ("1.5s", 3 * S / 2),
            (".5s", S / 2),
            ("1.s", S),
            ("+2s", 2 * S),
            ("-5s", -5 * S),
            ("1h2m3.5s", 3723 * S + S / 2),
            ("3us", 3_000),
            ("3\u{b5}s", 3_000),
            ("3\u{3bc}s", 3_000),
            ("7ns", 7),
            ("1.0000000001s", S),
            ("2562047h47m16.854775807s", i64::MAX),
            ("-2562047h47m16.854775808s", i64::MIN),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_with_go_texts() {
        let cases: &[(&str, &str)] = &[
            ("10", r#"time: missing unit in duration "10""#),
            ("abc", r#"time: invalid duration "abc""#),
            ("", r#"time: invalid duration """#),
            ("-", r#"time: invalid duration "-""#),
            (".s", r#"time: invalid duration ".s""#),
            ("1x", r#"time: unknown unit "x" in duration "1x""#),
            ("1s2", r#"time: missing unit in duration "1s2""#),
            (" 1s", r#"time: invalid duration " 1s""#),
            ("1 s", r#"time: unknown unit " s" in duration "1 s""#),
            (
                "2562047h47m16.854775808s",
                r#"time: invalid duration "2562047h47m16.854775808s""#,
            ),
            (
                "99999999999999999999h",
                r#"time: invalid duration "99999999999999999999h""#,
            ),
            // Two terms of 2^63 ns each: the sum overflows 64 bits (Go wraps it to 0s).
            (
                "9223372036854775808ns9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns9223372036854775808ns""#,
            ),
            (
                "1é",
                r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(want.to_string()), "{text:?}");
        }
    }

    #[test]
    fn formats_as_go_duration_string() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5\u{b5}s"),
            (S / 2, "500ms"),
            (1_234_567, "1.234567ms"),
            (10 * S, "10s"),
            (90 * S, "1m30s"),
            (60 * S, "1m0s"),
            (3600 * S, "1h0m0s"),
            (3 * S / 2, "1.5s"),
            (-5 * S, "-5s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format(*nanos), *want, "{nanos}");
        }
    }

    #[test]
    fn format_then_parse_round_trips() {
        for nanos in [1, 999, 1_001, 59 * S + 1, 3601 * S + 7, -42 * S] {
            assert_eq!(parse(&format(nanos)), Ok(nanos));
        }
    }
}
