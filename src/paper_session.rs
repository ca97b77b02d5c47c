//! `keel paper`: a paper-trading session — live candles from a venue's public WebSocket,
//! orders filled by the simulated venue, everything journaled — run for as long as the user
//! leaves it.
//!
//! Threads (design.md): a tokio runtime does all I/O (the venue WebSocket clients, the health
//! monitor, timers, signals, the metrics endpoint, Telegram); the calling thread is the engine
//! thread, the journal's only writer, which owns the core and the simulated venue through a
//! `PaperEngine` (the same engine loop and the same timeline as a backtest). Inputs reach it
//! through one bounded crossbeam channel; a full channel raises a health alarm (metric, stderr,
//! alert) and the sender waits — nothing is ever dropped.
//!
//! - Candles: only closed candles become inputs, each once (a venue resends the last closed
//!   candle after a reconnect). A candle that skips ahead of the previous one is reported as
//!   a gap (stderr, metric, alert): a paper session does not backfill.
//! - Timers: a heartbeat every `heartbeat_secs` and the daily report at `daily_report_utc`
//!   are journaled inputs like any other.
//! - Failsafe: a symbol without market data for `stale_after_secs`, or the connection down for
//!   `disconnected_after_secs`, journals the configured command (flatten: `KillSwitch`,
//!   cancel: `CancelAll`, halt: `Halt`), alerts, and refuses entries until the data is healthy
//!   again, when a `Resume` is journaled.
//! - Stop (SIGINT, SIGTERM, `--for-seconds`): the `on_stop` command if any, a checkpoint and a
//!   snapshot, the journal synced. A restart resumes the journal (`PaperEngine::open`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use keel_adapters::model::VenueEvent;
use keel_adapters::ws::{self, ConnectionEvent, StreamKind, WsConfig, WsEvent};
use keel_engine::event::{Command, Decision, Event, Mode, SessionStart, Timer, TimerKind};
use keel_engine::{Candle, Core, Symbol};
use keel_journal::{Durability, Options};
use keel_replay::paper::PaperEngine;

use crate::alerts::{self, Alert, Alerter, BotToken, TelegramConfig};
use crate::config::{SessionSpec, load_session};
use crate::metrics::Metrics;
use crate::session_config::{Action, Runtime};

/// Inputs waiting for the engine thread.
const CHANNEL_CAPACITY: usize = 4096;

/// What the I/O side hands the engine thread.
#[derive(Debug)]
pub(crate) enum Msg {
    Candle {
        recv_ns: u64,
        candle: Candle,
    },
    Command {
        recv_ns: u64,
        command: Command,
    },
    Timer {
        recv_ns: u64,
        kind: TimerKind,
    },
    Stop {
        why: String,
    },
    /// Live: one venue answer (an order update, or the events of one execution).
    Venue {
        recv_ns: u64,
        events: Vec<Event>,
    },
    /// Live: a reconciliation's account state, with what the executor did on the way.
    Account {
        recv_ns: u64,
        state: keel_engine::event::AccountState,
        notes: Vec<String>,
    },
    /// Live: the I/O side asks for a reconciliation.
    Reconcile {
        why: String,
    },
    /// Live: the executor has handled everything sent to it before the flush request.
    Flushed,
    /// The failsafe tripped: its command (see `Failsafe`).
    FailsafeTripped {
        recv_ns: u64,
        command: Command,
    },
    /// The failsafe cleared: entries resume unless something else halted them meanwhile.
    FailsafeCleared {
        recv_ns: u64,
    },
}

/// What the engine thread remembers of a failsafe trip, so clearing it resumes entries only
/// if the failsafe was the one to stop them: a kill switch, a daily-loss halt or a
/// reconciliation's halt stays until an operator resumes.
#[derive(Default)]
pub(crate) struct Failsafe {
    /// (the core was halted before the trip, halts seen once the trip was applied).
    tripped: Option<(bool, u64)>,
}

impl Failsafe {
    pub(crate) fn trip(&mut self, halted_before: bool, halts: u64) {
        if self.tripped.is_none() {
            self.tripped = Some((halted_before, halts));
        }
    }

