//! What each venue's public WebSocket accepts and answers, from the venues' documentation
//! (written independently of the codecs, which the tests check against it):
//! - Binance spot `wss://stream.binance.com:9443`: `/ws/<stream>` or `/stream?streams=a/b`;
//!   stream names are lowercase `<symbol>@<channel>`; `{"method":"SUBSCRIBE","params":[..],
//!   "id":N}` is answered `{"result":null,"id":N}`.
//! - Binance USD-M `wss://fstream.binance.com`: since 2026-04-23 only the routed paths:
//!   `/public/...` carries `@bookTicker` and `@depth*`, `/market/...` everything else.
//! - Bybit v5 `/v5/public/spot|linear`: `{"req_id":..,"op":"subscribe","args":[topics]}`
//!   (spot: at most 10 args), acked `{"success":true,"ret_msg":"subscribe","conn_id":..,
//!   "req_id":..,"op":"subscribe"}`; `{"op":"ping"}` answered on spot with
//!   `{"success":true,"ret_msg":"pong",..,"op":"ping"}`, on linear with `{"op":"pong",
//!   "args":[ms],..}`.
//! - OKX v5 `/ws/v5/public` and `/ws/v5/business` (candles only on business):
//!   `{"op":"subscribe","args":[{"channel":..,"instId":..}]}`, one `{"event":"subscribe",
//!   "arg":{..},"connId":..}` per channel or `{"event":"error","code":"60018",..}`; the text
//!   `ping` is answered `pong`.
//! - Kraken v2 `/v2`: a `status` message on connect; `{"method":"subscribe","params":
//!   {"channel":..,"symbol":[..],..},"req_id":N}` acked once per symbol; `{"method":"ping",
//!   "req_id":N}` answered `{"method":"pong","req_id":N,..}`; `{"channel":"heartbeat"}` about
//!   once a second.

use serde_json::{Value, json};

use crate::model::Venue;

pub(super) const KRAKEN_HEARTBEAT: &str = r#"{"channel":"heartbeat"}"#;

/// Kraken echoes these timestamps; fixed values keep the mock's answers reproducible.
const KRAKEN_TIME_IN: &str = "2024-01-01T00:00:00.000000Z";
const KRAKEN_TIME_OUT: &str = "2024-01-01T00:00:00.000050Z";

/// What to answer a client text frame with.
#[derive(Default)]
pub(super) struct Reply {
    pub send: Vec<String>,
    /// Streams now subscribed.
    pub topics: Vec<String>,
    /// What the client did wrong.
    pub violations: Vec<String>,
}

impl Reply {
    fn violation(mut self, v: impl Into<String>) -> Reply {
        self.violations.push(v.into());
        self
    }
}

/// Frames sent right after the handshake.
pub(super) fn greeting(venue: Venue, n: usize) -> Vec<String> {
    match venue {
        Venue::Kraken => vec![
            json!({
                "channel": "status",
                "data": [{"api_version": "v2", "connection_id": 1000 + n, "system": "online",
                          "version": "2.0.10"}],
                "type": "update"
            })
            .to_string(),
        ],
        _ => Vec::new(),
    }
}

/// Checks the handshake path; returns the streams a Binance URL subscribes to.
pub(super) fn check_path(
    venue: Venue,
    path: &str,
    query: &[(String, String)],
) -> Result<Vec<String>, String> {
    match venue {
        Venue::BinanceSpot => binance_path(path, query, None),
        Venue::BinanceUsdm => {
            let route = ["/public", "/market"]
                .into_iter()
                .find(|r| path.starts_with(&format!("{r}/")))
                .ok_or_else(|| {
                    format!(
                        "{path}: USD-M streams are served only under /public and /market \
                         (the unrouted URLs were retired on 2026-04-23)"
                    )
                })?;
            binance_path(&path[route.len()..], query, Some(route))
        }
        Venue::Bybit => match path {
            "/v5/public/spot" | "/v5/public/linear" => Ok(Vec::new()),
            _ => Err(format!("{path} is not a Bybit v5 public stream")),
        },
        Venue::Okx => match path {
            "/ws/v5/public" | "/ws/v5/business" => Ok(Vec::new()),
            _ => Err(format!(
                "{path} is not an OKX v5 public or business endpoint"
            )),
        },
        Venue::Kraken => match path {
            "/v2" => Ok(Vec::new()),
            _ => Err(format!("{path} is not Kraken's v2 endpoint")),
        },
    }
}

