//! Kraken spot REST bodies: `{"error":[..],"result":{..}}`. Input has been through
//! [`super::quote_numbers`], so every number is a string here.

use keel_engine::candle::{Candle, Interval};
use keel_engine::event::{BookTicker, Liquidity, Trade};
use keel_engine::fixed::Fixed;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ws::{order_type, side, trade_id};
use super::{quote_numbers, secs_to_ns};
use crate::model::{
    BalanceUpdate, Control, DecodeError, DepthUpdate, FillEvent, Instrument, OrderEvent,
    OrderState, OrderType, TimeInForce, VenueEvent, dec, dec_lossy, symbol,
};

fn typed<'v, T: Deserialize<'v>>(what: &str, v: &'v Value) -> Result<T, DecodeError> {
    T::deserialize(v).map_err(|e| DecodeError::malformed(what, e.to_string()))
}

fn str_of<'v>(o: &'v Map<String, Value>, key: &str) -> &'v str {
    o.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Error strings: `E...` are errors, `W...` warnings that accompany a result.
fn errors(obj: &Map<String, Value>) -> Vec<String> {
    obj.get("error")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.starts_with('W'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn ack(id: String, detail: String) -> Vec<VenueEvent> {
    vec![VenueEvent::Control(Control::Response {
        id,
        ok: true,
        detail,
    })]
}

/// A REST body. Errors become a `Control::Response` with `ok: false` (classify with
/// [`super::parse_error`]); results are told apart by shape, as Kraken does not echo the
/// endpoint.
pub(super) fn decode_rest(obj: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    let errs = errors(obj);
    if !errs.is_empty() {
        return Ok(vec![VenueEvent::Control(Control::Response {
            id: String::new(),
            ok: false,
            detail: errs.join("; "),
        })]);
    }
    let result = match obj.get("result") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(r)) => r,
        Some(_) => {
            return Err(DecodeError::Unsupported(
                "kraken REST result that is not an object".into(),
            ));
        }
    };
    let has = |k: &str| result.contains_key(k);
    if has("txid") && has("descr") {
        // AddOrder: the order ids and Kraken's one-line description.
        let ids: Vec<&str> = result
            .get("txid")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let descr = result
            .get("descr")
            .and_then(Value::as_object)
            .map(|d| str_of(d, "order").to_string())
            .unwrap_or_default();
        return Ok(ack(ids.join(","), descr));
    }
    if has("count") && result.keys().all(|k| k == "count" || k == "pending") {
        // CancelOrder / CancelAll.
        return Ok(ack(
            String::new(),
            format!("canceled {}", str_of(result, "count")),
        ));
    }
    if has("currentTime") && has("triggerTime") {
        return Ok(ack(
            String::new(),
            format!("cancel all orders at {}", str_of(result, "triggerTime")),
        ));
    }
    if has("token") && has("expires") {
        return Err(DecodeError::Unsupported(
            "kraken GetWebSocketsToken: use kraken::parse_ws_token".into(),
        ));
    }
    if let Some(Value::Object(open)) = result.get("open") {
        return orders(open);
    }
    if let Some(Value::Object(closed)) = result.get("closed") {
        return orders(closed);
    }
    if let (Some(Value::Object(trades)), true) = (result.get("trades"), has("count")) {
        return trade_history(trades);
    }
    if has("unixtime") {
        return Err(DecodeError::Unsupported("kraken Time".into()));
    }
    if has("status") && has("timestamp") {
        return Err(DecodeError::Unsupported("kraken SystemStatus".into()));
    }
    if has("eb") && has("tb") {
        return Err(DecodeError::Unsupported("kraken TradeBalance".into()));
    }
    if has("last") {
        return ohlc_or_trades(result);
    }
    by_pair_or_asset(result)
}

