//! The client side of the `lotse` binary: every subcommand but `agent`.
//!
//! Each command talks to an agent's HTTP API (`/v1/...`) like `consul`'s command of the same
//! name, with the same flags (Go style: `-flag`, `-flag=value`, `--flag value`), the same
//! output and the same exit codes. The dispatcher mirrors `consul`'s CLI frame:
//! `-h`/`-help`/`--help` anywhere (before `--`) prints the command's help on stderr and exits 0;
//! no command or an unknown one prints the command list on stderr and exits 127.

mod catalog;
mod connect;
mod event;
mod flags;
mod gateway;
mod http;
mod info;
mod join;
mod keygen;
mod keyring;
mod kv;
mod leave;
mod lock;
mod members;
mod operator;
mod regex;
mod reload;
mod semaphore;
mod services;
mod snapshot;
mod tabwriter;
mod watch;

use std::io::Write;
use std::process::ExitCode;

/// A command of the CLI: its name (possibly nested, `"kv get"`), a one-line synopsis and its
/// entry point (which gets the arguments after the command name).
struct Entry {
    name: &'static str,
    synopsis: &'static str,
    run: Option<fn(&[String]) -> i32>,
    help: fn() -> String,
}

fn entries() -> Vec<Entry> {
    vec![
        Entry {
            name: "agent",
            synopsis: "Runs a Lotse agent",
            run: None,
            help: || {
                "Usage: lotse agent [options]\n\n  Starts the Lotse agent and runs until an interrupt is received.".into()
            },
        },
        Entry {
            name: "catalog",
            synopsis: catalog::SYNOPSIS,
            run: None,
            help: catalog::help,
        },
        Entry {
            name: "catalog datacenters",
            synopsis: catalog::DATACENTERS_SYNOPSIS,
            run: Some(catalog::run_datacenters),
            help: catalog::help_datacenters,
        },
        Entry {
            name: "catalog nodes",
            synopsis: catalog::NODES_SYNOPSIS,
            run: Some(catalog::run_nodes),
            help: catalog::help_nodes,
        },
        Entry {
            name: "catalog services",
            synopsis: catalog::SERVICES_SYNOPSIS,
            run: Some(catalog::run_services),
            help: catalog::help_services,
        },
        Entry {
            name: "connect",
            synopsis: connect::SYNOPSIS,
            run: None,
            help: connect::help,
        },
        Entry {
            name: "connect proxy",
            synopsis: connect::PROXY_SYNOPSIS,
            run: Some(connect::run_proxy),
            help: connect::help_proxy,
        },
        Entry {
            name: "event",
            synopsis: event::SYNOPSIS,
            run: Some(event::run),
            help: event::help,
        },
        Entry {
            name: "gateway",
            synopsis: gateway::SYNOPSIS,
            run: Some(gateway::run),
            help: gateway::help,
        },
        Entry {
            name: "keygen",
            synopsis: keygen::SYNOPSIS,
            run: Some(keygen::run),
            help: keygen::help,
        },
        Entry {
            name: "info",
            synopsis: "Provides debugging information for operators.",
            run: Some(info::run),
            help: info::help,
        },
        Entry {
            name: "join",
            synopsis: join::SYNOPSIS,
            run: Some(join::run),
            help: join::help,
        },
        Entry {
            name: "keyring",
            synopsis: keyring::SYNOPSIS,
            run: Some(keyring::run),
            help: keyring::help,
        },
        Entry {
            name: "kv",
            synopsis: "Interact with the key-value store",
            run: None,
            help: kv_help,
        },
        Entry {
            name: "kv delete",
            synopsis: kv::DELETE_SYNOPSIS,
            run: Some(kv::run_delete),
            help: kv::help_delete,
        },
        Entry {
            name: "kv export",
            synopsis: kv::EXPORT_SYNOPSIS,
            run: Some(kv::run_export),
            help: kv::help_export,
        },
        Entry {
            name: "kv get",
            synopsis: kv::GET_SYNOPSIS,
            run: Some(kv::run_get),
            help: kv::help_get,
        },
        Entry {
            name: "kv import",
            synopsis: kv::IMPORT_SYNOPSIS,
            run: Some(kv::run_import),
            help: kv::help_import,
        },
        Entry {
            name: "kv put",
            synopsis: kv::PUT_SYNOPSIS,
            run: Some(kv::run_put),
            help: kv::help_put,
        },
        Entry {
            name: "leave",
            synopsis: leave::LEAVE_SYNOPSIS,
            run: Some(leave::run_leave),
            help: leave::help_leave,
        },
        Entry {
            name: "force-leave",
            synopsis: leave::FORCE_LEAVE_SYNOPSIS,
            run: Some(leave::run_force_leave),
            help: leave::help_force_leave,
        },
        Entry {
            name: "lock",
            synopsis: lock::SYNOPSIS,
            run: Some(lock::run),
            help: lock::help,
        },
        Entry {
            name: "members",
            synopsis: members::SYNOPSIS,
            run: Some(members::run),
            help: members::help,
        },
        Entry {
            name: "operator",
            synopsis: operator::SYNOPSIS,
            run: None,
            help: operator::help,
        },
        Entry {
            name: "operator raft",
            synopsis: operator::RAFT_SYNOPSIS,
            run: None,
            help: operator::help_raft,
        },
        Entry {
            name: "operator raft list-peers",
            synopsis: operator::LIST_PEERS_SYNOPSIS,
            run: Some(operator::run_list_peers),
            help: operator::help_list_peers,
        },
        Entry {
            name: "operator raft remove-peer",
            synopsis: operator::REMOVE_PEER_SYNOPSIS,
            run: Some(operator::run_remove_peer),
            help: operator::help_remove_peer,
        },
        Entry {
            name: "operator raft transfer-leader",
            synopsis: operator::TRANSFER_LEADER_SYNOPSIS,
            run: Some(operator::run_transfer_leader),
            help: operator::help_transfer_leader,
        },
        Entry {
            name: "operator autopilot",
            synopsis: operator::AUTOPILOT_SYNOPSIS,
            run: None,
            help: operator::help_autopilot,
        },
        Entry {
            name: "operator autopilot get-config",
            synopsis: operator::GET_CONFIG_SYNOPSIS,
            run: Some(operator::run_get_config),
            help: operator::help_get_config,
        },
        Entry {
            name: "operator autopilot set-config",
            synopsis: operator::SET_CONFIG_SYNOPSIS,
            run: Some(operator::run_set_config),
            help: operator::help_set_config,
        },
        Entry {
            name: "operator autopilot state",
            synopsis: operator::STATE_SYNOPSIS,
            run: Some(operator::run_state),
            help: operator::help_state,
        },
        Entry {
            name: "reload",
            synopsis: reload::SYNOPSIS,
            run: Some(reload::run),
            help: reload::help,
        },
        Entry {
            name: "services",
            synopsis: services::SYNOPSIS,
            run: None,
            help: services::help,
        },
        Entry {
            name: "services deregister",
            synopsis: services::DEREGISTER_SYNOPSIS,
            run: Some(services::run_deregister),
            help: services::help_deregister,
        },
        Entry {
            name: "services register",
            synopsis: services::REGISTER_SYNOPSIS,
            run: Some(services::run_register),
            help: services::help_register,
        },
        Entry {
            name: "snapshot",
            synopsis: snapshot::SYNOPSIS,
            run: None,
            help: snapshot::help,
        },
        Entry {
            name: "snapshot inspect",
            synopsis: snapshot::INSPECT_SYNOPSIS,
            run: Some(snapshot::run_inspect),
            help: snapshot::help_inspect,
        },
        Entry {
            name: "snapshot restore",
            synopsis: snapshot::RESTORE_SYNOPSIS,
            run: Some(snapshot::run_restore),
            help: snapshot::help_restore,
        },
        Entry {
            name: "snapshot save",
            synopsis: snapshot::SAVE_SYNOPSIS,
            run: Some(snapshot::run_save),
            help: snapshot::help_save,
        },
        Entry {
            name: "version",
            synopsis: "Prints the Lotse version",
            run: Some(run_version),
            help: version_help,
        },
        Entry {
            name: "watch",
            synopsis: watch::SYNOPSIS,
            run: Some(watch::run),
            help: watch::help,
        },
    ]
}

