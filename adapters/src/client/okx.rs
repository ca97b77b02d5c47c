//! The OKX v5 typed trading calls, for SPOT (`BTC-USDT`, trade mode `cash`) and perpetual
//! swaps (`BTC-USDT-SWAP`, cross margin, net position mode), told apart by the instrument id.
//! Sizes are OKX's own: base currency on SPOT, contracts on SWAP.
//!
//! Market and limit orders live at `/api/v5/trade/order`; stop and take-profit orders are algo
//! orders (`/api/v5/trade/order-algo`, client id `algoClOrdId`), so query, cancel and the
//! listings look in both families. OKX acknowledges a placement with ids only, so a placement
//! reads the order back ([`super::placement`]). A lost placement answer is reconciled by asking
//! for the client id before any resend: OKX refuses a repeated `clOrdId` (51016) only while
//! the first order is live, so a blind resend after a fill would trade twice.
//!
//! An order's fills come from `GET /api/v5/trade/fills` by `ordId` (the last 3 days, newest
//! first, 100 a page, paged by `billId`), or from `/fills-history` (3 months) when those do not
//! cover what the order filled. OKX reports a charged fee as a negative number; the codec turns
//! it into keel's positive-charged one. An algo order's fills are those of the orders it placed
//! when it fired (`ordIdList`, or the older `ordId`).
//!
//! OKX has no cancel-all for SPOT or SWAP: `cancel_all` lists the open orders and cancels them
//! in batches (20 orders, 10 algo orders a request). The dead-man switch is
//! `cancel-all-after`, which covers every order of the account whatever the symbol: a countdown
//! of 10 to 120 s, renewed by calling again; zero disarms it.

use std::time::Duration;

use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::Value;

use super::placement::{accepted, decode_failure};
use super::trading::{MAX_FILL_PAGES, OrderAck};
use super::{ClientError, Response, RestClient, describe};
use crate::model::{
    BalanceUpdate, FillEvent, Method, OrderEvent, OrderSpec, OrderSpecKind, OrderState,
    PositionUpdate, RestRequest, VenueError, VenueEvent,
};
use crate::okx::{self, OrderRef, TdMode};

/// OKX lists pending orders 100 a page.
const PAGE_ROWS: usize = 100;
/// Most pages one listing reads.
const MAX_PAGES: usize = 20;
/// Orders per `cancel-batch-orders` and per `cancel-algos` request.
const BATCH: usize = 20;
const ALGO_BATCH: usize = 10;
/// The algo `ordType` keel's stop and take-profit orders use.
const CONDITIONAL: &str = "conditional";

/// Stop and take-profit kinds are algo orders.
fn is_algo(spec: &OrderSpec) -> bool {
    !matches!(
        spec.kind,
        OrderSpecKind::Market | OrderSpecKind::Limit { .. }
    )
}

fn signed_get(path: &str, query: Vec<(String, String)>) -> RestRequest {
    RestRequest {
        method: Method::Get,
        path: path.into(),
        query,
        body: None,
        signed: true,
        weight: 1,
        retry_safe: true,
    }
}

/// `GET /api/v5/trade/order` or `/api/v5/trade/order-algo` by client id.
fn query_request(symbol: &Symbol, client_order_id: &str, algo: bool) -> RestRequest {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    if algo {
        let q = vec![pair("algoClOrdId", client_order_id)];
        signed_get("/api/v5/trade/order-algo", q)
    } else {
        let q = vec![
            pair("instId", symbol.as_str()),
            pair("clOrdId", client_order_id),
        ];
        signed_get("/api/v5/trade/order", q)
    }
}

impl RestClient {
    /// The trade mode of an instrument: `cash` for SPOT, `cross` for SWAP; other instrument
    /// types (futures, options) are refused unsent.
    fn okx_td_mode(&self, symbol: &Symbol, what: &str) -> Result<TdMode, ClientError> {
        let id = symbol.as_str();
        if id.ends_with("-SWAP") {
            return Ok(TdMode::Cross);
        }
        if id.matches('-').count() == 1 {
            return Ok(TdMode::Cash);
        }
        let error = VenueError::Other {
            code: "unsupported".into(),
            message: format!("{id} is neither an OKX SPOT pair nor a SWAP; keel trades those two"),
        };
        Err(self.venue_error(format!("{what} (not sent)"), None, error))
    }

