//! Consul's checks on what a registration stores (`NodeService.Validate`, `servicePreApply`,
//! `nodePreApply`, `validateMetadata`), shared by `PUT /v1/catalog/register` and the catalog
//! operations of `/v1/txn`. Each returns Consul's text; the caller picks the status.

use lotse_core::catalog::Service;
use serde_json::Value;

/// hashicorp/go-uuid's `ParseUUID`, with its error texts. It works on bytes, as Go does, so a
/// non-ASCII ID is reported by its first byte (`hex.InvalidByteError`).
fn parse_uuid(id: &str) -> Result<(), String> {
    let b = id.as_bytes();
    if b.len() != 36 {
        return Err("uuid string is wrong length".into());
    }
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    if DASHES.iter().any(|&i| b[i] != b'-') {
        return Err("uuid is improperly formatted".into());
    }
    let bad = b
        .iter()
        .enumerate()
        .find(|(i, c)| !DASHES.contains(i) && !c.is_ascii_hexdigit());
    match bad {
        Some((_, &c)) => Err(format!("encoding/hex: invalid byte: {}", go_unicode(c))),
        None => Ok(()),
    }
}

/// Go's `%#U` of a byte: `U+0067 'g'`, without the character when Go would not print it.
fn go_unicode(b: u8) -> String {
    let c = char::from(b);
    let printable = c.is_ascii_graphic() || c == ' ' || (b >= 0xA1 && b != 0xAD);
    if printable {
        format!("U+{b:04X} '{c}'")
    } else {
        format!("U+{b:04X}")
    }
}

/// go-multierror's text for a list of errors.
fn multierror(errors: &[String]) -> String {
    if errors.len() == 1 {
        return format!("1 error occurred:\n\t* {}\n\n", errors[0]);
    }
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} errors occurred:\n\t{}\n\n",
        errors.len(),
        points.join("\n\t")
    )
}

const GATEWAYS: [&str; 4] = [
    "mesh-gateway",
    "terminating-gateway",
    "ingress-gateway",
    "api-gateway",
];

/// Consul's `NodeService.Validate()` for what the catalog stores of a service (upstream
/// and expose-path details, kept as given, are not checked).
fn validate_service(s: &Service) -> Result<(), String> {
    let proxy: Value = serde_json::from_str(&s.proxy_json).unwrap_or(Value::Null);
    let text = |f: &str| {
        proxy
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let native = serde_json::from_str::<Value>(&s.connect_json)
        .ok()
        .and_then(|c| c.get("Native").and_then(Value::as_bool))
        .unwrap_or(false);
    let mut errors = Vec::new();
    let kind = s.kind.as_str();
    if kind == "connect-proxy" {
        if s.port == 0 && s.socket_path.is_empty() {
            errors.push(format!("Port or SocketPath must be set for a {kind}"));
        }
        let dest = text("DestinationServiceName");
        if dest.trim().is_empty() {
            errors.push(
                "Proxy.DestinationServiceName must be non-empty for Connect proxy services".into(),
            );
        }
        if dest == "*" {
            errors.push(
                "Proxy.DestinationServiceName must not be a wildcard for Connect proxy services"
                    .into(),
            );
        }
        if native {
            errors.push("A Proxy cannot also be Connect Native, only typical services".into());
        }
    }
    if GATEWAYS.contains(&kind) {
        if s.port == 0 && kind != "ingress-gateway" && kind != "api-gateway" {
            errors.push(format!("Port must be non-zero for a {kind}"));
        }
        for f in [
            "DestinationServiceName",
            "DestinationServiceID",
            "LocalServiceAddress",
            "LocalServiceSocketPath",
        ] {
            if !text(f).is_empty() {
                errors.push(format!(
                    "The Proxy.{f} configuration is invalid for a {kind}"
                ));
            }
        }
        if proxy
            .get("LocalServicePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            != 0
        {
            errors.push(format!(
                "The Proxy.LocalServicePort configuration is invalid for a {kind}"
            ));
        }
        if proxy
            .get("Upstreams")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty())
        {
            errors.push(format!(
                "The Proxy.Upstreams configuration is invalid for a {kind}"
            ));
        }
    }
    if native && s.port == 0 && s.socket_path.is_empty() {
        errors.push("Port or SocketPath must be set for a Connect native service.".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errors))
    }
}

