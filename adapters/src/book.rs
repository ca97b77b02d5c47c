//! Local order books: a REST or stream snapshot patched by a venue's depth updates, with the
//! venue's own rules for when the copy can no longer be trusted.
//!
//! Contract: [`LocalBook::apply`] either applies an update whole and reports what it did, or
//! refuses it with a [`BookError`]. Every error but [`BookError::Stale`] and
//! [`BookError::WrongSymbol`] means the copy is unusable ([`BookError::needs_resync`]): the book
//! empties and refuses updates with [`BookError::NeedSnapshot`] until a snapshot is loaded again
//! (a REST snapshot for Binance and Bybit, a resubscription for OKX and Kraken, whose streams
//! open with one). Nothing here does I/O or reads a clock; the caller fetches snapshots.
//!
//! The sequence rules, per [`Dialect`], from each venue's "how to manage a local order book":
//! - Binance spot: an update whose last id `u` is at or below the book's id is stale; one whose
//!   first id `U` is at most the book's id + 1 applies (right after a REST snapshot that is the
//!   documented `U <= lastUpdateId + 1 <= u`; later it is `U == previous u + 1`); any later `U`
//!   is a gap.
//! - Binance USD-M: an update applies when its `pu` is the book's id; right after a snapshot
//!   the first one may instead straddle it (`U <= lastUpdateId <= u`); `u` below the id is stale.
//! - Bybit: one id `u` per message; the next delta has `u` + 1. A snapshot (also a delta with
//!   `u` = 1, which the decoder marks as one) replaces the book.
//! - OKX: an update applies when its `prevSeqId` is the book's `seqId` (a no-change heartbeat
//!   repeats the id; after maintenance `seqId` may drop below `prevSeqId`); after a REST
//!   snapshot the first one may straddle it (`prevSeqId <= seqId(snapshot) < seqId`).
//! - Kraken v2: no ids; the CRC32 checksum over the top ten levels is the only check.
//!
//! Checksums ([`checksum`]): OKX's over the top 25 levels when the message carries a non-zero
//! one (OKX deprecated the field in 2026: it is then always 0 and means "not checked"); Kraken's
//! over the top 10 with the instrument's precision. A mismatch is [`BookError::Checksum`].
//!
//! A crossed book (best bid at or above best ask) is reported in [`Applied::crossed`], not
//! refused: some venues show one briefly; one that persists means the copy is wrong and the
//! caller should resync. [`SnapshotSync`] adds the buffering half of the procedures: it holds
//! stream updates until the REST snapshot arrives and replays them by the rules above.

pub mod checksum;
mod sync;

use std::collections::BTreeMap;

use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

use crate::model::{DepthUpdate, Level, Venue};

pub use checksum::KrakenPrecision;
pub use sync::{BinanceSync, Fed, SnapshotOutcome, SnapshotSync};

/// Which venue's sequence and checksum rules a book follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    BinanceSpot,
    BinanceUsdm,
    Bybit,
    Okx,
    /// Kraken's checksum prints numbers with the instrument's precision.
    Kraken(KrakenPrecision),
}

impl Dialect {
    pub fn venue(self) -> Venue {
        match self {
            Dialect::BinanceSpot => Venue::BinanceSpot,
            Dialect::BinanceUsdm => Venue::BinanceUsdm,
            Dialect::Bybit => Venue::Bybit,
            Dialect::Okx => Venue::Okx,
            Dialect::Kraken(_) => Venue::Kraken,
        }
    }
}

/// Why an update was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error(
        "depth gap: the book is at id {local_id}, the update covers {first_update_id}..={last_update_id} \
         (previous {prev_last_update_id:?}); load a new snapshot"
    )]
    Gap {
        local_id: u64,
        first_update_id: u64,
        last_update_id: u64,
        prev_last_update_id: Option<u64>,
    },
    #[error(
        "book checksum mismatch: the venue says {expected}, the local book gives {computed}; \
         resubscribe for a new snapshot"
    )]
    Checksum { expected: i64, computed: i64 },
    /// Already covered by the book (a duplicate or an event older than the snapshot): ignored,
    /// the book is still good.
    #[error("stale depth update: last id {last_update_id} is not after the book's id {local_id}")]
    Stale { local_id: u64, last_update_id: u64 },
    #[error("the book has no valid snapshot; load one before applying updates")]
    NeedSnapshot,
    /// A level no venue sends (price not positive, negative quantity).
    #[error("bad {side} level {price} x {qty}; load a new snapshot")]
    BadLevel {
        side: &'static str,
        price: Fixed,
        qty: Fixed,
    },
    /// The caller routed another symbol's update here (the book is unchanged).
    #[error("update for {got} given to the {expected} book")]
    WrongSymbol { expected: Symbol, got: Symbol },
}

