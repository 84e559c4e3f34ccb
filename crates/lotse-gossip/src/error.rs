//! The one error type of this crate's public API.
//!
//! Every variant says what went wrong and what state it left behind, so a caller can decide
//! between retrying, reporting to a user, or giving up on the pool.

use std::io;

/// What can go wrong when driving the gossip pool.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// Binding the UDP or TCP socket failed; nothing was started.
    #[error("cannot bind gossip sockets on {addr}: {source}")]
    Bind {
        /// The address we tried to bind.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// `join` reached none of the given addresses; local state is unchanged.
    #[error("failed to join any of {attempted} address(es): {last}")]
    JoinFailed {
        /// How many addresses were tried.
        attempted: usize,
        /// The error seen for the last address.
        last: String,
    },
    /// A key is not a valid AES key (16, 24 or 32 bytes) or not valid base64; the keyring is
    /// unchanged.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A keyring operation was refused (for example removing the primary key, or using a key
    /// that is not installed); the keyring is unchanged.
    #[error("{0}")]
    Keyring(String),
    /// Keyring operations need a pool started with a keyring (encryption on).
    #[error("gossip encryption is not enabled")]
    NotEncrypted,
    /// Reading or writing a keyring file failed; the file may be missing or partial.
    #[error("keyring file {path}: {reason}")]
    KeyringFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A user event or the tags are larger than the wire limit; nothing was sent.
    #[error("{what} too large: {size} bytes after encoding, limit {limit}")]
    TooLarge {
        /// "user event" or "tags".
        what: &'static str,
        /// The encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The driver task has stopped (after `shutdown`, or it failed); nothing was done.
    #[error("gossip driver is not running")]
    Stopped,
    /// The driver's command queue is full (it is overloaded); nothing was done, retry later.
    #[error("gossip driver is busy")]
    Busy,
    /// Encoding a message failed (a bug, not a peer's fault); nothing was sent.
    #[error("encoding failed: {0}")]
    Encode(String),
}
