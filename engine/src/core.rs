//! The deterministic core: `Core::apply(&mut self, &Input) -> &[Decision]`.
//!
//! The core owns market state, the strategy, the order book of its own orders and the
//! portfolio. It is a pure function of the inputs it has applied: no clock, no RNG, no I/O.
//! Two cores fed the same inputs hold byte-identical state, which `digest()` proves.

use std::collections::BTreeMap;

use crate::candle::Candle;
use crate::config::CoreConfig;
use crate::event::{
    Command, Decision, Event, Fill, Input, Mode, OrderKind, OrderRequest, OrderStatus, OrderUpdate,
    RejectReason, Side, SignalAction, client_order_id,
};
use crate::fixed::Fixed;
use crate::portfolio::Portfolio;
use crate::resample::Resampler;
use crate::strategy::{Signal, StrategyState};
use crate::symbol::Symbol;

/// Version of the `CoreState` layout inside snapshots.
pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum OrderPhase {
    /// Decided and journaled; no answer from the venue yet.
    Submitted,
    Open,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct OrderState {
    pub request: OrderRequest,
    pub phase: OrderPhase,
    pub filled_qty: Fixed,
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
    /// Inputs that did not fit the session (wrong symbol, before `SessionStart`, unknown order).
    pub ignored: u64,
}

/// Everything the core knows. Serialized whole for snapshots and the digest.
#[derive(Clone, Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CoreState {
    pub config: Option<CoreConfig>,
    pub mode: Option<Mode>,
    pub last_seq: u64,
    pub last_ts_ns: u64,
    pub strategy: Option<StrategyState>,
    /// Present when the strategy runs on longer bars than the core receives.
    pub resampler: Option<Resampler>,
    pub portfolio: Portfolio,
    /// Open and in-flight orders by client id.
    pub orders: BTreeMap<u64, OrderState>,
    /// Last known price per symbol (last close or trade).
    pub marks: BTreeMap<Symbol, Fixed>,
    pub halted: bool,
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
                if self.state.config.is_some() {
                    self.state.marks.insert(trade.symbol, trade.price);
                }
            }
            Event::BookTicker(_) | Event::Timer(_) => {}
            Event::OrderUpdate(update) => self.on_order_update(update),
            Event::Fill(fill) => self.on_fill(fill),
            Event::Command(cmd) => self.on_command(input.seq, *cmd),
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
                self.state.strategy = Some(StrategyState::from_config(&config.strategy));
                self.state.resampler = (config.strategy_interval_ns != config.interval_ns)
                    .then(|| Resampler::new(config.strategy_interval_ns));
                self.state.portfolio = Portfolio::new(config.starting_balance);
            }
        }
        self.state.mode = Some(mode);
    }

    fn on_candle(&mut self, seq: u64, candle: &Candle) {
        let Some(config) = &self.state.config else {
            self.state.counters.ignored += 1;
            return;
        };
        if candle.symbol != config.symbol || candle.interval_ns != config.interval_ns {
            self.state.counters.ignored += 1;
            return;
        }
        self.state.counters.candles += 1;
        self.state.marks.insert(candle.symbol, candle.close);
        match self.state.resampler.as_mut() {
            None => self.strategy_bar(seq, candle),
            Some(r) => {
                for bar in r.update(candle).into_iter().flatten() {
                    self.strategy_bar(seq, &bar);
                }
            }
        }
    }

    /// A closed bar at the strategy's interval.
    fn strategy_bar(&mut self, seq: u64, bar: &Candle) {
        let Some(strategy) = self.state.strategy.as_mut() else {
            return;
        };
        let name = strategy.as_strategy().name();
        if let Some(signal) = strategy.as_strategy().on_candle(bar) {
            self.on_signal(seq, bar.symbol, name, signal);
        }
    }

    fn on_signal(&mut self, seq: u64, symbol: Symbol, strategy: &str, signal: Signal) {
        self.state.counters.signals += 1;
        let action = signal.action;
        self.out.push(Decision::Signal {
            symbol,
            strategy: strategy.to_string(),
            action,
            detail: signal.detail,
        });
        let position = self.state.portfolio.position(&symbol);
        let pending = self
            .state
            .orders
            .values()
            .any(|o| o.request.symbol == symbol);
        match action {
            SignalAction::EnterLong => {
                if !position.is_zero() {
                    return; // already in: nothing to do
                }
                if self.state.halted {
                    return self.reject(symbol, RejectReason::Halted, "entries are halted");
                }
                if pending {
                    return self.reject(
                        symbol,
                        RejectReason::OrderPending,
                        "an order is in flight",
                    );
                }
                self.enter_long(seq, symbol);
            }
            SignalAction::ExitLong => {
                if position > Fixed::ZERO && !pending {
                    self.place(seq, symbol, Side::Sell, position, true);
                }
            }
        }
    }

    fn enter_long(&mut self, seq: u64, symbol: Symbol) {
        let Some(config) = &self.state.config else {
            return;
        };
        let Some(price) = self.state.marks.get(&symbol).copied() else {
            return self.reject(symbol, RejectReason::NoPrice, "no price seen yet");
        };
        let sizing = &config.sizing;
        let equity = self.state.portfolio.equity(&self.state.marks);
        let budget = equity
            .checked_mul(sizing.allocation)
            .unwrap_or(Fixed::ZERO)
            .min(self.state.portfolio.cash);
        let unit_cost = price
            .checked_mul(Fixed::ONE + sizing.cost_reserve)
            .unwrap_or(Fixed::MAX);
        let qty = budget
            .checked_div(unit_cost)
            .unwrap_or(Fixed::ZERO)
            .floor_to(sizing.lot_size);
        if qty <= Fixed::ZERO {
            let detail = format!(
                "budget {budget} buys less than one lot of {} at {price}",
                sizing.lot_size
            );
            return self.reject(symbol, RejectReason::SizeBelowLot, &detail);
        }
        self.place(seq, symbol, Side::Buy, qty, false);
    }

    fn place(&mut self, seq: u64, symbol: Symbol, side: Side, qty: Fixed, reduce_only: bool) {
        let index = self
            .out
            .iter()
            .filter(|d| matches!(d, Decision::PlaceOrder(_)))
            .count() as u64;
        let request = OrderRequest {
            client_id: client_order_id(seq, index),
            symbol,
            side,
            kind: OrderKind::Market,
            qty,
            reduce_only,
        };
        self.state.counters.orders_placed += 1;
        self.state.orders.insert(
            request.client_id,
            OrderState {
                request: request.clone(),
                phase: OrderPhase::Submitted,
                filled_qty: Fixed::ZERO,
            },
        );
        self.out.push(Decision::PlaceOrder(request));
    }

    fn reject(&mut self, symbol: Symbol, reason: RejectReason, detail: &str) {
        self.state.counters.rejects += 1;
        self.out.push(Decision::Reject {
            symbol,
            reason,
            detail: detail.to_string(),
        });
    }

    fn on_order_update(&mut self, update: &OrderUpdate) {
        let Some(order) = self.state.orders.get_mut(&update.client_id) else {
            self.state.counters.ignored += 1;
            return;
        };
        match update.status {
            OrderStatus::Accepted => order.phase = OrderPhase::Open,
            OrderStatus::Rejected | OrderStatus::Canceled | OrderStatus::Expired => {
                if update.status == OrderStatus::Rejected {
                    self.state.counters.orders_rejected_by_venue += 1;
                }
                self.state.orders.remove(&update.client_id);
            }
        }
    }

    fn on_fill(&mut self, fill: &Fill) {
        self.state.counters.fills += 1;
        self.state.portfolio.apply_fill(fill);
        if let Some(order) = self.state.orders.get_mut(&fill.client_id) {
            order.filled_qty += fill.qty;
            if order.filled_qty >= order.request.qty {
                self.state.orders.remove(&fill.client_id);
            }
        } else {
            // A fill for an order this session did not place (manual trade, or one from
            // before a lost journal): the portfolio still follows the venue.
            self.state.counters.ignored += 1;
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
                let ids: Vec<u64> = self.state.orders.keys().copied().collect();
                for client_id in ids {
                    self.out.push(Decision::CancelOrder { client_id });
                }
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
                    self.place(seq, symbol, side, qty.abs(), true);
                }
            }
        }
    }

    /// Cash plus positions at their last known price.
    pub fn equity(&self) -> Fixed {
        self.state.portfolio.equity(&self.state.marks)
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

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
