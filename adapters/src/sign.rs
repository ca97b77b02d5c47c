//! Request signing for every venue, as pure functions.
//!
//! The client passes the clock reading (timestamp or nonce) in; nothing here reads a clock, so
//! each signature is reproducible from its inputs and testable against the venues' published
//! examples (tests/data/signing_vectors).
//!
//! | venue | signed string | MAC | encoding | headers |
//! |---|---|---|---|---|
//! | Binance (spot, USD-M) | query string + body (no separator), with `recvWindow` and `timestamp` appended | HMAC-SHA256 or Ed25519 | hex / base64 | `X-MBX-APIKEY` |
//! | Bybit v5 | timestamp + apiKey + recvWindow + (query string for GET, raw body otherwise) | HMAC-SHA256 | hex | `X-BAPI-*` |
//! | OKX v5 | ISO timestamp + METHOD + path?query + body | HMAC-SHA256 | base64 | `OK-ACCESS-*` |
//! | Kraken spot | path + SHA256(nonce + form body) | HMAC-SHA512, key = base64-decoded secret | base64 | `API-Key`, `API-Sign` |
//!
//! Query values are percent-encoded here (RFC 3986 unreserved characters kept), once, and the
//! same string is both signed and sent: a venue verifies the bytes it received, so signing one
//! encoding and sending another fails authentication.

