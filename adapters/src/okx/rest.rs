//! OKX REST response bodies: `{"code":"0","msg":"","data":[..]}`.

use keel_engine::candle::Interval;
use keel_engine::fixed::{Fixed, FixedError};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ws::{
    self, AccountRow, AlgoRow, BookRow, DetailRow, FundingRow, OrderRow, PositionRow, TradeRow,
};
use super::{keel_fee, ms_to_ns, opt_dec};
use crate::model::{
    Control, DecodeError, DepthUpdate, FillEvent, Instrument, VenueEvent, dec, symbol,
};

/// What a REST data row is, told from its keys (OKX bodies do not name the endpoint).
#[derive(Debug, PartialEq)]
enum RowKind {
    Candle,
    Ack,
    Order,
    Algo,
    Fill,
    Account,
    BalanceDetail,
    Position,
    Instrument,
    Book,
    Funding,
    Trade,
    Other,
}

fn row_kind(row: &Value) -> RowKind {
    if row.is_array() {
        return RowKind::Candle;
    }
    let Some(o) = row.as_object() else {
        return RowKind::Other;
    };
    let has = |k: &str| o.contains_key(k);
    if has("sCode") {
        RowKind::Ack
    } else if has("instId") && has("ordId") && has("state") && has("ordType") && has("accFillSz") {
        RowKind::Order
    } else if has("instId") && has("algoId") && has("state") && has("ordType") {
        RowKind::Algo
    } else if has("instId") && has("fillPx") && has("tradeId") && !has("state") {
        RowKind::Fill
    } else if has("details") && has("totalEq") {
        RowKind::Account
    } else if has("ccy") && has("availBal") && has("frozenBal") {
        RowKind::BalanceDetail
    } else if has("instId") && has("pos") && has("posSide") {
        RowKind::Position
    } else if has("instType") && has("tickSz") && has("lotSz") {
        RowKind::Instrument
    } else if has("asks") && has("bids") {
        RowKind::Book
    } else if has("instId") && has("fundingRate") && has("fundingTime") {
        RowKind::Funding
    } else if has("instId") && has("tradeId") && has("px") && has("sz") && has("side") {
        RowKind::Trade
    } else {
        RowKind::Other
    }
}

fn typed<'v, T: Deserialize<'v>>(what: &str, row: &'v Value) -> Result<T, DecodeError> {
    T::deserialize(row).map_err(|e| DecodeError::malformed(what, e.to_string()))
}

/// A transaction-detail (fills) row.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FillRow<'a> {
    inst_id: &'a str,
    trade_id: &'a str,
    #[serde(default)]
    ord_id: &'a str,
    #[serde(default)]
    cl_ord_id: &'a str,
    fill_px: &'a str,
    fill_sz: &'a str,
    side: &'a str,
    #[serde(default)]
    exec_type: &'a str,
    #[serde(default)]
    fee_ccy: &'a str,
    #[serde(default)]
    fee: &'a str,
    #[serde(default)]
    fill_time: &'a str,
    #[serde(default)]
    ts: &'a str,
}

/// A fill. OKX sometimes leaves `fee` empty (seen in captures); that is a zero fee.
fn fill_row(f: &FillRow) -> Result<VenueEvent, DecodeError> {
    let ts = if f.fill_time.is_empty() {
        f.ts
    } else {
        f.fill_time
    };
    Ok(VenueEvent::Fill(FillEvent {
        symbol: symbol("okx fills instId", f.inst_id)?,
        client_order_id: f.cl_ord_id.to_string(),
        venue_order_id: f.ord_id.to_string(),
        trade_id: f.trade_id.to_string(),
        side: super::side("okx fills side", f.side)?,
        price: dec("okx fills fillPx", f.fill_px)?,
        qty: dec("okx fills fillSz", f.fill_sz)?,
        fee: keel_fee("okx fills fee", f.fee)?,
        fee_asset: f.fee_ccy.to_string(),
        liquidity: ws::liquidity(f.exec_type),
        ts_event_ns: ms_to_ns("okx fills ts", ts)?,
    }))
}

fn ack_row(row: &Value) -> VenueEvent {
    let empty = Map::new();
    let r = row.as_object().unwrap_or(&empty);
    let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    let s_code = get("sCode");
    let ok = s_code == "0";
    VenueEvent::Control(Control::Response {
        id: ws::ack_id(r),
        ok,
        detail: if ok {
            String::new()
        } else {
            format!("{s_code} {}", get("sMsg")).trim().to_string()
        },
    })
}

