//! The UDP path: one task per socket (one socket per core, bound with SO_REUSEPORT), each
//! receiving, answering inline and sending, with one buffer reused for every datagram. Only
//! what must wait (recursion, a leader check) is spawned.
//!
//! hickory-server's own UDP path spawns a task and passes two channels per datagram; this
//! loop does neither, which is what lets DNS keep pace with NSD (bench/dns).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use crate::respond::{Step, Transport};
use crate::serve::Core;

/// The largest datagram read (a request is small; anything longer is cut and fails to
/// decode, which answers FORMERR).
const RECV_BUF: usize = 4096;

/// Binds `count` sockets to `addr` sharing the port (the first one picks it when the port
/// is 0).
pub fn bind(addr: SocketAddr, count: usize) -> std::io::Result<Vec<UdpSocket>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        // Bursts of queries queue in the kernel instead of being dropped.
        let _ = s.set_recv_buffer_size(4 << 20);
        s.bind(&addr.into())?;
        let std: std::net::UdpSocket = s.into();
        let sock = UdpSocket::from_std(std)?;
        addr = sock.local_addr()?;
        out.push(sock);
    }
    Ok(out)
}

/// Serves one socket until the task is aborted.
pub async fn serve(sock: UdpSocket, core: Arc<Core>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here; they concern that client only.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if src.port() == 0 {
            continue;
        }
        let settings = core.settings();
        match settings.responder.handle(&buf[..n], Transport::Udp) {
            Step::Reply(bytes) => send(&sock, &bytes, src).await,
            Step::Drop => {}
            step => {
                let (core, sock, raw) = (core.clone(), sock.clone(), buf[..n].to_vec());
                let settings = arc_swap::Guard::into_inner(settings);
                tokio::spawn(async move {
                    if let Some(bytes) = core.finish(&settings, step, &raw, Transport::Udp).await {
                        send(&sock, &bytes, src).await;
                    }
                });
            }
        }
    }
}

async fn send(sock: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    // Try the fast path first: a send that would block is rare, and then we wait.
    match sock.try_send_to(bytes, to) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            if let Err(e) = sock.send_to(bytes, to).await {
                tracing::debug!(error = %e, %to, "udp send failed");
            }
        }
        Err(e) => tracing::debug!(error = %e, %to, "udp send failed"),
    }
}
