//! `replay diff`: re-run a session journal's window as a backtest and list every order whose
//! fills differ from the recorded ones — for a live journal, live against backtest.
//!
//! The re-run is a fresh [`PaperEngine`] (the simulated venue with a backtest's timeline)
//! started with the journal's `SessionStart` (same core configuration) and fed, in journal
//! order and with their journal timestamps, the journaled candles, operator commands and
//! timers. Recorded venue answers (fills, order updates, funding) are not fed: the simulated
//! venue gives its own. Funding is therefore not re-simulated; it shows in the recorded pnl
//! only.
//!
//! Orders of the two runs are paired by an [`OrderKey`] that does not involve client ids
//! (those derive from journal sequence numbers, which shift as soon as the venues answer
//! differently): `(symbol, side, cause, index)`, where the cause is
//! - the candle (symbol, open time) or the operator command / timer (kind, journal time) the
//!   core was applying when it decided the order;
//! - for an order decided on a venue answer (the stop and target armed by an entry's fill),
//!   the last candle of the order's symbol applied before it: when the fill arrives is what
//!   differs between runs, the bar it answers is not;
//! - the session start, for an order decided before any candle;
//!
//! and the index counts the earlier orders with the same symbol, side and cause, in decision
//! order (an entry's stop is sell #0, its target sell #1).
//!
//! An order armed by a venue answer that came a bar later in one run (an entry filled in
//! parts under a participation cap, a fill delayed past the next candle) gets another cause
//! there: it shows as "recorded only" plus "backtest only" rather than as one pair.
//!
//! Each pair compares, exactly in fixed point: the order itself (kind, price, quantity), the
//! filled quantity, the volume-weighted average fill price, the first and last fill times,
//! the fees and the final status. An order in one run only is a difference too. Fills for no
//! order of the session (liquidations, manual trades) pair with nothing; they are counted,
//! and they move the pnl totals.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use keel_engine::event::{
    Command, Decision, Event, Fill, Input, Mode, OrderKind, OrderRequest, OrderStatus, OrderUpdate,
    SessionStart, Side, TimerKind,
};
use keel_engine::{Core, Fixed, RecordKind, SimConfig, Symbol};
use keel_journal::{JournalError, Options};
use serde::{Serialize, Serializer};

use crate::codec::{DecodeError, Decoded};
use crate::engine_loop::LoopError;
use crate::paper::{PaperEngine, PaperError};
use crate::report::iso8601;
use crate::resolve::{ResolveError, RunReader, RunRecord};

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Unreadable or corrupt journal; the error names the segment file and byte offset.
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{dir}: {source}")]
    Decode { dir: PathBuf, source: DecodeError },
    #[error(
        "{dir} is a candle store, not a session journal; replay diff needs the journal of a \
         live, paper or backtest session"
    )]
    CandleStore { dir: PathBuf },
    #[error("{dir} holds no journal records; pass a session journal such as runs/<name>/journal")]
    Empty { dir: PathBuf },
    #[error(
        "{dir}: record {seq} is a {found}, but a session journal starts with its session_start; \
         the journal's beginning is missing, or this is not a session journal"
    )]
    NoSessionStart {
        dir: PathBuf,
        seq: u64,
        found: &'static str,
    },
    #[error("{dir}: the session journaled no candles, so there is no window to re-run")]
    NoCandles { dir: PathBuf },
    #[error(transparent)]
    Resolve(Box<ResolveError>),
    #[error(
        "scratch directory {dir} is not empty; give a new or empty directory for the re-run's \
         journal"
    )]
    ScratchNotEmpty { dir: PathBuf },
    #[error("re-running the session in {dir}: {source}")]
    Rerun { dir: PathBuf, source: PaperError },
    #[error("re-running the session in {dir}: {source}")]
    RerunLoop { dir: PathBuf, source: LoopError },
}

/// What made the core decide an order (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Cause {
    SessionStart,
    Candle {
        #[serde(serialize_with = "as_text")]
        symbol: Symbol,
        open_time_ns: i64,
    },
    Command {
        command: &'static str,
        ts_ns: u64,
    },
    Timer {
        timer: &'static str,
        ts_ns: u64,
    },
}

