//! The client against the loopback mock venue: retries, `Retry-After`, bans, timeouts, the
//! budget, what its errors say, and the authentication headers of signed requests. (Signed
//! Binance trading against the mock exchange is tested in `tests/signed_*.rs`.)

use std::time::Duration;

use super::*;
use crate::mock::{Fault, MockBar, MockConfig, MockVenue};
use crate::model::Method;

const MIN: i64 = 60_000;
const T0: i64 = 1_704_067_200_000;

fn mock(venue: Venue) -> MockVenue {
    let bars = (0..10)
        .map(|i| MockBar {
            open_time_ms: T0 + i * MIN,
            open: "10".into(),
            high: "11".into(),
            low: "9".into(),
            close: "10.5".into(),
            volume: "1".into(),
        })
        .collect();
    let mut config = MockConfig::new(venue, "BTCUSDT", MIN, bars);
    config.now_ms = Some(T0 + 20 * MIN);
    MockVenue::start(config).expect("mock starts")
}

fn client(m: &MockVenue, venue: Venue) -> RestClient {
    let mut config = ClientConfig::new(venue);
    config.base_url = m.url();
    config.timeout = Duration::from_millis(500);
    config.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_venue_wait: Duration::from_secs(5),
        jitter_seed: 1,
    };
    RestClient::new(config).expect("client")
}

fn klines() -> RestRequest {
    let symbol = keel_engine::symbol::Symbol::new("BTCUSDT").unwrap();
    crate::binance::spot_klines(&symbol, "1m", Some(T0), None, Some(5)).unwrap()
}

