//! `lotse kv get|put|delete|export|import`, like `consul kv ...`.

use std::io::Write;

use base64::Engine;
use clap::{ArgAction, Parser};

use super::flags::{self, parse_bool, HttpFlags};
use super::http::{KvPair, Query};
use super::tabwriter::tabwrite;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub const GET_SYNOPSIS: &str = "Retrieves or lists data from the KV store";
pub const PUT_SYNOPSIS: &str = "Sets or updates data in the KV store";
pub const DELETE_SYNOPSIS: &str = "Removes data from the KV store";
pub const EXPORT_SYNOPSIS: &str = "Exports a tree from the KV store as JSON";
pub const IMPORT_SYNOPSIS: &str = "Imports a tree stored as JSON to the KV store";

/// The flag value `consul lock` (and `lotse lock`) puts on a lock key.
pub const LOCK_FLAG_VALUE: u64 = 0x2ddccbc058a50c18;

fn out(bytes: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(bytes);
    let _ = o.write_all(b"\n");
}

fn info(s: &str) {
    out(s.as_bytes());
}

fn error(s: &str) {
    eprintln!("{s}");
}

/// Strips one leading slash, as consul does ("pairs cannot start with a /").
fn strip_slash(key: &str) -> &str {
    key.strip_prefix('/').unwrap_or(key)
}

// ---- get --------------------------------------------------------------------------------------

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
    let key = match a.args.len() {
        0 => "",
        1 => a.args[0].as_str(),
        n => {
            error(&format!("Too many arguments (expected 1, got {n})"));
            return 1;
        }
    };
    let key = strip_slash(key);
    if key.is_empty() && !(a.recurse || a.keys) {
        error("Error! Missing KEY argument");
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => {
            error(&e);
            return 1;
        }
    };

    if a.keys && a.recurse {
        let pairs = match client.kv_list(key) {
            Ok(p) => p,
            Err(e) => {
                error(&format!("Error querying Lotse agent: {e}"));
                return 1;
            }
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
            Err(e) => {
                error(&format!("Error querying Lotse agent: {e}"));
                1
            }
        };
    }
    if a.recurse {
        let pairs = match client.kv_list(key) {
            Ok(p) => p,
            Err(e) => {
                error(&format!("Error querying Lotse agent: {e}"));
                return 1;
            }
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
        Err(e) => {
            error(&format!("Error querying Lotse agent: {e}"));
            return 1;
        }
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

// ---- put --------------------------------------------------------------------------------------

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
            Err(e) => {
                error(&format!("Error! Cannot base 64 decode data: {e}"));
                return 1;
            }
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
        Err(e) => {
            error(&e);
            return 1;
        }
    };
    let mut q = Query::write();
    if a.flags != 0 {
        q = q.param("flags", a.flags);
    }

    if a.cas {
        match client.kv_put(&key, &data, q.param("cas", a.modify_index)) {
            Err(e) => {
                error(&format!("Error! Did not write to {key}: {e}"));
                1
            }
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
            Err(e) => {
                error(&format!("Error! Failed writing data: {e}"));
                1
            }
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
        Err(e) => {
            error(&format!("Error! Failed writing data: {e}"));
            1
        }
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

// ---- delete -----------------------------------------------------------------------------------

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
    let key = match a.args.len() {
        0 => "",
        1 => a.args[0].as_str(),
        n => {
            error(&format!("Too many arguments (expected 1, got {n})"));
            return 1;
        }
    };
    let key = strip_slash(key);
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
        Err(e) => {
            error(&e);
            return 1;
        }
    };
    if a.recurse {
        return match client.kv_delete(key, Query::write().flag("recurse")) {
            Ok(_) => {
                info(&format!("Success! Deleted keys with prefix: {key}"));
                0
            }
            Err(e) => {
                error(&format!("Error! Did not delete prefix {key}: {e}"));
                1
            }
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
            Err(e) => {
                error(&format!("Error! Did not delete key {key}: {e}"));
                1
            }
        };
    }
    match client.kv_delete(key, Query::write()) {
        Ok(_) => {
            info(&format!("Success! Deleted key: {key}"));
            0
        }
        Err(e) => {
            error(&format!("Error deleting key {key}: {e}"));
            1
        }
    }
}

// ---- export -----------------------------------------------------------------------------------

#[derive(Parser, Debug)]
#[command(name = "kv export")]
struct ExportArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn help_export() -> String {
    flags::usage::<ExportArgs>(
        "Usage: lotse kv export [KEY_OR_PREFIX]

  Retrieves key-value pairs for the given prefix from Lotse's key-value store,
  and writes a JSON representation to stdout. This can be used with the command
  \"lotse kv import\" to move entire trees between Lotse clusters.

      $ lotse kv export vault",
    )
}

/// The JSON `consul kv export` prints: an array of `{"key","flags","value"}` with base64
/// values, indented with tabs.
pub fn export_json(pairs: &[KvPair]) -> String {
    #[derive(serde::Serialize)]
    struct Entry {
        key: String,
        flags: u64,
        value: String,
    }
    let entries: Vec<Entry> = pairs
        .iter()
        .map(|p| Entry {
            key: p.key.clone(),
            flags: p.flags,
            value: B64.encode(p.value_bytes()),
        })
        .collect();
    flags::json_indent(&entries, b"\t")
}

pub fn run_export(args: &[String]) -> i32 {
    let a: ExportArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let key = match a.args.len() {
        0 => "",
        1 => a.args[0].as_str(),
        n => {
            error(&format!("Too many arguments (expected 1, got {n})"));
            return 1;
        }
    };
    let key = strip_slash(key);
    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => {
            error(&e);
            return 1;
        }
    };
    match client.kv_list(key) {
        Ok(pairs) => {
            info(&export_json(&pairs));
            0
        }
        Err(e) => {
            error(&format!("Error querying Lotse agent: {e}"));
            1
        }
    }
}

