//! The configuration sections of `keel paper` (and later `keel live`), on top of the
//! backtest sections they share ([data] symbols and interval, [account], [strategy],
//! [execution], [risk], [market]): one file runs a backtest and a paper session of the same
//! strategy. Unknown keys are errors, as everywhere. Secrets never appear in the file: the
//! Telegram bot token is read from the environment variable the file names.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use keel_adapters::model::Venue;
use serde::Deserialize;

/// `[venue]`: where live market data comes from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueSection {
    /// binance-spot, binance-usdm, bybit, okx or kraken.
    pub name: String,
    /// WebSocket scheme, host and port instead of the venue's production ones (a testnet, a
    /// mock), e.g. "wss://stream.testnet.binance.vision"; the venue's paths are kept.
    pub ws_url: Option<String>,
    /// Bybit only: "linear" (default) or "spot".
    pub category: Option<String>,
    /// REST scheme, host and port (testnet, mock) for fetching candles missed while the
    /// WebSocket was down; default the venue's production REST URL. `keel live` also
    /// places and queries orders there.
    pub rest_url: Option<String>,
    /// `keel live`: the account stream's scheme, host and port (testnet, mock); default the
    /// venue's production one.
    pub private_ws_url: Option<String>,
}

/// `[live]`: how `keel live` treats real orders. The API key and secret come from the
/// environment (`KEEL_<VENUE>_API_KEY`, `_API_SECRET`, OKX `_PASSPHRASE`), never this file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSection {
    /// The venue's dead-man switch: armed for this many seconds and renewed every quarter of
    /// it, so orders are cancelled if the process dies or hangs (default 60; 0: off). Binance
    /// spot has none.
    pub dead_man_secs: Option<u64>,
    /// An order decided before a crash that never reached the venue is sent at restart only
    /// if it was decided at most this long ago (default 30); older, it is recorded as
    /// rejected: the market it was decided for is gone.
    pub resend_within_secs: Option<u64>,
    /// Reconcile with the venue over REST this often besides at start-up and after each
    /// account-stream reconnect (default 300; 0: never).
    pub reconcile_every_secs: Option<u64>,
}

/// The resolved `[live]` settings.
#[derive(Clone, Debug)]
pub struct Live {
    pub private_ws_url: Option<String>,
    pub dead_man: Option<Duration>,
    pub resend_within: Duration,
    pub reconcile_every: Option<Duration>,
}

/// `[session]`: the journal and the session's life cycle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    /// The session journal directory. A journal that exists is resumed (recovery by replay).
    pub journal: PathBuf,
    /// Snapshot the core every this many candles (default 1440), and at every clean stop.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// A heartbeat timer input every this many seconds (default 60; 0: none).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    /// What SIGINT/SIGTERM do before the final snapshot: "keep" (default: orders and
    /// positions stay), "cancel" (cancel every order) or "flatten" (cancel and close all).
    #[serde(default = "default_keep")]
    pub on_stop: String,
    /// Flatten every position and cancel every order when a journal is resumed.
    #[serde(default)]
    pub flatten_on_restart: bool,
    /// Candles missed while disconnected or stopped are fetched over REST and applied in
    /// order before the next live one, up to this many per gap (default 1440; 0: never).
    #[serde(default = "default_backfill")]
    pub backfill_max: usize,
}

fn default_backfill() -> usize {
    1440
}

fn default_snapshot_every() -> u64 {
    1440
}
fn default_heartbeat() -> u64 {
    60
}
fn default_keep() -> String {
    "keep".into()
}

/// `[failsafe]`: what happens when market data stops.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailsafeSection {
    /// A symbol with no market data (trade, candle update) for this long trips the failsafe
    /// (default 3 × the candle interval, at least 60 s).
    pub stale_after_secs: Option<u64>,
    /// The venue connection down this long trips it (default 30 s).
    pub disconnected_after_secs: Option<u64>,
    /// "flatten" (default: cancel every order and close every position), "cancel" (cancel
    /// every order, keep positions) or "halt" (refuse new entries only). Every action
    /// refuses new entries until the data is healthy again.
    pub action: Option<String>,
}

/// `[alerts]`: Telegram.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    pub telegram_chat_id: String,
    /// The environment variable holding the bot token (default KEEL_TELEGRAM_TOKEN).
    pub telegram_token_env: Option<String>,
    /// Default https://api.telegram.org.
    pub telegram_base_url: Option<String>,
    /// The daily PnL report's UTC time, "HH:MM" (default "00:00").
    pub daily_report_utc: Option<String>,
    /// Alert on every fill (default true).
    pub fills: Option<bool>,
    /// Minimum milliseconds between two messages (default 1000).
    pub min_interval_ms: Option<u64>,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Default "127.0.0.1:9187" (loopback only).
    pub listen: Option<String>,
}

