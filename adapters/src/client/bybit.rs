//! The Bybit v5 typed trading calls, for the one product category the client is set to
//! ([`super::ClientConfig::bybit_category`]: spot, or linear USDT perpetuals).
//!
//! Bybit acknowledges a placement, a cancel and a cancel-all with ids only; an order's state
//! comes from `GET /v5/order/realtime` (which also finds a recently closed order by its
//! `orderLinkId`) or from the private stream. So a placement reads the order back
//! ([`super::placement`]), and `cancel_order` and `cancel_all` return no orders. A lost
//! placement answer is reconciled by asking for the `orderLinkId` before any resend, as on
//! every venue (Bybit refuses a repeated `orderLinkId` even once the first order is done).
//!
//! Spot keeps conditional orders apart (`orderFilter=StopOrder`), so a spot cancel looks among
//! plain orders first, then conditional ones. Listings follow `nextPageCursor` for at most
//! [`MAX_PAGES`] pages.
//!
//! An order's fills come from `GET /v5/execution/list` by `orderLinkId`, which Bybit lists
//! newest first and, for executions in the same millisecond, in no set order; they are put
//! oldest first by `execTime`, then by what the order had left after each (`leavesQty`, which
//! only falls). Without a time range Bybit answers the last 7 days; an order whose fills are
//! older fails the completeness check of [`RestClient::order_fills`] rather than come back short.
//!
//! The dead-man switch is Bybit's disconnect-cancel-all (DCP), which is not a REST countdown:
//! the call sets the window (3 to 300 s) after which Bybit cancels every order of the
//! category's product once the private stream subscribed to the `dcp` topic has been gone that
//! long. It must be enabled for the account by Bybit, and it cannot be switched off through the
//! API, so a zero countdown is refused without sending anything.

use std::collections::BTreeMap;
use std::time::Duration;

use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::Value;

use super::placement::{accepted, decode_failure};
use super::trading::{MAX_FILL_PAGES, OrderAck};
use super::{ClientError, Response, RestClient, describe};
use crate::bybit::{self, Category, DcpProduct, OrderRef};
use crate::model::{
    BalanceUpdate, Control, FillEvent, OrderEvent, OrderSpec, PositionUpdate, RestRequest,
    VenueError, VenueEvent,
};

/// Most pages one listing reads: 1,000 orders (50 a page) or 4,000 positions (200 a page).
pub(super) const MAX_PAGES: usize = 20;

impl RestClient {
    fn bybit_category(&self) -> Category {
        self.config.bybit_category
    }

    /// A request the codec refused to build: nothing was sent.
    fn bybit_not_sent(&self, what: &str, detail: String) -> ClientError {
        let error = VenueError::Other {
            code: "invalid-request".into(),
            message: detail,
        };
        self.venue_error(format!("{what} (not sent)"), None, error)
    }

    fn bybit_events(
        &self,
        req: &RestRequest,
        r: &Response,
    ) -> Result<Vec<VenueEvent>, ClientError> {
        bybit::decode(&r.body).map_err(|e| decode_failure(self, req, r, e.to_string()))
    }

    /// Places `spec` (already checked against its instrument) under the rule of
    /// [`super::placement`].
    pub(super) async fn bybit_place_order(
        &self,
        spec: &OrderSpec,
    ) -> Result<OrderAck, ClientError> {
        let category = self.bybit_category();
        let mut req = bybit::place_order(category, spec)
            .map_err(|e| self.bybit_not_sent("place order", e))?;
        // The codec marks it retry-safe because Bybit refuses a repeated orderLinkId; keel
        // still asks for the order before any resend, so a lost answer is never resent blindly.
        req.retry_safe = false;
        let find = async || {
            self.bybit_query(category, &spec.symbol, &spec.client_order_id)
                .await
        };
        let send = async || {
            let r = self.send(&req).await?;
            let order_id = self.bybit_acked_id(&req, &r)?;
            let order = accepted(spec, &order_id, answer_time_ns(&r));
            Ok((self.read_back(order, &find).await, Vec::new()))
        };
        self.place_reconciled(spec, send, &find).await
    }

