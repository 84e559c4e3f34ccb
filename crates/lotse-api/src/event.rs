//! User events: `PUT /v1/event/fire/{name}` and `GET /v1/event/list`, as Consul's
//! `agent/event_endpoint.go` and `agent/user_event.go`.
//!
//! ```text
//!  PUT /v1/event/fire/NAME ─► validate (name, filters, size) ─► encode (postcard, versioned)
//!        ─► Gossip::fire_user_event ─► every member, this one included
//!  gossip user event ─► start_receiver: decode ─► node/service/tag filters ─► dedup by ID
//!        ─► EventLog (ring of 256) ─► wakes blocking GET /v1/event/list
//! ```
//!
//! Events are agent-local: each agent keeps the last [`RING_SIZE`] events that passed its
//! filters, in arrival order. The list's index is not a Raft index but Consul's
//! `uuidToUint64` of the newest listed event's ID, so a blocking list only waits while the
//! newest event is the one the caller has already seen.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, put};
use axum::Router;
use base64::Engine;
use serde::{Deserialize, Serialize, Serializer};
use tokio::sync::{broadcast, watch};

use crate::body::read_body;
use crate::params::Params;
use crate::reply::{allow, json, ApiError, ApiResult};
use crate::State;

/// How many events an agent remembers (Consul's `eventBuf`).
pub const RING_SIZE: usize = 256;
/// The newest event version this agent understands (Consul's `userEventMaxVersion`).
pub const EVENT_VERSION: u32 = 1;
/// Serf's default `UserEventSizeLimit`, which Consul keeps.
pub const USER_EVENT_SIZE_LIMIT: usize = 512;
/// The prefix Consul puts before an event's name in serf (`userEventName`); it counts
/// against the size limit.
const SERF_NAME_PREFIX: &str = "consul:event:";
/// Consul's `maxQueryTime`: the longest a blocking list waits.
const MAX_QUERY_TIME: Duration = Duration::from_secs(600);
/// Bodies above this are refused with a 413 before the event-size check (Consul reads any
/// body; anything this large is far over the 512-byte limit anyway).
const MAX_BODY: usize = 1024 * 1024;
/// How many recent event IDs are remembered for deduplication.
const SEEN_IDS: usize = 4 * RING_SIZE;

/// A user event as Consul's API shows it (`agent.UserEvent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserEvent {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// `null` when empty, as Go's `[]byte(nil)`; base64 otherwise.
    #[serde(serialize_with = "payload_json")]
    pub payload: Vec<u8>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
    pub version: u32,
    #[serde(rename = "LTime")]
    pub ltime: u64,
}

fn payload_json<S: Serializer>(p: &[u8], s: S) -> Result<S::Ok, S::Error> {
    if p.is_empty() {
        s.serialize_none()
    } else {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(p))
    }
}

// ---- wire format ----------------------------------------------------------------------------

/// The gossip payload of a user event. Postcard tags enum variants by index: variants are only
/// ever added, never reordered. The Lamport time is not carried: the pool stamps it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Wire {
    V1 {
        id: [u8; 16],
        name: String,
        payload: Vec<u8>,
        node_filter: String,
        service_filter: String,
        tag_filter: String,
        version: u32,
    },
}

/// Encodes `ev` (all but its Lamport time) for the gossip pool.
pub fn encode(ev: &UserEvent) -> Result<Vec<u8>, String> {
    let id = uuid_bytes(&ev.id).ok_or_else(|| format!("malformed event id {:?}", ev.id))?;
    let wire = Wire::V1 {
        id,
        name: ev.name.clone(),
        payload: ev.payload.clone(),
        node_filter: ev.node_filter.clone(),
        service_filter: ev.service_filter.clone(),
        tag_filter: ev.tag_filter.clone(),
        version: ev.version,
    };
    postcard::to_stdvec(&wire).map_err(|e| e.to_string())
}

/// Decodes a gossip payload made by [`encode`]; `ltime` comes from the pool.
pub fn decode(bytes: &[u8], ltime: u64) -> Result<UserEvent, String> {
    let wire: Wire = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
    let Wire::V1 {
        id,
        name,
        payload,
        node_filter,
        service_filter,
        tag_filter,
        version,
    } = wire;
    Ok(UserEvent {
        id: format_uuid(&id),
        name,
        payload,
        node_filter,
        service_filter,
        tag_filter,
        version,
        ltime,
    })
}

