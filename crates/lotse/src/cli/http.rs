//! A small blocking client for the agent's HTTP API, shaped after consul's Go `api` package:
//! token header, `dc`/`stale` query parameters, blocking queries and consul's error texts.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Where and how to talk to the agent.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// `http://host:port`
    pub base: String,
    pub token: Option<String>,
    pub datacenter: Option<String>,
    pub stale: bool,
}

/// An error from the API: a failed connection, or an unexpected status code.
#[derive(Debug, Clone)]
pub enum ApiError {
    Transport(String),
    Status(u16, String),
}

impl ApiError {
    /// Errors worth retrying while monitoring a lock: transport failures and 5xx answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Transport(_) => true,
            ApiError::Status(code, _) => *code >= 500,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Transport(msg) => write!(f, "{msg}"),
            ApiError::Status(code, body) => write!(f, "Unexpected response code: {code} ({body})"),
        }
    }
}

/// A response with its body and the `X-Consul-Index` header.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub index: u64,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::Transport(format!("failed to decode response: {e}")))
    }
}

/// A key-value entry as `GET /v1/kv/...` returns it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
    #[serde(default)]
    pub lock_index: u64,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
}

impl KvPair {
    /// The decoded value (empty for a null value).
    pub fn value_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        match &self.value {
            Some(v) => base64::engine::general_purpose::STANDARD
                .decode(v)
                .unwrap_or_else(|_| v.as_bytes().to_vec()),
            None => Vec::new(),
        }
    }

    pub fn session_id(&self) -> &str {
        self.session.as_deref().unwrap_or("")
    }
}

/// Query options of one request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub params: Vec<(String, Option<String>)>,
    /// Blocking query: wait for an index greater than this.
    pub wait_index: Option<u64>,
    pub wait_time: Option<Duration>,
    pub consistent: bool,
    /// Set to skip the `dc`/`stale` parameters of the config (writes to sessions etc. still
    /// get `dc`).
    pub read: bool,
}

impl Query {
    pub fn read() -> Self {
        Query {
            read: true,
            ..Default::default()
        }
    }

    pub fn write() -> Self {
        Query::default()
    }

    pub fn flag(mut self, name: &str) -> Self {
        self.params.push((name.to_string(), None));
        self
    }

    pub fn param(mut self, name: &str, value: impl ToString) -> Self {
        self.params
            .push((name.to_string(), Some(value.to_string())));
        self
    }
}