    /// Whether clearing journals `Resume`.
    pub(crate) fn clear(&mut self, halts: u64, mode: &str) -> bool {
        match self.tripped.take() {
            Some((false, at)) if at == halts => true,
            Some(_) => {
                eprintln!(
                    "{mode}: failsafe cleared, but entries stay halted: something else halted \
                     them too (resume with SIGUSR2)"
                );
                false
            }
            None => false,
        }
    }
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The command a failsafe or stop action journals.
pub(crate) fn command_for(action: Action) -> Option<Command> {
    match action {
        Action::Keep => None,
        Action::Halt => Some(Command::Halt),
        Action::Cancel => Some(Command::CancelAll),
        Action::Flatten => Some(Command::KillSwitch),
    }
}

/// The I/O side's way into the engine thread.
#[derive(Clone)]
pub(crate) struct Inbox {
    pub(crate) tx: Sender<Msg>,
    /// "paper" or "live": the prefix of what the session prints.
    pub(crate) mode: &'static str,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) alerter: Alerter,
    pub(crate) alarmed: Arc<AtomicBool>,
}

impl Inbox {
    /// Never drops: a full channel is reported, then waited on.
    pub(crate) fn send(&self, msg: Msg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(msg)) => {
                self.metrics.inc_venue_error("engine", "input_channel_full");
                if !self.alarmed.swap(true, Ordering::Relaxed) {
                    let text = format!(
                        "the engine thread is {CHANNEL_CAPACITY} inputs behind; inputs wait \
                         (none is dropped)"
                    );
                    eprintln!("{}: health alarm: {text}", self.mode);
                    self.alerter.send(Alert::Error {
                        context: "engine".into(),
                        message: text,
                    });
                }
                let tx = self.tx.clone();
                // Blocking is allowed on a multi-thread runtime worker inside block_in_place.
                tokio::task::block_in_place(move || {
                    let _ = tx.send(msg);
                });
            }
        }
        self.metrics.set_input_queue_depth(self.tx.len());
    }
}

/// What a paper or live session checks and builds before its journal is touched: anything
/// that can be refused is refused here.
pub(crate) struct Prepared {
    pub(crate) token: Option<BotToken>,
    pub(crate) sink: Option<crate::pgsink::SessionSinkConfig>,
    pub(crate) listener: std::net::TcpListener,
    pub(crate) runtime: tokio::runtime::Runtime,
}

pub(crate) fn prepare(config: &Path, session: &SessionSpec) -> Result<Prepared> {
    let token = match &session.runtime.alerts {
        Some(a) => Some(
            BotToken::from_env(&a.token_env)
                .map_err(|e| anyhow!("{}: [alerts] {e}", config.display()))?,
        ),
        None => None,
    };
    let sink = match &session.runtime.postgres {
        Some(p) => {
            let mut cfg = crate::pgsink::SessionSinkConfig::new(p.url.clone(), p.session.clone());
            cfg.password = std::env::var(&p.password_env).ok();
            cfg.candles_table = p.candles_table.clone();
            cfg.fills_table = p.fills_table.clone();
            cfg.validate()
                .map_err(|e| anyhow!("{}: [postgres] {e}", config.display()))?;
            Some(cfg)
        }
        None => None,
    };
    let listener = crate::metrics::bind(&session.runtime.metrics_listen.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("keel-io")
        .build()
        .context("cannot start the I/O runtime")?;
    Ok(Prepared {
        token,
        sink,
        listener,
        runtime,
    })
}

/// A session's metrics and alerter, and the names they carry.
pub(crate) struct Observers {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) strategy: String,
    pub(crate) label: String,
    pub(crate) alerter: Alerter,
    pub(crate) alert_task: Option<alerts::AlertTask>,
}

pub(crate) fn observers(
    mode: &'static str,
    spec: &keel_replay::backtest::BacktestSpec,
    rt: &Runtime,
    token: Option<BotToken>,
    runtime: &tokio::runtime::Runtime,
) -> Observers {
    let metrics = Arc::new(Metrics::new());
    let strategy = spec.core.strategy.name().to_string();
    metrics.set_session_info(mode, rt.venue.name(), &strategy);
    let label = format!(
        "keel {mode} {} {}",
        spec.symbols
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
        strategy
    );
    let (alerter, alert_task) = match (&rt.alerts, token) {
        (Some(a), Some(token)) => {
            let mut cfg = TelegramConfig::new(a.chat_id.clone(), token, label.clone());
            cfg.base_url = a.base_url.clone();
            cfg.min_interval = a.min_interval;
            let (alerter, task) = alerts::spawn(cfg, runtime.handle());
            (alerter, Some(task))
        }
        _ => (Alerter::disabled(), None),
    };
    Observers {
        metrics,
        strategy,
        label,
        alerter,
        alert_task,
    }
}

/// The PostgreSQL sink of a session, when it has one.
pub(crate) fn spawn_sink(
    sink: Option<crate::pgsink::SessionSinkConfig>,
    runtime: &tokio::runtime::Runtime,
) -> (
    Option<crate::pgsink::SessionSink>,
    Option<crate::pgsink::SessionSinkTask>,
) {
    match sink {
        Some(cfg) => {
            let (sink, task) = crate::pgsink::spawn_session_sink(cfg, runtime.handle());
            (Some(sink), Some(task))
        }
        None => (None, None),
    }
}

