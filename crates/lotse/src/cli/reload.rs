//! `lotse reload`: asks the agent to re-read its configuration (`PUT /v1/agent/reload`), as
//! `consul reload` does: services and checks from config files are re-registered, the log level
//! re-applied; a broken file is refused and the running configuration kept.

use clap::Parser;

use super::flags::{self, HttpFlags};
use super::http::Query;

pub const SYNOPSIS: &str = "Triggers the agent to reload configuration files";

#[derive(Parser, Debug)]
#[command(name = "reload")]
struct ReloadArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<ReloadArgs>(
        "Usage: lotse reload [options]\n\n  Causes the agent to reload configurations. This can be used instead\n  of sending the SIGHUP signal to the agent.",
    )
}

pub fn run(args: &[String]) -> i32 {
    let a: ReloadArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if !a.args.is_empty() {
        eprintln!("Too many arguments (expected 0, got {})", a.args.len());
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match client.request_ok("PUT", "/v1/agent/reload", &Query::default(), None) {
        Ok(_) => {
            println!("Configuration reload triggered");
            0
        }
        Err(e) => {
            eprintln!("Error reloading: {e}");
            1
        }
    }
}