const KV_HELP: &str = "Usage: lotse kv <subcommand> [options] [args]

  This command has subcommands for interacting with Lotse's key-value
  store. Here are some simple examples, and more detailed examples are
  available in the subcommands or the documentation.

  Create or update the key named \"redis/config/connections\" with the value \"5\":

      $ lotse kv put redis/config/connections 5

  Read this value back:

      $ lotse kv get redis/config/connections

  Or get detailed key information:

      $ lotse kv get -detailed redis/config/connections

  Finally, delete the key:

      $ lotse kv delete redis/config/connections

  For more examples, ask for subcommand help or view the documentation.";

fn kv_help() -> String {
    KV_HELP.to_string()
}

/// Entry point for every subcommand but `agent`; `args` excludes the program name.
pub fn main(args: &[String]) -> ExitCode {
    ExitCode::from(exit_byte(run(args)))
}

fn exit_byte(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

fn run(args: &[String]) -> i32 {
    // `-v`, `-version` and `--version` before the command: print the version.
    if let Some(first) = args.first() {
        if matches!(first.as_str(), "-v" | "-version" | "--version") {
            return run_version(&[]);
        }
    }
    let before_dashes = args.iter().take_while(|a| a.as_str() != "--");
    let is_help = before_dashes
        .clone()
        .any(|a| matches!(a.as_str(), "-h" | "-help" | "--help"));

    // Top-level flags before the command name.
    let top_flags: Vec<&String> = args
        .iter()
        .take_while(|a| a.starts_with('-') && a.as_str() != "--")
        .collect();
    let rest = &args[top_flags.len()..];
    let top_flags: Vec<&String> = top_flags
        .into_iter()
        .filter(|a| !matches!(a.as_str(), "-h" | "-help" | "--help"))
        .collect();

    let entries = entries();
    if rest.is_empty() || rest[0] == "help" && rest.len() == 1 {
        let wants_help = is_help || rest.first().map(String::as_str) == Some("help");
        eprintln!("{}", usage(&entries, ""));
        return if wants_help && top_flags.is_empty() {
            0
        } else {
            127
        };
    }

    // Longest matching (possibly nested) command name.
    let mut found: Option<(&Entry, usize)> = None;
    for depth in (1..=rest.len().min(3)).rev() {
        let name = rest[..depth].join(" ");
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            found = Some((e, depth));
            break;
        }
    }
    let Some((entry, depth)) = found else {
        eprintln!("{}", usage(&entries, ""));
        return 127;
    };
    let sub_args = &rest[depth..];

    if is_help {
        eprintln!("{}", command_help(&entries, entry));
        return 0;
    }
    if !top_flags.is_empty() {
        eprintln!(
            "Invalid flags before the subcommand. If these flags are for\n\
             the subcommand, please put them after the subcommand.\n"
        );
        eprintln!("{}", command_help(&entries, entry));
        return 1;
    }
    match entry.run {
        Some(run) => {
            let code = run(sub_args);
            let _ = std::io::stdout().flush();
            code
        }
        None => {
            // A parent command such as `kv` (show its help and subcommands), or `agent`, which
            // main.rs dispatches itself unless something came before it.
            eprintln!("{}", command_help(&entries, entry));
            1
        }
    }
}

