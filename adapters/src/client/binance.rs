//! The Binance spot and USD-M requests behind the typed trading calls: the codecs' builders,
//! plus the reads the codec has no builder for: the two Algo Order API reads (query one algo
//! order by client id, list open algo orders) and one order's trades (spot `myTrades`, USD-M
//! `userTrades`).

use keel_engine::symbol::Symbol;
use serde_json::Value;

use crate::binance::{self, BuildError, OrderRef};
use crate::model::{DecodeError, Method, OrderSpec, OrderSpecKind, RestRequest, Venue, VenueEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Market {
    Spot,
    Usdm,
}

pub(super) fn market(venue: Venue) -> Option<Market> {
    match venue {
        Venue::BinanceSpot => Some(Market::Spot),
        Venue::BinanceUsdm => Some(Market::Usdm),
        Venue::Bybit | Venue::Okx | Venue::Kraken => None,
    }
}

pub(super) fn decode(market: Market, body: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    match market {
        Market::Spot => binance::decode_spot(body),
        Market::Usdm => binance::decode_usdm(body),
    }
}

/// USD-M stop and take-profit orders live on the Algo Order API, with their own ids.
pub(super) fn is_algo(market: Market, spec: &OrderSpec) -> bool {
    market == Market::Usdm
        && !matches!(
            spec.kind,
            OrderSpecKind::Market | OrderSpecKind::Limit { .. }
        )
}

pub(super) fn place(market: Market, spec: &OrderSpec) -> Result<RestRequest, BuildError> {
    match market {
        Market::Spot => binance::spot_place_order(spec),
        Market::Usdm => binance::usdm_place_order(spec),
    }
}

fn signed_get(path: &str, query: Vec<(String, String)>, weight: u32) -> RestRequest {
    RestRequest {
        method: Method::Get,
        path: path.into(),
        query,
        body: None,
        signed: true,
        weight,
        retry_safe: true,
    }
}

/// Query one order by client id: `GET /api/v3/order`, `/fapi/v1/order`, or for algo orders
/// `GET /fapi/v1/algoOrder?clientAlgoId=` (weight 1).
pub(super) fn query(
    market: Market,
    symbol: &Symbol,
    client_order_id: &str,
    algo: bool,
) -> Result<RestRequest, BuildError> {
    let order = OrderRef::Client(client_order_id);
    match (market, algo) {
        (Market::Spot, _) => binance::spot_query_order(symbol, order),
        (Market::Usdm, false) => binance::usdm_query_order(symbol, order),
        (Market::Usdm, true) => {
            // The same id rules as everywhere else: the builder checks them.
            binance::usdm_cancel_algo_order(order)?;
            let q = vec![("clientAlgoId".to_string(), client_order_id.to_string())];
            Ok(signed_get("/fapi/v1/algoOrder", q, 1))
        }
    }
}

/// Most trades one `myTrades` / `userTrades` answer holds (Binance's maximum `limit`).
pub(super) const TRADES_PAGE: usize = 1000;

/// The trades of order `order_id` on `symbol`: spot `GET /api/v3/myTrades`, USD-M
/// `GET /fapi/v1/userTrades` (weight 5 with `orderId`), ascending by trade id; from trade
/// `from_id` on when given.
pub(super) fn order_trades(
    market: Market,
    symbol: &Symbol,
    order_id: &str,
    from_id: Option<u64>,
) -> RestRequest {
    let path = match market {
        Market::Spot => "/api/v3/myTrades",
        Market::Usdm => "/fapi/v1/userTrades",
    };
    let mut q = vec![
        ("symbol".to_string(), symbol.as_str().to_string()),
        ("orderId".to_string(), order_id.to_string()),
        ("limit".to_string(), TRADES_PAGE.to_string()),
    ];
    if let Some(id) = from_id {
        q.push(("fromId".to_string(), id.to_string()));
    }
    signed_get(path, q, 5)
}

/// The `actualOrderId` of an Algo Order API answer: the matching-engine order a conditional
/// order became when it fired; `None` before it fires.
pub(super) fn actual_order_id(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    match v.get("actualOrderId")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.as_u64().is_some_and(|id| id > 0) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn cancel(
    market: Market,
    symbol: &Symbol,
    client_order_id: &str,
    algo: bool,
) -> Result<RestRequest, BuildError> {
    let order = OrderRef::Client(client_order_id);
    match (market, algo) {
        (Market::Spot, _) => binance::spot_cancel_order(symbol, order),
        (Market::Usdm, false) => binance::usdm_cancel_order(symbol, order),
        (Market::Usdm, true) => binance::usdm_cancel_algo_order(order),
    }
}

/// Spot cancels orders and order lists in one call; USD-M needs one for the matching engine
/// and one for the Algo Service.
pub(super) fn cancel_all(market: Market, symbol: &Symbol) -> Vec<RestRequest> {
    match market {
        Market::Spot => vec![binance::spot_cancel_all(symbol)],
        Market::Usdm => vec![
            binance::usdm_cancel_all(symbol),
            binance::usdm_cancel_all_algo(symbol),
        ],
    }
}

/// USD-M lists conditional orders apart: `GET /fapi/v1/openAlgoOrders`.
pub(super) fn open_orders(market: Market, symbol: Option<&Symbol>) -> Vec<RestRequest> {
    match market {
        Market::Spot => vec![binance::spot_open_orders(symbol)],
        Market::Usdm => {
            let q = symbol
                .map(|s| vec![("symbol".to_string(), s.as_str().to_string())])
                .unwrap_or_default();
            let weight = if symbol.is_some() { 1 } else { 40 };
            vec![
                binance::usdm_open_orders(symbol),
                signed_get("/fapi/v1/openAlgoOrders", q, weight),
            ]
        }
    }
}

pub(super) fn balances(market: Market) -> RestRequest {
    match market {
        Market::Spot => binance::spot_account(),
        Market::Usdm => binance::usdm_balance(),
    }
}

pub(super) fn positions(market: Market) -> Option<RestRequest> {
    (market == Market::Usdm).then(|| binance::usdm_position_risk(None))
}

pub(super) fn dead_man_switch(market: Market, symbol: &Symbol, ms: u64) -> Option<RestRequest> {
    (market == Market::Usdm).then(|| binance::usdm_countdown_cancel_all(symbol, ms))
}

pub(super) fn exchange_info(market: Market) -> RestRequest {
    match market {
        Market::Spot => binance::spot_exchange_info(None),
        Market::Usdm => binance::usdm_exchange_info(),
    }
}
