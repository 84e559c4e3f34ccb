//! `lotse snapshot save|restore|inspect FILE`, like `consul snapshot ...`: the archive of
//! `GET`/`PUT /v1/snapshot` (`lotse_server::snapshot::archive`) to and from a file.
//!
//! * `save` writes `FILE.part`, reads it back and verifies it (checksums, versions, the image
//!   decodes), and only then renames it over `FILE`: an interrupted or corrupt save never
//!   leaves a file that looks like a snapshot.
//! * `restore` verifies the file locally before sending it (a clearer error than the server's
//!   for a file that is not a snapshot at all); the server verifies again.
//! * `inspect` reads only the file: Consul's table of ID, Size, Index, Term, Version and the
//!   records per type; `-kvdetails` adds keys per prefix; `-format json`.
//!
//! Files above [`PROGRESS_STEP`] get progress lines on stderr (`Saved N bytes`).

use std::io::Write;
use std::path::Path;

use clap::{ArgAction, Parser};
use lotse_server::snapshot::archive::{self, Archive};
use lotse_server::snapshot::stats::{self, TypeStat};

use super::flags::{self, parse_bool, HttpFlags};
use super::http::Query;
use super::tabwriter::tabwrite;

pub const SYNOPSIS: &str = "Saves, restores and inspects snapshots of Lotse server state";
pub const SAVE_SYNOPSIS: &str = "Saves snapshot of Lotse server state";
pub const RESTORE_SYNOPSIS: &str = "Restores snapshot of Lotse server state";
pub const INSPECT_SYNOPSIS: &str = "Displays information about a Lotse snapshot file";

/// Files written or read in steps of this many bytes report progress after each step.
const PROGRESS_STEP: usize = 8 << 20;

pub fn help() -> String {
    "Usage: lotse snapshot <subcommand> [options] [args]

  This command has subcommands for saving, restoring, and inspecting the state
  of the Lotse servers for disaster recovery. These are atomic, point-in-time
  snapshots which include key/value entries, the service catalog and sessions.

  Create a snapshot:

      $ lotse snapshot save backup.snap

  Restore a snapshot:

      $ lotse snapshot restore backup.snap

  Inspect a snapshot:

      $ lotse snapshot inspect backup.snap

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

#[derive(Parser, Debug)]
#[command(name = "snapshot save")]
struct SaveArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Parser, Debug)]
#[command(name = "snapshot restore")]
struct RestoreArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Parser, Debug)]
#[command(name = "snapshot inspect")]
struct InspectArgs {
    /// Provides a detailed KV space usage breakdown for any KV data that's been stored.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    kvdetails: bool,
    /// Can only be used with -kvdetails. The key prefix depth used to breakdown KV store data.
    /// Defaults to 2.
    #[arg(long, default_value_t = 2, value_name = "int")]
    kvdepth: usize,
    /// Can only be used with -kvdetails. Limits KV key breakdown using this prefix filter.
    #[arg(long, default_value = "", value_name = "string")]
    kvfilter: String,
    /// Output format {pretty|json}
    #[arg(long, default_value = "pretty", value_name = "string")]
    format: String,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_save() -> String {
    flags::usage::<SaveArgs>(
        "Usage: lotse snapshot save [options] FILE

  Retrieves an atomic, point-in-time snapshot of the state of the Lotse servers
  which includes key/value entries, the service catalog and sessions.

  If ACLs are enabled, a management token must be supplied in order to perform
  snapshot operations.

  To create a snapshot from the leader server and save it to \"backup.snap\":

      $ lotse snapshot save backup.snap

  To create a potentially stale snapshot from any available server (useful if no
  leader is available):

      $ lotse snapshot save -stale backup.snap",
    )
}

pub fn help_restore() -> String {
    flags::usage::<RestoreArgs>(
        "Usage: lotse snapshot restore [options] FILE

  Restores an atomic, point-in-time snapshot of the state of the Lotse servers
  which includes key/value entries, the service catalog and sessions.

  Restores involve a potentially dangerous low-level Raft operation that is not
  designed to handle server failures during a restore. This command is primarily
  intended to be used when recovering from a disaster, restoring into a fresh
  cluster of Lotse servers.

  If ACLs are enabled, a management token must be supplied in order to perform
  snapshot operations.

  To restore a snapshot from the file \"backup.snap\":

      $ lotse snapshot restore backup.snap",
    )
}

pub fn help_inspect() -> String {
    flags::usage::<InspectArgs>(
        "Usage: lotse snapshot inspect [options] FILE

  Displays information about a snapshot file on disk.

  To inspect the file \"backup.snap\":

      $ lotse snapshot inspect backup.snap",
    )
}

/// The one FILE argument, with consul's errors for none or several.
fn file_arg(args: &[String]) -> Result<&str, i32> {
    match args {
        [] => {
            eprintln!("Missing FILE argument");
            Err(1)
        }
        [file] => Ok(file),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            Err(1)
        }
    }
}

