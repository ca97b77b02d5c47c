//! The simulated venue used by backtests (and later paper trading).
//!
//! It plays the exchange: it accepts or rejects orders, keeps its own balances, and fills
//! orders against the candles of their symbol. Its answers are ordinary events that go back
//! into the journal as inputs, exactly like a real venue's. Deterministic: venue order ids
//! and trade ids are counters, and orders are worked in a fixed order.
//!
//! Fill rules, per candle, for orders that were working when it opened:
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

use std::collections::BTreeMap;

use crate::candle::Candle;
use crate::event::{
    Event, Fill, Liquidity, OrderKind, OrderRequest, OrderStatus, OrderUpdate, Side,
};
use crate::fixed::Fixed;
use crate::symbol::Symbol;

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
}

#[derive(Clone, Debug)]
struct Working {
    request: OrderRequest,
    venue_order_id: u64,
    /// Has seen a candle open: a limit order is no longer "arriving".
    resting: bool,
}

pub struct SimVenue {
    config: SimConfig,
    cash: Fixed,
    positions: BTreeMap<Symbol, Fixed>,
    working: Vec<Working>,
    next_venue_order_id: u64,
    next_trade_id: u64,
}

impl SimVenue {
    pub fn new(config: SimConfig) -> SimVenue {
        SimVenue {
            cash: config.starting_balance,
            config,
            positions: BTreeMap::new(),
            working: Vec::new(),
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

    /// An order arrives at `now_ns`. The answer (accepted or rejected) is pushed to `out`.
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
        });
    }

    /// Cancels a working order, if it is still there.
    pub fn cancel(&mut self, client_id: u64, now_ns: i64, out: &mut Vec<Event>) {
        if let Some(i) = self
            .working
            .iter()
            .position(|w| w.request.client_id == client_id)
        {
            let w = self.working.remove(i);
            out.push(Event::OrderUpdate(OrderUpdate {
                client_id,
                venue_order_id: w.venue_order_id,
                status: OrderStatus::Canceled,
                ts_event_ns: now_ns,
                reason: String::new(),
            }));
        }
    }

    /// A candle of `candle.symbol` happened: work every order of that symbol that was
    /// working when it opened. Fills are stamped with the candle's open time.
    pub fn on_candle(&mut self, candle: &Candle, out: &mut Vec<Event>) {
        // Snapshot the working set in the order it is worked, so answers are deterministic.
        let rank = |w: &Working| match (w.request.kind, self.config.stop_first) {
            (OrderKind::Market, _) => 0,
            (OrderKind::Stop { .. }, true) | (OrderKind::Limit { .. }, false) => 1,
            _ => 2,
        };
        let mut batch: Vec<Working> = Vec::new();
        let mut i = 0;
        while i < self.working.len() {
            if self.working[i].request.symbol == candle.symbol {
                batch.push(self.working.remove(i));
            } else {
                i += 1;
            }
        }
        batch.sort_by_key(|w| rank(w)); // stable: submission order within a rank
        for mut w in batch {
            match self.work(&w, candle) {
                Some(event) => out.push(event),
                None => {
                    w.resting = true;
                    self.working.push(w);
                }
            }
        }
        // A reduce-only order outlives its purpose once the position is gone (the stop of a
        // stop/target pair whose target filled): it expires rather than opening the next
        // trade or blocking new entries.
        let flat = self
            .positions
            .get(&candle.symbol)
            .is_none_or(|q| q.is_zero());
        if flat {
            let mut i = 0;
            while i < self.working.len() {
                let w = &self.working[i];
                if w.request.symbol == candle.symbol && w.request.reduce_only {
                    let w = self.working.remove(i);
                    out.push(self.expire(
                        &w,
                        candle,
                        OrderStatus::Expired,
                        "reduce-only: the position it reduced is closed".into(),
                    ));
                } else {
                    i += 1;
                }
            }
        }
    }

    /// The order's outcome in this candle, or `None` if it keeps working.
    fn work(&mut self, w: &Working, candle: &Candle) -> Option<Event> {
        let r = &w.request;
        let slip = |p: Fixed| p.checked_mul(self.config.slippage).unwrap_or(Fixed::ZERO);
        let (price, liquidity) = match (r.kind, r.side) {
            (OrderKind::Market, Side::Buy) => (candle.open + slip(candle.open), Liquidity::Taker),
            (OrderKind::Market, Side::Sell) => (candle.open - slip(candle.open), Liquidity::Taker),
            (OrderKind::Limit { price, post_only }, side) => {
                let marketable = match side {
                    Side::Buy => candle.open <= price,
                    Side::Sell => candle.open >= price,
                };
                if marketable && !w.resting {
                    if post_only {
                        return Some(self.expire(
                            w,
                            candle,
                            OrderStatus::Rejected,
                            format!(
                                "post-only limit {price} would take liquidity at the open {}",
                                candle.open
                            ),
                        ));
                    }
                    let taken = match side {
                        Side::Buy => (candle.open + slip(candle.open)).min(price),
                        Side::Sell => (candle.open - slip(candle.open)).max(price),
                    };
                    (taken, Liquidity::Taker)
                } else {
                    let through = match side {
                        Side::Buy => candle.low < price,
                        Side::Sell => candle.high > price,
                    };
                    if !through {
                        return None;
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
                    return None;
                }
            }
            (OrderKind::Stop { trigger }, Side::Buy) => {
                if candle.open >= trigger {
                    (candle.open + slip(candle.open), Liquidity::Taker)
                } else if candle.high >= trigger {
                    (trigger + slip(trigger), Liquidity::Taker)
                } else {
                    return None;
                }
            }
        };
        Some(self.fill(w, candle, price, liquidity))
    }

    fn expire(&self, w: &Working, candle: &Candle, status: OrderStatus, reason: String) -> Event {
        Event::OrderUpdate(OrderUpdate {
            client_id: w.request.client_id,
            venue_order_id: w.venue_order_id,
            status,
            ts_event_ns: candle.open_time_ns,
            reason,
        })
    }

    fn fill(&mut self, w: &Working, candle: &Candle, price: Fixed, liquidity: Liquidity) -> Event {
        let r = &w.request;
        let held = self
            .positions
            .get(&r.symbol)
            .copied()
            .unwrap_or(Fixed::ZERO);
        let mut qty = r.qty;
        if r.reduce_only {
            // Spot positions are long only here: a reduce-only order can only sell.
            let reducible = if r.side == Side::Sell {
                held
            } else {
                Fixed::ZERO
            };
            if reducible <= Fixed::ZERO {
                return self.expire(
                    w,
                    candle,
                    OrderStatus::Expired,
                    "reduce-only: no position left to reduce".into(),
                );
            }
            qty = qty.min(reducible);
        }
        let fee_rate = match liquidity {
            Liquidity::Maker => self.config.maker_fee,
            Liquidity::Taker => self.config.taker_fee,
        };
        let amounts = price.checked_mul(qty).and_then(|notional| {
            let fee = notional.checked_mul(fee_rate)?;
            Some((notional, fee, notional.checked_add(fee)?))
        });
        let problem = match (r.side, amounts) {
            (_, None) => Some(format!(
                "order value {qty} × {price} is beyond what the account can hold"
            )),
            (Side::Buy, Some((notional, fee, cost))) if cost > self.cash => Some(format!(
                "insufficient balance: need {cost} (notional {notional} + fee {fee}), have {}",
                self.cash
            )),
            // Spot: nothing can be sold that is not held.
            (Side::Sell, _) if qty > held => Some(format!(
                "insufficient position: selling {qty} but holding {held}"
            )),
            _ => None,
        };
        let (Some((notional, fee, _)), None) = (amounts, &problem) else {
            return Event::OrderUpdate(OrderUpdate {
                client_id: r.client_id,
                venue_order_id: w.venue_order_id,
                status: OrderStatus::Rejected,
                ts_event_ns: candle.open_time_ns,
                reason: problem.unwrap_or_default(),
            });
        };
        match r.side {
            Side::Buy => {
                self.cash -= notional + fee;
                *self.positions.entry(r.symbol).or_default() += qty;
            }
            Side::Sell => {
                self.cash += notional - fee;
                *self.positions.entry(r.symbol).or_default() -= qty;
            }
        }
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        Event::Fill(Fill {
            client_id: r.client_id,
            venue_order_id: w.venue_order_id,
            trade_id,
            symbol: r.symbol,
            side: r.side,
            price,
            qty,
            fee,
            liquidity,
            ts_event_ns: candle.open_time_ns,
        })
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
}
