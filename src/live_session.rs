//! `keel live`: real orders on a venue, with the paper session's engine loop, journal, core,
//! market data, failsafe, timers, metrics and alerts. What changes is the executor: order
//! decisions go to the venue over signed REST, and the venue's answers (the REST answers and
//! the private account stream) come back as journaled inputs.
//!
//! Threads: the tokio runtime does all I/O (market data, the account stream, the executor,
//! the dead-man switch, timers, signals, metrics, Telegram); the calling thread is the engine
//! thread, the journal's only writer, through a [`LiveEngine`]. The engine thread never waits
//! on the venue: it hands order decisions to the executor (after they are journaled and synced)
//! and goes on; the executor works them one at a time, in order, and sends back what the venue
//! said.
//!
//! Recovery and reconciliation: start-up rebuilds the core from the journal, then the executor
//! asks the venue about every order the core tracks, by its client order id (`k<n>`, derived
//! from the journal sequence): its fills (journaled once each, by trade id) and its state. An
//! order the venue never saw is sent now if it was decided within `resend_within_secs`, else
//! recorded as rejected. Then the venue's open orders and positions (spot: balances) are
//! journaled as an `AccountState` input and the core reconciles: orders the venue lost are
//! closed (lost stops and targets re-armed), orders it never placed are reported, positions
//! that differ halt entries. The same runs after every account-stream reconnect and every
//! `reconcile_every_secs`. What differed is reported on stderr and as an alert.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use crossbeam_channel::Receiver;
use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::model::{
    FillEvent, Instrument, OrderEvent, OrderSpec, OrderState, Venue, VenueError, VenueEvent,
};
use keel_adapters::ws::private::{self, PrivateConfig, PrivateConnectionEvent, PrivateEvent};
use keel_engine::core::OrderPhase;
use keel_engine::event::{
    AccountState, Command, Decision, Event, FEE_IN_BASE_CLIENT_ID, Fill, Mode, OrderRequest,
    OrderStatus, OrderUpdate, SessionStart, Side, Timer, TimerKind, VenueOrder, VenuePosition,
};
use keel_engine::{Fixed, Symbol};
use keel_journal::{Durability, Options};
use keel_replay::live::{Answer, LiveEngine};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::alerts::{Alert, Alerter};
use crate::config::{SessionSpec, load_session};
use crate::metrics::Metrics;
use crate::paper_session::{Inbox, Monitor, Msg, command_for, lock, now_ns, start_io};
use crate::session_config::Runtime;

/// The client id of fills of orders keel did not place (manual trades on the same symbol).
const FOREIGN_CLIENT_ID: u64 = u64::MAX;

/// How long an order whose placement answer was lost is given to show up on the venue before
/// a reconciliation may take it for lost.
const UNKNOWN_OUTCOME_SETTLE: Duration = Duration::from_secs(5);

/// How long a stop waits for the executor to finish what the stop decided.
const STOP_DRAIN: Duration = Duration::from_secs(15);

/// What the engine thread hands the executor.
#[derive(Debug)]
enum ExecMsg {
    /// A journaled (and synced) order decision.
    Decision(Decision),
    Reconcile {
        why: String,
        orders: Vec<Tracked>,
        asked_after_client_id: u64,
    },
    /// Answer `Msg::Flushed` once everything before it is handled.
    Flush,
}

/// An order the core tracks, as a reconciliation needs it.
#[derive(Debug, Clone)]
struct Tracked {
    request: OrderRequest,
    phase: OrderPhase,
    /// When it was decided (local clock, ns), if the journal says.
    decided_ns: Option<u64>,
}

/// `keel live --config FILE`.
pub fn run_cli(config: &Path, for_seconds: Option<u64>) -> Result<ExitCode> {
    let session = load_session(config)?;
    let venue = session.runtime.venue;
    // Everything that can be refused is refused before the journal is touched.
    let credentials =
        keel_adapters::credentials::credentials_from_env(venue, |k| std::env::var(k).ok())
            .map_err(|e| anyhow!("{}: {e}", config.display()))?
            .ok_or_else(|| {
                let prefix = keel_adapters::credentials::env_prefix(venue);
                anyhow!(
                    "{}: keel live needs the account's API key: set {prefix}_API_KEY and \
             {prefix}_API_SECRET{} in the environment",
                    config.display(),
                    if venue == Venue::Okx {
                        format!(" and {prefix}_PASSPHRASE")
                    } else {
                        String::new()
                    }
                )
            })?;
    let mut credentials = credentials.credentials;
    if let Some(file) =
        &keel_adapters::credentials::credentials_from_env(venue, |k| std::env::var(k).ok())
            .ok()
            .flatten()
            .and_then(|c| c.ed25519_key_file)
    {
        let bytes = std::fs::read(file)
            .with_context(|| format!("cannot read the Ed25519 key file {}", file.display()))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(file)?.permissions());
        let pem = keel_adapters::credentials::load_ed25519_pem(file, &bytes, mode)
            .map_err(|e| anyhow!("{e}"))?;
        credentials = credentials.with_ed25519_pem(pem);
    }
    // Venues whose order path does not yet map onto the core's units and names are refused
    // rather than traded wrongly.
    if venue == Venue::Kraken {
        bail!(
            "{}: keel live does not trade on Kraken yet: its REST order and balance answers name \
             pairs and assets differently (XBTUSD, XXBT) from the session's symbols, which \
             reconciliation would misread; use keel paper",
            config.display()
        );
    }
    if venue == Venue::Okx
        && session
            .spec
            .symbols
            .iter()
            .any(|s| s.as_str().ends_with("-SWAP"))
    {
        bail!(
            "{}: keel live does not trade OKX swaps yet: their sizes are in contracts (ctVal), \
             not coins; OKX spot is supported",
            config.display()
        );
    }
    let prepared = crate::paper_session::prepare(config, &session)?;
    let runtime = &prepared.runtime;
    // The venue must answer, know the symbols and accept the key before anything trades.
    let mut cfg = ClientConfig::new(venue).with_credentials(credentials.clone());
    if let Some(url) = &session.runtime.rest_url {
        cfg.base_url = url.clone();
    }
    cfg.bybit_category = session.runtime.bybit_category;
    let client = Arc::new(RestClient::new(cfg).map_err(|e| anyhow!("REST client: {e}"))?);
    let instruments = runtime.block_on(async {
        client
            .sync_clock()
            .await
            .map_err(|e| anyhow!("cannot reach {}: {e}", venue.name()))?;
        let all = client
            .load_instruments()
            .await
            .map_err(|e| anyhow!("{}: cannot load instruments: {e}", venue.name()))?;
        let mut mine = BTreeMap::new();
        for s in &session.spec.symbols {
            let Some(i) = all.iter().find(|i| i.symbol == *s) else {
                bail!("{}: {} does not list {}", config.display(), venue.name(), s);
            };
            mine.insert(*s, i.clone());
        }
        // The key must be accepted: a balance request is signed and read-only.
        client
            .balances()
            .await
            .map_err(|e| anyhow!("{}: the API key was not accepted: {e}", venue.name()))?;
        Ok::<_, anyhow::Error>(mine)
    })?;
    run(
        session,
        credentials,
        client,
        instruments,
        prepared,
        for_seconds,
    )
}

