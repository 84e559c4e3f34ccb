//! Go-style flags on top of clap.
//!
//! Consul's CLI uses Go's `flag` package: `-flag value`, `-flag=value` and `--flag value` all
//! mean the same. clap only knows `--flag`, so before parsing we rewrite every argument that
//! names one of the command's known long flags with a single dash into its double-dash form.
//! Only known names are rewritten, so a child command's own arguments (`lotse lock p ls -la`)
//! and negative numbers (`-dns-port -1`) pass through untouched; `--` ends the rewriting.

use std::collections::HashSet;

/// Rewrites `-name[=v]` into `--name[=v]` for every long flag `name` that `cmd` declares.
pub fn normalize(cmd: &clap::Command, args: &[String]) -> Vec<String> {
    let known: HashSet<&str> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .chain(["help", "version"])
        .collect();
    let mut out = Vec::with_capacity(args.len());
    let mut rewriting = true;
    for arg in args {
        if arg == "--" {
            rewriting = false;
        }
        out.push(if rewriting {
            rewrite(&known, arg)
        } else {
            arg.clone()
        });
    }
    out
}

fn rewrite(known: &HashSet<&str>, arg: &str) -> String {
    let Some(rest) = arg.strip_prefix('-') else {
        return arg.to_string();
    };
    if rest.starts_with('-') {
        return arg.to_string();
    }
    let name = rest.split_once('=').map_or(rest, |(n, _)| n);
    if known.contains(name) {
        format!("-{arg}")
    } else {
        arg.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn cmd() -> Command {
        Command::new("t")
            .arg(Arg::new("dev").long("dev").action(ArgAction::SetTrue))
            .arg(Arg::new("dns-port").long("dns-port"))
            .arg(Arg::new("rest").num_args(0..).trailing_var_arg(true))
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn single_dash_known_flags_become_double_dash() {
        let out = normalize(
            &cmd(),
            &strings(&["-dev", "-dns-port=1", "--dns-port", "-1"]),
        );
        assert_eq!(out, strings(&["--dev", "--dns-port=1", "--dns-port", "-1"]));
    }

    #[test]
    fn unknown_flags_and_values_after_double_dash_pass_through() {
        let out = normalize(&cmd(), &strings(&["ls", "-la", "--", "-dev"]));
        assert_eq!(out, strings(&["ls", "-la", "--", "-dev"]));
    }
}
