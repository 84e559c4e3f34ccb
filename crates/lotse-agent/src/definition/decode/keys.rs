//! Key matching and type checking, the way Consul's decoder (Go's `encoding/json` with
//! `DisallowUnknownFields`) reads a registration, driven by a table of each Go struct's fields
//! ([`super::schema`]).
//!
//! [`canonical`] turns request JSON into a *canonical* object: every key replaced by the Go
//! field name it matched, every value checked against the field's Go type, durations turned
//! into signed nanoseconds, nested structs canonical in turn. The rest of the decoder reads
//! only canonical objects, through the accessors at the end of this file, which cannot fail.
//!
//! Matching: a key matches a field when both are equal after lower-casing and removing `_`
//! (Go matches case-insensitively; Lotse also takes snake_case for every field, as config
//! files and py-consul write it), or when it matches one of the field's aliases that way.
//! When several keys match one field, a key spelled exactly as the Go field wins, else the
//! first one in key order. `null` counts as absent (Go leaves the field at its zero value).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

use super::duration;
use crate::definition::DefinitionError;

/// A canonical JSON object (see the module doc).
pub(super) type Object = Map<String, Value>;

/// A Go field's type, as far as decoding cares.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Str,
    Int,
    Bool,
    /// `time.Duration`: Go duration text or a number of nanoseconds; canonical: nanoseconds.
    Duration,
    Strings,
    StrMap,
    /// `map[string][]string` (HTTP check headers).
    Header,
    /// `map[string]interface{}`: any object, kept as it is.
    FreeMap,
    Struct(&'static Schema),
    /// A list of structs, with its Go type name for error texts.
    List(&'static Schema, &'static str),
    /// A map of structs, with its Go type name.
    Map(&'static Schema, &'static str),
    /// Consul Enterprise's `Namespace`/`Partition` (the feature's plural name): accepted and
    /// dropped when empty, refused otherwise, as Consul CE does.
    Enterprise(&'static str),
}

/// One field of a Go struct.
pub(super) struct Field {
    pub go: &'static str,
    pub ty: Ty,
    /// Other spellings Consul accepts for this field (`args` for `ScriptArgs`).
    pub aliases: &'static [&'static str],
}

/// A Go struct: its name (for error texts), its fields, and whether an unknown key is an
/// error (`DisallowUnknownFields`) or ignored (Consul's `ServiceConnect` decodes leniently).
pub(super) struct Schema {
    pub go: &'static str,
    pub fields: &'static [Field],
    /// Fields several structs have alike (a check's probe settings), listed once.
    pub shared: &'static [Field],
    pub strict: bool,
}

