//! `keel venue decode`: a venue's raw messages as keel's normalized events, one JSON object
//! per line — for checking what keel makes of a payload when a venue changes a field.
//!
//! A file holds one JSON value (a WebSocket frame or a REST body), an array of messages, or
//! one message per line. The whole file is tried as one message first (REST bodies are often
//! arrays); if that fails, an array is split into its elements, and otherwise the file is read
//! line by line.

use std::path::Path;

use anyhow::{Context, Result};
use keel_adapters::decode::decode;
use keel_adapters::model::{Control, DecodeError, Venue, VenueEvent};
use keel_engine::Fixed;
use serde_json::{Value, json};

/// What a file decoded to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// One JSON object per normalized event.
    pub events: Vec<Value>,
    /// Messages that did not decode: where they are in the file and why.
    pub failures: Vec<String>,
}

/// Decodes every message in the file at `path`.
pub fn decode_file(venue: Venue, path: &Path) -> Result<Decoded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(decode_text(venue, &text))
}

pub fn decode_text(venue: Venue, text: &str) -> Decoded {
    let mut out = Decoded::default();
    let whole = match decode(venue, text) {
        Ok(events) => {
            out.events.extend(events.iter().map(event_json));
            return out;
        }
        Err(e) => e,
    };
    // An array of messages?
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text)
        && items.iter().all(Value::is_object)
        && !items.is_empty()
    {
        let mut any = false;
        let mut failures = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match decode(venue, &item.to_string()) {
                Ok(events) => {
                    any = true;
                    out.events.extend(events.iter().map(event_json));
                }
                Err(e) => failures.push(format!("element {i}: {e}")),
            }
        }
        if any {
            out.failures = failures;
            return out;
        }
        out.events.clear();
    }
    // One message per line?
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let jsonl = lines.len() > 1
        && lines
            .iter()
            .all(|(_, l)| serde_json::from_str::<Value>(l).is_ok());
    if jsonl {
        for (n, line) in lines {
            match decode(venue, line) {
                Ok(events) => out.events.extend(events.iter().map(event_json)),
                Err(e) => out.failures.push(format!("line {}: {e}", n + 1)),
            }
        }
        return out;
    }
    out.failures.push(describe(&whole));
    out
}

fn describe(e: &DecodeError) -> String {
    e.to_string()
}

fn fx(v: Fixed) -> Value {
    // Exact decimals as strings: a float would round what the venue sent.
    Value::String(v.to_string())
}