/// A random ID formatted as Go's `uuid.GenerateUUID` (random bits, no version bits).
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    format_uuid(&bytes)
}

fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if id.len() != 36 || hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Consul's `uuidToUint64`: the UUID's two 64-bit halves xor-ed, the index of an event list.
/// A malformed ID (Consul panics) gives 0.
pub fn uuid_to_u64(id: &str) -> u64 {
    let part = |r: std::ops::Range<usize>| id.get(r).unwrap_or("");
    let lower = format!("{}{}{}", part(0..8), part(9..13), part(14..18));
    let upper = format!("{}{}", part(19..23), part(24..36));
    match (
        u64::from_str_radix(&lower, 16),
        u64::from_str_radix(&upper, 16),
    ) {
        (Ok(l), Ok(h)) => l ^ h,
        _ => 0,
    }
}

// ---- validation -----------------------------------------------------------------------------

/// Compiles a filter as Go's `regexp.Compile`; the error in Go's words where we know them
/// (`error parsing regexp: missing closing ): `(``), else the regex crate's.
pub fn compile_filter(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| {
        let text = e.to_string();
        let kind = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(text.as_str());
        let code = match kind {
            "unclosed group" => "missing closing )",
            "unopened group" => "unexpected )",
            "unclosed character class" => "missing closing ]",
            "repetition operator missing expression" => "missing argument to repetition operator",
            "unrecognized escape sequence" | "incomplete escape sequence" => {
                "invalid escape sequence"
            }
            other => other,
        };
        format!("error parsing regexp: {code}: `{pattern}`")
    })
}

/// Consul's `validateUserEventParams`, with its texts.
pub fn validate(ev: &UserEvent) -> Result<(), String> {
    if ev.name.is_empty() {
        return Err("User event missing name".into());
    }
    if !ev.tag_filter.is_empty() && ev.service_filter.is_empty() {
        return Err("Cannot provide tag filter without service filter".into());
    }
    for (filter, what) in [
        (&ev.node_filter, "node"),
        (&ev.service_filter, "service"),
        (&ev.tag_filter, "tag"),
    ] {
        if !filter.is_empty() {
            compile_filter(filter).map_err(|e| format!("Invalid {what} filter: {e}"))?;
        }
    }
    Ok(())
}

/// Length of a msgpack raw/str in the old spec Consul's codec writes (fixraw, raw16, raw32).
fn mp_str(n: usize) -> usize {
    n + match n {
        0..=31 => 1,
        32..=65535 => 3,
        _ => 5,
    }
}

/// Consul's size checks, which serf applies to the msgpack-encoded event: first
/// `len("consul:event:" + name) + len(payload)` before encoding, then the encoded message
/// (Lamport time assumed to fit 16 bits). Our own encoding is smaller; the pool checks that too.
pub fn check_size(ev: &UserEvent) -> Result<(), String> {
    let opt = |key: usize, s: usize| if s == 0 { 0 } else { mp_str(key) + mp_str(s) };
    let encoded_event = 1
        + mp_str(2)
        + mp_str(ev.id.len())
        + mp_str(1)
        + mp_str(ev.name.len())
        + opt(1, ev.payload.len())
        + opt(2, ev.node_filter.len())
        + opt(2, ev.service_filter.len())
        + opt(2, ev.tag_filter.len())
        + mp_str(1)
        + 1;
    let serf_name = SERF_NAME_PREFIX.len() + ev.name.len();
    let limit = USER_EVENT_SIZE_LIMIT;
    if serf_name + encoded_event > limit {
        return Err(format!(
            "user event exceeds configured limit of {limit} bytes before encoding"
        ));
    }
    let message = 1
        + 1
        + mp_str(5)
        + 3
        + mp_str(4)
        + mp_str(serf_name)
        + mp_str(7)
        + mp_str(encoded_event)
        + mp_str(2)
        + 1;
    if message > limit {
        return Err(format!(
            "encoded user event exceeds configured limit of {limit} bytes after encoding"
        ));
    }
    Ok(())
}

