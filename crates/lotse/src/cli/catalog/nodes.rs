//! `lotse catalog nodes`: `GET /v1/catalog/nodes`, or the nodes providing a service
//! (`GET /v1/catalog/service/:name`), as consul's columnized `Node ID Address DC` table.

use std::collections::BTreeMap;

use clap::{ArgAction, Parser};
use serde::Deserialize;

use super::super::flags::{self, parse_bool, HttpFlags};
use super::super::http::encode_path;
use super::super::tabwriter::columnize;
use super::node_meta_client;

#[derive(Parser, Debug)]
#[command(name = "catalog nodes")]
struct NodesArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Output detailed information about the nodes including their addresses and metadata.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    detailed: bool,
    /// Filter to use with the request
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    filter: String,
    /// Node name to sort the node list in ascending order based on estimated round-trip time
    /// from that node. Passing "_agent" will use this agent's node for sorting.
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    near: String,
    /// Metadata to filter nodes with the given key=value pairs. This flag may be specified
    /// multiple times to filter on multiple sources of metadata.
    #[arg(long = "node-meta", value_name = "key=value", action = ArgAction::Append,
          allow_hyphen_values = true)]
    node_meta: Vec<String>,
    /// Service id or name to filter nodes. Only nodes which are providing the given service
    /// will be returned.
    #[arg(
        long,
        default_value = "",
        value_name = "id or name",
        allow_hyphen_values = true
    )]
    service: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_nodes() -> String {
    flags::usage::<NodesArgs>(
        "Usage: lotse catalog nodes [options]

  Retrieves the list nodes registered in a given datacenter. By default, the
  datacenter of the local agent is queried.

  To retrieve the list of nodes:

      $ lotse catalog nodes

  To print detailed information including full node IDs, tagged addresses, and
  metadata information:

      $ lotse catalog nodes -detailed

  To list nodes which are running a particular service:

      $ lotse catalog nodes -service=web

  To filter by node metadata:

      $ lotse catalog nodes -node-meta=\"foo=bar\"

  To sort nodes by estimated round-trip time from node-web:

      $ lotse catalog nodes -near=node-web

  For a full list of options and examples, please see the Lotse documentation.",
    )
}

/// A node as `GET /v1/catalog/nodes` returns it (only the fields the table shows).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: Option<BTreeMap<String, String>>,
    pub meta: Option<BTreeMap<String, String>>,
}

/// An instance as `GET /v1/catalog/service/:name` returns it; its node fields make a [`Node`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ServiceNode {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    tagged_addresses: Option<BTreeMap<String, String>>,
    node_meta: Option<BTreeMap<String, String>>,
}

impl From<ServiceNode> for Node {
    fn from(s: ServiceNode) -> Node {
        Node {
            id: s.id,
            node: s.node,
            address: s.address,
            datacenter: s.datacenter,
            tagged_addresses: s.tagged_addresses,
            meta: s.node_meta,
        }
    }
}

/// consul's `mapToKV`: `k=v` pairs sorted by key, joined by `joiner`.
fn map_to_kv(m: &Option<BTreeMap<String, String>>, joiner: &str) -> String {
    m.iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(joiner)
}

/// The table consul prints (columnize with the 0x1f delimiter). Without `-detailed` the node ID
/// is cut to its first octet: everything before the first `-`, unless that is at position 0.
pub fn render(nodes: &[Node], detailed: bool) -> String {
    let mut lines = Vec::with_capacity(nodes.len() + 1);
    if detailed {
        lines.push("Node\x1fID\x1fAddress\x1fDC\x1fTaggedAddresses\x1fMeta".to_string());
        for n in nodes {
            lines.push(format!(
                "{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}",
                n.node,
                n.id,
                n.address,
                n.datacenter,
                map_to_kv(&n.tagged_addresses, ", "),
                map_to_kv(&n.meta, ", ")
            ));
        }
    } else {
        lines.push("Node\x1fID\x1fAddress\x1fDC".to_string());
        for n in nodes {
            let id = match n.id.find('-') {
                Some(i) if i > 0 => &n.id[..i],
                _ => n.id.as_str(),
            };
            lines.push(format!(
                "{}\x1f{id}\x1f{}\x1f{}",
                n.node, n.address, n.datacenter
            ));
        }
    }
    columnize(&lines, "\x1f")
}

