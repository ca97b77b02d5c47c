//! Bybit error responses to typed [`VenueError`]s.
//!
//! Bybit answers most errors with HTTP 200 and a non-zero `retCode` (codes from the v5 docs'
//! error-code page); transport-level refusals come as bare HTTP statuses (403 = IP rate limit
//! ban, 429 = system protection).

use serde_json::Value;

use super::control::str_of;
use super::rest::code_of;
use crate::model::VenueError;

/// Codes that mean "slow down": API rate limit (10006), order-entry stream frequency protection
/// (10429, 20003), the UTA "high server load" 429, and the spot order-rate limits.
const RATE_LIMITED: &[i64] = &[10006, 10429, 20003, 429, 170005, 170222];
const RECV_WINDOW: &[i64] = &[10002, -1];
/// Bad key, signature, permission, user, bound IP, expired key. (On the order-entry stream
/// 10003 means "too many sessions", but the REST meaning is the one parsed here.)
const AUTH: &[i64] = &[10003, 10004, 10005, 10007, 10010, 33004, -2015];
const DUPLICATE: &[i64] = &[110072, 170141];
const INSUFFICIENT: &[i64] = &[
    110004, 110006, 110007, 110012, 110044, 110045, 110051, 110052, 110053, 170033, 170131, 176015,
];
const UNKNOWN_SYMBOL: &[i64] = &[10029, 170121];
/// Request parameter error (10001: qty/price precision and range problems land here) and the
/// explicit price/quantity/notional limits.
const FILTER: &[i64] = &[
    10001, 30208, 30209, 110003, 110017, 110094, 110120, 110121, 170124, 170132, 170133, 170134,
    170136, 170137, 170140, 170148, 170192, 170193, 170194, 170341, 170371, 170372, 170381, 170382,
];
/// The order is not open: unknown, or already filled/cancelled.
const NOT_FOUND: &[i64] = &[
    110001, 110008, 110010, 170139, 170142, 170143, 170190, 170213,
];
/// Server timeouts and internal errors: the request may or may not have been executed.
const UNKNOWN_OUTCOME: &[i64] = &[
    10000, 10016, 10019, 170001, 170007, 170032, 170035, 170146, 170147, 170234, 170310,
];

/// Typed error for a Bybit response, `None` when it is a success (`retCode` 0 with a 2xx
/// status). `retry_after` is the `X-Bapi-Limit-Reset-Timestamp` header (epoch ms, turned into a
/// wait using the body's server `time`) or a standard `Retry-After` in seconds. Order-entry
/// WebSocket replies have the same `retCode`/`retMsg` fields and can be passed with status 200.
///
/// `10014` ("Invalid duplicate request") and `20006` ("reqId is duplicated") are not mapped to
/// `DuplicateClientOrderId`: they are about the request, not about `orderLinkId`.
pub fn parse_error(http_status: u16, body: &str, retry_after: Option<&str>) -> Option<VenueError> {
    let json: Option<Value> = serde_json::from_str::<Value>(body)
        .ok()
        .filter(Value::is_object);
    let code = json
        .as_ref()
        .and_then(|v| v.get("retCode").or_else(|| v.get("ret_code")))
        .and_then(code_of);
    let msg = json
        .as_ref()
        .and_then(|v| str_of(v, "retMsg").or_else(|| str_of(v, "ret_msg")))
        .unwrap_or("")
        .to_string();
    let retry_after_ms = retry_ms(retry_after, json.as_ref());
    let success_status = (200..300).contains(&http_status);
    match code {
        Some(0) if success_status => None,
        Some(c) if c != 0 => Some(by_code(c, msg, retry_after_ms)),
        _ => Some(by_status(http_status, body, retry_after_ms)),
    }
}

fn by_code(code: i64, msg: String, retry_after_ms: Option<u64>) -> VenueError {
    let is = |set: &[i64]| set.contains(&code);
    if is(RATE_LIMITED) {
        VenueError::RateLimited {
            retry_after_ms,
            banned: false,
        }
    } else if is(RECV_WINDOW) {
        VenueError::TimestampOutsideRecvWindow(msg)
    } else if is(AUTH) {
        VenueError::AuthFailure(msg)
    } else if is(DUPLICATE) {
        VenueError::DuplicateClientOrderId
    } else if is(INSUFFICIENT) {
        VenueError::InsufficientBalance(msg)
    } else if is(UNKNOWN_SYMBOL)
        // Bybit reports an unknown symbol as the generic parameter error with this message
        // (`{retCode=10001, retMsg=params error: symbol invalid}`, bybit-java-api issue #60).
        || (code == 10001 && msg.to_ascii_lowercase().contains("symbol invalid"))
    {
        VenueError::UnknownSymbol(msg)
    } else if is(FILTER) {
        VenueError::FilterViolation(msg)
    } else if is(NOT_FOUND) {
        VenueError::OrderNotFound(msg)
    } else if is(UNKNOWN_OUTCOME) {
        VenueError::UnknownOutcome(format!("{code}: {msg}"))
    } else {
        VenueError::Other {
            code: code.to_string(),
            message: msg,
        }
    }
}

fn by_status(status: u16, body: &str, retry_after_ms: Option<u64>) -> VenueError {
    match status {
        200..=299 => VenueError::UnknownOutcome(format!(
            "HTTP {status} with a body that is not a Bybit response"
        )),
        // Bybit docs (Rate Limit): an HTTP 403 means the IP is temporarily or permanently banned.
        403 => VenueError::RateLimited {
            retry_after_ms,
            banned: true,
        },
        429 => VenueError::RateLimited {
            retry_after_ms,
            banned: false,
        },
        401 => VenueError::AuthFailure(format!("HTTP 401: {}", snippet(body))),
        408 | 500..=599 => VenueError::UnknownOutcome(format!("HTTP {status}: {}", snippet(body))),
        _ => VenueError::Other {
            code: status.to_string(),
            message: snippet(body),
        },
    }
}

fn snippet(body: &str) -> String {
    body.chars().take(200).collect()
}

fn server_time_ms(json: Option<&Value>) -> Option<u64> {
    let v = json?;
    if let Some(t) = v.get("time").and_then(Value::as_u64) {
        return Some(t);
    }
    // Order-entry replies put it in `header.Timenow`.
    v.get("header")
        .and_then(|h| str_of(h, "Timenow"))
        .and_then(|t| t.parse().ok())
}

fn retry_ms(header: Option<&str>, json: Option<&Value>) -> Option<u64> {
    // Anything this large is an epoch timestamp in ms, not a number of seconds to wait.
    const EPOCH_MS: u64 = 1_000_000_000_000;
    let now = server_time_ms(json);
    let reset = match header.and_then(|h| h.trim().parse::<u64>().ok()) {
        Some(n) if n >= EPOCH_MS => n,
        Some(secs) => return secs.checked_mul(1000),
        None => json?
            .get("header")
            .and_then(|h| str_of(h, "X-Bapi-Limit-Reset-Timestamp"))
            .and_then(|t| t.parse().ok())?,
    };
    now.map(|now| reset.saturating_sub(now))
}
