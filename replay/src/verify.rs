//! `replay verify`: re-run a journal's inputs through a fresh core and compare every
//! decision, and every checkpoint digest, with what the journal recorded.
//!
//! Works on any session journal (backtest, paper, live), because the core's only inputs are
//! the journal's input records. A divergence means the code that replayed is not the code
//! that recorded, or the journal was altered after the fact with a valid CRC chain.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use keel_engine::Core;
use keel_engine::event::{Decision, Input};
use keel_journal::JournalError;

use crate::codec::{DecodeError, Decoded};
use crate::resolve::{ResolveError, RunReader, RunRecord};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{dir}: {source}")]
    Decode { dir: PathBuf, source: DecodeError },
    #[error(
        "{dir} is a candle store, not a session journal; replay verify needs the journal of a backtest, paper or live run"
    )]
    CandleStore { dir: PathBuf },
    #[error("{dir} holds no journal records; pass a run journal such as runs/<name>/journal")]
    Empty { dir: PathBuf },
    #[error(transparent)]
    Resolve(Box<ResolveError>),
}

impl From<ResolveError> for VerifyError {
    fn from(e: ResolveError) -> VerifyError {
        match e {
            ResolveError::Journal(e) => VerifyError::Journal(e),
            ResolveError::Decode { dir, source } => VerifyError::Decode { dir, source },
            e => VerifyError::Resolve(Box::new(e)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    pub seq: u64,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct VerifyOutcome {
    pub inputs: u64,
    pub decisions: u64,
    pub checkpoints: u64,
    pub divergences: Vec<Divergence>,
    pub final_digest: [u8; 32],
    /// The candle store a backtest journal's bars were read from.
    pub store: Option<PathBuf>,
}

/// Stops collecting after this many divergences: after the first, later ones are mostly
/// consequences.
const DIVERGENCES_KEPT: usize = 20;

pub fn verify(dir: &Path) -> Result<VerifyOutcome, VerifyError> {
    verify_with_store(dir, None)
}

/// [`verify`], reading a backtest's bars from `store` instead of the store its journal names.
pub fn verify_with_store(dir: &Path, store: Option<&Path>) -> Result<VerifyOutcome, VerifyError> {
    let mut reader = RunReader::open(dir, store)?;
    let mut core = Core::new();
    let mut out = VerifyOutcome::default();
    let mut expected: VecDeque<Decision> = VecDeque::new();
    let mut last_input_seq = 0;
    let diverge = |out: &mut VerifyOutcome, seq: u64, what: String| {
        if out.divergences.len() < DIVERGENCES_KEPT {
            out.divergences.push(Divergence { seq, what });
        }
    };
    let mut checkpoint_after_last_input = false;
    while let Some(RunRecord {
        seq,
        ts_ns,
        decoded,
        ..
    }) = reader.next_record()?
    {
        match decoded {
            Decoded::Input(event) => {
                if out.inputs == 0 && !matches!(event, keel_engine::Event::SessionStart(_)) {
                    diverge(
                        &mut out,
                        seq,
                        "the first input is not a session_start: the journal's beginning is missing".into(),
                    );
                }
                checkpoint_after_last_input = false;
                if let Some(d) = expected.pop_front() {
                    let what = format!(
                        "replay decided {d:?} after input {last_input_seq}, the journal has no such decision"
                    );
                    diverge(&mut out, seq, what);
                    expected.clear();
                }
                out.inputs += 1;
                last_input_seq = seq;
                let input = Input { seq, ts_ns, event };
                expected.extend(core.apply(&input).iter().cloned());
            }
            Decoded::Decision(recorded) => {
                out.decisions += 1;
                match expected.pop_front() {
                    Some(d) if d == recorded => {}
                    Some(d) => diverge(
                        &mut out,
                        seq,
                        format!("journal has {recorded:?}, replay decided {d:?}"),
                    ),
                    None => diverge(
                        &mut out,
                        seq,
                        format!("journal has {recorded:?}, replay decided nothing"),
                    ),
                }
            }
            Decoded::Checkpoint(cp) => {
                out.checkpoints += 1;
                checkpoint_after_last_input = true;
                let digest = core.digest();
                if cp.after_seq != last_input_seq || cp.digest != digest {
                    diverge(
                        &mut out,
                        seq,
                        format!(
                            "checkpoint after input {} has digest {}, replay after input {} has {}",
                            cp.after_seq,
                            keel_engine::core::hex(&cp.digest),
                            last_input_seq,
                            keel_engine::core::hex(&digest)
                        ),
                    );
                }
            }
            Decoded::StoredCandle(_) => {
                return Err(VerifyError::CandleStore {
                    dir: dir.to_path_buf(),
                });
            }
            // Resolved into candle inputs by the reader; the source is only where they live.
            Decoded::CandleRef(_) | Decoded::FirstCandleRef { .. } => {}
        }
    }
    if out.inputs == 0 && out.decisions == 0 && out.checkpoints == 0 {
        return Err(VerifyError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    if let Some(d) = expected.pop_front() {
        let what = format!("replay decided {d:?} after the last input, the journal ends first");
        diverge(&mut out, last_input_seq, what);
    }
    if !checkpoint_after_last_input {
        // Every session ends with a checkpoint; a journal without one was cut short (or its
        // session is still running), so "0 divergences" would vouch for less than it says.
        diverge(
            &mut out,
            last_input_seq,
            "no checkpoint after the last input: the journal ends early (cut off, or the \
             session is still running or crashed), so its end cannot be verified"
                .into(),
        );
    }
    out.final_digest = core.digest();
    out.store = reader.store().map(Path::to_path_buf);
    Ok(out)
}
