//! Every Bybit payload file decodes to events or to a clear error, and no input (random bytes,
//! damaged recordings) panics the Bybit decoders.

use std::path::{Path, PathBuf};

use keel_adapters::bybit;
use keel_adapters::model::DecodeError;
use keel_engine::candle::Interval;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Files that must decode to at least one event. Keep in sync: a file that stops decoding, or a
/// new file that starts to, fails `every_payload_file_is_accounted_for`.
const DECODES_TO_EVENTS: &[&str] = &[
    "bybit/http_get_executions.json",
    "bybit/http_get_funding_history.json",
    "bybit/http_get_order_partially_filled_rejected.json",
    "bybit/http_get_orderbook.json",
    "bybit/http_get_orders_history.json",
    "bybit/http_get_orders_history_with_duplicate.json",
    "bybit/http_get_orders_realtime.json",
    "bybit/http_get_orders_realtime_tp_sl.json",
    "bybit/http_get_positions.json",
    "bybit/http_get_positions_with_open_time.json",
    "bybit/http_get_trades_recent.json",
    "bybit/http_get_wallet_balance.json",
    "bybit/http_get_wallet_balance_spot_short.json",
    "bybit/http_get_wallet_balance_with_spot_borrow.json",
    "bybit/ws_account_execution.json",
    "bybit/ws_account_execution_adl.json",
    "bybit/ws_account_execution_fast.json",
    "bybit/ws_account_order.json",
    "bybit/ws_account_order_buy_stop_market.json",
    "bybit/ws_account_order_filled.json",
    "bybit/ws_account_order_limit_if_touched.json",
    "bybit/ws_account_order_market_if_touched.json",
    "bybit/ws_account_order_partially_filled_rejected.json",
    "bybit/ws_account_order_sell_market_if_touched.json",
    "bybit/ws_account_order_stop_limit.json",
    "bybit/ws_account_order_stop_loss.json",
    "bybit/ws_account_order_stop_market.json",
    "bybit/ws_account_order_take_profit.json",
    "bybit/ws_account_position.json",
    "bybit/ws_account_position_short.json",
    "bybit/ws_account_wallet.json",
    "bybit/ws_account_wallet_locked_exceeds_total.json",
    "bybit/ws_account_wallet_small_order.json",
    "bybit/ws_auth_failure.json",
    "bybit/ws_auth_success.json",
    "bybit/ws_kline.json",
    "bybit/ws_order_response.json",
    "bybit/ws_orderbook_delta.json",
    "bybit/ws_orderbook_snapshot.json",
    "bybit/ws_subscription_ack.json",
    "bybit/ws_subscription_failure.json",
    "bybit/ws_ticker_linear.json",
    "bybit_docs/v5/account/wallet-balance/001_response_example.json",
    "bybit_docs/v5/guide/001_common_response_parameters.json",
    "bybit_docs/v5/market/orderbook/001_response_example.json",
    "bybit_docs/v5/market/recent-trade/001_response_example.json",
    "bybit_docs/v5/market/tickers/001_response_example.json",
    "bybit_docs/v5/market/tickers/002_response_example.json",
    "bybit_docs/v5/market/tickers/003_response_example.json",
    "bybit_docs/v5/order/amend-order/001_response_example.json",
    "bybit_docs/v5/order/cancel-order/001_response_example.json",
    "bybit_docs/v5/order/create-order/001_response_example.json",
    "bybit_docs/v5/order/open-order/001_response_example.json",
    "bybit_docs/v5/position/position/001_response_example.json",
    "bybit_docs/v5/websocket/private/execution/002_stream_example.json",
    "bybit_docs/v5/websocket/private/order/002_stream_example.json",
    "bybit_docs/v5/websocket/private/position/002_stream_example.json",
    "bybit_docs/v5/websocket/private/wallet/002_stream_example.json",
    "bybit_docs/v5/websocket/public/kline/001_response_example.json",
    "bybit_docs/v5/websocket/public/orderbook/001_response_example.json",
    "bybit_docs/v5/websocket/public/trade/001_response_example.json",
    "bybit_docs/v5/websocket/trade/guideline/002_response_example.json",
    "bybit_docs/v5/websocket/trade/guideline/004_response_example.json",
    "bybit_docs/v5/websocket/trade/guideline/006_response_example.json",
    "bybit_docs/v5/websocket/trade/guideline/008_response_example.json",
    "bybit_docs/v5/websocket/wss-authentication/002_authentication.json",
    "bybit_docs/v5/websocket/wss-authentication/003_how_to_send_the_heartbeat_packet.json",
    "bybit_docs/v5/websocket/wss-authentication/004_how_to_send_the_heartbeat_packet.json",
    "bybit_docs/v5/websocket/wss-authentication/005_how_to_send_the_heartbeat_packet.json",
    "bybit_docs/v5/websocket/wss-authentication/006_how_to_send_the_heartbeat_packet.json",
    "bybit_docs/v5/websocket/wss-authentication/010_understanding_the_subscription_response.json",
    "bybit_docs/v5/websocket/wss-authentication/011_understanding_the_subscription_response.json",
    "bybit_docs/v5/websocket/wss-authentication/012_understanding_the_subscription_response.json",
    "bybit_docs/v5/websocket/wss-authentication/013_understanding_the_subscription_response.json",
];

