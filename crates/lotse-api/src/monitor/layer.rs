//! The tracing layer that feeds the [`LogHub`]: events formatted as hclog writes them.
//!
//! Text: `2024-01-02T15:04:05.000Z [INFO]  agent: Synced service: service=web1`
//! JSON: `{"@level":"info","@message":"Synced service","@module":"agent","@timestamp":"2024-01-02T15:04:05.000000Z","service":"web1"}`
//!
//! Timestamps are UTC. The module is the event's target with the `lotse_` crate prefix
//! dropped and `::` written as `.` (`lotse_agent::anti_entropy` → `agent.anti_entropy`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::dynamic_filter_fn;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::{LogHub, LogLevel, LogLine};

/// The layer for the agent's subscriber. It carries its own filter (the hub's listening
/// level), so it sees DEBUG events while stdout logs at INFO, provided stdout's level is also
/// a per-layer filter rather than one on the whole subscriber.
pub fn layer<S>(hub: Arc<LogHub>) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let gate = hub.clone();
    HubLayer { hub }.with_filter(dynamic_filter_fn(move |meta, _cx| {
        gate.enabled(LogLevel::of(meta.level()))
    }))
}

struct HubLayer {
    hub: Arc<LogHub>,
}

impl<S: Subscriber> Layer<S> for HubLayer {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        let meta = event.metadata();
        let level = LogLevel::of(meta.level());
        let (text, json) = self.hub.wants(level);
        if !text && !json {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let record = Record {
            time: SystemTime::now(),
            level,
            module: module_name(meta.target()),
            fields,
        };
        self.hub.publish(LogLine {
            level,
            text: text.then(|| record.text()),
            json: json.then(|| record.json()),
        });
    }
}

/// A field's value, kept typed for JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub message: String,
    pub pairs: Vec<(String, FieldValue)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        if field.name() == "message" {
            self.message = match value {
                FieldValue::Str(s) => s,
                other => render_plain(&other),
            };
        } else {
            self.pairs.push((field.name().to_string(), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, FieldValue::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` fields arrive here as Display wrappers, whose Debug is their Display.
        self.push(field, FieldValue::Str(format!("{value:?}")));
    }
}

/// An event ready to be formatted.
pub(crate) struct Record {
    pub time: SystemTime,
    pub level: LogLevel,
    pub module: String,
    pub fields: Fields,
}

impl Record {
    /// hclog's text line: time, bracketed level padded to 7, module, message, `k=v` pairs.
    pub fn text(&self) -> String {
        let bracket = match self.level {
            LogLevel::Trace => "[TRACE]",
            LogLevel::Debug => "[DEBUG]",
            LogLevel::Info => "[INFO] ",
            LogLevel::Warn => "[WARN] ",
            LogLevel::Error => "[ERROR]",
        };
        let mut out = format!("{} {bracket} ", timestamp(self.time, 3));
        if !self.module.is_empty() {
            out.push_str(&self.module);
            out.push_str(": ");
        }
        out.push_str(&self.fields.message);
        if !self.fields.pairs.is_empty() {
            out.push(':');
            for (k, v) in &self.fields.pairs {
                let _ = write!(out, " {k}={}", render_text(v));
            }
        }
        out
    }

    /// hclog's JSON line: `@`-keys first (Go sorts map keys, and `@` sorts before letters),
    /// then the fields.
    pub fn json(&self) -> String {
        let mut m = Map::new();
        m.insert("@level".into(), self.level_name().into());
        m.insert("@message".into(), self.fields.message.clone().into());
        if !self.module.is_empty() {
            m.insert("@module".into(), self.module.clone().into());
        }
        m.insert("@timestamp".into(), timestamp(self.time, 6).into());
        for (k, v) in &self.fields.pairs {
            let v = match v {
                FieldValue::Str(s) => Value::from(s.clone()),
                FieldValue::I64(n) => Value::from(*n),
                FieldValue::U64(n) => Value::from(*n),
                FieldValue::F64(f) => serde_json::Number::from_f64(*f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::from(f.to_string())),
                FieldValue::Bool(b) => Value::from(*b),
            };
            m.insert(k.clone(), v);
        }
        Value::Object(m).to_string()
    }

    fn level_name(&self) -> &'static str {
        match self.level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

fn render_plain(v: &FieldValue) -> String {
    match v {
        FieldValue::Str(s) => s.clone(),
        FieldValue::I64(n) => n.to_string(),
        FieldValue::U64(n) => n.to_string(),
        FieldValue::F64(f) => f.to_string(),
        FieldValue::Bool(b) => b.to_string(),
    }
}

/// A value as hclog writes it in text: strings quoted (Go-style) when empty or when they hold
/// spaces, quotes or unprintable characters.
pub(crate) fn render_text(v: &FieldValue) -> String {
    match v {
        FieldValue::Str(s) if needs_quoting(s) => crate::go_text::quote(s),
        other => render_plain(other),
    }
}

fn needs_quoting(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
}

/// The module name shown for a tracing target.
pub(crate) fn module_name(target: &str) -> String {
    let t = target.strip_prefix("lotse_").unwrap_or(target);
    t.replace("::", ".")
}

/// `2024-01-02T15:04:05.000Z` (`digits` = 3) or `...05.000000Z` (6), in UTC.
pub(crate) fn timestamp(t: SystemTime, digits: u32) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    let frac = d.subsec_nanos() / 10u32.pow(9 - digits);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{frac:0width$}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        width = digits as usize
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
