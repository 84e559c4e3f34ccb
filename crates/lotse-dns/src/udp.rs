//! The UDP path: dedicated threads, each blocking in `recvfrom` on its own socket (one per
//! core, sharing the port through SO_REUSEPORT), answering inline and sending, with one buffer
//! reused for every datagram. Only what must wait (recursion, a leader check) goes to the
//! async runtime.
//!
//! Why threads and not tasks: a task on the runtime pays for epoll, the scheduler and waking
//! a parked worker on every burst, which on this 2-core box cost more than answering; a thread
//! in `recvfrom` is woken by the kernel directly, as NSD's are. hickory-server's own UDP path
//! additionally spawns a task and crosses two channels per datagram (bench/dns measures all).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::respond::{Step, Transport};
use crate::serve::Core;

/// The largest datagram read (a request is small; anything longer is cut and fails to
/// decode, which answers FORMERR).
const RECV_BUF: usize = 4096;
/// How often a worker blocked in `recvfrom` looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Binds `count` sockets to `addr` sharing the port (the first one picks it when the port
/// is 0). `nonblocking` for sockets handed to an async runtime.
pub fn bind(addr: SocketAddr, count: usize, nonblocking: bool) -> std::io::Result<Vec<UdpSocket>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(nonblocking)?;
        // Bursts of queries queue in the kernel instead of being dropped.
        let _ = s.set_recv_buffer_size(4 << 20);
        s.bind(&addr.into())?;
        let sock: UdpSocket = s.into();
        addr = sock.local_addr()?;
        out.push(sock);
    }
    Ok(out)
}

/// The UDP worker threads; they stop when [`Workers::stop`] is called.
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts one thread per socket; `rt` runs what has to wait.
    pub fn start(
        sockets: Vec<UdpSocket>,
        core: Arc<Core>,
        rt: tokio::runtime::Handle,
    ) -> std::io::Result<Workers> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(sockets.len());
        for (i, sock) in sockets.into_iter().enumerate() {
            sock.set_read_timeout(Some(STOP_POLL))?;
            let (core, rt, stop) = (core.clone(), rt.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("lotse-dns-udp-{i}"))
                    .spawn(move || serve(Arc::new(sock), core, rt, stop))?,
            );
        }
        Ok(Workers { stop, threads })
    }

    /// Stops the threads (each notices within [`STOP_POLL`]) and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn serve(sock: Arc<UdpSocket>, core: Arc<Core>, rt: tokio::runtime::Handle, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; RECV_BUF];
    while !stop.load(Ordering::Acquire) {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here; they concern that client only.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if src.port() == 0 {
            continue;
        }
        let (settings, step) = core.handle(&buf[..n], Transport::Udp);
        match step {
            Step::Reply(bytes) => send(&sock, &bytes, src),
            Step::Drop => {}
            step => {
                let (core, sock, raw) = (core.clone(), sock.clone(), buf[..n].to_vec());
                rt.spawn(async move {
                    if let Some(bytes) = core.finish(&settings, step, &raw, Transport::Udp).await {
                        send(&sock, &bytes, src);
                    }
                });
            }
        }
    }
}

/// A UDP send does not wait for the peer; a full send buffer drops the reply, as a network
/// would, and the client asks again.
fn send(sock: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = sock.send_to(bytes, to) {
        tracing::debug!(error = %e, %to, "udp send failed");
    }
}
