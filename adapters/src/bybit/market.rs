//! Public market data: klines, trades, order books, tickers (WebSocket pushes and REST lists),
//! and instrument metadata.

use std::borrow::Cow;

use keel_engine::candle::{Candle, Interval};
use keel_engine::event::{BookTicker, Trade};
use keel_engine::fixed::Fixed;
use serde::Deserialize;
use serde_json::Value;

use super::util::{
    json_err, ms_to_ns, opt_dec, opt_dec_lossy, opt_i64, req_ms_to_ns, side, trade_id,
};
use crate::model::{
    DecodeError, DepthUpdate, FundingRate, Instrument, Level, VenueEvent, dec, dec_lossy, symbol,
};

/// A topic push: `{"topic":..,"type":..,"ts":..,"data":..}`. Private pushes carry
/// `creationTime` instead of `ts`.
#[derive(Deserialize)]
pub(crate) struct Push<'a, T> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub ts: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub cts: Option<i64>,
    #[serde(rename = "creationTime", default, deserialize_with = "opt_i64")]
    pub creation_time: Option<i64>,
    pub data: T,
}

#[derive(Deserialize)]
struct WsKline<'a> {
    #[serde(default, deserialize_with = "opt_i64")]
    start: Option<i64>,
    interval: &'a str,
    open: &'a str,
    high: &'a str,
    low: &'a str,
    close: &'a str,
    volume: &'a str,
    confirm: bool,
}

/// Bybit kline interval codes to nanoseconds. `M` (calendar month) has no fixed length and keel
/// bars need one, so it is unsupported rather than approximated.
pub(crate) fn interval_ns(code: &str) -> Result<i64, DecodeError> {
    const MIN: i64 = 60_000_000_000;
    let ns = match code {
        "1" => MIN,
        "3" => 3 * MIN,
        "5" => 5 * MIN,
        "15" => 15 * MIN,
        "30" => 30 * MIN,
        "60" => 60 * MIN,
        "120" => 120 * MIN,
        "240" => 240 * MIN,
        "360" => 360 * MIN,
        "720" => 720 * MIN,
        "D" => 1_440 * MIN,
        "W" => 7 * 1_440 * MIN,
        "M" => {
            return Err(DecodeError::Unsupported(
                "bybit monthly kline (interval M has no fixed length)".into(),
            ));
        }
        other => {
            return Err(DecodeError::Unsupported(format!(
                "bybit kline interval {other:?}"
            )));
        }
    };
    Ok(ns)
}

struct Ohlcv<'a> {
    open: &'a str,
    high: &'a str,
    low: &'a str,
    close: &'a str,
    volume: &'a str,
}

fn candle(
    what: &str,
    sym: keel_engine::symbol::Symbol,
    open_time_ms: i64,
    interval_ns: i64,
    v: Ohlcv<'_>,
) -> Result<Candle, DecodeError> {
    Ok(Candle {
        symbol: sym,
        open_time_ns: ms_to_ns(what, open_time_ms)?,
        interval_ns,
        open: dec(&format!("{what} open"), v.open)?,
        high: dec(&format!("{what} high"), v.high)?,
        low: dec(&format!("{what} low"), v.low)?,
        close: dec(&format!("{what} close"), v.close)?,
        // Volume is the venue's own sum and is never sent back, so rounding is harmless.
        volume: dec_lossy(&format!("{what} volume"), v.volume)?,
    })
}