fn run(
    session: SessionSpec,
    credentials: keel_adapters::credentials::Credentials,
    client: Arc<RestClient>,
    instruments: BTreeMap<Symbol, Instrument>,
    prepared: crate::paper_session::Prepared,
    for_seconds: Option<u64>,
) -> Result<ExitCode> {
    let crate::paper_session::Prepared {
        token,
        sink,
        listener,
        runtime,
    } = prepared;
    let runtime = &runtime;
    let SessionSpec { spec, runtime: rt } = session;
    let crate::paper_session::Observers {
        metrics,
        strategy,
        label,
        alerter,
        alert_task,
    } = crate::paper_session::observers("live", &spec, &rt, token, runtime);
    let start = SessionStart {
        mode: Mode::Live,
        config: spec.core.clone(),
        config_text: spec.config_text.clone(),
    };
    let options = Options {
        durability: Durability::IntervalMs(200),
        ..Options::default()
    };
    let (mut live, recovery) = LiveEngine::open(&rt.journal, start, options, now_ns())
        .with_context(|| format!("session journal {}", rt.journal.display()))?;
    let described = recovery.describe();
    eprintln!("live: journal {}: {described}", rt.journal.display());
    let (sink, sink_task) = crate::paper_session::spawn_sink(sink, runtime);
    let mut monitor = Monitor::new(
        metrics.clone(),
        alerter.clone(),
        &rt,
        &strategy,
        sink,
        "live",
    );
    monitor.refresh(live.core(), live.core().state().orders.len());

    let (tx, rx) = crossbeam_channel::bounded(4096);
    let inbox = Inbox {
        tx,
        mode: "live",
        metrics: metrics.clone(),
        alerter: alerter.clone(),
        alarmed: Arc::new(AtomicBool::new(false)),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (exec_tx, exec_rx) = tokio::sync::mpsc::unbounded_channel();
    let ctx = Arc::new(ExecCtx {
        client: client.clone(),
        instruments: instruments.clone(),
        inbox: inbox.clone(),
        metrics: metrics.clone(),
        alerter: alerter.clone(),
        venue: rt.venue,
        resend_within: rt.live.resend_within,
        sent: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        unknown: std::sync::Mutex::new(BTreeMap::new()),
        reconciling: AtomicBool::new(false),
        clean_stop: AtomicBool::new(false),
    });
    let io = runtime.block_on(start_io(
        &spec.symbols,
        &recovery.last_candle_open,
        &rt,
        spec.interval,
        inbox.clone(),
        metrics.clone(),
        alerter.clone(),
        listener,
        stop_rx.clone(),
        for_seconds,
    ))?;
    let account = runtime.block_on(async {
        // The executor runs on a thread of its own, driven by this runtime: one order at a
        // time, in order, never competing with market data for a worker (and the placement
        // future need not be `Send`).
        let handle = tokio::runtime::Handle::current();
        let exec_ctx = ctx.clone();
        let executor = std::thread::Builder::new()
            .name("keel-exec".into())
            .spawn(move || handle.block_on(executor(exec_rx, exec_ctx)))
            .context("cannot start the executor thread")?;
        let stream = account_stream(
            &rt,
            credentials,
            client.clone(),
            ctx.clone(),
            io.health.clone(),
        )?;
        let dead_man = rt.live.dead_man.map(|every| {
            tokio::spawn(dead_man_switch(
                ctx.clone(),
                spec.symbols.clone(),
                every,
                stop_rx.clone(),
            ))
        });
        let periodic = rt
            .live
            .reconcile_every
            .map(|every| tokio::spawn(periodic_reconcile(inbox.clone(), every, stop_rx.clone())));
        Ok::<_, anyhow::Error>((executor, stream, dead_man, periodic))
    })?;
    eprintln!(
        "live: trading {} on {} ({}); metrics on http://{}/metrics",
        label,
        rt.venue.name(),
        rt.rest_url.as_deref().unwrap_or("production endpoints"),
        rt.metrics_listen
    );
    alerter.send(Alert::Startup {
        text: format!("live session started; {described}"),
    });

    let mut state = EngineState {
        exec: exec_tx,
        ctx: ctx.clone(),
        start_up_done: false,
        flatten_on_restart: recovery.resumed && rt.flatten_on_restart,
    };
    state.reconcile(&live, "start-up");
    let outcome = engine_thread(&mut live, &rx, &rt, &mut monitor, &mut state);
    // After a failure the switch stays armed: the venue cancels what nobody manages now.
    ctx.clean_stop.store(outcome.is_ok(), Ordering::Release);
    let _ = stop_tx.send(true);
    let stop_text = match &outcome {
        Ok(why) => format!("live session stopped ({why})"),
        Err(e) => format!("live session failed: {e:#}"),
    };
    eprintln!("live: {stop_text}");
    let (executor, stream, dead_man, periodic) = account;
    runtime.block_on(async {
        drop(state);
        let joined = tokio::task::spawn_blocking(move || executor.join());
        let _ = tokio::time::timeout(Duration::from_secs(10), joined).await;
        if let Some(t) = periodic {
            t.abort();
        }
        if let Some(t) = dead_man {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        stream.shutdown().await;
        for h in io.ws {
            h.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), io.metrics).await;
    });
    crate::paper_session::finish("live", runtime, sink_task, &alerter, alert_task, stop_text);
    outcome.map(|_| ExitCode::SUCCESS)
}

/// The engine thread's link to the executor.
struct EngineState {
    exec: UnboundedSender<ExecMsg>,
    ctx: Arc<ExecCtx>,
    /// The start-up reconciliation has been applied.
    start_up_done: bool,
    flatten_on_restart: bool,
}

impl EngineState {
    /// Sends the order decisions among `decisions` to the executor.
    fn dispatch(&self, decisions: &[Decision]) {
        for d in decisions {
            if matches!(d, Decision::PlaceOrder(_) | Decision::CancelOrder { .. }) {
                let _ = self.exec.send(ExecMsg::Decision(d.clone()));
            }
        }
    }

    /// Asks the executor to reconcile every order the core tracks (unless a reconciliation is
    /// already queued or running: it will see the same orders).
    fn reconcile(&self, live: &LiveEngine, why: &str) {
        if self.ctx.reconciling.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = live.core().state();
        let orders = state
            .orders
            .values()
            .map(|o| Tracked {
                request: o.request.clone(),
                phase: o.phase,
                decided_ns: live.decided_at(o.request.client_id),
            })
            .collect();
        // Any order decided from now on has a larger id than this.
        let asked_after_client_id = keel_engine::event::client_order_id(state.last_seq, 0) + 255;
        let _ = self.exec.send(ExecMsg::Reconcile {
            why: why.to_string(),
            orders,
            asked_after_client_id,
        });
    }
}

/// What every applied input goes through: metrics and alerts, then its order decisions to
/// the executor.
macro_rules! observe {
    ($monitor:expr, $state:expr) => {
        &mut |a: keel_replay::live::Applied<'_>| {
            $monitor.step(a.seq, a.event, a.decisions);
            $state.dispatch(a.decisions);
        }
    };
}

