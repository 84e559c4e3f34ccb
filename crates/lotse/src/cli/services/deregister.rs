//! `lotse services deregister`: by `-id`, or every service of the given definition files (by
//! its ID, else its name), each through `PUT /v1/agent/service/deregister/:id`.

use clap::Parser;

use super::super::flags::{self, HttpFlags};
use super::super::http::{encode_path, Query};
use super::{go_quote, services_and_client, Registration};

#[derive(Parser, Debug)]
#[command(name = "services deregister")]
struct DeregisterArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// ID to delete. This must not be set if arguments are given.
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    id: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_deregister() -> String {
    flags::usage::<DeregisterArgs>(
        "Usage: lotse services deregister [options] [FILE...]

  Deregister one or more services that were previously registered with
  the local agent.

      $ lotse services deregister web.json db.json

  The -id flag may be used to deregister a single service by ID:

      $ lotse services deregister -id=web

  Services are deregistered from the local agent catalog. This command must
  be run against the same agent where the service was registered.",
    )
}

/// The ID to deregister a service by: its ID, else its name; `None` (skipped, as consul does)
/// when it has neither.
fn target_id(svc: &Registration) -> Option<&str> {
    [svc.id.as_str(), svc.name.as_str()]
        .into_iter()
        .find(|s| !s.is_empty())
}

pub fn run_deregister(args: &[String]) -> i32 {
    let a: DeregisterArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let by_flags = (!a.id.is_empty()).then(|| Registration {
        id: a.id.clone(),
        ..Default::default()
    });
    let (services, client) =
        match services_and_client("deregistration", "-id", &a.http, &a.args, by_flags) {
            Ok(v) => v,
            Err(c) => return c,
        };
    for svc in &services {
        let Some(id) = target_id(svc) else { continue };
        let path = format!("/v1/agent/service/deregister/{}", encode_path(id));
        if let Err(e) = client.request_ok("PUT", &path, &Query::write(), None) {
            // consul names the service by its (possibly empty) name here, not the ID.
            let context = format!("Error deregistering service {}", go_quote(&svc.name));
            return flags::fail(&context, e);
        }
        println!("Deregistered service: {id}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn id_falls_back_to_name() {
        let mut r = Registration::default();
        assert_eq!(target_id(&r), None);
        r.name = "web".into();
        assert_eq!(target_id(&r), Some("web"));
        r.id = "web1".into();
        assert_eq!(target_id(&r), Some("web1"));
    }

    #[test]
    fn validation_errors_exit_1() {
        let addr = "-http-addr=127.0.0.1:1";
        assert_eq!(run_deregister(&argv(&[addr])), 1);
        assert_eq!(run_deregister(&argv(&[addr, "-id", "web", "web.json"])), 1);
        assert_eq!(run_deregister(&argv(&[addr, "/no/such/file.hcl"])), 1);
        assert_eq!(run_deregister(&argv(&[addr, "-id=web"])), 1);
    }
}
