//! Backtests: a candle store and the simulated venue behind the engine loop.
//!
//! Timeline per bar t+1, all journaled: the simulated venue fills orders decided on bar t at
//! bar t+1's open (fills stamped with the open time), then bar t+1 itself arrives, stamped
//! with its close time. So an order decided on a bar's close reaches the venue no earlier
//! than the next bar, and no bar's future leaks into a decision.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use keel_engine::event::{Decision, Event, Input, Mode, RejectReason, SessionStart};
use keel_engine::{Candle, Core, CoreConfig, Interval, SimConfig, SimVenue, Symbol};
use keel_journal::{Durability, Journal, Options};

use crate::codec::{CandleRef, CandleSource, StoreSeries};
use crate::engine_loop::{EngineLoop, Io, LoopError, LoopOptions, Next};
use crate::report::{self, EquityCurve, Report, TradeRow};
use crate::store::{CandleCursor, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Loop(#[from] LoopError),
    #[error("run journal {dir}: {source}")]
    Journal {
        dir: PathBuf,
        source: keel_journal::JournalError,
    },
    #[error("no candles for {symbol} {interval} in the requested time range")]
    NoCandles { symbol: String, interval: String },
    #[error("no symbols to backtest")]
    NoSymbols,
}

/// Everything a backtest needs, resolved from the user's configuration.
#[derive(Debug, Clone)]
pub struct BacktestSpec {
    pub store: PathBuf,
    /// One candle series per symbol, merged by open time, then symbol.
    pub symbols: Vec<Symbol>,
    pub interval: Interval,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    /// Copy every bar into the run journal (a journal that replays without the store) instead
    /// of referring to the store's records (`candle_ref`, the default: 48 bytes a bar
    /// instead of 120).
    pub embed_candles: bool,
    pub core: CoreConfig,
    pub sim: SimConfig,
    /// Perpetuals: funding rates per symbol, `(settlement time ns, rate)` in time order.
    pub funding: Vec<(Symbol, Vec<(i64, keel_engine::Fixed)>)>,
    /// The configuration file's text, journaled verbatim in `SessionStart`.
    pub config_text: String,
    /// Where the run journal goes (a fresh directory).
    pub journal_dir: PathBuf,
}

pub struct BacktestOutcome {
    pub report: Report,
    pub curve: EquityCurve,
}

/// Several candle series read as one, in a deterministic order: by open time, then by
/// symbol name (so a run never depends on which file happened to be read first).
struct Merged {
    /// Sorted by symbol name, so among bars of equal open time the first cursor's goes first;
    /// each with its series' index in the run's [`CandleSource`].
    cursors: Vec<(u32, CandleCursor)>,
    heads: Vec<Option<StoredBar>>,
}

/// A bar and the store record it was read from.
#[derive(Clone, Copy)]
struct StoredBar {
    candle: Candle,
    at: CandleRef,
}

fn next_bar(series: u32, cursor: &mut CandleCursor) -> Result<Option<StoredBar>, StoreError> {
    Ok(cursor.next_stored()?.map(|(candle, seq, crc)| StoredBar {
        candle,
        at: CandleRef {
            store_seq: seq,
            store_crc: crc,
            series,
        },
    }))
}

impl Merged {
    fn new(mut cursors: Vec<(Symbol, CandleCursor)>) -> Result<Merged, StoreError> {
        let mut cursors: Vec<(Symbol, u32, CandleCursor)> = cursors
            .drain(..)
            .enumerate()
            .map(|(i, (s, c))| (s, i as u32, c))
            .collect();
        cursors.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut cursors: Vec<(u32, CandleCursor)> =
            cursors.into_iter().map(|(_, i, c)| (i, c)).collect();
        let heads = cursors
            .iter_mut()
            .map(|(i, c)| next_bar(*i, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Merged { cursors, heads })
    }

    fn next_bar(&mut self) -> Result<Option<StoredBar>, StoreError> {
        if let [(series, cursor)] = &mut self.cursors[..] {
            // One series: its own order.
            return match self.heads[0].take() {
                Some(c) => Ok(Some(c)),
                None => next_bar(*series, cursor),
            };
        }
        let next = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|b| (b.candle.open_time_ns, i)))
            .min()
            .map(|(_, i)| i);
        let Some(i) = next else {
            return Ok(None);
        };
        let (series, cursor) = &mut self.cursors[i];
        let refill = next_bar(*series, cursor)?;
        Ok(std::mem::replace(&mut self.heads[i], refill))
    }
}

