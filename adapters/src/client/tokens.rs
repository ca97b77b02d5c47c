//! Session tokens for the private streams, fetched through a [`RestClient`]: the
//! [`TokenSource`] that [`crate::ws::private`] asks on every connection.
//!
//! - Kraken: `POST /0/private/GetWebSocketsToken` (signed like every private call); a token
//!   needs no keep-alive once a connection uses it.
//! - Binance USD-M: `POST /fapi/v1/listenKey` for the account's key (the active one, or a new
//!   one) and `PUT /fapi/v1/listenKey` to extend it. These are USER_STREAM calls: the API key
//!   header and no signature, which is how the client sends an unsigned Binance request when it
//!   holds credentials.
//! - Any other venue, or a client without credentials, is refused without sending.
//!
//! Refusals are [`TokenError::Rejected`] (bad key or signature, unknown listen key, a request
//! the venue will not run); rate limits, lost answers, 5xx and unreadable answers are
//! [`TokenError::Unavailable`]. The message is the client's error, which names the request
//! and the venue's text and never a secret; a token is not quoted in it.

use std::sync::Arc;

use super::{ClientError, RestClient, describe};
use crate::model::{RestRequest, Venue, VenueError};
use crate::ws::private::{TokenError, TokenFuture, TokenSource};

/// Tokens from one venue account's REST client.
pub struct RestTokens {
    client: Arc<RestClient>,
}

impl RestTokens {
    pub fn new(client: Arc<RestClient>) -> RestTokens {
        RestTokens { client }
    }

    /// A fresh Kraken WebSocket token, or the account's Binance USD-M listen key.
    pub async fn fetch(&self) -> Result<String, ClientError> {
        let req = self.request(false)?;
        let r = self.client.send(&req).await?;
        let parsed = match self.client.config.venue {
            Venue::Kraken => crate::kraken::parse_ws_token(&r.body),
            _ => crate::binance::parse_listen_key(&r.body),
        };
        parsed.map_err(|e| ClientError {
            venue: self.client.config.venue.name(),
            request: describe(&req),
            status: Some(r.status),
            error: VenueError::Other {
                code: "decode".into(),
                message: e.to_string(),
            },
            attempts: r.attempts,
        })
    }

    /// Extends the Binance USD-M listen key (one per account, so the key is not sent); Kraken
    /// tokens need nothing.
    pub async fn extend(&self) -> Result<(), ClientError> {
        if self.client.config.venue == Venue::Kraken {
            return Ok(());
        }
        let req = self.request(true)?;
        self.client.send(&req).await.map(|_| ())
    }

    fn request(&self, keep_alive: bool) -> Result<RestRequest, ClientError> {
        let venue = self.client.config.venue;
        let refuse = |message: String| ClientError {
            venue: venue.name(),
            request: "session token (not sent)".into(),
            status: None,
            error: VenueError::AuthFailure(message),
            attempts: 0,
        };
        if self.client.config.credentials.is_none() {
            return Err(refuse("session tokens need the account's API key".into()));
        }
        match venue {
            // The client stamps its own nonce.
            Venue::Kraken => Ok(super::kraken::unstamped(
                crate::kraken::get_websockets_token(0),
            )),
            Venue::BinanceUsdm => {
                let req = if keep_alive {
                    crate::binance::usdm_listen_key_keepalive()
                } else {
                    crate::binance::usdm_listen_key_create()
                };
                Ok(RestRequest {
                    signed: false,
                    ..req
                })
            }
            other => Err(refuse(format!(
                "{} private streams take no token from REST",
                other.name()
            ))),
        }
    }
}

/// Whether asking again later may help.
fn token_error(e: ClientError) -> TokenError {
    let text = e.to_string();
    let passing = match &e.error {
        VenueError::RateLimited { .. }
        | VenueError::UnknownOutcome(_)
        | VenueError::TimestampOutsideRecvWindow(_) => true,
        VenueError::Other { code, .. } if code == "decode" => true,
        _ => e.status.is_some_and(|s| s >= 500),
    };
    if passing {
        TokenError::Unavailable(text)
    } else {
        TokenError::Rejected(text)
    }
}

impl TokenSource for RestTokens {
    fn token(&self) -> TokenFuture<'_, String> {
        Box::pin(async move { self.fetch().await.map_err(token_error) })
    }

    fn keep_alive<'a>(&'a self, token: &'a str) -> TokenFuture<'a, ()> {
        // USD-M extends the account's one key; the argument is that key.
        let _ = token;
        Box::pin(async move { self.extend().await.map_err(token_error) })
    }
}
