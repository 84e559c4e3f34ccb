//! `limits.http_max_conns_per_client`: at most so many open HTTP connections per client IP
//! (Consul's default 200; 0 means no limit). One client that opens connections without end,
//! or parks more blocking queries than it should, then gets Consul's 429 on the extra
//! connections instead of taking the agent's file descriptors and memory from everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Consul's answer (go-connlimit's handler), byte for byte: clients and operators match on it.
const TOO_MANY: &str =
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n";

/// Counts open connections per client IP.
#[derive(Clone)]
pub struct ConnLimit {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of a client; the count goes down when it drops.
pub struct ConnSlot {
    limit: ConnLimit,
    ip: IpAddr,
}

impl ConnLimit {
    /// `max` connections per IP; 0 for no limit.
    pub fn new(max: usize) -> Self {
        ConnLimit {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `ip`, or `None` if it already has `max` open.
    pub fn admit(&self, ip: IpAddr) -> Option<ConnSlot> {
        if self.max == 0 {
            return Some(ConnSlot {
                limit: self.clone(),
                ip,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ConnSlot {
            limit: self.clone(),
            ip,
        })
    }

    /// Open connections from `ip` (for tests).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if self.limit.max == 0 {
            return;
        }
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Answers a connection over the limit with Consul's 429 and closes it. The request is read
/// (briefly, and only so much) before closing, so that the client sees the answer rather than
/// a reset caused by unread data.
pub async fn refuse(mut stream: TcpStream) {
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{TOO_MANY}",
        TOO_MANY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_ip_and_given_back_on_drop() {
        let limit = ConnLimit::new(2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = limit.admit(a).expect("first");
        let _s2 = limit.admit(a).expect("second");
        assert!(limit.admit(a).is_none(), "a third from one IP is refused");
        let _other = limit.admit(b).expect("another IP has its own count");
        drop(s1);
        assert_eq!(limit.open_from(a), 1);
        assert!(
            limit.admit(a).is_some(),
            "a slot freed by a closed connection is reused"
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = ConnLimit::new(0);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let slots: Vec<_> = (0..1000)
            .map(|_| limit.admit(ip).expect("unlimited"))
            .collect();
        assert_eq!(slots.len(), 1000);
    }
}
