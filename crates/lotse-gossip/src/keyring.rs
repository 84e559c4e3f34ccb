//! The gossip keyring: AES keys for the envelope, with the primary first.
//!
//! Consul's model: every member holds the same set of keys; it seals with the *primary* and
//! opens with any installed key. Rotation is "install the new key everywhere, make it primary
//! everywhere, remove the old one", and at every step each member can open what any other
//! member seals. On disk it is Consul's `data_dir/serf/local.keyring`: a JSON list of base64
//! keys whose first entry is the primary.
//!
//! `KeyringHandle` is shared by the API and the driver (one `RwLock`, read on every packet and
//! written only by rare keyring operations).

use std::{
    path::Path,
    sync::{Arc, PoisonError, RwLock},
};

use aes_gcm::{
    aead::{consts::U12, KeyInit},
    aes::Aes192,
    Aes128Gcm, Aes256Gcm, AesGcm,
};
use base64::{engine::general_purpose::STANDARD, Engine};

use crate::GossipError;

type Aes192Gcm = AesGcm<Aes192, U12>;

/// One AES-GCM cipher, keyed by a 16, 24 or 32-byte key.
#[derive(Clone)]
pub(crate) enum Cipher {
    A128(Box<Aes128Gcm>),
    A192(Box<Aes192Gcm>),
    A256(Box<Aes256Gcm>),
}

#[derive(Clone)]
struct Key {
    raw: Vec<u8>,
    cipher: Cipher,
}

impl Key {
    fn new(raw: Vec<u8>) -> Result<Self, GossipError> {
        let bad = |_| GossipError::InvalidKey("cannot build cipher".into());
        let cipher = match raw.len() {
            16 => Cipher::A128(Box::new(Aes128Gcm::new_from_slice(&raw).map_err(bad)?)),
            24 => Cipher::A192(Box::new(Aes192Gcm::new_from_slice(&raw).map_err(bad)?)),
            32 => Cipher::A256(Box::new(Aes256Gcm::new_from_slice(&raw).map_err(bad)?)),
            n => {
                return Err(GossipError::InvalidKey(format!(
                    "key size must be 16, 24 or 32 bytes, got {n}"
                )))
            }
        };
        Ok(Self { raw, cipher })
    }
}

/// A set of AES keys; the first is the primary (used to seal), all are tried to open.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

/// Decodes a base64 key as Consul's `encrypt` option and `consul keygen` write it.
pub fn decode_key(b64: &str) -> Result<Vec<u8>, GossipError> {
    STANDARD
        .decode(b64.trim())
        .map_err(|e| GossipError::InvalidKey(format!("not base64: {e}")))
}

/// Encodes a key as base64 (Consul's format).
pub fn encode_key(raw: &[u8]) -> String {
    STANDARD.encode(raw)
}

impl Keyring {
    /// A keyring with one key, which becomes the primary. Fails unless the key has 16, 24 or
    /// 32 bytes.
    pub fn new(primary: Vec<u8>) -> Result<Self, GossipError> {
        Ok(Self {
            keys: vec![Key::new(primary)?],
        })
    }

    /// A keyring from a base64 key (Consul's `encrypt` option).
    pub fn from_base64(primary: &str) -> Result<Self, GossipError> {
        Self::new(decode_key(primary)?)
    }

    /// A keyring from a list of keys; the first is the primary. Duplicates are dropped.
    pub fn from_keys(keys: Vec<Vec<u8>>) -> Result<Self, GossipError> {
        let mut it = keys.into_iter();
        let first = it
            .next()
            .ok_or_else(|| GossipError::Keyring("keyring is empty".into()))?;
        let mut ring = Self::new(first)?;
        for k in it {
            ring.install(k)?;
        }
        Ok(ring)
    }

