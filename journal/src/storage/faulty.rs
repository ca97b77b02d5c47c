//! Fault injection around another [`Storage`]: fail the next flush, the next segment creation or
//! the next directory sync; flip a bit at (file, offset); simulate a partial write by zeroing the
//! end of a file region. Faults are one-shot so a test states exactly which call fails.

use super::{LockGuard, MapMut, MapRo, Storage};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
struct Faults {
    fail_next_flush: AtomicBool,
    fail_next_create: AtomicBool,
    fail_next_sync_dir: AtomicBool,
    flushes: AtomicU64,
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}

/// A [`Storage`] that forwards to `inner` and fails on request.
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    faults: Arc<Faults>,
}

struct FaultyMap {
    inner: Arc<dyn MapMut>,
    faults: Arc<Faults>,
}

impl MapMut for FaultyMap {
    fn as_mut_ptr(&self) -> *mut u8 {
        self.inner.as_mut_ptr()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn flush(&self, offset: usize, len: usize) -> io::Result<()> {
        self.faults.flushes.fetch_add(1, Ordering::Relaxed);
        if self.faults.fail_next_flush.swap(false, Ordering::SeqCst) {
            return Err(injected("flush (msync) failed"));
        }
        self.inner.flush(offset, len)
    }
}

impl FaultyStorage {
    /// Wraps `inner`; no fault armed.
    pub fn new(inner: Arc<dyn Storage>) -> Arc<FaultyStorage> {
        Arc::new(FaultyStorage {
            inner,
            faults: Arc::default(),
        })
    }

    /// The next `flush` of any mapping fails.
    pub fn fail_next_flush(&self) {
        self.faults.fail_next_flush.store(true, Ordering::SeqCst);
    }

    /// The next `create_segment` fails (as with a full disk).
    pub fn fail_next_create(&self) {
        self.faults.fail_next_create.store(true, Ordering::SeqCst);
    }

    /// The next `sync_dir` fails.
    pub fn fail_next_sync_dir(&self) {
        self.faults.fail_next_sync_dir.store(true, Ordering::SeqCst);
    }

    /// Number of flushes attempted so far (lets tests prove nothing was retried).
    pub fn flush_count(&self) -> u64 {
        self.faults.flushes.load(Ordering::SeqCst)
    }

    /// Flips bit `bit` (0..8) of the byte at `offset` in `path`, durably.
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) -> io::Result<()> {
        let map = self.inner.open_rw(path)?;
        if offset >= map.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "offset past end of file",
            ));
        }
        // SAFETY: in bounds; tests call this while no writer is appending.
        unsafe { *map.as_mut_ptr().add(offset) ^= 1 << (bit % 8) };
        map.flush(offset, 1)
    }

    /// Simulates a partial write: zeroes `[offset..offset+len)` of `path`, durably, as if only
    /// the bytes before `offset` had reached the disk.
    pub fn zero_range(&self, path: &Path, offset: usize, len: usize) -> io::Result<()> {
        let map = self.inner.open_rw(path)?;
        let end = offset.saturating_add(len).min(map.len());
        let start = offset.min(end);
        // SAFETY: clamped to the mapping; no writer is appending.
        unsafe { std::ptr::write_bytes(map.as_mut_ptr().add(start), 0, end - start) };
        map.flush(start, end - start)
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn create_segment(&self, path: &Path, size: u64) -> io::Result<Arc<dyn MapMut>> {
        if self.faults.fail_next_create.swap(false, Ordering::SeqCst) {
            return Err(injected("segment creation failed (disk full?)"));
        }
        let inner = self.inner.create_segment(path, size)?;
        Ok(Arc::new(FaultyMap {
            inner,
            faults: self.faults.clone(),
        }))
    }
    fn open_rw(&self, path: &Path) -> io::Result<Arc<dyn MapMut>> {
        let inner = self.inner.open_rw(path)?;
        Ok(Arc::new(FaultyMap {
            inner,
            faults: self.faults.clone(),
        }))
    }
    fn open_ro(&self, path: &Path) -> io::Result<Arc<dyn MapRo>> {
        self.inner.open_ro(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.faults.fail_next_sync_dir.swap(false, Ordering::SeqCst) {
            return Err(injected("directory sync failed"));
        }
        self.inner.sync_dir(dir)
    }
    fn lock(&self, dir: &Path) -> io::Result<LockGuard> {
        self.inner.lock(dir)
    }
}
