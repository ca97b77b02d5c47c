//! `keel sweep`: a grid of parameter values over one backtest configuration. Every point of
//! the grid is an ordinary deterministic backtest with its own run journal and report, run
//! on all cores; the results are ranked by a chosen report metric, printed, and written as
//! CSV.
//!
//! The configuration is a backtest configuration plus a `[sweep]` section:
//!
//! ```toml
//! [sweep]
//! rank_by = "sharpe"      # any numeric field of report.json (default: sharpe)
//! order = "desc"          # or "asc" (e.g. for max_drawdown_pct)
//! max_runs = 1000         # refuse larger grids (default 1000)
//! [sweep.grid]
//! "strategy.fast" = [10, 20, 50]
//! "strategy.slow" = [100, 200]
//! ```
//!
//! Grid points whose configuration is invalid (say fast ≥ slow) are listed as skipped with
//! the reason, not fatal.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use keel_replay::backtest;

/// Report fields a sweep can rank by.
pub const RANKABLE: &[&str] = &[
    "final_equity",
    "total_return_pct",
    "cagr_pct",
    "max_drawdown_pct",
    "max_drawdown_duration_days",
    "sharpe",
    "sortino",
    "calmar",
    "trades",
    "win_rate_pct",
    "profit_factor",
    "expectancy",
    "exposure_pct",
    "fees_paid",
];

/// Metrics shown for every run, after the parameters.
const SHOWN: &[&str] = &[
    "total_return_pct",
    "max_drawdown_pct",
    "sharpe",
    "sortino",
    "trades",
    "win_rate_pct",
    "profit_factor",
];

/// Default cap on the number of runs; each writes its own run journal.
pub const MAX_RUNS_DEFAULT: usize = 1_000;

pub struct Plan {
    base: toml::Table,
    grid: Vec<(String, String, Vec<toml::Value>)>,
    pub rank_by: String,
    pub descending: bool,
}

pub struct Point {
    pub index: usize,
    pub params: Vec<(String, toml::Value)>,
    pub outcome: std::result::Result<serde_json::Value, String>,
}

impl Plan {
    pub fn parse(path: &Path, text: &str) -> Result<Plan> {
        let mut base: toml::Table = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let Some(toml::Value::Table(mut sweep)) = base.remove("sweep") else {
            bail!(
                "{} has no [sweep] section; add one with a [sweep.grid] of \"section.key\" = [values]",
                path.display()
            );
        };
        let rank_by = match sweep.remove("rank_by") {
            None => "sharpe".to_string(),
            Some(toml::Value::String(s)) if RANKABLE.contains(&s.as_str()) => s,
            Some(other) => bail!("[sweep] rank_by = {other} must be one of {RANKABLE:?}"),
        };
        let descending = match sweep.remove("order") {
            None => true,
            Some(toml::Value::String(s)) if s == "desc" => true,
            Some(toml::Value::String(s)) if s == "asc" => false,
            Some(other) => bail!("[sweep] order = {other} must be \"asc\" or \"desc\""),
        };
        let max_runs = match sweep.remove("max_runs") {
            None => MAX_RUNS_DEFAULT,
            Some(toml::Value::Integer(n)) if n > 0 => n as usize,
            Some(other) => bail!("[sweep] max_runs = {other} must be a positive integer"),
        };
        let Some(toml::Value::Table(grid_table)) = sweep.remove("grid") else {
            bail!("[sweep] needs a [sweep.grid] table of \"section.key\" = [values]");
        };
        if let Some(key) = sweep.keys().next() {
            bail!("[sweep] has an unknown key `{key}` (known: rank_by, order, max_runs, grid)");
        }
        let mut grid = Vec::new();
        for (name, values) in grid_table {
            let Some((section, key)) = name.split_once('.') else {
                bail!("[sweep.grid] key `{name}` must be \"section.key\", e.g. \"strategy.fast\"");
            };
            if !base.get(section).is_some_and(toml::Value::is_table) {
                bail!("[sweep.grid] `{name}`: the configuration has no [{section}] section");
            }
            let toml::Value::Array(values) = values else {
                bail!("[sweep.grid] `{name}` must be an array of values");
            };
            if values.is_empty() {
                bail!("[sweep.grid] `{name}` has no values");
            }
            grid.push((section.to_string(), key.to_string(), values));
        }
        if grid.is_empty() {
            bail!("[sweep.grid] is empty");
        }
        let runs = grid
            .iter()
            .try_fold(1usize, |n, (_, _, v)| n.checked_mul(v.len()))
            .unwrap_or(usize::MAX);
        if runs > max_runs {
            bail!(
                "[sweep.grid] makes {runs} runs, more than max_runs = {max_runs}; each run \
                 writes its own journal (16 MiB pre-allocated): narrow the grid or raise \
                 [sweep] max_runs"
            );
        }
        Ok(Plan {
            base,
            grid,
            rank_by,
            descending,
        })
    }

