//! The files in `deploy/` stay valid and in step with the code: Prometheus accepts its config,
//! the Grafana dashboard is importable and queries only metrics keel exports (so renaming a
//! metric breaks this test, not a production dashboard), and the systemd unit keeps its
//! essentials.
//!
//! The `promtool` checks skip with a note when `promtool` is absent, unless
//! `KEEL_REQUIRE_PROMETHEUS` is set.

#[path = "common/prometheus.rs"]
mod prometheus;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keel::metrics::Metrics;
use prometheus::tool_or_skip;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn deploy(file: &str) -> PathBuf {
    Path::new(ROOT).join("deploy").join(file)
}

fn read(file: &str) -> String {
    let path = deploy(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> serde_json::Value {
    let text = read("grafana/keel-dashboard.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("keel-dashboard.json: {e}"))
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_prometheus_config() {
    let Some(promtool) = tool_or_skip("promtool") else {
        return;
    };
    let config = deploy("prometheus.yml");
    run_promtool(
        &promtool,
        &["check", "config", config.to_str().expect("UTF-8 path")],
    );
}

#[test]
fn prometheus_config_scrapes_keel_on_the_default_address() {
    let text = read("prometheus.yml");
    assert!(text.contains("job_name: keel"), "{text}");
    assert!(text.contains("scrape_interval: 5s"), "{text}");
    let target = format!("\"{}\"", keel::metrics::DEFAULT_ADDR);
    assert!(text.contains(&target), "{text}");
}

/// Every string under one of `keys` in the dashboard, at any depth.
fn strings_under(value: &serde_json::Value, keys: &[&str], out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(s) if keys.contains(&key.as_str()) => {
                        out.push(s.clone());
                    }
                    _ => strings_under(v, keys, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_under(v, keys, out)),
        _ => {}
    }
}

/// The panels' PromQL expressions.
fn panel_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    strings_under(dashboard, &["expr"], &mut out);
    out
}

/// The `keel_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("keel_") {
        let preceded_by_word = rest[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if !preceded_by_word {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

#[test]
fn metric_names_are_the_keel_identifiers_of_an_expression() {
    let expr = "histogram_quantile(0.99, sum by (le) \
                (rate(keel_decision_latency_seconds_bucket{job=\"keel\"}[1m]))) / keel_equity";
    assert_eq!(
        metric_names(expr),
        ["keel_decision_latency_seconds_bucket", "keel_equity"]
    );
    assert!(metric_names("my_keel_equity").is_empty());
}

/// Sets every metric once, so that every label family has a series in the exposition.
fn set_every_metric(m: &Metrics) {
    m.set_session_info("paper", "binance-usdm", "sma_cross");
    m.set_equity(10_000.0);
    m.set_realized_pnl(12.0);
    m.set_unrealized_pnl(-3.0);
    m.set_position("BTCUSDT", 0.5);
    m.set_open_orders(2);
    m.set_strategy_pnl("sma_cross", 9.0);
    m.inc_decision("signal");
    m.inc_risk_rejection("max_position");
    m.inc_input("candle");
    m.observe_decision_latency(Duration::from_micros(25));
    m.set_journal_bytes(4096);
    m.set_journal_records(12);
    m.set_input_queue_depth(1);
    m.set_input_lag(Duration::from_millis(2));
    m.set_venue_connected("binance-usdm", true);
    m.inc_venue_reconnect("binance-usdm");
    m.inc_venue_error("binance-usdm", "timeout");
    m.set_market_data_age("BTCUSDT", Duration::from_millis(300));
    m.set_failsafe_active(false);
    m.set_halted(false);
    m.set_alert_stats(3, 1);
}

/// The sample names of an exposition (`keel_decisions_total`, `..._bucket`, ...).
fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn dashboard_queries_only_metrics_keel_exports() {
    let m = Metrics::new();
    set_every_metric(&m);
    let exported = sample_names(&m.encode());
    // Panel queries, and the variables' queries (`label_values(keel_equity, instance)`).
    let mut queries = Vec::new();
    strings_under(&dashboard(), &["expr", "query", "definition"], &mut queries);
    let referenced: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    assert!(
        referenced.len() >= 20,
        "too few metrics on the dashboard: {referenced:?}"
    );
    let missing: Vec<_> = referenced.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics keel does not export: {missing:?}\nexported: {exported:?}"
    );
}

#[test]
fn dashboard_is_importable_json_with_a_datasource_variable() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(d["uid"].as_str().is_some_and(|t| !t.is_empty()));
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    assert!(
        vars.iter().any(|v| v["name"] == "DS_PROMETHEUS"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no DS_PROMETHEUS data source variable: {vars:?}"
    );

    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut rows = 0;
    for p in panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        assert!(p["gridPos"]["w"].as_u64().is_some(), "gridPos of {title}");
        if p["type"] == "row" {
            rows += 1;
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${DS_PROMETHEUS}",
            "datasource of {title}"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(
                t["datasource"]["uid"], "${DS_PROMETHEUS}",
                "target of {title}"
            );
            assert!(
                t["expr"].as_str().is_some_and(|e| e.contains("keel_")),
                "{title}"
            );
        }
    }
    assert!(
        rows >= 5,
        "PnL, positions, strategies, decisions and health rows"
    );
}

/// Grafana's variables replaced by values PromQL accepts.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$instance", ".+")
}

#[test]
fn dashboard_queries_parse_as_promql() {
    let Some(promtool) = tool_or_skip("promtool") else {
        return;
    };
    let queries = panel_exprs(&dashboard());
    assert!(!queries.is_empty());
    let mut rules = String::from("groups:\n  - name: keel_dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let expr = as_promql(q).replace('\'', "''");
        rules.push_str(&format!(
            "      - record: keel_dashboard:query_{i}\n        expr: '{expr}'\n"
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard_rules.yml");
    std::fs::write(&file, rules).expect("write rules");
    run_promtool(
        &promtool,
        &["check", "rules", file.to_str().expect("UTF-8 path")],
    );
}

#[test]
fn systemd_unit_runs_paper_with_secrets_restart_and_hardening() {
    let unit = read("keel.service");
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let value = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect()
    };
    let exec = value("ExecStart");
    assert_eq!(exec.len(), 1, "{exec:?}");
    assert!(exec[0].ends_with("keel paper --config /etc/keel/keel.toml"));
    for (key, expected) in [
        ("EnvironmentFile", "/etc/keel/keel.env"),
        ("Restart", "on-failure"),
        ("User", "keel"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/keel"),
        ("PrivateTmp", "yes"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(value(key), [expected], "{key}");
    }
    let stop = value("TimeoutStopSec");
    let seconds: u64 = stop[0]
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in s");
    assert!(seconds >= 30, "too short for a clean stop: {seconds} s");
}
