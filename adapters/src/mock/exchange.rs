//! The mock venue's exchange: API keys, instruments with their filters, balances (spot) or a
//! wallet and positions (USD-M), and one order book per symbol with a single settable price.
//!
//! Matching is deliberately simple and fully predictable, so a test can say what must happen:
//! - a market order fills at once, in full, at the symbol's price (taker fee);
//! - a limit order that crosses the price fills at once at the price (taker), IOC/FOK that do not
//!   cross expire, post-only that would cross is refused, the rest rests; a resting buy fills in
//!   full at its limit when the price falls to it or below (maker fee), a sell when it rises to
//!   it or above; with [`super::MockVenue::set_fill_qty_max`] a resting order fills at most that
//!   much per price move, so one order can fill in several parts;
//! - a stop (take-profit) order waits for its trigger, then becomes a market or limit order;
//! - fees are `price × qty × rate`; spot takes them from what the order receives, USD-M from the
//!   wallet in the quote asset.
//!
//! Every change is also written as an execution (`NEW`, `TRADE`, `CANCELED`, `EXPIRED`) with
//! the fields of Binance's `executionReport`, so a private-stream mock can replay them.
//! This module knows nothing about HTTP; [`super::binance`] speaks the wire format.

use std::collections::BTreeMap;
use std::time::Instant;

use keel_engine::event::Side;
use keel_engine::fixed::Fixed;

/// One tradable instrument of the mock, with the exchangeInfo filters it enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockInstrument {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    /// PRICE_FILTER `tickSize`: prices and triggers must be multiples.
    pub tick_size: Fixed,
    /// LOT_SIZE `stepSize`, `minQty`, `maxQty`.
    pub step_size: Fixed,
    pub min_qty: Fixed,
    pub max_qty: Fixed,
    /// Spot NOTIONAL `minNotional`, USD-M MIN_NOTIONAL `notional`; zero for none.
    pub min_notional: Fixed,
    /// The symbol's price: market orders fill at it, resting orders match against it.
    pub price: Fixed,
}

impl MockInstrument {
    /// `BTCUSDT`-style name split on a known quote asset, with Binance-like BTCUSDT filters
    /// (tick 0.01, step 0.00001, min notional 5) at `price`.
    /// OKX-style names (`BTC-USDT`, `BTC-USDT-SWAP`) split on their dashes.
    pub fn new(symbol: &str, price: Fixed) -> MockInstrument {
        let quote = ["USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "USD"]
            .into_iter()
            .find(|q| symbol.len() > q.len() && symbol.ends_with(q))
            .unwrap_or("USDT");
        let (base, quote) = match symbol.split('-').collect::<Vec<_>>().as_slice() {
            [base, quote] | [base, quote, _] => (base.to_string(), quote.to_string()),
            _ => (
                symbol[..symbol.len().saturating_sub(quote.len())].to_string(),
                quote.to_string(),
            ),
        };
        MockInstrument {
            symbol: symbol.to_string(),
            base,
            quote,
            tick_size: Fixed::from_raw(1_000_000),
            step_size: Fixed::from_raw(1_000),
            min_qty: Fixed::from_raw(1_000),
            max_qty: Fixed::from_int(9_000),
            min_notional: Fixed::from_int(5),
            price,
        }
    }
}

/// An API key the mock accepts, and the secret it verifies signatures with.
#[derive(Clone, PartialEq, Eq)]
pub struct MockApiKey {
    pub api_key: String,
    pub secret: String,
}

impl std::fmt::Debug for MockApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MockApiKey {{ api_key: {:?}, secret: <redacted> }}",
            self.api_key
        )
    }
}

/// The trading side of the mock.
#[derive(Clone, Debug)]
pub struct TradingConfig {
    /// A spot exchange (balances, funds locked by orders) rather than a margined one (wallet,
    /// positions). Binance and Kraken mocks follow their venue; Bybit and OKX mocks read it.
    pub spot: bool,
    pub keys: Vec<MockApiKey>,
    pub instruments: Vec<MockInstrument>,
    /// Spot: free balance per asset. USD-M: wallet balance per margin asset.
    pub balances: Vec<(String, Fixed)>,
    /// Fee rates (0.001 = 0.1 %).
    pub taker_fee: Fixed,
    pub maker_fee: Fixed,
    /// USD-M: initial margin is notional ÷ leverage.
    pub leverage: Fixed,
}

