//! `keel live` end to end against the loopback mock venue (Binance spot: public kline stream
//! of the bundled real candles, signed REST exchange, private account stream): candles arrive,
//! the strategy trades, orders go to the exchange, fills come back and are journaled once each,
//! metrics and alerts show them, and what the journal says the account holds is what the
//! exchange says it holds.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/paper.rs"]
mod paper;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{KEEL, keel};
use keel_engine::Fixed;
use keel_engine::event::{Event, FEE_IN_BASE_CLIENT_ID};
use live::*;
use paper::*;

const BARS: usize = 600;

#[test]
fn a_live_session_trades_on_the_venue_and_its_journal_agrees_with_the_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let rows = bundled_rows(BARS);
    let venue = LiveVenue::binance_spot(&rows, Duration::from_millis(15), &journal);
    let telegram = TelegramRecorder::start();
    let port = free_port();
    let config = dir.path().join("live.toml");
    let text = live_config(&venue, &journal, port, Some(&telegram.url), "").replace(
        "heartbeat_secs = 1",
        "heartbeat_secs = 1\non_stop = \"flatten\"",
    );
    std::fs::write(&config, text).unwrap();
    let err_path = dir.path().join("live.err");
    let mut child = Command::new(KEEL)
        .args(["live", "--config"])
        .arg(&config)
        .envs(LIVE_ENV)
        .env("KEEL_TELEGRAM_TOKEN", "123:live-test-token")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // Trade until every bar is in, reading the metrics on the way.
    let exposition = wait_for(Duration::from_secs(120), || {
        let text = http_get(port, "/metrics")?;
        (metric(&text, r#"keel_inputs_total{kind="candle"}"#)? >= BARS as f64).then_some(text)
    });
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    let exposition = exposition.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the session never took every bar; stderr:\n{}", stderr())
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    let log = stderr();
    assert!(status.success(), "exit {status:?}; stderr:\n{log}");
    assert!(
        log.contains("reconciliation: no divergence"),
        "the start-up reconciliation of a new session found nothing; stderr:\n{log}"
    );

    // Every execution on the exchange is in the journal exactly once, with the exchange's
    // price, quantity, side and ids (the REST answer and the account stream both carried it).
    let executions = venue.rest.fills();
    assert!(
        executions.len() >= 6,
        "the session traded too little to test: {} executions; stderr:\n{log}",
        executions.len()
    );
    let journal_fills: Vec<_> = fills(&journal)
        .into_iter()
        .filter(|f| f.client_id != FEE_IN_BASE_CLIENT_ID)
        .collect();
    let mut by_trade: BTreeMap<(u64, u64), Vec<_>> = BTreeMap::new();
    for f in &journal_fills {
        by_trade
            .entry((f.venue_order_id, f.trade_id))
            .or_default()
            .push(*f);
    }
    assert_eq!(
        journal_fills.len(),
        executions.len(),
        "fills journaled vs executed"
    );
    for e in &executions {
        let key = (e.order_id, e.trade_id.unwrap());
        let got = by_trade
            .get(&key)
            .unwrap_or_else(|| panic!("{e:?} not journaled"));
        assert_eq!(got.len(), 1, "{e:?} journaled {} times", got.len());
        let f = got[0];
        assert_eq!(format!("k{}", f.client_id), e.client_order_id);
        assert_eq!((f.price, f.qty, f.side), (e.last_price, e.last_qty, e.side));
        // Spot buys pay their fee in BTC: journaled as its own fill just before.
        if e.commission_asset == "BTC" {
            assert_eq!(f.fee, Fixed::ZERO);
        } else {
            assert_eq!(f.fee, e.commission, "{e:?}");
        }
    }

    // No order was placed twice, and every order decision reached the exchange.
    let orders = venue.rest.orders();
    let ids: BTreeSet<&str> = orders.iter().map(|o| o.client_order_id.as_str()).collect();
    assert_eq!(ids.len(), orders.len(), "a client order id was used twice");
    for r in placed(&journal) {
        assert!(
            ids.contains(format!("k{}", r.client_id).as_str()),
            "decided order k{} never reached the exchange",
            r.client_id
        );
    }

    // What the journal says the account holds is what the exchange holds: USDT to the unit,
    // BTC up to the unsellable dust (the flatten at stop sold everything else).
    let (btc, usdt) = journal_balances(&journal);
    let b = venue.rest.balance("BTC");
    let u = venue.rest.balance("USDT");
    // Each buy's fee in BTC leaves the wallet a remainder below one lot step (0.00001) that no
    // order can sell (exchange dust); the journal counts it as spent.
    let dust = b.free + b.locked - btc;
    let base_fees = executions
        .iter()
        .filter(|e| e.commission_asset == "BTC")
        .count() as i64;
    assert!(
        dust >= Fixed::ZERO
            && dust
                < Fixed::parse("0.00001")
                    .unwrap()
                    .checked_mul(Fixed::from_int(base_fees))
                    .unwrap(),
        "BTC: journal {btc} vs exchange {} ({base_fees} fees in BTC)",
        b.free + b.locked
    );
    assert_eq!(usdt, u.free + u.locked, "USDT: journal vs exchange");
    assert!(
        venue.rest.open_orders().is_empty(),
        "flatten left orders open"
    );

    // Metrics and alerts saw the fills.
    let fill_inputs = metric(&exposition, r#"keel_inputs_total{kind="fill"}"#).unwrap();
    assert!(fill_inputs >= 1.0, "{exposition}");
    assert!(
        exposition.contains(r#"mode="live""#),
        "session info names the mode: {exposition}"
    );
    let texts = telegram.texts();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("live") && t.to_lowercase().contains("fill")),
        "no fill alert: {texts:?}"
    );
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("live-test-token") || t.contains("mock-api-secret")),
        "a secret reached an alert"
    );
    assert!(
        !log.contains("mock-api-secret"),
        "the secret reached stderr"
    );

    // The journal replays to the same decisions.
    let verify = keel(&["replay", "verify", journal.to_str().unwrap()], dir.path());
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // Candles arrive once each.
    let candle_count = inputs(&journal)
        .iter()
        .filter(|e| matches!(e, Event::Candle(_)))
        .count();
    assert_eq!(candle_count, BARS);
}