fn binance_path(
    path: &str,
    query: &[(String, String)],
    route: Option<&str>,
) -> Result<Vec<String>, String> {
    let streams: Vec<String> = if path == "/stream" {
        let list = query
            .iter()
            .find(|(k, _)| k == "streams")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        list.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else if let Some(rest) = path.strip_prefix("/ws/") {
        rest.split('/').map(str::to_string).collect()
    } else if path == "/ws" {
        Vec::new()
    } else {
        return Err(format!("{path} is not a Binance stream path"));
    };
    for s in &streams {
        binance_stream_ok(s, route)?;
    }
    Ok(streams)
}

/// `<lowercase symbol>@<channel>`, the channel one Binance has, on the right USD-M route.
fn binance_stream_ok(stream: &str, route: Option<&str>) -> Result<(), String> {
    let (symbol, channel) = stream
        .split_once('@')
        .ok_or_else(|| format!("{stream:?} is not <symbol>@<channel>"))?;
    if symbol.is_empty()
        || !symbol
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!("{stream:?}: stream symbols are lowercase"));
    }
    let usdm = route.is_some();
    const INTERVALS: [&str; 16] = [
        "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
        "1w", "1M",
    ];
    let speeds: &[&str] = if usdm {
        &["", "@100ms", "@250ms", "@500ms"]
    } else {
        &["", "@100ms", "@1000ms"]
    };
    let depth_ok = |rest: &str| {
        let levels = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        speeds.contains(&levels)
    };
    let (known, public) = if let Some(i) = channel.strip_prefix("kline_") {
        (INTERVALS.contains(&i) && !(usdm && i == "1s"), false)
    } else if let Some(rest) = channel.strip_prefix("depth") {
        (depth_ok(rest), true)
    } else {
        match channel {
            "trade" => (!usdm, false),
            "aggTrade" | "markPrice" | "markPrice@1s" => (true, false),
            "bookTicker" => (true, true),
            _ => (false, false),
        }
    };
    if !known {
        return Err(format!("{stream:?}: no such Binance stream"));
    }
    match route {
        Some("/public") if !public => Err(format!("{stream:?} is served on /market, not /public")),
        Some("/market") if public => Err(format!("{stream:?} is served on /public, not /market")),
        _ => Ok(()),
    }
}

/// The stream a scripted frame belongs to; `None` for frames every connection gets.
pub(super) fn frame_topic(venue: Venue, frame: &str) -> Option<String> {
    let v: Value = serde_json::from_str(frame).ok()?;
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => v["stream"].as_str().map(str::to_string),
        Venue::Bybit => v["topic"].as_str().map(str::to_string),
        Venue::Okx => {
            v.get("data")?;
            let channel = v["arg"]["channel"].as_str()?;
            let inst = v["arg"]["instId"].as_str()?;
            Some(format!("{channel}:{inst}"))
        }
        Venue::Kraken => {
            let channel = v["channel"].as_str()?;
            if channel == "heartbeat" || channel == "status" {
                return None;
            }
            let symbol = v["data"][0]["symbol"].as_str()?;
            Some(format!("{channel}:{symbol}"))
        }
    }
}

/// Answers a client text frame.
pub(super) fn on_text(venue: Venue, n: usize, path: &str, topics: &[String], text: &str) -> Reply {
    if venue == Venue::Okx && text == "ping" {
        return Reply {
            send: vec!["pong".into()],
            ..Reply::default()
        };
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Reply::default().violation(format!("not JSON: {text:?}"));
    };
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => binance_text(venue, &v),
        Venue::Bybit => bybit_text(n, topics, &v),
        Venue::Okx => okx_text(n, path, &v),
        Venue::Kraken => kraken_text(&v),
    }
}

