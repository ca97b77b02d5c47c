//! Which sockets a watch needs, what each one sends after connecting, and how each venue wants
//! to be kept alive. Built from the codecs' URL, stream-name and message builders; nothing here
//! spells a venue's wire format itself.

use super::{StreamKind, WsConfig, WsError};
use crate::model::Venue;
use crate::{binance, bybit, kraken, okx};

/// One socket: where it goes and what it subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnPlan {
    pub url: String,
    /// The venue's names of the streams this socket carries (Binance stream names, Bybit
    /// topics, OKX `channel:instId`, Kraken `channel:symbol`).
    pub topics: Vec<String>,
    /// Text frames sent right after the handshake, in order. Empty on Binance, whose
    /// combined-stream URL is the subscription.
    pub subscribe: Vec<String>,
}

/// A venue's keep-alive rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Binance: the server sends protocol pings (spot every 20 s, USD-M every 3 min) and drops
    /// a connection that does not pong; the client answers each with the same payload and
    /// sends nothing of its own.
    AnswerServerPings,
    /// Bybit `{"op":"ping"}`, Kraken v2 `{"method":"ping"}`: every `ping_every`, whatever
    /// else flows.
    Periodic,
    /// OKX: the text `ping` once nothing has arrived for `ping_every` (OKX closes a
    /// connection silent for 30 s), answered by the text `pong`.
    WhenIdle,
}

pub fn keep_alive(venue: Venue) -> KeepAlive {
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => KeepAlive::AnswerServerPings,
        Venue::Bybit | Venue::Kraken => KeepAlive::Periodic,
        Venue::Okx => KeepAlive::WhenIdle,
    }
}

/// The client's `n`-th ping (from 1) in the venue's dialect; `None` where the client sends
/// none.
pub(crate) fn ping_message(venue: Venue, n: u64) -> Option<String> {
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => None,
        Venue::Bybit => Some(bybit::ws_ping(&format!("keel-ping-{n}"))),
        Venue::Okx => Some(okx::ws_ping().to_string()),
        Venue::Kraken => Some(kraken::ws_ping(Some(n))),
    }
}

fn invalid(msg: impl Into<String>) -> WsError {
    WsError::InvalidConfig(msg.into())
}

/// The sockets `config` needs, in a fixed order.
pub fn plan(config: &WsConfig) -> Result<Vec<ConnPlan>, WsError> {
    if config.streams.is_empty() {
        return Err(invalid("no streams to watch"));
    }
    let mut plans = match config.venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => binance_plans(config)?,
        Venue::Bybit => vec![bybit_plan(config)?],
        Venue::Okx => okx_plans(config)?,
        Venue::Kraken => vec![kraken_plan(config)?],
    };
    if let Some(base) = &config.base_url {
        check_base(base)?;
        for p in &mut plans {
            p.url = rebase(&p.url, base);
        }
    }
    Ok(plans)
}

pub(super) fn check_base(base: &str) -> Result<(), WsError> {
    let rest = base
        .strip_prefix("ws://")
        .or_else(|| base.strip_prefix("wss://"))
        .ok_or_else(|| invalid(format!("base URL {base:?} must start with ws:// or wss://")))?;
    if rest.trim_end_matches('/').contains('/') || rest.is_empty() {
        return Err(invalid(format!(
            "base URL {base:?} must be scheme://host[:port] only (the venue's path is kept)"
        )));
    }
    Ok(())
}

/// `wss://stream.binance.com:9443/stream?streams=x` on `ws://127.0.0.1:4000` →
/// `ws://127.0.0.1:4000/stream?streams=x`.
pub(super) fn rebase(url: &str, base: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_at = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    format!("{}{}", base.trim_end_matches('/'), &url[path_at..])
}