impl BookError {
    /// The local copy is gone and a snapshot is needed.
    pub fn needs_resync(&self) -> bool {
        !matches!(
            self,
            BookError::Stale { .. } | BookError::WrongSymbol { .. }
        )
    }
}

/// What an applied update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The update replaced the book (a snapshot).
    pub snapshot: bool,
    /// The book's id after the update (0 for Kraken, which has none).
    pub last_update_id: u64,
    /// The venue sent a checksum and the book matched it.
    pub checksum_verified: bool,
    /// Best bid at or above best ask after the update.
    pub crossed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    NeedSnapshot,
    /// A snapshot is loaded; the next update may straddle its id.
    Bridging,
    Live,
}

enum Step {
    Apply,
    Stale,
    Gap,
}

/// One symbol's book on one venue.
#[derive(Clone, Debug)]
pub struct LocalBook {
    symbol: Symbol,
    dialect: Dialect,
    depth_limit: Option<usize>,
    bids: BTreeMap<Fixed, Fixed>,
    asks: BTreeMap<Fixed, Fixed>,
    state: State,
    last_update_id: u64,
}

impl LocalBook {
    pub fn new(symbol: Symbol, dialect: Dialect) -> LocalBook {
        LocalBook {
            symbol,
            dialect,
            depth_limit: None,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            state: State::NeedSnapshot,
            last_update_id: 0,
        }
    }

    /// Keep at most `levels` per side, dropping the worst after every update. Kraken requires
    /// this at the subscribed depth (levels that leave it get no zero-quantity update); for the
    /// others it bounds memory at the cost of not knowing levels far from the touch.
    pub fn with_depth_limit(mut self, levels: usize) -> LocalBook {
        assert!(levels > 0, "a depth limit of zero keeps no book");
        self.depth_limit = Some(levels);
        self
    }

    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A snapshot is loaded and no break has been seen since.
    pub fn is_synced(&self) -> bool {
        self.state != State::NeedSnapshot
    }

    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    /// Replace the book with a snapshot (a REST one, or a stream one). The next update may
    /// straddle the snapshot's id, as every venue's procedure allows.
    pub fn load_snapshot(&mut self, snapshot: &DepthUpdate) -> Result<Applied, BookError> {
        self.check_symbol(snapshot)?;
        if let Err(e) = validate_levels(snapshot) {
            self.invalidate();
            return Err(e);
        }
        self.bids.clear();
        self.asks.clear();
        self.set_levels(snapshot);
        self.last_update_id = snapshot.last_update_id;
        self.state = State::Bridging;
        self.finish(snapshot, true)
    }

    /// Apply one stream message (a snapshot replaces the book).
    pub fn apply(&mut self, update: &DepthUpdate) -> Result<Applied, BookError> {
        if update.snapshot {
            return self.load_snapshot(update);
        }
        self.check_symbol(update)?;
        if self.state == State::NeedSnapshot {
            return Err(BookError::NeedSnapshot);
        }
        let bridging = self.state == State::Bridging;
        match step(self.dialect, bridging, self.last_update_id, update) {
            Step::Apply => {}
            Step::Stale => {
                return Err(BookError::Stale {
                    local_id: self.last_update_id,
                    last_update_id: update.last_update_id,
                });
            }
            Step::Gap => {
                let err = BookError::Gap {
                    local_id: self.last_update_id,
                    first_update_id: update.first_update_id,
                    last_update_id: update.last_update_id,
                    prev_last_update_id: update.prev_last_update_id,
                };
                self.invalidate();
                return Err(err);
            }
        }
        if let Err(e) = validate_levels(update) {
            self.invalidate();
            return Err(e);
        }
        self.set_levels(update);
        if let Dialect::BinanceSpot | Dialect::BinanceUsdm | Dialect::Bybit | Dialect::Okx =
            self.dialect
        {
            self.last_update_id = update.last_update_id;
        }
        self.state = State::Live;
        self.finish(update, false)
    }