impl Cause {
    /// When the cause happened, for ordering the report.
    fn ts_ns(&self) -> i64 {
        match self {
            Cause::SessionStart => i64::MIN,
            Cause::Candle { open_time_ns, .. } => *open_time_ns,
            Cause::Command { ts_ns, .. } | Cause::Timer { ts_ns, .. } => {
                i64::try_from(*ts_ns).unwrap_or(i64::MAX)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Cause::SessionStart => "at session start".into(),
            Cause::Candle { open_time_ns, .. } => format!("bar {}", iso8601(*open_time_ns)),
            Cause::Command { command, ts_ns } => {
                format!("{command} at {}", iso8601(*ts_ns as i64))
            }
            Cause::Timer { timer, ts_ns } => format!("{timer} timer at {}", iso8601(*ts_ns as i64)),
        }
    }
}

/// Identifies one order across two runs of the same session (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderKey {
    #[serde(serialize_with = "as_text")]
    pub symbol: Symbol,
    #[serde(serialize_with = "side_text")]
    pub side: Side,
    pub cause: Cause,
    pub index: u32,
}

impl OrderKey {
    fn rank(&self) -> (i64, Symbol, u8, &Cause, u32) {
        let side = match self.side {
            Side::Buy => 0,
            Side::Sell => 1,
        };
        (
            self.cause.ts_ns(),
            self.symbol,
            side,
            &self.cause,
            self.index,
        )
    }
}

impl Ord for OrderKey {
    /// In time order of the cause, then symbol, side and index.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for OrderKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Market,
    Limit,
    Stop,
}

/// Where an order ended, from the venue's answers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalStatus {
    /// The whole quantity filled.
    Filled,
    /// Part filled and no final answer: still working when the journal ends, or a
    /// reduce-only order cut to the smaller position it closed.
    PartiallyFilled,
    /// The venue's final answer (any fills before it are in `filled_qty`).
    Cancelled,
    Rejected,
    Expired,
    /// Nothing filled and no final answer.
    Open,
}

impl FinalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Filled => "filled",
            FinalStatus::PartiallyFilled => "partially_filled",
            FinalStatus::Cancelled => "cancelled",
            FinalStatus::Rejected => "rejected",
            FinalStatus::Expired => "expired",
            FinalStatus::Open => "open",
        }
    }
}

/// One order of one run and what became of it. Amounts are exact decimals (strings in
/// JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderOutcome {
    /// This run's client id (differs between runs; not part of the pairing).
    pub client_id: u64,
    pub kind: OrderType,
    /// The limit price or the stop trigger.
    #[serde(serialize_with = "opt_text")]
    pub price: Option<Fixed>,
    #[serde(serialize_with = "as_text")]
    pub qty: Fixed,
    pub reduce_only: bool,
    pub fills: u32,
    #[serde(serialize_with = "as_text")]
    pub filled_qty: Fixed,
    /// Volume-weighted average fill price, rounded half away from zero to 1e-8.
    #[serde(serialize_with = "opt_text")]
    pub avg_price: Option<Fixed>,
    /// `Fill::ts_event_ns` of the first and the last fill.
    pub first_fill_ns: Option<i64>,
    pub last_fill_ns: Option<i64>,
    #[serde(serialize_with = "as_text")]
    pub fees: Fixed,
    pub status: FinalStatus,
    /// The venue's reason for a rejection, cancellation or expiry.
    pub reason: String,
}

impl OrderOutcome {
    fn same_order(&self, other: &OrderOutcome) -> bool {
        (self.kind, self.price, self.qty, self.reduce_only)
            == (other.kind, other.price, other.qty, other.reduce_only)
    }

    /// `market 0.043`, `stop 45210.5 0.043 reduce-only`.
    fn order_text(&self) -> String {
        let kind = match self.kind {
            OrderType::Market => "market",
            OrderType::Limit => "limit",
            OrderType::Stop => "stop",
        };
        let mut s = kind.to_string();
        if let Some(p) = self.price {
            s.push_str(&format!(" {p}"));
        }
        s.push_str(&format!(" {}", self.qty));
        if self.reduce_only {
            s.push_str(" reduce-only");
        }
        s
    }

    /// `filled 0.043 @ 46512.3`, `rejected (insufficient balance…)`.
    fn result_text(&self) -> String {
        let mut s = self.status.as_str().to_string();
        if let Some(avg) = self.avg_price {
            s.push_str(&format!(" {} @ {avg}", self.filled_qty));
        }
        if !self.reason.is_empty() && self.filled_qty.is_zero() {
            s.push_str(&format!(" ({})", self.reason));
        }
        s
    }
}

