//! `lotse`: one binary for the agent (`lotse agent`) and the CLI that talks to it.
#![forbid(unsafe_code)]

mod agent;
mod cli;
mod config;
mod goflags;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("agent") => agent::main(&args[1..]),
        _ => cli::main(&args),
    }
}