/// Well-formed messages whose correct decoding is "nothing happened": an `execution.fast` push
/// with an empty `data` array.
const DECODES_TO_NOTHING: &[&str] = &["bybit/ws_account_execution_fast_envelope_id.json"];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every file under data/bybit and data/bybit_docs, as (path relative to data/, text).
fn payload_files() -> Vec<(String, String)> {
    let mut paths = Vec::new();
    walk(&Path::new(DATA).join("bybit"), &mut paths);
    walk(&Path::new(DATA).join("bybit_docs"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(DATA)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn every_payload_file_is_accounted_for() {
    let files = payload_files();
    let (mut events, mut nothing, mut unsupported, mut malformed) = (0, 0, 0, 0);
    for (rel, text) in &files {
        let result = bybit::decode(text);
        if DECODES_TO_EVENTS.contains(&rel.as_str()) {
            let events_here = result.unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert!(!events_here.is_empty(), "{rel} decoded to no events");
            events += 1;
        } else if DECODES_TO_NOTHING.contains(&rel.as_str()) {
            assert_eq!(result, Ok(vec![]), "{rel}");
            nothing += 1;
        } else {
            match result {
                Err(DecodeError::Unsupported(kind)) => {
                    assert!(kind.starts_with("bybit"), "{rel}: {kind}");
                    unsupported += 1;
                }
                Err(DecodeError::Malformed { what, .. }) => {
                    assert!(what.starts_with("bybit"), "{rel}: {what}");
                    malformed += 1;
                }
                Ok(v) => panic!("{rel} decodes to {} events but is not listed", v.len()),
            }
        }
    }
    // Every listed file exists.
    assert_eq!(events, DECODES_TO_EVENTS.len());
    assert_eq!(nothing, DECODES_TO_NOTHING.len());
    assert_eq!(events + nothing + unsupported + malformed, files.len());
    println!(
        "{} files: {events} decode to events, {nothing} to nothing, {unsupported} unsupported, \
         {malformed} malformed",
        files.len()
    );
}

fn exercise(text: &str) {
    let _ = bybit::decode(text);
    let _ = bybit::parse_error(200, text, Some(text));
    let _ = bybit::parse_error(403, text, None);
    let _ = bybit::parse_instruments(text);
    let _ = bybit::parse_klines(text, Interval::parse("1m").unwrap());
}

proptest! {
    #![proptest_config(Config { cases: 2000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_json_shapes_never_panic(
        topic in prop::sample::select(vec![
            "kline.5.BTCUSDT", "publicTrade.BTCUSDT", "orderbook.50.BTCUSDT", "tickers.BTCUSDT",
            "order", "execution", "execution.fast", "position", "wallet", "dcp", "",
        ]),
        data in prop_oneof![
            Just("[]".to_string()),
            Just("{}".to_string()),
            Just("null".to_string()),
            Just("[{}]".to_string()),
            Just("[[1,2]]".to_string()),
            "[0-9a-z\"{}\\[\\],:.-]{0,40}",
        ],
    ) {
        exercise(&format!(r#"{{"topic":"{topic}","type":"snapshot","ts":1,"data":{data}}}"#));
        exercise(&format!(r#"{{"retCode":0,"result":{{"list":{data}}},"time":1}}"#));
        exercise(&format!(r#"{{"op":"order.create-batch","retCode":0,"data":{{"list":{data}}}}}"#));
    }
}

/// A small deterministic generator, so one proptest seed reproduces one mutation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Paths to every object member in `v`, so one can be deleted or retyped.
fn member_paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                prefix.push(k.clone());
                out.push(prefix.clone());
                member_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(format!("#{i}"));
                member_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn parent_mut<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let mut cur = v;
    for step in path {
        cur = match step.strip_prefix('#') {
            Some(i) => cur.get_mut(i.parse::<usize>().ok()?)?,
            None => cur.get_mut(step.as_str())?,
        };
    }
    Some(cur)
}

fn mutate(text: &str, seed: u64, op: u8) -> String {
    let mut rng = Rng(seed | 1);
    match op {
        0 => {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        1 => String::from_utf8_lossy(&text.as_bytes()[..rng.below(text.len() + 1)]).into_owned(),
        _ => {
            let Ok(mut v) = serde_json::from_str::<Value>(text) else {
                return text.to_string();
            };
            let mut paths = Vec::new();
            member_paths(&v, &mut Vec::new(), &mut paths);
            if paths.is_empty() {
                return text.to_string();
            }
            let path = paths[rng.below(paths.len())].clone();
            let (last, parent) = path.split_last().unwrap();
            if let Some(Value::Object(o)) = parent_mut(&mut v, parent) {
                if op == 2 {
                    o.remove(last);
                } else {
                    let replacement = match rng.below(6) {
                        0 => Value::Null,
                        1 => Value::from(-1),
                        2 => Value::from("x"),
                        3 => Value::from(""),
                        4 => Value::from(u64::MAX),
                        _ => Value::from(vec![Value::Null]),
                    };
                    o.insert(last.clone(), replacement);
                }
            }
            v.to_string()
        }
    }
}

#[test]
fn damaged_recordings_never_panic() {
    let files: Vec<String> = payload_files().into_iter().map(|(_, text)| text).collect();
    let mut runner = TestRunner::new(Config {
        cases: 4000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(0..files.len(), any::<u64>(), 0u8..4), |(i, seed, op)| {
            exercise(&mutate(&files[i], seed, op));
            Ok(())
        })
        .unwrap();
}
