//! Go's `time.ParseDuration` syntax: `"300ms"`, `"1m30s"`, `"1.5h"`, `"0"`.
//!
//! A duration is an optional sign followed by one or more `<number><unit>` pairs, where the
//! number may have a fraction and the unit is one of `ns`, `us` (or `µs`/`μs`), `ms`, `s`, `m`,
//! `h`. A bare `0` is allowed. Lotse never needs negative durations, so a `-` sign is an error.

use std::time::Duration;

/// Parses a Go duration string; the error text says what was wrong.
pub fn parse(s: &str) -> Result<Duration, String> {
    let orig = s;
    let bad = || {
        format!("invalid duration {orig:?} (use Go syntax such as \"10s\", \"1m30s\", \"500ms\")")
    };
    let mut s = s.trim();
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    } else if s.starts_with('-') {
        return Err(format!("invalid duration {orig:?}: must not be negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        // The number: digits, optionally a '.', then more digits.
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, rest) = s.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => {
                return Err(format!(
                    "invalid duration {orig:?}: missing unit (ns, us, ms, s, m, h)"
                ))
            }
            _ => return Err(format!("invalid duration {orig:?}: unknown unit {unit:?}")),
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut nanos = int.checked_mul(scale).ok_or_else(bad)?;
        // Fraction: scale each digit down; precision beyond a nanosecond is dropped, as Go does.
        let mut div = scale;
        for d in frac_part.chars() {
            div /= 10;
            if div == 0 {
                break;
            }
            nanos += u128::from(d.to_digit(10).ok_or_else(bad)?) * div;
        }
        total = total.checked_add(nanos).ok_or_else(bad)?;
        s = rest;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn go_duration_syntax() {
        let ok: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1.5h", Duration::from_secs(5400)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("2µs", Duration::from_micros(2)),
            (".5s", Duration::from_millis(500)),
            ("+3s", Duration::from_secs(3)),
            ("0s", Duration::ZERO),
        ];
        for (s, want) in ok {
            assert_eq!(parse(s).unwrap(), *want, "{s}");
        }
        for s in ["", "10", "1x", "s", "1..5s", "-1s", "abc", "1s2", "."] {
            assert!(parse(s).is_err(), "{s:?} should be rejected");
        }
        assert!(parse("10").unwrap_err().contains("missing unit"));
        assert!(parse("-1s").unwrap_err().contains("negative"));
    }
}
