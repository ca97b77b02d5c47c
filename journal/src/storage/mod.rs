//! The storage seam: every file-system effect of the journal goes through [`Storage`], except the
//! raw memory stores of `append`, which write straight into the mapping whose base pointer the
//! writer fetched once per segment (no trait-object call per append).
//!
//! Implementations: [`FsStorage`] (real files, `posix_fallocate`, memmap2, flock),
//! [`MemStorage`] (in-memory files with a live and a durable image, `crash()` simulates power
//! loss) and [`FaultyStorage`] (wraps another and injects failed flushes, failed segment
//! creation, bit flips and partial writes).

mod faulty;
mod fs;
mod mem;

pub use faulty::FaultyStorage;
pub use fs::FsStorage;
pub use mem::MemStorage;

use std::any::Any;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A writable mapping of a whole segment file.
pub trait MapMut: Send + Sync {
    /// Base of the mapping; page aligned; valid as long as the object lives.
    fn as_mut_ptr(&self) -> *mut u8;
    /// Length of the mapping in bytes.
    fn len(&self) -> usize;
    /// True for an empty mapping.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Makes bytes `[offset..offset+len)` durable (msync). Implementations may round the range
    /// out to whole pages.
    fn flush(&self, offset: usize, len: usize) -> io::Result<()>;
}

/// A read-only mapping of a whole segment file.
pub trait MapRo: Send + Sync {
    /// Base of the mapping; page aligned (or dangling and aligned when empty).
    fn as_ptr(&self) -> *const u8;
    /// Length of the mapping in bytes.
    fn len(&self) -> usize;
    /// True for an empty mapping.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Held while the writer lock is taken; dropping it releases the lock.
pub type LockGuard = Box<dyn Any + Send>;

/// File-system operations the journal needs. Paths are absolute or relative to the process cwd.
pub trait Storage: Send + Sync {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir` (not paths), in any order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// Creates a new file of `size` zero bytes (fails if it exists), allocates its blocks and maps
    /// it read-write.
    fn create_segment(&self, path: &Path, size: u64) -> io::Result<Arc<dyn MapMut>>;
    /// Maps an existing file read-write.
    fn open_rw(&self, path: &Path) -> io::Result<Arc<dyn MapMut>>;
    /// Maps an existing file read-only.
    fn open_ro(&self, path: &Path) -> io::Result<Arc<dyn MapRo>>;
    /// Atomically renames `from` to `to` (same directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory entries of `dir` durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive writer lock of `dir`; `ErrorKind::WouldBlock` if someone holds it.
    fn lock(&self, dir: &Path) -> io::Result<LockGuard>;
}
