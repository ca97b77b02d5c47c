//! The kline (and server time) dialects the mock speaks: parameters, paging semantics, limits, row layout and
//! error bodies of each venue, written from the venues' documentation, independently of the
//! codecs (which the tests check against it).

use serde_json::{Value, json};

use super::{MockBar, MockConfig};
use crate::model::Venue;

/// Kraken's OHLC keeps the latest 720 bars.
pub(super) const KRAKEN_WINDOW: usize = 720;
/// OKX `market/candles` serves the latest 1,440 bars.
const OKX_RECENT: usize = 1440;

pub(super) struct Answer {
    pub status: u16,
    pub body: String,
}

fn ok(body: Value) -> Answer {
    Answer {
        status: 200,
        body: body.to_string(),
    }
}

fn err(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body: body.to_string(),
    }
}

/// The venue's names of an interval: (Binance, Bybit, OKX, Kraken minutes).
fn codes(interval_ms: i64) -> Option<(&'static str, &'static str, &'static str, i64)> {
    const M: i64 = 60_000;
    Some(match interval_ms {
        M => ("1m", "1", "1m", 1),
        x if x == 3 * M => ("3m", "3", "3m", 0),
        x if x == 5 * M => ("5m", "5", "5m", 5),
        x if x == 15 * M => ("15m", "15", "15m", 15),
        x if x == 30 * M => ("30m", "30", "30m", 30),
        x if x == 60 * M => ("1h", "60", "1H", 60),
        x if x == 240 * M => ("4h", "240", "4H", 240),
        x if x == 1440 * M => ("1d", "D", "1Dutc", 1440),
        _ => return None,
    })
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `Ok(None)` when absent, `Err(())` when present but not an integer.
fn int_param(query: &[(String, String)], key: &str) -> Result<Option<i64>, ()> {
    param(query, key)
        .map(|v| v.parse::<i64>().map_err(|_| ()))
        .transpose()
}

/// Bars that exist at `now_ms` (the forming one included).
fn existing(config: &MockConfig, now_ms: i64) -> &[MockBar] {
    let n = config.bars.partition_point(|b| b.open_time_ms <= now_ms);
    &config.bars[..n]
}

pub(super) fn answer(
    config: &MockConfig,
    path: &str,
    query: &[(String, String)],
    now_ms: i64,
) -> Answer {
    match (config.venue, path) {
        (Venue::BinanceSpot, "/api/v3/klines") => binance(config, query, now_ms, 1000),
        (Venue::BinanceUsdm, "/fapi/v1/klines") => binance(config, query, now_ms, 1500),
        (Venue::Bybit, "/v5/market/kline") => bybit(config, query, now_ms),
        (Venue::Okx, "/api/v5/market/candles") => okx(config, query, now_ms, true),
        (Venue::Okx, "/api/v5/market/history-candles") => okx(config, query, now_ms, false),
        (Venue::Kraken, "/0/public/OHLC") => kraken(config, query, now_ms),
        (Venue::BinanceSpot, "/api/v3/time") | (Venue::BinanceUsdm, "/fapi/v1/time") => {
            ok(json!({ "serverTime": now_ms }))
        }
        (Venue::Bybit, "/v5/market/time") => ok(json!({
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "timeSecond": (now_ms / 1000).to_string(),
                "timeNano": (i128::from(now_ms) * 1_000_000).to_string()
            },
            "retExtInfo": {},
            "time": now_ms
        })),
        (Venue::Okx, "/api/v5/public/time") => {
            ok(json!({"code": "0", "msg": "", "data": [{"ts": now_ms.to_string()}]}))
        }
        (Venue::Kraken, "/0/public/Time") => ok(json!({
            "error": [],
            "result": {"unixtime": now_ms.div_euclid(1000), "rfc1123": super::http_date(now_ms)}
        })),
        (Venue::BinanceSpot | Venue::BinanceUsdm, _) => err(
            404,
            json!({"code": -1000, "msg": format!("mock: no route {path}")}),
        ),
        (Venue::Bybit, _) => err(404, json!({"retCode": 10404, "retMsg": "route not found"})),
        (Venue::Okx, _) => err(
            404,
            json!({"code": "50000", "msg": "mock: no such route", "data": []}),
        ),
        (Venue::Kraken, _) => err(404, json!({"error": ["EGeneral:Unknown method"]})),
    }
}