/// The key every mock accepts unless a test replaces [`TradingConfig::keys`].
pub const MOCK_API_KEY: &str = "mock-api-key";
/// Its secret.
pub const MOCK_SECRET: &str = "mock-api-secret";

impl TradingConfig {
    /// One instrument (`symbol` at `price`), the mock key, 100,000 of the quote asset (and 10 of
    /// the base on spot), Binance's default fees (spot 0.1 %; USD-M 0.05 % taker, 0.02 % maker)
    /// and 10× leverage.
    pub fn new(spot: bool, symbol: &str, price: Fixed) -> TradingConfig {
        let instrument = MockInstrument::new(symbol, price);
        let mut balances = vec![(instrument.quote.clone(), Fixed::from_int(100_000))];
        if spot {
            balances.push((instrument.base.clone(), Fixed::from_int(10)));
        }
        let (taker_fee, maker_fee) = if spot {
            (Fixed::from_raw(100_000), Fixed::from_raw(100_000))
        } else {
            (Fixed::from_raw(50_000), Fixed::from_raw(20_000))
        };
        TradingConfig {
            spot,
            keys: vec![MockApiKey {
                api_key: MOCK_API_KEY.into(),
                secret: MOCK_SECRET.into(),
            }],
            instruments: vec![instrument],
            balances,
            taker_fee,
            maker_fee,
            leverage: Fixed::from_int(10),
        }
    }
}

/// How an order behaves, from its venue type word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderKind {
    Market,
    Limit {
        post_only: bool,
    },
    /// Waits for `stop_price`; `take_profit` triggers in the profit direction; `limit` rests at
    /// `price` once triggered, else fills at market.
    Conditional {
        take_profit: bool,
        limit: bool,
    },
}

/// An order as the mock keeps it. Status words are Binance's (`NEW`, `PARTIALLY_FILLED`,
/// `FILLED`, `CANCELED`, `EXPIRED`; algo orders `NEW`, `FINISHED`, `CANCELED`, `EXPIRED`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockOrder {
    /// `orderId`, or `algoId` for an algo order.
    pub order_id: u64,
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    /// The venue's type word (`LIMIT`, `LIMIT_MAKER`, `STOP_LOSS`, `STOP_MARKET`, ...).
    pub order_type: String,
    pub kind: OrderKind,
    /// `GTC`, `IOC`, `FOK`, `GTX`, or empty.
    pub time_in_force: String,
    pub price: Fixed,
    pub stop_price: Fixed,
    pub qty: Fixed,
    pub executed_qty: Fixed,
    pub cum_quote: Fixed,
    pub status: String,
    pub reduce_only: bool,
    /// A USD-M conditional order held by the Algo Service.
    pub algo: bool,
    pub triggered: bool,
    /// The matching-engine order an algo order became when triggered.
    pub actual_order_id: Option<u64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Spot funds locked for the order (quote for buys, base for sells).
    reserved: Fixed,
}

impl MockOrder {
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "NEW" | "PARTIALLY_FILLED")
    }

    fn remaining(&self) -> Fixed {
        self.qty - self.executed_qty
    }

    /// Average fill price, zero before the first fill.
    pub fn avg_price(&self) -> Fixed {
        if self.executed_qty.is_zero() {
            Fixed::ZERO
        } else {
            self.cum_quote
                .checked_div(self.executed_qty)
                .unwrap_or(Fixed::ZERO)
        }
    }
}