/// The engine thread: applies inputs until a stop; returns why it stopped.
fn engine_thread(
    live: &mut LiveEngine,
    rx: &Receiver<Msg>,
    rt: &Runtime,
    monitor: &mut Monitor,
    state: &mut EngineState,
) -> Result<String> {
    let mut candles_since_snapshot = 0u64;
    let mut failsafe = crate::paper_session::Failsafe::default();
    loop {
        let Ok(msg) = rx.recv() else {
            return Err(anyhow!("every input source ended"));
        };
        let started = Instant::now();
        match msg {
            Msg::Candle { recv_ns, candle } => {
                monitor
                    .metrics
                    .set_input_lag(Duration::from_nanos(now_ns().saturating_sub(recv_ns)));
                live.input(recv_ns, Event::Candle(candle), observe!(monitor, state))?;
                candles_since_snapshot += 1;
                if candles_since_snapshot >= rt.snapshot_every {
                    live.checkpoint_and_snapshot(now_ns())?;
                    candles_since_snapshot = 0;
                    monitor.journal_size(&rt.journal);
                }
            }
            Msg::Command { recv_ns, command } => {
                live.input(recv_ns, Event::Command(command), observe!(monitor, state))?;
            }
            Msg::Timer { recv_ns, kind } => {
                live.input(
                    recv_ns,
                    Event::Timer(Timer { kind }),
                    observe!(monitor, state),
                )?;
                if kind == TimerKind::DailyReport {
                    monitor.daily_report(live.core(), recv_ns);
                }
            }
            Msg::Venue { recv_ns, events } => {
                if live.answer(recv_ns, events, observe!(monitor, state))? == Answer::Duplicate {
                    monitor.metrics.inc_input("duplicate_venue_answer");
                }
            }
            Msg::Account {
                recv_ns,
                state: account,
                notes,
            } => {
                state.ctx.reconciling.store(false, Ordering::Release);
                let before = live.core().state().counters.clone();
                live.input(
                    recv_ns,
                    Event::AccountState(account.clone()),
                    observe!(monitor, state),
                )?;
                let after = &live.core().state().counters;
                let report = divergence_report(&before, after, &account, &notes);
                eprintln!("live: reconciliation: {report}");
                let differs = after.reconcile_lost > before.reconcile_lost
                    || after.reconcile_unknown > before.reconcile_unknown
                    || after.reconcile_mismatch > before.reconcile_mismatch
                    || !notes.is_empty();
                if differs || !state.start_up_done {
                    monitor.alerter.send(Alert::Risk {
                        what: "reconciliation".into(),
                        detail: report,
                    });
                }
                if !state.start_up_done {
                    state.start_up_done = true;
                    if state.flatten_on_restart {
                        eprintln!("live: flatten_on_restart: flattening before trading resumes");
                        for command in [Command::KillSwitch, Command::Resume] {
                            live.input(
                                now_ns(),
                                Event::Command(command),
                                observe!(monitor, state),
                            )?;
                        }
                    }
                }
            }
            Msg::FailsafeTripped { recv_ns, command } => {
                let halted = live.core().state().halted;
                live.input(recv_ns, Event::Command(command), observe!(monitor, state))?;
                failsafe.trip(halted, monitor.halts);
            }
            Msg::FailsafeCleared { recv_ns } => {
                if failsafe.clear(monitor.halts, "live") {
                    live.input(
                        recv_ns,
                        Event::Command(Command::Resume),
                        observe!(monitor, state),
                    )?;
                }
                // Whatever happened while unhealthy is asked about now.
                state.reconcile(live, "failsafe cleared");
            }
            Msg::Reconcile { why } => state.reconcile(live, &why),
            Msg::Flushed => {}
            Msg::Stop { why } => {
                if let Some(command) = command_for(rt.on_stop) {
                    eprintln!(
                        "live: on_stop = {}: journaling {command:?}",
                        rt.on_stop.name()
                    );
                    live.input(now_ns(), Event::Command(command), observe!(monitor, state))?;
                }
                // What the stop decided reaches the venue, and its answers the journal.
                drain_executor(live, rx, monitor, state)?;
                let snap = live.checkpoint_and_snapshot(now_ns())?;
                eprintln!(
                    "live: journal synced, snapshot {} (digest {})",
                    snap.display(),
                    keel_engine::core::hex(&live.core().digest())
                );
                monitor.journal_size(&rt.journal);
                return Ok(why);
            }
        }
        monitor.metrics.observe_decision_latency(started.elapsed());
        monitor.metrics.set_input_queue_depth(rx.len());
        monitor.refresh(live.core(), live.core().state().orders.len());
    }
}