fn binance_plans(config: &WsConfig) -> Result<Vec<ConnPlan>, WsError> {
    let usdm = config.venue == Venue::BinanceUsdm;
    let sym = &config.symbol;
    let mut names = Vec::new();
    for s in &config.streams {
        names.push(match s {
            StreamKind::Klines(interval) => {
                let name = interval.name();
                // The REST builders know Binance's interval list; a stream of an unknown
                // interval would silently carry nothing.
                let known = if usdm {
                    binance::usdm_klines(sym, &name, None, None, None).is_ok()
                } else {
                    binance::spot_klines(sym, &name, None, None, None).is_ok()
                };
                if !known {
                    return Err(invalid(format!("{name} is not a Binance kline interval")));
                }
                binance::kline_stream(sym, &name)
            }
            StreamKind::Trades if usdm => binance::agg_trade_stream(sym),
            StreamKind::Trades => binance::trade_stream(sym),
            StreamKind::BookTicker => binance::book_ticker_stream(sym),
            StreamKind::Depth => binance::depth_stream(sym, true),
        });
    }
    if !usdm {
        return Ok(vec![ConnPlan {
            url: binance::spot_stream_url(&names),
            topics: names,
            subscribe: Vec::new(),
        }]);
    }
    Ok(binance::usdm_stream_urls(&names)
        .into_iter()
        .map(|(route, url)| ConnPlan {
            url,
            topics: names
                .iter()
                .filter(|n| binance::usdm_route(n) == route)
                .cloned()
                .collect(),
            subscribe: Vec::new(),
        })
        .collect())
}

fn bybit_plan(config: &WsConfig) -> Result<ConnPlan, WsError> {
    let sym = &config.symbol;
    let category = config.bybit_category;
    let mut topics = Vec::new();
    for s in &config.streams {
        topics.push(match s {
            StreamKind::Klines(i) => bybit::topic_kline(*i, sym)
                .ok_or_else(|| invalid(format!("{} is not a Bybit kline interval", i.name())))?,
            StreamKind::Trades => bybit::topic_public_trade(sym),
            StreamKind::BookTicker => match category {
                // Spot tickers carry no best bid/ask; the level-1 book is Bybit's top of book.
                bybit::Category::Spot => bybit::topic_orderbook(1, sym),
                bybit::Category::Linear => bybit::topic_tickers(sym),
            },
            StreamKind::Depth => bybit::topic_orderbook(50, sym),
        });
    }
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    Ok(ConnPlan {
        url: bybit::ws_public_url(bybit::Network::Mainnet, category).to_string(),
        subscribe: vec![bybit::ws_subscribe("keel-sub", &refs)],
        topics,
    })
}

fn okx_plans(config: &WsConfig) -> Result<Vec<ConnPlan>, WsError> {
    let inst_id = config.symbol.as_str().to_string();
    let channels: Vec<(okx::Channel, &str)> = config
        .streams
        .iter()
        .map(|s| match s {
            StreamKind::Klines(interval) => (
                okx::Channel::Candles {
                    inst_id: inst_id.clone(),
                    interval: *interval,
                },
                "candle",
            ),
            StreamKind::Trades => (
                okx::Channel::Trades {
                    inst_id: inst_id.clone(),
                },
                "trades",
            ),
            StreamKind::BookTicker => (
                okx::Channel::BboTbt {
                    inst_id: inst_id.clone(),
                },
                "bbo-tbt",
            ),
            StreamKind::Depth => (
                okx::Channel::Books {
                    inst_id: inst_id.clone(),
                },
                "books",
            ),
        })
        .collect();
    let mut plans = Vec::new();
    for endpoint in [okx::WsEndpoint::Public, okx::WsEndpoint::Business] {
        let mine: Vec<&(okx::Channel, &str)> = channels
            .iter()
            .filter(|(c, _)| c.endpoint() == endpoint)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let list: Vec<okx::Channel> = mine.iter().map(|(c, _)| c.clone()).collect();
        let subscribe = okx::ws_subscribe(&list).map_err(|e| invalid(e.to_string()))?;
        let topics = mine
            .iter()
            .map(|(c, name)| match c {
                okx::Channel::Candles { interval, .. } => format!(
                    "candle{}:{inst_id}",
                    okx::interval_to_bar(*interval).unwrap_or_default()
                ),
                _ => format!("{name}:{inst_id}"),
            })
            .collect();
        plans.push(ConnPlan {
            url: endpoint.url(false).to_string(),
            topics,
            subscribe: vec![subscribe],
        });
    }
    Ok(plans)
}

