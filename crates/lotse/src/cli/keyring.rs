//! `lotse keyring -list|-list-primary|-install|-use|-remove`: the gossip encryption keys of
//! every pool (`/v1/operator/keyring`: `GET` lists, `POST` installs, `PUT` makes primary,
//! `DELETE` removes, with a `{"Key": ...}` body), printed as `consul keyring` prints them.
//!
//! Exactly one action per call. Progress lines go to stdout prefixed `==> ` (consul's
//! `PrefixedUi` Info), errors to stderr as `error: ...`.

use std::collections::BTreeMap;

use clap::{ArgAction, Parser};
use serde::Deserialize;

use super::flags::{self, parse_bool, HttpFlags};
use super::http::Query;

pub const SYNOPSIS: &str = "Manages gossip layer encryption keys";

#[derive(Parser, Debug)]
#[command(name = "keyring")]
struct KeyringArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Install a new encryption key. This will broadcast the new key to all members in the
    /// cluster.
    #[arg(long, default_value = "", value_name = "string")]
    install: String,
    /// Change the primary encryption key, which is used to encrypt messages. The key must
    /// already be installed before this operation can succeed.
    #[arg(long = "use", default_value = "", value_name = "string")]
    use_key: String,
    /// Remove the given key from the cluster. This operation may only be performed on keys
    /// which are not currently the primary key.
    #[arg(long, default_value = "", value_name = "string")]
    remove: String,
    /// List all keys currently in use within the cluster.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    list: bool,
    /// List all primary keys currently in use within the cluster.
    #[arg(long = "list-primary", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false", value_parser = parse_bool,
          action = ArgAction::Set)]
    list_primary: bool,
    /// Setting this to a non-zero value will cause nodes to relay their response to the
    /// operation through this many randomly-chosen other nodes in the cluster. The maximum
    /// allowed value is 5.
    #[arg(long = "relay-factor", default_value = "0", value_name = "int")]
    relay_factor: i64,
    /// Setting this to true will force the keyring query to only hit local servers (no WAN
    /// traffic). This flag can only be set for list queries.
    #[arg(long = "local-only", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false", value_parser = parse_bool,
          action = ArgAction::Set)]
    local_only: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<KeyringArgs>(
        "Usage: lotse keyring [options]

  Manages encryption keys used for gossip messages. Gossip encryption is
  optional. When enabled, this command may be used to examine active encryption
  keys in the cluster, add new keys, and remove old ones. When combined, this
  functionality provides the ability to perform key rotation cluster-wide,
  without disrupting the cluster.

  All operations performed by this command can only be run against server nodes,
  and affect both the LAN and WAN keyrings in lock-step.

  All variations of the keyring command return 0 if all nodes reply and there
  are no errors. If any node fails to reply or reports failure, the exit code
  will be 1.",
    )
}

/// One pool's answer to `GET /v1/operator/keyring`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyringResponse {
    #[serde(rename = "WAN")]
    pub wan: bool,
    pub datacenter: String,
    pub segment: String,
    pub partition: String,
    pub messages: Option<BTreeMap<String, String>>,
    pub keys: Option<BTreeMap<String, u64>>,
    pub primary_keys: Option<BTreeMap<String, u64>>,
    pub num_nodes: u64,
}

/// consul's block for one pool: a blank line, `dc1 (LAN):` (or `WAN:`), its messages, then
/// `  KEY [n/total]` per key (sorted here; Go's map order is random).
pub fn render_response(r: &KeyringResponse, primary: bool) -> String {
    let mut pool = if r.wan {
        "WAN".to_string()
    } else {
        format!("{} (LAN)", r.datacenter)
    };
    if !r.segment.is_empty() {
        pool.push_str(&format!(" [{}]", r.segment));
    } else if !(r.partition.is_empty() || r.partition == "default") {
        pool.push_str(&format!(" [partition: {}]", r.partition));
    }
    let mut out = format!("\n{pool}:\n");
    for (from, msg) in r.messages.iter().flatten() {
        out.push_str(&format!("  ===> {from}: {msg}\n"));
    }
    let keys = if primary { &r.primary_keys } else { &r.keys };
    for (key, n) in keys.iter().flatten() {
        out.push_str(&format!("  {key} [{n}/{}]\n", r.num_nodes));
    }
    out.trim_end_matches('\n').to_string()
}

/// The one action asked for, checked as consul checks it.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    List {
        primary: bool,
    },
    Write {
        method: &'static str,
        key: String,
        info: &'static str,
    },
}

