//! The normalized vocabulary every venue codec speaks.
//!
//! Codecs are pure: bytes in, these values out (and requests out, bytes in). Nothing here does
//! I/O. The runtime later turns `VenueEvent`s into journaled core inputs; keeping the venue
//! vocabulary here (string client ids, fee assets, venue order states) means a venue quirk never
//! leaks into the deterministic core's record layout.
//!
//! Prices and quantities are `Fixed` (i64 × 1e-8), parsed from the venue's decimal strings with
//! [`dec`], which refuses anything that does not fit instead of silently rounding it away.

use keel_engine::candle::Candle;
use keel_engine::event::{BookTicker, Liquidity, Side, Trade};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

/// The venues keel trades on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Venue {
    BinanceSpot,
    BinanceUsdm,
    Bybit,
    Okx,
    Kraken,
}

impl Venue {
    pub const ALL: [Venue; 5] = [
        Venue::BinanceSpot,
        Venue::BinanceUsdm,
        Venue::Bybit,
        Venue::Okx,
        Venue::Kraken,
    ];

    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Venue::BinanceSpot => "binance-spot",
            Venue::BinanceUsdm => "binance-usdm",
            Venue::Bybit => "bybit",
            Venue::Okx => "okx",
            Venue::Kraken => "kraken",
        }
    }

    pub fn parse(text: &str) -> Option<Venue> {
        Venue::ALL.into_iter().find(|v| v.name() == text)
    }
}

/// One normalized thing a venue told us.
#[derive(Clone, Debug, PartialEq)]
pub enum VenueEvent {
    /// A kline/candle. `closed` is false for an in-progress candle (the core only consumes closed
    /// ones; in-progress ones are useful for display and stale-stream detection).
    Candle {
        candle: Candle,
        closed: bool,
    },
    Trade(Trade),
    BookTicker(BookTicker),
    Depth(DepthUpdate),
    Order(OrderEvent),
    Fill(FillEvent),
    Balance(BalanceUpdate),
    Position(PositionUpdate),
    Funding(FundingRate),
    /// Protocol traffic the client acts on but the core never sees.
    Control(Control),
}

impl VenueEvent {
    /// Short name of the variant, used in JSON output and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            VenueEvent::Candle { .. } => "candle",
            VenueEvent::Trade(_) => "trade",
            VenueEvent::BookTicker(_) => "book_ticker",
            VenueEvent::Depth(_) => "depth",
            VenueEvent::Order(_) => "order",
            VenueEvent::Fill(_) => "fill",
            VenueEvent::Balance(_) => "balance",
            VenueEvent::Position(_) => "position",
            VenueEvent::Funding(_) => "funding",
            VenueEvent::Control(_) => "control",
        }
    }
}

/// A price level: (price, quantity). Quantity zero removes the level in an update.
pub type Level = (Fixed, Fixed);

/// An order-book snapshot or incremental update with the venue's sequence numbers, so the client
/// can detect a gap and resync from a REST snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthUpdate {
    pub symbol: Symbol,
    pub ts_event_ns: i64,
    pub snapshot: bool,
    /// First update id covered by this message (Binance `U`; equals `last_update_id` where the
    /// venue has a single sequence number per message).
    pub first_update_id: u64,
    /// Last update id covered (Binance `u`, Bybit `u`, OKX `seqId`).
    pub last_update_id: u64,
    /// The previous message's last id when the venue says it (Binance futures `pu`, OKX
    /// `prevSeqId`); `None` when the venue relies on `first_update_id == previous last + 1`.
    pub prev_last_update_id: Option<u64>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    /// OKX/Kraken book checksum when present (CRC32 over the top levels).
    pub checksum: Option<i64>,
}