    /// The `orderId` of a placement acknowledgement.
    fn bybit_acked_id(&self, req: &RestRequest, r: &Response) -> Result<String, ClientError> {
        let acked = self
            .bybit_events(req, r)?
            .into_iter()
            .find_map(|e| match e {
                VenueEvent::Control(Control::Response {
                    ok: true, detail, ..
                }) if !detail.is_empty() => Some(detail),
                _ => None,
            });
        acked.ok_or_else(|| decode_failure(self, req, r, "the answer names no orderId".into()))
    }

    /// The order with `client_order_id`, open or recently closed; `None` when Bybit has none.
    async fn bybit_query(
        &self,
        category: Category,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        let req = bybit::query_order(category, symbol, OrderRef::Client(client_order_id));
        match self.send(&req).await {
            // Bybit answers an unknown id with an empty list.
            Ok(r) => Ok(orders(self.bybit_events(&req, &r)?).next()),
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn bybit_query_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        self.bybit_query(self.bybit_category(), symbol, client_order_id)
            .await
    }

    /// Every fill of the order with `client_order_id` (see the module doc), checked by
    /// [`RestClient::order_fills`]'s rules.
    pub(super) async fn bybit_order_fills(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Vec<FillEvent>, ClientError> {
        let category = self.bybit_category();
        let Some(order) = self.bybit_query(category, symbol, client_order_id).await? else {
            return Err(self.no_such_order(symbol, client_order_id));
        };
        let mut rows: Vec<(FillEvent, Fixed)> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_FILL_PAGES {
            let mut req = bybit::executions(category, Some(symbol), None, cursor.as_deref());
            req.query
                .push(("orderLinkId".to_string(), client_order_id.to_string()));
            let r = self.send(&req).await?;
            let leaves = leaves_by_exec_id(&r.body);
            for event in self.bybit_events(&req, &r)? {
                if let VenueEvent::Fill(f) = event {
                    let left = leaves.get(&f.trade_id).copied().unwrap_or(Fixed::ZERO);
                    rows.push((f, left));
                }
            }
            cursor = next_cursor(&r.body);
            if cursor.is_none() {
                rows.sort_by(|(a, a_left), (b, b_left)| {
                    a.ts_event_ns.cmp(&b.ts_event_ns).then(b_left.cmp(a_left))
                });
                let fills = rows.into_iter().map(|(f, _)| f).collect();
                let ids = [order.venue_order_id.clone()];
                return self.checked_fills(symbol, client_order_id, &order, &ids, fills);
            }
        }
        Err(self.too_many_fill_pages(symbol, &order.venue_order_id))
    }

    /// Cancels by `orderLinkId`; spot looks among plain orders, then conditional ones.
    pub(super) async fn bybit_cancel_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        let category = self.bybit_category();
        let families: &[bool] = match category {
            Category::Spot => &[false, true],
            Category::Linear => &[false],
        };
        let mut last = None;
        for &conditional in families {
            let order = OrderRef::Client(client_order_id);
            let req = bybit::cancel_order(category, symbol, order, conditional);
            match self.send(&req).await {
                Ok(_) => return Ok(None),
                Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            let error = VenueError::OrderNotFound(client_order_id.to_string());
            self.venue_error("cancel order".into(), None, error)
        }))
    }

    /// Cancels every open order on `symbol` (spot: plain and conditional ones).
    pub(super) async fn bybit_cancel_all(
        &self,
        symbol: &Symbol,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        for req in bybit::cancel_all(self.bybit_category(), Some(symbol)) {
            self.send(&req).await?;
        }
        Ok(Vec::new())
    }

    pub(super) async fn bybit_open_orders(
        &self,
        symbol: Option<&Symbol>,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        let category = self.bybit_category();
        let events = self
            .bybit_pages(|cursor| bybit::open_orders(category, symbol, cursor))
            .await?;
        Ok(orders(events).collect())
    }