    fn okx_not_sent(&self, what: &str, e: okx::EncodeError) -> ClientError {
        let error = VenueError::Other {
            code: "invalid-request".into(),
            message: e.to_string(),
        };
        self.venue_error(format!("{what} (not sent)"), None, error)
    }

    fn okx_events(&self, req: &RestRequest, r: &Response) -> Result<Vec<VenueEvent>, ClientError> {
        okx::decode(&r.body).map_err(|e| decode_failure(self, req, r, e.to_string()))
    }

    async fn okx_orders(&self, req: &RestRequest) -> Result<Vec<OrderEvent>, ClientError> {
        let r = self.send(req).await?;
        Ok(orders(self.okx_events(req, &r)?).collect())
    }

    /// Places `spec` (already checked against its instrument) under the rule of
    /// [`super::placement`].
    pub(super) async fn okx_place_order(&self, spec: &OrderSpec) -> Result<OrderAck, ClientError> {
        let td_mode = self.okx_td_mode(&spec.symbol, "place order")?;
        let req =
            okx::place_order(spec, td_mode).map_err(|e| self.okx_not_sent("place order", e))?;
        let algo = is_algo(spec);
        let find = async || {
            self.okx_query(&spec.symbol, &spec.client_order_id, algo)
                .await
        };
        let send = async || {
            let r = self.send(&req).await?;
            let (order_id, ts_ns) = acked(&r).ok_or_else(|| {
                decode_failure(self, &req, &r, "the answer names no order id".into())
            })?;
            let order = accepted(spec, &order_id, ts_ns);
            Ok((self.read_back(order, &find).await, Vec::new()))
        };
        self.place_reconciled(spec, send, &find).await
    }