/// Results keyed by pair or asset: Balance(Ex), Ticker, Depth, AssetPairs, OpenPositions.
fn by_pair_or_asset(result: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    let Some(first) = result.values().next() else {
        return Ok(Vec::new());
    };
    if result.values().all(Value::is_string) {
        return balance(result);
    }
    let Some(f) = first.as_object() else {
        return Err(DecodeError::Unsupported(
            "kraken REST result of unknown shape".into(),
        ));
    };
    let has = |k: &str| f.contains_key(k);
    if has("balance") {
        balance_ex(result)
    } else if has("altname") {
        Err(DecodeError::Unsupported(
            "kraken AssetPairs: use kraken::parse_asset_pairs".into(),
        ))
    } else if has("a") && has("b") && has("c") {
        ticker(result)
    } else if has("asks") && has("bids") {
        depth(result)
    } else if has("posstatus") {
        Err(DecodeError::Unsupported(
            "kraken OpenPositions (margin positions)".into(),
        ))
    } else {
        Err(DecodeError::Unsupported(
            "kraken REST result of unknown shape".into(),
        ))
    }
}

/// `Balance`: totals per asset (holds are not split out: use BalanceEx for that), no timestamp.
fn balance(result: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    result
        .iter()
        .map(|(asset, amount)| {
            Ok(VenueEvent::Balance(BalanceUpdate {
                asset: asset.clone(),
                free: dec_lossy("kraken Balance amount", amount.as_str().unwrap_or(""))?,
                locked: Fixed::ZERO,
                ts_event_ns: 0,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct BalanceEx<'a> {
    balance: &'a str,
    #[serde(default)]
    hold_trade: &'a str,
}

/// `BalanceEx`: `balance` total, `hold_trade` held by open orders; free is the difference.
fn balance_ex(result: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    result
        .iter()
        .map(|(asset, v)| {
            let b: BalanceEx = typed("kraken BalanceEx", v)?;
            let total = dec_lossy("kraken BalanceEx balance", b.balance)?;
            let hold = if b.hold_trade.is_empty() {
                Fixed::ZERO
            } else {
                dec_lossy("kraken BalanceEx hold_trade", b.hold_trade)?
            };
            Ok(VenueEvent::Balance(BalanceUpdate {
                asset: asset.clone(),
                free: total.checked_sub(hold).ok_or_else(|| {
                    DecodeError::malformed("kraken BalanceEx", "balance - hold_trade overflows")
                })?,
                locked: hold,
                ts_event_ns: 0,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct TickerInfo<'a> {
    #[serde(borrow)]
    a: Vec<&'a str>,
    #[serde(borrow)]
    b: Vec<&'a str>,
}

/// `Ticker` → best bid/ask (price, lot volume). REST tickers carry no time: ts 0.
fn ticker(result: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    result
        .iter()
        .map(|(pair, v)| {
            let t: TickerInfo = typed("kraken Ticker", v)?;
            let get = |side: &[&str], i: usize, what: &str| {
                side.get(i)
                    .copied()
                    .ok_or_else(|| DecodeError::malformed(what, "missing"))
                    .and_then(|s| dec(what, s))
            };
            Ok(VenueEvent::BookTicker(BookTicker {
                symbol: symbol("kraken Ticker pair", pair)?,
                ts_event_ns: 0,
                bid: get(&t.b, 0, "kraken Ticker b price")?,
                bid_qty: get(&t.b, 2, "kraken Ticker b lot volume")?,
                ask: get(&t.a, 0, "kraken Ticker a price")?,
                ask_qty: get(&t.a, 2, "kraken Ticker a lot volume")?,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct DepthInfo<'a> {
    #[serde(borrow)]
    asks: Vec<Vec<&'a str>>,
    #[serde(borrow)]
    bids: Vec<Vec<&'a str>>,
}

/// `Depth` → a snapshot; its time is the newest level's timestamp.
fn depth(result: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    result
        .iter()
        .map(|(pair, v)| {
            let d: DepthInfo = typed("kraken Depth", v)?;
            let mut newest = 0i64;
            let mut side_levels = |rows: &[Vec<&str>], what: &str| {
                rows.iter()
                    .map(|l| match (l.first(), l.get(1), l.get(2)) {
                        (Some(p), Some(q), ts) => {
                            if let Some(ts) = ts {
                                newest = newest.max(secs_to_ns(what, ts)?);
                            }
                            Ok((dec(what, p)?, dec(what, q)?))
                        }
                        _ => Err(DecodeError::malformed(
                            what,
                            "level without price and volume",
                        )),
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()
            };
            let bids = side_levels(&d.bids, "kraken Depth bids")?;
            let asks = side_levels(&d.asks, "kraken Depth asks")?;
            Ok(VenueEvent::Depth(DepthUpdate {
                symbol: symbol("kraken Depth pair", pair)?,
                ts_event_ns: newest,
                snapshot: true,
                first_update_id: 0,
                last_update_id: 0,
                prev_last_update_id: None,
                bids,
                asks,
                checksum: None,
            }))
        })
        .collect()
}

/// The one pair key of an OHLC/Trades result (the other key is `last`).
fn pair_rows(result: &Map<String, Value>) -> Result<(&str, &Vec<Value>), DecodeError> {
    result
        .iter()
        .find(|(k, _)| k.as_str() != "last")
        .and_then(|(k, v)| v.as_array().map(|a| (k.as_str(), a)))
        .ok_or_else(|| DecodeError::malformed("kraken OHLC/Trades result", "no pair rows"))
}

fn ohlc_or_trades(result: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    let (pair, rows) = pair_rows(result)?;
    match rows.first().and_then(Value::as_array).map(Vec::len) {
        None => Ok(Vec::new()),
        Some(7) => trades(pair, rows),
        Some(8) => {
            // The body does not say the interval; Kraken fills empty bars, so consecutive rows
            // are one interval apart and the smallest step is the interval.
            let mut times = Vec::with_capacity(rows.len());
            for row in rows {
                let t = row
                    .as_array()
                    .and_then(|r| r.first())
                    .and_then(Value::as_str);
                times.push(secs_to_ns("kraken OHLC time", t.unwrap_or(""))?);
            }
            let step = times
                .windows(2)
                .filter_map(|w| match w {
                    [a, b] => b.checked_sub(*a),
                    _ => None,
                })
                .filter(|d| *d > 0)
                .min();
            match step {
                Some(ns) => ohlc_rows(pair, rows, Interval { ns }),
                None => Err(DecodeError::Unsupported(
                    "kraken OHLC with fewer than two bars: the interval is unknown, use \
                     kraken::parse_ohlc"
                        .into(),
                )),
            }
        }
        Some(n) => Err(DecodeError::malformed(
            "kraken OHLC/Trades row",
            format!("{n} fields"),
        )),
    }
}

/// OHLC rows `[time, open, high, low, close, vwap, volume, count]`. Kraken's last row is the
/// current, uncommitted bar: `closed: false`.
fn ohlc_rows(
    pair: &str,
    rows: &[Value],
    interval: Interval,
) -> Result<Vec<VenueEvent>, DecodeError> {
    let n = rows.len();
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let r: Vec<&str> = typed("kraken OHLC row", row)?;
            let cell = |j: usize, what: &str| {
                r.get(j)
                    .copied()
                    .ok_or_else(|| DecodeError::malformed(format!("kraken OHLC {what}"), "missing"))
            };
            Ok(VenueEvent::Candle {
                candle: Candle {
                    symbol: symbol("kraken OHLC pair", pair)?,
                    open_time_ns: secs_to_ns("kraken OHLC time", cell(0, "time")?)?,
                    interval_ns: interval.ns,
                    open: dec("kraken OHLC open", cell(1, "open")?)?,
                    high: dec("kraken OHLC high", cell(2, "high")?)?,
                    low: dec("kraken OHLC low", cell(3, "low")?)?,
                    close: dec("kraken OHLC close", cell(4, "close")?)?,
                    volume: dec_lossy("kraken OHLC volume", cell(6, "volume")?)?,
                },
                closed: i + 1 < n,
            })
        })
        .collect()
}

/// Trades rows `[price, volume, time, b/s, m/l, misc, trade_id]`.
fn trades(pair: &str, rows: &[Value]) -> Result<Vec<VenueEvent>, DecodeError> {
    rows.iter()
        .map(|row| {
            let r: Vec<&str> = typed("kraken Trades row", row)?;
            let cell = |j: usize, what: &str| {
                r.get(j).copied().ok_or_else(|| {
                    DecodeError::malformed(format!("kraken Trades {what}"), "missing")
                })
            };
            Ok(VenueEvent::Trade(Trade {
                symbol: symbol("kraken Trades pair", pair)?,
                ts_event_ns: secs_to_ns("kraken Trades time", cell(2, "time")?)?,
                price: dec("kraken Trades price", cell(0, "price")?)?,
                qty: dec("kraken Trades volume", cell(1, "volume")?)?,
                aggressor: side("kraken Trades side", cell(3, "side")?)?,
                trade_id: trade_id("kraken Trades trade_id", cell(6, "trade_id")?)?,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct Descr<'a> {
    pair: &'a str,
    #[serde(rename = "type")]
    side: &'a str,
    ordertype: &'a str,
    #[serde(default)]
    price: &'a str,
    #[serde(default)]
    price2: &'a str,
}

#[derive(Deserialize)]
struct OrderInfo<'a> {
    status: &'a str,
    #[serde(borrow, default)]
    reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    opentm: Option<&'a str>,
    #[serde(borrow, default)]
    closetm: Option<&'a str>,
    #[serde(borrow)]
    descr: Descr<'a>,
    vol: &'a str,
    vol_exec: &'a str,
    #[serde(default)]
    price: &'a str,
    #[serde(default)]
    stopprice: &'a str,
    #[serde(default)]
    limitprice: &'a str,
    #[serde(default)]
    oflags: &'a str,
    #[serde(borrow, default)]
    cl_ord_id: Option<&'a str>,
}

fn nonzero(what: &str, text: &str) -> Result<Option<Fixed>, DecodeError> {
    if text.is_empty() {
        return Ok(None);
    }
    let v = dec(what, text)?;
    Ok((v != Fixed::ZERO).then_some(v))
}

/// One OpenOrders/ClosedOrders entry. Status `closed` means fully executed. Kraken REST does
/// not say whether an open stop has triggered, so open orders are `New`.
fn order(txid: &str, o: &OrderInfo) -> Result<VenueEvent, DecodeError> {
    let filled = dec("kraken order vol_exec", o.vol_exec)?;
    let state = match o.status {
        "pending" => OrderState::New,
        "open" if filled > Fixed::ZERO => OrderState::PartiallyFilled,
        "open" => OrderState::New,
        "closed" => OrderState::Filled,
        "canceled" => OrderState::Canceled,
        "expired" => OrderState::Expired,
        other => {
            return Err(DecodeError::malformed(
                "kraken order status",
                format!("unknown status {other:?}"),
            ));
        }
    };
    let kind = order_type(o.descr.ordertype);
    let (price, trigger) = match kind {
        OrderType::Limit => (dec("kraken order descr.price", o.descr.price)?, Fixed::ZERO),
        OrderType::StopMarket | OrderType::TakeProfitMarket | OrderType::TrailingStop => (
            Fixed::ZERO,
            match nonzero("kraken order stopprice", o.stopprice)? {
                Some(p) => p,
                None => dec("kraken order descr.price", o.descr.price)?,
            },
        ),
        OrderType::StopLimit | OrderType::TakeProfitLimit => (
            match nonzero("kraken order limitprice", o.limitprice)? {
                Some(p) => p,
                None => dec("kraken order descr.price2", o.descr.price2)?,
            },
            match nonzero("kraken order stopprice", o.stopprice)? {
                Some(p) => p,
                None => dec("kraken order descr.price", o.descr.price)?,
            },
        ),
        _ => (Fixed::ZERO, Fixed::ZERO),
    };
    let ts = match (o.closetm, o.opentm) {
        (Some(t), _) | (None, Some(t)) => secs_to_ns("kraken order time", t)?,
        (None, None) => 0,
    };
    Ok(VenueEvent::Order(OrderEvent {
        symbol: symbol("kraken order descr.pair", o.descr.pair)?,
        client_order_id: o.cl_ord_id.unwrap_or("").to_string(),
        venue_order_id: txid.to_string(),
        state,
        side: side("kraken order descr.type", o.descr.side)?,
        order_type: kind,
        time_in_force: o
            .oflags
            .split(',')
            .any(|f| f == "post")
            .then_some(TimeInForce::PostOnly),
        price,
        trigger_price: trigger,
        qty: dec("kraken order vol", o.vol)?,
        filled_qty: filled,
        avg_price: if filled > Fixed::ZERO {
            dec_lossy("kraken order price", o.price)?
        } else {
            Fixed::ZERO
        },
        reduce_only: false,
        reason: o.reason.as_deref().unwrap_or("").to_string(),
        ts_event_ns: ts,
    }))
}

fn orders(map: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    map.iter()
        .map(|(txid, v)| order(txid, &typed("kraken order", v)?))
        .collect()
}

#[derive(Deserialize)]
struct TradeInfo<'a> {
    ordertxid: &'a str,
    pair: &'a str,
    time: &'a str,
    #[serde(rename = "type")]
    side: &'a str,
    price: &'a str,
    fee: &'a str,
    vol: &'a str,
    #[serde(default)]
    maker: Option<bool>,
}

/// `TradesHistory` → fills keyed by trade txid. The fee is in the pair's quote currency, which
/// the entry does not name (`fee_asset` is empty); `maker` says the liquidity.
fn trade_history(map: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    map.iter()
        .map(|(txid, v)| {
            let t: TradeInfo = typed("kraken TradesHistory", v)?;
            Ok(VenueEvent::Fill(FillEvent {
                symbol: symbol("kraken TradesHistory pair", t.pair)?,
                client_order_id: String::new(),
                venue_order_id: t.ordertxid.to_string(),
                trade_id: txid.clone(),
                side: side("kraken TradesHistory type", t.side)?,
                price: dec("kraken TradesHistory price", t.price)?,
                qty: dec("kraken TradesHistory vol", t.vol)?,
                fee: dec_lossy("kraken TradesHistory fee", t.fee)?,
                fee_asset: String::new(),
                liquidity: if t.maker == Some(true) {
                    Liquidity::Maker
                } else {
                    Liquidity::Taker
                },
                ts_event_ns: secs_to_ns("kraken TradesHistory time", t.time)?,
            }))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parsers for bodies `decode` cannot turn into events by themselves

fn result_of(what: &str, text: &str) -> Result<Value, DecodeError> {
    let v: Value = serde_json::from_str(&quote_numbers(text))
        .map_err(|e| DecodeError::malformed(what, format!("not JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(DecodeError::malformed(what, "not an object"));
    };
    let errs = errors(obj);
    if !errs.is_empty() {
        return Err(DecodeError::malformed(
            what,
            format!("error response: {}", errs.join("; ")),
        ));
    }
    obj.get("result")
        .cloned()
        .ok_or_else(|| DecodeError::malformed(format!("{what} result"), "missing"))
}

/// Candles from `GET /0/public/OHLC` at a known `interval`; the last (uncommitted) bar has
/// `closed: false`. (`decode` infers the interval from the bar spacing instead.)
pub fn parse_ohlc(text: &str, interval: Interval) -> Result<Vec<VenueEvent>, DecodeError> {
    let result = result_of("kraken OHLC", text)?;
    let Some(r) = result.as_object() else {
        return Err(DecodeError::malformed(
            "kraken OHLC result",
            "not an object",
        ));
    };
    let (pair, rows) = pair_rows(r)?;
    ohlc_rows(pair, rows, interval)
}

/// The token from `POST /0/private/GetWebSocketsToken`, for private v2 subscriptions and order
/// methods (valid 15 minutes until used for a connection).
pub fn parse_ws_token(text: &str) -> Result<String, DecodeError> {
    let result = result_of("kraken GetWebSocketsToken", text)?;
    result
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| DecodeError::malformed("kraken GetWebSocketsToken token", "missing"))
}

#[derive(Deserialize)]
struct PairInfo<'a> {
    altname: &'a str,
    #[serde(default)]
    wsname: &'a str,
    #[serde(default)]
    base: &'a str,
    #[serde(default)]
    quote: &'a str,
    #[serde(default)]
    pair_decimals: &'a str,
    lot_decimals: &'a str,
    #[serde(default)]
    ordermin: &'a str,
    #[serde(default)]
    costmin: &'a str,
    #[serde(default)]
    tick_size: &'a str,
    #[serde(default)]
    status: &'a str,
}

/// The names one Kraken spot pair goes by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairNames {
    /// The key of the AssetPairs result (`XXBTZUSD`), which REST results are keyed by.
    pub key: String,
    /// REST request name (`XBTUSD`).
    pub altname: String,
    /// WebSocket v1 name (`XBT/USD`).
    pub wsname: String,
    /// WebSocket v2 symbol (`BTC/USD`): v2 writes Bitcoin as BTC and Dogecoin as DOGE.
    pub ws_v2: String,
}

fn v2_asset(a: &str) -> &str {
    match a {
        "XBT" => "BTC",
        "XDG" => "DOGE",
        other => other,
    }
}

fn v2_symbol(p: &PairInfo) -> String {
    match p.wsname.split_once('/') {
        Some((b, q)) => format!("{}/{}", v2_asset(b), v2_asset(q)),
        None => p.altname.to_string(),
    }
}

fn pairs(text: &str) -> Result<Vec<(String, Value)>, DecodeError> {
    match result_of("kraken AssetPairs", text)? {
        Value::Object(m) => Ok(m.into_iter().collect()),
        _ => Err(DecodeError::malformed(
            "kraken AssetPairs result",
            "not an object",
        )),
    }
}

/// Name mapping from `GET /0/public/AssetPairs`.
pub fn parse_asset_pair_names(text: &str) -> Result<Vec<PairNames>, DecodeError> {
    pairs(text)?
        .iter()
        .map(|(key, v)| {
            let p: PairInfo = typed("kraken AssetPairs pair", v)?;
            Ok(PairNames {
                key: key.clone(),
                altname: p.altname.to_string(),
                wsname: p.wsname.to_string(),
                ws_v2: v2_symbol(&p),
            })
        })
        .collect()
}

/// 10^-decimals as a `Fixed` (Kraken states steps as decimal counts).
fn step(what: &str, decimals: &str) -> Result<Fixed, DecodeError> {
    let d: u32 = decimals
        .parse()
        .map_err(|_| DecodeError::malformed(what, format!("{decimals:?} is not a count")))?;
    if d > Fixed::DECIMALS {
        return Err(DecodeError::malformed(
            what,
            format!("{d} decimals is finer than keel's 8"),
        ));
    }
    Ok(Fixed::from_raw(10i64.pow(Fixed::DECIMALS - d)))
}

/// Instruments from `GET /0/public/AssetPairs`, named by their WebSocket v2 symbol (`BTC/USD`,
/// the name market data arrives under). `tick_size` (else 10^-pair_decimals), lot size
/// 10^-lot_decimals, `ordermin`, `costmin` as min notional; tradable only when `online`.
pub fn parse_asset_pairs(text: &str) -> Result<Vec<Instrument>, DecodeError> {
    pairs(text)?
        .iter()
        .map(|(key, v)| {
            let p: PairInfo = typed("kraken AssetPairs pair", v)?;
            let what = |f: &str| format!("kraken AssetPairs {key} {f}");
            let sym = v2_symbol(&p);
            let (base, quote) = match sym.split_once('/') {
                Some((b, q)) => (b.to_string(), q.to_string()),
                None => (p.base.to_string(), p.quote.to_string()),
            };
            let opt = |f: &str, t: &str| {
                if t.is_empty() {
                    Ok(Fixed::ZERO)
                } else {
                    dec(&what(f), t)
                }
            };
            Ok(Instrument {
                symbol: symbol(&what("wsname"), &sym)?,
                base,
                quote,
                tick_size: if p.tick_size.is_empty() {
                    step(&what("pair_decimals"), p.pair_decimals)?
                } else {
                    dec(&what("tick_size"), p.tick_size)?
                },
                lot_size: step(&what("lot_decimals"), p.lot_decimals)?,
                min_qty: opt("ordermin", p.ordermin)?,
                max_qty: Fixed::ZERO,
                min_notional: opt("costmin", p.costmin)?,
                contract_size: Fixed::ONE,
                trading: p.status == "online",
            })
        })
        .collect()
}
