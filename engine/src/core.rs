//! The deterministic core: `Core::apply(&mut self, &Input) -> &[Decision]`.
//!
//! The core owns market state, the strategy, the order book of its own orders and the
//! portfolio. It is a pure function of the inputs it has applied: no clock, no RNG, no I/O.
//! Two cores fed the same inputs hold byte-identical state, which `digest()` proves.

use std::collections::BTreeMap;

use crate::candle::Candle;
use crate::config::{CoreConfig, StopRule, StrategyConfig, TargetRule};
use crate::event::{
    AccountState, Command, Decision, Event, FEE_IN_BASE_CLIENT_ID, Fill, Input,
    LIQUIDATION_CLIENT_ID, Mode, OrderKind, OrderRequest, OrderStatus, OrderUpdate, RejectReason,
    Side, SignalAction, client_order_id,
};
use crate::fixed::Fixed;
use crate::indicators::Atr;
use crate::portfolio::Portfolio;
use crate::resample::Resampler;
use crate::strategy::grid::{Grid, GridPhase};
use crate::strategy::{Signal, StrategyState};
use crate::symbol::Symbol;

/// Version of the `CoreState` layout inside snapshots.
pub const STATE_VERSION: u32 = 3;

const NS_PER_DAY: i64 = 86_400_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum OrderPhase {
    /// Decided and journaled; no answer from the venue yet.
    Submitted,
    Open,
    /// The core asked for it to be cancelled; it no longer counts as protection or as an
    /// order in flight, but stays tracked until the venue answers.
    CancelRequested,
}

/// What an order is for, so the core knows what its fills mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum OrderRole {
    /// Opens a position; its fills arm the protective orders.
    Entry,
    /// Closes a position (exit signal, kill switch, daily-loss flatten).
    Exit,
    StopLoss,
    TakeProfit,
    /// The grid's market buy of the inventory its sell levels need.
    GridSeed,
    /// A grid limit buy at level `k`.
    GridBuy(u32),
    /// A grid limit sell at level `k`.
    GridSell(u32),
}

impl OrderRole {
    /// Orders that only ever reduce a position.
    pub fn reduces(self) -> bool {
        matches!(
            self,
            OrderRole::Exit | OrderRole::StopLoss | OrderRole::TakeProfit | OrderRole::GridSell(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct OrderState {
    pub request: OrderRequest,
    pub phase: OrderPhase,
    pub filled_qty: Fixed,
    pub role: OrderRole,
}

#[derive(Clone, Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Counters {
    pub inputs: u64,
    pub candles: u64,
    pub fills: u64,
    pub orders_placed: u64,
    pub orders_rejected_by_venue: u64,
    pub signals: u64,
    pub rejects: u64,
    /// Rejections by reason, indexed by `RejectReason as usize`.
    pub rejects_by_reason: [u64; 8],
    /// Times the daily loss limit tripped.
    pub daily_loss_trips: u64,
    /// Positions the venue liquidated.
    pub liquidations: u64,
    /// Inputs that did not fit the session (wrong symbol, before `SessionStart`, unknown order).
    pub ignored: u64,
    /// Reconciliation (live): orders the core tracked that the venue no longer had.
    pub reconcile_lost: u64,
    /// Reconciliation: open orders on the venue the core never placed (left alone).
    pub reconcile_unknown: u64,
    /// Reconciliation: positions that differed from the venue's (entries halted).
    pub reconcile_mismatch: u64,
}

/// One traded symbol: its strategy instance and the risk manager's view of its position.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SymbolState {
    pub symbol: Symbol,
    pub strategy: StrategyState,
    /// Present when the strategy runs on longer bars than the core receives.
    pub resampler: Option<Resampler>,
    /// Present when a stop or target is an ATR multiple (on the strategy's bars).
    pub atr: Option<Atr>,
    /// The protective stop in force; zero when none.
    pub stop_price: Fixed,
    /// Highest high since entry, which a trailing stop follows.
    pub best_price: Fixed,
}

/// The UTC day the daily loss limit measures.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct DayState {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    /// Equity when the day's first candle opened (marked at the previous close).
    pub start_equity: Fixed,
    pub tripped: bool,
}

/// Everything the core knows. Serialized whole for snapshots and the digest.
#[derive(Clone, Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CoreState {
    pub config: Option<CoreConfig>,
    pub mode: Option<Mode>,
    pub last_seq: u64,
    pub last_ts_ns: u64,
    /// One per configured symbol, in configuration order.
    pub symbols: Vec<SymbolState>,
    pub portfolio: Portfolio,
    /// Open and in-flight orders by client id.
    pub orders: BTreeMap<u64, OrderState>,
    /// Last known price per symbol (last close or trade).
    pub marks: BTreeMap<Symbol, Fixed>,
    pub halted: bool,
    pub day: Option<DayState>,
    pub counters: Counters,
}

pub struct Core {
    state: CoreState,
    /// Reused for every `apply`, so steady state allocates nothing for the list itself.
    out: Vec<Decision>,
}

impl Default for Core {
    fn default() -> Self {
        Core::new()
    }
}

impl Core {
    pub fn new() -> Core {
        Core {
            state: CoreState::default(),
            out: Vec::with_capacity(8),
        }
    }

    pub fn from_state(state: CoreState) -> Core {
        Core {
            state,
            out: Vec::with_capacity(8),
        }
    }