#[tokio::test]
async fn retries_a_server_error_then_succeeds() {
    let m = mock(Venue::BinanceSpot);
    m.inject(0, 2, Fault::ServerError);
    let c = client(&m, Venue::BinanceSpot);
    let r = c.send(&klines()).await.expect("third attempt succeeds");
    assert_eq!((r.status, r.attempts), (200, 3));
    assert_eq!(r.server_time_ms, Some(T0 + 20 * MIN));
    assert_eq!(c.stats().requests, 3);
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn never_resends_a_request_that_is_not_retry_safe_after_an_unknown_outcome() {
    let m = mock(Venue::BinanceSpot);
    m.inject(0, usize::MAX, Fault::ServerError);
    let c = client(&m, Venue::BinanceSpot);
    let req = RestRequest {
        retry_safe: false,
        ..klines()
    };
    let e = c.send(&req).await.expect_err("500");
    assert_eq!(m.requests().len(), 1);
    assert!(matches!(e.error, VenueError::UnknownOutcome(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("binance-spot GET /api/v3/klines?symbol=BTCUSDT"),
        "{text}"
    );
    assert!(text.contains("HTTP 500"), "{text}");
}

#[tokio::test]
async fn gives_up_after_the_retry_bound() {
    let m = mock(Venue::BinanceSpot);
    m.inject(0, usize::MAX, Fault::DropMidResponse);
    let c = client(&m, Venue::BinanceSpot);
    let e = c.send(&klines()).await.expect_err("always dropped");
    assert_eq!(e.attempts, 4);
    assert_eq!(m.requests().len(), 4);
    assert!(matches!(e.error, VenueError::UnknownOutcome(_)), "{e}");
    assert!(e.to_string().contains("gave up after 4 attempts"), "{e}");
}

async fn waits_out(fault: Fault) {
    let m = mock(Venue::BinanceSpot);
    m.inject(0, 1, fault);
    let c = client(&m, Venue::BinanceSpot);
    c.send(&klines()).await.expect("retried after the wait");
    let log = m.requests();
    assert_eq!(log.len(), 2);
    assert!(m.early_requests().is_empty(), "{:?}", m.early_requests());
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_secs(1));
}

#[tokio::test]
async fn waits_out_retry_after_on_429() {
    waits_out(Fault::RateLimited {
        retry_after_secs: 1,
    })
    .await;
}

#[tokio::test]
async fn waits_out_a_418_ban() {
    waits_out(Fault::Banned {
        retry_after_secs: 1,
    })
    .await;
}

#[tokio::test]
async fn a_ban_longer_than_the_client_will_wait_fails_at_once_with_the_wait() {
    let m = mock(Venue::BinanceSpot);
    m.inject(
        0,
        1,
        Fault::Banned {
            retry_after_secs: 600,
        },
    );
    let c = client(&m, Venue::BinanceSpot);
    let e = c.send(&klines()).await.expect_err("too long to wait");
    assert_eq!(m.requests().len(), 1);
    assert_eq!(
        e.error,
        VenueError::RateLimited {
            retry_after_ms: Some(600_000),
            banned: true
        }
    );
    assert!(e.to_string().contains("HTTP 418"), "{e}");
}

#[tokio::test]
async fn a_stall_past_the_timeout_is_an_unknown_outcome_and_retried() {
    let m = mock(Venue::BinanceSpot);
    m.inject(0, 1, Fault::Stall { ms: 3_000 });
    let c = client(&m, Venue::BinanceSpot);
    let r = c.send(&klines()).await.expect("second attempt answers");
    assert_eq!(r.attempts, 2);
    m.inject(2, usize::MAX, Fault::Stall { ms: 3_000 });
    let e = c.send(&klines()).await.expect_err("always stalls");
    assert!(
        e.to_string().contains("no complete answer within 500 ms"),
        "{e}"
    );
}

#[tokio::test]
async fn the_budget_spaces_requests_instead_of_exceeding_it() {
    let m = mock(Venue::BinanceSpot);
    let mut config = ClientConfig::new(Venue::BinanceSpot);
    config.base_url = m.url();
    config.limits = vec![Limit {
        name: "test",
        path: None,
        capacity: 4,
        period: Duration::from_millis(400),
    }];
    let c = RestClient::new(config).unwrap();
    for _ in 0..6 {
        c.send(&klines()).await.expect("answer"); // weight 2 each: two per window
    }
    let log = m.requests();
    for w in log.windows(3) {
        let spread = w[2].at.duration_since(w[0].at);
        assert!(spread >= Duration::from_millis(350), "{spread:?}");
    }
    assert!(c.stats().waited_ms >= 700);
}

#[tokio::test]
async fn errors_never_show_a_signature_even_from_the_transport() {
    let m = mock(Venue::BinanceSpot);
    let url = m.url();
    drop(m); // nothing listens there any more
    let mut config = ClientConfig::new(Venue::BinanceSpot);
    config.base_url = url;
    config.retry.max_retries = 0;
    let c = RestClient::new(config).unwrap();
    let mut req = klines();
    req.query.push(("signature".into(), "SECRETSIG".into()));
    let e = c.send(&req).await.expect_err("connection refused");
    let text = format!("{e} {e:?}");
    assert!(!text.contains("SECRETSIG"), "{text}");
    assert!(matches!(e.error, VenueError::UnknownOutcome(_)), "{text}");
}

#[tokio::test]
async fn refuses_signed_requests_without_sending() {
    let m = mock(Venue::BinanceSpot);
    let c = client(&m, Venue::BinanceSpot);
    let req = RestRequest {
        signed: true,
        ..klines()
    };
    assert!(c.send(&req).await.is_err());
    assert!(m.requests().is_empty());
}

#[tokio::test]
async fn venue_error_codes_in_a_200_are_errors() {
    let m = mock(Venue::Bybit);
    let c = client(&m, Venue::Bybit);
    let symbol = keel_engine::symbol::Symbol::new("ETHUSDT").unwrap();
    let interval = keel_engine::candle::Interval { ns: 60_000_000_000 };
    let req = crate::bybit::klines(
        crate::bybit::Category::Linear,
        &symbol,
        interval,
        None,
        None,
        5,
    )
    .unwrap();
    let e = c.send(&req).await.expect_err("unknown symbol");
    assert!(matches!(e.error, VenueError::UnknownSymbol(_)), "{e}");
    assert_eq!(m.requests().len(), 1);
}

fn signed_get(path: &str, query: &[(&str, &str)]) -> RestRequest {
    RestRequest {
        method: Method::Get,
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: None,
        signed: true,
        weight: 1,
        retry_safe: true,
    }
}

fn signing_client(m: &MockVenue, venue: Venue, credentials: Credentials) -> RestClient {
    let mut config = ClientConfig::new(venue).with_credentials(credentials);
    config.base_url = m.url();
    config.retry.max_retries = 0;
    RestClient::new(config).expect("client")
}

fn skewed(venue: Venue, skew_ms: i64) -> MockVenue {
    let mut config = MockConfig::new(venue, "BTCUSDT", MIN, Vec::new());
    config.clock_skew_ms = skew_ms;
    MockVenue::start(config).expect("mock starts")
}

#[tokio::test]
async fn sync_clock_measures_each_venue_offset() {
    for venue in Venue::ALL {
        let m = skewed(venue, 7_000);
        let c = signing_client(&m, venue, Credentials::new("k", "s"));
        let offset = c.sync_clock().await.expect("venue time");
        // Kraken tells whole seconds only.
        assert!((offset - 7_000).abs() < 1_500, "{venue:?}: {offset}");
        assert_eq!(c.clock_offset_ms(), offset);
    }
}

#[tokio::test]
async fn sync_clock_retries_a_lost_answer_and_measures_only_the_last_round_trip() {
    let m = skewed(Venue::BinanceUsdm, -3_000);
    m.inject(0, 1, Fault::Stall { ms: 1_500 });
    let mut config = ClientConfig::new(Venue::BinanceUsdm);
    config.base_url = m.url();
    config.timeout = Duration::from_millis(300);
    config.retry.base_delay = Duration::from_millis(10);
    let c = RestClient::new(config).expect("client");
    let offset = c.sync_clock().await.expect("second attempt answers");
    assert_eq!(m.requests().len(), 2);
    assert!((offset + 3_000).abs() < 200, "{offset}");
}

#[tokio::test]
async fn bybit_requests_carry_x_bapi_headers_stamped_with_the_venue_clock() {
    use hmac::{Hmac, Mac};
    let m = skewed(Venue::Bybit, -4_000);
    let c = signing_client(
        &m,
        Venue::Bybit,
        Credentials::new("bybit-key", "bybit-secret"),
    );
    c.sync_clock().await.expect("venue time");
    let req = signed_get("/v5/account/wallet-balance", &[("accountType", "UNIFIED")]);
    let _ = c.send(&req).await; // the mock has no such route; the headers are what matter
    let sent = m.requests().pop().expect("sent");
    let header = |name: &str| sent.header(name).expect(name).to_string();
    assert_eq!(header("x-bapi-api-key"), "bybit-key");
    assert_eq!(header("x-bapi-recv-window"), "5000");
    let ts: i64 = header("x-bapi-timestamp").parse().expect("ms");
    assert!(
        (ts - m.now_ms()).abs() < 1_000,
        "{ts} vs venue {}",
        m.now_ms()
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"bybit-secret").expect("any key");
    mac.update(format!("{ts}bybit-key5000accountType=UNIFIED").as_bytes());
    assert_eq!(
        header("x-bapi-sign"),
        hex::encode(mac.finalize().into_bytes())
    );
    let e = c.send(&req).await.expect_err("no route");
    assert!(!format!("{e} {e:?}").contains("bybit-secret"));
}

#[tokio::test]
async fn okx_requests_carry_ok_access_headers_and_the_passphrase() {
    let m = skewed(Venue::Okx, 0);
    let credentials = Credentials::new("okx-key", "okx-secret").with_passphrase("okx-pass");
    let c = signing_client(&m, Venue::Okx, credentials);
    let _ = c.send(&signed_get("/api/v5/account/balance", &[])).await;
    let sent = m.requests().pop().expect("sent");
    assert_eq!(sent.header("ok-access-key"), Some("okx-key"));
    assert_eq!(sent.header("ok-access-passphrase"), Some("okx-pass"));
    let ts = sent.header("ok-access-timestamp").expect("timestamp");
    assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    assert_eq!(
        sent.header("ok-access-sign").map(str::len),
        Some(44),
        "base64 SHA-256"
    );
}

#[tokio::test]
async fn kraken_nonces_always_increase_and_requests_carry_api_sign() {
    let m = skewed(Venue::Kraken, 0);
    let secret = "a3Jha2VuLXNlY3JldA=="; // base64, as Kraken secrets are
    let c = signing_client(&m, Venue::Kraken, Credentials::new("kraken-key", secret));
    let mut req = signed_get("/0/private/Balance", &[]);
    req.method = Method::Post;
    for _ in 0..3 {
        let _ = c.send(&req).await;
    }
    let nonces: Vec<u64> = m
        .requests()
        .iter()
        .map(|r| {
            assert_eq!(r.header("api-key"), Some("kraken-key"));
            assert!(r.header("api-sign").is_some());
            let nonce = r.body.strip_prefix("nonce=").expect("nonce first");
            nonce.parse().expect("integer")
        })
        .collect();
    assert!(nonces.windows(2).all(|w| w[1] > w[0]), "{nonces:?}");
}

#[tokio::test]
async fn a_signing_failure_is_an_auth_error_that_sends_nothing() {
    let m = skewed(Venue::Okx, 0);
    // OKX needs the passphrase in every request.
    let c = signing_client(&m, Venue::Okx, Credentials::new("okx-key", "okx-secret"));
    let e = c
        .send(&signed_get("/api/v5/account/balance", &[]))
        .await
        .expect_err("no passphrase");
    assert!(matches!(e.error, VenueError::AuthFailure(_)), "{e}");
    assert!(m.requests().is_empty());
}