    /// Truncate, verify the checksum, report.
    fn finish(&mut self, update: &DepthUpdate, snapshot: bool) -> Result<Applied, BookError> {
        self.truncate();
        let checksum_verified = match self.verify(update.checksum) {
            Ok(v) => v,
            Err(e) => {
                self.invalidate();
                return Err(e);
            }
        };
        Ok(Applied {
            snapshot,
            last_update_id: self.last_update_id,
            checksum_verified,
            crossed: self.is_crossed(),
        })
    }

    fn check_symbol(&self, update: &DepthUpdate) -> Result<(), BookError> {
        if update.symbol == self.symbol {
            Ok(())
        } else {
            Err(BookError::WrongSymbol {
                expected: self.symbol,
                got: update.symbol,
            })
        }
    }

    fn set_levels(&mut self, update: &DepthUpdate) {
        for &(price, qty) in &update.bids {
            set_level(&mut self.bids, price, qty);
        }
        for &(price, qty) in &update.asks {
            set_level(&mut self.asks, price, qty);
        }
    }

    fn truncate(&mut self) {
        let Some(limit) = self.depth_limit else {
            return;
        };
        while self.bids.len() > limit {
            self.bids.pop_first();
        }
        while self.asks.len() > limit {
            self.asks.pop_last();
        }
    }

    fn invalidate(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.state = State::NeedSnapshot;
    }

    /// `Ok(true)` when the venue sent a checksum this dialect checks and it matches.
    fn verify(&self, expected: Option<i64>) -> Result<bool, BookError> {
        let (Some(expected), Some(computed)) = (expected, self.checksum()) else {
            return Ok(false);
        };
        // OKX sends 0 since it deprecated the field: nothing to check.
        if self.dialect == Dialect::Okx && expected == 0 {
            return Ok(false);
        }
        if expected == computed {
            Ok(true)
        } else {
            Err(BookError::Checksum { expected, computed })
        }
    }

    /// The venue's checksum of the current book (OKX signed, Kraken unsigned); `None` for
    /// venues without one.
    pub fn checksum(&self) -> Option<i64> {
        match self.dialect {
            Dialect::Okx => {
                let n = checksum::OKX_CHECKSUM_LEVELS;
                let sum = checksum::okx_checksum(&self.top_bids(n), &self.top_asks(n));
                Some(i64::from(sum))
            }
            Dialect::Kraken(precision) => {
                let n = checksum::KRAKEN_CHECKSUM_LEVELS;
                let sum =
                    checksum::kraken_checksum(&self.top_asks(n), &self.top_bids(n), precision);
                Some(i64::from(sum))
            }
            _ => None,
        }
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }

    /// Best bid at or above best ask.
    pub fn is_crossed(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some((bid, _)), Some((ask, _))) => bid >= ask,
            _ => false,
        }
    }

    /// Bids from the best (highest) down.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.bids.iter().rev().map(|(p, q)| (*p, *q))
    }

    /// Asks from the best (lowest) up.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.asks.iter().map(|(p, q)| (*p, *q))
    }

    pub fn top_bids(&self, n: usize) -> Vec<Level> {
        self.bids().take(n).collect()
    }

    pub fn top_asks(&self, n: usize) -> Vec<Level> {
        self.asks().take(n).collect()
    }

    /// Levels on each side: (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }
}

/// Does `update` continue a book at id `local`, per the dialect's rules (see the module docs)?
/// `bridging`: the book is a snapshot no update has been applied to yet.
fn step(dialect: Dialect, bridging: bool, local: u64, update: &DepthUpdate) -> Step {
    let (first, last) = (update.first_update_id, update.last_update_id);
    let prev = update.prev_last_update_id;
    let after = |ok: bool, stale: bool| match (ok, stale) {
        (true, _) => Step::Apply,
        (false, true) => Step::Stale,
        (false, false) => Step::Gap,
    };
    match dialect {
        Dialect::Kraken(_) => Step::Apply,
        Dialect::BinanceSpot => after(
            last > local && first <= local.saturating_add(1),
            last <= local,
        ),
        Dialect::Bybit => after(last == local.saturating_add(1), last <= local),
        Dialect::BinanceUsdm => {
            let straddles = bridging && first <= local && local <= last;
            let stale = if bridging {
                last < local
            } else {
                last <= local
            };
            after(prev == Some(local) || straddles, stale)
        }
        Dialect::Okx => {
            let straddles = bridging && prev.is_some_and(|p| p <= local) && local < last;
            after(prev == Some(local) || straddles, last <= local)
        }
    }
}

