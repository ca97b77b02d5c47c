//! Backtest configuration files (TOML).
//!
//! Unknown keys are errors, so a typo such as `slow_period` for `slow` is reported with its
//! line instead of silently running with a default. Paths are relative to the directory of
//! the configuration file. See `examples/` for commented files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use keel_engine::{CoreConfig, Fixed, Interval, SimConfig, Sizing, StrategyConfig, Symbol};
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Candle store directory.
    pub store: PathBuf,
    pub symbol: String,
    pub interval: String,
    /// Optional longer interval the strategy runs on (e.g. "1h" over 1m bars); orders
    /// still fill on the stored bars, at the first open after the decision.
    pub resample: Option<String>,
    /// Optional first bar (inclusive): `2022-01-01` or `2022-01-01T12:00:00Z`.
    pub from: Option<String>,
    /// Optional end (exclusive).
    pub to: Option<String>,
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
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return dt
                .and_utc()
                .timestamp_nanos_opt()
                .context("time is out of range (1677..2262)");
        }
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
    resolve(file, base, text, journal_dir).with_context(|| format!("in {}", path.display()))
}

fn resolve(
    file: BacktestFile,
    base: &Path,
    text: String,
    journal_dir: PathBuf,
) -> Result<BacktestSpec> {
    let data = &file.data;
    let symbol = Symbol::new(&data.symbol).context("[data] symbol")?;
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
    if let (Some(f), Some(t)) = (from_ns, to_ns) {
        if f >= t {
            bail!("[data] `from` must be before `to`");
        }
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
    let taker_fee = fixed("taker_fee_bps", ex.taker_fee_bps / 10_000.0)?;
    let slippage = fixed("slippage_bps", ex.slippage_bps / 10_000.0)?;
    let starting_balance = positive_fixed("starting_balance", balance)?;
    Ok(BacktestSpec {
        store: base.join(&data.store),
        symbol,
        interval,
        from_ns,
        to_ns,
        core: CoreConfig {
            symbol,
            interval_ns: interval.ns,
            strategy_interval_ns: strategy_interval.ns,
            starting_balance,
            strategy,
            sizing: Sizing {
                allocation: positive_fixed("allocation", ex.allocation)?,
                lot_size: positive_fixed("lot_size", ex.lot_size)?,
                cost_reserve: taker_fee + slippage,
            },
        },
        sim: SimConfig {
            taker_fee,
            // Only market orders are placed until the risk manager and grid strategy land,
            // so the maker fee and intrabar order are not user settings yet.
            maker_fee: taker_fee,
            stop_first: true,
            slippage,
            starting_balance,
        },
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
            (format!("{GOOD}\n[risk]\nx = 1\n"), "risk"),
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
