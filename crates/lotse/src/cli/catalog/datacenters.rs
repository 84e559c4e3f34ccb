//! `lotse catalog datacenters`: `GET /v1/catalog/datacenters`, one name a line in the order the
//! agent answers (nearest first).

use super::super::flags::{self, HttpOnlyArgs};
use super::super::http::Query;

pub fn help_datacenters() -> String {
    flags::usage::<HttpOnlyArgs>(
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
    let client = match flags::http_only_client(args) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client
        .request_ok("GET", "/v1/catalog/datacenters", &Query::default(), None)
        .and_then(|r| r.json::<Option<Vec<String>>>())
    {
        Ok(dcs) => {
            print!("{}", render(&dcs.unwrap_or_default()));
            0
        }
        Err(e) => flags::fail("Error listing datacenters", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn one_per_line_in_answer_order() {
        let dcs: Vec<String> = serde_json::from_str(r#"["dc2","dc1"]"#).unwrap();
        assert_eq!(render(&dcs), "dc2\ndc1\n");
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn extra_arguments_are_rejected() {
        assert_eq!(run_datacenters(&argv(&["x"])), 1);
    }

    #[test]
    fn agent_down_is_exit_1() {
        assert_eq!(run_datacenters(&argv(&["-http-addr=127.0.0.1:1"])), 1);
    }
}
