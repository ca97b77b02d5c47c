//! kraken codec (work in progress).
use crate::model::{DecodeError, VenueEvent};

/// Decode one message (WebSocket frame or REST response body).
pub fn decode(_text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    Err(DecodeError::Unsupported("not yet implemented".into()))
}
