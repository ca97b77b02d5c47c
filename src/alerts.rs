//! Telegram alerts: fills, risk events, errors, daily reports, startup and shutdown notices sent
//! to one chat through the Bot API's `sendMessage`.
//!
//! Contract:
//! - [`Alerter::send`] never blocks and never awaits, so the engine thread (a plain std thread)
//!   can call it on its hot path: it puts the alert in a bounded queue (`queue` entries) with a
//!   non-blocking `try_send`; when the queue is full the alert is dropped and counted, and the
//!   next message delivered starts with a line saying how many were dropped;
//! - one background task on the I/O runtime sends the messages in queue order, at least
//!   `min_interval` apart (Telegram allows about one message a second per chat); a 429 waits the
//!   `parameters.retry_after` Telegram gives; 5xx, timeouts and network errors are retried with a
//!   capped exponential backoff; every message gets at most `max_attempts` requests, then it is
//!   counted as failed and the task moves on; any other 4xx (bad token, chat not found) is not
//!   retried. Each failure is one line on stderr;
//! - [`AlertTask::shutdown`] stops accepting alerts, delivers what is queued within a grace
//!   period (so the "stopped" notice goes out on SIGTERM), and counts the rest as failed;
//! - the bot token is a secret: it lives in [`BotToken`], whose `Debug`/`Display` print
//!   `BotToken(***)`; it appears only in the request URL, which is never printed (transport errors
//!   are stripped of their URL, and every failure line is redacted as a last defence);
//! - messages are plain text (no `parse_mode`, so nothing to escape), cut to Telegram's 4096
//!   characters with a visible marker.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Telegram's limit on a message's text, counted (conservatively) in UTF-16 code units.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Appended to a message cut to [`MAX_MESSAGE_CHARS`].
pub const TRUNCATION_MARKER: &str = "\n[... truncated]";

/// Whole-request deadline for one `sendMessage`: a stalled connection must not hold the queue.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Retry backoff: the first wait is twice `max(min_interval, BACKOFF_BASE_MIN)`, doubling up to
/// `BACKOFF_MAX`.
const BACKOFF_BASE_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Longest `retry_after` honoured; a larger value is clamped so the bound on a stall holds.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(600);

/// Largest response body read; Telegram's answers are a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 << 10;

/// Errors setting alerts up. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(
        "environment variable {var} is not set: put the Telegram bot token (from @BotFather) there"
    )]
    TokenUnset { var: String },
    #[error(
        "environment variable {var} is empty: put the Telegram bot token (from @BotFather) there"
    )]
    TokenEmpty { var: String },
    #[error(
        "environment variable {var} is not valid UTF-8, so it cannot hold a Telegram bot token"
    )]
    TokenNotUnicode { var: String },
    #[error(
        "{source_name} does not look like a Telegram bot token (expected `<bot id>:<secret>` made \
         of letters, digits, '_' and '-')"
    )]
    TokenMalformed { source_name: String },
}

/// A Telegram bot token. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

impl BotToken {
    /// Wraps a token as is (no checks); prefer [`BotToken::from_env`] or [`BotToken::parse`].
    pub fn new(secret: impl Into<String>) -> BotToken {
        BotToken(secret.into())
    }

    /// Reads the token from the environment variable `var`. The error names the variable,
    /// never its value.
    pub fn from_env(var: &str) -> Result<BotToken, AlertError> {
        match std::env::var(var) {
            Ok(value) => BotToken::parse(var, &value),
            Err(std::env::VarError::NotPresent) => Err(AlertError::TokenUnset { var: var.into() }),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(AlertError::TokenNotUnicode { var: var.into() })
            }
        }
    }

    /// Checks a token read from `source_name` (a variable or file name, used in errors only):
    /// surrounding whitespace is trimmed (secret files often end in a newline); the rest must be
    /// `<digits>:<letters, digits, '_', '-'>`, which also keeps it safe inside a URL path.
    pub fn parse(source_name: &str, value: &str) -> Result<BotToken, AlertError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(AlertError::TokenEmpty {
                var: source_name.into(),
            });
        }
        let well_formed = value.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !secret.is_empty()
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !well_formed {
            return Err(AlertError::TokenMalformed {
                source_name: source_name.into(),
            });
        }
        Ok(BotToken(value.to_string()))
    }

    /// The secret, for building the request URL and for redaction only.
    fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the token replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(***)")
    }
}

impl fmt::Display for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(***)")
    }
}