/// The JSON object printed for one event.
pub fn event_json(e: &VenueEvent) -> Value {
    let kind = e.kind();
    let body = match e {
        VenueEvent::Candle { candle: c, closed } => json!({
            "symbol": c.symbol.as_str(), "open_time_ns": c.open_time_ns,
            "interval_ns": c.interval_ns, "open": fx(c.open), "high": fx(c.high),
            "low": fx(c.low), "close": fx(c.close), "volume": fx(c.volume), "closed": closed,
        }),
        VenueEvent::Trade(t) => json!({
            "symbol": t.symbol.as_str(), "ts_event_ns": t.ts_event_ns, "price": fx(t.price),
            "qty": fx(t.qty), "aggressor": t.aggressor.as_str(), "trade_id": t.trade_id,
        }),
        VenueEvent::BookTicker(b) => json!({
            "symbol": b.symbol.as_str(), "ts_event_ns": b.ts_event_ns, "bid": fx(b.bid),
            "bid_qty": fx(b.bid_qty), "ask": fx(b.ask), "ask_qty": fx(b.ask_qty),
        }),
        VenueEvent::Depth(d) => {
            let levels = |ls: &[(Fixed, Fixed)]| -> Vec<Value> {
                ls.iter().map(|(p, q)| json!([fx(*p), fx(*q)])).collect()
            };
            json!({
                "symbol": d.symbol.as_str(), "ts_event_ns": d.ts_event_ns,
                "snapshot": d.snapshot, "first_update_id": d.first_update_id,
                "last_update_id": d.last_update_id,
                "prev_last_update_id": d.prev_last_update_id,
                "bids": levels(&d.bids), "asks": levels(&d.asks), "checksum": d.checksum,
            })
        }
        VenueEvent::Order(o) => json!({
            "symbol": o.symbol.as_str(), "client_order_id": o.client_order_id,
            "venue_order_id": o.venue_order_id, "state": o.state.as_str(),
            "side": o.side.as_str(), "order_type": format!("{:?}", o.order_type),
            "time_in_force": o.time_in_force.map(|t| format!("{t:?}")),
            "price": fx(o.price), "trigger_price": fx(o.trigger_price), "qty": fx(o.qty),
            "filled_qty": fx(o.filled_qty), "avg_price": fx(o.avg_price),
            "reduce_only": o.reduce_only, "reason": o.reason, "ts_event_ns": o.ts_event_ns,
        }),
        VenueEvent::Fill(f) => json!({
            "symbol": f.symbol.as_str(), "client_order_id": f.client_order_id,
            "venue_order_id": f.venue_order_id, "trade_id": f.trade_id,
            "side": f.side.as_str(), "price": fx(f.price), "qty": fx(f.qty), "fee": fx(f.fee),
            "fee_asset": f.fee_asset, "liquidity": format!("{:?}", f.liquidity).to_lowercase(),
            "ts_event_ns": f.ts_event_ns,
        }),
        VenueEvent::Balance(b) => json!({
            "asset": b.asset, "free": fx(b.free), "locked": fx(b.locked),
            "ts_event_ns": b.ts_event_ns,
        }),
        VenueEvent::Position(p) => json!({
            "symbol": p.symbol.as_str(), "qty": fx(p.qty), "entry_price": fx(p.entry_price),
            "unrealized_pnl": fx(p.unrealized_pnl),
            "liquidation_price": fx(p.liquidation_price), "leverage": fx(p.leverage),
            "ts_event_ns": p.ts_event_ns,
        }),
        VenueEvent::Funding(f) => json!({
            "symbol": f.symbol.as_str(), "rate": fx(f.rate),
            "funding_time_ns": f.funding_time_ns, "mark_price": fx(f.mark_price),
            "ts_event_ns": f.ts_event_ns,
        }),
        VenueEvent::Control(c) => match c {
            Control::Pong => json!({"control": "pong"}),
            Control::Subscribed { topic } => json!({"control": "subscribed", "topic": topic}),
            Control::SubscribeFailed { topic, reason } => {
                json!({"control": "subscribe_failed", "topic": topic, "reason": reason})
            }
            Control::AuthOk => json!({"control": "auth_ok"}),
            Control::AuthFailed { reason } => json!({"control": "auth_failed", "reason": reason}),
            Control::Response { id, ok, detail } => {
                json!({"control": "response", "id": id, "ok": ok, "detail": detail})
            }
            Control::StreamExpiring { reason } => {
                json!({"control": "stream_expiring", "reason": reason})
            }
        },
    };
    let mut obj = json!({ "kind": kind });
    if let (Value::Object(o), Value::Object(b)) = (&mut obj, body) {
        o.extend(b);
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_arrays_and_lines_when_the_whole_is_not_one_message() {
        // Two Binance spot trade frames, as an array and as JSON lines.
        let one = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
        let array = format!("[{one},{one}]");
        let d = decode_text(Venue::BinanceSpot, &array);
        assert_eq!(d.events.len(), 2, "{:?}", d.failures);
        assert_eq!(d.events[0]["price"], "0.001");
        let lines = format!("{one}\n{one}\nnot json\n");
        let d = decode_text(Venue::BinanceSpot, &lines);
        // A garbage line makes it not JSON lines: reported as a whole, nothing decoded.
        assert!(d.events.is_empty());
        assert_eq!(d.failures.len(), 1);
        let d = decode_text(Venue::BinanceSpot, &format!("{one}\n{one}\n"));
        assert_eq!(d.events.len(), 2);
    }
}
