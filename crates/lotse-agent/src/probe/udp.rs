//! UDP probe: Consul's `CheckUDP`.
//!
//! Consul "dials" the address (for UDP that only binds and connects a socket), writes its
//! check message (which the agent never sets: an empty datagram) and reads one byte.
//! A reply, or no reply at all, is passing (`UDP connect <addr>: Success`): most UDP
//! services answer nothing to a datagram they do not understand. An error is critical;
//! in practice that is the ICMP port-unreachable the kernel turns into `connection refused`
//! on a connected socket, i.e. nothing listens on the port.
//!
//! Consul's read has no deadline (it waits for a reply or an ICMP error for ever); here the
//! check's timeout bounds it, and reaching it means "no reply", i.e. passing.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{timeout_at, Instant};

use super::consul_text::io_error;
use super::tcp::resolve;
use super::{effective_timeout, ProbeResult, DEFAULT_TIMEOUT};

/// The datagram sent: Consul's `CheckUDP.Message`, which the agent leaves empty.
const MESSAGE: &[u8] = b"";

/// Sends one datagram to `addr` (`host:port`) and listens for a reply or an ICMP refusal.
pub async fn udp(addr: &str, timeout: Duration) -> ProbeResult {
    let deadline = Instant::now() + effective_timeout(timeout, DEFAULT_TIMEOUT);
    let success = || ProbeResult::passing(format!("UDP connect {addr}: Success"));

    // Go's UDP dial takes the first resolved address.
    let remote = match resolve("udp", addr, deadline).await {
        Ok(addrs) => addrs[0],
        Err(e) => return ProbeResult::critical(e),
    };
    let any: SocketAddr = if remote.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(any).await {
        Ok(s) => s,
        Err(e) => {
            return ProbeResult::critical(format!("dial udp {remote}: socket: {}", io_error(&e)))
        }
    };
    if let Err(e) = socket.connect(remote).await {
        return ProbeResult::critical(format!("dial udp {remote}: connect: {}", io_error(&e)));
    }
    let local = socket
        .local_addr()
        .map_or_else(|_| any.to_string(), |a| a.to_string());
    if let Err(e) = socket.send(MESSAGE).await {
        return ProbeResult::critical(format!(
            "write udp {local}->{remote}: write: {}",
            io_error(&e)
        ));
    }
    let mut byte = [0u8; 1];
    match timeout_at(deadline, socket.recv(&mut byte)).await {
        Err(_no_reply) => success(),
        Ok(Ok(_)) => success(),
        Ok(Err(e)) => ProbeResult::critical(format!(
            "read udp {local}->{remote}: read: {}",
            io_error(&e)
        )),
    }
}
