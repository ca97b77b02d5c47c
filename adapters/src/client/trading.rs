//! Typed trading calls on a [`RestClient`]: place, cancel, query, list, balances, positions and
//! the dead-man switch, answered in the normalized vocabulary of [`crate::model`].
//!
//! Implemented for Binance spot and Binance USD-M (where stop and take-profit orders go through
//! the Algo Order API, and cancel, query and listing cover both families) and Kraken spot
//! (`client::kraken`), Bybit v5 spot or linear ([`super::bybit`]) and OKX v5 SPOT and SWAP
//! ([`super::okx`]); the other venues answer `unsupported` without sending anything.
//!
//! [`RestClient::order_fills`] recovers every fill of one order (after a crash, the fills the
//! process missed) from the venue's own trade records, never from what keel saw: the order is
//! found by its client id first, then its trades are read by the venue's order id, oldest
//! first, with the venue's trade ids and fees (positive = charged). The result is checked: every
//! trade must belong to the order, and together they must cover the quantity the venue says
//! the order filled, or the call fails instead of returning a short list.
//!
//! Placing an order is the one call that is not simply retried. A placement whose answer is
//! lost (timeout, dropped connection, 5xx: `VenueError::UnknownOutcome`) may or may not have
//! created the order, and Binance refuses a repeated client order id only while the first
//! order is still open, so a blind resend could trade twice. [`RestClient::place_order`]
//! therefore asks the venue for the client order id first, and sends again only when the venue
//! answers that it has no such order; at most [`MAX_PLACEMENTS`] sends in all. An order without
//! a client id cannot be looked up, so its lost answer is returned as the error.
//!
//! When the client knows the instrument ([`RestClient::load_instruments`],
//! [`RestClient::set_instruments`]), an order is rounded and checked against its filters
//! ([`crate::rules::check_order`]) before anything is sent: a violation costs no request. A
//! market order's minimum notional is left to the venue, since no reference price is known here.

use std::time::Duration;

use keel_engine::symbol::Symbol;

use std::collections::BTreeSet;

use keel_engine::fixed::Fixed;

use super::binance::{self as bn, Market};
use super::{ClientError, Response, RestClient, describe};
use crate::model::Venue;
use crate::model::{
    BalanceUpdate, FillEvent, Instrument, OrderEvent, OrderSpec, OrderSpecKind, PositionUpdate,
    RestRequest, VenueError, VenueEvent,
};

/// Most times one placement is sent (the first send and the resends after the venue said it
/// had no such order).
pub const MAX_PLACEMENTS: u32 = 3;

/// Most pages [`RestClient::order_fills`] reads from one trade listing.
pub(super) const MAX_FILL_PAGES: usize = 20;

/// What the venue said about an order, from a placement, a query or a cancel.
pub type OrderStatusReport = OrderEvent;

/// A placed order.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderAck {
    /// The order as the venue reported it.
    pub order: OrderEvent,
    /// Fills the placement answer carried (spot `FULL` answers); empty otherwise, and empty
    /// when the order was found by a query after a lost answer: its fills then come from the
    /// private stream (or the venue's trade list).
    pub fills: Vec<FillEvent>,
    pub placement: Placement,
}

/// How a placement reached the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Answered on the first send.
    Sent,
    /// The answer to one of `sends` sends was lost; the venue had the order when asked by its
    /// client id, so it was not sent again.
    FoundAfterUnknownOutcome { sends: u32 },
    /// Earlier answers were lost and the venue said it had no such order, so the order was sent
    /// again; the last of `sends` sends was answered.
    Resent { sends: u32 },
}

impl RestClient {
    pub(super) fn venue_error(
        &self,
        request: String,
        status: Option<u16>,
        error: VenueError,
    ) -> ClientError {
        ClientError {
            venue: self.config.venue.name(),
            request,
            status,
            error,
            attempts: 0,
        }
    }

    /// The Binance market of this client, or `unsupported` for `what`.
    pub(super) fn market(&self, what: &str) -> Result<Market, ClientError> {
        bn::market(self.config.venue).ok_or_else(|| {
            let error = VenueError::Other {
                code: "unsupported".into(),
                message: format!(
                    "{what} is not implemented for {} yet",
                    self.config.venue.name()
                ),
            };
            self.venue_error(what.to_string(), None, error)
        })
    }

