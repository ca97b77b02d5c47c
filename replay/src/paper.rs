//! Paper sessions: the engine loop with the simulated venue as the executor, fed closed
//! candles as they arrive from a venue, plus operator commands and timers.
//!
//! The timeline is a backtest's, so a paper session and a backtest over the same candles make
//! the same decisions and get the same fills: when a candle arrives, the simulated venue
//! first works the orders decided earlier (its answers are journaled and applied, stamped
//! at the candle's open in venue time), then the candle itself is journaled and applied, and
//! the orders it causes are submitted with the candle's close as their venue time. Every
//! record's journal timestamp is the local receive time instead of the candle time.
//!
//! Recovery after a stop or a crash rebuilds both halves from the journal alone:
//! - the core: newest valid snapshot + the inputs after it (`recover`);
//! - the simulated venue (which keeps no snapshot): the whole journal again, submitting each
//!   journaled order decision and working each journaled candle, and checking that every
//!   answer it gives is the one the journal holds, in order. The venue's answers to a candle
//!   are journaled before the candle, so an answer nothing explains yet is resolved by
//!   working the next journaled candle first, as the live run did.
//!
//! What a crash can leave half done, and what start-up does about it:
//! - answers journaled whose candle is not (killed between the two): the candle is lost with
//!   the process, so the answers are re-applied to the venue as recorded;
//! - decisions the core makes for the last input that the journal lacks: journaled, then
//!   dispatched (nothing was dispatched before all of an input's decisions were journaled);
//! - venue answers to dispatched orders that the journal lacks: journaled and applied.
//!
//! All three are counted in the [`Recovery`] report.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use keel_engine::event::{Decision, Event, SessionStart};
use keel_engine::{Core, SimConfig, SimVenue};
use keel_journal::{Journal, Options, Reader};

use crate::codec::{Decoded, decode};
use crate::engine_loop::{EngineLoop, LoopError, LoopOptions};
use crate::recover::{RecoverError, recover};

#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    #[error(transparent)]
    Loop(#[from] LoopError),
    #[error(transparent)]
    Recover(#[from] RecoverError),
    #[error("journal {dir}: {source}")]
    Journal {
        dir: PathBuf,
        source: keel_journal::JournalError,
    },
    #[error(
        "journal {dir} belongs to a session with a different configuration ({what}); \
         resume it with the configuration it started with, or give a new journal directory"
    )]
    ConfigChanged { dir: PathBuf, what: String },
    #[error("journal {dir}: {what}")]
    Inconsistent { dir: PathBuf, what: String },
}

/// What start-up found and did. Every field is zero/empty for a new journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovery {
    /// The journal held a session that this process continues.
    pub resumed: bool,
    pub records: u64,
    pub snapshot_seq: Option<u64>,
    pub replayed_inputs: u64,
    pub skipped_snapshots: Vec<String>,
    /// Torn bytes cut from the journal's end.
    pub torn_tail: Option<String>,
    /// Venue answers re-applied because their candle was lost with the process.
    pub reapplied_answers: u64,
    /// Decisions of the last input journaled (and dispatched) at start-up.
    pub journaled_decisions: u64,
    /// Venue answers journaled and applied at start-up.
    pub journaled_answers: u64,
    /// The core's digest as the journal left it, before any repair.
    pub replayed_digest: [u8; 32],
    /// The core's digest once everything above is done.
    pub digest: [u8; 32],
    pub last_seq: u64,
    /// Open time of the last journaled candle of each symbol: a venue resending older
    /// candles after the restart must not have them applied twice.
    pub last_candle_open: std::collections::BTreeMap<keel_engine::Symbol, i64>,
    /// Orders the core and the venue disagree about after recovery (client id and what);
    /// empty unless the journal was altered.
    pub unreconciled: Vec<(u64, String)>,
}

