//! Bybit error mapping, checked against the code/message pairs of the official error-code
//! page (`data/bybit_docs/v5/error_codes.json`).

use keel_adapters::bybit::parse_error;
use keel_adapters::model::VenueError;
use serde_json::Value;

const CODES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/bybit_docs/v5/error_codes.json"
));

/// The documented message for `code` in `section`.
fn doc_msg(section: &str, code: i64) -> String {
    let all: Vec<Value> = serde_json::from_str(CODES).unwrap();
    all.iter()
        .find(|e| e["section"] == section && e["code"] == code)
        .and_then(|e| e["description"].as_str())
        .unwrap_or_else(|| panic!("{section} {code} is not in error_codes.json"))
        .to_string()
}

/// A REST error body as Bybit sends it (HTTP 200), with the documented message.
fn body(code: i64, msg: &str) -> String {
    serde_json::json!({
        "retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": 1672211918471i64
    })
    .to_string()
}

fn mapped(section: &str, code: i64) -> VenueError {
    let msg = doc_msg(section, code);
    parse_error(200, &body(code, &msg), None)
        .unwrap_or_else(|| panic!("{code} {msg:?} mapped to success"))
}

#[test]
fn rate_limits() {
    for (section, code) in [
        ("UTA", 10006),
        ("UTA", 429),
        ("WS OE General code", 10429),
        ("WS OE General code", 20003),
        ("Spot Trade", 170005),
        ("Spot Trade", 170222),
    ] {
        assert_eq!(
            mapped(section, code),
            VenueError::RateLimited {
                retry_after_ms: None,
                banned: false
            },
            "{section} {code}"
        );
    }
}

#[test]
fn recv_window_and_auth() {
    assert_eq!(
        mapped("UTA", 10002),
        VenueError::TimestampOutsideRecvWindow(
            "The request time exceeds the time window range.".into()
        )
    );
    for code in [10003, 10004, 10005, 10007, 10010, 33004, -2015] {
        assert!(
            matches!(mapped("UTA", code), VenueError::AuthFailure(_)),
            "{code}"
        );
    }
    assert_eq!(
        mapped("UTA", 10004),
        VenueError::AuthFailure(
            "Error sign, please check your signature generation algorithm.".into()
        )
    );
}

#[test]
fn balance_duplicate_symbol_filter_order() {
    for (section, code) in [
        ("UTA", 110004),
        ("UTA", 110007),
        ("UTA", 110012),
        ("UTA", 110045),
        ("Spot Trade", 170131),
    ] {
        assert!(
            matches!(mapped(section, code), VenueError::InsufficientBalance(_)),
            "{section} {code}"
        );
    }
    assert_eq!(
        mapped("UTA", 110007),
        VenueError::InsufficientBalance("Available balance is insufficient".into())
    );
    assert_eq!(mapped("UTA", 110072), VenueError::DuplicateClientOrderId);
    assert_eq!(
        mapped("Spot Trade", 170141),
        VenueError::DuplicateClientOrderId
    );
    assert_eq!(
        mapped("UTA", 10029),
        VenueError::UnknownSymbol(
            "The requested symbol is invalid, please check symbol whitelist".into()
        )
    );
    assert_eq!(
        mapped("Spot Trade", 170121),
        VenueError::UnknownSymbol("Invalid symbol.".into())
    );
    // Seen in the wild for an unknown symbol (bybit-java-api issue #60).
    assert_eq!(
        parse_error(200, &body(10001, "params error: symbol invalid"), None),
        Some(VenueError::UnknownSymbol(
            "params error: symbol invalid".into()
        ))
    );
    assert_eq!(
        mapped("UTA", 10001),
        VenueError::FilterViolation("Request parameter error".into())
    );
    for (section, code) in [
        ("UTA", 110017),
        ("UTA", 110094),
        ("Spot Trade", 170134),
        ("Spot Trade", 170136),
        ("Spot Trade", 170137),
        ("Spot Trade", 170140),
    ] {
        assert!(
            matches!(mapped(section, code), VenueError::FilterViolation(_)),
            "{section} {code}"
        );
    }
    assert_eq!(
        mapped("UTA", 110001),
        VenueError::OrderNotFound("Order does not exist".into())
    );
    assert_eq!(
        mapped("Spot Trade", 170213),
        VenueError::OrderNotFound("Order does not exist.".into())
    );
}