fn action(a: &KeyringArgs) -> Result<Action, String> {
    let writes = [
        (
            "POST",
            &a.install,
            "Installing new gossip encryption key...",
        ),
        (
            "PUT",
            &a.use_key,
            "Changing primary gossip encryption key...",
        ),
        ("DELETE", &a.remove, "Removing gossip encryption key..."),
    ];
    let count = usize::from(a.list)
        + usize::from(a.list_primary)
        + writes.iter().filter(|(_, k, _)| !k.is_empty()).count();
    if count == 0 {
        return Err(help());
    }
    if count > 1 {
        return Err("Only a single action is allowed".into());
    }
    if !(0..=5).contains(&a.relay_factor) {
        return Err("Error parsing relay factor: Relay factor must be in range: [0, 5]".into());
    }
    if a.local_only && !a.list {
        return Err(
            "Error validating local-only: local-only can only be set for list requests".into(),
        );
    }
    if a.list || a.list_primary {
        return Ok(Action::List {
            primary: a.list_primary,
        });
    }
    let (method, key, info) = writes
        .into_iter()
        .find(|(_, k, _)| !k.is_empty())
        .expect("one action");
    Ok(Action::Write {
        method,
        key: key.clone(),
        info,
    })
}

pub fn run(args: &[String]) -> i32 {
    let a: KeyringArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let action = match action(&a) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut q = Query::write();
    if a.relay_factor > 0 {
        q = q.param("relay-factor", a.relay_factor);
    }
    match action {
        Action::List { primary } => {
            if a.local_only {
                q = q.param("local-only", "true");
            }
            if primary {
                println!("==> Gathering installed primary encryption keys...");
            } else {
                println!("==> Gathering installed encryption keys...");
            }
            match client
                .request_ok("GET", "/v1/operator/keyring", &q, None)
                .and_then(|r| r.json::<Option<Vec<KeyringResponse>>>())
            {
                Ok(responses) => {
                    for r in responses.unwrap_or_default() {
                        println!("{}", render_response(&r, primary));
                    }
                    0
                }
                Err(e) => flags::fail("error", e),
            }
        }
        Action::Write { method, key, info } => {
            println!("==> {info}");
            let body = serde_json::json!({ "Key": key }).to_string();
            match client.request_ok(method, "/v1/operator/keyring", &q, Some(body.as_bytes())) {
                Ok(_) => 0,
                Err(e) => flags::fail("error", e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    fn parsed(args: &[&str]) -> KeyringArgs {
        flags::parse(&argv(args)).unwrap()
    }

    #[test]
    fn exactly_one_action_with_consuls_checks() {
        assert!(action(&parsed(&[]))
            .unwrap_err()
            .starts_with("Usage: lotse keyring"));
        assert_eq!(
            action(&parsed(&["-list", "-install=k"])).unwrap_err(),
            "Only a single action is allowed"
        );
        assert_eq!(
            action(&parsed(&["-list", "-relay-factor=6"])).unwrap_err(),
            "Error parsing relay factor: Relay factor must be in range: [0, 5]"
        );
        assert_eq!(
            action(&parsed(&["-use=k", "-local-only"])).unwrap_err(),
            "Error validating local-only: local-only can only be set for list requests"
        );
        assert_eq!(
            action(&parsed(&["-list-primary"])).unwrap(),
            Action::List { primary: true }
        );
        assert_eq!(
            action(&parsed(&["-remove", "k1"])).unwrap(),
            Action::Write {
                method: "DELETE",
                key: "k1".into(),
                info: "Removing gossip encryption key..."
            }
        );
        assert_eq!(run(&[]), 1);
        assert_eq!(run(&argv(&["-list", "-http-addr=127.0.0.1:1"])), 1);
    }

    #[test]
    fn list_blocks_as_consul_prints_them() {
        let rs: Vec<KeyringResponse> = serde_json::from_str(
            r#"[{"WAN":true,"Datacenter":"dc1","Keys":{"b2s=":3,"a1s=":1},"PrimaryKeys":{"b2s=":3},"NumNodes":3},
                {"WAN":false,"Datacenter":"dc1","Segment":"","Messages":{"n2":"failed"},"Keys":{"b2s=":2},"NumNodes":2}]"#,
        )
        .unwrap();
        assert_eq!(
            render_response(&rs[0], false),
            "\nWAN:\n  a1s= [1/3]\n  b2s= [3/3]"
        );
        assert_eq!(render_response(&rs[0], true), "\nWAN:\n  b2s= [3/3]");
        assert_eq!(
            render_response(&rs[1], false),
            "\ndc1 (LAN):\n  ===> n2: failed\n  b2s= [2/2]"
        );
    }
}
