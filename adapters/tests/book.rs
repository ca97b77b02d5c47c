//! Local order books: checksums against the venues' own values on recorded frames, the
//! documented resync procedures, and a model check that random valid deltas keep the book right.
//!
//! Independent references: the `checksum` each venue put in a recorded frame
//! (`tests/data/okx_gocryptotrader/` is a real OKX push, `tests/data/kraken_docs/` Kraken's own
//! documentation examples; see `tests/data/NOTICE`). The sequence tests follow the steps of
//! Binance's "How to manage a local order book correctly" and Bybit's orderbook docs.

use keel_adapters::book::{
    Applied, BinanceSync, BookError, Dialect, Fed, KrakenPrecision, LocalBook, SnapshotOutcome,
    SnapshotSync,
};
use keel_adapters::model::{DepthUpdate, Level, VenueEvent};
use keel_adapters::{binance, bybit, kraken, okx};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use proptest::prelude::*;

macro_rules! data {
    ($p:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $p))
    };
}

fn fx(s: &str) -> Fixed {
    Fixed::parse_exact(s).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn depth(events: Vec<VenueEvent>) -> DepthUpdate {
    match events.as_slice() {
        [VenueEvent::Depth(d)] => d.clone(),
        other => panic!("expected one depth update, got {other:?}"),
    }
}

fn okx_depth(text: &str) -> DepthUpdate {
    depth(okx::decode(text).unwrap())
}

fn kraken_depth(text: &str) -> DepthUpdate {
    depth(kraken::decode(text).unwrap())
}

fn levels(pairs: &[(&str, &str)]) -> Vec<Level> {
    pairs.iter().map(|(p, q)| (fx(p), fx(q))).collect()
}

// ---------------------------------------------------------------------------------------------
// OKX checksum

const OKX_TRX: &str = data!("okx_gocryptotrader/ws_books_snapshot.json");

#[test]
fn okx_checksum_matches_a_recorded_books_snapshot() {
    let snap = okx_depth(OKX_TRX);
    assert_eq!(snap.checksum, Some(-1462286744));
    assert_eq!((snap.bids.len(), snap.asks.len()), (39, 37));
    let mut book = LocalBook::new(sym("TRX-USD-220812"), Dialect::Okx);
    let applied = book.apply(&snap).unwrap();
    assert!(applied.checksum_verified);
    assert_eq!(book.checksum(), Some(-1462286744));
    assert_eq!(book.best_bid(), Some((fx("0.07014"), fx("56"))));
    assert_eq!(book.best_ask(), Some((fx("0.07026"), fx("5"))));
}

#[test]
fn okx_checksum_covers_the_top_25_levels_only() {
    // The 30th ask ("0.07354", size "1") is outside the sum; the 25th ask is inside.
    let deep = OKX_TRX.replace(r#"["0.07354","1","0","1"]"#, r#"["0.07354","2","0","1"]"#);
    assert_ne!(deep, OKX_TRX);
    let mut book = LocalBook::new(sym("TRX-USD-220812"), Dialect::Okx);
    assert!(book.apply(&okx_depth(&deep)).unwrap().checksum_verified);

    let top = OKX_TRX.replace(
        r#"["0.07171","5026","0","1"]"#,
        r#"["0.07171","5027","0","1"]"#,
    );
    assert_ne!(top, OKX_TRX);
    let err = book.apply(&okx_depth(&top)).unwrap_err();
    assert!(
        matches!(
            err,
            BookError::Checksum {
                expected: -1462286744,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.needs_resync());
    assert!(!book.is_synced());
    assert_eq!(book.depth(), (0, 0));
}

#[test]
fn okx_checksum_zero_is_the_deprecated_field_and_is_not_checked() {
    let zero = OKX_TRX.replace("-1462286744", "0");
    let mut book = LocalBook::new(sym("TRX-USD-220812"), Dialect::Okx);
    let applied = book.apply(&okx_depth(&zero)).unwrap();
    assert!(!applied.checksum_verified);
    assert!(book.is_synced());
}

#[test]
fn okx_docs_example_frames_carry_a_checksum_of_other_levels() {
    // OKX's documentation example (copied into the nautilus fixtures) pairs eight levels with
    // checksum -855196043, which belongs to a different book: a local book must refuse it.
    let mut book = LocalBook::new(sym("BTC-USDT"), Dialect::Okx);
    let err = book
        .apply(&okx_depth(data!("okx/ws_books_snapshot.json")))
        .unwrap_err();
    assert_eq!(
        err,
        BookError::Checksum {
            expected: -855196043,
            computed: -2102840145
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Kraken checksum

fn matic_book() -> LocalBook {
    let precision = KrakenPrecision::new(4, 8).unwrap();
    LocalBook::new(sym("MATIC/USD"), Dialect::Kraken(precision)).with_depth_limit(10)
}

#[test]
fn kraken_checksum_matches_the_docs_snapshot_and_update() {
    let mut book = matic_book();
    let snap = book
        .apply(&kraken_depth(data!("kraken_docs/ws_book_snapshot.json")))
        .unwrap();
    assert!(snap.snapshot && snap.checksum_verified);
    assert_eq!(book.checksum(), Some(2439117997));

    // The update changes the 10th bid's quantity to 1098.3947558 (7 decimals, printed with 8).
    let upd = book
        .apply(&kraken_depth(data!("kraken_docs/ws_book_update.json")))
        .unwrap();
    assert!(!upd.snapshot && upd.checksum_verified);
    assert_eq!(book.checksum(), Some(2114181697));
    assert_eq!(book.top_bids(10)[9], (fx("0.5657"), fx("1098.3947558")));
}

#[test]
fn kraken_checksum_matches_the_guide_example_with_one_price_decimal() {
    let pairs = kraken::parse_asset_pairs(data!("kraken/http_asset_pairs.json")).unwrap();
    let xbt = pairs.iter().find(|i| i.symbol == sym("BTC/USDT")).unwrap();
    let precision = KrakenPrecision::from_instrument(xbt);
    assert_eq!(precision, KrakenPrecision::new(1, 8).unwrap());

    let mut book = LocalBook::new(sym("BTC/USD"), Dialect::Kraken(precision));
    let snap = kraken_depth(data!("kraken_docs/ws_book_checksum_guide_snapshot.json"));
    assert!(book.apply(&snap).unwrap().checksum_verified);
    assert_eq!(book.checksum(), Some(3310070434));
}

#[test]
fn kraken_checksum_mismatch_empties_the_book_until_the_next_snapshot() {
    let mut book = matic_book();
    let snapshot = kraken_depth(data!("kraken_docs/ws_book_snapshot.json"));
    book.apply(&snapshot).unwrap();
    let mut wrong = kraken_depth(data!("kraken_docs/ws_book_update.json"));
    wrong.bids[0].1 = fx("1098.3947557");
    let err = book.apply(&wrong).unwrap_err();
    assert!(matches!(
        err,
        BookError::Checksum {
            expected: 2114181697,
            ..
        }
    ));
    let right = kraken_depth(data!("kraken_docs/ws_book_update.json"));
    assert_eq!(book.apply(&right), Err(BookError::NeedSnapshot));
    // Resubscribing brings a snapshot; the same update then verifies.
    book.apply(&snapshot).unwrap();
    assert!(book.apply(&right).unwrap().checksum_verified);
}

#[test]
fn kraken_book_keeps_the_subscribed_depth() {
    let mut book = matic_book();
    book.apply(&kraken_depth(data!("kraken_docs/ws_book_snapshot.json")))
        .unwrap();
    let mut insert = kraken_depth(data!("kraken_docs/ws_book_update.json"));
    insert.bids = levels(&[("0.5667", "10")]);
    insert.checksum = None;
    book.apply(&insert).unwrap();
    // Kraken sends no removal for the bid pushed out of the top 10: the book drops it.
    assert_eq!(book.depth(), (10, 10));
    assert_eq!(book.best_bid(), Some((fx("0.5667"), fx("10"))));
    assert_eq!(book.top_bids(10)[9].0, fx("0.5658"));
}

// ---------------------------------------------------------------------------------------------
// Binance: buffer, snapshot, bridge

fn spot_event(first: u64, last: u64, bids: &str, asks: &str) -> DepthUpdate {
    let text = format!(
        r#"{{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":{first},"u":{last},"b":{bids},"a":{asks}}}"#
    );
    depth(binance::decode_spot(&text).unwrap())
}

fn spot_snapshot(last_update_id: u64) -> DepthUpdate {
    let text = format!(
        r#"{{"lastUpdateId":{last_update_id},"bids":[["0.0024","10"],["0.0023","5"],["0.0022","7"]],"asks":[["0.0026","100"],["0.0027","20"]]}}"#
    );
    binance::parse_depth_snapshot(sym("BNBBTC"), &text).unwrap()
}

fn spot_sync() -> BinanceSync {
    SnapshotSync::new(LocalBook::new(sym("BNBBTC"), Dialect::BinanceSpot), 64)
}

#[test]
fn binance_spot_sync_drops_what_the_snapshot_covers_and_bridges_into_it() {
    let mut sync = spot_sync();
    // Events 100..=115 arrive before the snapshot. The second one touches 0.0023, which the
    // snapshot (taken at 112) already reflects differently: it must not be replayed.
    let events = [
        spot_event(100, 105, r#"[["0.0021","3"]]"#, "[]"),
        spot_event(106, 110, r#"[["0.0023","999"]]"#, "[]"),
        spot_event(111, 115, r#"[["0.0022","0"]]"#, r#"[["0.0025","4"]]"#),
    ];
    for e in events {
        assert_eq!(sync.on_update(e).unwrap(), Fed::Buffered);
    }
    assert!(!sync.is_synced());
    let outcome = sync.on_snapshot(&spot_snapshot(112)).unwrap();
    assert_eq!(
        outcome,
        SnapshotOutcome::Loaded {
            replayed: 1,
            dropped: 2
        }
    );
    let book = sync.book();
    assert!(book.is_synced());
    assert_eq!(book.last_update_id(), 115);
    assert_eq!(
        book.top_bids(5),
        levels(&[("0.0024", "10"), ("0.0023", "5")])
    );
    assert_eq!(
        book.top_asks(5),
        levels(&[("0.0025", "4"), ("0.0026", "100"), ("0.0027", "20")])
    );
    // Live: the next event must start at 116.
    let next = sync
        .on_update(spot_event(116, 118, r#"[["0.0024","0"]]"#, "[]"))
        .unwrap();
    assert!(matches!(
        next,
        Fed::Applied(Applied {
            last_update_id: 118,
            ..
        })
    ));
    assert_eq!(sync.book().best_bid(), Some((fx("0.0023"), fx("5"))));
    let dup = sync.on_update(spot_event(117, 118, "[]", "[]")).unwrap();
    assert_eq!(dup, Fed::Dropped);
}

#[test]
fn binance_spot_snapshot_older_than_the_first_event_is_fetched_again() {
    let mut sync = spot_sync();
    sync.on_update(spot_event(100, 105, "[]", "[]")).unwrap();
    sync.on_update(spot_event(106, 110, "[]", "[]")).unwrap();
    assert_eq!(
        sync.on_snapshot(&spot_snapshot(99)).unwrap(),
        SnapshotOutcome::TooOld {
            snapshot_id: 99,
            first_buffered_id: 100
        }
    );
    assert!(!sync.is_synced());
    assert_eq!(sync.buffered(), 2);
    assert!(matches!(
        sync.on_snapshot(&spot_snapshot(107)).unwrap(),
        SnapshotOutcome::Loaded {
            replayed: 1,
            dropped: 1
        }
    ));
    assert_eq!(sync.book().last_update_id(), 110);
}

#[test]
fn binance_spot_gap_needs_a_new_snapshot_and_the_resynced_book_is_consistent() {
    let mut sync = spot_sync();
    sync.on_snapshot(&spot_snapshot(200)).unwrap();
    sync.on_update(spot_event(201, 205, r#"[["0.0024","11"]]"#, "[]"))
        .unwrap();
    // 206..=209 never arrives.
    let err = sync
        .on_update(spot_event(210, 212, r#"[["0.0021","1"]]"#, "[]"))
        .unwrap_err();
    assert!(matches!(
        err,
        BookError::Gap {
            local_id: 205,
            first_update_id: 210,
            ..
        }
    ));
    assert!(err.needs_resync() && !sync.is_synced());
    // The stream goes on while a new snapshot is fetched: buffered from the break on.
    assert_eq!(
        sync.on_update(spot_event(213, 215, r#"[["0.0020","2"]]"#, "[]"))
            .unwrap(),
        Fed::Buffered
    );
    assert_eq!(sync.buffered(), 2);
    let outcome = sync.on_snapshot(&spot_snapshot(214)).unwrap();
    assert_eq!(
        outcome,
        SnapshotOutcome::Loaded {
            replayed: 1,
            dropped: 1
        }
    );
    // Snapshot at 214 plus event 213..=215 (which straddles it), nothing from before the gap.
    assert_eq!(
        sync.book().top_bids(10),
        levels(&[
            ("0.0024", "10"),
            ("0.0023", "5"),
            ("0.0022", "7"),
            ("0.002", "2")
        ])
    );
    assert_eq!(sync.book().last_update_id(), 215);
}

#[test]
fn binance_spot_buffer_keeps_only_the_run_after_the_last_hole() {
    let mut sync = SnapshotSync::new(LocalBook::new(sym("BNBBTC"), Dialect::BinanceSpot), 2);
    sync.on_update(spot_event(100, 105, "[]", "[]")).unwrap();
    sync.on_update(spot_event(110, 111, "[]", "[]")).unwrap();
    assert_eq!(sync.buffered(), 1, "the run before the hole is useless");
    sync.on_update(spot_event(112, 113, "[]", "[]")).unwrap();
    sync.on_update(spot_event(114, 115, "[]", "[]")).unwrap();
    assert_eq!(sync.buffered(), 2, "bounded: the oldest goes");
    assert!(matches!(
        sync.on_snapshot(&spot_snapshot(111)).unwrap(),
        SnapshotOutcome::TooOld {
            first_buffered_id: 112,
            ..
        }
    ));
}

fn usdm_event(first: u64, last: u64, prev: u64, bids: &str) -> DepthUpdate {
    let text = format!(
        r#"{{"e":"depthUpdate","E":1591270260907,"T":1591270260891,"s":"BTCUSDT","U":{first},"u":{last},"pu":{prev},"b":{bids},"a":[["9000.1","1"]]}}"#
    );
    depth(binance::decode_usdm(&text).unwrap())
}

#[test]
fn binance_usdm_sync_straddles_the_snapshot_then_chains_by_pu() {
    let mut sync = SnapshotSync::new(LocalBook::new(sym("BTCUSDT"), Dialect::BinanceUsdm), 16);
    sync.on_update(usdm_event(100, 105, 99, r#"[["8999","1"]]"#))
        .unwrap();
    sync.on_update(usdm_event(106, 110, 105, r#"[["8998","2"]]"#))
        .unwrap();
    sync.on_update(usdm_event(111, 115, 110, r#"[["8997","3"]]"#))
        .unwrap();
    let text = r#"{"lastUpdateId":108,"E":1589436922972,"T":1589436922959,"bids":[["8999","5"]],"asks":[["9000.1","1"]]}"#;
    let snapshot = binance::parse_depth_snapshot(sym("BTCUSDT"), text).unwrap();
    // USD-M drops only `u < lastUpdateId`; the first applied event has U <= 108 <= u.
    assert_eq!(
        sync.on_snapshot(&snapshot).unwrap(),
        SnapshotOutcome::Loaded {
            replayed: 2,
            dropped: 1
        }
    );
    assert_eq!(
        sync.book().top_bids(5),
        levels(&[("8999", "5"), ("8998", "2"), ("8997", "3")])
    );
    // `pu` must equal the previous `u`.
    let err = sync
        .on_update(usdm_event(118, 120, 117, r#"[["8996","1"]]"#))
        .unwrap_err();
    assert!(matches!(err, BookError::Gap { local_id: 115, .. }));
}

// ---------------------------------------------------------------------------------------------
// Bybit: snapshot, deltas, a gap, a new snapshot

#[test]
fn bybit_gap_is_an_error_and_a_new_snapshot_restores_a_consistent_book() {
    let snapshot_text = data!("bybit/ws_orderbook_snapshot.json");
    let delta_text = data!("bybit/ws_orderbook_delta.json");
    let mut book = LocalBook::new(sym("BTCUSDT"), Dialect::Bybit);
    book.apply(&depth(bybit::decode(snapshot_text).unwrap()))
        .unwrap();
    let applied = book
        .apply(&depth(bybit::decode(delta_text).unwrap()))
        .unwrap();
    assert_eq!(applied.last_update_id, 123456790);
    // The recorded delta sets the bid to 0.400 and removes the best ask (size "0").
    assert_eq!(book.best_bid(), Some((fx("27450"), fx("0.4"))));
    assert_eq!(book.best_ask(), Some((fx("27451.5"), fx("0.9"))));

    let skipped = delta_text.replace("123456790", "123456792");
    let err = book
        .apply(&depth(bybit::decode(&skipped).unwrap()))
        .unwrap_err();
    assert_eq!(
        err,
        BookError::Gap {
            local_id: 123456790,
            first_update_id: 123456792,
            last_update_id: 123456792,
            prev_last_update_id: None
        }
    );
    let next = delta_text.replace("123456790", "123456793");
    assert_eq!(
        book.apply(&depth(bybit::decode(&next).unwrap())),
        Err(BookError::NeedSnapshot)
    );

    // Bybit resends a snapshot (resubscribe); deltas continue from its `u`.
    let fresh = snapshot_text.replace("123456789", "123456800");
    book.apply(&depth(bybit::decode(&fresh).unwrap())).unwrap();
    let cont = delta_text.replace("123456790", "123456801");
    book.apply(&depth(bybit::decode(&cont).unwrap())).unwrap();
    assert_eq!(
        book.top_bids(5),
        levels(&[("27450", "0.4"), ("27449.5", "1")])
    );
    assert_eq!(book.top_asks(5), levels(&[("27451.5", "0.9")]));
    assert!(!book.is_crossed());
}

#[test]
fn a_stale_update_is_refused_without_losing_the_book() {
    let mut book = LocalBook::new(sym("BTCUSDT"), Dialect::Bybit);
    book.apply(&depth(
        bybit::decode(data!("bybit/ws_orderbook_snapshot.json")).unwrap(),
    ))
    .unwrap();
    let old = data!("bybit/ws_orderbook_delta.json").replace("123456790", "123456789");
    let err = book
        .apply(&depth(bybit::decode(&old).unwrap()))
        .unwrap_err();
    assert!(matches!(err, BookError::Stale { .. }));
    assert!(!err.needs_resync());
    assert!(book.is_synced());
    assert_eq!(book.depth(), (2, 2));
}

// ---------------------------------------------------------------------------------------------
// Book mechanics

fn plain(first: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> DepthUpdate {
    DepthUpdate {
        symbol: sym("BTCUSDT"),
        ts_event_ns: 0,
        snapshot: false,
        first_update_id: first,
        last_update_id: first,
        prev_last_update_id: None,
        bids: levels(bids),
        asks: levels(asks),
        checksum: None,
    }
}

fn loaded(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> LocalBook {
    let mut book = LocalBook::new(sym("BTCUSDT"), Dialect::Bybit);
    let snap = DepthUpdate {
        snapshot: true,
        ..plain(1, bids, asks)
    };
    book.load_snapshot(&snap).unwrap();
    book
}

#[test]
fn zero_quantity_removes_a_level_and_removing_an_absent_one_is_normal() {
    let mut book = loaded(&[("100", "1"), ("99", "2")], &[("101", "1"), ("102", "3")]);
    book.apply(&plain(2, &[("100", "0"), ("98", "0")], &[("102", "0")]))
        .unwrap();
    assert_eq!(book.top_bids(5), levels(&[("99", "2")]));
    assert_eq!(book.top_asks(5), levels(&[("101", "1")]));
    assert_eq!(book.depth(), (1, 1));
}

#[test]
fn a_crossed_book_is_reported() {
    let mut book = loaded(&[("100", "1")], &[("101", "1")]);
    let a = book.apply(&plain(2, &[("101", "5")], &[])).unwrap();
    assert!(a.crossed && book.is_crossed());
    let a = book.apply(&plain(3, &[], &[("101", "0")])).unwrap();
    assert!(!a.crossed && !book.is_crossed());
}

#[test]
fn another_symbols_update_is_refused_and_changes_nothing() {
    let mut book = loaded(&[("100", "1")], &[("101", "1")]);
    let mut other = plain(2, &[("100", "0")], &[]);
    other.symbol = sym("ETHUSDT");
    let err = book.apply(&other).unwrap_err();
    assert!(matches!(err, BookError::WrongSymbol { .. }) && !err.needs_resync());
    assert_eq!(book.best_bid(), Some((fx("100"), fx("1"))));
}

#[test]
fn updates_before_any_snapshot_need_one() {
    let mut book = LocalBook::new(sym("BTCUSDT"), Dialect::BinanceSpot);
    assert_eq!(
        book.apply(&plain(5, &[("1", "1")], &[])),
        Err(BookError::NeedSnapshot)
    );
}

// ---------------------------------------------------------------------------------------------
// Model check

/// A naive reference book: unsorted lists, linear search.
#[derive(Default)]
struct Model {
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl Model {
    fn set(side: &mut Vec<Level>, price: Fixed, qty: Fixed) {
        side.retain(|(p, _)| *p != price);
        if !qty.is_zero() {
            side.push((price, qty));
        }
    }

    fn sorted(&self) -> (Vec<Level>, Vec<Level>) {
        let mut bids = self.bids.clone();
        let mut asks = self.asks.clone();
        bids.sort_by_key(|l| std::cmp::Reverse(l.0));
        asks.sort_by_key(|l| l.0);
        (bids, asks)
    }
}

fn tick(n: u16) -> Fixed {
    Fixed::from_raw(i64::from(n) * 1_000_000)
}

/// (is_bid, price tick, qty in lots; 0 removes).
type Change = (bool, u16, u16);

fn change(
    bid_range: std::ops::Range<u16>,
    ask_range: std::ops::Range<u16>,
) -> BoxedStrategy<Change> {
    prop_oneof![
        (Just(true), bid_range, 0u16..4),
        (Just(false), ask_range, 0u16..4),
    ]
    .boxed()
}

fn run_model(snapshot: &[Change], deltas: &[Vec<Change>]) -> Result<(), TestCaseError> {
    let mut book = LocalBook::new(sym("BTCUSDT"), Dialect::BinanceSpot);
    let mut model = Model::default();
    let as_update = |id: u64, changes: &[Change], snapshot: bool| {
        let mut u = plain(id, &[], &[]);
        u.snapshot = snapshot;
        for &(is_bid, price, qty) in changes {
            let level = (tick(price), Fixed::from_int(i64::from(qty)));
            if is_bid {
                u.bids.push(level)
            } else {
                u.asks.push(level)
            }
        }
        u
    };
    for (i, changes) in std::iter::once(snapshot)
        .chain(deltas.iter().map(Vec::as_slice))
        .enumerate()
    {
        let update = as_update(i as u64 + 10, changes, i == 0);
        let applied = book
            .apply(&update)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for &(is_bid, price, qty) in changes {
            let side = if is_bid {
                &mut model.bids
            } else {
                &mut model.asks
            };
            Model::set(side, tick(price), Fixed::from_int(i64::from(qty)));
        }
        let (bids, asks) = model.sorted();
        prop_assert_eq!(book.bids().collect::<Vec<_>>(), bids.clone());
        prop_assert_eq!(book.asks().collect::<Vec<_>>(), asks.clone());
        let crossed = matches!((bids.first(), asks.first()), (Some(b), Some(a)) if b.0 >= a.0);
        prop_assert_eq!(applied.crossed, crossed);
        prop_assert_eq!(book.is_crossed(), crossed);
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_deltas_match_a_naive_book_and_report_crossing(
        snapshot in prop::collection::vec(change(1..60, 40..100), 0..20),
        deltas in prop::collection::vec(prop::collection::vec(change(1..60, 40..100), 0..6), 0..40),
    ) {
        run_model(&snapshot, &deltas)?;
    }

    #[test]
    fn deltas_that_respect_the_spread_never_cross(
        snapshot in prop::collection::vec(change(1..50, 51..100), 0..20),
        deltas in prop::collection::vec(prop::collection::vec(change(1..50, 51..100), 0..6), 0..40),
    ) {
        let mut book = LocalBook::new(sym("BTCUSDT"), Dialect::Bybit);
        let mut all = vec![snapshot];
        all.extend(deltas);
        for (i, changes) in all.iter().enumerate() {
            let mut u = plain(i as u64 + 1, &[], &[]);
            u.snapshot = i == 0;
            for &(is_bid, price, qty) in changes {
                let level = (tick(price), Fixed::from_int(i64::from(qty)));
                if is_bid { u.bids.push(level) } else { u.asks.push(level) }
            }
            let applied = book.apply(&u).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!applied.crossed);
            if let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) {
                prop_assert!(b.0 < a.0);
            }
        }
    }

    #[test]
    fn arbitrary_ids_never_panic_and_errors_leave_a_coherent_book(
        dialect in prop_oneof![
            Just(Dialect::BinanceSpot),
            Just(Dialect::BinanceUsdm),
            Just(Dialect::Bybit),
            Just(Dialect::Okx),
        ],
        steps in prop::collection::vec(
            (
                any::<bool>(),
                0u64..30,
                0u64..30,
                prop::option::of(0u64..30),
                change(1..100, 1..100),
            ),
            1..60,
        ),
    ) {
        let mut book = LocalBook::new(sym("BTCUSDT"), dialect);
        for (snapshot, first, len, prev, (is_bid, price, qty)) in steps {
            let mut u = plain(first, &[], &[]);
            u.snapshot = snapshot;
            u.last_update_id = first + len;
            u.prev_last_update_id = prev;
            let level = (tick(price), Fixed::from_int(i64::from(qty)));
            if is_bid { u.bids.push(level) } else { u.asks.push(level) }
            match book.apply(&u) {
                Ok(a) => prop_assert_eq!(a.crossed, book.is_crossed()),
                Err(e) if e.needs_resync() => {
                    prop_assert!(!book.is_synced());
                    prop_assert_eq!(book.depth(), (0, 0));
                }
                Err(_) => prop_assert!(book.is_synced()),
            }
            prop_assert!(book.bids().all(|(_, q)| q > Fixed::ZERO));
            prop_assert!(book.asks().all(|(_, q)| q > Fixed::ZERO));
        }
    }
}
