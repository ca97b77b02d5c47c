//! Backtest configuration files (TOML).
//!
//! Unknown keys are errors, so a typo such as `slow_period` for `slow` is reported with its
//! line instead of silently running with a default. Paths are relative to the directory of
//! the configuration file. See `examples/` for commented files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use keel_engine::{
    CoreConfig, Direction, Fixed, Interval, Market, RiskConfig, SimConfig, Sizing, StopRule,
    StrategyConfig, Symbol, TargetRule,
};
use keel_replay::backtest::BacktestSpec;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestFile {
    pub data: DataSection,
    pub account: AccountSection,
    pub strategy: StrategySection,
    #[serde(default)]
    pub execution: ExecutionSection,
    #[serde(default)]
    pub risk: RiskSection,
    #[serde(default)]
    pub market: MarketSection,
    /// Paper and live sessions only (see `session_config`); a backtest ignores them, so one
    /// file serves both.
    pub venue: Option<crate::session_config::VenueSection>,
    pub session: Option<crate::session_config::SessionSection>,
    pub failsafe: Option<crate::session_config::FailsafeSection>,
    pub alerts: Option<crate::session_config::AlertsSection>,
    pub metrics: Option<crate::session_config::MetricsSection>,
    pub postgres: Option<crate::session_config::PostgresSection>,
    pub live: Option<crate::session_config::LiveSection>,
}

/// `[market]`: what the account trades.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSection {
    /// "spot" (default) or "perpetual" (USD-M linear, isolated margin).
    #[serde(default = "default_spot", rename = "type")]
    pub kind: String,
    /// Perpetual: leverage (default 1).
    pub leverage: Option<f64>,
    /// Perpetual: maintenance margin rate (default 0.004, Binance BTCUSDT's first tier).
    pub maintenance_margin: Option<f64>,
    /// "long" (default), "short" or "long_short" (perpetual only for the last two): with
    /// shorts, the strategy's exit signal opens the short and its entry covers it.
    #[serde(default = "default_long")]
    pub direction: String,
}

fn default_spot() -> String {
    "spot".into()
}
fn default_long() -> String {
    "long".into()
}

impl Default for MarketSection {
    fn default() -> Self {
        MarketSection {
            kind: default_spot(),
            leverage: None,
            maintenance_margin: None,
            direction: default_long(),
        }
    }
}

