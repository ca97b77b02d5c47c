//! The simulated venue used by backtests (and later paper trading).
//!
//! It plays the exchange: it accepts or rejects orders, keeps its own balances, and fills
//! market orders at the open of the next candle of their symbol, adjusted by slippage,
//! charging the taker fee on the notional. Its answers are ordinary events that go back into
//! the journal as inputs, exactly like a real venue's. Deterministic: venue order ids and
//! trade ids are counters.

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
    /// Adverse price move applied to market fills, as a rate (0.0001 = 1 bp).
    pub slippage: Fixed,
    pub starting_balance: Fixed,
}

#[derive(Clone, Debug)]
struct Working {
    request: OrderRequest,
    venue_order_id: u64,
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
        match request.kind {
            OrderKind::Market => {}
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

    /// A new candle opens: fill every working market order of its symbol at the open.
    /// Fills are stamped with the candle's open time.
    pub fn on_candle(&mut self, candle: &Candle, out: &mut Vec<Event>) {
        let mut i = 0;
        while i < self.working.len() {
            if self.working[i].request.symbol != candle.symbol {
                i += 1;
                continue;
            }
            let w = self.working.remove(i);
            out.push(self.fill_market(&w, candle));
        }
    }

    fn fill_market(&mut self, w: &Working, candle: &Candle) -> Event {
        let r = &w.request;
        let slip = candle
            .open
            .checked_mul(self.config.slippage)
            .unwrap_or(Fixed::ZERO);
        let price = match r.side {
            Side::Buy => candle.open + slip,
            Side::Sell => candle.open - slip,
        };
        let held = self
            .positions
            .get(&r.symbol)
            .copied()
            .unwrap_or(Fixed::ZERO);
        let amounts = price.checked_mul(r.qty).and_then(|notional| {
            let fee = notional.checked_mul(self.config.taker_fee)?;
            Some((notional, fee, notional.checked_add(fee)?))
        });
        let problem = match (r.side, amounts) {
            (_, None) => Some(format!(
                "order value {} × {price} is beyond what the account can hold",
                r.qty
            )),
            (Side::Buy, Some((notional, fee, cost))) if cost > self.cash => Some(format!(
                "insufficient balance: need {cost} (notional {notional} + fee {fee}), have {}",
                self.cash
            )),
            // Spot: nothing can be sold that is not held.
            (Side::Sell, _) if r.qty > held => Some(format!(
                "insufficient position: selling {} but holding {held}",
                r.qty
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
                *self.positions.entry(r.symbol).or_default() += r.qty;
            }
            Side::Sell => {
                self.cash += notional - fee;
                *self.positions.entry(r.symbol).or_default() -= r.qty;
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
            qty: r.qty,
            fee,
            liquidity: Liquidity::Taker,
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
}