    pub fn state(&self) -> &CoreState {
        &self.state
    }

    /// Applies one input and returns what the core decided, in order.
    pub fn apply(&mut self, input: &Input) -> &[Decision] {
        // The engine loop hands inputs straight from the journal, whose sequence is
        // contiguous and increasing; anything else is a bug in the loop, not bad data.
        assert!(
            input.seq > self.state.last_seq,
            "input seq {} not after {}",
            input.seq,
            self.state.last_seq
        );
        self.out.clear();
        self.state.last_seq = input.seq;
        self.state.last_ts_ns = self.state.last_ts_ns.max(input.ts_ns);
        self.state.counters.inputs += 1;
        match &input.event {
            Event::SessionStart(start) => self.on_session_start(start.mode, &start.config),
            Event::Candle(candle) => self.on_candle(input.seq, candle),
            Event::Trade(trade) => {
                if self.index(&trade.symbol).is_some() {
                    self.state.marks.insert(trade.symbol, trade.price);
                }
            }
            Event::BookTicker(_) | Event::Timer(_) => {}
            Event::OrderUpdate(update) => self.on_order_update(input.seq, update),
            Event::Fill(fill) => self.on_fill(input.seq, fill),
            Event::Command(cmd) => self.on_command(input.seq, *cmd),
            Event::Funding(payment) => {
                self.state.portfolio.apply_funding(payment);
                self.check_daily_loss(input.seq);
            }
            Event::AccountState(account) => self.on_account_state(input.seq, account),
        }
        &self.out
    }

    fn on_session_start(&mut self, mode: Mode, config: &CoreConfig) {
        match &self.state.config {
            // A restart of the same session: state carries on.
            Some(existing) if existing == config => {}
            Some(_) => {
                self.state.halted = true;
                self.out.push(Decision::Halted {
                    detail: "session restarted with a different configuration; \
                             start a new journal to change it"
                        .into(),
                });
            }
            None => {
                self.state.config = Some(config.clone());
                let resample = config.strategy_interval_ns != config.interval_ns;
                let atr_period = config.risk.atr_period as usize;
                self.state.symbols = config
                    .symbols
                    .iter()
                    .map(|&symbol| SymbolState {
                        symbol,
                        strategy: StrategyState::from_config(&config.strategy),
                        resampler: resample.then(|| Resampler::new(config.strategy_interval_ns)),
                        atr: config.risk.uses_atr().then(|| Atr::new(atr_period)),
                        stop_price: Fixed::ZERO,
                        best_price: Fixed::ZERO,
                    })
                    .collect();
                self.state.portfolio = Portfolio::new(config.starting_balance);
            }
        }
        self.state.mode = Some(mode);
    }

    fn index(&self, symbol: &Symbol) -> Option<usize> {
        // A handful of symbols: a scan beats a map and keeps the state a plain list.
        self.state.symbols.iter().position(|s| s.symbol == *symbol)
    }

    fn on_candle(&mut self, seq: u64, candle: &Candle) {
        let Some(config) = &self.state.config else {
            self.state.counters.ignored += 1;
            return;
        };
        let interval_ok = candle.interval_ns == config.interval_ns;
        let Some(i) = self.index(&candle.symbol).filter(|_| interval_ok) else {
            self.state.counters.ignored += 1;
            return;
        };
        self.state.counters.candles += 1;
        // The day rolls before this candle's price counts: the day starts at the equity
        // marked at the previous close, which is the equity at midnight.
        self.roll_day(candle.open_time_ns);
        set_mark(&mut self.state.marks, candle.symbol, candle.close);
        self.check_daily_loss(seq);
        match self.state.symbols[i].resampler.as_mut() {
            None => self.strategy_bar(seq, i, candle),
            Some(r) => {
                for bar in r.update(candle).into_iter().flatten() {
                    self.strategy_bar(seq, i, &bar);
                }
            }
        }
    }

    /// A closed bar at the strategy's interval.
    fn strategy_bar(&mut self, seq: u64, i: usize, bar: &Candle) {
        let sym = &mut self.state.symbols[i];
        if let Some(atr) = sym.atr.as_mut() {
            atr.update(bar.high.to_f64(), bar.low.to_f64(), bar.close.to_f64());
        }
        if matches!(self.state.symbols[i].strategy, StrategyState::Grid(_)) {
            return self.grid_bar(seq, i, bar);
        }
        self.trail(seq, i, bar);
        let strategy = self.state.symbols[i].strategy.as_strategy();
        let name = strategy.name();
        if let Some(signal) = strategy.on_candle(bar) {
            self.on_signal(seq, i, name, signal);
        }
    }