fn kraken_plan(config: &WsConfig) -> Result<ConnPlan, WsError> {
    let pair = config.symbol.as_str();
    let symbols = [pair];
    let mut subscribe = Vec::new();
    let mut topics = Vec::new();
    for (n, s) in config.streams.iter().enumerate() {
        let (sub, channel) = match s {
            StreamKind::Klines(interval) => (
                kraken::Subscription::Ohlc {
                    symbols: &symbols,
                    interval: *interval,
                },
                "ohlc",
            ),
            StreamKind::Trades => (kraken::Subscription::Trade { symbols: &symbols }, "trade"),
            StreamKind::BookTicker => {
                (kraken::Subscription::Ticker { symbols: &symbols }, "ticker")
            }
            StreamKind::Depth => (
                kraken::Subscription::Book {
                    symbols: &symbols,
                    depth: 10,
                },
                "book",
            ),
        };
        let req_id = u64::try_from(n).unwrap_or(u64::MAX).saturating_add(1);
        subscribe
            .push(kraken::ws_subscribe(&sub, Some(req_id)).map_err(|e| invalid(e.to_string()))?);
        topics.push(format!("{channel}:{pair}"));
    }
    Ok(ConnPlan {
        url: kraken::WS_PUBLIC_URL.to_string(),
        topics,
        subscribe,
    })
}

#[cfg(test)]
mod unit {
    use super::*;
    use keel_engine::candle::Interval;
    use keel_engine::symbol::Symbol;

    fn config(venue: Venue, symbol: &str, streams: Vec<StreamKind>) -> WsConfig {
        WsConfig::new(venue, Symbol::new(symbol).expect("symbol"), streams)
    }

    fn all() -> Vec<StreamKind> {
        vec![
            StreamKind::Klines(Interval::parse("1m").expect("1m")),
            StreamKind::Trades,
            StreamKind::BookTicker,
            StreamKind::Depth,
        ]
    }

    #[test]
    fn rebase_keeps_the_venue_path_and_query() {
        assert_eq!(
            rebase(
                "wss://stream.binance.com:9443/stream?streams=a/b",
                "ws://127.0.0.1:4000"
            ),
            "ws://127.0.0.1:4000/stream?streams=a/b"
        );
        assert_eq!(
            rebase("wss://ws.kraken.com/v2", "wss://beta-ws.kraken.com/"),
            "wss://beta-ws.kraken.com/v2"
        );
        assert!(check_base("http://x").is_err());
        assert!(check_base("ws://x/path").is_err());
        assert!(check_base("ws://127.0.0.1:1/").is_ok());
    }

    #[test]
    fn binance_usdm_splits_streams_between_the_public_and_market_routes() {
        let plans = plan(&config(Venue::BinanceUsdm, "BTCUSDT", all())).expect("plan");
        assert_eq!(plans.len(), 2);
        assert_eq!(
            plans[0].url,
            "wss://fstream.binance.com/public/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms"
        );
        assert_eq!(
            plans[1].url,
            "wss://fstream.binance.com/market/stream?streams=btcusdt@kline_1m/btcusdt@aggTrade"
        );
        assert_eq!(plans[1].topics, ["btcusdt@kline_1m", "btcusdt@aggTrade"]);
        assert!(plans.iter().all(|p| p.subscribe.is_empty()));
    }

    #[test]
    fn okx_candles_go_to_the_business_endpoint() {
        let plans = plan(&config(Venue::Okx, "BTC-USDT", all())).expect("plan");
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].url, okx::WS_PUBLIC_URL);
        assert_eq!(
            plans[0].topics,
            ["trades:BTC-USDT", "bbo-tbt:BTC-USDT", "books:BTC-USDT"]
        );
        assert_eq!(plans[1].url, okx::WS_BUSINESS_URL);
        assert_eq!(plans[1].topics, ["candle1m:BTC-USDT"]);
    }

    #[test]
    fn unknown_intervals_and_empty_watches_are_refused() {
        let odd = vec![StreamKind::Klines(Interval::parse("7m").expect("7m"))];
        for v in Venue::ALL {
            assert!(plan(&config(v, "BTCUSDT", odd.clone())).is_err(), "{v:?}");
            assert!(plan(&config(v, "BTCUSDT", vec![])).is_err(), "{v:?}");
        }
    }
}
