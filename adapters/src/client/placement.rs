//! Placements on venues that acknowledge an order with its ids only (Bybit, OKX): the
//! lost-answer reconciliation of [`super::trading`] written once for both, and the order an
//! acknowledgement stands for.
//!
//! Contract of [`RestClient::place_reconciled`], the same rule as Binance's:
//! - an answered send is the result ([`Placement::Sent`], or [`Placement::Resent`] after lost
//!   answers);
//! - a lost answer (`VenueError::UnknownOutcome`) makes the client ask the venue for the client
//!   order id before anything else: found means not sent again
//!   ([`Placement::FoundAfterUnknownOutcome`]); absent means sent again, at most
//!   [`MAX_PLACEMENTS`] sends in all;
//! - a resend refused as a duplicate client id means an earlier send landed after all, so the
//!   venue is asked again; any other refusal is the result, unreconciled;
//! - without a client id nothing can be looked up, so a lost answer is the result.
//!
//! After an acknowledgement the order is read back by its client id, so the ack carries the
//! venue's state (a market order already `Filled`); when that read fails the ack carries the
//! order as accepted ([`accepted`]) with the reason, never an error: the order exists.

use keel_engine::fixed::Fixed;

use super::trading::{MAX_PLACEMENTS, OrderAck, Placement, unreconciled};
use super::{ClientError, Response, RestClient, describe};
use crate::model::{
    FillEvent, OrderEvent, OrderSpec, OrderSpecKind, OrderState, OrderType, RestRequest,
    TimeInForce, VenueError,
};

impl RestClient {
    /// Places with `send` under the module's rule, asking `find` after a lost answer.
    pub(super) async fn place_reconciled(
        &self,
        spec: &OrderSpec,
        send: impl AsyncFn() -> Result<(OrderEvent, Vec<FillEvent>), ClientError>,
        find: impl AsyncFn() -> Result<Option<OrderEvent>, ClientError>,
    ) -> Result<OrderAck, ClientError> {
        let mut sends = 0;
        loop {
            sends += 1;
            let e = match send().await {
                Ok((order, fills)) => {
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
            let landed = sends > 1 && e.error == VenueError::DuplicateClientOrderId;
            if !(lost || landed) || spec.client_order_id.is_empty() {
                return Err(e);
            }
            // Give a placement still in flight the time to land before asking for it.
            self.sleep(self.config.retry.base_delay).await;
            match find().await {
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

    /// The acknowledged order as the venue has it now (asked with `find`), or `accepted` with
    /// the reason the read failed.
    pub(super) async fn read_back(
        &self,
        mut accepted: OrderEvent,
        find: impl AsyncFn() -> Result<Option<OrderEvent>, ClientError>,
    ) -> OrderEvent {
        match find().await {
            Ok(Some(order)) => return order,
            Ok(None) => accepted.reason = "acknowledged; not found when read back".into(),
            Err(e) => {
                accepted.reason = format!("acknowledged; reading it back failed: {}", e.error)
            }
        }
        accepted
    }
}

/// The order an acknowledgement that carries only ids stands for: `spec` accepted under
/// `venue_order_id` (`Untriggered` for a conditional kind, else `New`), nothing filled.
pub(super) fn accepted(spec: &OrderSpec, venue_order_id: &str, ts_event_ns: i64) -> OrderEvent {
    let (order_type, price, trigger_price) = match spec.kind {
        OrderSpecKind::Market => (OrderType::Market, None, None),
        OrderSpecKind::Limit { price } => (OrderType::Limit, Some(price), None),
        OrderSpecKind::StopMarket { trigger } => (OrderType::StopMarket, None, Some(trigger)),
        OrderSpecKind::StopLimit { trigger, price } => {
            (OrderType::StopLimit, Some(price), Some(trigger))
        }
        OrderSpecKind::TakeProfitMarket { trigger } => {
            (OrderType::TakeProfitMarket, None, Some(trigger))
        }
    };
    let state = if trigger_price.is_some() {
        OrderState::Untriggered
    } else {
        OrderState::New
    };
    let time_in_force: Option<TimeInForce> = price.map(|_| spec.time_in_force);
    OrderEvent {
        symbol: spec.symbol,
        client_order_id: spec.client_order_id.clone(),
        venue_order_id: venue_order_id.to_string(),
        state,
        side: spec.side,
        order_type,
        time_in_force,
        price: price.unwrap_or(Fixed::ZERO),
        trigger_price: trigger_price.unwrap_or(Fixed::ZERO),
        qty: spec.qty,
        filled_qty: Fixed::ZERO,
        avg_price: Fixed::ZERO,
        reduce_only: spec.reduce_only,
        reason: String::new(),
        ts_event_ns,
    }
}

/// An answer keel could not read, naming the request.
pub(super) fn decode_failure(
    client: &RestClient,
    req: &RestRequest,
    r: &Response,
    message: String,
) -> ClientError {
    let error = VenueError::Other {
        code: "decode".into(),
        message,
    };
    ClientError {
        attempts: r.attempts,
        ..client.venue_error(describe(req), Some(r.status), error)
    }
}