    /// The order (or algo order) with `client_order_id`; `None` when OKX has none.
    async fn okx_query(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
        algo: bool,
    ) -> Result<Option<OrderEvent>, ClientError> {
        let req = query_request(symbol, client_order_id, algo);
        match self.okx_orders(&req).await {
            Ok(list) => Ok(list.into_iter().next()),
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Looks among orders, then algo orders.
    pub(super) async fn okx_query_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        for algo in [false, true] {
            if let Some(order) = self.okx_query(symbol, client_order_id, algo).await? {
                return Ok(Some(order));
            }
        }
        Ok(None)
    }

    /// Every fill of the order (or algo order) with `client_order_id` (see the module doc),
    /// checked by [`RestClient::order_fills`]'s rules.
    pub(super) async fn okx_order_fills(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Vec<FillEvent>, ClientError> {
        self.okx_td_mode(symbol, "order fills")?;
        let (order, ord_ids) = match self.okx_query(symbol, client_order_id, false).await? {
            Some(order) => {
                let ids = vec![order.venue_order_id.clone()];
                (order, ids)
            }
            None => match self.okx_algo_placed(symbol, client_order_id).await? {
                Some(found) => found,
                None => return Err(self.no_such_order(symbol, client_order_id)),
            },
        };
        let mut fills = Vec::new();
        for ord_id in &ord_ids {
            fills.extend(self.okx_fills(symbol, ord_id, false).await?);
        }
        let traded = fills.iter().fold(Fixed::ZERO, |sum, (_, f)| sum + f.qty);
        if traded < order.filled_qty {
            // Some fills are older than `/fills` reaches; a trade in both counts once.
            for ord_id in &ord_ids {
                fills.extend(self.okx_fills(symbol, ord_id, true).await?);
            }
        }
        // Bill ids rise with time: oldest first.
        fills.sort_by_key(|(bill, _)| *bill);
        let fills = fills.into_iter().map(|(_, f)| f).collect();
        self.checked_fills(symbol, client_order_id, &order, &ord_ids, fills)
    }

    /// The algo order with `client_order_id` and the orders it placed when it fired (none
    /// before); `None` when OKX has no such algo order.
    async fn okx_algo_placed(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<(OrderEvent, Vec<String>)>, ClientError> {
        let req = query_request(symbol, client_order_id, true);
        let r = match self.send(&req).await {
            Ok(r) => r,
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(order) = orders(self.okx_events(&req, &r)?).next() else {
            return Ok(None);
        };
        Ok(Some((order, placed_order_ids(&r.body))))
    }

    /// The fills of `ord_id` with their bill ids, from `/fills` or (`history`) from
    /// `/fills-history`, every page.
    async fn okx_fills(
        &self,
        symbol: &Symbol,
        ord_id: &str,
        history: bool,
    ) -> Result<Vec<(u64, FillEvent)>, ClientError> {
        let inst = symbol.as_str();
        let inst_type = if inst.ends_with("-SWAP") {
            "SWAP"
        } else {
            "SPOT"
        };
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_FILL_PAGES {
            let mut req = if history {
                let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
                let q = vec![pair("instType", inst_type), pair("instId", inst)];
                signed_get("/api/v5/trade/fills-history", q)
            } else {
                okx::fills(Some(inst_type), Some(inst))
            };
            req.query.push(("ordId".to_string(), ord_id.to_string()));
            let req = with_after(req, after.as_deref());
            let r = self.send(&req).await?;
            let bills = bill_ids(&r.body);
            let unreadable = |what: String| decode_failure(self, &req, &r, what);
            let page: Vec<FillEvent> = self
                .okx_events(&req, &r)?
                .into_iter()
                .filter_map(|e| match e {
                    VenueEvent::Fill(f) => Some(f),
                    _ => None,
                })
                .collect();
            for f in page {
                let Some(bill) = bills.iter().find(|(t, _)| *t == f.trade_id) else {
                    return Err(unreadable(format!("no billId for trade {}", f.trade_id)));
                };
                out.push((bill.1, f));
            }
            if bills.len() < PAGE_ROWS {
                return Ok(out);
            }
            after = bills.iter().map(|(_, b)| *b).min().map(|b| b.to_string());
        }
        Err(self.too_many_fill_pages(symbol, ord_id))
    }

    /// Cancels by client id, among orders then algo orders. OKX answers with ids only.
    pub(super) async fn okx_cancel_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        let order = OrderRef::Client(client_order_id);
        let regular = okx::cancel_order(symbol.as_str(), order);
        let e = match self.send(&regular).await {
            Ok(_) => return Ok(None),
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => e,
            Err(e) => return Err(e),
        };
        let Ok(algo) = okx::cancel_algos(&[(symbol.as_str(), order)]) else {
            return Err(e);
        };
        match self.send(&algo).await {
            Ok(_) => Ok(None),
            Err(algo_e) if matches!(algo_e.error, VenueError::OrderNotFound(_)) => Err(e),
            Err(algo_e) => Err(algo_e),
        }
    }

    /// Lists the open orders on `symbol` and cancels them in batches by OKX id. Returns the
    /// orders of the batches OKX canceled in full (a batch with an order that finished in the
    /// meantime is refused as a whole for that order; the others in it are canceled).
    pub(super) async fn okx_cancel_all(
        &self,
        symbol: &Symbol,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        let inst = symbol.as_str();
        let mut canceled = Vec::new();
        let open = self
            .okx_pages(|after| with_after(okx::orders_pending(None, Some(inst)), after))
            .await?;
        for chunk in open.chunks(BATCH) {
            let ids: Vec<(&str, OrderRef)> = chunk
                .iter()
                .map(|o| (inst, OrderRef::Venue(&o.venue_order_id)))
                .collect();
            let req = okx::cancel_batch(&ids).map_err(|e| self.okx_not_sent("cancel all", e))?;
            self.okx_batch(&req, chunk, &mut canceled).await?;
        }
        let algos = self
            .okx_pages(|after| {
                let req = okx::orders_algo_pending(CONDITIONAL, Some(inst));
                with_after(req, after)
            })
            .await?;
        for chunk in algos.chunks(ALGO_BATCH) {
            let ids: Vec<(&str, OrderRef)> = chunk
                .iter()
                .map(|o| (inst, OrderRef::Venue(&o.venue_order_id)))
                .collect();
            let req = okx::cancel_algos(&ids).map_err(|e| self.okx_not_sent("cancel all", e))?;
            self.okx_batch(&req, chunk, &mut canceled).await?;
        }
        Ok(canceled)
    }

    async fn okx_batch(
        &self,
        req: &RestRequest,
        chunk: &[OrderEvent],
        canceled: &mut Vec<OrderEvent>,
    ) -> Result<(), ClientError> {
        match self.send(req).await {
            Ok(_) => {
                canceled.extend(chunk.iter().cloned().map(|mut o| {
                    o.state = OrderState::Canceled;
                    o
                }));
                Ok(())
            }
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Open orders and open algo orders, on `symbol` or on every instrument.
    pub(super) async fn okx_open_orders(
        &self,
        symbol: Option<&Symbol>,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        let inst = symbol.map(Symbol::as_str);
        let mut out = self
            .okx_pages(|after| with_after(okx::orders_pending(None, inst), after))
            .await?;
        let algos = self
            .okx_pages(|after| with_after(okx::orders_algo_pending(CONDITIONAL, inst), after))
            .await?;
        out.extend(algos);
        Ok(out)
    }

    pub(super) async fn okx_balances(&self) -> Result<Vec<BalanceUpdate>, ClientError> {
        let req = okx::balance(None);
        let r = self.send(&req).await?;
        Ok(self
            .okx_events(&req, &r)?
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Balance(b) => Some(b),
                _ => None,
            })
            .collect())
    }

    pub(super) async fn okx_positions(&self) -> Result<Vec<PositionUpdate>, ClientError> {
        let req = okx::positions(None, None);
        let r = self.send(&req).await?;
        Ok(self
            .okx_events(&req, &r)?
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Position(p) => Some(p),
                _ => None,
            })
            .collect())
    }

    /// Arms `cancel-all-after` with `countdown` rounded up to whole seconds (10 to 120), or
    /// disarms it with zero. Covers every instrument.
    pub(super) async fn okx_cancel_all_after(
        &self,
        countdown: Duration,
    ) -> Result<(), ClientError> {
        let secs = countdown.as_secs() + u64::from(countdown.subsec_nanos() > 0);
        let secs = u32::try_from(secs).unwrap_or(u32::MAX);
        let req =
            okx::cancel_all_after(secs).map_err(|e| self.okx_not_sent("dead-man switch", e))?;
        self.send(&req).await.map(|_| ())
    }

    /// The orders of every page of a pending-orders listing: a full page asks for the next
    /// with `after` = the last order's id (OKX pages newest first).
    async fn okx_pages(
        &self,
        page: impl Fn(Option<&str>) -> RestRequest,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        let mut out: Vec<OrderEvent> = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let list = self.okx_orders(&page(after.as_deref())).await?;
            let full = list.len() >= PAGE_ROWS;
            after = list.last().map(|o| o.venue_order_id.clone());
            out.extend(list);
            if !full {
                return Ok(out);
            }
        }
        let error = VenueError::Other {
            code: "too-many-pages".into(),
            message: format!("the listing did not end within {MAX_PAGES} pages"),
        };
        Err(self.venue_error(describe(&page(after.as_deref())), None, error))
    }
}

