//! Query-string parameters as Consul reads them: a flag is present with or without a value
//! (`?recurse`, `?recurse=`), numbers are strict, and blocking/consistency options are shared.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use lotse_server::{sessions::go_duration, Consistency, QueryOptions};

use crate::reply::ApiError;
use crate::{ApiState, State};

#[cfg(test)]
mod fuzz;

/// The parsed query string plus the request's token.
#[derive(Debug, Default)]
pub struct Params {
    /// The first value of each name (Go's `url.Values.Get`).
    map: HashMap<String, String>,
    /// Every pair in request order, for repeatable parameters (`?tag=a&tag=b`).
    pairs: Vec<(String, String)>,
    pub token: Option<String>,
    /// Consul pretty-prints every answer in `-dev`.
    dev: bool,
}

impl Params {
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The first value of `name`, as Go's `url.Values.Get`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Every value of `name`, in request order (Go's `url.Values[name]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Consul's `?node-meta=key:value` filters (`parseMetaFilter`): repeatable, split at the
    /// first `:` (no `:` means an empty value), one value per key with the last one winning;
    /// sorted by key.
    pub fn node_meta(&self) -> Vec<(String, String)> {
        let mut map = std::collections::BTreeMap::new();
        for raw in self.all("node-meta") {
            let (k, v) = raw.split_once(':').unwrap_or((raw, ""));
            map.insert(k.to_string(), v.to_string());
        }
        map.into_iter().collect()
    }

    /// A boolean flag as Consul's `getBoolQueryParam`: absent is false, present without a
    /// value is true, otherwise Go's `strconv.ParseBool` (None: not a boolean).
    pub fn go_bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            None => Some(false),
            Some("") => Some(true),
            Some(v) => parse_go_bool(v),
        }
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
        self.blocking_options()
    }

    /// [`Params::query_options`] without the datacenter check, for endpoints that report an
    /// unknown datacenter later (after Consul's handlers have set their query headers).
    pub fn blocking_options(&self) -> Result<QueryOptions, ApiError> {
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

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Params {
    /// Parses a raw query string (no token, not `-dev`).
    pub fn from_query(query: &str) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))?;
        let mut map = HashMap::new();
        for (k, v) in &pairs {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Ok(Params {
            map,
            pairs,
            token: None,
            dev: false,
        })
    }
}

impl FromRequestParts<State> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let mut params = Params::from_query(parts.uri.query().unwrap_or(""))?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        params.token = header("X-Consul-Token")
            .or_else(|| {
                header("Authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
            })
            .or_else(|| params.map.get("token").cloned())
            .filter(|t| !t.is_empty());
        params.dev = state.agent.dev;
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(query: &str) -> Params {
        Params::from_query(query).unwrap()
    }

    #[test]
    fn get_answers_the_first_value_and_all_every_value() {
        let p = q("tag=a&x=1&tag=B&tag=");
        assert_eq!(p.get("tag"), Some("a"));
        assert_eq!(p.all("tag"), vec!["a", "B", ""]);
        assert!(p.all("missing").is_empty());
        assert!(p.has("x") && !p.has("missing"));
    }

    #[test]
    fn node_meta_splits_at_the_first_colon_and_the_last_value_of_a_key_wins() {
        let p = q("node-meta=rack:r1&node-meta=url:http://x:80&node-meta=bare&node-meta=rack:r2");
        assert_eq!(
            p.node_meta(),
            vec![
                ("bare".to_string(), String::new()),
                ("rack".to_string(), "r2".to_string()),
                ("url".to_string(), "http://x:80".to_string()),
            ]
        );
        assert!(q("").node_meta().is_empty());
    }

    #[test]
    fn go_bool_reads_flags_as_consul_does() {
        assert_eq!(q("").go_bool("passing"), Some(false));
        assert_eq!(q("passing").go_bool("passing"), Some(true));
        assert_eq!(q("passing=").go_bool("passing"), Some(true));
        assert_eq!(q("passing=T").go_bool("passing"), Some(true));
        assert_eq!(q("passing=0").go_bool("passing"), Some(false));
        assert_eq!(q("passing=yes").go_bool("passing"), None);
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", "2", " true"] {
            assert_eq!(parse_go_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn blocking_options_parse_index_wait_and_consistency() {
        let o = q("index=12&wait=3s&stale").blocking_options().unwrap();
        assert_eq!(o.min_index, 12);
        assert_eq!(o.wait, Some(std::time::Duration::from_secs(3)));
        assert_eq!(o.consistency, Consistency::Stale);
        assert_eq!(
            q("index=x").blocking_options().unwrap_err().reason,
            "Invalid index"
        );
        assert_eq!(
            q("wait=10").blocking_options().unwrap_err().reason,
            "Invalid wait time"
        );
        assert_eq!(
            q("stale&consistent").blocking_options().unwrap_err().status,
            400
        );
    }
}
