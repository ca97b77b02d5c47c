//! `keel data download`: historical candles from a venue's public REST API into the candle
//! store.
//!
//! Contract:
//! - Pages through `[from, to)` oldest first and appends each page to the store as soon as it
//!   arrives, so an interruption keeps every finished page; a re-run continues after the newest
//!   stored bar of the series (a finished range fetches nothing).
//! - Stores closed bars only: a bar counts as closed when the venue says so (OKX `confirm`,
//!   Bybit's server `time`, Kraken's uncommitted last row) and it ended by the venue's clock
//!   (the response's `Date` header). The bar still forming is never stored.
//! - Reports the gaps in what the venue returned (bars missing between two it sent, before
//!   the first, after the last).
//! - Requests go through [`keel_adapters::client::RestClient`]: the venue's rate budget,
//!   `Retry-After`, bounded retries with backoff. Errors name the venue, the request, the HTTP
//!   status and the venue's text.
//!
//! Paging per venue: Binance pages forward (`startTime`, up to 1000 bars). Bybit and OKX answer
//! newest first, so keel asks for forward windows that hold at most one page (Bybit `start` +
//! `end`; OKX `before` + `after`, using `candles` for the latest bars and `history-candles`
//! before them) and reverses each. Kraken's OHLC serves only the latest 720 bars whatever
//! `since` says, so only recent history can be downloaded from Kraken.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use keel_adapters::client::{ClientConfig, Response, RestClient};
use keel_adapters::model::{DecodeError, RestRequest, Venue, VenueEvent};
use keel_adapters::{binance, bybit, kraken, okx};
use keel_engine::{Candle, Interval, Symbol};
use keel_replay::report::iso8601;
use keel_replay::store::{self, CandleCursor};

use crate::config::parse_time;

const NS_PER_MS: i64 = 1_000_000;
/// Gaps listed one by one in the summary; the rest are counted.
const MAX_LISTED_GAPS: usize = 100;

/// Bybit's product category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Category {
    /// USDT perpetuals and futures.
    Linear,
    Spot,
}

/// The command-line arguments of `keel data download`.
#[derive(Clone, Debug, clap::Args)]
pub struct DownloadArgs {
    /// binance-spot, binance-usdm, bybit, okx or kraken.
    #[arg(long)]
    pub venue: String,
    /// The venue's name of the instrument (BTCUSDT on Binance and Bybit, BTC-USDT or
    /// BTC-USDT-SWAP on OKX, XBTUSD on Kraken); bars are stored under it.
    #[arg(long)]
    pub symbol: String,
    /// Bar interval, e.g. 1m, 5m, 1h, 1d.
    #[arg(long)]
    pub interval: String,
    /// First bar (inclusive): 2024-01-01 or 2024-01-01T12:00:00Z.
    #[arg(long)]
    pub from: String,
    /// End (exclusive) [default: now].
    #[arg(long)]
    pub to: Option<String>,
    /// Candle store directory (created if missing).
    #[arg(long)]
    pub store: PathBuf,
    /// Bybit only: linear (USDT perpetuals, the default) or spot.
    #[arg(long)]
    pub category: Option<Category>,
    /// REST base URL instead of the venue's production one (a mirror, a testnet, a mock).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Deadline of one request, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Retries of one failed request before the download stops.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

/// A validated download.
#[derive(Clone, Debug)]
pub struct Plan {
    pub venue: Venue,
    pub symbol: Symbol,
    pub interval: Interval,
    pub from_ns: i64,
    pub to_ns: i64,
    pub store: PathBuf,
    pub category: Category,
    pub client: ClientConfig,
}

/// Bars the venue did not return: `missing` bars opening from `from_ns` (inclusive) to
/// `to_ns` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub from_ns: i64,
    pub to_ns: i64,
    pub missing: i64,
}

/// What a download did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub added: usize,
    pub already_present: usize,
    /// Answers that were paged through.
    pub pages: u64,
    /// HTTP requests sent (every attempt).
    pub requests: u64,
    pub retries: u64,
    /// Open times of the first and last bar added.
    pub first_added_ns: Option<i64>,
    pub last_added_ns: Option<i64>,
    /// The first [`MAX_LISTED_GAPS`] gaps.
    pub gaps: Vec<Gap>,
    pub gap_count: usize,
    pub missing_bars: i64,
    pub notes: Vec<String>,
    /// Nothing to fetch: the store already held the range.
    pub up_to_date: bool,
}