/// The end of a session's life: the PostgreSQL sink flushed (and its figures printed), the
/// stop alert delivered.
pub(crate) fn finish(
    mode: &str,
    runtime: &tokio::runtime::Runtime,
    sink_task: Option<crate::pgsink::SessionSinkTask>,
    alerter: &Alerter,
    alert_task: Option<alerts::AlertTask>,
    stop_text: String,
) {
    if let Some(task) = sink_task {
        let stats = runtime.block_on(task.shutdown(Duration::from_secs(10)));
        eprintln!(
            "{mode}: postgres: {} candles and {} fills written, {} dropped, {} rejected, {} errors{}",
            stats.candles_written,
            stats.fills_written,
            stats.dropped,
            stats.rejected,
            stats.errors,
            stats
                .last_error
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        );
    }
    alerter.send(Alert::Shutdown { text: stop_text });
    if let Some(task) = alert_task {
        runtime.block_on(task.shutdown(Duration::from_secs(5)));
    }
}

/// `keel paper --config FILE`.
pub fn run_cli(config: &Path, for_seconds: Option<u64>) -> Result<ExitCode> {
    let session = load_session(config)?;
    let prepared = prepare(config, &session)?;
    run(session, prepared, for_seconds)
}

fn run(session: SessionSpec, prepared: Prepared, for_seconds: Option<u64>) -> Result<ExitCode> {
    let Prepared {
        token,
        sink,
        listener,
        runtime,
    } = prepared;
    let runtime = &runtime;
    let SessionSpec { spec, runtime: rt } = session;
    let Observers {
        metrics,
        strategy,
        label,
        alerter,
        alert_task,
    } = observers("paper", &spec, &rt, token, runtime);

    // Recovery first: the journal decides where the session stands before any data flows.
    let start = SessionStart {
        mode: Mode::Paper,
        config: spec.core.clone(),
        config_text: spec.config_text.clone(),
    };
    let options = Options {
        durability: Durability::IntervalMs(200),
        ..Options::default()
    };
    let (mut paper, recovery) =
        PaperEngine::open(&rt.journal, start, spec.sim.clone(), options, now_ns())
            .with_context(|| format!("session journal {}", rt.journal.display()))?;
    let described = recovery.describe();
    eprintln!("paper: journal {}: {described}", rt.journal.display());
    alerter.send(Alert::Startup {
        text: format!("paper session started; {described}"),
    });
    let (sink, sink_task) = spawn_sink(sink, runtime);
    let mut monitor = Monitor::new(
        metrics.clone(),
        alerter.clone(),
        &rt,
        &strategy,
        sink,
        "paper",
    );
    monitor.refresh(paper.core(), paper.venue().open_orders());
    if recovery.resumed && rt.flatten_on_restart {
        eprintln!("paper: flatten_on_restart: flattening before trading resumes");
        paper.input(now_ns(), Event::Command(Command::KillSwitch), &mut |s| {
            monitor.step(s.seq, s.event, s.decisions)
        })?;
        paper.input(now_ns(), Event::Command(Command::Resume), &mut |s| {
            monitor.step(s.seq, s.event, s.decisions)
        })?;
    }

    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
    let inbox = Inbox {
        tx,
        mode: "paper",
        metrics: metrics.clone(),
        alerter: alerter.clone(),
        alarmed: Arc::new(AtomicBool::new(false)),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let io = runtime.block_on(start_io(
        &spec.symbols,
        &recovery.last_candle_open,
        &rt,
        spec.interval,
        inbox.clone(),
        metrics.clone(),
        alerter.clone(),
        listener,
        stop_rx,
        for_seconds,
    ))?;
    eprintln!(
        "paper: trading {} on {} ({}); metrics on http://{}/metrics",
        label,
        rt.venue.name(),
        rt.ws_url.as_deref().unwrap_or("production endpoints"),
        rt.metrics_listen
    );

    let outcome = engine_thread(&mut paper, &rx, &rt, &mut monitor);
    // Whatever the outcome, the journal ends synced with a snapshot when it can.
    let _ = stop_tx.send(true);
    let stop_text = match &outcome {
        Ok(why) => format!("paper session stopped ({why})"),
        Err(e) => format!("paper session failed: {e:#}"),
    };
    eprintln!("paper: {stop_text}");
    runtime.block_on(async {
        for h in io.ws {
            h.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), io.metrics).await;
    });
    finish("paper", runtime, sink_task, &alerter, alert_task, stop_text);
    outcome.map(|_| ExitCode::SUCCESS)
}