/// What differs in one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Only the recorded session placed this order.
    RecordedOnly,
    /// Only the backtest re-run placed this order.
    BacktestOnly,
    /// The order itself: kind, limit/stop price, quantity or reduce-only.
    Order,
    FilledQty,
    AvgPrice,
    FirstFill,
    LastFill,
    Fees,
    Status,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::RecordedOnly => "recorded only",
            Field::BacktestOnly => "backtest only",
            Field::Order => "order",
            Field::FilledQty => "qty",
            Field::AvgPrice => "price",
            Field::FirstFill => "first fill",
            Field::LastFill => "last fill",
            Field::Fees => "fees",
            Field::Status => "status",
        }
    }
}

/// One order whose outcome differs between the recorded session and the backtest re-run.
/// Differences are recorded − backtest; a missing side counts as nothing filled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderDiff {
    pub key: OrderKey,
    pub recorded: Option<OrderOutcome>,
    /// The backtest re-run's side.
    pub rerun: Option<OrderOutcome>,
    pub differs: Vec<Field>,
    /// Average fill price, recorded − backtest, when both filled.
    #[serde(serialize_with = "opt_text")]
    pub price_diff: Option<Fixed>,
    /// `price_diff` in basis points of the backtest's average price.
    #[serde(serialize_with = "opt_text")]
    pub price_diff_bps: Option<Fixed>,
    #[serde(serialize_with = "as_text")]
    pub qty_diff: Fixed,
    #[serde(serialize_with = "as_text")]
    pub fees_diff: Fixed,
    pub first_fill_diff_ns: Option<i64>,
    pub last_fill_diff_ns: Option<i64>,
}

impl OrderDiff {
    /// One line for a person: the order, then each thing that differs, recorded first.
    pub fn describe(&self) -> String {
        let head = self.head();
        match (&self.recorded, &self.rerun) {
            (Some(r), None) => format!(
                "{head} {}: recorded only, {}; the backtest placed no such order",
                r.order_text(),
                r.result_text()
            ),
            (None, Some(b)) => format!(
                "{head} {}: backtest only, {}; the recorded session placed no such order",
                b.order_text(),
                b.result_text()
            ),
            (Some(r), Some(b)) => {
                let parts: Vec<String> = self
                    .differs
                    .iter()
                    .map(|f| self.field_text(*f, r, b))
                    .collect();
                format!(
                    "{head} {}: {} (recorded vs backtest)",
                    r.order_text(),
                    parts.join(", ")
                )
            }
            (None, None) => head,
        }
    }

    fn head(&self) -> String {
        let k = &self.key;
        format!(
            "{} {} {} #{}",
            k.cause.describe(),
            k.symbol,
            k.side.as_str(),
            k.index
        )
    }

    fn field_text(&self, field: Field, r: &OrderOutcome, b: &OrderOutcome) -> String {
        let time = |t: Option<i64>| t.map_or("none".to_string(), iso8601);
        match field {
            Field::Order => format!("order {} vs {}", r.order_text(), b.order_text()),
            Field::FilledQty => format!("filled {} vs {}", r.filled_qty, b.filled_qty),
            Field::AvgPrice => match (r.avg_price, b.avg_price, self.price_diff) {
                (Some(a), Some(c), Some(d)) => format!(
                    "price {a} vs {c} ({}{d}, {} bps{})",
                    plus(d),
                    bps_text(self.price_diff_bps),
                    worse_text(self.key.side, d)
                ),
                (a, c, _) => format!("price {} vs {}", opt_str(a), opt_str(c)),
            },
            Field::FirstFill => format!(
                "first fill {} vs {}{}",
                time(r.first_fill_ns),
                time(b.first_fill_ns),
                secs_text(self.first_fill_diff_ns)
            ),
            Field::LastFill => format!(
                "last fill {} vs {}{}",
                time(r.last_fill_ns),
                time(b.last_fill_ns),
                secs_text(self.last_fill_diff_ns)
            ),
            Field::Fees => format!("fees {} vs {}", r.fees, b.fees),
            Field::Status => format!("status {} vs {}", r.status.as_str(), b.status.as_str()),
            Field::RecordedOnly | Field::BacktestOnly => field.as_str().to_string(),
        }
    }
}

