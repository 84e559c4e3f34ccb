//! `lotse catalog datacenters|nodes|services`, like `consul catalog ...`: read-only views of the
//! catalog through `GET /v1/catalog/...`.
//!
//! Each subcommand lives in its own file and splits into a pure `render` (the JSON the agent
//! answered → the text consul prints, unit-tested with canned JSON) and a `run` that does the
//! flag parsing and the request. The flags that take `key=value` pairs (`-node-meta` here, `-meta`
//! and `-tagged-address` in `services register`) share [`key_values`]; `nodes` and `services`
//! share their start, [`node_meta_client`].

use std::collections::BTreeMap;

use super::flags::{self, HttpFlags};
use super::http::{Client, Query};

mod datacenters;
mod nodes;
mod services;

pub use datacenters::{help_datacenters, run_datacenters};
pub use nodes::{help_nodes, run_nodes};
pub use services::{help_services, run_services};

pub const SYNOPSIS: &str = "Interact with the catalog";
pub const DATACENTERS_SYNOPSIS: &str = "Lists all known datacenters";
pub const NODES_SYNOPSIS: &str = "Lists all nodes in the given datacenter";
pub const SERVICES_SYNOPSIS: &str = "Lists all registered services in a datacenter";

const HELP: &str = "Usage: lotse catalog <subcommand> [options] [args]

  This command has subcommands for interacting with Lotse's catalog. The
  catalog should not be confused with the agent, although the APIs and
  responses may be similar.

  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  List all datacenters:

      $ lotse catalog datacenters

  List all nodes:

      $ lotse catalog nodes

  List all services:

      $ lotse catalog services

  For more examples, ask for subcommand help or view the documentation.";

pub fn help() -> String {
    HELP.to_string()
}

/// The values of a repeatable `key=value` flag as consul's `FlagMapValue` reads them: split at
/// the first `=`, a later key replaces an earlier one. A value without `=` is Go's flag error
/// (`invalid value "v" for flag -name: Missing "=" value in argument: v`), which the caller
/// prints before exiting 1 as a flag error does.
pub fn key_values(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for v in values {
        let Some((k, val)) = v.split_once('=') else {
            return Err(format!(
                "invalid value {v:?} for flag -{flag}: Missing \"=\" value in argument: {v}"
            ));
        };
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// `node-meta=key:value` query parameters, as the Go API client encodes a `NodeMeta` filter.
fn node_meta_params(mut q: Query, meta: &BTreeMap<String, String>) -> Query {
    for (k, v) in meta {
        q = q.param("node-meta", format!("{k}:{v}"));
    }
    q
}

/// How `nodes` and `services` start, in consul's order: the `-node-meta` values checked (Go's
/// flag parser refuses a bad one), no positional arguments, the client; the query begins with
/// the node-meta filter. An error is printed and its exit code returned.
fn node_meta_client(
    http: &HttpFlags,
    args: &[String],
    node_meta: &[String],
) -> Result<(Client, Query), i32> {
    let meta = key_values("node-meta", node_meta).map_err(|e| {
        eprintln!("{e}");
        1
    })?;
    let client = flags::client_no_args(http, args)?;
    Ok((client, node_meta_params(Query::default(), &meta)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn key_values_split_at_first_equals_and_last_wins() {
        let m = key_values("node-meta", &argv(&["a=1", "b=x=y", "a=2", "c="])).unwrap();
        assert_eq!(m["a"], "2");
        assert_eq!(m["b"], "x=y");
        assert_eq!(m["c"], "");
        assert_eq!(
            key_values("meta", &argv(&["nope"])).unwrap_err(),
            "invalid value \"nope\" for flag -meta: Missing \"=\" value in argument: nope"
        );
    }

    #[test]
    fn node_meta_becomes_colon_pairs() {
        let m = key_values("node-meta", &argv(&["rack=r1", "os=linux"])).unwrap();
        let q = node_meta_params(Query::default(), &m);
        assert_eq!(
            q.params,
            vec![
                ("node-meta".to_string(), Some("os:linux".to_string())),
                ("node-meta".to_string(), Some("rack:r1".to_string())),
            ]
        );
    }
}
