//! Backtest reports: metrics computed from the equity curve and the core's trade ledger,
//! written as `report.json` and printed as a terminal summary.
//!
//! Conventions (also in README): returns and drawdowns in percent; Sharpe and Sortino are
//! computed from daily returns (equity at each UTC day's last bar close, the first return
//! measured from the starting balance), annualised by √365 because crypto trades every day,
//! with a zero risk-free rate; Sharpe uses the sample standard deviation, Sortino the root
//! mean square of the negative daily returns over all days.

use keel_engine::Fixed;
use keel_engine::portfolio::ClosedTrade;
use serde::Serialize;

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// ISO-8601 UTC with second precision, e.g. `2022-01-01T00:00:00Z`.
pub fn iso8601(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000) as u32;
    // Whole seconds in years 0..=9999 (every bar time), written directly: a report formats
    // two per trade, and chrono's formatter costs about 4,000 instructions a call. Tested
    // equal to chrono's output.
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if nanos == 0 && (0..=9999).contains(&year) {
        let sod = secs.rem_euclid(86_400);
        let mut b = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, sod / 3600);
        put(14, 2, sod / 60 % 60);
        put(17, 2, sod % 60);
        return String::from_utf8_lossy(&b).into_owned();
    }
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) if nanos == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
        None => format!("{ts_ns}ns"),
    }
}

/// Proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TradeRow {
    pub symbol: String,
    pub side: String,
    pub entry_time: String,
    pub exit_time: String,
    pub entry_price: f64,
    pub exit_price: f64,
    pub quantity: f64,
    pub pnl: f64,
    pub fees: f64,
}

