//! One entry point for decoding any venue's message.

use crate::model::{DecodeError, Venue, VenueEvent};

/// Decode one message from `venue` (a WebSocket frame or a REST response body).
pub fn decode(venue: Venue, text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    match venue {
        Venue::BinanceSpot => crate::binance::decode_spot(text),
        Venue::BinanceUsdm => crate::binance::decode_usdm(text),
        Venue::Bybit => crate::bybit::decode(text),
        Venue::Okx => crate::okx::decode(text),
        Venue::Kraken => crate::kraken::decode(text),
    }
}