/// The venue's view of an order's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    /// Accepted and resting (or about to match).
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
    /// A conditional (stop / take-profit / algo) order was triggered and became a live order.
    Triggered,
    /// A conditional order was accepted and waits for its trigger.
    Untriggered,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::New => "new",
            OrderState::PartiallyFilled => "partially_filled",
            OrderState::Filled => "filled",
            OrderState::Canceled => "canceled",
            OrderState::Rejected => "rejected",
            OrderState::Expired => "expired",
            OrderState::Triggered => "triggered",
            OrderState::Untriggered => "untriggered",
        }
    }

    /// No further updates will come for this order.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderState::Filled | OrderState::Canceled | OrderState::Rejected | OrderState::Expired
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    Market,
    Limit,
    StopMarket,
    StopLimit,
    TakeProfitMarket,
    TakeProfitLimit,
    TrailingStop,
    /// Anything else the venue has (liquidation, ADL, ...).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    Gtc,
    Ioc,
    Fok,
    /// Post-only (Binance GTX, Bybit PostOnly, OKX post_only, Kraken post_only flag).
    PostOnly,
}

/// An order status report from a private stream or a REST query.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderEvent {
    pub symbol: Symbol,
    /// The client order id keel sent (empty when the venue did not echo one).
    pub client_order_id: String,
    pub venue_order_id: String,
    pub state: OrderState,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: Option<TimeInForce>,
    /// Limit price; zero for market orders.
    pub price: Fixed,
    /// Trigger price of conditional orders; zero otherwise.
    pub trigger_price: Fixed,
    pub qty: Fixed,
    pub filled_qty: Fixed,
    /// Average fill price; zero before the first fill.
    pub avg_price: Fixed,
    pub reduce_only: bool,
    /// The venue's reason for a reject/cancel/expiry, verbatim (empty when none).
    pub reason: String,
    pub ts_event_ns: i64,
}

/// One execution (partial or full fill).
#[derive(Clone, Debug, PartialEq)]
pub struct FillEvent {
    pub symbol: Symbol,
    pub client_order_id: String,
    pub venue_order_id: String,
    pub trade_id: String,
    pub side: Side,
    pub price: Fixed,
    pub qty: Fixed,
    /// Fee charged, positive; a rebate is negative.
    pub fee: Fixed,
    pub fee_asset: String,
    pub liquidity: Liquidity,
    pub ts_event_ns: i64,
}

/// A balance of one asset.
#[derive(Clone, Debug, PartialEq)]
pub struct BalanceUpdate {
    pub asset: String,
    /// Available for new orders.
    pub free: Fixed,
    /// Held by open orders or margin.
    pub locked: Fixed,
    pub ts_event_ns: i64,
}

/// A derivatives position (net, or one side in hedge mode).
#[derive(Clone, Debug, PartialEq)]
pub struct PositionUpdate {
    pub symbol: Symbol,
    /// Signed: positive long, negative short, zero flat.
    pub qty: Fixed,
    pub entry_price: Fixed,
    pub unrealized_pnl: Fixed,
    /// Zero when the venue does not say.
    pub liquidation_price: Fixed,
    /// Zero when the venue does not say.
    pub leverage: Fixed,
    pub ts_event_ns: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FundingRate {
    pub symbol: Symbol,
    pub rate: Fixed,
    pub funding_time_ns: i64,
    /// Mark price when the message carries one; zero otherwise.
    pub mark_price: Fixed,
    pub ts_event_ns: i64,
}

/// Protocol messages: acks, pongs, auth results, subscription results.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    Pong,
    Subscribed {
        topic: String,
    },
    SubscribeFailed {
        topic: String,
        reason: String,
    },
    AuthOk,
    AuthFailed {
        reason: String,
    },
    /// A response to a request sent over a WebSocket API (`id` as the venue echoes it).
    Response {
        id: String,
        ok: bool,
        detail: String,
    },
    /// The venue says the stream will close or the session needs renewal (listen key expiry).
    StreamExpiring {
        reason: String,
    },
}

