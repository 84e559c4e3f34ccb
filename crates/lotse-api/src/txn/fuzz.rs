//! Bolero fuzz target for `/v1/txn` bodies below the router: [`ci_json::parse`] and the
//! operation decoder. Random under `cargo test`; coverage-guided with
//!
//! ```sh
//! cargo bolero test txn::fuzz::fuzz_txn_body -p lotse-api --sanitizer NONE -T 60s
//! ```
//!
//! (seeds: `src/txn/__fuzz__/txn__fuzz__txn_body/corpus`, real transaction bodies).

use serde_json::{json, Map};

use super::*;

/// Consul's verb names; `KvVerb::parse` is the reference.
const VERBS: [&str; 12] = [
    "set",
    "delete",
    "delete-cas",
    "delete-tree",
    "cas",
    "lock",
    "unlock",
    "get",
    "get-tree",
    "check-index",
    "check-session",
    "check-not-exists",
];

fn verb_name(v: KvVerb) -> &'static str {
    VERBS
        .into_iter()
        .find(|n| KvVerb::parse(n) == Some(v))
        .expect("every verb has a name")
}

/// `op` written back as Consul's JSON.
fn kv_json(op: &KvOp) -> Value {
    json!({"KV": {
        "Verb": verb_name(op.verb),
        "Key": op.key,
        "Value": base64::engine::general_purpose::STANDARD.encode(&op.value),
        "Flags": op.flags,
        "Index": op.index,
        "Session": op.session,
    }})
}

/// `obj` with its keys in lower case; `None` if two keys would then collide.
fn lower(obj: &Map<String, Value>, mut deeper: impl FnMut(&str, &Value) -> Value) -> Option<Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if out.insert(k.to_ascii_lowercase(), deeper(k, v)).is_some() {
            return None;
        }
    }
    Some(Value::Object(out))
}

/// An operation with the keys Consul matches case-insensitively (the operation's and its
/// `KV` member's) lowered; catalog members and their user data (Meta...) are left alone.
fn lowered_op(item: &Value) -> Option<Value> {
    let obj = item.as_object()?;
    let mut collided = false;
    let out = lower(obj, |k, v| match v.as_object() {
        Some(kv) if k.eq_ignore_ascii_case("KV") => {
            lower(kv, |_, v| v.clone()).unwrap_or_else(|| {
                collided = true;
                v.clone()
            })
        }
        _ => v.clone(),
    });
    if collided {
        return None;
    }
    out
}

/// What a decode came to, for comparing two: the operation, or the error's status.
fn outcome(r: &Result<DecodedOp, ApiError>) -> String {
    match r {
        Ok(op) => format!("{op:?}"),
        Err(e) => e.status.to_string(),
    }
}

/// Any body: `ci_json::parse` accepts exactly what is JSON and refuses the rest with a 400
/// saying the decode failed. Each element of a list (or the lone value) decodes to an
/// operation, a refusal naming its index, or a 400, never a panic; a KV operation written
/// back as JSON decodes to itself; and lowering the case of the keys Consul matches
/// case-insensitively changes nothing.
#[test]
fn fuzz_txn_body() {
    bolero::check!().for_each(|body: &[u8]| {
        let parsed = ci_json::parse(body);
        assert_eq!(
            parsed.is_ok(),
            serde_json::from_slice::<Value>(body).is_ok()
        );
        let value = match parsed {
            Ok(v) => v,
            Err(e) => {
                assert_eq!(e.status, StatusCode::BAD_REQUEST);
                assert!(e.reason.starts_with("Request decode failed: "), "{e:?}");
                return;
            }
        };
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for (i, item) in items.iter().enumerate() {
            let got = decode_op(i, item, "dc1");
            match &got {
                Err(e) => assert_eq!(e.status, StatusCode::BAD_REQUEST, "{e:?}"),
                Ok(Some(Err(e))) => assert_eq!(e.op_index, i),
                Ok(Some(Ok(TxnOp::Kv(kv)))) => {
                    let again = decode_op(i, &kv_json(kv), "dc1");
                    assert_eq!(outcome(&again), outcome(&got), "{kv:?}");
                }
                Ok(_) => {}
            }
            if let Some(l) = lowered_op(item) {
                let again = decode_op(i, &l, "dc1");
                assert_eq!(outcome(&again), outcome(&got), "{item} lowered to {l}");
            }
        }
    });
}
