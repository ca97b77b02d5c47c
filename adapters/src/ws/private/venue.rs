//! Per venue: what a configuration must hold, where to connect, what to send to authenticate
//! and subscribe, and how to read a refusal. Built from the codecs' URL and message builders
//! and the signing rules in `sign`; nothing here spells a venue's wire format itself.

use super::super::WsError;
use super::super::plan::{check_base, rebase};
use super::PrivateConfig;
use crate::model::Venue;
use crate::{binance, bybit, kraken, okx, sign};

/// How a venue authenticates a private connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AuthStyle {
    /// Binance USD-M: the listen key in the URL is the authentication; nothing to wait for.
    Url,
    /// Binance spot: one signed request authenticates and subscribes; its reply says both.
    SignedSubscribe,
    /// Bybit, OKX: a login message and its answer, then the subscriptions.
    Login,
    /// Kraken: the token rides in each subscription; the first acknowledgement proves it.
    TokenInSubscribe,
}

/// One connection: where it goes and what it sends.
pub(super) struct Plan {
    pub url: String,
    /// `url` with the listen key masked, for events.
    pub shown_url: String,
    pub style: AuthStyle,
    /// Sent right after the handshake (Binance spot, Bybit, OKX).
    pub auth: Option<String>,
    /// The request id the Binance spot reply echoes.
    pub auth_id: Option<String>,
    /// Sent once authenticated (Bybit, OKX) or right after the handshake (Kraken).
    pub subscribe: Vec<String>,
    /// The account channels, as the venue names them.
    pub topics: Vec<String>,
    /// Subscription acknowledgements that complete the set.
    pub acks: usize,
}

/// The venues whose connections need a token from the [`super::TokenSource`].
pub(super) fn needs_token(venue: Venue) -> bool {
    matches!(venue, Venue::BinanceUsdm | Venue::Kraken)
}

fn invalid(msg: impl Into<String>) -> WsError {
    WsError::InvalidConfig(msg.into())
}

/// Refuses configurations that cannot work, before anything connects.
pub(super) fn check(config: &PrivateConfig) -> Result<(), WsError> {
    let venue = config.venue.name();
    if config.channel_capacity == 0 {
        return Err(invalid("channel_capacity must be at least 1"));
    }
    if config.max_auth_failures == 0 {
        return Err(invalid("max_auth_failures must be at least 1"));
    }
    if let Some(base) = &config.base_url {
        check_base(base)?;
    }
    if needs_token(config.venue) && config.tokens.is_none() {
        return Err(invalid(format!(
            "{venue} private streams need a token source (listen keys / WebSocket tokens)"
        )));
    }
    let creds = &config.credentials;
    let no_secret = creds.secret().is_empty();
    match config.venue {
        Venue::BinanceSpot if no_secret && creds.ed25519_pem().is_none() => Err(invalid(
            "binance-spot private streams need an API secret or an Ed25519 key",
        )),
        Venue::Bybit | Venue::Okx if no_secret => Err(invalid(format!(
            "{venue} private streams need an API secret"
        ))),
        Venue::Okx if creds.passphrase().is_none() => {
            Err(invalid("okx private streams need the API key's passphrase"))
        }
        Venue::BinanceSpot | Venue::Bybit | Venue::Okx if creds.api_key().is_empty() => {
            Err(invalid(format!("{venue} private streams need an API key")))
        }
        _ => Ok(()),
    }
}

fn on_base(url: &str, config: &PrivateConfig) -> String {
    match &config.base_url {
        Some(base) => rebase(url, base),
        None => url.to_string(),
    }
}

/// The plan of connection `attempt`, signed at `now_ms`. `token` is the listen key (Binance
/// USD-M) or the WebSocket token (Kraken). An error is a signing failure (no secret, a bad
/// Ed25519 key): the credentials' fault, reported as a refusal.
pub(super) fn plan(
    config: &PrivateConfig,
    token: Option<&str>,
    attempt: u64,
    now_ms: u64,
) -> Result<Plan, String> {
    let token = token.unwrap_or("");
    match config.venue {
        Venue::BinanceSpot => binance_spot(config, attempt, now_ms),
        Venue::BinanceUsdm => Ok(binance_usdm(config, token)),
        Venue::Bybit => Ok(bybit_plan(config, now_ms)),
        Venue::Okx => okx_plan(config, now_ms),
        Venue::Kraken => kraken_plan(config, token),
    }
}

