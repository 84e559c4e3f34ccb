//! An upstream's configuration, read from the `Config` map of a Consul upstream
//! (`Proxy.Upstreams[].Config`), so a sidecar registration carries everything the proxy needs.
//!
//! Keys follow Consul's where Consul has one (`protocol`, `connect_timeout_ms`, `limits`,
//! `passive_health_check`) and Consul's config-entry shapes in snake case where it keeps them
//! elsewhere (`load_balancer` from a service-resolver, `retries` from a service-router). Every
//! key is optional; see [`UpstreamConfig::default`] for the defaults (Envoy's where it has one).
//!
//! ```hcl
//! config {
//!   protocol           = "http"        # tcp (default) | http | http2 | grpc
//!   connect_timeout_ms = 5000
//!   request_timeout_ms = 15000         # end of request → response headers, across retries (504)
//!   limits {
//!     max_connections         = 1024
//!     max_pending_requests    = 1024   # waiting for a connection slot
//!     max_concurrent_requests = 1024
//!   }
//!   passive_health_check {
//!     max_failures         = 5         # consecutive 5xx or gateway failures
//!     base_ejection_time   = "30s"     # × times ejected, capped by max_ejection_time (300s)
//!     max_ejection_percent = 10
//!     interval             = "10s"     # good behaviour for this long forgives one ejection
//!     success_rate {                   # optional (off unless given): every interval, eject
//!       minimum_hosts  = 5             # endpoints whose success rate is below
//!       request_volume = 100           #   mean - stdev_factor × stdev over the endpoints
//!       stdev_factor   = 1.9           #   with request_volume requests, if minimum_hosts have
//!     }
//!   }
//!   load_balancer {
//!     policy        = "least_request"  # round_robin (default) | least_request | ring_hash | maglev
//!     hash_policies = [{ field = "header", field_value = "x-user" }]   # or field = "cookie"
//!   }
//!   retries {
//!     num_retries              = 2
//!     retry_on_connect_failure = true
//!     retry_on_status_codes    = [503]
//!     per_try_timeout_ms       = 5000
//!     budget_percent           = 20    # retries ≤ 20% of requests ...
//!     budget_min_per_second    = 3     # ... + 3 per second
//!   }
//!   rate_limit {
//!     requests_per_second            = 100   # the route's bucket
//!     burst                          = 100
//!     per_client_requests_per_second = 10    # one bucket per client IP
//!     per_client_burst               = 10
//!   }
//!   load_shed {
//!     max_in_flight = 10000
//!   }
//!   max_request_body_bytes = 4194304   # bodies stream; a copy of up to this is kept for
//!                                      # retries (larger bodies go to one endpoint)
//!   stream_idle_timeout_ms = 300000    # a body (either way), upgraded stream or TCP connection idle this long
//!                                      # is cut; 0: never (Envoy's default is 5 min too)
//! }
//! ```
//!
//! Errors name the field (`config.limits.max_connections: expected a non-negative integer`).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::ProxyError;

/// The wire protocol of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// L4: bytes are spliced; balancing per connection. Consul's default.
    Tcp,
    /// L7 HTTP/1.1 to the upstream (clients may speak HTTP/1.1 or h2c).
    Http,
    /// L7 with HTTP/2 (prior knowledge) to the upstream.
    Http2,
    /// As `Http2`; gRPC is HTTP/2.
    Grpc,
}

impl Protocol {
    pub fn is_l7(self) -> bool {
        !matches!(self, Protocol::Tcp)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an endpoint is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    RoundRobin,
    LeastRequest,
    RingHash,
}

/// What a consistent hash is computed over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum HashOn {
    Header(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_concurrent_requests: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    /// Consecutive 5xx answers or gateway failures (connect errors, resets) that eject.
    pub max_failures: u32,
    pub base_ejection_time: Duration,
    /// 0 disables ejection; otherwise at least one endpoint may be ejected (as Envoy does).
    pub max_ejection_percent: u32,
    /// An ejection multiplier is forgiven one step per `interval` of good behaviour.
    pub interval: Duration,
    pub max_ejection_time: Duration,
    /// Success-rate ejection (Envoy's), evaluated every `interval`; `None`: off.
    pub success_rate: Option<SuccessRateConfig>,
}

/// Envoy's success-rate outlier detection, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessRateConfig {
    /// Fewer endpoints with enough requests in an interval: no evaluation.
    pub minimum_hosts: u32,
    /// Requests an endpoint needs in the interval to be judged.
    pub request_volume: u32,
    /// Ejected below `mean - stdev_factor × stdev` (Envoy: 1900 thousandths).
    pub stdev_factor: f64,
}