pub(crate) struct Io {
    pub(crate) ws: Vec<ws::WsHandle>,
    pub(crate) metrics: tokio::task::JoinHandle<()>,
    pub(crate) health: Arc<std::sync::Mutex<Health>>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_io(
    symbols: &[Symbol],
    last_candle_open: &BTreeMap<Symbol, i64>,
    rt: &Runtime,
    interval: keel_engine::Interval,
    inbox: Inbox,
    metrics: Arc<Metrics>,
    alerter: Alerter,
    listener: std::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
    for_seconds: Option<u64>,
) -> Result<Io> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .context("cannot hand the metrics listener to the runtime")?;
    let mut stop_metrics = stop.clone();
    let metrics_task = tokio::spawn(crate::metrics::serve(
        listener,
        metrics.clone(),
        async move {
            let _ = stop_metrics.wait_for(|s| *s).await;
        },
    ));
    let health = Arc::new(std::sync::Mutex::new(Health::new(
        symbols,
        inbox.mode == "live",
    )));
    let interval_ns = interval.ns;
    // Public REST, for candles the stream missed.
    let mut rest = keel_adapters::client::ClientConfig::new(rt.venue);
    if let Some(url) = &rt.rest_url {
        rest.base_url = url.clone();
    }
    let rest = Arc::new(
        keel_adapters::client::RestClient::new(rest).map_err(|e| anyhow!("REST client: {e}"))?,
    );
    let backfill = Backfill {
        client: rest,
        venue: rt.venue,
        interval,
        category: match rt.bybit_category {
            keel_adapters::bybit::Category::Spot => crate::download::Category::Spot,
            _ => crate::download::Category::Linear,
        },
        max: rt.backfill_max,
    };
    let mut handles = Vec::new();
    for &symbol in symbols {
        let mut cfg = WsConfig::new(rt.venue, symbol, vec![StreamKind::Klines(interval)]);
        cfg.base_url = rt.ws_url.clone();
        cfg.bybit_category = rt.bybit_category;
        cfg.retry.jitter_seed ^= u64::from(std::process::id());
        // A paper session never gives up on its venue: the failsafe covers the outage.
        cfg.retry.max_retries = u32::MAX;
        let (handle, events) = ws::spawn(cfg).map_err(|e| anyhow!("{e}"))?;
        handles.push(handle);
        tokio::spawn(pump(
            symbol,
            last_candle_open.get(&symbol).copied(),
            backfill.clone(),
            interval_ns,
            events,
            inbox.clone(),
            health.clone(),
            metrics.clone(),
            alerter.clone(),
            rt.venue.name(),
        ));
    }
    tokio::spawn(watch_health(
        health.clone(),
        rt.clone(),
        inbox.clone(),
        metrics,
        alerter,
        stop.clone(),
    ));
    tokio::spawn(timers(rt.clone(), inbox.clone(), stop.clone()));
    tokio::spawn(signals(inbox, for_seconds, stop));
    Ok(Io {
        ws: handles,
        metrics: metrics_task,
        health,
    })
}

/// Fetches closed candles the stream missed, over the venue's public REST API.
#[derive(Clone)]
struct Backfill {
    client: Arc<keel_adapters::client::RestClient>,
    venue: keel_adapters::model::Venue,
    interval: keel_engine::Interval,
    category: crate::download::Category,
    max: usize,
}

impl Backfill {
    /// Closed bars of `symbol` opening in `[from_ns, to_ns)`, oldest first.
    async fn fetch(&self, symbol: Symbol, from_ns: i64, to_ns: i64) -> Result<Vec<Candle>> {
        if self.max == 0 {
            return Ok(Vec::new());
        }
        // The newest `max` of the missing bars: the strategy's recent history matters most.
        let from_ns = from_ns.max(to_ns - self.max as i64 * self.interval.ns);
        crate::download::fetch_closed(
            &self.client,
            self.venue,
            symbol,
            self.interval,
            self.category,
            from_ns,
            to_ns,
            self.max,
        )
        .await
    }
}

/// Connection and data freshness per symbol, as the I/O side sees it.
pub(crate) struct Health {
    /// Last market event, per symbol.
    last_data: BTreeMap<Symbol, Instant>,
    /// Since when each symbol's connection is down (`None`: up).
    down_since: BTreeMap<Symbol, Option<Instant>>,
    /// Live: since when the account stream is down (`Some(None)`: up; `None`: not tracked).
    account_down_since: Option<Option<Instant>>,
}

impl Health {
    fn new(symbols: &[Symbol], account: bool) -> Health {
        let now = Instant::now();
        Health {
            last_data: symbols.iter().map(|&s| (s, now)).collect(),
            down_since: symbols.iter().map(|&s| (s, Some(now))).collect(),
            account_down_since: account.then_some(Some(now)),
        }
    }

