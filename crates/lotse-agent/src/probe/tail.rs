//! The bounded output buffer: keeps the last [`OUTPUT_LIMIT`](super::OUTPUT_LIMIT) bytes of
//! a stream and counts the rest, as Consul's `circbuf.Buffer` does. Memory stays bounded
//! however much a peer or a script writes.

/// The last `limit` bytes written, and how many were written in all.
#[derive(Debug)]
pub(super) struct Tail {
    limit: usize,
    buf: Vec<u8>,
    total: u64,
}

impl Tail {
    pub(super) fn new(limit: usize) -> Self {
        Tail {
            limit,
            buf: Vec::with_capacity(limit.min(64 * 1024)),
            total: 0,
        }
    }

    pub(super) fn write(&mut self, data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        if data.len() >= self.limit {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - self.limit..]);
            return;
        }
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.limit);
        self.buf.drain(..overflow);
        self.buf.extend_from_slice(data);
    }

    /// Bytes written in all, kept or not.
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Whether older bytes were dropped.
    pub(super) fn truncated(&self) -> bool {
        self.total > self.buf.len() as u64
    }

    /// The kept bytes as text (invalid UTF-8, e.g. a character cut at the front, becomes
    /// U+FFFD: the catalog stores strings).
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn keeps_the_last_bytes_and_counts_all() {
        let mut t = Tail::new(4);
        t.write(b"ab");
        assert_eq!((t.text().as_str(), t.truncated()), ("ab", false));
        t.write(b"cde");
        assert_eq!(
            (t.text().as_str(), t.total(), t.truncated()),
            ("bcde", 5, true)
        );
        t.write(b"0123456789");
        assert_eq!((t.text().as_str(), t.total(), t.len()), ("6789", 15, 4));
    }
}
