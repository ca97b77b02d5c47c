//! In-memory storage for crash tests without a real crash. Each file has a *live* image (what
//! the process wrote, shared by all mappings) and a *durable* image (what `flush` copied out).
//! Directory entries are durable only after `sync_dir`. [`MemStorage::crash`] returns a new
//! storage holding only durable state: a power loss. With a seed, a random prefix of each file's
//! unflushed bytes survives too, which models the kernel writing back part of the dirty data in
//! order (tearing a record mid-way).

use super::{LockGuard, MapMut, MapRo, Storage};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

const PAGE: usize = 4096;

struct MemFile {
    live: *mut u8,
    len: usize,
    durable: Mutex<Vec<u8>>,
}

// SAFETY: `live` is a heap buffer owned by this struct; concurrent access follows the journal's
// single-writer publication protocol, exactly as for a shared mmap.
unsafe impl Send for MemFile {}
unsafe impl Sync for MemFile {}

impl MemFile {
    fn new(image: &[u8]) -> io::Result<Arc<MemFile>> {
        let layout = Layout::from_size_align(image.len().max(PAGE), PAGE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        // SAFETY: non-zero size layout.
        let live = unsafe { alloc_zeroed(layout) };
        if live.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "MemStorage allocation",
            ));
        }
        // SAFETY: `live` has at least image.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(image.as_ptr(), live, image.len()) };
        Ok(Arc::new(MemFile {
            live,
            len: image.len(),
            durable: Mutex::new(image.to_vec()),
        }))
    }

    fn live(&self) -> &[u8] {
        // SAFETY: buffer of `len` bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.live, self.len) }
    }

    fn durable(&self) -> MutexGuard<'_, Vec<u8>> {
        self.durable.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        if let Ok(layout) = Layout::from_size_align(self.len.max(PAGE), PAGE) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.live, layout) };
        }
    }
}

struct MemMap(Arc<MemFile>);

impl MapMut for MemMap {
    fn as_mut_ptr(&self) -> *mut u8 {
        self.0.live
    }
    fn len(&self) -> usize {
        self.0.len
    }
    fn flush(&self, offset: usize, len: usize) -> io::Result<()> {
        let end = offset.saturating_add(len).min(self.0.len);
        let start = offset.min(end);
        let mut durable = self.0.durable();
        durable[start..end].copy_from_slice(&self.0.live()[start..end]);
        Ok(())
    }
}

impl MapRo for MemMap {
    fn as_ptr(&self) -> *const u8 {
        self.0.live
    }
    fn len(&self) -> usize {
        self.0.len
    }
}

#[derive(Default)]
struct MemFs {
    /// Directory entries as the running process sees them.
    live: BTreeMap<PathBuf, Arc<MemFile>>,
    /// Directory entries as of the last `sync_dir` of their directory.
    durable: BTreeMap<PathBuf, Arc<MemFile>>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
}

/// In-memory [`Storage`] with a power-loss simulation.
#[derive(Default)]
pub struct MemStorage {
    fs: Arc<Mutex<MemFs>>,
}

struct MemLock {
    fs: Arc<Mutex<MemFs>>,
    dir: PathBuf,
}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut fs = self.fs.lock().unwrap_or_else(|p| p.into_inner());
        fs.locks.remove(&self.dir);
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

/// Tiny deterministic PRNG (splitmix64) so crash simulations replay from their seed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MemStorage {
    /// An empty in-memory file system.
    pub fn new() -> Arc<MemStorage> {
        Arc::new(MemStorage::default())
    }

    fn fs(&self) -> MutexGuard<'_, MemFs> {
        self.fs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulates a power loss: a new storage with the durable directory entries and the durable
    /// image of each file. With `Some(seed)`, each file additionally keeps a random-length prefix
    /// of its unflushed bytes (from the first byte that differs from the durable image), so a
    /// record can be torn anywhere. Locks are not carried over (the process died).
    pub fn crash(&self, seed: Option<u64>) -> Arc<MemStorage> {
        let fs = self.fs();
        let mut rng = seed.unwrap_or(0);
        let mut out = MemFs {
            dirs: fs.dirs.clone(),
            ..MemFs::default()
        };
        for (path, file) in &fs.durable {
            let mut image = file.durable().clone();
            if seed.is_some() {
                let live = file.live();
                let first = live.iter().zip(&image).position(|(a, b)| a != b);
                let last = live.iter().zip(&image).rposition(|(a, b)| a != b);
                if let (Some(first), Some(last)) = (first, last) {
                    let span = (last - first + 1) as u64;
                    let keep = (splitmix(&mut rng) % (span + 1)) as usize;
                    image[first..first + keep].copy_from_slice(&live[first..first + keep]);
                }
            }
            if let Ok(f) = MemFile::new(&image) {
                out.live.insert(path.clone(), f.clone());
                out.durable.insert(path.clone(), f);
            }
        }
        Arc::new(MemStorage {
            fs: Arc::new(Mutex::new(out)),
        })
    }

    /// Live bytes of a file (for tests).
    pub fn read_live(&self, path: &Path) -> Option<Vec<u8>> {
        self.fs().live.get(path).map(|f| f.live().to_vec())
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        for d in dir.ancestors() {
            fs.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs();
        if !fs.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(fs
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let fs = self.fs();
        fs.live.contains_key(path) || fs.dirs.contains(path)
    }

    fn create_segment(&self, path: &Path, size: u64) -> io::Result<Arc<dyn MapMut>> {
        let mut fs = self.fs();
        if fs.live.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                path.display().to_string(),
            ));
        }
        let size = usize::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "size"))?;
        let file = MemFile::new(&vec![0u8; size])?;
        fs.live.insert(path.to_path_buf(), file.clone());
        Ok(Arc::new(MemMap(file)))
    }

    fn open_rw(&self, path: &Path) -> io::Result<Arc<dyn MapMut>> {
        let fs = self.fs();
        let file = fs.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(Arc::new(MemMap(file.clone())))
    }

    fn open_ro(&self, path: &Path) -> io::Result<Arc<dyn MapRo>> {
        let fs = self.fs();
        let file = fs.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(Arc::new(MemMap(file.clone())))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        let file = fs.live.remove(from).ok_or_else(|| not_found(from))?;
        fs.live.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        fs.live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        fs.durable.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<_> = fs
            .live
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, f)| (p.clone(), f.clone()))
            .collect();
        fs.durable.extend(entries);
        Ok(())
    }

    fn lock(&self, dir: &Path) -> io::Result<LockGuard> {
        let mut fs = self.fs();
        if !fs.locks.insert(dir.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "journal is locked",
            ));
        }
        Ok(Box::new(MemLock {
            fs: self.fs.clone(),
            dir: dir.to_path_buf(),
        }))
    }
}
