//! A redb storage backend in memory that loses what was not synced when its machine crashes.
//!
//! Writes land in the "page cache" (`current`) and are queued; `sync_data` makes them durable.
//! A crash keeps the durable image plus a random subset of the queued writes (the kernel may
//! have flushed some pages on its own), which is what a power cut leaves on a real disk.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::Rng;
use redb::StorageBackend;

#[derive(Default)]
struct Disk {
    /// What reads see.
    current: Vec<u8>,
    /// What survives a crash for sure.
    durable: Vec<u8>,
    /// Writes and resizes since the last sync, in order.
    pending: Vec<Pending>,
    /// After a crash the old process's late writes must not land.
    dead: bool,
    /// A planted defect: every other sync is acknowledged and does nothing.
    lies: bool,
    syncs: u64,
}

enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// One machine's disk; clones share it.
#[derive(Clone, Default)]
pub struct SimDisk {
    disk: Arc<Mutex<Disk>>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.lock();
        write!(
            f,
            "SimDisk({} bytes, {} pending)",
            d.current.len(),
            d.pending.len()
        )
    }
}

fn apply(image: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write(offset, data) => {
            let (start, end) = (*offset as usize, *offset as usize + data.len());
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(data);
        }
        Pending::SetLen(len) => image.resize(*len as usize, 0),
    }
}

impl SimDisk {
    /// A disk whose every other fsync does nothing ([`super::Bug::LyingDisk`]).
    pub fn lying() -> SimDisk {
        SimDisk {
            disk: Arc::new(Mutex::new(Disk {
                lies: true,
                ..Disk::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The machine loses power: this handle goes dead (writes from the dying process fail)
    /// and a fresh disk comes back with the durable image plus whichever unsynced writes
    /// `rng` lets through.
    pub fn crash(&self, rng: &mut StdRng) -> SimDisk {
        let mut d = self.lock();
        d.dead = true;
        let mut image = d.durable.clone();
        for p in &d.pending {
            // Resizes always land (metadata), writes only sometimes.
            if matches!(p, Pending::SetLen(_)) || rng.gen_bool(0.5) {
                apply(&mut image, p);
            }
        }
        SimDisk {
            disk: Arc::new(Mutex::new(Disk {
                current: image.clone(),
                durable: image,
                pending: Vec::new(),
                dead: false,
                lies: d.lies,
                syncs: 0,
            })),
        }
    }

    /// Bytes written but not yet synced.
    pub fn unsynced(&self) -> usize {
        self.lock()
            .pending
            .iter()
            .map(|p| match p {
                Pending::Write(_, d) => d.len(),
                Pending::SetLen(_) => 0,
            })
            .sum()
    }
}

fn gone() -> std::io::Error {
    std::io::Error::other("disk of a crashed machine")
}

impl StorageBackend for SimDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.lock().current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let d = self.lock();
        let start = offset as usize;
        let end = start + out.len();
        if end > d.current.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end",
            ));
        }
        out.copy_from_slice(&d.current[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut d = self.lock();
        if d.dead {
            return Err(gone());
        }
        let p = Pending::SetLen(len);
        apply(&mut d.current, &p);
        d.pending.push(p);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut d = self.lock();
        if d.dead {
            return Err(gone());
        }
        d.syncs += 1;
        if d.lies && d.syncs.is_multiple_of(2) {
            return Ok(());
        }
        let pending = std::mem::take(&mut d.pending);
        for p in &pending {
            apply(&mut d.durable, p);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut d = self.lock();
        if d.dead {
            return Err(gone());
        }
        let p = Pending::Write(offset, data.to_vec());
        apply(&mut d.current, &p);
        d.pending.push(p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn synced_writes_survive_a_crash_and_unsynced_ones_may_not() {
        let disk = SimDisk::default();
        disk.write(0, b"durable").unwrap();
        disk.sync_data().unwrap();
        disk.write(0, b"DURABLE").unwrap();
        let mut survived_new = 0;
        for seed in 0..64 {
            let after = disk
                .clone_for_test()
                .crash(&mut StdRng::seed_from_u64(seed));
            let mut buf = [0u8; 7];
            after.read(0, &mut buf).unwrap();
            assert!(&buf == b"durable" || &buf == b"DURABLE", "{buf:?}");
            survived_new += usize::from(&buf == b"DURABLE");
        }
        assert!(
            survived_new > 0 && survived_new < 64,
            "some crashes keep the unsynced write, some lose it: {survived_new}"
        );
        let dead = disk.clone();
        disk.crash(&mut StdRng::seed_from_u64(1));
        assert!(
            dead.write(0, b"x").is_err(),
            "the crashed process can no longer write"
        );
    }

    impl SimDisk {
        fn clone_for_test(&self) -> SimDisk {
            let d = self.lock();
            SimDisk {
                disk: Arc::new(Mutex::new(Disk {
                    current: d.current.clone(),
                    durable: d.durable.clone(),
                    pending: d
                        .pending
                        .iter()
                        .map(|p| match p {
                            Pending::Write(o, v) => Pending::Write(*o, v.clone()),
                            Pending::SetLen(l) => Pending::SetLen(*l),
                        })
                        .collect(),
                    dead: false,
                    lies: false,
                    syncs: 0,
                })),
            }
        }
    }
}