/// A funding-rate file for the one symbol, or a table of symbol → file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FundingFiles {
    One(PathBuf),
    PerSymbol(std::collections::BTreeMap<String, PathBuf>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Candle store directory (backtests; a paper session takes its candles from the venue).
    pub store: Option<PathBuf>,
    /// One symbol, or `symbols` for several (give exactly one of the two).
    pub symbol: Option<String>,
    pub symbols: Option<Vec<String>>,
    pub interval: String,
    /// Optional longer interval the strategy runs on (e.g. "1h" over 1m bars); orders
    /// still fill on the stored bars, at the first open after the decision.
    pub resample: Option<String>,
    /// Optional first bar (inclusive): `2022-01-01` or `2022-01-01T12:00:00Z`.
    pub from: Option<String>,
    /// Optional end (exclusive).
    pub to: Option<String>,
    /// Perpetuals: funding-rate CSV (one symbol) or `{ SYMBOL = "file.csv", ... }`.
    pub funding: Option<FundingFiles>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    /// Quote-asset cash at the start.
    pub starting_balance: f64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StrategySection {
    SmaCross {
        fast: u32,
        slow: u32,
    },
    EmaCross {
        fast: u32,
        slow: u32,
    },
    Rsi {
        #[serde(default = "default_rsi_period")]
        period: u32,
        #[serde(default = "default_oversold")]
        oversold: f64,
        #[serde(default = "default_overbought")]
        overbought: f64,
    },
    Bollinger {
        #[serde(default = "default_bb_period")]
        period: u32,
        #[serde(default = "default_bb_k")]
        k: f64,
    },
    Macd {
        #[serde(default = "default_macd_fast")]
        fast: u32,
        #[serde(default = "default_macd_slow")]
        slow: u32,
        #[serde(default = "default_macd_signal")]
        signal: u32,
    },
    Grid {
        lower: Option<f64>,
        upper: Option<f64>,
        range_pct: Option<f64>,
        levels: u32,
        #[serde(default)]
        exit_pct: f64,
    },
}

fn default_rsi_period() -> u32 {
    14
}
fn default_oversold() -> f64 {
    30.0
}
fn default_overbought() -> f64 {
    70.0
}
fn default_bb_period() -> u32 {
    20
}
fn default_bb_k() -> f64 {
    2.0
}
fn default_macd_fast() -> u32 {
    12
}
fn default_macd_slow() -> u32 {
    26
}
fn default_macd_signal() -> u32 {
    9
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionSection {
    /// Taker fee in basis points of notional (Binance USD-M futures: 5; spot: 10).
    #[serde(default = "default_fee_bps")]
    pub taker_fee_bps: f64,
    /// Adverse slippage on market fills, basis points of price.
    #[serde(default)]
    pub slippage_bps: f64,
    /// Fraction of equity committed to an entry, 0 < x ≤ 1.
    #[serde(default = "default_allocation")]
    pub allocation: f64,
    /// Order quantity step; quantities are rounded down to it.
    #[serde(default = "default_lot_size")]
    pub lot_size: f64,
    /// Maker fee (resting limit fills: take profits, grid levels); defaults to the taker fee.
    pub maker_fee_bps: Option<f64>,
    /// When a stop and a take profit both fall inside one candle, count the stop (true, the
    /// conservative default) or the target.
    #[serde(default = "default_true")]
    pub stop_first: bool,
    /// Time from a decision to its arrival at the venue, in milliseconds.
    #[serde(default)]
    pub latency_ms: f64,
    /// Largest share of a bar's volume the orders of one symbol may fill (0.1 = 10%); 0 = no
    /// cap.
    #[serde(default)]
    pub participation: f64,
}

fn default_true() -> bool {
    true
}

/// `[risk]`: the risk manager's rules. Defaults: 1% risk per trade, 2% stop, 4% target, 5
/// positions, 20% exposure per asset, 5% daily loss limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSection {
    #[serde(default = "default_risk_per_trade")]
    pub risk_per_trade: f64,
    /// "percent", "atr", "trailing_percent", "trailing_atr" or "none".
    #[serde(default = "default_percent")]
    pub stop: String,
    pub stop_pct: Option<f64>,
    pub stop_atr: Option<f64>,
    /// "percent", "atr" or "none".
    #[serde(default = "default_percent")]
    pub take_profit: String,
    pub take_profit_pct: Option<f64>,
    pub take_profit_atr: Option<f64>,
    #[serde(default = "default_atr_period")]
    pub atr_period: u32,
    #[serde(default = "default_max_positions")]
    pub max_positions: u32,
    #[serde(default = "default_max_exposure")]
    pub max_exposure: f64,
    #[serde(default = "default_daily_loss_limit")]
    pub daily_loss_limit: f64,
    #[serde(default)]
    pub daily_loss_flatten: bool,
}

fn default_risk_per_trade() -> f64 {
    0.01
}
fn default_percent() -> String {
    "percent".into()
}
fn default_atr_period() -> u32 {
    14
}
fn default_max_positions() -> u32 {
    5
}
fn default_max_exposure() -> f64 {
    0.2
}
fn default_daily_loss_limit() -> f64 {
    0.05
}

impl Default for RiskSection {
    fn default() -> Self {
        RiskSection {
            risk_per_trade: default_risk_per_trade(),
            stop: default_percent(),
            stop_pct: None,
            stop_atr: None,
            take_profit: default_percent(),
            take_profit_pct: None,
            take_profit_atr: None,
            atr_period: default_atr_period(),
            max_positions: default_max_positions(),
            max_exposure: default_max_exposure(),
            daily_loss_limit: default_daily_loss_limit(),
            daily_loss_flatten: false,
        }
    }
}

impl RiskSection {
    fn resolve(&self, leverage: Fixed) -> Result<RiskConfig> {
        // A distance given for a rule that does not use it is a mistake worth naming.
        let pick = |rule: &str, key: &str, value: Option<f64>, default: f64, uses: bool| match (
            value, uses,
        ) {
            (Some(_), false) => bail!("[risk] `{key}` is set but the rule is \"{rule}\""),
            (v, _) => fixed(key, v.unwrap_or(default)),
        };
        let stop = self.stop.as_str();
        let stop_pct = pick(
            stop,
            "stop_pct",
            self.stop_pct,
            0.02,
            matches!(stop, "percent" | "trailing_percent"),
        )?;
        let stop_atr = pick(
            stop,
            "stop_atr",
            self.stop_atr,
            2.0,
            matches!(stop, "atr" | "trailing_atr"),
        )?;
        let stop = match stop {
            "none" => StopRule::None,
            "percent" => StopRule::Percent(stop_pct),
            "trailing_percent" => StopRule::TrailingPercent(stop_pct),
            "atr" => StopRule::Atr(stop_atr),
            "trailing_atr" => StopRule::TrailingAtr(stop_atr),
            other => bail!(
                "[risk] stop = \"{other}\": expected \"percent\", \"atr\", \"trailing_percent\", \
                 \"trailing_atr\" or \"none\""
            ),
        };
        let tp = self.take_profit.as_str();
        let tp_pct = pick(
            tp,
            "take_profit_pct",
            self.take_profit_pct,
            0.04,
            tp == "percent",
        )?;
        let tp_atr = pick(
            tp,
            "take_profit_atr",
            self.take_profit_atr,
            4.0,
            tp == "atr",
        )?;
        let take_profit = match tp {
            "none" => TargetRule::None,
            "percent" => TargetRule::Percent(tp_pct),
            "atr" => TargetRule::Atr(tp_atr),
            other => {
                bail!("[risk] take_profit = \"{other}\": expected \"percent\", \"atr\" or \"none\"")
            }
        };
        let risk = RiskConfig {
            risk_per_trade: fixed("risk_per_trade", self.risk_per_trade)?,
            stop,
            take_profit,
            atr_period: self.atr_period,
            max_positions: self.max_positions,
            max_exposure: fixed("max_exposure", self.max_exposure)?,
            daily_loss_limit: fixed("daily_loss_limit", self.daily_loss_limit)?,
            daily_loss_flatten: self.daily_loss_flatten,
        };
        risk.validate(leverage)
            .map_err(|e| anyhow::anyhow!(e.replacen("risk:", "[risk]", 1)))?;
        Ok(risk)
    }
}

fn default_fee_bps() -> f64 {
    10.0
}
fn default_allocation() -> f64 {
    1.0
}
fn default_lot_size() -> f64 {
    0.00001
}

impl Default for ExecutionSection {
    fn default() -> Self {
        ExecutionSection {
            taker_fee_bps: default_fee_bps(),
            slippage_bps: 0.0,
            allocation: default_allocation(),
            lot_size: default_lot_size(),
            maker_fee_bps: None,
            stop_first: true,
            latency_ms: 0.0,
            participation: 0.0,
        }
    }
}

/// Parses a date or date-time (UTC unless it carries an offset) into Unix nanoseconds.
pub fn parse_time(text: &str) -> Result<i64> {
    let t = text.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return dt
            .timestamp_nanos_opt()
            .context("time is out of range (1677..2262)");
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return dt
                .and_utc()
                .timestamp_nanos_opt()
                .context("time is out of range (1677..2262)");
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(dt) = d.and_hms_opt(0, 0, 0)
    {
        return dt
            .and_utc()
            .timestamp_nanos_opt()
            .context("time is out of range (1677..2262)");
    }
    bail!("`{text}` is not a date (2022-01-01) or date-time (2022-01-01T12:00:00Z)")
}

fn fixed(name: &str, v: f64) -> Result<Fixed> {
    Fixed::from_f64(v).with_context(|| format!("`{name}` = {v} is out of range"))
}

/// Like `fixed`, for values that must stay positive at keel's 1e-8 resolution.
fn positive_fixed(name: &str, v: f64) -> Result<Fixed> {
    let f = fixed(name, v)?;
    if f <= Fixed::ZERO {
        bail!("`{name}` = {v} is below keel's resolution of 0.00000001");
    }
    Ok(f)
}

/// Reads and checks a backtest configuration file.
pub fn load_backtest(path: &Path, journal_dir: PathBuf) -> Result<BacktestSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    backtest_from_text(path, text, journal_dir)
}

