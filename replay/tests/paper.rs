//! Paper sessions: the same decisions and fills as a backtest over the same real candles, and
//! a session killed after any journal record resumes to exactly the session that was never
//! killed.

use std::path::Path;

mod common;
use common::real_candles;

use keel_engine::event::{Command, Event, Fill, Mode, SessionStart};
use keel_engine::{Candle, Fixed, Interval, StrategyConfig, Symbol};
use keel_journal::{Journal, Options, Reader};
use keel_replay::backtest::{self, BacktestSpec};
use keel_replay::codec::{Decoded, decode};
use keel_replay::paper::{PaperEngine, PaperError};
use keel_replay::{store, synthetic};

fn spec(dir: &Path, candles: &[Candle]) -> BacktestSpec {
    let symbol = candles[0].symbol;
    let interval = Interval::parse("1m").unwrap();
    let store_dir = dir.join("store");
    store::append(&store_dir, symbol, interval, candles, |t| t.to_string()).unwrap();
    let mut spec = synthetic::spec(
        store_dir,
        dir.join("backtest-journal"),
        symbol,
        interval,
        StrategyConfig::SmaCross { fast: 5, slow: 20 },
        Fixed::parse("0.0004").unwrap(),
        Fixed::parse("0.0001").unwrap(),
    );
    // Stops and targets working at the venue, so crashes land between an entry's fill and
    // its protection too.
    spec.core.risk = keel_engine::RiskConfig::default();
    spec
}

fn start(spec: &BacktestSpec) -> SessionStart {
    SessionStart {
        mode: Mode::Paper,
        config: spec.core.clone(),
        config_text: spec.config_text.clone(),
    }
}

fn options() -> Options {
    Options {
        segment_size: 1 << 20,
        ..Options::default()
    }
}

fn journal_inputs(dir: &Path) -> Vec<Event> {
    let mut reader = Reader::open(dir).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = reader.next().unwrap() {
        if let Decoded::Input(e) = decode(rec.seq, rec.kind, rec.ver, rec.payload).unwrap() {
            out.push(e);
        }
    }
    out
}

fn fills(events: &[Event]) -> Vec<Fill> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Fill(f) => Some(*f),
            _ => None,
        })
        .collect()
}

/// Runs a paper session over `candles` (received at each close), with a kill switch and a
/// resume part way, from an empty journal in `dir`.
fn paper_run(dir: &Path, spec: &BacktestSpec, candles: &[Candle], commands: bool) -> PaperEngine {
    let (mut paper, report) =
        PaperEngine::open(dir, start(spec), spec.sim.clone(), options(), 1).expect("new session");
    assert!(!report.resumed);
    feed(&mut paper, candles, commands);
    paper
}

const KILL_AT: usize = 150;
const RESUME_AT: usize = 160;

fn feed(paper: &mut PaperEngine, candles: &[Candle], commands: bool) {
    for (index, c) in candles.iter().enumerate() {
        let close = c.close_time_ns() as u64;
        paper.candle(close, *c, &mut |_| {}).unwrap();
        if commands && index == KILL_AT {
            paper
                .input(close + 1, Event::Command(Command::KillSwitch), &mut |_| {})
                .unwrap();
        }
        if commands && index == RESUME_AT {
            paper
                .input(close + 1, Event::Command(Command::Resume), &mut |_| {})
                .unwrap();
        }
    }
}

#[test]
fn a_paper_session_fills_exactly_like_a_backtest_over_the_same_real_candles() {
    let dir = tempfile::tempdir().unwrap();
    let symbol = Symbol::new("BTCUSDT").unwrap();
    let candles = real_candles(symbol, 2_000);
    let spec = spec(dir.path(), &candles);
    let outcome = backtest::run(&spec, Box::new(|_| {})).unwrap();
    assert!(
        outcome.report.trades >= 10,
        "{} trades",
        outcome.report.trades
    );
    let paper = paper_run(&dir.path().join("paper"), &spec, &candles, false);
    let backtest_fills = fills(&journal_inputs(&spec.journal_dir));
    let paper_fills = fills(&journal_inputs(&dir.path().join("paper")));
    assert!(backtest_fills.len() >= 20);
    assert_eq!(paper_fills, backtest_fills);
    assert_eq!(paper.core().equity().to_f64(), outcome.report.final_equity);
    assert_eq!(
        paper.core().state().portfolio.closed_trades.len(),
        outcome.report.trades
    );
    // The venue and the core agree on what is held.
    let held = &paper.core().state().portfolio.positions;
    let core_qty = held.get(&symbol).map_or(Fixed::ZERO, |p| p.qty);
    assert_eq!(paper.venue().position(&symbol), core_qty);
}

