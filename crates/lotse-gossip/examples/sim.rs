//! Runs the in-process SWIM simulation and prints a table.
//!
//! `cargo run --release -p lotse-gossip --example sim -- 1000 0.0 0.1`
//! (members, then one or more packet-loss rates).

// `cargo bolero test` builds every test target of this crate with libFuzzer's coverage
// instrumentation; linking bolero gives this binary the runtime that instrumentation calls.
#[cfg(fuzzing)]
use bolero as _;

use lotse_gossip::sim::{run, SimConfig, SimReport};

fn main() {
    let mut args = std::env::args().skip(1);
    let members: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut losses: Vec<f64> = args.filter_map(|a| a.parse().ok()).collect();
    if losses.is_empty() {
        losses = vec![0.0, 0.1];
    }
    println!("{}", SimReport::header());
    for loss in losses {
        let report = run(&SimConfig::new(members, loss));
        println!("{}", report.row());
    }
}