/// Waits (at most [`STOP_DRAIN`]) for the executor to finish what it was given, applying the
/// venue's answers as they come.
fn drain_executor(
    live: &mut LiveEngine,
    rx: &Receiver<Msg>,
    monitor: &mut Monitor,
    state: &mut EngineState,
) -> Result<()> {
    let deadline = Instant::now() + STOP_DRAIN;
    let _ = state.exec.send(ExecMsg::Flush);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(msg) = rx.recv_timeout(left) else {
            eprintln!("live: the venue did not answer everything within {STOP_DRAIN:?}");
            return Ok(());
        };
        match msg {
            Msg::Flushed => return Ok(()),
            Msg::Venue { recv_ns, events } => {
                live.answer(recv_ns, events, observe!(monitor, state))?;
            }
            // Market data and commands after a stop are not applied.
            _ => {}
        }
    }
}

/// One line saying what a reconciliation found and did.
fn divergence_report(
    before: &keel_engine::core::Counters,
    after: &keel_engine::core::Counters,
    account: &AccountState,
    notes: &[String],
) -> String {
    let mut parts = Vec::new();
    parts.extend(notes.iter().cloned());
    let lost = after.reconcile_lost - before.reconcile_lost;
    if lost > 0 {
        parts.push(format!(
            "{lost} order(s) the core tracked are not open on the venue: closed in the core \
             (lost stops/targets re-armed)"
        ));
    }
    let unknown = after.reconcile_unknown - before.reconcile_unknown;
    if unknown > 0 {
        parts.push(format!(
            "{unknown} open order(s) on the venue keel did not place: left alone"
        ));
    }
    if after.reconcile_mismatch > before.reconcile_mismatch {
        parts.push("positions differ from the venue's: entries halted (SIGUSR2 resumes)".into());
    }
    let summary = format!(
        "{} open order(s) on the venue, positions {}",
        account.open_orders.len(),
        account
            .positions
            .iter()
            .map(|p| format!("{} {}", p.symbol.as_str(), p.qty))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if parts.is_empty() {
        format!("no divergence ({summary})")
    } else {
        format!("{}; {summary}", parts.join("; "))
    }
}

/// What the executor works with.
struct ExecCtx {
    client: Arc<RestClient>,
    instruments: BTreeMap<Symbol, Instrument>,
    inbox: Inbox,
    metrics: Arc<Metrics>,
    alerter: Alerter,
    venue: Venue,
    resend_within: Duration,
    /// Client ids this process has sent (or tried to): a reconciliation never sends them
    /// again, whatever the venue's answer — only orders decided before a restart are resent.
    sent: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    /// Placements whose answer was lost, and when.
    unknown: std::sync::Mutex<BTreeMap<u64, Instant>>,
    /// A reconciliation is queued or running: further requests are dropped, not queued.
    reconciling: AtomicBool,
    /// The session ended cleanly (the dead-man switch is disarmed only then).
    clean_stop: AtomicBool,
}

impl ExecCtx {
    /// A spot account (balances), not a derivatives one (positions).
    fn spot(&self) -> bool {
        matches!(self.venue, Venue::BinanceSpot | Venue::Kraken)
            || (self.venue == Venue::Bybit
                && self.client.config().bybit_category == keel_adapters::bybit::Category::Spot)
            || (self.venue == Venue::Okx
                && self
                    .instruments
                    .keys()
                    .all(|s| !s.as_str().ends_with("-SWAP")))
    }

    fn send_events(&self, events: Vec<Event>) {
        if !events.is_empty() {
            self.inbox.send(Msg::Venue {
                recv_ns: now_ns(),
                events,
            });
        }
    }

    fn order(&self, o: &OrderEvent) {
        if let Some(update) = order_update(o, &self.instruments) {
            self.send_events(vec![Event::OrderUpdate(update)]);
        }
    }

    fn fill(&self, f: &FillEvent) {
        match fill_events(f, &self.instruments) {
            Ok(events) => self.send_events(events),
            Err(why) => {
                eprintln!("live: {why}");
                self.metrics.inc_venue_error(self.venue.name(), "fee_asset");
            }
        }
    }

    fn error(&self, context: &str, message: String) {
        eprintln!("live: {context}: {message}");
        self.metrics.inc_venue_error(self.venue.name(), context);
        self.alerter.send(Alert::Error {
            context: context.into(),
            message,
        });
    }

    /// Fetches and forwards every fill of an order (each is applied once).
    async fn fills_of(&self, symbol: &Symbol, client_order_id: &str) -> Result<usize, String> {
        let fills = self
            .client
            .order_fills(symbol, client_order_id)
            .await
            .map_err(|e| e.to_string())?;
        for f in &fills {
            self.fill(f);
        }
        Ok(fills.len())
    }

    async fn place(&self, request: &OrderRequest) {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.client_id);
        let mut spec = OrderSpec::from_core(request);
        if self.spot() {
            // Spot has no reduce-only flag: a sell can only sell what the wallet holds.
            spec.reduce_only = false;
            if request.reduce_only && request.kind == keel_engine::event::OrderKind::Market {
                self.release_coins(request).await;
            }
        }
        match self.client.place_order(&spec).await {
            Ok(ack) => {
                // An order that already ended is applied after its fills, so the core sees a
                // part-filled entry's fills before its end (and protects the position).
                if !is_final(ack.order.state) {
                    self.order(&ack.order);
                }
                for f in &ack.fills {
                    self.fill(f);
                }
                if ack.fills.is_empty()
                    && ack.order.filled_qty > Fixed::ZERO
                    && let Err(e) = self.fills_of(&request.symbol, &spec.client_order_id).await
                {
                    self.error("order fills", e);
                }
                if is_final(ack.order.state) {
                    self.order_final(&ack.order);
                }
            }
            // A success status whose body keel cannot read most likely placed the order:
            // treated like a lost answer, never as a refusal.
            Err(e)
                if matches!(e.error, VenueError::UnknownOutcome(_))
                    || e.status.is_some_and(|s| (200..300).contains(&s)) =>
            {
                // Neither sent for sure nor refused: the next reconciliation settles it.
                self.error(
                    "place order",
                    format!("{}: {e}; reconciling", spec.client_order_id),
                );
                // Asked again once the venue must have decided (the order may still land):
                // until then the reconciliation keeps it pending, never lost.
                self.unknown
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(request.client_id, Instant::now());
                let inbox = self.inbox.clone();
                let why = format!("unknown outcome of {}", spec.client_order_id);
                tokio::spawn(async move {
                    // Once while it may still land, once after: then it is settled either way.
                    tokio::time::sleep(UNKNOWN_OUTCOME_SETTLE).await;
                    inbox.send(Msg::Reconcile { why: why.clone() });
                    tokio::time::sleep(UNKNOWN_OUTCOME_SETTLE + Duration::from_secs(1)).await;
                    inbox.send(Msg::Reconcile { why });
                });
            }
            Err(e) => {
                self.metrics
                    .inc_venue_error(self.venue.name(), "order_rejected");
                eprintln!("live: order {} refused: {e}", spec.client_order_id);
                self.send_events(vec![Event::OrderUpdate(OrderUpdate {
                    client_id: request.client_id,
                    venue_order_id: 0,
                    status: OrderStatus::Rejected,
                    ts_event_ns: now_ns() as i64,
                    reason: e.error.to_string(),
                })]);
            }
        }
    }

    /// On spot, a resting stop or target sell holds the coins a market exit must sell (the
    /// venue refuses the exit: insufficient balance). They are cancelled first; the core
    /// would cancel them once the exit fills anyway, and hears of it as a cancellation.
    async fn release_coins(&self, exit: &OrderRequest) {
        let open = match self.client.open_orders(Some(&exit.symbol)).await {
            Ok(open) => open,
            Err(e) => return self.error("open orders", e.to_string()),
        };
        for o in open {
            if o.side != exit.side {
                continue;
            }
            if let Some(id) = parse_client_id(&o.client_order_id)
                && id != exit.client_id
            {
                self.cancel(id, &exit.symbol).await;
            }
        }
    }

    /// The terminal update of an order, after its fills. A filled order's is an
    /// acknowledgement (its fills end it); a part-filled one that ended gets its end.
    fn order_final(&self, o: &OrderEvent) {
        self.order(o);
    }

    async fn cancel(&self, client_id: u64, symbol: &Symbol) {
        let id = format!("k{client_id}");
        match self.client.cancel_order(symbol, &id).await {
            Ok(Some(o)) => {
                if o.filled_qty > Fixed::ZERO
                    && let Err(e) = self.fills_of(symbol, &id).await
                {
                    self.error("order fills", e);
                }
                self.order(&o);
            }
            Ok(None) => self.settle(symbol, &id, client_id).await,
            Err(e) if matches!(e.error, VenueError::OrderNotFound(_)) => {
                // Already done (filled, cancelled) or never there: ask what became of it.
                self.settle(symbol, &id, client_id).await
            }
            Err(e) => self.error("cancel order", format!("{id}: {e}")),
        }
    }

    /// Asks the venue about one order and forwards its fills and state.
    async fn settle(&self, symbol: &Symbol, id: &str, client_id: u64) {
        match self.client.query_order(symbol, id).await {
            Ok(Some(o)) => {
                if o.filled_qty > Fixed::ZERO
                    && let Err(e) = self.fills_of(symbol, id).await
                {
                    self.error("order fills", e);
                }
                self.order(&o);
            }
            Ok(None) => self.send_events(vec![Event::OrderUpdate(OrderUpdate {
                client_id,
                venue_order_id: 0,
                status: OrderStatus::Canceled,
                ts_event_ns: now_ns() as i64,
                reason: "the venue has no such order".into(),
            })]),
            Err(e) => self.error("query order", format!("{id}: {e}")),
        }
    }

    /// The reconciliation described in the module docs.
    /// Whether an account state was sent.
    async fn reconcile(&self, why: &str, orders: Vec<Tracked>, asked_after_client_id: u64) -> bool {
        let mut notes = Vec::new();
        // The venue's open orders first: an order that ends after this snapshot is then asked
        // about below, and its fills and end are journaled before the snapshot is applied.
        let open_orders = match self.open_orders().await {
            Ok(open) => open,
            Err(e) => {
                self.error("reconciliation", format!("({why}) {e}"));
                return false;
            }
        };
        // Orders whose fate this pass could not settle: never taken for lost.
        let mut unsettled = Vec::new();
        for t in &orders {
            let id = format!("k{}", t.request.client_id);
            let symbol = &t.request.symbol;
            match self.client.query_order(symbol, &id).await {
                Ok(Some(o)) => {
                    if o.filled_qty > Fixed::ZERO
                        && let Err(e) = self.fills_of(symbol, &id).await
                    {
                        notes.push(format!("fills of {id} unavailable: {e}"));
                        unsettled.push(t.request.client_id);
                        continue;
                    }
                    if is_final(o.state) && t.phase != OrderPhase::CancelRequested {
                        notes.push(format!(
                            "{id} was {} on the venue while keel did not hear of it{}",
                            o.state.as_str(),
                            if o.filled_qty > Fixed::ZERO {
                                format!(" (filled {})", o.filled_qty)
                            } else {
                                String::new()
                            }
                        ));
                    }
                    self.order(&o);
                    if t.phase == OrderPhase::CancelRequested && !is_final(o.state) {
                        notes.push(format!("{id}: cancel requested before, sent again"));
                        self.cancel(t.request.client_id, symbol).await;
                    }
                }
                Ok(None)
                    if t.phase == OrderPhase::Submitted
                        && !self
                            .sent
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .contains(&t.request.client_id) =>
                {
                    let age = t
                        .decided_ns
                        .map(|d| Duration::from_nanos(now_ns().saturating_sub(d)));
                    match age {
                        Some(age) if age <= self.resend_within => {
                            notes.push(format!(
                                "{id} never reached the venue: sent now (decided {} ms ago)",
                                age.as_millis()
                            ));
                            self.place(&t.request).await;
                        }
                        _ => {
                            notes.push(format!(
                                "{id} never reached the venue and was decided {}: not sent",
                                age.map_or("at an unknown time".to_string(), |a| format!(
                                    "{} s ago",
                                    a.as_secs()
                                ))
                            ));
                            // Expired, not rejected: a stop or target is then placed again
                            // for the position as it is now.
                            self.send_events(vec![Event::OrderUpdate(OrderUpdate {
                                client_id: t.request.client_id,
                                venue_order_id: 0,
                                status: OrderStatus::Expired,
                                ts_event_ns: now_ns() as i64,
                                reason: format!(
                                    "never reached the venue before the restart; older than \
                                     resend_within_secs ({} s)",
                                    self.resend_within.as_secs()
                                ),
                            })]);
                        }
                    }
                }
                // Open in the core, unknown to the venue: the account state closes it — unless
                // its placement answer was lost only moments ago (it may still land).
                Ok(None) => {
                    let lost_answer = self
                        .unknown
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&t.request.client_id)
                        .is_some_and(|at| at.elapsed() < 2 * UNKNOWN_OUTCOME_SETTLE);
                    if lost_answer {
                        notes.push(format!("{id}: placement answer lost; still waiting for it"));
                        unsettled.push(t.request.client_id);
                    }
                }
                Err(e) => {
                    notes.push(format!("cannot ask about {id}: {e}"));
                    unsettled.push(t.request.client_id);
                }
            }
        }
        match self
            .account_state(asked_after_client_id, open_orders, unsettled)
            .await
        {
            Ok(state) => {
                if !notes.is_empty() || why != "periodic" {
                    eprintln!("live: reconciled ({why})");
                }
                self.inbox.send(Msg::Account {
                    recv_ns: now_ns(),
                    state,
                    notes,
                });
                true
            }
            Err(e) => {
                self.error("reconciliation", format!("({why}) {e}"));
                false
            }
        }
    }

    /// The venue's open orders on the session's symbols.
    async fn open_orders(&self) -> Result<Vec<VenueOrder>, String> {
        let mut open_orders = Vec::new();
        for symbol in self.instruments.keys() {
            let orders = self
                .client
                .open_orders(Some(symbol))
                .await
                .map_err(|e| format!("open orders: {e}"))?;
            for o in orders {
                open_orders.push(VenueOrder {
                    client_id: parse_client_id(&o.client_order_id).unwrap_or(0),
                    venue_order_id: numeric_id(&o.venue_order_id),
                    symbol: o.symbol,
                    side: o.side,
                    qty: o.qty,
                    filled_qty: o.filled_qty,
                });
            }
        }
        Ok(open_orders)
    }

    /// The account state: `open_orders` as asked before, positions (spot: base-asset
    /// balances) now.
    async fn account_state(
        &self,
        asked_after_client_id: u64,
        open_orders: Vec<VenueOrder>,
        unsettled: Vec<u64>,
    ) -> Result<AccountState, String> {
        let spot = self.spot();
        let mut positions = Vec::new();
        if spot {
            let balances = self
                .client
                .balances()
                .await
                .map_err(|e| format!("balances: {e}"))?;
            for (symbol, i) in &self.instruments {
                let qty = balances
                    .iter()
                    .filter(|b| b.asset == i.base)
                    .map(|b| b.free + b.locked)
                    .fold(Fixed::ZERO, |a, b| a + b);
                positions.push(VenuePosition {
                    symbol: *symbol,
                    qty,
                });
            }
        } else {
            let venue_positions = self
                .client
                .positions()
                .await
                .map_err(|e| format!("positions: {e}"))?;
            for symbol in self.instruments.keys() {
                let qty = venue_positions
                    .iter()
                    .filter(|p| p.symbol == *symbol)
                    .map(|p| p.qty)
                    .fold(Fixed::ZERO, |a, b| a + b);
                positions.push(VenuePosition {
                    symbol: *symbol,
                    qty,
                });
            }
        }
        Ok(AccountState {
            ts_event_ns: now_ns() as i64 + self.client.clock_offset_ms() * 1_000_000,
            asked_after_client_id,
            open_orders,
            positions,
            spot,
            unsettled,
        })
    }
}

