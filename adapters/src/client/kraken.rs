//! Kraken spot behind the typed trading calls of [`super::trading`]: the codec's requests
//! ([`crate::kraken`]) sent through the client, and Kraken's answers given the same shapes as
//! Binance's.
//!
//! Contract:
//! - Every private call is a form body the client signs (`API-Key`, `API-Sign`) with a nonce
//!   that always increases. The codec's builders take a nonce; they are built with 0 and that
//!   `nonce=0` is taken off again, since the client stamps the real one at each attempt (so a
//!   resend never reuses a nonce).
//! - `AddOrder` answers only the txid, so a placed order is read back with `QueryOrders`; when
//!   that read fails the ack carries the order as sent (state `New`, the reason saying why).
//!   Acks carry no fills: they come from the private stream or `TradesHistory`.
//! - A placement whose answer is lost is looked up by `cl_ord_id` (`OpenOrders`, then
//!   `ClosedOrders`, both of which filter on it) before anything is sent again, exactly as for
//!   Binance: found means not resent, absent means sent again, at most
//!   [`super::trading::MAX_PLACEMENTS`] sends.
//! - Kraken's `CancelAll` and `CancelAllOrdersAfter` reach every pair of the account. So
//!   `cancel_all(symbol)` lists the open orders and cancels those on `symbol` one by one by
//!   txid, and [`RestClient::kraken_cancel_every_order`] is the account-wide `CancelAll`;
//!   `cancel_all_after` ignores its symbol and counts whole seconds (rounded up, below
//!   [`MAX_CANCEL_AFTER_SECS`] + 1).
//! - An order's fills: the order by `cl_ord_id` as above, then `QueryOrders` with `trades=true`
//!   for its trade txids (in Kraken's order), then `QueryTrades` for them, at most
//!   [`QUERY_TRADES_MAX`] a call, read by the codec's `TradesHistory` parser. Kraken states a
//!   trade's fee in the pair's quote currency and does not name it, so the fee asset is the
//!   quote asset of the client's instrument for the pair when it has one, else empty.
//! - Balances come from `BalanceEx` (free = balance − hold_trade) under Kraken's asset names
//!   (`ZUSD`, `XXBT`). Symbols are Kraken's REST pair names (`XBTUSD`).

use std::time::Duration;

use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::{Value, json};

use super::trading::{MAX_PLACEMENTS, OrderAck, Placement, unreconciled};
use super::{ClientError, Response, RestClient, describe};
use crate::kraken::{self, OrderRef};
use crate::model::{
    BalanceUpdate, FillEvent, Method, OrderEvent, OrderSpec, OrderSpecKind, OrderState, OrderType,
    RestRequest, VenueError, VenueEvent,
};

/// The longest dead-man switch Kraken takes ("less than 86400 seconds").
pub const MAX_CANCEL_AFTER_SECS: u64 = 86_399;

const OPEN_ORDERS: &str = "/0/private/OpenOrders";
const CLOSED_ORDERS: &str = "/0/private/ClosedOrders";
const QUERY_ORDERS: &str = "/0/private/QueryOrders";
const QUERY_TRADES: &str = "/0/private/QueryTrades";

/// Most trade txids one `QueryTrades` call takes.
pub const QUERY_TRADES_MAX: usize = 20;

/// A codec request without the `nonce=<n>` its builder put first: the client adds its own.
pub(super) fn unstamped(mut req: RestRequest) -> RestRequest {
    if let Some(body) = req.body.take() {
        let rest = match body.split_once('&') {
            Some((first, rest)) if first.starts_with("nonce=") => rest.to_string(),
            None if body.starts_with("nonce=") => String::new(),
            _ => body,
        };
        req.body = (!rest.is_empty()).then_some(rest);
    }
    req
}

/// A private call the codec has no builder for (the `cl_ord_id` filters, `QueryOrders`).
fn private(path: &str, params: &[(&str, &str)], weight: u32) -> RestRequest {
    RestRequest {
        method: Method::Post,
        path: path.to_string(),
        query: Vec::new(),
        body: (!params.is_empty()).then(|| crate::sign::encode_query(params)),
        signed: true,
        weight,
        retry_safe: true,
    }
}

