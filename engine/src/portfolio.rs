//! Cash, positions and the trade ledger, updated only by fills.
//!
//! A position is a signed quantity with an average entry price. A trade opens when a
//! position leaves zero and closes when it returns to (or crosses) zero; its PnL is net of
//! every fee paid on its fills. Invariant: a position equals the signed sum of its fills.

use std::collections::BTreeMap;

use crate::event::{Fill, FundingPayment, Side};
use crate::fixed::Fixed;
use crate::symbol::Symbol;

#[derive(Clone, Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Position {
    /// Positive long, negative short.
    pub qty: Fixed,
    pub avg_price: Fixed,
    pub open_trade: Option<OpenTrade>,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct OpenTrade {
    pub side: Side,
    pub entry_time_ns: i64,
    /// Quantity and notional of every fill that added to the position.
    pub entry_qty: Fixed,
    pub entry_notional: Fixed,
    /// Quantity and notional of every fill that reduced it.
    pub exit_qty: Fixed,
    pub exit_notional: Fixed,
    pub fees: Fixed,
    /// Funding received while open (negative: paid).
    pub funding: Fixed,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ClosedTrade {
    pub symbol: Symbol,
    pub side: Side,
    pub entry_time_ns: i64,
    pub exit_time_ns: i64,
    /// Volume-weighted prices of the entry and exit fills.
    pub entry_price: Fixed,
    pub exit_price: Fixed,
    pub qty: Fixed,
    /// Net of fees and funding.
    pub pnl: Fixed,
    pub fees: Fixed,
    /// Funding received while open (negative: paid).
    pub funding: Fixed,
}

#[derive(Clone, Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Portfolio {
    /// Quote-asset cash.
    pub cash: Fixed,
    pub positions: BTreeMap<Symbol, Position>,
    pub realized_pnl: Fixed,
    pub fees_paid: Fixed,
    /// Funding received over the session (negative: paid).
    pub funding: Fixed,
    pub closed_trades: Vec<ClosedTrade>,
}

impl Portfolio {
    pub fn new(cash: Fixed) -> Portfolio {
        Portfolio {
            cash,
            ..Portfolio::default()
        }
    }

    pub fn position(&self, symbol: &Symbol) -> Fixed {
        self.positions.get(symbol).map_or(Fixed::ZERO, |p| p.qty)
    }

    /// Cash plus every position marked at `mark(symbol)` (or its average price if unmarked).
    pub fn equity(&self, marks: &BTreeMap<Symbol, Fixed>) -> Fixed {
        self.equity_and_exposure(marks).0
    }

    /// [`Portfolio::equity`], and whether any position is open, in one pass.
    pub fn equity_and_exposure(&self, marks: &BTreeMap<Symbol, Fixed>) -> (Fixed, bool) {
        if let (1, Some((symbol, p))) = (self.positions.len(), self.positions.first_key_value()) {
            // One symbol traded (most runs, every bar): the same sum without a map search.
            if p.qty.is_zero() {
                return (self.cash, false);
            }
            let mark = match marks.first_key_value() {
                Some((s, m)) if s == symbol => *m,
                _ => marks.get(symbol).copied().unwrap_or(p.avg_price),
            };
            let value = p.qty.checked_mul(mark).unwrap_or(Fixed::MAX);
            return (self.cash + value, true);
        }
        let mut equity = self.cash;
        let mut exposed = false;
        for (symbol, p) in &self.positions {
            if p.qty.is_zero() {
                continue; // worth nothing at any mark
            }
            exposed = true;
            let mark = marks.get(symbol).copied().unwrap_or(p.avg_price);
            equity += p.qty.checked_mul(mark).unwrap_or(Fixed::MAX);
        }
        (equity, exposed)
    }

    /// A funding settlement: cash and the open trade's PnL move by `amount`.
    pub fn apply_funding(&mut self, payment: &FundingPayment) {
        self.cash += payment.amount;
        self.funding += payment.amount;
        if let Some(t) = self
            .positions
            .get_mut(&payment.symbol)
            .and_then(|p| p.open_trade.as_mut())
        {
            t.funding += payment.amount;
        }
    }

