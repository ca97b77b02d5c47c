//! Venue adapters: translate between venue bytes and keel events/commands.
//!
//! Everything in the codec modules is pure (no I/O): `model` is the normalized vocabulary,
//! `sign` the request signing rules, `rules` the instrument tick/lot rounding, one module per
//! venue for its wire format, and `decode` the dispatcher `keel venue decode` uses.

pub mod binance;
pub mod book;
pub mod bybit;
pub mod civil;
pub mod client;
pub mod credentials;
pub mod decode;
mod json;
pub mod kraken;
pub mod mock;
pub mod model;
pub mod okx;
pub mod rules;
pub mod sign;
pub mod ws;
