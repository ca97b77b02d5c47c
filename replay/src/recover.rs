//! Rebuilding a core from a session journal: the newest valid snapshot, then every input
//! recorded after it. This is how a restarted process gets back exactly the core it had.
//!
//! A snapshot is trusted only if it decodes with this build's state layout and re-hashes to
//! the digest stored beside it; otherwise it is skipped (and reported) and an older one, or
//! the journal's beginning, is used. Skipping costs replay time, never correctness.

use std::path::{Path, PathBuf};

use keel_engine::Core;
use keel_engine::core::STATE_VERSION;
use keel_engine::event::Input;
use keel_journal::{JournalError, load_newest_valid, write_snapshot};

use crate::codec::{DecodeError, Decoded};
use crate::resolve::{ResolveError, RunReader, RunRecord};

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{dir}: {source}")]
    Decode { dir: PathBuf, source: DecodeError },
    #[error(transparent)]
    Resolve(Box<ResolveError>),
}

impl From<ResolveError> for RecoverError {
    fn from(e: ResolveError) -> RecoverError {
        match e {
            ResolveError::Journal(e) => RecoverError::Journal(e),
            ResolveError::Decode { dir, source } => RecoverError::Decode { dir, source },
            e => RecoverError::Resolve(Box::new(e)),
        }
    }
}

/// A backtest's run journal (its bars are references into a candle store): not a session a
/// paper or live process can resume.
pub(crate) fn backtest_journal(dir: &Path, seq: u64) -> RecoverError {
    RecoverError::Decode {
        dir: dir.to_path_buf(),
        source: DecodeError::WrongKind {
            seq,
            expected: "a record of a paper or live session (this is a backtest's run journal)",
            found: "candle_ref",
        },
    }
}

pub struct Recovered {
    pub core: Core,
    /// Sequence number of the snapshot used, if any.
    pub snapshot_seq: Option<u64>,
    /// Inputs replayed after the snapshot.
    pub replayed_inputs: u64,
    /// Snapshots that were not used, and why.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    /// Decisions the core makes for the journal's last input that the journal does not hold
    /// (the process stopped between journaling an input and journaling all its decisions).
    /// Nothing was dispatched for that input yet: dispatch happens only after every decision
    /// is journaled.
    pub unjournaled: Vec<keel_engine::event::Decision>,
}

/// Writes a snapshot of `core` into the journal directory `dir`. The caller must have
/// synced the journal up to `core`'s last input first, so no snapshot is ever ahead of the
/// durable journal.
pub fn snapshot(dir: &Path, core: &Core) -> Result<PathBuf, JournalError> {
    let state = core.state_bytes();
    let digest = *blake3::hash(&state).as_bytes();
    write_snapshot(dir, core.state().last_seq, STATE_VERSION, digest, &state)
}

pub fn recover(dir: &Path) -> Result<Recovered, RecoverError> {
    let load = load_newest_valid(dir)?;
    let mut skipped = load.skipped;
    let mut start = None;
    if let Some(snap) = load.snapshot {
        match restore(&snap.state, snap.version, &snap.digest) {
            Ok(core) => start = Some((snap.seq, core)),
            Err(why) => skipped.push((snap.path, why)),
        }
    }
    let (snapshot_seq, mut core) = match start {
        Some((seq, core)) => (Some(seq), core),
        None => (None, Core::new()),
    };
    // Any session journal: a backtest's bars are read back from its candle store.
    let from = snapshot_seq.map_or(0, |seq| seq + 1);
    let mut reader = RunReader::open_from(dir, None, from).map_err(RecoverError::from)?;
    let mut replayed = 0;
    let mut last_decisions: Vec<keel_engine::event::Decision> = Vec::new();
    let mut journaled_since_input = 0usize;
    while let Some(RunRecord {
        seq,
        ts_ns,
        decoded,
        ..
    }) = reader.next_record().map_err(RecoverError::from)?
    {
        match decoded {
            Decoded::Input(event) => {
                let input = Input { seq, ts_ns, event };
                last_decisions.clear();
                last_decisions.extend_from_slice(core.apply(&input));
                journaled_since_input = 0;
                replayed += 1;
            }
            Decoded::Decision(_) => journaled_since_input += 1,
            _ => {}
        }
    }
    let unjournaled = last_decisions
        .get(journaled_since_input..)
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    Ok(Recovered {
        core,
        snapshot_seq,
        replayed_inputs: replayed,
        skipped_snapshots: skipped,
        unjournaled,
    })
}

fn restore(state: &[u8], version: u32, digest: &[u8; 32]) -> Result<Core, String> {
    if version != STATE_VERSION {
        return Err(format!(
            "state version {version}, this build reads {STATE_VERSION}"
        ));
    }
    let core = Core::from_state_bytes(state)?;
    if core.digest() != *digest {
        return Err("restored state does not re-hash to the snapshot's digest".into());
    }
    Ok(core)
}
