//! `lotse connect ...`: the data plane commands. `connect proxy` runs Lotse's built-in proxy
//! (crate `lotse-proxy`) as a sidecar for a registered service (`-sidecar-for`) or ad hoc
//! (`-service NAME -upstream NAME:PORT`), in the foreground until interrupted.

mod log_writer;
mod proxy;
mod sidecar;

pub use proxy::{help_proxy, init_logging, run_proxy, serve, Reload};

pub const SYNOPSIS: &str = "Interact with Lotse Connect";
pub const PROXY_SYNOPSIS: &str = "Runs the built-in Connect proxy (sidecar)";

const HELP: &str = "Usage: lotse connect <subcommand> [options] [args]

  This command has subcommands for the service mesh's data plane. Lotse runs
  its proxy itself: no separate Envoy binary is needed.

  Run a sidecar for a registered service (its sidecar_service's upstreams):

      $ lotse connect proxy -sidecar-for web-1

  Run an ad hoc proxy with one upstream on 127.0.0.1:9191:

      $ lotse connect proxy -service web -upstream db:9191

  For more examples, ask for subcommand help.";

pub fn help() -> String {
    HELP.to_string()
}
