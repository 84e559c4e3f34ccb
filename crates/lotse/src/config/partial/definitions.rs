//! `service`, `services`, `check` and `checks`: definitions registered by the agent at start
//! and on every reload (Consul's "Services configuration reference" and "Checks configuration
//! reference").
//!
//! Each key takes one block or a list of them; HCL gives a single block as a map and repeated
//! blocks (`service { } service { }`) as a list of maps, so both shapes are read for all four
//! keys. The definitions are kept as written (a JSON value) and validated here, with the same
//! decoder the HTTP API uses, so that a bad definition fails the load with the file and the
//! service or check it is about, and the running agent never sees it.
//!
//! HCL shapes inside a service are evened out before validation: a single `checks { }` block
//! (a map) becomes a one-element list, and repeated `check { }` blocks (a list) go to the
//! front of `checks` (Consul reads `check` before `checks`). Consul itself refuses repeated
//! `check` blocks; Lotse reads them as the list they obviously mean.
//! The same applies to `connect { sidecar_service { } }`.

use serde_json::{Map, Value};

use super::{expected, Cx};
use crate::config::ConfigError;

/// The service definitions under `key` (`service` or `services`), validated.
pub fn services(key: &str, v: &Value, cx: &Cx) -> Result<Vec<Value>, ConfigError> {
    let mut out = blocks(key, v, cx)?;
    for s in &mut out {
        even_out_service(s);
        lotse_agent::definition::decode::service(s)
            .map_err(|e| definition_error("service", s, &["name", "id"], cx, e))?;
    }
    Ok(out)
}

/// The check definitions under `key` (`check` or `checks`), validated.
pub fn checks(key: &str, v: &Value, cx: &Cx) -> Result<Vec<Value>, ConfigError> {
    let out = blocks(key, v, cx)?;
    for c in &out {
        lotse_agent::definition::decode::check(c)
            .map_err(|e| definition_error("check", c, &["name", "id", "check_id"], cx, e))?;
    }
    Ok(out)
}

/// One block (a map) or a list of them.
fn blocks(key: &str, v: &Value, cx: &Cx) -> Result<Vec<Value>, ConfigError> {
    let what = "a map (block) or a list of maps";
    match v {
        Value::Object(_) => Ok(vec![v.clone()]),
        Value::Array(items) if items.iter().all(Value::is_object) => Ok(items.clone()),
        _ => Err(cx.err(key, expected(what, v))),
    }
}

fn definition_error(
    kind: &'static str,
    def: &Value,
    name_keys: &[&str],
    cx: &Cx,
    e: lotse_agent::definition::DefinitionError,
) -> ConfigError {
    let name = def.as_object().and_then(|m| {
        name_keys
            .iter()
            .find_map(|k| get(m, k).and_then(Value::as_str).filter(|s| !s.is_empty()))
    });
    ConfigError::Definition {
        kind,
        name: name.map(str::to_string),
        origin: cx.origin.to_string(),
        reason: e.message,
    }
}

/// The value under `key`, matched as the decoder matches keys (case and `_` aside).
fn get<'m>(m: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    key_of(m, key).and_then(|k| m.get(&k))
}

fn key_of(m: &Map<String, Value>, key: &str) -> Option<String> {
    let norm = |s: &str| s.replace('_', "").to_ascii_lowercase();
    let want = norm(key);
    m.keys().find(|k| norm(k) == want).cloned()
}

/// Evens out the HCL shapes of a service's checks, and of its sidecar's.
fn even_out_service(service: &mut Value) {
    let Value::Object(m) = service else { return };
    if let Some(one @ Value::Object(_)) = key_of(m, "checks").and_then(|k| m.get_mut(&k)) {
        *one = Value::Array(vec![one.take()]);
    }
    let repeated = match key_of(m, "check") {
        Some(k) if m[&k].is_array() => m.remove(&k).map(|v| (k, v)),
        _ => None,
    };
    if let Some((check_key, Value::Array(repeated))) = repeated {
        // First, as Consul takes `Check` before `Checks` (check IDs number them in order).
        let checks_key = key_of(m, "checks").unwrap_or_else(|| "checks".to_string());
        match m
            .entry(checks_key)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(list) => {
                list.splice(0..0, repeated);
            }
            // `checks` of another type: put them back and let the decoder name the problem.
            _ => {
                m.insert(check_key, Value::Array(repeated));
            }
        }
    }
    let sidecar = key_of(m, "connect")
        .and_then(|k| m.get_mut(&k))
        .and_then(Value::as_object_mut)
        .and_then(|c| key_of(c, "sidecar_service").and_then(|k| c.get_mut(&k)));
    if let Some(s) = sidecar {
        even_out_service(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hcl_shapes_of_checks_are_evened_out() {
        let mut s = json!({
            "name": "web",
            "checks": {"ttl": "10s"},
            "check": [{"ttl": "20s"}, {"ttl": "30s"}],
            "connect": {"sidecar_service": {"checks": {"ttl": "5s"}}}
        });
        even_out_service(&mut s);
        assert_eq!(
            s,
            json!({
                "name": "web",
                "checks": [{"ttl": "20s"}, {"ttl": "30s"}, {"ttl": "10s"}],
                "connect": {"sidecar_service": {"checks": [{"ttl": "5s"}]}}
            })
        );
        // A single `check` block is left as it is.
        let mut s = json!({"name": "web", "check": {"ttl": "1s"}});
        even_out_service(&mut s);
        assert_eq!(s, json!({"name": "web", "check": {"ttl": "1s"}}));
    }
}
