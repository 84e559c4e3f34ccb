//! `lotse-check HISTORY.jsonl [--budget-secs N] [--report FILE]`: checks a recorded history for
//! linearizability, key by key. Prints one line per key; writes a JSON report if asked.
//! Exit status: 0 linearizable, 1 an anomaly, 2 undecided (out of time) or unreadable input.

use std::process::ExitCode;
use std::time::Duration;

use lotse_testkit::linearizability::{check_history, load_history, Verdict};

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
    while let Some(a) = args.next() {
        match a.as_str() {
            "--budget-secs" => {
                let v = args.next().ok_or("--budget-secs needs a number")?;
                budget = Duration::from_secs(v.parse().map_err(|e| format!("--budget-secs {v}: {e}"))?);
            }
            "--report" => report = Some(args.next().ok_or("--report needs a file")?),
            _ if path.is_none() && !a.starts_with('-') => path = Some(a),
            _ => return Err(format!("unexpected argument {a:?} (usage: lotse-check HISTORY.jsonl [--budget-secs N] [--report FILE])")),
        }
    }
    let path = path.ok_or("usage: lotse-check HISTORY.jsonl [--budget-secs N] [--report FILE]")?;
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
    if let Some(file) = report {
        let json = serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?;
        std::fs::write(&file, json).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(ExitCode::from(worst))
}