    fn built(
        &self,
        what: &str,
        built: Result<RestRequest, crate::binance::BuildError>,
    ) -> Result<RestRequest, ClientError> {
        built.map_err(|e| {
            let error = VenueError::Other {
                code: "invalid-request".into(),
                message: e.to_string(),
            };
            self.venue_error(format!("{what} (not sent)"), None, error)
        })
    }

    /// The events of a successful answer; an answer keel cannot read is an error naming it.
    fn events(
        &self,
        market: Market,
        req: &RestRequest,
        r: &Response,
    ) -> Result<Vec<VenueEvent>, ClientError> {
        bn::decode(market, &r.body).map_err(|e| {
            let error = VenueError::Other {
                code: "decode".into(),
                message: e.to_string(),
            };
            ClientError {
                attempts: r.attempts,
                ..self.venue_error(describe(req), Some(r.status), error)
            }
        })
    }

    async fn send_for_events(
        &self,
        market: Market,
        req: &RestRequest,
    ) -> Result<Vec<VenueEvent>, ClientError> {
        let r = self.send(req).await?;
        self.events(market, req, &r)
    }

    /// Replaces the instruments orders are checked against.
    pub fn set_instruments(&self, instruments: impl IntoIterator<Item = Instrument>) {
        let mut map = super::lock(&self.instruments);
        map.clear();
        map.extend(instruments.into_iter().map(|i| (i.symbol, i)));
    }

    /// The trading rules known for `symbol`.
    pub fn instrument(&self, symbol: &Symbol) -> Option<Instrument> {
        super::lock(&self.instruments).get(symbol).cloned()
    }

    /// Reads the venue's exchangeInfo and keeps its instruments for the pre-send checks.
    pub async fn load_instruments(&self) -> Result<Vec<Instrument>, ClientError> {
        let venue = self.config.venue;
        if !matches!(venue, Venue::BinanceSpot | Venue::BinanceUsdm) {
            // Bybit: the configured category; OKX: spot and perpetual swaps; Kraken: all pairs.
            let requests = match venue {
                Venue::Bybit => vec![crate::bybit::instruments_info(
                    self.config.bybit_category,
                    None,
                    None,
                )],
                Venue::Okx => vec![
                    crate::okx::instruments("SPOT", None),
                    crate::okx::instruments("SWAP", None),
                ],
                _ => vec![crate::kraken::asset_pairs(&[])],
            };
            let mut list = Vec::new();
            for req in requests {
                let r = self.send(&req).await?;
                let parsed = match venue {
                    Venue::Bybit => crate::bybit::parse_instruments(&r.body),
                    Venue::Okx => crate::okx::parse_instruments(&r.body),
                    _ => crate::kraken::parse_asset_pairs(&r.body),
                };
                let parsed = parsed.map_err(|e| {
                    let error = VenueError::Other {
                        code: "decode".into(),
                        message: e.to_string(),
                    };
                    self.venue_error(describe(&req), Some(r.status), error)
                })?;
                list.extend(parsed);
            }
            self.set_instruments(list.clone());
            return Ok(list);
        }
        let market = self.market("exchangeInfo")?;
        let req = bn::exchange_info(market);
        let r = self.send(&req).await?;
        let list = crate::binance::parse_exchange_info(&r.body).map_err(|e| {
            let error = VenueError::Other {
                code: "decode".into(),
                message: e.to_string(),
            };
            self.venue_error(describe(&req), Some(r.status), error)
        })?;
        self.set_instruments(list.clone());
        Ok(list)
    }

    /// `spec` rounded to its instrument's tick and lot and checked against its filters, when
    /// the instrument is known; `spec` itself otherwise.
    fn check_rules(&self, spec: &OrderSpec) -> Result<OrderSpec, ClientError> {
        let Some(mut instrument) = self.instrument(&spec.symbol) else {
            return Ok(spec.clone());
        };
        if spec.kind == OrderSpecKind::Market {
            instrument.min_notional = keel_engine::fixed::Fixed::ZERO;
        }
        crate::rules::check_order(&instrument, spec, None).map_err(|error| {
            let what = format!(
                "place order {} {} (not sent)",
                spec.symbol, spec.client_order_id
            );
            self.venue_error(what, None, error)
        })
    }

