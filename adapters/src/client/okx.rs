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
//! OKX has no cancel-all for SPOT or SWAP: `cancel_all` lists the open orders and cancels them
//! in batches (20 orders, 10 algo orders a request). The dead-man switch is
//! `cancel-all-after`, which covers every order of the account whatever the symbol: a countdown
//! of 10 to 120 s, renewed by calling again; zero disarms it.

use std::time::Duration;

use keel_engine::symbol::Symbol;
use serde_json::Value;

use super::placement::{accepted, decode_failure};
use super::trading::OrderAck;
use super::{ClientError, Response, RestClient, describe};
use crate::model::{
    BalanceUpdate, Method, OrderEvent, OrderSpec, OrderSpecKind, OrderState, PositionUpdate,
    RestRequest, VenueError, VenueEvent,
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

fn orders(events: Vec<VenueEvent>) -> impl Iterator<Item = OrderEvent> {
    events.into_iter().filter_map(|e| match e {
        VenueEvent::Order(o) => Some(o),
        _ => None,
    })
}
