//! The one engine loop: append the input to the journal → apply it to the core → append
//! each decision → hand the decisions to whoever executes them.
//!
//! Backtests, paper and live sessions all run through `EngineLoop::process`; only the `Io`
//! behind it changes (a candle store and the simulated venue, or venue adapters). The loop
//! is the journal's only writer, so the journal is the exact history of what the core saw
//! and decided, in order.

use keel_engine::candle::ARCHIVED_CANDLE_LEN;
use keel_engine::event::{Checkpoint, Decision, Event, Input};
use keel_engine::{Core, RecordKind};
use keel_journal::{Journal, JournalError};

use crate::codec::{CandleRef, CandleSource, Encoder};

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Source(String),
    #[error("{0}")]
    Dispatch(String),
}

/// What [`Io::next_event`] put into its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing: the session is over.
    End,
    /// An input, journaled as it is.
    Input,
    /// A candle read from a candle store's record: journaled as this reference to it.
    StoredCandle(CandleRef),
}

/// Where inputs come from and where decisions go.
pub trait Io {
    /// Puts the next event and its timestamp into `slot` (`event` and `ts_ns`; the loop sets
    /// `seq`), or says the session is over. One slot is reused for every input, so an event
    /// is written once and never copied on its way to the core.
    fn next_event(&mut self, slot: &mut Input) -> Result<Next, LoopError>;
    /// Execute one decision. `ts_ns` is the timestamp of the input that caused it. Called
    /// only after the decision is in the journal (and synced, for order-bearing decisions
    /// when `sync_before_dispatch` is on).
    fn dispatch(&mut self, ts_ns: u64, decision: &Decision) -> Result<(), LoopError>;
}

pub struct LoopOptions {
    /// Sync the journal before dispatching any decision that sends or cancels an order.
    /// Required whenever an order can leave the process (paper, live); a backtest's orders
    /// never do, so it may turn this off and sync once at the end.
    pub sync_before_dispatch: bool,
}

pub struct EngineLoop {
    journal: Journal,
    core: Core,
    encoder: Encoder,
    options: LoopOptions,
    /// Where the candles journaled by reference live, written with the first reference.
    candle_source: Option<CandleSource>,
}

impl EngineLoop {
    pub fn new(journal: Journal, core: Core, options: LoopOptions) -> EngineLoop {
        EngineLoop {
            journal,
            core,
            encoder: Encoder::new(),
            options,
            candle_source: None,
        }
    }

    /// Names the candle store that stored candles (see [`EngineLoop::process_input_at`]) come
    /// from; journaled with the first of them.
    pub fn set_candle_source(&mut self, source: CandleSource) {
        self.candle_source = Some(source);
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Journals `event`, applies it, journals the decisions. Returns the input's sequence
    /// number and the decisions, which the caller dispatches.
    pub fn process(&mut self, ts_ns: u64, event: Event) -> Result<(u64, &[Decision]), LoopError> {
        let mut input = Input {
            seq: 0,
            ts_ns,
            event,
        };
        let decisions = self.process_input(&mut input)?;
        Ok((input.seq, decisions))
    }

    /// [`EngineLoop::process`] on an input the caller keeps (no copy of the event): journals
    /// `input.event` at `input.ts_ns`, sets `input.seq` to its sequence number, applies it and
    /// journals the decisions.
    pub fn process_input(&mut self, input: &mut Input) -> Result<&[Decision], LoopError> {
        self.process_input_at(input, None)
    }

    /// [`EngineLoop::process_input`]; a candle read from a candle store (`stored`) is
    /// journaled as a reference to that store record instead of a copy.
    pub fn process_input_at(
        &mut self,
        input: &mut Input,
        stored: Option<CandleRef>,
    ) -> Result<&[Decision], LoopError> {
        let kind = input.event.kind();
        let ts_ns = input.ts_ns;
        input.seq = match (&input.event, stored) {
            (Event::Candle(_), Some(r)) => match self.candle_source.take() {
                None => {
                    let k = RecordKind::CandleRef;
                    self.journal.append_with(
                        ts_ns,
                        k as u16,
                        k.version(),
                        CandleRef::LEN,
                        |out| r.write(out),
                    )?
                }
                Some(source) => {
                    let k = RecordKind::FirstCandleRef;
                    let payload = self.encoder.first_candle_ref(&r, &source);
                    self.journal.append(ts_ns, k as u16, k.version(), payload)?
                }
            },
            // The candle's archive is written straight into the journal.
            (Event::Candle(c), None) => self.journal.append_with(
                ts_ns,
                kind as u16,
                kind.version(),
                ARCHIVED_CANDLE_LEN,
                |out| c.write_archive(out),
            )?,
            (event, _) => self.journal.append(
                ts_ns,
                kind as u16,
                kind.version(),
                self.encoder.event(event),
            )?,
        };
        let decisions = self.core.apply(input);
        let mut order_bearing = false;
        for d in decisions {
            order_bearing |= matches!(d, Decision::PlaceOrder(_) | Decision::CancelOrder { .. });
            let k = RecordKind::Decision;
            self.journal
                .append(ts_ns, k as u16, k.version(), self.encoder.decision(d))?;
        }
        if order_bearing && self.options.sync_before_dispatch {
            self.journal.sync()?;
        }
        Ok(decisions)
    }

    /// Journals decisions the core made for its last input that a stopped process did not get
    /// to journal (see `recover::Recovered::unjournaled`), syncing before they are dispatched.
    pub fn append_decisions(
        &mut self,
        ts_ns: u64,
        decisions: &[Decision],
    ) -> Result<(), LoopError> {
        let k = RecordKind::Decision;
        for d in decisions {
            self.journal
                .append(ts_ns, k as u16, k.version(), self.encoder.decision(d))?;
        }
        if self.options.sync_before_dispatch {
            self.journal.sync()?;
        }
        Ok(())
    }

    /// Journals the core's digest after the last input, for `replay verify`.
    pub fn checkpoint(&mut self, ts_ns: u64) -> Result<Checkpoint, LoopError> {
        let checkpoint = Checkpoint {
            after_seq: self.core.state().last_seq,
            digest: self.core.digest(),
        };
        let k = RecordKind::Checkpoint;
        self.journal.append(
            ts_ns,
            k as u16,
            k.version(),
            self.encoder.checkpoint(&checkpoint),
        )?;
        Ok(checkpoint)
    }

    /// Syncs the journal, then snapshots the core beside it, so recovery can start from
    /// here instead of the journal's beginning.
    pub fn snapshot(&mut self) -> Result<std::path::PathBuf, LoopError> {
        self.journal.sync()?;
        Ok(crate::recover::snapshot(self.journal.dir(), &self.core)?)
    }

    pub fn sync(&mut self) -> Result<(), LoopError> {
        self.journal.sync()?;
        Ok(())
    }

    /// Runs `io` to the end. `observe` sees every applied event and the core after it.
    pub fn run(
        &mut self,
        io: &mut impl Io,
        mut observe: impl FnMut(&Event, &Core),
    ) -> Result<(), LoopError> {
        let mut input = Input {
            seq: 0,
            ts_ns: 0,
            event: Event::Command(keel_engine::event::Command::Halt),
        };
        loop {
            let stored = match io.next_event(&mut input)? {
                Next::End => break,
                Next::Input => None,
                Next::StoredCandle(r) => Some(r),
            };
            let ts_ns = input.ts_ns;
            for d in self.process_input_at(&mut input, stored)? {
                io.dispatch(ts_ns, d)?;
            }
            if matches!(input.event, Event::Candle(_)) {
                observe(&input.event, &self.core);
            }
        }
        Ok(())
    }
}
