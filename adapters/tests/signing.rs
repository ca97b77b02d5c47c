//! Request signing and credentials.
//!
//! Expected signatures come from outside this program: the venues' published examples and the
//! derived vectors in tests/data/signing_vectors (computed with openssl from the documented
//! rules), RFC 4231 (HMAC) and RFC 8032 (Ed25519) test vectors, and a few values computed here
//! with the `openssl` and `date` command-line tools (each says which command).

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use keel_adapters::credentials::{
    Credentials, CredentialsError, credentials_from_env, credentials_from_file, env_prefix,
    load_ed25519_pem,
};
use keel_adapters::model::{Method, RestRequest, Venue};
use keel_adapters::sign::{
    SignError, binance_ed25519_signature, binance_hmac_signature, binance_payload,
    binance_signed_query, binance_ws_payload, binance_ws_signature, bybit_signature,
    bybit_ws_auth_signature, encode_query, hmac_sha256_hex, hmac_sha512_hex, kraken_signature,
    okx_signature, okx_timestamp, okx_ws_login_signature, percent_encode, sign_request,
    sign_request_with_recv_window,
};
use proptest::prelude::*;
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/signing_vectors/signing_vectors.json"
);

/// RFC 8032 §7.1 TEST 1 secret key 9d61b19d…7f60 wrapped as PKCS#8 PEM (RFC 8410), made with
/// `xxd -r -p <<< 302e020100300506032b657004220420<seed> | openssl pkey -inform DER`.
const RFC8032_TEST1_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
";
const RFC8032_TEST1_PUBLIC: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC8032_TEST1_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(VECTORS).expect("read signing vectors");
    serde_json::from_str(&text).expect("signing vectors are JSON")
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector {} has no string field {name}", v["id"]))
}

/// `a=1&b=2` → [("a","1"), ("b","2")].
fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Splits the trailing `recvWindow` and `timestamp` off a Binance payload.
fn without_stamps(params: &[(String, String)]) -> (Vec<(String, String)>, u64, u64) {
    let mut rest = params.to_vec();
    let ts = rest.pop().expect("timestamp");
    let rw = rest.pop().expect("recvWindow");
    assert_eq!((rw.0.as_str(), ts.0.as_str()), ("recvWindow", "timestamp"));
    (rest, rw.1.parse().unwrap(), ts.1.parse().unwrap())
}

