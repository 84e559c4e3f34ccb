//! Query-string parameters as Consul reads them: a flag is present with or without a value
//! (`?recurse`, `?recurse=`), numbers are strict, and blocking/consistency options are shared.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use lotse_server::{sessions::go_duration, Consistency, QueryOptions};

use crate::reply::ApiError;
use crate::{ApiState, State};

/// The parsed query string plus the request's token.
#[derive(Debug, Default)]
pub struct Params {
    map: HashMap<String, String>,
    pub token: Option<String>,
    /// Consul pretty-prints every answer in `-dev`.
    dev: bool,
}

impl Params {
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    pub fn pretty(&self) -> bool {
        self.dev || self.has("pretty")
    }

    /// An unsigned number parameter parsed as Consul's KV endpoint does: a malformed one is
    /// Go's `strconv.ParseUint` error, answered with a 500 as Consul does.
    pub fn go_uint(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|e: std::num::ParseIntError| {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow => "value out of range",
                    _ => "invalid syntax",
                };
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("strconv.ParseUint: parsing {v:?}: {why}"),
                )
            }),
        }
    }

    /// True if more than one of `flags` is present (Consul's `conflictingFlags`).
    pub fn conflicting(&self, flags: &[&str]) -> bool {
        flags.iter().filter(|f| self.has(f)).count() > 1
    }

    /// Consul's 400 for conflicting flags: it echoes the whole query, encoded and sorted.
    pub fn conflict_error(&self) -> ApiError {
        let mut pairs: Vec<(&String, &String)> = self.map.iter().collect();
        pairs.sort();
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        ApiError::bad_request(format!("Conflicting flags: {encoded}"))
    }

    /// Blocking and consistency options, validated as Consul does.
    pub fn query_options(&self, state: &ApiState) -> Result<QueryOptions, ApiError> {
        self.check_dc(state)?;
        let consistency = match (self.has("stale"), self.has("consistent")) {
            (true, true) => {
                return Err(ApiError::bad_request(
                    "Cannot specify ?stale with ?consistent, conflicting semantics.",
                ))
            }
            (true, false) => Consistency::Stale,
            (false, true) => Consistency::Consistent,
            (false, false) => Consistency::Default,
        };
        let min_index = match self.get("index") {
            None => 0,
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::bad_request("Invalid index"))?,
        };
        let wait = match self.get("wait") {
            None => None,
            Some(v) => {
                Some(go_duration(v).ok_or_else(|| ApiError::bad_request("Invalid wait time"))?)
            }
        };
        Ok(QueryOptions {
            consistency,
            min_index,
            wait,
            token: self.token.clone(),
        })
    }

    /// Consul answers a request for another datacenter it cannot reach with a 500.
    pub fn check_dc(&self, state: &ApiState) -> Result<(), ApiError> {
        match self.get("dc") {
            Some(dc) if !dc.is_empty() && dc != state.agent.datacenter => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "No path to datacenter",
            )),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<State> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            map.entry(k).or_insert(v);
        }
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let token = header("X-Consul-Token")
            .or_else(|| {
                header("Authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
            })
            .or_else(|| map.get("token").cloned())
            .filter(|t| !t.is_empty());
        Ok(Params {
            map,
            token,
            dev: state.agent.dev,
        })
    }
}
