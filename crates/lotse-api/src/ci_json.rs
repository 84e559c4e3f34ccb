//! Request bodies read the way Go's `encoding/json` reads them: object keys match struct fields
//! case-insensitively, so `{"verb": "set"}` and `{"Verb": "set"}` mean the same.

use serde_json::{Map, Value};

use crate::reply::ApiError;

/// Parses a JSON body, with Consul's 400 on malformed input.
pub fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))
}

/// Looks up `name` in `obj`: an exact match first, else the first key equal ignoring case.
pub fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A string field (`null` and absent are `None`); another type is a 400 naming the field.
pub fn string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "Request decode failed: field {name} must be a string, not {other}"
        ))),
    }
}

/// An unsigned integer field.
pub fn uint(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Request decode failed: field {name} must be an unsigned integer, not {n}"
            ))
        }),
        Some(other) => Err(ApiError::bad_request(format!(
            "Request decode failed: field {name} must be a number, not {other}"
        ))),
    }
}

/// A list of strings.
pub fn strings(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ApiError::bad_request(format!(
                    "Request decode failed: {name} must hold strings, not {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(ApiError::bad_request(format!(
            "Request decode failed: field {name} must be a list, not {other}"
        ))),
    }
}

/// The value as an object, or a 400.
pub fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| {
        ApiError::bad_request(format!("Request decode failed: {what} must be an object"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_match_ignoring_case_with_exact_match_first() {
        let v = json!({"verb": "set", "KEY": "a", "Key": "b"});
        let o = v.as_object().unwrap();
        assert_eq!(string(o, "Verb").unwrap().as_deref(), Some("set"));
        assert_eq!(string(o, "Key").unwrap().as_deref(), Some("b"));
        assert_eq!(string(o, "Missing").unwrap(), None);
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let v = json!({"Flags": "x", "Name": 3, "Checks": [1]});
        let o = v.as_object().unwrap();
        assert_eq!(uint(o, "Flags").unwrap_err().status, 400);
        assert_eq!(string(o, "Name").unwrap_err().status, 400);
        assert_eq!(strings(o, "Checks").unwrap_err().status, 400);
    }
}