// ---- import -----------------------------------------------------------------------------------

#[derive(Parser, Debug)]
#[command(name = "kv import")]
struct ImportArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Key prefix for imported data
    #[arg(long, default_value = "", value_name = "string")]
    prefix: String,
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn help_import() -> String {
    flags::usage::<ImportArgs>(
        "Usage: lotse kv import [DATA]

  Imports key-value pairs to the key-value store from the JSON representation
  generated by the \"lotse kv export\" command.

  The data can be read from a file by prefixing the filename with the \"@\"
  symbol. For example:

      $ lotse kv import @filename.json

  Or it can be read from stdin using the \"-\" symbol:

      $ cat filename.json | lotse kv import -

  Alternatively the data may be provided as the final parameter to the command,
  though care must be taken with regards to shell escaping.",
    )
}

#[derive(serde::Deserialize, Debug)]
struct ImportEntry {
    #[serde(default)]
    key: String,
    #[serde(default)]
    flags: u64,
    #[serde(default)]
    value: String,
}

/// Go's `path.Clean`.
pub fn go_path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Join`: the non-empty elements joined with slashes and cleaned; "" if all empty.
pub fn go_path_join(elems: &[&str]) -> String {
    let non_empty: Vec<&str> = elems.iter().copied().filter(|e| !e.is_empty()).collect();
    if non_empty.is_empty() {
        return String::new();
    }
    go_path_clean(&non_empty.join("/"))
}

/// The key an entry is imported to: `path.Join(prefix, key)`, keeping a trailing slash.
pub fn import_key(prefix: &str, key: &str) -> String {
    let mut k = go_path_join(&[prefix, key]);
    if key.ends_with('/') {
        k.push('/');
    }
    k
}

pub fn run_import(args: &[String]) -> i32 {
    let a: ImportArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let data = match a.args.len() {
        0 => {
            error("Error! Missing DATA argument");
            return 1;
        }
        1 if a.args[0].is_empty() => {
            error("Error! Empty DATA argument");
            return 1;
        }
        1 => match flags::load_data_source(&a.args[0]) {
            Ok(d) => d,
            Err(e) => {
                error(&format!("Error! {e}"));
                return 1;
            }
        },
        n => {
            error(&format!("Error! Too many arguments (expected 1, got {n})"));
            return 1;
        }
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => {
            error(&e);
            return 1;
        }
    };
    let entries: Vec<ImportEntry> = match serde_json::from_slice::<Option<Vec<ImportEntry>>>(&data)
    {
        Ok(e) => e.unwrap_or_default(),
        Err(e) => {
            error(&format!("Cannot unmarshal data: {e}"));
            return 1;
        }
    };
    for entry in entries {
        let value = match B64.decode(entry.value.as_bytes()) {
            Ok(v) => v,
            Err(e) => {
                error(&format!(
                    "Error base 64 decoding value for key {}: {e}",
                    entry.key
                ));
                return 1;
            }
        };
        let key = import_key(&a.prefix, &entry.key);
        let mut q = Query::write();
        if entry.flags != 0 {
            q = q.param("flags", entry.flags);
        }
        if let Err(e) = client.kv_put(&key, &value, q) {
            error(&format!("Error! Failed writing data for key {key}: {e}"));
            return 1;
        }
        info(&format!("Imported: {key}"));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> KvPair {
        KvPair {
            key: "foo".into(),
            create_index: 12,
            modify_index: 13,
            lock_index: 0,
            flags: 0,
            value: Some(B64.encode("bar")),
            session: None,
        }
    }

    #[test]
    fn detailed_output_matches_consul() {
        let got = String::from_utf8(pretty_pair(&pair(), false, false)).unwrap();
        assert_eq!(
            got,
            "CreateIndex      12\nFlags            0\nKey              foo\nLockIndex        0\n\
             ModifyIndex      13\nSession          -\nValue            bar"
        );
        let got = String::from_utf8(pretty_pair(&pair(), true, false)).unwrap();
        assert!(got.ends_with("Value            YmFy"), "{got}");
        let mut p = pair();
        p.session = Some("abc".into());
        let got = String::from_utf8(pretty_pair(&p, false, true)).unwrap();
        assert!(got.ends_with("Session          abc\n"), "{got:?}");
        assert!(!got.contains("Value"));
    }

    #[test]
    fn export_is_tab_indented_base64() {
        let mut empty = pair();
        empty.key = "e".into();
        empty.value = None;
        empty.flags = 42;
        assert_eq!(
            export_json(&[pair(), empty]),
            "[\n\t{\n\t\t\"key\": \"foo\",\n\t\t\"flags\": 0,\n\t\t\"value\": \"YmFy\"\n\t},\n\t{\n\t\t\"key\": \"e\",\n\t\t\"flags\": 42,\n\t\t\"value\": \"\"\n\t}\n]"
        );
        assert_eq!(export_json(&[]), "[]");
    }

    #[test]
    fn import_keys_join_like_go() {
        assert_eq!(import_key("", "a/b"), "a/b");
        assert_eq!(import_key("pre", "a/b"), "pre/a/b");
        assert_eq!(import_key("pre/", "/a//b"), "pre/a/b");
        assert_eq!(import_key("pre", "dir/"), "pre/dir/");
        assert_eq!(import_key("", ""), "");
        assert_eq!(go_path_clean("a/../b/./c/"), "b/c");
        assert_eq!(go_path_clean("/../a"), "/a");
    }
}