/// The command list, like mitchellh/cli's basic help function; `prefix` selects nested ones.
fn usage(entries: &[Entry], prefix: &str) -> String {
    let mut names: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            if prefix.is_empty() {
                !e.name.contains(' ')
            } else {
                e.name
                    .strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix(' '))
                    .is_some_and(|r| !r.contains(' '))
            }
        })
        .collect();
    // Sorted by name, as mitchellh/cli prints them.
    names.sort_by_key(|e| e.name);
    let width = names.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let mut out = String::from(
        "Usage: lotse [--version] [--help] <command> [<args>]\n\nAvailable commands are:\n",
    );
    for e in names {
        out.push_str(&format!(
            "    {:<width$}    {}\n",
            e.name,
            e.synopsis,
            width = width
        ));
    }
    out
}

/// A command's help plus, for a parent command, its subcommands.
fn command_help(entries: &[Entry], entry: &Entry) -> String {
    let mut out = (entry.help)().trim().to_string();
    let prefix = format!("{} ", entry.name);
    let subs: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.name
                .strip_prefix(&prefix)
                .is_some_and(|r| !r.contains(' '))
        })
        .collect();
    if !subs.is_empty() {
        let width = subs.iter().map(|e| e.name.len()).max().unwrap_or(0) - prefix.len();
        out.push_str("\n\nSubcommands:");
        for e in subs {
            let name = &e.name[prefix.len()..];
            out.push_str(&format!(
                "\n    {:<width$}    {}",
                name,
                e.synopsis,
                width = width
            ));
        }
    }
    out
}

