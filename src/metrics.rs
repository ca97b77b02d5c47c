//! Prometheus metrics for a live or paper session, and the small HTTP server that exposes them.
//!
//! Contract:
//! - [`Metrics`] is shared through an `Arc` between the engine thread and the I/O runtime. Every
//!   setter is an atomic store or add, or a short read lock on a label family (a write lock only
//!   the first time a label value is seen); none waits on I/O, so the engine thread may call
//!   them between two inputs. Observing the latency histogram takes its short internal mutex.
//! - Label values come from the configuration (symbols, strategies, venues) or from fixed sets in
//!   the code (decision kinds, rejection reasons, error kinds), so every family stays small.
//!   Never label with order ids, prices or free text.
//! - [`Metrics::encode`] renders the OpenMetrics text exposition (the format `prometheus_client`
//!   writes); [`serve`] answers `GET /metrics` with it and `GET /healthz` with `ok`.
//! - The server listens on [`DEFAULT_ADDR`] (loopback) unless configured otherwise: the
//!   exposition reveals positions and PnL, so exposing it beyond the host is an explicit choice.
//!   At most [`MAX_CONNECTIONS`] connections are served at once; on shutdown the listener stops
//!   accepting and open connections get [`SHUTDOWN_GRACE`] to finish.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// Where the metrics server listens unless configured otherwise: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9187";

/// The `Content-Type` of `GET /metrics`: `prometheus_client` writes OpenMetrics 1.0 text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Most connections served at once; a further client waits in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;

/// How long open connections may take to finish once shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The decision kinds the core journals; their counters exist (at 0) from the start, so a
/// dashboard's `rate()` has a series before the first decision of each kind.
pub const DECISION_KINDS: [&str; 5] = ["signal", "place_order", "cancel_order", "reject", "halted"];

/// Upper bounds of the decision latency histogram, 1 µs to 100 ms in 1-2-5 steps.
pub const DECISION_LATENCY_BUCKETS_SECONDS: [f64; 16] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1,
];

