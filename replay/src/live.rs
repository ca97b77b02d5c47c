//! Live sessions: the engine loop with a real venue as the executor.
//!
//! The core, the journal and the loop are the backtest's and the paper session's; what
//! differs is where the venue's answers come from. Here they are inputs like candles: the
//! runtime's executor sends each order decision to the venue (only after the decision is
//! journaled and synced) and hands back what the venue answers — acknowledgements, rejections,
//! cancellations and fills, from the REST answer and from the private account stream — and
//! this engine journals and applies each one once:
//! - a fill is applied once per (venue order id, trade id), however many times it arrives (the
//!   REST answer and the stream both carry it; a reconciliation fetches it again). The set of
//!   fills already applied is rebuilt from the journal at start-up;
//! - an order update is applied only when it says something new to the core: an
//!   acknowledgement of an order still waiting for one, or the end of an order it tracks.
//!
//! Recovery rebuilds the core from the newest snapshot and the journal's tail. Decisions the
//! stopped process never journaled are journaled now; whether each order the core tracks ever
//! reached the venue is then settled by the runtime's reconciliation, which asks the venue by
//! client order id (see `keel live`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use keel_engine::event::{Decision, Event, FEE_IN_BASE_CLIENT_ID, OrderStatus, SessionStart};
use keel_engine::{Core, Symbol};
use keel_journal::{Journal, Options, Reader};

use crate::codec::{Decoded, decode};
use crate::engine_loop::{EngineLoop, LoopError, LoopOptions};
use crate::paper::{PaperError, SNAPSHOTS_KEPT};
use crate::recover::RecoverError;

/// What start-up found and did. Every field is zero/empty for a new journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveRecovery {
    pub resumed: bool,
    pub records: u64,
    pub snapshot_seq: Option<u64>,
    pub replayed_inputs: u64,
    pub skipped_snapshots: Vec<String>,
    pub torn_tail: Option<String>,
    /// Decisions of the last input journaled at start-up (the stopped process had not).
    pub journaled_decisions: u64,
    /// The core's digest as the journal left it.
    pub replayed_digest: [u8; 32],
    /// The core's digest once the above is done.
    pub digest: [u8; 32],
    pub last_seq: u64,
    /// Open time of the last journaled candle per symbol (a resent older candle is skipped).
    pub last_candle_open: BTreeMap<Symbol, i64>,
    /// Fills the journal holds.
    pub fills: u64,
}

impl LiveRecovery {
    /// One paragraph for logs and the start-up alert.
    pub fn describe(&self) -> String {
        if !self.resumed {
            return "new session".into();
        }
        let mut s = crate::paper::describe_resumed(
            self.records,
            self.snapshot_seq,
            self.replayed_inputs,
            &self.replayed_digest,
            self.torn_tail.as_deref(),
            &self.skipped_snapshots,
        );
        if self.journaled_decisions > 0 {
            s.push_str(&format!(
                "; {} decisions of the last input journaled",
                self.journaled_decisions
            ));
        }
        s.push_str(&format!(
            "; digest {} after seq {}",
            keel_engine::core::hex(&self.digest),
            self.last_seq
        ));
        s
    }
}

/// One applied input, for whoever watches the session.
pub struct Applied<'a> {
    pub seq: u64,
    pub ts_ns: u64,
    pub event: &'a Event,
    pub decisions: &'a [Decision],
    pub core: &'a Core,
}

/// What happened to a venue answer handed to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Journaled and applied.
    Applied,
    /// Already applied (or, for an order update, nothing new for the core): not journaled.
    Duplicate,
}

pub struct LiveEngine {
    engine: EngineLoop,
    /// (venue order id, trade id) of every fill journaled.
    fills: BTreeSet<(u64, u64)>,
    /// The same for the fee fills journaled before them (`FEE_IN_BASE_CLIENT_ID`): a process
    /// killed between the two leaves the fee journaled and the fill not.
    fee_fills: BTreeSet<(u64, u64)>,
    dir: PathBuf,
}

impl LiveEngine {
    /// Opens the session journal in `dir`: a new session starts with `start`; an existing one
    /// is recovered and must have started with the same core configuration.
    pub fn open(
        dir: &Path,
        start: SessionStart,
        options: Options,
        now_ns: u64,
    ) -> Result<(LiveEngine, LiveRecovery), PaperError> {
        let journal_err = |source| PaperError::Journal {
            dir: dir.to_path_buf(),
            source,
        };
        let (journal, opened) = Journal::open(dir, options).map_err(journal_err)?;
        let loop_options = LoopOptions {
            sync_before_dispatch: true,
        };
        let mut report = LiveRecovery {
            torn_tail: opened.truncated.as_ref().map(|t| format!("{t:?}")),
            ..LiveRecovery::default()
        };
        if opened.records == 0 {
            let mut live = LiveEngine {
                engine: EngineLoop::new(journal, Core::new(), loop_options),
                fills: BTreeSet::new(),
                fee_fills: BTreeSet::new(),
                dir: dir.to_path_buf(),
            };
            live.input(now_ns, Event::SessionStart(start), &mut |_| {})?;
            live.engine.sync()?;
            report.digest = live.core().digest();
            report.last_seq = live.core().state().last_seq;
            return Ok((live, report));
        }
        let resumed = crate::paper::resume(dir, &start, opened.records)?;
        report.resumed = true;
        report.records = resumed.records;
        report.snapshot_seq = resumed.snapshot_seq;
        report.replayed_inputs = resumed.replayed_inputs;
        report.skipped_snapshots = resumed.skipped_snapshots;
        report.replayed_digest = resumed.replayed_digest;
        let recovered = resumed.recovered;
        let (fills, fee_fills, last_candle_open) = scan(dir)?;
        report.fills = fills.len() as u64;
        report.last_candle_open = last_candle_open;
        let mut live = LiveEngine {
            engine: EngineLoop::new(journal, recovered.core, loop_options),
            fills,
            fee_fills,
            dir: dir.to_path_buf(),
        };
        if !recovered.unjournaled.is_empty() {
            report.journaled_decisions = recovered.unjournaled.len() as u64;
            live.engine
                .append_decisions(now_ns, &recovered.unjournaled)?;
        }
        live.engine.sync()?;
        report.digest = live.core().digest();
        report.last_seq = live.core().state().last_seq;
        Ok((live, report))
    }