/// `kline.{interval}.{symbol}`: the data carries no symbol, so it comes from the topic.
pub(crate) fn ws_kline(text: &str, topic: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit kline";
    let msg: Push<Vec<WsKline>> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    let sym_text = topic.splitn(3, '.').nth(2).unwrap_or("");
    let sym = symbol("bybit kline topic symbol", sym_text)?;
    let mut out = Vec::with_capacity(msg.data.len());
    for k in msg.data {
        let start = k
            .start
            .ok_or_else(|| DecodeError::malformed("bybit kline start", "missing"))?;
        let candle = candle(
            WHAT,
            sym,
            start,
            interval_ns(k.interval)?,
            Ohlcv {
                open: k.open,
                high: k.high,
                low: k.low,
                close: k.close,
                volume: k.volume,
            },
        )?;
        out.push(VenueEvent::Candle {
            candle,
            closed: k.confirm,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct WsTrade<'a> {
    #[serde(rename = "T", default, deserialize_with = "opt_i64")]
    time: Option<i64>,
    s: &'a str,
    #[serde(rename = "S")]
    side: &'a str,
    v: &'a str,
    p: &'a str,
    i: &'a str,
}

/// `publicTrade.{symbol}`; block trades (`BT`) are kept: they are real prints of the symbol.
pub(crate) fn ws_trades(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit publicTrade";
    let msg: Push<Vec<WsTrade>> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    msg.data
        .into_iter()
        .map(|t| {
            Ok(VenueEvent::Trade(Trade {
                symbol: symbol("bybit publicTrade s", t.s)?,
                ts_event_ns: req_ms_to_ns("bybit publicTrade T", t.time)?,
                price: dec("bybit publicTrade p", t.p)?,
                qty: dec("bybit publicTrade v", t.v)?,
                aggressor: side("bybit publicTrade S", t.side)?,
                trade_id: trade_id(t.i),
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct Book<'a> {
    s: &'a str,
    #[serde(borrow)]
    b: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    a: Vec<(&'a str, &'a str)>,
    u: u64,
    // REST books carry their timestamps inside `result`.
    #[serde(default, deserialize_with = "opt_i64")]
    ts: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    cts: Option<i64>,
}

fn levels(what: &str, raw: &[(&str, &str)]) -> Result<Vec<Level>, DecodeError> {
    raw.iter()
        .map(|(p, q)| Ok((dec(what, p)?, dec(what, q)?)))
        .collect()
}

fn depth(
    what: &str,
    book: &Book<'_>,
    snapshot: bool,
    ts_ms: Option<i64>,
) -> Result<DepthUpdate, DecodeError> {
    Ok(DepthUpdate {
        symbol: symbol(&format!("{what} s"), book.s)?,
        ts_event_ns: req_ms_to_ns(&format!("{what} ts"), ts_ms)?,
        snapshot,
        first_update_id: book.u,
        last_update_id: book.u,
        // Bybit has one update id per message: a delta is in sequence when its `u` is the
        // previous `u` + 1, which the client checks.
        prev_last_update_id: None,
        bids: levels(&format!("{what} b"), &book.b)?,
        asks: levels(&format!("{what} a"), &book.a)?,
        checksum: None,
    })
}

/// `orderbook.{depth}.{symbol}`. A `delta` with `u` = 1 is a fresh snapshot after a venue
/// service restart (Bybit docs, WebSocket orderbook `u`), so it is reported as a snapshot. The
/// event time is the matching-engine time `cts` when present, else the push time `ts`.
pub(crate) fn ws_orderbook(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit orderbook";
    let msg: Push<Book> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    let snapshot = match msg.kind.as_deref() {
        Some("snapshot") => true,
        Some("delta") => msg.data.u == 1,
        other => {
            return Err(DecodeError::malformed(
                "bybit orderbook type",
                format!("{other:?} is not snapshot or delta"),
            ));
        }
    };
    let ts = msg.cts.or(msg.ts);
    Ok(vec![VenueEvent::Depth(depth(
        WHAT, &msg.data, snapshot, ts,
    )?)])
}

/// REST `GET /v5/market/orderbook` result: always a full snapshot.
pub(crate) fn rest_orderbook(result: &Value) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST orderbook";
    let book = Book::deserialize(result).map_err(|e| json_err(WHAT, e))?;
    let ts = book.cts.or(book.ts);
    Ok(vec![VenueEvent::Depth(depth(WHAT, &book, true, ts)?)])
}

#[derive(Deserialize)]
pub(crate) struct Ticker<'a> {
    symbol: &'a str,
    #[serde(rename = "bid1Price", default, borrow)]
    bid1_price: Option<&'a str>,
    #[serde(rename = "bid1Size", default, borrow)]
    bid1_size: Option<&'a str>,
    #[serde(rename = "ask1Price", default, borrow)]
    ask1_price: Option<&'a str>,
    #[serde(rename = "ask1Size", default, borrow)]
    ask1_size: Option<&'a str>,
    #[serde(rename = "fundingRate", default, borrow)]
    funding_rate: Option<&'a str>,
    #[serde(rename = "nextFundingTime", default, deserialize_with = "opt_i64")]
    next_funding_time: Option<i64>,
    #[serde(rename = "markPrice", default, borrow)]
    mark_price: Option<&'a str>,
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// Book ticker when all four best bid/ask fields are present, funding when the rate and the
/// next funding time are. Linear ticker deltas omit unchanged fields (Bybit docs: "if a response
/// param is not found in the message, then its value has not changed"), so a delta can yield
/// neither; keel does not keep ticker state here, the client does if it wants it.
fn ticker_events(what: &str, t: &Ticker<'_>, ts_ms: i64) -> Result<Vec<VenueEvent>, DecodeError> {
    let mut out = Vec::new();
    let sym = symbol(&format!("{what} symbol"), t.symbol)?;
    let ts_event_ns = ms_to_ns(&format!("{what} ts"), ts_ms)?;
    if let (Some(bid), Some(bid_qty), Some(ask), Some(ask_qty)) = (
        non_empty(t.bid1_price),
        non_empty(t.bid1_size),
        non_empty(t.ask1_price),
        non_empty(t.ask1_size),
    ) {
        out.push(VenueEvent::BookTicker(BookTicker {
            symbol: sym,
            ts_event_ns,
            bid: dec(&format!("{what} bid1Price"), bid)?,
            bid_qty: dec(&format!("{what} bid1Size"), bid_qty)?,
            ask: dec(&format!("{what} ask1Price"), ask)?,
            ask_qty: dec(&format!("{what} ask1Size"), ask_qty)?,
        }));
    }
    if let (Some(rate), Some(next)) = (non_empty(t.funding_rate), t.next_funding_time) {
        out.push(VenueEvent::Funding(FundingRate {
            symbol: sym,
            rate: dec_lossy(&format!("{what} fundingRate"), rate)?,
            funding_time_ns: ms_to_ns(&format!("{what} nextFundingTime"), next)?,
            mark_price: opt_dec_lossy(&format!("{what} markPrice"), t.mark_price)?,
            ts_event_ns,
        }));
    }
    Ok(out)
}

/// `tickers.{symbol}`: see [`ticker_events`]. Spot and option tickers carry neither best bid/ask
/// (as `bid1Price`) nor funding and are unsupported; spot top of book comes from `orderbook.1`.
pub(crate) fn ws_tickers(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit tickers";
    let msg: Push<Ticker> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    let ts = msg
        .ts
        .ok_or_else(|| DecodeError::malformed("bybit tickers ts", "missing"))?;
    let out = ticker_events(WHAT, &msg.data, ts)?;
    if out.is_empty() {
        return Err(DecodeError::Unsupported(
            "bybit tickers without bid1/ask1 or funding fields (spot or option ticker, or a \
             delta that changed neither)"
                .into(),
        ));
    }
    Ok(out)
}

/// REST `GET /v5/market/tickers` list; the event time is the envelope's `time`.
pub(crate) fn rest_tickers(list: &[Value], time_ms: i64) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST tickers";
    let mut out = Vec::new();
    for item in list {
        let t = Ticker::deserialize(item).map_err(|e| json_err(WHAT, e))?;
        out.extend(ticker_events(WHAT, &t, time_ms)?);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct RestTrade<'a> {
    #[serde(rename = "execId")]
    exec_id: &'a str,
    symbol: &'a str,
    price: &'a str,
    size: &'a str,
    side: &'a str,
    #[serde(default, deserialize_with = "opt_i64")]
    time: Option<i64>,
}

/// REST `GET /v5/market/recent-trade` list (newest first, as the venue sends it).
pub(crate) fn rest_trades(list: &[Value]) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST recent-trade";
    list.iter()
        .map(|item| {
            let t = RestTrade::deserialize(item).map_err(|e| json_err(WHAT, e))?;
            Ok(VenueEvent::Trade(Trade {
                symbol: symbol("bybit REST recent-trade symbol", t.symbol)?,
                ts_event_ns: req_ms_to_ns("bybit REST recent-trade time", t.time)?,
                price: dec("bybit REST recent-trade price", t.price)?,
                qty: dec("bybit REST recent-trade size", t.size)?,
                aggressor: side("bybit REST recent-trade side", t.side)?,
                trade_id: trade_id(t.exec_id),
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct FundingRow<'a> {
    symbol: &'a str,
    #[serde(rename = "fundingRate")]
    funding_rate: &'a str,
    #[serde(rename = "fundingRateTimestamp", default, deserialize_with = "opt_i64")]
    ts: Option<i64>,
}

/// REST `GET /v5/market/funding/history`: settled rates, so the event time is the funding time.
pub(crate) fn rest_funding_history(list: &[Value]) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST funding history";
    list.iter()
        .map(|item| {
            let f = FundingRow::deserialize(item).map_err(|e| json_err(WHAT, e))?;
            let ts = req_ms_to_ns("bybit REST funding fundingRateTimestamp", f.ts)?;
            Ok(VenueEvent::Funding(FundingRate {
                symbol: symbol("bybit REST funding symbol", f.symbol)?,
                rate: dec_lossy("bybit REST funding fundingRate", f.funding_rate)?,
                funding_time_ns: ts,
                mark_price: Fixed::ZERO,
                ts_event_ns: ts,
            }))
        })
        .collect()
}

/// Parse the REST envelope and require `retCode` 0, for the helpers that return something other
/// than events.
fn ok_result<'v>(what: &str, v: &'v Value) -> Result<&'v Value, DecodeError> {
    let code = v.get("retCode").and_then(super::rest::code_of);
    match code {
        Some(0) => {}
        Some(c) => {
            let msg = v.get("retMsg").and_then(Value::as_str).unwrap_or("");
            return Err(DecodeError::malformed(
                what,
                format!("error response retCode {c}: {msg} (see bybit::parse_error)"),
            ));
        }
        None => return Err(DecodeError::malformed(what, "missing retCode")),
    }
    v.get("result")
        .ok_or_else(|| DecodeError::malformed(what, "missing result"))
}

/// Klines from REST `GET /v5/market/kline`, for the `interval` the request asked for (the
/// response does not repeat it, which is why [`super::decode`] cannot decode this body).
///
/// Rows are `[start, open, high, low, close, volume, turnover]` strings and Bybit sends them
/// **newest first**; that order is kept. A bar is `closed` when it ended at or before the
/// envelope's server `time`: the newest bar of a range reaching "now" is still forming.
pub fn parse_klines(text: &str, interval: Interval) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST kline";
    let v: Value = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    let result = ok_result(WHAT, &v)?;
    let server_ms = v.get("time").and_then(Value::as_i64);
    let sym_text = result
        .get("symbol")
        .and_then(Value::as_str)
        .ok_or_else(|| DecodeError::malformed("bybit REST kline symbol", "missing"))?;
    let sym = symbol("bybit REST kline symbol", sym_text)?;
    let rows = result
        .get("list")
        .and_then(Value::as_array)
        .ok_or_else(|| DecodeError::malformed("bybit REST kline list", "missing"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let cells: Vec<&str> = row
            .as_array()
            .ok_or_else(|| DecodeError::malformed("bybit REST kline row", "not an array"))?
            .iter()
            .map(|c| c.as_str().unwrap_or(""))
            .collect();
        let [start, open, high, low, close, volume, ..] = cells.as_slice() else {
            return Err(DecodeError::malformed(
                "bybit REST kline row",
                format!("{} cells, need at least 6", cells.len()),
            ));
        };
        let start_ms: i64 = start
            .parse()
            .map_err(|_| DecodeError::malformed("bybit REST kline start", format!("{start:?}")))?;
        let candle = candle(
            WHAT,
            sym,
            start_ms,
            interval.ns,
            Ohlcv {
                open,
                high,
                low,
                close,
                volume,
            },
        )?;
        let closed = match server_ms.and_then(|t| t.checked_mul(1_000_000)) {
            Some(now_ns) => candle.close_time_ns() <= now_ns,
            None => false,
        };
        out.push(VenueEvent::Candle { candle, closed });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct PriceFilter<'a> {
    #[serde(rename = "tickSize")]
    tick_size: &'a str,
}

#[derive(Deserialize)]
struct LotSizeFilter<'a> {
    #[serde(rename = "basePrecision", default, borrow)]
    base_precision: Option<&'a str>,
    #[serde(rename = "qtyStep", default, borrow)]
    qty_step: Option<&'a str>,
    #[serde(rename = "minOrderQty", default, borrow)]
    min_order_qty: Option<&'a str>,
    #[serde(rename = "maxOrderQty", default, borrow)]
    max_order_qty: Option<&'a str>,
    #[serde(rename = "maxLimitOrderQty", default, borrow)]
    max_limit_order_qty: Option<&'a str>,
    #[serde(rename = "minNotionalValue", default, borrow)]
    min_notional_value: Option<&'a str>,
    #[serde(rename = "minOrderAmt", default, borrow)]
    min_order_amt: Option<&'a str>,
}

#[derive(Deserialize)]
struct InstrumentRow<'a> {
    symbol: &'a str,
    #[serde(default, borrow)]
    status: Option<&'a str>,
    #[serde(rename = "baseCoin")]
    base_coin: &'a str,
    #[serde(rename = "quoteCoin")]
    quote_coin: &'a str,
    #[serde(rename = "contractType", default, borrow)]
    contract_type: Option<&'a str>,
    #[serde(rename = "optionsType", default, borrow)]
    options_type: Option<&'a str>,
    #[serde(rename = "priceFilter", borrow)]
    price_filter: PriceFilter<'a>,
    #[serde(rename = "lotSizeFilter", borrow)]
    lot_size_filter: LotSizeFilter<'a>,
}

fn first_non_empty<'a>(options: &[Option<&'a str>]) -> Option<&'a str> {
    options.iter().copied().flatten().find(|s| !s.is_empty())
}

/// Trading rules from REST `GET /v5/market/instruments-info` (spot or linear).
///
/// Lot size is `qtyStep` (linear) or `basePrecision` (spot). Minimum quantity is `minOrderQty`;
/// Bybit documents that spot no longer checks it and checks `minOrderAmt` instead, which is the
/// spot `min_notional` (linear: `minNotionalValue`). Maximum quantity is the limit-order maximum
/// (`maxLimitOrderQty`, else `maxOrderQty`). Inverse and option instruments are unsupported
/// (their quantities are not in the base asset).
pub fn parse_instruments(text: &str) -> Result<Vec<Instrument>, DecodeError> {
    const WHAT: &str = "bybit instruments-info";
    let v: Value = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    let result = ok_result(WHAT, &v)?;
    let rows = result
        .get("list")
        .and_then(Value::as_array)
        .ok_or_else(|| DecodeError::malformed("bybit instruments-info list", "missing"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let r = InstrumentRow::deserialize(row).map_err(|e| json_err(WHAT, e))?;
        if r.options_type.is_some() {
            return Err(DecodeError::Unsupported(format!(
                "bybit option instrument {}",
                r.symbol
            )));
        }
        if let Some(ct) = r.contract_type.filter(|c| c.starts_with("Inverse")) {
            return Err(DecodeError::Unsupported(format!(
                "bybit {ct} instrument {}",
                r.symbol
            )));
        }
        let lots = &r.lot_size_filter;
        let lot_text = first_non_empty(&[lots.qty_step, lots.base_precision]).ok_or_else(|| {
            DecodeError::malformed(
                "bybit instruments-info lotSizeFilter",
                "neither qtyStep nor basePrecision",
            )
        })?;
        let lot_size = dec("bybit instruments-info lot size", lot_text)?;
        let min_qty = match first_non_empty(&[lots.min_order_qty]) {
            Some(t) => dec("bybit instruments-info minOrderQty", t)?,
            None => lot_size,
        };
        out.push(Instrument {
            symbol: symbol("bybit instruments-info symbol", r.symbol)?,
            base: r.base_coin.to_string(),
            quote: r.quote_coin.to_string(),
            tick_size: dec("bybit instruments-info tickSize", r.price_filter.tick_size)?,
            lot_size,
            min_qty,
            max_qty: opt_dec(
                "bybit instruments-info maxOrderQty",
                first_non_empty(&[lots.max_limit_order_qty, lots.max_order_qty]),
            )?,
            min_notional: opt_dec(
                "bybit instruments-info min notional",
                first_non_empty(&[lots.min_notional_value, lots.min_order_amt]),
            )?,
            contract_size: Fixed::ONE,
            trading: r.status == Some("Trading"),
        });
    }
    Ok(out)
}