fn rows_events(kind: &RowKind, rows: &[Value]) -> Result<Vec<VenueEvent>, DecodeError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match kind {
            RowKind::Ack => out.push(ack_row(row)),
            RowKind::Order => {
                let o: OrderRow = typed("okx order", row)?;
                // Order lists report state; fills come from the fills endpoint.
                out.extend(ws::order_row_events("okx order", &o, false)?);
            }
            RowKind::Algo => {
                let a: AlgoRow = typed("okx algo order", row)?;
                out.push(ws::algo_row_event("okx algo order", &a)?);
            }
            RowKind::Fill => out.push(fill_row(&typed("okx fills", row)?)?),
            RowKind::Account => {
                let a: AccountRow = typed("okx balance", row)?;
                out.extend(ws::account_row("okx balance", &a)?);
            }
            RowKind::BalanceDetail => {
                let d: DetailRow = typed("okx balance detail", row)?;
                out.push(ws::detail_row("okx balance detail", &d, "")?);
            }
            RowKind::Position => {
                let p: PositionRow = typed("okx positions", row)?;
                out.push(ws::position_row("okx positions", &p)?);
            }
            RowKind::Funding => {
                let f: FundingRow = typed("okx funding rate", row)?;
                out.push(ws::funding_row("okx funding rate", &f)?);
            }
            RowKind::Trade => {
                let t: TradeRow = typed("okx trades", row)?;
                out.push(ws::trade_row("okx trades", &t)?);
            }
            RowKind::Candle => {
                return Err(DecodeError::Unsupported(
                    "okx REST candles: the body names neither instrument nor bar, use \
                     okx::parse_candles"
                        .into(),
                ));
            }
            RowKind::Book => {
                return Err(DecodeError::Unsupported(
                    "okx REST order book: the body does not name the instrument, use \
                     okx::parse_order_book"
                        .into(),
                ));
            }
            RowKind::Instrument => {
                return Err(DecodeError::Unsupported(
                    "okx instruments: use okx::parse_instruments".into(),
                ));
            }
            RowKind::Other => {
                let keys: Vec<&str> = row
                    .as_object()
                    .map(|o| o.keys().take(4).map(String::as_str).collect())
                    .unwrap_or_default();
                return Err(DecodeError::Unsupported(format!(
                    "okx REST rows with keys {keys:?}"
                )));
            }
        }
    }
    Ok(out)
}

/// A REST envelope. A non-zero `code` (or a failed per-item `sCode`) becomes a
/// `Control::Response` with `ok: false`; classify it with [`super::parse_error`].
pub(super) fn decode_rest(obj: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    let rows: &[Value] = match obj.get("data") {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => &[],
        Some(_) => return Err(DecodeError::malformed("okx REST data", "not an array")),
    };
    let top_ok = matches!(obj.get("code"), Some(Value::String(c)) if c == "0");
    let has_acks = rows.first().is_some_and(|r| row_kind(r) == RowKind::Ack);
    if !top_ok && !has_acks {
        let (_, detail) = ws::ack_rows(obj);
        return Ok(vec![VenueEvent::Control(Control::Response {
            id: String::new(),
            ok: false,
            detail,
        })]);
    }
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    rows_events(&row_kind(first), rows)
}

/// One REST row without its envelope (as some captures store them).
pub(super) fn decode_bare_row(obj: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    let row = Value::Object(obj.clone());
    match row_kind(&row) {
        RowKind::Other => Err(DecodeError::Unsupported(
            "okx JSON object that is neither a message nor a known REST row".into(),
        )),
        kind => rows_events(&kind, std::slice::from_ref(&row)),
    }
}

/// The `data` array of a REST envelope (code "0") or of a WebSocket push.
fn data_rows(what: &str, text: &str) -> Result<Vec<Value>, DecodeError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::malformed(what, format!("not JSON: {e}")))?;
    if let Some(code) = v.get("code")
        && code.as_str() != Some("0")
    {
        return Err(DecodeError::malformed(
            what,
            format!(
                "error response {code} {}",
                v.get("msg").and_then(Value::as_str).unwrap_or("")
            ),
        ));
    }
    match v.get("data") {
        Some(Value::Array(a)) => Ok(a.clone()),
        _ => Err(DecodeError::malformed(format!("{what} data"), "missing")),
    }
}

/// Candles from `GET /api/v5/market/candles` or `history-candles` for `inst_id` at `interval`
/// (the body names neither), oldest first (OKX sends newest first). Rows without `confirm`
/// count as closed.
pub fn parse_candles(
    text: &str,
    inst_id: &str,
    interval: Interval,
) -> Result<Vec<VenueEvent>, DecodeError> {
    let rows = data_rows("okx candles", text)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let cells: Vec<&str> = typed("okx candles row", row)?;
        out.push(ws::candle_row(
            "okx candles",
            inst_id,
            interval.ns,
            &cells,
            true,
        )?);
    }
    out.sort_by_key(|e| match e {
        VenueEvent::Candle { candle, .. } => candle.open_time_ns,
        _ => 0,
    });
    Ok(out)
}