/// One order update with the fields of Binance's `executionReport` (and USD-M
/// `ORDER_TRADE_UPDATE`), in the order they happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockExecution {
    /// `NEW`, `TRADE`, `CANCELED`, `EXPIRED`.
    pub execution_type: String,
    /// The order's status after this update (`X`).
    pub order_status: String,
    pub symbol: String,
    pub client_order_id: String,
    pub order_id: u64,
    pub side: Side,
    pub order_type: String,
    pub time_in_force: String,
    pub qty: Fixed,
    pub price: Fixed,
    pub stop_price: Fixed,
    pub reduce_only: bool,
    /// `l`, `L`: this execution's quantity and price (zero unless `TRADE`).
    pub last_qty: Fixed,
    pub last_price: Fixed,
    /// `z`, `Z`: cumulative filled quantity and quote.
    pub cum_qty: Fixed,
    pub cum_quote: Fixed,
    /// `n`, `N`: commission and its asset.
    pub commission: Fixed,
    pub commission_asset: String,
    /// `t`: trade id (`TRADE` only).
    pub trade_id: Option<u64>,
    /// `m`: the fill was on the maker side.
    pub is_maker: bool,
    /// USD-M `rp`: profit realized by this fill.
    pub realized_pnl: Fixed,
    /// `T`: transaction time (venue clock, ms).
    pub transaction_time_ms: i64,
    /// `O`: order creation time.
    pub order_time_ms: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MockBalance {
    pub free: Fixed,
    pub locked: Fixed,
}

/// A USD-M one-way position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MockPosition {
    /// Signed: positive long.
    pub qty: Fixed,
    pub entry_price: Fixed,
    pub updated_ms: i64,
}

/// Why the exchange refused something: the venue's HTTP status, code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub code: i64,
    pub msg: String,
}

pub(super) fn reject(code: i64, msg: impl Into<String>) -> Reject {
    Reject {
        status: 400,
        code,
        msg: msg.into(),
    }
}

/// A new order as the wire layer parsed it.
#[derive(Clone, Debug)]
pub(super) struct NewOrder {
    pub symbol: String,
    pub client_order_id: String,
    pub side: Side,
    pub order_type: String,
    pub kind: OrderKind,
    pub time_in_force: String,
    pub price: Fixed,
    pub stop_price: Fixed,
    pub qty: Fixed,
    pub reduce_only: bool,
    pub algo: bool,
}

/// The exchange state. Not thread-safe by itself; the mock keeps it behind a mutex.
pub struct Exchange {
    pub(super) spot: bool,
    pub(super) keys: Vec<MockApiKey>,
    pub(super) instruments: BTreeMap<String, MockInstrument>,
    pub(super) balances: BTreeMap<String, MockBalance>,
    pub(super) positions: BTreeMap<String, MockPosition>,
    pub(super) orders: Vec<MockOrder>,
    pub(super) executions: Vec<MockExecution>,
    /// USD-M dead-man switches: symbol → when its open orders are canceled.
    countdowns: BTreeMap<String, Instant>,
    taker_fee: Fixed,
    maker_fee: Fixed,
    pub(super) leverage: Fixed,
    next_order_id: u64,
    next_trade_id: u64,
    /// Most quantity a resting (maker) fill takes per price move; zero for no limit.
    fill_qty_max: Fixed,
}

fn mul(a: Fixed, b: Fixed) -> Fixed {
    a.checked_mul(b).unwrap_or(Fixed::MAX)
}

fn on_grid(value: Fixed, step: Fixed) -> bool {
    step.raw() <= 0 || value.floor_to(step) == value
}

impl Exchange {
    pub fn new(spot: bool, config: &TradingConfig) -> Exchange {
        let instruments = config
            .instruments
            .iter()
            .map(|i| (i.symbol.clone(), i.clone()))
            .collect();
        let balances = config
            .balances
            .iter()
            .map(|(asset, free)| {
                let b = MockBalance {
                    free: *free,
                    locked: Fixed::ZERO,
                };
                (asset.clone(), b)
            })
            .collect();
        Exchange {
            spot,
            keys: config.keys.clone(),
            instruments,
            balances,
            positions: BTreeMap::new(),
            orders: Vec::new(),
            executions: Vec::new(),
            countdowns: BTreeMap::new(),
            taker_fee: config.taker_fee,
            maker_fee: config.maker_fee,
            leverage: config.leverage,
            next_order_id: 1000,
            next_trade_id: 1,
            fill_qty_max: Fixed::ZERO,
        }
    }

