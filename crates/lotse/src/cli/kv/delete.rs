//! Removing keys: `lotse kv delete`.

use super::*;

#[derive(Parser, Debug)]
#[command(name = "kv delete")]
struct DeleteArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Perform a Check-And-Set operation. Specifying this value also requires the -modify-index
    /// flag to be set. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    cas: bool,
    /// Unsigned integer representing the ModifyIndex of the key. This is used in combination
    /// with the -cas flag.
    #[arg(long = "modify-index", default_value_t = 0, value_name = "uint")]
    modify_index: u64,
    /// Recursively delete all keys with the path. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    recurse: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn help_delete() -> String {
    flags::usage::<DeleteArgs>(
        "Usage: lotse kv delete [options] KEY_OR_PREFIX

  Removes the value from Lotse's key-value store at the given path. If no
  key exists at the path, no action is taken.

  To delete the value for the key named \"foo\" in the key-value store:

      $ lotse kv delete foo

  To delete all keys which start with \"foo\", specify the -recurse option:

      $ lotse kv delete -recurse foo

  This will delete the keys named \"foo\", \"food\", and \"foo/bar/zip\" if they
  existed.",
    )
}

pub fn run_delete(args: &[String]) -> i32 {
    let a: DeleteArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let key = match optional_key(&a.args) {
        Ok(k) => k,
        Err(code) => return code,
    };
    if key.is_empty() && !a.recurse {
        error("Error! Missing KEY argument");
        return 1;
    }
    if a.cas && a.modify_index == 0 {
        error(
            "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.",
        );
        return 1;
    }
    if a.modify_index != 0 && !a.cas {
        error("Cannot specify -modify-index without -cas!");
        return 1;
    }
    if a.recurse && a.cas {
        error("Cannot specify both -cas and -recurse!");
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    if a.recurse {
        return match client.kv_delete(key, Query::write().flag("recurse")) {
            Ok(_) => {
                info(&format!("Success! Deleted keys with prefix: {key}"));
                0
            }
            Err(e) => flags::fail(&format!("Error! Did not delete prefix {key}"), e),
        };
    }
    if a.cas {
        return match client.kv_delete(key, Query::write().param("cas", a.modify_index)) {
            Ok(true) => {
                info(&format!("Success! Deleted key: {key}"));
                0
            }
            Ok(false) => {
                error(&format!("Error! Did not delete key {key}: CAS failed"));
                1
            }
            Err(e) => flags::fail(&format!("Error! Did not delete key {key}"), e),
        };
    }
    match client.kv_delete(key, Query::write()) {
        Ok(_) => {
            info(&format!("Success! Deleted key: {key}"));
            0
        }
        Err(e) => flags::fail(&format!("Error deleting key {key}"), e),
    }
}