type GaugeF64 = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SymbolLabel {
    symbol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StrategyLabel {
    strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VenueLabel {
    venue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VenueKindLabel {
    venue: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabel {
    mode: String,
    venue: String,
    strategy: String,
}

/// Every `keel_*` metric of one process, with a typed setter for each.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    equity: GaugeF64,
    realized_pnl: GaugeF64,
    unrealized_pnl: GaugeF64,
    position: Family<SymbolLabel, GaugeF64>,
    open_orders: Gauge,
    strategy_pnl: Family<StrategyLabel, GaugeF64>,
    decisions: Family<KindLabel, Counter>,
    risk_rejections: Family<ReasonLabel, Counter>,
    decision_latency: Histogram,
    journal_bytes: Gauge,
    journal_records: Gauge,
    input_queue_depth: Gauge,
    input_lag: GaugeF64,
    inputs: Family<KindLabel, Counter>,
    venue_connected: Family<VenueLabel, Gauge>,
    venue_reconnects: Family<VenueLabel, Counter>,
    venue_errors: Family<VenueKindLabel, Counter>,
    market_data_age: Family<SymbolLabel, GaugeF64>,
    failsafe_active: Gauge,
    halted: Gauge,
    alerts_sent: Counter,
    alerts_dropped: Counter,
    session_info: Family<SessionLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// All families registered under the `keel_` prefix; values start at zero.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("keel"),
            equity: GaugeF64::default(),
            realized_pnl: GaugeF64::default(),
            unrealized_pnl: GaugeF64::default(),
            position: Family::default(),
            open_orders: Gauge::default(),
            strategy_pnl: Family::default(),
            decisions: Family::default(),
            risk_rejections: Family::default(),
            decision_latency: Histogram::new(DECISION_LATENCY_BUCKETS_SECONDS),
            journal_bytes: Gauge::default(),
            journal_records: Gauge::default(),
            input_queue_depth: Gauge::default(),
            input_lag: GaugeF64::default(),
            inputs: Family::default(),
            venue_connected: Family::default(),
            venue_reconnects: Family::default(),
            venue_errors: Family::default(),
            market_data_age: Family::default(),
            failsafe_active: Gauge::default(),
            halted: Gauge::default(),
            alerts_sent: Counter::default(),
            alerts_dropped: Counter::default(),
            session_info: Family::default(),
        };
        for kind in DECISION_KINDS {
            m.decisions.get_or_create_owned(&kind_label(kind));
        }
        m.register_all()
    }

    fn register_all(mut self) -> Metrics {
        self.register_pnl();
        self.register_decisions();
        self.register_health();
        self.register_venues();
        self
    }

    fn register_pnl(&mut self) {
        let r = &mut self.registry;
        r.register(
            "equity",
            "Account equity in the quote currency (cash plus marked positions)",
            self.equity.clone(),
        );
        r.register(
            "realized_pnl",
            "Realised profit and loss of the session in the quote currency",
            self.realized_pnl.clone(),
        );
        r.register(
            "unrealized_pnl",
            "Unrealised profit and loss of open positions at the last mark, in the quote currency",
            self.unrealized_pnl.clone(),
        );
        r.register(
            "position",
            "Signed position quantity in base units (negative is short)",
            self.position.clone(),
        );
        r.register(
            "open_orders",
            "Orders placed and not yet filled, cancelled or rejected",
            self.open_orders.clone(),
        );
        r.register(
            "strategy_pnl",
            "Realised plus unrealised profit and loss per strategy, in the quote currency",
            self.strategy_pnl.clone(),
        );
        r.register(
            "session_info",
            "Always 1; labels name the session's mode, venue and strategy",
            self.session_info.clone(),
        );
    }

    fn register_decisions(&mut self) {
        let r = &mut self.registry;
        r.register(
            "decisions",
            "Decisions journaled by the core, by kind",
            self.decisions.clone(),
        );
        r.register(
            "risk_rejections",
            "Orders refused by the risk checks, by reason",
            self.risk_rejections.clone(),
        );
        r.register(
            "inputs",
            "Inputs applied by the core, by kind",
            self.inputs.clone(),
        );
        r.register_with_unit(
            "decision_latency",
            "Time from an input's arrival to its decisions being journaled",
            Unit::Seconds,
            self.decision_latency.clone(),
        );
    }

    fn register_health(&mut self) {
        let r = &mut self.registry;
        r.register_with_unit(
            "journal",
            "Bytes written to the session journal",
            Unit::Bytes,
            self.journal_bytes.clone(),
        );
        r.register(
            "journal_records",
            "Records written to the session journal",
            self.journal_records.clone(),
        );
        r.register(
            "input_queue_depth",
            "Inputs waiting in the channel to the core (writer-to-core lag)",
            self.input_queue_depth.clone(),
        );
        r.register_with_unit(
            "input_lag",
            "Age of the last input when the core applied it",
            Unit::Seconds,
            self.input_lag.clone(),
        );
        r.register(
            "failsafe_active",
            "1 while the failsafe holds the session (no new orders), else 0",
            self.failsafe_active.clone(),
        );
        r.register(
            "halted",
            "1 once trading is halted, else 0",
            self.halted.clone(),
        );
        r.register(
            "alerts_sent",
            "Alerts delivered to the alert channel",
            self.alerts_sent.clone(),
        );
        r.register(
            "alerts_dropped",
            "Alerts dropped because the alert queue was full or delivery failed",
            self.alerts_dropped.clone(),
        );
    }

    fn register_venues(&mut self) {
        let r = &mut self.registry;
        r.register(
            "venue_connected",
            "1 while the venue's market data or order connection is up, else 0",
            self.venue_connected.clone(),
        );
        r.register(
            "venue_reconnects",
            "Reconnections to the venue",
            self.venue_reconnects.clone(),
        );
        r.register(
            "venue_errors",
            "Errors talking to the venue, by kind",
            self.venue_errors.clone(),
        );
        r.register_with_unit(
            "market_data_age",
            "Time since the last market data update for the symbol",
            Unit::Seconds,
            self.market_data_age.clone(),
        );
    }

    /// The OpenMetrics text exposition of every family, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        // Writing into a String cannot fail and every label type here encodes infallibly.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics into a String cannot fail");
        out
    }

    // ---- PnL and positions

    pub fn set_equity(&self, quote: f64) {
        self.equity.set(quote);
    }

    pub fn set_realized_pnl(&self, quote: f64) {
        self.realized_pnl.set(quote);
    }

    pub fn set_unrealized_pnl(&self, quote: f64) {
        self.unrealized_pnl.set(quote);
    }

    /// Signed quantity in base units; set 0 when flat rather than dropping the series.
    pub fn set_position(&self, symbol: &str, qty: f64) {
        self.position.get_or_create(&symbol_label(symbol)).set(qty);
    }

    pub fn set_open_orders(&self, count: usize) {
        self.open_orders.set(saturating_i64(count as u64));
    }

    /// Realised plus unrealised PnL of one strategy, in the quote currency.
    pub fn set_strategy_pnl(&self, strategy: &str, quote: f64) {
        let label = StrategyLabel {
            strategy: strategy.to_owned(),
        };
        self.strategy_pnl.get_or_create(&label).set(quote);
    }

    /// Replaces the session's `keel_session_info` series (mode: `paper` or `live`).
    pub fn set_session_info(&self, mode: &str, venue: &str, strategy: &str) {
        let label = SessionLabel {
            mode: mode.to_owned(),
            venue: venue.to_owned(),
            strategy: strategy.to_owned(),
        };
        self.session_info.clear();
        self.session_info.get_or_create(&label).set(1);
    }

    // ---- Decisions and inputs

    /// One decision of `kind` (see [`DECISION_KINDS`]).
    pub fn inc_decision(&self, kind: &str) {
        self.add_decisions(kind, 1);
    }

    /// `count` decisions of `kind`, for a core that reports a batch at once.
    pub fn add_decisions(&self, kind: &str, count: u64) {
        self.decisions
            .get_or_create(&kind_label(kind))
            .inc_by(count);
    }

    /// One order refused by risk; `reason` is a fixed identifier such as `max_position`.
    pub fn inc_risk_rejection(&self, reason: &str) {
        let label = ReasonLabel {
            reason: reason.to_owned(),
        };
        self.risk_rejections.get_or_create(&label).inc();
    }

    /// One input of `kind` (e.g. `candle`, `trade`, `fill`, `timer`) applied by the core.
    pub fn inc_input(&self, kind: &str) {
        self.inputs.get_or_create(&kind_label(kind)).inc();
    }

    /// Time from an input's arrival to its decisions being journaled.
    pub fn observe_decision_latency(&self, latency: Duration) {
        self.decision_latency.observe(latency.as_secs_f64());
    }

    // ---- Core health

    pub fn set_journal_bytes(&self, bytes: u64) {
        self.journal_bytes.set(saturating_i64(bytes));
    }

    pub fn set_journal_records(&self, records: u64) {
        self.journal_records.set(saturating_i64(records));
    }

    /// Inputs waiting in the channel to the core.
    pub fn set_input_queue_depth(&self, depth: usize) {
        self.input_queue_depth.set(saturating_i64(depth as u64));
    }

    /// Age of the last input when the core applied it.
    pub fn set_input_lag(&self, lag: Duration) {
        self.input_lag.set(lag.as_secs_f64());
    }

    pub fn set_failsafe_active(&self, active: bool) {
        self.failsafe_active.set(i64::from(active));
    }

    pub fn set_halted(&self, halted: bool) {
        self.halted.set(i64::from(halted));
    }

    pub fn inc_alert_sent(&self) {
        self.alerts_sent.inc();
    }

    pub fn inc_alert_dropped(&self) {
        self.alerts_dropped.inc();
    }

    /// Sets the alert counters from the alert sender's cumulative totals. A counter never goes
    /// down: a total below the current value (a stale snapshot) is ignored.
    pub fn set_alert_stats(&self, sent_total: u64, dropped_total: u64) {
        self.alerts_sent
            .inner()
            .fetch_max(sent_total, Ordering::Relaxed);
        self.alerts_dropped
            .inner()
            .fetch_max(dropped_total, Ordering::Relaxed);
    }

    // ---- Venues and market data

    pub fn set_venue_connected(&self, venue: &str, connected: bool) {
        self.venue_connected
            .get_or_create(&venue_label(venue))
            .set(i64::from(connected));
    }

    pub fn inc_venue_reconnect(&self, venue: &str) {
        self.venue_reconnects
            .get_or_create(&venue_label(venue))
            .inc();
    }

    /// One error talking to `venue`; `kind` is a fixed identifier such as `timeout`.
    pub fn inc_venue_error(&self, venue: &str, kind: &str) {
        let label = VenueKindLabel {
            venue: venue.to_owned(),
            kind: kind.to_owned(),
        };
        self.venue_errors.get_or_create(&label).inc();
    }

    /// Time since the last market data update for `symbol`.
    pub fn set_market_data_age(&self, symbol: &str, age: Duration) {
        self.market_data_age
            .get_or_create(&symbol_label(symbol))
            .set(age.as_secs_f64());
    }
}

