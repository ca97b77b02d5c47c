//! The buffering half of the venues' local-book procedures: hold stream updates until the REST
//! snapshot arrives, then keep only those after it and apply them by the book's rules.
//!
//! Binance spot, in its own words: buffer the events, note the `U` of the first; fetch
//! `/api/v3/depth`; if its `lastUpdateId` is strictly less than that `U`, fetch again; discard
//! buffered events with `u <= lastUpdateId`; apply the rest from the snapshot. Binance USD-M is
//! the same with `pu` chaining, OKX (since it stops opening `books` with a snapshot) the same
//! with `seqId`/`prevSeqId`, Bybit with its single `u`. A snapshot that arrives on the stream
//! (Bybit, Kraken, OKX today) replaces the book directly and makes the buffer moot.
//!
//! The buffer is bounded. It only ever holds a run of updates that chain: an update that does
//! not continue the last buffered one starts the run over (nothing before a hole can be
//! bridged to a later snapshot), and past the bound the oldest is dropped, which leaves the run
//! chained and only asks for a newer snapshot. After any break the sync is back to buffering
//! and the caller fetches a new snapshot.

use std::collections::VecDeque;

use crate::model::DepthUpdate;

use super::{Applied, BookError, Dialect, LocalBook, Step, step};

/// What became of a stream update given to [`SnapshotSync::on_update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fed {
    /// Held until a snapshot arrives.
    Buffered,
    /// Already covered (a duplicate or older than the book): ignored.
    Dropped,
    Applied(Applied),
}

/// What [`SnapshotSync::on_snapshot`] did with a REST snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// The book is the snapshot plus the buffered updates after it.
    Loaded { replayed: usize, dropped: usize },
    /// The snapshot is older than the oldest buffered update, so the updates between them are
    /// missing: fetch another snapshot (the buffer is kept).
    TooOld {
        snapshot_id: u64,
        first_buffered_id: u64,
    },
}

/// A [`LocalBook`] behind the buffer-then-snapshot procedure.
#[derive(Clone, Debug)]
pub struct SnapshotSync {
    book: LocalBook,
    buffer: VecDeque<DepthUpdate>,
    max_buffered: usize,
}

/// [`SnapshotSync`] named after the procedure it follows (spot or USD-M by the book's dialect).
pub type BinanceSync = SnapshotSync;

impl SnapshotSync {
    /// `book` sets the symbol, dialect and depth limit; at most `max_buffered` updates wait
    /// for a snapshot.
    pub fn new(book: LocalBook, max_buffered: usize) -> SnapshotSync {
        assert!(
            max_buffered > 0,
            "a sync that buffers nothing never bridges"
        );
        let mut book = book;
        book.invalidate();
        SnapshotSync {
            book,
            buffer: VecDeque::new(),
            max_buffered,
        }
    }

    pub fn book(&self) -> &LocalBook {
        &self.book
    }

    /// The book holds a snapshot and every update since.
    pub fn is_synced(&self) -> bool {
        self.book.is_synced()
    }

    /// Updates waiting for a snapshot.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Give one stream update, in arrival order.
    pub fn on_update(&mut self, update: DepthUpdate) -> Result<Fed, BookError> {
        if update.snapshot {
            self.buffer.clear();
            return self.book.apply(&update).map(Fed::Applied);
        }
        if !self.book.is_synced() {
            return Ok(self.buffer_update(update));
        }
        match self.book.apply(&update) {
            Ok(applied) => Ok(Fed::Applied(applied)),
            Err(BookError::Stale { .. }) => Ok(Fed::Dropped),
            Err(e) => {
                if let BookError::Gap { .. } = e {
                    // The update that showed the hole is the newest: a new run starts with it.
                    self.buffer_update(update);
                }
                Err(e)
            }
        }
    }

    /// Give the REST snapshot fetched after updates started arriving.
    pub fn on_snapshot(&mut self, snapshot: &DepthUpdate) -> Result<SnapshotOutcome, BookError> {
        let snapshot_id = snapshot.last_update_id;
        if let Some(first) = self.buffer.front()
            && too_old(self.book.dialect(), snapshot_id, first)
        {
            return Ok(SnapshotOutcome::TooOld {
                snapshot_id,
                first_buffered_id: first.first_update_id,
            });
        }
        self.book.load_snapshot(snapshot)?;
        let (mut replayed, mut dropped) = (0, 0);
        while let Some(update) = self.buffer.pop_front() {
            match self.book.apply(&update) {
                Ok(_) => replayed += 1,
                Err(BookError::Stale { .. }) => dropped += 1,
                Err(e) => {
                    self.buffer.clear();
                    if let BookError::Gap { .. } = e {
                        self.buffer_update(update);
                    }
                    return Err(e);
                }
            }
        }
        Ok(SnapshotOutcome::Loaded { replayed, dropped })
    }

    fn buffer_update(&mut self, update: DepthUpdate) -> Fed {
        if let Some(last) = self.buffer.back() {
            match chains(self.book.dialect(), last, &update) {
                Step::Apply => {}
                Step::Stale => return Fed::Dropped,
                Step::Gap => self.buffer.clear(),
            }
        }
        if self.buffer.len() == self.max_buffered {
            self.buffer.pop_front();
        }
        self.buffer.push_back(update);
        Fed::Buffered
    }
}

/// Does `next` continue `prev` on the stream? The book's live rule with `prev`'s id.
fn chains(dialect: Dialect, prev: &DepthUpdate, next: &DepthUpdate) -> Step {
    step(dialect, false, prev.last_update_id, next)
}

/// The documented "fetch the snapshot again" test against the oldest buffered update.
fn too_old(dialect: Dialect, snapshot_id: u64, first: &DepthUpdate) -> bool {
    match dialect {
        // Spot step 4: `lastUpdateId` strictly less than the first event's `U`. USD-M's first
        // event must have `U <= lastUpdateId`, the same condition.
        Dialect::BinanceSpot | Dialect::BinanceUsdm => snapshot_id < first.first_update_id,
        Dialect::Bybit => snapshot_id.saturating_add(1) < first.last_update_id,
        // OKX: the snapshot's seqId strictly less than the first update's prevSeqId.
        Dialect::Okx => first.prev_last_update_id.is_some_and(|p| snapshot_id < p),
        Dialect::Kraken(_) => false,
    }
}
