//! `parse_error` against Binance's own error catalogue (`error_codes.json`, extracted from the
//! spot `errors.md`), the matching-engine messages and filter failures of `errors.md`, and the
//! HTTP status rules of the general API information.

use keel_adapters::binance::parse_error;
use keel_adapters::model::VenueError;
use serde_json::Value;

macro_rules! data {
    ($p:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $p))
    };
}

fn body(code: i64, msg: &str) -> String {
    serde_json::json!({ "code": code, "msg": msg }).to_string()
}

/// The category each documented code belongs to, by the docs' description of the code.
fn expected(code: i64, msg: &str) -> &'static str {
    match code {
        -1003 if msg.contains("banned") => "banned",
        -1003 | -1008 | -1015 => "rate_limited",
        -1006 | -1007 => "unknown_outcome",
        -1013 => "filter",
        -1021 => "recv_window",
        -1002 | -1022 | -2014 | -2015 => "auth",
        -1121 => "unknown_symbol",
        -2013 | -2026 => "order_not_found",
        _ => "other",
    }
}

fn category(e: &VenueError) -> &'static str {
    match e {
        VenueError::RateLimited { banned: true, .. } => "banned",
        VenueError::RateLimited { banned: false, .. } => "rate_limited",
        VenueError::DuplicateClientOrderId => "duplicate",
        VenueError::InsufficientBalance(_) => "insufficient",
        VenueError::UnknownSymbol(_) => "unknown_symbol",
        VenueError::FilterViolation(_) => "filter",
        VenueError::TimestampOutsideRecvWindow(_) => "recv_window",
        VenueError::AuthFailure(_) => "auth",
        VenueError::OrderNotFound(_) => "order_not_found",
        VenueError::UnknownOutcome(_) => "unknown_outcome",
        VenueError::Other { .. } => "other",
    }
}

#[test]
fn every_documented_code_and_message() {
    let catalogue: Value =
        serde_json::from_str(data!("binance_docs/spot/errors/error_codes.json")).unwrap();
    let entries = catalogue.as_array().unwrap();
    assert!(entries.len() > 100);
    let mut checked = 0;
    for entry in entries {
        let code = entry["code"].as_i64().unwrap();
        for msg in entry["messages"].as_array().unwrap() {
            let msg = msg.as_str().unwrap();
            let err = parse_error(400, &body(code, msg), None);
            assert_eq!(
                category(&err),
                expected(code, msg),
                "{code} {msg:?} -> {err:?}"
            );
            if let VenueError::Other { code: c, message } = &err {
                assert_eq!(c, &code.to_string());
                assert_eq!(message, msg);
            }
            checked += 1;
        }
    }
    assert!(checked >= 145, "{checked}");
}

#[test]
fn matching_engine_messages_decide_generic_codes() {
    // errors.md, "Messages for -1010 ERROR_MSG_RECEIVED, -2010 NEW_ORDER_REJECTED, and -2011".
    assert_eq!(
        parse_error(400, &body(-2010, "Duplicate order sent."), None),
        VenueError::DuplicateClientOrderId
    );
    assert_eq!(
        parse_error(
            400,
            &body(
                -2010,
                "Account has insufficient balance for requested action."
            ),
            None
        ),
        VenueError::InsufficientBalance(
            "Account has insufficient balance for requested action.".into()
        )
    );
    assert_eq!(
        parse_error(400, &body(-2011, "Unknown order sent."), None),
        VenueError::OrderNotFound("Unknown order sent.".into())
    );
    assert!(matches!(
        parse_error(
            400,
            &body(-2010, "Order would immediately match and take."),
            None
        ),
        VenueError::Other { .. }
    ));
    // The documented cancel-restriction rejection is not an unknown order.
    let e = parse_error(
        400,
        data!("binance_docs/spot/rest-api/043_cancel_order_trade.json"),
        None,
    );
    assert!(
        matches!(e, VenueError::Other { ref code, .. } if code == "-2011"),
        "{e:?}"
    );
    let e = parse_error(
        400,
        data!(
            "binance_docs/spot/rest-api/050_cancel_an_existing_order_and_send_a_new_order_trade.json"
        ),
        None,
    );
    assert_eq!(category(&e), "rate_limited");
    let e = parse_error(
        400,
        data!("binance_docs/spot/rest-api/001_error_codes.json"),
        None,
    );
    assert_eq!(e, VenueError::UnknownSymbol("Invalid symbol.".into()));
}