    pub fn param_names(&self) -> Vec<String> {
        self.grid
            .iter()
            .map(|(s, k, _)| format!("{s}.{k}"))
            .collect()
    }

    /// Every combination, the first grid key varying slowest.
    pub fn combinations(&self) -> Vec<Vec<(String, toml::Value)>> {
        let mut out: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
        for (section, key, values) in &self.grid {
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push((format!("{section}.{key}"), v.clone()));
                        p
                    })
                })
                .collect();
        }
        out
    }

    /// The backtest configuration text of one combination.
    pub fn config_text(&self, params: &[(String, toml::Value)]) -> Result<String> {
        let mut table = self.base.clone();
        for (name, value) in params {
            let (section, key) = name.split_once('.').unwrap_or((name, ""));
            if let Some(toml::Value::Table(t)) = table.get_mut(section) {
                t.insert(key.to_string(), value.clone());
            }
        }
        Ok(toml::to_string(&table)?)
    }
}

/// Runs every point on `workers` threads; each writes `out/NNNN/journal` and `report.json`.
pub fn run(plan: &Plan, config_path: &Path, out: &Path, workers: usize) -> Result<Vec<Point>> {
    let combos = plan.combinations();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Point>> = Mutex::new(Vec::with_capacity(combos.len()));
    let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, combos.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(params) = combos.get(index) else {
                        break;
                    };
                    let dir = out.join(format!("{index:04}"));
                    let outcome = run_point(plan, config_path, params, &dir);
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if show_progress {
                        eprint!("\r  {finished}/{} runs", combos.len());
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push(Point {
                            index,
                            params: params.clone(),
                            outcome: outcome.map_err(|e| format!("{e:#}")),
                        });
                    }
                }
            });
        }
    });
    if show_progress {
        eprintln!();
    }
    let mut points = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a sweep worker panicked"))?;
    rank(&mut points, &plan.rank_by, plan.descending);
    Ok(points)
}

fn run_point(
    plan: &Plan,
    config_path: &Path,
    params: &[(String, toml::Value)],
    dir: &Path,
) -> Result<serde_json::Value> {
    let text = plan.config_text(params)?;
    let journal = backtest::journal_dir(dir);
    let spec = crate::config::backtest_from_text(config_path, text, journal)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let outcome = backtest::run(&spec, Box::new(|_| {}))?;
    let report = serde_json::to_value(&outcome.report)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )
    .with_context(|| format!("cannot write {}", dir.display()))?;
    Ok(report)
}

fn metric(p: &Point, name: &str) -> Option<f64> {
    p.outcome.as_ref().ok()?.get(name)?.as_f64()
}

/// Best first by `by`; runs without the metric (or that failed) last; ties by grid order.
pub fn rank(points: &mut [Point], by: &str, descending: bool) {
    points.sort_by(|a, b| {
        let (x, y) = (metric(a, by), metric(b, by));
        let order = match (x, y) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y);
                if descending { o.reverse() } else { o }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        order.then(a.index.cmp(&b.index))
    });
}

fn cell(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            Some(f) => format!("{f:.4}"),
            None => n.to_string(),
        },
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The ranked table as CSV: rank, run, parameters, metrics, digest, status.
pub fn csv(plan: &Plan, points: &[Point]) -> String {
    let mut out = String::from("rank,run");
    for p in plan.param_names() {
        out += &format!(",{}", csv_field(&p));
    }
    for m in SHOWN {
        out += &format!(",{m}");
    }
    out += ",digest,status\n";
    for (rank, p) in points.iter().enumerate() {
        out += &format!("{},{:04}", rank + 1, p.index);
        for (_, v) in &p.params {
            out += &format!(",{}", csv_field(&value_text(v)));
        }
        match &p.outcome {
            Ok(report) => {
                for m in SHOWN {
                    out += &format!(",{}", cell(report.get(*m)));
                }
                out += &format!(",{},ok\n", cell(report.get("digest")).trim_matches('"'));
            }
            Err(e) => {
                out += &",".repeat(SHOWN.len() + 1);
                out += &format!(",{}\n", csv_field(&format!("skipped: {e}")));
            }
        }
    }
    out
}