/// Where and how alerts are sent.
#[derive(Clone, Debug)]
pub struct TelegramConfig {
    /// Scheme, host and optional port, no trailing slash (`https://api.telegram.org`).
    pub base_url: String,
    pub chat_id: String,
    pub token: BotToken,
    /// Least time between two requests (Telegram: about one message a second per chat).
    pub min_interval: Duration,
    /// Requests per message at most, the first included.
    pub max_attempts: u32,
    /// Alerts waiting to be sent at most; more are dropped and counted.
    pub queue: usize,
    /// Shown at the start of every message, e.g. `keel paper btc-sma`.
    pub label: String,
}

impl TelegramConfig {
    /// Production URL, 1 s between messages, 5 attempts, 256 queued alerts.
    pub fn new(
        chat_id: impl Into<String>,
        token: BotToken,
        label: impl Into<String>,
    ) -> TelegramConfig {
        TelegramConfig {
            base_url: "https://api.telegram.org".into(),
            chat_id: chat_id.into(),
            token,
            min_interval: Duration::from_secs(1),
            max_attempts: 5,
            queue: 256,
            label: label.into(),
        }
    }
}

/// One notice for the operator. Values arrive formatted by the caller.
#[derive(Clone, Debug, PartialEq)]
pub enum Alert {
    Fill {
        symbol: String,
        side: String,
        qty: String,
        price: String,
        fee: String,
        client_id: u64,
        /// `paper` or `live`.
        mode: String,
    },
    /// Daily loss limit, kill switch, failsafe fired or cleared.
    Risk {
        what: String,
        detail: String,
    },
    Error {
        context: String,
        message: String,
    },
    DailyReport {
        date: String,
        equity: String,
        day_pnl: String,
        day_return_pct: String,
        realized_pnl: String,
        trades: u64,
        /// (symbol, quantity) of every open position.
        open_positions: Vec<(String, String)>,
    },
    /// Started, with e.g. a recovery or divergence report.
    Startup {
        text: String,
    },
    Shutdown {
        text: String,
    },
}

impl Alert {
    /// The message text: a `[label]` first line, then the alert; plain text, at most
    /// [`MAX_MESSAGE_CHARS`].
    pub fn render(&self, label: &str) -> String {
        let head = if label.is_empty() {
            String::new()
        } else {
            format!("[{label}] ")
        };
        let text = match self {
            Alert::Fill {
                symbol,
                side,
                qty,
                price,
                fee,
                client_id,
                mode,
            } => format!(
                "{head}Fill ({mode})\n{side} {qty} {symbol} @ {price}\nfee {fee}, order {client_id}"
            ),
            Alert::Risk { what, detail } => format!("{head}RISK: {what}\n{detail}"),
            Alert::Error { context, message } => format!("{head}ERROR in {context}\n{message}"),
            Alert::DailyReport {
                date,
                equity,
                day_pnl,
                day_return_pct,
                realized_pnl,
                trades,
                open_positions,
            } => {
                let mut t = format!(
                    "{head}Daily report {date}\nequity {equity}\nday P&L {day_pnl} \
                     ({day_return_pct}%)\nrealized P&L {realized_pnl}\ntrades {trades}\n"
                );
                if open_positions.is_empty() {
                    t.push_str("open positions: none");
                } else {
                    t.push_str("open positions:");
                    for (symbol, qty) in open_positions {
                        t.push_str(&format!("\n  {symbol} {qty}"));
                    }
                }
                t
            }
            Alert::Startup { text } => format!("{head}Started\n{text}"),
            Alert::Shutdown { text } => format!("{head}Stopped\n{text}"),
        };
        fit_message(text.trim_end().to_string())
    }
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] UTF-16 units (Telegram's count), marker included.
pub fn fit_message(text: String) -> String {
    if text.encode_utf16().count() <= MAX_MESSAGE_CHARS {
        return text;
    }
    let budget = MAX_MESSAGE_CHARS - TRUNCATION_MARKER.encode_utf16().count();
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if used + c.len_utf16() > budget {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    let mut cut = text[..end].to_string();
    cut.push_str(TRUNCATION_MARKER);
    cut
}

/// Counters since [`spawn`]. `dropped`: refused because the queue was full or alerts were shut
/// down; `failed`: accepted but never delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertStats {
    pub sent: u64,
    pub dropped: u64,
    pub failed: u64,
}

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Drops not yet announced in a delivered message.
    unannounced_drops: AtomicU64,
    /// Accepted and not yet delivered or given up on (the one in flight included).
    pending: AtomicU64,
    closed: AtomicBool,
    last_failure: Mutex<Option<String>>,
}

