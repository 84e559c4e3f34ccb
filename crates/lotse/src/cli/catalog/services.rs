//! `lotse catalog services`: the service names of `GET /v1/catalog/services`, or those of one
//! node (`GET /v1/catalog/node/:node`), sorted; with `-tags` each name's tags beside it.

use std::collections::BTreeMap;

use clap::{ArgAction, Parser};
use serde::Deserialize;

use super::super::flags::{self, parse_bool, HttpFlags};
use super::super::http::encode_path;
use super::super::tabwriter::tabwrite;
use super::node_meta_client;

#[derive(Parser, Debug)]
#[command(name = "catalog services")]
struct ServicesArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Lotse extension (consul has no such flag): a filter expression passed to the endpoint
    /// as `filter`. Without -node it selects service instances (ServiceName, ServiceTags,
    /// ServiceMeta, ...), with -node the node's services (Service, Tags, Meta, ...).
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    filter: String,
    /// Node id or name for which to list services.
    #[arg(
        long,
        default_value = "",
        value_name = "id or name",
        allow_hyphen_values = true
    )]
    node: String,
    /// Metadata to filter nodes with the given key=value pairs. If specified, only services
    /// running on nodes matching the given metadata will be returned. This flag may be
    /// specified multiple times to filter on multiple sources of metadata.
    #[arg(long = "node-meta", value_name = "key=value", action = ArgAction::Append,
          allow_hyphen_values = true)]
    node_meta: Vec<String>,
    /// Display each service's tags as a comma-separated list beside each service entry.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    tags: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_services() -> String {
    flags::usage::<ServicesArgs>(
        "Usage: lotse catalog services [options]

  Retrieves the list services registered in a given datacenter. By default, the
  datacenter of the local agent is queried.

  To retrieve the list of services:

      $ lotse catalog services

  To include the services' tags in the output:

      $ lotse catalog services -tags

  To list services which run on a particular node:

      $ lotse catalog services -node=web

  To filter services on node metadata:

      $ lotse catalog services -node-meta=\"foo=bar\"

  For a full list of options and examples, please see the Lotse documentation.",
    )
}

/// `GET /v1/catalog/node/:node`: the node's services keyed by ID (`null` for an unknown node).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CatalogNode {
    services: Option<BTreeMap<String, NodeService>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NodeService {
    service: String,
    tags: Option<Vec<String>>,
}

/// The node's services as the name → tags map `/v1/catalog/services` gives; like consul, the
/// tags of a name's instances are concatenated, not de-duplicated.
fn services_of_node(node: Option<CatalogNode>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in node
        .and_then(|n| n.services)
        .unwrap_or_default()
        .into_values()
    {
        out.entry(s.service)
            .or_default()
            .extend(s.tags.unwrap_or_default());
    }
    out
}

/// The names sorted, one a line; with `tags` a tabwriter column (padding 6) of each name's
/// sorted tags joined by commas, trimmed like consul's `strings.TrimSpace`. `None` when there
/// is nothing to list (consul's "No services match" case).
pub fn render(services: BTreeMap<String, Vec<String>>, tags: bool) -> Option<String> {
    if services.is_empty() {
        return None;
    }
    // BTreeMap iterates in byte order, which is Go's sort.Strings order.
    if tags {
        let mut text = String::new();
        for (name, mut t) in services {
            t.sort();
            text.push_str(&format!("{name}\t{}\n", t.join(",")));
        }
        Some(tabwrite(&text, 0, 6).trim().to_string())
    } else {
        Some(services.into_keys().collect::<Vec<_>>().join("\n"))
    }
}

pub fn run_services(args: &[String]) -> i32 {
    let a: ServicesArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let (client, mut q) = match node_meta_client(&a.http, &a.args, &a.node_meta) {
        Ok(v) => v,
        Err(c) => return c,
    };
    if !a.filter.is_empty() {
        q = q.param("filter", &a.filter);
    }

    let services = if a.node.is_empty() {
        match client
            .request_ok("GET", "/v1/catalog/services", &q, None)
            .and_then(|r| r.json::<Option<BTreeMap<String, Option<Vec<String>>>>>())
        {
            Ok(m) => m
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
            Err(e) => return flags::fail("Error listing services", e),
        }
    } else {
        let path = format!("/v1/catalog/node/{}", encode_path(&a.node));
        match client
            .request_ok("GET", &path, &q, None)
            .and_then(|r| r.json::<Option<CatalogNode>>())
        {
            Ok(n) => services_of_node(n),
            Err(e) => return flags::fail("Error listing services for node", e),
        }
    };

    match render(services, a.tags) {
        Some(text) => {
            println!("{text}");
            0
        }
        None => {
            eprintln!("No services match the given query - try expanding your search.");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    fn catalog() -> BTreeMap<String, Vec<String>> {
        serde_json::from_str(
            r#"{"consul":[],"redis":["v1","primary"],"postgresql":["leader"],"Zeta":[]}"#,
        )
        .unwrap()
    }

    #[test]
    fn names_sorted_bytewise() {
        assert_eq!(
            render(catalog(), false).unwrap(),
            "Zeta\nconsul\npostgresql\nredis"
        );
    }

    #[test]
    fn tags_column_sorted_and_comma_joined() {
        // consul pads every name (also one without tags) to the column width; only the very
        // end of the text is trimmed.
        assert_eq!(
            render(catalog(), true).unwrap(),
            "Zeta            \n\
             consul          \n\
             postgresql      leader\n\
             redis           primary,v1"
        );
    }

    #[test]
    fn nothing_to_list_is_none() {
        assert!(render(BTreeMap::new(), false).is_none());
        assert!(render(BTreeMap::new(), true).is_none());
    }

    #[test]
    fn node_services_concatenate_tags_per_name() {
        let n: Option<CatalogNode> = serde_json::from_str(
            r#"{"Node":{"Node":"n1"},"Services":{
                "web1":{"ID":"web1","Service":"web","Tags":["b","a"]},
                "web2":{"ID":"web2","Service":"web","Tags":["a"]},
                "db":{"ID":"db","Service":"db","Tags":null}}}"#,
        )
        .unwrap();
        let m = services_of_node(n);
        assert_eq!(m["db"], Vec::<String>::new());
        assert_eq!(m["web"].len(), 3);
        assert_eq!(render(m, true).unwrap(), "db       \nweb      a,a,b");
    }

    #[test]
    fn unknown_node_lists_nothing() {
        let n: Option<CatalogNode> = serde_json::from_str("null").unwrap();
        assert!(services_of_node(n).is_empty());
        let n: Option<CatalogNode> =
            serde_json::from_str(r#"{"Node":{"Node":"n"},"Services":{}}"#).unwrap();
        assert!(render(services_of_node(n), false).is_none());
    }

    #[test]
    fn flag_errors_exit_1() {
        assert_eq!(run_services(&argv(&["-node-meta=x"])), 1);
        assert_eq!(run_services(&argv(&["foo"])), 1);
        assert_eq!(run_services(&argv(&["-tags=maybe"])), 1);
        assert_eq!(run_services(&argv(&["-http-addr=127.0.0.1:1", "-tags"])), 1);
    }
}
