//! `keel indicators`: one CSV row per stored bar with the requested indicators' values
//! (empty before warm-up), for charting and for checking keel against other tools.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use keel_engine::Candle;
use keel_engine::indicators::{Atr, Bollinger, Ema, Macd, Rsi, Sma};

/// One `--indicator` argument, e.g. `sma:20`, `bbands:20:2`, `macd:12:26:9`.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Sma(usize),
    Ema(usize),
    Rsi(usize),
    Bbands(usize, f64),
    Macd(usize, usize, usize),
    Atr(usize),
}

const SPEC_HELP: &str =
    "use sma:N, ema:N, rsi:N, atr:N, bbands:N:K or macd:FAST:SLOW:SIGNAL (e.g. macd:12:26:9)";

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(text: &str) -> Result<Spec, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let bad = || format!("indicator `{text}`: {SPEC_HELP}");
        let len = |s: &str| -> Result<usize, String> {
            match s.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                _ => Err(format!(
                    "indicator `{text}`: `{s}` must be a whole number 1..100000"
                )),
            }
        };
        Ok(match parts.as_slice() {
            ["sma", n] => Spec::Sma(len(n)?),
            ["ema", n] => Spec::Ema(len(n)?),
            ["rsi", n] => Spec::Rsi(len(n)?),
            ["atr", n] => Spec::Atr(len(n)?),
            ["bbands", n, k] => {
                let k: f64 = k.parse().map_err(|_| bad())?;
                if !(k.is_finite() && k > 0.0) {
                    return Err(format!("indicator `{text}`: K must be positive"));
                }
                Spec::Bbands(len(n)?, k)
            }
            ["macd", f, s, g] => {
                let (f, s, g) = (len(f)?, len(s)?, len(g)?);
                if f >= s {
                    return Err(format!("indicator `{text}`: FAST must be below SLOW"));
                }
                Spec::Macd(f, s, g)
            }
            _ => return Err(bad()),
        })
    }
}

enum State {
    Sma(Sma),
    Ema(Ema),
    Rsi(Rsi),
    Bbands(Bollinger),
    Macd(Macd),
    Atr(Atr),
}

impl Spec {
    fn columns(&self) -> Vec<String> {
        match *self {
            Spec::Sma(n) => vec![format!("sma{n}")],
            Spec::Ema(n) => vec![format!("ema{n}")],
            Spec::Rsi(n) => vec![format!("rsi{n}")],
            Spec::Atr(n) => vec![format!("atr{n}")],
            Spec::Bbands(n, k) => ["upper", "middle", "lower"]
                .iter()
                .map(|b| format!("bb{n}_{k}_{b}"))
                .collect(),
            Spec::Macd(f, s, g) => ["", "_signal", "_hist"]
                .iter()
                .map(|p| format!("macd{f}_{s}_{g}{p}"))
                .collect(),
        }
    }

    fn state(&self) -> State {
        match *self {
            Spec::Sma(n) => State::Sma(Sma::new(n)),
            Spec::Ema(n) => State::Ema(Ema::new(n)),
            Spec::Rsi(n) => State::Rsi(Rsi::new(n)),
            Spec::Atr(n) => State::Atr(Atr::new(n)),
            Spec::Bbands(n, k) => State::Bbands(Bollinger::new(n, k)),
            Spec::Macd(f, s, g) => State::Macd(Macd::new(f, s, g)),
        }
    }
}

fn cell(out: &mut String, v: Option<f64>) {
    out.push(',');
    if let Some(v) = v {
        out.push_str(&v.to_string());
    }
}

impl State {
    fn update(&mut self, c: &Candle, out: &mut String) {
        let close = c.close.to_f64();
        match self {
            State::Sma(s) => cell(out, s.update(close)),
            State::Ema(s) => cell(out, s.update(close)),
            State::Rsi(s) => cell(out, s.update(close)),
            State::Atr(s) => cell(out, s.update(c.high.to_f64(), c.low.to_f64(), close)),
            State::Bbands(s) => {
                let b = s.update(close);
                cell(out, b.map(|b| b.upper));
                cell(out, b.map(|b| b.middle));
                cell(out, b.map(|b| b.lower));
            }
            State::Macd(s) => {
                let m = s.update(close);
                cell(out, m.map(|m| m.macd));
                cell(out, m.map(|m| m.signal));
                cell(out, m.map(|m| m.histogram));
            }
        }
    }
}

/// Writes the CSV for every bar `next` yields; returns the number of rows.
pub fn write_csv(
    specs: &[Spec],
    mut next: impl FnMut() -> Result<Option<Candle>>,
    out_path: &Path,
    fmt_time: impl Fn(i64) -> String,
) -> Result<u64> {
    if specs.is_empty() {
        bail!("no --indicator given; {SPEC_HELP}");
    }
    let file = std::fs::File::create(out_path)
        .with_context(|| format!("cannot create {}", out_path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut line = String::from("time,open,high,low,close,volume");
    for s in specs {
        for c in s.columns() {
            line.push(',');
            line.push_str(&c);
        }
    }
    let mut states: Vec<State> = specs.iter().map(Spec::state).collect();
    let mut rows = 0;
    let write_err = || format!("cannot write {}", out_path.display());
    writeln!(w, "{line}").with_context(write_err)?;
    while let Some(c) = next()? {
        line.clear();
        line.push_str(&format!(
            "{},{},{},{},{},{}",
            fmt_time(c.open_time_ns),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume
        ));
        for s in &mut states {
            s.update(&c, &mut line);
        }
        writeln!(w, "{line}").with_context(write_err)?;
        rows += 1;
    }
    w.flush().with_context(write_err)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_indicator_specs() {
        assert_eq!("sma:20".parse(), Ok(Spec::Sma(20)));
        assert_eq!("bbands:20:2".parse(), Ok(Spec::Bbands(20, 2.0)));
        assert_eq!("macd:12:26:9".parse(), Ok(Spec::Macd(12, 26, 9)));
        for bad in [
            "sma",
            "sma:0",
            "sma:x",
            "macd:26:12:9",
            "bbands:20:-1",
            "vwap:3",
        ] {
            assert!(bad.parse::<Spec>().is_err(), "{bad}");
        }
    }
}