/// Copies the first `k` records of the journal in `from` into a new journal in `to`: what a
/// process killed right after writing record `k` leaves behind.
fn cut(from: &Path, to: &Path, k: u64) {
    let (mut out, _) = Journal::open(to, options()).unwrap();
    let mut reader = Reader::open(from).unwrap();
    while let Some(rec) = reader.next().unwrap() {
        if rec.seq > k {
            break;
        }
        out.append(rec.ts_ns, rec.kind, rec.ver, rec.payload)
            .unwrap();
    }
    out.sync().unwrap();
}

#[test]
fn killed_after_any_record_a_session_resumes_to_the_session_never_killed() {
    let dir = tempfile::tempdir().unwrap();
    let symbol = Symbol::new("BTCUSDT").unwrap();
    let candles = real_candles(symbol, 400);
    let spec = spec(dir.path(), &candles);
    let whole_dir = dir.path().join("whole");
    let whole = paper_run(&whole_dir, &spec, &candles, true);
    let reference_fills = fills(&journal_inputs(&whole_dir));
    let reference_trades = whole.core().state().portfolio.closed_trades.clone();
    assert!(
        reference_trades.len() >= 3,
        "{} trades",
        reference_trades.len()
    );
    let records = whole.core().state().last_seq;
    drop(whole);
    let mut repaired = [0u64; 3];
    for k in 1..=records {
        let at = dir.path().join(format!("cut-{k}"));
        cut(&whole_dir, &at, k);
        let (mut paper, report) =
            PaperEngine::open(&at, start(&spec), spec.sim.clone(), options(), 2)
                .unwrap_or_else(|e| panic!("cut after record {k}: {e}"));
        assert!(report.resumed);
        assert_eq!(report.unreconciled, vec![], "cut after record {k}");
        repaired[0] += report.reapplied_answers;
        repaired[1] += report.journaled_decisions;
        repaired[2] += report.journaled_answers;
        // The venue delivers the bars the dead process had not journaled yet.
        let seen = paper.core().state().counters.candles as usize;
        let kill_switch_done = journal_inputs(&at)
            .iter()
            .any(|e| matches!(e, Event::Command(Command::KillSwitch)));
        let resume_done = journal_inputs(&at)
            .iter()
            .any(|e| matches!(e, Event::Command(Command::Resume)));
        // A command the operator gave is re-given if the journal does not hold it.
        let now = candles[seen.max(1) - 1].close_time_ns() as u64 + 1;
        if seen == KILL_AT + 1 && !kill_switch_done {
            paper
                .input(now, Event::Command(Command::KillSwitch), &mut |_| {})
                .unwrap();
        }
        if seen == RESUME_AT + 1 && !resume_done {
            paper
                .input(now, Event::Command(Command::Resume), &mut |_| {})
                .unwrap();
        }
        for (i, c) in candles.iter().enumerate().skip(seen) {
            let close = c.close_time_ns() as u64;
            paper.candle(close, *c, &mut |_| {}).unwrap();
            if i == KILL_AT && !kill_switch_done {
                paper
                    .input(close + 1, Event::Command(Command::KillSwitch), &mut |_| {})
                    .unwrap();
            }
            if i == RESUME_AT && !resume_done {
                paper
                    .input(close + 1, Event::Command(Command::Resume), &mut |_| {})
                    .unwrap();
            }
        }
        assert_eq!(
            fills(&journal_inputs(&at)),
            reference_fills,
            "cut after record {k}"
        );
        assert_eq!(
            paper.core().state().portfolio.closed_trades,
            reference_trades,
            "cut after record {k}"
        );
        let core_qty = paper
            .core()
            .state()
            .portfolio
            .positions
            .get(&symbol)
            .map_or(Fixed::ZERO, |p| p.qty);
        assert_eq!(paper.venue().position(&symbol), core_qty, "cut after {k}");
        drop(paper);
        std::fs::remove_dir_all(&at).unwrap();
    }
    // Every kind of half-done work was met at least once.
    assert!(
        repaired.iter().all(|&n| n > 0),
        "repairs seen: {repaired:?}"
    );
}

#[test]
fn a_journal_resumed_with_another_strategy_or_fee_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let symbol = Symbol::new("BTCUSDT").unwrap();
    let candles = real_candles(symbol, 300);
    let spec = spec(dir.path(), &candles);
    let at = dir.path().join("paper");
    drop(paper_run(&at, &spec, &candles, false));

    let mut other = start(&spec);
    other.config.strategy = StrategyConfig::SmaCross { fast: 7, slow: 20 };
    let err = PaperEngine::open(&at, other, spec.sim.clone(), options(), 3)
        .err()
        .expect("refused");
    assert!(matches!(err, PaperError::ConfigChanged { .. }), "{err}");
    assert!(err.to_string().contains("strategy"), "{err}");

    let mut sim = spec.sim.clone();
    sim.taker_fee = Fixed::parse("0.001").unwrap();
    let err = PaperEngine::open(&at, start(&spec), sim, options(), 3)
        .err()
        .expect("refused");
    assert!(matches!(err, PaperError::Inconsistent { .. }), "{err}");
    assert!(err.to_string().contains("seq "), "{err}");
}
