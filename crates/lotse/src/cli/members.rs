//! `lotse members`: the cluster members the agent sees (`GET /v1/agent/members`), as
//! `consul members` prints them.

use std::collections::BTreeMap;

use clap::{ArgAction, Parser};
use serde::Deserialize;

use super::flags::{self, parse_bool, HttpFlags};
use super::http::Query;
use super::regex::Regex;
use super::tabwriter::columnize;

pub const SYNOPSIS: &str = "Lists the members of a Lotse cluster";

#[derive(Parser, Debug)]
#[command(name = "members")]
struct MembersArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Provides detailed information about nodes.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    detailed: bool,
    /// If the agent is in server mode, this can be used to return the other peers in the WAN
    /// pool.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    wan: bool,
    /// If provided, output is filtered to only nodes matching the regular expression for
    /// status.
    #[arg(long, default_value = ".*", value_name = "string")]
    status: String,
    /// (Enterprise-only) If provided, output is filtered to only nodes in the given segment.
    #[arg(long, default_value = "_all", value_name = "string")]
    segment: String,
    /// Filter to use with the request
    #[arg(long, default_value = "", value_name = "string")]
    filter: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<MembersArgs>(
        "Usage: lotse members [options]\n\n  Outputs the members of a running Lotse agent.",
    )
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub addr: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub status: i64,
}

/// serf's member status names.
pub fn status_string(status: i64) -> String {
    match status {
        0 => "none".into(),
        1 => "alive".into(),
        2 => "leaving".into(),
        3 => "left".into(),
        4 => "failed".into(),
        n => format!("MemberStatus({n})"),
    }
}

/// `host:port` as Go's `net.TCPAddr` prints it (IPv6 in brackets).
fn tcp_addr(addr: &str, port: u16) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{port}"),
            None => format!("[{v6}]:{port}"),
        },
        Ok(ip) => format!("{ip}:{port}"),
        Err(_) => format!(":{port}"),
    }
}

fn tag<'a>(m: &'a Member, k: &str) -> &'a str {
    m.tags
        .as_ref()
        .and_then(|t| t.get(k))
        .map(String::as_str)
        .unwrap_or("")
}

fn is_default_partition(p: &str) -> bool {
    p.is_empty() || p == "default"
}

