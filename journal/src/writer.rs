//! The single writer. `append` frames a record straight into the mapped segment, chains its
//! CRC32C and publishes it with one atomic store; no syscall, allocation or trait-object call on
//! that path (the mapping's base pointer is fetched once per segment). Rolling to a new segment,
//! syncing and recovery go through [`Storage`]. The next segment is created, zero-filled and
//! faulted in by a background thread once the current one is half full, so a roll only writes
//! a header and renames; with `sync_on_roll` off, a full segment's flush also runs on a
//! background thread, and `sync` waits for it.
//!
//! Durability: `None` syncs only on [`Journal::sync`] and on segment rolls; `EveryRecord` msyncs
//! after each append; `IntervalMs(n)` runs a flusher thread that msyncs the newly appended range
//! every `n` ms (the append path only publishes its write offset with a relaxed store, so it stays
//! a few ns, and data is synced on time even when appends pause). Any sync failure poisons the
//! journal: every later call returns [`JournalError::Poisoned`] and nothing is retried, because
//! after a failed fsync/msync the kernel may have dropped the dirty pages while reporting the
//! next attempt as a success ("fsyncgate").

use crate::crc::{Hw, Kernel, Sw};
use crate::error::JournalError;
use crate::format::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, TMP_EXT, pack_word, round_up8,
    segment_file_name,
};
use crate::recovery::{Recovery, recover};
use crate::storage::{FsStorage, LockGuard, MapMut, Storage};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// When appended data is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Only on explicit [`Journal::sync`] and on segment rolls.
    None,
    /// A background flusher syncs new data at least every this many milliseconds.
    IntervalMs(u64),
    /// msync after every append.
    EveryRecord,
}

/// Writer configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Size of each segment file in bytes (multiple of 8, at least 4096).
    pub segment_size: u64,
    pub durability: Durability,
    /// Stored in every new segment header and reported back; the journal never interprets it.
    pub schema_version: u16,
    /// Touch every page of a new segment up front so page faults stay off the append path.
    pub pretouch: bool,
    /// Sync a segment before rolling to the next (default). Only a journal that is thrown
    /// away after a crash may turn this off (a backtest writing into a staging directory that
    /// is renamed into place after its final `sync`): without it, a power loss can leave an
    /// earlier segment torn, which recovery reports as corruption instead of truncating.
    /// Off, a roll waits for no disk at all: the full segment is flushed in the background,
    /// and the new segment's header and directory entry are made durable by the next `sync`.
    pub sync_on_roll: bool,
    /// Start a new journal with a segment a sixteenth of `segment_size` (at least 1 MiB) and
    /// double each next one up to `segment_size`: opening a journal then waits for a small
    /// zero fill, and a short journal takes little disk. Off (the default), every segment is
    /// `segment_size` from the first, so a latency-sensitive session sees no early rolls.
    pub grow_segments: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 << 20,
            durability: Durability::None,
            schema_version: 0,
            pretouch: true,
            sync_on_roll: true,
            grow_segments: false,
        }
    }
}

const PAGE: usize = 4096;

/// Sticky failure flag shared with the flusher thread.
#[derive(Default)]
struct Poison {
    flag: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Poison {
    fn set(&self, reason: String) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        r.get_or_insert(reason);
        self.flag.store(true, Ordering::Release);
    }

    fn error(&self) -> JournalError {
        let r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        JournalError::Poisoned {
            reason: r.clone().unwrap_or_else(|| "unknown".to_string()),
        }
    }
}

/// State shared with the interval flusher.
struct FlushShared {
    /// Current segment and how far the flusher has synced it.
    target: Mutex<(Arc<dyn MapMut>, usize)>,
    /// Write offset in the current segment, published by `append`.
    written: AtomicUsize,
    stop: AtomicBool,
    poison: Arc<Poison>,
    /// Flushes done by the flusher (for tests and metrics).
    flushes: AtomicU64,
}

struct Flusher {
    shared: Arc<FlushShared>,
    thread: Option<JoinHandle<()>>,
}