fn binance_spot(config: &PrivateConfig, attempt: u64, now_ms: u64) -> Result<Plan, String> {
    let creds = &config.credentials;
    let ts = i64::try_from(now_ms).map_err(|_| format!("clock reads {now_ms} ms"))?;
    let ts_text = ts.to_string();
    let params = [("apiKey", creds.api_key()), ("timestamp", ts_text.as_str())];
    let signature = sign::binance_ws_signature(creds, &params).map_err(|e| e.to_string())?;
    let id = format!("keel-uds-{attempt}");
    let url = on_base(binance::SPOT_WS_API_URL, config);
    Ok(Plan {
        shown_url: url.clone(),
        url,
        style: AuthStyle::SignedSubscribe,
        auth: Some(binance::spot_user_stream_subscribe_request(
            &id,
            creds.api_key(),
            ts,
            &signature,
        )),
        auth_id: Some(id),
        subscribe: Vec::new(),
        topics: vec!["userDataStream".into()],
        acks: 0,
    })
}

fn binance_usdm(config: &PrivateConfig, listen_key: &str) -> Plan {
    let events = binance::USDM_PRIVATE_EVENTS;
    Plan {
        url: on_base(&binance::usdm_private_url(listen_key, &events), config),
        shown_url: on_base(&binance::usdm_private_url("redacted", &events), config),
        style: AuthStyle::Url,
        auth: None,
        auth_id: None,
        subscribe: Vec::new(),
        topics: events.iter().map(|e| e.to_string()).collect(),
        acks: 0,
    }
}

fn bybit_plan(config: &PrivateConfig, now_ms: u64) -> Plan {
    let creds = &config.credentials;
    let ahead = u64::try_from(config.bybit_expires_in.as_millis()).unwrap_or(u64::MAX);
    let expires = now_ms.saturating_add(ahead);
    let signature = sign::bybit_ws_auth_signature(creds.secret(), expires);
    let expires = i64::try_from(expires).unwrap_or(i64::MAX);
    let mut topics = vec![
        bybit::TOPIC_ORDER,
        bybit::TOPIC_EXECUTION,
        bybit::TOPIC_POSITION,
        bybit::TOPIC_WALLET,
    ];
    if let Some(category) = config.bybit_dcp {
        topics.push(bybit::dcp_topic(category));
    }
    let url = on_base(bybit::ws_private_url(bybit::Network::Mainnet), config);
    Plan {
        shown_url: url.clone(),
        url,
        style: AuthStyle::Login,
        auth: Some(bybit::ws_auth(creds.api_key(), expires, &signature)),
        auth_id: None,
        subscribe: vec![bybit::ws_subscribe("keel-private", &topics)],
        topics: topics.iter().map(|t| t.to_string()).collect(),
        acks: 1,
    }
}

fn okx_plan(config: &PrivateConfig, now_ms: u64) -> Result<Plan, String> {
    let creds = &config.credentials;
    let seconds = now_ms / 1000;
    let signature = sign::okx_ws_login_signature(creds.secret(), seconds);
    let passphrase = creds.passphrase().unwrap_or("");
    let inst_type = config.okx_inst_type.clone();
    let mut channels = vec![okx::Channel::Orders {
        inst_type: inst_type.clone(),
    }];
    // The positions channel has no SPOT instrument type.
    if inst_type != "SPOT" {
        channels.push(okx::Channel::Positions {
            inst_type: inst_type.clone(),
        });
    }
    channels.push(okx::Channel::Account);
    let mut topics: Vec<String> = vec![format!("orders:{inst_type}")];
    if channels.len() == 3 {
        topics.push(format!("positions:{inst_type}"));
    }
    topics.push("account".into());
    let subscribe = okx::ws_subscribe(&channels).map_err(|e| e.to_string())?;
    let url = on_base(okx::WsEndpoint::Private.url(false), config);
    Ok(Plan {
        shown_url: url.clone(),
        url,
        style: AuthStyle::Login,
        auth: Some(okx::ws_login(
            creds.api_key(),
            passphrase,
            &seconds.to_string(),
            &signature,
        )),
        auth_id: None,
        subscribe: vec![subscribe],
        acks: topics.len(),
        topics,
    })
}

