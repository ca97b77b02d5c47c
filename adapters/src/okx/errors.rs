//! OKX error responses → `VenueError`.
//!
//! OKX answers most errors with HTTP 200 and `{"code":"<n>","msg":"..","data":[..]}`. Order
//! endpoints put the real reason in each item's `sCode`/`sMsg` (top-level code `1` "operation
//! failed" or `2` "partially succeeded", and sometimes `0` with a failed item), so the first
//! failed item wins over the top-level code. Codes from OKX's v5 error-code table.

use serde_json::Value;

use crate::model::VenueError;

fn retry_after_ms(retry_after: Option<&str>) -> Option<u64> {
    retry_after
        .and_then(|s| s.trim().parse::<u64>().ok())
        .and_then(|secs| secs.checked_mul(1000))
}

fn classify(code: &str, msg: &str, retry_after: Option<&str>) -> VenueError {
    let m = || format!("{code} {msg}").trim().to_string();
    match code {
        // 50011 rate limit reached, 50061 sub-account order rate limit reached.
        "50011" | "50061" => VenueError::RateLimited {
            retry_after_ms: retry_after_ms(retry_after),
            banned: false,
        },
        // Timestamp request expired.
        "50102" => VenueError::TimestampOutsideRecvWindow(m()),
        // Key/passphrase/signature/IP/permission problems with the credentials themselves.
        "50100" | "50101" | "50103" | "50104" | "50105" | "50106" | "50107" | "50110" | "50111"
        | "50112" | "50113" | "50114" | "50030" => VenueError::AuthFailure(m()),
        // Insufficient balance / margin / available balance 0.
        "51008" | "51127" | "51131" | "59200" => VenueError::InsufficientBalance(m()),
        "51016" => VenueError::DuplicateClientOrderId,
        // Instrument ID does not exist.
        "51001" => VenueError::UnknownSymbol(m()),
        // Parameter errors and size/price rules: below minimum, not a lot multiple, precision,
        // outside the price limit, above a maximum.
        "51000" | "51006" | "51020" | "51120" | "51121" | "51122" | "51150" | "51201" | "51202"
        | "51203" | "51204" => VenueError::FilterViolation(m()),
        // Order does not exist (query, cancel, amend).
        "51603" | "51400" | "51503" => VenueError::OrderNotFound(m()),
        // Service unavailable, endpoint timeout ("does not mean the request succeeded or
        // failed"), system busy/error, order timed out: the outcome is unknown.
        "50001" | "50004" | "50013" | "50026" | "51054" | "51149" => {
            VenueError::UnknownOutcome(m())
        }
        _ => VenueError::Other {
            code: code.to_string(),
            message: msg.to_string(),
        },
    }
}

fn status_only(http_status: u16, body: &str, retry_after: Option<&str>) -> Option<VenueError> {
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
        500..=599 => Some(VenueError::UnknownOutcome(format!(
            "HTTP {http_status} {text}"
        ))),
        _ => Some(VenueError::Other {
            code: format!("HTTP {http_status}"),
            message: text,
        }),
    }
}

/// Classify an OKX response. `None` when it is a success (HTTP 2xx, `code` "0" and every
/// item's `sCode` "0"). `retry_after` is the Retry-After header in seconds, if any.
pub fn parse_error(http_status: u16, body: &str, retry_after: Option<&str>) -> Option<VenueError> {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return status_only(http_status, body, retry_after);
    };
    let str_of = |v: &Value, k: &str| -> String {
        match v.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let failed_item = v.get("data").and_then(Value::as_array).and_then(|rows| {
        rows.iter().find(|r| {
            let s = str_of(r, "sCode");
            !s.is_empty() && s != "0"
        })
    });
    if let Some(item) = failed_item {
        return Some(classify(
            &str_of(item, "sCode"),
            &str_of(item, "sMsg"),
            retry_after,
        ));
    }
    let code = str_of(&v, "code");
    if code.is_empty() {
        return status_only(http_status, body, retry_after);
    }
    if code == "0" {
        // A success body under an error status is still an error status.
        return status_only(http_status, body, retry_after);
    }
    Some(classify(&code, &str_of(&v, "msg"), retry_after))
}
