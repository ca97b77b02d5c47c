//! Snapshots: `(seq, version, digest, state bytes)` saved next to the journal in
//! `DIR/snapshots/{seq:020}.snap`. Written to a temp file, fsynced, renamed, and the directory
//! fsynced, so a snapshot file either is complete or does not exist. Recovery = the newest
//! snapshot that validates + replay of records with `seq > snapshot.seq`
//! ([`crate::Reader::from_seq`]).
//!
//! File layout (little-endian): `magic b"KEELSNP\0" | version u32 | reserved u32 | seq u64 |
//! digest [u8; 32] | len u64 | crc u32 | reserved u32 | state[len]`, where `crc` is CRC32C of the
//! 64 bytes before it followed by the state bytes.
//!
//! Snapshots use `std::fs` directly rather than [`crate::Storage`]: they are written rarely, off
//! the hot path, and their crash safety is the classic temp + fsync + rename.
//!
//! Alignment: `Snapshot::state` is a plain `Vec<u8>` with no alignment guarantee beyond 1; a
//! caller that accesses it as an rkyv archive must copy it into an `rkyv::util::AlignedVec` first.

use crate::error::JournalError;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"KEELSNP\0";
const HEADER_LEN: usize = 72;
const SNAP_DIR: &str = "snapshots";
const SNAP_EXT: &str = ".snap";

/// A loaded, validated snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Seq of the last record whose effect the state includes.
    pub seq: u64,
    pub version: u32,
    pub digest: [u8; 32],
    pub state: Vec<u8>,
    pub path: PathBuf,
}

/// Result of [`load_newest_valid`]: the newest valid snapshot, and every newer one that did not
/// validate (with the reason), so the operator hears about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotLoad {
    pub snapshot: Option<Snapshot>,
    pub skipped: Vec<(PathBuf, String)>,
}

