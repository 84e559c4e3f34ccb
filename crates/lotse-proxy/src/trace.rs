//! W3C Trace Context: a valid incoming `traceparent` is continued (same trace id and flags,
//! the proxy's own span id as the new parent); a missing or malformed one starts a trace.
//! `tracestate` passes through untouched.

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    /// The proxy's span (the `parent-id` the upstream sees).
    pub span_id: String,
    pub flags: String,
}

impl TraceContext {
    /// Continues `incoming` if it is a valid version-00 (or later) `traceparent`, else starts.
    pub fn continue_or_start(incoming: Option<&str>, rng: &mut impl Rng) -> TraceContext {
        let span_id = hex(rng.gen::<u64>().max(1).to_be_bytes().as_slice());
        if let Some((trace_id, flags)) = incoming.and_then(parse) {
            return TraceContext {
                trace_id,
                span_id,
                flags,
            };
        }
        let id: u128 = rng.gen::<u128>().max(1);
        TraceContext {
            trace_id: hex(id.to_be_bytes().as_slice()),
            span_id,
            flags: "01".into(),
        }
    }

    pub fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// `(trace id, flags)` of a valid header.
fn parse(h: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = h.trim().split('-').collect();
    if parts.len() < 4 {
        return None;
    }
    let (version, trace, parent, flags) = (parts[0], parts[1], parts[2], parts[3]);
    let is_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !is_hex(version, 2) || version == "ff" || (version == "00" && parts.len() != 4) {
        return None;
    }
    if !is_hex(trace, 32) || trace.bytes().all(|b| b == b'0') {
        return None;
    }
    if !is_hex(parent, 16) || parent.bytes().all(|b| b == b'0') || !is_hex(flags, 2) {
        return None;
    }
    Some((trace.to_string(), flags.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            &mut rng,
        );
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        assert!(t
            .header()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(t.header().ends_with("-01"));
    }

    #[test]
    fn starts_one_for_missing_or_bad_headers() {
        let mut rng = StdRng::seed_from_u64(2);
        for bad in [
            None,
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        ] {
            let t = TraceContext::continue_or_start(bad, &mut rng);
            assert_eq!(t.trace_id.len(), 32);
            assert_ne!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(t.header().len(), 55);
        }
    }
}
