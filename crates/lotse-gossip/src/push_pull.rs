//! TCP push/pull: exchange the full state with one peer.
//!
//! Gossip over UDP converges fast but can miss things (lost packets, partitions, a node that
//! joined after an event was spread). memberlist's remedy, kept here: every
//! `push_pull_interval` a node opens a TCP connection to one random peer and both send their
//! full state; `join` does the same with each seed address.
//!
//! Framing: `[u32 big-endian length][envelope]`, one request and one reply per connection,
//! each bounded by `MAX_FRAME` and by the TCP timeout.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use crate::{core::PushPull, envelope, keyring::KeyringHandle};

/// Largest frame we read (a 10k-member state with tags is a few MiB).
pub const MAX_FRAME: usize = 16 << 20;

/// Why an exchange failed; the caller logs or reports it.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Took longer than the TCP timeout.
    #[error("timed out")]
    Timeout,
    /// Frame too large.
    #[error("frame of {0} bytes exceeds limit")]
    TooLarge(usize),
    /// Envelope could not be opened (wrong key, plaintext/encrypted mismatch, tampering).
    #[error("envelope: {0}")]
    Envelope(#[from] envelope::OpenError),
    /// The state did not decode.
    #[error("decode: {0}")]
    Decode(String),
}

async fn write_state(
    s: &mut TcpStream,
    ring: &KeyringHandle,
    state: &PushPull,
) -> Result<(), ExchangeError> {
    let bytes = postcard::to_stdvec(state).map_err(|e| ExchangeError::Decode(e.to_string()))?;
    let sealed = ring.read(|r| envelope::seal(r, &bytes));
    let len = u32::try_from(sealed.len()).map_err(|_| ExchangeError::TooLarge(sealed.len()))?;
    s.write_all(&len.to_be_bytes()).await?;
    s.write_all(&sealed).await?;
    s.flush().await?;
    Ok(())
}

async fn read_state(s: &mut TcpStream, ring: &KeyringHandle) -> Result<PushPull, ExchangeError> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ExchangeError::TooLarge(len));
    }
    // Read incrementally: a peer that announces 16 MiB and sends nothing costs us nothing.
    let mut buf = Vec::new();
    (&mut *s).take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(ExchangeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    let plain = ring.read(|r| envelope::open(r, &buf))?;
    postcard::from_bytes(&plain).map_err(|e| ExchangeError::Decode(e.to_string()))
}

/// Initiator side: send ours, receive theirs.
pub async fn exchange(
    addr: SocketAddr,
    ours: &PushPull,
    ring: &KeyringHandle,
    limit: Duration,
) -> Result<PushPull, ExchangeError> {
    timeout(limit, async {
        let mut s = TcpStream::connect(addr).await?;
        write_state(&mut s, ring, ours).await?;
        read_state(&mut s, ring).await
    })
    .await
    .map_err(|_| ExchangeError::Timeout)?
}

/// Responder side: read theirs, let `merge` apply it and return ours, send ours.
pub async fn serve<F, Fut>(
    mut s: TcpStream,
    ring: &KeyringHandle,
    limit: Duration,
    merge: F,
) -> Result<(), ExchangeError>
where
    F: FnOnce(PushPull) -> Fut,
    Fut: std::future::Future<Output = Option<PushPull>>,
{
    timeout(limit, async {
        let theirs = read_state(&mut s, ring).await?;
        if let Some(ours) = merge(theirs).await {
            write_state(&mut s, ring, &ours).await?;
        }
        Ok(())
    })
    .await
    .map_err(|_| ExchangeError::Timeout)?
}