// ---- version ----------------------------------------------------------------------------------

/// RPC protocol versions, as consul reports them.
const PROTOCOL_DEFAULT: u32 = 2;
const PROTOCOL_MIN: u32 = 2;
const PROTOCOL_MAX: u32 = 3;

fn version_text() -> String {
    let mut out = format!("Lotse v{}\n", env!("CARGO_PKG_VERSION"));
    let supplement = if PROTOCOL_DEFAULT < PROTOCOL_MAX {
        format!(" (agent will automatically use protocol >{PROTOCOL_DEFAULT} when speaking to compatible agents)")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "Protocol {PROTOCOL_DEFAULT} spoken by default, understands {PROTOCOL_MIN} to {PROTOCOL_MAX}{supplement}\n"
    ));
    out
}

fn version_json() -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Rpc {
        default: u32,
        min: u32,
        max: u32,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Info {
        version: &'static str,
        revision: &'static str,
        prerelease: &'static str,
        #[serde(rename = "RPC")]
        rpc: Rpc,
    }
    let info = Info {
        version: env!("CARGO_PKG_VERSION"),
        revision: "",
        prerelease: "",
        rpc: Rpc {
            default: PROTOCOL_DEFAULT,
            min: PROTOCOL_MIN,
            max: PROTOCOL_MAX,
        },
    };
    flags::json_indent(&info, b"   ")
}

#[derive(clap::Parser, Debug)]
#[command(name = "version", disable_help_flag = true)]
struct VersionArgs {
    /// Output format {pretty|json}
    #[arg(long, default_value = "pretty", value_name = "string")]
    format: String,
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    args: Vec<String>,
}

fn version_help() -> String {
    flags::usage::<VersionArgs>("Usage: lotse version [options]")
}

fn run_version(args: &[String]) -> i32 {
    let parsed: VersionArgs = match flags::parse(args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match parsed.format.as_str() {
        "pretty" => {
            // consul's UI.Output adds a newline after the text, which itself ends in one.
            println!("{}", version_text());
            0
        }
        "json" => {
            println!("{}", version_json());
            0
        }
        other => {
            eprintln!("Unknown format: {other}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn version_has_consul_shape() {
        let t = version_text();
        assert!(t.starts_with(&format!("Lotse v{}\n", env!("CARGO_PKG_VERSION"))));
        assert!(t.contains(
            "Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)\n"
        ));
    }

    #[test]
    fn usage_lists_top_level_commands_only() {
        let u = usage(&entries(), "");
        assert!(u.starts_with("Usage: lotse [--version] [--help] <command> [<args>]"));
        for name in ["agent", "info", "kv", "lock", "members", "version"] {
            assert!(
                u.contains(&format!("    {name} ")),
                "{name} missing from {u}"
            );
        }
        assert!(!u.contains("kv get"));
    }

    #[test]
    fn exit_codes_of_the_frame() {
        assert_eq!(run(&[]), 127);
        assert_eq!(run(&argv(&["-h"])), 0);
        assert_eq!(run(&argv(&["--help"])), 0);
        assert_eq!(run(&argv(&["help"])), 0);
        assert_eq!(run(&argv(&["no-such-command"])), 127);
        assert_eq!(run(&argv(&["kv"])), 1);
        assert_eq!(run(&argv(&["kv", "get", "-h"])), 0);
        assert_eq!(run(&argv(&["version"])), 0);
        assert_eq!(run(&argv(&["-v"])), 0);
        assert_eq!(run(&argv(&["version", "-format=bogus"])), 1);
    }

    #[test]
    fn kv_help_lists_subcommands() {
        let e = entries();
        let kv = e.iter().find(|e| e.name == "kv").unwrap();
        let h = command_help(&e, kv);
        assert!(h.contains("Subcommands:\n    delete    "), "{h}");
        assert!(h.contains("\n    put       "), "{h}");
    }
}
