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
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) if nanos == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
        None => format!("{ts_ns}ns"),
    }
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
    pub symbol: String,
    pub interval: String,
    pub strategy: String,
    pub start: String,
    pub end: String,
    pub candles: u64,
    pub starting_balance: f64,
    pub final_equity: f64,
    pub total_return_pct: f64,
    pub max_drawdown_pct: f64,
    /// Annualised from daily returns; `null` with fewer than two days or no variation.
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub trades: usize,
    pub win_rate_pct: Option<f64>,
    /// Gross profit over gross loss of closed trades; `null` when nothing was lost.
    pub profit_factor: Option<f64>,
    pub fees_paid: f64,
    /// Position still open at the end (not in `trade_list`), in base units.
    pub open_position: f64,
    pub run_journal: String,
    /// BLAKE3 of the core's final state; equal digests mean identical sessions.
    pub digest: String,
    pub trade_list: Vec<TradeRow>,
}

/// Equity observed after each bar: `(bar close time ns, equity)`.
#[derive(Debug, Default, Clone)]
pub struct EquityCurve {
    pub points: Vec<(i64, f64)>,
}

impl EquityCurve {
    pub fn push(&mut self, ts_ns: i64, equity: Fixed) {
        self.points.push((ts_ns, equity.to_f64()));
    }

    /// Largest peak-to-trough fall, in percent of the peak (0 when equity never fell).
    pub fn max_drawdown_pct(&self, starting: f64) -> f64 {
        let mut peak = starting;
        let mut worst: f64 = 0.0;
        for &(_, e) in &self.points {
            peak = peak.max(e);
            if peak > 0.0 {
                worst = worst.max((peak - e) / peak);
            }
        }
        worst * 100.0
    }

    /// Daily simple returns: equity at each UTC day's last point vs. the previous day's.
    pub fn daily_returns(&self, starting: f64) -> Vec<f64> {
        let mut out = Vec::new();
        let mut prev = starting;
        let mut i = 0;
        while i < self.points.len() {
            // Bar close times are exclusive ends, so a bar closing at 00:00 belongs to the
            // day before.
            let day = (self.points[i].0 - 1).div_euclid(NS_PER_DAY);
            let mut last = self.points[i].1;
            while i < self.points.len() && (self.points[i].0 - 1).div_euclid(NS_PER_DAY) == day {
                last = self.points[i].1;
                i += 1;
            }
            if prev != 0.0 {
                out.push(last / prev - 1.0);
            }
            prev = last;
        }
        out
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
}

pub fn trade_stats(trades: &[ClosedTrade]) -> TradeStats {
    if trades.is_empty() {
        return TradeStats {
            win_rate_pct: None,
            profit_factor: None,
        };
    }
    let wins = trades.iter().filter(|t| t.pnl > Fixed::ZERO).count();
    let gross_profit: f64 = trades.iter().map(|t| t.pnl.to_f64().max(0.0)).sum();
    let gross_loss: f64 = trades.iter().map(|t| (-t.pnl.to_f64()).max(0.0)).sum();
    TradeStats {
        win_rate_pct: Some(wins as f64 / trades.len() as f64 * 100.0),
        profit_factor: (gross_loss > 0.0).then(|| gross_profit / gross_loss),
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
            self.symbol, self.interval, self.strategy, self.start, self.end, self.candles
        );
        s += &format!(
            "  equity        {:.2} → {:.2}   ({:+.2}%)\n",
            self.starting_balance, self.final_equity, self.total_return_pct
        );
        s += &format!("  max drawdown  {:.2}%\n", self.max_drawdown_pct);
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
        if self.open_position != 0.0 {
            s += &format!(
                "  open position {} (marked at last close)\n",
                self.open_position
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
        };
        assert!((curve.max_drawdown_pct(100.0) - 25.0).abs() < 1e-12);
    }

    #[test]
    fn daily_returns_use_last_bar_of_each_utc_day() {
        let d = NS_PER_DAY;
        let curve = EquityCurve {
            // Two bars closing inside day 0 and one closing exactly at midnight (day 0),
            // then day 1.
            points: vec![(d / 2, 50.0), (d, 110.0), (d + 60, 99.0), (2 * d, 121.0)],
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

    #[test]
    fn formats_utc_iso8601() {
        assert_eq!(iso8601(1_640_995_200_000_000_000), "2022-01-01T00:00:00Z");
    }
}