    /// Live: the account stream went up (`true`) or down.
    pub(crate) fn account_connected(&mut self, up: bool) {
        if let Some(since) = self.account_down_since.as_mut() {
            if up {
                *since = None;
            } else {
                since.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Why the data is not healthy, if it is not.
    fn problem(&self, stale_after: Duration, disconnected_after: Duration) -> Option<String> {
        let now = Instant::now();
        if let Some(Some(t)) = self.account_down_since {
            let down = now.duration_since(t);
            if down >= disconnected_after {
                return Some(format!(
                    "the account stream disconnected for {} s",
                    down.as_secs()
                ));
            }
        }
        for (s, since) in &self.down_since {
            if let Some(t) = since {
                let down = now.duration_since(*t);
                if down >= disconnected_after {
                    return Some(format!(
                        "{} disconnected for {} s",
                        s.as_str(),
                        down.as_secs()
                    ));
                }
            }
        }
        for (s, t) in &self.last_data {
            let age = now.duration_since(*t);
            if age >= stale_after {
                return Some(format!(
                    "no market data for {} for {} s",
                    s.as_str(),
                    age.as_secs()
                ));
            }
        }
        None
    }
}

pub(crate) fn lock(h: &std::sync::Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

/// One symbol's WebSocket events → closed candles for the engine, health, metrics.
#[allow(clippy::too_many_arguments)]
async fn pump(
    symbol: Symbol,
    mut last_open: Option<i64>,
    backfill: Backfill,
    interval_ns: i64,
    mut events: tokio::sync::mpsc::Receiver<WsEvent>,
    inbox: Inbox,
    health: Arc<std::sync::Mutex<Health>>,
    metrics: Arc<Metrics>,
    alerter: Alerter,
    venue: &'static str,
) {
    while let Some(event) = events.recv().await {
        match event {
            WsEvent::Market(VenueEvent::Candle { candle, closed }) => {
                lock(&health).last_data.insert(symbol, Instant::now());
                if !closed || candle.symbol != symbol || candle.interval_ns != interval_ns {
                    continue;
                }
                if last_open.is_some_and(|t| candle.open_time_ns <= t) {
                    continue; // already delivered (resent after a reconnect)
                }
                if let Some(t) = last_open {
                    let missed = (candle.open_time_ns - t) / interval_ns - 1;
                    if missed > 0 {
                        // Fetch what the stream missed, and apply it first, in order.
                        let got = backfill
                            .fetch(symbol, t + interval_ns, candle.open_time_ns)
                            .await;
                        let fetched = match got {
                            Ok(bars) => {
                                for bar in &bars {
                                    inbox.send(Msg::Candle {
                                        recv_ns: now_ns(),
                                        candle: *bar,
                                    });
                                }
                                bars.len() as i64
                            }
                            Err(e) => {
                                eprintln!(
                                    "{}: {}: backfill failed: {e:#}",
                                    inbox.mode,
                                    symbol.as_str()
                                );
                                metrics.inc_venue_error(venue, "backfill");
                                0
                            }
                        };
                        if fetched > 0 {
                            eprintln!(
                                "{}: {}: {fetched} of {missed} missed closed candle(s) \
                                 fetched over REST and applied in order",
                                inbox.mode,
                                symbol.as_str()
                            );
                        }
                        if fetched < missed {
                            let text = format!(
                                "{}: {} closed candle(s) missed before {} (connection gap); \
                                 the strategy continues without them",
                                symbol.as_str(),
                                missed - fetched,
                                keel_replay::report::iso8601(candle.open_time_ns)
                            );
                            eprintln!("{}: {text}", inbox.mode);
                            metrics.inc_venue_error(venue, "candle_gap");
                            alerter.send(Alert::Error {
                                context: "market data".into(),
                                message: text,
                            });
                        }
                    }
                }
                last_open = Some(candle.open_time_ns);
                inbox.send(Msg::Candle {
                    recv_ns: now_ns(),
                    candle,
                });
            }
            WsEvent::Market(_) => {
                lock(&health).last_data.insert(symbol, Instant::now());
            }
            WsEvent::Connection(c) => {
                match &c {
                    ConnectionEvent::Connected { attempt, .. } => {
                        lock(&health).down_since.insert(symbol, None);
                        metrics.set_venue_connected(venue, true);
                        if *attempt > 1 {
                            metrics.inc_venue_reconnect(venue);
                        }
                    }
                    ConnectionEvent::Disconnected { reason, .. } => {
                        {
                            let mut h = lock(&health);
                            let entry = h.down_since.entry(symbol).or_insert(None);
                            entry.get_or_insert_with(Instant::now);
                        }
                        metrics.set_venue_connected(venue, false);
                        if !matches!(reason, ws::DisconnectReason::Shutdown) {
                            metrics.inc_venue_error(venue, "disconnect");
                        }
                    }
                    ConnectionEvent::Undecodable { .. } => {
                        metrics.inc_venue_error(venue, "undecodable")
                    }
                    ConnectionEvent::SubscribeRejected { .. } => {
                        metrics.inc_venue_error(venue, "subscribe_rejected")
                    }
                    _ => {}
                }
                eprintln!("{}: {}", inbox.mode, crate::watch::describe(&c));
            }
        }
    }
}

/// Trips the failsafe when data goes stale or the venue is unreachable; clears it when
/// healthy again.
async fn watch_health(
    health: Arc<std::sync::Mutex<Health>>,
    rt: Runtime,
    inbox: Inbox,
    metrics: Arc<Metrics>,
    alerter: Alerter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tripped = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let problem = {
            let h = lock(&health);
            let now = Instant::now();
            for (s, t) in &h.last_data {
                metrics.set_market_data_age(s.as_str(), now.duration_since(*t));
            }
            h.problem(rt.stale_after, rt.disconnected_after)
        };
        match (problem, tripped) {
            (Some(why), false) => {
                tripped = true;
                metrics.set_failsafe_active(true);
                let text = format!("failsafe: {why}; action {}", rt.failsafe.name());
                eprintln!("{}: {text}", inbox.mode);
                alerter.send(Alert::Risk {
                    what: "failsafe".into(),
                    detail: format!("{why}; {}", rt.failsafe.name()),
                });
                if let Some(command) = command_for(rt.failsafe) {
                    inbox.send(Msg::FailsafeTripped {
                        recv_ns: now_ns(),
                        command,
                    });
                }
            }
            (None, true) => {
                tripped = false;
                metrics.set_failsafe_active(false);
                eprintln!(
                    "{}: failsafe cleared: market data healthy again; entries resume",
                    inbox.mode
                );
                alerter.send(Alert::Risk {
                    what: "failsafe cleared".into(),
                    detail: "market data healthy again; entries resume".into(),
                });
                inbox.send(Msg::FailsafeCleared { recv_ns: now_ns() });
            }
            _ => {}
        }
    }
}

/// The first time strictly after `now_ns` (UTC, ns since the epoch) that is `minute` minutes
/// past a UTC midnight.
fn next_daily(now_ns: u64, minute: u32) -> u64 {
    const DAY: u64 = 86_400_000_000_000;
    let at = now_ns - now_ns % DAY + u64::from(minute) * 60_000_000_000;
    if at > now_ns { at } else { at + DAY }
}

/// Heartbeats and the daily report, as journaled timer inputs.
async fn timers(rt: Runtime, inbox: Inbox, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut heartbeat = rt.heartbeat.map(|d| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        t
    });
    let report_minute = rt.alerts.as_ref().map(|a| a.daily_report_minute);
    loop {
        let until_report = report_minute.map(|m| {
            let now = now_ns();
            Duration::from_nanos(next_daily(now, m) - now)
        });
        let report = async {
            match until_report {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let beat = async {
            match heartbeat.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = report => inbox.send(Msg::Timer { recv_ns: now_ns(), kind: TimerKind::DailyReport }),
            _ = beat => inbox.send(Msg::Timer { recv_ns: now_ns(), kind: TimerKind::Heartbeat }),
        }
    }
}

/// SIGINT, SIGTERM or the time limit stop the session; SIGUSR1 throws the kill switch (cancel
/// every order, flatten, refuse entries) and SIGUSR2 resumes entries — the operator's commands,
/// journaled like any input.
async fn signals(
    inbox: Inbox,
    for_seconds: Option<u64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        eprintln!(
            "{}: cannot install signal handlers; stop with --for-seconds",
            inbox.mode
        );
        return;
    };
    let limit = tokio::time::sleep(Duration::from_secs(
        for_seconds.unwrap_or(100 * 365 * 86_400),
    ));
    tokio::pin!(limit);
    let why = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = &mut limit, if for_seconds.is_some() => break "time is up",
            _ = stop.wait_for(|s| *s) => return,
            _ = usr1.recv() => {
                eprintln!("{}: SIGUSR1: kill switch", inbox.mode);
                inbox.send(Msg::Command { recv_ns: now_ns(), command: Command::KillSwitch });
            }
            _ = usr2.recv() => {
                eprintln!("{}: SIGUSR2: resume", inbox.mode);
                inbox.send(Msg::Command { recv_ns: now_ns(), command: Command::Resume });
            }
        }
    };
    inbox.send(Msg::Stop { why: why.into() });
}

/// The engine thread: applies inputs until a stop; returns why it stopped.
fn engine_thread(
    paper: &mut PaperEngine,
    rx: &Receiver<Msg>,
    rt: &Runtime,
    monitor: &mut Monitor,
) -> Result<String> {
    let mut candles_since_snapshot = 0u64;
    let mut failsafe = Failsafe::default();
    loop {
        let Ok(msg) = rx.recv() else {
            return Err(anyhow!("every input source ended"));
        };
        let started = Instant::now();
        let recv_ns = match &msg {
            Msg::Candle { recv_ns, .. }
            | Msg::Command { recv_ns, .. }
            | Msg::Timer { recv_ns, .. } => *recv_ns,
            _ => now_ns(),
        };
        monitor
            .metrics
            .set_input_lag(Duration::from_nanos(now_ns().saturating_sub(recv_ns)));
        match msg {
            Msg::Candle { recv_ns, candle } => {
                paper.candle(recv_ns, candle, &mut |s| {
                    monitor.step(s.seq, s.event, s.decisions)
                })?;
                candles_since_snapshot += 1;
                if candles_since_snapshot >= rt.snapshot_every {
                    paper.checkpoint_and_snapshot(now_ns())?;
                    candles_since_snapshot = 0;
                    monitor.journal_size(&rt.journal);
                }
            }
            Msg::Command { recv_ns, command } => {
                paper.input(recv_ns, Event::Command(command), &mut |s| {
                    monitor.step(s.seq, s.event, s.decisions)
                })?;
            }
            Msg::FailsafeTripped { recv_ns, command } => {
                let halted = paper.core().state().halted;
                paper.input(recv_ns, Event::Command(command), &mut |s| {
                    monitor.step(s.seq, s.event, s.decisions)
                })?;
                failsafe.trip(halted, monitor.halts);
            }
            Msg::FailsafeCleared { recv_ns } => {
                if failsafe.clear(monitor.halts, "paper") {
                    paper.input(recv_ns, Event::Command(Command::Resume), &mut |s| {
                        monitor.step(s.seq, s.event, s.decisions)
                    })?;
                }
            }
            Msg::Timer { recv_ns, kind } => {
                paper.input(recv_ns, Event::Timer(Timer { kind }), &mut |s| {
                    monitor.step(s.seq, s.event, s.decisions)
                })?;
                if kind == TimerKind::DailyReport {
                    monitor.daily_report(paper.core(), recv_ns);
                }
            }
            Msg::Stop { why } => {
                if let Some(command) = command_for(rt.on_stop) {
                    eprintln!(
                        "paper: on_stop = {}: journaling {command:?}",
                        rt.on_stop.name()
                    );
                    paper.input(now_ns(), Event::Command(command), &mut |s| {
                        monitor.step(s.seq, s.event, s.decisions)
                    })?;
                }
                let snap = paper.checkpoint_and_snapshot(now_ns())?;
                eprintln!(
                    "paper: journal synced, snapshot {} (digest {})",
                    snap.display(),
                    keel_engine::core::hex(&paper.core().digest())
                );
                monitor.journal_size(&rt.journal);
                return Ok(why);
            }
            // A paper session has no real venue.
            Msg::Venue { .. } | Msg::Account { .. } | Msg::Reconcile { .. } | Msg::Flushed => {}
        }
        monitor.metrics.observe_decision_latency(started.elapsed());
        monitor.metrics.set_input_queue_depth(rx.len());
        monitor.refresh(paper.core(), paper.venue().open_orders());
    }
}

/// Turns applied inputs into metrics and alerts (never blocks: both are non-blocking).
pub(crate) struct Monitor {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) alerter: Alerter,
    mode: &'static str,
    fill_alerts: bool,
    strategy: String,
    /// Equity at the last daily report.
    day_start_equity: Option<f64>,
    trades_at_day_start: usize,
    /// `Halted` decisions seen so far.
    pub(crate) halts: u64,
    /// PostgreSQL sink of candles and fills (non-blocking).
    sink: Option<crate::pgsink::SessionSink>,
}