fn with_after(mut req: RestRequest, after: Option<&str>) -> RestRequest {
    if let Some(id) = after {
        req.query.push(("after".into(), id.into()));
    }
    req
}

/// The id a placement acknowledgement gives (`ordId`, or `algoId` for an algo order) and its
/// `ts` in ns.
fn acked(r: &Response) -> Option<(String, i64)> {
    let v: Value = serde_json::from_str(&r.body).ok()?;
    let row = v.get("data")?.get(0)?;
    let id = ["ordId", "algoId"]
        .iter()
        .filter_map(|k| row.get(*k).and_then(Value::as_str))
        .find(|id| !id.is_empty())?;
    let ts_ms = row
        .get("ts")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<i64>().ok())
        .or(r.server_time_ms)
        .unwrap_or(0);
    Some((id.to_string(), ts_ms.saturating_mul(1_000_000)))
}

/// `(tradeId, billId)` of each row of a fills answer.
fn bill_ids(body: &str) -> Vec<(String, u64)> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let rows = v.get("data").and_then(Value::as_array);
    rows.into_iter()
        .flatten()
        .filter_map(|row| {
            let trade = row.get("tradeId")?.as_str()?;
            let bill = row.get("billId")?.as_str()?.parse().ok()?;
            Some((trade.to_string(), bill))
        })
        .collect()
}

/// The ids of the orders an algo order placed: `ordIdList`, else the older `ordId`.
fn placed_order_ids(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let Some(row) = v.get("data").and_then(|d| d.get(0)) else {
        return Vec::new();
    };
    let listed: Vec<String> = row
        .get("ordIdList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    row.get("ordId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(|id| vec![id.to_string()])
        .unwrap_or_default()
}

fn orders(events: Vec<VenueEvent>) -> impl Iterator<Item = OrderEvent> {
    events.into_iter().filter_map(|e| match e {
        VenueEvent::Order(o) => Some(o),
        _ => None,
    })
}
