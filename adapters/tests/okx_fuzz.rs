//! Robustness: random bytes and mutated recorded OKX payloads never panic the codec (errors
//! are fine).

mod common;

use common::{count, edit};
use std::sync::OnceLock;

use keel_adapters::okx;
use keel_engine::candle::Interval;
use proptest::prelude::*;
use serde_json::Value;

fn payloads() -> &'static [String] {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/okx");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    })
}

/// Everything that takes venue text.
fn exercise(text: &str) {
    let _ = okx::decode(text);
    let _ = okx::parse_instruments(text);
    let _ = okx::parse_candles(text, "BTC-USDT", Interval::parse("1m").unwrap());
    let _ = okx::parse_candles(text, "BTC-USDT-SWAP", Interval::parse("1d").unwrap());
    let _ = okx::parse_order_book(text, "BTC-USDT");
    for status in [200, 429, 503] {
        let _ = okx::parse_error(status, text, Some("1"));
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
        "[a-z0-9.\\-]{0,12}".prop_map(|s| Some(Value::String(s))),
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
