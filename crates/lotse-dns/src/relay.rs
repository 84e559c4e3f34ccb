//! A client agent's DNS listener. A client holds no catalog, so every query goes whole to a
//! server over server RPC (`Forward.Dns`) and that server's responder answers it, exactly as
//! it answers its own listener (the same records, truncation to the client's UDP size,
//! recursors). This side only frames: UDP datagrams, TCP's two-byte length prefix. When no
//! server can be asked, the client gets SERVFAIL at once rather than a timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::{DnsError, TCP_IDLE_TIMEOUT};

/// Asks a server: the query and whether it came over TCP in; the reply (`None`: send
/// nothing) or why no server answered.
pub type RelayUpstream = Arc<
    dyn Fn(Vec<u8>, bool) -> Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, String>> + Send>>
        + Send
        + Sync,
>;

/// Queries in flight at once; more are dropped (DNS clients ask again).
const MAX_IN_FLIGHT: usize = 4096;
/// TCP connections open at once; more are closed at once.
const MAX_TCP_CONNS: usize = 1024;

/// The running relay; [`DnsRelay::shutdown`] stops it.
pub struct DnsRelay {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DnsRelay {
    /// Binds UDP and TCP on `addr` (port 0: any free port, the same for both) and relays.
    pub async fn start(addr: SocketAddr, upstream: RelayUpstream) -> Result<DnsRelay, DnsError> {
        let bind_err = |addr, proto| {
            move |source| DnsError::Bind {
                addr,
                proto,
                source,
            }
        };
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(bind_err(addr, "tcp"))?;
        let tcp_addr = tcp.local_addr().map_err(bind_err(addr, "tcp"))?;
        let udp_bind = SocketAddr::new(addr.ip(), tcp_addr.port());
        let udp = UdpSocket::bind(udp_bind)
            .await
            .map_err(bind_err(udp_bind, "udp"))?;
        let udp_addr = udp.local_addr().map_err(bind_err(udp_bind, "udp"))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let tasks = vec![
            tokio::spawn(serve_udp(
                Arc::new(udp),
                upstream.clone(),
                limit.clone(),
                stopped.clone(),
            )),
            tokio::spawn(serve_tcp(tcp, upstream, limit, stopped)),
        ];
        Ok(DnsRelay {
            udp_addr,
            tcp_addr,
            stop,
            tasks,
        })
    }

    /// Stops listening; queries in flight finish on their own.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn serve_udp(
    socket: Arc<UdpSocket>,
    upstream: RelayUpstream,
    limit: Arc<Semaphore>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = tokio::select! {
            _ = stopped.changed() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(got) => got,
                // An ICMP error from an earlier reply's peer, on some systems: not fatal.
                Err(e) => {
                    tracing::debug!(error = %e, "dns relay: udp receive failed");
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::debug!("dns relay: too many queries in flight; dropped one");
            continue;
        };
        let query = buf[..n].to_vec();
        let (socket, upstream) = (socket.clone(), upstream.clone());
        tokio::spawn(async move {
            if let Some(reply) = relay(&upstream, query, false).await {
                let _ = socket.send_to(&reply, peer).await;
            }
            drop(permit);
        });
    }
}

async fn serve_tcp(
    listener: TcpListener,
    upstream: RelayUpstream,
    limit: Arc<Semaphore>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let conns = Arc::new(Semaphore::new(MAX_TCP_CONNS));
    loop {
        let stream = tokio::select! {
            _ = stopped.changed() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "dns relay: tcp accept failed");
                    continue;
                }
            },
        };
        let Ok(slot) = conns.clone().try_acquire_owned() else {
            tracing::debug!("dns relay: too many tcp connections; closed one");
            continue;
        };
        let (upstream, limit, mut stopped) = (upstream.clone(), limit.clone(), stopped.clone());
        tokio::spawn(async move {
            // Ends with the relay: a connection never outlives shutdown.
            tokio::select! {
                _ = serve_tcp_conn(stream, upstream, limit) => {}
                _ = stopped.changed() => {}
            }
            drop(slot);
        });
    }
}

