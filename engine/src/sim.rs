//! The simulated venue used by backtests (and later paper trading).
//!
//! It plays the exchange: it accepts or rejects orders, keeps its own balances, and fills
//! orders against the candles of their symbol. Its answers are ordinary events that go back
//! into the journal as inputs, exactly like a real venue's. Deterministic: venue order ids
//! and trade ids are counters, and orders are worked in a fixed order.
//!
//! Fill rules, per candle, for orders that had arrived when it opened:
//! - market: at the open, moved against the taker by `slippage`; taker fee.
//! - limit: marketable at the open on arrival (buy limit ≥ open), it takes at the open (never
//!   worse than its price; taker fee), or is rejected if post-only; resting, it fills at its
//!   price when the candle trades *through* it (buy: low < price; sell: high > price; a
//!   touch is not a fill); maker fee.
//! - stop: a sell stop triggers when low ≤ trigger, a buy stop when high ≥ trigger; it fills
//!   at the trigger, or at the open when the candle gaps past it, moved by slippage; taker.
//! - within one candle, stops are worked before limits when `stop_first` (the conservative
//!   default: a stop loss and a take profit both inside the candle count as the stop), limits
//!   first otherwise.
//! - reduce-only orders are cut to the position they reduce, and expire when there is none
//!   left (so the second of a stop/target pair expires once the first has closed the
//!   position).
//! - latency: an order arrives `latency_ns` after it was sent. A candle that opened before the
//!   arrival cannot fill it at its open: a market order arriving inside a candle fills at that
//!   candle's close (the first price known to trade after it arrived); limits and stops start
//!   working with the next candle. A cancel arrives late too: the order can still fill until
//!   then. Acknowledgements (accepted/rejected on arrival checks) are answered at once.
//! - participation cap: one symbol's fills in a candle are limited to `participation` × the
//!   candle's volume; what does not fill stays working (a triggered stop becomes a market
//!   order for the rest).
//!
//! Markets: spot (buys need the cash, sells need the base held; no shorting) or a USD-M
//! perpetual with isolated margin: long and short, an order that grows a position needs
//! `notional / leverage` (+ fee) of free margin, the position's liquidation price is
//! Binance's one-way isolated formula `(M − side·q·E) / (q·mmr − side·q)` with M the isolated
//! margin `q·E / leverage`, and a candle reaching it closes the position at the bankruptcy
//! price (the margin is lost; a gap beyond it costs no more, as the insurance fund takes the
//! rest). Funding settles with `on_funding` when a funding-rate series is provided.

use std::collections::BTreeMap;

use crate::candle::Candle;
use crate::event::{
    Event, Fill, FundingPayment, LIQUIDATION_CLIENT_ID, Liquidity, OrderKind, OrderRequest,
    OrderStatus, OrderUpdate, Side,
};
use crate::fixed::Fixed;
use crate::symbol::Symbol;

/// What the simulated venue trades.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Market {
    Spot,
    /// USD-M linear perpetual, isolated margin.
    Perp {
        leverage: Fixed,
        /// Maintenance margin rate (0.004 = 0.4%, Binance's first BTCUSDT tier).
        maintenance_margin: Fixed,
    },
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct SimConfig {
    /// Fee rate on the notional of a taker fill (0.0004 = 4 bps).
    pub taker_fee: Fixed,
    /// Fee rate on the notional of a maker fill (a resting limit order).
    pub maker_fee: Fixed,
    /// Work stops before limits inside one candle (see the module docs).
    pub stop_first: bool,
    /// Adverse price move applied to market fills, as a rate (0.0001 = 1 bp).
    pub slippage: Fixed,
    pub starting_balance: Fixed,
    /// Time from sending an order (or cancel) to its arrival, in nanoseconds.
    pub latency_ns: i64,
    /// Largest share of a candle's volume one symbol's fills may take (0.1 = 10%); zero
    /// means no cap.
    pub participation: Fixed,
    pub market: Market,
}

impl SimConfig {
    /// A spot venue with the given fees and no latency, slippage or participation cap.
    pub fn spot(taker_fee: Fixed, maker_fee: Fixed, starting_balance: Fixed) -> SimConfig {
        SimConfig {
            taker_fee,
            maker_fee,
            stop_first: true,
            slippage: Fixed::ZERO,
            starting_balance,
            latency_ns: 0,
            participation: Fixed::ZERO,
            market: Market::Spot,
        }
    }
}

#[derive(Clone, Debug)]
struct Working {
    request: OrderRequest,
    venue_order_id: u64,
    /// Has seen a candle open: a limit order is no longer "arriving".
    resting: bool,
    /// When the order reaches the venue.
    arrival_ns: i64,
    /// When a cancel for it reaches the venue, if one was sent.
    cancel_at_ns: Option<i64>,
    filled: Fixed,
    /// A stop that triggered but could not fill completely: the rest is a market order.
    triggered: bool,
}

impl Working {
    fn remaining(&self) -> Fixed {
        self.request.qty - self.filled
    }
}

/// A perpetual position's isolated margin and entry.
#[derive(Clone, Copy, Debug, Default)]
struct Isolated {
    entry: Fixed,
    margin: Fixed,
}

pub struct SimVenue {
    config: SimConfig,
    cash: Fixed,
    positions: BTreeMap<Symbol, Fixed>,
    isolated: BTreeMap<Symbol, Isolated>,
    working: Vec<Working>,
    /// Reused buffer of the orders one candle works.
    batch: Vec<Working>,
    next_venue_order_id: u64,
    next_trade_id: u64,
}

impl SimVenue {
    pub fn new(config: SimConfig) -> SimVenue {
        SimVenue {
            cash: config.starting_balance,
            config,
            positions: BTreeMap::new(),
            isolated: BTreeMap::new(),
            working: Vec::new(),
            batch: Vec::new(),
            next_venue_order_id: 1,
            next_trade_id: 1,
        }
    }

    pub fn cash(&self) -> Fixed {
        self.cash
    }

    /// The venue's own record of the position in `symbol`.
    pub fn position(&self, symbol: &Symbol) -> Fixed {
        self.positions.get(symbol).copied().unwrap_or(Fixed::ZERO)
    }

    pub fn open_orders(&self) -> usize {
        self.working.len()
    }