impl Default for SuccessRateConfig {
    fn default() -> Self {
        SuccessRateConfig {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1.9,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub num_retries: u32,
    pub retry_on_connect_failure: bool,
    pub retry_on_status_codes: Vec<u16>,
    pub per_try_timeout: Option<Duration>,
    /// Retries may add at most this share of requests (percent) ...
    pub budget_percent: f64,
    /// ... plus this many per second.
    pub budget_min_per_second: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RateLimitConfig {
    /// Token bucket for the whole route (all clients); `None`: unlimited.
    pub route: Option<Bucket>,
    /// Token bucket per client IP address.
    pub per_client: Option<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub limits: Limits,
    pub outlier: OutlierConfig,
    pub policy: Policy,
    pub hash_policies: Vec<HashOn>,
    pub retries: RetryConfig,
    pub rate_limit: RateLimitConfig,
    /// Requests (L7) or connections (L4) in flight on the listener beyond which new ones are
    /// answered 503 at once.
    pub max_in_flight: u32,
    /// Request bodies stream to the endpoint; a copy of up to this many bytes is kept so a
    /// retry can send them again. Larger bodies go to one endpoint.
    pub max_request_body_bytes: usize,
    /// A body (request or response) or an upgraded connection that moves no bytes for this
    /// long is cut. `None`: never.
    pub stream_idle_timeout: Option<Duration>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            protocol: Protocol::Tcp,
            connect_timeout: Duration::from_millis(5000),
            request_timeout: Duration::from_secs(15),
            limits: Limits {
                max_connections: 1024,
                max_pending_requests: 1024,
                max_concurrent_requests: 1024,
            },
            outlier: OutlierConfig {
                max_failures: 5,
                base_ejection_time: Duration::from_secs(30),
                max_ejection_percent: 10,
                interval: Duration::from_secs(10),
                max_ejection_time: Duration::from_secs(300),
                success_rate: None,
            },
            policy: Policy::RoundRobin,
            hash_policies: Vec::new(),
            retries: RetryConfig {
                num_retries: 2,
                retry_on_connect_failure: true,
                retry_on_status_codes: Vec::new(),
                per_try_timeout: None,
                budget_percent: 20.0,
                budget_min_per_second: 3,
            },
            rate_limit: RateLimitConfig::default(),
            max_in_flight: 10_000,
            max_request_body_bytes: 4 << 20,
            stream_idle_timeout: Some(Duration::from_secs(300)),
        }
    }
}

impl UpstreamConfig {
    /// Reads a Consul upstream `Config` map; `path` names it in errors (`upstreams[0].config`).
    /// Returns the config and the keys it did not know (the caller warns about them).
    pub fn from_json(value: &Value, path: &str) -> Result<(Self, Vec<String>), ProxyError> {
        let mut c = UpstreamConfig::default();
        let mut unknown = Vec::new();
        let top = match value {
            Value::Null => return Ok((c, unknown)),
            Value::Object(m) => Fields::new(m, path),
            _ => return Err(ProxyError::config(path, "expected an object")),
        };
        for (key, _) in top.map {
            if !TOP_KEYS.contains(&key.as_str()) {
                unknown.push(format!("{path}.{key}"));
            }
        }
        if let Some(p) = top.string("protocol")? {
            c.protocol = match p.to_ascii_lowercase().as_str() {
                "tcp" | "" => Protocol::Tcp,
                "http" => Protocol::Http,
                "http2" => Protocol::Http2,
                "grpc" => Protocol::Grpc,
                other => {
                    return Err(ProxyError::config(
                        top.at("protocol"),
                        format!("unknown protocol {other:?} (tcp, http, http2 or grpc)"),
                    ))
                }
            };
        }
        if let Some(ms) = top.u64("connect_timeout_ms")? {
            c.connect_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = top.u64("request_timeout_ms")? {
            c.request_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = top.u64("max_request_body_bytes")? {
            c.max_request_body_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = top.u64("stream_idle_timeout_ms")? {
            c.stream_idle_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(l) = top.object("limits")? {
            let lim = &mut c.limits;
            set_u32(&l, "max_connections", &mut lim.max_connections)?;
            set_u32(&l, "max_pending_requests", &mut lim.max_pending_requests)?;
            set_u32(
                &l,
                "max_concurrent_requests",
                &mut lim.max_concurrent_requests,
            )?;
        }
        if let Some(p) = top.object("passive_health_check")? {
            let o = &mut c.outlier;
            set_u32(&p, "max_failures", &mut o.max_failures)?;
            set_u32(&p, "max_ejection_percent", &mut o.max_ejection_percent)?;
            if o.max_ejection_percent > 100 {
                return Err(ProxyError::config(
                    p.at("max_ejection_percent"),
                    "must be between 0 and 100",
                ));
            }
            if let Some(d) = p.duration("base_ejection_time")? {
                o.base_ejection_time = d;
            }
            if let Some(d) = p.duration("interval")? {
                o.interval = d;
            }
            if let Some(d) = p.duration("max_ejection_time")? {
                o.max_ejection_time = d;
            }
            if let Some(sr) = p.object("success_rate")? {
                let mut c = SuccessRateConfig::default();
                set_u32(&sr, "minimum_hosts", &mut c.minimum_hosts)?;
                set_u32(&sr, "request_volume", &mut c.request_volume)?;
                if let Some(f) = sr.f64("stdev_factor")? {
                    c.stdev_factor = f;
                }
                c.minimum_hosts = c.minimum_hosts.max(1);
                c.request_volume = c.request_volume.max(1);
                o.success_rate = Some(c);
            }
        }
        if let Some(lb) = top.object("load_balancer")? {
            if let Some(p) = lb.string("policy")? {
                c.policy = match p.as_str() {
                    "" | "round_robin" => Policy::RoundRobin,
                    "least_request" => Policy::LeastRequest,
                    "ring_hash" | "maglev" => Policy::RingHash,
                    other => {
                        return Err(ProxyError::config(
                            lb.at("policy"),
                            format!("unknown policy {other:?} (round_robin, least_request, ring_hash, maglev)"),
                        ))
                    }
                };
            }
            if let Some(list) = lb.array("hash_policies")? {
                for (i, item) in list.iter().enumerate() {
                    let here = format!("{}[{i}]", lb.at("hash_policies"));
                    let Value::Object(m) = item else {
                        return Err(ProxyError::config(here, "expected an object"));
                    };
                    let f = Fields::new(m, &here);
                    let value = f.string("field_value")?.unwrap_or_default();
                    if value.is_empty() {
                        return Err(ProxyError::config(f.at("field_value"), "required"));
                    }
                    c.hash_policies.push(match f.string("field")?.as_deref() {
                        Some("header") => HashOn::Header(value.to_ascii_lowercase()),
                        Some("cookie") => HashOn::Cookie(value),
                        _ => {
                            return Err(ProxyError::config(
                                f.at("field"),
                                "expected \"header\" or \"cookie\"",
                            ))
                        }
                    });
                }
            }
        }
        if let Some(r) = top.object("retries")? {
            let rc = &mut c.retries;
            set_u32(&r, "num_retries", &mut rc.num_retries)?;
            if let Some(b) = r.bool("retry_on_connect_failure")? {
                rc.retry_on_connect_failure = b;
            }
            if let Some(list) = r.array("retry_on_status_codes")? {
                rc.retry_on_status_codes.clear();
                for (i, v) in list.iter().enumerate() {
                    let code = v
                        .as_u64()
                        .filter(|c| (100..=599).contains(c))
                        .ok_or_else(|| {
                            ProxyError::config(
                                format!("{}[{i}]", r.at("retry_on_status_codes")),
                                "expected an HTTP status code",
                            )
                        })?;
                    rc.retry_on_status_codes.push(code as u16);
                }
            }
            if let Some(ms) = r.u64("per_try_timeout_ms")? {
                rc.per_try_timeout = Some(Duration::from_millis(ms.max(1)));
            }
            if let Some(p) = r.f64("budget_percent")? {
                rc.budget_percent = p;
            }
            set_u32(&r, "budget_min_per_second", &mut rc.budget_min_per_second)?;
        }
        if let Some(rl) = top.object("rate_limit")? {
            c.rate_limit.route = bucket(&rl, "requests_per_second", "burst")?;
            c.rate_limit.per_client =
                bucket(&rl, "per_client_requests_per_second", "per_client_burst")?;
        }
        if let Some(s) = top.object("load_shed")? {
            set_u32(&s, "max_in_flight", &mut c.max_in_flight)?;
        }
        Ok((c, unknown))
    }
}

const TOP_KEYS: &[&str] = &[
    "protocol",
    "connect_timeout_ms",
    "request_timeout_ms",
    "max_request_body_bytes",
    "stream_idle_timeout_ms",
    "limits",
    "passive_health_check",
    "load_balancer",
    "retries",
    "rate_limit",
    "load_shed",
];

fn set_u32(f: &Fields<'_>, key: &str, into: &mut u32) -> Result<(), ProxyError> {
    if let Some(v) = f.u64(key)? {
        *into = u32::try_from(v).map_err(|_| ProxyError::config(f.at(key), "too large"))?;
    }
    Ok(())
}

fn bucket(f: &Fields<'_>, rate: &str, burst: &str) -> Result<Option<Bucket>, ProxyError> {
    let Some(per_second) = f.f64(rate)? else {
        return Ok(None);
    };
    if per_second <= 0.0 {
        return Err(ProxyError::config(f.at(rate), "must be greater than 0"));
    }
    let burst = f.f64(burst)?.unwrap_or(per_second).max(1.0);
    Ok(Some(Bucket { per_second, burst }))
}

/// An object being read, with its path for error messages.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>, path: &str) -> Self {
        Fields {
            map,
            path: path.to_string(),
        }
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// The value of `key`, looked up case-insensitively (Consul's decoders are lenient too).
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, ProxyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| ProxyError::config(self.at(key), "expected a non-negative integer")),
            Some(Value::String(s)) => s
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ProxyError::config(self.at(key), "expected a non-negative integer")),
            Some(_) => Err(ProxyError::config(
                self.at(key),
                "expected a non-negative integer",
            )),
        }
    }

