//! Bolero fuzz target for whole HTTP requests through the real router, against one in-memory
//! leader with an agent ([`crate::test_state`]). Random under `cargo test`; coverage-guided with
//!
//! ```sh
//! cargo bolero test params::fuzz::fuzz_http_request -p lotse-api --sanitizer NONE -T 60s
//! ```
//!
//! An input is one text line and a body: `<method><endpoint><segment>?<query>\n<body>`.
//! `<method>` is one byte (`G`ET, `P`UT, `S` POST, `D`ELETE, `O`PTIONS, `H`EAD; any other byte
//! picks one by value); `<endpoint>` one byte picking from [`ENDPOINTS`] (`a` the first,
//! `b` the second, ...); `<segment>` fills the endpoint's `{}` (a KV key under `fuzz/`, a
//! service or node name); bytes a URI cannot carry are percent-encoded. The seeds
//! (`src/params/__fuzz__/params__fuzz__http_request/corpus`) are real requests.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Request;

use crate::params::Params;
use crate::test_state;

/// What the fuzzer can reach. No path reaches `sentinel/` in the KV store except `/v1/txn`.
const ENDPOINTS: &[&str] = &[
    "/v1/kv/fuzz/{}",
    "/v1/txn",
    "/v1/catalog/register",
    "/v1/catalog/deregister",
    "/v1/agent/service/register",
    "/v1/session/create",
    "/v1/health/service/{}",
    "/v1/catalog/services",
    "/v1/catalog/service/{}",
    "/v1/catalog/nodes",
    "/v1/agent/check/register",
    "/v1/agent/services",
    "/v1/session/list",
    "/v1/health/state/{}",
    "/v1/agent/service/deregister/{}",
    "/v1/catalog/node/{}",
    "/v1/health/checks/{}",
    "/v1/agent/service/{}",
];

const METHODS: [&str; 7] = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"];

/// Texts of 500s that mean the server failed, not that the request was bad. Consul answers
/// many refusals of bad input with a 500 (its RPC layer's errors, `strconv` errors, "No path
/// to datacenter"), so those are allowed; these are not.
const SERVER_FAILURES: &[&str] = &[
    "No cluster leader",
    "rpc error",
    "raft:",
    "server is shutting down",
    "No known Consul servers",
    "unexpected transaction outcome",
];

const SENTINEL: &str = "/v1/kv/sentinel/key";

/// Percent-encodes what may not appear as it is in a URI path or query (a `%` is kept when an
/// escape follows, so the server's decoding is what gets exercised).
fn encode(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        let escape = b == b'%'
            && raw.len() > i + 2
            && raw[i + 1].is_ascii_hexdigit()
            && raw[i + 2].is_ascii_hexdigit();
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) || escape {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request an input stands for: method, endpoint and URI, body.
fn request(input: &[u8]) -> Option<(&'static str, &'static str, String, Bytes)> {
    let (line, body) = match input.iter().position(|&b| b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[][..]),
    };
    let (&m, rest) = line.split_first()?;
    let (&e, rest) = rest.split_first()?;
    let method = match m {
        b'G' => "GET",
        b'P' => "PUT",
        b'S' => "POST",
        b'D' => "DELETE",
        b'O' => "OPTIONS",
        b'H' => "HEAD",
        _ => METHODS[usize::from(m) % METHODS.len()],
    };
    let endpoint = ENDPOINTS[usize::from(e.wrapping_sub(b'a')) % ENDPOINTS.len()];
    let (segment, query) = match rest.iter().position(|&b| b == b'?') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let mut query = encode(query);
    // A blocking read waits up to ten minutes for a newer index; cap the wait (the first
    // `wait` wins) so that an `index` costs a millisecond, not the run.
    if Params::from_query(&query).is_ok_and(|p| p.get("index").is_some()) {
        query = format!("wait=1ms&{query}");
    }
    let mut uri = endpoint.replace("{}", &encode(segment).replace('?', "%3F"));
    if !query.is_empty() {
        uri = format!("{uri}?{query}");
    }
    Some((method, endpoint, uri, Bytes::copy_from_slice(body)))
}

async fn call(state: &crate::State, method: &str, uri: &str, body: Bytes) -> (u16, Bytes) {
    let mut app = crate::router(state.clone());
    let Ok(req) = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
    else {
        // Not a request a client could send (the URI does not parse).
        return (0, Bytes::new());
    };
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        tower_service::Service::call(&mut app, req),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {uri} did not answer within 20 s"));
    let resp = match resp {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (status, _, body) = test_state::parts(resp).await;
    (status, body)
}

/// The server, and what the sentinel entry reads as.
struct Harness {
    rt: tokio::runtime::Runtime,
    state: crate::State,
    sentinel: (u16, Bytes),
}

impl Harness {
    fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let state = rt.block_on(test_state::state());
        let mut h = Harness {
            rt,
            state,
            sentinel: (0, Bytes::new()),
        };
        h.put_sentinel();
        h
    }

    /// (Re)writes `sentinel/key` and remembers how it reads.
    fn put_sentinel(&mut self) {
        let state = &self.state;
        self.sentinel = self.rt.block_on(async {
            let (status, _) = call(state, "PUT", SENTINEL, Bytes::from_static(b"keep")).await;
            assert_eq!(status, 200);
            call(state, "GET", SENTINEL, Bytes::new()).await
        });
    }

    fn run(&mut self, input: &[u8]) {
        let Some((method, endpoint, uri, body)) = request(input) else {
            return;
        };
        let (status, answer) = self.rt.block_on(call(&self.state, method, &uri, body));
        let text = String::from_utf8_lossy(&answer);
        assert!(
            status < 500 || (status == 500 && !SERVER_FAILURES.iter().any(|f| text.contains(f))),
            "{method} {uri}: {status} {text}"
        );
        let now = self
            .rt
            .block_on(call(&self.state, "GET", SENTINEL, Bytes::new()));
        if now != self.sentinel {
            assert!(
                endpoint == "/v1/txn" && (200..300).contains(&status),
                "{method} {uri} ({status} {text}) changed {SENTINEL}: {now:?}"
            );
            self.put_sentinel();
        }
    }
}

/// Any request: an answer within 20 s, never a panic; no 5xx except the 500s Consul gives for
/// bad input; and the KV entry `sentinel/key` (written first) is unchanged unless a
/// transaction succeeded (the only well-formed write that can reach it; it is then restored).
#[test]
fn fuzz_http_request() {
    // The server's state is not unwind-safe; a panic fails the whole target anyway.
    let mut h = AssertUnwindSafe(Harness::new());
    bolero::check!().for_each(move |input: &[u8]| h.run(input));
}