/// The portfolio's totals at the end of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PnlTotals {
    #[serde(serialize_with = "as_text")]
    pub realized_pnl: Fixed,
    #[serde(serialize_with = "as_text")]
    pub fees_paid: Fixed,
    /// Funding received (negative: paid); the re-run simulates none.
    #[serde(serialize_with = "as_text")]
    pub funding: Fixed,
    pub closed_trades: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    pub journal: String,
    pub orders_recorded: usize,
    pub orders_rerun: usize,
    /// Orders found in both runs.
    pub pairs: usize,
    /// Every pair that differs and every order of one run only, in time order of the cause.
    pub differences: Vec<OrderDiff>,
    pub recorded_pnl: PnlTotals,
    pub rerun_pnl: PnlTotals,
    /// Fills for no order of the session (liquidations, manual trades), per run.
    pub other_fills_recorded: usize,
    pub other_fills_rerun: usize,
    pub candles: usize,
    /// First candle's open and last candle's close, in ns since the epoch.
    pub window: (i64, i64),
}

/// Re-runs `journal`'s window as a backtest with the simulated venue `sim` (its journal goes
/// to `scratch_dir`, which must be new or empty) and compares the orders' outcomes.
pub fn diff(journal: &Path, sim: SimConfig, scratch_dir: &Path) -> Result<DiffReport, DiffError> {
    diff_with_store(journal, None, sim, scratch_dir)
}

/// [`diff`], reading a backtest journal's bars from `store` instead of the store it names.
pub fn diff_with_store(
    journal: &Path,
    store: Option<&Path>,
    sim: SimConfig,
    scratch_dir: &Path,
) -> Result<DiffReport, DiffError> {
    let recorded = read_session(journal, store)?;
    let window = recorded.window.ok_or_else(|| DiffError::NoCandles {
        dir: journal.to_path_buf(),
    })?;
    rerun(&recorded, sim, scratch_dir)?;
    let rerun = read_session(scratch_dir, None)?;
    let rerun_by_key: BTreeMap<&OrderKey, &OrderOutcome> =
        rerun.orders.iter().map(|(k, o)| (k, o)).collect();
    let mut paired = std::collections::BTreeSet::new();
    let mut differences = Vec::new();
    for (key, r) in &recorded.orders {
        match rerun_by_key.get(key) {
            Some(b) => {
                paired.insert(key);
                if let Some(d) = compare(key, Some(r), Some(b)) {
                    differences.push(d);
                }
            }
            None => differences.extend(compare(key, Some(r), None)),
        }
    }
    for (key, b) in &rerun.orders {
        if !paired.contains(key) {
            differences.extend(compare(key, None, Some(b)));
        }
    }
    differences.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(DiffReport {
        journal: journal.display().to_string(),
        orders_recorded: recorded.orders.len(),
        orders_rerun: rerun.orders.len(),
        pairs: paired.len(),
        differences,
        recorded_pnl: recorded.pnl,
        rerun_pnl: rerun.pnl,
        other_fills_recorded: recorded.other_fills,
        other_fills_rerun: rerun.other_fills,
        candles: recorded.candles,
        window,
    })
}

/// The terminal table: one line per difference, then the summary line.
pub fn render_text(report: &DiffReport) -> String {
    let mut out = format!(
        "replay diff {}: {} candles, {} → {}\n",
        report.journal,
        report.candles,
        iso8601(report.window.0),
        iso8601(report.window.1)
    );
    for (name, orders, p) in [
        ("recorded", report.orders_recorded, &report.recorded_pnl),
        ("backtest", report.orders_rerun, &report.rerun_pnl),
    ] {
        out.push_str(&format!(
            "{name:<9} {orders} orders, {} closed trades, realised pnl {}, fees {}, funding {}\n",
            p.closed_trades, p.realized_pnl, p.fees_paid, p.funding
        ));
    }
    if report.other_fills_recorded + report.other_fills_rerun > 0 {
        out.push_str(&format!(
            "fills for no order (liquidations, manual trades): {} recorded, {} backtest\n",
            report.other_fills_recorded, report.other_fills_rerun
        ));
    }
    if !report.differences.is_empty() {
        out.push_str(&table(&report.differences));
    }
    let only = report
        .differences
        .iter()
        .filter(|d| d.rerun.is_none())
        .count();
    let compared = report.orders_recorded + report.orders_rerun - report.pairs;
    out.push_str(&format!(
        "{compared} orders compared, {} differ ({} paired, {only} recorded only, {} backtest only)\n",
        report.differences.len(),
        report.pairs,
        report.orders_rerun - report.pairs
    ));
    out
}

