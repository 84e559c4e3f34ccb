//! One request, as raw bytes, to `Responder::handle` over UDP and over TCP, against a small
//! populated catalog in three configurations (Consul's defaults; an alternative domain with
//! every switch flipped; recursors and confirmed reads). Any panic is a finding, and so is a
//! reply that does not decode, carries another ID or question, or is longer than the
//! transport allows (`lotse_dns::testing::drive`).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use lotse_dns::respond::{Responder, Transport};
use lotse_dns::testing::{drive, sample_catalog, sample_responders, TestCatalog};

struct Fixture {
    // Kept alive for the responders' view.
    _catalog: TestCatalog,
    responders: Vec<Responder>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let catalog = sample_catalog();
    let responders = sample_responders(&catalog);
    Fixture {
        _catalog: catalog,
        responders,
    }
});

fuzz_target!(|data: &[u8]| {
    for r in &FIXTURE.responders {
        for t in [Transport::Udp, Transport::Tcp] {
            if let Err(e) = drive(r, data, t) {
                panic!("{t:?}: {e}");
            }
        }
    }
});