/// Parses backtest configuration `text`; `path` names it in errors and anchors its relative
/// paths.
pub fn backtest_from_text(path: &Path, text: String, journal_dir: PathBuf) -> Result<BacktestSpec> {
    let file: BacktestFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    if file.data.store.is_none() {
        bail!(
            "{}: [data] store is required for a backtest (the candle store directory)",
            path.display()
        );
    }
    resolve(file, base, text, journal_dir).with_context(|| format!("in {}", path.display()))
}

/// The simulated venue a configuration file describes ([account], [execution], [market]);
/// the other sections must parse but are not used (a funding file is not read).
pub fn sim_from_text(path: &Path, text: &str) -> Result<SimConfig> {
    let mut file: BacktestFile = toml::from_str(text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    file.data.funding = None;
    let spec = resolve(file, Path::new("."), text.to_string(), PathBuf::new())
        .with_context(|| format!("in {}", path.display()))?;
    Ok(spec.sim)
}

/// The configuration text a session journal starts with (its `SessionStart`).
pub fn journaled_config_text(journal: &Path) -> Result<String> {
    let mut reader = keel_journal::Reader::open(journal)
        .with_context(|| format!("cannot open the journal {}", journal.display()))?;
    let Some(rec) = reader
        .next()
        .with_context(|| format!("reading the journal {}", journal.display()))?
    else {
        bail!("{} holds no journal records", journal.display());
    };
    match keel_replay::codec::decode(rec.seq, rec.kind, rec.ver, rec.payload) {
        Ok(keel_replay::codec::Decoded::Input(keel_engine::Event::SessionStart(s))) => {
            Ok(s.config_text)
        }
        Ok(_) => bail!(
            "{}: the first record is not a session start; is this a session journal?",
            journal.display()
        ),
        Err(e) => bail!("{}: {e}", journal.display()),
    }
}

/// A paper (or live) session's configuration: the backtest sections it shares, plus the
/// runtime sections.
pub struct SessionSpec {
    /// `store` is unused; `core`, `sim`, `symbols`, `interval` and `config_text` are.
    pub spec: BacktestSpec,
    pub runtime: crate::session_config::Runtime,
}

/// Reads and checks a paper-session configuration file.
pub fn load_session(path: &Path) -> Result<SessionSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    session_from_text(path, text)
}