fn symbol_label(symbol: &str) -> SymbolLabel {
    SymbolLabel {
        symbol: symbol.to_owned(),
    }
}

fn kind_label(kind: &str) -> KindLabel {
    KindLabel {
        kind: kind.to_owned(),
    }
}

fn venue_label(venue: &str) -> VenueLabel {
    VenueLabel {
        venue: venue.to_owned(),
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Binds the metrics listener on `addr` (e.g. [`DEFAULT_ADDR`]) in non-blocking mode, ready for
/// `tokio::net::TcpListener::from_std` inside the runtime. Binding before the session starts
/// lets a taken port fail the start instead of a running session.
pub fn bind(addr: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!(
            "cannot listen for metrics on {addr}: is another keel or exporter using that \
             address? Choose a free host:port for the metrics listener"
        )
    })?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("cannot make the metrics listener on {addr} non-blocking"))?;
    Ok(listener)
}

/// Serves `GET /metrics` and `GET /healthz` on `listener` until `shutdown` completes, then lets
/// open connections finish for up to [`SHUTDOWN_GRACE`]. Needs a runtime with time enabled.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = pin!(shutdown);
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // unreachable: the semaphore is never closed
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let task = serve_connection(stream, metrics.clone(), stop_rx.clone(), permit);
                connections.spawn(task);
            }
            // Transient (fd exhaustion, a reset before accept): keep serving.
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
    // Receivers see the change even if they are not waiting yet; an error means none is left.
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    // Whatever is still open after the grace period is aborted when `connections` drops.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, drain).await;
}