    fn on_signal(&mut self, seq: u64, i: usize, strategy: &str, signal: Signal) {
        let symbol = self.state.symbols[i].symbol;
        self.state.counters.signals += 1;
        let action = signal.action;
        self.out.push(Decision::Signal {
            symbol,
            strategy: strategy.to_string(),
            action,
            detail: signal.detail,
        });
        let position = self.state.portfolio.position(&symbol);
        let direction = self.config().direction;
        // The signal's side: "enter long" buys (a long, or covering a short), "exit long"
        // sells (closing a long, or opening a short).
        let (opens, closes_short) = match action {
            SignalAction::EnterLong => (direction.long().then_some(Side::Buy), true),
            SignalAction::ExitLong => (direction.short().then_some(Side::Sell), false),
        };
        if self.in_flight(&symbol) {
            // One entry or exit at a time per symbol; an exit in flight already answers this.
            if position.is_zero() && opens.is_some() {
                self.reject(symbol, RejectReason::OrderPending, "an order is in flight");
            }
            return;
        }
        let holding_against = if closes_short {
            position < Fixed::ZERO
        } else {
            position > Fixed::ZERO
        };
        if holding_against {
            let side = if closes_short { Side::Buy } else { Side::Sell };
            self.cancel_protection(&symbol);
            self.place(
                seq,
                symbol,
                side,
                OrderKind::Market,
                position.abs(),
                OrderRole::Exit,
            );
        } else if !position.is_zero() {
            return; // already positioned this way
        }
        let Some(side) = opens else {
            return;
        };
        if let Some((reason, detail)) = self.entry_block() {
            return self.reject(symbol, reason, detail);
        }
        let max = self.config().risk.max_positions;
        // A reversal frees this symbol's slot as it takes it.
        let open = self.open_positions() - usize::from(holding_against);
        if open >= max as usize {
            let detail = format!("{open} positions open, the limit is {max}");
            return self.reject(symbol, RejectReason::MaxPositions, &detail);
        }
        self.enter(seq, i, side);
    }

    fn config(&self) -> &CoreConfig {
        match &self.state.config {
            Some(c) => c,
            // Only reached from paths that start with a configured session.
            None => unreachable!("core used before its session started"),
        }
    }

    /// An entry or exit of `symbol` is waiting for the venue.
    fn in_flight(&self, symbol: &Symbol) -> bool {
        self.state.orders.values().any(|o| {
            o.request.symbol == *symbol
                && matches!(o.role, OrderRole::Entry | OrderRole::Exit)
                && o.phase != OrderPhase::CancelRequested
        })
    }

    /// Symbols holding a position, with an entry in flight, or running a grid (whose resting
    /// buys may fill at any time).
    fn open_positions(&self) -> usize {
        self.state
            .symbols
            .iter()
            .filter(|s| {
                matches!(&s.strategy, StrategyState::Grid(g) if g.phase == GridPhase::Running)
                    || !self.state.portfolio.position(&s.symbol).is_zero()
                    || self.state.orders.values().any(|o| {
                        o.request.symbol == s.symbol
                            && o.role == OrderRole::Entry
                            && o.phase != OrderPhase::CancelRequested
                    })
            })
            .count()
    }

    /// Sizes and places an entry (`Buy` long, `Sell` short): risk-based when there is a
    /// stop, allocation-based otherwise; then capped by the exposure limit and by what the
    /// account can pay for (cash on spot, free margin × leverage on perpetuals).
    fn enter(&mut self, seq: u64, i: usize, side: Side) {
        let symbol = self.state.symbols[i].symbol;
        let Some(price) = self.state.marks.get(&symbol).copied() else {
            return self.reject(symbol, RejectReason::NoPrice, "no price seen yet");
        };
        let config = self.config();
        let sizing = &config.sizing;
        let risk = &config.risk;
        let atr = self.state.symbols[i].atr.as_ref().and_then(|a| a.value());
        if risk.uses_atr() && atr.is_none() {
            let detail = format!("ATR({}) is not warmed up yet", risk.atr_period);
            return self.reject(symbol, RejectReason::NoStopDistance, &detail);
        }
        let atr = atr.and_then(Fixed::from_f64).unwrap_or(Fixed::ZERO);
        let stop_distance = match risk.stop {
            StopRule::None => None,
            StopRule::Percent(p) | StopRule::TrailingPercent(p) => Some(mul(price, p)),
            StopRule::Atr(m) | StopRule::TrailingAtr(m) => Some(mul(atr, m)),
        };
        let equity = self.state.portfolio.equity(&self.state.marks);
        let unit_cost = mul(price, Fixed::ONE + sizing.cost_reserve);
        let by_rule = match stop_distance {
            Some(d) if d <= Fixed::ZERO || (side == Side::Buy && d >= price) => {
                let detail = format!("stop distance {d} at price {price} leaves no valid stop");
                return self.reject(symbol, RejectReason::NoStopDistance, &detail);
            }
            Some(d) => div(mul(equity, risk.risk_per_trade), d),
            None => div(mul(equity, sizing.allocation), unit_cost),
        };
        let by_exposure = div(mul(equity, risk.max_exposure), price);
        let by_funds = if config.perpetual {
            div(mul(self.free_margin(&symbol), config.leverage), unit_cost)
        } else {
            div(self.state.portfolio.cash, unit_cost)
        };
        let qty = by_rule
            .min(by_exposure)
            .min(by_funds)
            .floor_to(sizing.lot_size);
        if qty <= Fixed::ZERO {
            let detail = format!(
                "size {by_rule} by rule, {by_exposure} by the exposure cap, {by_funds} by funds: \
                 less than one lot of {} at {price}",
                sizing.lot_size
            );
            return self.reject(symbol, RejectReason::SizeBelowLot, &detail);
        }
        self.place(seq, symbol, side, OrderKind::Market, qty, OrderRole::Entry);
    }