impl Monitor {
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        alerter: Alerter,
        rt: &Runtime,
        strategy: &str,
        sink: Option<crate::pgsink::SessionSink>,
        mode: &'static str,
    ) -> Monitor {
        Monitor {
            mode,
            sink,
            metrics,
            alerter,
            fill_alerts: rt.alerts.as_ref().is_none_or(|a| a.fills),
            strategy: strategy.to_string(),
            day_start_equity: None,
            trades_at_day_start: 0,
            halts: 0,
        }
    }

    pub(crate) fn step(&mut self, seq: u64, event: &Event, decisions: &[Decision]) {
        let kind = event.kind().name();
        self.metrics.inc_input(kind);
        if let Some(sink) = &self.sink {
            let kept = match event {
                Event::Candle(c) => sink.candle(c),
                Event::Fill(f) => sink.fill(f),
                _ => true,
            };
            if !kept {
                self.metrics.inc_venue_error("postgres", "row_dropped");
            }
        }
        if let Event::Fill(f) = event
            && self.fill_alerts
            && f.client_id != keel_engine::event::FEE_IN_BASE_CLIENT_ID
        {
            self.alerter.send(Alert::Fill {
                symbol: f.symbol.to_string(),
                side: f.side.as_str().to_string(),
                qty: f.qty.to_string(),
                price: f.price.to_string(),
                fee: f.fee.to_string(),
                client_id: f.client_id,
                mode: self.mode.into(),
            });
        }
        for d in decisions {
            let kind = match d {
                Decision::Signal { .. } => "signal",
                Decision::PlaceOrder(_) => "place_order",
                Decision::CancelOrder { .. } => "cancel_order",
                Decision::Reject { reason, .. } => {
                    self.metrics.inc_risk_rejection(reason.as_str());
                    "reject"
                }
                Decision::Halted { detail } => {
                    self.halts += 1;
                    self.alerter.send(Alert::Risk {
                        what: "halted".into(),
                        detail: detail.clone(),
                    });
                    "halted"
                }
            };
            self.metrics.inc_decision(kind);
        }
        self.metrics.set_journal_records(seq);
    }

    /// Gauges from the core's state.
    pub(crate) fn refresh(&mut self, core: &Core, venue_open_orders: usize) {
        let alerts = self.alerter.stats();
        self.metrics.set_alert_stats(alerts.sent, alerts.dropped);
        let state = core.state();
        let equity = core.equity().to_f64();
        let realized = state.portfolio.realized_pnl.to_f64();
        let start = state
            .config
            .as_ref()
            .map_or(0.0, |c| c.starting_balance.to_f64());
        // Equity = start + realised − fees + funding + unrealised.
        let unrealized = equity - start - realized + state.portfolio.fees_paid.to_f64()
            - state.portfolio.funding.to_f64();
        self.metrics.set_equity(equity);
        self.metrics.set_realized_pnl(realized);
        self.metrics.set_unrealized_pnl(unrealized);
        self.metrics
            .set_strategy_pnl(&self.strategy, equity - start);
        for (symbol, p) in &state.portfolio.positions {
            self.metrics.set_position(symbol.as_str(), p.qty.to_f64());
        }
        self.metrics.set_open_orders(venue_open_orders);
        self.metrics.set_halted(state.halted);
        if self.day_start_equity.is_none() {
            self.day_start_equity = Some(equity);
            self.trades_at_day_start = state.portfolio.closed_trades.len();
        }
    }

    pub(crate) fn daily_report(&mut self, core: &Core, now: u64) {
        let state = core.state();
        let equity = core.equity().to_f64();
        let start = self.day_start_equity.unwrap_or(equity);
        let trades = state.portfolio.closed_trades.len()
            - self
                .trades_at_day_start
                .min(state.portfolio.closed_trades.len());
        self.alerter.send(Alert::DailyReport {
            date: keel_replay::report::iso8601(now as i64)[..10].to_string(),
            equity: format!("{equity:.2}"),
            day_pnl: format!("{:.2}", equity - start),
            day_return_pct: format!(
                "{:.2}",
                if start != 0.0 {
                    (equity / start - 1.0) * 100.0
                } else {
                    0.0
                }
            ),
            realized_pnl: format!("{:.2}", state.portfolio.realized_pnl.to_f64()),
            trades: trades as u64,
            open_positions: state
                .portfolio
                .positions
                .iter()
                .filter(|(_, p)| !p.qty.is_zero())
                .map(|(s, p)| (s.to_string(), p.qty.to_string()))
                .collect(),
        });
        self.day_start_equity = Some(equity);
        self.trades_at_day_start = state.portfolio.closed_trades.len();
    }

    pub(crate) fn journal_size(&self, dir: &Path) {
        let bytes: u64 = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        self.metrics.set_journal_bytes(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::next_daily;

    const MIN: u64 = 60_000_000_000;
    const DAY: u64 = 1440 * MIN;
    /// 2024-03-10T00:00:00Z.
    const MIDNIGHT: u64 = 1_710_028_800 * 1_000_000_000;

    #[test]
    fn the_daily_report_time_is_the_next_utc_occurrence() {
        // 00:05 asked at 00:00 → today 00:05; at 00:05 exactly → tomorrow; at 23:59 → tomorrow.
        assert_eq!(next_daily(MIDNIGHT, 5), MIDNIGHT + 5 * MIN);
        assert_eq!(next_daily(MIDNIGHT + 5 * MIN, 5), MIDNIGHT + DAY + 5 * MIN);
        assert_eq!(
            next_daily(MIDNIGHT + 1439 * MIN, 5),
            MIDNIGHT + DAY + 5 * MIN
        );
        // Midnight itself, asked one nanosecond after: the next midnight.
        assert_eq!(next_daily(MIDNIGHT + 1, 0), MIDNIGHT + DAY);
        assert_eq!(
            next_daily(MIDNIGHT + 12 * 60 * MIN, 23 * 60 + 59),
            MIDNIGHT + 1439 * MIN
        );
    }
}
