//! Binance error bodies (`{"code":-1121,"msg":"Invalid symbol."}`) as typed `VenueError`s.
//!
//! Codes and messages follow the spot `errors.md` and the USD-M error-code page. Several
//! codes are generic (`-2010 NEW_ORDER_REJECTED`, `-2011 CANCEL_REJECTED`, `-1010`): the
//! matching engine's reason is in the message, so those are told apart by message text.

use serde_json::Value;

use crate::model::VenueError;

/// Classify a Binance error response. `http_status` is the HTTP status (or the `status` of a
/// WebSocket API reply), `body` the response body (REST `{"code","msg"}` or WebSocket API
/// `{"error":{"code","msg"}}`), `retry_after` the `Retry-After` header (seconds), if any.
///
/// HTTP 5xx means the outcome is unknown (the docs: "the execution status is UNKNOWN and could
/// have been a success"), except for the two messages Binance documents as failures.
pub fn parse_error(http_status: u16, body: &str, retry_after: Option<&str>) -> VenueError {
    let retry_after_ms = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .and_then(|secs| secs.checked_mul(1000));
    match http_status {
        418 => {
            return VenueError::RateLimited {
                retry_after_ms,
                banned: true,
            };
        }
        429 => {
            return VenueError::RateLimited {
                retry_after_ms,
                banned: false,
            };
        }
        _ => {}
    }
    let Some((code, msg)) = code_and_msg(body) else {
        let snippet = snippet(body);
        return if http_status >= 500 && !is_documented_failure(&snippet) {
            VenueError::UnknownOutcome(format!("HTTP {http_status}: {snippet}"))
        } else {
            VenueError::Other {
                code: format!("http-{http_status}"),
                message: snippet,
            }
        };
    };
    classify(http_status, code, msg, retry_after_ms)
}

fn classify(http_status: u16, code: i64, msg: String, retry_after_ms: Option<u64>) -> VenueError {
    let lower = msg.to_ascii_lowercase();
    if msg.starts_with("Filter failure:") {
        return VenueError::FilterViolation(msg);
    }
    match code {
        -1003 => VenueError::RateLimited {
            retry_after_ms,
            banned: lower.contains("banned"),
        },
        // Too many orders; the server is overloaded / throttling (the request was not run).
        -1015 | -1008 => VenueError::RateLimited {
            retry_after_ms,
            banned: false,
        },
        -1021 => VenueError::TimestampOutsideRecvWindow(msg),
        -1002 | -1022 | -1099 | -2014 | -2015 => VenueError::AuthFailure(msg),
        -1121 => VenueError::UnknownSymbol(msg),
        // "Execution status unknown" in both messages.
        -1006 | -1007 => VenueError::UnknownOutcome(msg),
        -2013 | -2026 => VenueError::OrderNotFound(msg),
        // USD-M: duplicate client order id; balance / margin insufficient.
        -4116 => VenueError::DuplicateClientOrderId,
        -2018 | -2019 => VenueError::InsufficientBalance(msg),
        // Filters: -1013 (spot, rejected by API filters) and the USD-M filter codes
        // (quantity/price bounds, tick and step size, percent price, minimum notional).
        -1013 | -4003 | -4004 | -4005 | -4013 | -4014 | -4016 | -4023 | -4024 | -4131 | -4164 => {
            VenueError::FilterViolation(msg)
        }
        -1010 | -2010 | -2011 => {
            if lower.starts_with("duplicate order") {
                VenueError::DuplicateClientOrderId
            } else if lower.contains("insufficient balance") {
                VenueError::InsufficientBalance(msg)
            } else if lower.starts_with("unknown order") {
                VenueError::OrderNotFound(msg)
            } else {
                VenueError::Other {
                    code: code.to_string(),
                    message: msg,
                }
            }
        }
        _ if http_status >= 500 && !is_documented_failure(&msg) && code != -1001 => {
            VenueError::UnknownOutcome(format!("{code} {msg}"))
        }
        _ => VenueError::Other {
            code: code.to_string(),
            message: msg,
        },
    }
}

/// The 503 messages Binance documents as "a failure API operation" (safe to resend).
fn is_documented_failure(msg: &str) -> bool {
    msg.contains("Service Unavailable") || msg.contains("Internal error; unable to process")
}

fn code_and_msg(body: &str) -> Option<(i64, String)> {
    let v: Value = serde_json::from_str(body).ok()?;
    let o = match v.get("error") {
        Some(e) if e.is_object() => e,
        _ => &v,
    };
    let code = match o.get("code")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let msg = o
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((code, msg))
}

fn snippet(body: &str) -> String {
    let t = body.trim();
    let mut end = t.len().min(200);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    t.get(..end).unwrap_or_default().to_string()
}
