//! `lotse operator raft list-peers|remove-peer|transfer-leader`.

use clap::Parser;
use serde::Deserialize;

use super::super::flags::{self, HttpFlags};
use super::super::http::Query;
use super::super::tabwriter::columnize;

#[derive(Parser, Debug)]
#[command(name = "list-peers")]
struct ListPeersArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Parser, Debug)]
#[command(name = "remove-peer")]
struct RemovePeerArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The address to remove from the Raft configuration.
    #[arg(long, default_value = "", value_name = "string")]
    address: String,
    /// The ID to remove from the Raft configuration.
    #[arg(long, default_value = "", value_name = "string")]
    id: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Parser, Debug)]
#[command(name = "transfer-leader")]
struct TransferLeaderArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The ID of the node to transfer leadership to.
    #[arg(long, default_value = "", value_name = "string")]
    id: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_list_peers() -> String {
    flags::usage::<ListPeersArgs>(
        "Usage: lotse operator raft list-peers [options]

  Displays the current Raft peer configuration.",
    )
}

pub fn help_remove_peer() -> String {
    flags::usage::<RemovePeerArgs>(
        "Usage: lotse operator raft remove-peer [options]

  Remove the Lotse server with given -id from the Raft configuration.

  There are rare cases where a peer may be left behind in the Raft quorum even
  though the server is no longer present and known to the cluster. This command
  can be used to remove the failed server so that it is no longer affects the Raft
  quorum. If the server still shows in the output of the \"lotse members\" command,
  it is preferable to clean up by simply running \"lotse force-leave\" instead of
  this command.",
    )
}

pub fn help_transfer_leader() -> String {
    flags::usage::<TransferLeaderArgs>(
        "Usage: lotse operator raft transfer-leader [options]

  Transfer raft leadership to another node.",
    )
}

/// A server of `GET /v1/operator/raft/configuration`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftServer {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub leader: bool,
    pub protocol_version: String,
    pub voter: bool,
    pub last_index: u64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftConfiguration {
    pub servers: Option<Vec<RaftServer>>,
    pub index: u64,
}

/// consul's list-peers table: `Node ID Address State Voter RaftProtocol Commit Index Trails
/// Leader By`, servers in the answer's order; how far each trails the leader's last index.
pub fn render_peers(cfg: &RaftConfiguration) -> String {
    let servers = cfg.servers.as_deref().unwrap_or_default();
    let leader_index = servers
        .iter()
        .find(|s| s.leader)
        .map_or(0, |s| s.last_index);
    let mut lines = vec![
        "Node\x1fID\x1fAddress\x1fState\x1fVoter\x1fRaftProtocol\x1fCommit Index\x1fTrails Leader By"
            .to_string(),
    ];
    for s in servers {
        let protocol = if s.protocol_version.is_empty() {
            "<=1"
        } else {
            s.protocol_version.as_str()
        };
        let state = if s.leader { "leader" } else { "follower" };
        // Go's uint64 subtraction wraps, as consul's does for a server ahead of the leader.
        let trails = leader_index.wrapping_sub(s.last_index);
        let trails = match (s.leader, trails) {
            (true, _) => "-".to_string(),
            (false, 1) => "1 commit".to_string(),
            (false, n) => format!("{n} commits"),
        };
        lines.push(format!(
            "{}\x1f{}\x1f{}\x1f{state}\x1f{}\x1f{protocol}\x1f{}\x1f{trails}",
            s.node, s.id, s.address, s.voter, s.last_index
        ));
    }
    columnize(&lines, "\x1f")
}

pub fn run_list_peers(args: &[String]) -> i32 {
    let a: ListPeersArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let client = match super::client(&a.http) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client
        .request_ok(
            "GET",
            "/v1/operator/raft/configuration",
            &Query::read(),
            None,
        )
        .and_then(|r| r.json::<RaftConfiguration>())
    {
        Ok(cfg) => {
            println!("{}", render_peers(&cfg));
            0
        }
        Err(e) => flags::fail(
            "Error getting peers",
            format!("Failed to retrieve raft configuration: {e}"),
        ),
    }
}