fn binance_text(venue: Venue, v: &Value) -> Reply {
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    if v["method"] != "SUBSCRIBE" {
        return Reply {
            send: vec![
                json!({"error": {"code": 2, "msg": "Invalid request"}, "id": id}).to_string(),
            ],
            ..Reply::default()
        }
        .violation(format!("binance: unsupported request {v}"));
    }
    let mut reply = Reply::default();
    let route = (venue == Venue::BinanceUsdm).then_some("/market");
    for s in v["params"].as_array().into_iter().flatten() {
        match s.as_str().map(|s| (s, binance_stream_ok(s, route))) {
            Some((s, Ok(()))) => reply.topics.push(s.to_string()),
            Some((_, Err(e))) => reply.violations.push(e),
            None => reply
                .violations
                .push(format!("binance: param {s} is not a string")),
        }
    }
    reply
        .send
        .push(json!({"result": null, "id": id}).to_string());
    reply
}

fn bybit_topic_ok(topic: &str) -> bool {
    let parts: Vec<&str> = topic.split('.').collect();
    let symbol_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    match parts.as_slice() {
        ["kline", i, s] => {
            [
                "1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M",
            ]
            .contains(i)
                && symbol_ok(s)
        }
        ["orderbook", d, s] => ["1", "50", "200", "500", "1000"].contains(d) && symbol_ok(s),
        ["publicTrade" | "tickers", s] => symbol_ok(s),
        _ => false,
    }
}