pub fn run_nodes(args: &[String]) -> i32 {
    let a: NodesArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let (client, mut q) = match node_meta_client(&a.http, &a.args, &a.node_meta) {
        Ok(v) => v,
        Err(c) => return c,
    };
    let filter = if a.filter.is_empty() {
        String::new()
    } else {
        match flags::load_data_source(&a.filter) {
            Ok(data) => String::from_utf8_lossy(&data).into_owned(),
            Err(e) => return flags::fail("Could not process filter argument", e),
        }
    };
    if !a.near.is_empty() {
        q = q.param("near", &a.near);
    }
    if !filter.is_empty() {
        q = q.param("filter", &filter);
    }

    let nodes: Vec<Node> = if a.service.is_empty() {
        match client
            .request_ok("GET", "/v1/catalog/nodes", &q, None)
            .and_then(|r| r.json::<Option<Vec<Node>>>())
        {
            Ok(n) => n.unwrap_or_default(),
            Err(e) => return flags::fail("Error listing nodes", e),
        }
    } else {
        let path = format!("/v1/catalog/service/{}", encode_path(&a.service));
        match client
            .request_ok("GET", &path, &q, None)
            .and_then(|r| r.json::<Option<Vec<ServiceNode>>>())
        {
            Ok(s) => s.unwrap_or_default().into_iter().map(Node::from).collect(),
            Err(e) => return flags::fail("Error listing nodes for service", e),
        }
    };

    if nodes.is_empty() {
        eprintln!("No nodes match the given query - try expanding your search.");
        return 0;
    }
    println!("{}", render(&nodes, a.detailed));
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    const NODES: &str = r#"[
      {"ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"alpha","Address":"10.0.0.1",
       "Datacenter":"dc1","TaggedAddresses":{"wan":"10.0.0.1","lan":"10.0.0.1"},
       "Meta":{"rack":"r1","consul-network-segment":""},"CreateIndex":5,"ModifyIndex":5},
      {"ID":"","Node":"a-much-longer-name","Address":"192.168.100.200","Datacenter":"dc1",
       "TaggedAddresses":null,"Meta":null,"CreateIndex":6,"ModifyIndex":6}
    ]"#;

    fn nodes() -> Vec<Node> {
        serde_json::from_str(NODES).unwrap()
    }

    #[test]
    fn simple_table_cuts_the_id_at_the_first_dash() {
        assert_eq!(
            render(&nodes(), false),
            "Node                ID        Address          DC\n\
             alpha               40e4a748  10.0.0.1         dc1\n\
             a-much-longer-name            192.168.100.200  dc1"
        );
    }

    #[test]
    fn detailed_table_has_full_id_and_sorted_pairs() {
        let got = render(&nodes(), true);
        let lines: Vec<&str> = got.split('\n').collect();
        assert_eq!(
            lines[0],
            "Node                ID                                    Address          DC   \
             TaggedAddresses             Meta"
        );
        assert_eq!(
            lines[1],
            "alpha               40e4a748-2192-161a-0510-9bf59fe950b5  10.0.0.1         dc1  \
             lan=10.0.0.1, wan=10.0.0.1  consul-network-segment=, rack=r1"
        );
        // Like Go's columnize, empty trailing fields still get their column's padding.
        assert_eq!(
            lines[2],
            format!(
                "a-much-longer-name  {:36}  192.168.100.200  dc1  {:26}  ",
                "", ""
            )
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn id_without_dash_or_leading_dash_is_kept() {
        let n = |id: &str| Node {
            id: id.into(),
            node: "n".into(),
            ..Default::default()
        };
        assert!(render(&[n("abcdef")], false).contains("n     abcdef"));
        assert!(render(&[n("-abc")], false).contains("n     -abc"));
    }

    #[test]
    fn service_instances_become_nodes() {
        let s: Vec<ServiceNode> = serde_json::from_str(
            r#"[{"ID":"11111111-2222","Node":"n1","Address":"1.2.3.4","Datacenter":"dc1",
                 "TaggedAddresses":{"lan":"1.2.3.4"},"NodeMeta":{"k":"v"},"ServiceID":"web",
                 "ServiceName":"web","ServiceTags":[],"ServicePort":80}]"#,
        )
        .unwrap();
        let n: Vec<Node> = s.into_iter().map(Node::from).collect();
        assert_eq!(n[0].node, "n1");
        assert_eq!(n[0].meta.as_ref().unwrap()["k"], "v");
        assert_eq!(
            render(&n, false),
            "Node  ID        Address  DC\nn1    11111111  1.2.3.4  dc1"
        );
    }

    #[test]
    fn flag_errors_exit_1() {
        assert_eq!(run_nodes(&argv(&["-node-meta", "nope"])), 1);
        assert_eq!(run_nodes(&argv(&["extra"])), 1);
        assert_eq!(run_nodes(&argv(&["-bogus"])), 1);
        assert_eq!(
            run_nodes(&argv(&["-http-addr=127.0.0.1:1", "-filter=@/no/such/file"])),
            1
        );
        assert_eq!(run_nodes(&argv(&["-http-addr=127.0.0.1:1"])), 1);
    }
}