/// Consul's `validateMetadata` for service meta (the `consul-` prefix is reserved).
pub(crate) fn validate_meta(s: &Service) -> Result<(), String> {
    if s.meta.len() > 64 {
        return Err("Node metadata cannot contain more than 64 key/value pairs".into());
    }
    for (k, v) in &s.meta {
        let why = if k.is_empty() {
            Some("Key cannot be blank".to_string())
        } else if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Some("Key contains invalid characters".to_string())
        } else if k.len() > 128 {
            Some("Key is too long (limit: 128 characters)".to_string())
        } else if k.starts_with("consul-")
            && !(s.kind == "mesh-gateway" && k == "consul-wan-federation")
        {
            Some("Key prefix 'consul-' is reserved for internal use".to_string())
        } else if v.len() > 512 {
            Some("Value is too long (limit: 512 characters)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(format!("Couldn't load metadata pair ('{k}', '{v}'): {why}"));
        }
    }
    Ok(())
}

/// Consul's `servicePreApply`: validation, the ID defaulted to the name, the address checked.
pub(crate) fn service_pre_apply(s: &mut Service) -> Result<(), String> {
    validate_service(s)?;
    if s.id.is_empty() && !s.name.is_empty() {
        s.id = s.name.clone();
    }
    if !s.id.is_empty() && s.name.is_empty() {
        return Err(
            "Must provide service name (Service.Service) when service ID is provided".into(),
        );
    }
    if matches!(s.address.as_str(), "0.0.0.0" | "::" | "[::]") {
        return Err("Invalid service address".into());
    }
    Ok(())
}

/// Consul's `nodePreApply`.
pub(crate) fn node_pre_apply(name: &str, id: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Must provide node".into());
    }
    if !id.is_empty() {
        parse_uuid(id).map_err(|e| format!("Bad node ID: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_checked_with_go_uuid_texts() {
        assert!(parse_uuid("40e4a748-2192-161a-0510-9bf59fe950b5").is_ok());
        assert_eq!(
            parse_uuid("abc").unwrap_err(),
            "uuid string is wrong length"
        );
        assert_eq!(
            parse_uuid("40e4a748x2192-161a-0510-9bf59fe950b5").unwrap_err(),
            "uuid is improperly formatted"
        );
        assert_eq!(
            parse_uuid("g0e4a748-2192-161a-0510-9bf59fe950b5").unwrap_err(),
            "encoding/hex: invalid byte: U+0067 'g'"
        );
        // Non-ASCII: 36 bytes, reported by the first byte of the character, never a panic.
        assert_eq!(
            parse_uuid("é0e4a74-2192-161a-0510-9bf59fe950b5").unwrap_err(),
            "encoding/hex: invalid byte: U+00C3 'Ã'"
        );
        assert_eq!(
            parse_uuid("0e4a748é-2192-161a-0510-9bf59fe950b5").unwrap_err(),
            "uuid string is wrong length"
        );
        assert_eq!(
            parse_uuid("0e4a7é48-2192-161a-0510-9bf59fe950b").unwrap_err(),
            "uuid is improperly formatted"
        );
    }

    #[test]
    fn connect_proxies_need_a_port_and_a_destination() {
        let s = Service {
            id: "p".into(),
            name: "p".into(),
            kind: "connect-proxy".into(),
            ..Service::default()
        };
        assert_eq!(
            validate_service(&s).unwrap_err(),
            "2 errors occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\t\
             * Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n"
        );
        let ok = Service {
            port: 8080,
            proxy_json: r#"{"DestinationServiceName":"web","Mode":""}"#.into(),
            ..s
        };
        assert!(validate_service(&ok).is_ok());
    }

    #[test]
    fn service_ids_default_to_the_name_and_any_addresses_are_refused() {
        let mut s = Service {
            name: "web".into(),
            ..Service::default()
        };
        service_pre_apply(&mut s).unwrap();
        assert_eq!(s.id, "web");
        let mut s = Service {
            id: "web1".into(),
            ..Service::default()
        };
        assert_eq!(
            service_pre_apply(&mut s).unwrap_err(),
            "Must provide service name (Service.Service) when service ID is provided"
        );
        let mut s = Service {
            name: "web".into(),
            address: "0.0.0.0".into(),
            ..Service::default()
        };
        assert_eq!(
            service_pre_apply(&mut s).unwrap_err(),
            "Invalid service address"
        );
    }

    #[test]
    fn service_meta_keys_follow_consuls_rules() {
        let with = |k: &str| Service {
            meta: [(k.to_string(), "v".to_string())].into_iter().collect(),
            ..Service::default()
        };
        assert!(validate_meta(&with("ok_key-1")).is_ok());
        assert_eq!(
            validate_meta(&with("bad key")).unwrap_err(),
            "Couldn't load metadata pair ('bad key', 'v'): Key contains invalid characters"
        );
        assert!(validate_meta(&with("consul-x"))
            .unwrap_err()
            .ends_with("Key prefix 'consul-' is reserved for internal use"));
    }
}
