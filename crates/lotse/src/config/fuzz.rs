//! Bolero fuzz targets for configuration text: a file's JSON or HCL through parsing,
//! decoding and validation (what `-config-file`, `-config-dir` and `-hcl` feed the agent),
//! and Go durations.
//!
//! Under `cargo test` each target replays its seed corpus
//! (`src/config/__fuzz__/config__fuzz__<target>/corpus`: plain configuration files and
//! duration strings) and then runs bolero's random engine for its default second.
//! Coverage-guided (libFuzzer):
//!
//! ```sh
//! cargo bolero test config::fuzz::fuzz_config_file -p lotse --sanitizer NONE -T 60s
//! ```

use serde_json::Value;

use super::files::{parse, Format};
use super::partial::{decode, Cx};
use super::{duration, finalize, ConfigError};

const ORIGIN: &str = "/fuzz/agent.conf";

/// Decodes and validates a parsed source as the agent's only configuration. Every error names
/// what it is about: the file for a syntax or value error, a non-empty reason otherwise.
fn load(value: &Value) -> Result<(), String> {
    let mut warnings = Vec::new();
    let outcome = decode(
        value,
        &mut Cx {
            origin: ORIGIN,
            warnings: &mut warnings,
        },
    )
    .and_then(|p| {
        let hostname = || Some("fuzzhost".to_string());
        finalize(p, false, vec![ORIGIN.to_string()], &hostname, &mut warnings)
    });
    match outcome {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string();
            match &e {
                ConfigError::Syntax { .. }
                | ConfigError::Value { .. }
                | ConfigError::Definition { .. } => {
                    assert!(text.contains(ORIGIN), "{text:?} does not name the file")
                }
                _ => assert!(!text.trim().is_empty(), "{e:?} has no message"),
            }
            if let ConfigError::Value { key, .. } = &e {
                assert!(!key.is_empty(), "{text:?} names no key");
            }
            Err(text)
        }
    }
}

/// Equal JSON values, except that floats may differ in their last bits: serde_json (without
/// its `float_roundtrip` feature) may read a long decimal one unit in the last place away from
/// the nearest float, so a float does not always survive render and parse exactly (found by
/// this target: `seed-regression-float-digits`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Any text, read as HCL and as JSON: a syntax error names the file; what parses decodes and
/// validates to a configuration or to an error naming the file or the reason, never a panic.
/// And what parses means the same written as JSON: its JSON rendering parses back to the same
/// value (floats to within a few units in the last place), which loads with the same outcome.
#[test]
fn fuzz_config_file() {
    bolero::check!().for_each(|input: &[u8]| {
        let text = String::from_utf8_lossy(input);
        for format in [Format::Hcl, Format::Json] {
            let value = match parse(&text, format, ORIGIN) {
                Ok(v) => v,
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        matches!(e, ConfigError::Syntax { .. }) && msg.contains(ORIGIN),
                        "{format:?}: {msg:?}"
                    );
                    continue;
                }
            };
            let outcome = load(&value);
            let json = serde_json::to_string(&value).expect("a JSON value renders");
            let back = parse(&json, Format::Json, ORIGIN)
                .unwrap_or_else(|e| panic!("{format:?}: rendered {json:?} does not parse: {e}"));
            assert!(same(&back, &value), "{format:?}: {json:?} is not {value}");
            if back == value {
                assert_eq!(load(&back), outcome, "{format:?}: {json:?}");
            }
        }
    });
}

/// Any string: a duration, or an error that quotes the input. A duration written back as
/// whole seconds plus nanoseconds, or as nanoseconds alone, parses to itself, and an explicit
/// `+` changes nothing.
#[test]
fn fuzz_duration() {
    bolero::check!().for_each(|input: &[u8]| {
        let s = String::from_utf8_lossy(input);
        match duration::parse(&s) {
            Ok(d) => {
                let split = format!("{}s{}ns", d.as_secs(), d.subsec_nanos());
                assert_eq!(duration::parse(&split), Ok(d), "{s:?} as {split:?}");
                let nanos = format!("{}ns", d.as_nanos());
                assert_eq!(duration::parse(&nanos), Ok(d), "{s:?} as {nanos:?}");
                if s.trim() == s && !s.starts_with('+') {
                    assert_eq!(duration::parse(&format!("+{s}")), Ok(d), "+{s:?}");
                }
            }
            Err(e) => assert!(e.contains(&format!("{s:?}")), "{e:?} does not quote {s:?}"),
        }
    });
}