impl Recovery {
    /// One paragraph for logs and the start-up alert.
    pub fn describe(&self) -> String {
        if !self.resumed {
            return "new session".into();
        }
        let mut s = describe_resumed(
            self.records,
            self.snapshot_seq,
            self.replayed_inputs,
            &self.replayed_digest,
            self.torn_tail.as_deref(),
            &self.skipped_snapshots,
        );
        let repairs = [
            (
                self.reapplied_answers,
                "venue answers re-applied (their candle was lost in the stop)",
            ),
            (
                self.journaled_decisions,
                "decisions of the last input journaled and dispatched",
            ),
            (
                self.journaled_answers,
                "venue answers journaled and applied",
            ),
        ];
        let mut any = false;
        for (n, what) in repairs {
            if n > 0 {
                s.push_str(&format!("; {n} {what}"));
                any = true;
            }
        }
        if !any {
            s.push_str("; nothing was half done");
        }
        for (id, what) in &self.unreconciled {
            s.push_str(&format!("; UNRECONCILED order {id}: {what}"));
        }
        s.push_str(&format!(
            "; digest {} after seq {}",
            keel_engine::core::hex(&self.digest),
            self.last_seq
        ));
        s
    }
}

/// A session journal read back: the core it rebuilds and how (see [`resume`]).
pub(crate) struct Resumed {
    pub(crate) recovered: crate::recover::Recovered,
    pub(crate) records: u64,
    pub(crate) snapshot_seq: Option<u64>,
    pub(crate) replayed_inputs: u64,
    pub(crate) skipped_snapshots: Vec<String>,
    pub(crate) replayed_digest: [u8; 32],
}

/// Rebuilds the core of an existing session journal (newest valid snapshot + tail) and checks
/// it started with `start`'s mode and core configuration — one journal, one session.
pub(crate) fn resume(
    dir: &Path,
    start: &SessionStart,
    records: u64,
) -> Result<Resumed, PaperError> {
    let recovered = recover(dir)?;
    let state = recovered.core.state();
    if state.config.as_ref() != Some(&start.config) {
        return Err(PaperError::ConfigChanged {
            dir: dir.to_path_buf(),
            what: config_difference(state.config.as_ref(), &start.config),
        });
    }
    if state.mode != Some(start.mode) {
        return Err(PaperError::Inconsistent {
            dir: dir.to_path_buf(),
            what: format!(
                "the journal holds a {:?} session, not a {:?} one; give this session a journal \
                 directory of its own",
                state.mode, start.mode
            ),
        });
    }
    Ok(Resumed {
        records,
        snapshot_seq: recovered.snapshot_seq,
        replayed_inputs: recovered.replayed_inputs,
        skipped_snapshots: recovered
            .skipped_snapshots
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.display()))
            .collect(),
        replayed_digest: recovered.core.digest(),
        recovered,
    })
}

/// How a resumed session's journal was read back (the first part of a recovery report).
pub(crate) fn describe_resumed(
    records: u64,
    snapshot_seq: Option<u64>,
    replayed_inputs: u64,
    replayed_digest: &[u8; 32],
    torn_tail: Option<&str>,
    skipped_snapshots: &[String],
) -> String {
    let mut s = format!(
        "resumed a journal of {records} records: core from {} + {replayed_inputs} inputs \
         replayed, replayed digest {}",
        snapshot_seq.map_or("the journal's start".to_string(), |s| format!(
            "the snapshot at seq {s}"
        )),
        keel_engine::core::hex(replayed_digest)
    );
    if let Some(t) = torn_tail {
        s.push_str(&format!("; torn tail cut: {t}"));
    }
    for k in skipped_snapshots {
        s.push_str(&format!("; snapshot skipped: {k}"));
    }
    s
}

/// Snapshots a session keeps: the newest is what recovery starts from; older ones are a
/// fallback if it does not validate.
pub const SNAPSHOTS_KEPT: usize = 3;

/// One applied input, for whoever watches the session (metrics, alerts, logs).
pub struct Step<'a> {
    pub seq: u64,
    pub ts_ns: u64,
    pub event: &'a Event,
    pub decisions: &'a [Decision],
    pub core: &'a Core,
    pub venue: &'a SimVenue,
}