    pub fn apply_fill(&mut self, fill: &Fill) {
        let notional = fill.price.checked_mul(fill.qty).unwrap_or(Fixed::MAX);
        let signed_qty = match fill.side {
            Side::Buy => fill.qty,
            Side::Sell => -fill.qty,
        };
        match fill.side {
            Side::Buy => self.cash -= notional,
            Side::Sell => self.cash += notional,
        }
        self.cash -= fill.fee;
        self.fees_paid += fill.fee;

        let pos = self.positions.entry(fill.symbol).or_default();
        let before = pos.qty;
        let after = before + signed_qty;
        let adds = before.is_zero() || (before.is_negative() == signed_qty.is_negative());
        if adds {
            let trade = pos.open_trade.get_or_insert(OpenTrade {
                side: fill.side,
                entry_time_ns: fill.ts_event_ns,
                entry_qty: Fixed::ZERO,
                entry_notional: Fixed::ZERO,
                exit_qty: Fixed::ZERO,
                exit_notional: Fixed::ZERO,
                fees: Fixed::ZERO,
                funding: Fixed::ZERO,
            });
            trade.entry_qty += fill.qty;
            trade.entry_notional += notional;
            trade.fees += fill.fee;
            pos.avg_price = trade
                .entry_notional
                .checked_div(trade.entry_qty)
                .unwrap_or(fill.price);
            pos.qty = after;
            return;
        }
        // Reducing (and possibly crossing zero).
        let closing_qty = fill.qty.min(before.abs());
        let pnl_per_unit = match fill.side {
            Side::Sell => fill.price - pos.avg_price,
            Side::Buy => pos.avg_price - fill.price,
        };
        self.realized_pnl += pnl_per_unit.checked_mul(closing_qty).unwrap_or(Fixed::ZERO);
        let closing_fee = if closing_qty == fill.qty {
            fill.fee
        } else {
            fill.fee
                .checked_mul(closing_qty)
                .and_then(|f| f.checked_div(fill.qty))
                .unwrap_or(fill.fee)
        };
        if let Some(trade) = pos.open_trade.as_mut() {
            trade.exit_qty += closing_qty;
            trade.exit_notional += fill.price.checked_mul(closing_qty).unwrap_or(Fixed::MAX);
            trade.fees += closing_fee;
        }
        pos.qty = after;
        if after.is_zero() || after.is_negative() != before.is_negative() {
            if let Some(t) = pos.open_trade.take() {
                self.closed_trades.push(close_trade(fill, &t));
            }
            if !after.is_zero() {
                // Crossed zero: the remainder opens a new trade in the other direction.
                let rest = after.abs();
                let rest_fee = fill.fee - closing_fee;
                pos.avg_price = fill.price;
                pos.open_trade = Some(OpenTrade {
                    side: fill.side,
                    entry_time_ns: fill.ts_event_ns,
                    entry_qty: rest,
                    entry_notional: fill.price.checked_mul(rest).unwrap_or(Fixed::MAX),
                    exit_qty: Fixed::ZERO,
                    exit_notional: Fixed::ZERO,
                    fees: rest_fee,
                    funding: Fixed::ZERO,
                });
            } else {
                pos.avg_price = Fixed::ZERO;
            }
        }
    }
}

fn close_trade(fill: &Fill, t: &OpenTrade) -> ClosedTrade {
    let gross = match t.side {
        Side::Buy => t.exit_notional - t.entry_notional,
        Side::Sell => t.entry_notional - t.exit_notional,
    };
    // A trade closed by part of an entry's size (e.g. after partial exits) is valued on the
    // exited quantity: entry notional is pro-rated when exit_qty < entry_qty cannot happen
    // here, because a trade closes only when the position is back at zero.
    ClosedTrade {
        symbol: fill.symbol,
        side: t.side,
        entry_time_ns: t.entry_time_ns,
        exit_time_ns: fill.ts_event_ns,
        entry_price: t
            .entry_notional
            .checked_div(t.entry_qty)
            .unwrap_or(Fixed::ZERO),
        exit_price: t
            .exit_notional
            .checked_div(t.exit_qty)
            .unwrap_or(Fixed::ZERO),
        qty: t.exit_qty,
        pnl: gross - t.fees + t.funding,
        fees: t.fees,
        funding: t.funding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Liquidity;

    fn fill(side: Side, price: &str, qty: &str, fee: &str, ts: i64) -> Fill {
        Fill {
            client_id: 1,
            venue_order_id: 1,
            trade_id: 1,
            symbol: Symbol::new("BTCUSDT").unwrap(),
            side,
            price: Fixed::parse(price).unwrap(),
            qty: Fixed::parse(qty).unwrap(),
            fee: Fixed::parse(fee).unwrap(),
            liquidity: Liquidity::Taker,
            ts_event_ns: ts,
        }
    }

    #[test]
    fn round_trip_books_pnl_net_of_fees() {
        let mut p = Portfolio::new(Fixed::from_int(10_000));
        p.apply_fill(&fill(Side::Buy, "100", "10", "1", 1));
        assert_eq!(p.cash, Fixed::parse("8999").unwrap());
        p.apply_fill(&fill(Side::Sell, "110", "4", "0.44", 2));
        p.apply_fill(&fill(Side::Sell, "120", "6", "0.72", 3));
        // Gross: 4×10 + 6×20 = 160; fees 1 + 0.44 + 0.72 = 2.16.
        assert_eq!(p.closed_trades.len(), 1);
        let t = &p.closed_trades[0];
        assert_eq!(t.pnl, Fixed::parse("157.84").unwrap());
        assert_eq!(t.exit_price, Fixed::parse("116").unwrap());
        assert_eq!(p.cash, Fixed::parse("10157.84").unwrap());
        assert!(p.position(&t.symbol).is_zero());
    }

    #[test]
    fn crossing_zero_closes_and_reopens() {
        let mut p = Portfolio::new(Fixed::from_int(10_000));
        p.apply_fill(&fill(Side::Buy, "100", "1", "0", 1));
        p.apply_fill(&fill(Side::Sell, "90", "3", "0", 2));
        assert_eq!(p.closed_trades[0].pnl, Fixed::from_int(-10));
        let sym = Symbol::new("BTCUSDT").unwrap();
        assert_eq!(p.position(&sym), Fixed::from_int(-2));
        assert_eq!(p.positions[&sym].avg_price, Fixed::from_int(90));
    }
}