/// Quantity zero removes the level (removing one the book does not have is normal: Binance
/// says so, and a depth-limited book never saw it).
fn set_level(side: &mut BTreeMap<Fixed, Fixed>, price: Fixed, qty: Fixed) {
    if qty.is_zero() {
        side.remove(&price);
    } else {
        side.insert(price, qty);
    }
}

fn validate_levels(update: &DepthUpdate) -> Result<(), BookError> {
    let sides = [("bid", &update.bids), ("ask", &update.asks)];
    for (side, levels) in sides {
        if let Some(&(price, qty)) = levels
            .iter()
            .find(|(p, q)| *p <= Fixed::ZERO || q.is_negative())
        {
            return Err(BookError::BadLevel { side, price, qty });
        }
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    fn fx(s: &str) -> Fixed {
        Fixed::parse_exact(s).expect("decimal")
    }

    fn upd(first: u64, last: u64, prev: Option<u64>) -> DepthUpdate {
        DepthUpdate {
            symbol: Symbol::new("BTCUSDT").expect("symbol"),
            ts_event_ns: 0,
            snapshot: false,
            first_update_id: first,
            last_update_id: last,
            prev_last_update_id: prev,
            bids: vec![(fx("99"), fx("1"))],
            asks: vec![(fx("101"), fx("1"))],
            checksum: None,
        }
    }

    fn snap(id: u64) -> DepthUpdate {
        DepthUpdate {
            snapshot: true,
            ..upd(id, id, None)
        }
    }

    fn book(dialect: Dialect, id: u64) -> LocalBook {
        let mut b = LocalBook::new(Symbol::new("BTCUSDT").expect("symbol"), dialect);
        b.load_snapshot(&snap(id)).expect("snapshot");
        b
    }

    #[test]
    fn usdm_first_update_may_straddle_then_must_chain_by_pu() {
        let mut b = book(Dialect::BinanceUsdm, 108);
        assert!(matches!(
            b.apply(&upd(100, 105, Some(99))),
            Err(BookError::Stale { .. })
        ));
        assert!(b.apply(&upd(106, 110, Some(105))).is_ok());
        // Live now: straddling is no longer enough, pu must be 110.
        let err = b.apply(&upd(109, 115, Some(108))).expect_err("gap");
        assert!(matches!(err, BookError::Gap { local_id: 110, .. }));
        assert!(err.needs_resync());
        assert_eq!(
            b.apply(&upd(116, 120, Some(115))),
            Err(BookError::NeedSnapshot)
        );
    }

    #[test]
    fn okx_heartbeat_and_sequence_reset_continue() {
        let mut b = book(Dialect::Okx, 500);
        assert!(b.apply(&upd(501, 501, Some(500))).is_ok());
        // No change: seqId repeats, prevSeqId equals it.
        assert!(b.apply(&upd(501, 501, Some(501))).is_ok());
        // Maintenance reset: seqId below prevSeqId, chained by prevSeqId.
        assert!(b.apply(&upd(3, 3, Some(501))).is_ok());
        assert_eq!(b.last_update_id(), 3);
        assert!(matches!(
            b.apply(&upd(9, 9, Some(7))),
            Err(BookError::Gap { .. })
        ));
    }

    #[test]
    fn bad_levels_invalidate_the_book() {
        let mut b = book(Dialect::Bybit, 10);
        let mut u = upd(11, 11, None);
        u.asks = vec![(fx("101"), fx("-1"))];
        assert!(matches!(
            b.apply(&u),
            Err(BookError::BadLevel { side: "ask", .. })
        ));
        assert!(!b.is_synced());
    }
}