/// consul's checks before removing a peer.
fn peer_query(address: &str, id: &str) -> Result<Query, &'static str> {
    match (address.is_empty(), id.is_empty()) {
        (true, true) => Err("an address or id is required for the peer to remove"),
        (false, false) => Err("cannot give both an address and id"),
        (false, true) => Ok(Query::write().param("address", address)),
        (true, false) => Ok(Query::write().param("id", id)),
    }
}

pub fn run_remove_peer(args: &[String]) -> i32 {
    let a: RemovePeerArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let client = match super::client(&a.http) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let q = match peer_query(&a.address, &a.id) {
        Ok(q) => q,
        Err(e) => return flags::fail("Error removing peer", e),
    };
    if let Err(e) = client.request_ok("DELETE", "/v1/operator/raft/peer", &q, None) {
        return flags::fail("Error removing peer", e);
    }
    if a.address.is_empty() {
        println!("Removed peer with id {}", lotse_api::go_text::quote(&a.id));
    } else {
        println!(
            "Removed peer with address {}",
            lotse_api::go_text::quote(&a.address)
        );
    }
    0
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct TransferLeaderReply {
    success: bool,
}

pub fn run_transfer_leader(args: &[String]) -> i32 {
    let a: TransferLeaderArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let client = match super::client(&a.http) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut q = Query::read();
    if !a.id.is_empty() {
        q = q.param("id", &a.id);
    }
    match client
        .request_ok("POST", "/v1/operator/raft/transfer-leader", &q, None)
        .and_then(|r| r.json::<TransferLeaderReply>())
    {
        Ok(r) if r.success => {
            println!("Success");
            0
        }
        // consul's `%w` without a separator.
        Ok(_) => flags::fail(
            "Error transfering leadership",
            "Failed to transfer leadership",
        ),
        Err(e) => flags::fail(
            "Error transfering leadership",
            format!("Failed to transfer leadership {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn list_peers_table_as_consul_prints_it() {
        let cfg: RaftConfiguration = serde_json::from_str(
            r#"{"Servers":[
                {"ID":"8eb7b3b5-1574-156e-3696-8a93822473d3","Node":"srv1","Address":"10.10.20.91:8300","Leader":true,"ProtocolVersion":"3","Voter":true,"LastIndex":108},
                {"ID":"ae3a20d8-5196-003d-f192-54724f85fe2b","Node":"srv3","Address":"10.10.20.93:8300","Leader":false,"ProtocolVersion":"3","Voter":true,"LastIndex":107},
                {"ID":"3ef46df0","Node":"srv2","Address":"10.10.20.92:8300","Leader":false,"ProtocolVersion":"","Voter":false,"LastIndex":100}
            ],"Index":5}"#,
        )
        .unwrap();
        assert_eq!(
            render_peers(&cfg),
            "Node  ID                                    Address           State     Voter  RaftProtocol  Commit Index  Trails Leader By\n\
             srv1  8eb7b3b5-1574-156e-3696-8a93822473d3  10.10.20.91:8300  leader    true   3             108           -\n\
             srv3  ae3a20d8-5196-003d-f192-54724f85fe2b  10.10.20.93:8300  follower  true   3             107           1 commit\n\
             srv2  3ef46df0                              10.10.20.92:8300  follower  false  <=1           100           8 commits"
        );
    }

    #[test]
    fn remove_peer_needs_exactly_one_of_address_and_id() {
        assert_eq!(
            peer_query("", "").unwrap_err(),
            "an address or id is required for the peer to remove"
        );
        assert_eq!(
            peer_query("1.2.3.4:8300", "x").unwrap_err(),
            "cannot give both an address and id"
        );
        let q = peer_query("", "abc").unwrap();
        assert_eq!(q.params, vec![("id".to_string(), Some("abc".to_string()))]);
        assert_eq!(run_remove_peer(&argv(&["-http-addr=127.0.0.1:1"])), 1);
        assert_eq!(run_remove_peer(&argv(&["-id"])), 1);
    }

    #[test]
    fn agent_down_is_exit_1() {
        assert_eq!(run_list_peers(&argv(&["-http-addr=127.0.0.1:1"])), 1);
        assert_eq!(run_transfer_leader(&argv(&["-http-addr=127.0.0.1:1"])), 1);
        assert_eq!(run_list_peers(&argv(&["-http-addr=https://x:1"])), 1);
    }
}
