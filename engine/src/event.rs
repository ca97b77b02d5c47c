//! What the core consumes (`Input`, an `Event` with its journal stamp) and what it produces
//! (`Decision`).
//!
//! Every type here is archived with rkyv into journal records. A shipped layout never
//! changes: a new shape gets a new record kind or version (see `RecordKind`). Archived types
//! hold no `i128`/`u128`, so an 8-byte aligned journal payload can be accessed in place.

use crate::candle::Candle;
use crate::config::CoreConfig;
use crate::fixed::Fixed;
use crate::symbol::Symbol;

/// An event as the core sees it: the payload of one journal record plus the record's
/// sequence number and timestamp. Both come from the journal, never from a clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub seq: u64,
    pub ts_ns: u64,
    pub event: Event,
}

/// Everything that can happen to the core.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Event {
    /// First record of every session: the configuration the core runs with, and the user's
    /// configuration text verbatim for audits. Credentials are never part of it.
    SessionStart(SessionStart),
    Candle(Candle),
    Trade(Trade),
    BookTicker(BookTicker),
    OrderUpdate(OrderUpdate),
    Fill(Fill),
    Timer(Timer),
    Command(Command),
    /// A perpetual's funding settled against a position (from the venue, or the simulated
    /// venue fed a funding-rate series).
    Funding(FundingPayment),
    /// What the venue says the account holds (live sessions, at start-up and after every
    /// reconnect of the account stream), for the core to reconcile against.
    AccountState(AccountState),
}

/// The venue's view of the account, asked for over REST. The answers about each order the
/// core tracks (its fills and status) are journaled before it, so what is left to reconcile
/// is: the core's orders the venue no longer has, orders the venue has that the core never
/// placed, and positions that differ.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct AccountState {
    /// The venue's clock when it answered.
    pub ts_event_ns: i64,
    /// Orders placed after the answer was asked for have a client id above this one; they
    /// cannot be in it, so they are never taken for lost.
    pub asked_after_client_id: u64,
    /// Every open order on the session's symbols.
    pub open_orders: Vec<VenueOrder>,
    /// Spot: how much of each symbol's base asset the account holds (free + locked), which
    /// must cover the core's position (it may hold more: the user's own). Derivatives: the
    /// net position, which must equal the core's.
    pub positions: Vec<VenuePosition>,
    pub spot: bool,
    /// Orders the runtime could not settle this time (the venue did not answer about them, or
    /// their placement answer was lost moments ago): not taken for lost.
    pub unsettled: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct VenueOrder {
    /// The core's client id when the order is keel's (`k<n>`), else 0.
    pub client_id: u64,
    pub venue_order_id: u64,
    pub symbol: Symbol,
    pub side: Side,
    pub qty: Fixed,
    pub filled_qty: Fixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct VenuePosition {
    pub symbol: Symbol,
    /// Signed: positive long.
    pub qty: Fixed,
}

/// One funding settlement: `amount` is what the account received (negative: paid). Longs pay
/// shorts when the rate is positive: `amount = −position × mark × rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct FundingPayment {
    pub symbol: Symbol,
    pub rate: Fixed,
    pub mark: Fixed,
    pub position: Fixed,
    pub amount: Fixed,
    pub ts_event_ns: i64,
}

/// The client id of fills the venue initiates to liquidate a position. The core never issues
/// it: its ids are `seq × 256 + index` with `seq ≥ 1`.
pub const LIQUIDATION_CLIENT_ID: u64 = 0;

