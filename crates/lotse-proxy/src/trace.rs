//! W3C Trace Context: a valid incoming `traceparent` is continued (same trace id and flags,
//! the proxy's own span id as the new parent); a missing or malformed one starts a trace.
//! `tracestate` passes through untouched.

use std::fmt;

use bytes::Bytes;
use http::HeaderValue;
use rand::Rng;

/// One request's trace: numbers, not strings, because every request carries one and the
/// header is written with a table instead of `format!` (it was 4 % of the proxy's CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    /// The proxy's span (the `parent-id` the upstream sees).
    pub span_id: u64,
    pub flags: u8,
}

/// `traceparent` is `00-` + 32 + `-` + 16 + `-` + 2 hex digits.
const HEADER_LEN: usize = 55;

impl TraceContext {
    /// Continues `incoming` if it is a valid version-00 (or later) `traceparent`, else starts.
    pub fn continue_or_start(incoming: Option<&[u8]>, rng: &mut impl Rng) -> TraceContext {
        let span_id = rng.gen::<u64>().max(1);
        if let Some((trace_id, flags)) = incoming.and_then(parse) {
            return TraceContext {
                trace_id,
                span_id,
                flags,
            };
        }
        TraceContext {
            trace_id: rng.gen::<u128>().max(1),
            span_id,
            flags: 0x01,
        }
    }

    /// The `traceparent` the upstream and the client see. Its bytes sit in one shared
    /// allocation, so the copy for the upstream request only counts a reference (a header
    /// value copied from a slice would allocate again on its first clone).
    pub fn header_value(&self) -> HeaderValue {
        let mut buf = [0u8; HEADER_LEN];
        buf[..3].copy_from_slice(b"00-");
        put_hex(&mut buf[3..35], &self.trace_id.to_be_bytes());
        buf[35] = b'-';
        put_hex(&mut buf[36..52], &self.span_id.to_be_bytes());
        buf[52] = b'-';
        put_hex(&mut buf[53..55], &[self.flags]);
        // Only hex digits and '-': always a valid header value.
        HeaderValue::from_maybe_shared(Bytes::from_owner(buf))
            .unwrap_or_else(|_| HeaderValue::from_static("00"))
    }

    /// The trace id as the access log and the W3C text write it (32 hex digits).
    pub fn trace_id_hex(&self) -> impl fmt::Display {
        TraceId(self.trace_id)
    }
}

struct TraceId(u128);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// `(trace id, flags)` of a valid header: version, trace id, parent id and flags in lower-case
/// hex; version `ff` and all-zero ids are invalid; version 00 has exactly four fields.
fn parse(h: &[u8]) -> Option<(u128, u8)> {
    let h = h.trim_ascii();
    let mut parts = h.split(|&b| b == b'-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let more = parts.next().is_some();
    let version_n = hex_value(version, 2)?;
    if version_n == 0xff || (version_n == 0 && more) {
        return None;
    }
    let trace_id = hex_value(trace, 32)?;
    let parent_id = hex_value(parent, 16)?;
    let flags = hex_value(flags, 2)?;
    if trace_id == 0 || parent_id == 0 {
        return None;
    }
    Some((trace_id, flags as u8))
}

/// The value of exactly `len` lower-case hex digits.
fn hex_value(s: &[u8], len: usize) -> Option<u128> {
    if s.len() != len {
        return None;
    }
    s.iter().try_fold(0u128, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(d))
    })
}

fn put_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn continues_a_valid_trace() {
        let mut rng = StdRng::seed_from_u64(1);
        let t = TraceContext::continue_or_start(
            Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            &mut rng,
        );
        assert_eq!(
            t.trace_id_hex().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(t.span_id, 0x00f0_67aa_0ba9_02b7);
        let header = t.header_value();
        let header = header.to_str().unwrap();
        assert!(header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(header.ends_with("-01"));
        assert_eq!(&header[36..52], format!("{:016x}", t.span_id));
    }

    #[test]
    fn starts_one_for_missing_or_bad_headers() {
        let mut rng = StdRng::seed_from_u64(2);
        for bad in [
            None,
            Some(&b"garbage"[..]),
            Some(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Some(b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
            Some(b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"),
        ] {
            let t = TraceContext::continue_or_start(bad, &mut rng);
            assert_ne!(t.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
            let header = t.header_value();
            assert_eq!(header.len(), 55);
            let text = header.to_str().unwrap();
            assert_eq!(&text[3..35], t.trace_id_hex().to_string());
            assert!(text.ends_with("-01"), "{text}");
        }
    }

    #[test]
    fn a_later_version_with_more_fields_is_continued() {
        let mut rng = StdRng::seed_from_u64(3);
        let t = TraceContext::continue_or_start(
            Some(b" 01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future "),
            &mut rng,
        );
        assert_eq!(t.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(t.flags, 0);
        assert!(t.header_value().to_str().unwrap().ends_with("-00"));
    }
}