fn kraken_plan(config: &PrivateConfig, token: &str) -> Result<Plan, String> {
    let executions = kraken::Subscription::Executions {
        token,
        snap_orders: true,
        snap_trades: false,
    };
    let balances = kraken::Subscription::Balances { token };
    let subscribe = vec![
        kraken::ws_subscribe(&executions, Some(1)).map_err(|e| e.to_string())?,
        kraken::ws_subscribe(&balances, Some(2)).map_err(|e| e.to_string())?,
    ];
    let url = on_base(kraken::WS_PRIVATE_URL, config);
    Ok(Plan {
        shown_url: url.clone(),
        url,
        style: AuthStyle::TokenInSubscribe,
        auth: None,
        auth_id: None,
        subscribe,
        topics: vec!["executions".into(), "balances".into()],
        acks: 2,
    })
}

/// A refused Kraken subscription that is about the token or the key, not the channel.
pub(super) fn is_token_refusal(reason: &str) -> bool {
    [
        "ESession:",
        "EAuth:",
        "EAPI:Invalid key",
        "EAPI:Invalid token",
        "Invalid token",
        "Permission denied",
    ]
    .iter()
    .any(|p| reason.contains(p))
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::credentials::Credentials;

    fn config(venue: Venue) -> PrivateConfig {
        let creds = Credentials::new("key-123", "secret-xyz").with_passphrase("pass-phrase");
        let mut c = PrivateConfig::new(venue, creds);
        c.base_url = Some("ws://127.0.0.1:9".into());
        c
    }

    #[test]
    fn plans_keep_the_venue_path_on_the_base_url_and_mask_listen_keys() {
        let usdm = plan(&config(Venue::BinanceUsdm), Some("LK-secret"), 1, 0).expect("plan");
        assert!(
            usdm.url
                .starts_with("ws://127.0.0.1:9/private/ws?listenKey=LK-secret&events=")
        );
        assert!(!usdm.shown_url.contains("LK-secret"));
        let spot = plan(&config(Venue::BinanceSpot), None, 3, 1_700_000_000_000).expect("plan");
        assert_eq!(spot.url, "ws://127.0.0.1:9/ws-api/v3");
        assert_eq!(spot.auth_id.as_deref(), Some("keel-uds-3"));
        let okx = plan(&config(Venue::Okx), None, 1, 1_700_000_000_000).expect("plan");
        assert_eq!(okx.url, "ws://127.0.0.1:9/ws/v5/private");
        assert_eq!(okx.acks, 3);
        let bybit = plan(&config(Venue::Bybit), None, 1, 0).expect("plan");
        assert_eq!(bybit.url, "ws://127.0.0.1:9/v5/private");
        let kraken = plan(&config(Venue::Kraken), Some("tok"), 1, 0).expect("plan");
        assert_eq!(kraken.url, "ws://127.0.0.1:9/v2");
        assert_eq!(kraken.subscribe.len(), 2);
    }

    #[test]
    fn configurations_that_cannot_authenticate_are_refused() {
        let mut c = config(Venue::Kraken);
        c.tokens = None;
        assert!(check(&c).is_err());
        let c = PrivateConfig::new(Venue::Okx, Credentials::new("k", "s"));
        assert!(check(&c).is_err(), "no passphrase");
        let c = PrivateConfig::new(Venue::Bybit, Credentials::new("k", ""));
        assert!(check(&c).is_err(), "no secret");
        assert!(check(&config(Venue::Bybit)).is_ok());
    }

    #[test]
    fn kraken_token_refusals_are_told_from_channel_refusals() {
        assert!(is_token_refusal("ESession:Invalid session"));
        assert!(is_token_refusal("EGeneral:Permission denied"));
        assert!(!is_token_refusal("EGeneral:Invalid arguments"));
    }
}