    /// Perpetuals: equity less the isolated margin of every other symbol's position (this
    /// symbol's is about to be closed or is flat).
    fn free_margin(&self, symbol: &Symbol) -> Fixed {
        let leverage = self.config().leverage;
        let mut free = self.state.portfolio.equity(&self.state.marks);
        for (s, p) in &self.state.portfolio.positions {
            if s != symbol && !p.qty.is_zero() {
                free -= div(mul(p.qty.abs(), p.avg_price), leverage);
            }
        }
        free.max(Fixed::ZERO)
    }

    /// Arms the stop and target of the position of symbol `i`, from its average entry
    /// price. They are reduce-only orders the venue works, so they hold even if keel stops.
    fn protect(&mut self, seq: u64, i: usize) {
        let symbol = self.state.symbols[i].symbol;
        let Some(pos) = self.state.portfolio.positions.get(&symbol) else {
            return;
        };
        let (qty, entry) = (pos.qty, pos.avg_price);
        if qty.is_zero() {
            return;
        }
        let long = qty > Fixed::ZERO;
        let risk = self.config().risk.clone();
        let atr = self.state.symbols[i]
            .atr
            .as_ref()
            .and_then(|a| a.value())
            .and_then(Fixed::from_f64)
            .unwrap_or(Fixed::ZERO);
        // Distances from the entry; the stop goes against the position, the target with it.
        let stop_distance = match risk.stop {
            StopRule::None => Fixed::ZERO,
            StopRule::Percent(p) | StopRule::TrailingPercent(p) => mul(entry, p),
            StopRule::Atr(m) | StopRule::TrailingAtr(m) => mul(atr, m),
        };
        let target_distance = match risk.take_profit {
            TargetRule::None => Fixed::ZERO,
            TargetRule::Percent(p) => mul(entry, p),
            TargetRule::Atr(m) => mul(atr, m),
        };
        let (stop, target, close_side) = if long {
            (entry - stop_distance, entry + target_distance, Side::Sell)
        } else {
            (entry + stop_distance, entry - target_distance, Side::Buy)
        };
        let sym = &mut self.state.symbols[i];
        sym.best_price = entry;
        sym.stop_price = Fixed::ZERO;
        let qty = qty.abs();
        if stop_distance > Fixed::ZERO && stop > Fixed::ZERO {
            sym.stop_price = stop;
            let kind = OrderKind::Stop { trigger: stop };
            self.place(seq, symbol, close_side, kind, qty, OrderRole::StopLoss);
        }
        if target_distance > Fixed::ZERO && target > Fixed::ZERO {
            let kind = OrderKind::Limit {
                price: target,
                post_only: false,
            };
            self.place(seq, symbol, close_side, kind, qty, OrderRole::TakeProfit);
        }
    }

    /// Moves a trailing stop after a bar that made a new extreme since entry (a new high
    /// for a long, a new low for a short); it never moves back.
    fn trail(&mut self, seq: u64, i: usize, bar: &Candle) {
        let trailing = match self.config().risk.stop {
            StopRule::TrailingPercent(p) => Some((p, false)),
            StopRule::TrailingAtr(m) => Some((m, true)),
            _ => None,
        };
        let Some((param, is_atr)) = trailing else {
            return;
        };
        let symbol = self.state.symbols[i].symbol;
        let qty = self.state.portfolio.position(&symbol);
        let live_stop = self.state.orders.iter().find_map(|(id, o)| {
            (o.request.symbol == symbol
                && o.role == OrderRole::StopLoss
                && o.phase != OrderPhase::CancelRequested)
                .then_some(*id)
        });
        let (false, Some(old_id)) = (qty.is_zero(), live_stop) else {
            return;
        };
        let long = qty > Fixed::ZERO;
        let sym = &mut self.state.symbols[i];
        let distance = |best: Fixed, sym: &SymbolState| {
            if is_atr {
                let atr = sym
                    .atr
                    .as_ref()
                    .and_then(|a| a.value())
                    .and_then(Fixed::from_f64);
                atr.map(|a| mul(a, param))
            } else {
                Some(mul(best, param))
            }
        };
        let new_stop = if long {
            sym.best_price = sym.best_price.max(bar.high);
            match distance(sym.best_price, sym) {
                Some(d) => sym.best_price - d,
                None => return,
            }
        } else {
            sym.best_price = sym.best_price.min(bar.low);
            match distance(sym.best_price, sym) {
                Some(d) => sym.best_price + d,
                None => return,
            }
        };
        let better = if long {
            new_stop > sym.stop_price
        } else {
            new_stop < sym.stop_price
        };
        if !better || new_stop <= Fixed::ZERO {
            return;
        }
        sym.stop_price = new_stop;
        self.request_cancel(old_id);
        let side = if long { Side::Sell } else { Side::Buy };
        let kind = OrderKind::Stop { trigger: new_stop };
        self.place(seq, symbol, side, kind, qty.abs(), OrderRole::StopLoss);
    }

    fn grid(&mut self, i: usize) -> Option<&mut Grid> {
        match &mut self.state.symbols[i].strategy {
            StrategyState::Grid(g) => Some(g),
            _ => None,
        }
    }

    /// Why new buying is refused right now, if it is.
    fn entry_block(&self) -> Option<(RejectReason, &'static str)> {
        if self.state.halted {
            return Some((RejectReason::Halted, "entries are halted"));
        }
        if self.state.day.as_ref().is_some_and(|d| d.tripped) {
            return Some((
                RejectReason::DailyLossLimit,
                "daily loss limit tripped; entries resume at the next UTC midnight",
            ));
        }
        None
    }

