//! `lotse operator raft ...` and `lotse operator autopilot ...`, like `consul operator`: the
//! Raft configuration (`/v1/operator/raft/*`) and autopilot (`/v1/operator/autopilot/*`).
//!
//! Each subcommand splits into a pure `render` (the JSON the agent answered → consul's text,
//! unit-tested with canned JSON) and a `run` doing the flags and the requests. The operator
//! commands report a bad address as consul's do (`Error initializing client: ...`).

use super::flags::HttpFlags;
use super::http::Client;

mod autopilot;
mod raft;

pub use autopilot::{
    help_get_config, help_set_config, help_state, run_get_config, run_set_config, run_state,
};
pub use raft::{
    help_list_peers, help_remove_peer, help_transfer_leader, run_list_peers, run_remove_peer,
    run_transfer_leader,
};

pub const SYNOPSIS: &str = "Provides cluster-level tools for Lotse operators";
pub const RAFT_SYNOPSIS: &str = "Provides cluster-level tools for Lotse operators";
pub const AUTOPILOT_SYNOPSIS: &str = "Provides tools for modifying Autopilot configuration";
pub const LIST_PEERS_SYNOPSIS: &str = "Display the current Raft peer configuration";
pub const REMOVE_PEER_SYNOPSIS: &str = "Remove a Lotse server from the Raft configuration";
pub const TRANSFER_LEADER_SYNOPSIS: &str = "Transfer raft leadership to another node";
pub const GET_CONFIG_SYNOPSIS: &str = "Display the current Autopilot configuration";
pub const SET_CONFIG_SYNOPSIS: &str = "Modify the current Autopilot configuration";
pub const STATE_SYNOPSIS: &str = "Display the current Autopilot state";

pub fn help() -> String {
    "Usage: lotse operator <subcommand> [options]

  Provides cluster-level tools for Lotse operators, such as interacting with
  the Raft subsystem. NOTE: Use this command with extreme caution, as improper
  use could lead to a Lotse outage and even loss of data.

  If ACLs are enabled then a token with operator privileges may be required in
  order to use this command. Requests are forwarded internally to the leader
  if required, so this can be run from any Lotse node in a cluster.

  Run lotse operator <subcommand> with no arguments for help on that
  subcommand."
        .to_string()
}

pub fn help_raft() -> String {
    "Usage: lotse operator raft <subcommand> [options]

  The Raft operator command is used to interact with Lotse's Raft subsystem. The
  command can be used to verify Raft peers or in rare cases to recover quorum by
  removing invalid peers."
        .to_string()
}

pub fn help_autopilot() -> String {
    "Usage: lotse operator autopilot <subcommand> [options]

  The Autopilot operator command is used to interact with Lotse's Autopilot
  subsystem. The command can be used to view or modify the current configuration."
        .to_string()
}

/// The client of an operator command; on a bad address consul's operator commands print
/// `Error initializing client: ...` and exit 1.
fn client(http: &HttpFlags) -> Result<Client, i32> {
    http.config()
        .map(Client::new)
        .map_err(|e| super::flags::fail("Error initializing client", e))
}

#[cfg(test)]
mod tests {
    use crate::cli::flags::argv;

    /// Three-word commands dispatch, and their parents show help with exit code 1 as `kv` does.
    #[test]
    fn nested_commands_dispatch() {
        let run = |a: &[&str]| crate::cli::run(&argv(a));
        assert_eq!(run(&["operator"]), 1);
        assert_eq!(run(&["operator", "raft"]), 1);
        assert_eq!(run(&["operator", "autopilot"]), 1);
        assert_eq!(run(&["operator", "raft", "list-peers", "-h"]), 0);
        assert_eq!(run(&["operator", "autopilot", "set-config", "--help"]), 0);
        assert_eq!(
            run(&["operator", "raft", "list-peers", "-http-addr=127.0.0.1:1"]),
            1
        );
        let e = crate::cli::entries();
        let raft = e.iter().find(|e| e.name == "operator raft").unwrap();
        let h = crate::cli::command_help(&e, raft);
        assert!(h.contains("Subcommands:\n    list-peers "), "{h}");
        assert!(h.contains("\n    transfer-leader "), "{h}");
    }
}
