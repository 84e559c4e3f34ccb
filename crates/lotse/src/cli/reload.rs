//! `lotse reload`: asks the agent to re-read its configuration (`PUT /v1/agent/reload`), as
//! `consul reload` does: services and checks from config files are re-registered, the log level
//! re-applied; a broken file is refused and the running configuration kept.

use super::flags::{self, HttpOnlyArgs};
use super::http::Query;

pub const SYNOPSIS: &str = "Triggers the agent to reload configuration files";

pub fn help() -> String {
    flags::usage::<HttpOnlyArgs>(
        "Usage: lotse reload [options]\n\n  Causes the agent to reload configurations. This can be used instead\n  of sending the SIGHUP signal to the agent.",
    )
}

pub fn run(args: &[String]) -> i32 {
    let client = match flags::http_only_client(args) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.request_ok("PUT", "/v1/agent/reload", &Query::default(), None) {
        Ok(_) => {
            println!("Configuration reload triggered");
            0
        }
        Err(e) => flags::fail("Error reloading", e),
    }
}