#[derive(Clone)]
pub struct Client {
    pub config: HttpConfig,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(config: HttpConfig) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .build();
        Client { config, agent }
    }

    /// Sends a request; any HTTP status comes back as a [`Response`], only transport failures
    /// are errors.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        q: &Query,
        body: Option<&[u8]>,
    ) -> Result<Response, ApiError> {
        let url = format!("{}{}{}", self.config.base, path, self.query_string(q));
        let mut req = self.agent.request(method, &url);
        let timeout = match q.wait_time {
            // The server may add up to wait/16 of jitter; leave room for it.
            Some(w) => w + w / 16 + Duration::from_secs(30),
            None => Duration::from_secs(300),
        };
        req = req.timeout(timeout);
        if let Some(token) = &self.config.token {
            req = req.set("X-Consul-Token", token);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                let verb = capitalize(method);
                let text = t.to_string();
                let text = text
                    .strip_prefix(&format!("{url}: "))
                    .unwrap_or(&text)
                    .to_string();
                return Err(ApiError::Transport(format!("{verb} \"{url}\": {text}")));
            }
        };
        let status = resp.status();
        let index = resp
            .header("X-Consul-Index")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut bytes = Vec::new();
        use std::io::Read;
        resp.into_reader()
            .take(512 * 1024 * 1024)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                ApiError::Transport(format!(
                    "{} \"{url}\": reading body: {e}",
                    capitalize(method)
                ))
            })?;
        Ok(Response {
            status,
            index,
            body: bytes,
        })
    }

    /// Like [`Client::request`] but treats every non-2xx status as an error.
    pub fn request_ok(
        &self,
        method: &str,
        path: &str,
        q: &Query,
        body: Option<&[u8]>,
    ) -> Result<Response, ApiError> {
        let r = self.request(method, path, q, body)?;
        if (200..300).contains(&r.status) {
            Ok(r)
        } else {
            Err(ApiError::Status(
                r.status,
                String::from_utf8_lossy(&r.body).trim().to_string(),
            ))
        }
    }

    fn query_string(&self, q: &Query) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(dc) = &self.config.datacenter {
            parts.push(format!("dc={}", encode_component(dc)));
        }
        if q.read && self.config.stale && !q.consistent {
            parts.push("stale".into());
        }
        if q.consistent {
            parts.push("consistent".into());
        }
        if let Some(i) = q.wait_index {
            parts.push(format!("index={i}"));
        }
        if let Some(w) = q.wait_time {
            parts.push(format!("wait={}ms", w.as_millis()));
        }
        for (k, v) in &q.params {
            match v {
                Some(v) => parts.push(format!("{}={}", encode_component(k), encode_component(v))),
                None => parts.push(encode_component(k)),
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    // ---- KV ----------------------------------------------------------------------------------

    /// `GET /v1/kv/KEY`: the entry, or `None` on 404.
    pub fn kv_get(&self, key: &str, q: Query) -> Result<(Option<KvPair>, u64), ApiError> {
        let r = self.request("GET", &kv_path(key), &q, None)?;
        if r.status == 404 {
            return Ok((None, r.index));
        }
        if !(200..300).contains(&r.status) {
            return Err(ApiError::Status(
                r.status,
                String::from_utf8_lossy(&r.body).trim().to_string(),
            ));
        }
        let pairs: Option<Vec<KvPair>> = r.json()?;
        Ok((pairs.and_then(|p| p.into_iter().next()), r.index))
    }

    /// `GET /v1/kv/PREFIX?recurse`: every entry under the prefix (empty on 404).
    pub fn kv_list(&self, prefix: &str) -> Result<Vec<KvPair>, ApiError> {
        self.kv_list_q(prefix, Query::read())
            .map(|(pairs, _)| pairs)
    }

    /// `GET /v1/kv/PREFIX?recurse` with extra query options (blocking, consistent); also
    /// returns the index.
    pub fn kv_list_q(&self, prefix: &str, q: Query) -> Result<(Vec<KvPair>, u64), ApiError> {
        let r = self.request("GET", &kv_path(prefix), &q.flag("recurse"), None)?;
        if r.status == 404 {
            return Ok((Vec::new(), r.index));
        }
        if !(200..300).contains(&r.status) {
            return Err(ApiError::Status(
                r.status,
                String::from_utf8_lossy(&r.body).trim().to_string(),
            ));
        }
        let pairs: Option<Vec<KvPair>> = r.json()?;
        Ok((pairs.unwrap_or_default(), r.index))
    }

    /// `GET /v1/kv/PREFIX?keys[&separator=S]`.
    pub fn kv_keys(&self, prefix: &str, separator: &str) -> Result<Vec<String>, ApiError> {
        let mut q = Query::read().flag("keys");
        if !separator.is_empty() {
            q = q.param("separator", separator);
        }
        let r = self.request("GET", &kv_path(prefix), &q, None)?;
        if r.status == 404 {
            return Ok(Vec::new());
        }
        if !(200..300).contains(&r.status) {
            return Err(ApiError::Status(
                r.status,
                String::from_utf8_lossy(&r.body).trim().to_string(),
            ));
        }
        let keys: Option<Vec<String>> = r.json()?;
        Ok(keys.unwrap_or_default())
    }

    /// `PUT /v1/kv/KEY` with the given query (cas, flags, acquire, release); returns the boolean
    /// the server answers.
    pub fn kv_put(&self, key: &str, value: &[u8], q: Query) -> Result<bool, ApiError> {
        let r = self.request_ok("PUT", &kv_path(key), &q, Some(value))?;
        Ok(parse_bool_body(&r.body))
    }

    /// `DELETE /v1/kv/KEY` with the given query (recurse, cas).
    pub fn kv_delete(&self, key: &str, q: Query) -> Result<bool, ApiError> {
        let r = self.request_ok("DELETE", &kv_path(key), &q, None)?;
        Ok(parse_bool_body(&r.body))
    }

    // ---- sessions ----------------------------------------------------------------------------

    /// `PUT /v1/session/create`: the new session's ID.
    pub fn session_create(&self, body: &serde_json::Value) -> Result<String, ApiError> {
        let data = serde_json::to_vec(body).expect("JSON value serializes");
        let r = self.request_ok("PUT", "/v1/session/create", &Query::write(), Some(&data))?;
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "ID")]
            id: String,
        }
        let c: Created = r.json()?;
        Ok(c.id)
    }

    /// `PUT /v1/session/renew/ID`: `Ok(false)` if the session no longer exists.
    pub fn session_renew(&self, id: &str) -> Result<bool, ApiError> {
        let r = self.request(
            "PUT",
            &format!("/v1/session/renew/{}", encode_path(id)),
            &Query::write(),
            None,
        )?;
        match r.status {
            200..=299 => {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
                Ok(!(v.is_null() || v.as_array().is_some_and(|a| a.is_empty())))
            }
            404 => Ok(false),
            s => Err(ApiError::Status(
                s,
                String::from_utf8_lossy(&r.body).trim().to_string(),
            )),
        }
    }

    /// `PUT /v1/session/destroy/ID`.
    pub fn session_destroy(&self, id: &str) -> Result<(), ApiError> {
        self.request_ok(
            "PUT",
            &format!("/v1/session/destroy/{}", encode_path(id)),
            &Query::write(),
            None,
        )?;
        Ok(())
    }

    // ---- agent -------------------------------------------------------------------------------

    pub fn agent_self(&self) -> Result<serde_json::Value, ApiError> {
        self.request_ok("GET", "/v1/agent/self", &Query::default(), None)?
            .json()
    }
}