impl TradeRow {
    pub fn from_trade(t: &ClosedTrade) -> TradeRow {
        TradeRow {
            symbol: t.symbol.to_string(),
            side: match t.side {
                keel_engine::event::Side::Buy => "long".into(),
                keel_engine::event::Side::Sell => "short".into(),
            },
            entry_time: iso8601(t.entry_time_ns),
            exit_time: iso8601(t.exit_time_ns),
            entry_price: t.entry_price.to_f64(),
            exit_price: t.exit_price.to_f64(),
            quantity: t.qty.to_f64(),
            pnl: t.pnl.to_f64(),
            fees: t.fees.to_f64(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Version of this layout (documented in README, "report.json").
    pub schema: u32,
    pub symbols: Vec<String>,
    pub interval: String,
    pub strategy: String,
    pub start: String,
    pub end: String,
    pub candles: u64,
    pub starting_balance: f64,
    pub final_equity: f64,
    pub total_return_pct: f64,
    /// Compound annual growth rate over the run's calendar span, in percent.
    pub cagr_pct: Option<f64>,
    pub max_drawdown_pct: f64,
    /// Longest time equity spent below a previous peak, in days (to the end if never
    /// recovered).
    pub max_drawdown_duration_days: f64,
    /// CAGR divided by max drawdown (both in percent); `null` without a drawdown.
    pub calmar: Option<f64>,
    /// Annualised from daily returns; `null` with fewer than two days or no variation.
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub trades: usize,
    pub win_rate_pct: Option<f64>,
    /// Gross profit over gross loss of closed trades; `null` when nothing was lost.
    pub profit_factor: Option<f64>,
    /// Mean PnL per closed trade: win rate × average win − loss rate × average loss.
    pub expectancy: Option<f64>,
    /// (1 + average win / average loss) × win rate − 1; `null` without losses.
    pub expectancy_ratio: Option<f64>,
    pub avg_holding_hours: Option<f64>,
    /// Share of bars that ended with an open position, in percent.
    pub exposure_pct: f64,
    pub fees_paid: f64,
    /// Orders the core placed, and how many of them the venue rejected (e.g. for
    /// insufficient balance after a gap); the reasons are in the run journal.
    pub orders_placed: u64,
    pub orders_rejected: u64,
    /// Entries the risk manager (or a halt) refused, by reason (`max_positions`,
    /// `daily_loss_limit`, `size_below_lot`, ...); each one is a `Reject` in the run journal.
    pub entries_rejected: std::collections::BTreeMap<String, u64>,
    /// Times the daily loss limit tripped.
    pub daily_loss_trips: u64,
    /// Perpetual positions the venue liquidated.
    pub liquidations: u64,
    /// Net funding received (negative: paid) on perpetuals.
    pub funding: f64,
    /// Positions still open at the end (not in `trade_list`), in base units.
    pub open_positions: Vec<OpenPosition>,
    pub run_journal: String,
    /// BLAKE3 of the core's final state; equal digests mean identical sessions.
    pub digest: String,
    /// Closed trades grouped by symbol and by strategy.
    pub by_symbol: Vec<Breakdown>,
    pub by_strategy: Vec<Breakdown>,
    pub trade_list: Vec<TradeRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenPosition {
    pub symbol: String,
    pub qty: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Breakdown {
    pub name: String,
    pub trades: usize,
    pub pnl: f64,
    pub fees: f64,
    pub win_rate_pct: Option<f64>,
}

/// Equity observed after each bar: `(bar close time ns, equity)`, and how many bars ended
/// with a position open.
#[derive(Debug, Default, Clone)]
pub struct EquityCurve {
    pub points: Vec<(i64, f64)>,
    pub exposed_bars: u64,
    last_exposed: bool,
}

impl EquityCurve {
    /// Several symbols' bars closing at the same time make one point (the last equity).
    pub fn push(&mut self, ts_ns: i64, equity: Fixed, exposed: bool) {
        match self.points.last_mut() {
            Some(last) if last.0 == ts_ns => {
                last.1 = equity.to_f64();
                if exposed && !self.last_exposed {
                    self.exposed_bars += 1;
                }
                self.last_exposed |= exposed;
            }
            _ => {
                self.points.push((ts_ns, equity.to_f64()));
                self.exposed_bars += u64::from(exposed);
                self.last_exposed = exposed;
            }
        }
    }

    pub fn exposure_pct(&self) -> f64 {
        if self.points.is_empty() {
            return 0.0;
        }
        self.exposed_bars as f64 / self.points.len() as f64 * 100.0
    }

    /// Drawdown in percent of the running peak at every point.
    pub fn drawdowns_pct(&self, starting: f64) -> Vec<f64> {
        let mut peak = starting;
        self.points
            .iter()
            .map(|&(_, e)| {
                peak = peak.max(e);
                if peak > 0.0 {
                    (peak - e) / peak * 100.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Longest stretch, in nanoseconds, from a peak until equity is back at it (or the end).
    pub fn max_drawdown_duration_ns(&self, starting: f64, start_ns: i64) -> i64 {
        self.stats(starting, start_ns).max_drawdown_duration_ns
    }

    /// Largest peak-to-trough fall, in percent of the peak (0 when equity never fell).
    pub fn max_drawdown_pct(&self, starting: f64) -> f64 {
        self.stats(starting, 0).max_drawdown_pct
    }

    /// Daily simple returns: equity at each UTC day's last point vs. the previous day's (the
    /// first day's vs. `starting`).
    pub fn daily_returns(&self, starting: f64) -> Vec<f64> {
        self.stats(starting, 0).daily_returns
    }
}

/// What a report reads off the equity curve: [`EquityCurve::max_drawdown_pct`],
/// [`EquityCurve::max_drawdown_duration_ns`] and [`EquityCurve::daily_returns`].
#[derive(Debug, Clone, PartialEq)]
pub struct CurveStats {
    pub max_drawdown_pct: f64,
    pub max_drawdown_duration_ns: i64,
    pub daily_returns: Vec<f64>,
}

impl EquityCurve {
    /// [`CurveStats`] in one pass over the points (a year of 1m bars is 8 MB of them).
    pub fn stats(&self, starting: f64, start_ns: i64) -> CurveStats {
        let mut peak = starting;
        let mut worst: f64 = 0.0;
        let mut peak_ts = start_ns;
        let mut longest = 0;
        let mut daily = Vec::new();
        let mut prev = starting;
        let mut day_last: Option<(i64, f64)> = None;
        for &(ts, e) in &self.points {
            // Drawdown: the peak and the worst fall from it.
            if e >= peak {
                peak = e;
                peak_ts = ts;
            } else {
                longest = longest.max(ts - peak_ts);
            }
            if peak > 0.0 {
                worst = worst.max((peak - e) / peak);
            }
            // Daily returns: a bar closing at 00:00 belongs to the day before.
            let day = (ts - 1).div_euclid(NS_PER_DAY);
            match day_last {
                Some((d, _)) if d == day => {}
                Some((_, last)) => {
                    if prev != 0.0 {
                        daily.push(last / prev - 1.0);
                    }
                    prev = last;
                }
                None => {}
            }
            day_last = Some((day, e));
        }
        if let Some((_, last)) = day_last
            && prev != 0.0
        {
            daily.push(last / prev - 1.0);
        }
        CurveStats {
            max_drawdown_pct: worst * 100.0,
            max_drawdown_duration_ns: longest,
            daily_returns: daily,
        }
    }
}

pub fn sharpe(returns: &[f64], periods_per_year: f64) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    (sd > 0.0).then(|| mean / sd * periods_per_year.sqrt())
}

pub fn sortino(returns: &[f64], periods_per_year: f64) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let downside = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
    (downside > 0.0).then(|| mean / downside * periods_per_year.sqrt())
}

pub struct TradeStats {
    pub win_rate_pct: Option<f64>,
    pub profit_factor: Option<f64>,
    pub expectancy: Option<f64>,
    pub expectancy_ratio: Option<f64>,
}

/// Compound annual growth rate (a fraction) from `start` to `end` equity over `days`, the way
/// freqtrade computes it: (end / start)^(365 / days) − 1.
pub fn cagr(start: f64, end: f64, days: f64) -> Option<f64> {
    (start > 0.0 && end >= 0.0 && days > 0.0).then(|| (end / start).powf(365.0 / days) - 1.0)
}

/// Expectancy and expectancy ratio of a list of trade PnLs (freqtrade's definitions).
pub fn expectancy(pnls: &[f64]) -> (Option<f64>, Option<f64>) {
    if pnls.is_empty() {
        return (None, None);
    }
    let n = pnls.len() as f64;
    let wins: Vec<f64> = pnls.iter().copied().filter(|p| *p > 0.0).collect();
    let losses: Vec<f64> = pnls.iter().filter(|p| **p < 0.0).map(|p| -p).collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (win_rate, loss_rate) = (wins.len() as f64 / n, losses.len() as f64 / n);
    let (avg_win, avg_loss) = (mean(&wins), mean(&losses));
    let expectancy = win_rate * avg_win - loss_rate * avg_loss;
    let ratio = (avg_loss > 0.0).then(|| (1.0 + avg_win / avg_loss) * win_rate - 1.0);
    (Some(expectancy), ratio)
}

/// Closed trades grouped by `key`, in name order.
pub fn breakdown(trades: &[ClosedTrade], key: impl Fn(&ClosedTrade) -> String) -> Vec<Breakdown> {
    let mut groups: std::collections::BTreeMap<String, Vec<&ClosedTrade>> = Default::default();
    for t in trades {
        groups.entry(key(t)).or_default().push(t);
    }
    groups
        .into_iter()
        .map(|(name, ts)| {
            let wins = ts.iter().filter(|t| t.pnl > Fixed::ZERO).count();
            Breakdown {
                name,
                trades: ts.len(),
                pnl: ts.iter().map(|t| t.pnl.to_f64()).sum(),
                fees: ts.iter().map(|t| t.fees.to_f64()).sum(),
                win_rate_pct: Some(wins as f64 / ts.len() as f64 * 100.0),
            }
        })
        .collect()
}

pub fn trade_stats(trades: &[ClosedTrade]) -> TradeStats {
    if trades.is_empty() {
        return TradeStats {
            win_rate_pct: None,
            profit_factor: None,
            expectancy: None,
            expectancy_ratio: None,
        };
    }
    let pnls: Vec<f64> = trades.iter().map(|t| t.pnl.to_f64()).collect();
    let (expectancy, expectancy_ratio) = expectancy(&pnls);
    let wins = trades.iter().filter(|t| t.pnl > Fixed::ZERO).count();
    let gross_profit: f64 = trades.iter().map(|t| t.pnl.to_f64().max(0.0)).sum();
    let gross_loss: f64 = trades.iter().map(|t| (-t.pnl.to_f64()).max(0.0)).sum();
    TradeStats {
        win_rate_pct: Some(wins as f64 / trades.len() as f64 * 100.0),
        profit_factor: (gross_loss > 0.0).then(|| gross_profit / gross_loss),
        expectancy,
        expectancy_ratio,
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

/// A one-line chart of the equity curve from Unicode block characters.
pub fn sparkline(curve: &EquityCurve, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if curve.points.is_empty() || width == 0 {
        return String::new();
    }
    let n = curve.points.len();
    let cols: Vec<f64> = (0..width.min(n))
        .map(|i| curve.points[(i * n / width.min(n)).min(n - 1)].1)
        .collect();
    let lo = cols.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = cols.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    cols.iter()
        .map(|v| {
            let f = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            BARS[((f * 7.0).round() as usize).min(7)]
        })
        .collect()
}

impl Report {
    /// The terminal summary.
    pub fn summary(&self, curve: &EquityCurve) -> String {
        let mut s = String::new();
        s += &format!(
            "keel backtest · {} {} · {} · {} → {} ({} bars)\n",
            self.symbols.join(","),
            self.interval,
            self.strategy,
            self.start,
            self.end,
            self.candles
        );
        s += &format!(
            "  equity        {:.2} → {:.2}   ({:+.2}%)\n",
            self.starting_balance, self.final_equity, self.total_return_pct
        );
        s += &format!(
            "  cagr          {}   max drawdown {:.2}% over {:.1} days   calmar {}\n",
            self.cagr_pct.map_or("n/a".into(), |c| format!("{c:.2}%")),
            self.max_drawdown_pct,
            self.max_drawdown_duration_days,
            opt(self.calmar, 2)
        );
        s += &format!(
            "  sharpe        {}   sortino {}   (daily returns, ×√365)\n",
            opt(self.sharpe, 2),
            opt(self.sortino, 2)
        );
        s += &format!(
            "  trades        {}   win rate {}   profit factor {}   fees {:.2}\n",
            self.trades,
            self.win_rate_pct
                .map_or("n/a".into(), |w| format!("{w:.1}%")),
            opt(self.profit_factor, 2),
            self.fees_paid
        );
        s += &format!(
            "  expectancy    {} per trade   avg holding {} h   exposure {:.1}%\n",
            opt(self.expectancy, 2),
            opt(self.avg_holding_hours, 1),
            self.exposure_pct
        );
        if self.orders_rejected > 0 {
            s += &format!(
                "  WARNING       {} of {} orders were rejected by the venue (see the run journal)\n",
                self.orders_rejected, self.orders_placed
            );
        }
        if !self.entries_rejected.is_empty() {
            let reasons: Vec<String> = self
                .entries_rejected
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            s += &format!("  entries refused {}\n", reasons.join(", "));
        }
        if self.liquidations > 0 {
            s += &format!("  LIQUIDATED    {} position(s)\n", self.liquidations);
        }
        if self.funding != 0.0 {
            s += &format!("  funding       {:+.2} (received − paid)\n", self.funding);
        }
        if self.daily_loss_trips > 0 {
            s += &format!(
                "  daily loss limit tripped {} time(s)\n",
                self.daily_loss_trips
            );
        }
        for p in &self.open_positions {
            s += &format!(
                "  open position {} {} (marked at last close)\n",
                p.symbol, p.qty
            );
        }
        s += &format!("  equity        {}\n", sparkline(curve, 60));
        s += &format!("  run journal   {}\n", self.run_journal);
        s += &format!("  digest        {}\n", self.digest);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawdown_is_peak_to_trough() {
        let curve = EquityCurve {
            points: vec![(1, 100.0), (2, 120.0), (3, 90.0), (4, 130.0), (5, 117.0)],
            exposed_bars: 0,
            ..EquityCurve::default()
        };
        assert!((curve.max_drawdown_pct(100.0) - 25.0).abs() < 1e-12);
    }

    /// The direct formatter against chrono, over years 0 to 9999 and the edges of days,
    /// months, leap years and the fallbacks (fractions, out-of-range years).
    #[test]
    fn iso8601_equals_chrono() {
        let chrono_fmt = |ts: i64| {
            let t = chrono::DateTime::from_timestamp(
                ts.div_euclid(1_000_000_000),
                ts.rem_euclid(1_000_000_000) as u32,
            )
            .unwrap();
            if ts.rem_euclid(1_000_000_000) == 0 {
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
            }
        };
        const S: i64 = 1_000_000_000;
        // i64 nanoseconds span 1677-09-21 to 2262-04-11.
        let (lo, hi) = (i64::MIN / S + 1, i64::MAX / S);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut cases = vec![
            0,
            -S,
            lo * S,
            hi * S,
            i64::MIN,
            i64::MAX,
            951_782_400 * S,    // 2000-02-29
            4_107_542_400 * S,  // 2100-03-01
            -2_203_891_200 * S, // 1900-03-01
            1_640_995_199 * S,
            1_640_995_200 * S,
            1_640_995_200 * S + 500_000_000,
            1_640_995_200 * S + 1,
        ];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = (x % (hi - lo) as u64) as i64 + lo;
            cases.push(secs * S);
            cases.push(secs.div_euclid(86_400) * 86_400 * S); // midnights
        }
        for ts in cases {
            assert_eq!(iso8601(ts), chrono_fmt(ts), "{ts}");
        }
    }

    // The three passes the report made before `stats` read them in one: an independent
    // implementation to test it against.
    /// Longest stretch, in nanoseconds, from a peak until equity is back at it (or the end).
    fn reference_max_drawdown_duration_ns(
        curve: &EquityCurve,
        starting: f64,
        start_ns: i64,
    ) -> i64 {
        let mut peak = starting;
        let mut peak_ts = start_ns;
        let mut longest = 0;
        for &(ts, e) in &curve.points {
            if e >= peak {
                peak = e;
                peak_ts = ts;
            } else {
                longest = longest.max(ts - peak_ts);
            }
        }
        longest
    }

    /// Largest peak-to-trough fall, in percent of the peak (0 when equity never fell).
    fn reference_max_drawdown_pct(curve: &EquityCurve, starting: f64) -> f64 {
        let mut peak = starting;
        let mut worst: f64 = 0.0;
        for &(_, e) in &curve.points {
            peak = peak.max(e);
            if peak > 0.0 {
                worst = worst.max((peak - e) / peak);
            }
        }
        worst * 100.0
    }

    /// Daily simple returns: equity at each UTC day's last point vs. the previous day's.
    fn reference_daily_returns(curve: &EquityCurve, starting: f64) -> Vec<f64> {
        let mut out = Vec::new();
        let mut prev = starting;
        let mut i = 0;
        while i < curve.points.len() {
            // Bar close times are exclusive ends, so a bar closing at 00:00 belongs to the
            // day before.
            let day = (curve.points[i].0 - 1).div_euclid(NS_PER_DAY);
            let mut last = curve.points[i].1;
            while i < curve.points.len() && (curve.points[i].0 - 1).div_euclid(NS_PER_DAY) == day {
                last = curve.points[i].1;
                i += 1;
            }
            if prev != 0.0 {
                out.push(last / prev - 1.0);
            }
            prev = last;
        }
        out
    }

    /// The one-pass stats equal the three separate passes it replaced, bit for bit, on random curves
    /// (with flat stretches, new peaks, zero and negative equity, several bars per day).
    #[test]
    fn one_pass_stats_equal_the_separate_ones() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..300 {
            let n = (next() % 400) as usize;
            let mut ts = 1_640_995_200_000_000_000i64 + (next() % 86_400) as i64 * 1_000_000_000;
            let mut e = 100.0;
            let mut points = Vec::with_capacity(n);
            for _ in 0..n {
                ts += [60, 3_600, 86_400, 0][(next() % 4) as usize] * 1_000_000_000;
                match next() % 6 {
                    0 => {}
                    1 => e = 0.0,
                    2 => e = -((next() % 50) as f64),
                    _ => e += (next() % 2001) as f64 / 100.0 - 10.0,
                }
                points.push((ts, e));
            }
            let curve = EquityCurve {
                points,
                ..EquityCurve::default()
            };
            let starting = [100.0, 0.0, 50.0][case % 3];
            let start_ns = 1_640_995_200_000_000_000;
            let s = curve.stats(starting, start_ns);
            assert_eq!(
                s.max_drawdown_pct.to_bits(),
                reference_max_drawdown_pct(&curve, starting).to_bits(),
                "case {case}"
            );
            assert_eq!(
                s.max_drawdown_duration_ns,
                reference_max_drawdown_duration_ns(&curve, starting, start_ns),
                "case {case}"
            );
            let bits = |v: &[f64]| v.iter().map(|r| r.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&s.daily_returns),
                bits(&reference_daily_returns(&curve, starting)),
                "case {case}"
            );
        }
    }

    #[test]
    fn daily_returns_use_last_bar_of_each_utc_day() {
        let d = NS_PER_DAY;
        let curve = EquityCurve {
            // Two bars closing inside day 0 and one closing exactly at midnight (day 0),
            // then day 1.
            points: vec![(d / 2, 50.0), (d, 110.0), (d + 60, 99.0), (2 * d, 121.0)],
            exposed_bars: 0,
            ..EquityCurve::default()
        };
        let r = curve.daily_returns(100.0);
        assert_eq!(r.len(), 2);
        assert!((r[0] - 0.10).abs() < 1e-12);
        assert!((r[1] - 0.10).abs() < 1e-12);
    }

    /// Reference from Python's `statistics` module, r = [0.01, -0.02, 0.03, 0.005]:
    /// mean(r)/stdev(r)*sqrt(365) = 5.8062943593..., and
    /// mean(r)/sqrt(sum(min(x,0)**2)/len(r))*sqrt(365) = 11.9406082340...
    #[test]
    fn sharpe_and_sortino_match_numpy() {
        let r = [0.01, -0.02, 0.03, 0.005];
        let s = sharpe(&r, 365.0).unwrap();
        assert!((s - 5.806_294_359_330_4).abs() < 1e-9, "sharpe {s}");
        let so = sortino(&r, 365.0).unwrap();
        assert!((so - 11.940_608_234_089_2).abs() < 1e-9, "sortino {so}");
    }

    /// freqtrade's `test_calculate_cagr` cases: (start, end, days) → round(cagr, 4).
    #[test]
    fn cagr_matches_freqtrade_cases() {
        for (start, end, days, want) in [
            (64900.0, 176000.0, 1095.0, 0.3945),
            (64900.0, 176000.0, 365.0, 1.7119),
            (1000.0, 1000.0, 365.0, 0.0),
            (1000.0, 1500.0, 365.0, 0.5),
            (1000.0, 1500.0, 100.0, 3.3927),
            (0.01, 0.01762792, 120.0, 4.6087),
        ] {
            let got = cagr(start, end, days).unwrap();
            assert!(
                (got - want).abs() < 0.00005,
                "cagr({start}, {end}, {days}) = {got}"
            );
        }
    }

    /// freqtrade's `test_calculate_expectancy` small example.
    #[test]
    fn expectancy_matches_freqtrade_example() {
        let pnls = [100.0, 200.0, 50.0, -150.0, 300.0, -100.0, 80.0, -30.0];
        let (e, ratio) = expectancy(&pnls);
        assert!((e.unwrap() - 56.25).abs() < 1e-9);
        assert!((ratio.unwrap() - 0.602_678_57).abs() < 1e-8);
    }

    #[test]
    fn drawdown_duration_runs_from_peak_to_recovery() {
        let curve = EquityCurve {
            points: vec![
                (10, 100.0),
                (20, 120.0),
                (30, 90.0),
                (60, 110.0),
                (70, 125.0),
                (80, 100.0),
            ],
            exposed_bars: 0,
            ..EquityCurve::default()
        };
        // Peak 120 at 20, back above it at 70: 40 ns under water (longest before the end's 10).
        assert_eq!(curve.max_drawdown_duration_ns(100.0, 0), 40);
    }

    #[test]
    fn formats_utc_iso8601() {
        assert_eq!(iso8601(1_640_995_200_000_000_000), "2022-01-01T00:00:00Z");
    }
}
