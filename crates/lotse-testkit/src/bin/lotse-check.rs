//! `lotse-check HISTORY.jsonl [--budget-secs N] [--lock-delay-slack-ms N] [--report FILE]`:
//! checks a recorded history for linearizability, key by key, and for acquires inside another
//! session's lock-delay. Prints one line per key, then any lock-delay breach; writes a JSON
//! report (the linearizability verdicts) if asked.
//! Exit status: 0 linearizable and no breach, 1 an anomaly or a breach, 2 undecided (out of
//! time) or unreadable input.

use std::process::ExitCode;
use std::time::Duration;

use lotse_testkit::linearizability::{check_history, check_lock_delays, load_history, Verdict};

const USAGE: &str =
    "usage: lotse-check HISTORY.jsonl [--budget-secs N] [--lock-delay-slack-ms N] [--report FILE]";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lotse-check: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut budget = Duration::from_secs(60);
    let mut report = None;
    // The servers stamp lock-delays by their wall clock, the clients' history by their
    // monotonic one; on one machine they drift apart by far less than this.
    let mut slack_ms: u64 = 10;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--budget-secs" => {
                let v = args.next().ok_or("--budget-secs needs a number")?;
                budget =
                    Duration::from_secs(v.parse().map_err(|e| format!("--budget-secs {v}: {e}"))?);
            }
            "--lock-delay-slack-ms" => {
                let v = args.next().ok_or("--lock-delay-slack-ms needs a number")?;
                slack_ms = v
                    .parse()
                    .map_err(|e| format!("--lock-delay-slack-ms {v}: {e}"))?;
            }
            "--report" => report = Some(args.next().ok_or("--report needs a file")?),
            _ if path.is_none() && !a.starts_with('-') => path = Some(a),
            _ => return Err(format!("unexpected argument {a:?} ({USAGE})")),
        }
    }
    let path = path.ok_or(USAGE)?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let history = load_history(&text).map_err(|e| format!("{path}: {e}"))?;
    let reports = check_history(&history, budget);
    let mut worst = 0u8;
    for r in &reports {
        let (word, code) = match &r.verdict {
            Verdict::Linearizable => ("linearizable", 0),
            Verdict::Anomaly { .. } => ("ANOMALY", 1),
            Verdict::Unknown => ("undecided (out of time)", 2),
        };
        println!("{}: {} ops, {} ({} steps)", r.key, r.ops, word, r.steps);
        if let Verdict::Anomaly { stuck, prefix } = &r.verdict {
            let ops = &history[&r.key];
            println!(
                "  no order explains: {}",
                serde_json::to_string(&ops[*stuck]).unwrap_or_default()
            );
            println!("  longest explained order ends with:");
            for i in prefix.iter().rev().take(8).rev() {
                println!(
                    "    {}",
                    serde_json::to_string(&ops[*i]).unwrap_or_default()
                );
            }
        }
        worst = worst.max(code);
    }
    let breaches = check_lock_delays(&history, slack_ms * 1_000_000);
    for b in &breaches {
        println!("LOCK-DELAY BREACH {b}");
    }
    if !breaches.is_empty() {
        worst = worst.max(1);
    }
    if let Some(file) = report {
        let json = serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?;
        std::fs::write(&file, json).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(ExitCode::from(worst))
}
