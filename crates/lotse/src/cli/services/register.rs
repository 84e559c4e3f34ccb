//! `lotse services register`: one service from flags, or every service of the given definition
//! files, each sent to `PUT /v1/agent/service/register`.

use std::collections::BTreeMap;

use clap::{ArgAction, Parser};

use super::super::catalog::key_values;
use super::super::flags::{self, HttpFlags};
use super::super::http::Query;
use super::definition::services_from_files;
use super::{go_quote, Registration, ServiceAddress};

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
            Err(e) => {
                eprintln!("Invalid Tagged Address: {e}");
                return 1;
            }
        }
    }
    let mut services = vec![from_flags(&a, meta, tagged_addrs)];

    if a.args.is_empty() && a.name.is_empty() {
        eprintln!("Service registration requires at least one argument or flags.");
        return 1;
    } else if !a.args.is_empty() && !a.name.is_empty() {
        // consul's text names -id although the check is on -name.
        eprintln!("Service registration requires arguments or -id, not both.");
        return 1;
    }
    if !a.args.is_empty() {
        match services_from_files(&a.args) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprintln!("{w}");
                }
                services = loaded.services;
            }
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    }

    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    for svc in &services {
        let body = serde_json::to_vec(svc).expect("a registration serializes");
        if let Err(e) = client.request_ok(
            "PUT",
            "/v1/agent/service/register",
            &Query::write(),
            Some(&body),
        ) {
            eprintln!("Error registering service {}: {e}", go_quote(&svc.name));
            return 1;
        }
        println!("Registered service: {}", svc.name);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn service_addresses_like_go() {
        assert_eq!(
            parse_service_addr("127.0.0.1:1234").unwrap(),
            ServiceAddress {
                address: "127.0.0.1".into(),
                port: 1234
            }
        );
        assert_eq!(
            parse_service_addr("[2001:db8::12]:1234").unwrap(),
            ServiceAddress {
                address: "2001:db8::12".into(),
                port: 1234
            }
        );
        assert_eq!(parse_service_addr("host:0").unwrap().port, 0);
        assert_eq!(
            parse_service_addr("127.0.0.1").unwrap_err(),
            "address 127.0.0.1: missing port in address"
        );
        assert_eq!(
            parse_service_addr("::1:80").unwrap_err(),
            "address ::1:80: too many colons in address"
        );
        assert_eq!(
            parse_service_addr("[::1]80").unwrap_err(),
            "address [::1]80: missing port in address"
        );
        assert_eq!(
            parse_service_addr("[::1:80").unwrap_err(),
            "address [::1:80: missing ']' in address"
        );
        assert_eq!(
            parse_service_addr("a:b").unwrap_err(),
            "strconv.Atoi: parsing \"b\": invalid syntax"
        );
        assert_eq!(
            parse_service_addr("a:").unwrap_err(),
            "strconv.Atoi: parsing \"\": invalid syntax"
        );
    }

    #[test]
    fn flags_make_a_minimal_body() {
        let a: RegisterArgs = flags::parse(&s(&[
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
        assert_eq!(run_register(&s(&[addr])), 1);
        assert_eq!(run_register(&s(&[addr, "-name", "web", "web.json"])), 1);
        assert_eq!(
            run_register(&s(&[addr, "-name=web", "-meta", "novalue"])),
            1
        );
        assert_eq!(
            run_register(&s(&[addr, "-name=web", "-tagged-address", "lan=1.2.3.4"])),
            1
        );
        assert_eq!(run_register(&s(&[addr, "-name=web", "-port=abc"])), 1);
        assert_eq!(run_register(&s(&[addr, "/no/such/file.json"])), 1);
        assert_eq!(run_register(&s(&[addr, "-name=web"])), 1);
    }
}
