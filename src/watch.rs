//! `keel venue watch`: a venue's live public streams for one instrument, as keel normalizes
//! them — one JSON object per market event on stdout (the same objects `keel venue decode`
//! prints), connection events (connected, subscribed, acks, disconnects with the reason and the
//! wait before reconnecting, depth gaps, undecodable frames) as text lines on stderr.
//!
//! Runs until Ctrl-C or `--for-seconds`, then closes every socket with a close frame and prints
//! a one-line summary on stderr. A closed stdout (`| head`) ends it quietly. Exit code 1 when
//! the client gave up (too many consecutive failed connections), else 0.
//!
//! `--book` (implies `--depth`) keeps a local order book by the venue's procedure and prints a
//! `book` line (best bid and ask, the book's update id, whether it is crossed) after every
//! update it applies, instead of the raw depth events (`--depth` given too prints both).
//! [`BookKeeper`] decides; the watch loop does the I/O it asks for:
//! - Binance spot and USD-M: updates go through [`SnapshotSync`]; the REST depth snapshot
//!   (`--rest-url`, default production) is fetched once updates are buffered, and again after a
//!   gap, a refused snapshot (`TooOld`) or a failed fetch. The REST client retries by its own
//!   policy; after it gives up the watch waits 1, 2, 4 … 30 s between further fetches and keeps
//!   streaming.
//! - Bybit, OKX, Kraken: the stream opens with a snapshot, so after a gap or a checksum mismatch
//!   the WebSocket client is shut down and started again (back to back restarts wait 1, 2, 4 …
//!   30 s). Kraken's checksum needs the instrument's precision: `--price-precision` and
//!   `--qty-precision`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use keel_adapters::binance;
use keel_adapters::book::{
    BookError, Dialect, Fed, KrakenPrecision, LocalBook, SnapshotOutcome, SnapshotSync,
};
use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::model::{DepthUpdate, RestRequest, Venue, VenueEvent};
use keel_adapters::ws::{
    self, ConnectionEvent, DisconnectReason, GapKind, StreamKind, WsConfig, WsEvent, WsStats,
};
use keel_engine::{Interval, Symbol};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    /// Keep a local order book (implies --depth) and print its best bid and ask after every
    /// update; resync it after a gap (Binance: REST snapshot; others: reconnect).
    #[arg(long)]
    pub book: bool,
    /// Bybit only: linear (USDT perpetuals, the default) or spot.
    #[arg(long)]
    pub category: Option<Category>,
    /// WebSocket scheme, host and port instead of the venue's production ones (a testnet, a
    /// mock), e.g. wss://stream-testnet.bybit.com; the venue's path is kept.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Binance --book: REST scheme, host and port of the depth snapshot instead of the
    /// venue's production ones, e.g. https://testnet.binance.vision.
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Kraken --book: decimals of the instrument's prices (its price_precision), for the
    /// book checksum.
    #[arg(long)]
    pub price_precision: Option<u32>,
    /// Kraken --book: decimals of the instrument's quantities (its qty_precision).
    #[arg(long)]
    pub qty_precision: Option<u32>,
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
    if args.depth || args.book {
        streams.push(StreamKind::Depth);
    }
    if streams.is_empty() {
        bail!(
            "nothing to watch: give --kline INTERVAL, --trades, --book-ticker, --depth or --book"
        );
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

/// How `--book` keeps the book: the venue's rules, and for Binance the REST snapshot source.
#[derive(Clone, Debug)]
pub struct BookPlan {
    pub dialect: Dialect,
    /// Binance: the REST client's configuration for the depth snapshot.
    pub rest: Option<ClientConfig>,
    /// Also print the raw depth events (`--depth` given with `--book`).
    pub print_depth: bool,
}

/// The `--book` plan `args` ask for (`None` without `--book`); `venue` as [`config`] parsed it.
pub fn book_plan(args: &WatchArgs, venue: Venue) -> Result<Option<BookPlan>> {
    let binance = matches!(venue, Venue::BinanceSpot | Venue::BinanceUsdm);
    if args.rest_url.is_some() && !(args.book && binance) {
        bail!("--rest-url is for --book on binance-spot or binance-usdm (their REST snapshot)");
    }
    let precision_given = args.price_precision.is_some() || args.qty_precision.is_some();
    if precision_given && !(args.book && venue == Venue::Kraken) {
        bail!("--price-precision and --qty-precision are for --book on kraken (its checksum)");
    }
    if !args.book {
        return Ok(None);
    }
    let dialect = match venue {
        Venue::BinanceSpot => Dialect::BinanceSpot,
        Venue::BinanceUsdm => Dialect::BinanceUsdm,
        Venue::Bybit => Dialect::Bybit,
        Venue::Okx => Dialect::Okx,
        Venue::Kraken => {
            let (Some(price), Some(qty)) = (args.price_precision, args.qty_precision) else {
                bail!(
                    "--book on kraken needs --price-precision and --qty-precision: the \
                     instrument's price_precision and qty_precision (Kraken's instrument \
                     channel), which its book checksum is computed with"
                );
            };
            let precision = KrakenPrecision::new(price, qty).with_context(|| {
                format!(
                    "--price-precision {price} / --qty-precision {qty}: at most {} decimals",
                    KrakenPrecision::MAX_DECIMALS
                )
            })?;
            Dialect::Kraken(precision)
        }
    };
    let rest = binance.then(|| {
        let mut c = ClientConfig::new(venue);
        if let Some(url) = &args.rest_url {
            c.base_url = url.trim_end_matches('/').to_string();
        }
        c.retry.max_retries = 3;
        c.retry.jitter_seed ^= u64::from(std::process::id());
        c
    });
    Ok(Some(BookPlan {
        dialect,
        rest,
        print_depth: args.depth,
    }))
}

/// `keel venue watch` from parsed arguments.
pub fn run_cli(args: &WatchArgs) -> Result<ExitCode> {
    let config = config(args)?;
    let book = book_plan(args, config.venue)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let limit = args.for_seconds.map(Duration::from_secs);
    runtime.block_on(watch(config, book, limit))
}

/// Why the watch ended.
enum Ended {
    Limit,
    Interrupted,
    StdoutClosed,
    GaveUp,
}

/// The stream's counters summed over every client the watch started (one per book restart).
#[derive(Default)]
struct Totals {
    events: u64,
    connections: u64,
    disconnects: u64,
    gaps: u64,
    undecodable: u64,
}

impl Totals {
    fn add(&mut self, s: WsStats) {
        self.events += s.events;
        self.connections += s.connections;
        self.disconnects += s.disconnects;
        self.gaps += s.gaps;
        self.undecodable += s.undecodable;
    }
}

/// The I/O the book asked for and that is under way.
struct BookIo {
    rest: Option<(Arc<RestClient>, RestRequest)>,
    fetch: Option<JoinHandle<Result<DepthUpdate, String>>>,
    restart_at: Option<tokio::time::Instant>,
}

async fn watch(
    config: WsConfig,
    book: Option<BookPlan>,
    limit: Option<Duration>,
) -> Result<ExitCode> {
    let print_depth = book.as_ref().is_none_or(|b| b.print_depth);
    let mut io = BookIo {
        rest: match book.as_ref().and_then(|b| b.rest.clone()) {
            Some(c) => Some((
                Arc::new(RestClient::new(c).map_err(|e| anyhow!("{e}"))?),
                snapshot_request(config.venue, &config.symbol)?,
            )),
            None => None,
        },
        fetch: None,
        restart_at: None,
    };
    let mut keeper = book.map(|b| BookKeeper::new(config.symbol, b.dialect));
    let (mut handle, mut rx) = ws::spawn(config.clone()).map_err(|e| anyhow!("{e}"))?;
    let mut totals = Totals::default();
    let deadline = tokio::time::sleep(limit.unwrap_or(Duration::from_secs(100 * 365 * 86_400)));
    tokio::pin!(deadline);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let out = Out {
        print_depth,
        stdout: std::io::stdout(),
        closed: std::cell::Cell::new(false),
    };
    let ended = loop {
        let fetching = io.fetch.is_some();
        let restarting = io.restart_at.is_some();
        tokio::select! {
            biased;
            _ = &mut ctrl_c => break Ended::Interrupted,
            _ = &mut deadline => break Ended::Limit,
            fetched = join(&mut io.fetch), if fetching => {
                io.fetch = None;
                let fetched = fetched.unwrap_or_else(|e| Err(format!("the fetch task failed: {e}")));
                if let Some(k) = keeper.as_mut() {
                    out.step(k.on_snapshot(fetched), &mut io);
                }
                if !out.ok() {
                    break Ended::StdoutClosed;
                }
            }
            _ = at(io.restart_at), if restarting => {
                io.restart_at = None;
                totals.add(handle.stats());
                rx.close();
                handle.shutdown().await;
                let printed = drain(&mut rx, &out, None);
                (handle, rx) = ws::spawn(config.clone()).map_err(|e| anyhow!("{e}"))?;
                if let Some(k) = keeper.as_mut() {
                    k.restarted();
                }
                if !printed {
                    break Ended::StdoutClosed;
                }
            }
            event = rx.recv() => match event {
                None => break Ended::GaveUp,
                Some(WsEvent::Market(e)) => {
                    if let Some(step) = out.market(&e, keeper.as_mut()) {
                        out.step(step, &mut io);
                    }
                    if !out.ok() {
                        break Ended::StdoutClosed;
                    }
                }
                Some(WsEvent::Connection(c)) => note(&describe(&c)),
            },
        }
    };
    totals.add(handle.stats());
    handle.shutdown().await;
    if let Some(f) = io.fetch.take() {
        f.abort();
    }
    // Events decoded before the stop are still printed (a shutdown notice is not news).
    rx.close();
    if !matches!(ended, Ended::StdoutClosed) {
        drain(&mut rx, &out, keeper.as_mut());
    }
    let why = match ended {
        Ended::Limit => "time is up",
        Ended::Interrupted => "interrupted",
        Ended::StdoutClosed => "stdout closed",
        Ended::GaveUp => "every connection gave up",
    };
    let book_text = keeper.as_ref().map_or(String::new(), |k| {
        format!(
            ", {} book resyncs, {} book snapshots loaded",
            k.resyncs, k.snapshots
        )
    });
    note(&format!(
        "stopped ({why}): {} events, {} connections, {} disconnects, {} depth gaps, {} \
         undecodable frames{book_text}",
        totals.events, totals.connections, totals.disconnects, totals.gaps, totals.undecodable
    ));
    match ended {
        Ended::GaveUp => bail!("the venue could not be reached; see the disconnect reasons above"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The Binance depth snapshot request (1000 levels).
fn snapshot_request(venue: Venue, symbol: &Symbol) -> Result<RestRequest> {
    let req = match venue {
        Venue::BinanceSpot => binance::spot_depth(symbol, 1000),
        Venue::BinanceUsdm => binance::usdm_depth(symbol, 1000),
        other => bail!("{} has no REST depth snapshot here", other.name()),
    };
    req.map_err(|e| anyhow!("{e}"))
}

/// Waits for the fetch in flight (never ready when there is none).
async fn join<T>(fetch: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match fetch {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `t` (for ever when `None`).
async fn at(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Prints what is left in a closed channel; the shutdown notices are not news. With a
/// `keeper`, depth updates still go to the book (its requests are ignored: the watch is over).
/// False when stdout is closed.
fn drain(rx: &mut mpsc::Receiver<WsEvent>, out: &Out, mut keeper: Option<&mut BookKeeper>) -> bool {
    while let Ok(event) = rx.try_recv() {
        match event {
            WsEvent::Market(e) => {
                let step = match keeper.as_mut() {
                    Some(k) => out.market(&e, Some(&mut **k)),
                    // A restart: the old client's depth is for the book that was dropped.
                    None if matches!(e, VenueEvent::Depth(_)) && !out.print_depth => None,
                    None => out.market(&e, None),
                };
                if let Some(step) = step {
                    out.lines(&step.lines);
                    step.notes.iter().for_each(|n| note(n));
                }
                if !out.ok() {
                    return false;
                }
            }
            WsEvent::Connection(ConnectionEvent::Disconnected {
                reason: DisconnectReason::Shutdown,
                ..
            }) => {}
            WsEvent::Connection(c) => note(&describe(&c)),
        }
    }
    true
}

/// Where events and book lines go.
struct Out {
    print_depth: bool,
    stdout: std::io::Stdout,
    /// A write failed: the reader is gone.
    closed: std::cell::Cell<bool>,
}

impl Out {
    /// Prints a market event (depth only when asked) and feeds depth to the book.
    fn market(&self, e: &VenueEvent, keeper: Option<&mut BookKeeper>) -> Option<Step> {
        let depth = match e {
            VenueEvent::Depth(d) => Some(d),
            _ => None,
        };
        if depth.is_none() || self.print_depth {
            self.lines(&[event_json(e).to_string()]);
        }
        match (keeper, depth) {
            (Some(k), Some(d)) => Some(k.on_update(d.clone())),
            _ => None,
        }
    }

    fn lines(&self, lines: &[String]) {
        let mut lock = self.stdout.lock();
        for l in lines {
            if writeln!(lock, "{l}").is_err() {
                self.closed.set(true);
                return;
            }
        }
    }

    /// Stdout still takes lines.
    fn ok(&self) -> bool {
        !self.closed.get()
    }

    /// Prints `step` and starts the I/O it asks for.
    fn step(&self, step: Step, io: &mut BookIo) {
        self.lines(&step.lines);
        step.notes.iter().for_each(|n| note(n));
        match step.action {
            Some(Action::Fetch { delay }) => {
                if let (Some((client, req)), None) = (&io.rest, &io.fetch) {
                    let (client, req) = (client.clone(), req.clone());
                    io.fetch = Some(tokio::spawn(fetch_snapshot(
                        client,
                        req,
                        step.symbol,
                        delay,
                    )));
                }
            }
            Some(Action::Restart { delay }) => {
                io.restart_at = Some(tokio::time::Instant::now() + delay);
            }
            None => {}
        }
    }
}

/// One REST depth snapshot after `delay`, decoded; the error as text for stderr.
async fn fetch_snapshot(
    client: Arc<RestClient>,
    req: RestRequest,
    symbol: Symbol,
    delay: Duration,
) -> Result<DepthUpdate, String> {
    tokio::time::sleep(delay).await;
    let answer = client.send(&req).await.map_err(|e| e.to_string())?;
    binance::parse_depth_snapshot(symbol, &answer.body)
        .map_err(|e| format!("the depth snapshot does not decode: {e}"))
}

/// The I/O a [`BookKeeper`] asks the watch loop for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch the REST depth snapshot after `delay` (ignored while one is under way).
    Fetch { delay: Duration },
    /// Shut the WebSocket client down and start it again after `delay`, for a stream snapshot.
    Restart { delay: Duration },
}

/// What the book made of one input: stdout lines (JSON), stderr notes, and the I/O it needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub symbol: Symbol,
    pub lines: Vec<String>,
    pub notes: Vec<String>,
    pub action: Option<Action>,
}

/// Consecutive refused or failed snapshots (and back to back restarts) wait 1, 2, 4 … 30 s.
fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 1).min(5)).min(Duration::from_secs(30)),
    }
}

/// Updates buffered while a Binance snapshot is fetched (about 100 s of a 100 ms stream).
const MAX_BUFFERED: usize = 1000;

/// How the book is (re)synced.
enum Mode {
    /// Binance: buffered updates and a REST snapshot.
    Rest {
        sync: SnapshotSync,
        /// A fetch was asked for and its answer has not come.
        fetching: bool,
        /// Snapshots refused or fetches failed since the last one loaded.
        failures: u32,
    },
    /// Bybit, OKX, Kraken: the stream's own snapshot, after a restart when the book broke.
    Stream {
        book: LocalBook,
        /// A restart was asked for; updates until it happens are the old stream's.
        restarting: bool,
        /// Restarts since an update last applied.
        restarts: u32,
    },
}

/// The local book of `keel venue watch --book` and its resync decisions; no I/O, no clock.
pub struct BookKeeper {
    symbol: Symbol,
    mode: Mode,
    /// Times the book broke (a gap, a checksum mismatch, a bad level) and was resynced.
    pub resyncs: u64,
    /// Snapshots loaded (REST or stream).
    pub snapshots: u64,
}

impl BookKeeper {
    pub fn new(symbol: Symbol, dialect: Dialect) -> BookKeeper {
        let book = LocalBook::new(symbol, dialect);
        let mode = match dialect {
            Dialect::BinanceSpot | Dialect::BinanceUsdm => Mode::Rest {
                sync: SnapshotSync::new(book, MAX_BUFFERED),
                fetching: false,
                failures: 0,
            },
            // The depth the client subscribes: levels that leave it get no update.
            Dialect::Bybit => Mode::Stream {
                book: book.with_depth_limit(50),
                restarting: false,
                restarts: 0,
            },
            Dialect::Okx => Mode::Stream {
                book: book.with_depth_limit(400),
                restarting: false,
                restarts: 0,
            },
            Dialect::Kraken(_) => Mode::Stream {
                book: book.with_depth_limit(10),
                restarting: false,
                restarts: 0,
            },
        };
        BookKeeper {
            symbol,
            mode,
            resyncs: 0,
            snapshots: 0,
        }
    }

    fn step(&self) -> Step {
        Step {
            symbol: self.symbol,
            lines: Vec::new(),
            notes: Vec::new(),
            action: None,
        }
    }

    /// One depth update from the stream.
    pub fn on_update(&mut self, update: DepthUpdate) -> Step {
        let mut step = self.step();
        match &mut self.mode {
            Mode::Rest {
                sync,
                fetching,
                failures: _,
            } => {
                let result = sync.on_update(update);
                match result {
                    Ok(Fed::Applied(a)) => step.lines.push(book_line(sync.book(), a.crossed)),
                    Ok(Fed::Dropped) => {}
                    Ok(Fed::Buffered) if *fetching => {}
                    Ok(Fed::Buffered) => {
                        *fetching = true;
                        step.action = Some(Action::Fetch {
                            delay: Duration::ZERO,
                        });
                    }
                    Err(e) if e.needs_resync() => {
                        self.resyncs += 1;
                        step.notes
                            .push(broke(self.symbol, &e, "from a REST snapshot"));
                        if !*fetching {
                            *fetching = true;
                            step.action = Some(Action::Fetch {
                                delay: Duration::ZERO,
                            });
                        }
                    }
                    Err(e) => step.notes.push(format!("book: {e}")),
                }
            }
            Mode::Stream {
                book,
                restarting,
                restarts,
            } => {
                if *restarting {
                    return step;
                }
                match book.apply(&update) {
                    Ok(a) => {
                        if a.snapshot {
                            self.snapshots += 1;
                        } else {
                            *restarts = 0;
                        }
                        step.lines.push(book_line(book, a.crossed));
                    }
                    Err(BookError::Stale { .. } | BookError::NeedSnapshot) => {}
                    Err(e) if e.needs_resync() => {
                        self.resyncs += 1;
                        step.notes.push(broke(
                            self.symbol,
                            &e,
                            "by reconnecting for a fresh snapshot",
                        ));
                        *restarting = true;
                        step.action = Some(Action::Restart {
                            delay: backoff(*restarts),
                        });
                        *restarts += 1;
                    }
                    Err(e) => step.notes.push(format!("book: {e}")),
                }
            }
        }
        step
    }

    /// The WebSocket client was started again: the next snapshot on the stream loads.
    pub fn restarted(&mut self) {
        if let Mode::Stream { restarting, .. } = &mut self.mode {
            *restarting = false;
        }
    }

    /// The answer to an [`Action::Fetch`]: a decoded REST snapshot, or why there is none.
    pub fn on_snapshot(&mut self, fetched: Result<DepthUpdate, String>) -> Step {
        let mut step = self.step();
        let Mode::Rest {
            sync,
            fetching,
            failures,
        } = &mut self.mode
        else {
            return step;
        };
        *fetching = false;
        if sync.is_synced() {
            return step;
        }
        let snapshot = match fetched {
            Ok(s) => s,
            Err(e) => {
                *failures += 1;
                let delay = backoff(*failures);
                step.notes.push(format!(
                    "book: the REST depth snapshot failed: {e}; trying again in {} s",
                    delay.as_secs()
                ));
                *fetching = true;
                step.action = Some(Action::Fetch { delay });
                return step;
            }
        };
        let id = snapshot.last_update_id;
        match sync.on_snapshot(&snapshot) {
            Ok(SnapshotOutcome::Loaded { replayed, dropped }) => {
                *failures = 0;
                self.snapshots += 1;
                step.notes.push(format!(
                    "book synced from REST snapshot lastUpdateId={id} (replayed {replayed}, \
                     dropped {dropped} buffered updates)"
                ));
                step.lines
                    .push(book_line(sync.book(), sync.book().is_crossed()));
                return step;
            }
            Ok(SnapshotOutcome::TooOld {
                first_buffered_id, ..
            }) => step.notes.push(format!(
                "book: REST snapshot lastUpdateId={id} is older than the first buffered update \
                 ({first_buffered_id}); fetching another"
            )),
            Err(e) => step
                .notes
                .push(format!("book: REST snapshot lastUpdateId={id}: {e}")),
        }
        *failures += 1;
        *fetching = true;
        // The first refusal is normal (the snapshot was cut before the buffered update).
        step.action = Some(Action::Fetch {
            delay: backoff(*failures - 1),
        });
        step
    }
}

/// The stderr line for a book that broke.
fn broke(symbol: Symbol, e: &BookError, how: &str) -> String {
    let what = match e {
        BookError::Gap {
            local_id,
            first_update_id,
            last_update_id,
            ..
        } => format!(
            "gap: the book is at id {local_id}, the update covers \
             {first_update_id}..={last_update_id}"
        ),
        BookError::Checksum { expected, computed } => {
            format!("checksum mismatch: the venue says {expected}, the local book gives {computed}")
        }
        other => other.to_string(),
    };
    format!("book {}: {what}; resyncing {how}", symbol.as_str())
}

/// The `book` line: best bid and ask (null on an empty side), the book's id, crossed or not.
fn book_line(book: &LocalBook, crossed: bool) -> String {
    let bid = book.best_bid();
    let ask = book.best_ask();
    let text = |v: Option<keel_engine::fixed::Fixed>| v.map(|x| x.to_string());
    json!({
        "kind": "book",
        "symbol": book.symbol().as_str(),
        "bid": text(bid.map(|l| l.0)),
        "bid_qty": text(bid.map(|l| l.1)),
        "ask": text(ask.map(|l| l.0)),
        "ask_qty": text(ask.map(|l| l.1)),
        "update_id": book.last_update_id(),
        "crossed": crossed,
    })
    .to_string()
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

#[cfg(test)]
mod tests {
    use keel_engine::fixed::Fixed;

    use super::*;

    fn fx(s: &str) -> Fixed {
        Fixed::parse_exact(s).expect("decimal")
    }

    fn update(first: u64, last: u64, snapshot: bool, bid_qty: &str) -> DepthUpdate {
        DepthUpdate {
            symbol: Symbol::new("BTCUSDT").expect("symbol"),
            ts_event_ns: 0,
            snapshot,
            first_update_id: first,
            last_update_id: last,
            prev_last_update_id: None,
            bids: vec![(fx("99"), fx(bid_qty))],
            asks: vec![(fx("101"), fx("1"))],
            checksum: None,
        }
    }

    fn keeper(dialect: Dialect) -> BookKeeper {
        BookKeeper::new(Symbol::new("BTCUSDT").expect("symbol"), dialect)
    }

    const NOW: Option<Action> = Some(Action::Fetch {
        delay: Duration::ZERO,
    });

    #[test]
    fn binance_refetches_a_too_old_snapshot_and_backs_off_after_failures() {
        let mut k = keeper(Dialect::BinanceSpot);
        assert_eq!(k.on_update(update(100, 100, false, "1")).action, NOW);
        // Asked once: more buffered updates do not ask again.
        assert_eq!(k.on_update(update(101, 101, false, "2")).action, None);
        let step = k.on_snapshot(Ok(update(90, 90, true, "5")));
        assert!(step.notes[0].contains("older than the first buffered update (100)"));
        assert_eq!(step.action, NOW);
        let step = k.on_snapshot(Err("HTTP 500".into()));
        assert!(step.notes[0].contains("HTTP 500; trying again in 2 s"));
        assert_eq!(
            step.action,
            Some(Action::Fetch {
                delay: Duration::from_secs(2)
            })
        );
        let step = k.on_snapshot(Ok(update(100, 100, true, "5")));
        assert_eq!(
            step.notes,
            [
                "book synced from REST snapshot lastUpdateId=100 (replayed 1, dropped 1 buffered \
              updates)"
            ]
        );
        let line: serde_json::Value = serde_json::from_str(&step.lines[0]).expect("json");
        assert_eq!(
            (line["bid_qty"].as_str(), line["update_id"].as_u64()),
            (Some("2"), Some(101))
        );
        assert_eq!((k.resyncs, k.snapshots), (0, 1));
    }

    #[test]
    fn stream_books_restart_once_per_break_and_ignore_the_old_stream_meanwhile() {
        let mut k = keeper(Dialect::Bybit);
        assert_eq!(k.on_update(update(7, 7, true, "1")).lines.len(), 1);
        let step = k.on_update(update(9, 9, false, "2"));
        assert!(step.notes[0].contains("gap: the book is at id 7"));
        assert_eq!(
            step.action,
            Some(Action::Restart {
                delay: Duration::ZERO
            })
        );
        // Still the old stream: nothing printed, no second restart.
        assert_eq!(k.on_update(update(10, 10, false, "3")), k.step());
        k.restarted();
        assert_eq!(k.on_update(update(20, 20, true, "4")).lines.len(), 1);
        // A second break before any update applied waits before restarting.
        let step = k.on_update(update(22, 22, false, "5"));
        assert_eq!(
            step.action,
            Some(Action::Restart {
                delay: Duration::from_secs(1)
            })
        );
        assert_eq!((k.resyncs, k.snapshots), (2, 2));
    }
}