fn is_final(state: OrderState) -> bool {
    matches!(
        state,
        OrderState::Filled | OrderState::Canceled | OrderState::Rejected | OrderState::Expired
    )
}

/// Works the engine's order decisions and reconciliations one at a time, in order.
async fn executor(mut rx: UnboundedReceiver<ExecMsg>, ctx: Arc<ExecCtx>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            ExecMsg::Decision(Decision::PlaceOrder(request)) => ctx.place(&request).await,
            ExecMsg::Decision(Decision::CancelOrder { client_id }) => {
                // The symbol is not in the decision; every session symbol is tried (one
                // symbol per session is the common case, where this is one call).
                let symbols: Vec<Symbol> = ctx.instruments.keys().copied().collect();
                if let [symbol] = symbols[..] {
                    ctx.cancel(client_id, &symbol).await;
                } else {
                    let id = format!("k{client_id}");
                    let mut done = false;
                    let mut failed = false;
                    for symbol in &symbols {
                        match ctx.client.query_order(symbol, &id).await {
                            Ok(Some(_)) => {
                                ctx.cancel(client_id, symbol).await;
                                done = true;
                                break;
                            }
                            Ok(None) => {}
                            Err(e) => {
                                // Not knowing is not "no such order": the next
                                // reconciliation settles it.
                                ctx.error("cancel order", format!("{id}: {e}"));
                                failed = true;
                            }
                        }
                    }
                    if !done && !failed {
                        ctx.send_events(vec![Event::OrderUpdate(OrderUpdate {
                            client_id,
                            venue_order_id: 0,
                            status: OrderStatus::Canceled,
                            ts_event_ns: now_ns() as i64,
                            reason: "the venue has no such order".into(),
                        })]);
                    }
                }
            }
            ExecMsg::Decision(_) => {}
            ExecMsg::Reconcile {
                why,
                orders,
                asked_after_client_id,
            } => {
                // Done when the engine thread applies its account state (after every answer
                // the pass journaled); a pass that failed is done now.
                if !ctx.reconcile(&why, orders, asked_after_client_id).await {
                    ctx.reconciling.store(false, Ordering::Release);
                }
            }
            ExecMsg::Flush => ctx.inbox.send(Msg::Flushed),
        }
    }
}

