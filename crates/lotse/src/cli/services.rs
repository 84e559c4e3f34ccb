//! `lotse services register|deregister`, like `consul services ...`: services of the local agent
//! (`PUT /v1/agent/service/register`, `PUT /v1/agent/service/deregister/:id`), given by flags or
//! by definition files.
//!
//! ```text
//!   flags ───────────────┐
//!                        ├─▶ Registration (the Go API's AgentServiceRegistration) ─▶ agent
//!   FILE... (HCL/JSON) ──┘     definition.rs: `service`/`services` blocks, config-file keys
//! ```
//!
//! A definition file is an agent configuration file: consul loads it with its config loader and
//! keeps only the services, so the keys are the config file's (`name`, `enable_tag_override`,
//! `check { ttl = "10s" }`) and other agent settings in the same file are ignored.
//!
//! Both commands start the same way, [`services_and_client`], and differ only in the request
//! they send for each service.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::flags::{self, HttpFlags};
use super::http::Client;
use definition::services_from_files;

mod definition;
mod deregister;
mod register;

pub use deregister::{help_deregister, run_deregister};
pub use register::{help_register, run_register};

pub const SYNOPSIS: &str = "Interact with services";
pub const REGISTER_SYNOPSIS: &str = "Register services with the local agent";
pub const DEREGISTER_SYNOPSIS: &str = "Deregister services with the local agent";

const HELP: &str = "Usage: lotse services <subcommand> [options] [args]

  This command has subcommands for interacting with services. The subcommands
  default to working with services registered with the local agent. Please see
  the \"lotse catalog\" command for interacting with the entire catalog.

  For more examples, ask for subcommand help or view the documentation.";

pub fn help() -> String {
    HELP.to_string()
}

/// The body of `PUT /v1/agent/service/register`, shaped and ordered like the Go API's
/// `AgentServiceRegistration`: every field is `omitempty`, so a flag-built registration sends
/// only what was given. Check, proxy and connect blocks come from definition files only and are
/// already in the API's JSON form.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Registration {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(skip_serializing_if = "is_false")]
    pub enable_tag_override: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddress {
    pub address: String,
    pub port: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    pub passing: i64,
    pub warning: i64,
}

/// How `register` and `deregister` start, in consul's order: files (`paths`) or the flag that
/// names a service, exactly one of them (else consul's `Service <action> requires ...` texts,
/// `none_given` naming what was missing); then the services of the files, their loader's
/// warnings printed, or `by_flags`, the one the flags describe; then the client. An error is
/// printed and its exit code returned.
fn services_and_client(
    action: &str,
    none_given: &str,
    http: &HttpFlags,
    paths: &[String],
    by_flags: Option<Registration>,
) -> Result<(Vec<Registration>, Client), i32> {
    let services = match (paths.is_empty(), by_flags) {
        (true, None) => {
            eprintln!("Service {action} requires at least one argument or {none_given}.");
            return Err(1);
        }
        (false, Some(_)) => {
            // consul's text names -id also where the flag is -name.
            eprintln!("Service {action} requires arguments or -id, not both.");
            return Err(1);
        }
        (true, Some(svc)) => vec![svc],
        (false, None) => {
            let loaded = services_from_files(paths).map_err(|e| flags::fail("Error", e))?;
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            loaded.services
        }
    };
    Ok((services, http.client()?))
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Go's `%q`, as consul's messages quote names and IDs.
pub(super) use lotse_api::go_text::quote as go_quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_omitted_like_go_omitempty() {
        let r = Registration {
            name: "web".into(),
            ..Default::default()
        };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"Name":"web"}"#);
        let mut r = r;
        r.id = "web1".into();
        r.port = 80;
        r.tags = vec!["a".into()];
        r.tagged_addresses.insert(
            "lan".into(),
            ServiceAddress {
                address: "10.0.0.1".into(),
                port: 80,
            },
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ID":"web1","Name":"web","Tags":["a"],"Port":80,"TaggedAddresses":{"lan":{"Address":"10.0.0.1","Port":80}}}"#
        );
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("web"), "\"web\"");
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(go_quote(""), "\"\"");
    }
}