    /// Every coin of the unified trading account.
    pub(super) async fn bybit_balances(&self) -> Result<Vec<BalanceUpdate>, ClientError> {
        let req = bybit::wallet_balance();
        let r = self.send(&req).await?;
        let events = self.bybit_events(&req, &r)?;
        Ok(events
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Balance(b) => Some(b),
                _ => None,
            })
            .collect())
    }

    /// The USDT-settled linear positions; a spot client has none and says so without sending.
    pub(super) async fn bybit_positions(&self) -> Result<Vec<PositionUpdate>, ClientError> {
        if self.bybit_category() == Category::Spot {
            let error = VenueError::Other {
                code: "unsupported".into(),
                message: "a Bybit spot client has balances, not positions".into(),
            };
            return Err(self.venue_error("positions".into(), None, error));
        }
        let events = self
            .bybit_pages(|cursor| bybit::positions(None, cursor))
            .await?;
        Ok(events
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Position(p) => Some(p),
                _ => None,
            })
            .collect())
    }

    /// Sets the disconnect-cancel-all window of the category's product to `countdown`, rounded
    /// up to whole seconds. See the module doc: zero cannot disarm it and is refused unsent.
    pub(super) async fn bybit_cancel_all_after(
        &self,
        countdown: Duration,
    ) -> Result<(), ClientError> {
        if countdown.is_zero() {
            let error = VenueError::Other {
                code: "unsupported".into(),
                message: "Bybit's disconnect-cancel-all cannot be switched off through the API \
                          (its window is 3 to 300 s); ask Bybit to disable it"
                    .into(),
            };
            return Err(self.venue_error("dead-man switch (not sent)".into(), None, error));
        }
        let secs = countdown.as_secs() + u64::from(countdown.subsec_nanos() > 0);
        let secs = u32::try_from(secs).unwrap_or(u32::MAX);
        let product = DcpProduct::for_category(self.bybit_category());
        let req =
            bybit::set_dcp(product, secs).map_err(|e| self.bybit_not_sent("dead-man switch", e))?;
        self.send(&req).await.map(|_| ())
    }

    /// The events of every page of a listing, following `nextPageCursor`.
    async fn bybit_pages(
        &self,
        page: impl Fn(Option<&str>) -> RestRequest,
    ) -> Result<Vec<VenueEvent>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let req = page(cursor.as_deref());
            let r = self.send(&req).await?;
            out.extend(self.bybit_events(&req, &r)?);
            cursor = next_cursor(&r.body);
            if cursor.is_none() {
                return Ok(out);
            }
        }
        let error = VenueError::Other {
            code: "too-many-pages".into(),
            message: format!("the listing did not end within {MAX_PAGES} pages"),
        };
        Err(self.venue_error(describe(&page(cursor.as_deref())), None, error))
    }
}

/// `result.nextPageCursor` when there is a next page.
fn next_cursor(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let cursor = v.get("result")?.get("nextPageCursor")?.as_str()?;
    (!cursor.is_empty()).then(|| cursor.to_string())
}

/// `leavesQty` by `execId` of an execution list: what the order had left after each.
fn leaves_by_exec_id(body: &str) -> BTreeMap<String, Fixed> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let rows = v
        .get("result")
        .and_then(|r| r.get("list"))
        .and_then(Value::as_array);
    rows.into_iter()
        .flatten()
        .filter_map(|row| {
            let id = row.get("execId")?.as_str()?;
            let left = Fixed::parse_exact(row.get("leavesQty")?.as_str()?).ok()?;
            Some((id.to_string(), left))
        })
        .collect()
}

/// The venue time of an answer in ns: the envelope's `time` (ms), else the `Date` header.
fn answer_time_ns(r: &Response) -> i64 {
    let body_ms = serde_json::from_str::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get("time").and_then(Value::as_i64));
    body_ms
        .or(r.server_time_ms)
        .and_then(|ms| ms.checked_mul(1_000_000))
        .unwrap_or(0)
}

fn orders(events: Vec<VenueEvent>) -> impl Iterator<Item = OrderEvent> {
    events.into_iter().filter_map(|e| match e {
        VenueEvent::Order(o) => Some(o),
        _ => None,
    })
}