/// `[postgres]`: closed candles and fills also go to PostgreSQL as they happen.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    /// `postgres://user@host:port/db`; the password comes from `password_env` (or PGPASSWORD),
    /// never from this file.
    pub url: String,
    /// Default "PGPASSWORD".
    pub password_env: Option<String>,
    /// Default "candles" (as `keel data push`).
    pub candles_table: Option<String>,
    /// Default "fills".
    pub fills_table: Option<String>,
    /// The fills' `session` column (default: the journal directory's name).
    pub session: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Postgres {
    pub url: String,
    pub password_env: String,
    pub candles_table: String,
    pub fills_table: String,
    pub session: String,
}

/// What a command does to orders and positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Keep,
    Halt,
    Cancel,
    Flatten,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Halt => "halt",
            Action::Cancel => "cancel",
            Action::Flatten => "flatten",
        }
    }
}

/// The resolved runtime settings.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub venue: Venue,
    pub ws_url: Option<String>,
    pub rest_url: Option<String>,
    pub backfill_max: usize,
    pub bybit_category: keel_adapters::bybit::Category,
    pub journal: PathBuf,
    pub snapshot_every: u64,
    pub heartbeat: Option<Duration>,
    pub on_stop: Action,
    pub flatten_on_restart: bool,
    pub stale_after: Duration,
    pub disconnected_after: Duration,
    pub failsafe: Action,
    pub alerts: Option<Alerts>,
    pub metrics_listen: SocketAddr,
    pub postgres: Option<Postgres>,
    pub live: Live,
}

#[derive(Clone, Debug)]
pub struct Alerts {
    pub chat_id: String,
    pub token_env: String,
    pub base_url: String,
    /// Minutes after UTC midnight.
    pub daily_report_minute: u32,
    pub fills: bool,
    pub min_interval: Duration,
}

pub struct Sections<'a> {
    pub venue: Option<&'a VenueSection>,
    pub session: Option<&'a SessionSection>,
    pub failsafe: Option<&'a FailsafeSection>,
    pub alerts: Option<&'a AlertsSection>,
    pub metrics: Option<&'a MetricsSection>,
    pub postgres: Option<&'a PostgresSection>,
    pub live: Option<&'a LiveSection>,
}

