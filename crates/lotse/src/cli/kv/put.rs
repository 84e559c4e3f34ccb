//! Writing keys: `lotse kv put`, with CAS and lock acquisition/release.

use super::*;

#[derive(Parser, Debug)]
#[command(name = "kv put")]
struct PutArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Perform a Check-And-Set operation. Specifying this value also requires the -modify-index
    /// flag to be set. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    cas: bool,
    /// Unsigned integer value to assign to this key-value pair. This value is not read by
    /// Lotse, so clients can use this value however makes sense for their use case. The default
    /// value is 0 (no flags).
    #[arg(long, default_value_t = 0, value_name = "uint")]
    flags: u64,
    /// Treat the data as base 64 encoded. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    base64: bool,
    /// Unsigned integer representing the ModifyIndex of the key. This is used in combination
    /// with the -cas flag.
    #[arg(long = "modify-index", default_value_t = 0, value_name = "uint")]
    modify_index: u64,
    /// User-defined identifer for this session as a string. This is commonly used with the
    /// -acquire and -release operations to build robust locking, but it can be set on any key.
    /// The default value is empty (no session).
    #[arg(long, default_value = "", value_name = "string")]
    session: String,
    /// Obtain a lock on the key. If the key does not exist, this operation will create the key
    /// and obtain the lock. The session must already exist and be specified via the -session
    /// flag. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    acquire: bool,
    /// Forfeit the lock on the key at the given path. This requires the -session flag to be
    /// set. The key must be held by the session in order to be unlocked. The default value is
    /// false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    release: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn help_put() -> String {
    flags::usage::<PutArgs>(
        "Usage: lotse kv put [options] KEY [DATA]

  Writes the data to the given path in the key-value store. The data can be of
  any type.

      $ lotse kv put config/redis/maxconns 5

  The data can also be consumed from a file on disk by prefixing with the \"@\"
  symbol. For example:

      $ lotse kv put config/program/license @license.lic

  Or it can be read from stdin using the \"-\" symbol:

      $ echo \"abcd1234\" | lotse kv put config/program/license -

  The DATA argument itself is optional. If omitted, this will create an empty
  key-value pair at the specified path:

      $ lotse kv put webapp/beta/active

  If the -base64 flag is specified, the data will be treated as base 64
  encoded.

  To perform a Check-And-Set operation, specify the -cas flag with the
  appropriate -modify-index flag corresponding to the key you want to perform
  the CAS operation on:

      $ lotse kv put -cas -modify-index=844 config/redis/maxconns 5",
    )
}

pub fn run_put(args: &[String]) -> i32 {
    let a: PutArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let (key, data) = match a.args.len() {
        0 => {
            error("Error! Missing KEY argument");
            return 1;
        }
        1 => (a.args[0].clone(), Vec::new()),
        2 => match flags::load_data_source(&a.args[1]) {
            Ok(d) => (a.args[0].clone(), d),
            Err(e) => {
                error(&format!("Error! {e}"));
                return 1;
            }
        },
        n => {
            error(&format!(
                "Error! Too many arguments (expected 1 or 2, got {n})"
            ));
            return 1;
        }
    };
    let data = if a.base64 {
        // Go's decoder ignores newlines anywhere in the input.
        let text: Vec<u8> = data
            .iter()
            .copied()
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect();
        match B64.decode(&text) {
            Ok(d) => d,
            Err(e) => return flags::fail("Error! Cannot base 64 decode data", e),
        }
    } else {
        data
    };
    if (a.release || a.acquire) && a.session.is_empty() {
        error("Error! Missing -session (required with -acquire and -release)");
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut q = Query::write();
    if a.flags != 0 {
        q = q.param("flags", a.flags);
    }

    if a.cas {
        match client.kv_put(&key, &data, q.param("cas", a.modify_index)) {
            Err(e) => flags::fail(&format!("Error! Did not write to {key}"), e),
            Ok(false) if a.modify_index == 0 => {
                error(&format!(
                    "Error! Did not write to {key}: CAS performed with index=0 and key already exists."
                ));
                1
            }
            Ok(false) => {
                error(&format!("Error! Did not write to {key}: CAS failed"));
                1
            }
            Ok(true) => {
                info(&format!("Success! Data written to: {key}"));
                0
            }
        }
    } else if a.acquire {
        let res = client.kv_put(&key, &data, q.param("acquire", &a.session));
        report_lock(res, "acquire", &format!("Success! Lock acquired on: {key}"))
    } else if a.release {
        let res = client.kv_put(&key, &data, q.param("release", &a.session));
        report_lock(res, "release", &format!("Success! Lock released on: {key}"))
    } else {
        match client.kv_put(&key, &data, q) {
            Err(e) => flags::fail("Error! Failed writing data", e),
            Ok(_) => {
                info(&format!("Success! Data written to: {key}"));
                0
            }
        }
    }
}

/// Prints the outcome of `kv put -acquire|-release` as consul does; returns the exit code.
fn report_lock<E: std::fmt::Display>(res: Result<bool, E>, verb: &str, success: &str) -> i32 {
    match res {
        Err(e) => flags::fail("Error! Failed writing data", e),
        Ok(false) => {
            error(&format!("Error! Did not {verb} lock"));
            1
        }
        Ok(true) => {
            info(success);
            0
        }
    }
}
