//! `lotse services register`: one service from flags, or every service of the given definition
//! files, each sent to `PUT /v1/agent/service/register`.

use std::collections::BTreeMap;

use clap::{ArgAction, Parser};

use super::super::catalog::key_values;
use super::super::flags::{self, HttpFlags};
use super::super::http::Query;
use super::{go_quote, services_and_client, Registration, ServiceAddress};

#[derive(Parser, Debug)]
#[command(name = "services register")]
struct RegisterArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Address of the service to register for arg-based registration.
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    address: String,
    /// ID of the service to register for arg-based registration. If this isn't set, it will
    /// default to the -name value.
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    id: String,
    /// The services 'kind'
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    kind: String,
    /// Metadata to set on the service, formatted as key=value. This flag may be specified
    /// multiple times to set multiple meta fields.
    #[arg(long, value_name = "value", action = ArgAction::Append, allow_hyphen_values = true)]
    meta: Vec<String>,
    /// Name of the service to register for arg-based registration.
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    name: String,
    /// Port of the service to register for arg-based registration.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "int",
        allow_hyphen_values = true
    )]
    port: i64,
    /// Path to the Unix domain socket to register for arg-based registration (conflicts with
    /// address and port).
    #[arg(
        long,
        default_value = "",
        value_name = "string",
        allow_hyphen_values = true
    )]
    socket: String,
    /// Tag to add to the service. This flag can be specified multiple times to set multiple
    /// tags.
    #[arg(long, value_name = "value", action = ArgAction::Append, allow_hyphen_values = true)]
    tag: Vec<String>,
    /// Tagged address to set on the service, formatted as key=value. This flag may be
    /// specified multiple times to set multiple addresses.
    #[arg(long = "tagged-address", value_name = "value", action = ArgAction::Append,
          allow_hyphen_values = true)]
    tagged_address: Vec<String>,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help_register() -> String {
    flags::usage::<RegisterArgs>(
        "Usage: lotse services register [options] [FILE...]

  Register one or more services using the local agent API. Services can
  be registered from standard Lotse configuration files (HCL or JSON) or
  using flags. The service is registered and the command returns. The caller
  must remember to call \"lotse services deregister\" or a similar API to
  deregister the service when complete.

      $ lotse services register web.json

  Additional flags and more advanced use cases are detailed below.",
    )
}

/// Go's `net.SplitHostPort` and `strconv.Atoi`, as the API's `ParseServiceAddr` uses them for a
/// `-tagged-address` value (`10.0.0.1:80`, `[::1]:80`).
pub fn parse_service_addr(hostport: &str) -> Result<ServiceAddress, String> {
    let addr_err = |why: &str| format!("address {hostport}: {why}");
    let Some(i) = hostport.rfind(':') else {
        return Err(addr_err("missing port in address"));
    };
    let (host, j, k) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(addr_err("missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(addr_err("missing port in address"));
        } else if end + 1 != i {
            if hostport.as_bytes()[end + 1] == b':' {
                return Err(addr_err("too many colons in address"));
            }
            return Err(addr_err("missing port in address"));
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return Err(addr_err("too many colons in address"));
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') {
        return Err(addr_err("unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(addr_err("unexpected ']' in address"));
    }
    let port_text = &hostport[i + 1..];
    let port = port_text.parse::<i64>().map_err(|e| {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        let why = match e.kind() {
            PosOverflow | NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {}: {why}", go_quote(port_text))
    })?;
    Ok(ServiceAddress {
        address: host.to_string(),
        port,
    })
}

/// The registration the flags describe (its ID left empty when not given: the agent defaults
/// it to the name).
fn from_flags(
    a: &RegisterArgs,
    meta: BTreeMap<String, String>,
    tagged: BTreeMap<String, ServiceAddress>,
) -> Registration {
    Registration {
        kind: a.kind.clone(),
        id: a.id.clone(),
        name: a.name.clone(),
        tags: a.tag.clone(),
        port: a.port,
        address: a.address.clone(),
        socket_path: a.socket.clone(),
        tagged_addresses: tagged,
        meta,
        ..Default::default()
    }
}

pub fn run_register(args: &[String]) -> i32 {
    let a: RegisterArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let (meta, tagged) = match (
        key_values("meta", &a.meta),
        key_values("tagged-address", &a.tagged_address),
    ) {
        (Ok(m), Ok(t)) => (m, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let mut tagged_addrs = BTreeMap::new();
    for (k, v) in tagged {
        match parse_service_addr(&v) {
            Ok(addr) => {
                tagged_addrs.insert(k, addr);
            }
            Err(e) => return flags::fail("Invalid Tagged Address", e),
        }
    }
    let by_flags = (!a.name.is_empty()).then(|| from_flags(&a, meta, tagged_addrs));
    let (services, client) =
        match services_and_client("registration", "flags", &a.http, &a.args, by_flags) {
            Ok(v) => v,
            Err(c) => return c,
        };
    for svc in &services {
        let body = serde_json::to_vec(svc).expect("a registration serializes");
        if let Err(e) = client.request_ok(
            "PUT",
            "/v1/agent/service/register",
            &Query::write(),
            Some(&body),
        ) {
            let context = format!("Error registering service {}", go_quote(&svc.name));
            return flags::fail(&context, e);
        }
        println!("Registered service: {}", svc.name);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::argv;

    #[test]
    fn service_addresses_like_go() {
        for (good, host, port) in [
            ("127.0.0.1:1234", "127.0.0.1", 1234),
            ("[2001:db8::12]:1234", "2001:db8::12", 1234),
            ("host:0", "host", 0),
        ] {
            let want = ServiceAddress {
                address: host.into(),
                port,
            };
            assert_eq!(parse_service_addr(good).unwrap(), want, "{good}");
        }
        for (bad, error) in [
            ("127.0.0.1", "address 127.0.0.1: missing port in address"),
            ("::1:80", "address ::1:80: too many colons in address"),
            ("[::1]80", "address [::1]80: missing port in address"),
            ("[::1:80", "address [::1:80: missing ']' in address"),
            ("a:b", "strconv.Atoi: parsing \"b\": invalid syntax"),
            ("a:", "strconv.Atoi: parsing \"\": invalid syntax"),
        ] {
            assert_eq!(parse_service_addr(bad).unwrap_err(), error, "{bad}");
        }
    }

    #[test]
    fn flags_make_a_minimal_body() {
        let a: RegisterArgs = flags::parse(&argv(&[
            "-name=web",
            "-port",
            "8080",
            "-tag",
            "v1",
            "-tag=primary",
            "-address",
            "10.0.0.5",
        ]))
        .unwrap();
        let body = serde_json::to_string(&from_flags(&a, BTreeMap::new(), BTreeMap::new()));
        assert_eq!(
            body.unwrap(),
            r#"{"Name":"web","Tags":["v1","primary"],"Port":8080,"Address":"10.0.0.5"}"#
        );
    }

    #[test]
    fn validation_errors_exit_1_before_any_request() {
        // An unreachable agent: had a request been made the error would differ, but the exit
        // code must come from validation alone.
        let addr = "-http-addr=127.0.0.1:1";
        for args in [
            &[addr][..],
            &[addr, "-name", "web", "web.json"],
            &[addr, "-name=web", "-meta", "novalue"],
            &[addr, "-name=web", "-tagged-address", "lan=1.2.3.4"],
            &[addr, "-name=web", "-port=abc"],
            &[addr, "/no/such/file.json"],
            &[addr, "-name=web"],
        ] {
            assert_eq!(run_register(&argv(args)), 1, "{args:?}");
        }
    }
}