/// Why bytes from a venue could not be turned into events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON missing a field the message kind requires. `what` names the message
    /// kind and the field, so a user can see which field a venue changed.
    #[error("malformed {what}: {detail}")]
    Malformed { what: String, detail: String },
    /// Well-formed, but a message kind keel does not consume.
    #[error("unsupported message kind: {0}")]
    Unsupported(String),
}

impl DecodeError {
    pub fn malformed(what: impl Into<String>, detail: impl Into<String>) -> DecodeError {
        DecodeError::Malformed {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Parse a venue decimal string into `Fixed` exactly: more than 8 decimals that are not zero, or
/// a value out of range, is an error (a silently rounded quantity is a wrong order).
pub fn dec(field: &str, text: &str) -> Result<Fixed, DecodeError> {
    Fixed::parse_exact(text).map_err(|e| {
        DecodeError::malformed(
            field,
            format!("{text:?} is not a decimal keel can hold: {e}"),
        )
    })
}

/// Like [`dec`] but rounds to 8 decimals (for venue-computed values such as average prices or
/// PnL, which venues print with 10+ decimals and which keel never sends back).
pub fn dec_lossy(field: &str, text: &str) -> Result<Fixed, DecodeError> {
    Fixed::parse(text).map_err(|e| {
        DecodeError::malformed(
            field,
            format!("{text:?} is not a decimal keel can hold: {e}"),
        )
    })
}

/// A venue symbol as a keel `Symbol`.
pub fn symbol(field: &str, text: &str) -> Result<Symbol, DecodeError> {
    Symbol::new(text).map_err(|e| DecodeError::malformed(field, format!("{text:?}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Requests

/// What keel wants a venue to do, before venue encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderSpec {
    pub symbol: Symbol,
    pub client_order_id: String,
    pub side: Side,
    pub kind: OrderSpecKind,
    pub qty: Fixed,
    pub time_in_force: TimeInForce,
    pub reduce_only: bool,
}

impl OrderSpec {
    /// The venue-neutral order for one of the core's order decisions. The client order id is
    /// `k` followed by the core's numeric id (derived from the journal sequence, so a resend
    /// after a crash carries the same id); it fits every venue's id rules (Binance
    /// `^[.A-Z:/a-z0-9_-]{1,36}$`, Bybit and OKX 32 alphanumerics, Kraken's `cl_ord_id`).
    pub fn from_core(request: &keel_engine::event::OrderRequest) -> OrderSpec {
        use keel_engine::event::OrderKind;
        let (kind, time_in_force) = match request.kind {
            OrderKind::Market => (OrderSpecKind::Market, TimeInForce::Gtc),
            OrderKind::Limit { price, post_only } => (
                OrderSpecKind::Limit { price },
                if post_only {
                    TimeInForce::PostOnly
                } else {
                    TimeInForce::Gtc
                },
            ),
            OrderKind::Stop { trigger } => {
                (OrderSpecKind::StopMarket { trigger }, TimeInForce::Gtc)
            }
        };
        OrderSpec {
            symbol: request.symbol,
            client_order_id: format!("k{}", request.client_id),
            side: request.side,
            kind,
            qty: request.qty,
            time_in_force,
            reduce_only: request.reduce_only,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OrderSpecKind {
    Market,
    Limit {
        price: Fixed,
    },
    /// Market once the trigger trades (stop loss).
    StopMarket {
        trigger: Fixed,
    },
    StopLimit {
        trigger: Fixed,
        price: Fixed,
    },
    /// Market once the trigger trades in profit direction.
    TakeProfitMarket {
        trigger: Fixed,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A REST request, encoded for one venue but not yet signed or sent. The client adds
/// timestamps/nonces and signatures (see `sign`), then sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct RestRequest {
    pub method: Method,
    /// Path from the venue's base URL, starting with '/'.
    pub path: String,
    /// Query parameters in the order they are sent.
    pub query: Vec<(String, String)>,
    /// Body as sent (JSON for Bybit/OKX, form-encoded for Kraken/Binance when used).
    pub body: Option<String>,
    /// Needs authentication.
    pub signed: bool,
    /// The venue's request weight (for the client's rate-limit budget).
    pub weight: u32,
    /// Safe to retry after an unknown outcome (idempotent, or carries a client order id the
    /// venue deduplicates).
    pub retry_safe: bool,
}

/// An instrument's trading rules from the venue's own metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Instrument {
    pub symbol: Symbol,
    pub base: String,
    pub quote: String,
    pub tick_size: Fixed,
    /// Quantity step.
    pub lot_size: Fixed,
    pub min_qty: Fixed,
    /// Zero when unlimited.
    pub max_qty: Fixed,
    /// Minimum price × qty in quote; zero when none.
    pub min_notional: Fixed,
    /// Contract multiplier for derivatives quoted in contracts (OKX ctVal); one otherwise.
    pub contract_size: Fixed,
    pub trading: bool,
}

/// Errors a venue answers with, typed so the runtime can act on them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    #[error(
        "rate limited{}{}",
        match retry_after_ms {
            Some(ms) => format!(" (retry after {ms} ms)"),
            None => String::new(),
        },
        if *.banned { ", IP banned" } else { "" }
    )]
    RateLimited {
        retry_after_ms: Option<u64>,
        /// Binance 418: the IP is banned until retry-after.
        banned: bool,
    },
    #[error("duplicate client order id")]
    DuplicateClientOrderId,
    #[error("insufficient balance: {0}")]
    InsufficientBalance(String),
    #[error("unknown symbol: {0}")]
    UnknownSymbol(String),
    #[error("order violates instrument filter: {0}")]
    FilterViolation(String),
    #[error("timestamp outside the venue's receive window: {0}")]
    TimestampOutsideRecvWindow(String),
    #[error("authentication failed: {0}")]
    AuthFailure(String),
    #[error("unknown order: {0}")]
    OrderNotFound(String),
    /// The request may or may not have taken effect (timeout, connection reset, 5xx with an
    /// unknown-status code). Reconcile before acting.
    #[error("unknown outcome: {0}")]
    UnknownOutcome(String),
    #[error("venue error {code}: {message}")]
    Other { code: String, message: String },
}

#[cfg(test)]
mod order_spec_tests {
    use super::*;
    use keel_engine::event::{OrderKind, OrderRequest};

    fn request(kind: OrderKind, reduce_only: bool) -> OrderRequest {
        OrderRequest {
            client_id: 4_352_001,
            symbol: Symbol::new("BTCUSDT").unwrap(),
            side: Side::Sell,
            kind,
            qty: Fixed::parse("0.005").unwrap(),
            reduce_only,
        }
    }

    #[test]
    fn core_orders_map_to_venue_specs_and_binance_requests() {
        let px = Fixed::parse("46500.5").unwrap();
        let stop = OrderSpec::from_core(&request(OrderKind::Stop { trigger: px }, true));
        assert_eq!(stop.client_order_id, "k4352001");
        assert_eq!(stop.kind, OrderSpecKind::StopMarket { trigger: px });
        assert!(stop.reduce_only);
        let maker = OrderSpec::from_core(&request(
            OrderKind::Limit {
                price: px,
                post_only: true,
            },
            false,
        ));
        assert_eq!(maker.time_in_force, TimeInForce::PostOnly);
        // Binance spot encodes a post-only limit as LIMIT_MAKER (its docs), with our id.
        let req = crate::binance::spot_place_order(&maker).unwrap();
        let get = |k: &str| {
            req.query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("type"), Some("LIMIT_MAKER"));
        assert_eq!(get("newClientOrderId"), Some("k4352001"));
        assert_eq!(get("price"), Some("46500.5"));
        assert_eq!(get("quantity"), Some("0.005"));
    }
}