    fn f64(&self, key: &str) -> Result<Option<f64>, ProxyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64().filter(|f| *f >= 0.0)).and_then(|v| {
                v.map(Some).ok_or_else(|| {
                    ProxyError::config(self.at(key), "expected a non-negative number")
                })
            }),
            Some(Value::String(s)) => s
                .parse::<f64>()
                .ok()
                .filter(|f| *f >= 0.0)
                .map(Some)
                .ok_or_else(|| ProxyError::config(self.at(key), "expected a non-negative number")),
            Some(_) => Err(ProxyError::config(
                self.at(key),
                "expected a non-negative number",
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ProxyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(ProxyError::config(self.at(key), "expected true or false")),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ProxyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ProxyError::config(self.at(key), "expected a string")),
        }
    }

    fn object(&self, key: &str) -> Result<Option<Fields<'a>>, ProxyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Fields::new(m, &self.at(key)))),
            // HCL blocks decoded by some tools arrive as a one-element list.
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_object() => match &a[0] {
                Value::Object(m) => Ok(Some(Fields::new(m, &self.at(key)))),
                _ => Err(ProxyError::config(self.at(key), "expected an object")),
            },
            Some(_) => Err(ProxyError::config(self.at(key), "expected an object")),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, ProxyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(ProxyError::config(self.at(key), "expected a list")),
        }
    }

    /// A Go duration string (`"30s"`, `"1m30s"`, `"250ms"`) or a number of nanoseconds, as
    /// Consul's decoder takes them.
    fn duration(&self, key: &str) -> Result<Option<Duration>, ProxyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|ns| Some(Duration::from_nanos(ns)))
                .ok_or_else(|| ProxyError::config(self.at(key), "expected a duration")),
            Some(Value::String(s)) => parse_duration(s)
                .map(Some)
                .ok_or_else(|| ProxyError::config(self.at(key), format!("invalid duration {s:?}"))),
            Some(_) => Err(ProxyError::config(self.at(key), "expected a duration")),
        }
    }
}