fn table(differences: &[OrderDiff]) -> String {
    let header = [
        "cause", "order", "recorded", "backtest", "Δ price", "Δ bps", "Δ qty", "differs",
    ]
    .map(String::from);
    let mut rows = vec![header];
    for d in differences {
        let side = |o: &Option<OrderOutcome>| o.as_ref().map_or("—".into(), |o| o.result_text());
        let order = d.recorded.as_ref().or(d.rerun.as_ref());
        rows.push([
            d.key.cause.describe(),
            format!(
                "{} {} #{} {}",
                d.key.symbol,
                d.key.side.as_str(),
                d.key.index,
                order.map_or(String::new(), |o| o.order_text())
            ),
            side(&d.recorded),
            side(&d.rerun),
            d.price_diff
                .map_or(String::new(), |p| format!("{}{p}", plus(p))),
            d.price_diff_bps
                .map_or(String::new(), |_| bps_text(d.price_diff_bps)),
            if d.qty_diff.is_zero() {
                String::new()
            } else {
                format!("{}{}", plus(d.qty_diff), d.qty_diff)
            },
            d.differs
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One run's session as its journal holds it.
struct Session {
    start: (u64, SessionStart),
    /// Candles, operator commands and timers with their journal timestamps, in order: what
    /// the re-run is fed.
    feed: Vec<(u64, Event)>,
    orders: Vec<(OrderKey, OrderOutcome)>,
    other_fills: usize,
    pnl: PnlTotals,
    candles: usize,
    window: Option<(i64, i64)>,
}

/// An order's fills and answers as they are read.
struct Tally {
    key: OrderKey,
    request: OrderRequest,
    fills: u32,
    filled: Fixed,
    /// Σ price × qty in units of 1e-16, exact.
    notional: i128,
    fees: Fixed,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    end: Option<(OrderStatus, String)>,
}

impl Tally {
    fn new(key: OrderKey, request: OrderRequest) -> Tally {
        Tally {
            key,
            request,
            fills: 0,
            filled: Fixed::ZERO,
            notional: 0,
            fees: Fixed::ZERO,
            first_ns: None,
            last_ns: None,
            end: None,
        }
    }

    fn fill(&mut self, f: &Fill) {
        self.fills += 1;
        self.filled += f.qty;
        self.notional += i128::from(f.price.raw()) * i128::from(f.qty.raw());
        self.fees += f.fee;
        self.first_ns.get_or_insert(f.ts_event_ns);
        self.last_ns = Some(f.ts_event_ns);
    }

    fn update(&mut self, u: &OrderUpdate) {
        if u.status != OrderStatus::Accepted && self.end.is_none() {
            self.end = Some((u.status, u.reason.clone()));
        }
    }

    fn outcome(self) -> (OrderKey, OrderOutcome) {
        let r = &self.request;
        let (kind, price) = match r.kind {
            OrderKind::Market => (OrderType::Market, None),
            OrderKind::Limit { price, .. } => (OrderType::Limit, Some(price)),
            OrderKind::Stop { trigger } => (OrderType::Stop, Some(trigger)),
        };
        let status = match &self.end {
            _ if self.filled >= r.qty => FinalStatus::Filled,
            Some((OrderStatus::Rejected, _)) => FinalStatus::Rejected,
            Some((OrderStatus::Expired, _)) => FinalStatus::Expired,
            Some(_) => FinalStatus::Cancelled,
            None if self.filled > Fixed::ZERO => FinalStatus::PartiallyFilled,
            None => FinalStatus::Open,
        };
        let avg_price = (self.filled > Fixed::ZERO)
            .then(|| Fixed::from_raw(div_round(self.notional, i128::from(self.filled.raw()))));
        let outcome = OrderOutcome {
            client_id: r.client_id,
            kind,
            price,
            qty: r.qty,
            reduce_only: r.reduce_only,
            fills: self.fills,
            filled_qty: self.filled,
            avg_price,
            first_fill_ns: self.first_ns,
            last_fill_ns: self.last_ns,
            fees: self.fees,
            status,
            reason: self.end.map(|(_, why)| why).unwrap_or_default(),
        };
        (self.key, outcome)
    }
}

/// Every order of one run, in decision order, with its fills and answers.
#[derive(Default)]
struct Ledger {
    tallies: Vec<Tally>,
    by_client_id: BTreeMap<u64, usize>,
    /// Fills for no order of the session.
    other_fills: usize,
}

impl Ledger {
    /// A journaled order decision. A decision journaled twice (a resend after a crash
    /// carries the same id) is one order.
    fn place(&mut self, request: OrderRequest, keys: &mut KeyMaker) {
        if let std::collections::btree_map::Entry::Vacant(e) =
            self.by_client_id.entry(request.client_id)
        {
            e.insert(self.tallies.len());
            self.tallies.push(Tally::new(keys.key(&request), request));
        }
    }

    fn fill(&mut self, f: &Fill) {
        match self.by_client_id.get(&f.client_id) {
            Some(&i) => self.tallies[i].fill(f),
            None => self.other_fills += 1,
        }
    }

    fn update(&mut self, u: &OrderUpdate) {
        if let Some(&i) = self.by_client_id.get(&u.client_id) {
            self.tallies[i].update(u);
        }
    }
}

/// Reads a session journal: its start, the re-run's feed, every order with its outcome, and
/// the pnl of a fresh core fed the journal's inputs.
fn read_session(dir: &Path, store: Option<&Path>) -> Result<Session, DiffError> {
    let resolve_err = |e| match e {
        ResolveError::Journal(e) => DiffError::Journal(e),
        ResolveError::Decode { dir, source } => DiffError::Decode { dir, source },
        e => DiffError::Resolve(Box::new(e)),
    };
    let mut reader = RunReader::open(dir, store).map_err(resolve_err)?;
    let mut acc = Accumulator::default();
    let mut start = None;
    while let Some(RunRecord {
        seq,
        ts_ns,
        kind,
        decoded,
    }) = reader.next_record().map_err(resolve_err)?
    {
        match (&decoded, &start) {
            (Decoded::StoredCandle(_), _) => {
                return Err(DiffError::CandleStore {
                    dir: dir.to_path_buf(),
                });
            }
            (Decoded::Input(Event::SessionStart(s)), None) => start = Some((ts_ns, s.clone())),
            (_, None) => {
                return Err(DiffError::NoSessionStart {
                    dir: dir.to_path_buf(),
                    seq,
                    found: RecordKind::from_u16(kind).map_or("record", |k| k.name()),
                });
            }
            _ => {}
        }
        acc.record(seq, ts_ns, decoded);
    }
    let Some(start) = start else {
        return Err(DiffError::Empty {
            dir: dir.to_path_buf(),
        });
    };
    Ok(acc.finish(start))
}

/// Folds a session journal's records, in order, into a [`Session`].
#[derive(Default)]
struct Accumulator {
    /// Fed every input, for the pnl totals.
    core: Core,
    feed: Vec<(u64, Event)>,
    keys: KeyMaker,
    ledger: Ledger,
    candles: usize,
    window: Option<(i64, i64)>,
}

impl Accumulator {
    fn record(&mut self, seq: u64, ts_ns: u64, decoded: Decoded) {
        match decoded {
            Decoded::Input(event) => {
                self.keys.input(ts_ns, &event);
                match &event {
                    Event::Candle(c) => {
                        self.candles += 1;
                        let (open, close) = (c.open_time_ns, c.close_time_ns());
                        let (lo, hi) = self.window.unwrap_or((open, close));
                        self.window = Some((lo.min(open), hi.max(close)));
                        self.feed.push((ts_ns, event.clone()));
                    }
                    Event::Command(_) | Event::Timer(_) => self.feed.push((ts_ns, event.clone())),
                    Event::Fill(f) => self.ledger.fill(f),
                    Event::OrderUpdate(u) => self.ledger.update(u),
                    _ => {}
                }
                self.core.apply(&Input { seq, ts_ns, event });
            }
            Decoded::Decision(Decision::PlaceOrder(r)) => self.ledger.place(r, &mut self.keys),
            Decoded::Decision(_)
            | Decoded::Checkpoint(_)
            | Decoded::StoredCandle(_)
            | Decoded::CandleRef(_)
            | Decoded::FirstCandleRef { .. } => {}
        }
    }

    fn finish(self, start: (u64, SessionStart)) -> Session {
        let p = &self.core.state().portfolio;
        let pnl = PnlTotals {
            realized_pnl: p.realized_pnl,
            fees_paid: p.fees_paid,
            funding: p.funding,
            closed_trades: p.closed_trades.len(),
        };
        Session {
            start,
            feed: self.feed,
            other_fills: self.ledger.other_fills,
            orders: self
                .ledger
                .tallies
                .into_iter()
                .map(Tally::outcome)
                .collect(),
            pnl,
            candles: self.candles,
            window: self.window,
        }
    }
}

/// Gives each order decision its [`OrderKey`], following the inputs (module docs).
#[derive(Default)]
struct KeyMaker {
    /// The cause of decisions made for the current input; `None` for a venue answer.
    current: Option<Cause>,
    last_candle: BTreeMap<Symbol, i64>,
    /// Orders already keyed per (symbol, buy?, cause).
    counts: BTreeMap<(Symbol, bool, Cause), u32>,
}

impl KeyMaker {
    fn input(&mut self, ts_ns: u64, event: &Event) {
        self.current = match event {
            Event::SessionStart(_) => Some(Cause::SessionStart),
            Event::Candle(c) => {
                self.last_candle.insert(c.symbol, c.open_time_ns);
                Some(Cause::Candle {
                    symbol: c.symbol,
                    open_time_ns: c.open_time_ns,
                })
            }
            Event::Command(c) => Some(Cause::Command {
                command: command_name(*c),
                ts_ns,
            }),
            Event::Timer(t) => Some(Cause::Timer {
                timer: match t.kind {
                    TimerKind::Heartbeat => "heartbeat",
                    TimerKind::DailyReport => "daily_report",
                },
                ts_ns,
            }),
            // Venue answers and market data other than candles: the order's own symbol's
            // last candle, decided per order.
            _ => None,
        };
    }

    fn key(&mut self, r: &OrderRequest) -> OrderKey {
        let cause = self.current.clone().unwrap_or_else(|| {
            self.last_candle
                .get(&r.symbol)
                .map_or(Cause::SessionStart, |&open_time_ns| Cause::Candle {
                    symbol: r.symbol,
                    open_time_ns,
                })
        });
        let n = self
            .counts
            .entry((r.symbol, r.side == Side::Buy, cause.clone()))
            .or_insert(0);
        let index = *n;
        *n += 1;
        OrderKey {
            symbol: r.symbol,
            side: r.side,
            cause,
            index,
        }
    }
}

fn command_name(c: Command) -> &'static str {
    match c {
        Command::KillSwitch => "kill_switch",
        Command::Halt => "halt",
        Command::Resume => "resume",
        Command::CancelAll => "cancel_all",
    }
}

/// Runs the recorded session's feed through a fresh paper engine journaling to `scratch`.
fn rerun(recorded: &Session, sim: SimConfig, scratch: &Path) -> Result<(), DiffError> {
    let not_empty = std::fs::read_dir(scratch).is_ok_and(|mut d| d.next().is_some());
    if not_empty {
        return Err(DiffError::ScratchNotEmpty {
            dir: scratch.to_path_buf(),
        });
    }
    let (start_ns, start) = &recorded.start;
    let start = SessionStart {
        mode: Mode::Backtest,
        ..start.clone()
    };
    let options = Options {
        segment_size: 16 << 20,
        pretouch: false,
        ..Options::default()
    };
    let (mut paper, _) =
        PaperEngine::open(scratch, start, sim, options, *start_ns).map_err(|source| {
            DiffError::Rerun {
                dir: scratch.to_path_buf(),
                source,
            }
        })?;
    let fed = recorded
        .feed
        .iter()
        .try_for_each(|(ts_ns, event)| match event {
            Event::Candle(c) => paper.candle(*ts_ns, *c, &mut |_| {}),
            _ => paper.input(*ts_ns, event.clone(), &mut |_| {}),
        });
    fed.and_then(|()| paper.sync())
        .map_err(|source| DiffError::RerunLoop {
            dir: scratch.to_path_buf(),
            source,
        })
}

/// The difference of one pair (or one unpaired order), `None` when they agree.
fn compare(
    key: &OrderKey,
    recorded: Option<&OrderOutcome>,
    rerun: Option<&OrderOutcome>,
) -> Option<OrderDiff> {
    let mut differs = Vec::new();
    match (recorded, rerun) {
        (Some(r), Some(b)) => {
            let checks = [
                (!r.same_order(b), Field::Order),
                (r.filled_qty != b.filled_qty, Field::FilledQty),
                (r.avg_price != b.avg_price, Field::AvgPrice),
                (r.first_fill_ns != b.first_fill_ns, Field::FirstFill),
                (r.last_fill_ns != b.last_fill_ns, Field::LastFill),
                (r.fees != b.fees, Field::Fees),
                (r.status != b.status, Field::Status),
            ];
            differs.extend(checks.iter().filter(|(d, _)| *d).map(|(_, f)| *f));
            if differs.is_empty() {
                return None;
            }
        }
        (Some(_), None) => differs.push(Field::RecordedOnly),
        (None, Some(_)) => differs.push(Field::BacktestOnly),
        (None, None) => return None,
    }
    let filled = |o: Option<&OrderOutcome>| o.map_or(Fixed::ZERO, |o| o.filled_qty);
    let fees = |o: Option<&OrderOutcome>| o.map_or(Fixed::ZERO, |o| o.fees);
    let avg = |o: Option<&OrderOutcome>| o.and_then(|o| o.avg_price);
    let price_diff = avg(recorded)
        .zip(avg(rerun))
        .map(|(r, b)| Fixed::from_raw(r.raw() - b.raw()));
    let price_diff_bps = price_diff.zip(avg(rerun)).map(|(d, b)| bps(d, b));
    let time_diff = |f: fn(&OrderOutcome) -> Option<i64>| {
        recorded
            .and_then(f)
            .zip(rerun.and_then(f))
            .map(|(r, b)| r - b)
    };
    Some(OrderDiff {
        key: key.clone(),
        recorded: recorded.cloned(),
        rerun: rerun.cloned(),
        differs,
        price_diff,
        price_diff_bps,
        qty_diff: filled(recorded) - filled(rerun),
        fees_diff: fees(recorded) - fees(rerun),
        first_fill_diff_ns: time_diff(|o| o.first_fill_ns),
        last_fill_diff_ns: time_diff(|o| o.last_fill_ns),
    })
}

/// `diff / base × 10,000`, rounded half away from zero to 1e-8 bps.
fn bps(diff: Fixed, base: Fixed) -> Fixed {
    if base.is_zero() {
        return Fixed::ZERO;
    }
    let scaled = i128::from(diff.raw()) * 10_000 * i128::from(Fixed::SCALE);
    Fixed::from_raw(div_round(scaled, i128::from(base.raw())))
}

/// `n / d` rounded half away from zero, saturated to an `i64`.
fn div_round(n: i128, d: i128) -> i64 {
    assert!(d != 0, "div_round by zero");
    let q = n / d;
    let r = n % d;
    let q = if 2 * r.abs() >= d.abs() {
        if (n < 0) != (d < 0) { q - 1 } else { q + 1 }
    } else {
        q
    };
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn plus(x: Fixed) -> &'static str {
    if x > Fixed::ZERO { "+" } else { "" }
}

fn bps_text(b: Option<Fixed>) -> String {
    b.map_or(String::new(), |b| format!("{:+.2}", b.to_f64()))
}

/// Whether the recorded fill was worse or better than the backtest's for the order's side.
fn worse_text(side: Side, diff: Fixed) -> &'static str {
    match (side, diff.raw().signum()) {
        (Side::Buy, 1) | (Side::Sell, -1) => ", worse",
        (Side::Buy, -1) | (Side::Sell, 1) => ", better",
        _ => "",
    }
}

fn secs_text(ns: Option<i64>) -> String {
    match ns {
        Some(ns) if ns != 0 => format!(" ({:+}s)", ns as f64 / 1e9),
        _ => String::new(),
    }
}

fn opt_str(x: Option<Fixed>) -> String {
    x.map_or("none".into(), |x| x.to_string())
}

fn as_text<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn opt_text<S: Serializer>(value: &Option<Fixed>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn side_text<S: Serializer>(side: &Side, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(side.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bps_and_rounding_are_exact_in_fixed_point() {
        let p = |s: &str| Fixed::parse(s).unwrap();
        assert_eq!(bps(p("46.5"), p("46500")), p("10"));
        assert_eq!(bps(p("-1"), p("3")), p("-3333.33333333"));
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
    }
}
