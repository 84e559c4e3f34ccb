//! Catalog request bodies read the way Consul's Go decoder reads them (`encoding/json` with
//! `DisallowUnknownFields`): keys match field names case-insensitively, an unknown key or a
//! value of the wrong JSON type is refused with Go's error text, `null` is the zero value.
//!
//! * [`GoObject`]: one JSON object decoded as one Go struct.
//! * [`register`] / [`deregister`]: `structs.RegisterRequest` / `structs.DeregisterRequest`
//!   (`bodies`).
//! * [`service`], [`check`], [`definition`], [`proxy`], [`connect`]: the pieces (`bodies`,
//!   `blocks`), shared with the catalog operations of `/v1/txn` ([`crate::txn_catalog`]).
//!
//! The errors are Go's texts without a prefix; the endpoints add theirs
//! (`Request decode failed: `, `Failed to parse body: `). Validation that Consul does after
//! decoding (the 500s of `Catalog.Register`) is the endpoint's, not this module's.

use std::collections::BTreeMap;
use std::time::Duration;

use lotse_agent::definition::decode::{go_duration_string, parse_go_duration};
use serde_json::{Map, Value};

/// Go's text for a decode failure.
pub type DecodeError = String;

/// What Go's errors call a JSON value's type.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `UnmarshalTypeError` value text: the JSON type, and for a number that does not fit a
/// numeric field (`1.5` or `-1` into an `int`/`uint64`) the literal too, as Go writes it.
fn type_text(v: &Value, go_type: &str) -> String {
    match v {
        Value::Number(n) if matches!(go_type, "int" | "uint64") => format!("number {n}"),
        other => kind(other).to_string(),
    }
}

/// A JSON object being decoded as the Go struct `strukt`, reached through `path` (`Service`,
/// `Checks`...) from the request's top level.
#[derive(Debug, Clone)]
pub struct GoObject<'a> {
    map: &'a Map<String, Value>,
    strukt: &'static str,
    path: String,
}