// ---- filters --------------------------------------------------------------------------------

/// Consul's `shouldProcessUserEvent`: does `ev` pass its filters on this agent (named
/// `node_name`, with local `services`)? A filter that does not compile rejects the event.
pub fn should_process(
    ev: &UserEvent,
    node_name: &str,
    services: &[lotse_core::catalog::Service],
) -> bool {
    if ev.version > EVENT_VERSION {
        tracing::warn!(version = ev.version, event = %ev.name, "event version may have unsupported features");
    }
    let compile = |pattern: &str, what: &str| match compile_filter(pattern) {
        Ok(re) => Some(re),
        Err(e) => {
            tracing::error!(filter = %pattern, event = %ev.name, error = %e, "failed to parse {what} filter");
            None
        }
    };
    if !ev.node_filter.is_empty() {
        match compile(&ev.node_filter, "node") {
            Some(re) if re.is_match(node_name) => {}
            _ => return false,
        }
    }
    if !ev.service_filter.is_empty() {
        let Some(service_re) = compile(&ev.service_filter, "service") else {
            return false;
        };
        let tag_re = if ev.tag_filter.is_empty() {
            None
        } else {
            match compile(&ev.tag_filter, "tag") {
                Some(re) => Some(re),
                None => return false,
            }
        };
        let found = services.iter().any(|s| {
            service_re.is_match(&s.name)
                && tag_re
                    .as_ref()
                    .is_none_or(|re| s.tags.iter().any(|t| re.is_match(t)))
        });
        if !found {
            return false;
        }
    }
    true
}

// ---- the log --------------------------------------------------------------------------------

/// The user events this agent accepted, newest last: Consul's ring of the last
/// [`RING_SIZE`], plus a change signal for blocking lists.
pub struct EventLog {
    ring: Mutex<Ring>,
    /// Bumped on every accepted event.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct Ring {
    events: VecDeque<UserEvent>,
    /// IDs seen recently (a superset of the ring's), oldest first, for deduplication.
    seen_order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            ring: Mutex::new(Ring::default()),
            changed: watch::Sender::new(0),
        }
    }
}

impl EventLog {
    /// Stores `ev` unless an event with its ID was already stored; true if it was stored.
    pub fn push(&self, ev: UserEvent) -> bool {
        {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            if ring.seen.contains(&ev.id) {
                return false;
            }
            ring.seen.insert(ev.id.clone());
            ring.seen_order.push_back(ev.id.clone());
            if ring.seen_order.len() > SEEN_IDS {
                if let Some(old) = ring.seen_order.pop_front() {
                    ring.seen.remove(&old);
                }
            }
            if ring.events.len() == RING_SIZE {
                ring.events.pop_front();
            }
            ring.events.push_back(ev);
        }
        self.changed.send_modify(|n| *n += 1);
        true
    }

    /// The stored events, oldest first.
    pub fn list(&self) -> Vec<UserEvent> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.events.iter().cloned().collect()
    }

    /// A receiver that changes whenever an event is stored.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Feeds `log` from the gossip pool's user events: decodes each, applies its filters against
/// this agent (`node_name` and `agent`'s local services) and stores the ones that pass.
/// Payloads that are not events are dropped with a debug log. Runs until the pool stops.
pub fn start_receiver(
    log: Arc<EventLog>,
    gossip: lotse_gossip::Gossip,
    agent: Arc<lotse_agent::Agent>,
    node_name: String,
) {
    // Subscribe now, not in the task, so no event fired after this call is missed.
    let mut rx = gossip.subscribe_user_events();
    drop(gossip);
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(raw) => ingest(&log, &raw, &node_name, &agent.services()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "user events dropped: receiver lagged");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// One gossip user event into `log`, if it decodes and passes the filters.
fn ingest(
    log: &EventLog,
    raw: &lotse_gossip::UserEvent,
    node_name: &str,
    services: &[lotse_core::catalog::Service],
) {
    let ev = match decode(&raw.payload, raw.ltime) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::debug!(origin = %raw.origin, error = %e, "dropping undecodable user event");
            return;
        }
    };
    if !should_process(&ev, node_name, services) {
        return;
    }
    tracing::debug!(event = %ev.name, id = %ev.id, "new event");
    log.push(ev);
}

