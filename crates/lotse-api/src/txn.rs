//! `PUT /v1/txn`: up to `txn_max_ops` KV, Node, Service and Check operations applied
//! atomically. A transaction of reads only is served without the log, with the query headers
//! of its consistency mode. The catalog operations are decoded in [`crate::txn_catalog`].

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use lotse_core::txn::{KvOp, KvVerb, TxnError, TxnOp, TxnOutcome, TxnResult};
use lotse_core::{Command, Outcome};
use lotse_server::{now_ms, Access, Resource};
use serde::Serialize;
use serde_json::Value;

use crate::body::read_body;
use crate::catalog_json::{self as cj, HealthCheckJson, NodeJson, NodeServiceJson};
use crate::ci_json;
use crate::kv::KvJson;
use crate::params::Params;
use crate::reply::{json, with_meta, ApiError, ApiResult};
use crate::txn_catalog;
use crate::State;

#[cfg(test)]
mod fuzz;

const TXN_LIMIT_DOC: &str =
    "https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len";

/// Consul's `TxnResult`: exactly one field set, the others omitted.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ResultJson<'a> {
    #[serde(rename = "KV", skip_serializing_if = "Option::is_none")]
    kv: Option<KvJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<NodeJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<NodeServiceJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<HealthCheckJson<'a>>,
}