impl<'a> GoObject<'a> {
    /// The request body itself; `null` decodes as the zero struct, anything else that is not
    /// an object is Go's "cannot unmarshal" error.
    pub fn root(
        v: &'a Value,
        strukt: &'static str,
        go_type: &str,
    ) -> Result<GoObject<'a>, DecodeError> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match v {
            Value::Object(map) => Ok(GoObject {
                map,
                strukt,
                path: String::new(),
            }),
            Value::Null => Ok(GoObject {
                map: EMPTY.get_or_init(Map::new),
                strukt,
                path: String::new(),
            }),
            other => Err(format!(
                "json: cannot unmarshal {} into Go value of type {go_type}",
                kind(other)
            )),
        }
    }

    fn type_error(&self, field: &str, v: &Value, go_type: &str) -> DecodeError {
        let path = if self.path.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.path)
        };
        format!(
            "json: cannot unmarshal {} into Go struct field {}.{path} of type {go_type}",
            type_text(v, go_type),
            self.strukt
        )
    }

    /// Refuses any key that matches none of `fields` (ignoring case), as
    /// `DisallowUnknownFields` does.
    pub fn known(&self, fields: &[&str]) -> Result<(), DecodeError> {
        match self
            .map
            .keys()
            .find(|k| !fields.iter().any(|f| f.eq_ignore_ascii_case(k)))
        {
            Some(k) => Err(format!("json: unknown field {k:?}")),
            None => Ok(()),
        }
    }

    /// The value of `name`: an exact key first, else the first key equal ignoring case.
    /// `null` reads as absent.
    pub fn field(&self, name: &str) -> Option<&'a Value> {
        self.map
            .get(name)
            .or_else(|| {
                self.map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<String, DecodeError> {
        self.string_as(name, "string")
    }

    /// A string field of a named Go string type (`types.NodeID`), for error texts.
    pub fn string_as(&self, name: &str, go_type: &str) -> Result<String, DecodeError> {
        match self.field(name) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.type_error(name, v, go_type)),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64, DecodeError> {
        match self.field(name) {
            None => Ok(0),
            Some(v @ Value::Number(n)) => n.as_i64().ok_or_else(|| self.type_error(name, v, "int")),
            Some(v) => Err(self.type_error(name, v, "int")),
        }
    }

    pub fn uint(&self, name: &str) -> Result<u64, DecodeError> {
        match self.field(name) {
            None => Ok(0),
            Some(v @ Value::Number(n)) => {
                n.as_u64().ok_or_else(|| self.type_error(name, v, "uint64"))
            }
            Some(v) => Err(self.type_error(name, v, "uint64")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, DecodeError> {
        match self.field(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.type_error(name, v, "bool")),
        }
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>, DecodeError> {
        match self.field(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    Value::Null => Ok(String::new()),
                    other => Err(self.type_error(name, other, "string")),
                })
                .collect(),
            Some(v) => Err(self.type_error(name, v, "[]string")),
        }
    }

    pub fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, DecodeError> {
        match self.field(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Null => Ok((k.clone(), String::new())),
                    other => Err(self.type_error(name, other, "string")),
                })
                .collect(),
            Some(v) => Err(self.type_error(name, v, "map[string]string")),
        }
    }

    /// A nested struct `strukt` (None when absent or `null`).
    pub fn object(
        &self,
        name: &str,
        strukt: &'static str,
    ) -> Result<Option<GoObject<'a>>, DecodeError> {
        match self.field(name) {
            None => Ok(None),
            Some(v) => self.child(name, v, strukt).map(Some),
        }
    }

    /// A list of structs `strukt`.
    pub fn objects(
        &self,
        name: &str,
        strukt: &'static str,
    ) -> Result<Vec<GoObject<'a>>, DecodeError> {
        match self.field(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|i| !i.is_null())
                .map(|i| self.child(name, i, strukt))
                .collect(),
            Some(v) => Err(self.type_error(name, v, &format!("[]*structs.{strukt}"))),
        }
    }

    /// A map of structs `strukt` by key.
    pub fn object_map(
        &self,
        name: &str,
        strukt: &'static str,
    ) -> Result<Vec<(String, GoObject<'a>)>, DecodeError> {
        match self.field(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.child(name, v, strukt)?)))
                .collect(),
            Some(v) => Err(self.type_error(name, v, &format!("map[string]structs.{strukt}"))),
        }
    }

    /// The raw value of a field that is kept as it is (an object or list passed through).
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.field(name)
    }

    /// A `time.Duration` as Consul's custom decoders read it: Go duration text, or a number
    /// of nanoseconds; other types are ignored. Nanoseconds.
    pub fn duration(&self, name: &str) -> Result<i64, DecodeError> {
        match self.field(name) {
            Some(Value::String(s)) => parse_go_duration(s),
            Some(Value::Number(n)) => Ok(n.as_f64().map_or(0, |f| f as i64)),
            _ => Ok(0),
        }
    }

    /// The value of field `name` (or one of its items) as the nested struct `strukt`.
    fn child(
        &self,
        name: &str,
        v: &'a Value,
        strukt: &'static str,
    ) -> Result<GoObject<'a>, DecodeError> {
        match v {
            Value::Object(map) => Ok(GoObject {
                map,
                strukt,
                path: self.child_path(name),
            }),
            other => Err(self.type_error(name, other, &format!("structs.{strukt}"))),
        }
    }

    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }
}

/// Consul CE's wording for the Enterprise-only fields it does not know.
pub fn reword_enterprise(e: DecodeError) -> DecodeError {
    if e.ends_with("unknown field \"Namespace\"") {
        format!("{e} - Namespaces are a Consul Enterprise feature")
    } else if e.ends_with("unknown field \"Partition\"") {
        format!("{e} - Partitions are a Consul Enterprise feature")
    } else {
        e
    }
}

/// Go duration text for nanoseconds, empty for zero or less.
pub fn duration_text(ns: i64) -> String {
    if ns <= 0 {
        String::new()
    } else {
        go_duration_string(Duration::from_nanos(ns as u64))
    }
}

mod blocks;
mod bodies;

pub use blocks::{connect, definition, proxy, Definition};
pub use bodies::{
    check, check_as, deregister, register, service, weights, CheckBody, CheckStruct, RegisterBody,
    ServiceBody,
};

#[cfg(test)]
mod tests;