fn binance(config: &MockConfig, q: &[(String, String)], now_ms: i64, max_limit: i64) -> Answer {
    let bad = |code: i64, msg: &str| err(400, json!({"code": code, "msg": msg}));
    if param(q, "symbol") != Some(config.symbol.as_str()) {
        return bad(-1121, "Invalid symbol.");
    }
    let Some((code, ..)) = codes(config.interval_ms) else {
        return bad(-1120, "Invalid interval.");
    };
    if param(q, "interval") != Some(code) {
        return bad(-1120, "Invalid interval.");
    }
    let (Ok(start), Ok(end), Ok(limit)) = (
        int_param(q, "startTime"),
        int_param(q, "endTime"),
        int_param(q, "limit"),
    ) else {
        return bad(-1100, "Illegal characters found in a parameter.");
    };
    let limit = limit.unwrap_or(500);
    if !(1..=max_limit).contains(&limit) {
        return bad(-1130, "Data sent for parameter 'limit' is not valid.");
    }
    let limit = limit as usize;
    let in_range: Vec<&MockBar> = existing(config, now_ms)
        .iter()
        .filter(|b| start.is_none_or(|s| b.open_time_ms >= s))
        .filter(|b| end.is_none_or(|e| b.open_time_ms <= e))
        .collect();
    // From startTime forward when given, else the newest bars.
    let page: &[&MockBar] = if start.is_some() {
        &in_range[..in_range.len().min(limit)]
    } else {
        &in_range[in_range.len().saturating_sub(limit)..]
    };
    let rows: Vec<Value> = page
        .iter()
        .map(|b| {
            json!([
                b.open_time_ms,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
                b.open_time_ms + config.interval_ms - 1,
                "0",
                1,
                "0",
                "0",
                "0"
            ])
        })
        .collect();
    ok(Value::Array(rows))
}

fn bybit(config: &MockConfig, q: &[(String, String)], now_ms: i64) -> Answer {
    let bad = |code: i64, msg: &str| {
        ok(json!({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms}))
    };
    if !matches!(param(q, "category"), Some("spot" | "linear" | "inverse")) {
        return bad(10001, "params error: category invalid");
    }
    if param(q, "symbol") != Some(config.symbol.as_str()) {
        return bad(10001, "params error: symbol invalid");
    }
    let Some((_, code, ..)) = codes(config.interval_ms) else {
        return bad(10001, "params error: interval invalid");
    };
    if param(q, "interval") != Some(code) {
        return bad(10001, "params error: interval invalid");
    }
    let (Ok(start), Ok(end), Ok(limit)) = (
        int_param(q, "start"),
        int_param(q, "end"),
        int_param(q, "limit"),
    ) else {
        return bad(10001, "params error");
    };
    let limit = limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return bad(10001, "params error: limit invalid");
    }
    let in_range: Vec<&MockBar> = existing(config, now_ms)
        .iter()
        .filter(|b| start.is_none_or(|s| b.open_time_ms >= s))
        .filter(|b| end.is_none_or(|e| b.open_time_ms <= e))
        .collect();
    // The newest `limit` bars of the range, newest first.
    let rows: Vec<Value> = in_range
        .iter()
        .rev()
        .take(limit as usize)
        .map(|b| {
            json!([
                b.open_time_ms.to_string(),
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
                "0"
            ])
        })
        .collect();
    ok(json!({
        "retCode": 0,
        "retMsg": "OK",
        "result": {"category": param(q, "category"), "symbol": config.symbol, "list": rows},
        "retExtInfo": {},
        "time": now_ms
    }))
}

