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

/// The optional single KEY argument of `get`, `delete` and `export` (empty when absent, its
/// leading slash stripped); more than one prints consul's error and gives the exit code.
fn optional_key(args: &[String]) -> Result<&str, i32> {
    match args {
        [] => Ok(""),
        [key] => Ok(strip_slash(key)),
        more => {
            error(&format!(
                "Too many arguments (expected 1, got {})",
                more.len()
            ));
            Err(1)
        }
    }
}

mod delete;
mod get;
mod put;
mod transfer;

#[cfg(test)]
mod tests;

pub use delete::{help_delete, run_delete};
pub use get::{help_get, run_get};
pub use put::{help_put, run_put};
pub use transfer::{go_path_join, help_export, help_import, run_export, run_import};