/// Fills in partition/segment tags as consul does, filters by status, sorts, and renders the
/// table. `None` when no member matches (consul then exits 2 without output).
pub fn render(
    mut members: Vec<Member>,
    status_re: &Regex,
    segment: &str,
    detailed: bool,
) -> Option<String> {
    for m in &mut members {
        let tags = m.tags.get_or_insert_with(BTreeMap::new);
        if tags.get("ap").is_none_or(|p| p.is_empty()) {
            tags.insert("ap".into(), "default".into());
        }
        if is_default_partition(&tags["ap"]) {
            if segment == "_all" && tags.get("role").map(String::as_str) == Some("consul") {
                tags.insert("segment".into(), "<all>".into());
            } else if tags.get("segment").is_none_or(|s| s.is_empty()) {
                tags.insert("segment".into(), "<default>".into());
            }
        } else {
            tags.insert("segment".into(), String::new());
        }
    }
    members.retain(|m| status_re.is_match(&status_string(m.status)));
    if members.is_empty() {
        return None;
    }
    members.sort_by(|a, b| {
        let key = |m: &Member| {
            (
                tag(m, "role") != "consul",
                !is_default_partition(tag(m, "ap")),
                tag(m, "segment").to_string(),
                tag(m, "ap").to_string(),
                m.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });

    let mut lines = Vec::with_capacity(members.len() + 1);
    if detailed {
        lines.push("Node\x1fAddress\x1fStatus\x1fTags".to_string());
        for m in &members {
            let tags: Vec<String> = m
                .tags
                .as_ref()
                .map(|t| t.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            lines.push(format!(
                "{}\x1f{}\x1f{}\x1f{}",
                m.name,
                tcp_addr(&m.addr, m.port),
                status_string(m.status),
                tags.join(",")
            ));
        }
    } else {
        lines.push(
            "Node\x1fAddress\x1fStatus\x1fType\x1fBuild\x1fProtocol\x1fDC\x1fPartition\x1fSegment"
                .to_string(),
        );
        for m in &members {
            let addr = tcp_addr(&m.addr, m.port);
            let status = status_string(m.status);
            let mut build = tag(m, "build").to_string();
            if build.is_empty() {
                build = "< 0.3".into();
            } else if let Some(i) = build.find(':') {
                build.truncate(i);
            }
            let kind = match tag(m, "role") {
                "node" => "client",
                "consul" => "server",
                _ => {
                    lines.push(format!(
                        "{}\x1f{addr}\x1f{status}\x1funknown\x1f\x1f\x1f\x1f\x1f",
                        m.name
                    ));
                    continue;
                }
            };
            lines.push(format!(
                "{}\x1f{addr}\x1f{status}\x1f{kind}\x1f{build}\x1f{}\x1f{}\x1f{}\x1f{}",
                m.name,
                tag(m, "vsn"),
                tag(m, "dc"),
                tag(m, "ap"),
                tag(m, "segment"),
            ));
        }
    }
    Some(columnize(&lines, "\x1f"))
}

pub fn run(args: &[String]) -> i32 {
    let a: MembersArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if let Err(c) = flags::no_args(&a.args) {
        return c;
    }
    let status_re = match Regex::new(&a.status) {
        Ok(r) => r,
        Err(e) => return flags::fail("Failed to compile status regexp", e),
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut q = Query::default();
    if !a.segment.is_empty() {
        q = q.param("segment", &a.segment);
    }
    if a.wan {
        q = q.param("wan", 1);
    }
    if !a.filter.is_empty() {
        q = q.param("filter", &a.filter);
    }
    let members: Vec<Member> = match client
        .request_ok("GET", "/v1/agent/members", &q, None)
        .and_then(|r| r.json::<Option<Vec<Member>>>())
    {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => return flags::fail("Error retrieving members", e),
    };
    match render(members, &status_re, &a.segment, a.detailed) {
        Some(table) => {
            println!("{table}");
            0
        }
        None => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, role: &str, status: i64) -> Member {
        let mut tags = BTreeMap::new();
        tags.insert("role".to_string(), role.to_string());
        tags.insert("dc".to_string(), "dc1".to_string());
        tags.insert("build".to_string(), "1.2.3:abcdef".to_string());
        tags.insert("vsn".to_string(), "2".to_string());
        Member {
            name: name.into(),
            addr: "127.0.0.1".into(),
            port: 8301,
            tags: Some(tags),
            status,
        }
    }

    #[test]
    fn standard_table() {
        let all = Regex::new(".*").unwrap();
        let t = render(
            vec![member("zeta", "node", 1), member("alpha", "consul", 1)],
            &all,
            "_all",
            false,
        )
        .unwrap();
        assert_eq!(
            t,
            "Node   Address         Status  Type    Build  Protocol  DC   Partition  Segment\n\
             alpha  127.0.0.1:8301  alive   server  1.2.3  2         dc1  default    <all>\n\
             zeta   127.0.0.1:8301  alive   client  1.2.3  2         dc1  default    <default>"
        );
    }

    #[test]
    fn status_filter_and_no_match() {
        let failed = Regex::new("failed").unwrap();
        assert!(render(vec![member("a", "consul", 1)], &failed, "_all", false).is_none());
        let t = render(
            vec![member("a", "consul", 1), member("b", "node", 4)],
            &failed,
            "_all",
            false,
        )
        .unwrap();
        assert!(t.contains("b ") && !t.contains("\na "), "{t}");
    }

    #[test]
    fn detailed_tags_sorted() {
        let all = Regex::new(".*").unwrap();
        let t = render(vec![member("a", "consul", 1)], &all, "_all", true).unwrap();
        assert_eq!(
            t,
            "Node  Address         Status  Tags\n\
             a     127.0.0.1:8301  alive   ap=default,build=1.2.3:abcdef,dc=dc1,role=consul,segment=<all>,vsn=2"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(tcp_addr("::1", 1), "[::1]:1");
        assert_eq!(tcp_addr("10.0.0.1", 2), "10.0.0.1:2");
        assert_eq!(tcp_addr("bogus", 3), ":3");
    }
}