    fn grid_bar(&mut self, seq: u64, i: usize, bar: &Candle) {
        let StrategyConfig::Grid {
            lower,
            upper,
            range_pct,
            levels,
            exit_pct,
        } = self.config().strategy
        else {
            return;
        };
        let symbol = self.state.symbols[i].symbol;
        let Some(grid) = self.grid(i) else {
            return;
        };
        match grid.phase {
            GridPhase::Stopped => {}
            GridPhase::Running => {
                if grid.out_of_range(bar.close, exit_pct) {
                    grid.phase = GridPhase::Stopped;
                    let detail = format!(
                        "grid stopped: close {} left the range {}..{} (exit buffer {exit_pct})",
                        bar.close,
                        grid.prices.first().copied().unwrap_or_default(),
                        grid.prices.last().copied().unwrap_or_default()
                    );
                    self.grid_signal(symbol, SignalAction::ExitLong, detail);
                    self.close_symbol(seq, symbol);
                }
            }
            GridPhase::Idle => {
                let reference = bar.close;
                let (lo, hi) = if range_pct > Fixed::ZERO {
                    (
                        mul(reference, Fixed::ONE - range_pct),
                        mul(reference, Fixed::ONE + range_pct),
                    )
                } else {
                    (lower, upper)
                };
                if reference < lo || reference > hi {
                    return; // waits for the price to enter its range
                }
                if let Some((reason, detail)) = self.entry_block() {
                    return self.reject(symbol, reason, detail);
                }
                let max = self.config().risk.max_positions;
                if self.open_positions() >= max as usize {
                    let detail = format!("grid cannot start: {max} positions already open");
                    return self.reject(symbol, RejectReason::MaxPositions, &detail);
                }
                // Every level's unit together is worth at most the exposure cap at the start.
                let equity = self.state.portfolio.equity(&self.state.marks);
                let cap = mul(equity, self.config().risk.max_exposure);
                let lot = self.config().sizing.lot_size;
                let qty = div(cap, mul(reference, Fixed::from_int(levels as i64))).floor_to(lot);
                let prices = Grid::ladder(lo, hi, levels);
                let Some(grid) = self.grid(i) else {
                    return;
                };
                if qty <= Fixed::ZERO {
                    grid.phase = GridPhase::Stopped;
                    let detail = format!(
                        "grid stopped: {cap} over {levels} levels at {reference} is less than one \
                         lot of {lot}"
                    );
                    return self.reject(symbol, RejectReason::SizeBelowLot, &detail);
                }
                grid.prices = prices.clone();
                grid.qty = qty;
                grid.reference = reference;
                grid.phase = GridPhase::Running;
                let above = prices.iter().filter(|&&p| p > reference).count() as i64;
                let detail = format!(
                    "grid started at {reference}: {} levels {lo}..{hi}, {qty} per level",
                    prices.len()
                );
                self.grid_signal(symbol, SignalAction::EnterLong, detail);
                for (k, &p) in prices.iter().enumerate() {
                    if p < reference {
                        let kind = OrderKind::Limit {
                            price: p,
                            post_only: false,
                        };
                        self.place(
                            seq,
                            symbol,
                            Side::Buy,
                            kind,
                            qty,
                            OrderRole::GridBuy(k as u32),
                        );
                    }
                }
                if above > 0 {
                    let seed = mul(qty, Fixed::from_int(above));
                    self.place(
                        seq,
                        symbol,
                        Side::Buy,
                        OrderKind::Market,
                        seed,
                        OrderRole::GridSeed,
                    );
                }
            }
        }
    }

    fn grid_signal(&mut self, symbol: Symbol, action: SignalAction, detail: String) {
        self.state.counters.signals += 1;
        self.out.push(Decision::Signal {
            symbol,
            strategy: "grid".into(),
            action,
            detail,
        });
    }

    /// Re-arms the grid after one of its orders filled completely.
    fn grid_filled(&mut self, seq: u64, i: usize, role: OrderRole, qty: Fixed) {
        let symbol = self.state.symbols[i].symbol;
        let Some(grid) = self.grid(i) else {
            return;
        };
        if grid.phase != GridPhase::Running {
            return;
        }
        let (reference, unit) = (grid.reference, grid.qty);
        let level = |k: Option<u32>| k.and_then(|k| grid.prices.get(k as usize).copied());
        let next_up = match role {
            OrderRole::GridBuy(k) => level(k.checked_add(1)),
            _ => None,
        };
        let next_down = match role {
            OrderRole::GridSell(k) => level(k.checked_sub(1)),
            _ => None,
        };
        let limit = |price| OrderKind::Limit {
            price,
            post_only: false,
        };
        match role {
            OrderRole::GridSeed => {
                // Once per grid: the levels above the start get their sells.
                let above: Vec<(u32, Fixed)> = (0u32..)
                    .zip(grid.prices.iter().copied())
                    .filter(|&(_, p)| p > reference)
                    .collect();
                for (k, p) in above {
                    let role = OrderRole::GridSell(k);
                    self.place(seq, symbol, Side::Sell, limit(p), unit, role);
                }
            }
            OrderRole::GridBuy(k) => {
                if let Some(p) = next_up {
                    let role = OrderRole::GridSell(k + 1);
                    self.place(seq, symbol, Side::Sell, limit(p), qty, role);
                }
            }
            OrderRole::GridSell(k) => {
                // The fill that paid for this sell may be the one that breaks the day's loss
                // limit: decide that before re-arming the buy below, not after.
                self.check_daily_loss(seq);
                if let Some((reason, detail)) = self.entry_block() {
                    return self.reject(symbol, reason, detail);
                }
                if let Some(p) = next_down {
                    let role = OrderRole::GridBuy(k.saturating_sub(1));
                    self.place(seq, symbol, Side::Buy, limit(p), qty, role);
                }
            }
            _ => {}
        }
    }