fn parse_bool_body(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).trim() == "true"
}

fn capitalize(method: &str) -> String {
    let lower = method.to_ascii_lowercase();
    let mut c = lower.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// `/v1/kv/` + the key, percent-encoded like Go's URL path escaping (slashes kept).
pub fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", encode_path(key))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Escapes a path: everything but unreserved characters and the sub-delimiters Go keeps
/// (`/`, `:`, `@`, `!`, `$`, `&`, `'`, `(`, `)`, `*`, `+`, `,`, `;`, `=`).
pub fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) || b"/:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes a query component (key or value).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_escaped_like_go() {
        assert_eq!(kv_path("foo/bar"), "/v1/kv/foo/bar");
        assert_eq!(kv_path("a b?c#d%"), "/v1/kv/a%20b%3Fc%23d%25");
        assert_eq!(kv_path(""), "/v1/kv/");
        assert_eq!(encode_component("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn query_strings() {
        let c = Client::new(HttpConfig {
            base: "http://x:1".into(),
            datacenter: Some("dc2".into()),
            stale: true,
            ..Default::default()
        });
        assert_eq!(
            c.query_string(&Query::read().flag("recurse")),
            "?dc=dc2&stale&recurse"
        );
        assert_eq!(
            c.query_string(&Query::write().param("cas", 5)),
            "?dc=dc2&cas=5"
        );
        let q = Query {
            wait_index: Some(7),
            wait_time: Some(Duration::from_secs(15)),
            read: true,
            consistent: true,
            ..Default::default()
        };
        assert_eq!(
            c.query_string(&q),
            "?dc=dc2&consistent&index=7&wait=15000ms"
        );
    }

    #[test]
    fn kv_pairs_decode() {
        let p: Vec<KvPair> = serde_json::from_str(
            r#"[{"LockIndex":1,"Key":"k","Flags":3304740253564472344,"Value":"aGk=","CreateIndex":4,"ModifyIndex":5,"Session":"s"}]"#,
        )
        .unwrap();
        assert_eq!(p[0].value_bytes(), b"hi");
        assert_eq!(p[0].flags, 0x2ddccbc058a50c18);
        assert_eq!(p[0].session_id(), "s");
        let p: Vec<KvPair> = serde_json::from_str(r#"[{"Key":"k","Value":null}]"#).unwrap();
        assert!(p[0].value_bytes().is_empty());
        assert_eq!(p[0].session_id(), "");
    }

    #[test]
    fn errors_read_like_consul() {
        assert_eq!(
            ApiError::Status(500, "boom".into()).to_string(),
            "Unexpected response code: 500 (boom)"
        );
        assert!(ApiError::Status(503, String::new()).is_retryable());
        assert!(!ApiError::Status(403, String::new()).is_retryable());
    }

    #[test]
    fn connection_refused_is_an_error_not_a_panic() {
        // Port 1 on loopback: nothing listens there.
        let c = Client::new(HttpConfig {
            base: "http://127.0.0.1:1".into(),
            ..Default::default()
        });
        let e = c.kv_get("x", Query::read()).unwrap_err();
        assert!(matches!(e, ApiError::Transport(_)));
        assert!(
            e.to_string()
                .starts_with("Get \"http://127.0.0.1:1/v1/kv/x\": "),
            "{e}"
        );
    }
}