fn snap_err(path: &Path, what: &str, e: std::io::Error) -> JournalError {
    JournalError::Snapshot {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

fn encode_header(seq: u64, version: u32, digest: &[u8; 32], state: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    h[24..56].copy_from_slice(digest);
    h[56..64].copy_from_slice(&(state.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[..64]), state);
    h[64..68].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Durably writes a snapshot of `state` taken after record `seq` of the journal in `dir`.
pub fn write_snapshot(
    dir: &Path,
    seq: u64,
    version: u32,
    digest: [u8; 32],
    state: &[u8],
) -> Result<PathBuf, JournalError> {
    let snap_dir = dir.join(SNAP_DIR);
    fs::create_dir_all(&snap_dir).map_err(|e| snap_err(&snap_dir, "create directory", e))?;
    let path = snap_dir.join(format!("{seq:020}{SNAP_EXT}"));
    let tmp = snap_dir.join(format!("{seq:020}{SNAP_EXT}.tmp"));
    let header = encode_header(seq, version, &digest, state);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&header)?;
        f.write_all(state)?;
        f.sync_all()
    };
    write().map_err(|e| snap_err(&tmp, "write", e))?;
    fs::rename(&tmp, &path).map_err(|e| snap_err(&path, "rename into place", e))?;
    File::open(&snap_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| snap_err(&snap_dir, "fsync directory", e))?;
    Ok(path)
}

/// Removes all but the `keep` newest snapshots (by sequence number) of the journal in `dir`,
/// so a session that snapshots every day for months does not fill the disk. Files that are not
/// snapshots are left alone. Returns how many were removed. `keep` is at least 1: the newest
/// snapshot is never removed.
pub fn prune_snapshots(dir: &Path, keep: usize) -> Result<usize, JournalError> {
    let snap_dir = dir.join(SNAP_DIR);
    let entries = match fs::read_dir(&snap_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(snap_err(&snap_dir, "list directory", e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| snap_err(&snap_dir, "list directory", e))?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_suffix(SNAP_EXT)) else {
            continue;
        };
        if let (Ok(seq), 20) = (digits.parse::<u64>(), digits.len()) {
            found.push((seq, entry.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut removed = 0;
    for (_, path) in found.into_iter().skip(keep.max(1)) {
        fs::remove_file(&path).map_err(|e| snap_err(&path, "remove old snapshot", e))?;
        removed += 1;
    }
    Ok(removed)
}

/// Decodes and validates one snapshot file's bytes.
fn decode(path: &Path, name_seq: u64, b: Vec<u8>) -> Result<Snapshot, String> {
    if b.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the header", b.len()));
    }
    if b[0..8] != MAGIC {
        return Err("bad magic, not a keel snapshot".to_string());
    }
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let seq = u64_at(16);
    let len = u64_at(56);
    if len != (b.len() - HEADER_LEN) as u64 {
        return Err(format!(
            "header says {len} state bytes but the file holds {}",
            b.len() - HEADER_LEN
        ));
    }
    let stored = u32::from_le_bytes([b[64], b[65], b[66], b[67]]);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&b[..64]), &b[HEADER_LEN..]);
    if stored != computed {
        return Err(format!(
            "CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    if seq != name_seq {
        return Err(format!("header seq {seq} does not match the file name"));
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&b[24..56]);
    let version = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    let state = b[HEADER_LEN..].to_vec();
    Ok(Snapshot {
        seq,
        version,
        digest,
        state,
        path: path.to_path_buf(),
    })
}

/// The newest snapshot of the journal in `dir` that validates; newer invalid ones are listed in
/// `skipped`. No snapshot directory means no snapshot.
pub fn load_newest_valid(dir: &Path) -> Result<SnapshotLoad, JournalError> {
    let snap_dir = dir.join(SNAP_DIR);
    let mut out = SnapshotLoad::default();
    let entries = match fs::read_dir(&snap_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(snap_err(&snap_dir, "list directory", e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| snap_err(&snap_dir, "list directory", e))?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_suffix(SNAP_EXT)) else {
            continue;
        };
        match digits.parse::<u64>() {
            Ok(seq) if digits.len() == 20 => found.push((seq, entry.path())),
            _ => out.skipped.push((
                entry.path(),
                "file name is not `{20-digit seq}.snap`".to_string(),
            )),
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (seq, path) in found {
        let result = fs::read(&path)
            .map_err(|e| format!("read failed: {e}"))
            .and_then(|b| decode(&path, seq, b));
        match result {
            Ok(s) => {
                out.snapshot = Some(s);
                break;
            }
            Err(reason) => out.skipped.push((path, reason)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_snapshots_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [5u64, 50, 500, 5000] {
            write_snapshot(dir.path(), seq, 1, [seq as u8; 32], &[seq as u8; 10]).unwrap();
        }
        let other = dir.path().join(SNAP_DIR).join("notes.txt");
        fs::write(&other, "keep me").unwrap();
        assert_eq!(prune_snapshots(dir.path(), 2).unwrap(), 2);
        assert!(other.exists());
        let mut left: Vec<String> = fs::read_dir(dir.path().join(SNAP_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("{:020}{SNAP_EXT}", 500),
                format!("{:020}{SNAP_EXT}", 5000),
                "notes.txt".to_string()
            ]
        );
        assert_eq!(
            load_newest_valid(dir.path()).unwrap().snapshot.unwrap().seq,
            5000
        );
        // `keep = 0` still keeps the newest.
        assert_eq!(prune_snapshots(dir.path(), 0).unwrap(), 1);
        assert_eq!(
            load_newest_valid(dir.path()).unwrap().snapshot.unwrap().seq,
            5000
        );
    }

    #[test]
    fn newest_valid_snapshot_wins_and_a_corrupted_newer_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        write_snapshot(dir.path(), 10, 1, [1; 32], b"ten").unwrap();
        let p20 = write_snapshot(dir.path(), 20, 1, [2; 32], b"twenty").unwrap();
        let load = load_newest_valid(dir.path()).unwrap();
        let snap = load.snapshot.unwrap();
        assert_eq!(
            (snap.seq, snap.state.as_slice(), snap.digest),
            (20, &b"twenty"[..], [2; 32])
        );
        assert!(load.skipped.is_empty());

        let mut bytes = fs::read(&p20).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(&p20, bytes).unwrap();
        let load = load_newest_valid(dir.path()).unwrap();
        assert_eq!(load.snapshot.unwrap().seq, 10);
        assert_eq!(load.skipped.len(), 1);
        assert_eq!(load.skipped[0].0, p20);
        assert!(load.skipped[0].1.contains("CRC"), "{}", load.skipped[0].1);
    }

    #[test]
    fn missing_snapshot_directory_means_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_newest_valid(dir.path()).unwrap(),
            SnapshotLoad::default()
        );
    }

    #[test]
    fn truncated_snapshot_is_skipped_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_snapshot(dir.path(), 5, 3, [0; 32], &[7u8; 100]).unwrap();
        let b = fs::read(&p).unwrap();
        fs::write(&p, &b[..b.len() - 10]).unwrap();
        let load = load_newest_valid(dir.path()).unwrap();
        assert!(load.snapshot.is_none());
        assert_eq!(load.skipped.len(), 1);
    }
}
