//! Scripts for the WebSocket mock: frames in each venue's public-stream format (modelled on the
//! recorded payloads under `adapters/tests/data`), for one instrument, with known values so a
//! test can check what the client decoded:
//!
//! | stream | values |
//! |---|---|
//! | 1m kline opening at [`T0_MS`] | open 100.5, high 102, low 99, close 101.25, volume 3.5, not closed |
//! | trade | id 1001, price 101.25, qty 0.5, the buyer was the taker |
//! | best bid/ask | bid 101.2 × 1.5, ask 101.3 × 2 |
//! | depth | [`depth_frames`]: consecutive ids from [`DEPTH_FIRST_ID`], bid 101.2 × (1 + i) |
//!
//! Symbols are the venue's own (`BTCUSDT`, `BTC-USDT`, `BTC/USD`). Bybit scripts hold both the
//! spot top of book (`orderbook.1`) and the linear `tickers`; the mock sends whichever the
//! client subscribed to.

use serde_json::{Value, json};

use crate::model::Venue;

/// 2024-01-01T00:00:00Z, the kline's open time.
pub const T0_MS: i64 = 1_704_067_200_000;
/// Event time of the trade and the book updates.
pub const EVENT_MS: i64 = T0_MS + 30_000;
/// The first depth frame's id (Bybit `u`, OKX `seqId`, Binance `U` and `u`).
pub const DEPTH_FIRST_ID: u64 = 100;

const KRAKEN_T0: &str = "2024-01-01T00:00:00.000000000Z";
const KRAKEN_EVENT: &str = "2024-01-01T00:00:30.000000Z";

/// Kline, trade, best bid/ask and three depth frames, in that order.
pub fn script(venue: Venue, symbol: &str) -> Vec<String> {
    let mut out = vec![kline(venue, symbol), trade(venue, symbol)];
    out.extend(book_ticker(venue, symbol));
    out.extend(depth_frames(venue, symbol, 3));
    out
}

fn binance_wrap(stream: String, data: Value) -> String {
    json!({"stream": stream, "data": data}).to_string()
}

fn lower(symbol: &str) -> String {
    symbol.to_ascii_lowercase()
}

/// The 1m kline in `venue`'s format.
pub fn kline(venue: Venue, symbol: &str) -> String {
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => binance_wrap(
            format!("{}@kline_1m", lower(symbol)),
            json!({"e": "kline", "E": EVENT_MS, "s": symbol, "k": {
                "t": T0_MS, "T": T0_MS + 59_999, "s": symbol, "i": "1m", "f": 100, "L": 200,
                "o": "100.5", "c": "101.25", "h": "102", "l": "99", "v": "3.5", "n": 101,
                "x": false, "q": "353.5", "V": "1.5", "Q": "151.5", "B": "0"}}),
        ),
        Venue::Bybit => json!({
            "topic": format!("kline.1.{symbol}"), "type": "snapshot", "ts": EVENT_MS,
            "data": [{"start": T0_MS, "end": T0_MS + 59_999, "interval": "1", "open": "100.5",
                      "close": "101.25", "high": "102", "low": "99", "volume": "3.5",
                      "turnover": "353.5", "confirm": false, "timestamp": EVENT_MS}]
        })
        .to_string(),
        Venue::Okx => json!({
            "arg": {"channel": "candle1m", "instId": symbol},
            "data": [[T0_MS.to_string(), "100.5", "102", "99", "101.25", "3.5", "353.5",
                      "353.5", "0"]]
        })
        .to_string(),
        // Kraken v2 writes numbers as JSON numbers; the text keeps the exact digits.
        Venue::Kraken => format!(
            r#"{{"channel":"ohlc","type":"update","timestamp":"{KRAKEN_EVENT}","data":[{{"symbol":"{symbol}","open":100.5,"high":102,"low":99,"close":101.25,"trades":101,"volume":3.5,"vwap":101.0,"interval_begin":"{KRAKEN_T0}","interval":1,"timestamp":"{KRAKEN_EVENT}"}}]}}"#
        ),
    }
}

/// The trade (id 1001, 0.5 at 101.25, buyer taker).
pub fn trade(venue: Venue, symbol: &str) -> String {
    match venue {
        Venue::BinanceSpot => binance_wrap(
            format!("{}@trade", lower(symbol)),
            json!({"e": "trade", "E": EVENT_MS, "s": symbol, "t": 1001, "p": "101.25",
                   "q": "0.5", "T": EVENT_MS, "m": false, "M": true}),
        ),
        Venue::BinanceUsdm => binance_wrap(
            format!("{}@aggTrade", lower(symbol)),
            json!({"e": "aggTrade", "E": EVENT_MS, "a": 1001, "s": symbol, "p": "101.25",
                   "q": "0.5", "f": 5000, "l": 5001, "T": EVENT_MS, "m": false}),
        ),
        Venue::Bybit => json!({
            "topic": format!("publicTrade.{symbol}"), "type": "snapshot", "ts": EVENT_MS,
            "data": [{"T": EVENT_MS, "s": symbol, "S": "Buy", "v": "0.5", "p": "101.25",
                      "L": "PlusTick", "i": "1001", "BT": false}]
        })
        .to_string(),
        Venue::Okx => json!({
            "arg": {"channel": "trades", "instId": symbol},
            "data": [{"instId": symbol, "tradeId": "1001", "px": "101.25", "sz": "0.5",
                      "side": "buy", "ts": EVENT_MS.to_string(), "count": "1"}]
        })
        .to_string(),
        Venue::Kraken => format!(
            r#"{{"channel":"trade","type":"update","data":[{{"symbol":"{symbol}","side":"buy","price":101.25,"qty":0.5,"ord_type":"market","trade_id":1001,"timestamp":"{KRAKEN_EVENT}"}}]}}"#
        ),
    }
}