#[test]
fn filter_failures_under_any_code() {
    // errors.md "Filter failures" table.
    for filter in [
        "PRICE_FILTER",
        "PERCENT_PRICE",
        "LOT_SIZE",
        "MIN_NOTIONAL",
        "NOTIONAL",
        "ICEBERG_PARTS",
        "MARKET_LOT_SIZE",
        "MAX_POSITION",
        "MAX_NUM_ORDERS",
        "MAX_NUM_ALGO_ORDERS",
        "MAX_NUM_ICEBERG_ORDERS",
        "TRAILING_DELTA",
        "EXCHANGE_MAX_NUM_ORDERS",
        "EXCHANGE_MAX_NUM_ALGO_ORDERS",
        "EXCHANGE_MAX_NUM_ICEBERG_ORDERS",
    ] {
        let msg = format!("Filter failure: {filter}");
        for code in [-1013, -2010] {
            assert_eq!(
                parse_error(400, &body(code, &msg), None),
                VenueError::FilterViolation(msg.clone())
            );
        }
    }
}

#[test]
fn usdm_codes() {
    // USD-M error-code page.
    assert_eq!(
        parse_error(400, &body(-4116, "ClientOrderId is duplicated."), None),
        VenueError::DuplicateClientOrderId
    );
    assert_eq!(
        category(&parse_error(
            400,
            &body(-2019, "Margin is insufficient."),
            None
        )),
        "insufficient"
    );
    assert_eq!(
        category(&parse_error(
            400,
            &body(
                -4164,
                "Order's notional must be no smaller than 5.0 (unless you choose reduce only)"
            ),
            None
        )),
        "filter"
    );
    assert_eq!(
        category(&parse_error(
            400,
            &body(-4014, "Price not increased by tick size."),
            None
        )),
        "filter"
    );
}

#[test]
fn http_status_rules() {
    assert_eq!(
        parse_error(429, &body(-1003, "Too many requests queued."), Some("120")),
        VenueError::RateLimited {
            retry_after_ms: Some(120_000),
            banned: false
        }
    );
    assert_eq!(
        parse_error(418, "", Some("3600")),
        VenueError::RateLimited {
            retry_after_ms: Some(3_600_000),
            banned: true
        }
    );
    assert_eq!(
        parse_error(429, "", Some("soon")),
        VenueError::RateLimited {
            retry_after_ms: None,
            banned: false
        }
    );
    // 5xx: execution status unknown, unless the message says the request failed.
    assert!(matches!(
        parse_error(
            503,
            "Unknown error, please check your request or try again later.",
            None
        ),
        VenueError::UnknownOutcome(_)
    ));
    assert!(matches!(
        parse_error(502, "<html>bad gateway</html>", None),
        VenueError::UnknownOutcome(_)
    ));
    assert!(matches!(
        parse_error(
            500,
            &body(
                -1000,
                "An unknown error occurred while processing the request."
            ),
            None
        ),
        VenueError::UnknownOutcome(_)
    ));
    assert!(matches!(
        parse_error(503, "Service Unavailable.", None),
        VenueError::Other { .. }
    ));
    assert!(matches!(
        parse_error(
            503,
            &body(
                -1001,
                "Internal error; unable to process your request. Please try again."
            ),
            None
        ),
        VenueError::Other { .. }
    ));
    assert_eq!(
        category(&parse_error(
            200,
            &body(
                -1007,
                "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
            ),
            None
        )),
        "unknown_outcome"
    );
    assert!(matches!(
        parse_error(403, "", None),
        VenueError::Other { ref code, .. } if code == "http-403"
    ));
}

#[test]
fn websocket_api_error_format() {
    let reply = r#"{"id":"e2a85d9f","status":400,"error":{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}}"#;
    assert_eq!(
        parse_error(400, reply, None),
        VenueError::TimestampOutsideRecvWindow(
            "Timestamp for this request is outside of the recvWindow.".into()
        )
    );
}