/// Where a running download is, for a progress line.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub pages: u64,
    pub added: usize,
    /// Bars before this open time are done.
    pub cursor_ns: i64,
}

/// `keel data download` from parsed arguments: runs, prints the summary, returns the exit code.
pub fn run_cli(args: &DownloadArgs) -> Result<ExitCode> {
    let plan = plan(args, now_ns())?;
    let show_progress = std::io::stderr().is_terminal();
    let mut shown = 0usize;
    let mut progress = |p: &Progress| {
        if show_progress {
            let line = format!(
                "\r  {} pages, {} bars, up to {}…",
                p.pages,
                p.added,
                iso8601(p.cursor_ns)
            );
            shown = shown.max(line.len());
            eprint!("{line}");
        }
    };
    let result = download(&plan, &mut progress);
    if show_progress && shown > 0 {
        eprint!("\r{}\r", " ".repeat(shown));
    }
    let summary = result?;
    print!("{}", SummaryText(&plan, &summary));
    Ok(ExitCode::SUCCESS)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Checks the arguments and resolves defaults (`to` defaults to `now_ns`).
pub fn plan(args: &DownloadArgs, now_ns: i64) -> Result<Plan> {
    let Some(venue) = Venue::parse(&args.venue) else {
        let names: Vec<&str> = Venue::ALL.iter().map(|v| v.name()).collect();
        bail!(
            "unknown venue {:?}: expected one of {}",
            args.venue,
            names.join(", ")
        );
    };
    let symbol = Symbol::new(&args.symbol).context("--symbol")?;
    let interval = Interval::parse(&args.interval)
        .map_err(anyhow::Error::msg)
        .context("--interval")?;
    let from_ns = parse_time(&args.from).with_context(|| format!("--from {}", args.from))?;
    let to_ns = match &args.to {
        Some(t) => parse_time(t).with_context(|| format!("--to {t}"))?,
        None => now_ns,
    };
    if from_ns >= to_ns {
        bail!(
            "--from {} is not before --to {} (--to is exclusive)",
            iso8601(from_ns),
            iso8601(to_ns)
        );
    }
    if args.category.is_some() && venue != Venue::Bybit {
        bail!(
            "--category is for bybit only (the venue {} has no categories)",
            venue.name()
        );
    }
    let mut client = ClientConfig::new(venue);
    if let Some(url) = &args.base_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--base-url {url:?} must start with http:// or https://");
        }
        client.base_url = url.trim_end_matches('/').to_string();
    }
    client.timeout = std::time::Duration::from_millis(args.timeout_ms);
    client.retry.max_retries = args.retries;
    client.retry.jitter_seed ^= u64::from(std::process::id());
    let plan = Plan {
        venue,
        symbol,
        interval,
        from_ns,
        to_ns,
        store: args.store.clone(),
        category: args.category.unwrap_or(Category::Linear),
        client,
    };
    // Refuse an interval the venue does not have before anything is sent.
    page_request(&plan, from_ns, None)?;
    Ok(plan)
}

/// One page to ask for.
struct PageRequest {
    request: RestRequest,
    /// Windowed venues: bars opening at or after this are not in the window.
    window_end_ns: Option<i64>,
    /// Rows of a full answer, when the venue has a page size (fewer means the data ended).
    limit: Option<usize>,
}

fn ms(ns: i64) -> i64 {
    ns.div_euclid(NS_PER_MS)
}