pub struct PaperEngine {
    engine: EngineLoop,
    venue: SimVenue,
    /// Inputs waiting to be applied: (journal timestamp, venue time, event). The venue's
    /// answers to a dispatch go to the front, like a backtest's.
    queue: VecDeque<(u64, i64, Event)>,
    scratch: Vec<Event>,
    clock: MarketClock,
}

/// The market's clock as the session knows it: the last candle's close, and when (local
/// time) that candle arrived.
#[derive(Clone, Copy, Debug, Default)]
struct MarketClock {
    last: Option<(u64, i64)>,
}

impl MarketClock {
    /// The venue time an input carries for the orders it causes. A candle: its close. Anything
    /// else (an operator command, a timer): the last close plus the local time elapsed since
    /// that candle arrived — the wall clock when candles arrive in real time, and a time inside
    /// the next candle when they are replayed faster (a mock, a catch-up), so an order given
    /// between two candles never fills at a price from before it was given.
    fn venue_time(&mut self, recv_ns: u64, event: &Event) -> i64 {
        match event {
            Event::Candle(c) => {
                let close = c.close_time_ns();
                self.last = Some((recv_ns, close));
                close
            }
            _ => match self.last {
                Some((at, close)) => close.saturating_add(recv_ns.saturating_sub(at) as i64),
                None => recv_ns as i64,
            },
        }
    }
}

/// The simulated venue's own answers (as opposed to market data and operator input).
fn is_venue_answer(event: &Event) -> bool {
    matches!(
        event,
        Event::Fill(_) | Event::OrderUpdate(_) | Event::Funding(_)
    )
}

impl PaperEngine {
    /// Opens the session journal in `dir`: a new session starts with `start`; an existing
    /// one is recovered (see the module docs) and must have started with the same core
    /// configuration.
    pub fn open(
        dir: &Path,
        start: SessionStart,
        sim: SimConfig,
        options: Options,
        now_ns: u64,
    ) -> Result<(PaperEngine, Recovery), PaperError> {
        let (journal, opened) =
            Journal::open(dir, options).map_err(|source| PaperError::Journal {
                dir: dir.to_path_buf(),
                source,
            })?;
        let loop_options = LoopOptions {
            sync_before_dispatch: true,
        };
        let mut report = Recovery {
            torn_tail: opened.truncated.as_ref().map(|t| format!("{t:?}")),
            ..Recovery::default()
        };
        if opened.records == 0 {
            let mut paper = PaperEngine {
                engine: EngineLoop::new(journal, Core::new(), loop_options),
                venue: SimVenue::new(sim),
                queue: VecDeque::new(),
                scratch: Vec::new(),
                clock: MarketClock::default(),
            };
            paper.input(now_ns, Event::SessionStart(start), &mut |_| {})?;
            paper.engine.sync()?;
            report.digest = paper.core().digest();
            report.last_seq = paper.core().state().last_seq;
            return Ok((paper, report));
        }
        let resumed = resume(dir, &start, opened.records)?;
        report.resumed = true;
        report.records = resumed.records;
        report.snapshot_seq = resumed.snapshot_seq;
        report.replayed_inputs = resumed.replayed_inputs;
        report.skipped_snapshots = resumed.skipped_snapshots;
        report.replayed_digest = resumed.replayed_digest;
        let recovered = resumed.recovered;
        let rebuilt = rebuild_venue(dir, sim)?;
        report.last_candle_open = rebuilt.last_candle_open.clone();
        report.reapplied_answers = rebuilt.reapplied;
        let leftover = rebuilt.unjournaled;
        let mut paper = PaperEngine {
            engine: EngineLoop::new(journal, recovered.core, loop_options),
            venue: rebuilt.venue,
            queue: VecDeque::new(),
            scratch: Vec::new(),
            clock: rebuilt.clock,
        };
        // Decisions the stopped process never journaled: journal, then dispatch them.
        if !recovered.unjournaled.is_empty() {
            report.journaled_decisions = recovered.unjournaled.len() as u64;
            paper
                .engine
                .append_decisions(now_ns, &recovered.unjournaled)?;
            // Dispatched as the dead process would have: at its last input's venue time.
            let at = rebuilt.at;
            for d in &recovered.unjournaled {
                paper.dispatch(now_ns, at, d);
            }
        }
        // Answers the venue gave that the core never saw come first.
        report.journaled_answers = (leftover.len() + paper.queue.len()) as u64;
        for (i, (at, e)) in leftover.into_iter().enumerate() {
            paper.queue.insert(i, (now_ns, at, e));
        }
        paper.drain(&mut |_| {})?;
        paper.engine.sync()?;
        report.digest = paper.core().digest();
        report.last_seq = paper.core().state().last_seq;
        report.unreconciled = paper.reconcile();
        Ok((paper, report))
    }