/// One TCP connection: length-prefixed queries, answered in order, until the client closes
/// it or leaves it idle.
async fn serve_tcp_conn(mut stream: TcpStream, upstream: RelayUpstream, limit: Arc<Semaphore>) {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return,
        };
        let mut query = vec![0u8; len];
        // A client that announces a query and then stalls is dropped after the idle time.
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Ok(_permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let Some(reply) = relay(&upstream, query, true).await else {
            continue;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_u16(len).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

async fn relay(upstream: &RelayUpstream, query: Vec<u8>, tcp: bool) -> Option<Vec<u8>> {
    match upstream(query.clone(), tcp).await {
        Ok(reply) => reply,
        Err(why) => {
            tracing::debug!(%why, "dns relay: no server answered; SERVFAIL");
            servfail(&query)
        }
    }
}

/// SERVFAIL for `query`, its question echoed; nothing for a query that does not decode.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(query).ok()?;
    let mut reply = Message::error_msg(
        req.metadata.id,
        req.metadata.op_code,
        ResponseCode::ServFail,
    );
    reply.metadata.recursion_desired = req.metadata.recursion_desired;
    reply.add_queries(req.queries);
    reply.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;

    fn query(id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(
            Name::from_str("web.service.consul.").unwrap(),
            RecordType::A,
        ));
        m.to_vec().unwrap()
    }

    fn echo_upstream(seen_tcp: Arc<std::sync::Mutex<Vec<bool>>>) -> RelayUpstream {
        Arc::new(move |q: Vec<u8>, tcp| {
            seen_tcp.lock().unwrap().push(tcp);
            Box::pin(async move {
                let req = Message::from_vec(&q).map_err(|e| e.to_string())?;
                if req.metadata.id == 7 {
                    return Err("no server".to_string());
                }
                if req.metadata.id == 8 {
                    return Ok(None);
                }
                let mut reply =
                    Message::error_msg(req.metadata.id, OpCode::Query, ResponseCode::NXDomain);
                reply.add_queries(req.queries);
                Ok(Some(reply.to_vec().unwrap()))
            })
        })
    }

    #[tokio::test]
    async fn queries_go_upstream_over_udp_and_tcp_and_failures_are_servfail() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let relay = DnsRelay::start("127.0.0.1:0".parse().unwrap(), echo_upstream(seen.clone()))
            .await
            .expect("relay starts");
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = vec![0u8; 4096];
        let ask = |id| {
            let (udp, q) = (&udp, query(id));
            async move { udp.send_to(&q, relay.udp_addr).await.unwrap() }
        };
        ask(1).await;
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), udp.recv(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let reply = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(
            (reply.metadata.id, reply.metadata.response_code),
            (1, ResponseCode::NXDomain)
        );
        // No server: SERVFAIL with the question, at once.
        ask(7).await;
        let n = udp.recv(&mut buf).await.unwrap();
        let reply = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(
            (reply.metadata.id, reply.metadata.response_code),
            (7, ResponseCode::ServFail)
        );
        assert_eq!(reply.queries.len(), 1);
        assert!(reply.metadata.recursion_desired);
        // The server chose not to answer: nothing is sent; the next query still is.
        ask(8).await;
        ask(2).await;
        let n = udp.recv(&mut buf).await.unwrap();
        assert_eq!(Message::from_vec(&buf[..n]).unwrap().metadata.id, 2);

        // TCP: two queries on one connection, framed.
        let mut conn = TcpStream::connect(relay.tcp_addr).await.unwrap();
        for id in [3u16, 4] {
            let q = query(id);
            conn.write_u16(q.len() as u16).await.unwrap();
            conn.write_all(&q).await.unwrap();
            let len = conn.read_u16().await.unwrap();
            let mut r = vec![0u8; usize::from(len)];
            conn.read_exact(&mut r).await.unwrap();
            assert_eq!(Message::from_vec(&r).unwrap().metadata.id, id);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            vec![false, false, false, false, true, true]
        );
        assert!(servfail(b"\x01").is_none(), "garbage gets no answer");
        relay.shutdown().await;
    }
}