/// The request for the page from `cursor_ns`. `venue_now_ns` is the venue's clock when an
/// answer has told it.
fn page_request(plan: &Plan, cursor_ns: i64, venue_now_ns: Option<i64>) -> Result<PageRequest> {
    let iv = plan.interval.ns;
    let window = |limit: i64| {
        cursor_ns
            .saturating_add(iv.saturating_mul(limit))
            .min(plan.to_ns)
    };
    let interval_name = plan.interval.name();
    let (request, window_end_ns, limit) = match plan.venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => {
            let build = if plan.venue == Venue::BinanceSpot {
                binance::spot_klines
            } else {
                binance::usdm_klines
            };
            let end_ms = ms(plan.to_ns - 1);
            let req = build(
                &plan.symbol,
                &interval_name,
                Some(ms(cursor_ns)),
                Some(end_ms),
                Some(1000),
            )
            .map_err(|e| anyhow!("{}: {e}", plan.venue.name()))?;
            (req, None, Some(1000))
        }
        Venue::Bybit => {
            let category = match plan.category {
                Category::Linear => bybit::Category::Linear,
                Category::Spot => bybit::Category::Spot,
            };
            let end = window(1000);
            let req = bybit::klines(
                category,
                &plan.symbol,
                plan.interval,
                Some(ms(cursor_ns)),
                Some(ms(end) - 1),
                1000,
            )
            .map_err(|e| anyhow!("bybit: {e}"))?;
            (req, Some(end), Some(1000))
        }
        Venue::Okx => {
            // `candles` holds the latest 1,440 bars: use it (300 a page, a budget twice as
            // large) well inside them by the venue's clock, else `history-candles`, which
            // serves recent bars too.
            let recent = venue_now_ns
                .is_some_and(|now| cursor_ns >= now.saturating_sub(iv.saturating_mul(1000)));
            let limit = if recent { 300 } else { 100 };
            let end = window(limit);
            let page = okx::CandlePage {
                after_ms: Some(ms(end)),
                before_ms: Some(ms(cursor_ns) - 1),
                limit: Some(limit as u32),
            };
            let build = if recent {
                okx::candles
            } else {
                okx::history_candles
            };
            let req = build(plan.symbol.as_str(), plan.interval, page)
                .map_err(|e| anyhow!("okx: {e}"))?;
            (req, Some(end), Some(limit as usize))
        }
        Venue::Kraken => {
            // `since` is exclusive: one second before the cursor asks for the cursor's bar on.
            // One answer is the venue's whole window, so there is no page size to compare with.
            let since = cursor_ns.div_euclid(1_000_000_000) - 1;
            let req = kraken::ohlc(plan.symbol.as_str(), plan.interval, Some(since))
                .map_err(|e| anyhow!("kraken: {e}"))?;
            (req, None, None)
        }
    };
    Ok(PageRequest {
        request,
        window_end_ns,
        limit,
    })
}

/// The rows of an answer as (bar, the venue calls it closed).
fn parse_page(plan: &Plan, body: &str) -> Result<Vec<(Candle, bool)>, DecodeError> {
    let events = match plan.venue {
        // Binance flags the last row open whatever the range; closure is decided by time.
        Venue::BinanceSpot | Venue::BinanceUsdm => binance::parse_klines(plan.symbol, body)?
            .into_iter()
            .map(|e| match e {
                VenueEvent::Candle { candle, .. } => VenueEvent::Candle {
                    candle,
                    closed: true,
                },
                other => other,
            })
            .collect(),
        Venue::Bybit => bybit::parse_klines(body, plan.interval)?,
        Venue::Okx => okx::parse_candles(body, plan.symbol.as_str(), plan.interval)?,
        Venue::Kraken => kraken::parse_ohlc(body, plan.interval)?,
    };
    Ok(events
        .into_iter()
        .filter_map(|e| match e {
            VenueEvent::Candle { mut candle, closed } => {
                // Kraken names the pair by its own key (XXBTZUSD); store under --symbol.
                candle.symbol = plan.symbol;
                Some((candle, closed))
            }
            _ => None,
        })
        .collect())
}

/// The newest and oldest stored open times of the series, if it has any.
fn stored_range(plan: &Plan) -> Result<Option<(i64, i64)>> {
    let dir = store::series_dir(&plan.store, plan.symbol, plan.interval);
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut cursor = CandleCursor::open(&plan.store, plan.symbol, plan.interval, None, None)?;
    let mut range = None;
    while let Some(c) = cursor.next_candle()? {
        let first = range.map_or(c.open_time_ns, |(f, _)| f);
        range = Some((first, c.open_time_ns));
    }
    Ok(range)
}

