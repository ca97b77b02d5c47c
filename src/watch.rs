//! `keel venue watch`: a venue's live public streams for one instrument, as keel normalizes
//! them — one JSON object per market event on stdout (the same objects `keel venue decode`
//! prints), connection events (connected, subscribed, acks, disconnects with the reason and the
//! wait before reconnecting, depth gaps, undecodable frames) as text lines on stderr.
//!
//! Runs until Ctrl-C or `--for-seconds`, then closes every socket with a close frame and prints
//! a one-line summary on stderr. A closed stdout (`| head`) ends it quietly. Exit code 1 when
//! the client gave up (too many consecutive failed connections), else 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use keel_adapters::model::Venue;
use keel_adapters::ws::{
    self, ConnectionEvent, DisconnectReason, GapKind, StreamKind, WsConfig, WsEvent,
};
use keel_engine::{Interval, Symbol};

use crate::download::Category;
use crate::venue_cmd::event_json;

/// The command-line arguments of `keel venue watch`.
#[derive(Clone, Debug, clap::Args)]
pub struct WatchArgs {
    /// binance-spot, binance-usdm, bybit, okx or kraken.
    #[arg(long)]
    pub venue: String,
    /// The venue's name of the instrument: BTCUSDT (Binance, Bybit), BTC-USDT or
    /// BTC-USDT-SWAP (OKX), BTC/USD (Kraken).
    #[arg(long)]
    pub symbol: String,
    /// Candles of this interval (e.g. 1m), the forming candle's updates included.
    #[arg(long)]
    pub kline: Option<String>,
    /// Public trades.
    #[arg(long)]
    pub trades: bool,
    /// Best bid and ask (Bybit spot: its level-1 book, printed as depth events).
    #[arg(long)]
    pub book_ticker: bool,
    /// Order-book updates with the venue's sequence ids; gaps are reported on stderr.
    #[arg(long)]
    pub depth: bool,
    /// Bybit only: linear (USDT perpetuals, the default) or spot.
    #[arg(long)]
    pub category: Option<Category>,
    /// WebSocket scheme, host and port instead of the venue's production ones (a testnet, a
    /// mock), e.g. wss://stream-testnet.bybit.com; the venue's path is kept.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Stop after this many seconds [default: run until Ctrl-C].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub for_seconds: Option<u64>,
}

/// The client configuration `args` ask for.
pub fn config(args: &WatchArgs) -> Result<WsConfig> {
    let Some(venue) = Venue::parse(&args.venue) else {
        let names: Vec<&str> = Venue::ALL.iter().map(|v| v.name()).collect();
        bail!(
            "unknown venue {:?}: expected one of {}",
            args.venue,
            names.join(", ")
        );
    };
    let symbol = Symbol::new(&args.symbol).context("--symbol")?;
    let mut streams = Vec::new();
    if let Some(k) = &args.kline {
        let interval = Interval::parse(k)
            .map_err(anyhow::Error::msg)
            .context("--kline")?;
        streams.push(StreamKind::Klines(interval));
    }
    if args.trades {
        streams.push(StreamKind::Trades);
    }
    if args.book_ticker {
        streams.push(StreamKind::BookTicker);
    }
    if args.depth {
        streams.push(StreamKind::Depth);
    }
    if streams.is_empty() {
        bail!("nothing to watch: give --kline INTERVAL, --trades, --book-ticker or --depth");
    }
    if args.category.is_some() && venue != Venue::Bybit {
        bail!(
            "--category is for bybit only (the venue {} has no categories)",
            venue.name()
        );
    }
    let mut config = WsConfig::new(venue, symbol, streams);
    config.bybit_category = match args.category.unwrap_or(Category::Linear) {
        Category::Linear => keel_adapters::bybit::Category::Linear,
        Category::Spot => keel_adapters::bybit::Category::Spot,
    };
    config.base_url = args
        .base_url
        .as_ref()
        .map(|u| u.trim_end_matches('/').to_string());
    config.retry.jitter_seed ^= u64::from(std::process::id());
    // Refuse what the venue cannot serve before anything is sent.
    ws::plan(&config).map_err(|e| anyhow!("{e}"))?;
    Ok(config)
}

/// `keel venue watch` from parsed arguments.
pub fn run_cli(args: &WatchArgs) -> Result<ExitCode> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let limit = args.for_seconds.map(Duration::from_secs);
    runtime.block_on(watch(config, limit))
}

