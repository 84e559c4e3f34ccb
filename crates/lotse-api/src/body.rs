//! Request bodies: read under a size limit (Consul's 413 above it) and, for JSON bodies,
//! decoded as Go's `json.Decoder` does (`lib.DecodeJSON` and the agent's `decodeBody`): the
//! first JSON value counts and trailing bytes are not looked at; an empty or blank body is
//! `EOF`, a truncated one `unexpected EOF`.
//!
//! Every endpoint that takes a body reads it here, so none can be made to buffer more than its
//! own limit.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;

use crate::reply::ApiError;

/// Reads a request body of at most `limit` bytes; a larger one is Consul's 413, refused from
/// its `Content-Length` before anything is read when the client declares it.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    doc: &str,
) -> Result<Vec<u8>, ApiError> {
    let too_large = |size: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body({size} bytes) too large, max size: {limit} bytes. See {doc}."),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared.filter(|l| *l > limit) {
        return Err(too_large(len.to_string()));
    }
    axum::body::to_bytes(body, limit)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| too_large(format!("more than {limit}")))
}

/// Reads a JSON body of at most `limit` bytes and decodes its first value, with Consul's
/// `Request decode failed: ...` 400s.
pub async fn json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    doc: &str,
) -> Result<Value, ApiError> {
    let bytes = read_body(headers, body, limit, doc).await?;
    first_value(&bytes)
}

/// The first JSON value of `bytes`, as Go's `json.Decoder.Decode` reads it.
pub fn first_value(bytes: &[u8]) -> Result<Value, ApiError> {
    let decode_failed =
        |why: String| ApiError::bad_request(format!("Request decode failed: {why}"));
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    match values.next() {
        None => Err(decode_failed("EOF".into())),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) if e.is_eof() => Err(decode_failed("unexpected EOF".into())),
        Some(Err(e)) => Err(decode_failed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_value_counts_as_gos_decoder_reads_it() {
        let v = first_value(br#" {"a": 1} trailing"#).unwrap();
        assert_eq!(v["a"], 1);
        for (body, why) in [
            (&b""[..], "Request decode failed: EOF"),
            (b"  \n ", "Request decode failed: EOF"),
            (b"{", "Request decode failed: unexpected EOF"),
            (br#"{"a": "#, "Request decode failed: unexpected EOF"),
        ] {
            let e = first_value(body).unwrap_err();
            assert_eq!((e.status.as_u16(), e.reason.as_str()), (400, why));
        }
    }

    #[tokio::test]
    async fn bodies_above_the_limit_are_413_declared_or_not() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        let e = read_body(&headers, Body::from("x".repeat(11)), 10, "doc")
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.reason.starts_with("Request body(11 bytes) too large"));
        // An undeclared (chunked) body is cut off at the limit too.
        let e = read_body(&HeaderMap::new(), Body::from("x".repeat(11)), 10, "doc")
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read_body(&HeaderMap::new(), Body::from("x".repeat(10)), 10, "doc")
            .await
            .unwrap();
        assert_eq!(ok.len(), 10);
    }
}
