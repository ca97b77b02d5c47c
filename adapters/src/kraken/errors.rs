//! Kraken spot error responses → `VenueError`.
//!
//! Kraken answers API errors with HTTP 200 and `{"error":["ECategory:Message[:extra]"]}`
//! (`W...` entries are warnings). The first error decides.

use serde_json::Value;

use crate::model::VenueError;

fn retry_after_ms(retry_after: Option<&str>) -> Option<u64> {
    retry_after
        .and_then(|s| s.trim().parse::<u64>().ok())
        .and_then(|secs| secs.checked_mul(1000))
}

fn classify(err: &str, retry_after: Option<&str>) -> VenueError {
    let e = err.to_string();
    let starts = |p: &str| err.starts_with(p);
    if starts("EAPI:Rate limit exceeded")
        || starts("EOrder:Rate limit exceeded")
        || starts("EGeneral:Too many requests")
        || starts("EService:Throttled")
    {
        return VenueError::RateLimited {
            retry_after_ms: retry_after_ms(retry_after),
            banned: false,
        };
    }
    // Too many failed calls: Kraken locks the key out for about 15 minutes.
    if starts("EGeneral:Temporary lockout") {
        return VenueError::RateLimited {
            retry_after_ms: retry_after_ms(retry_after).or(Some(15 * 60 * 1000)),
            banned: true,
        };
    }
    // The nonce plays the role of a timestamp: it must increase. Resync and retry.
    if starts("EAPI:Invalid nonce") {
        return VenueError::TimestampOutsideRecvWindow(e);
    }
    if starts("EAPI:Invalid key")
        || starts("EAPI:Invalid signature")
        || starts("EGeneral:Permission denied")
        || starts("EAPI:Feature disabled")
    {
        return VenueError::AuthFailure(e);
    }
    if starts("EOrder:Insufficient funds")
        || starts("EOrder:Insufficient margin")
        || starts("EFunding:Insufficient funds")
    {
        return VenueError::InsufficientBalance(e);
    }
    if starts("EQuery:Unknown asset pair") {
        return VenueError::UnknownSymbol(e);
    }
    if starts("EOrder:Unknown order") {
        return VenueError::OrderNotFound(e);
    }
    if starts("EOrder:Order minimum not met")
        || starts("EOrder:Cost minimum not met")
        || starts("EOrder:Tick size check failed")
        || starts("EOrder:Invalid price")
        || starts("EGeneral:Invalid arguments")
    {
        return VenueError::FilterViolation(e);
    }
    if starts("EOrder:Duplicate") {
        return VenueError::DuplicateClientOrderId;
    }
    // Unavailable / busy / deadline elapsed / internal error: Kraken does not promise the
    // request was not processed, so the outcome is unknown until reconciled.
    if starts("EService:Unavailable")
        || starts("EService:Busy")
        || starts("EService:Deadline elapsed")
        || starts("EGeneral:Internal error")
    {
        return VenueError::UnknownOutcome(e);
    }
    let (code, message) = err.split_once(':').unwrap_or((err, ""));
    VenueError::Other {
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// Classify a Kraken spot response (REST body, or a v2 method response's `error`). `None` when it
/// is a success (HTTP 2xx and no `E` error).
/// `retry_after` is the Retry-After header in seconds, if any.
pub fn parse_error(http_status: u16, body: &str, retry_after: Option<&str>) -> Option<VenueError> {
    // REST: `"error": ["E..."]`; WebSocket v2 method responses: `"error": "E..."`.
    let first_error = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match v.get("error") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .find(|s| s.starts_with('E'))
                .map(str::to_string),
            Some(Value::String(s)) if s.starts_with('E') => Some(s.clone()),
            _ => None,
        });
    if let Some(err) = first_error {
        return Some(classify(&err, retry_after));
    }
    let text: String = body.chars().take(200).collect();
    match http_status {
        200..=299 => None,
        429 => Some(VenueError::RateLimited {
            retry_after_ms: retry_after_ms(retry_after),
            banned: false,
        }),
        401 | 403 => Some(VenueError::AuthFailure(format!(
            "HTTP {http_status} {text}"
        ))),
        // 5xx including Cloudflare's 520-530: the request may have reached the engine.
        500..=599 => Some(VenueError::UnknownOutcome(format!(
            "HTTP {http_status} {text}"
        ))),
        _ => Some(VenueError::Other {
            code: format!("HTTP {http_status}"),
            message: text,
        }),
    }
}
