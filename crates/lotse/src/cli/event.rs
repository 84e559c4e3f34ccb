//! `lotse event -name NAME [-node R] [-service R] [-tag R] [payload]`: fires a user event
//! through the agent (`PUT /v1/event/fire/NAME`), as `consul event` does, and prints
//! `Event ID: ...`.

use clap::Parser;

use super::flags::{self, HttpFlags};
use super::http::{encode_path, Query};

pub const SYNOPSIS: &str = "Fire a new event";

#[derive(Parser, Debug)]
#[command(name = "event")]
struct EventArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Name of the event.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    name: String,
    /// Regular expression to filter on node names.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    node: String,
    /// Regular expression to filter on service instances.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    service: String,
    /// Regular expression to filter on service tags. Must be used with -service.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "string"
    )]
    tag: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<EventArgs>(
        "Usage: lotse event [options] [payload]

  Dispatches a custom user event across a datacenter. An event must provide
  a name, but a payload is optional. Events support filtering using
  regular expressions on node name, service, and tag definitions.",
    )
}

/// consul's checks before anything is sent, in its order; the message on error.
fn check(a: &EventArgs) -> Result<(), String> {
    for (filter, what) in [(&a.node, "node"), (&a.service, "service"), (&a.tag, "tag")] {
        if !filter.is_empty() {
            lotse_api::event::compile_filter(filter)
                .map_err(|e| format!("Failed to compile {what} filter regexp: {e}"))?;
        }
    }
    if !a.tag.is_empty() && a.service.is_empty() {
        return Err("Cannot provide tag filter without service filter.".into());
    }
    Ok(())
}

pub fn run(args: &[String]) -> i32 {
    let a: EventArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if a.name.is_empty() {
        eprintln!("Event name must be specified");
        eprintln!();
        eprintln!("{}", help());
        return 1;
    }
    if let Err(e) = check(&a) {
        eprintln!("{e}");
        return 1;
    }
    let payload = match a.args.as_slice() {
        [] => None,
        [p] => Some(p.as_bytes().to_vec()),
        _ => {
            eprintln!("Too many command line arguments.");
            eprintln!();
            eprintln!("{}", help());
            return 1;
        }
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    if let Err(e) = client.agent_self() {
        return flags::fail("Error querying Lotse agent", e);
    }
    let mut q = Query::write();
    for (name, value) in [("node", &a.node), ("service", &a.service), ("tag", &a.tag)] {
        if !value.is_empty() {
            q = q.param(name, value);
        }
    }
    let path = format!("/v1/event/fire/{}", encode_path(&a.name));
    let resp = match client.request_ok("PUT", &path, &q, payload.as_deref()) {
        Ok(r) => r,
        Err(e) => return flags::fail("Error firing event", e),
    };
    let id = match resp.json::<serde_json::Value>() {
        Ok(v) => v
            .get("ID")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        Err(e) => return flags::fail("Error firing event", e),
    };
    println!("Event ID: {id}");
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    fn args(a: &[&str]) -> EventArgs {
        flags::parse(&argv(a)).expect("parses")
    }

    #[test]
    fn filters_are_checked_as_consul_does() {
        assert!(check(&args(&[
            "-name", "x", "-node", "^web", "-service", "api", "-tag", "v1"
        ]))
        .is_ok());
        assert_eq!(
            check(&args(&["-name", "x", "-node", "("])).unwrap_err(),
            "Failed to compile node filter regexp: error parsing regexp: missing closing ): `(`"
        );
        assert_eq!(
            check(&args(&["-name", "x", "-tag", "v1"])).unwrap_err(),
            "Cannot provide tag filter without service filter."
        );
    }

    #[test]
    fn refuses_a_missing_name_and_extra_arguments() {
        assert_eq!(run(&argv(&["-node", "x"])), 1);
        assert_eq!(run(&argv(&["-name", "x", "a", "b"])), 1);
        let a = args(&["-name=deploy", "payload"]);
        assert_eq!(
            (a.name.as_str(), a.args.as_slice()),
            ("deploy", &["payload".to_string()][..])
        );
    }
}