/// Writes `bytes` to `path` in steps, reporting progress for large files on stderr.
fn write_with_progress(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    let large = bytes.len() > PROGRESS_STEP;
    let mut written = 0;
    for chunk in bytes.chunks(PROGRESS_STEP) {
        f.write_all(chunk)?;
        written += chunk.len();
        if large {
            eprintln!("Saved {written} bytes");
        }
    }
    f.sync_all()
}

/// Reads `path`, reporting progress for large files on stderr.
fn read_with_progress(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    let mut buf = vec![0u8; PROGRESS_STEP.min(len.max(1))];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if len > PROGRESS_STEP && (out.len() % PROGRESS_STEP < n || out.len() == len) {
            eprintln!("Read {} bytes", out.len());
        }
    }
    Ok(out)
}

/// Reads and fully checks an archive: its checksums and versions, and that this build can
/// decode the store image inside.
fn verify(bytes: &[u8]) -> Result<(Archive, lotse_core::Store), String> {
    let a = archive::read(bytes).map_err(|e| e.to_string())?;
    let store = lotse_consensus::state_machine::decode_image(&a.state)
        .map_err(|e| format!("failed to decode snapshot state: {e}"))?;
    Ok((a, store))
}

pub fn run_save(args: &[String]) -> i32 {
    let a: SaveArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let file = match file_arg(&a.args) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let resp = match client.request_ok("GET", "/v1/snapshot", &Query::read(), None) {
        Ok(r) => r,
        Err(e) => return flags::fail("Error saving snapshot", e),
    };
    let part = format!("{file}.part");
    if let Err(e) = write_with_progress(Path::new(&part), &resp.body) {
        let _ = std::fs::remove_file(&part);
        return flags::fail("Error writing snapshot file", e);
    }
    // Read back what reached the disk, as consul does, before it takes the real name.
    let verified = std::fs::read(&part)
        .map_err(|e| e.to_string())
        .and_then(|b| verify(&b));
    let (archive, _) = match verified {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return flags::fail("Error verifying snapshot file", e);
        }
    };
    if let Err(e) = std::fs::rename(&part, file) {
        let _ = std::fs::remove_file(&part);
        return flags::fail("Error renaming snapshot file", e);
    }
    println!(
        "Saved and verified snapshot to index {}",
        archive.meta.index
    );
    0
}

pub fn run_restore(args: &[String]) -> i32 {
    let a: RestoreArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let file = match file_arg(&a.args) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let bytes = match read_with_progress(file) {
        Ok(b) => b,
        Err(e) => return flags::fail("Error opening snapshot file", e),
    };
    if let Err(e) = archive::read(&bytes) {
        return flags::fail("Error verifying snapshot file", e);
    }
    if let Err(e) = client.request_ok("PUT", "/v1/snapshot", &Query::write(), Some(&bytes)) {
        return flags::fail("Error restoring snapshot", e);
    }
    println!("Restored snapshot");
    0
}

/// Go's `ByteSize` from consul's inspect formatter: one decimal, `.0` dropped.
fn byte_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    if bytes == 0 {
        return "0".into();
    }
    let (div, unit) = UNITS
        .iter()
        .find(|(d, _)| bytes >= *d)
        .copied()
        .unwrap_or((1, "B"));
    let text = format!("{:.1}", bytes as f64 / div as f64);
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

/// A `Type/Count/Size` (or `Key Name/...`) table as consul's formatter writes it.
fn stats_table(first: &str, rows: &[TypeStat], minwidth: usize, padding: usize) -> String {
    let mut t = format!("\n {first}\tCount\tSize\t\n ----\t----\t----\t");
    for r in rows {
        t.push_str(&format!(
            "\n {}\t{}\t{}\t",
            r.name,
            r.count,
            byte_size(r.sum)
        ));
    }
    let total: u64 = rows.iter().map(|r| r.sum).sum();
    t.push_str(&format!(
        "\n ----\t----\t----\t\n Total\t\t{}\t",
        byte_size(total)
    ));
    tabwrite(&t, minwidth, padding)
}

/// Consul's pretty output of `snapshot inspect`.
fn render_pretty(a: &Archive, types: &[TypeStat], kv: Option<&[TypeStat]>) -> String {
    let m = &a.meta;
    let head = format!(
        " ID\t{}\n Size\t{}\n Index\t{}\n Term\t{}\n Version\t{}\n",
        m.id, m.size, m.index, m.term, m.version
    );
    let mut out = tabwrite(&head, 8, 6);
    out.push_str(&stats_table("Type", types, 8, 6));
    if let Some(kv) = kv {
        out.push('\n');
        out.push_str(&stats_table("Key Name", kv, 8, 6));
    }
    out
}