/// The private account stream: order updates and fills become venue answers; every
/// (re)connection asks for a reconciliation; its health feeds the failsafe.
fn account_stream(
    rt: &Runtime,
    credentials: keel_adapters::credentials::Credentials,
    client: Arc<RestClient>,
    ctx: Arc<ExecCtx>,
    health: Arc<std::sync::Mutex<crate::paper_session::Health>>,
) -> Result<private::PrivateHandle> {
    let mut cfg = PrivateConfig::new(rt.venue, credentials);
    cfg.base_url = rt.live.private_ws_url.clone();
    if rt.venue == Venue::Bybit && rt.live.dead_man.is_some() {
        // Bybit's disconnect-cancel-all acts only on connections subscribed to `dcp`.
        cfg.bybit_dcp = Some(rt.bybit_category);
    }
    // The failsafe covers an outage: the stream never gives up on its own.
    cfg.retry.max_retries = u32::MAX;
    cfg.retry.jitter_seed ^= u64::from(std::process::id());
    if matches!(rt.venue, Venue::BinanceUsdm | Venue::Kraken) {
        cfg = cfg.with_tokens(Arc::new(keel_adapters::client::tokens::RestTokens::new(
            client,
        )));
    }
    let (handle, mut events) = private::spawn(cfg).map_err(|e| anyhow!("account stream: {e}"))?;
    let venue = rt.venue.name();
    tokio::spawn(async move {
        let mut first = true;
        while let Some(event) = events.recv().await {
            match event {
                PrivateEvent::Account(VenueEvent::Order(o)) => ctx.order(&o),
                PrivateEvent::Account(VenueEvent::Fill(f)) => ctx.fill(&f),
                PrivateEvent::Account(_) => {}
                PrivateEvent::Connection(c) => {
                    match &c {
                        PrivateConnectionEvent::NeedsReconcile { .. } => {
                            lock(&health).account_connected(true);
                            ctx.metrics.set_venue_connected(venue, true);
                            // Also the first time: fills made while the stream was still
                            // connecting are fetched now, not at the next periodic pass.
                            if !first {
                                ctx.metrics.inc_venue_reconnect(venue);
                            }
                            ctx.inbox.send(Msg::Reconcile {
                                why: if first {
                                    "account stream live".into()
                                } else {
                                    "account stream reconnected".into()
                                },
                            });
                            first = false;
                        }
                        PrivateConnectionEvent::Disconnected { .. } => {
                            lock(&health).account_connected(false);
                            ctx.metrics.inc_venue_error(venue, "account_disconnect");
                        }
                        PrivateConnectionEvent::AuthFailed { reason, .. } => {
                            ctx.error(
                                "account stream",
                                format!("authentication refused: {reason}"),
                            );
                        }
                        PrivateConnectionEvent::Stopped { reason } => {
                            lock(&health).account_connected(false);
                            ctx.error("account stream", format!("stopped: {reason:?}"));
                        }
                        PrivateConnectionEvent::Undecodable { .. } => {
                            ctx.metrics.inc_venue_error(venue, "undecodable")
                        }
                        _ => {}
                    }
                    eprintln!("live: account stream: {}", describe_private(&c));
                }
            }
        }
    });
    Ok(handle)
}

