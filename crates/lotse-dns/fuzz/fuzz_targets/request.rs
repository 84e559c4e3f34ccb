//! One request, as raw bytes, to `Responder::handle` over UDP and over TCP, against a small
//! populated catalog in three configurations (Consul's defaults; an alternative domain with
//! every switch flipped; recursors and confirmed reads). Any panic is a finding, and so is a
//! reply that does not decode, carries another ID or question, or is longer than the
//! transport allows (`lotse_dns::testing::drive`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotse_dns::respond::Transport;
use lotse_dns::testing::{drive, FIXTURE};

fuzz_target!(|data: &[u8]| {
    for r in &FIXTURE.responders {
        for t in [Transport::Udp, Transport::Tcp] {
            if let Err(e) = drive(r, data, t) {
                panic!("{t:?}: {e}");
            }
        }
    }
});