    /// Places `spec` and returns the venue's view of it. See the module doc for what happens
    /// when the answer is lost; rate limits and timestamp refusals are retried by `send`,
    /// since the venue ran nothing.
    pub async fn place_order(&self, spec: &OrderSpec) -> Result<OrderAck, ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return self.kraken_place_order(&self.check_rules(spec)?).await;
        }
        match self.config.venue {
            crate::model::Venue::Bybit => {
                return self.bybit_place_order(&self.check_rules(spec)?).await;
            }
            crate::model::Venue::Okx => {
                return self.okx_place_order(&self.check_rules(spec)?).await;
            }
            _ => {}
        }
        let market = self.market("place order")?;
        let spec = self.check_rules(spec)?;
        let req = self.built("place order", bn::place(market, &spec))?;
        let algo = bn::is_algo(market, &spec);
        let mut sends = 0;
        loop {
            sends += 1;
            let e = match self.send(&req).await {
                Ok(r) => {
                    let (order, fills) = self.order_answer(market, &req, &r)?;
                    let placement = if sends == 1 {
                        Placement::Sent
                    } else {
                        Placement::Resent { sends }
                    };
                    return Ok(OrderAck {
                        order,
                        fills,
                        placement,
                    });
                }
                Err(e) => e,
            };
            let lost = matches!(e.error, VenueError::UnknownOutcome(_));
            // A resend refused as a duplicate: an earlier send did land after all.
            let landed = sends > 1 && e.error == VenueError::DuplicateClientOrderId;
            if !(lost || landed) || spec.client_order_id.is_empty() {
                return Err(e);
            }
            // Give a placement still in flight the time to land before asking for it.
            self.sleep(self.config.retry.base_delay).await;
            match self.find_placed(market, &spec, algo).await {
                Ok(Some(order)) => {
                    return Ok(OrderAck {
                        order,
                        fills: Vec::new(),
                        placement: Placement::FoundAfterUnknownOutcome { sends },
                    });
                }
                Ok(None) if lost && sends < MAX_PLACEMENTS => {}
                Ok(None) => return Err(e),
                Err(q) => return Err(unreconciled(e, &spec.client_order_id, &q)),
            }
        }
    }

    fn order_answer(
        &self,
        market: Market,
        req: &RestRequest,
        r: &Response,
    ) -> Result<(OrderEvent, Vec<FillEvent>), ClientError> {
        let mut order = None;
        let mut fills = Vec::new();
        for event in self.events(market, req, r)? {
            match event {
                VenueEvent::Order(o) if order.is_none() => order = Some(o),
                VenueEvent::Fill(f) => fills.push(f),
                _ => {}
            }
        }
        let order = order.ok_or_else(|| {
            let error = VenueError::Other {
                code: "decode".into(),
                message: "the answer carries no order".into(),
            };
            self.venue_error(describe(req), Some(r.status), error)
        })?;
        Ok((order, fills))
    }

    /// The order a lost placement may have created, asked for by its client id.
    async fn find_placed(
        &self,
        market: Market,
        spec: &OrderSpec,
        algo: bool,
    ) -> Result<Option<OrderEvent>, ClientError> {
        let req = self.built(
            "query order",
            bn::query(market, &spec.symbol, &spec.client_order_id, algo),
        )?;
        self.one_order(market, &req).await
    }

    /// The order an answer describes; `None` when the venue says there is no such order.
    async fn one_order(
        &self,
        market: Market,
        req: &RestRequest,
    ) -> Result<Option<OrderEvent>, ClientError> {
        match self.send(req).await {
            Ok(r) => Ok(Some(self.order_answer(market, req, &r)?.0)),
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The venue's view of the order with `client_order_id` (on USD-M a regular order, else a
    /// conditional one); `None` when the venue has none.
    pub async fn query_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderStatusReport>, ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return self.kraken_query_order(symbol, client_order_id).await;
        }
        match self.config.venue {
            crate::model::Venue::Bybit => {
                return self.bybit_query_order(symbol, client_order_id).await;
            }
            crate::model::Venue::Okx => return self.okx_query_order(symbol, client_order_id).await,
            _ => {}
        }
        let market = self.market("query order")?;
        for &algo in families(market) {
            let req = self.built(
                "query order",
                bn::query(market, symbol, client_order_id, algo),
            )?;
            if let Some(order) = self.one_order(market, &req).await? {
                return Ok(Some(order));
            }
        }
        Ok(None)
    }

    /// Every fill (execution) of the order with `client_order_id` on `symbol`, oldest first, as
    /// the venue recorded them: its trade ids, prices, quantities, fees (positive = charged) and
    /// fee assets. An order without fills gives an empty list; one the venue does not know is
    /// `VenueError::OrderNotFound`. See the module doc for the checks; the venues' endpoints:
    /// - Binance: the order by `origClientOrderId`, then spot `GET /api/v3/myTrades` or USD-M
    ///   `GET /fapi/v1/userTrades` by `orderId`. A USD-M conditional (algo) order's fills are
    ///   those of the order it became when triggered (`actualOrderId`); none before that.
    /// - Bybit: the order by `orderLinkId`, then `GET /v5/execution/list` by `orderLinkId`.
    /// - OKX: the order by `clOrdId`, then `GET /api/v5/trade/fills` by `ordId` (the last 3
    ///   days), or `/fills-history` (3 months) when that does not cover the order's fills. An
    ///   algo order's fills are those of the orders it placed (`ordIdList`).
    /// - Kraken: the order by `cl_ord_id`, then `QueryOrders` with `trades=true` for its trade
    ///   txids and `QueryTrades` for them. Kraken states fees in the quote currency without
    ///   naming it: `fee_asset` is the quote asset of the client's instrument for `symbol` when
    ///   it has one ([`RestClient::set_instruments`]), else empty.
    pub async fn order_fills(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Vec<FillEvent>, ClientError> {
        match self.config.venue {
            Venue::Kraken => return self.kraken_order_fills(symbol, client_order_id).await,
            Venue::Bybit => return self.bybit_order_fills(symbol, client_order_id).await,
            Venue::Okx => return self.okx_order_fills(symbol, client_order_id).await,
            Venue::BinanceSpot | Venue::BinanceUsdm => {}
        }
        let market = self.market("order fills")?;
        let req = self.built(
            "order fills",
            bn::query(market, symbol, client_order_id, false),
        )?;
        let (order, traded_as) = match self.one_order(market, &req).await? {
            Some(order) => {
                let id = order.venue_order_id.clone();
                (order, Some(id))
            }
            None if market == Market::Usdm => {
                self.binance_triggered(symbol, client_order_id).await?
            }
            None => return Err(self.no_such_order(symbol, client_order_id)),
        };
        let Some(order_id) = traded_as else {
            // A conditional order that has not fired has traded nothing.
            return self.checked_fills(symbol, client_order_id, &order, &[], Vec::new());
        };
        let fills = self.binance_trades(market, symbol, &order_id).await?;
        self.checked_fills(symbol, client_order_id, &order, &[order_id], fills)
    }

    /// The USD-M conditional order with `client_order_id` and the id of the order it became
    /// when it fired (`None` before).
    async fn binance_triggered(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<(OrderEvent, Option<String>), ClientError> {
        let market = Market::Usdm;
        let req = self.built(
            "order fills",
            bn::query(market, symbol, client_order_id, true),
        )?;
        let r = match self.send(&req).await {
            Ok(r) => r,
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => {
                return Err(self.no_such_order(symbol, client_order_id));
            }
            Err(e) => return Err(e),
        };
        let (order, _) = self.order_answer(market, &req, &r)?;
        Ok((order, bn::actual_order_id(&r.body)))
    }

    /// Every trade of `order_id`, ascending by trade id, a page of [`bn::TRADES_PAGE`] at a
    /// time (a full page asks for the trades after its last).
    async fn binance_trades(
        &self,
        market: Market,
        symbol: &Symbol,
        order_id: &str,
    ) -> Result<Vec<FillEvent>, ClientError> {
        let mut out = Vec::new();
        let mut from_id = None;
        for _ in 0..MAX_FILL_PAGES {
            let req = bn::order_trades(market, symbol, order_id, from_id);
            let mut page: Vec<(u64, FillEvent)> = Vec::new();
            for event in self.send_for_events(market, &req).await? {
                let VenueEvent::Fill(f) = event else { continue };
                let Ok(id) = f.trade_id.parse::<u64>() else {
                    let error = VenueError::Other {
                        code: "decode".into(),
                        message: format!("trade id {:?} is not a number", f.trade_id),
                    };
                    return Err(self.venue_error(describe(&req), None, error));
                };
                page.push((id, f));
            }
            page.sort_by_key(|(id, _)| *id);
            let full = page.len() >= bn::TRADES_PAGE;
            from_id = page.last().map(|(id, _)| id + 1);
            out.extend(page.into_iter().map(|(_, f)| f));
            if !full {
                return Ok(out);
            }
        }
        Err(self.too_many_fill_pages(symbol, order_id))
    }

    /// "No such order" for [`RestClient::order_fills`].
    pub(super) fn no_such_order(&self, symbol: &Symbol, client_order_id: &str) -> ClientError {
        let error = VenueError::OrderNotFound(format!(
            "{client_order_id} (the venue has no order with this client order id on {symbol})"
        ));
        self.venue_error(fills_request(symbol, client_order_id), None, error)
    }

    pub(super) fn too_many_fill_pages(&self, symbol: &Symbol, order_id: &str) -> ClientError {
        let error = VenueError::Other {
            code: "too-many-pages".into(),
            message: format!(
                "the trades of order {order_id} did not end within {MAX_FILL_PAGES} pages"
            ),
        };
        self.venue_error(
            format!("order fills {symbol} (order {order_id})"),
            None,
            error,
        )
    }

    /// `fills` of `order` as [`RestClient::order_fills`] returns them: each must be a trade of
    /// one of `venue_order_ids` (a trade listed twice, across pages, counts once); they carry
    /// keel's client id and `symbol`, come oldest first (ties in the order given), and must add
    /// up to at least the quantity the venue says the order filled.
    pub(super) fn checked_fills(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
        order: &OrderEvent,
        venue_order_ids: &[String],
        fills: Vec<FillEvent>,
    ) -> Result<Vec<FillEvent>, ClientError> {
        let refuse = |code: &str, message: String| {
            let error = VenueError::Other {
                code: code.into(),
                message,
            };
            self.venue_error(fills_request(symbol, client_order_id), None, error)
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(fills.len());
        for mut f in fills {
            if !venue_order_ids.contains(&f.venue_order_id) {
                let message = format!(
                    "the venue listed trade {} of order {} among the trades of order {}",
                    f.trade_id,
                    f.venue_order_id,
                    venue_order_ids.join(", ")
                );
                return Err(refuse("foreign-trade", message));
            }
            if !seen.insert(f.trade_id.clone()) {
                continue;
            }
            f.symbol = *symbol;
            f.client_order_id = client_order_id.to_string();
            out.push(f);
        }
        out.sort_by_key(|f| f.ts_event_ns);
        let traded = out.iter().fold(Fixed::ZERO, |sum, f| sum + f.qty);
        if traded < order.filled_qty {
            let message = format!(
                "the venue's trades of order {} add up to {traded}, but it says the order filled \
                 {}; some trades are missing from its trade list (too old for it?)",
                order.venue_order_id, order.filled_qty
            );
            return Err(refuse("incomplete-fills", message));
        }
        Ok(out)
    }

    /// Cancels the open order with `client_order_id`. Returns the canceled order when the venue
    /// describes it (spot, USD-M regular orders; not USD-M conditional orders). An order the
    /// venue does not know, or that is already done, is `VenueError::OrderNotFound`.
    pub async fn cancel_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return self.kraken_cancel_order(client_order_id).await;
        }
        match self.config.venue {
            crate::model::Venue::Bybit => {
                return self.bybit_cancel_order(symbol, client_order_id).await;
            }
            crate::model::Venue::Okx => {
                return self.okx_cancel_order(symbol, client_order_id).await;
            }
            _ => {}
        }
        let market = self.market("cancel order")?;
        let mut last = None;
        for &algo in families(market) {
            let req = self.built(
                "cancel order",
                bn::cancel(market, symbol, client_order_id, algo),
            )?;
            match self.send(&req).await {
                Ok(r) => {
                    let events = self.events(market, &req, &r)?;
                    return Ok(events.into_iter().find_map(|e| match e {
                        VenueEvent::Order(o) => Some(o),
                        _ => None,
                    }));
                }
                Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            let error = VenueError::OrderNotFound(client_order_id.to_string());
            self.venue_error("cancel order".into(), None, error)
        }))
    }

    /// Cancels every open order on `symbol` (on USD-M conditional orders too). Returns the
    /// canceled orders where the venue lists them (spot); having none open is not an error.
    pub async fn cancel_all(&self, symbol: &Symbol) -> Result<Vec<OrderEvent>, ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return self.kraken_cancel_all(symbol).await;
        }
        match self.config.venue {
            crate::model::Venue::Bybit => return self.bybit_cancel_all(symbol).await,
            crate::model::Venue::Okx => return self.okx_cancel_all(symbol).await,
            _ => {}
        }
        let market = self.market("cancel all")?;
        let mut out = Vec::new();
        for req in bn::cancel_all(market, symbol) {
            match self.send_for_events(market, &req).await {
                Ok(events) => out.extend(orders(events)),
                // Spot answers "Unknown order sent." when nothing is open.
                Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The open orders on `symbol` (all symbols when `None`), conditional ones included.
    pub async fn open_orders(
        &self,
        symbol: Option<&Symbol>,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return self.kraken_open_orders(symbol).await;
        }
        match self.config.venue {
            crate::model::Venue::Bybit => return self.bybit_open_orders(symbol).await,
            crate::model::Venue::Okx => return self.okx_open_orders(symbol).await,
            _ => {}
        }
        let market = self.market("open orders")?;
        let mut out = Vec::new();
        for req in bn::open_orders(market, symbol) {
            out.extend(orders(self.send_for_events(market, &req).await?));
        }
        Ok(out)
    }

    /// The account's balances (spot: free and locked per asset; USD-M: available and the rest
    /// of the wallet per margin asset).
    pub async fn balances(&self) -> Result<Vec<BalanceUpdate>, ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return self.kraken_balances().await;
        }
        match self.config.venue {
            crate::model::Venue::Bybit => return self.bybit_balances().await,
            crate::model::Venue::Okx => return self.okx_balances().await,
            _ => {}
        }
        let market = self.market("balances")?;
        let events = self.send_for_events(market, &bn::balances(market)).await?;
        Ok(events
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Balance(b) => Some(b),
                _ => None,
            })
            .collect())
    }

    /// The open positions (USD-M; spot has none and answers `unsupported`).
    pub async fn positions(&self) -> Result<Vec<PositionUpdate>, ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return Err(self.kraken_positions());
        }
        match self.config.venue {
            crate::model::Venue::Bybit => return self.bybit_positions().await,
            crate::model::Venue::Okx => return self.okx_positions().await,
            _ => {}
        }
        let market = self.market("positions")?;
        let Some(req) = bn::positions(market) else {
            let error = VenueError::Other {
                code: "unsupported".into(),
                message: "a spot account has balances, not positions".into(),
            };
            return Err(self.venue_error("positions".into(), None, error));
        };
        let events = self.send_for_events(market, &req).await?;
        Ok(events
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Position(p) => Some(p),
                _ => None,
            })
            .collect())
    }

    /// The dead-man switch (USD-M `countdownCancelAll`): every open order on `symbol` is
    /// canceled unless this is called again within `countdown`; zero disarms it. Binance counts
    /// in ms; keep calling at a fraction of the countdown. Kraken's switch is account-wide and
    /// counts whole seconds, rounded up (`client::kraken`); so is OKX's (10 to 120 s,
    /// `client::okx`). Bybit's only sets the disconnect-cancel-all window of the private stream
    /// and cannot be disarmed (`client::bybit`).
    pub async fn cancel_all_after(
        &self,
        symbol: &Symbol,
        countdown: Duration,
    ) -> Result<(), ClientError> {
        if self.config.venue == crate::model::Venue::Kraken {
            return self.kraken_cancel_all_after(countdown).await;
        }
        match self.config.venue {
            crate::model::Venue::Bybit => return self.bybit_cancel_all_after(countdown).await,
            crate::model::Venue::Okx => return self.okx_cancel_all_after(countdown).await,
            _ => {}
        }
        let market = self.market("dead-man switch")?;
        let ms = u64::try_from(countdown.as_millis()).unwrap_or(u64::MAX);
        let Some(req) = bn::dead_man_switch(market, symbol, ms) else {
            let error = VenueError::Other {
                code: "unsupported".into(),
                message: "Binance spot has no dead-man switch".into(),
            };
            return Err(self.venue_error("dead-man switch".into(), None, error));
        };
        self.send(&req).await.map(|_| ())
    }
}

/// How an [`RestClient::order_fills`] error names the call.
fn fills_request(symbol: &Symbol, client_order_id: &str) -> String {
    format!("order fills {symbol} {client_order_id}")
}

/// The order families to look in: USD-M regular, then conditional (algo) orders.
fn families(market: Market) -> &'static [bool] {
    match market {
        Market::Spot => &[false],
        Market::Usdm => &[false, true],
    }
}

fn orders(events: Vec<VenueEvent>) -> impl Iterator<Item = OrderEvent> {
    events.into_iter().filter_map(|e| match e {
        VenueEvent::Order(o) => Some(o),
        _ => None,
    })
}

/// A lost placement that could not be looked up: still an unknown outcome, now saying why.
pub(super) fn unreconciled(
    lost: ClientError,
    client_order_id: &str,
    query: &ClientError,
) -> ClientError {
    let detail = format!(
        "{}; asking the venue for client order id {client_order_id} failed too: {}",
        lost.error, query.error
    );
    ClientError {
        error: VenueError::UnknownOutcome(detail),
        ..lost
    }
}