/// Why the watch ended.
enum Ended {
    Limit,
    Interrupted,
    StdoutClosed,
    GaveUp,
}

async fn watch(config: WsConfig, limit: Option<Duration>) -> Result<ExitCode> {
    let (handle, mut rx) = ws::spawn(config).map_err(|e| anyhow!("{e}"))?;
    let deadline = tokio::time::sleep(limit.unwrap_or(Duration::from_secs(100 * 365 * 86_400)));
    tokio::pin!(deadline);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let stdout = std::io::stdout();
    let ended = loop {
        tokio::select! {
            biased;
            _ = &mut ctrl_c => break Ended::Interrupted,
            _ = &mut deadline => break Ended::Limit,
            event = rx.recv() => match event {
                None => break Ended::GaveUp,
                Some(WsEvent::Market(e)) => {
                    if writeln!(stdout.lock(), "{}", event_json(&e)).is_err() {
                        break Ended::StdoutClosed;
                    }
                }
                Some(WsEvent::Connection(c)) => note(&describe(&c)),
            },
        }
    };
    let stats = handle.stats();
    handle.shutdown().await;
    // Events decoded before the stop are still printed (a shutdown notice is not news).
    rx.close();
    if !matches!(ended, Ended::StdoutClosed) {
        while let Some(event) = rx.recv().await {
            match event {
                WsEvent::Market(e) => {
                    if writeln!(stdout.lock(), "{}", event_json(&e)).is_err() {
                        break;
                    }
                }
                WsEvent::Connection(ConnectionEvent::Disconnected {
                    reason: DisconnectReason::Shutdown,
                    ..
                }) => {}
                WsEvent::Connection(c) => note(&describe(&c)),
            }
        }
    }
    let why = match ended {
        Ended::Limit => "time is up",
        Ended::Interrupted => "interrupted",
        Ended::StdoutClosed => "stdout closed",
        Ended::GaveUp => "every connection gave up",
    };
    note(&format!(
        "stopped ({why}): {} events, {} connections, {} disconnects, {} depth gaps, {} \
         undecodable frames",
        stats.events, stats.connections, stats.disconnects, stats.gaps, stats.undecodable
    ));
    match ended {
        Ended::GaveUp => bail!("the venue could not be reached; see the disconnect reasons above"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// One stderr line; a closed stderr is ignored.
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "watch: {line}");
}

/// The stderr text of a connection event.
pub fn describe(event: &ConnectionEvent) -> String {
    match event {
        ConnectionEvent::Connected { conn, url, attempt } => {
            format!("[{conn}] connected to {url} (attempt {attempt})")
        }
        ConnectionEvent::Subscribed { conn, topics } => {
            format!("[{conn}] subscribed: {}", topics.join(", "))
        }
        ConnectionEvent::Resubscribed { conn, topics } => {
            format!("[{conn}] resubscribed: {}", topics.join(", "))
        }
        ConnectionEvent::SubscribeAck { conn, topic } => {
            format!("[{conn}] the venue acknowledged {topic}")
        }
        ConnectionEvent::SubscribeRejected {
            conn,
            topic,
            reason,
        } => format!("[{conn}] the venue refused {topic}: {reason}"),
        ConnectionEvent::Notice { conn, text } => format!("[{conn}] venue: {text}"),
        ConnectionEvent::Disconnected {
            conn,
            reason,
            reconnect_in,
        } => match reconnect_in {
            Some(d) => format!(
                "[{conn}] disconnected: {reason}; reconnecting in {:.3} s",
                d.as_secs_f64()
            ),
            None => format!("[{conn}] disconnected: {reason}; not reconnecting"),
        },
        ConnectionEvent::Gap(g) => {
            let what = match g.kind {
                GapKind::Missing => "updates missing",
                GapKind::Stale => "an old or repeated update",
            };
            let stream = if g.stream.is_empty() {
                String::new()
            } else {
                format!(" ({})", g.stream)
            };
            format!(
                "[{}] depth gap on {}{stream}: {what} (last id seen {}, this update {}..{}{}); \
                 the local book needs a resync",
                g.conn,
                g.symbol.as_str(),
                g.last_seen_id,
                g.first_update_id,
                g.last_update_id,
                g.prev_last_update_id
                    .map(|p| format!(", previous {p}"))
                    .unwrap_or_default()
            )
        }
        ConnectionEvent::Undecodable {
            conn,
            total,
            error,
            frame,
        } => format!("[{conn}] undecodable frame ({total} so far): {error}: {frame}"),
    }
}