impl<'a> From<&'a TxnResult> for ResultJson<'a> {
    /// Results are the state store's objects: catalog rows in their stored form.
    fn from(r: &'a TxnResult) -> Self {
        match r {
            TxnResult::Kv(e) => ResultJson {
                kv: Some(KvJson::from(e)),
                ..Default::default()
            },
            TxnResult::Node(n) => ResultJson {
                node: Some(cj::node(n)),
                ..Default::default()
            },
            TxnResult::Service(s) => ResultJson {
                service: Some(cj::stored_node_service(s)),
                ..Default::default()
            },
            TxnResult::Check(c) => ResultJson {
                check: Some(cj::stored_health_check(c)),
                ..Default::default()
            },
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorJson<'a> {
    op_index: usize,
    what: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TxnJson<'a> {
    results: Option<Vec<ResultJson<'a>>>,
    errors: Option<Vec<ErrorJson<'a>>>,
}

/// The fields a KV operation may carry; Consul's decoder refuses any other.
const KV_FIELDS: [&str; 8] = [
    "Verb",
    "Key",
    "Value",
    "Flags",
    "Index",
    "Session",
    "Namespace",
    "Partition",
];
const OP_KINDS: [&str; 4] = ["KV", "Node", "Service", "Check"];

fn refuse_unknown(obj: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match obj
        .keys()
        .find(|k| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
    {
        Some(k) => Err(ApiError::bad_request(format!("json: unknown field {k:?}"))),
        None => Ok(()),
    }
}

/// An operation, a refusal of it (answered with 409), or `None` for an operation with no
/// member set, which Consul's `convertOps` drops.
type DecodedOp = Option<Result<TxnOp, TxnError>>;

/// Decodes operation `i`: as Consul's `convertOps`, the first of its `KV`, `Node`, `Service`,
/// `Check` members that is set.
fn decode_op(i: usize, v: &Value, datacenter: &str) -> Result<DecodedOp, ApiError> {
    let op = ci_json::object(v, "operation")?;
    refuse_unknown(op, &OP_KINDS)?;
    let member = |name: &str| ci_json::field(op, name).filter(|m| !m.is_null());
    if let Some(kv) = member("KV") {
        decode_kv(i, kv).map(Some)
    } else if let Some(node) = member("Node") {
        txn_catalog::node_op(i, node, datacenter).map(Some)
    } else if let Some(service) = member("Service") {
        txn_catalog::service_op(i, service).map(Some)
    } else if let Some(check) = member("Check") {
        txn_catalog::check_op(i, check).map(Some)
    } else {
        Ok(None)
    }
}

fn decode_kv(i: usize, kv: &Value) -> Result<Result<TxnOp, TxnError>, ApiError> {
    let kv = ci_json::object(kv, "KV")?;
    refuse_unknown(kv, &KV_FIELDS)?;
    let verb = ci_json::string(kv, "Verb")?.unwrap_or_default();
    let Some(verb) = KvVerb::parse(&verb) else {
        return Ok(Err(TxnError {
            op_index: i,
            what: format!("unknown KV verb {verb:?}"),
        }));
    };
    let value = match ci_json::string(kv, "Value")? {
        None => Vec::new(),
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| {
                ApiError::bad_request(format!("operation {i}: Value is not base64: {e}"))
            })?,
    };
    let key = ci_json::string(kv, "Key")?.unwrap_or_default();
    // Consul's kvsPreApply: every verb but delete-tree names a key.
    if key.is_empty() && verb != KvVerb::DeleteTree {
        return Ok(Err(TxnError {
            op_index: i,
            what: "Must provide key".into(),
        }));
    }
    Ok(Ok(TxnOp::Kv(KvOp {
        verb,
        key,
        value,
        flags: ci_json::uint(kv, "Flags")?.unwrap_or(0),
        index: ci_json::uint(kv, "Index")?.unwrap_or(0),
        session: ci_json::string(kv, "Session")?.unwrap_or_default(),
    })))
}

fn respond(outcome: &TxnOutcome, pretty: bool) -> Response {
    match outcome {
        Ok(results) => {
            let results = results.iter().map(ResultJson::from).collect();
            json(
                &TxnJson {
                    results: Some(results),
                    errors: None,
                },
                pretty,
            )
        }
        Err(errors) => {
            let errors = errors
                .iter()
                .map(|e| ErrorJson {
                    op_index: e.op_index,
                    what: &e.what,
                })
                .collect();
            let mut r = json(
                &TxnJson {
                    results: None,
                    errors: Some(errors),
                },
                pretty,
            );
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
    }
}

pub async fn txn(
    AxState(state): AxState<State>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let opts = params.query_options(&state)?;
    let pretty = params.pretty();
    let body = read_body(&headers, body, state.limits.txn_max_req_len, TXN_LIMIT_DOC).await?;
    let parse_error = |e: ApiError| {
        let why = e.reason.trim_start_matches("Request decode failed: ");
        ApiError::bad_request(format!("Failed to parse body: {why}"))
    };
    let parsed = ci_json::parse(&body).map_err(parse_error)?;
    let Value::Array(items) = parsed else {
        return Err(parse_error(ApiError::bad_request(
            "the transaction must be a JSON list of operations",
        )));
    };
    let max = state.limits.txn_max_ops;
    if items.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Transaction contains too many operations ({} > {max})",
                items.len()
            ),
        ));
    }
    let mut ops = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for item in &items {
        // Indexes count the operations kept (Consul drops an empty one before numbering).
        match decode_op(ops.len() + errors.len(), item, &state.agent.datacenter)
            .map_err(parse_error)?
        {
            Some(Ok(op)) => ops.push(op),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    if !errors.is_empty() {
        return Ok(respond(&Err(errors), pretty));
    }
    let server = &state.server()?;
    for op in &ops {
        let access = if op.is_read() {
            Access::Read
        } else {
            Access::Write
        };
        let resource = match op {
            TxnOp::Kv(kv) => match kv.verb {
                KvVerb::DeleteTree | KvVerb::GetTree => Resource::KeyPrefix(&kv.key),
                _ => Resource::Key(&kv.key),
            },
            TxnOp::Node(n) => Resource::Node(&n.node.name),
            TxnOp::Service(s) => Resource::Node(&s.node),
            TxnOp::Check(c) => Resource::Node(&c.check.node),
        };
        server.authorize(opts.token.as_deref(), resource, access)?;
    }
    if ops.iter().all(TxnOp::is_read) {
        server.check_consistency(opts.consistency).await?;
        let (index, outcome) = server.peek(|s| (s.last_index(), s.read_txn(&ops)));
        let mut meta = server.query_meta(opts.consistency);
        meta.index = index;
        return Ok(with_meta(respond(&outcome, pretty), &meta));
    }
    let (_, outcome) = server
        .write(Command::Txn {
            ops,
            now_ms: now_ms(),
        })
        .await?;
    match outcome {
        Outcome::Txn(t) => Ok(respond(&t, pretty)),
        other => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected transaction outcome {other:?}"),
        )),
    }
    .map(IntoResponse::into_response)
}