/// The download loop's state.
struct Run<'a> {
    plan: &'a Plan,
    summary: Summary,
    /// Bars before this are stored (or were skipped as not served).
    cursor_ns: i64,
    /// The open time the next bar should have; a later one means a gap.
    expected_ns: i64,
    /// The venue clock minus ours, from the last `Date` header, in ns; `None` before one.
    clock_offset_ns: Option<i64>,
}

/// What one page told the loop.
enum Next {
    /// More to ask for.
    Continue,
    /// The range is done, or the venue has nothing newer.
    Done,
}

/// Runs `plan`: pages, stores, reports. Errors after some pages have been stored say how far
/// it got; running the same download again resumes there.
pub fn download(plan: &Plan, progress: &mut dyn FnMut(&Progress)) -> Result<Summary> {
    let stored = stored_range(plan)?;
    let cursor_ns = match stored {
        Some((_, newest)) => plan.from_ns.max(newest.saturating_add(plan.interval.ns)),
        None => plan.from_ns,
    };
    let mut run = Run {
        plan,
        summary: Summary::default(),
        cursor_ns,
        expected_ns: cursor_ns,
        clock_offset_ns: None,
    };
    if let Some((oldest, newest)) = stored {
        if oldest > plan.from_ns {
            run.summary.notes.push(format!(
                "the stored series begins at {}, after --from: the store only appends, so \
                 earlier bars (if the venue has them) need a fresh store",
                iso8601(oldest)
            ));
        }
        if newest.saturating_add(plan.interval.ns) < plan.from_ns {
            run.summary.notes.push(format!(
                "the store's newest bar opens at {}, before --from: the bars between stay \
                 missing in the store",
                iso8601(newest)
            ));
        }
    }
    if cursor_ns >= plan.to_ns {
        run.summary.up_to_date = true;
        return Ok(run.summary);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let client = RestClient::new(plan.client.clone())?;
    let outcome = runtime.block_on(run.pages(&client, progress));
    let stats = client.stats();
    run.summary.requests = stats.requests;
    run.summary.retries = stats.retries;
    match outcome {
        Ok(()) => Ok(run.summary),
        Err(e) => Err(e.context(run.interrupted())),
    }
}

impl Run<'_> {
    /// The venue's clock by the last `Date` header, else ours.
    fn venue_now_ns(&self) -> i64 {
        now_ns().saturating_add(self.clock_offset_ns.unwrap_or(0))
    }

    async fn pages(
        &mut self,
        client: &RestClient,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<()> {
        while self.cursor_ns < self.plan.to_ns {
            let venue_now = self.clock_offset_ns.map(|_| self.venue_now_ns());
            let page = page_request(self.plan, self.cursor_ns, venue_now)?;
            let response = client.send(&page.request).await?;
            self.summary.pages += 1;
            let next = self.take_page(&page, &response)?;
            progress(&Progress {
                pages: self.summary.pages,
                added: self.summary.added,
                cursor_ns: self.cursor_ns,
            });
            if let Next::Done = next {
                break;
            }
        }
        self.finish();
        Ok(())
    }

    /// Stores the closed bars of one answer and decides whether to ask for more.
    fn take_page(&mut self, page: &PageRequest, response: &Response) -> Result<Next> {
        let plan = self.plan;
        let what = || {
            format!(
                "{} {}: HTTP {}",
                plan.venue.name(),
                keel_adapters::client::describe(&page.request),
                response.status
            )
        };
        let rows = parse_page(plan, &response.body).with_context(what)?;
        let served_rows = rows.len();
        let venue_now_ns = match response.server_time_ms {
            Some(t) => {
                let t_ns = t.saturating_mul(NS_PER_MS);
                self.clock_offset_ns = Some(t_ns - now_ns());
                t_ns
            }
            None => now_ns(),
        };
        let window_end = page.window_end_ns.unwrap_or(plan.to_ns).min(plan.to_ns);
        let mut bars: Vec<(Candle, bool)> = rows
            .into_iter()
            .filter(|(c, _)| c.open_time_ns >= self.cursor_ns && c.open_time_ns < window_end)
            .collect();
        bars.sort_by_key(|(c, _)| c.open_time_ns);
        bars.dedup_by_key(|(c, _)| c.open_time_ns);
        // Stored: the prefix the venue calls closed and that ended by the venue's clock. A bar
        // that has not ended is the forming one: nothing newer exists. (A bar that ended but is
        // not confirmed yet, such as Kraken's uncommitted last row, is asked for again.)
        let ended = |c: &Candle| c.close_time_ns() <= venue_now_ns;
        let closed = bars
            .iter()
            .take_while(|(c, closed)| *closed && ended(c))
            .count();
        let reached_forming_bar = bars.iter().any(|(c, _)| !ended(c));
        let candles: Vec<Candle> = bars[..closed].iter().map(|(c, _)| *c).collect();
        for c in &candles {
            check_bar(plan, c).with_context(what)?;
        }
        if let (Some(first), Some(last)) = (candles.first(), candles.last()) {
            self.note_gaps(&candles);
            let appended =
                store::append(&plan.store, plan.symbol, plan.interval, &candles, iso8601)?;
            self.summary.added += appended.added;
            self.summary.already_present += appended.already_present;
            self.summary
                .first_added_ns
                .get_or_insert(first.open_time_ns);
            self.summary.last_added_ns = Some(last.open_time_ns);
            self.cursor_ns = last.open_time_ns + plan.interval.ns;
            self.expected_ns = self.cursor_ns;
        }
        if reached_forming_bar {
            return Ok(Next::Done);
        }
        match page.window_end_ns {
            // An empty window of a windowed venue: move past it while it lies in the past; the
            // bars it lacked are a gap once later ones come.
            Some(end) if bars.is_empty() => {
                if end <= venue_now_ns.saturating_sub(plan.interval.ns) && end < plan.to_ns {
                    self.cursor_ns = end;
                    Ok(Next::Continue)
                } else {
                    Ok(Next::Done)
                }
            }
            // Bars the venue does not call closed yet: stop; a later run gets them.
            Some(_) if candles.is_empty() => Ok(Next::Done),
            Some(_) => Ok(Next::Continue),
            // Forward-paging venues: an empty page, or a short one, is the end of the data.
            None if candles.is_empty() || page.limit.is_some_and(|l| served_rows < l) => {
                Ok(Next::Done)
            }
            None => Ok(Next::Continue),
        }
    }

    fn note_gaps(&mut self, candles: &[Candle]) {
        let iv = self.plan.interval.ns;
        let first_of_run = self.summary.first_added_ns.is_none();
        let mut expected = self.expected_ns;
        for (i, c) in candles.iter().enumerate() {
            let missing = (c.open_time_ns - expected) / iv;
            if missing > 0 {
                self.record_gap(Gap {
                    from_ns: expected,
                    to_ns: c.open_time_ns,
                    missing,
                });
                if first_of_run && i == 0 && self.plan.venue == Venue::Kraken {
                    self.summary.notes.push(format!(
                        "Kraken's OHLC serves only its latest 720 bars, so only recent \
                         history can be downloaded from it: the oldest it had opens at {}",
                        iso8601(c.open_time_ns)
                    ));
                }
            }
            expected = c.open_time_ns + iv;
        }
    }

    fn record_gap(&mut self, gap: Gap) {
        self.summary.gap_count += 1;
        self.summary.missing_bars += gap.missing;
        if self.summary.gaps.len() < MAX_LISTED_GAPS {
            self.summary.gaps.push(gap);
        }
    }

    /// The tail: bars that should exist by now (and before `to`) but were not served.
    fn finish(&mut self) {
        let iv = self.plan.interval.ns;
        let expected = self.expected_ns;
        // Grid bars from `expected` that open before `to` and have ended by the venue's clock.
        let before_to = (self.plan.to_ns - expected + iv - 1).div_euclid(iv);
        let ended = (self.venue_now_ns() - iv - expected).div_euclid(iv) + 1;
        let missing = before_to.min(ended);
        if missing > 0 {
            self.record_gap(Gap {
                from_ns: expected,
                to_ns: expected + missing * iv,
                missing,
            });
        }
    }

    fn interrupted(&self) -> String {
        let plan = self.plan;
        let series = format!(
            "{} {} {}",
            plan.venue.name(),
            plan.symbol,
            plan.interval.name()
        );
        match self.summary.last_added_ns {
            Some(last) => format!(
                "download of {series} stopped after {} pages ({} bars added and kept, the newest \
                 opening {}); run the same command again to resume",
                self.summary.pages,
                self.summary.added,
                iso8601(last)
            ),
            None => format!("download of {series} failed, no bars added"),
        }
    }
}

fn check_bar(plan: &Plan, c: &Candle) -> Result<()> {
    if c.interval_ns != plan.interval.ns {
        bail!(
            "the bar at {} spans {} s, not the {} asked for",
            iso8601(c.open_time_ns),
            c.interval_ns / 1_000_000_000,
            plan.interval.name()
        );
    }
    c.check()
        .map_err(|e| anyhow!("the bar at {} is invalid: {e}", iso8601(c.open_time_ns)))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary printed at the end.
pub struct SummaryText<'a>(pub &'a Plan, pub &'a Summary);

impl fmt::Display for SummaryText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (plan, s) = (self.0, self.1);
        let dir = store::series_dir(&plan.store, plan.symbol, plan.interval);
        let series = format!(
            "{} {} {}",
            plan.venue.name(),
            plan.symbol,
            plan.interval.name()
        );
        if s.up_to_date {
            writeln!(
                f,
                "{series}: up to date, nothing fetched: {} already holds the range to {}",
                dir.display(),
                iso8601(plan.to_ns)
            )?;
        } else {
            writeln!(
                f,
                "{series}: {} bars added, {} already present, {} ({}, {}), into {}",
                s.added,
                s.already_present,
                plural(s.pages, "page", "pages"),
                plural(s.requests, "request", "requests"),
                plural(s.retries, "retry", "retries"),
                dir.display()
            )?;
            if let (Some(first), Some(last)) = (s.first_added_ns, s.last_added_ns) {
                writeln!(f, "  range {} → {}", iso8601(first), iso8601(last))?;
            }
        }
        if s.gap_count > 0 {
            writeln!(
                f,
                "  {} in what the venue returned ({} bars missing):",
                plural(s.gap_count as u64, "gap", "gaps"),
                s.missing_bars
            )?;
            for g in &s.gaps {
                writeln!(
                    f,
                    "    {} bars from {} to {}",
                    g.missing,
                    iso8601(g.from_ns),
                    iso8601(g.to_ns)
                )?;
            }
            if s.gap_count > s.gaps.len() {
                writeln!(f, "    … and {} more", s.gap_count - s.gaps.len())?;
            }
        }
        for note in &s.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}

/// Pages of closed bars opening in `[from_ns, to_ns)` fetched with `client` — for a live
/// session filling a hole its WebSocket stream left (a reconnect, a restart). At most
/// `max_bars`; bars the venue does not have are simply absent (the caller reports them).
#[allow(clippy::too_many_arguments)] // one flat call site; a struct would only rename them
pub async fn fetch_closed(
    client: &keel_adapters::client::RestClient,
    venue: Venue,
    symbol: Symbol,
    interval: Interval,
    category: Category,
    from_ns: i64,
    to_ns: i64,
    max_bars: usize,
) -> Result<Vec<Candle>> {
    let plan = Plan {
        venue,
        symbol,
        interval,
        from_ns,
        to_ns,
        store: PathBuf::new(),
        category,
        client: client.config().clone(),
    };
    let mut out: Vec<Candle> = Vec::new();
    let mut cursor = from_ns;
    // Each page moves the cursor past its last bar, so the loop ends; the bound is a guard.
    for _ in 0..(max_bars / 100 + 10) {
        if cursor >= to_ns || out.len() >= max_bars {
            break;
        }
        let page = page_request(&plan, cursor, None)?;
        let response = client
            .send(&page.request)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let rows = parse_page(&plan, &response.body)
            .map_err(|e| anyhow!("{}: {e}", keel_adapters::client::describe(&page.request)))?;
        let before = out.len();
        for (candle, closed) in rows {
            if closed
                && candle.open_time_ns >= cursor
                && candle.open_time_ns < to_ns
                && out.len() < max_bars
            {
                cursor = candle.open_time_ns + interval.ns;
                out.push(candle);
            }
        }
        if out.len() == before {
            break;
        }
    }
    Ok(out)
}