/// Best bid/ask frames (two for Bybit: spot `orderbook.1` and linear `tickers`).
pub fn book_ticker(venue: Venue, symbol: &str) -> Vec<String> {
    match venue {
        Venue::BinanceSpot => vec![binance_wrap(
            format!("{}@bookTicker", lower(symbol)),
            json!({"u": 400_900_217u64, "s": symbol, "b": "101.2", "B": "1.5", "a": "101.3",
                   "A": "2"}),
        )],
        Venue::BinanceUsdm => vec![binance_wrap(
            format!("{}@bookTicker", lower(symbol)),
            json!({"e": "bookTicker", "u": 400_900_217u64, "E": EVENT_MS, "T": EVENT_MS,
                   "s": symbol, "b": "101.2", "B": "1.5", "a": "101.3", "A": "2"}),
        )],
        Venue::Bybit => vec![
            json!({
                "topic": format!("orderbook.1.{symbol}"), "type": "snapshot", "ts": EVENT_MS,
                "data": {"s": symbol, "b": [["101.2", "1.5"]], "a": [["101.3", "2"]],
                         "u": 7000, "seq": 1},
                "cts": EVENT_MS
            })
            .to_string(),
            json!({
                "topic": format!("tickers.{symbol}"), "type": "snapshot", "ts": EVENT_MS,
                "cs": 1,
                "data": {"symbol": symbol, "lastPrice": "101.25", "bid1Price": "101.2",
                         "bid1Size": "1.5", "ask1Price": "101.3", "ask1Size": "2"}
            })
            .to_string(),
        ],
        Venue::Okx => vec![
            json!({
                "arg": {"channel": "bbo-tbt", "instId": symbol},
                "data": [{"asks": [["101.3", "2", "0", "1"]], "bids": [["101.2", "1.5", "0", "1"]],
                          "ts": EVENT_MS.to_string(), "seqId": 9000}]
            })
            .to_string(),
        ],
        Venue::Kraken => vec![format!(
            r#"{{"channel":"ticker","type":"update","data":[{{"symbol":"{symbol}","bid":101.2,"bid_qty":1.5,"ask":101.3,"ask_qty":2,"last":101.25,"volume":3.5,"vwap":101.0,"low":99,"high":102,"change":0.75,"change_pct":0.75,"timestamp":"{KRAKEN_EVENT}"}}]}}"#
        )],
    }
}

/// `count` depth frames in sequence: frame `i` has id `DEPTH_FIRST_ID + i` (the first one a
/// snapshot where the venue streams one: Bybit, OKX, Kraken) and bid 101.2 × (1 + i).
pub fn depth_frames(venue: Venue, symbol: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let id = DEPTH_FIRST_ID + i as u64;
            let qty = (1 + i).to_string();
            let ts = EVENT_MS + i as i64;
            match venue {
                Venue::BinanceSpot => binance_wrap(
                    format!("{}@depth@100ms", lower(symbol)),
                    json!({"e": "depthUpdate", "E": ts, "s": symbol, "U": id, "u": id,
                           "b": [["101.2", qty]], "a": [["101.3", "2"]]}),
                ),
                Venue::BinanceUsdm => binance_wrap(
                    format!("{}@depth@100ms", lower(symbol)),
                    json!({"e": "depthUpdate", "E": ts, "T": ts, "s": symbol, "U": id, "u": id,
                           "pu": id - 1, "b": [["101.2", qty]], "a": [["101.3", "2"]]}),
                ),
                Venue::Bybit => json!({
                    "topic": format!("orderbook.50.{symbol}"),
                    "type": if i == 0 { "snapshot" } else { "delta" }, "ts": ts,
                    "data": {"s": symbol, "b": [["101.2", qty]], "a": [["101.3", "2"]],
                             "u": id, "seq": 50_000 + i},
                    "cts": ts
                })
                .to_string(),
                Venue::Okx => json!({
                    "arg": {"channel": "books", "instId": symbol},
                    "action": if i == 0 { "snapshot" } else { "update" },
                    "data": [{"asks": [["101.3", "2", "0", "1"]], "bids": [["101.2", qty, "0", "1"]],
                              "ts": ts.to_string(), "checksum": 0,
                              "prevSeqId": if i == 0 { -1 } else { id as i64 - 1 },
                              "seqId": id}]
                })
                .to_string(),
                Venue::Kraken => format!(
                    r#"{{"channel":"book","type":"{}","data":[{{"symbol":"{symbol}","bids":[{{"price":101.2,"qty":{qty}}}],"asks":[{{"price":101.3,"qty":2}}],"checksum":0,"timestamp":"{KRAKEN_EVENT}"}}]}}"#,
                    if i == 0 { "snapshot" } else { "update" }
                ),
            }
        })
        .collect()
}
