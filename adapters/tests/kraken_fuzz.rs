//! Robustness: random bytes and mutated recorded Kraken payloads never panic the codec (errors
//! are fine).

mod common;

use common::{count, edit};
use std::sync::OnceLock;

use keel_adapters::kraken;
use keel_engine::candle::Interval;
use proptest::prelude::*;
use serde_json::Value;

const SEEDS: [&str; 4] = [
    r#"{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5","order_userref":3,"symbol":"BTC/USD","order_qty":0.005,"cum_cost":0.0,"time_in_force":"GTC","exec_type":"pending_new","side":"sell","order_type":"limit","limit_price_type":"static","limit_price":26500.0,"stop_price":0.0,"order_status":"pending_new","fee_usd_equiv":0.0,"fee_ccy_pref":"fciq","timestamp":"2023-09-22T10:33:05.709950Z","triggers":{"reference":"last","price":1.5,"status":"untriggered"}}],"sequence":8}"#,
    r#"{"channel":"executions","type":"update","data":[{"order_id":"O1","cl_ord_id":"k1","exec_id":"T1","exec_type":"trade","trade_id":365573,"symbol":"BTC/USD","side":"sell","last_qty":0.005,"last_price":26599.9,"liquidity_ind":"t","order_status":"filled","order_type":"limit","cum_qty":0.005,"avg_price":26599.9,"fees":[{"asset":"USD","qty":0.3458}],"timestamp":"2023-09-22T10:33:05.709993Z"}]}"#,
    r#"{"channel":"balances","type":"update","data":[{"ledger_id":"D","timestamp":"2023-10-06T17:35:55.440295Z","type":"trade","asset":"USD","amount":-19.9743,"fee":0.0499,"balance":118.0867}]}"#,
    r#"{"channel":"status","data":[{"api_version":"v2","connection_id":12393906104898154338,"system":"online","version":"2.0.0"}],"type":"update"}"#,
];

fn payloads() -> &'static [String] {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kraken");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let mut texts: Vec<String> = names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        // No executions/balances/status captures exist; seed with Kraken's documented shapes.
        texts.extend(SEEDS.iter().map(|s| s.to_string()));
        texts
    })
}

/// Everything that takes venue text.
fn exercise(text: &str) {
    let _ = kraken::decode(text);
    let _ = kraken::parse_asset_pairs(text);
    let _ = kraken::parse_asset_pair_names(text);
    let _ = kraken::parse_ohlc(text, Interval::parse("1m").unwrap());
    let _ = kraken::parse_ws_token(text);
    let _ = kraken::rfc3339_to_ns("fuzz", text);
    let _ = kraken::secs_to_ns("fuzz", text);
    for status in [200, 429, 503] {
        let _ = kraken::parse_error(status, text, Some("1"));
    }
}

fn odd_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(serde_json::json!(""))),
        Just(Some(serde_json::json!("-1"))),
        Just(Some(serde_json::json!("99999999999999999999999"))),
        Just(Some(serde_json::json!("1e400"))),
        Just(Some(serde_json::json!(-9223372036854775808i64))),
        Just(Some(serde_json::json!(1.5))),
        Just(Some(serde_json::json!(true))),
        Just(Some(serde_json::json!([]))),
        Just(Some(serde_json::json!({}))),
        Just(Some(serde_json::json!("snapshot"))),
        Just(Some(serde_json::json!("2023-10-06T17:35:55.440295Z"))),
        Just(Some(serde_json::json!(1e300))),
        "[a-z0-9.:TZ+\\-]{0,24}".prop_map(|s| Some(Value::String(s))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn byte_flips_and_truncations_never_panic(
        file in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        truncate in any::<bool>(),
    ) {
        let text = file.get(payloads()).as_bytes();
        let i = pos.index(text.len().max(1));
        let mut bytes = text.to_vec();
        if truncate {
            bytes.truncate(i);
        } else if let Some(b) = bytes.get_mut(i) {
            *b = byte;
        }
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn field_deletions_and_swaps_never_panic(
        file in any::<prop::sample::Index>(),
        node in any::<prop::sample::Index>(),
        replace in odd_value(),
    ) {
        let Ok(mut v) = serde_json::from_str::<Value>(file.get(payloads()).as_str()) else {
            return Ok(());
        };
        let total = count(&v);
        if total > 0 {
            let mut n = node.index(total);
            edit(&mut v, &mut n, &replace);
        }
        exercise(&v.to_string());
    }
}
