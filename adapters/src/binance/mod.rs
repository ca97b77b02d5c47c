//! Binance codecs (work in progress).
use crate::model::{DecodeError, VenueEvent};

/// Decode one Binance spot message (WebSocket frame or REST response body).
pub fn decode_spot(_text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    Err(DecodeError::Unsupported("not yet implemented".into()))
}

/// Decode one Binance USD-M futures message (WebSocket frame or REST response body).
pub fn decode_usdm(_text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    Err(DecodeError::Unsupported("not yet implemented".into()))
}