fn flusher_loop(shared: Arc<FlushShared>, interval: Duration) {
    while !shared.stop.load(Ordering::Acquire) && !shared.poison.flag.load(Ordering::Acquire) {
        std::thread::park_timeout(interval);
        let mut target = shared.target.lock().unwrap_or_else(|p| p.into_inner());
        let written = shared.written.load(Ordering::Acquire);
        if written > target.1 {
            if let Err(e) = target.0.flush(target.1, written - target.1) {
                shared.poison.set(format!("interval msync failed: {e}"));
                return;
            }
            target.1 = written;
            shared.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The single writer of a journal directory. See the module docs. Dropping it does not sync:
/// call [`Journal::sync`] first if the tail must be durable (the OS still writes the pages back
/// eventually; only a power loss can lose them).
pub struct Journal {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    opts: Options,
    _lock: LockGuard,
    map: Arc<dyn MapMut>,
    /// Cached `map.as_mut_ptr()`: the append path never calls through the trait.
    base: *mut u8,
    /// Where the append path leaves its fast path: half the segment while the next segment
    /// is not being prepared yet (crossing it starts the preparation), then `map.len()`.
    cap: usize,
    /// The next segment, being created and pre-faulted by a background thread (see
    /// [`Journal::make_room`]), so a roll does not stall appends for the zero fill.
    next: Option<Preparing>,
    /// Offset of the next frame in the current segment; everything from here on is zero.
    off: usize,
    /// Bytes of the current segment known durable (from the start).
    synced: usize,
    /// Segments were created without syncing their header and the directory (`sync_on_roll`
    /// off): `sync` syncs the directory too.
    dir_unsynced: bool,
    /// Full segments not yet synced (only with `sync_on_roll` off): `sync` flushes them first,
    /// each from its first unsynced page to its end of data.
    /// Each is already being flushed by a background thread when one could be started.
    unsynced: Vec<Unsynced>,
    next_seq: u64,
    /// Stored CRC of the last record (the chain value).
    prev_crc: u32,
    /// Hardware CRC32C, detected once at open.
    hw: Option<Hw>,
    /// `opts.durability != None`: the only durability check on the append path.
    after_append: bool,
    poison: Arc<Poison>,
    /// Set while a caller's payload closure runs: if it panics, the half-written bytes would
    /// break the "zeros after `off`" invariant, so the journal refuses further appends.
    filling: bool,
    flusher: Option<Flusher>,
}

// SAFETY: `base` points into `map`, which the Journal owns; moving the Journal to another thread
// moves sole write access with it.
unsafe impl Send for Journal {}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` on the real file system.
    pub fn open(dir: &Path, opts: Options) -> Result<(Journal, Recovery), JournalError> {
        Journal::open_with_storage(FsStorage::shared(), dir, opts)
    }

    /// Opens (creating if needed) the journal in `dir` on `storage`, runs recovery and positions
    /// the writer after the last valid record.
    pub fn open_with_storage(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: Options,
    ) -> Result<(Journal, Recovery), JournalError> {
        check_options(&opts)?;
        storage
            .create_dir_all(dir)
            .map_err(|e| JournalError::io(dir, "create journal directory", e))?;
        let lock = storage.lock(dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                JournalError::Locked {
                    dir: dir.to_path_buf(),
                }
            } else {
                JournalError::io(dir.join("LOCK"), "lock journal directory", e)
            }
        })?;
        let rec = recover(storage.as_ref(), dir)?;
        let poison = Arc::new(Poison::default());
        let (map, off) = match rec.scan.paths.last() {
            Some(path) => {
                let map = storage
                    .open_rw(path)
                    .map_err(|e| JournalError::io(path, "map last segment read-write", e))?;
                let off = rec
                    .scan
                    .segments
                    .last()
                    .map_or(0, |s| s.bytes_used as usize);
                if opts.pretouch {
                    pretouch_live(map.as_ref(), off);
                }
                (map, off)
            }
            None => {
                let segment = NewSegment {
                    size: first_segment_size(&opts),
                    base_seq: rec.scan.next_seq,
                    prev_chain: rec.scan.last_crc,
                    durable: true,
                };
                let map = create_segment(storage.as_ref(), dir, &opts, segment, &poison, None)?;
                (map, SEGMENT_HEADER_LEN)
            }
        };
        let mut journal = Journal {
            base: map.as_mut_ptr(),
            cap: prepare_mark(map.len(), off, opts.segment_size),
            next: None,
            map,
            storage,
            dir: dir.to_path_buf(),
            opts,
            _lock: lock,
            off,
            synced: off,
            dir_unsynced: false,
            unsynced: Vec::new(),
            next_seq: rec.scan.next_seq,
            prev_crc: rec.scan.last_crc,
            hw: Hw::detect(),
            after_append: opts.durability != Durability::None,
            poison,
            filling: false,
            flusher: None,
        };
        if let Durability::IntervalMs(ms) = opts.durability {
            journal.start_flusher(ms)?;
        }
        Ok((journal, rec.recovery))
    }

    fn start_flusher(&mut self, ms: u64) -> Result<(), JournalError> {
        let shared = Arc::new(FlushShared {
            target: Mutex::new((self.map.clone(), self.off)),
            written: AtomicUsize::new(self.off),
            stop: AtomicBool::new(false),
            poison: self.poison.clone(),
            flushes: AtomicU64::new(0),
        });
        let s = shared.clone();
        let interval = Duration::from_millis(ms.max(1));
        let thread = std::thread::Builder::new()
            .name("keel-journal-flush".to_string())
            .spawn(move || flusher_loop(s, interval))
            .map_err(|e| JournalError::io(&self.dir, "spawn flusher thread", e))?;
        self.flusher = Some(Flusher {
            shared,
            thread: Some(thread),
        });
        Ok(())
    }

    /// Appends a record and returns its sequence number.
    #[inline]
    pub fn append(
        &mut self,
        ts_ns: u64,
        kind: u16,
        ver: u16,
        payload: &[u8],
    ) -> Result<u64, JournalError> {
        match self.hw {
            Some(h) => self.append_copy(h, ts_ns, kind, ver, payload),
            None => self.append_copy(Sw, ts_ns, kind, ver, payload),
        }
    }

    #[inline(always)]
    fn append_copy<K: Kernel>(
        &mut self,
        k: K,
        ts_ns: u64,
        kind: u16,
        ver: u16,
        payload: &[u8],
    ) -> Result<u64, JournalError> {
        let p = self.reserve(payload.len())?;
        let len = (FRAME_HEADER_LEN + payload.len()) as u32; // reserve() checked it fits u32
        let seq = self.next_seq;
        let kw = frame_kw(kind, ver);
        // SAFETY: reserve() proved `[p, p + round_up8(len))` lies in the mapping; it is 8-aligned,
        // zero and unpublished (no reader looks at it yet), and cannot overlap `payload` (caller
        // memory, or published bytes of a reader's mapping). The payload is copied in one pass
        // that also CRCs it from the source.
        let body = unsafe {
            write_header(p, seq, ts_ns, kw);
            k.copy_and_body(p.add(FRAME_HEADER_LEN), payload, len, seq, ts_ns, kw)
        };
        self.publish(k, p, len, body)?;
        Ok(seq)
    }

    /// Appends a record of `payload_len` bytes whose payload `fill` writes in place, straight
    /// into the mapping (8-byte aligned, initially zero), e.g. an rkyv serializer. `fill` must
    /// not panic; if it does, the journal refuses further appends (reopen to recover).
    #[inline]
    pub fn append_with<F: FnOnce(&mut [u8])>(
        &mut self,
        ts_ns: u64,
        kind: u16,
        ver: u16,
        payload_len: usize,
        fill: F,
    ) -> Result<u64, JournalError> {
        let p = self.reserve(payload_len)?;
        let len = (FRAME_HEADER_LEN + payload_len) as u32; // reserve() checked it fits u32
        let seq = self.next_seq;
        let kw = frame_kw(kind, ver);
        // SAFETY: as in `append`: `[p, p + round_up8(len))` is in the mapping, 8-aligned, zero
        // and unpublished; `fill` gets exactly the payload bytes.
        unsafe {
            write_header(p, seq, ts_ns, kw);
            self.filling = true;
            fill(std::slice::from_raw_parts_mut(
                p.add(FRAME_HEADER_LEN),
                payload_len,
            ));
            self.filling = false;
        }
        // One contiguous CRC pass over header fields + payload, as the reader does.
        // SAFETY: as above; the frame is readable and its padding still zero.
        match self.hw {
            Some(h) => {
                let body = unsafe { h.body_in_place(p, len, seq, ts_ns, kw) };
                self.publish(h, p, len, body)?;
            }
            None => {
                let body = unsafe { Sw.body_in_place(p, len, seq, ts_ns, kw) };
                self.publish(Sw, p, len, body)?;
            }
        }
        Ok(seq)
    }

    /// Checks that the journal accepts appends and that a frame with `payload_len` bytes fits
    /// the current segment (rolling if not); returns the frame's address.
    #[inline(always)]
    fn reserve(&mut self, payload_len: usize) -> Result<*mut u8, JournalError> {
        if self.poison.flag.load(Ordering::Relaxed) || self.filling {
            return Err(self.poisoned_error());
        }
        if payload_len > u32::MAX as usize - FRAME_HEADER_LEN {
            return Err(self.too_large(payload_len));
        }
        let frame = round_up8(FRAME_HEADER_LEN + payload_len);
        // `off <= cap <= map.len()` always.
        if frame > self.cap - self.off {
            self.make_room(frame)?; // also proves frame (hence len) fits a u32
        }
        // SAFETY: off + frame <= cap, so this stays inside the mapping.
        Ok(unsafe { self.base.add(self.off) })
    }

    /// Chains the record at `p` (header and payload written, body CRC `body`), publishes it
    /// and advances.
    #[inline(always)]
    fn publish<K: Kernel>(
        &mut self,
        k: K,
        p: *mut u8,
        len: u32,
        body: u32,
    ) -> Result<(), JournalError> {
        let crc = k.mix(self.prev_crc, body);
        // SAFETY: `p` is the 8-aligned frame start returned by reserve(), inside the mapping.
        // Publish: readers acquire-load this word and only then read the bytes behind it.
        unsafe { (*(p as *const AtomicU64)).store(pack_word(crc, len), Ordering::Release) };
        self.off += round_up8(len as usize);
        self.prev_crc = crc;
        self.next_seq += 1;
        if self.after_append {
            self.after_append()?;
        }
        Ok(())
    }

    /// Durability work after an append, for `EveryRecord` and `IntervalMs` only.
    #[cold]
    #[inline(never)]
    fn after_append(&mut self) -> Result<(), JournalError> {
        match self.opts.durability {
            Durability::None => Ok(()),
            Durability::EveryRecord => self.sync(),
            Durability::IntervalMs(_) => {
                if let Some(f) = &self.flusher {
                    f.shared.written.store(self.off, Ordering::Release);
                }
                Ok(())
            }
        }
    }

    #[cold]
    fn too_large(&self, payload_len: usize) -> JournalError {
        JournalError::RecordTooLarge {
            frame_len: (payload_len as u64).saturating_add(FRAME_HEADER_LEN as u64),
            capacity: self.opts.segment_size - SEGMENT_HEADER_LEN as u64,
        }
    }

    #[cold]
    fn poisoned_error(&self) -> JournalError {
        if self.filling {
            JournalError::Poisoned {
                reason: "a payload writer panicked mid-record".to_string(),
            }
        } else {
            self.poison.error()
        }
    }

    /// Makes everything appended so far durable (msync). The engine calls this before any order
    /// leaves the process. A failure poisons the journal.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.poison.flag.load(Ordering::Acquire) || self.filling {
            return Err(self.poisoned_error());
        }
        // Earlier segments first, in order, so a synced journal has no hole.
        for segment in std::mem::take(&mut self.unsynced) {
            if let Err(e) = segment.finish() {
                self.poison
                    .set(format!("msync of an earlier segment failed: {e}"));
                return Err(self.poison.error());
            }
        }
        if self.off > self.synced {
            // Flush from the start of the last page already synced (msync works on pages).
            let from = self.synced & !(PAGE - 1);
            if let Err(e) = self.map.flush(from, self.off - from) {
                self.poison.set(format!(
                    "msync of {} failed: {e}",
                    self.segment_path(self.current_base()).display()
                ));
                return Err(self.poison.error());
            }
            self.synced = self.off;
        }
        if self.dir_unsynced {
            if let Err(e) = self.storage.sync_dir(&self.dir) {
                self.poison
                    .set(format!("fsync of {} failed: {e}", self.dir.display()));
                return Err(self.poison.error());
            }
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// Seq the next appended record will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Options in effect.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Number of syncs done by the interval flusher so far (0 for other policies).
    pub fn background_flushes(&self) -> u64 {
        self.flusher
            .as_ref()
            .map_or(0, |f| f.shared.flushes.load(Ordering::Relaxed))
    }

    fn segment_path(&self, base_seq: u64) -> PathBuf {
        self.dir.join(segment_file_name(base_seq))
    }

    fn current_base(&self) -> u64 {
        // SAFETY: the header occupies the first 64 bytes of every mapping we hold.
        let b = unsafe { std::slice::from_raw_parts(self.base, SEGMENT_HEADER_LEN) };
        crate::format::le_u64(b, 16)
    }

    /// The append path's slow path: a frame of `frame` bytes does not fit below `cap`. At the
    /// first crossing of a segment's half-way mark, starts preparing the next segment in the
    /// background (file creation, zero fill and page faults take milliseconds per segment;
    /// kept off the thread that appends, a roll then only writes the header and renames).
    /// Rolls when the frame does not fit the segment at all.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, frame: usize) -> Result<(), JournalError> {
        if self.cap < self.map.len() {
            self.cap = self.map.len();
            self.prepare_next();
            if frame <= self.cap - self.off {
                return Ok(());
            }
        }
        self.roll(frame)?;
        if frame > self.cap - self.off {
            // The new segment's mark falls inside this frame: past it once the frame is in,
            // so start now (`off <= cap` must hold after every append).
            self.cap = self.map.len();
            self.prepare_next();
        }
        Ok(())
    }

    /// Starts creating the next segment under a temporary name on a background thread. If the
    /// thread cannot be spawned, the roll creates the segment itself.
    fn prepare_next(&mut self) {
        if self.next.is_some() {
            return;
        }
        let storage = self.storage.clone();
        let tmp = self.dir.join(NEXT_SEGMENT_TMP);
        let size = self.next_size(0);
        let pretouch = self.opts.pretouch;
        self.next = std::thread::Builder::new()
            .name("keel-journal-next".to_string())
            .spawn(move || new_segment_file(storage.as_ref(), &tmp, size, pretouch))
            .ok()
            .map(|handle| (size, handle));
    }

    /// Size of the segment after the current one, for a first frame of `frame` bytes: twice
    /// the current one up to `segment_size` (see [`first_segment_size`]), and at least what
    /// the frame needs.
    fn next_size(&self, frame: usize) -> u64 {
        let full = self.opts.segment_size;
        let grown = (2 * self.map.len() as u64).min(full);
        grown.max(
            ((SEGMENT_HEADER_LEN + frame) as u64)
                .next_multiple_of(PAGE as u64)
                .min(full),
        )
    }

    /// The prepared next segment, if one was prepared and its preparation succeeded. A failed
    /// preparation is forgotten (its file removed): the roll then creates the segment itself,
    /// and reports that attempt's error if it fails too.
    fn take_prepared(&mut self) -> Option<(u64, Arc<dyn MapMut>)> {
        let (size, handle) = self.next.take()?;
        match handle.join() {
            Ok(Ok(map)) => Some((size, map)),
            Ok(Err(_)) | Err(_) => {
                let _ = self.storage.remove(&self.dir.join(NEXT_SEGMENT_TMP));
                None
            }
        }
    }

    /// Starts a new segment for a frame of `frame` bytes that does not fit the current one.
    fn roll(&mut self, frame: usize) -> Result<(), JournalError> {
        let capacity = self.opts.segment_size as usize - SEGMENT_HEADER_LEN;
        // An empty segment is only left behind for a bigger one (a segment still growing
        // towards `segment_size`).
        let fits_next = self.next_size(frame) as usize >= SEGMENT_HEADER_LEN + frame
            && self.next_size(frame) > self.map.len() as u64;
        if frame > capacity
            || frame > u32::MAX as usize
            || (self.off == SEGMENT_HEADER_LEN && !fits_next)
        {
            return Err(JournalError::RecordTooLarge {
                frame_len: frame as u64,
                capacity: capacity.max(self.map.len() - SEGMENT_HEADER_LEN) as u64,
            });
        }
        // Everything in this segment must be durable before the next one exists: recovery and
        // readers rely on "only the last segment can have a torn tail".
        if self.opts.sync_on_roll {
            self.sync()?;
        } else if self.off > self.synced {
            let (map, from, to) = (self.map.clone(), self.synced & !(PAGE - 1), self.off);
            // Write-back of the full segment starts now on another thread (the kernel's share
            // of a sync is most of its cost); `sync` waits for it.
            let spare = map.clone();
            let flushing = std::thread::Builder::new()
                .name("keel-journal-sync".to_string())
                .spawn(move || spare.flush(from, to - from));
            self.unsynced.push(match flushing {
                Ok(handle) => Unsynced::Flushing(handle),
                Err(_) => Unsynced::Waiting(map, from, to),
            });
        }
        let size = self.next_size(frame);
        let prepared = match self.take_prepared() {
            Some((s, map)) if s >= SEGMENT_HEADER_LEN as u64 + frame as u64 => Some((s, map)),
            // Too small for this frame: made again at the size it needs.
            Some(_) => {
                let _ = self.storage.remove(&self.dir.join(NEXT_SEGMENT_TMP));
                None
            }
            None => None,
        };
        // A journal that syncs at rolls makes each new segment durable as it appears; one
        // that does not leaves that (header and directory entry) to its next `sync`, and a
        // roll then waits for no disk.
        let durable = self.opts.sync_on_roll;
        let segment = NewSegment {
            size,
            base_seq: self.next_seq,
            prev_chain: self.prev_crc,
            durable,
        };
        let map = create_segment(
            self.storage.as_ref(),
            &self.dir,
            &self.opts,
            segment,
            &self.poison,
            prepared.map(|(_, map)| map),
        )?;
        self.dir_unsynced |= !durable;
        if let Some(f) = &self.flusher {
            let mut t = f.shared.target.lock().unwrap_or_else(|p| p.into_inner());
            *t = (map.clone(), SEGMENT_HEADER_LEN);
            f.shared
                .written
                .store(SEGMENT_HEADER_LEN, Ordering::Release);
        }
        self.base = map.as_mut_ptr();
        self.cap = prepare_mark(map.len(), SEGMENT_HEADER_LEN, self.opts.segment_size);
        self.map = map;
        self.off = SEGMENT_HEADER_LEN;
        self.synced = if durable { SEGMENT_HEADER_LEN } else { 0 };
        Ok(())
    }
}

/// A segment being prepared: its size and the thread making it.
type Preparing = (u64, JoinHandle<std::io::Result<Arc<dyn MapMut>>>);

/// What [`create_segment`] makes.
struct NewSegment {
    size: u64,
    base_seq: u64,
    prev_chain: u32,
    /// Sync its header and the directory before returning.
    durable: bool,
}

/// A full segment not yet known durable: `(mapping, from, to)` still to flush, or being
/// flushed by a background thread.
enum Unsynced {
    Waiting(Arc<dyn MapMut>, usize, usize),
    Flushing(JoinHandle<std::io::Result<()>>),
}

impl Unsynced {
    /// Flushes the range, or waits for the background flush and returns its result.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Unsynced::Waiting(map, from, to) => map.flush(from, to - from),
            Unsynced::Flushing(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("flush thread panicked"))),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Background work ends before the journal does: flush results only matter to `sync`
        // (dropping does not sync), and a prepared segment nobody will use is removed.
        for segment in std::mem::take(&mut self.unsynced) {
            if let Unsynced::Flushing(handle) = segment {
                let _ = handle.join();
            }
        }
        if self.take_prepared().is_some() {
            let _ = self.storage.remove(&self.dir.join(NEXT_SEGMENT_TMP));
        }
        if let Some(f) = &mut self.flusher {
            f.shared.stop.store(true, Ordering::Release);
            if let Some(t) = f.thread.take() {
                t.thread().unpark();
                let _ = t.join();
            }
        }
    }
}

fn check_options(opts: &Options) -> Result<(), JournalError> {
    if opts.segment_size < PAGE as u64 || !opts.segment_size.is_multiple_of(8) {
        return Err(JournalError::InvalidOptions(format!(
            "segment_size {} must be a multiple of 8 and at least {PAGE}",
            opts.segment_size
        )));
    }
    if opts.segment_size > u64::from(u32::MAX) || usize::try_from(opts.segment_size).is_err() {
        return Err(JournalError::InvalidOptions(
            "segment_size must be below 4 GiB (frame lengths are u32)".to_string(),
        ));
    }
    if opts.durability == Durability::IntervalMs(0) {
        return Err(JournalError::InvalidOptions(
            "IntervalMs(0): use EveryRecord".to_string(),
        ));
    }
    Ok(())
}

/// The temporary name of a segment prepared ahead of its roll (see [`Journal::make_room`]);
/// like every `*.seg.tmp`, recovery removes it if a process stops before using it.
const NEXT_SEGMENT_TMP: &str = "next.seg.tmp";

/// Where the append path of a segment of `len` bytes, written up to `off`, first leaves its
/// fast path to start preparing the next segment: half way through a full-size segment (at
/// once when a reopened journal is past that); at once in a segment still growing towards
/// `full` (the next one is twice as big, and making it takes longer than filling this one's
/// second half); never in a full segment (its roll makes the next one itself).
fn prepare_mark(len: usize, off: usize, full: u64) -> usize {
    let mark = if (len as u64) < full {
        off
    } else {
        ((len / 2) & !7).max(off)
    };
    if mark < len { mark } else { len }
}

/// The first segment of a new journal: a sixteenth of `segment_size`, at least 1 MiB (and
/// never more than `segment_size`); later segments double up to `segment_size`. Creating a
/// segment means zero-filling fresh memory, which the thread opening the journal waits for:
/// on the 2-vCPU VM of the benchmarks, up to 20 ms for 16 MiB. Later segments are prepared
/// in the background.
fn first_segment_size(opts: &Options) -> u64 {
    let full = opts.segment_size;
    if !opts.grow_segments {
        return full;
    }
    ((full / 16) & !7).max(1 << 20).min(full)
}

/// Creates a zero-filled segment file of `size` bytes at `tmp` (removing a stale one), maps
/// it and, with `pretouch`, faults its pages in.
fn new_segment_file(
    storage: &dyn Storage,
    tmp: &Path,
    size: u64,
    pretouch: bool,
) -> std::io::Result<Arc<dyn MapMut>> {
    if storage.exists(tmp) {
        storage.remove(tmp)?;
    }
    let map = match storage.create_segment(tmp, size) {
        Ok(m) => m,
        Err(e) => {
            let _ = storage.remove(tmp); // best effort; recovery removes it otherwise
            return Err(e);
        }
    };
    if map.len() < SEGMENT_HEADER_LEN || map.len() as u64 != size {
        return Err(std::io::Error::other("mapping has the wrong size"));
    }
    if pretouch {
        pretouch_new(map.as_ref());
    }
    Ok(map)
}

/// Creates segment `base_seq` under a temporary name (or takes `prepared`, already created at
/// [`NEXT_SEGMENT_TMP`]), writes and syncs its header, renames it into place and syncs the
/// directory, so readers never see a half-made segment.
fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    opts: &Options,
    segment: NewSegment,
    poison: &Poison,
    prepared: Option<Arc<dyn MapMut>>,
) -> Result<Arc<dyn MapMut>, JournalError> {
    let NewSegment {
        size,
        base_seq,
        prev_chain,
        durable,
    } = segment;
    let name = segment_file_name(base_seq);
    let path = dir.join(&name);
    let (map, tmp) = match prepared {
        Some(map) => (map, dir.join(NEXT_SEGMENT_TMP)),
        None => {
            let tmp = dir.join(format!("{}{TMP_EXT}", &name[..name.len() - 4]));
            let map = new_segment_file(storage, &tmp, size, opts.pretouch)
                .map_err(|e| JournalError::io(&tmp, "create segment", e))?;
            (map, tmp)
        }
    };
    let header = SegmentHeader {
        schema_version: opts.schema_version,
        base_seq,
        prev_chain,
    }
    .encode();
    // SAFETY: mapping is at least 64 bytes (checked) and not yet visible to anyone.
    unsafe { std::ptr::copy_nonoverlapping(header.as_ptr(), map.as_mut_ptr(), header.len()) };
    let fatal = |what: &str, e: std::io::Error| {
        poison.set(format!("{what} of {} failed: {e}", path.display()));
        poison.error()
    };
    if durable {
        map.flush(0, SEGMENT_HEADER_LEN)
            .map_err(|e| fatal("msync of new segment header", e))?;
    }
    storage
        .rename(&tmp, &path)
        .map_err(|e| JournalError::io(&path, "rename new segment into place", e))?;
    if durable {
        storage
            .sync_dir(dir)
            .map_err(|e| fatal("directory fsync after creating segment", e))?;
    }
    Ok(map)
}

/// Faults in every page of a brand-new (unpublished) segment by writing a zero into it.
fn pretouch_new(map: &dyn MapMut) {
    let base = map.as_mut_ptr();
    for off in (0..map.len()).step_by(PAGE) {
        // SAFETY: in bounds; nobody else sees this segment yet. Volatile so it is not elided.
        unsafe { std::ptr::write_volatile(base.add(off), 0) };
    }
}

/// Faults in the not-yet-written pages of a live segment. Only page starts at or after `from`
/// are touched: those bytes are zero and unpublished, and we store zero atomically because a
/// tail reader may be loading the same word.
fn pretouch_live(map: &dyn MapMut, from: usize) {
    let base = map.as_mut_ptr();
    let first = (from + PAGE - 1) & !(PAGE - 1);
    for off in (first..map.len().saturating_sub(7)).step_by(PAGE) {
        // SAFETY: in bounds, 8-aligned (page aligned), zero and unpublished.
        unsafe { (*(base.add(off) as *const AtomicU64)).store(0, Ordering::Relaxed) };
    }
}

/// The frame word at offset 24: `kind | ver << 16`, reserved (bytes 28..32) zero.
#[inline(always)]
fn frame_kw(kind: u16, ver: u16) -> u64 {
    u64::from(kind) | u64::from(ver) << 16
}

/// Writes frame bytes `[8..32)` (seq, ts_ns, kind/ver/reserved) as three little-endian words.
///
/// # Safety
/// `p[8..32)` is writable and unpublished.
#[inline(always)]
unsafe fn write_header(p: *mut u8, seq: u64, ts_ns: u64, kw: u64) {
    // SAFETY: caller's contract; unaligned stores so nothing here assumes alignment.
    unsafe {
        (p.add(8) as *mut u64).write_unaligned(seq.to_le());
        (p.add(16) as *mut u64).write_unaligned(ts_ns.to_le());
        (p.add(24) as *mut u64).write_unaligned(kw.to_le());
    }
}