/// The book from `GET /api/v5/market/books` for `inst_id` (the body does not name it), as a
/// snapshot. REST books carry no sequence id, so the ids are zero.
pub fn parse_order_book(text: &str, inst_id: &str) -> Result<DepthUpdate, DecodeError> {
    let rows = data_rows("okx books", text)?;
    let Some(row) = rows.first() else {
        return Err(DecodeError::malformed("okx books data", "empty"));
    };
    let b: BookRow = typed("okx books", row)?;
    Ok(DepthUpdate {
        symbol: symbol("okx books instId", inst_id)?,
        ts_event_ns: ms_to_ns("okx books ts", b.ts)?,
        snapshot: true,
        first_update_id: 0,
        last_update_id: 0,
        prev_last_update_id: None,
        bids: ws::levels("okx books bids", &b.bids)?,
        asks: ws::levels("okx books asks", &b.asks)?,
        checksum: None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstrumentRow<'a> {
    inst_id: &'a str,
    #[serde(default)]
    base_ccy: &'a str,
    #[serde(default)]
    quote_ccy: &'a str,
    #[serde(default)]
    uly: &'a str,
    #[serde(default)]
    inst_family: &'a str,
    #[serde(default)]
    settle_ccy: &'a str,
    tick_sz: &'a str,
    lot_sz: &'a str,
    #[serde(default)]
    min_sz: &'a str,
    #[serde(default)]
    max_lmt_sz: &'a str,
    #[serde(default)]
    max_mkt_sz: &'a str,
    #[serde(default)]
    ct_val: &'a str,
    state: &'a str,
}

/// A size cap, `None` when absent or beyond what keel can hold (OKX writes "no limit" as
/// 999999999999, which is above `Fixed`'s range).
fn cap(what: &str, text: &str) -> Result<Option<Fixed>, DecodeError> {
    if text.is_empty() {
        return Ok(None);
    }
    match Fixed::parse_exact(text) {
        Ok(v) if v > Fixed::ZERO => Ok(Some(v)),
        Ok(_) | Err(FixedError::Overflow(_)) => Ok(None),
        Err(e) => Err(DecodeError::malformed(what, format!("{text:?}: {e}"))),
    }
}

fn instrument(row: &InstrumentRow) -> Result<Instrument, DecodeError> {
    let what = |field: &str| format!("okx instrument {} {field}", row.inst_id);
    let (base, quote) = if !row.base_ccy.is_empty() {
        (row.base_ccy.to_string(), row.quote_ccy.to_string())
    } else {
        // Derivatives name their pair in the underlying / family, e.g. "BTC-USDT".
        let family = if row.inst_family.is_empty() {
            row.uly
        } else {
            row.inst_family
        };
        match family.split_once('-') {
            Some((b, q)) => (b.to_string(), q.to_string()),
            None => (family.to_string(), row.settle_ccy.to_string()),
        }
    };
    // Limit and market orders have separate caps; the smaller one holds for any order.
    let max_qty = match (
        cap(&what("maxLmtSz"), row.max_lmt_sz)?,
        cap(&what("maxMktSz"), row.max_mkt_sz)?,
    ) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => Fixed::ZERO,
    };
    Ok(Instrument {
        symbol: symbol(&what("instId"), row.inst_id)?,
        base,
        quote,
        tick_size: dec(&what("tickSz"), row.tick_sz)?,
        lot_size: dec(&what("lotSz"), row.lot_sz)?,
        min_qty: opt_dec(&what("minSz"), row.min_sz)?,
        max_qty,
        min_notional: Fixed::ZERO,
        contract_size: if row.ct_val.is_empty() {
            Fixed::ONE
        } else {
            dec(&what("ctVal"), row.ct_val)?
        },
        trading: row.state == "live",
    })
}

/// Instruments from `GET /api/v5/public/instruments` (or the `instruments` channel push).
/// `contract_size` is `ctVal` for derivatives (sizes are in contracts), one for spot; OKX has
/// no minimum notional, so `min_notional` is zero.
pub fn parse_instruments(text: &str) -> Result<Vec<Instrument>, DecodeError> {
    let rows = data_rows("okx instruments", text)?;
    rows.iter()
        .map(|row| instrument(&typed::<InstrumentRow>("okx instrument", row)?))
        .collect()
}
