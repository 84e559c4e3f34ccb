//! Key/value entries, as Consul's `DirEntry`.

use serde::{Deserialize, Serialize};

/// One stored key. `value` is empty for a key written with an empty body (Consul reports `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    /// How many times a session acquired this key's lock.
    pub lock_index: u64,
    /// The session holding the lock, if any.
    pub session: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// What a KV write asks for, before the store gives it indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvWrite {
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
}

/// Groups `keys` (sorted) the way Consul's `?keys&separator=` does: every key that has the
/// separator after `prefix` is cut just after its first such separator, and repeats collapse.
pub fn keys_with_separator<'a>(
    keys: impl Iterator<Item = &'a str>,
    prefix: &str,
    separator: &str,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let item = match (separator.is_empty(), rest.find(separator)) {
            (false, Some(pos)) => &key[..prefix.len() + pos + separator.len()],
            _ => key,
        };
        if out.last().map(String::as_str) != Some(item) {
            out.push(item.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separator_collapses_children_into_folders() {
        let keys = ["a/b", "a/c/d", "a/c/e", "a/f/", "ab"];
        let got = keys_with_separator(keys.iter().copied(), "a/", "/");
        assert_eq!(got, vec!["a/b", "a/c/", "a/f/"]);
        let got = keys_with_separator(keys.iter().copied(), "", "/");
        assert_eq!(got, vec!["a/", "ab"]);
    }

    #[test]
    fn empty_separator_lists_every_key() {
        let keys = ["a/b", "a/c"];
        let got = keys_with_separator(keys.iter().copied(), "", "");
        assert_eq!(got, vec!["a/b", "a/c"]);
    }
}
