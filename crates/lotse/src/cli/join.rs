//! `lotse join [-wan] ADDR...`: asks the agent to join a gossip pool through each address
//! (`PUT /v1/agent/join/ADDR`), as `consul join` does: every address is tried, and the command
//! fails only when none of them worked.

use clap::{ArgAction, Parser};

use super::flags::{self, parse_bool, HttpFlags};
use super::http::{encode_path, Client, Query};

pub const SYNOPSIS: &str = "Tell Lotse agent to join cluster";

#[derive(Parser, Debug)]
#[command(name = "join")]
struct JoinArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Joins a server to another server in the WAN pool.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    wan: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<JoinArgs>(
        "Usage: lotse join [options] address ...

  Tells a running Lotse agent (with \"lotse agent\") to join the cluster
  by specifying at least one existing member.",
    )
}

/// Joins through each address in turn; the number that worked, and consul's message for each
/// that did not.
fn join_all(client: &Client, addrs: &[String], wan: bool) -> (usize, Vec<String>) {
    let mut joined = 0;
    let mut errors = Vec::new();
    for addr in addrs {
        let mut q = Query::write();
        if wan {
            q = q.param("wan", 1);
        }
        let path = format!("/v1/agent/join/{}", encode_path(addr));
        match client.request_ok("PUT", &path, &q, None) {
            Ok(_) => joined += 1,
            Err(e) => errors.push(format!("Error joining address '{addr}': {e}")),
        }
    }
    (joined, errors)
}

fn success(joined: usize) -> String {
    format!("Successfully joined cluster by contacting {joined} nodes.")
}

pub fn run(args: &[String]) -> i32 {
    let a: JoinArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if a.args.is_empty() {
        eprintln!("At least one address to join must be specified.");
        eprintln!();
        eprintln!("{}", help());
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let (joined, errors) = join_all(&client, &a.args, a.wan);
    for e in &errors {
        eprintln!("{e}");
    }
    if joined == 0 {
        eprintln!("Failed to join any nodes.");
        return 1;
    }
    println!("{}", success(joined));
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn an_address_is_required() {
        assert_eq!(run(&[]), 1);
        assert_eq!(run(&argv(&["-wan"])), 1);
    }

    #[test]
    fn failing_every_address_is_exit_1() {
        assert_eq!(run(&argv(&["-http-addr=127.0.0.1:1", "10.0.0.1"])), 1);
    }

    #[test]
    fn consuls_success_line() {
        assert_eq!(
            success(2),
            "Successfully joined cluster by contacting 2 nodes."
        );
    }
}