pub fn session_from_text(path: &Path, text: String) -> Result<SessionSpec> {
    let file: BacktestFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let inner = || -> Result<SessionSpec> {
        if file.data.funding.is_some() {
            bail!("[data] funding is a backtest setting (a funding-rate file)");
        }
        let sections = crate::session_config::Sections {
            venue: file.venue.as_ref(),
            session: file.session.as_ref(),
            failsafe: file.failsafe.as_ref(),
            alerts: file.alerts.as_ref(),
            metrics: file.metrics.as_ref(),
            postgres: file.postgres.as_ref(),
            live: file.live.as_ref(),
        };
        let interval = Interval::parse(&file.data.interval)
            .map_err(anyhow::Error::msg)
            .context("[data] interval")?;
        let runtime = crate::session_config::resolve(sections, base, interval.ns)?;
        let spec = resolve(file, base, text, runtime.journal.clone())?;
        if spec.from_ns.is_some() || spec.to_ns.is_some() {
            bail!("[data] from/to are backtest settings: a session trades from now on");
        }
        Ok(SessionSpec { spec, runtime })
    };
    inner().with_context(|| format!("in {}", path.display()))
}

fn resolve(
    file: BacktestFile,
    base: &Path,
    text: String,
    journal_dir: PathBuf,
) -> Result<BacktestSpec> {
    let data = &file.data;
    let names: Vec<&str> = match (&data.symbol, &data.symbols) {
        (Some(one), None) => vec![one.as_str()],
        (None, Some(many)) if !many.is_empty() => many.iter().map(String::as_str).collect(),
        (None, Some(_)) => bail!("[data] symbols is empty"),
        (None, None) => bail!("[data] needs `symbol` (or `symbols` for several)"),
        (Some(_), Some(_)) => bail!("[data] give `symbol` or `symbols`, not both"),
    };
    let mut symbols: Vec<Symbol> = Vec::with_capacity(names.len());
    for name in names {
        let symbol = Symbol::new(name).with_context(|| format!("[data] symbol \"{name}\""))?;
        if symbols.contains(&symbol) {
            bail!("[data] symbol \"{name}\" is listed twice");
        }
        symbols.push(symbol);
    }
    let interval = Interval::parse(&data.interval)
        .map_err(anyhow::Error::msg)
        .context("[data] interval")?;
    let strategy_interval = match data.resample.as_deref() {
        None => interval,
        Some(text) => {
            let target = Interval::parse(text)
                .map_err(anyhow::Error::msg)
                .context("[data] resample")?;
            const DAY_NS: i64 = 86_400_000_000_000;
            if target.ns % interval.ns != 0 || target.ns < interval.ns {
                bail!(
                    "[data] resample = \"{text}\" must be a multiple of interval \"{}\"",
                    interval.name()
                );
            }
            if DAY_NS % target.ns != 0 {
                bail!("[data] resample = \"{text}\" must divide a day (e.g. 5m, 15m, 1h, 4h, 1d)");
            }
            target
        }
    };
    let from_ns = data
        .from
        .as_deref()
        .map(parse_time)
        .transpose()
        .context("[data] from")?;
    let to_ns = data
        .to
        .as_deref()
        .map(parse_time)
        .transpose()
        .context("[data] to")?;
    if let (Some(f), Some(t)) = (from_ns, to_ns)
        && f >= t
    {
        bail!("[data] `from` must be before `to`");
    }
    let balance = file.account.starting_balance;
    if !balance.is_finite() || balance <= 0.0 {
        bail!("[account] starting_balance must be positive, got {balance}");
    }
    let strategy = match file.strategy {
        StrategySection::SmaCross { fast, slow } => StrategyConfig::SmaCross { fast, slow },
        StrategySection::EmaCross { fast, slow } => StrategyConfig::EmaCross { fast, slow },
        StrategySection::Rsi {
            period,
            oversold,
            overbought,
        } => StrategyConfig::Rsi {
            period,
            oversold,
            overbought,
        },
        StrategySection::Bollinger { period, k } => StrategyConfig::Bollinger { period, k },
        StrategySection::Macd { fast, slow, signal } => StrategyConfig::Macd { fast, slow, signal },
        StrategySection::Grid {
            lower,
            upper,
            range_pct,
            levels,
            exit_pct,
        } => {
            if lower.is_some() && symbols.len() > 1 {
                bail!(
                    "[strategy] a grid with absolute `lower`/`upper` trades one symbol; \
                     use `range_pct` for several"
                );
            }
            let opt = |name: &str, v: Option<f64>| fixed(name, v.unwrap_or(0.0));
            StrategyConfig::Grid {
                lower: opt("lower", lower)?,
                upper: opt("upper", upper)?,
                range_pct: opt("range_pct", range_pct)?,
                levels,
                exit_pct: fixed("exit_pct", exit_pct)?,
            }
        }
    };
    strategy
        .validate()
        .map_err(anyhow::Error::msg)
        .context("[strategy]")?;
    let ex = &file.execution;
    if !(0.0..=1000.0).contains(&ex.taker_fee_bps) {
        bail!(
            "[execution] taker_fee_bps must be between 0 and 1000, got {}",
            ex.taker_fee_bps
        );
    }
    if !(0.0..=1000.0).contains(&ex.slippage_bps) {
        bail!(
            "[execution] slippage_bps must be between 0 and 1000, got {}",
            ex.slippage_bps
        );
    }
    if !(ex.allocation > 0.0 && ex.allocation <= 1.0) {
        bail!(
            "[execution] allocation must be in (0, 1], got {}",
            ex.allocation
        );
    }
    if !ex.lot_size.is_finite() || ex.lot_size <= 0.0 {
        bail!("[execution] lot_size must be positive, got {}", ex.lot_size);
    }
    let maker_fee_bps = ex.maker_fee_bps.unwrap_or(ex.taker_fee_bps);
    if !(-100.0..=1000.0).contains(&maker_fee_bps) {
        bail!(
            "[execution] maker_fee_bps must be between -100 (rebate) and 1000, got {maker_fee_bps}"
        );
    }
    let maker_fee = fixed("maker_fee_bps", maker_fee_bps / 10_000.0)?;
    let m = &file.market;
    let (market, leverage) = match m.kind.as_str() {
        "spot" => {
            if m.leverage.is_some() || m.maintenance_margin.is_some() {
                bail!("[market] `leverage` and `maintenance_margin` apply to type = \"perpetual\"");
            }
            (Market::Spot, Fixed::ONE)
        }
        "perpetual" => {
            let leverage = m.leverage.unwrap_or(1.0);
            if !(1.0..=125.0).contains(&leverage) {
                bail!("[market] leverage must be between 1 and 125, got {leverage}");
            }
            let mmr = m.maintenance_margin.unwrap_or(0.004);
            if !(0.0..0.5).contains(&mmr) {
                bail!("[market] maintenance_margin must be in [0, 0.5), got {mmr}");
            }
            let leverage = fixed("leverage", leverage)?;
            let market = Market::Perp {
                leverage,
                maintenance_margin: fixed("maintenance_margin", mmr)?,
            };
            (market, leverage)
        }
        other => bail!("[market] type = \"{other}\": expected \"spot\" or \"perpetual\""),
    };
    let perpetual = matches!(market, Market::Perp { .. });
    let direction = match m.direction.as_str() {
        "long" => Direction::Long,
        "short" => Direction::Short,
        "long_short" => Direction::LongShort,
        other => bail!(
            "[market] direction = \"{other}\": expected \"long\", \"short\" or \"long_short\""
        ),
    };
    if !perpetual && direction != Direction::Long {
        bail!(
            "[market] spot cannot sell short: direction must be \"long\" (or use type = \"perpetual\")"
        );
    }
    if matches!(strategy, StrategyConfig::Grid { .. }) && direction != Direction::Long {
        bail!("[market] the grid trades long only: direction must be \"long\"");
    }
    let risk = file.risk.resolve(leverage)?;
    if !(0.0..=3_600_000.0).contains(&ex.latency_ms) {
        bail!(
            "[execution] latency_ms must be between 0 and 3600000, got {}",
            ex.latency_ms
        );
    }
    if !(0.0..=1.0).contains(&ex.participation) {
        bail!(
            "[execution] participation must be in [0, 1], got {}",
            ex.participation
        );
    }
    let mut funding = Vec::new();
    match &data.funding {
        None => {}
        Some(_) if !perpetual => bail!("[data] funding applies to [market] type = \"perpetual\""),
        Some(FundingFiles::One(path)) => {
            if symbols.len() != 1 {
                bail!("[data] funding: with several symbols, give a table {{ SYMBOL = \"file\" }}");
            }
            let rows = crate::import::funding::read_funding(&base.join(path))?;
            funding.push((
                symbols[0],
                rows.iter().map(|r| (r.time_ns, r.rate)).collect(),
            ));
        }
        Some(FundingFiles::PerSymbol(map)) => {
            for (name, path) in map {
                let symbol = Symbol::new(name).with_context(|| format!("[data] funding {name}"))?;
                if !symbols.contains(&symbol) {
                    bail!("[data] funding names {name}, which is not in the symbols traded");
                }
                let rows = crate::import::funding::read_funding(&base.join(path))?;
                funding.push((symbol, rows.iter().map(|r| (r.time_ns, r.rate)).collect()));
            }
        }
    }
    let taker_fee = fixed("taker_fee_bps", ex.taker_fee_bps / 10_000.0)?;
    let slippage = fixed("slippage_bps", ex.slippage_bps / 10_000.0)?;
    let starting_balance = positive_fixed("starting_balance", balance)?;
    Ok(BacktestSpec {
        store: base.join(data.store.as_deref().unwrap_or(Path::new(""))),
        symbols: symbols.clone(),
        interval,
        from_ns,
        to_ns,
        embed_candles: false,
        core: CoreConfig {
            symbols,
            interval_ns: interval.ns,
            strategy_interval_ns: strategy_interval.ns,
            starting_balance,
            strategy,
            sizing: Sizing {
                allocation: positive_fixed("allocation", ex.allocation)?,
                lot_size: positive_fixed("lot_size", ex.lot_size)?,
                cost_reserve: taker_fee + slippage,
            },
            risk,
            direction,
            leverage,
            perpetual,
        },
        sim: SimConfig {
            taker_fee,
            maker_fee,
            stop_first: ex.stop_first,
            slippage,
            starting_balance,
            // Whole nanoseconds: sub-nanosecond latency means nothing to a bar simulator.
            latency_ns: (ex.latency_ms * 1e6).round() as i64,
            participation: fixed("participation", ex.participation)?,
            market,
        },
        funding,
        config_text: text,
        journal_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[data]
store = "store"
symbol = "BTCUSDT"
interval = "1m"
[account]
starting_balance = 10000
[strategy]
kind = "sma_cross"
fast = 10
slow = 30
"#;

    fn parse(text: &str) -> Result<BacktestSpec> {
        let file: BacktestFile = toml::from_str(text)?;
        resolve(file, Path::new("/cfg"), text.into(), PathBuf::from("/out"))
    }

    #[test]
    fn resolves_paths_against_the_config_directory() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(spec.store, PathBuf::from("/cfg/store"));
        assert_eq!(spec.sim.taker_fee, Fixed::parse("0.001").unwrap());
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        for (bad, key) in [
            (GOOD.replace("slow = 30", "slow_period = 30"), "slow_period"),
            (
                GOOD.replace("[account]", "[account]\nleverage = 3"),
                "leverage",
            ),
            (format!("{GOOD}\n[risk]\nx = 1\n"), "x"),
            (format!("{GOOD}\n[riks]\nstop = \"none\"\n"), "riks"),
        ] {
            let err = parse(&bad).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn every_strategy_kind_parses_with_defaults() {
        for (section, want) in [
            ("kind = \"ema_cross\"\nfast = 5\nslow = 20", "ema_cross"),
            ("kind = \"rsi\"", "rsi"),
            (
                "kind = \"rsi\"\nperiod = 7\noversold = 25\noverbought = 75",
                "rsi",
            ),
            ("kind = \"bollinger\"", "bollinger"),
            ("kind = \"macd\"\nsignal = 5", "macd"),
        ] {
            let text = GOOD.replace("kind = \"sma_cross\"\nfast = 10\nslow = 30", section);
            let spec = parse(&text).unwrap_or_else(|e| panic!("{section}: {e:#}"));
            assert_eq!(spec.core.strategy.name(), want);
        }
        let bad = GOOD.replace(
            "kind = \"sma_cross\"\nfast = 10\nslow = 30",
            "kind = \"rsi\"\noversold = 80",
        );
        assert!(format!("{:#}", parse(&bad).unwrap_err()).contains("oversold"));
        let typo = GOOD.replace(
            "kind = \"sma_cross\"\nfast = 10\nslow = 30",
            "kind = \"macd\"\nsignal_period = 5",
        );
        assert!(format!("{:#}", parse(&typo).unwrap_err()).contains("signal_period"));
    }

    #[test]
    fn resample_must_be_a_day_aligned_multiple() {
        let with = |r: &str| {
            GOOD.replace(
                "interval = \"1m\"",
                &format!("interval = \"1m\"\nresample = \"{r}\""),
            )
        };
        assert_eq!(
            parse(&with("1h")).unwrap().core.strategy_interval_ns,
            3_600_000_000_000
        );
        for bad in ["30s", "7m", "5h", "2d"] {
            assert!(parse(&with(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            parse(GOOD).unwrap().core.strategy_interval_ns,
            60_000_000_000
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let err = parse(&GOOD.replace("fast = 10", "fast = 40")).unwrap_err();
        assert!(format!("{err:#}").contains("must be smaller"), "{err:#}");
        let err = parse(&GOOD.replace("\"1m\"", "\"1y\"")).unwrap_err();
        assert!(format!("{err:#}").contains("interval"), "{err:#}");
    }

    #[test]
    fn values_below_resolution_are_rejected() {
        let err = parse(&format!("{GOOD}[execution]\nlot_size = 1e-12\n")).unwrap_err();
        assert!(format!("{err:#}").contains("lot_size"), "{err:#}");
        let err = parse(&GOOD.replace("10000", "1e-9")).unwrap_err();
        assert!(format!("{err:#}").contains("starting_balance"), "{err:#}");
    }

    #[test]
    fn risk_section_defaults_and_rules() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(spec.core.risk, RiskConfig::default());
        assert!(!spec.core.perpetual);
        let with = |body: &str| parse(&format!("{GOOD}[risk]\n{body}\n"));
        let r = with("stop = \"trailing_atr\"\nstop_atr = 3\ntake_profit = \"none\"")
            .unwrap()
            .core
            .risk;
        assert_eq!(r.stop, StopRule::TrailingAtr(Fixed::from_int(3)));
        assert_eq!(r.take_profit, TargetRule::None);
        let r = with("stop_pct = 0.015\ntake_profit_pct = 0.03")
            .unwrap()
            .core
            .risk;
        assert_eq!(r.stop, StopRule::Percent(Fixed::parse("0.015").unwrap()));
        assert_eq!(
            r.take_profit,
            TargetRule::Percent(Fixed::parse("0.03").unwrap())
        );
        for (body, needle) in [
            ("stop_atr = 2", "stop_atr"),
            ("stop = \"chandelier\"", "chandelier"),
            (
                "take_profit = \"atr\"\ntake_profit_pct = 0.1",
                "take_profit_pct",
            ),
            ("max_exposure = 1.5", "max_exposure"),
            ("risk_per_trade = 0", "risk_per_trade"),
            ("max_positions = 0", "max_positions"),
            ("stop_pct = 1.2", "stop"),
        ] {
            let err = format!("{:#}", with(body).unwrap_err());
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn market_section_spot_and_perpetual() {
        let perp = format!(
            "{GOOD}[market]\ntype = \"perpetual\"\nleverage = 5\ndirection = \"long_short\"\n\
             [risk]\nmax_exposure = 3\n"
        );
        let spec = parse(&perp).unwrap();
        assert!(spec.core.perpetual);
        assert_eq!(spec.core.leverage, Fixed::from_int(5));
        assert_eq!(spec.core.direction, Direction::LongShort);
        assert_eq!(
            spec.sim.market,
            Market::Perp {
                leverage: Fixed::from_int(5),
                maintenance_margin: Fixed::parse("0.004").unwrap()
            }
        );
        for (text, needle) in [
            (
                format!("{GOOD}[market]\ndirection = \"short\"\n"),
                "spot cannot sell short",
            ),
            (format!("{GOOD}[market]\nleverage = 3\n"), "leverage"),
            (
                format!("{GOOD}[market]\ntype = \"perpetual\"\nleverage = 500\n"),
                "leverage",
            ),
            (format!("{GOOD}[market]\ntype = \"margin\"\n"), "margin"),
            (format!("{GOOD}[risk]\nmax_exposure = 2\n"), "max_exposure"),
            (
                GOOD.replace(
                    "interval = \"1m\"",
                    "interval = \"1m\"\nfunding = \"f.csv\"",
                ),
                "perpetual",
            ),
            (
                format!("{GOOD}[execution]\nparticipation = 2\n"),
                "participation",
            ),
        ] {
            let err = format!("{:#}", parse(&text).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn one_or_several_symbols() {
        let two = GOOD.replace(
            "symbol = \"BTCUSDT\"",
            "symbols = [\"BTCUSDT\", \"ETHUSDT\"]",
        );
        let spec = parse(&two).unwrap();
        assert_eq!(spec.symbols.len(), 2);
        assert_eq!(spec.core.symbols, spec.symbols);
        for (text, needle) in [
            (
                GOOD.replace("symbol = \"BTCUSDT\"", "symbols = [\"A\", \"A\"]"),
                "twice",
            ),
            (
                GOOD.replace("symbol = \"BTCUSDT\"", "symbols = []"),
                "empty",
            ),
            (GOOD.replace("symbol = \"BTCUSDT\"\n", ""), "symbol"),
            (
                GOOD.replace(
                    "symbol = \"BTCUSDT\"",
                    "symbol = \"BTCUSDT\"\nsymbols = [\"ETHUSDT\"]",
                ),
                "not both",
            ),
        ] {
            let err = format!("{:#}", parse(&text).unwrap_err());
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn parses_dates_and_times_as_utc() {
        assert_eq!(parse_time("2022-01-01").unwrap(), 1_640_995_200_000_000_000);
        assert_eq!(
            parse_time("2022-01-01T00:01:00Z").unwrap(),
            1_640_995_260_000_000_000
        );
        assert_eq!(
            parse_time("2022-01-01T02:00:00+02:00").unwrap(),
            1_640_995_200_000_000_000
        );
        assert!(parse_time("yesterday").is_err());
    }
}
