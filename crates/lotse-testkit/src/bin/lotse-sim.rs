//! `lotse-sim [--seeds N] [--from S] [--secs T] [--seed S]`: runs the deterministic cluster
//! simulation for many seeds (or one, `--seed`, printing its history) and reports each; exits 1
//! if any seed broke an invariant. A failing seed replays exactly with `--seed`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lotse_testkit::sim::{run, SimConfig};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut from, mut seeds, mut secs, mut one) = (1u64, 100u64, 20u64, None);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Option<u64> {
            let v = args.next()?;
            v.parse().map_err(|e| eprintln!("{name} {v}: {e}")).ok()
        };
        let parsed = match a.as_str() {
            "--from" => num("--from").map(|v| from = v),
            "--seeds" => num("--seeds").map(|v| seeds = v),
            "--secs" => num("--secs").map(|v| secs = v),
            "--seed" => num("--seed").map(|v| one = Some(v)),
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("usage: lotse-sim [--seeds N] [--from S] [--secs T] | --seed S [--secs T]");
            return ExitCode::from(2);
        }
    }
    let (first, count) = match one {
        Some(s) => (s, 1),
        None => (from, seeds),
    };
    #[cfg(not(tokio_unstable))]
    eprintln!("lotse-sim: built without --cfg tokio_unstable (.cargo/config.toml): a seed may not replay exactly");
    let started = Instant::now();
    // Written without panicking when the reader goes away (`lotse-sim ... | head`).
    let mut out = std::io::stdout().lock();
    let (mut failed, mut ops, mut faults, mut cut) = (Vec::new(), 0usize, 0usize, 0usize);
    for seed in first..first + count {
        let mut cfg = SimConfig::new(seed);
        cfg.duration = Duration::from_secs(secs);
        let r = run(&cfg);
        let _ = writeln!(out, "{}", r.summary());
        if one.is_some() {
            for f in &r.faults {
                let _ = writeln!(out, "  fault: {f}");
            }
            for op in &r.history {
                let _ = writeln!(out, "  {}", serde_json::to_string(op).unwrap_or_default());
            }
        }
        ops += r.ops;
        faults += r.faults.len();
        cut += r.lock_delays_cut_by_clock;
        if !r.passed() {
            failed.push(seed);
        }
    }
    let _ = writeln!(
        out,
        "{count} seeds from {first}, {secs} simulated s each: {ops} operations, {faults} faults, \
         {cut} lock-delays cut by clock jumps, {} failed {:?}; {:.0} s wall",
        failed.len(),
        failed,
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
