//! `report.html`: one self-contained page (no scripts, no external assets) with the
//! metrics, SVG equity and drawdown charts, and the trade table. Opens in any browser and
//! survives being mailed around.

use std::fmt::Write;

use crate::report::{EquityCurve, Report};

/// Charts keep at most this many columns; each keeps its bucket's min and max, so a spike or
/// a drawdown is never smoothed away.
const CHART_COLUMNS: usize = 1_000;
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 240.0;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// (min, max) per column over `values`.
fn envelope(values: &[f64]) -> Vec<(f64, f64)> {
    if values.is_empty() {
        return Vec::new();
    }
    let columns = values.len().min(CHART_COLUMNS);
    (0..columns)
        .map(|c| {
            let lo = c * values.len() / columns;
            let hi = ((c + 1) * values.len() / columns).max(lo + 1);
            values[lo..hi]
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                })
        })
        .collect()
}

/// An SVG area/line chart of `values` with a title and the value range on the axis.
fn chart(title: &str, values: &[f64], color: &str, fill_down: bool) -> String {
    let env = envelope(values);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"100%\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    if env.is_empty() {
        svg.push_str("</svg></figure>");
        return svg;
    }
    let lo = env.iter().map(|e| e.0).fold(f64::INFINITY, f64::min);
    let hi = env.iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |i: usize| i as f64 * WIDTH / env.len().max(2).saturating_sub(1) as f64;
    let y = |v: f64| {
        let f = (v - lo) / span;
        let f = if fill_down { f } else { 1.0 - f };
        4.0 + f * (HEIGHT - 8.0)
    };
    // The upper edge left to right, then the lower edge back: a band that shows each
    // column's full range.
    let mut points = String::new();
    for (i, e) in env.iter().enumerate() {
        let v = if fill_down { e.0 } else { e.1 };
        let _ = write!(points, "{:.1},{:.1} ", x(i), y(v));
    }
    for (i, e) in env.iter().enumerate().rev() {
        let v = if fill_down { e.1 } else { e.0 };
        let _ = write!(points, "{:.1},{:.1} ", x(i), y(v));
    }
    let _ = write!(
        svg,
        "<polygon points=\"{}\" fill=\"{color}\" stroke=\"{color}\" stroke-width=\"1\"/>",
        points.trim_end()
    );
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"14\" class=\"axis\">{}</text><text x=\"4\" y=\"{}\" \
         class=\"axis\">{}</text></svg></figure>",
        if fill_down {
            format!("{lo:.2}")
        } else {
            format!("{hi:.2}")
        },
        HEIGHT - 6.0,
        if fill_down {
            format!("{hi:.2}")
        } else {
            format!("{lo:.2}")
        },
    );
    svg
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.digits$}{unit}"))
}

pub fn render(report: &Report, curve: &EquityCurve) -> String {
    let r = report;
    let equity: Vec<f64> = curve.points.iter().map(|p| p.1).collect();
    let drawdown = curve.drawdowns_pct(r.starting_balance);
    let mut h = String::new();
    let title = format!(
        "keel backtest · {} {} · {}",
        r.symbols.join(","),
        r.interval,
        r.strategy
    );
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}}\
         table{{border-collapse:collapse}}td,th{{padding:2px 10px;text-align:right;\
         border-bottom:1px solid #ddd}}th{{background:#f4f4f4}}.axis{{font-size:11px;\
         fill:#555}}figure{{margin:1em 0}}</style></head><body><h1>{}</h1><p>{} → {} · {} bars</p>",
        escape(&title),
        escape(&title),
        escape(&r.start),
        escape(&r.end),
        r.candles
    );
    let metrics: [(&str, String); 16] = [
        ("starting balance", format!("{:.2}", r.starting_balance)),
        ("final equity", format!("{:.2}", r.final_equity)),
        ("total return", format!("{:.2}%", r.total_return_pct)),
        ("CAGR", opt(r.cagr_pct, 2, "%")),
        ("max drawdown", format!("{:.2}%", r.max_drawdown_pct)),
        (
            "max drawdown duration",
            format!("{:.2} days", r.max_drawdown_duration_days),
        ),
        ("Sharpe (daily, ×√365)", opt(r.sharpe, 2, "")),
        ("Sortino (daily, ×√365)", opt(r.sortino, 2, "")),
        ("Calmar", opt(r.calmar, 2, "")),
        ("trades", r.trades.to_string()),
        ("win rate", opt(r.win_rate_pct, 1, "%")),
        ("profit factor", opt(r.profit_factor, 2, "")),
        ("expectancy per trade", opt(r.expectancy, 2, "")),
        ("average holding", opt(r.avg_holding_hours, 1, " h")),
        ("exposure", format!("{:.1}%", r.exposure_pct)),
        ("fees paid", format!("{:.2}", r.fees_paid)),
    ];
    h.push_str("<table>");
    for (name, value) in metrics {
        let _ = write!(
            h,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    h.push_str("</table>");
    h.push_str(&chart("Equity", &equity, "#2a6fdb", false));
    h.push_str(&chart("Drawdown (%)", &drawdown, "#d64545", true));
    let _ = write!(h, "<h2>Trades ({})</h2><table><tr>", r.trade_list.len());
    for col in [
        "#",
        "side",
        "entry time",
        "exit time",
        "entry price",
        "exit price",
        "quantity",
        "pnl",
        "fees",
    ] {
        let _ = write!(h, "<th>{col}</th>");
    }
    h.push_str("</tr>");
    for (i, t) in r.trade_list.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.2}</td><td>{:.2}</td></tr>",
            i + 1,
            escape(&t.side),
            escape(&t.entry_time),
            escape(&t.exit_time),
            t.entry_price,
            t.exit_price,
            t.quantity,
            t.pnl,
            t.fees
        );
    }
    let _ = writeln!(
        h,
        "</table><p>Run journal <code>{}</code>, digest <code>{}</code>. Re-run with \
         <code>keel replay verify</code>.</p></body></html>",
        escape(&r.run_journal),
        escape(&r.digest)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_extremes_of_every_bucket() {
        let mut v: Vec<f64> = (0..10_000).map(|i| i as f64).collect();
        v[5_555] = -1e9; // one spike must survive downsampling
        let env = envelope(&v);
        assert_eq!(env.len(), CHART_COLUMNS);
        assert!(env.iter().any(|e| e.0 == -1e9));
        assert_eq!(env[0].0, 0.0);
        assert_eq!(env[CHART_COLUMNS - 1].1, 9_999.0);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