// ---- HTTP -----------------------------------------------------------------------------------

/// The event routes. `fire` is routed by prefix, as Consul's mux does: names may hold slashes.
pub fn routes() -> Router<State> {
    let fire = || allow(put(fire), "OPTIONS,PUT");
    Router::new()
        .route("/v1/event/fire/", allow(put(fire_root), "OPTIONS,PUT"))
        .route("/v1/event/fire/{*name}", fire())
        .route("/v1/event/list", allow(get(list), "OPTIONS,GET"))
}

async fn fire_root() -> ApiError {
    ApiError::bad_request("Missing name")
}

fn server_error(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, reason)
}

/// `PUT /v1/event/fire/{name}`: validates, fires through gossip and answers the event (with
/// `LTime` 0, as Consul: the Lamport time is stamped by the pool, not known to the answer).
pub async fn fire(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing name"));
    }
    if name.starts_with('_') {
        // Consul's docs reserve these for Consul itself (`_rexec`); its agent does not check.
        return Err(ApiError::bad_request(
            "Event names starting with '_' are reserved for internal use",
        ));
    }
    let filter = |n: &str| params.get(n).unwrap_or("").to_string();
    let payload = read_body(&headers, body, MAX_BODY, "the event endpoint").await?;
    let ev = UserEvent {
        id: new_id(),
        name,
        payload,
        node_filter: filter("node"),
        service_filter: filter("service"),
        tag_filter: filter("tag"),
        version: EVENT_VERSION,
        ltime: 0,
    };
    validate(&ev).map_err(server_error)?;
    params.check_dc(&state)?;
    check_size(&ev).map_err(server_error)?;
    let Some(gossip) = &state.gossip else {
        return Err(server_error("No gossip pool to fire the event through"));
    };
    let bytes = encode(&ev).map_err(|e| server_error(format!("UserEvent encoding failed: {e}")))?;
    gossip.fire_user_event(bytes).map_err(|e| match e {
        lotse_gossip::GossipError::TooLarge { limit, .. } => server_error(format!(
            "encoded user event exceeds configured limit of {limit} bytes after encoding"
        )),
        other => server_error(other.to_string()),
    })?;
    Ok(json(&ev, params.pretty()))
}

/// `GET /v1/event/list?name=`: the stored events (optionally of one name), oldest first,
/// blocking as Consul's handler does: with `?index=` equal to the current index it waits (up
/// to `?wait=`, at most and by default 10 minutes) for a new event.
pub async fn list(AxState(state): AxState<State>, params: Params) -> ApiResult {
    // Consul's parseWait: only `wait` and `index`, with its texts.
    let wait = match params.get("wait") {
        None => Duration::ZERO,
        Some(v) => lotse_server::sessions::go_duration(v)
            .ok_or_else(|| ApiError::bad_request("Invalid wait time"))?,
    };
    let min_index: u64 = match params.get("index") {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad_request("Invalid index"))?,
    };
    let name = params.get("name").unwrap_or("").to_string();
    let log = &state.events;
    let deadline = tokio::time::Instant::now()
        + if wait.is_zero() || wait > MAX_QUERY_TIME {
            MAX_QUERY_TIME
        } else {
            wait
        };
    let mut rx = log.subscribe();
    let (events, index) = loop {
        rx.borrow_and_update();
        let events: Vec<UserEvent> = log
            .list()
            .into_iter()
            .filter(|e| name.is_empty() || e.name == name)
            .collect();
        // An empty list answers 1, not 0, so watchers do not spin (Consul's comment).
        let index = events.last().map_or(1, |e| uuid_to_u64(&e.id));
        if min_index == 0 || index != min_index {
            break (events, index);
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    break (events, index);
                }
            }
            _ = tokio::time::sleep_until(deadline) => break (events, index),
        }
    };
    let mut resp = json(&events, params.pretty());
    if let Ok(v) = HeaderValue::from_str(&index.to_string()) {
        resp.headers_mut().insert("X-Consul-Index", v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests;