async fn serve_connection(
    stream: TcpStream,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let service = service_fn(move |req: Request<Incoming>| {
        let response = respond(&metrics, &req);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        // A connection error (client reset, timeout) concerns only that client.
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|stopped| *stopped) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

fn respond<B>(metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    let (status, content_type, body) = match (req.uri().path(), readable) {
        ("/metrics", true) => (StatusCode::OK, CONTENT_TYPE, metrics.encode()),
        ("/healthz", true) => (StatusCode::OK, TEXT, "ok".to_owned()),
        ("/metrics" | "/healthz", false) => (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "method not allowed: use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: try /metrics or /healthz\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

const TEXT: &str = "text/plain; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The sample lines of the exposition whose name is `name` (labels included).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .collect()
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    /// Gives every family at least one series (an empty label family is not exposed at all).
    fn touch_all(m: &Metrics) {
        m.set_position("BTCUSDT", 1.0);
        m.set_strategy_pnl("sma_cross", 1.0);
        m.inc_risk_rejection("max_position");
        m.inc_input("candle");
        m.set_venue_connected("okx", true);
        m.inc_venue_reconnect("okx");
        m.inc_venue_error("okx", "timeout");
        m.set_market_data_age("BTCUSDT", Duration::from_secs(1));
        m.set_session_info("paper", "okx", "sma_cross");
    }

    #[test]
    fn exposition_declares_every_family_with_type_and_help() {
        let m = Metrics::new();
        touch_all(&m);
        let text = m.encode();
        let families = [
            ("keel_equity", "gauge"),
            ("keel_realized_pnl", "gauge"),
            ("keel_unrealized_pnl", "gauge"),
            ("keel_position", "gauge"),
            ("keel_open_orders", "gauge"),
            ("keel_strategy_pnl", "gauge"),
            ("keel_decisions", "counter"),
            ("keel_risk_rejections", "counter"),
            ("keel_decision_latency_seconds", "histogram"),
            ("keel_journal_bytes", "gauge"),
            ("keel_journal_records", "gauge"),
            ("keel_input_queue_depth", "gauge"),
            ("keel_input_lag_seconds", "gauge"),
            ("keel_inputs", "counter"),
            ("keel_venue_connected", "gauge"),
            ("keel_venue_reconnects", "counter"),
            ("keel_venue_errors", "counter"),
            ("keel_market_data_age_seconds", "gauge"),
            ("keel_failsafe_active", "gauge"),
            ("keel_halted", "gauge"),
            ("keel_alerts_sent", "counter"),
            ("keel_alerts_dropped", "counter"),
            ("keel_session_info", "gauge"),
        ];
        for (name, kind) in families {
            assert!(
                has_line(&text, &format!("# TYPE {name} {kind}")),
                "{name}:\n{text}"
            );
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        assert_eq!(text.matches("# TYPE ").count(), families.len(), "{text}");
        assert!(has_line(
            &text,
            "# UNIT keel_decision_latency_seconds seconds"
        ));
        assert!(has_line(&text, "# UNIT keel_journal_bytes bytes"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn metrics_can_be_shared_between_the_engine_thread_and_the_runtime() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Metrics>();
    }

    #[test]
    fn decision_kinds_exist_at_zero_before_the_first_decision() {
        let text = Metrics::new().encode();
        for kind in DECISION_KINDS {
            let line = format!("keel_decisions_total{{kind=\"{kind}\"}} 0");
            assert!(has_line(&text, &line), "{line}:\n{text}");
        }
    }

    #[test]
    fn setters_show_up_with_their_labels_and_values() {
        let m = Metrics::new();
        m.set_equity(10_250.5);
        m.set_position("BTCUSDT", -0.25);
        m.set_strategy_pnl("sma_cross", 12.5);
        m.inc_decision("place_order");
        m.add_decisions("signal", 3);
        m.inc_risk_rejection("max_position");
        m.set_venue_connected("binance-usdm", true);
        m.inc_venue_error("binance-usdm", "timeout");
        m.set_market_data_age("BTCUSDT", Duration::from_millis(1500));
        m.set_journal_bytes(4096);
        m.set_halted(true);
        m.set_session_info("paper", "binance-usdm", "sma_cross");
        let text = m.encode();
        for line in [
            "keel_equity 10250.5",
            "keel_position{symbol=\"BTCUSDT\"} -0.25",
            "keel_strategy_pnl{strategy=\"sma_cross\"} 12.5",
            "keel_decisions_total{kind=\"place_order\"} 1",
            "keel_decisions_total{kind=\"signal\"} 3",
            "keel_risk_rejections_total{reason=\"max_position\"} 1",
            "keel_venue_connected{venue=\"binance-usdm\"} 1",
            "keel_venue_errors_total{venue=\"binance-usdm\",kind=\"timeout\"} 1",
            "keel_market_data_age_seconds{symbol=\"BTCUSDT\"} 1.5",
            "keel_journal_bytes 4096",
            "keel_halted 1",
            "keel_session_info{mode=\"paper\",venue=\"binance-usdm\",strategy=\"sma_cross\"} 1",
        ] {
            assert!(has_line(&text, line), "{line}:\n{text}");
        }
    }

    #[test]
    fn session_info_keeps_only_the_latest_session() {
        let m = Metrics::new();
        m.set_session_info("paper", "okx", "rsi");
        m.set_session_info("live", "okx", "rsi");
        let text = m.encode();
        assert_eq!(samples(&text, "keel_session_info").len(), 1, "{text}");
        assert!(text.contains("mode=\"live\""));
    }

    #[test]
    fn latency_histogram_has_1_2_5_buckets_from_1us_to_100ms() {
        let m = Metrics::new();
        m.observe_decision_latency(Duration::from_micros(3));
        m.observe_decision_latency(Duration::from_millis(30));
        m.observe_decision_latency(Duration::from_secs(1));
        let text = m.encode();
        let buckets = samples(&text, "keel_decision_latency_seconds_bucket");
        assert_eq!(
            buckets.len(),
            DECISION_LATENCY_BUCKETS_SECONDS.len() + 1,
            "{text}"
        );
        for line in [
            "keel_decision_latency_seconds_bucket{le=\"0.000001\"} 0",
            "keel_decision_latency_seconds_bucket{le=\"0.000002\"} 0",
            "keel_decision_latency_seconds_bucket{le=\"0.000005\"} 1",
            "keel_decision_latency_seconds_bucket{le=\"0.02\"} 1",
            "keel_decision_latency_seconds_bucket{le=\"0.05\"} 2",
            "keel_decision_latency_seconds_bucket{le=\"0.1\"} 2",
            "keel_decision_latency_seconds_bucket{le=\"+Inf\"} 3",
            "keel_decision_latency_seconds_count 3",
        ] {
            assert!(has_line(&text, line), "{line}:\n{text}");
        }
    }

    #[test]
    fn alert_stats_never_move_a_counter_backwards() {
        let m = Metrics::new();
        m.set_alert_stats(5, 1);
        m.set_alert_stats(3, 0);
        m.inc_alert_sent();
        let text = m.encode();
        assert!(has_line(&text, "keel_alerts_sent_total 6"), "{text}");
        assert!(has_line(&text, "keel_alerts_dropped_total 1"), "{text}");
    }

    #[test]
    fn bind_error_names_the_address() {
        let taken = bind("127.0.0.1:0").expect("bind an ephemeral port");
        let addr = taken.local_addr().expect("local addr").to_string();
        let err = bind(&addr).expect_err("the port is taken");
        let message = format!("{err:#}");
        assert!(message.contains(&addr), "{message}");
    }

    /// One HTTP/1.0 request over a plain socket; returns the status line and the body.
    fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, String, String) {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("send");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
        let status = head.lines().next().unwrap_or_default().to_owned();
        let content_type = head
            .lines()
            .find_map(|l| l.strip_prefix("content-type: "))
            .unwrap_or_default()
            .to_owned();
        (status, content_type, body.to_owned())
    }

    #[test]
    fn server_answers_metrics_healthz_and_404_then_stops() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let std_listener = bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("local addr");
        let metrics = Arc::new(Metrics::new());
        metrics.set_equity(42.0);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(async move {
            let listener = TcpListener::from_std(std_listener).expect("tokio listener");
            serve(listener, metrics, async {
                let _ = stop_rx.await;
            })
            .await;
        });

        let (status, content_type, body) = get(addr, "GET", "/metrics");
        assert_eq!(status, "HTTP/1.0 200 OK");
        assert_eq!(content_type, CONTENT_TYPE);
        assert!(has_line(&body, "keel_equity 42.0") || has_line(&body, "keel_equity 42"));
        assert!(body.ends_with("# EOF\n"));

        let (status, _, body) = get(addr, "GET", "/healthz");
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.0 200 OK", "ok"));
        let (status, _, _) = get(addr, "GET", "/nope");
        assert_eq!(status, "HTTP/1.0 404 Not Found");
        let (status, _, _) = get(addr, "POST", "/metrics");
        assert_eq!(status, "HTTP/1.0 405 Method Not Allowed");

        stop_tx.send(()).expect("server is running");
        rt.block_on(server).expect("server task ends cleanly");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "listener closed"
        );
    }
}
