//! No input panics the Binance decoders: random bytes, and recorded payloads with flipped bytes,
//! truncations, deleted fields and fields replaced by hostile values. Errors are fine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use keel_adapters::binance::{
    decode_spot, decode_usdm, parse_depth_snapshot, parse_error, parse_exchange_info, parse_klines,
    parse_listen_key, parse_server_time,
};
use keel_engine::symbol::Symbol;
use proptest::prelude::*;
use serde_json::Value;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}

fn payloads() -> &'static [String] {
    static P: OnceLock<Vec<String>> = OnceLock::new();
    P.get_or_init(|| {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"));
        let mut files = Vec::new();
        for dir in ["binance", "binance_py", "binance_docs"] {
            walk(&root.join(dir), &mut files);
        }
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    })
}

fn pick(i: usize) -> &'static str {
    let p = payloads();
    &p[i % p.len()]
}

/// Run every Binance entry point on `text`; only a panic fails the test.
fn everything(text: &str) {
    let _ = decode_spot(text);
    let _ = decode_usdm(text);
    let sym = Symbol::new("BTCUSDT").unwrap();
    let _ = parse_klines(sym, text);
    let _ = parse_depth_snapshot(sym, text);
    let _ = parse_exchange_info(text);
    let _ = parse_server_time(text);
    let _ = parse_listen_key(text);
    for status in [200, 400, 418, 429, 503] {
        let _ = parse_error(status, text, Some(text));
    }
    // The envelopes route on the stream name and the subscription id.
    let _ = decode_spot(&format!(r#"{{"stream":"btcusdt@depth5","data":{text}}}"#));
    let _ = decode_usdm(&format!(
        r#"{{"stream":"btcusdt@depth5@100ms","data":{text}}}"#
    ));
    let _ = decode_spot(&format!(r#"{{"subscriptionId":0,"event":{text}}}"#));
}

/// Number of object entries and array elements in `v`, depth first.
fn count(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.len() + m.values().map(count).sum::<usize>(),
        Value::Array(a) => a.len() + a.iter().map(count).sum::<usize>(),
        _ => 0,
    }
}

/// Apply `op` to the `n`-th entry (object key or array element) of `v`, depth first.
/// `op` gets the container and the position; returns true once applied.
fn at(v: &mut Value, n: &mut usize, op: &dyn Fn(&mut Value, usize)) -> bool {
    let len = match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => return false,
    };
    for i in 0..len {
        if *n == 0 {
            op(v, i);
            return true;
        }
        *n -= 1;
        let child = match v {
            Value::Object(m) => m.values_mut().nth(i),
            Value::Array(a) => a.get_mut(i),
            _ => None,
        };
        if let Some(c) = child
            && at(c, n, op)
        {
            return true;
        }
    }
    false
}

fn delete(v: &mut Value, i: usize) {
    match v {
        Value::Object(m) => {
            if let Some(k) = m.keys().nth(i).cloned() {
                m.remove(&k);
            }
        }
        Value::Array(a) if i < a.len() => {
            a.remove(i);
        }
        _ => {}
    }
}

fn hostile() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::from("")),
        Just(Value::from("-")),
        Just(Value::from("NaN")),
        Just(Value::from("1e40")),
        Just(Value::from("0.000000001")),
        Just(Value::from("99999999999999999999")),
        Just(Value::from("-92233720368.54775808")),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(1e300)),
        Just(Value::from(-1)),
        Just(Value::from(true)),
        Just(Value::Array(vec![])),
        Just(Value::Object(Default::default())),
        Just(Value::from("BUY")),
        Just(Value::from("TRADE")),
        Just(Value::from("btcusdt@depth5")),
        ".{0,12}".prop_map(Value::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_json_like_text(text in r#"[\[\]{}":,0-9a-zA-Z.\- ]{0,200}"#) {
        everything(&text);
    }

    #[test]
    fn byte_flips(file in any::<usize>(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = pick(file).as_bytes().to_vec();
        if !bytes.is_empty() {
            for (pos, b) in flips {
                let i = pos % bytes.len();
                bytes[i] = b;
            }
        }
        everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn truncations(file in any::<usize>(), cut in any::<usize>()) {
        let text = pick(file);
        let mut end = cut % (text.len() + 1);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        everything(&text[..end]);
    }

    #[test]
    fn field_deletions(file in any::<usize>(), picks in prop::collection::vec(any::<usize>(), 1..5)) {
        let mut v: Value = serde_json::from_str(pick(file)).unwrap();
        for p in picks {
            let total = count(&v);
            if total == 0 {
                break;
            }
            at(&mut v, &mut (p % total), &delete);
        }
        everything(&v.to_string());
    }

    #[test]
    fn field_replacements(file in any::<usize>(), edits in prop::collection::vec((any::<usize>(), hostile()), 1..5)) {
        let mut v: Value = serde_json::from_str(pick(file)).unwrap();
        for (p, new) in edits {
            let total = count(&v);
            if total == 0 {
                break;
            }
            let replace = move |c: &mut Value, i: usize| match c {
                Value::Object(m) => {
                    if let Some(slot) = m.values_mut().nth(i) {
                        *slot = new.clone();
                    }
                }
                Value::Array(a) => {
                    if let Some(slot) = a.get_mut(i) {
                        *slot = new.clone();
                    }
                }
                _ => {}
            };
            at(&mut v, &mut (p % total), &replace);
        }
        everything(&v.to_string());
    }
}

#[test]
fn every_recorded_payload_through_every_entry_point() {
    for text in payloads() {
        everything(text);
    }
}