impl Schema {
    fn field(&'static self, key: &str) -> Option<&'static Field> {
        let key = normalise(key);
        self.fields
            .iter()
            .chain(self.shared)
            .find(|f| normalise(f.go) == key || f.aliases.iter().any(|a| normalise(a) == key))
    }
}

/// A key as matching sees it: lower case, without `_`.
pub(super) fn normalise(key: &str) -> String {
    key.chars()
        .filter(|&c| c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// A 400 with Consul's decode prefix.
pub(super) fn decode_error(message: impl std::fmt::Display) -> DefinitionError {
    DefinitionError::bad_request(format!("Request decode failed: {message}"))
}

/// The canonical form of a request body that must decode into `schema`. A top-level `null`
/// is an empty object (Go leaves the struct empty).
pub(super) fn canonical(body: &Value, schema: &'static Schema) -> Result<Object, DefinitionError> {
    match body {
        Value::Null => Ok(Object::new()),
        Value::Object(obj) => object(obj, schema),
        other => Err(decode_error(format!(
            "json: cannot unmarshal {} into Go value of type structs.{}",
            json_type(other),
            schema.go
        ))),
    }
}

fn object(obj: &Map<String, Value>, schema: &'static Schema) -> Result<Object, DefinitionError> {
    let mut out = Object::new();
    let mut exact: BTreeSet<&'static str> = BTreeSet::new();
    for (key, value) in obj {
        let Some(field) = schema.field(key) else {
            if schema.strict {
                return Err(decode_error(format!("json: unknown field {key:?}")));
            }
            continue;
        };
        if let Ty::Enterprise(feature) = field.ty {
            match value {
                Value::Null => continue,
                Value::String(s) if s.is_empty() => continue,
                Value::String(_) => {
                    return Err(decode_error(format!(
                        "json: unknown field {key:?} - {feature} are a Consul Enterprise feature"
                    )))
                }
                other => return Err(type_error(other, schema, field, "string")),
            }
        }
        if value.is_null() {
            continue;
        }
        let converted = convert(value, field, schema)?;
        let spelled_exactly = key == field.go;
        if out.contains_key(field.go) && (exact.contains(field.go) || !spelled_exactly) {
            continue;
        }
        if spelled_exactly {
            exact.insert(field.go);
        }
        out.insert(field.go.to_string(), converted);
    }
    Ok(out)
}

fn convert(
    value: &Value,
    field: &Field,
    schema: &'static Schema,
) -> Result<Value, DefinitionError> {
    let wrong = |v: &Value, go_type: &str| Err(type_error(v, schema, field, go_type));
    match (field.ty, value) {
        (Ty::Str, Value::String(_)) | (Ty::Bool, Value::Bool(_)) => Ok(value.clone()),
        (Ty::Str | Ty::Enterprise(_), v) => wrong(v, "string"),
        (Ty::Bool, v) => wrong(v, "bool"),
        (Ty::Int, Value::Number(n)) if n.as_i64().is_some() => Ok(value.clone()),
        (Ty::Int, v) => wrong(v, "int"),
        (Ty::Duration, Value::String(s)) => duration::parse(s)
            .map(|nanos| Value::Number(nanos.into()))
            .map_err(decode_error),
        (Ty::Duration, Value::Number(n)) => {
            // Go: time.Duration(float64): truncated towards zero (saturated here).
            let nanos = n
                .as_i64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64);
            Ok(Value::Number(nanos.into()))
        }
        (Ty::Duration, v) => wrong(v, "time.Duration"),
        (Ty::Strings, Value::Array(items)) => items
            .iter()
            .map(|item| string_item(item, schema, field))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (Ty::Strings, v) => wrong(v, "[]string"),
        (Ty::StrMap, Value::Object(map)) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), string_item(v, schema, field)?);
            }
            Ok(Value::Object(out))
        }
        (Ty::StrMap, v) => wrong(v, "map[string]string"),
        (Ty::Header, Value::Object(map)) => {
            let mut out = Map::new();
            for (k, v) in map {
                let values = match v {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items
                        .iter()
                        .map(|item| string_item(item, schema, field))
                        .collect::<Result<Vec<_>, _>>()?,
                    other => return wrong(other, "[]string"),
                };
                out.insert(k.clone(), Value::Array(values));
            }
            Ok(Value::Object(out))
        }
        (Ty::Header, v) => wrong(v, "map[string][]string"),
        (Ty::FreeMap, Value::Object(_)) => Ok(value.clone()),
        (Ty::FreeMap, v) => wrong(v, "map[string]interface {}"),
        (Ty::Struct(inner), Value::Object(obj)) => object(obj, inner).map(Value::Object),
        (Ty::Struct(inner), v) => wrong(v, &format!("structs.{}", inner.go)),
        (Ty::List(inner, _), Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(match item {
                    // Kept: a `null` entry is still an entry (Go: a nil pointer).
                    Value::Null => Value::Null,
                    Value::Object(obj) => Value::Object(object(obj, inner)?),
                    other => return wrong(other, &format!("structs.{}", inner.go)),
                });
            }
            Ok(Value::Array(out))
        }
        (Ty::List(_, go_type), v) => wrong(v, go_type),
        (Ty::Map(inner, _), Value::Object(map)) => {
            let mut out = Map::new();
            for (k, v) in map {
                let entry = match v {
                    Value::Null => Object::new(),
                    Value::Object(obj) => object(obj, inner)?,
                    other => return wrong(other, &format!("structs.{}", inner.go)),
                };
                out.insert(k.clone(), Value::Object(entry));
            }
            Ok(Value::Object(out))
        }
        (Ty::Map(_, go_type), v) => wrong(v, go_type),
    }
}

/// A string inside a list or map (`null` is Go's zero value, the empty string).
fn string_item(item: &Value, schema: &Schema, field: &Field) -> Result<Value, DefinitionError> {
    match item {
        Value::String(_) => Ok(item.clone()),
        Value::Null => Ok(Value::String(String::new())),
        other => Err(type_error(other, schema, field, "string")),
    }
}

/// Go's `UnmarshalTypeError` text.
fn type_error(value: &Value, schema: &Schema, field: &Field, go_type: &str) -> DefinitionError {
    let what = match value {
        // Go names the literal when the number itself does not fit (1.5 into an int).
        Value::Number(n) if go_type == "int" => format!("number {n}"),
        other => json_type(other).to_string(),
    };
    decode_error(format!(
        "json: cannot unmarshal {what} into Go struct field {}.{} of type {go_type}",
        schema.go, field.go
    ))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// Accessors for canonical objects: the types were checked, so these only default.

pub(super) fn str_of<'a>(obj: &'a Object, field: &str) -> &'a str {
    obj.get(field).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn int_of(obj: &Object, field: &str) -> i64 {
    obj.get(field).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn bool_of(obj: &Object, field: &str) -> bool {
    opt_bool(obj, field).unwrap_or(false)
}

/// A boolean that may be absent (Consul defaults some to true).
pub(super) fn opt_bool(obj: &Object, field: &str) -> Option<bool> {
    obj.get(field).and_then(Value::as_bool)
}

pub(super) fn strings_of(obj: &Object, field: &str) -> Vec<String> {
    list_of(obj, field)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

pub(super) fn str_map_of(obj: &Object, field: &str) -> BTreeMap<String, String> {
    obj_of(obj, field)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn header_of(obj: &Object, field: &str) -> BTreeMap<String, Vec<String>> {
    obj_of(obj, field)
        .map(|m| m.keys().map(|k| (k.clone(), strings_of(m, k))).collect())
        .unwrap_or_default()
}

pub(super) fn obj_of<'a>(obj: &'a Object, field: &str) -> Option<&'a Object> {
    obj.get(field).and_then(Value::as_object)
}

pub(super) fn list_of<'a>(obj: &'a Object, field: &str) -> &'a [Value] {
    obj.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A canonical number value.
pub(super) fn number(n: i64) -> Value {
    Value::Number(Number::from(n))
}