/// The ranked table for the terminal.
pub fn table(plan: &Plan, points: &[Point]) -> String {
    let mut s = format!(
        "{:>4} {:>5} {} ",
        "rank",
        "run",
        plan.param_names()
            .iter()
            .map(|n| format!("{n:>14}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for m in SHOWN {
        s += &format!("{:>17} ", m);
    }
    s.push('\n');
    for (rank, p) in points.iter().enumerate() {
        s += &format!("{:>4} {:>5} ", rank + 1, format!("{:04}", p.index));
        for (_, v) in &p.params {
            s += &format!("{:>14} ", value_text(v));
        }
        match &p.outcome {
            Ok(report) => {
                for m in SHOWN {
                    s += &format!("{:>17} ", cell(report.get(*m)));
                }
            }
            Err(e) => s += &format!("skipped: {}", e.lines().last().unwrap_or(e)),
        }
        s.push('\n');
    }
    s
}

/// Whether `name` is something a sweep writes into its output directory.
fn is_sweep_output(dir: &Path, name: &str) -> bool {
    name == "sweep.csv"
        || (name.len() == 4
            && name.bytes().all(|b| b.is_ascii_digit())
            && (dir.join(name).join("journal").is_dir()
                || dir.join(name).join("report.json").is_file()))
}

/// Prepares the output directory: a previous sweep there is replaced, but only if the
/// directory holds nothing else; anything that is not sweep output is never deleted.
pub fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() {
        let entries: Vec<String> = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot read {}", out.display()))?;
        if let Some(other) = entries.iter().find(|n| !is_sweep_output(out, n)) {
            bail!(
                "{} holds {other}, which is not output of a keel sweep; choose another --out",
                out.display()
            );
        }
        for name in entries {
            let path = out.join(&name);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("cannot remove the previous {}", path.display()))?;
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

/// Default output directory for a sweep config.
pub fn default_out(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[data]
store = "store"
symbol = "BTCUSDT"
interval = "1m"
[account]
starting_balance = 1000
[strategy]
kind = "sma_cross"
fast = 10
slow = 30
[sweep]
rank_by = "total_return_pct"
[sweep.grid]
"strategy.fast" = [5, 10]
"strategy.slow" = [20, 40, 80]
"#;

    #[test]
    fn expands_the_grid_first_key_slowest() {
        let plan = Plan::parse(Path::new("s.toml"), CONFIG).unwrap();
        let c = plan.combinations();
        assert_eq!(c.len(), 6);
        let text: Vec<String> = c
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(_, v)| v.to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        assert_eq!(text, ["5/20", "5/40", "5/80", "10/20", "10/40", "10/80"]);
        let cfg = plan.config_text(&c[4]).unwrap();
        assert!(
            cfg.contains("fast = 10") && cfg.contains("slow = 40"),
            "{cfg}"
        );
        assert!(!cfg.contains("sweep"), "{cfg}");
    }

    #[test]
    fn csv_fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("ETH,USDT"), "\"ETH,USDT\"");
        assert_eq!(csv_field("X\"Y"), "\"X\"\"Y\"");
    }

    #[test]
    fn grid_keys_keep_file_order() {
        let text = CONFIG.replace(
            "\"strategy.fast\" = [5, 10]\n\"strategy.slow\" = [20, 40, 80]",
            "\"strategy.slow\" = [20, 40, 80]\n\"strategy.fast\" = [5, 10]",
        );
        let plan = Plan::parse(Path::new("s.toml"), &text).unwrap();
        assert_eq!(plan.param_names(), ["strategy.slow", "strategy.fast"]);
    }

    #[test]
    fn bad_sweep_sections_are_explained() {
        for (bad, needle) in [
            (CONFIG.replace("total_return_pct", "luck"), "rank_by"),
            (
                CONFIG.replace("\"strategy.fast\"", "\"risk.fast\""),
                "no [risk] section",
            ),
            (CONFIG.replace("[5, 10]", "[]"), "no values"),
            (CONFIG.replace("rank_by", "rank"), "unknown key `rank`"),
            (
                CONFIG.replace("[sweep]\n", "[sweep]\nmax_runs = 5\n"),
                "makes 6 runs, more than max_runs = 5",
            ),
            (
                CONFIG.replace("[sweep]\nrank_by = \"total_return_pct\"\n[sweep.grid]", ""),
                "sweep",
            ),
        ] {
            let err = Plan::parse(Path::new("s.toml"), &bad)
                .err()
                .map(|e| format!("{e:#}"));
            let err = err.unwrap_or_default();
            assert!(err.contains(needle), "expected `{needle}` in `{err}`");
        }
    }
}
