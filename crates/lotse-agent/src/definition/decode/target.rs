//! Probe targets Lotse can dial, checked at registration (a departure: Consul registers any
//! text and lets every probe fail): an HTTP check's URL, a TCP/UDP/H2PING check's address.

/// `http://` or `https://` (any case), then a non-empty host (userinfo allowed, a bracketed
/// IPv6 literal allowed, a port, when given, numeric).
pub(super) fn is_http_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return false,
            },
            None => return false,
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    !host.is_empty()
        && !host.contains(char::is_whitespace)
        && port.is_none_or(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Go's `net.SplitHostPort` with a numeric port (an empty host is the local machine, as
/// Go dials it). `what` names the field in the refusal.
pub(super) fn host_port(what: &str, addr: &str) -> Result<String, String> {
    let invalid = || format!("{what} address {addr} is invalid");
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
        (host, after.strip_prefix(':').ok_or_else(invalid)?)
    } else {
        let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
        if host.contains(':') {
            return Err(invalid());
        }
        (host, port)
    };
    let numeric = !port.is_empty() && port.chars().all(|c| c.is_ascii_digit());
    if host.contains(['[', ']']) || !numeric || port.parse::<u16>().is_err() {
        return Err(invalid());
    }
    Ok(addr.to_string())
}