/// The client id of the fill a live session journals for a fee the venue took in the traded
/// asset (a spot buy on Binance, Bybit or OKX pays its fee in the coin bought): a sale of the
/// fee's quantity at the fill's price whose fee is that same value, so the position follows
/// the wallet (bought less the fee) and the cost lands in fees. It is journaled just before
/// the fill it belongs to, with the same venue order and trade ids.
pub const FEE_IN_BASE_CLIENT_ID: u64 = 1;

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct SessionStart {
    pub mode: Mode,
    pub config: CoreConfig,
    pub config_text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Mode {
    Backtest,
    Paper,
    Live,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Trade {
    pub symbol: Symbol,
    pub ts_event_ns: i64,
    pub price: Fixed,
    pub qty: Fixed,
    pub aggressor: Side,
    pub trade_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct BookTicker {
    pub symbol: Symbol,
    pub ts_event_ns: i64,
    pub bid: Fixed,
    pub bid_qty: Fixed,
    pub ask: Fixed,
    pub ask_qty: Fixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum OrderStatus {
    Accepted,
    Rejected,
    Canceled,
    Expired,
}

/// A venue's (or the simulated venue's) answer about an order, other than a fill.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct OrderUpdate {
    pub client_id: u64,
    pub venue_order_id: u64,
    pub status: OrderStatus,
    pub ts_event_ns: i64,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Liquidity {
    Maker,
    Taker,
}

/// An execution of (part of) an order. `fee` is in the quote asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Fill {
    pub client_id: u64,
    pub venue_order_id: u64,
    pub trade_id: u64,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Fixed,
    pub qty: Fixed,
    pub fee: Fixed,
    pub liquidity: Liquidity,
    pub ts_event_ns: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum TimerKind {
    Heartbeat,
    DailyReport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Timer {
    pub kind: TimerKind,
}

/// An operator's instruction, journaled like any other input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Command {
    /// Flatten every position, cancel every order, and refuse new entries until `Resume`.
    KillSwitch,
    /// Refuse new entries; keep managing open positions.
    Halt,
    Resume,
    /// Cancel every open order (protective stops and targets included) and refuse new
    /// entries until `Resume`; positions stay as they are.
    CancelAll,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum OrderKind {
    Market,
    /// Rests at `price`. Marketable on arrival, it takes liquidity at once (taker) unless
    /// `post_only`, which then rejects it; resting, it fills at `price` (maker) when the
    /// market trades through it.
    Limit {
        price: Fixed,
        post_only: bool,
    },
    /// A stop-market order: becomes a market order when the market reaches `trigger`.
    Stop {
        trigger: Fixed,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct OrderRequest {
    /// Derived from the sequence number of the input that caused the order (see
    /// `client_order_id`), so a resend after a crash carries the same id.
    pub client_id: u64,
    pub symbol: Symbol,
    pub side: Side,
    pub kind: OrderKind,
    pub qty: Fixed,
    pub reduce_only: bool,
}

/// Why the core chose not to act on a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum RejectReason {
    Halted,
    OrderPending,
    SizeBelowLot,
    NoPrice,
    /// `max_positions` symbols already hold a position or an entry in flight.
    MaxPositions,
    /// The UTC day's loss limit tripped; entries resume the next UTC day.
    DailyLossLimit,
    /// The stop distance is unknown (ATR not warmed up) or not positive.
    NoStopDistance,
}

impl RejectReason {
    pub const ALL: [RejectReason; 7] = [
        RejectReason::Halted,
        RejectReason::OrderPending,
        RejectReason::SizeBelowLot,
        RejectReason::NoPrice,
        RejectReason::MaxPositions,
        RejectReason::DailyLossLimit,
        RejectReason::NoStopDistance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Halted => "halted",
            RejectReason::OrderPending => "order_pending",
            RejectReason::SizeBelowLot => "size_below_lot",
            RejectReason::NoPrice => "no_price",
            RejectReason::MaxPositions => "max_positions",
            RejectReason::DailyLossLimit => "daily_loss_limit",
            RejectReason::NoStopDistance => "no_stop_distance",
        }
    }
}

/// What the core decided. Each decision is journaled, after the input that caused it and
/// before anything is sent anywhere.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Decision {
    /// A strategy's view, with the numbers that led to it, so a log explains every trade.
    Signal {
        symbol: Symbol,
        strategy: String,
        action: SignalAction,
        detail: String,
    },
    PlaceOrder(OrderRequest),
    CancelOrder {
        client_id: u64,
    },
    /// A signal the core did not act on, and why.
    Reject {
        symbol: Symbol,
        reason: RejectReason,
        detail: String,
    },
    /// The core stopped taking new entries.
    Halted {
        detail: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum SignalAction {
    EnterLong,
    ExitLong,
}

impl SignalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalAction::EnterLong => "enter_long",
            SignalAction::ExitLong => "exit_long",
        }
    }
}

/// Up to 256 orders per input get distinct ids: `seq × 256 + index` (a grid arms its whole
/// ladder from one input; the kill switch closes every symbol at once).
pub const ORDERS_PER_INPUT_MAX: u64 = 256;

/// The client order id of the `index`-th order decided while applying input `seq`.
pub fn client_order_id(seq: u64, index: u64) -> u64 {
    assert!(
        index < ORDERS_PER_INPUT_MAX,
        "too many orders for one input"
    );
    seq * ORDERS_PER_INPUT_MAX + index
}

/// Journal record kinds. Inputs are below 100, decisions 100..200, markers 200 and up.
/// A kind's payload layout is fixed forever for a given `version()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u16)]
pub enum RecordKind {
    SessionStart = 1,
    Candle = 2,
    Trade = 3,
    BookTicker = 4,
    OrderUpdate = 5,
    Fill = 6,
    Timer = 7,
    Command = 8,
    Funding = 9,
    AccountState = 10,
    /// A candle input given by reference to a candle store's record (a backtest's bars): the
    /// core sees the stored candle. See `keel_replay::codec::CandleRef`.
    CandleRef = 11,
    /// The first `candle_ref` of a run, with where every reference of the run points: the
    /// candle store and its series (one record per bar either way, so sequence numbers, hence
    /// client order ids, are those of a session that journals its candles).
    FirstCandleRef = 12,
    Decision = 100,
    Checkpoint = 200,
    /// A bar in a candle store (not a session journal): payload is a bare `Candle`.
    StoredCandle = 300,
}

impl RecordKind {
    pub const ALL: [RecordKind; 15] = [
        RecordKind::SessionStart,
        RecordKind::Candle,
        RecordKind::Trade,
        RecordKind::BookTicker,
        RecordKind::OrderUpdate,
        RecordKind::Fill,
        RecordKind::Timer,
        RecordKind::Command,
        RecordKind::Funding,
        RecordKind::AccountState,
        RecordKind::CandleRef,
        RecordKind::FirstCandleRef,
        RecordKind::Decision,
        RecordKind::Checkpoint,
        RecordKind::StoredCandle,
    ];

    pub fn from_u16(kind: u16) -> Option<RecordKind> {
        Self::ALL.iter().copied().find(|k| *k as u16 == kind)
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordKind::SessionStart => "session_start",
            RecordKind::Candle => "candle",
            RecordKind::Trade => "trade",
            RecordKind::BookTicker => "book_ticker",
            RecordKind::OrderUpdate => "order_update",
            RecordKind::Fill => "fill",
            RecordKind::Timer => "timer",
            RecordKind::Command => "command",
            RecordKind::Funding => "funding",
            RecordKind::AccountState => "account_state",
            RecordKind::CandleRef => "candle_ref",
            RecordKind::FirstCandleRef => "first_candle_ref",
            RecordKind::Decision => "decision",
            RecordKind::Checkpoint => "checkpoint",

            RecordKind::StoredCandle => "stored_candle",
        }
    }

    /// Payload layout version written today. A shipped layout never changes; a new one gets
    /// a new version and readers keep decoding the old ones.
    ///
    /// `candle` 2: the archived [`Candle`] alone (88 bytes), the layout of `stored_candle`;
    /// version 1 archived the whole [`Event`] (232 bytes, the size of its largest variant),
    /// as every other input kind still does. Candles are most of a session's records.
    pub fn version(self) -> u16 {
        match self {
            RecordKind::Candle => 2,
            _ => 1,
        }
    }

    pub fn is_input(self) -> bool {
        (self as u16) < 100
    }
}

impl Event {
    pub fn kind(&self) -> RecordKind {
        match self {
            Event::SessionStart(_) => RecordKind::SessionStart,
            Event::Candle(_) => RecordKind::Candle,
            Event::Trade(_) => RecordKind::Trade,
            Event::BookTicker(_) => RecordKind::BookTicker,
            Event::OrderUpdate(_) => RecordKind::OrderUpdate,
            Event::Fill(_) => RecordKind::Fill,
            Event::Timer(_) => RecordKind::Timer,
            Event::Command(_) => RecordKind::Command,
            Event::Funding(_) => RecordKind::Funding,
            Event::AccountState(_) => RecordKind::AccountState,
        }
    }
}

/// A marker the runner writes after the last input: the core's digest at that point, so
/// `replay verify` can prove the replayed state is the recorded one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Checkpoint {
    pub after_seq: u64,
    pub digest: [u8; 32],
}