fn describe_private(c: &PrivateConnectionEvent) -> String {
    match c {
        PrivateConnectionEvent::Connected { url, attempt } => {
            format!("connected to {url} (attempt {attempt})")
        }
        PrivateConnectionEvent::Authenticated { .. } => "authenticated".into(),
        PrivateConnectionEvent::Subscribed { topics, .. } => {
            format!("subscribed to {}", topics.join(", "))
        }
        PrivateConnectionEvent::NeedsReconcile { .. } => "live; reconciling over REST".into(),
        PrivateConnectionEvent::Disconnected {
            reason,
            reconnect_in,
        } => format!(
            "disconnected: {reason}{}",
            reconnect_in.map_or(String::new(), |d| format!(
                "; reconnecting in {} ms",
                d.as_millis()
            ))
        ),
        other => format!("{other:?}"),
    }
}

/// Keeps the venue's dead-man switch armed: renewed every quarter of `countdown`; disarmed
/// at a clean stop (the stop's own action has dealt with the orders by then).
async fn dead_man_switch(
    ctx: Arc<ExecCtx>,
    symbols: Vec<Symbol>,
    countdown: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if ctx.venue == Venue::BinanceSpot {
        eprintln!(
            "live: Binance spot has no dead-man switch: open orders outlive a crash (the \
             restart reconciles them)"
        );
        return;
    }
    // Account-wide switches need one call; Binance USD-M's is per symbol.
    let targets: Vec<Symbol> = if ctx.venue == Venue::BinanceUsdm {
        symbols
    } else {
        symbols.into_iter().take(1).collect()
    };
    let mut tick = tokio::time::interval(countdown / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut armed = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        for s in &targets {
            match ctx.client.cancel_all_after(s, countdown).await {
                Ok(()) => {
                    if !armed {
                        eprintln!(
                            "live: dead-man switch armed: open orders are cancelled {} s after \
                             the last renewal",
                            countdown.as_secs()
                        );
                        armed = true;
                    }
                }
                Err(e) => ctx.error("dead-man switch", e.to_string()),
            }
        }
    }
    // Bybit's window cannot be disarmed over the API (it only acts on a disconnect).
    if armed && ctx.venue != Venue::Bybit && ctx.clean_stop.load(Ordering::Acquire) {
        for s in &targets {
            if let Err(e) = ctx.client.cancel_all_after(s, Duration::ZERO).await {
                ctx.error("dead-man switch", format!("disarming: {e}"));
            }
        }
    }
}

