//! `PUT /v1/txn`: up to `txn_max_ops` KV operations applied atomically. A transaction of reads
//! only is served without the log, with the query headers of its consistency mode.

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

use crate::ci_json;
use crate::kv::{read_body, KvJson};
use crate::params::Params;
use crate::reply::{json, with_meta, ApiError, ApiResult};
use crate::State;

const TXN_LIMIT_DOC: &str =
    "https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResultJson<'a> {
    #[serde(rename = "KV")]
    kv: KvJson<'a>,
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

/// Decodes one `{"KV": {...}}` operation; the error is Consul's conversion error for op `i`.
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

fn decode_op(i: usize, v: &Value) -> Result<Result<TxnOp, TxnError>, ApiError> {
    let op = ci_json::object(v, "operation")?;
    refuse_unknown(op, &OP_KINDS)?;
    let Some(kv) = ci_json::field(op, "KV") else {
        let kind = op.keys().next().cloned().unwrap_or_default();
        return Err(ApiError::bad_request(format!(
            "Operation {i}: {kind:?} operations are not supported yet (only KV)"
        )));
    };
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
            let results = results
                .iter()
                .map(|r| match r {
                    TxnResult::Kv(e) => ResultJson {
                        kv: KvJson::from(e),
                    },
                })
                .collect();
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
    for (i, item) in items.iter().enumerate() {
        match decode_op(i, item).map_err(parse_error)? {
            Ok(op) => ops.push(op),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Ok(respond(&Err(errors), pretty));
    }
    let server = &state.server;
    for op in &ops {
        let TxnOp::Kv(kv) = op;
        let access = if kv.verb.is_read() {
            Access::Read
        } else {
            Access::Write
        };
        let resource = match kv.verb {
            KvVerb::DeleteTree | KvVerb::GetTree => Resource::KeyPrefix(&kv.key),
            _ => Resource::Key(&kv.key),
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
