//! The bolero fuzz target: one raw DNS message through [`crate::respond::Responder::handle`].
//!
//! Under `cargo test` it replays the seed corpus and then runs bolero's random engine for its
//! default second; coverage-guided, it runs under libFuzzer:
//!
//! ```sh
//! cargo bolero test tests::fuzz::fuzz_request -p lotse-dns --sanitizer NONE -T 60s
//! ```
//!
//! The corpus directory (`src/tests/__fuzz__/tests__fuzz__request/corpus`) is a
//! link to `fuzz/corpus/request`, so the cargo-fuzz target in `fuzz/` and this one share
//! seeds and findings.

use super::*;
use crate::testing::{drive, FIXTURE};

/// Whatever arrives, no responder panics, and [`drive`] holds every reply to the reply
/// invariants (decodes, is a response, carries the request's ID and question, fits the
/// transport). On top: a request that decodes as a query is answered, never dropped.
#[test]
fn fuzz_request() {
    bolero::check!().for_each(|raw: &[u8]| {
        let query = Message::from_vec(raw)
            .ok()
            .filter(|m| m.metadata.message_type == MessageType::Query);
        for r in &FIXTURE.responders {
            for t in [Transport::Udp, Transport::Tcp] {
                let reply = drive(r, raw, t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
                if let Some(q) = &query {
                    let reply = reply.unwrap_or_else(|| panic!("{t:?}: a query went unanswered"));
                    assert_eq!(reply.metadata.id, q.metadata.id, "{t:?}");
                    assert_eq!(reply.metadata.message_type, MessageType::Response);
                }
            }
        }
    });
}