/// Bars per batch handed from the reading thread to the engine thread.
const FEED_BATCH: usize = 4096;

/// The candle series, read, checked and decoded on a thread of their own (the store is a
/// journal: every record's CRC and chain is verified on the way) and handed over in batches,
/// so the engine thread only takes bars out of a buffer. Batches go back to the reader to be
/// refilled: nothing is allocated per bar. The order of bars is the reader's, a single
/// deterministic sequence.
struct CandleFeed {
    full: crossbeam_channel::Receiver<Result<Vec<StoredBar>, StoreError>>,
    empty: crossbeam_channel::Sender<Vec<StoredBar>>,
    /// The batch being taken from, and the next bar's index in it.
    batch: Vec<StoredBar>,
    at: usize,
    done: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CandleFeed {
    fn start(mut candles: Merged) -> Result<CandleFeed, BacktestError> {
        let (full_tx, full) = crossbeam_channel::bounded(2);
        let (empty, empty_rx) = crossbeam_channel::bounded::<Vec<StoredBar>>(4);
        for _ in 0..3 {
            let _ = empty.send(Vec::with_capacity(FEED_BATCH));
        }
        let thread = std::thread::Builder::new()
            .name("keel-candle-feed".to_string())
            .spawn(move || {
                // Ends when the series end (then says so with an empty batch: a reader that
                // vanishes without it did not finish), on an error, or when the engine side
                // hangs up.
                while let Ok(mut batch) = empty_rx.recv() {
                    batch.clear();
                    let mut end = false;
                    let mut failed = None;
                    while batch.len() < FEED_BATCH {
                        match candles.next_bar() {
                            Ok(Some(c)) => batch.push(c),
                            Ok(None) => {
                                end = true;
                                break;
                            }
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    if !batch.is_empty() && full_tx.send(Ok(batch)).is_err() {
                        return;
                    }
                    if let Some(e) = failed {
                        let _ = full_tx.send(Err(e));
                        return;
                    }
                    if end {
                        let _ = full_tx.send(Ok(Vec::new()));
                        return;
                    }
                }
            })
            .map_err(|e| {
                BacktestError::Loop(LoopError::Source(format!(
                    "cannot start the candle reader thread: {e}"
                )))
            })?;
        Ok(CandleFeed {
            full,
            empty,
            batch: Vec::new(),
            at: 0,
            done: false,
            thread: Some(thread),
        })
    }

    /// Advances to the next bar; false when the series are over. The bar is then
    /// [`CandleFeed::bar`], read in place (a copy through return values costs more than the
    /// rest of taking it: 104 bytes moved in pieces stall on store forwarding).
    #[inline]
    fn advance(&mut self) -> Result<bool, LoopError> {
        if self.at < self.batch.len() {
            self.at += 1;
            return Ok(true);
        }
        self.refill()
    }

    /// The bar [`CandleFeed::advance`] moved to.
    #[inline]
    fn bar(&self) -> &StoredBar {
        &self.batch[self.at - 1]
    }

    #[cold]
    fn refill(&mut self) -> Result<bool, LoopError> {
        if self.done {
            return Ok(false);
        }
        // Hand the used buffer back (the reader refills it; the first one is a placeholder).
        let used = std::mem::take(&mut self.batch);
        if used.capacity() > 0 {
            let _ = self.empty.send(used);
        }
        match self.full.recv() {
            // The end: every bar was delivered.
            Ok(Ok(batch)) if batch.is_empty() => {
                self.done = true;
                Ok(false)
            }
            Ok(Ok(batch)) => {
                self.batch = batch;
                self.at = 1;
                Ok(true)
            }
            Ok(Err(e)) => {
                self.done = true;
                Err(LoopError::Source(e.to_string()))
            }
            Err(_) => {
                self.done = true;
                Err(LoopError::Source(
                    "the candle reader thread stopped before the end of the data".to_string(),
                ))
            }
        }
    }
}

impl Drop for CandleFeed {
    fn drop(&mut self) {
        // Unblock the reader (its sends fail once the receiver is gone), then wait for it.
        let (_, dead) = crossbeam_channel::bounded(0);
        self.full = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct BacktestIo {
    candles: CandleFeed,
    /// Funding rates still to settle, per symbol, next first.
    funding: Vec<(Symbol, VecDeque<(i64, keel_engine::Fixed)>)>,
    venue: SimVenue,
    /// Inputs waiting their turn; a bar with the store record it stands for.
    queue: VecDeque<(u64, Event, Option<CandleRef>)>,
    scratch: Vec<Event>,
    /// Journal bars as copies rather than references.
    embed: bool,
    session_start: Option<Event>,
    first_open_ns: Option<i64>,
    last_close_ns: i64,
    progress: Box<dyn FnMut(u64)>,
    bars: u64,
}

/// Settles the funding of `candle.symbol` due at or before `until_ns`.
fn settle_funding(
    funding: &mut [(Symbol, VecDeque<(i64, keel_engine::Fixed)>)],
    venue: &mut SimVenue,
    out: &mut Vec<Event>,
    candle: &Candle,
    until_ns: i64,
) {
    let Some((_, due)) = funding.iter_mut().find(|(s, _)| *s == candle.symbol) else {
        return;
    };
    while let Some(&(time, rate)) = due.front() {
        if time > until_ns {
            break;
        }
        due.pop_front();
        venue.on_funding(candle.symbol, rate, candle.open, time, out);
    }
}

impl BacktestIo {
    fn pop(&mut self, slot: &mut Input) -> Next {
        match self.queue.pop_front() {
            Some((ts_ns, event, at)) => {
                slot.ts_ns = ts_ns;
                slot.event = event;
                at.map_or(Next::Input, Next::StoredCandle)
            }
            None => Next::End,
        }
    }
}

impl Io for BacktestIo {
    fn next_event(&mut self, slot: &mut Input) -> Result<Next, LoopError> {
        if !self.queue.is_empty() {
            return Ok(self.pop(slot));
        }
        if !self.candles.advance()? {
            return Ok(Next::End);
        }
        let bar = self.candles.bar();
        let candle = &bar.candle;
        let at = (!self.embed).then_some(bar.at);
        if let Some(start) = self.session_start.take() {
            // The session starts when its first bar opens.
            self.queue
                .push_back((stamp(candle.open_time_ns), start, None));
            self.first_open_ns = Some(candle.open_time_ns);
        }
        // Funding due at or before this bar's open settles before its fills; funding due
        // inside the bar settles after the fills at its open. Both are marked at the open,
        // the last price known at the settlement time.
        let (funding, venue, scratch) = (&mut self.funding, &mut self.venue, &mut self.scratch);
        settle_funding(funding, venue, scratch, candle, candle.open_time_ns);
        venue.on_candle(candle, scratch);
        settle_funding(funding, venue, scratch, candle, candle.close_time_ns() - 1);
        if !self.scratch.is_empty() {
            for e in self.scratch.drain(..) {
                self.queue.push_back((stamp(candle.open_time_ns), e, None));
            }
        }
        self.last_close_ns = candle.close_time_ns();
        self.bars += 1;
        if self.bars.is_multiple_of(65_536) {
            (self.progress)(self.bars);
        }
        let close = stamp(candle.close_time_ns());
        if self.queue.is_empty() {
            // Most bars: nothing from the venue goes before the bar itself.
            slot.ts_ns = close;
            slot.event = Event::Candle(*candle);
            return Ok(at.map_or(Next::Input, Next::StoredCandle));
        }
        self.queue.push_back((close, Event::Candle(*candle), at));
        Ok(self.pop(slot))
    }

    fn dispatch(&mut self, ts_ns: u64, decision: &Decision) -> Result<(), LoopError> {
        let now = ts_ns as i64;
        match decision {
            Decision::PlaceOrder(req) => self.venue.submit(req, now, &mut self.scratch),
            Decision::CancelOrder { client_id } => {
                self.venue.cancel(*client_id, now, &mut self.scratch)
            }
            _ => {}
        }
        // The venue's answers come back in the order it gave them, ahead of later inputs.
        for (i, e) in self.scratch.drain(..).enumerate() {
            self.queue.insert(i, (ts_ns, e, None));
        }
        Ok(())
    }
}

fn names(symbols: &[Symbol]) -> String {
    symbols
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn stamp(ns: i64) -> u64 {
    ns.max(0) as u64
}

/// Runs a backtest, writing its run journal into `spec.journal_dir` (which must not hold a
/// journal yet). `progress` is called with the number of bars read every 65,536 bars.
pub fn run(
    spec: &BacktestSpec,
    progress: Box<dyn FnMut(u64)>,
) -> Result<BacktestOutcome, BacktestError> {
    if spec.symbols.is_empty() {
        return Err(BacktestError::NoSymbols);
    }
    let cursors = spec
        .symbols
        .iter()
        .map(|&symbol| {
            CandleCursor::open(&spec.store, symbol, spec.interval, spec.from_ns, spec.to_ns)
                .map(|c| (symbol, c))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let candles = CandleFeed::start(Merged::new(cursors)?)?;
    let options = Options {
        durability: Durability::None,
        segment_size: 16 << 20,
        // The run journal is written into a staging directory that only becomes the run's
        // journal after the final sync below; a crash before that leaves nothing to recover.
        sync_on_roll: false,
        // Opening the run journal waits for a 1 MiB zero fill, not 16 MiB.
        grow_segments: true,
        ..Options::default()
    };
    let (journal, _) =
        Journal::open(&spec.journal_dir, options).map_err(|source| BacktestError::Journal {
            dir: spec.journal_dir.clone(),
            source,
        })?;
    let mut engine = EngineLoop::new(
        journal,
        Core::new(),
        LoopOptions {
            sync_before_dispatch: false,
        },
    );
    if !spec.embed_candles {
        // Where the run's bars are: their records refer to this store's.
        let store = std::fs::canonicalize(&spec.store)
            .or_else(|_| std::path::absolute(&spec.store))
            .unwrap_or_else(|_| spec.store.clone());
        engine.set_candle_source(CandleSource {
            store: store.to_string_lossy().into_owned(),
            series: spec
                .symbols
                .iter()
                .map(|&symbol| StoreSeries {
                    symbol,
                    interval_ns: spec.interval.ns,
                })
                .collect(),
        });
    }
    let start = Event::SessionStart(SessionStart {
        mode: Mode::Backtest,
        config: spec.core.clone(),
        config_text: spec.config_text.clone(),
    });
    let mut io = BacktestIo {
        candles,
        funding: spec
            .funding
            .iter()
            .map(|(s, rows)| {
                // Rates before the first bar have nothing to settle against.
                let from = spec.from_ns.unwrap_or(i64::MIN);
                (*s, rows.iter().copied().filter(|r| r.0 >= from).collect())
            })
            .collect(),
        venue: SimVenue::new(spec.sim.clone()),
        queue: VecDeque::new(),
        scratch: Vec::new(),
        embed: spec.embed_candles,
        session_start: Some(start),
        first_open_ns: None,
        last_close_ns: 0,
        progress,
        bars: 0,
    };
    let mut curve = EquityCurve::default();
    engine.run(&mut io, |event, core| {
        if let Event::Candle(c) = event {
            let (equity, exposed) = core.equity_and_exposure();
            curve.push(c.close_time_ns(), equity, exposed);
        }
    })?;
    let Some(first_open_ns) = io.first_open_ns else {
        return Err(BacktestError::NoCandles {
            symbol: names(&spec.symbols),
            interval: spec.interval.name(),
        });
    };
    let checkpoint = engine.checkpoint(stamp(io.last_close_ns))?;
    engine.sync()?;
    let report = build_report(
        spec,
        engine.core(),
        &curve,
        first_open_ns,
        io.last_close_ns,
        &checkpoint.digest,
    );
    Ok(BacktestOutcome { report, curve })
}

fn build_report(
    spec: &BacktestSpec,
    core: &Core,
    curve: &EquityCurve,
    start_ns: i64,
    end_ns: i64,
    digest: &[u8; 32],
) -> Report {
    let state = core.state();
    let starting = spec.core.starting_balance.to_f64();
    let final_equity = core.equity().to_f64();
    let curve_stats = curve.stats(starting, start_ns);
    let daily = &curve_stats.daily_returns;
    let trades = &state.portfolio.closed_trades;
    let stats = report::trade_stats(trades);
    const NS_PER_DAY: f64 = 86_400e9;
    let days = (end_ns - start_ns) as f64 / NS_PER_DAY;
    let cagr_pct = report::cagr(starting, final_equity, days).map(|c| c * 100.0);
    let max_dd = curve_stats.max_drawdown_pct;
    let strategy = spec.core.strategy.name();
    let holding: Vec<f64> = trades
        .iter()
        .map(|t| (t.exit_time_ns - t.entry_time_ns) as f64 / 3.6e12)
        .collect();
    Report {
        schema: 2,
        symbols: spec.symbols.iter().map(|s| s.to_string()).collect(),
        interval: spec.interval.name(),
        strategy: strategy.to_string(),
        start: report::iso8601(start_ns),
        end: report::iso8601(end_ns),
        candles: state.counters.candles,
        starting_balance: starting,
        final_equity,
        total_return_pct: if starting != 0.0 {
            (final_equity / starting - 1.0) * 100.0
        } else {
            0.0
        },
        cagr_pct,
        max_drawdown_pct: max_dd,
        max_drawdown_duration_days: curve_stats.max_drawdown_duration_ns as f64 / NS_PER_DAY,
        calmar: cagr_pct.filter(|_| max_dd > 0.0).map(|c| c / max_dd),
        sharpe: report::sharpe(daily, 365.0),
        sortino: report::sortino(daily, 365.0),
        trades: trades.len(),
        win_rate_pct: stats.win_rate_pct,
        profit_factor: stats.profit_factor,
        expectancy: stats.expectancy,
        expectancy_ratio: stats.expectancy_ratio,
        avg_holding_hours: (!holding.is_empty())
            .then(|| holding.iter().sum::<f64>() / holding.len() as f64),
        exposure_pct: curve.exposure_pct(),
        fees_paid: state.portfolio.fees_paid.to_f64(),
        orders_placed: state.counters.orders_placed,
        orders_rejected: state.counters.orders_rejected_by_venue,
        entries_rejected: RejectReason::ALL
            .iter()
            .filter_map(|&r| {
                let n = state.counters.rejects_by_reason[r as usize];
                (n > 0).then(|| (r.as_str().to_string(), n))
            })
            .collect(),
        daily_loss_trips: state.counters.daily_loss_trips,
        liquidations: state.counters.liquidations,
        funding: state.portfolio.funding.to_f64(),
        open_positions: state
            .portfolio
            .positions
            .iter()
            .filter(|(_, p)| !p.qty.is_zero())
            .map(|(s, p)| report::OpenPosition {
                symbol: s.to_string(),
                qty: p.qty.to_f64(),
            })
            .collect(),
        run_journal: spec.journal_dir.display().to_string(),
        digest: keel_engine::core::hex(digest),
        by_symbol: report::breakdown(trades, |t| t.symbol.to_string()),
        // One strategy per run today; grouping by name keeps the shape multi-strategy runs need.
        by_strategy: report::breakdown(trades, |_| strategy.to_string()),
        trade_list: trades.iter().map(TradeRow::from_trade).collect(),
    }
}

/// Default location of a run's journal inside an output directory.
pub fn journal_dir(out: &Path) -> PathBuf {
    out.join("journal")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feed over hand-made batches: what the reader thread sends, then whether it ends with
    /// the end marker or just vanishes.
    fn feed(batches: Vec<Vec<StoredBar>>, end_marker: bool) -> CandleFeed {
        let (full_tx, full) = crossbeam_channel::unbounded();
        let (empty, _empty_rx) = crossbeam_channel::unbounded();
        for b in batches {
            full_tx.send(Ok(b)).unwrap();
        }
        if end_marker {
            full_tx.send(Ok(Vec::new())).unwrap();
        }
        CandleFeed {
            full,
            empty,
            batch: Vec::new(),
            at: 0,
            done: false,
            thread: None,
        }
    }

    fn bar(i: i64) -> StoredBar {
        let p = keel_engine::Fixed::from_int(100);
        StoredBar {
            candle: Candle {
                symbol: Symbol::new("T").unwrap(),
                open_time_ns: i * 60_000_000_000,
                interval_ns: 60_000_000_000,
                open: p,
                high: p,
                low: p,
                close: p,
                volume: p,
            },
            at: CandleRef {
                store_seq: i as u64 + 1,
                store_crc: 0,
                series: 0,
            },
        }
    }

    #[test]
    fn the_feed_hands_out_every_bar_and_tells_an_end_from_a_vanished_reader() {
        let batches = || vec![vec![bar(0), bar(1)], vec![bar(2)]];
        for end_marker in [true, false] {
            let mut f = feed(batches(), end_marker);
            let mut seen = Vec::new();
            let end = loop {
                match f.advance() {
                    Ok(true) => seen.push(f.bar().at.store_seq),
                    other => break other,
                }
            };
            assert_eq!(seen, [1, 2, 3]);
            match (end_marker, end) {
                (true, Ok(false)) => {}
                (false, Err(e)) => assert!(e.to_string().contains("stopped"), "{e}"),
                (_, other) => panic!("end marker {end_marker}: {other:?}"),
            }
        }
    }
}
