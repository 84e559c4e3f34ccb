//! The envelope around every UDP packet and TCP message.
//!
//! ```text
//! plaintext:  [0x00][payload]
//! sealed:     [0x01][nonce: 12 random bytes][AES-GCM(payload) + 16-byte tag]
//! ```
//! The version byte is also the AEAD associated data, so it cannot be flipped. A sealed node
//! never accepts plaintext and a plaintext node never accepts sealed data: a pool is either
//! encrypted or not, and mixing them must fail loudly (the caller logs and drops), never
//! silently trust unauthenticated membership data.

use aes_gcm::{
    aead::{Aead, Payload},
    Nonce,
};
use rand::Rng;

use crate::keyring::{Cipher, Keyring};

const PLAIN: u8 = 0x00;
const AES_GCM_V1: u8 = 0x01;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Bytes the envelope adds to a payload at most.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Why a packet was not opened. Every case means: drop the packet.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Empty or shorter than its header.
    #[error("truncated packet")]
    Truncated,
    /// Unknown version byte.
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    /// Plaintext packet at a node with encryption on.
    #[error("plaintext packet but encryption is enabled")]
    UnexpectedPlaintext,
    /// Sealed packet at a node with encryption off.
    #[error("encrypted packet but encryption is disabled")]
    UnexpectedEncrypted,
    /// No installed key opens it (wrong key or tampered).
    #[error("no installed key decrypts the packet")]
    NoKey,
}

fn encrypt(c: &Cipher, nonce: &[u8; NONCE_LEN], payload: &[u8]) -> Option<Vec<u8>> {
    let n = Nonce::from_slice(nonce);
    let p = Payload {
        msg: payload,
        aad: &[AES_GCM_V1],
    };
    match c {
        Cipher::A128(c) => c.encrypt(n, p).ok(),
        Cipher::A192(c) => c.encrypt(n, p).ok(),
        Cipher::A256(c) => c.encrypt(n, p).ok(),
    }
}

fn decrypt(c: &Cipher, nonce: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    let n = Nonce::from_slice(nonce);
    let p = Payload {
        msg: ct,
        aad: &[AES_GCM_V1],
    };
    match c {
        Cipher::A128(c) => c.decrypt(n, p).ok(),
        Cipher::A192(c) => c.decrypt(n, p).ok(),
        Cipher::A256(c) => c.decrypt(n, p).ok(),
    }
}

/// Wraps `payload`: sealed with the primary key when `ring` is set, else plaintext.
pub fn seal(ring: Option<&Keyring>, payload: &[u8]) -> Vec<u8> {
    match ring.and_then(|r| r.primary_cipher()) {
        None => {
            let mut out = Vec::with_capacity(payload.len() + 1);
            out.push(PLAIN);
            out.extend_from_slice(payload);
            out
        }
        Some(c) => {
            let mut nonce = [0u8; NONCE_LEN];
            rand::rng().fill_bytes(&mut nonce);
            let mut out = Vec::with_capacity(payload.len() + OVERHEAD);
            out.push(AES_GCM_V1);
            out.extend_from_slice(&nonce);
            // AES-GCM only fails on payloads of many gigabytes, which we never build.
            out.extend_from_slice(&encrypt(c, &nonce, payload).unwrap_or_default());
            out
        }
    }
}

/// Unwraps a packet, trying every installed key.
pub fn open(ring: Option<&Keyring>, packet: &[u8]) -> Result<Vec<u8>, OpenError> {
    let (&version, rest) = packet.split_first().ok_or(OpenError::Truncated)?;
    match (version, ring) {
        (PLAIN, None) => Ok(rest.to_vec()),
        (PLAIN, Some(_)) => Err(OpenError::UnexpectedPlaintext),
        (AES_GCM_V1, None) => Err(OpenError::UnexpectedEncrypted),
        (AES_GCM_V1, Some(ring)) => {
            if rest.len() < NONCE_LEN + TAG_LEN {
                return Err(OpenError::Truncated);
            }
            let (nonce, ct) = rest.split_at(NONCE_LEN);
            ring.ciphers()
                .find_map(|c| decrypt(c, nonce, ct))
                .ok_or(OpenError::NoKey)
        }
        (v, _) => Err(OpenError::UnknownVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(b: u8) -> Keyring {
        Keyring::new(vec![b; 32]).unwrap()
    }

    #[test]
    fn round_trip_plain_and_sealed() {
        assert_eq!(open(None, &seal(None, b"hello")).unwrap(), b"hello");
        let r = ring(1);
        let sealed = seal(Some(&r), b"hello");
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(open(Some(&r), &sealed).unwrap(), b"hello");
        // Fresh nonce every time.
        assert_ne!(seal(Some(&r), b"hello"), sealed);
    }

    #[test]
    fn wrong_key_is_rejected() {
        let sealed = seal(Some(&ring(1)), b"hello");
        assert_eq!(open(Some(&ring(2)), &sealed), Err(OpenError::NoKey));
    }

    #[test]
    fn any_installed_key_opens() {
        let old = ring(1);
        let mut both = ring(2);
        both.install(vec![1; 32]).unwrap();
        assert_eq!(open(Some(&both), &seal(Some(&old), b"x")).unwrap(), b"x");
        assert_eq!(
            open(Some(&old), &seal(Some(&both), b"x")),
            Err(OpenError::NoKey)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let r = ring(1);
        let sealed = seal(Some(&r), b"membership data");
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(Some(&r), &bad), Err(OpenError::NoKey), "byte {i}");
        }
        assert_eq!(open(Some(&r), &sealed[..20]), Err(OpenError::Truncated));
    }

    #[test]
    fn plaintext_and_encrypted_do_not_mix() {
        let r = ring(1);
        assert_eq!(
            open(Some(&r), &seal(None, b"x")),
            Err(OpenError::UnexpectedPlaintext)
        );
        assert_eq!(
            open(None, &seal(Some(&r), b"x")),
            Err(OpenError::UnexpectedEncrypted)
        );
        assert_eq!(open(None, &[]), Err(OpenError::Truncated));
        assert_eq!(open(None, &[9, 1, 2]), Err(OpenError::UnknownVersion(9)));
    }
}