    /// Client ids of the orders on the book, with what is left of each, in book order.
    pub fn book(&self) -> Vec<(u64, Fixed)> {
        self.working
            .iter()
            .map(|w| (w.request.client_id, w.remaining()))
            .collect()
    }

    /// The liquidation price of the perpetual position in `symbol`, if there is one.
    pub fn liquidation_price(&self, symbol: &Symbol) -> Option<Fixed> {
        let Market::Perp {
            maintenance_margin: mmr,
            ..
        } = self.config.market
        else {
            return None;
        };
        let q = self.position(symbol);
        let iso = self.isolated.get(symbol)?;
        if q.is_zero() {
            return None;
        }
        let qa = q.abs();
        let notional = mul(qa, iso.entry);
        // Binance one-way isolated: LP = (M − side·q·E) / (q·mmr − side·q).
        if q > Fixed::ZERO {
            (notional - iso.margin).checked_div(qa - mul(qa, mmr))
        } else {
            (notional + iso.margin).checked_div(qa + mul(qa, mmr))
        }
    }

    /// An order arrives `latency_ns` after `now_ns`. The answer to its checks (accepted or
    /// rejected) is pushed to `out` at once.
    pub fn submit(&mut self, request: &OrderRequest, now_ns: i64, out: &mut Vec<Event>) {
        let venue_order_id = self.next_venue_order_id;
        self.next_venue_order_id += 1;
        let reject = |reason: String| {
            Event::OrderUpdate(OrderUpdate {
                client_id: request.client_id,
                venue_order_id,
                status: OrderStatus::Rejected,
                ts_event_ns: now_ns,
                reason,
            })
        };
        if request.qty <= Fixed::ZERO {
            out.push(reject(format!("quantity {} must be positive", request.qty)));
            return;
        }
        if self
            .working
            .iter()
            .any(|w| w.request.client_id == request.client_id)
        {
            out.push(reject("duplicate client order id".into()));
            return;
        }
        let bad_price = match request.kind {
            OrderKind::Market => None,
            OrderKind::Limit { price, .. } => (price <= Fixed::ZERO).then_some(price),
            OrderKind::Stop { trigger } => (trigger <= Fixed::ZERO).then_some(trigger),
        };
        if let Some(p) = bad_price {
            out.push(reject(format!("price {p} must be positive")));
            return;
        }
        out.push(Event::OrderUpdate(OrderUpdate {
            client_id: request.client_id,
            venue_order_id,
            status: OrderStatus::Accepted,
            ts_event_ns: now_ns,
            reason: String::new(),
        }));
        self.working.push(Working {
            request: request.clone(),
            venue_order_id,
            resting: false,
            arrival_ns: now_ns.saturating_add(self.config.latency_ns),
            cancel_at_ns: None,
            filled: Fixed::ZERO,
            triggered: false,
        });
    }

    /// Cancels a working order, if it is still there. Without latency it goes at once;
    /// with latency it takes effect on arrival (see the module docs).
    pub fn cancel(&mut self, client_id: u64, now_ns: i64, out: &mut Vec<Event>) {
        let Some(i) = self
            .working
            .iter()
            .position(|w| w.request.client_id == client_id)
        else {
            return;
        };
        if self.config.latency_ns > 0 {
            let at = now_ns.saturating_add(self.config.latency_ns);
            self.working[i].cancel_at_ns = Some(at);
            return;
        }
        let w = self.working.remove(i);
        out.push(canceled(&w, now_ns));
    }

    /// Re-applies one of this venue's own answers that was recorded in a journal but whose
    /// cause is not (a paper session killed after journaling the fills of a candle and before
    /// the candle itself). Fills settle with their recorded price, quantity and fee; a final
    /// order status takes the order off the book. Returns whether the event was one of this
    /// venue's answers. Used only by recovery; a normal run never needs it.
    pub fn apply_recorded(&mut self, event: &Event) -> bool {
        match event {
            Event::Fill(f) => {
                let found = self
                    .working
                    .iter()
                    .position(|w| w.request.client_id == f.client_id);
                let venue_order_id = found.map_or(f.venue_order_id, |i| {
                    self.working[i].filled += f.qty;
                    self.working[i].venue_order_id
                });
                self.settle(
                    f.symbol,
                    f.side,
                    f.qty,
                    f.price,
                    f.fee,
                    f.client_id,
                    venue_order_id,
                    f.liquidity,
                    f.ts_event_ns,
                );
                // Done as `fill` decides: nothing left, or a reduce-only order whose
                // position is closed.
                if let Some(i) = found {
                    let w = &self.working[i];
                    if w.remaining() <= Fixed::ZERO
                        || (w.request.reduce_only && self.position(&f.symbol).is_zero())
                    {
                        self.working.remove(i);
                    }
                }
                true
            }
            Event::OrderUpdate(u) => {
                if matches!(
                    u.status,
                    OrderStatus::Canceled | OrderStatus::Expired | OrderStatus::Rejected
                ) {
                    self.working.retain(|w| w.request.client_id != u.client_id);
                }
                true
            }
            Event::Funding(p) => {
                self.cash += p.amount;
                if let Some(iso) = self.isolated.get_mut(&p.symbol) {
                    iso.margin += p.amount;
                }
                true
            }
            _ => false,
        }
    }

    /// Settles funding at `rate` for the position in `symbol`, marked at `mark`.
    pub fn on_funding(
        &mut self,
        symbol: Symbol,
        rate: Fixed,
        mark: Fixed,
        ts_ns: i64,
        out: &mut Vec<Event>,
    ) {
        if !matches!(self.config.market, Market::Perp { .. }) {
            return;
        }
        let position = self.position(&symbol);
        if position.is_zero() {
            return;
        }
        let amount = -mul(mul(position, mark), rate);
        self.cash += amount;
        // Isolated margin absorbs funding, which moves the liquidation price.
        if let Some(iso) = self.isolated.get_mut(&symbol) {
            iso.margin += amount;
        }
        out.push(Event::Funding(FundingPayment {
            symbol,
            rate,
            mark,
            position,
            amount,
            ts_event_ns: ts_ns,
        }));
    }

