//! `lotse leave` (`PUT /v1/agent/leave`: the agent leaves gracefully and shuts down) and
//! `lotse force-leave [-prune] [-wan] NODE` (`PUT /v1/agent/force-leave/NODE`: a failed member
//! is marked left), as `consul leave` and `consul force-leave` do.

use clap::{ArgAction, Parser};

use super::flags::{self, parse_bool, HttpFlags, HttpOnlyArgs};
use super::http::{encode_path, Query};

pub const LEAVE_SYNOPSIS: &str = "Gracefully leaves the Lotse cluster and shuts down";
pub const FORCE_LEAVE_SYNOPSIS: &str = "Forces a member of the cluster to enter the \"left\" state";

pub fn help_leave() -> String {
    flags::usage::<HttpOnlyArgs>(
        "Usage: lotse leave [options]

  Causes the agent to gracefully leave the Lotse cluster and shutdown.",
    )
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list(args: &[String]) -> String {
    format!("[{}]", args.join(" "))
}

pub fn run_leave(args: &[String]) -> i32 {
    let a: HttpOnlyArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if !a.args.is_empty() {
        // consul prints the help on stdout here (`UI.Output`).
        eprintln!("Error found unexpected args: {}", go_list(&a.args));
        println!("{}", help_leave());
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.request_ok("PUT", "/v1/agent/leave", &Query::write(), None) {
        Ok(_) => {
            println!("Graceful leave complete");
            0
        }
        Err(e) => flags::fail("Error leaving", e),
    }
}

#[derive(Parser, Debug)]
#[command(name = "force-leave")]
struct ForceLeaveArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Remove agent forcibly from list of members
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    prune: bool,
    /// Exclusively leave the agent from the WAN serf pool.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    wan: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_force_leave() -> String {
    flags::usage::<ForceLeaveArgs>(
        "Usage: lotse force-leave [options] name

  Forces a member of a Lotse cluster to enter the \"left\" state. Note
  that if the member is still actually alive, it will eventually rejoin
  the cluster. This command is most useful for cleaning out \"failed\" nodes
  that are never coming back. If you do not force leave a failed node,
  Lotse will attempt to reconnect to those failed nodes for some period of
  time before eventually reaping them.",
    )
}

/// The request `force-leave` makes for `node`.
fn force_leave_request(node: &str, prune: bool, wan: bool) -> (String, Query) {
    let mut q = Query::write();
    if prune {
        q = q.param("prune", 1);
    }
    if wan {
        q = q.param("wan", 1);
    }
    (format!("/v1/agent/force-leave/{}", encode_path(node)), q)
}

pub fn run_force_leave(args: &[String]) -> i32 {
    let a: ForceLeaveArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if a.args.len() != 1 {
        eprintln!("A single node name must be specified to force leave.");
        eprintln!();
        eprintln!("{}", help_force_leave());
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let (path, q) = force_leave_request(&a.args[0], a.prune, a.wan);
    match client.request_ok("PUT", &path, &q, None) {
        // consul prints nothing on success.
        Ok(_) => 0,
        Err(e) => flags::fail("Error force leaving", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn leave_refuses_arguments() {
        assert_eq!(go_list(&argv(&["a", "b"])), "[a b]");
        assert_eq!(run_leave(&argv(&["a"])), 1);
        assert_eq!(run_leave(&argv(&["-http-addr=127.0.0.1:1"])), 1);
    }

    #[test]
    fn force_leave_needs_one_node() {
        assert_eq!(run_force_leave(&[]), 1);
        assert_eq!(run_force_leave(&argv(&["a", "b"])), 1);
        assert_eq!(run_force_leave(&argv(&["-http-addr=127.0.0.1:1", "a"])), 1);
    }

    #[test]
    fn force_leave_sends_prune_and_wan() {
        let (path, q) = force_leave_request("node 1", true, true);
        assert_eq!(path, "/v1/agent/force-leave/node%201");
        assert_eq!(
            q.params,
            vec![
                ("prune".to_string(), Some("1".to_string())),
                ("wan".to_string(), Some("1".to_string()))
            ]
        );
        let a: ForceLeaveArgs = flags::parse(&argv(&["-prune", "n1"])).unwrap();
        assert!(a.prune && !a.wan);
        assert_eq!(a.args, vec!["n1".to_string()]);
    }
}