fn bybit_text(n: usize, topics: &[String], v: &Value) -> Reply {
    let req_id = v.get("req_id").cloned().unwrap_or(json!(""));
    let conn_id = format!("mock-{n}");
    // The mock serves spot's dialect unless the client subscribed to a linear-only topic;
    // the pong shape is the only difference it shows.
    let linear = topics.iter().any(|t| t.starts_with("tickers."));
    match v["op"].as_str() {
        Some("ping") => {
            let pong = if linear {
                json!({"req_id": req_id, "op": "pong", "args": ["1704067200000"],
                       "conn_id": conn_id})
            } else {
                json!({"success": true, "ret_msg": "pong", "conn_id": conn_id,
                       "req_id": req_id, "op": "ping"})
            };
            Reply {
                send: vec![pong.to_string()],
                ..Reply::default()
            }
        }
        Some("subscribe") => {
            let args: Vec<&str> = v["args"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let bad: Vec<&str> = args
                .iter()
                .copied()
                .filter(|t| !bybit_topic_ok(t))
                .collect();
            if args.is_empty() || !bad.is_empty() || args.len() > 10 {
                let why = if args.len() > 10 {
                    "args size >10".to_string()
                } else {
                    format!("Invalid topic: {}", bad.join(","))
                };
                return Reply {
                    send: vec![
                        json!({"success": false, "ret_msg": why, "conn_id": conn_id,
                               "req_id": req_id, "op": "subscribe"})
                        .to_string(),
                    ],
                    ..Reply::default()
                }
                .violation(format!("bybit subscribe {v}: {why}"));
            }
            Reply {
                send: vec![
                    json!({"success": true, "ret_msg": "subscribe", "conn_id": conn_id,
                           "req_id": req_id, "op": "subscribe"})
                    .to_string(),
                ],
                topics: args.iter().map(|t| t.to_string()).collect(),
                violations: Vec::new(),
            }
        }
        _ => Reply {
            send: vec![
                json!({"success": false, "ret_msg": "error:handler not found",
                       "conn_id": conn_id, "op": v["op"]})
                .to_string(),
            ],
            ..Reply::default()
        }
        .violation(format!("bybit: unknown op in {v}")),
    }
}

fn okx_text(n: usize, path: &str, v: &Value) -> Reply {
    let conn_id = format!("mock{n:04}");
    if v["op"] != "subscribe" {
        return Reply {
            send: vec![
                json!({"event": "error", "code": "60012", "msg": format!("Invalid request: {v}"),
                       "connId": conn_id})
                .to_string(),
            ],
            ..Reply::default()
        }
        .violation(format!("okx: not a subscribe: {v}"));
    }
    let mut reply = Reply::default();
    for arg in v["args"].as_array().into_iter().flatten() {
        let channel = arg["channel"].as_str().unwrap_or("");
        let inst = arg["instId"].as_str().unwrap_or("");
        let inst_ok = inst.split('-').count() >= 2
            && inst
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        let known = channel.starts_with("candle")
            || ["trades", "tickers", "bbo-tbt", "books", "books5"].contains(&channel);
        if known && inst_ok && okx_endpoint_ok(path, channel) {
            reply.send.push(
                json!({"event": "subscribe", "arg": {"channel": channel, "instId": inst},
                       "connId": conn_id})
                .to_string(),
            );
            reply.topics.push(format!("{channel}:{inst}"));
        } else {
            reply.send.push(
                json!({"event": "error", "code": "60018",
                       "msg": format!("Wrong URL or channel:{channel},instId:{inst} doesn't exist. Please use the correct URL, channel and parameters referring to API document."),
                       "connId": conn_id})
                .to_string(),
            );
            reply
                .violations
                .push(format!("okx: no channel {channel} for {inst} on {path}"));
        }
    }
    if reply.send.is_empty() {
        return reply.violation(format!("okx: subscribe without args: {v}"));
    }
    reply
}

/// OKX serves candles only on the business endpoint and the rest only on public.
fn okx_endpoint_ok(path: &str, channel: &str) -> bool {
    let candle = channel.starts_with("candle");
    match path {
        "/ws/v5/business" => candle,
        "/ws/v5/public" => !candle,
        _ => false,
    }
}

fn kraken_text(v: &Value) -> Reply {
    let req_id = v.get("req_id").cloned();
    let with_id = |mut o: Value| {
        if let (Some(id), Some(map)) = (&req_id, o.as_object_mut()) {
            map.insert("req_id".into(), id.clone());
        }
        o.to_string()
    };
    match v["method"].as_str() {
        Some("ping") => Reply {
            send: vec![with_id(json!({"method": "pong", "time_in": KRAKEN_TIME_IN,
                                      "time_out": KRAKEN_TIME_OUT}))],
            ..Reply::default()
        },
        Some("subscribe") => {
            let p = &v["params"];
            let channel = p["channel"].as_str().unwrap_or("");
            let symbols: Vec<&str> = p["symbol"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let why = kraken_subscribe_problem(channel, &symbols, p);
            if let Some(why) = why {
                return Reply {
                    send: vec![with_id(json!({"error": why, "method": "subscribe",
                                              "success": false, "time_in": KRAKEN_TIME_IN,
                                              "time_out": KRAKEN_TIME_OUT}))],
                    ..Reply::default()
                }
                .violation(format!("kraken subscribe {v}: {why}"));
            }
            let mut reply = Reply::default();
            for s in symbols {
                let mut result = json!({"channel": channel, "symbol": s, "snapshot": true});
                if channel == "ohlc" {
                    result["interval"] = p["interval"].clone();
                }
                if channel == "book" {
                    result["depth"] = p.get("depth").cloned().unwrap_or(json!(10));
                }
                reply
                    .send
                    .push(with_id(json!({"method": "subscribe", "result": result,
                                               "success": true, "time_in": KRAKEN_TIME_IN,
                                               "time_out": KRAKEN_TIME_OUT})));
                reply.topics.push(format!("{channel}:{s}"));
            }
            reply
        }
        _ => Reply {
            send: vec![with_id(
                json!({"error": "Method not found", "success": false,
                                      "time_in": KRAKEN_TIME_IN, "time_out": KRAKEN_TIME_OUT}),
            )],
            ..Reply::default()
        }
        .violation(format!("kraken: unknown method in {v}")),
    }
}

fn kraken_subscribe_problem(channel: &str, symbols: &[&str], p: &Value) -> Option<String> {
    if symbols.is_empty() {
        return Some("Missing symbol".into());
    }
    if let Some(bad) = symbols.iter().find(|s| {
        let parts: Vec<&str> = s.split('/').collect();
        parts.len() != 2 || parts.iter().any(|x| x.is_empty())
    }) {
        return Some(format!("Currency pair not supported {bad}"));
    }
    match channel {
        "trade" => None,
        "ticker" => match p.get("event_trigger").and_then(Value::as_str) {
            None | Some("bbo" | "trades") => None,
            Some(other) => Some(format!("Invalid event_trigger {other}")),
        },
        "ohlc" => match p["interval"].as_i64() {
            Some(1 | 5 | 15 | 30 | 60 | 240 | 1440 | 10080 | 21600) => None,
            _ => Some(format!("Invalid interval {}", p["interval"])),
        },
        "book" => match p.get("depth").map(Value::as_i64) {
            None | Some(Some(10 | 25 | 100 | 500 | 1000)) => None,
            Some(d) => Some(format!("Invalid depth {d:?}")),
        },
        other => Some(format!("Unsupported channel {other}")),
    }
}