use core::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::digest::{Digest, Key, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use crate::credentials::Credentials;
use crate::model::{Method, RestRequest, Venue};

/// Receive window sent to Binance and Bybit unless the caller picks another: both venues'
/// documented default, and the largest value their docs recommend.
pub const DEFAULT_RECV_WINDOW_MS: u64 = 5000;

/// Why a request could not be signed. Never carries key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("{venue}: the credentials have no API secret")]
    MissingSecret { venue: &'static str },
    #[error("{venue}: the credentials have no passphrase, which every {venue} request carries")]
    MissingPassphrase { venue: &'static str },
    /// The secret is not in the venue's format (Kraken secrets are base64).
    #[error("{venue}: the API secret is not valid: {reason}")]
    BadSecret {
        venue: &'static str,
        reason: &'static str,
    },
    #[error("the Ed25519 key is not a PKCS#8 PEM Ed25519 private key")]
    BadEd25519Key,
    /// OKX timestamps are ISO-8601 with a 4-digit year.
    #[error("timestamp {0} ms is after 9999-12-31T23:59:59.999Z and has no OKX form")]
    TimestampOutOfRange(u64),
}

/// A request ready to send: query string (without `?`), body and extra headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    pub url_query: String,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------------
// Primitives

// HMAC pads a key shorter than the hash block with zeros and hashes a longer one first (RFC 2104
// §2). Doing that here gives a block-sized key, for which `KeyInit::new` is infallible; the
// slice constructor returns a `Result` that would need an unwrap.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = Key::<Hmac<Sha256>>::default();
    let hashed;
    let key = if key.len() > block.len() {
        hashed = Sha256::digest(key);
        hashed.as_slice()
    } else {
        key
    };
    block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block);
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn hmac_sha512(key: &[u8], msg: &[u8]) -> [u8; 64] {
    let mut block = Key::<Hmac<Sha512>>::default();
    let hashed;
    let key = if key.len() > block.len() {
        hashed = Sha512::digest(key);
        hashed.as_slice()
    } else {
        key
    };
    block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    let mut mac = <Hmac<Sha512> as KeyInit>::new(&block);
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex of HMAC-SHA256(key, msg).
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    hex::encode(hmac_sha256(key, msg))
}

/// Lower-case hex of HMAC-SHA512(key, msg).
pub fn hmac_sha512_hex(key: &[u8], msg: &[u8]) -> String {
    hex::encode(hmac_sha512(key, msg))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`), the
/// encoding Binance documents for signed parameters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `k1=v1&k2=v2` in the given order, names and values percent-encoded.
pub fn encode_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut out = String::new();
    for (k, v) in params {
        append_param(
            &mut out,
            &percent_encode(k.as_ref()),
            &percent_encode(v.as_ref()),
        );
    }
    out
}

fn append_param(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

// ---------------------------------------------------------------------------------------------
// Binance

/// Binance HMAC signature: hex(HMAC-SHA256(secret, payload)). `payload` is the query string
/// followed directly by the form body (no `&` between them) when both carry parameters.
pub fn binance_hmac_signature(secret: &str, payload: &str) -> String {
    hmac_sha256_hex(secret.as_bytes(), payload.as_bytes())
}

/// Binance Ed25519 signature: base64 of the Ed25519 signature of `payload`, with the private
/// key given as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). The base64 contains `+`, `/` and
/// `=`, so it must be percent-encoded when sent in a query string or form body.
pub fn binance_ed25519_signature(
    private_key_pem: &str,
    payload: &str,
) -> Result<String, SignError> {
    // The parser's error is dropped: it could describe key bytes.
    let key = SigningKey::from_pkcs8_pem(private_key_pem).map_err(|_| SignError::BadEd25519Key)?;
    Ok(BASE64.encode(key.sign(payload.as_bytes()).to_bytes()))
}

/// The string Binance signs for a REST request: the parameters in order, then
/// `recvWindow` and `timestamp` (the order of Binance's own examples).
pub fn binance_payload<K: AsRef<str>, V: AsRef<str>>(
    params: &[(K, V)],
    recv_window_ms: u64,
    timestamp_ms: u64,
) -> String {
    let mut out = encode_query(params);
    append_param(&mut out, "recvWindow", &recv_window_ms.to_string());
    append_param(&mut out, "timestamp", &timestamp_ms.to_string());
    out
}

/// A complete HMAC-signed Binance query string: [`binance_payload`] then
/// `&signature=<hex>`.
pub fn binance_signed_query<K: AsRef<str>, V: AsRef<str>>(
    params: &[(K, V)],
    recv_window_ms: u64,
    timestamp_ms: u64,
    secret: &str,
) -> String {
    let mut out = binance_payload(params, recv_window_ms, timestamp_ms);
    let signature = binance_hmac_signature(secret, &out);
    append_param(&mut out, "signature", &signature);
    out
}

/// The string Binance's WebSocket API signs: every parameter except `signature` (including
/// `apiKey` and `timestamp`), sorted by name, as `name=value` joined by `&`, values as they
/// appear in the request's JSON (not percent-encoded).
pub fn binance_ws_payload<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(k, _)| *k != "signature")
        .collect();
    sorted.sort_unstable();
    let mut out = String::new();
    for (k, v) in sorted {
        append_param(&mut out, k, v);
    }
    out
}

/// The `signature` parameter of a Binance WebSocket API request: Ed25519 (base64) when the
/// credentials carry an Ed25519 key, HMAC (hex) otherwise.
pub fn binance_ws_signature<K: AsRef<str>, V: AsRef<str>>(
    credentials: &Credentials,
    params: &[(K, V)],
) -> Result<String, SignError> {
    let payload = binance_ws_payload(params);
    match credentials.ed25519_pem() {
        Some(pem) => binance_ed25519_signature(pem, &payload),
        None => Ok(binance_hmac_signature(
            require_secret(credentials, "binance")?,
            &payload,
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Bybit

/// Bybit v5 REST signature: hex(HMAC-SHA256(secret, timestamp + apiKey + recvWindow + payload)),
/// where `payload` is the query string for GET and the raw JSON body for POST.
pub fn bybit_signature(
    secret: &str,
    timestamp_ms: u64,
    api_key: &str,
    recv_window_ms: u64,
    payload: &str,
) -> String {
    let prehash = format!("{timestamp_ms}{api_key}{recv_window_ms}{payload}");
    hmac_sha256_hex(secret.as_bytes(), prehash.as_bytes())
}

/// Bybit v5 WebSocket `auth` signature: hex(HMAC-SHA256(secret, "GET/realtime" + expires)),
/// `expires` a unix time in ms shortly in the future. Sent as
/// `{"op":"auth","args":[apiKey, expires, signature]}`.
pub fn bybit_ws_auth_signature(secret: &str, expires_ms: u64) -> String {
    hmac_sha256_hex(
        secret.as_bytes(),
        format!("GET/realtime{expires_ms}").as_bytes(),
    )
}

// ---------------------------------------------------------------------------------------------
// OKX

/// OKX v5 REST signature: base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)).
/// `request_path` includes `?query` when there is one; `body` is empty for GET.
pub fn okx_signature(
    secret: &str,
    timestamp: &str,
    method: Method,
    request_path: &str,
    body: &str,
) -> String {
    let prehash = format!("{timestamp}{}{request_path}{body}", method.as_str());
    BASE64.encode(hmac_sha256(secret.as_bytes(), prehash.as_bytes()))
}

/// OKX WebSocket `login` signature: base64(HMAC-SHA256(secret, unix_seconds + "GET" +
/// "/users/self/verify")). The login's `timestamp` argument is the same seconds value.
pub fn okx_ws_login_signature(secret: &str, unix_seconds: u64) -> String {
    let prehash = format!("{unix_seconds}GET/users/self/verify");
    BASE64.encode(hmac_sha256(secret.as_bytes(), prehash.as_bytes()))
}

/// Largest unix ms with a 4-digit year: 9999-12-31T23:59:59.999Z.
const MAX_ISO_MS: u64 = 253_402_300_799_999;

/// Unix ms as OKX's timestamp form, ISO-8601 UTC with milliseconds: `2020-12-08T09:08:57.715Z`.
pub fn okx_timestamp(unix_ms: u64) -> Result<String, SignError> {
    if unix_ms > MAX_ISO_MS {
        return Err(SignError::TimestampOutOfRange(unix_ms));
    }
    let ms = unix_ms % 1000;
    let secs = unix_ms / 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    ))
}

/// (year, month, day) of a day count since 1970-01-01 (never before 1970 here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let (y, m, d) = crate::civil::civil_from_days(days as i64);
    (y as u64, m as u64, d as u64)
}

// ---------------------------------------------------------------------------------------------
// Kraken

/// Kraken spot REST `API-Sign`: base64(HMAC-SHA512(base64decode(secret),
/// uri_path + SHA256(nonce + postdata))). `postdata` is the form body exactly as sent, which
/// itself contains `nonce=<nonce>`.
pub fn kraken_signature(
    secret_base64: &str,
    uri_path: &str,
    nonce: u64,
    postdata: &str,
) -> Result<String, SignError> {
    // The decoder's error is dropped: it quotes the offending byte of the secret.
    let key = BASE64
        .decode(secret_base64.trim())
        .map_err(|_| SignError::BadSecret {
            venue: Venue::Kraken.name(),
            reason: "a Kraken private key is base64",
        })?;
    let inner = Sha256::digest(format!("{nonce}{postdata}").as_bytes());
    let mut message = Vec::with_capacity(uri_path.len() + inner.len());
    message.extend_from_slice(uri_path.as_bytes());
    message.extend_from_slice(&inner);
    Ok(BASE64.encode(hmac_sha512(&key, &message)))
}

// ---------------------------------------------------------------------------------------------
// Whole requests

/// Signs `request` for `venue` with the default receive window; see
/// [`sign_request_with_recv_window`].
pub fn sign_request(
    venue: Venue,
    credentials: &Credentials,
    request: &RestRequest,
    stamp: u64,
) -> Result<SignedRequest, SignError> {
    sign_request_with_recv_window(venue, credentials, request, stamp, DEFAULT_RECV_WINDOW_MS)
}

/// Turns an encoded request into what goes on the wire.
///
/// `stamp` is the unix time in ms for Binance, Bybit and OKX, and the nonce for Kraken (which
/// only needs it to increase; a ms clock reading is the usual choice). `recv_window_ms` is used
/// by Binance and Bybit only.
///
/// Query values in `request.query` are raw; they are percent-encoded here. The body is sent as
/// given (Bybit and OKX sign its exact bytes). Where parameters are added:
/// - Binance: `recvWindow`, `timestamp` and `signature` go at the end of the form body when the
///   request has one, else at the end of the query. Unsigned requests still get
///   `X-MBX-APIKEY`, which Binance's USER_STREAM and MARKET_DATA endpoints require.
/// - Kraken: `nonce=<stamp>` is put first in the form body.
/// - Bybit, OKX: nothing is added to query or body; all authentication is in headers.
///
/// An unsigned request (`request.signed == false`) for Bybit, OKX or Kraken gets no
/// authentication headers.
pub fn sign_request_with_recv_window(
    venue: Venue,
    credentials: &Credentials,
    request: &RestRequest,
    stamp: u64,
    recv_window_ms: u64,
) -> Result<SignedRequest, SignError> {
    let url_query = encode_query(&request.query);
    let body = request.body.clone().filter(|b| !b.is_empty());
    let mut headers = Vec::new();
    let content_type = match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm | Venue::Kraken => {
            "application/x-www-form-urlencoded"
        }
        Venue::Bybit | Venue::Okx => "application/json",
    };
    if matches!(venue, Venue::BinanceSpot | Venue::BinanceUsdm) {
        header(&mut headers, "X-MBX-APIKEY", credentials.api_key());
    }
    if !request.signed {
        if body.is_some() {
            header(&mut headers, "Content-Type", content_type);
        }
        return Ok(SignedRequest {
            url_query,
            body,
            headers,
        });
    }
    let mut signed = match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => sign_binance(
            venue,
            credentials,
            url_query,
            body,
            headers,
            stamp,
            recv_window_ms,
        )?,
        Venue::Bybit => {
            let secret = require_secret(credentials, venue.name())?;
            let payload = match request.method {
                Method::Get => url_query.as_str(),
                _ => body.as_deref().unwrap_or(""),
            };
            let signature = bybit_signature(
                secret,
                stamp,
                credentials.api_key(),
                recv_window_ms,
                payload,
            );
            header(&mut headers, "X-BAPI-API-KEY", credentials.api_key());
            header(&mut headers, "X-BAPI-TIMESTAMP", &stamp.to_string());
            header(&mut headers, "X-BAPI-SIGN", &signature);
            header(
                &mut headers,
                "X-BAPI-RECV-WINDOW",
                &recv_window_ms.to_string(),
            );
            SignedRequest {
                url_query,
                body,
                headers,
            }
        }
        Venue::Okx => {
            let secret = require_secret(credentials, venue.name())?;
            let passphrase = credentials
                .passphrase()
                .ok_or(SignError::MissingPassphrase {
                    venue: venue.name(),
                })?;
            let timestamp = okx_timestamp(stamp)?;
            let request_path = if url_query.is_empty() {
                request.path.clone()
            } else {
                format!("{}?{url_query}", request.path)
            };
            let signature = okx_signature(
                secret,
                &timestamp,
                request.method,
                &request_path,
                body.as_deref().unwrap_or(""),
            );
            header(&mut headers, "OK-ACCESS-KEY", credentials.api_key());
            header(&mut headers, "OK-ACCESS-SIGN", &signature);
            header(&mut headers, "OK-ACCESS-TIMESTAMP", &timestamp);
            header(&mut headers, "OK-ACCESS-PASSPHRASE", passphrase);
            SignedRequest {
                url_query,
                body,
                headers,
            }
        }
        Venue::Kraken => {
            let secret = require_secret(credentials, venue.name())?;
            let postdata = match &body {
                Some(b) => format!("nonce={stamp}&{b}"),
                None => format!("nonce={stamp}"),
            };
            let signature = kraken_signature(secret, &request.path, stamp, &postdata)?;
            header(&mut headers, "API-Key", credentials.api_key());
            header(&mut headers, "API-Sign", &signature);
            SignedRequest {
                url_query,
                body: Some(postdata),
                headers,
            }
        }
    };
    if signed.body.is_some() {
        header(&mut signed.headers, "Content-Type", content_type);
    }
    Ok(signed)
}

fn header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.push((name.to_string(), value.to_string()));
}

fn require_secret<'a>(
    credentials: &'a Credentials,
    venue: &'static str,
) -> Result<&'a str, SignError> {
    match credentials.secret() {
        "" => Err(SignError::MissingSecret { venue }),
        secret => Ok(secret),
    }
}

fn sign_binance(
    venue: Venue,
    credentials: &Credentials,
    mut query: String,
    mut body: Option<String>,
    headers: Vec<(String, String)>,
    timestamp_ms: u64,
    recv_window_ms: u64,
) -> Result<SignedRequest, SignError> {
    // Binance signs query + body; the stamps go wherever the parameters already are, so a
    // body-only POST stays body-only.
    let target = match body.as_mut() {
        Some(b) => b,
        None => &mut query,
    };
    append_param(target, "recvWindow", &recv_window_ms.to_string());
    append_param(target, "timestamp", &timestamp_ms.to_string());
    let payload = format!("{query}{}", body.as_deref().unwrap_or(""));
    let signature = match credentials.ed25519_pem() {
        Some(pem) => percent_encode(&binance_ed25519_signature(pem, &payload)?),
        None => binance_hmac_signature(require_secret(credentials, venue.name())?, &payload),
    };
    let target = match body.as_mut() {
        Some(b) => b,
        None => &mut query,
    };
    append_param(target, "signature", &signature);
    Ok(SignedRequest {
        url_query: query,
        body,
        headers,
    })
}