    /// Parses Consul's keyring file content: a JSON list of base64 keys, primary first.
    pub fn from_json(json: &str) -> Result<Self, GossipError> {
        let list: Vec<String> = serde_json::from_str(json)
            .map_err(|e| GossipError::InvalidKey(format!("keyring is not a JSON list: {e}")))?;
        let keys = list
            .iter()
            .map(|k| decode_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_keys(keys)
    }

    /// Renders Consul's keyring file content.
    pub fn to_json(&self) -> String {
        let list: Vec<String> = self.keys.iter().map(|k| encode_key(&k.raw)).collect();
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    }

    /// Loads a keyring file (`data_dir/serf/local.keyring`).
    pub fn load(path: &Path) -> Result<Self, GossipError> {
        let text = std::fs::read_to_string(path).map_err(|e| GossipError::KeyringFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_json(&text)
    }

    /// Writes the keyring file, via a temporary file and a rename so a crash never leaves a
    /// half-written keyring.
    pub fn save(&self, path: &Path) -> Result<(), GossipError> {
        let err = |e: std::io::Error| GossipError::KeyringFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_json()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Adds a key (not primary). Installing an installed key is a no-op.
    pub fn install(&mut self, key: Vec<u8>) -> Result<(), GossipError> {
        let key = Key::new(key)?;
        if !self.keys.iter().any(|k| k.raw == key.raw) {
            self.keys.push(key);
        }
        Ok(())
    }

    /// Makes an installed key the primary.
    pub fn use_key(&mut self, key: &[u8]) -> Result<(), GossipError> {
        let pos =
            self.keys.iter().position(|k| k.raw == key).ok_or_else(|| {
                GossipError::Keyring("Requested key is not in the keyring".into())
            })?;
        let k = self.keys.remove(pos);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Removes a key; removing the primary is refused (as in Consul).
    pub fn remove(&mut self, key: &[u8]) -> Result<(), GossipError> {
        if self.keys.first().is_some_and(|k| k.raw == key) {
            return Err(GossipError::Keyring(
                "Removing the primary key is not allowed".into(),
            ));
        }
        self.keys.retain(|k| k.raw != key);
        Ok(())
    }

    /// The primary key's raw bytes.
    pub fn primary(&self) -> &[u8] {
        self.keys.first().map(|k| k.raw.as_slice()).unwrap_or(&[])
    }

    /// All keys' raw bytes, primary first.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.keys.iter().map(|k| k.raw.clone()).collect()
    }

    pub(crate) fn primary_cipher(&self) -> Option<&Cipher> {
        self.keys.first().map(|k| &k.cipher)
    }

    pub(crate) fn ciphers(&self) -> impl Iterator<Item = &Cipher> {
        self.keys.iter().map(|k| &k.cipher)
    }
}

/// A shared view of the running pool's keyring; keys are passed as base64 strings as in
/// Consul's `operator keyring` API.
#[derive(Clone, Debug)]
pub struct KeyringHandle {
    pub(crate) inner: Arc<RwLock<Option<Keyring>>>,
}

impl KeyringHandle {
    pub(crate) fn new(ring: Option<Keyring>) -> Self {
        Self {
            inner: Arc::new(RwLock::new(ring)),
        }
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(Option<&Keyring>) -> R) -> R {
        let g = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        f(g.as_ref())
    }

    fn write<R>(
        &self,
        f: impl FnOnce(&mut Keyring) -> Result<R, GossipError>,
    ) -> Result<R, GossipError> {
        let mut g = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        match g.as_mut() {
            Some(ring) => f(ring),
            None => Err(GossipError::NotEncrypted),
        }
    }

    /// Whether encryption is on.
    pub fn is_enabled(&self) -> bool {
        self.read(|r| r.is_some())
    }

    /// Installed keys as base64, primary first; empty when encryption is off.
    pub fn list(&self) -> Vec<String> {
        self.read(|r| {
            r.map(|r| r.keys().iter().map(|k| encode_key(k)).collect())
                .unwrap_or_default()
        })
    }

    /// The primary key as base64.
    pub fn primary(&self) -> Option<String> {
        self.read(|r| r.map(|r| encode_key(r.primary())))
    }

    /// Installs a base64 key; opening packets sealed with it works from now on.
    pub fn install(&self, key: &str) -> Result<(), GossipError> {
        let raw = decode_key(key)?;
        self.write(|r| r.install(raw))
    }

    /// Makes an installed base64 key the primary; we seal with it from now on.
    pub fn use_key(&self, key: &str) -> Result<(), GossipError> {
        let raw = decode_key(key)?;
        self.write(|r| r.use_key(&raw))
    }

    /// Removes a base64 key; the primary cannot be removed.
    pub fn remove(&self, key: &str) -> Result<(), GossipError> {
        let raw = decode_key(key)?;
        self.write(|r| r.remove(&raw))
    }

    /// A copy of the keyring, e.g. to `save` it.
    pub fn snapshot(&self) -> Option<Keyring> {
        self.read(|r| r.cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="; // 32 bytes
    const K2: &str = "H3/9gBxcKKRf45CaI2DlRg=="; // 16 bytes

    #[test]
    fn validates_key_sizes() {
        assert!(Keyring::new(vec![0; 16]).is_ok());
        assert!(Keyring::new(vec![0; 24]).is_ok());
        assert!(Keyring::new(vec![0; 32]).is_ok());
        assert!(matches!(
            Keyring::new(vec![0; 15]),
            Err(GossipError::InvalidKey(_))
        ));
        assert!(matches!(
            Keyring::new(vec![]),
            Err(GossipError::InvalidKey(_))
        ));
        assert!(Keyring::from_base64("not base64!").is_err());
        assert_eq!(Keyring::from_base64(K1).unwrap().primary().len(), 32);
    }

    #[test]
    fn rotation_and_primary_protection() {
        let mut r = Keyring::from_base64(K1).unwrap();
        let k1 = decode_key(K1).unwrap();
        let k2 = decode_key(K2).unwrap();
        r.install(k2.clone()).unwrap();
        r.install(k2.clone()).unwrap();
        assert_eq!(r.keys().len(), 2);
        let err = r.remove(&k1).unwrap_err().to_string();
        assert_eq!(err, "Removing the primary key is not allowed");
        assert!(r.use_key(&[7; 16]).is_err());
        r.use_key(&k2).unwrap();
        assert_eq!(r.primary(), k2.as_slice());
        r.remove(&k1).unwrap();
        assert_eq!(r.keys(), vec![k2]);
    }

    #[test]
    fn json_file_round_trip_keeps_primary_first() {
        let mut r = Keyring::from_base64(K2).unwrap();
        r.install(decode_key(K1).unwrap()).unwrap();
        let json = r.to_json();
        assert_eq!(json, format!("[\"{K2}\",\"{K1}\"]"));
        let dir = std::env::temp_dir().join(format!("lotse-gossip-kr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("local.keyring");
        r.save(&path).unwrap();
        let back = Keyring::load(&path).unwrap();
        assert_eq!(back.keys(), r.keys());
        std::fs::remove_dir_all(&dir).ok();
        assert!(Keyring::from_json("[]").is_err());
        assert!(Keyring::from_json("{").is_err());
    }

    #[test]
    fn handle_without_keyring_refuses_operations() {
        let h = KeyringHandle::new(None);
        assert!(!h.is_enabled());
        assert!(matches!(h.install(K1), Err(GossipError::NotEncrypted)));
        assert!(h.list().is_empty());
    }
}