    /// A candle of `candle.symbol` happened: work every order of that symbol that had arrived
    /// by then. Fills are stamped with the candle's open time (close time for market orders
    /// that arrived inside it).
    pub fn on_candle(&mut self, candle: &Candle, out: &mut Vec<Event>) {
        if self.working.is_empty() {
            // Most candles: no order on the book, nothing to work or expire.
            return self.liquidate(candle, out);
        }
        let close_ns = candle.close_time_ns();
        // Cancels that arrived before the candle opened take the order away first.
        let mut i = 0;
        while i < self.working.len() {
            let w = &self.working[i];
            if w.request.symbol == candle.symbol
                && w.cancel_at_ns.is_some_and(|t| t <= candle.open_time_ns)
            {
                let w = self.working.remove(i);
                out.push(canceled(&w, w.cancel_at_ns.unwrap_or(candle.open_time_ns)));
            } else {
                i += 1;
            }
        }
        // Snapshot the working set in the order it is worked, so answers are deterministic.
        let rank = |w: &Working| match (w.request.kind, self.config.stop_first) {
            (OrderKind::Market, _) => 0,
            (_, _) if w.triggered => 0,
            (OrderKind::Stop { .. }, true) | (OrderKind::Limit { .. }, false) => 1,
            _ => 2,
        };
        // Only orders this candle can act on leave the working set; the rest (a grid's
        // untouched levels, a stop far away) are only marked as resting, in place.
        let mut batch = std::mem::take(&mut self.batch);
        let mut i = 0;
        while i < self.working.len() {
            let w = &mut self.working[i];
            if w.request.symbol == candle.symbol {
                if could_act(w, candle) {
                    batch.push(self.working.remove(i));
                    continue;
                }
                if w.arrival_ns <= candle.open_time_ns {
                    w.resting = true;
                }
            }
            i += 1;
        }
        // Within a rank, by arrival (venue order ids count submissions): the order the book
        // happens to be stored in never matters, so a book rebuilt by recovery works alike.
        batch.sort_by_key(|w| (rank(w), w.venue_order_id));
        let mut budget = if self.config.participation > Fixed::ZERO {
            mul(candle.volume, self.config.participation)
        } else {
            Fixed::MAX
        };
        for mut w in batch.drain(..) {
            let outcome = if w.arrival_ns <= candle.open_time_ns {
                self.work(&mut w, candle, &mut budget)
            } else if w.arrival_ns < close_ns && w.request.kind == OrderKind::Market {
                self.work_at_close(&mut w, candle, &mut budget)
            } else {
                Outcome::Wait
            };
            let keep = match outcome {
                Outcome::Wait => true,
                Outcome::Done(event) => {
                    out.push(event);
                    false
                }
                Outcome::Partial(event) => {
                    out.push(event);
                    true
                }
            };
            if keep {
                if w.arrival_ns <= candle.open_time_ns {
                    w.resting = true;
                }
                // A cancel that arrived during this candle ends what the candle left.
                if w.cancel_at_ns.is_some_and(|t| t < close_ns) {
                    out.push(canceled(&w, w.cancel_at_ns.unwrap_or(close_ns)));
                } else {
                    self.working.push(w);
                }
            }
        }
        self.batch = batch;
        self.liquidate(candle, out);
        // A reduce-only order outlives its purpose once the position is gone (the stop of a
        // stop/target pair whose target filled): it expires rather than opening the next
        // trade or blocking new entries.
        if self.position(&candle.symbol).is_zero() {
            let mut i = 0;
            while i < self.working.len() {
                let w = &self.working[i];
                if w.request.symbol == candle.symbol && w.request.reduce_only {
                    let w = self.working.remove(i);
                    out.push(self.expire(
                        &w,
                        candle.open_time_ns,
                        OrderStatus::Expired,
                        "reduce-only: the position it reduced is closed".into(),
                    ));
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Closes a perpetual position whose liquidation price the candle reached.
    #[inline]
    fn liquidate(&mut self, candle: &Candle, out: &mut Vec<Event>) {
        if let Market::Perp { .. } = self.config.market {
            self.liquidate_perp(candle, out);
        }
    }

    fn liquidate_perp(&mut self, candle: &Candle, out: &mut Vec<Event>) {
        let Some(lp) = self.liquidation_price(&candle.symbol) else {
            return;
        };
        let q = self.position(&candle.symbol);
        let hit = if q > Fixed::ZERO {
            candle.low <= lp
        } else {
            candle.high >= lp
        };
        if !hit {
            return;
        }
        let iso = self
            .isolated
            .get(&candle.symbol)
            .copied()
            .unwrap_or_default();
        let qa = q.abs();
        // Bankruptcy price: where the isolated margin is used up.
        let per_unit = iso.margin.checked_div(qa).unwrap_or(Fixed::ZERO);
        let (side, price) = if q > Fixed::ZERO {
            (Side::Sell, (iso.entry - per_unit).max(Fixed::from_raw(1)))
        } else {
            (Side::Buy, iso.entry + per_unit)
        };
        let event = self.settle(
            candle.symbol,
            side,
            qa,
            price,
            Fixed::ZERO,
            LIQUIDATION_CLIENT_ID,
            0,
            Liquidity::Taker,
            candle.open_time_ns,
        );
        out.push(event);
    }

    /// A market order that arrived inside the candle: at its close.
    fn work_at_close(&mut self, w: &mut Working, candle: &Candle, budget: &mut Fixed) -> Outcome {
        let slip = mul(candle.close, self.config.slippage);
        let price = match w.request.side {
            Side::Buy => candle.close + slip,
            Side::Sell => candle.close - slip,
        };
        self.fill(w, candle.close_time_ns(), price, Liquidity::Taker, budget)
    }

    /// The order's outcome in this candle.
    fn work(&mut self, w: &mut Working, candle: &Candle, budget: &mut Fixed) -> Outcome {
        let r = &w.request;
        let slip = |p: Fixed| mul(p, self.config.slippage);
        let t = candle.open_time_ns;
        let market = |side: Side| match side {
            Side::Buy => candle.open + slip(candle.open),
            Side::Sell => candle.open - slip(candle.open),
        };
        let (price, liquidity) = match (r.kind, r.side) {
            (OrderKind::Market, side) => (market(side), Liquidity::Taker),
            (OrderKind::Stop { .. }, side) if w.triggered => (market(side), Liquidity::Taker),
            (OrderKind::Limit { price, post_only }, side) => {
                let marketable = match side {
                    Side::Buy => candle.open <= price,
                    Side::Sell => candle.open >= price,
                };
                if marketable && !w.resting {
                    if post_only {
                        return Outcome::Done(self.expire(
                            w,
                            t,
                            OrderStatus::Rejected,
                            format!(
                                "post-only limit {price} would take liquidity at the open {}",
                                candle.open
                            ),
                        ));
                    }
                    let taken = match side {
                        Side::Buy => market(side).min(price),
                        Side::Sell => market(side).max(price),
                    };
                    (taken, Liquidity::Taker)
                } else {
                    let through = match side {
                        Side::Buy => candle.low < price,
                        Side::Sell => candle.high > price,
                    };
                    if !through {
                        return Outcome::Wait;
                    }
                    (price, Liquidity::Maker)
                }
            }
            (OrderKind::Stop { trigger }, Side::Sell) => {
                if candle.open <= trigger {
                    (candle.open - slip(candle.open), Liquidity::Taker)
                } else if candle.low <= trigger {
                    (trigger - slip(trigger), Liquidity::Taker)
                } else {
                    return Outcome::Wait;
                }
            }
            (OrderKind::Stop { trigger }, Side::Buy) => {
                if candle.open >= trigger {
                    (candle.open + slip(candle.open), Liquidity::Taker)
                } else if candle.high >= trigger {
                    (trigger + slip(trigger), Liquidity::Taker)
                } else {
                    return Outcome::Wait;
                }
            }
        };
        if matches!(w.request.kind, OrderKind::Stop { .. }) {
            w.triggered = true;
        }
        self.fill(w, t, price, liquidity, budget)
    }

    fn expire(&self, w: &Working, ts_ns: i64, status: OrderStatus, reason: String) -> Event {
        Event::OrderUpdate(OrderUpdate {
            client_id: w.request.client_id,
            venue_order_id: w.venue_order_id,
            status,
            ts_event_ns: ts_ns,
            reason,
        })
    }

    /// Fills what the order, the position (reduce-only), the participation budget and the
    /// account allow.
    fn fill(
        &mut self,
        w: &mut Working,
        ts_ns: i64,
        price: Fixed,
        liquidity: Liquidity,
        budget: &mut Fixed,
    ) -> Outcome {
        let r = w.request.clone();
        let held = self.position(&r.symbol);
        let mut qty = w.remaining();
        if r.reduce_only {
            let reducible = match r.side {
                Side::Sell => held.max(Fixed::ZERO),
                Side::Buy => (-held).max(Fixed::ZERO),
            };
            if reducible <= Fixed::ZERO {
                return Outcome::Done(self.expire(
                    w,
                    ts_ns,
                    OrderStatus::Expired,
                    "reduce-only: no position left to reduce".into(),
                ));
            }
            qty = qty.min(reducible);
        }
        let capped = qty > *budget;
        qty = qty.min(*budget);
        if qty <= Fixed::ZERO {
            return Outcome::Wait; // the candle's volume share is used up
        }
        let fee_rate = match liquidity {
            Liquidity::Maker => self.config.maker_fee,
            Liquidity::Taker => self.config.taker_fee,
        };
        let amounts = price.checked_mul(qty).and_then(|notional| {
            let fee = notional.checked_mul(fee_rate)?;
            Some((notional, fee, notional.checked_add(fee)?))
        });
        let problem = match amounts {
            None => Some(format!(
                "order value {qty} × {price} is beyond what the account can hold"
            )),
            Some((notional, fee, cost)) => self.afford(&r, held, qty, notional, fee, cost),
        };
        let (Some((_, fee, _)), None) = (amounts, &problem) else {
            return Outcome::Done(self.expire(
                w,
                ts_ns,
                OrderStatus::Rejected,
                problem.unwrap_or_default(),
            ));
        };
        *budget -= qty;
        w.filled += qty;
        let event = self.settle(
            r.symbol,
            r.side,
            qty,
            price,
            fee,
            r.client_id,
            w.venue_order_id,
            liquidity,
            ts_ns,
        );
        // A reduce-only order cut to the position is done once the position is.
        let done = w.remaining() <= Fixed::ZERO || (r.reduce_only && !capped);
        if done {
            Outcome::Done(event)
        } else {
            Outcome::Partial(event)
        }
    }

    /// Why the account cannot take this fill, if it cannot.
    fn afford(
        &self,
        r: &OrderRequest,
        held: Fixed,
        qty: Fixed,
        notional: Fixed,
        fee: Fixed,
        cost: Fixed,
    ) -> Option<String> {
        match self.config.market {
            Market::Spot => match r.side {
                Side::Buy if cost > self.cash => Some(format!(
                    "insufficient balance: need {cost} (notional {notional} + fee {fee}), have {}",
                    self.cash
                )),
                // Spot: nothing can be sold that is not held.
                Side::Sell if qty > held => Some(format!(
                    "insufficient position: selling {qty} but holding {held}"
                )),
                _ => None,
            },
            Market::Perp { leverage, .. } => {
                let signed = match r.side {
                    Side::Buy => qty,
                    Side::Sell => -qty,
                };
                let after = held + signed;
                let grows = after.abs() > held.abs();
                if !grows {
                    return None;
                }
                let added = after.abs() - held.abs().min(after.abs());
                // Crossing zero: only the part beyond zero needs new margin.
                let added = if after.is_negative() != held.is_negative() && !held.is_zero() {
                    after.abs()
                } else {
                    added
                };
                let price = notional.checked_div(qty).unwrap_or(Fixed::ZERO);
                let need = div_ceil(mul(added, price), leverage) + fee;
                let free = self.free_margin();
                (need > free).then(|| {
                    format!(
                        "insufficient margin: need {need} ({added} × {price} / {leverage}x + fee                          {fee}), free {free}"
                    )
                })
            }
        }
    }

    /// Wallet balance not held as isolated margin.
    fn free_margin(&self) -> Fixed {
        let mut wallet = self.cash;
        let mut used = Fixed::ZERO;
        for (symbol, q) in &self.positions {
            if let Some(iso) = self.isolated.get(symbol) {
                wallet += mul(*q, iso.entry);
                if !q.is_zero() {
                    used += iso.margin;
                }
            }
        }
        wallet - used
    }

    /// Books a fill: cash, position, and for perpetuals the isolated entry and margin.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        symbol: Symbol,
        side: Side,
        qty: Fixed,
        price: Fixed,
        fee: Fixed,
        client_id: u64,
        venue_order_id: u64,
        liquidity: Liquidity,
        ts_ns: i64,
    ) -> Event {
        let notional = mul(price, qty);
        let held = self.position(&symbol);
        let signed = match side {
            Side::Buy => qty,
            Side::Sell => -qty,
        };
        match side {
            Side::Buy => self.cash -= notional + fee,
            Side::Sell => self.cash += notional - fee,
        }
        let after = held + signed;
        self.positions.insert(symbol, after);
        if let Market::Perp { leverage, .. } = self.config.market {
            let iso = self.isolated.entry(symbol).or_default();
            if after.is_zero() {
                *iso = Isolated::default();
            } else if held.is_zero() || held.is_negative() != after.is_negative() {
                // Opened, or crossed zero: a fresh position at this price.
                *iso = Isolated {
                    entry: price,
                    margin: div_ceil(mul(after.abs(), price), leverage),
                };
            } else if after.abs() > held.abs() {
                // Added: average the entry, add margin for the added part.
                let total = mul(held.abs(), iso.entry) + notional;
                iso.entry = total.checked_div(after.abs()).unwrap_or(price);
                iso.margin += div_ceil(notional, leverage);
            } else {
                // Reduced: release margin pro rata.
                let kept = iso
                    .margin
                    .checked_mul(after.abs())
                    .and_then(|m| m.checked_div(held.abs()))
                    .unwrap_or(iso.margin);
                iso.margin = kept;
            }
        }
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        Event::Fill(Fill {
            client_id,
            venue_order_id,
            trade_id,
            symbol,
            side,
            price,
            qty,
            fee,
            liquidity,
            ts_event_ns: ts_ns,
        })
    }
}

/// Whether `candle` can fill, trigger, reject or cancel `w` (a cheap test, so orders it
/// cannot touch stay where they are).
fn could_act(w: &Working, candle: &Candle) -> bool {
    let close_ns = candle.close_time_ns();
    if w.cancel_at_ns.is_some_and(|t| t < close_ns) {
        return true;
    }
    if w.arrival_ns > candle.open_time_ns {
        return w.arrival_ns < close_ns && w.request.kind == OrderKind::Market;
    }
    if w.triggered {
        return true;
    }
    match (w.request.kind, w.request.side) {
        (OrderKind::Market, _) => true,
        // Arriving: marketable at the open, or a post-only to reject, is decided in `work`.
        (OrderKind::Limit { .. }, _) if !w.resting => true,
        (OrderKind::Limit { price, .. }, Side::Buy) => candle.low < price,
        (OrderKind::Limit { price, .. }, Side::Sell) => candle.high > price,
        (OrderKind::Stop { trigger }, Side::Sell) => candle.low <= trigger,
        (OrderKind::Stop { trigger }, Side::Buy) => candle.high >= trigger,
    }
}

enum Outcome {
    /// Not this candle.
    Wait,
    /// Filled completely, rejected or expired: the order is gone.
    Done(Event),
    /// Filled in part: the order keeps working.
    Partial(Event),
}

fn canceled(w: &Working, ts_ns: i64) -> Event {
    Event::OrderUpdate(OrderUpdate {
        client_id: w.request.client_id,
        venue_order_id: w.venue_order_id,
        status: OrderStatus::Canceled,
        ts_event_ns: ts_ns,
        reason: String::new(),
    })
}

/// Saturating product (the values here are checked against balances afterwards).
fn mul(a: Fixed, b: Fixed) -> Fixed {
    a.checked_mul(b).unwrap_or(Fixed::MAX)
}

/// `a / b` rounded up to 1e-8, so margin is never under-reserved.
fn div_ceil(a: Fixed, b: Fixed) -> Fixed {
    match a.checked_div(b) {
        Some(q) if q.checked_mul(b).is_some_and(|back| back < a) => q + Fixed::from_raw(1),
        Some(q) => q,
        None => Fixed::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SimConfig {
        SimConfig {
            taker_fee: Fixed::parse("0.001").unwrap(),
            maker_fee: Fixed::parse("0.0002").unwrap(),
            stop_first: true,
            slippage: Fixed::ZERO,
            starting_balance: Fixed::from_int(1_000),
            latency_ns: 0,
            participation: Fixed::ZERO,
            market: Market::Spot,
        }
    }

    fn candle(open: &str) -> Candle {
        let o = Fixed::parse(open).unwrap();
        Candle {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            open_time_ns: 60_000_000_000,
            interval_ns: 60_000_000_000,
            open: o,
            high: o,
            low: o,
            close: o,
            volume: Fixed::ONE,
        }
    }

    fn order(side: Side, qty: &str) -> OrderRequest {
        OrderRequest {
            client_id: 16,
            symbol: Symbol::new("BTCUSDT").unwrap(),
            side,
            kind: OrderKind::Market,
            qty: Fixed::parse(qty).unwrap(),
            reduce_only: false,
        }
    }

    #[test]
    fn market_order_fills_at_next_open_with_taker_fee() {
        let mut v = SimVenue::new(config());
        let mut out = Vec::new();
        v.submit(&order(Side::Buy, "2"), 0, &mut out);
        assert!(matches!(&out[0], Event::OrderUpdate(u) if u.status == OrderStatus::Accepted));
        out.clear();
        v.on_candle(&candle("100"), &mut out);
        let Event::Fill(f) = &out[0] else {
            panic!("expected a fill, got {out:?}")
        };
        assert_eq!(f.price, Fixed::from_int(100));
        assert_eq!(f.fee, Fixed::parse("0.2").unwrap()); // 200 × 0.001
        assert_eq!(f.ts_event_ns, 60_000_000_000);
        assert_eq!(v.cash(), Fixed::parse("799.8").unwrap());
    }

    #[test]
    fn rejects_buy_beyond_balance_at_fill_time() {
        let mut v = SimVenue::new(config());
        let mut out = Vec::new();
        v.submit(&order(Side::Buy, "10"), 0, &mut out);
        out.clear();
        v.on_candle(&candle("100"), &mut out); // needs 1001
        assert!(matches!(&out[0], Event::OrderUpdate(u)
            if u.status == OrderStatus::Rejected && u.reason.contains("insufficient balance")));
    }

    #[test]
    fn rejects_spot_sell_of_more_than_held() {
        let mut v = SimVenue::new(config());
        let mut out = Vec::new();
        v.submit(&order(Side::Sell, "1"), 0, &mut out);
        out.clear();
        v.on_candle(&candle("100"), &mut out);
        assert!(matches!(&out[0], Event::OrderUpdate(u) if u.status == OrderStatus::Rejected));
    }

    #[test]
    fn order_too_large_to_value_is_rejected_not_wrapped() {
        let mut v = SimVenue::new(config());
        let mut out = Vec::new();
        v.submit(&order(Side::Buy, "5000000000"), 0, &mut out);
        out.clear();
        v.on_candle(&candle("100"), &mut out);
        assert!(
            matches!(&out[0], Event::OrderUpdate(u) if u.status == OrderStatus::Rejected),
            "{out:?}"
        );
        assert_eq!(v.cash(), Fixed::from_int(1_000));
    }

    #[test]
    fn slippage_moves_price_against_the_taker() {
        let mut c = config();
        c.slippage = Fixed::parse("0.01").unwrap();
        let mut v = SimVenue::new(c);
        let mut out = Vec::new();
        v.submit(&order(Side::Buy, "1"), 0, &mut out);
        out.clear();
        v.on_candle(&candle("100"), &mut out);
        assert!(matches!(&out[0], Event::Fill(f) if f.price == Fixed::from_int(101)));
    }

    fn bar(o: &str, h: &str, l: &str, c: &str) -> Candle {
        let f = |x: &str| Fixed::parse(x).unwrap();
        Candle {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            open_time_ns: 60_000_000_000,
            interval_ns: 60_000_000_000,
            open: f(o),
            high: f(h),
            low: f(l),
            close: f(c),
            volume: Fixed::ONE,
        }
    }

    fn with(kind: OrderKind, side: Side, qty: &str, reduce_only: bool, id: u64) -> OrderRequest {
        OrderRequest {
            client_id: id,
            kind,
            side,
            reduce_only,
            ..order(side, qty)
        }
    }

    fn limit(p: &str) -> OrderKind {
        OrderKind::Limit {
            price: Fixed::parse(p).unwrap(),
            post_only: false,
        }
    }

    fn stop(p: &str) -> OrderKind {
        OrderKind::Stop {
            trigger: Fixed::parse(p).unwrap(),
        }
    }

    /// Submits, drops the acceptance, and returns what `candle` does to the order(s).
    fn run(v: &mut SimVenue, orders: &[OrderRequest], candles: &[Candle]) -> Vec<Event> {
        let mut out = Vec::new();
        for o in orders {
            v.submit(o, 0, &mut out);
        }
        out.clear();
        for c in candles {
            v.on_candle(c, &mut out);
        }
        out
    }

    /// A venue holding 1 BTC bought at 100 (fee 0.1).
    fn long_one() -> SimVenue {
        let mut v = SimVenue::new(config());
        run(
            &mut v,
            &[order(Side::Buy, "1")],
            &[bar("100", "100", "100", "100")],
        );
        v
    }

    fn fill(e: &Event) -> &Fill {
        match e {
            Event::Fill(f) => f,
            other => panic!("expected a fill, got {other:?}"),
        }
    }

    fn update(e: &Event) -> &OrderUpdate {
        match e {
            Event::OrderUpdate(u) => u,
            other => panic!("expected an order update, got {other:?}"),
        }
    }

    #[test]
    fn resting_limit_fills_at_its_price_only_when_traded_through_as_maker() {
        let mut v = SimVenue::new(config());
        let buy = with(limit("95"), Side::Buy, "1", false, 1);
        // Low touches 95 but does not trade through it: no fill.
        let out = run(&mut v, &[buy], &[bar("100", "101", "95", "99")]);
        assert!(out.is_empty(), "{out:?}");
        let mut out = Vec::new();
        v.on_candle(&bar("99", "99", "94", "96"), &mut out);
        let f = fill(&out[0]);
        assert_eq!(f.price, Fixed::from_int(95));
        assert_eq!(f.liquidity, Liquidity::Maker);
        assert_eq!(f.fee, Fixed::parse("0.019").unwrap()); // 95 × 0.0002
    }

    #[test]
    fn marketable_limit_on_arrival_takes_at_the_open_and_post_only_is_rejected() {
        let mut v = SimVenue::new(config());
        let out = run(
            &mut v,
            &[with(limit("105"), Side::Buy, "1", false, 1)],
            &[bar("100", "101", "99", "100")],
        );
        let f = fill(&out[0]);
        assert_eq!(
            (f.price, f.liquidity),
            (Fixed::from_int(100), Liquidity::Taker)
        );
        let post = OrderKind::Limit {
            price: Fixed::from_int(105),
            post_only: true,
        };
        let out = run(
            &mut v,
            &[with(post, Side::Buy, "1", false, 2)],
            &[bar("100", "101", "99", "100")],
        );
        assert_eq!(update(&out[0]).status, OrderStatus::Rejected);
        assert!(update(&out[0]).reason.contains("post-only"));
    }

    #[test]
    fn sell_stop_fills_at_the_trigger_intrabar_and_at_the_open_on_a_gap() {
        let mut v = long_one();
        let s1 = with(stop("90"), Side::Sell, "0.5", false, 2);
        let out = run(&mut v, &[s1], &[bar("95", "96", "89", "92")]);
        assert_eq!(fill(&out[0]).price, Fixed::from_int(90));
        let s2 = with(stop("90"), Side::Sell, "0.5", false, 3);
        let out = run(&mut v, &[s2], &[bar("85", "88", "80", "86")]);
        assert_eq!(fill(&out[0]).price, Fixed::from_int(85));
        assert_eq!(fill(&out[0]).liquidity, Liquidity::Taker);
    }

    #[test]
    fn buy_stop_triggers_on_the_high() {
        let mut v = SimVenue::new(config());
        let out = run(
            &mut v,
            &[with(stop("110"), Side::Buy, "1", false, 1)],
            &[bar("100", "109", "99", "105")],
        );
        assert!(out.is_empty());
        let mut out = Vec::new();
        v.on_candle(&bar("105", "112", "104", "111"), &mut out);
        assert_eq!(fill(&out[0]).price, Fixed::from_int(110));
    }

    #[test]
    fn stop_and_target_in_one_candle_count_the_stop_first_by_default() {
        let pair = [
            with(stop("90"), Side::Sell, "1", true, 2),
            with(limit("110"), Side::Sell, "1", true, 3),
        ];
        let wide = bar("100", "111", "89", "100");
        let mut v = long_one();
        let out = run(&mut v, &pair, std::slice::from_ref(&wide));
        assert_eq!(fill(&out[0]).client_id, 2);
        assert_eq!(fill(&out[0]).price, Fixed::from_int(90));
        assert_eq!(update(&out[1]).status, OrderStatus::Expired);
        assert_eq!(v.open_orders(), 0);

        // Configured the other way, the target fills and the stop expires.
        let mut v = SimVenue::new(SimConfig {
            stop_first: false,
            ..config()
        });
        run(
            &mut v,
            &[order(Side::Buy, "1")],
            &[bar("100", "100", "100", "100")],
        );
        let out = run(&mut v, &pair, &[wide]);
        assert_eq!(fill(&out[0]).client_id, 3);
        assert_eq!(fill(&out[0]).price, Fixed::from_int(110));
        assert_eq!(update(&out[1]).status, OrderStatus::Expired);
    }

    #[test]
    fn untouched_stop_expires_when_the_target_closes_the_position() {
        let mut v = long_one();
        let pair = [
            with(stop("90"), Side::Sell, "1", true, 2),
            with(limit("110"), Side::Sell, "1", true, 3),
        ];
        // Trades through the target only; the stop is never touched.
        let out = run(&mut v, &pair, &[bar("100", "111", "99", "105")]);
        assert_eq!(fill(&out[0]).client_id, 3);
        let u = update(&out[1]);
        assert_eq!((u.client_id, u.status), (2, OrderStatus::Expired));
        assert_eq!(v.open_orders(), 0);
    }

    #[test]
    fn reduce_only_is_cut_to_the_position() {
        let mut v = long_one();
        let out = run(
            &mut v,
            &[with(OrderKind::Market, Side::Sell, "3", true, 2)],
            &[bar("100", "100", "100", "100")],
        );
        assert_eq!(fill(&out[0]).qty, Fixed::ONE);
        assert_eq!(v.open_orders(), 0);
    }

    fn fx(s: &str) -> Fixed {
        Fixed::parse(s).unwrap()
    }

    /// `bar` opening `i` minutes after the first one, with a volume.
    fn bar_at(i: i64, ohlc: [&str; 4], volume: &str) -> Candle {
        Candle {
            open_time_ns: 60_000_000_000 * (1 + i),
            volume: fx(volume),
            ..bar(ohlc[0], ohlc[1], ohlc[2], ohlc[3])
        }
    }

    fn fills(out: &[Event]) -> Vec<(Side, Fixed, Fixed)> {
        out.iter()
            .filter_map(|e| match e {
                Event::Fill(f) => Some((f.side, f.price, f.qty)),
                _ => None,
            })
            .collect()
    }

    fn perp(leverage: i64) -> SimConfig {
        SimConfig {
            taker_fee: Fixed::ZERO,
            maker_fee: Fixed::ZERO,
            market: Market::Perp {
                leverage: Fixed::from_int(leverage),
                maintenance_margin: fx("0.004"),
            },
            ..config()
        }
    }

    #[test]
    fn latency_makes_a_market_order_that_arrives_mid_bar_fill_at_the_close() {
        let mut v = SimVenue::new(SimConfig {
            latency_ns: 500_000_000,
            ..config()
        });
        let mut out = Vec::new();
        // Sent at the bar's open (60 s); arrives at 60.5 s, inside it.
        v.submit(&order(Side::Buy, "1"), 60_000_000_000, &mut out);
        out.clear();
        v.on_candle(&bar("100", "105", "95", "102"), &mut out);
        let f = fill(&out[0]);
        assert_eq!((f.price, f.ts_event_ns), (fx("102"), 120_000_000_000));
    }

    #[test]
    fn latency_keeps_a_limit_out_of_the_bar_it_arrives_in_and_delays_cancels() {
        let mut v = SimVenue::new(SimConfig {
            latency_ns: 500_000_000,
            ..config()
        });
        let mut out = Vec::new();
        let buy = with(limit("99"), Side::Buy, "1", false, 16);
        v.submit(&buy, 60_000_000_000, &mut out);
        out.clear();
        // Traded through at 95, but the order only arrived at 60.5 s.
        v.on_candle(&bar_at(0, ["100", "101", "95", "100"], "1"), &mut out);
        assert!(fills(&out).is_empty(), "{out:?}");
        // A cancel sent at the next bar's open arrives 0.5 s later: that bar can still
        // fill the order first.
        v.cancel(16, 120_000_000_000, &mut out);
        assert!(out.is_empty(), "a late cancel answers on arrival");
        v.on_candle(&bar_at(1, ["100", "100", "98", "99"], "1"), &mut out);
        assert_eq!(fills(&out), vec![(Side::Buy, fx("99"), fx("1"))]);
        assert_eq!(v.open_orders(), 0);
    }

    #[test]
    fn late_cancel_takes_effect_within_the_bar_when_nothing_filled() {
        let mut v = SimVenue::new(SimConfig {
            latency_ns: 500_000_000,
            ..config()
        });
        let mut out = Vec::new();
        v.submit(&with(limit("90"), Side::Buy, "1", false, 16), 0, &mut out);
        v.cancel(16, 60_000_000_000, &mut out);
        out.clear();
        v.on_candle(&bar_at(0, ["100", "101", "95", "100"], "1"), &mut out);
        assert!(matches!(&out[..], [Event::OrderUpdate(u)] if u.status == OrderStatus::Canceled));
        assert_eq!(v.open_orders(), 0);
    }

    #[test]
    fn participation_cap_fills_a_share_of_each_bar_and_keeps_the_rest_working() {
        let mut v = SimVenue::new(SimConfig {
            participation: fx("0.1"),
            taker_fee: Fixed::ZERO,
            ..config()
        });
        let mut out = Vec::new();
        v.submit(&order(Side::Buy, "5"), 0, &mut out);
        out.clear();
        // 10% of 20 = 2 per bar: 2, 2, then the last 1.
        for (i, open) in ["100", "101", "102"].iter().enumerate() {
            v.on_candle(&bar_at(i as i64, [open; 4], "20"), &mut out);
        }
        assert_eq!(
            fills(&out),
            vec![
                (Side::Buy, fx("100"), fx("2")),
                (Side::Buy, fx("101"), fx("2")),
                (Side::Buy, fx("102"), fx("1"))
            ]
        );
        assert_eq!(v.open_orders(), 0);
        assert_eq!(v.position(&Symbol::new("BTCUSDT").unwrap()), fx("5"));
    }

    #[test]
    fn perp_long_liquidates_at_the_bankruptcy_price_when_the_bar_reaches_binance_lp() {
        // 10x long of 1 at 100: isolated margin 10. Binance one-way isolated:
        // LP = (M − q·E) / (q·mmr − q) = (10 − 100) / (0.004 − 1) = 90 / 0.996
        //    = 90.361445783…; bankruptcy at 100 − 10 / 1 = 90.
        let sym = Symbol::new("BTCUSDT").unwrap();
        let mut v = SimVenue::new(perp(10));
        run(
            &mut v,
            &[order(Side::Buy, "1")],
            &[bar("100", "100", "100", "100")],
        );
        assert_eq!(v.liquidation_price(&sym), Some(fx("90.36144578")));
        let mut out = Vec::new();
        v.on_candle(&bar_at(1, ["95", "96", "90.4", "91"], "1"), &mut out);
        assert!(
            fills(&out).is_empty(),
            "90.4 is above the liquidation price"
        );
        v.on_candle(&bar_at(2, ["91", "92", "90.3", "91"], "1"), &mut out);
        assert_eq!(fills(&out), vec![(Side::Sell, fx("90"), fx("1"))]);
        let Event::Fill(f) = &out[0] else { panic!() };
        assert_eq!(f.client_id, LIQUIDATION_CLIENT_ID);
        assert!(v.position(&sym).is_zero());
        assert_eq!(v.cash(), fx("990")); // the 10 of margin is gone
    }

    #[test]
    fn perp_short_liquidation_price_and_margin_check() {
        // 10x short of 1 at 100: LP = (M + q·E) / (q·mmr + q) = 110 / 1.004 = 109.561752988…,
        // 109.56175299 at 8 decimals (keel rounds quotients to nearest).
        let sym = Symbol::new("BTCUSDT").unwrap();
        let mut v = SimVenue::new(perp(10));
        run(
            &mut v,
            &[order(Side::Sell, "1")],
            &[bar("100", "100", "100", "100")],
        );
        assert_eq!(v.position(&sym), fx("-1"));
        assert_eq!(v.liquidation_price(&sym), Some(fx("109.56175299")));

        // 1,000 of equity at 10x buys at most 10,000 of notional: 100 at 100 fits, 101 not.
        let mut v = SimVenue::new(perp(10));
        let out = run(
            &mut v,
            &[order(Side::Buy, "100")],
            &[bar("100", "100", "100", "100")],
        );
        assert_eq!(fills(&out).len(), 1);
        let mut v = SimVenue::new(perp(10));
        let out = run(
            &mut v,
            &[order(Side::Buy, "101")],
            &[bar("100", "100", "100", "100")],
        );
        assert!(
            matches!(&out[0], Event::OrderUpdate(u) if u.status == OrderStatus::Rejected
                && u.reason.contains("insufficient margin")),
            "{out:?}"
        );
    }

    #[test]
    fn funding_is_paid_by_longs_and_received_by_shorts_when_positive() {
        let sym = Symbol::new("BTCUSDT").unwrap();
        for (side, want) in [(Side::Buy, "-0.021"), (Side::Sell, "0.021")] {
            let mut v = SimVenue::new(perp(5));
            run(
                &mut v,
                &[order(side, "2")],
                &[bar("100", "100", "100", "100")],
            );
            let cash = v.cash();
            let mut out = Vec::new();
            // 2 × 105 × 0.0001 = 0.021
            v.on_funding(sym, fx("0.0001"), fx("105"), 0, &mut out);
            let [Event::Funding(p)] = &out[..] else {
                panic!("{out:?}")
            };
            assert_eq!(p.amount, fx(want));
            assert_eq!(v.cash(), cash + fx(want));
        }
        // Spot has no funding.
        let mut v = long_one();
        let mut out = Vec::new();
        v.on_funding(sym, fx("0.0001"), fx("105"), 0, &mut out);
        assert!(out.is_empty());
    }

    /// What recovery rebuilds from recorded answers equals what working the candle did.
    #[test]
    fn recorded_answers_rebuild_the_venue_the_candle_left() {
        for stop_first in [true, false] {
            let mut cfg = perp(3);
            cfg.stop_first = stop_first;
            cfg.participation = fx("0.5");
            let mut live = SimVenue::new(cfg.clone());
            let mut out = Vec::new();
            let orders = [
                with(OrderKind::Market, Side::Buy, "2", false, 1),
                with(limit("95"), Side::Buy, "1", false, 2),
                with(stop("90"), Side::Sell, "3", true, 3),
            ];
            for o in &orders {
                live.submit(o, 0, &mut out);
            }
            let bars = [
                bar_at(1, ["100", "101", "99", "100"], "3"),
                bar_at(2, ["99", "100", "94", "96"], "10"),
                bar_at(3, ["96", "96", "80", "85"], "10"),
            ];
            for b in &bars {
                let mut rebuilt_from = SimVenue::new(cfg.clone());
                // The same history up to this bar, then this bar's answers re-applied.
                let mut scratch = Vec::new();
                for o in &orders {
                    rebuilt_from.submit(o, 0, &mut scratch);
                }
                for earlier in bars.iter().take_while(|x| x.open_time_ns < b.open_time_ns) {
                    rebuilt_from.on_candle(earlier, &mut scratch);
                }
                out.clear();
                live.on_candle(b, &mut out);
                for e in &out {
                    assert!(rebuilt_from.apply_recorded(e));
                }
                assert_eq!(rebuilt_from.cash(), live.cash(), "bar {}", b.open_time_ns);
                let sorted = |v: &SimVenue| {
                    let mut b = v.book();
                    b.sort();
                    b
                };
                assert_eq!(
                    sorted(&rebuilt_from),
                    sorted(&live),
                    "bar {}",
                    b.open_time_ns
                );
                let s = Symbol::new("BTCUSDT").unwrap();
                assert_eq!(rebuilt_from.position(&s), live.position(&s));
                assert_eq!(
                    rebuilt_from.liquidation_price(&s),
                    live.liquidation_price(&s)
                );
            }
            assert!(!out.is_empty(), "the last bar must have done something");
        }
    }
}