    /// Orders the core believes open that the venue does not hold, and the reverse.
    pub fn reconcile(&self) -> Vec<(u64, String)> {
        let book: std::collections::BTreeSet<u64> =
            self.venue.book().iter().map(|(id, _)| *id).collect();
        let core = &self.core().state().orders;
        let mut out = Vec::new();
        for id in core.keys() {
            if !book.contains(id) {
                out.push((*id, "open in the core, not on the venue's book".to_string()));
            }
        }
        for id in &book {
            if !core.contains_key(id) {
                out.push((*id, "on the venue's book, unknown to the core".to_string()));
            }
        }
        out
    }

    pub fn core(&self) -> &Core {
        self.engine.core()
    }

    pub fn venue(&self) -> &SimVenue {
        &self.venue
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        self.engine.journal_mut()
    }

    /// A closed candle arrived at local time `recv_ns`.
    pub fn candle(
        &mut self,
        recv_ns: u64,
        candle: keel_engine::Candle,
        observe: &mut dyn FnMut(Step<'_>),
    ) -> Result<(), LoopError> {
        self.venue.on_candle(&candle, &mut self.scratch);
        let open = candle.open_time_ns;
        for e in self.scratch.drain(..) {
            self.queue.push_back((recv_ns, open, e));
        }
        let candle = Event::Candle(candle);
        let at = self.clock.venue_time(recv_ns, &candle);
        self.queue.push_back((recv_ns, at, candle));
        self.drain(observe)
    }

    /// Any other input (operator command, timer) at local time `recv_ns`.
    pub fn input(
        &mut self,
        recv_ns: u64,
        event: Event,
        observe: &mut dyn FnMut(Step<'_>),
    ) -> Result<(), LoopError> {
        let at = self.clock.venue_time(recv_ns, &event);
        self.queue.push_back((recv_ns, at, event));
        self.drain(observe)
    }

    /// Journals the core's digest (for `replay verify`), syncs, snapshots, and removes all but
    /// the [`SNAPSHOTS_KEPT`] newest snapshots.
    pub fn checkpoint_and_snapshot(&mut self, ts_ns: u64) -> Result<PathBuf, LoopError> {
        self.engine.checkpoint(ts_ns)?;
        let path = self.engine.snapshot()?;
        keel_journal::prune_snapshots(self.engine.journal_mut().dir(), SNAPSHOTS_KEPT)?;
        Ok(path)
    }

    pub fn sync(&mut self) -> Result<(), LoopError> {
        self.engine.sync()
    }

    fn drain(&mut self, observe: &mut dyn FnMut(Step<'_>)) -> Result<(), LoopError> {
        while let Some((recv_ns, at, event)) = self.queue.pop_front() {
            let observed = event.clone();
            let (seq, decisions) = self.engine.process(recv_ns, event)?;
            let decisions = decisions.to_vec();
            for d in &decisions {
                self.dispatch(recv_ns, at, d);
            }
            observe(Step {
                seq,
                ts_ns: recv_ns,
                event: &observed,
                decisions: &decisions,
                core: self.engine.core(),
                venue: &self.venue,
            });
        }
        Ok(())
    }

    /// Hands an order decision to the simulated venue; its answers go to the queue's front.
    fn dispatch(&mut self, recv_ns: u64, at: i64, decision: &Decision) {
        match decision {
            Decision::PlaceOrder(r) => self.venue.submit(r, at, &mut self.scratch),
            Decision::CancelOrder { client_id } => {
                self.venue.cancel(*client_id, at, &mut self.scratch)
            }
            _ => return,
        }
        for (i, e) in self.scratch.drain(..).enumerate() {
            self.queue.insert(i, (recv_ns, at, e));
        }
    }
}

fn config_difference(
    journaled: Option<&keel_engine::CoreConfig>,
    now: &keel_engine::CoreConfig,
) -> String {
    let Some(j) = journaled else {
        return "the journal has no session start".into();
    };
    let mut diffs = Vec::new();
    if j.symbols != now.symbols {
        diffs.push(format!("symbols {:?} → {:?}", j.symbols, now.symbols));
    }
    if j.interval_ns != now.interval_ns || j.strategy_interval_ns != now.strategy_interval_ns {
        diffs.push("interval".into());
    }
    if j.strategy != now.strategy {
        diffs.push(format!("strategy {:?} → {:?}", j.strategy, now.strategy));
    }
    if j.starting_balance != now.starting_balance {
        diffs.push(format!(
            "starting balance {} → {}",
            j.starting_balance, now.starting_balance
        ));
    }
    if j.risk != now.risk {
        diffs.push("[risk]".into());
    }
    if diffs.is_empty() {
        diffs.push("execution or market settings".into());
    }
    diffs.join(", ")
}

/// One journal record, decoded, and whether the venue already worked it (a candle worked
/// ahead of its answers).
struct Rec {
    seq: u64,
    ts_ns: u64,
    decoded: Decoded,
    worked: bool,
}

/// The journal's records in order, read as needed, with a small lookahead: a candle's answers
/// are journaled before it, so an answer may need the candle that follows. Only the records
/// between an answer and its candle are held, never the whole journal.
struct Stream {
    dir: PathBuf,
    reader: Reader,
    ahead: VecDeque<Rec>,
}

impl Stream {
    fn open(dir: &Path) -> Result<Stream, PaperError> {
        let reader = Reader::open(dir).map_err(|source| PaperError::Journal {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(Stream {
            dir: dir.to_path_buf(),
            reader,
            ahead: VecDeque::new(),
        })
    }

    fn read(&mut self) -> Result<Option<Rec>, PaperError> {
        let dir = &self.dir;
        let Some(rec) = self.reader.next().map_err(|source| PaperError::Journal {
            dir: dir.clone(),
            source,
        })?
        else {
            return Ok(None);
        };
        let decoded = decode(rec.seq, rec.kind, rec.ver, rec.payload).map_err(|source| {
            RecoverError::Decode {
                dir: dir.clone(),
                source,
            }
        })?;
        if let Decoded::CandleRef(_) | Decoded::FirstCandleRef { .. } = decoded {
            return Err(crate::recover::backtest_journal(dir, rec.seq).into());
        }
        Ok(Some(Rec {
            seq: rec.seq,
            ts_ns: rec.ts_ns,
            decoded,
            worked: false,
        }))
    }

    fn next(&mut self) -> Result<Option<Rec>, PaperError> {
        match self.ahead.pop_front() {
            Some(r) => Ok(Some(r)),
            None => self.read(),
        }
    }

    /// The first candle after the current record, if the journal has one.
    fn candle_ahead(&mut self) -> Result<Option<&mut Rec>, PaperError> {
        let is_candle = |r: &Rec| matches!(r.decoded, Decoded::Input(Event::Candle(_)));
        if !self.ahead.iter().any(is_candle) {
            while let Some(r) = self.read()? {
                let found = is_candle(&r);
                self.ahead.push_back(r);
                if found {
                    break;
                }
            }
        }
        Ok(self.ahead.iter_mut().find(|r| is_candle(r)))
    }
}

/// The simulated venue as the journal leaves it.
struct RebuiltVenue {
    venue: SimVenue,
    /// Answers it gave that the journal lacks, with their venue time, in queue order.
    unjournaled: Vec<(i64, Event)>,
    /// Recorded answers re-applied without their candle.
    reapplied: u64,
    /// The venue time of the journal's last input.
    at: i64,
    last_candle_open: std::collections::BTreeMap<keel_engine::Symbol, i64>,
    clock: MarketClock,
}

/// Rebuilds the simulated venue from the whole journal (module docs).
fn rebuild_venue(dir: &Path, sim: SimConfig) -> Result<RebuiltVenue, PaperError> {
    let inconsistent = |what: String| PaperError::Inconsistent {
        dir: dir.to_path_buf(),
        what,
    };
    let mut stream = Stream::open(dir)?;
    let mut venue = SimVenue::new(sim);
    // Answers the venue gave in this replay, not yet matched with the journal, in the order
    // the live queue held them.
    let mut expected: VecDeque<(i64, Event)> = VecDeque::new();
    let mut out = Vec::new();
    let mut at: i64 = 0;
    let mut reapplied = 0;
    let mut last_candle_open = std::collections::BTreeMap::new();
    let mut clock = MarketClock::default();
    while let Some(rec) = stream.next()? {
        let Rec {
            seq,
            ts_ns,
            decoded,
            worked,
        } = rec;
        let (seq, ts_ns) = (&seq, &ts_ns);
        match &decoded {
            Decoded::Input(event) if is_venue_answer(event) => {
                if expected.is_empty() {
                    // Nothing explains it yet: the answer to the next journaled candle.
                    match stream.candle_ahead()? {
                        Some(next) if !next.worked => {
                            let Decoded::Input(Event::Candle(c)) = &next.decoded else {
                                unreachable!("candle_ahead returns candles")
                            };
                            venue.on_candle(c, &mut out);
                            next.worked = true;
                            expected.extend(out.drain(..).map(|e| (c.open_time_ns, e)));
                        }
                        Some(_) => {}
                        None => {
                            venue.apply_recorded(event);
                            if let Event::Fill(f) = event {
                                at = f.ts_event_ns;
                            }
                            reapplied += 1;
                            continue;
                        }
                    }
                }
                match expected.pop_front() {
                    Some((t, e)) if e == *event => at = t,
                    Some((_, e)) => {
                        return Err(inconsistent(format!(
                            "seq {seq}: the journal has {event:?}, the simulated venue answers \
                             {e:?} (different code or settings than the session's)"
                        )));
                    }
                    None => {
                        return Err(inconsistent(format!(
                            "seq {seq}: the journal has {event:?}, which the simulated venue \
                             never gave"
                        )));
                    }
                }
            }
            Decoded::Input(candle @ Event::Candle(c)) => {
                last_candle_open.insert(c.symbol, c.open_time_ns);
                if !worked {
                    venue.on_candle(c, &mut out);
                    if let Some(e) = out.first() {
                        return Err(inconsistent(format!(
                            "seq {seq}: working this candle the simulated venue answers {e:?}, \
                             which the journal lacks before it"
                        )));
                    }
                }
                if let Some((_, e)) = expected.front() {
                    return Err(inconsistent(format!(
                        "seq {seq}: the simulated venue answered {e:?} before this candle, the \
                         journal lacks it"
                    )));
                }
                at = clock.venue_time(*ts_ns, candle);
            }
            Decoded::Input(event) => at = clock.venue_time(*ts_ns, event),
            Decoded::Decision(d) => {
                match d {
                    Decision::PlaceOrder(r) => venue.submit(r, at, &mut out),
                    Decision::CancelOrder { client_id } => venue.cancel(*client_id, at, &mut out),
                    _ => {}
                }
                for (k, e) in out.drain(..).enumerate() {
                    expected.insert(k, (at, e));
                }
            }
            Decoded::Checkpoint(_)
            | Decoded::StoredCandle(_)
            | Decoded::CandleRef(_)
            | Decoded::FirstCandleRef { .. } => {}
        }
    }
    Ok(RebuiltVenue {
        venue,
        unjournaled: expected.into_iter().collect(),
        reapplied,
        at,
        last_candle_open,
        clock,
    })
}
