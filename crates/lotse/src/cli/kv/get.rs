//! Retrieving keys: `lotse kv get`.

use super::*;

#[derive(Parser, Debug)]
#[command(name = "kv get")]
struct GetArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Base64 encode the value. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    base64: bool,
    /// Provide additional metadata about the key in addition to the value such as the
    /// ModifyIndex and any flags that may have been set on the key. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    detailed: bool,
    /// List keys which start with the given prefix, but not their values. This is especially
    /// useful if you only need the key names themselves. This option is commonly combined with
    /// the -separator option. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    keys: bool,
    /// Recursively look at all keys prefixed with the given path. The default value is false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    recurse: bool,
    /// String to use as a separator between keys. The default value is "/", but this option is
    /// only taken into account when paired with the -keys flag.
    #[arg(
        long,
        default_value = "/",
        value_name = "string",
        allow_hyphen_values = true
    )]
    separator: String,
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn help_get() -> String {
    flags::usage::<GetArgs>(
        "Usage: lotse kv get [options] [KEY_OR_PREFIX]

  Retrieves the value from Lotse's key-value store at the given key name. If no
  key exists with that name, an error is returned. If a key exists with that
  name but has no data, nothing is returned. If the name or prefix is omitted,
  it defaults to \"\" which is the root of the key-value store.

  To retrieve the value for the key named \"foo\" in the key-value store:

      $ lotse kv get foo

  To view detailed information about the key, specify the \"-detailed\" flag:

      $ lotse kv get -detailed foo

  To treat the path as a prefix and list all keys which start with the given
  prefix, specify the \"-recurse\" flag:

      $ lotse kv get -recurse foo

  To just list the keys which start with the specified prefix, use the \"-keys\"
  option instead:

      $ lotse kv get -keys foo",
    )
}

/// consul's `prettyKVPair`: the fields aligned by a tabwriter (padding 6); no Value line when
/// only keys were asked for.
pub fn pretty_pair(pair: &KvPair, base64_value: bool, keys_only: bool) -> Vec<u8> {
    let mut text = String::new();
    text.push_str(&format!("CreateIndex\t{}\n", pair.create_index));
    text.push_str(&format!("Flags\t{}\n", pair.flags));
    text.push_str(&format!("Key\t{}\n", pair.key));
    text.push_str(&format!("LockIndex\t{}\n", pair.lock_index));
    text.push_str(&format!("ModifyIndex\t{}\n", pair.modify_index));
    let session = if pair.session_id().is_empty() {
        "-"
    } else {
        pair.session_id()
    };
    text.push_str(&format!("Session\t{session}\n"));
    if !keys_only {
        let value = pair.value_bytes();
        if base64_value {
            text.push_str(&format!("Value\t{}", B64.encode(&value)));
        } else {
            // Non-UTF-8 values go through the tabwriter lossily; raw bytes are rare here.
            text.push_str(&format!("Value\t{}", String::from_utf8_lossy(&value)));
        }
    }
    tabwrite(&text, 0, 6).into_bytes()
}

pub fn run_get(args: &[String]) -> i32 {
    let a: GetArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let key = match optional_key(&a.args) {
        Ok(k) => k,
        Err(code) => return code,
    };
    if key.is_empty() && !(a.recurse || a.keys) {
        error("Error! Missing KEY argument");
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(c) => return c,
    };

    if a.keys && a.recurse {
        let pairs = match client.kv_list(key) {
            Ok(p) => p,
            Err(e) => return flags::fail("Error querying Lotse agent", e),
        };
        for (i, pair) in pairs.iter().enumerate() {
            if a.detailed {
                out(&pretty_pair(pair, false, true));
                if i + 1 < pairs.len() {
                    info("");
                }
            } else {
                info(&pair.key);
            }
        }
        return 0;
    }
    if a.keys {
        return match client.kv_keys(key, &a.separator) {
            Ok(keys) => {
                for k in keys {
                    info(&k);
                }
                0
            }
            Err(e) => flags::fail("Error querying Lotse agent", e),
        };
    }
    if a.recurse {
        let pairs = match client.kv_list(key) {
            Ok(p) => p,
            Err(e) => return flags::fail("Error querying Lotse agent", e),
        };
        for (i, pair) in pairs.iter().enumerate() {
            if a.detailed {
                out(&pretty_pair(pair, a.base64, false));
                if i + 1 < pairs.len() {
                    info("");
                }
            } else {
                let mut line = pair.key.clone().into_bytes();
                line.push(b':');
                if a.base64 {
                    line.extend(B64.encode(pair.value_bytes()).into_bytes());
                } else {
                    line.extend(pair.value_bytes());
                }
                out(&line);
            }
        }
        return 0;
    }

    let pair = match client.kv_get(key, Query::read()) {
        Ok((p, _)) => p,
        Err(e) => return flags::fail("Error querying Lotse agent", e),
    };
    let Some(pair) = pair else {
        error(&format!("Error! No key exists at: {key}"));
        return 1;
    };
    if a.detailed {
        out(&pretty_pair(&pair, a.base64, false));
    } else if a.base64 {
        info(&B64.encode(pair.value_bytes()));
    } else {
        out(&pair.value_bytes());
    }
    0
}