#[test]
fn timeouts_are_unknown_outcome() {
    assert_eq!(
        mapped("UTA", 10000),
        VenueError::UnknownOutcome("10000: Server Timeout".into())
    );
    for (section, code) in [
        ("UTA", 10016),
        ("WS OE General code", 10016),
        ("Spot Trade", 170007),
        ("Spot Trade", 170146),
        ("Spot Trade", 170147),
    ] {
        assert!(
            matches!(mapped(section, code), VenueError::UnknownOutcome(_)),
            "{section} {code}"
        );
    }
}

#[test]
fn request_duplicates_are_not_client_id_duplicates() {
    assert_eq!(
        mapped("UTA", 10014),
        VenueError::Other {
            code: "10014".into(),
            message: "Invalid duplicate request.".into()
        }
    );
    assert!(matches!(
        mapped("WS OE General code", 20006),
        VenueError::Other { .. }
    ));
}

#[test]
fn success_is_none() {
    let ok = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bybit_docs/v5/order/create-order/001_response_example.json"
    ));
    assert_eq!(parse_error(200, ok, None), None);
    let ws_ok = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bybit_docs/v5/websocket/trade/guideline/004_response_example.json"
    ));
    assert_eq!(parse_error(200, ws_ok, None), None);
}

#[test]
fn http_statuses_without_envelope() {
    // Bybit docs: HTTP 403 = the IP is banned (rate limit breached).
    assert_eq!(
        parse_error(403, "<html>403 Forbidden</html>", Some("5")),
        Some(VenueError::RateLimited {
            retry_after_ms: Some(5_000),
            banned: true
        })
    );
    assert_eq!(
        parse_error(429, "", None),
        Some(VenueError::RateLimited {
            retry_after_ms: None,
            banned: false
        })
    );
    assert!(matches!(
        parse_error(502, "<html>Bad Gateway</html>", None),
        Some(VenueError::UnknownOutcome(_))
    ));
    assert!(matches!(
        parse_error(200, "not json", None),
        Some(VenueError::UnknownOutcome(_))
    ));
    assert!(matches!(
        parse_error(401, "", None),
        Some(VenueError::AuthFailure(_))
    ));
}

#[test]
fn retry_after_from_reset_timestamp() {
    // X-Bapi-Limit-Reset-Timestamp 1672738134824 (the rate-limit page's header example) against
    // a server time 824 ms earlier.
    let b = serde_json::json!({
        "retCode": 10006, "retMsg": "Too many visits!", "result": {}, "time": 1672738134000i64
    })
    .to_string();
    assert_eq!(
        parse_error(200, &b, Some("1672738134824")),
        Some(VenueError::RateLimited {
            retry_after_ms: Some(824),
            banned: false
        })
    );
    // Order-entry replies carry the reset time and the server time in `header`.
    let ws = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bybit_docs/v5/websocket/trade/guideline/004_response_example.json"
    ))
    .replace("\"retCode\": 0", "\"retCode\": 10429")
    .replace(
        "\"Timenow\": \"1711001595209\"",
        "\"Timenow\": \"1711001595008\"",
    );
    // X-Bapi-Limit-Reset-Timestamp 1711001595208 - Timenow 1711001595008.
    assert_eq!(
        parse_error(200, &ws, None),
        Some(VenueError::RateLimited {
            retry_after_ms: Some(200),
            banned: false
        })
    );
}