    pub fn core(&self) -> &Core {
        self.engine.core()
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        self.engine.journal_mut()
    }

    /// Journals and applies a market, operator or timer input (or a reconciliation's account
    /// state). `observe` sees it with its decisions, which the caller dispatches: the journal
    /// is synced before this returns whenever they send or cancel an order.
    pub fn input(
        &mut self,
        recv_ns: u64,
        event: Event,
        observe: &mut dyn FnMut(Applied<'_>),
    ) -> Result<(), LoopError> {
        let observed = event.clone();
        let (seq, decisions) = self.engine.process(recv_ns, event)?;
        let decisions = decisions.to_vec();
        observe(Applied {
            seq,
            ts_ns: recv_ns,
            event: &observed,
            decisions: &decisions,
            core: self.engine.core(),
        });
        Ok(())
    }

    /// A venue answer: one `OrderUpdate`, or the events of one execution (its `Fill`, preceded
    /// by a `FEE_IN_BASE_CLIENT_ID` fill when the fee was taken in the coin bought). Applied
    /// once (module docs).
    pub fn answer(
        &mut self,
        recv_ns: u64,
        events: Vec<Event>,
        observe: &mut dyn FnMut(Applied<'_>),
    ) -> Result<Answer, LoopError> {
        let new = match events.last() {
            Some(Event::Fill(f)) => !self.fills.contains(&(f.venue_order_id, f.trade_id)),
            Some(Event::OrderUpdate(u)) => match self.core().state().orders.get(&u.client_id) {
                None => false,
                Some(o) => match u.status {
                    OrderStatus::Accepted => o.phase == keel_engine::core::OrderPhase::Submitted,
                    _ => true,
                },
            },
            Some(_) => true,
            None => false,
        };
        if !new {
            return Ok(Answer::Duplicate);
        }
        for e in events {
            if let Event::Fill(f) = &e {
                let key = (f.venue_order_id, f.trade_id);
                if f.client_id == FEE_IN_BASE_CLIENT_ID {
                    if !self.fee_fills.insert(key) {
                        continue; // journaled before a crash cut the pair in two
                    }
                } else {
                    self.fills.insert(key);
                }
            }
            self.input(recv_ns, e, observe)?;
        }
        Ok(Answer::Applied)
    }

    /// Whether the fill with these ids is already journaled.
    pub fn has_fill(&self, venue_order_id: u64, trade_id: u64) -> bool {
        self.fills.contains(&(venue_order_id, trade_id))
    }

    /// The local time the order with this client id was decided (the journal timestamp of the
    /// input that caused it), if the journal holds that input.
    pub fn decided_at(&self, client_id: u64) -> Option<u64> {
        let seq = client_id / keel_engine::event::ORDERS_PER_INPUT_MAX;
        let mut reader = Reader::from_seq(&self.dir, seq).ok()?;
        let rec = reader.next().ok()??;
        (rec.seq == seq).then_some(rec.ts_ns)
    }

    /// Journals the core's digest (for `replay verify`), syncs, snapshots, and keeps the
    /// newest snapshots only.
    pub fn checkpoint_and_snapshot(&mut self, ts_ns: u64) -> Result<PathBuf, LoopError> {
        self.engine.checkpoint(ts_ns)?;
        let path = self.engine.snapshot()?;
        keel_journal::prune_snapshots(self.engine.journal_mut().dir(), SNAPSHOTS_KEPT)?;
        Ok(path)
    }

    pub fn sync(&mut self) -> Result<(), LoopError> {
        self.engine.sync()
    }
}

type Scanned = (
    BTreeSet<(u64, u64)>,
    BTreeSet<(u64, u64)>,
    BTreeMap<Symbol, i64>,
);

/// The fills, the fee fills and the last candle per symbol the journal holds.
fn scan(dir: &Path) -> Result<Scanned, PaperError> {
    let mut reader = Reader::open(dir).map_err(|source| PaperError::Journal {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut fills = BTreeSet::new();
    let mut fee_fills = BTreeSet::new();
    let mut candles = BTreeMap::new();
    while let Some(rec) = reader.next().map_err(|source| PaperError::Journal {
        dir: dir.to_path_buf(),
        source,
    })? {
        let kind = keel_engine::RecordKind::from_u16(rec.kind);
        if !matches!(
            kind,
            Some(keel_engine::RecordKind::Fill | keel_engine::RecordKind::Candle)
        ) {
            continue;
        }
        let decoded = decode(rec.seq, rec.kind, rec.ver, rec.payload).map_err(|source| {
            RecoverError::Decode {
                dir: dir.to_path_buf(),
                source,
            }
        })?;
        match decoded {
            Decoded::Input(Event::Fill(f)) if f.client_id == FEE_IN_BASE_CLIENT_ID => {
                fee_fills.insert((f.venue_order_id, f.trade_id));
            }
            Decoded::Input(Event::Fill(f)) => {
                fills.insert((f.venue_order_id, f.trade_id));
            }
            Decoded::Input(Event::Candle(c)) => {
                candles.insert(c.symbol, c.open_time_ns);
            }
            _ => {}
        }
    }
    Ok((fills, fee_fills, candles))
}