/// `QueryOrders` keys its result by txid alone; under `open` the codec reads it as it reads
/// `OpenOrders`. Numbers are quoted first, so nothing passes through a float.
fn query_orders_as_open(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(&kraken::quote_numbers(body)).ok()?;
    let result = v.get("result")?.clone();
    Some(json!({"error": [], "result": {"open": result}}).to_string())
}

/// The trade txids `QueryOrders` with `trades=true` lists for order `txid` (none when it has
/// not traded); `None` when the answer does not describe that order.
fn order_trade_txids(body: &str, txid: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(&kraken::quote_numbers(body)).ok()?;
    let order = v.get("result")?.get(txid)?;
    let Some(trades) = order.get("trades") else {
        return Some(Vec::new());
    };
    trades
        .as_array()?
        .iter()
        .map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// `QueryTrades` keys its result by trade txid alone; under `trades` (with a `count`) the codec
/// reads it as it reads `TradesHistory`. Numbers are quoted first, so nothing passes through a
/// float.
fn query_trades_as_history(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(&kraken::quote_numbers(body)).ok()?;
    let result = v.get("result")?.as_object()?.clone();
    let count = result.len();
    Some(json!({"error": [], "result": {"trades": result, "count": count}}).to_string())
}

/// The first txid of an `AddOrder` answer.
fn added_txid(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let id = v.get("result")?.get("txid")?.get(0)?.as_str()?;
    Some(id.to_string())
}

/// `count` of a `CancelOrder` / `CancelAll` answer.
fn canceled_count(body: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(&kraken::quote_numbers(body)).ok()?;
    v.get("result")?.get("count")?.as_str()?.parse().ok()
}

fn orders(events: Vec<VenueEvent>) -> Vec<OrderEvent> {
    events
        .into_iter()
        .filter_map(|e| match e {
            VenueEvent::Order(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// The order as keel sent it, for an ack whose order could not be read back.
fn as_sent(spec: &OrderSpec, txid: String, reason: String) -> OrderEvent {
    let zero = Fixed::ZERO;
    let (order_type, price, trigger_price) = match spec.kind {
        OrderSpecKind::Market => (OrderType::Market, zero, zero),
        OrderSpecKind::Limit { price } => (OrderType::Limit, price, zero),
        OrderSpecKind::StopMarket { trigger } => (OrderType::StopMarket, zero, trigger),
        OrderSpecKind::StopLimit { trigger, price } => (OrderType::StopLimit, price, trigger),
        OrderSpecKind::TakeProfitMarket { trigger } => (OrderType::TakeProfitMarket, zero, trigger),
    };
    OrderEvent {
        symbol: spec.symbol,
        client_order_id: spec.client_order_id.clone(),
        venue_order_id: txid,
        state: OrderState::New,
        side: spec.side,
        order_type,
        time_in_force: Some(spec.time_in_force),
        price,
        trigger_price,
        qty: spec.qty,
        filled_qty: zero,
        avg_price: zero,
        reduce_only: spec.reduce_only,
        reason,
        ts_event_ns: 0,
    }
}

impl RestClient {
    fn kraken_error(&self, request: String, error: VenueError) -> ClientError {
        ClientError {
            venue: self.config.venue.name(),
            request,
            status: None,
            error,
            attempts: 0,
        }
    }

    fn kraken_not_sent(&self, what: &str, message: String) -> ClientError {
        let error = VenueError::Other {
            code: "invalid-request".into(),
            message,
        };
        self.kraken_error(format!("{what} (not sent)"), error)
    }

    fn kraken_unreadable(&self, req: &RestRequest, r: &Response, message: String) -> ClientError {
        let error = VenueError::Other {
            code: "decode".into(),
            message,
        };
        ClientError {
            status: Some(r.status),
            attempts: r.attempts,
            ..self.kraken_error(describe(req), error)
        }
    }

    async fn kraken_events(&self, req: &RestRequest) -> Result<Vec<VenueEvent>, ClientError> {
        let r = self.send(req).await?;
        kraken::decode(&r.body).map_err(|e| self.kraken_unreadable(req, &r, e.to_string()))
    }

    async fn kraken_orders(&self, req: &RestRequest) -> Result<Vec<OrderEvent>, ClientError> {
        Ok(orders(self.kraken_events(req).await?))
    }

    /// `AddOrder`, with the lookup before any resend (module doc).
    pub(super) async fn kraken_place_order(
        &self,
        spec: &OrderSpec,
    ) -> Result<OrderAck, ClientError> {
        let req = kraken::add_order(spec, 0)
            .map(unstamped)
            .map_err(|e| self.kraken_not_sent("place order", e.to_string()))?;
        let mut sends = 0;
        loop {
            sends += 1;
            let e = match self.send(&req).await {
                Ok(r) => {
                    let placement = if sends == 1 {
                        Placement::Sent
                    } else {
                        Placement::Resent { sends }
                    };
                    let order = self.kraken_placed(spec, &r).await;
                    return Ok(OrderAck {
                        order,
                        fills: Vec::new(),
                        placement,
                    });
                }
                Err(e) => e,
            };
            let lost = matches!(e.error, VenueError::UnknownOutcome(_));
            // A resend refused as a duplicate: an earlier send did land after all.
            let landed = sends > 1 && e.error == VenueError::DuplicateClientOrderId;
            if !(lost || landed) {
                return Err(e);
            }
            // Give a placement still in flight the time to land before asking for it.
            self.sleep(self.config.retry.base_delay).await;
            match self.kraken_find(&spec.symbol, &spec.client_order_id).await {
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

    /// The order a successful `AddOrder` made, read back by its txid; the order as sent when
    /// the venue's view cannot be read (the order exists either way).
    async fn kraken_placed(&self, spec: &OrderSpec, r: &Response) -> OrderEvent {
        let txid = added_txid(&r.body);
        let read = match &txid {
            Some(t) => self.kraken_query_txid(t).await,
            None => self.kraken_find(&spec.symbol, &spec.client_order_id).await,
        };
        let reason = match read {
            Ok(Some(order)) => return order,
            Ok(None) => "placed; the venue did not list it yet".to_string(),
            Err(e) => format!("placed; reading it back failed: {}", e.error),
        };
        as_sent(spec, txid.unwrap_or_default(), reason)
    }

    /// `QueryOrders` for one txid.
    async fn kraken_query_txid(&self, txid: &str) -> Result<Option<OrderEvent>, ClientError> {
        let req = private(QUERY_ORDERS, &[("txid", txid)], 1);
        let r = match self.send(&req).await {
            Ok(r) => r,
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let unreadable = || self.kraken_unreadable(&req, &r, "no result".into());
        let body = query_orders_as_open(&r.body).ok_or_else(unreadable)?;
        let events =
            kraken::decode(&body).map_err(|e| self.kraken_unreadable(&req, &r, e.to_string()))?;
        Ok(orders(events)
            .into_iter()
            .find(|o| o.venue_order_id == txid))
    }

    /// The latest order on `symbol` with `client_order_id`, open or closed; `None` when the
    /// venue lists none.
    async fn kraken_find(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        // History calls weigh 2 on Kraken's counter.
        for (path, weight) in [(OPEN_ORDERS, 1), (CLOSED_ORDERS, 2)] {
            let req = private(path, &[("cl_ord_id", client_order_id)], weight);
            let found = self
                .kraken_orders(&req)
                .await?
                .into_iter()
                .filter(|o| o.client_order_id == client_order_id && o.symbol == *symbol)
                .max_by_key(|o| o.ts_event_ns);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    pub(super) async fn kraken_query_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        kraken::check_client_order_id(client_order_id)
            .map_err(|e| self.kraken_not_sent("query order", e.to_string()))?;
        self.kraken_find(symbol, client_order_id).await
    }

    /// Every fill of the order with `client_order_id` (see the module doc), checked by
    /// [`RestClient::order_fills`]'s rules.
    pub(super) async fn kraken_order_fills(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> Result<Vec<FillEvent>, ClientError> {
        kraken::check_client_order_id(client_order_id)
            .map_err(|e| self.kraken_not_sent("order fills", e.to_string()))?;
        let Some(order) = self.kraken_find(symbol, client_order_id).await? else {
            return Err(self.no_such_order(symbol, client_order_id));
        };
        let txid = order.venue_order_id.clone();
        let req = private(QUERY_ORDERS, &[("trades", "true"), ("txid", &txid)], 1);
        let r = self.send(&req).await?;
        let trade_txids = order_trade_txids(&r.body, &txid).ok_or_else(|| {
            self.kraken_unreadable(&req, &r, format!("no trade list for order {txid}"))
        })?;
        let mut fills = Vec::with_capacity(trade_txids.len());
        for chunk in trade_txids.chunks(QUERY_TRADES_MAX) {
            fills.extend(self.kraken_query_trades(chunk).await?);
        }
        // In the order Kraken lists the order's trades.
        fills.sort_by_key(|f| trade_txids.iter().position(|t| *t == f.trade_id));
        if let Some(instrument) = self.instrument(symbol) {
            for f in &mut fills {
                f.fee_asset = instrument.quote.clone();
            }
        }
        self.checked_fills(symbol, client_order_id, &order, &[txid], fills)
    }

    /// `QueryTrades` for `txids`: every one of them must come back.
    async fn kraken_query_trades(&self, txids: &[String]) -> Result<Vec<FillEvent>, ClientError> {
        let joined = txids.join(",");
        let req = private(QUERY_TRADES, &[("txid", &joined)], 2);
        let r = self.send(&req).await?;
        let body = query_trades_as_history(&r.body)
            .ok_or_else(|| self.kraken_unreadable(&req, &r, "no result".into()))?;
        let events =
            kraken::decode(&body).map_err(|e| self.kraken_unreadable(&req, &r, e.to_string()))?;
        let fills: Vec<FillEvent> = events
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Fill(f) => Some(f),
                _ => None,
            })
            .collect();
        if let Some(missing) = txids
            .iter()
            .find(|t| !fills.iter().any(|f| f.trade_id == **t))
        {
            let message = format!("trade {missing} is missing from the answer");
            return Err(self.kraken_unreadable(&req, &r, message));
        }
        Ok(fills)
    }

    /// `CancelOrder` by `cl_ord_id` (unique among the account's open orders, so no pair is
    /// needed). Kraken answers a count, not the order, so this returns `None`; nothing to
    /// cancel is `VenueError::OrderNotFound`.
    pub(super) async fn kraken_cancel_order(
        &self,
        client_order_id: &str,
    ) -> Result<Option<OrderEvent>, ClientError> {
        let req = unstamped(kraken::cancel_order(OrderRef::Client(client_order_id), 0));
        let r = self.send(&req).await?;
        if canceled_count(&r.body) == Some(0) {
            let error = VenueError::OrderNotFound(client_order_id.to_string());
            return Err(ClientError {
                status: Some(r.status),
                attempts: r.attempts,
                ..self.kraken_error(describe(&req), error)
            });
        }
        Ok(None)
    }

    /// The open orders on `symbol` canceled one by one by txid, returned as canceled; an
    /// order that filled or was canceled in between is left out.
    pub(super) async fn kraken_cancel_all(
        &self,
        symbol: &Symbol,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        let mut canceled = Vec::new();
        for mut order in self.kraken_open_orders(Some(symbol)).await? {
            let by_txid = OrderRef::Venue(&order.venue_order_id);
            let req = unstamped(kraken::cancel_order(by_txid, 0));
            match self.send(&req).await {
                Ok(r) if canceled_count(&r.body) == Some(0) => {}
                Ok(_) => {
                    order.state = OrderState::Canceled;
                    canceled.push(order);
                }
                Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(canceled)
    }

    /// Kraken's `CancelAll`: every open order of the account, on every pair. Returns how many
    /// the venue canceled.
    pub async fn kraken_cancel_every_order(&self) -> Result<u64, ClientError> {
        if self.config.venue != crate::model::Venue::Kraken {
            let error = VenueError::Other {
                code: "unsupported".into(),
                message: format!("CancelAll is Kraken's, not {}'s", self.config.venue.name()),
            };
            return Err(self.kraken_error("cancel every order".into(), error));
        }
        let req = unstamped(kraken::cancel_all(0));
        let r = self.send(&req).await?;
        canceled_count(&r.body).ok_or_else(|| self.kraken_unreadable(&req, &r, "no count".into()))
    }

    pub(super) async fn kraken_open_orders(
        &self,
        symbol: Option<&Symbol>,
    ) -> Result<Vec<OrderEvent>, ClientError> {
        let req = unstamped(kraken::open_orders(0));
        let mut list = self.kraken_orders(&req).await?;
        list.retain(|o| symbol.is_none_or(|s| o.symbol == *s));
        Ok(list)
    }

    pub(super) async fn kraken_balances(&self) -> Result<Vec<BalanceUpdate>, ClientError> {
        let req = unstamped(kraken::balance_ex(0));
        let events = self.kraken_events(&req).await?;
        Ok(events
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Balance(b) => Some(b),
                _ => None,
            })
            .collect())
    }

    pub(super) fn kraken_positions(&self) -> ClientError {
        let error = VenueError::Other {
            code: "unsupported".into(),
            message: "a Kraken spot account has balances, not positions".into(),
        };
        self.kraken_error("positions".into(), error)
    }

    /// `CancelAllOrdersAfter`: account-wide, whole seconds rounded up, zero disarms.
    pub(super) async fn kraken_cancel_all_after(
        &self,
        countdown: Duration,
    ) -> Result<(), ClientError> {
        let secs = u64::try_from(countdown.as_millis().div_ceil(1000)).unwrap_or(u64::MAX);
        let timeout = u32::try_from(secs)
            .ok()
            .filter(|s| u64::from(*s) <= MAX_CANCEL_AFTER_SECS)
            .ok_or_else(|| {
                let message = format!(
                    "Kraken's dead-man switch takes at most {MAX_CANCEL_AFTER_SECS} s, not {secs} s"
                );
                self.kraken_not_sent("dead-man switch", message)
            })?;
        let req = unstamped(kraken::cancel_all_orders_after(timeout, 0));
        self.send(&req).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstamped_takes_off_only_the_codecs_nonce() {
        let req = unstamped(kraken::cancel_all_orders_after(60, 0));
        assert_eq!(req.body.as_deref(), Some("timeout=60"));
        assert!(req.signed);
        assert_eq!(unstamped(kraken::open_orders(0)).body, None);
        let mut other = kraken::open_orders(0);
        other.body = Some("trades=true&nonce=0".into());
        assert_eq!(
            unstamped(other).body.as_deref(),
            Some("trades=true&nonce=0")
        );
    }

    #[test]
    fn query_orders_results_read_as_open_orders_without_floats() {
        let body = r#"{"error":[],"result":{"OABC-1":{"status":"open","opentm":1688666559.8974,
            "descr":{"pair":"XBTUSD","type":"buy","ordertype":"limit","price":"27500.12345678"},
            "vol":"1.25000000","vol_exec":"0.00000000","cl_ord_id":"k-1"}}}"#;
        let rewrapped = query_orders_as_open(body).expect("result");
        let list = orders(kraken::decode(&rewrapped).expect("decodes"));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].venue_order_id, "OABC-1");
        assert_eq!(list[0].client_order_id, "k-1");
        assert_eq!(
            list[0].price,
            Fixed::parse_exact("27500.12345678").expect("decimal")
        );
        assert_eq!(list[0].ts_event_ns, 1_688_666_559_897_400_000);
    }

    #[test]
    fn answers_give_their_txid_and_count() {
        let added = r#"{"error":[],"result":{"descr":{"order":"buy"},"txid":["OX-1"]}}"#;
        assert_eq!(added_txid(added).as_deref(), Some("OX-1"));
        assert_eq!(added_txid(r#"{"error":[],"result":{}}"#), None);
        assert_eq!(
            canceled_count(r#"{"error":[],"result":{"count":3}}"#),
            Some(3)
        );
        assert_eq!(canceled_count("<html>"), None);
    }
}