/// Checks the runtime sections; `base` anchors relative paths, `interval_ns` is the candle
/// interval.
pub fn resolve(s: Sections<'_>, base: &Path, interval_ns: i64) -> Result<Runtime> {
    let Some(v) = s.venue else {
        bail!("a paper session needs a [venue] section (name = \"binance-spot\", ...)");
    };
    let Some(venue) = Venue::parse(&v.name) else {
        let names: Vec<&str> = Venue::ALL.iter().map(|v| v.name()).collect();
        bail!(
            "[venue] name = {:?}: expected one of {}",
            v.name,
            names.join(", ")
        );
    };
    let bybit_category = match (v.category.as_deref(), venue) {
        (None, _) | (Some("linear"), Venue::Bybit) => keel_adapters::bybit::Category::Linear,
        (Some("spot"), Venue::Bybit) => keel_adapters::bybit::Category::Spot,
        (Some(other), Venue::Bybit) => {
            bail!("[venue] category = {other:?}: expected \"linear\" or \"spot\"")
        }
        (Some(_), _) => bail!("[venue] category is for bybit only"),
    };
    if let Some(url) = &v.ws_url
        && !(url.starts_with("ws://") || url.starts_with("wss://"))
    {
        bail!("[venue] ws_url = {url:?}: expected a ws:// or wss:// URL");
    }
    if let Some(url) = &v.private_ws_url
        && !(url.starts_with("ws://") || url.starts_with("wss://"))
    {
        bail!("[venue] private_ws_url = {url:?}: expected a ws:// or wss:// URL");
    }
    if let Some(url) = &v.rest_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("[venue] rest_url = {url:?}: expected an http:// or https:// URL");
    }
    let Some(session) = s.session else {
        bail!("a paper session needs a [session] section with `journal = \"DIR\"`");
    };
    let action = |name: &str, key: &str, allowed: &[Action]| -> Result<Action> {
        allowed
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .with_context(|| {
                let names: Vec<&str> = allowed.iter().map(|a| a.name()).collect();
                format!("{key} = {name:?}: expected one of {}", names.join(", "))
            })
    };
    let on_stop = action(
        &session.on_stop,
        "[session] on_stop",
        &[Action::Keep, Action::Cancel, Action::Flatten],
    )?;
    if session.snapshot_every == 0 {
        bail!("[session] snapshot_every must be at least 1 candle");
    }
    let f = s.failsafe;
    let interval_secs = (interval_ns / 1_000_000_000).max(1) as u64;
    let stale = f
        .and_then(|f| f.stale_after_secs)
        .unwrap_or((3 * interval_secs).max(60));
    let disconnected = f.and_then(|f| f.disconnected_after_secs).unwrap_or(30);
    if stale == 0 || disconnected == 0 {
        bail!("[failsafe] stale_after_secs and disconnected_after_secs must be at least 1");
    }
    let failsafe = action(
        f.and_then(|f| f.action.as_deref()).unwrap_or("flatten"),
        "[failsafe] action",
        &[Action::Halt, Action::Cancel, Action::Flatten],
    )?;
    let alerts = match s.alerts {
        None => None,
        Some(a) => {
            if a.telegram_chat_id.trim().is_empty() {
                bail!("[alerts] telegram_chat_id is empty");
            }
            let minute = match a.daily_report_utc.as_deref() {
                None => 0,
                Some(t) => {
                    parse_hh_mm(t).with_context(|| format!("[alerts] daily_report_utc = {t:?}"))?
                }
            };
            Some(Alerts {
                chat_id: a.telegram_chat_id.clone(),
                token_env: a
                    .telegram_token_env
                    .clone()
                    .unwrap_or_else(|| "KEEL_TELEGRAM_TOKEN".into()),
                base_url: a
                    .telegram_base_url
                    .clone()
                    .unwrap_or_else(|| "https://api.telegram.org".into())
                    .trim_end_matches('/')
                    .to_string(),
                daily_report_minute: minute,
                fills: a.fills.unwrap_or(true),
                min_interval: Duration::from_millis(a.min_interval_ms.unwrap_or(1000)),
            })
        }
    };
    let listen = s
        .metrics
        .and_then(|m| m.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:9187".into());
    let metrics_listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("[metrics] listen = {listen:?}: expected IP:PORT"))?;
    let journal = base.join(&session.journal);
    let postgres = s.postgres.map(|p| Postgres {
        url: p.url.clone(),
        password_env: p
            .password_env
            .clone()
            .unwrap_or_else(|| "PGPASSWORD".into()),
        candles_table: p.candles_table.clone().unwrap_or_else(|| "candles".into()),
        fills_table: p.fills_table.clone().unwrap_or_else(|| "fills".into()),
        session: p.session.clone().unwrap_or_else(|| {
            journal
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "session".into())
        }),
    });
    let l = s.live;
    let dead_man = l.and_then(|l| l.dead_man_secs).unwrap_or(60);
    if (1..10).contains(&dead_man) {
        bail!("[live] dead_man_secs = {dead_man}: at least 10 (0 turns the switch off)");
    }
    let live = Live {
        private_ws_url: v
            .private_ws_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        dead_man: (dead_man > 0).then(|| Duration::from_secs(dead_man)),
        resend_within: Duration::from_secs(l.and_then(|l| l.resend_within_secs).unwrap_or(30)),
        reconcile_every: match l.and_then(|l| l.reconcile_every_secs).unwrap_or(300) {
            0 => None,
            n => Some(Duration::from_secs(n)),
        },
    };
    Ok(Runtime {
        live,
        venue,
        ws_url: v
            .ws_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        rest_url: v
            .rest_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        backfill_max: session.backfill_max,
        bybit_category,
        journal,
        snapshot_every: session.snapshot_every,
        heartbeat: (session.heartbeat_secs > 0)
            .then(|| Duration::from_secs(session.heartbeat_secs)),
        on_stop,
        flatten_on_restart: session.flatten_on_restart,
        stale_after: Duration::from_secs(stale),
        disconnected_after: Duration::from_secs(disconnected),
        failsafe,
        alerts,
        metrics_listen,
        postgres,
    })
}

/// "HH:MM" → minutes after midnight.
fn parse_hh_mm(text: &str) -> Result<u32> {
    let (h, m) = text.split_once(':').context("expected HH:MM")?;
    let h: u32 = h.parse().context("expected HH:MM")?;
    let m: u32 = m.parse().context("expected HH:MM")?;
    if h > 23 || m > 59 {
        bail!("expected HH:MM between 00:00 and 23:59");
    }
    Ok(h * 60 + m)
}