    /// Cancels every order of `symbol` and sells what it holds.
    fn close_symbol(&mut self, seq: u64, symbol: Symbol) {
        let ids: Vec<u64> = self
            .state
            .orders
            .iter()
            .filter(|(_, o)| o.request.symbol == symbol && o.phase != OrderPhase::CancelRequested)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.request_cancel(id);
        }
        let qty = self.state.portfolio.position(&symbol);
        if qty > Fixed::ZERO {
            self.place(
                seq,
                symbol,
                Side::Sell,
                OrderKind::Market,
                qty,
                OrderRole::Exit,
            );
        }
    }

    fn request_cancel(&mut self, client_id: u64) {
        if let Some(o) = self.state.orders.get_mut(&client_id) {
            o.phase = OrderPhase::CancelRequested;
            self.out.push(Decision::CancelOrder { client_id });
        }
    }

    /// Cancels the stop and target of `symbol`.
    fn cancel_protection(&mut self, symbol: &Symbol) {
        let ids: Vec<u64> = self
            .state
            .orders
            .iter()
            .filter(|(_, o)| {
                o.request.symbol == *symbol
                    && matches!(o.role, OrderRole::StopLoss | OrderRole::TakeProfit)
                    && o.phase != OrderPhase::CancelRequested
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.request_cancel(id);
        }
    }

    fn place(
        &mut self,
        seq: u64,
        symbol: Symbol,
        side: Side,
        kind: OrderKind,
        qty: Fixed,
        role: OrderRole,
    ) {
        let index = self
            .out
            .iter()
            .filter(|d| matches!(d, Decision::PlaceOrder(_)))
            .count() as u64;
        let request = OrderRequest {
            client_id: client_order_id(seq, index),
            symbol,
            side,
            kind,
            qty,
            reduce_only: role.reduces(),
        };
        self.state.counters.orders_placed += 1;
        self.state.orders.insert(
            request.client_id,
            OrderState {
                request: request.clone(),
                phase: OrderPhase::Submitted,
                filled_qty: Fixed::ZERO,
                role,
            },
        );
        self.out.push(Decision::PlaceOrder(request));
    }

    fn reject(&mut self, symbol: Symbol, reason: RejectReason, detail: &str) {
        self.state.counters.rejects += 1;
        if let Some(n) = self
            .state
            .counters
            .rejects_by_reason
            .get_mut(reason as usize)
        {
            *n += 1;
        }
        self.out.push(Decision::Reject {
            symbol,
            reason,
            detail: detail.to_string(),
        });
    }

    fn on_order_update(&mut self, seq: u64, update: &OrderUpdate) {
        let Some(order) = self.state.orders.get_mut(&update.client_id) else {
            self.state.counters.ignored += 1;
            return;
        };
        match update.status {
            OrderStatus::Accepted => {
                if order.phase == OrderPhase::Submitted {
                    order.phase = OrderPhase::Open;
                }
            }
            OrderStatus::Rejected | OrderStatus::Canceled | OrderStatus::Expired => {
                if update.status == OrderStatus::Rejected {
                    self.state.counters.orders_rejected_by_venue += 1;
                }
                let (role, filled, symbol) = (order.role, order.filled_qty, order.request.symbol);
                // Protection the venue cancelled on its own (its dead-man switch fired while
                // the process was down, an operator on the venue's site) is placed again; a
                // refused one is not (it would be refused again).
                let rearm = (update.status != OrderStatus::Rejected
                    && order.phase != OrderPhase::CancelRequested
                    && matches!(role, OrderRole::StopLoss | OrderRole::TakeProfit))
                .then_some((order.request.side, order.request.kind));
                self.state.orders.remove(&update.client_id);
                if let Some((side, kind)) = rearm {
                    self.rearm(seq, symbol, side, kind, role);
                }
                // An exit that ends without closing the position (refused, expired) leaves it
                // unprotected — its stop and target were cancelled for it: protect it again.
                if role == OrderRole::Exit
                    && !self.state.portfolio.position(&symbol).is_zero()
                    && !self.state.orders.values().any(|o| {
                        o.request.symbol == symbol
                            && matches!(
                                o.role,
                                OrderRole::StopLoss | OrderRole::TakeProfit | OrderRole::Exit
                            )
                            && o.phase != OrderPhase::CancelRequested
                    })
                    && let Some(i) = self.index(&symbol)
                {
                    self.protect(seq, i);
                }
                // An entry that ends part-filled still leaves a position to protect.
                if role == OrderRole::Entry
                    && filled > Fixed::ZERO
                    && let Some(i) = self.index(&symbol)
                {
                    self.protect(seq, i);
                }
            }
        }
    }

    /// Reconciles the core's orders and positions with the venue's (see [`AccountState`]).
    fn on_account_state(&mut self, seq: u64, account: &AccountState) {
        let on_venue: std::collections::BTreeSet<u64> = account
            .open_orders
            .iter()
            .filter(|o| o.client_id != 0)
            .map(|o| o.client_id)
            .collect();
        // Orders the venue no longer has: gone as if cancelled (their fills, if any, were
        // journaled before this input).
        let lost: Vec<u64> = self
            .state
            .orders
            .keys()
            .copied()
            .filter(|id| {
                *id <= account.asked_after_client_id
                    && !on_venue.contains(id)
                    && !account.unsettled.contains(id)
            })
            .collect();
        for client_id in lost {
            self.state.counters.reconcile_lost += 1;
            self.on_order_update(
                seq,
                &OrderUpdate {
                    client_id,
                    venue_order_id: 0,
                    status: OrderStatus::Canceled,
                    ts_event_ns: account.ts_event_ns,
                    reason: "reconciliation: the venue has no such open order".into(),
                },
            );
        }
        for o in &account.open_orders {
            let known = o.client_id != 0 && self.state.orders.contains_key(&o.client_id);
            if !known && self.index(&o.symbol).is_some() {
                self.state.counters.reconcile_unknown += 1;
            }
        }
        let mut differences = Vec::new();
        for p in &account.positions {
            if self.index(&p.symbol).is_none() {
                continue;
            }
            let core = self.state.portfolio.position(&p.symbol);
            let differs = if account.spot {
                p.qty < core
            } else {
                p.qty != core
            };
            if differs {
                differences.push(format!(
                    "{} venue {} core {}",
                    p.symbol.as_str(),
                    p.qty,
                    core
                ));
            }
        }
        if !differences.is_empty() {
            self.state.counters.reconcile_mismatch += differences.len() as u64;
            self.state.halted = true;
            self.out.push(Decision::Halted {
                detail: format!(
                    "reconciliation: positions differ from the venue's ({}); no new entries \
                     until an operator resumes",
                    differences.join("; ")
                ),
            });
        }
    }

    /// Places a stop or target again, the same order for the position as it is now, unless
    /// the position is gone, another order already plays that role, or an exit is on its way
    /// (on spot the executor frees a position's coins for its exit by cancelling its stop).
    fn rearm(&mut self, seq: u64, symbol: Symbol, side: Side, kind: OrderKind, role: OrderRole) {
        let qty = self.state.portfolio.position(&symbol);
        let closes = match side {
            Side::Sell => qty > Fixed::ZERO,
            Side::Buy => qty < Fixed::ZERO,
        };
        let covered =
            self.state.orders.values().any(|o| {
                o.request.symbol == symbol && (o.role == role || o.role == OrderRole::Exit)
            });
        if closes && !covered {
            self.place(seq, symbol, side, kind, qty.abs(), role);
        }
    }

    fn on_fill(&mut self, seq: u64, fill: &Fill) {
        self.state.counters.fills += 1;
        self.state.portfolio.apply_fill(fill);
        if let Some(order) = self.state.orders.get_mut(&fill.client_id) {
            order.filled_qty += fill.qty;
            let done = order.filled_qty >= order.request.qty;
            let role = order.role;
            let order_qty = order.filled_qty;
            if done {
                self.state.orders.remove(&fill.client_id);
            }
            let flat = self.state.portfolio.position(&fill.symbol).is_zero();
            match role {
                OrderRole::Entry if done => {
                    if let Some(i) = self.index(&fill.symbol) {
                        self.protect(seq, i);
                    }
                }
                OrderRole::Entry => {}
                OrderRole::GridSeed | OrderRole::GridBuy(_) | OrderRole::GridSell(_) => {
                    if done && let Some(i) = self.index(&fill.symbol) {
                        self.grid_filled(seq, i, role, order_qty);
                    }
                }
                // Once the position is gone, what protected it must not open the next one.
                OrderRole::Exit | OrderRole::StopLoss | OrderRole::TakeProfit if flat => {
                    self.cancel_protection(&fill.symbol);
                    if let Some(i) = self.index(&fill.symbol) {
                        self.state.symbols[i].stop_price = Fixed::ZERO;
                    }
                }
                _ => {}
            }
        } else {
            // A fill for an order this session did not place: a liquidation, a manual trade,
            // or one from before a lost journal. The portfolio still follows the venue, and
            // a position it closed no longer needs its stop and target.
            if fill.client_id == LIQUIDATION_CLIENT_ID {
                self.state.counters.liquidations += 1;
            } else if fill.client_id == FEE_IN_BASE_CLIENT_ID {
                // The fee a spot buy paid in the coin bought (see the constant).
            } else {
                self.state.counters.ignored += 1;
            }
            if self.state.portfolio.position(&fill.symbol).is_zero() {
                self.cancel_protection(&fill.symbol);
            }
        }
        self.check_daily_loss(seq);
    }

    fn roll_day(&mut self, ts_ns: i64) {
        let day = ts_ns.div_euclid(NS_PER_DAY);
        if self.state.day.as_ref().is_some_and(|d| d.day == day) {
            return;
        }
        let start_equity = self.state.portfolio.equity(&self.state.marks);
        self.state.day = Some(DayState {
            day,
            start_equity,
            tripped: false,
        });
    }

    fn check_daily_loss(&mut self, seq: u64) {
        let Some(config) = &self.state.config else {
            return;
        };
        let limit = config.risk.daily_loss_limit;
        let flatten = config.risk.daily_loss_flatten;
        let Some(day) = self.state.day.as_ref() else {
            return;
        };
        if limit.is_zero() || day.tripped {
            return;
        }
        let floor = mul(day.start_equity, Fixed::ONE - limit);
        let equity = self.state.portfolio.equity(&self.state.marks);
        if equity > floor {
            return;
        }
        let start = day.start_equity;
        let next_midnight = (day.day + 1).saturating_mul(NS_PER_DAY);
        if let Some(d) = self.state.day.as_mut() {
            d.tripped = true;
        }
        self.state.counters.daily_loss_trips += 1;
        self.out.push(Decision::Halted {
            detail: format!(
                "daily loss limit: equity {equity} is at or below {floor} ({limit} below the \
                 day's start {start}); no entries until {next_midnight} ns (next UTC midnight){}",
                if flatten { "; flattening" } else { "" }
            ),
        });
        if flatten {
            self.flatten_all(seq);
        }
    }

    /// Cancels every order and closes every position with reduce-only market orders. Grids
    /// stop: a flattened grid would otherwise rebuy its ladder.
    fn flatten_all(&mut self, seq: u64) {
        self.cancel_all();
        let flatten: Vec<(Symbol, Fixed)> = self
            .state
            .portfolio
            .positions
            .iter()
            .filter(|(_, p)| !p.qty.is_zero())
            .map(|(s, p)| (*s, p.qty))
            .collect();
        for (symbol, qty) in flatten {
            let side = if qty.is_negative() {
                Side::Buy
            } else {
                Side::Sell
            };
            self.place(
                seq,
                symbol,
                side,
                OrderKind::Market,
                qty.abs(),
                OrderRole::Exit,
            );
        }
    }

    /// Cancels every open order and stops grids from re-arming.
    fn cancel_all(&mut self) {
        for sym in &mut self.state.symbols {
            if let StrategyState::Grid(g) = &mut sym.strategy {
                g.phase = GridPhase::Stopped;
            }
        }
        let ids: Vec<u64> = self
            .state
            .orders
            .iter()
            .filter(|(_, o)| o.phase != OrderPhase::CancelRequested)
            .map(|(id, _)| *id)
            .collect();
        for client_id in ids {
            self.request_cancel(client_id);
        }
    }

    fn on_command(&mut self, seq: u64, cmd: Command) {
        match cmd {
            Command::Halt => {
                self.state.halted = true;
                self.out.push(Decision::Halted {
                    detail: "operator halt: no new entries".into(),
                });
            }
            Command::Resume => self.state.halted = false,
            Command::KillSwitch => {
                self.state.halted = true;
                self.out.push(Decision::Halted {
                    detail: "kill switch: cancelling orders and flattening".into(),
                });
                self.flatten_all(seq);
            }
            Command::CancelAll => {
                self.state.halted = true;
                self.out.push(Decision::Halted {
                    detail: "cancel all: cancelling every open order, positions kept".into(),
                });
                self.cancel_all();
            }
        }
    }

    /// Cash plus positions at their last known price.
    pub fn equity(&self) -> Fixed {
        self.state.portfolio.equity(&self.state.marks)
    }

    /// [`Core::equity`], and whether any position is open.
    pub fn equity_and_exposure(&self) -> (Fixed, bool) {
        self.state.portfolio.equity_and_exposure(&self.state.marks)
    }

    /// The state serialized as it goes into snapshots (rkyv, `STATE_VERSION`).
    pub fn state_bytes(&self) -> Vec<u8> {
        match rkyv::to_bytes::<rkyv::rancor::Error>(&self.state) {
            Ok(bytes) => bytes.into_vec(),
            // Serializing plain owned data into a growable buffer cannot fail.
            Err(e) => unreachable!("serializing core state: {e}"),
        }
    }

    /// Restores a core from `state_bytes()` output.
    pub fn from_state_bytes(bytes: &[u8]) -> Result<Core, String> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<CoreState, rkyv::rancor::Error>(&aligned)
            .map(Core::from_state)
            .map_err(|e| format!("core state does not decode: {e}"))
    }

    /// BLAKE3 of the serialized state: equal digests mean identical cores.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(&self.state_bytes()).as_bytes()
    }
}

/// Records `price` as `symbol`'s last price. One symbol's map (most runs, every bar) is
/// updated without a search.
fn set_mark(marks: &mut BTreeMap<Symbol, Fixed>, symbol: Symbol, price: Fixed) {
    if marks.len() == 1
        && let Some(mut first) = marks.first_entry()
        && *first.key() == symbol
    {
        *first.get_mut() = price;
        return;
    }
    match marks.get_mut(&symbol) {
        Some(mark) => *mark = price,
        None => {
            marks.insert(symbol, price);
        }
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Saturating product: the sizes here are capped afterwards, so an overflow only has to stay
/// large, not wrap.
fn mul(a: Fixed, b: Fixed) -> Fixed {
    a.checked_mul(b)
        .unwrap_or(if (a.is_negative()) == (b.is_negative()) {
            Fixed::MAX
        } else {
            -Fixed::MAX
        })
}

/// Quotient, or zero when it is undefined or overflows (a size of zero is rejected).
fn div(a: Fixed, b: Fixed) -> Fixed {
    if b <= Fixed::ZERO {
        return Fixed::ZERO;
    }
    a.checked_div(b).unwrap_or(Fixed::ZERO)
}
