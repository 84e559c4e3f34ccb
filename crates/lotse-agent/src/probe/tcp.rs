//! TCP probe, and the dialer that the HTTP, gRPC and H2PING probes share.
//!
//! Consul's `CheckTCP`: passing when a connection opens within the timeout, with output
//! `TCP connect <addr>: Success`; otherwise critical with Go's dial error
//! (`dial tcp 127.0.0.1:1: connect: connection refused`, `dial tcp …: i/o timeout`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::consul_text::{io_error, lookup_error};
use super::{effective_timeout, ProbeResult, DEFAULT_TIMEOUT};

/// Opens (and at once closes) a TCP connection to `addr` (`host:port`).
pub async fn tcp(addr: &str, timeout: Duration) -> ProbeResult {
    let deadline = Instant::now() + effective_timeout(timeout, DEFAULT_TIMEOUT);
    match dial(addr, deadline).await {
        Ok(_stream) => ProbeResult::passing(format!("TCP connect {addr}: Success")),
        Err(e) => ProbeResult::critical(e),
    }
}

/// Connects to `addr` (`host:port`) before `deadline`, trying each resolved address in turn
/// as Go's dialer does. The error is worded as Go's `net.OpError`.
pub(super) async fn dial(addr: &str, deadline: Instant) -> Result<TcpStream, String> {
    let addrs = resolve("tcp", addr, deadline).await?;
    let mut last = format!("dial tcp {addr}: no address to dial");
    for sa in addrs {
        match timeout_at(deadline, TcpStream::connect(sa)).await {
            Err(_elapsed) => return Err(format!("dial tcp {sa}: i/o timeout")),
            Ok(Ok(stream)) => {
                // Probes send one small request and wait: Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = format!("dial tcp {sa}: connect: {}", io_error(&e)),
        }
    }
    Err(last)
}

/// Resolves `host:port` before `deadline`; `net` (`tcp`/`udp`) only words the errors.
pub(super) async fn resolve(
    net: &str,
    addr: &str,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = split_host_port(addr).map_err(|e| format!("dial {net}: {e}"))?;
    match timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
        Err(_elapsed) => Err(format!("dial {net}: lookup {host}: i/o timeout")),
        Ok(Err(e)) => Err(format!("dial {net}: lookup {host}: {}", lookup_error(&e))),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(format!("dial {net}: lookup {host}: no such host"));
            }
            Ok(addrs)
        }
    }
}

/// Go's `net.SplitHostPort` for a numeric port: `host:80`, `[::1]:80`.
pub(super) fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {addr}: missing ']' in address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("address {addr}: missing port in address"))?;
        (host, port)
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("address {addr}: missing port in address"))?;
        if host.contains(':') {
            return Err(format!("address {addr}: too many colons in address"));
        }
        (host, port)
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("address {addr}: invalid port"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn splits_host_and_port_as_go_does() {
        assert_eq!(split_host_port("127.0.0.1:80"), Ok(("127.0.0.1", 80)));
        assert_eq!(split_host_port("[::1]:8080"), Ok(("::1", 8080)));
        assert_eq!(split_host_port("localhost:0"), Ok(("localhost", 0)));
        assert!(split_host_port("localhost")
            .unwrap_err()
            .contains("missing port"));
        assert!(split_host_port("::1:80")
            .unwrap_err()
            .contains("too many colons"));
        assert!(split_host_port("h:http")
            .unwrap_err()
            .contains("invalid port"));
    }
}