async fn periodic_reconcile(
    inbox: Inbox,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => inbox.send(Msg::Reconcile { why: "periodic".into() }),
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// keel's numeric client id from a venue's client order id (`k<n>`).
fn parse_client_id(text: &str) -> Option<u64> {
    let n: u64 = text.strip_prefix('k')?.parse().ok()?;
    (n >= keel_engine::event::ORDERS_PER_INPUT_MAX).then_some(n)
}

/// A venue id as a number: itself when it is one (Binance, OKX), else a 64-bit FNV-1a hash of
/// the text (Bybit's UUIDs, Kraken's txids), stable across runs and builds.
fn numeric_id(text: &str) -> u64 {
    if let Ok(n) = text.parse::<u64>() {
        return n;
    }
    // FNV-1a: eight lines, no dependency; the ids only need to be stable and distinct.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The core's view of a venue order event; `None` for another symbol or nothing to say.
fn order_update(o: &OrderEvent, instruments: &BTreeMap<Symbol, Instrument>) -> Option<OrderUpdate> {
    if !instruments.contains_key(&o.symbol) {
        return None;
    }
    let client_id = parse_client_id(&o.client_order_id)?;
    let status = match o.state {
        OrderState::New
        | OrderState::PartiallyFilled
        | OrderState::Filled
        | OrderState::Triggered
        | OrderState::Untriggered => OrderStatus::Accepted,
        OrderState::Canceled => OrderStatus::Canceled,
        OrderState::Rejected => OrderStatus::Rejected,
        OrderState::Expired => OrderStatus::Expired,
    };
    Some(OrderUpdate {
        client_id,
        venue_order_id: numeric_id(&o.venue_order_id),
        status,
        ts_event_ns: o.ts_event_ns,
        reason: o.reason.clone(),
    })
}

/// The journal inputs for one venue fill: the fill, preceded by the fee's own fill when the
/// venue took the fee in the coin bought (`FEE_IN_BASE_CLIENT_ID`). A fee in a third asset
/// (BNB, say) has no price here: the fill is journaled with no fee and the caller told.
fn fill_events(
    f: &FillEvent,
    instruments: &BTreeMap<Symbol, Instrument>,
) -> Result<Vec<Event>, String> {
    let Some(i) = instruments.get(&f.symbol) else {
        return Ok(Vec::new());
    };
    let client_id = match parse_client_id(&f.client_order_id) {
        Some(id) => id,
        None if f.client_order_id.starts_with("autoclose")
            || f.client_order_id.starts_with("adl_autoclose") =>
        {
            keel_engine::event::LIQUIDATION_CLIENT_ID
        }
        None => FOREIGN_CLIENT_ID,
    };
    let venue_order_id = numeric_id(&f.venue_order_id);
    let trade_id = numeric_id(&f.trade_id);
    let liquidity = f.liquidity;
    let mut fill = Fill {
        client_id,
        venue_order_id,
        trade_id,
        symbol: f.symbol,
        side: f.side,
        price: f.price,
        qty: f.qty,
        fee: f.fee,
        liquidity,
        ts_event_ns: f.ts_event_ns,
    };
    let mut out = Vec::with_capacity(2);
    let mut unpriced = None;
    if f.fee.is_zero() || f.fee_asset.is_empty() || f.fee_asset == i.quote {
        // The fee is in the quote asset already.
    } else if f.fee_asset == i.base {
        // Rounded up to the lot step: the wallet's remainder below one step can never be sold
        // (exchange dust), so the core holds exactly what a sell can still move.
        let mut qty = f.fee;
        if i.lot_size > Fixed::ZERO {
            let floor = f.fee.floor_to(i.lot_size);
            qty = if floor == f.fee {
                floor
            } else {
                floor + i.lot_size
            };
        }
        let value = qty.checked_mul(f.price).unwrap_or(Fixed::ZERO);
        out.push(Event::Fill(Fill {
            client_id: FEE_IN_BASE_CLIENT_ID,
            side: Side::Sell,
            qty,
            fee: value,
            ..fill
        }));
        fill.fee = Fixed::ZERO;
    } else {
        unpriced = Some(format!(
            "fill {} of {}: fee {} {} is in neither {} nor {}; journaled without its fee",
            f.trade_id, f.client_order_id, f.fee, f.fee_asset, i.base, i.quote
        ));
        fill.fee = Fixed::ZERO;
    }
    out.push(Event::Fill(fill));
    match unpriced {
        // The fill still counts; only its fee is missing (reported by the caller).
        Some(why) => {
            eprintln!("live: {why}");
            Ok(out)
        }
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instruments() -> BTreeMap<Symbol, Instrument> {
        let s = Symbol::new("BTCUSDT").unwrap();
        let i = Instrument {
            symbol: s,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: Fixed::parse("0.01").unwrap(),
            lot_size: Fixed::parse("0.00001").unwrap(),
            min_qty: Fixed::parse("0.00001").unwrap(),
            max_qty: Fixed::ZERO,
            min_notional: Fixed::ZERO,
            contract_size: Fixed::ONE,
            trading: true,
        };
        [(s, i)].into_iter().collect()
    }

    fn fill(fee: &str, asset: &str) -> FillEvent {
        FillEvent {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            client_order_id: "k1280".into(),
            venue_order_id: "28457".into(),
            trade_id: "912".into(),
            side: Side::Buy,
            price: Fixed::parse("40000").unwrap(),
            qty: Fixed::parse("0.01").unwrap(),
            fee: Fixed::parse(fee).unwrap(),
            fee_asset: asset.into(),
            liquidity: keel_engine::event::Liquidity::Taker,
            ts_event_ns: 1,
        }
    }

    #[test]
    fn a_fee_taken_in_the_coin_bought_leaves_the_core_holding_what_the_wallet_holds() {
        // Binance spot: buying 0.01 BTC at a 0.1 % taker fee credits 0.00999 BTC.
        let events = fill_events(&fill("0.00001", "BTC"), &instruments()).unwrap();
        let mut p = keel_engine::portfolio::Portfolio::new(Fixed::from_int(1000));
        for e in &events {
            let Event::Fill(f) = e else { panic!() };
            p.apply_fill(f);
        }
        let s = Symbol::new("BTCUSDT").unwrap();
        assert_eq!(p.position(&s), Fixed::parse("0.00999").unwrap());
        // Cash paid 400 USDT; the fee's value (0.4 USDT) is in fees, and equity at the fill
        // price is 1000 − 0.4.
        let marks = [(s, Fixed::from_int(40000))].into_iter().collect();
        assert_eq!(p.equity(&marks), Fixed::parse("999.6").unwrap());
        assert_eq!(p.fees_paid, Fixed::parse("0.4").unwrap());
    }

    #[test]
    fn a_fee_off_the_lot_grid_leaves_a_sellable_position() {
        // 0.04295 BTC bought, 0.1 % fee = 0.00004295 BTC: the wallet holds 0.04290705, of
        // which 0.04290 can be sold (step 0.00001). The core holds 0.04290.
        let mut f = fill("0.00004295", "BTC");
        f.qty = Fixed::parse("0.04295").unwrap();
        let events = fill_events(&f, &instruments()).unwrap();
        let mut p = keel_engine::portfolio::Portfolio::new(Fixed::from_int(10_000));
        for e in &events {
            let Event::Fill(f) = e else { panic!() };
            p.apply_fill(f);
        }
        let s = Symbol::new("BTCUSDT").unwrap();
        assert_eq!(p.position(&s), Fixed::parse("0.04290").unwrap());
    }

    #[test]
    fn a_quote_fee_passes_through_and_ids_map_stably() {
        let events = fill_events(&fill("0.4", "USDT"), &instruments()).unwrap();
        let [Event::Fill(f)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (f.client_id, f.venue_order_id, f.trade_id),
            (1280, 28457, 912)
        );
        assert_eq!(f.fee, Fixed::parse("0.4").unwrap());
        // Bybit's UUID order ids and Kraken's txids hash to the same number every time.
        assert_eq!(
            numeric_id("OQCLML-BW3P3-BUCMWZ"),
            numeric_id("OQCLML-BW3P3-BUCMWZ")
        );
        assert_ne!(
            numeric_id("OQCLML-BW3P3-BUCMWZ"),
            numeric_id("OQCLML-BW3P3-BUCMWY")
        );
        // Ids keel never issues are not taken for its own.
        assert_eq!(parse_client_id("k12"), None);
        assert_eq!(parse_client_id("web_123"), None);
        assert_eq!(parse_client_id("k4352001"), Some(4_352_001));
    }
}