fn okx(config: &MockConfig, q: &[(String, String)], now_ms: i64, recent: bool) -> Answer {
    let bad = |code: &str, msg: &str| err(400, json!({"code": code, "msg": msg, "data": []}));
    if param(q, "instId") != Some(config.symbol.as_str()) {
        return ok(json!({"code": "51001", "msg": "Instrument ID does not exist", "data": []}));
    }
    let Some((_, _, bar, _)) = codes(config.interval_ms) else {
        return bad("51000", "Parameter bar error");
    };
    if param(q, "bar") != Some(bar) {
        return bad("51000", "Parameter bar error");
    }
    let (Ok(after), Ok(before), Ok(limit)) = (
        int_param(q, "after"),
        int_param(q, "before"),
        int_param(q, "limit"),
    ) else {
        return bad("51000", "Parameter error");
    };
    let limit = limit.unwrap_or(100);
    if !(1..=300).contains(&limit) {
        return bad("51000", "Parameter limit error");
    }
    let all = existing(config, now_ms);
    let served = if recent {
        &all[all.len().saturating_sub(OKX_RECENT)..]
    } else {
        all
    };
    let spot = config.symbol.split('-').count() == 2;
    // Newest first: the newest `limit` bars older than `after` and newer than `before`.
    let rows: Vec<Value> = served
        .iter()
        .rev()
        .filter(|b| after.is_none_or(|a| b.open_time_ms < a))
        .filter(|b| before.is_none_or(|x| b.open_time_ms > x))
        .take(limit as usize)
        .map(|b| {
            let confirm = if b.open_time_ms + config.interval_ms <= now_ms {
                "1"
            } else {
                "0"
            };
            // Spot: vol in base, volCcy in quote. Derivatives: vol in contracts, volCcy in
            // base (what keel stores).
            let (vol, vol_ccy) = if spot {
                (b.volume.as_str(), "0")
            } else {
                ("0", b.volume.as_str())
            };
            json!([
                b.open_time_ms.to_string(),
                b.open,
                b.high,
                b.low,
                b.close,
                vol,
                vol_ccy,
                "0",
                confirm
            ])
        })
        .collect();
    ok(json!({"code": "0", "msg": "", "data": rows}))
}

fn kraken(config: &MockConfig, q: &[(String, String)], now_ms: i64) -> Answer {
    let fail = |e: &str| ok(json!({"error": [e]}));
    if param(q, "pair") != Some(config.symbol.as_str()) {
        return fail("EQuery:Unknown asset pair");
    }
    let Some((.., minutes)) = codes(config.interval_ms).filter(|c| c.3 > 0) else {
        return fail("EGeneral:Invalid arguments");
    };
    if param(q, "interval").and_then(|v| v.parse::<i64>().ok()) != Some(minutes) {
        return fail("EGeneral:Invalid arguments");
    }
    let Ok(since_s) = int_param(q, "since") else {
        return fail("EGeneral:Invalid arguments");
    };
    let all = existing(config, now_ms);
    let window = &all[all.len().saturating_sub(KRAKEN_WINDOW)..];
    let page: Vec<&MockBar> = window
        .iter()
        .filter(|b| since_s.is_none_or(|s| b.open_time_ms / 1000 > s))
        .take(config.kraken_page.max(1))
        .collect();
    let committed = |b: &MockBar| b.open_time_ms + config.interval_ms <= now_ms;
    let last = page
        .iter()
        .rev()
        .find(|b| committed(b))
        .map_or(since_s.unwrap_or(0), |b| b.open_time_ms / 1000);
    let rows: Vec<Value> = page
        .iter()
        .map(|b| {
            json!([
                b.open_time_ms / 1000,
                b.open,
                b.high,
                b.low,
                b.close,
                b.close,
                b.volume,
                1
            ])
        })
        .collect();
    let mut result = serde_json::Map::new();
    result.insert(config.symbol.clone(), Value::Array(rows));
    result.insert("last".into(), json!(last));
    ok(json!({"error": [], "result": result}))
}

/// Status and body of a rate-limit refusal (`banned`: the venue's IP ban).
pub(super) fn rate_limited(venue: Venue, banned: bool) -> (u16, String) {
    match (venue, banned) {
        (Venue::BinanceSpot | Venue::BinanceUsdm, false) => (
            429,
            json!({"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE."}).to_string(),
        ),
        (Venue::BinanceSpot | Venue::BinanceUsdm, true) => (
            418,
            json!({"code": -1003, "msg": "Way too much request weight used; IP banned until 1700000000000."}).to_string(),
        ),
        (Venue::Bybit, true) => (403, "access too frequent".into()),
        (Venue::Okx, _) => (
            429,
            json!({"code": "50011", "msg": "Too Many Requests", "data": []}).to_string(),
        ),
        (Venue::Kraken, _) => (
            429,
            json!({"error": ["EGeneral:Too many requests"]}).to_string(),
        ),
        (Venue::Bybit, false) => (429, "Too Many Requests".into()),
    }
}

pub(super) fn server_error(venue: Venue) -> String {
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => json!({
            "code": -1000,
            "msg": "An unknown error occurred while processing the request."
        })
        .to_string(),
        Venue::Bybit | Venue::Okx | Venue::Kraken => "Internal Server Error".into(),
    }
}