/// The engine's handle: cheap to clone, `send` never blocks.
#[derive(Clone)]
pub struct Alerter {
    tx: Option<mpsc::Sender<Alert>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Alerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerter")
            .field("enabled", &self.tx.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Alerter {
    /// An alerter that discards everything (Telegram not configured).
    pub fn disabled() -> Alerter {
        Alerter {
            tx: None,
            shared: Arc::default(),
        }
    }

    /// Queues `alert` without blocking; when the queue is full (or alerts are shut down) the
    /// alert is dropped and counted.
    pub fn send(&self, alert: Alert) {
        let Some(tx) = &self.tx else { return };
        if self.shared.closed.load(Ordering::Acquire) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Counted before the send so the task never sees a delivered alert not yet counted.
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        if tx.try_send(alert).is_err() {
            self.shared.pending.fetch_sub(1, Ordering::AcqRel);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            self.shared.unannounced_drops.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub fn stats(&self) -> AlertStats {
        AlertStats {
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }

    /// The stderr line of the latest failure (already free of the token), if any.
    pub fn last_failure(&self) -> Option<String> {
        match self.shared.last_failure.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The background sender; [`AlertTask::shutdown`] ends it.
pub struct AlertTask {
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl AlertTask {
    /// Stops accepting alerts, delivers what is queued within `grace`, then ends the task;
    /// alerts still undelivered when `grace` runs out are counted as failed. Returns the final
    /// counters.
    pub async fn shutdown(mut self, grace: Duration) -> AlertStats {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(grace, &mut self.join).await.is_err() {
            self.join.abort();
            let _ = (&mut self.join).await;
            let unsent = self.shared.pending.swap(0, Ordering::AcqRel);
            if unsent > 0 {
                self.shared.failed.fetch_add(unsent, Ordering::Relaxed);
                let line = format!(
                    "keel alerts: {unsent} alert(s) not delivered within the {} ms shutdown grace",
                    grace.as_millis()
                );
                record_failure(&self.shared, line);
            }
        }
        AlertStats {
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }
}

/// Starts the sender on `handle`.
pub fn spawn(config: TelegramConfig, handle: &tokio::runtime::Handle) -> (Alerter, AlertTask) {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let (stop_tx, stop_rx) = oneshot::channel();
    let shared = Arc::new(Shared::default());
    let sender = Sender::new(config, shared.clone());
    let join = handle.spawn(sender.run(rx, stop_rx));
    let alerter = Alerter {
        tx: Some(tx),
        shared: shared.clone(),
    };
    let task = AlertTask {
        stop: Some(stop_tx),
        join,
        shared,
    };
    (alerter, task)
}

/// Why a message was given up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// Telegram refused it (a 4xx other than 429); not retried.
    Rejected { status: u16, description: String },
    /// Every attempt failed; `last` says how the last one did.
    GaveUp { attempts: u32, last: String },
    /// The HTTP client could not be built.
    Setup { message: String },
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Rejected {
                status,
                description,
            } => write!(f, "Telegram refused it with HTTP {status}: {description}"),
            SendFailure::GaveUp { attempts, last } => {
                write!(f, "gave up after {attempts} attempt(s), last: {last}")
            }
            SendFailure::Setup { message } => write!(f, "HTTP client setup failed: {message}"),
        }
    }
}

/// The stderr line for a message not delivered, with the token redacted.
pub fn failure_line(failure: &SendFailure, token: &BotToken) -> String {
    token.redact(&format!("keel alerts: message not delivered: {failure}"))
}

/// A transport error as text, without the request URL (it holds the token).
pub fn transport_error_text(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!(
            "no complete answer within {} ms",
            REQUEST_TIMEOUT.as_millis()
        );
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn record_failure(shared: &Shared, line: String) {
    eprintln!("{line}");
    match shared.last_failure.lock() {
        Ok(mut g) => *g = Some(line),
        Err(poisoned) => *poisoned.into_inner() = Some(line),
    }
}

/// What one request came to.
enum Attempt {
    Delivered,
    /// Not retried.
    Rejected {
        status: u16,
        description: String,
    },
    /// Retried after `wait` (None: the backoff).
    Retry {
        wait: Option<Duration>,
        why: String,
    },
}

struct Sender {
    config: TelegramConfig,
    shared: Arc<Shared>,
    http: Result<reqwest::Client, String>,
    url: String,
    /// Earliest time the next request may go out.
    next_at: Instant,
}

impl Sender {
    fn new(config: TelegramConfig, shared: Arc<Shared>) -> Sender {
        // reqwest is built without a crypto provider; ring is installed as the process default
        // (an already installed provider is kept).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(transport_error_text);
        let url = format!(
            "{}/bot{}/sendMessage",
            config.base_url.trim_end_matches('/'),
            config.token.expose()
        );
        Sender {
            config,
            shared,
            http,
            url,
            next_at: Instant::now(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Alert>, mut stop: oneshot::Receiver<()>) {
        let mut stop_pending = true;
        loop {
            let alert = tokio::select! {
                biased;
                stopped = &mut stop, if stop_pending => {
                    stop_pending = false;
                    // A dropped AlertTask is not a shutdown: keep serving the Alerters.
                    if stopped.is_ok() {
                        rx.close();
                    }
                    continue;
                }
                alert = rx.recv() => match alert {
                    Some(alert) => alert,
                    None => break,
                },
            };
            self.deliver(alert).await;
            self.shared.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn deliver(&mut self, alert: Alert) {
        let drops = self.shared.unannounced_drops.swap(0, Ordering::AcqRel);
        let mut text = alert.render(&self.config.label);
        if drops > 0 {
            text = fit_message(format!(
                "({drops} alert(s) dropped: alert queue full)\n{text}"
            ));
        }
        match self.post_with_retries(&text).await {
            Ok(()) => {
                self.shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(failure) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                // Not announced after all: the next delivered message says so.
                self.shared
                    .unannounced_drops
                    .fetch_add(drops, Ordering::AcqRel);
                record_failure(&self.shared, failure_line(&failure, &self.config.token));
            }
        }
    }

    async fn post_with_retries(&mut self, text: &str) -> Result<(), SendFailure> {
        let http = match &self.http {
            Ok(http) => http.clone(),
            Err(message) => {
                return Err(SendFailure::Setup {
                    message: message.clone(),
                });
            }
        };
        let body = serde_json::json!({
            "chat_id": self.config.chat_id,
            "text": text,
            "disable_web_page_preview": true,
        })
        .to_string();
        let attempts = self.config.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            tokio::time::sleep_until(self.next_at).await;
            let outcome = self.post_once(&http, body.clone()).await;
            let now = Instant::now();
            self.next_at = now + self.config.min_interval;
            match outcome {
                Attempt::Delivered => return Ok(()),
                Attempt::Rejected {
                    status,
                    description,
                } => {
                    return Err(SendFailure::Rejected {
                        status,
                        description,
                    });
                }
                Attempt::Retry { wait, why } => {
                    last = why;
                    let wait = wait.unwrap_or_else(|| self.backoff(attempt));
                    self.next_at = self.next_at.max(now + wait);
                }
            }
        }
        Err(SendFailure::GaveUp { attempts, last })
    }

    /// The wait after failed attempt number `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.min_interval.max(BACKOFF_BASE_MIN);
        let factor = 1u32 << attempt.min(16);
        base.saturating_mul(factor).min(BACKOFF_MAX)
    }

    async fn post_once(&self, http: &reqwest::Client, body: String) -> Attempt {
        let sent = http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Attempt::Rejected {
                    status: 0,
                    description: format!("request not built: {}", transport_error_text(e)),
                };
            }
            Err(e) => {
                return Attempt::Retry {
                    wait: None,
                    why: transport_error_text(e),
                };
            }
        };
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while bytes.len() < MAX_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status is known; a torn body only costs the description.
                Err(_) => break,
            }
        }
        classify(status, &bytes)
    }
}

/// Telegram's answer to one request, by status and its JSON body.
fn classify(status: u16, body: &[u8]) -> Attempt {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let description = json
        .as_ref()
        .and_then(|j| j.get("description"))
        .and_then(|d| d.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status} without a description"));
    match status {
        200..=299 => Attempt::Delivered,
        429 => {
            let retry_after = json
                .as_ref()
                .and_then(|j| j.pointer("/parameters/retry_after"))
                .and_then(|r| r.as_u64())
                .map(|s| Duration::from_secs(s).min(RETRY_AFTER_MAX));
            Attempt::Retry {
                wait: retry_after,
                why: format!("HTTP 429: {description}"),
            }
        }
        400..=499 => Attempt::Rejected {
            status,
            description,
        },
        _ => Attempt::Retry {
            wait: None,
            why: format!("HTTP {status}: {description}"),
        },
    }
}
