//! `lotse catalog datacenters`: `GET /v1/catalog/datacenters`, one name a line in the order the
//! agent answers (nearest first).

use clap::Parser;

use super::super::flags::{self, HttpFlags};
use super::super::http::Query;

#[derive(Parser, Debug)]
#[command(name = "catalog datacenters")]
struct DatacentersArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_datacenters() -> String {
    flags::usage::<DatacentersArgs>(
        "Usage: lotse catalog datacenters [options]

  Retrieves the list of all known datacenters. This datacenters are sorted in
  ascending order based on the estimated median round trip time from the servers
  in this datacenter to the servers in the other datacenters.

  To retrieve the list of datacenters:

      $ lotse catalog datacenters

  For a full list of options and examples, please see the Lotse documentation.",
    )
}

/// One datacenter a line; consul prints each with `UI.Info`, so there is no output at all (and
/// no error) for an empty list.
fn render(dcs: &[String]) -> String {
    dcs.iter().map(|dc| format!("{dc}\n")).collect()
}

pub fn run_datacenters(args: &[String]) -> i32 {
    let a: DatacentersArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if !a.args.is_empty() {
        eprintln!("Too many arguments (expected 0, got {})", a.args.len());
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match client
        .request_ok("GET", "/v1/catalog/datacenters", &Query::default(), None)
        .and_then(|r| r.json::<Option<Vec<String>>>())
    {
        Ok(dcs) => {
            print!("{}", render(&dcs.unwrap_or_default()));
            0
        }
        Err(e) => {
            eprintln!("Error listing datacenters: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_line_in_answer_order() {
        let dcs: Vec<String> = serde_json::from_str(r#"["dc2","dc1"]"#).unwrap();
        assert_eq!(render(&dcs), "dc2\ndc1\n");
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn extra_arguments_are_rejected() {
        assert_eq!(run_datacenters(&["x".to_string()]), 1);
    }

    #[test]
    fn agent_down_is_exit_1() {
        assert_eq!(run_datacenters(&["-http-addr=127.0.0.1:1".to_string()]), 1);
    }
}
