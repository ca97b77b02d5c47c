//! Depth sequence checking: does each order-book update continue the one before it?
//!
//! The rules, from each venue's "how to manage a local order book" instructions, expressed on
//! [`DepthUpdate`]'s ids:
//! - Binance spot diff depth: an event's first id `U` is the previous event's last id `u` + 1;
//! - Binance USD-M diff depth: an event's `pu` is the previous event's `u`;
//! - Bybit `orderbook.N`: one id `u` per message, each delta's `u` is the previous `u` + 1; a
//!   snapshot (including a delta with `u` = 1 after a service restart) starts over;
//! - OKX `books`: an update's `prevSeqId` is the previous `seqId` (an update that changes
//!   nothing repeats it); a snapshot starts over;
//! - Kraken v2 has no ids (only a checksum over the maintained book): not checked here.
//!
//! A connection starts with no history (Binance sends no snapshot on the stream: the first
//! event is the baseline until a REST snapshot is fetched, which is the consumer's job). After
//! a reported break the tracker continues from the update that showed it, so one hole is
//! reported once. An update older than what was already seen (a duplicate, or one overtaken)
//! is reported as [`GapKind::Stale`] and does not move the tracker back.

use std::collections::BTreeMap;

use keel_engine::symbol::Symbol;

use crate::model::{DepthUpdate, Venue};

/// How an update failed to continue the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapKind {
    /// Updates are missing between the last one seen and this one.
    Missing,
    /// This update is at or before the last one seen (a duplicate or out of order).
    Stale,
}

/// A break in a depth stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepthGap {
    pub conn: usize,
    pub symbol: Symbol,
    /// The venue's name of the book stream when it has several per symbol (Bybit topics),
    /// else empty.
    pub stream: String,
    pub kind: GapKind,
    /// Last id of the previous update.
    pub last_seen_id: u64,
    /// The offending update's first, last and previous ids.
    pub first_update_id: u64,
    pub last_update_id: u64,
    pub prev_last_update_id: Option<u64>,
}

/// Per connection: the last id of every (symbol, stream) book.
#[derive(Debug, Default)]
pub struct GapTracker {
    last: BTreeMap<(Symbol, String), u64>,
}

/// Whether `venue`'s depth stream carries ids this module can check.
pub fn checks(venue: Venue) -> bool {
    !matches!(venue, Venue::Kraken)
}

impl GapTracker {
    pub fn new() -> GapTracker {
        GapTracker::default()
    }

    /// Records `update` and reports whether it breaks the sequence of its book.
    pub fn check(&mut self, conn: usize, stream: &str, update: &DepthUpdate) -> Option<DepthGap> {
        let key = (update.symbol, stream.to_string());
        let Some(&last) = self.last.get(&key) else {
            self.last.insert(key, update.last_update_id);
            return None;
        };
        if update.snapshot {
            self.last.insert(key, update.last_update_id);
            return None;
        }
        let continues = match update.prev_last_update_id {
            Some(prev) => prev == last,
            None => update.first_update_id == last.wrapping_add(1),
        };
        if continues {
            self.last.insert(key, update.last_update_id);
            return None;
        }
        let kind = if update.last_update_id <= last {
            GapKind::Stale
        } else {
            self.last.insert(key, update.last_update_id);
            GapKind::Missing
        };
        Some(DepthGap {
            conn,
            symbol: update.symbol,
            stream: stream.to_string(),
            kind,
            last_seen_id: last,
            first_update_id: update.first_update_id,
            last_update_id: update.last_update_id,
            prev_last_update_id: update.prev_last_update_id,
        })
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn upd(first: u64, last: u64, prev: Option<u64>, snapshot: bool) -> DepthUpdate {
        DepthUpdate {
            symbol: Symbol::new("BTCUSDT").expect("symbol"),
            ts_event_ns: 0,
            snapshot,
            first_update_id: first,
            last_update_id: last,
            prev_last_update_id: prev,
            bids: vec![],
            asks: vec![],
            checksum: None,
        }
    }

    #[test]
    fn binance_spot_needs_first_id_to_follow_the_last() {
        let mut t = GapTracker::new();
        assert!(t.check(0, "", &upd(157, 160, None, false)).is_none());
        assert!(t.check(0, "", &upd(161, 163, None, false)).is_none());
        let g = t.check(0, "", &upd(170, 171, None, false)).expect("gap");
        assert_eq!((g.kind, g.last_seen_id), (GapKind::Missing, 163));
        // The tracker continues from the update that showed the hole.
        assert!(t.check(0, "", &upd(172, 172, None, false)).is_none());
        let g = t.check(0, "", &upd(161, 163, None, false)).expect("stale");
        assert_eq!(g.kind, GapKind::Stale);
        assert!(t.check(0, "", &upd(173, 175, None, false)).is_none());
    }

    #[test]
    fn usdm_and_okx_chain_through_the_previous_id() {
        let mut t = GapTracker::new();
        assert!(t.check(0, "", &upd(157, 160, Some(149), false)).is_none());
        assert!(t.check(0, "", &upd(161, 163, Some(160), false)).is_none());
        // OKX: an update that changes nothing repeats the previous seqId.
        assert!(t.check(0, "", &upd(163, 163, Some(163), false)).is_none());
        let g = t
            .check(0, "", &upd(170, 171, Some(165), false))
            .expect("gap");
        assert_eq!(g.kind, GapKind::Missing);
    }

    #[test]
    fn a_snapshot_starts_over_and_books_are_kept_apart() {
        let mut t = GapTracker::new();
        assert!(
            t.check(0, "orderbook.50.X", &upd(10, 10, None, true))
                .is_none()
        );
        assert!(
            t.check(0, "orderbook.1.X", &upd(500, 500, None, true))
                .is_none()
        );
        assert!(
            t.check(0, "orderbook.50.X", &upd(11, 11, None, false))
                .is_none()
        );
        assert!(
            t.check(0, "orderbook.1.X", &upd(501, 501, None, false))
                .is_none()
        );
        assert!(
            t.check(0, "orderbook.50.X", &upd(1, 1, None, true))
                .is_none()
        );
        assert!(
            t.check(0, "orderbook.50.X", &upd(2, 2, None, false))
                .is_none()
        );
    }
}