fn request(method: Method, path: &str, query: &[(&str, &str)], body: Option<&str>) -> RestRequest {
    RestRequest {
        method,
        path: path.to_string(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.map(str::to_string),
        signed: true,
        weight: 1,
        retry_safe: false,
    }
}

fn owned_request(
    method: Method,
    path: &str,
    query: Vec<(String, String)>,
    body: Option<String>,
) -> RestRequest {
    RestRequest {
        method,
        path: path.to_string(),
        query,
        body,
        signed: true,
        weight: 1,
        retry_safe: false,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no header {name} in {headers:?}"))
}

// ---------------------------------------------------------------------------------------------
// The vectors file

#[test]
fn every_signing_vector_is_checked() {
    let all = vectors();
    assert!(!all.is_empty());
    let mut seen = BTreeSet::new();
    for v in &all {
        let id = field(v, "id");
        assert!(seen.insert(id.to_string()), "duplicate vector id {id}");
        match id {
            "binance_spot_rest_hmac_ascii" => check_binance_rest(v, Venue::BinanceSpot),
            "binance_usdm_futures_hmac_query_or_body" => check_binance_rest(v, Venue::BinanceUsdm),
            "binance_spot_ws_api_hmac_ascii" => check_binance_ws(v),
            "binance_usdm_futures_hmac_mixed_query_and_body_AS_PRINTED" => {
                // The docs' payload has a stray space; only the raw primitive can reproduce it.
                assert_eq!(
                    binance_hmac_signature(field(v, "secret"), field(v, "payload")),
                    field(v, "expected")
                );
            }
            "binance_usdm_futures_hmac_mixed_without_space_DERIVED" => check_binance_mixed(v),
            "kraken_spot_rest_api_sign" => check_kraken(v),
            "okx_v5_rest_get_DERIVED" => check_okx_get(v),
            "okx_v5_rest_post_DERIVED" => check_okx_post(v),
            "okx_v5_ws_login_DERIVED" => check_okx_ws(v),
            "bybit_v5_rest_get_DERIVED" => check_bybit_get(v),
            "bybit_v5_rest_post_DERIVED" => check_bybit_post(v),
            other => panic!("signing vector {other} is not handled by this test; add a check"),
        }
    }
    assert_eq!(seen.len(), all.len());
}

fn check_binance_rest(v: &Value, venue: Venue) {
    let secret = field(v, "secret");
    let api_key = field(v, "apiKey");
    let payload = field(v, "payload");
    let expected = field(v, "expected");
    assert_eq!(binance_hmac_signature(secret, payload), expected);

    let (params, recv_window, timestamp) = without_stamps(&pairs(payload));
    assert_eq!(binance_payload(&params, recv_window, timestamp), payload);
    let signed_query = format!("{payload}&signature={expected}");
    assert_eq!(
        binance_signed_query(&params, recv_window, timestamp, secret),
        signed_query
    );

    let creds = Credentials::new(api_key, secret);
    // Docs example 2: everything in the query string.
    let req = owned_request(Method::Post, "/api/v3/order", params.clone(), None);
    let signed =
        sign_request_with_recv_window(venue, &creds, &req, timestamp, recv_window).unwrap();
    assert_eq!(signed.url_query, signed_query);
    assert_eq!(signed.body, None);
    assert_eq!(header(&signed.headers, "X-MBX-APIKEY"), api_key);

    // Docs example 1: everything in the body; same payload, same signature.
    let body = encode_query(&params);
    let req = owned_request(Method::Post, "/api/v3/order", vec![], Some(body));
    let signed =
        sign_request_with_recv_window(venue, &creds, &req, timestamp, recv_window).unwrap();
    assert_eq!(signed.url_query, "");
    assert_eq!(signed.body.as_deref(), Some(signed_query.as_str()));
    assert_eq!(
        header(&signed.headers, "Content-Type"),
        "application/x-www-form-urlencoded"
    );
}

fn check_binance_mixed(v: &Value) {
    let secret = field(v, "secret");
    let payload = field(v, "payload");
    let expected = field(v, "expected");
    assert_eq!(binance_hmac_signature(secret, payload), expected);

    // The payload is query + body with no '&' between: "...timeInForce=GTCquantity=1&...".
    let split = payload.find("quantity=").unwrap();
    let (query, body) = payload.split_at(split);
    let (body_params, recv_window, timestamp) = without_stamps(&pairs(body));
    let req = owned_request(
        Method::Post,
        "/fapi/v1/order",
        pairs(query),
        Some(encode_query(&body_params)),
    );
    let creds = Credentials::new("any-key", secret);
    let signed =
        sign_request_with_recv_window(Venue::BinanceUsdm, &creds, &req, timestamp, recv_window)
            .unwrap();
    assert_eq!(signed.url_query, query);
    assert_eq!(
        signed.body.as_deref(),
        Some(format!("{body}&signature={expected}").as_str())
    );
}

fn check_binance_ws(v: &Value) {
    let secret = field(v, "secret");
    let payload = field(v, "payload");
    let mut params = pairs(payload);
    // The builder must sort, whatever order the request was assembled in, and leave out a
    // signature parameter if one is already there.
    params.reverse();
    params.insert(3, ("signature".to_string(), "stale".to_string()));
    assert_eq!(binance_ws_payload(&params), payload);
    let api_key = params
        .iter()
        .find(|(k, _)| k == "apiKey")
        .unwrap()
        .1
        .clone();
    let creds = Credentials::new(api_key, secret);
    assert_eq!(
        binance_ws_signature(&creds, &params).unwrap(),
        field(v, "expected")
    );
}

fn check_kraken(v: &Value) {
    let secret = field(v, "secret");
    let uri_path = field(v, "uri_path");
    let payload = field(v, "payload");
    let expected = field(v, "expected");
    let nonce: u64 = field(v, "nonce").parse().unwrap();
    assert_eq!(
        kraken_signature(secret, uri_path, nonce, payload).unwrap(),
        expected
    );

    // The request carries the order parameters; sign_request puts the nonce first.
    let prefix = format!("nonce={nonce}&");
    let order_params = payload.strip_prefix(&prefix).unwrap();
    let req = request(Method::Post, uri_path, &[], Some(order_params));
    let creds = Credentials::new("kraken-public-key", secret);
    let signed = sign_request(Venue::Kraken, &creds, &req, nonce).unwrap();
    assert_eq!(signed.body.as_deref(), Some(payload));
    assert_eq!(header(&signed.headers, "API-Sign"), expected);
    assert_eq!(header(&signed.headers, "API-Key"), "kraken-public-key");
    assert_eq!(
        header(&signed.headers, "Content-Type"),
        "application/x-www-form-urlencoded"
    );
}

/// 2020-12-08T09:08:57.715Z, the OKX docs' example timestamp, as unix ms
/// (`date -u -d @1607418537` prints Tue Dec 8 09:08:57 UTC 2020).
const OKX_EXAMPLE_MS: u64 = 1_607_418_537_715;

fn check_okx_get(v: &Value) {
    let secret = field(v, "secret");
    let prehash = field(v, "prehash");
    let expected = field(v, "expected");
    let timestamp = "2020-12-08T09:08:57.715Z";
    let path = "/api/v5/account/balance?ccy=BTC";
    assert_eq!(format!("{timestamp}GET{path}"), prehash);
    assert_eq!(
        okx_signature(secret, timestamp, Method::Get, path, ""),
        expected
    );

    let creds = Credentials::new("okx-key", secret).with_passphrase("okx-pass");
    let req = request(
        Method::Get,
        "/api/v5/account/balance",
        &[("ccy", "BTC")],
        None,
    );
    let signed = sign_request(Venue::Okx, &creds, &req, OKX_EXAMPLE_MS).unwrap();
    assert_eq!(signed.url_query, "ccy=BTC");
    assert_eq!(signed.body, None);
    assert_eq!(header(&signed.headers, "OK-ACCESS-SIGN"), expected);
    assert_eq!(header(&signed.headers, "OK-ACCESS-TIMESTAMP"), timestamp);
    assert_eq!(header(&signed.headers, "OK-ACCESS-KEY"), "okx-key");
    assert_eq!(header(&signed.headers, "OK-ACCESS-PASSPHRASE"), "okx-pass");
}

fn check_okx_post(v: &Value) {
    let secret = field(v, "secret");
    let prehash = field(v, "prehash");
    let expected = field(v, "expected");
    let timestamp = "2020-12-08T09:08:57.715Z";
    let path = "/api/v5/account/set-leverage";
    let body = prehash
        .strip_prefix(&format!("{timestamp}POST{path}"))
        .unwrap();
    assert_eq!(
        okx_signature(secret, timestamp, Method::Post, path, body),
        expected
    );

    let creds = Credentials::new("okx-key", secret).with_passphrase("okx-pass");
    let req = request(Method::Post, path, &[], Some(body));
    let signed = sign_request(Venue::Okx, &creds, &req, OKX_EXAMPLE_MS).unwrap();
    assert_eq!(signed.body.as_deref(), Some(body));
    assert_eq!(header(&signed.headers, "OK-ACCESS-SIGN"), expected);
    assert_eq!(header(&signed.headers, "Content-Type"), "application/json");
}

fn check_okx_ws(v: &Value) {
    let prehash = field(v, "prehash");
    let seconds: u64 = prehash
        .strip_suffix("GET/users/self/verify")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        okx_ws_login_signature(field(v, "secret"), seconds),
        field(v, "expected")
    );
}

/// The Bybit vectors' placeholder key, which the prehash shows after the timestamp.
const BYBIT_KEY: &str = "XXXXXXXXXX";

fn check_bybit_get(v: &Value) {
    let secret = field(v, "secret");
    let expected = field(v, "expected");
    let timestamp = 1_658_384_314_791;
    let query = "category=option&symbol=BTC-29JUL22-25000-C";
    assert_eq!(
        format!("{timestamp}{BYBIT_KEY}5000{query}"),
        field(v, "prehash")
    );
    assert_eq!(
        bybit_signature(secret, timestamp, BYBIT_KEY, 5000, query),
        expected
    );

    let creds = Credentials::new(BYBIT_KEY, secret);
    let req = request(
        Method::Get,
        "/v5/order/realtime",
        &[("category", "option"), ("symbol", "BTC-29JUL22-25000-C")],
        None,
    );
    let signed = sign_request(Venue::Bybit, &creds, &req, timestamp).unwrap();
    assert_eq!(signed.url_query, query);
    assert_eq!(header(&signed.headers, "X-BAPI-SIGN"), expected);
    assert_eq!(header(&signed.headers, "X-BAPI-API-KEY"), BYBIT_KEY);
    assert_eq!(header(&signed.headers, "X-BAPI-TIMESTAMP"), "1658384314791");
    assert_eq!(header(&signed.headers, "X-BAPI-RECV-WINDOW"), "5000");
}

fn check_bybit_post(v: &Value) {
    let secret = field(v, "secret");
    let expected = field(v, "expected");
    let timestamp = 1_658_385_579_423;
    let body = field(v, "prehash")
        .strip_prefix(&format!("{timestamp}{BYBIT_KEY}5000"))
        .unwrap();
    assert_eq!(body, r#"{"category": "option"}"#);
    let creds = Credentials::new(BYBIT_KEY, secret);
    let req = request(Method::Post, "/v5/order/create", &[], Some(body));
    let signed = sign_request(Venue::Bybit, &creds, &req, timestamp).unwrap();
    assert_eq!(signed.body.as_deref(), Some(body));
    assert_eq!(header(&signed.headers, "X-BAPI-SIGN"), expected);
    assert_eq!(header(&signed.headers, "Content-Type"), "application/json");
}

// ---------------------------------------------------------------------------------------------
// Primitives and other documented values

#[test]
fn hmac_keys_longer_than_a_block_follow_rfc_4231_case_6() {
    let key = [0xaa_u8; 131];
    let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
    assert_eq!(
        hmac_sha256_hex(&key, data),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
    assert_eq!(
        hmac_sha512_hex(&key, data),
        "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
         6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"
    );
}

#[test]
fn ed25519_signs_rfc_8032_test_1() {
    let sig = binance_ed25519_signature(RFC8032_TEST1_PEM, "").unwrap();
    assert_eq!(hex::encode(BASE64.decode(sig).unwrap()), RFC8032_TEST1_SIG);
}

#[test]
fn ed25519_binance_payloads_match_openssl_and_verify() {
    let public: [u8; 32] = hex::decode(RFC8032_TEST1_PUBLIC)
        .unwrap()
        .try_into()
        .unwrap();
    let public = VerifyingKey::from_bytes(&public).unwrap();
    // `printf '<payload>' | openssl pkeyutl -sign -inkey rfc8032-test1.pem -rawin | base64`
    let cases = [
        (
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
            "3fhuDZ9nYMviDQ5OEtJBJS11jUZDTRzRQ+TQMarm+LErFiJvUiVPQjTzDoWZQe4miPX+yHk1v/Z7TWLYjIbmCA==",
        ),
        (
            "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT",
            "/RNKbCSA6iS23rmPP+v/A6061Gd8Cq3H5fR1YlWyOYP0CZ6Oq/+spQodx1F1B63EIhUSP2QmDaMDAMBFCTI+CQ==",
        ),
    ];
    for (payload, expected) in cases {
        let sig = binance_ed25519_signature(RFC8032_TEST1_PEM, payload).unwrap();
        assert_eq!(sig, expected);
        let bytes: [u8; 64] = BASE64.decode(&sig).unwrap().try_into().unwrap();
        let sig = Signature::from_bytes(&bytes);
        assert!(public.verify(payload.as_bytes(), &sig).is_ok());
        assert!(public.verify(b"tampered", &sig).is_err());
    }

    // Through sign_request: the base64 signature is percent-encoded in the query.
    let (payload, expected) = cases[0];
    let (params, recv_window, timestamp) = without_stamps(&pairs(payload));
    let creds = Credentials::new("ed-key", "").with_ed25519_pem(RFC8032_TEST1_PEM);
    let req = owned_request(Method::Post, "/api/v3/order", params, None);
    let signed =
        sign_request_with_recv_window(Venue::BinanceSpot, &creds, &req, timestamp, recv_window)
            .unwrap();
    let encoded = expected
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert_eq!(signed.url_query, format!("{payload}&signature={encoded}"));

    // And over the WebSocket API.
    let ws = pairs(cases[1].0);
    assert_eq!(binance_ws_signature(&creds, &ws).unwrap(), cases[1].1);
}

#[test]
fn bybit_ws_auth_matches_openssl() {
    // `echo -n "GET/realtime1662350400000" | openssl dgst -sha256 -hmac XXXXXXXXXX`; the
    // expires value is the one in Bybit's auth example (bybit_docs/.../001_authentication.json).
    assert_eq!(
        bybit_ws_auth_signature("XXXXXXXXXX", 1_662_350_400_000),
        "3d6cbbfa4569aab894f661add824ff3f06090d0edba388f1e47dc15e6a7b5a8b"
    );
}

#[test]
fn okx_timestamps_match_date() {
    // Seconds from `date -u -d <iso> +%s`.
    let cases = [
        (0, "1970-01-01T00:00:00.000Z"),
        (OKX_EXAMPLE_MS, "2020-12-08T09:08:57.715Z"),
        (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (946_684_799_001, "1999-12-31T23:59:59.001Z"),
        (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ];
    for (ms, iso) in cases {
        assert_eq!(okx_timestamp(ms).unwrap(), iso, "{ms}");
    }
    assert_eq!(
        okx_timestamp(253_402_300_800_000),
        Err(SignError::TimestampOutOfRange(253_402_300_800_000))
    );
    assert!(okx_timestamp(u64::MAX).is_err());
}

#[test]
fn percent_encoding_follows_binance_docs() {
    // Binance's request-security example for a non-ASCII symbol.
    assert_eq!(
        encode_query(&[("symbol", "这是测试币456")]),
        "symbol=%E8%BF%99%E6%98%AF%E6%B5%8B%E8%AF%95%E5%B8%81456"
    );
    assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
    assert_eq!(
        percent_encode("[\"BTCUSDT\",\"BNBUSDT\"] a+b=c&d"),
        "%5B%22BTCUSDT%22%2C%22BNBUSDT%22%5D%20a%2Bb%3Dc%26d"
    );
}

#[test]
fn unsigned_requests_get_no_signature() {
    let mut req = request(Method::Post, "/api/v3/userDataStream", &[("a", "1")], None);
    req.signed = false;
    let creds = Credentials::new("binance-key", "binance-secret");
    let out = sign_request(Venue::BinanceSpot, &creds, &req, 1).unwrap();
    assert_eq!(out.url_query, "a=1");
    assert_eq!(
        out.headers,
        vec![("X-MBX-APIKEY".to_string(), "binance-key".to_string())]
    );
    for venue in [Venue::Bybit, Venue::Okx, Venue::Kraken] {
        let out = sign_request(venue, &creds, &req, 1).unwrap();
        assert!(out.headers.is_empty(), "{venue:?}: {:?}", out.headers);
        assert_eq!(out.url_query, "a=1");
    }
}

#[test]
fn signing_errors_name_the_problem_not_the_secret() {
    let req = request(Method::Get, "/api/v5/account/balance", &[], None);
    let no_pass = Credentials::new("k", "okx-secret-123");
    assert_eq!(
        sign_request(Venue::Okx, &no_pass, &req, OKX_EXAMPLE_MS),
        Err(SignError::MissingPassphrase { venue: "okx" })
    );

    let bad_b64 = Credentials::new("k", "not*base64*kraken-secret");
    let err = sign_request(Venue::Kraken, &bad_b64, &req, 1).unwrap_err();
    assert!(matches!(err, SignError::BadSecret { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("kraken-secret"), "{text}");
        assert!(!text.contains('*'), "{text}");
    }

    let bad_pem = Credentials::new("k", "").with_ed25519_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n");
    assert_eq!(
        sign_request(Venue::BinanceSpot, &bad_pem, &req, 1),
        Err(SignError::BadEd25519Key)
    );
    for venue in [Venue::BinanceUsdm, Venue::Bybit, Venue::Kraken] {
        let empty = Credentials::new("k", "");
        assert_eq!(
            sign_request(venue, &empty, &req, 1),
            Err(SignError::MissingSecret {
                venue: venue.name()
            })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials

const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const PASSPHRASE: &str = "correct-horse-battery";

fn assert_no_secrets(text: &str) {
    for secret in [SECRET, PASSPHRASE, "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v"] {
        assert!(!text.contains(secret), "secret material in: {text}");
    }
}

#[test]
fn credentials_never_print_secrets() {
    let creds = Credentials::new(API_KEY, SECRET)
        .with_passphrase(PASSPHRASE)
        .with_ed25519_pem(RFC8032_TEST1_PEM);
    let debug = format!("{creds:?}");
    let pretty = format!("{creds:#?}");
    let display = creds.to_string();
    for text in [&debug, &pretty, &display] {
        assert_no_secrets(text);
        assert!(!text.contains(API_KEY), "{text}");
        assert!(text.contains("vmPU…(64 chars)"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
    // The accessors still give the real values to the signer.
    assert_eq!(creds.secret(), SECRET);
    assert_eq!(creds.passphrase(), Some(PASSPHRASE));
}

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn env_variables_are_named_per_venue() {
    assert_eq!(env_prefix(Venue::BinanceSpot), "KEEL_BINANCE_SPOT");
    assert_eq!(env_prefix(Venue::BinanceUsdm), "KEEL_BINANCE_USDM");
    assert_eq!(env_prefix(Venue::Okx), "KEEL_OKX");

    let vars = [
        ("KEEL_OKX_API_KEY", API_KEY),
        ("KEEL_OKX_API_SECRET", SECRET),
        ("KEEL_OKX_PASSPHRASE", PASSPHRASE),
    ];
    let got = credentials_from_env(Venue::Okx, env(&vars))
        .unwrap()
        .unwrap();
    assert_eq!(got.credentials.api_key(), API_KEY);
    assert_eq!(got.credentials.secret(), SECRET);
    assert_eq!(got.credentials.passphrase(), Some(PASSPHRASE));
    assert_eq!(got.ed25519_key_file, None);
    assert_no_secrets(&format!("{got:?}"));

    // Another venue's variables are not this venue's.
    assert_eq!(
        credentials_from_env(Venue::Bybit, env(&vars)).unwrap(),
        None
    );
    assert_eq!(credentials_from_env(Venue::Bybit, |_| None).unwrap(), None);
}

#[test]
fn env_refuses_half_configured_venues_without_quoting_values() {
    type Vars<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Venue, Vars, &str); 5] = [
        (
            Venue::Okx,
            &[
                ("KEEL_OKX_API_KEY", API_KEY),
                ("KEEL_OKX_API_SECRET", SECRET),
            ],
            "KEEL_OKX_PASSPHRASE",
        ),
        (
            Venue::Bybit,
            &[("KEEL_BYBIT_API_SECRET", SECRET)],
            "KEEL_BYBIT_API_KEY",
        ),
        (
            Venue::Kraken,
            &[("KEEL_KRAKEN_API_KEY", API_KEY)],
            "KEEL_KRAKEN_API_SECRET",
        ),
        (
            Venue::Kraken,
            &[
                ("KEEL_KRAKEN_API_KEY", API_KEY),
                ("KEEL_KRAKEN_API_SECRET", ""),
            ],
            "KEEL_KRAKEN_API_SECRET",
        ),
        (
            Venue::Bybit,
            &[
                ("KEEL_BYBIT_API_KEY", API_KEY),
                ("KEEL_BYBIT_API_SECRET", SECRET),
                ("KEEL_BYBIT_ED25519_KEY_FILE", "/keys/ed.pem"),
            ],
            "KEEL_BYBIT_ED25519_KEY_FILE",
        ),
    ];
    for (venue, vars, var) in cases {
        let err = credentials_from_env(venue, env(vars)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(var), "{venue:?}: {text}");
        assert_no_secrets(&text);
        assert_no_secrets(&format!("{err:?}"));
    }
}

#[test]
fn env_binance_ed25519_key_needs_no_secret() {
    let vars = [
        ("KEEL_BINANCE_USDM_API_KEY", API_KEY),
        (
            "KEEL_BINANCE_USDM_ED25519_KEY_FILE",
            "/keys/binance-ed25519.pem",
        ),
    ];
    let got = credentials_from_env(Venue::BinanceUsdm, env(&vars))
        .unwrap()
        .unwrap();
    assert_eq!(
        got.ed25519_key_file.as_deref(),
        Some(Path::new("/keys/binance-ed25519.pem"))
    );
    assert_eq!(got.credentials.secret(), "");
}

#[test]
fn key_file_permissions_are_checked_before_content() {
    let path = Path::new("/home/me/.keel/okx.json");
    let json = format!(
        r#"{{"api_key": "{API_KEY}", "secret": "{SECRET}", "passphrase": "{PASSPHRASE}"}}"#
    );
    for mode in [0o100644, 0o640, 0o604, 0o100660, 0o777] {
        let err = credentials_from_file(Venue::Okx, path, json.as_bytes(), mode).unwrap_err();
        assert_eq!(
            err,
            CredentialsError::Permissions {
                path: path.to_path_buf(),
                mode: mode & 0o7777
            }
        );
        let text = err.to_string();
        assert!(text.contains("/home/me/.keel/okx.json"), "{text}");
        assert!(text.contains(&format!("{:o}", mode & 0o7777)), "{text}");
        assert_no_secrets(&text);
    }
    for mode in [0o100600, 0o400, 0o700] {
        let creds = credentials_from_file(Venue::Okx, path, json.as_bytes(), mode).unwrap();
        assert_eq!(creds.api_key(), API_KEY);
        assert_eq!(creds.secret(), SECRET);
        assert_eq!(creds.passphrase(), Some(PASSPHRASE));
    }

    let pem_path = Path::new("/home/me/.keel/ed.pem");
    let err = load_ed25519_pem(pem_path, RFC8032_TEST1_PEM.as_bytes(), 0o644).unwrap_err();
    assert!(matches!(err, CredentialsError::Permissions { .. }));
    assert_no_secrets(&err.to_string());
    assert_eq!(
        load_ed25519_pem(pem_path, RFC8032_TEST1_PEM.as_bytes(), 0o600).unwrap(),
        RFC8032_TEST1_PEM
    );
    let err = load_ed25519_pem(pem_path, SECRET.as_bytes(), 0o600).unwrap_err();
    assert!(matches!(err, CredentialsError::BadEd25519Key { .. }));
    assert_no_secrets(&err.to_string());
}

#[test]
fn credentials_file_errors_never_quote_the_file() {
    let path = Path::new("creds.json");
    let bad: Vec<(Venue, String, &str)> = vec![
        // Syntax error right after the secret.
        (
            Venue::Bybit,
            format!(r#"{{"api_key": "{API_KEY}", "secret": "{SECRET}" "#),
            "",
        ),
        // Wrong type: serde would quote the value.
        (
            Venue::Bybit,
            format!(r#"{{"api_key": "{API_KEY}", "secret": ["{SECRET}"]}}"#),
            "",
        ),
        (
            Venue::Bybit,
            r#"{"api_key": "k", "secret": 98765432123456789}"#.to_string(),
            "98765432123456789",
        ),
        // Unknown field holding the secret (a typo in the field name).
        (
            Venue::Bybit,
            format!(r#"{{"api_key": "{API_KEY}", "sercet": "{SECRET}"}}"#),
            "",
        ),
        (Venue::Bybit, format!(r#"{{"api_key": "{API_KEY}"}}"#), ""),
        (
            Venue::Okx,
            format!(r#"{{"api_key": "{API_KEY}", "secret": "{SECRET}"}}"#),
            "",
        ),
        (
            Venue::BinanceSpot,
            format!(r#"{{"api_key": "{API_KEY}", "ed25519_pem": "{SECRET}"}}"#),
            "",
        ),
        (
            Venue::Kraken,
            format!(
                r#"{{"api_key": "{API_KEY}", "secret": "{SECRET}", "ed25519_pem": {}}}"#,
                serde_json::to_string(RFC8032_TEST1_PEM).unwrap()
            ),
            "",
        ),
        (Venue::Bybit, SECRET.to_string(), ""),
    ];
    for (venue, text, extra) in bad {
        let err = credentials_from_file(venue, path, text.as_bytes(), 0o600).unwrap_err();
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(shown.contains("creds.json"), "{shown}");
            assert_no_secrets(&shown);
            if !extra.is_empty() {
                assert!(!shown.contains(extra), "{shown}");
            }
        }
    }

    // A Binance Ed25519-only file.
    let ok = format!(
        r#"{{"api_key": "{API_KEY}", "ed25519_pem": {}}}"#,
        serde_json::to_string(RFC8032_TEST1_PEM).unwrap()
    );
    let creds = credentials_from_file(Venue::BinanceSpot, path, ok.as_bytes(), 0o600).unwrap();
    assert_eq!(creds.ed25519_pem(), Some(RFC8032_TEST1_PEM));
}

proptest! {
    #[test]
    fn damaged_credentials_files_never_leak_the_secret(
        secret in "[A-Za-z0-9]{24,64}",
        cut in 0usize..200,
        flip in 0usize..200,
        byte in any::<u8>(),
    ) {
        let json = format!(r#"{{"api_key": "abc", "secret": "{secret}", "passphrase": "{secret}"}}"#);
        let mut bytes = json.into_bytes();
        if let Some(b) = bytes.get_mut(flip) {
            *b = byte;
        }
        bytes.truncate(cut.min(bytes.len()));
        let path = Path::new("f.json");
        for venue in Venue::ALL {
            if let Err(err) = credentials_from_file(venue, path, &bytes, 0o600) {
                prop_assert!(!err.to_string().contains(&secret));
                let debug = format!("{:?}", err);
                prop_assert!(!debug.contains(&secret));
            }
        }
    }

    #[test]
    fn signing_never_panics(
        key in ".{0,40}",
        secret in ".{0,80}",
        params in proptest::collection::vec((".{0,10}", ".{0,20}"), 0..6),
        body in proptest::option::of(".{0,60}"),
        stamp in any::<u64>(),
        get in any::<bool>(),
    ) {
        let creds = Credentials::new(key, secret).with_passphrase("p");
        let req = RestRequest {
            method: if get { Method::Get } else { Method::Post },
            path: "/x".to_string(),
            query: params,
            body,
            signed: true,
            weight: 1,
            retry_safe: false,
        };
        for venue in Venue::ALL {
            let _ = sign_request(venue, &creds, &req, stamp);
        }
    }

    #[test]
    fn okx_timestamps_sort_like_the_instants(a in 0u64..=253_402_300_799_999, b in 0u64..=253_402_300_799_999) {
        let (ta, tb) = (okx_timestamp(a).unwrap(), okx_timestamp(b).unwrap());
        prop_assert_eq!(ta.len(), 24);
        prop_assert_eq!(a.cmp(&b), ta.cmp(&tb));
    }
}