/// Go's `time.ParseDuration` for non-negative values.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * nanos;
        rest = &rest[u..];
    }
    Some(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_tcp_round_robin() {
        let (c, unknown) = UpstreamConfig::from_json(&Value::Null, "config").expect("null ok");
        assert_eq!(c.protocol, Protocol::Tcp);
        assert_eq!(c.policy, Policy::RoundRobin);
        assert!(unknown.is_empty());
    }

    #[test]
    fn reads_every_section() {
        let v = json!({
            "protocol": "http",
            "limits": {"max_connections": 7, "max_pending_requests": 3, "max_concurrent_requests": 2},
            "passive_health_check": {"max_failures": 3, "base_ejection_time": "1s", "max_ejection_percent": 50},
            "load_balancer": {"policy": "ring_hash", "hash_policies": [{"field": "header", "field_value": "X-User"}]},
            "retries": {"num_retries": 4, "retry_on_status_codes": [503], "per_try_timeout_ms": 100},
            "rate_limit": {"requests_per_second": 5, "per_client_requests_per_second": 1},
            "surprise": 1
        });
        let (c, unknown) = UpstreamConfig::from_json(&v, "config").expect("valid");
        assert_eq!(c.protocol, Protocol::Http);
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.outlier.base_ejection_time, Duration::from_secs(1));
        assert_eq!(c.policy, Policy::RingHash);
        assert_eq!(c.hash_policies, vec![HashOn::Header("x-user".into())]);
        assert_eq!(c.retries.retry_on_status_codes, vec![503]);
        assert_eq!(c.retries.per_try_timeout, Some(Duration::from_millis(100)));
        assert_eq!(c.rate_limit.route.map(|b| b.burst), Some(5.0));
        assert_eq!(unknown, vec!["config.surprise".to_string()]);
    }

    #[test]
    fn stream_idle_timeout_defaults_to_five_minutes_and_zero_disables_it() {
        let (c, _) = UpstreamConfig::from_json(&Value::Null, "config").expect("null ok");
        assert_eq!(c.stream_idle_timeout, Some(Duration::from_secs(300)));
        let v = json!({"stream_idle_timeout_ms": 250});
        let (c, unknown) = UpstreamConfig::from_json(&v, "config").expect("valid");
        assert_eq!(c.stream_idle_timeout, Some(Duration::from_millis(250)));
        assert!(unknown.is_empty());
        let v = json!({"stream_idle_timeout_ms": 0});
        let (c, _) = UpstreamConfig::from_json(&v, "config").expect("valid");
        assert_eq!(c.stream_idle_timeout, None);
    }

    #[test]
    fn success_rate_is_off_unless_its_block_is_given() {
        let (c, _) = UpstreamConfig::from_json(&Value::Null, "config").expect("null ok");
        assert_eq!(c.outlier.success_rate, None);
        let v = json!({"passive_health_check": {"success_rate": {"request_volume": 10}}});
        let (c, _) = UpstreamConfig::from_json(&v, "config").expect("valid");
        let sr = c.outlier.success_rate.expect("on");
        assert_eq!((sr.minimum_hosts, sr.request_volume), (5, 10));
        assert_eq!(sr.stdev_factor, 1.9);
        let v = json!({"passive_health_check": {"success_rate": {"stdev_factor": "lots"}}});
        let err = UpstreamConfig::from_json(&v, "config").expect_err("bad");
        assert!(
            err.to_string()
                .contains("config.passive_health_check.success_rate.stdev_factor"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let v = json!({"limits": {"max_connections": "lots"}});
        let err = UpstreamConfig::from_json(&v, "upstreams[0].config").expect_err("bad");
        assert!(
            err.to_string()
                .contains("upstreams[0].config.limits.max_connections"),
            "{err}"
        );
        let v = json!({"protocol": "smtp"});
        let err = UpstreamConfig::from_json(&v, "config").expect_err("bad");
        assert!(err.to_string().contains("config.protocol"), "{err}");
        let v = json!({"passive_health_check": {"base_ejection_time": "soon"}});
        let err = UpstreamConfig::from_json(&v, "config").expect_err("bad");
        assert!(err.to_string().contains("base_ejection_time"), "{err}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
    }
}