    pub(super) fn secret_of(&self, api_key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.api_key == api_key)
            .map(|k| k.secret.as_str())
    }

    pub(super) fn instrument(&self, symbol: &str) -> Result<&MockInstrument, Reject> {
        self.instruments
            .get(symbol)
            .ok_or_else(|| reject(-1121, "Invalid symbol."))
    }

    /// Checks PRICE_FILTER, LOT_SIZE and the notional minimum with the venue's codes.
    pub(super) fn check_filters(&self, o: &NewOrder) -> Result<(), Reject> {
        let inst = self.instrument(&o.symbol)?;
        let spot = self.spot;
        let filter = |name: &str, usdm_code: i64, usdm_msg: &str| {
            if spot {
                reject(-1013, format!("Filter failure: {name}"))
            } else {
                reject(usdm_code, usdm_msg)
            }
        };
        for p in [o.price, o.stop_price] {
            if !p.is_zero() && !on_grid(p, inst.tick_size) {
                return Err(filter(
                    "PRICE_FILTER",
                    -4014,
                    "Price not increased by tick size.",
                ));
            }
        }
        if o.qty < inst.min_qty {
            return Err(filter(
                "LOT_SIZE",
                -4004,
                "Quantity less than min quantity.",
            ));
        }
        if !inst.max_qty.is_zero() && o.qty > inst.max_qty {
            return Err(filter(
                "LOT_SIZE",
                -4005,
                "Quantity greater than max quantity.",
            ));
        }
        if !on_grid(o.qty, inst.step_size) {
            return Err(filter("LOT_SIZE", -4023, "Qty not increased by step size."));
        }
        let reference = [o.price, o.stop_price, inst.price]
            .into_iter()
            .find(|p| !p.is_zero())
            .unwrap_or(Fixed::ZERO);
        let exempt = !spot && o.reduce_only;
        if !exempt && mul(reference, o.qty) < inst.min_notional {
            let msg = format!(
                "Order's notional must be no smaller than {} (unless you choose reduce only).",
                inst.min_notional
            );
            return Err(filter("NOTIONAL", -4164, &msg));
        }
        Ok(())
    }

    /// Validates and accepts `o`, matching it at once when it can. Returns its index.
    pub(super) fn place(&mut self, o: NewOrder, now_ms: i64) -> Result<usize, Reject> {
        self.check_filters(&o)?;
        let price = self.instrument(&o.symbol)?.price;
        if self
            .orders
            .iter()
            .any(|x| x.is_open() && x.symbol == o.symbol && x.client_order_id == o.client_order_id)
        {
            return Err(if self.spot {
                reject(-2010, "Duplicate order sent.")
            } else {
                reject(-4116, "ClientOrderId is duplicated.")
            });
        }
        self.check_immediate(&o, price)?;
        let reserved = self.check_funds(&o, price)?;
        self.next_order_id += 1;
        self.orders.push(MockOrder {
            order_id: self.next_order_id,
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            side: o.side,
            order_type: o.order_type,
            kind: o.kind,
            time_in_force: o.time_in_force,
            price: o.price,
            stop_price: o.stop_price,
            qty: o.qty,
            executed_qty: Fixed::ZERO,
            cum_quote: Fixed::ZERO,
            status: "NEW".into(),
            reduce_only: o.reduce_only,
            algo: o.algo,
            triggered: false,
            actual_order_id: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            reserved,
        });
        let idx = self.orders.len() - 1;
        if let Some(asset) = self.reserve_asset(idx) {
            let b = self.balances.entry(asset).or_default();
            b.free -= reserved;
            b.locked += reserved;
        }
        self.execution(idx, "NEW", None, now_ms);
        self.on_arrival(idx, price, now_ms);
        Ok(idx)
    }

    /// Post-only that would take, stops that would trigger at once, reduce-only that would not
    /// reduce: refused as the venue refuses them.
    fn check_immediate(&self, o: &NewOrder, price: Fixed) -> Result<(), Reject> {
        match o.kind {
            OrderKind::Limit { post_only: true } if crosses(o.side, o.price, price) => {
                Err(if self.spot {
                    reject(-2010, "Order would immediately match and take.")
                } else {
                    reject(
                        -5022,
                        "Due to the order could not be executed as maker, the Post Only order \
                         will be rejected. The order will not be recorded in the order history",
                    )
                })
            }
            OrderKind::Conditional { take_profit, .. }
                if triggers(o.side, take_profit, o.stop_price, price) =>
            {
                Err(if self.spot {
                    reject(-2010, "Stop price would trigger immediately.")
                } else {
                    reject(-2021, "Order would immediately trigger.")
                })
            }
            _ if o.reduce_only && !self.reduces(&o.symbol, o.side) => {
                Err(reject(-2022, "ReduceOnly Order is rejected."))
            }
            _ => Ok(()),
        }
    }

    fn reduces(&self, symbol: &str, side: Side) -> bool {
        let pos = self.positions.get(symbol).map_or(Fixed::ZERO, |p| p.qty);
        match side {
            Side::Buy => pos.is_negative(),
            Side::Sell => pos > Fixed::ZERO,
        }
    }

    /// Spot: the amount to lock (refusing what the balance cannot cover). USD-M: checks the
    /// initial margin against the available balance; nothing is locked.
    fn check_funds(&self, o: &NewOrder, price: Fixed) -> Result<Fixed, Reject> {
        let inst = self.instrument(&o.symbol)?;
        let at = [o.price, o.stop_price, price]
            .into_iter()
            .find(|p| !p.is_zero())
            .unwrap_or(price);
        if !self.spot {
            if o.reduce_only {
                return Ok(Fixed::ZERO);
            }
            let margin = mul(at, o.qty)
                .checked_div(self.leverage)
                .unwrap_or(Fixed::MAX);
            if margin > self.available(&inst.quote) {
                return Err(reject(-2019, "Margin is insufficient."));
            }
            return Ok(Fixed::ZERO);
        }
        let (asset, need) = match o.side {
            Side::Buy => (&inst.quote, mul(at, o.qty)),
            Side::Sell => (&inst.base, o.qty),
        };
        let free = self.balances.get(asset).map_or(Fixed::ZERO, |b| b.free);
        if need > free {
            return Err(reject(
                -2010,
                "Account has insufficient balance for requested action.",
            ));
        }
        Ok(if o.kind == OrderKind::Market {
            Fixed::ZERO
        } else {
            need
        })
    }

    /// USD-M available balance of `asset`: wallet + unrealized PnL − position margin − open
    /// order margin.
    pub(super) fn available(&self, asset: &str) -> Fixed {
        let wallet = self.balances.get(asset).map_or(Fixed::ZERO, |b| b.free);
        let mut used = Fixed::ZERO;
        let mut upnl = Fixed::ZERO;
        for (symbol, p) in &self.positions {
            let Some(inst) = self.instruments.get(symbol).filter(|i| i.quote == asset) else {
                continue;
            };
            used += mul(p.qty.abs(), p.entry_price);
            upnl += mul(inst.price - p.entry_price, p.qty);
        }
        for o in self.orders.iter().filter(|o| o.is_open() && !o.reduce_only) {
            if self
                .instruments
                .get(&o.symbol)
                .is_some_and(|i| i.quote == asset)
            {
                let at = if o.price.is_zero() {
                    o.stop_price
                } else {
                    o.price
                };
                used += mul(at, o.remaining());
            }
        }
        let margin = used.checked_div(self.leverage).unwrap_or(Fixed::MAX);
        wallet + upnl - margin
    }

    fn reserve_asset(&self, idx: usize) -> Option<String> {
        let o = &self.orders[idx];
        if !self.spot || o.reserved.is_zero() {
            return None;
        }
        let inst = self.instruments.get(&o.symbol)?;
        Some(match o.side {
            Side::Buy => inst.quote.clone(),
            Side::Sell => inst.base.clone(),
        })
    }

    /// What a new order does on arrival: market fills, a crossing limit takes, IOC/FOK that do
    /// not cross expire.
    fn on_arrival(&mut self, idx: usize, price: Fixed, now_ms: i64) {
        let o = &self.orders[idx];
        match o.kind {
            OrderKind::Market => self.fill(idx, price, false, now_ms),
            OrderKind::Limit { .. } if crosses(o.side, o.price, price) => {
                self.fill(idx, price, false, now_ms)
            }
            OrderKind::Limit { .. } if matches!(o.time_in_force.as_str(), "IOC" | "FOK") => {
                self.finish(idx, "EXPIRED", now_ms)
            }
            _ => {}
        }
    }

    /// Moves `symbol`'s price and matches every open order against it.
    pub fn set_price(&mut self, symbol: &str, price: Fixed, now_ms: i64) {
        if let Some(inst) = self.instruments.get_mut(symbol) {
            inst.price = price;
        }
        for idx in 0..self.orders.len() {
            let o = &self.orders[idx];
            if !o.is_open() || o.symbol != symbol {
                continue;
            }
            let (side, limit_price, triggered) = (o.side, o.price, o.triggered);
            match o.kind {
                OrderKind::Conditional { take_profit, limit } if !triggered => {
                    if !triggers(side, take_profit, o.stop_price, price) {
                        continue;
                    }
                    self.orders[idx].triggered = true;
                    if !limit || crosses(side, limit_price, price) {
                        self.fill(idx, price, false, now_ms);
                    }
                }
                OrderKind::Market => {}
                _ if crosses(side, limit_price, price) => self.fill(idx, limit_price, true, now_ms),
                _ => {}
            }
        }
    }

    /// Fills the rest of order `idx` at `price`; a maker fill of a regular order takes at most
    /// `fill_qty_max` when one is set.
    fn fill(&mut self, idx: usize, price: Fixed, maker: bool, now_ms: i64) {
        let mut qty = self.orders[idx].remaining();
        if maker && !self.orders[idx].algo && self.fill_qty_max > Fixed::ZERO {
            qty = qty.min(self.fill_qty_max);
        }
        if !self.spot && self.orders[idx].reduce_only {
            let o = &self.orders[idx];
            let pos = self.positions.get(&o.symbol).map_or(Fixed::ZERO, |p| p.qty);
            let reducible = if self.reduces(&o.symbol, o.side) {
                pos.abs()
            } else {
                Fixed::ZERO
            };
            qty = qty.min(reducible);
            if qty.is_zero() {
                self.finish(idx, "EXPIRED", now_ms);
                return;
            }
        }
        let rate = if maker {
            self.maker_fee
        } else {
            self.taker_fee
        };
        let (fee, fee_asset, pnl) = if self.spot {
            self.settle_spot(idx, qty, price, rate)
        } else {
            self.settle_usdm(idx, qty, price, rate, now_ms)
        };
        self.next_trade_id += 1;
        let trade_id = self.next_trade_id;
        let o = &mut self.orders[idx];
        o.executed_qty += qty;
        o.cum_quote += mul(qty, price);
        o.updated_ms = now_ms;
        o.status = if o.remaining().is_zero() || o.reduce_only {
            "FILLED".into()
        } else {
            "PARTIALLY_FILLED".into()
        };
        if o.algo {
            o.triggered = true;
            o.status = "FINISHED".into();
            o.actual_order_id = Some(trade_id + 1_000_000);
        }
        let trade = Trade {
            qty,
            price,
            fee,
            fee_asset,
            trade_id,
            maker,
            pnl,
        };
        self.execution(idx, "TRADE", Some(trade), now_ms);
    }

    /// Spot settlement: release the order's lock, pay, receive less the fee.
    fn settle_spot(
        &mut self,
        idx: usize,
        qty: Fixed,
        price: Fixed,
        rate: Fixed,
    ) -> (Fixed, String, Fixed) {
        let o = &self.orders[idx];
        let Some(inst) = self.instruments.get(&o.symbol).cloned() else {
            return (Fixed::ZERO, String::new(), Fixed::ZERO);
        };
        // A part fill releases its share of the lock; the last part releases the rest.
        let remaining = o.remaining();
        let release = if qty >= remaining {
            o.reserved
        } else {
            mul(o.reserved, qty)
                .checked_div(remaining)
                .unwrap_or(o.reserved)
                .min(o.reserved)
        };
        if let Some(asset) = self.reserve_asset(idx) {
            let b = self.balances.entry(asset).or_default();
            b.locked -= release;
            b.free += release;
        }
        self.orders[idx].reserved -= release;
        let quote_amt = mul(qty, price);
        let (pay, pay_amt, get, get_amt) = match self.orders[idx].side {
            Side::Buy => (&inst.quote, quote_amt, &inst.base, qty),
            Side::Sell => (&inst.base, qty, &inst.quote, quote_amt),
        };
        let fee = mul(get_amt, rate);
        self.balances.entry(pay.clone()).or_default().free -= pay_amt;
        self.balances.entry(get.clone()).or_default().free += get_amt - fee;
        (fee, get.clone(), Fixed::ZERO)
    }

    /// USD-M settlement: move the position, realize PnL on the reduced part, charge the fee.
    fn settle_usdm(
        &mut self,
        idx: usize,
        qty: Fixed,
        price: Fixed,
        rate: Fixed,
        now_ms: i64,
    ) -> (Fixed, String, Fixed) {
        let o = &self.orders[idx];
        let Some(inst) = self.instruments.get(&o.symbol).cloned() else {
            return (Fixed::ZERO, String::new(), Fixed::ZERO);
        };
        let delta = match o.side {
            Side::Buy => qty,
            Side::Sell => -qty,
        };
        let p = self.positions.entry(o.symbol.clone()).or_default();
        let mut pnl = Fixed::ZERO;
        if p.qty.is_zero() || p.qty.is_negative() == delta.is_negative() {
            let size = p.qty.abs() + qty;
            let cost = mul(p.qty.abs(), p.entry_price) + mul(qty, price);
            p.entry_price = cost.checked_div(size).unwrap_or(price);
            p.qty += delta;
        } else {
            let closed = qty.min(p.qty.abs());
            let direction = if p.qty.is_negative() {
                -Fixed::ONE
            } else {
                Fixed::ONE
            };
            pnl = mul(mul(price - p.entry_price, closed), direction);
            p.qty += delta;
            if p.qty.is_zero() {
                p.entry_price = Fixed::ZERO;
            } else if p.qty.is_negative() != direction.is_negative() {
                p.entry_price = price;
            }
        }
        p.updated_ms = now_ms;
        let fee = mul(mul(qty, price), rate);
        let wallet = self.balances.entry(inst.quote.clone()).or_default();
        wallet.free += pnl - fee;
        (fee, inst.quote, pnl)
    }

    /// Ends order `idx` with `status` (`CANCELED`, `EXPIRED`), releasing its lock.
    fn finish(&mut self, idx: usize, status: &str, now_ms: i64) {
        let release = self.orders[idx].reserved;
        if let Some(asset) = self.reserve_asset(idx) {
            let b = self.balances.entry(asset).or_default();
            b.locked -= release;
            b.free += release;
        }
        let o = &mut self.orders[idx];
        o.reserved = Fixed::ZERO;
        o.status = status.into();
        o.updated_ms = now_ms;
        self.execution(idx, status, None, now_ms);
    }

    /// The latest order on `symbol` with `client_order_id` (regular or algo).
    pub(super) fn find(
        &self,
        symbol: Option<&str>,
        client_order_id: &str,
        algo: bool,
    ) -> Option<usize> {
        self.orders.iter().rposition(|o| {
            o.algo == algo
                && o.client_order_id == client_order_id
                && symbol.is_none_or(|s| o.symbol == s)
        })
    }

    pub(super) fn find_id(&self, symbol: Option<&str>, order_id: u64, algo: bool) -> Option<usize> {
        self.orders.iter().position(|o| {
            o.algo == algo && o.order_id == order_id && symbol.is_none_or(|s| o.symbol == s)
        })
    }

    /// Cancels open order `idx`; an order already done is the venue's "Unknown order sent."
    pub(super) fn cancel(&mut self, idx: usize, now_ms: i64) -> Result<(), Reject> {
        if !self.orders[idx].is_open() {
            return Err(reject(-2011, "Unknown order sent."));
        }
        self.finish(idx, "CANCELED", now_ms);
        Ok(())
    }

    /// Cancels every open order on `symbol` of the given family; returns their indexes.
    pub(super) fn cancel_all(
        &mut self,
        symbol: &str,
        algo: Option<bool>,
        now_ms: i64,
    ) -> Vec<usize> {
        let open: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                let o = &self.orders[i];
                o.is_open() && o.symbol == symbol && algo.is_none_or(|a| o.algo == a)
            })
            .collect();
        for &i in &open {
            self.finish(i, "CANCELED", now_ms);
        }
        open
    }

    /// Arms (or with 0, disarms) the dead-man switch of `symbol`.
    pub(super) fn set_countdown(&mut self, symbol: &str, countdown_ms: u64) {
        if countdown_ms == 0 {
            self.countdowns.remove(symbol);
        } else {
            let at = Instant::now() + std::time::Duration::from_millis(countdown_ms);
            self.countdowns.insert(symbol.to_string(), at);
        }
    }

    /// Fires the dead-man switches whose time has come.
    pub fn expire_countdowns(&mut self, now_ms: i64) {
        let now = Instant::now();
        let due: Vec<String> = self
            .countdowns
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(s, _)| s.clone())
            .collect();
        for symbol in due {
            self.countdowns.remove(&symbol);
            self.cancel_all(&symbol, None, now_ms);
        }
    }

    fn execution(&mut self, idx: usize, kind: &str, trade: Option<Trade>, now_ms: i64) {
        let o = &self.orders[idx];
        let t = trade.unwrap_or_default();
        self.executions.push(MockExecution {
            execution_type: kind.into(),
            order_status: o.status.clone(),
            symbol: o.symbol.clone(),
            client_order_id: o.client_order_id.clone(),
            order_id: o.actual_order_id.unwrap_or(o.order_id),
            side: o.side,
            order_type: o.order_type.clone(),
            time_in_force: o.time_in_force.clone(),
            qty: o.qty,
            price: o.price,
            stop_price: o.stop_price,
            reduce_only: o.reduce_only,
            last_qty: t.qty,
            last_price: t.price,
            cum_qty: o.executed_qty,
            cum_quote: o.cum_quote,
            commission: t.fee,
            commission_asset: t.fee_asset,
            trade_id: (t.trade_id != 0).then_some(t.trade_id),
            is_maker: t.maker,
            realized_pnl: t.pnl,
            transaction_time_ms: now_ms,
            order_time_ms: o.created_ms,
        });
    }
}

#[derive(Default)]
struct Trade {
    qty: Fixed,
    price: Fixed,
    fee: Fixed,
    fee_asset: String,
    trade_id: u64,
    maker: bool,
    pnl: Fixed,
}

/// A limit at `limit` would trade against `price` now.
fn crosses(side: Side, limit: Fixed, price: Fixed) -> bool {
    match side {
        Side::Buy => limit >= price,
        Side::Sell => limit <= price,
    }
}

/// A stop (or take-profit) at `trigger` fires at `price`: a buy stop at or above the trigger, a
/// sell stop at or below; take-profits the other way.
fn triggers(side: Side, take_profit: bool, trigger: Fixed, price: Fixed) -> bool {
    let up = matches!(side, Side::Buy) != take_profit;
    if up {
        price >= trigger
    } else {
        price <= trigger
    }
}

impl super::MockVenue {
    /// Makes a resting order fill at most `qty` per price move ([`super::MockVenue::set_price`]),
    /// so one order fills in several parts; zero (the default) fills the rest at once. Fills
    /// on arrival (market orders, crossing limits) stay whole.
    pub fn set_fill_qty_max(&self, qty: Fixed) {
        super::lock(&self.shared.exchange).fill_qty_max = qty;
    }
}
