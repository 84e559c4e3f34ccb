//! Service definition files (`lotse services register|deregister FILE...`) → [`Registration`]s.
//!
//! consul hands the files to its agent config loader and converts the loaded services to API
//! registrations; this module does the same for the part that matters here:
//!
//! * a path is a `.json`/`.hcl` file or a directory of them (not sub-directories), read in
//!   lexical order; any other file is skipped with a warning; an empty file has no services;
//! * of each file only the `services` list and the `service` block are read (in that order, the
//!   way consul's builder appends a single `service` to the list), other agent settings are
//!   ignored. Repeated HCL `service` blocks count as a list;
//! * keys are the config file's: snake_case, matched ignoring case and underscores as
//!   mapstructure plus consul's key aliases do (`enable_tag_override`, `EnableTagOverride`);
//!   an unknown key is an `invalid config key` error, a value of the wrong type a decode error;
//! * the conversion is consul's: `check` goes after `checks` into `Checks`, a check's `id`
//!   becomes `CheckID`, weights default to 1/1, an unknown `kind` is a typical service, `token`
//!   and a check's `service_id` are dropped (the API registration has no such fields), zero
//!   values are left out (the API structs are all `omitempty`).

use std::path::{Path, PathBuf};

use crate::config::files::{self, Format};
use crate::config::ConfigError;

use serde_json::{Map, Value};

use super::{Registration, Weights};

mod decode;
use decode::Decoder;

/// What a set of files defines, with the loader's warnings (printed, not fatal).
#[derive(Debug, Default)]
pub struct Loaded {
    pub services: Vec<Registration>,
    pub warnings: Vec<String>,
}

/// Loads the services of `paths`; the error is the text consul prints after `Error: `.
pub fn services_from_files(paths: &[String]) -> Result<Loaded, String> {
    let mut loaded = Loaded::default();
    for path in paths {
        for (file, format) in expand(Path::new(path), &mut loaded.warnings)? {
            let origin = file.display().to_string();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("config: failed to read {origin}: {}", go_io_error(&e)))?;
            if text.trim().is_empty() {
                continue;
            }
            let root =
                parse(&text, format).map_err(|e| format!("failed to parse {origin}: {e}"))?;
            let services =
                services_of(&root).map_err(|e| format!("failed to parse {origin}: {e}"))?;
            loaded.services.extend(services);
        }
    }
    Ok(loaded)
}

/// A file, or the `.json`/`.hcl` files of a directory, with their formats: the agent's own
/// expansion (`config::files`), with consul's CLI wording for its errors and warnings.
fn expand(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<(PathBuf, Format)>, String> {
    let mut found = Vec::new();
    let files = files::expand(path, None, &mut found).map_err(|e| match e {
        ConfigError::Read { error, .. } => format!(
            "config: Open failed on {p}. open {p}: {}",
            go_io_error(&error),
            p = path.display()
        ),
        other => other.to_string(),
    })?;
    // The agent's warnings say `config:` first; consul's `services` command does not.
    warnings.extend(
        found
            .into_iter()
            .map(|w| w.strip_prefix("config: ").map(str::to_string).unwrap_or(w)),
    );
    Ok(files)
}

/// An I/O error as Go prints a syscall error: the lower-case description without Rust's
/// `(os error N)` suffix (`no such file or directory`).
fn go_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn parse(text: &str, format: Format) -> Result<Value, String> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        Format::Hcl => hcl::from_str(text).map_err(|e| e.to_string()),
    }
}

/// Keys compare like mapstructure's case-insensitive match after consul's alias translation,
/// which between them accept `snake_case`, `PascalCase` and all-lower spellings.
fn norm(key: &str) -> String {
    key.chars()
        .filter(|&c| c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The services of one parsed file: `services` entries first, then `service`.
fn services_of(root: &Value) -> Result<Vec<Registration>, String> {
    let Some(root) = root.as_object() else {
        return Err(format!(
            "1 error(s) decoding:\n\n* '' expected a map, got '{}'",
            go_kind(root)
        ));
    };
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for wanted in ["services", "service"] {
        for (key, value) in root.iter().filter(|(k, _)| norm(k) == wanted) {
            let items: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                Value::Null => Vec::new(),
                other => vec![other],
            };
            for (i, item) in items.iter().enumerate() {
                let path = if wanted == "services" || items.len() > 1 {
                    format!("{key}[{i}]")
                } else {
                    key.clone()
                };
                if let Some(r) = d.service(&path, item) {
                    out.push(r);
                }
            }
        }
    }
    d.finish()?;
    Ok(out)
}

/// Go's `%T`-like kind name of a decoded JSON value, for decode errors.
fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `snake_case` → the Go API's field name (`destination_service_id` → `DestinationServiceID`),
/// for the free-form proxy blocks whose fields the agent endpoint matches by name.
fn api_field_name(key: &str) -> String {
    const ACRONYMS: &[&str] = &[
        "id", "ttl", "http", "tcp", "udp", "grpc", "tls", "dns", "ip", "url", "json", "acl",
    ];
    key.split('_')
        .map(|part| {
            if ACRONYMS.contains(&part) {
                part.to_ascii_uppercase()
            } else {
                let mut c = part.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect()
}

/// A proxy block in API form: every key renamed by [`api_field_name`] except inside the opaque
/// `config` maps, which the proxy reads as they are.
fn api_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let value = if norm(k) == "config" {
                    v.clone()
                } else {
                    api_value(v)
                };
                out.insert(api_field_name(k), value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(api_value).collect()),
        other => other.clone(),
    }
}

/// The service kinds consul's builder keeps; any other is a typical service.
fn known_kind(kind: &str) -> bool {
    matches!(
        kind,
        "connect-proxy"
            | "mesh-gateway"
            | "terminating-gateway"
            | "ingress-gateway"
            | "api-gateway"
    )
}

fn default_weights() -> Weights {
    Weights {
        passing: 1,
        warning: 1,
    }
}

#[cfg(test)]
mod tests;