/// Consul's `-format json` output of `snapshot inspect`.
fn render_json(a: &Archive, types: &[TypeStat]) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Meta<'a> {
        #[serde(rename = "ID")]
        id: &'a str,
        size: u64,
        index: u64,
        term: u64,
        version: u32,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Out<'a> {
        meta: Meta<'a>,
        stats: &'a [TypeStat],
        total_size: u64,
    }
    let m = &a.meta;
    flags::json_indent(
        &Out {
            meta: Meta {
                id: &m.id,
                size: m.size,
                index: m.index,
                term: m.term,
                version: m.version,
            },
            stats: types,
            total_size: types.iter().map(|r| r.sum).sum(),
        },
        b"   ",
    )
}

pub fn run_inspect(args: &[String]) -> i32 {
    let a: InspectArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let file = match file_arg(&a.args) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if !matches!(a.format.as_str(), "pretty" | "json") {
        eprintln!("Unknown format: {}", a.format);
        return 1;
    }
    let bytes = match read_with_progress(file) {
        Ok(b) => b,
        Err(e) => return flags::fail("Error opening snapshot file", e),
    };
    let (archive, store) = match verify(&bytes) {
        Ok(v) => v,
        Err(e) => return flags::fail("Error verifying snapshot", e),
    };
    let types = stats::by_type(&store);
    if a.format == "json" {
        println!("{}", render_json(&archive, &types));
        return 0;
    }
    let kv = a
        .kvdetails
        .then(|| stats::by_key_prefix(&store, a.kvdepth, &a.kvfilter));
    print!("{}", render_pretty(&archive, &types, kv.as_deref()));
    println!();
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_server::snapshot::archive::{ArchiveMeta, LOTSE_FORMAT, META_VERSION};

    fn archive() -> Archive {
        Archive {
            meta: ArchiveMeta {
                version: META_VERSION,
                id: "2-12426-1604593650375".into(),
                index: 12426,
                term: 2,
                size: 17228,
                lotse_format: LOTSE_FORMAT,
                image_format: 3,
            },
            state: Vec::new(),
        }
    }

    fn row(name: &str, count: u64, sum: u64) -> TypeStat {
        TypeStat {
            name: name.into(),
            count,
            sum,
        }
    }

    #[test]
    fn byte_sizes_read_as_consuls() {
        assert_eq!(byte_size(0), "0");
        assert_eq!(byte_size(285), "285B");
        assert_eq!(byte_size(2048), "2KB");
        assert_eq!(byte_size(12_595), "12.3KB");
        assert_eq!(byte_size(3 << 20), "3MB");
    }

    /// The layout of consul's formatter (`command/snapshot/inspect/formatter.go`): padding 6,
    /// minimum width 8, a blank line between the tables.
    #[test]
    fn the_pretty_table_has_consuls_layout() {
        let types = [row("KVS", 27, 12_595), row("Register", 5, 3_482)];
        let kv = [row("vault/core", 16, 6_041), row("vault/sys", 7, 4_506)];
        let out = render_pretty(&archive(), &types, Some(&kv));
        // Go's tabwriter pads every tab-terminated cell, the last column included.
        let expected = [
            " ID           2-12426-1604593650375",
            " Size         17228",
            " Index        12426",
            " Term         2",
            " Version      1",
            "",
            " Type          Count      Size        ",
            " ----          ----       ----        ",
            " KVS           27         12.3KB      ",
            " Register      5          3.4KB       ",
            " ----          ----       ----        ",
            " Total                    15.7KB      ",
            "",
            " Key Name        Count      Size        ",
            " ----            ----       ----        ",
            " vault/core      16         5.9KB       ",
            " vault/sys       7          4.4KB       ",
            " ----            ----       ----        ",
            " Total                      10.3KB      ",
        ]
        .join("\n");
        assert_eq!(out, expected, "\n{out}");
    }

    #[test]
    fn json_has_consuls_fields() {
        let out = render_json(&archive(), &[row("KVS", 2, 10)]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Meta"]["Index"], 12426);
        assert_eq!(v["Meta"]["Version"], 1);
        assert_eq!(v["Stats"][0]["Name"], "KVS");
        assert_eq!(v["TotalSize"], 10);
        assert!(out.starts_with("{\n   \"Meta\": {\n      \"ID\""), "{out}");
    }

    #[test]
    fn a_missing_or_extra_file_argument_is_exit_1() {
        assert_eq!(run_inspect(&[]), 1);
        assert_eq!(run_inspect(&flags::argv(&["a", "b"])), 1);
        assert_eq!(run_save(&[]), 1);
        assert_eq!(run_restore(&[]), 1);
        assert_eq!(run_inspect(&flags::argv(&["/no/such/file.snap"])), 1);
    }
}
