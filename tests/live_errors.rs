//! `keel live` refuses what it cannot trade with — no API key, a mistyped configuration key, a
//! secret the venue does not accept — with a clear message and before the journal exists; and
//! it survives a venue that answers order placements with garbage or drops the connection
//! after running them, and an account stream that goes away (the failsafe flattens, the
//! reconnect reconciles), without losing an execution or placing an order twice.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/paper.rs"]
mod paper;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::KEEL;
use keel_adapters::mock::Fault;
use keel_adapters::mock::ws::private::PrivateFault;
use keel_engine::Fixed;
use keel_engine::event::{Command as Cmd, Event, FEE_IN_BASE_CLIENT_ID, OrderStatus};
use keel_replay::codec::Decoded;
use live::*;
use paper::*;

/// The API key variables `keel live` reads for Binance spot.
const KEY_VARS: [&str; 2] = ["KEEL_BINANCE_SPOT_API_KEY", "KEEL_BINANCE_SPOT_API_SECRET"];

/// Runs `keel live --config CONFIG` with `envs` (and no other API key), for at most a minute.
fn run(config: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(KEEL);
    cmd.args(["live", "--for-seconds", "5", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in KEY_VARS {
        cmd.env_remove(k);
    }
    cmd.env_remove("KEEL_TELEGRAM_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("keel live did not exit within a minute");
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A refusal: nonzero exit, no panic, the config file named, no journal.
fn assert_refused(out: &Output, config: &Path, journal: &Path, what: &str) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "{what}: it ran:\n{err}");
    assert!(!err.contains("panicked"), "{what}:\n{err}");
    let name = config.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains(&name),
        "{what}: the error names no file:\n{err}"
    );
    assert!(!journal.exists(), "{what}: the journal was created");
    err
}

#[test]
fn without_an_api_key_keel_live_names_the_variable_and_creates_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let venue = LiveVenue::binance_spot(&bundled_rows(30), Duration::from_millis(20), &journal);
    let config = dir.path().join("live.toml");
    std::fs::write(
        &config,
        live_config(&venue, &journal, free_port(), None, ""),
    )
    .unwrap();
    // Neither variable, then the secret without the key, then the key without the secret.
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "KEEL_BINANCE_SPOT_API_KEY"),
        (&[LIVE_ENV[1]], "KEEL_BINANCE_SPOT_API_KEY"),
        (&[LIVE_ENV[0]], "KEEL_BINANCE_SPOT_API_SECRET"),
    ];
    for (envs, needle) in cases {
        let out = run(&config, envs);
        let err = assert_refused(&out, &config, &journal, needle);
        assert!(
            err.contains(needle),
            "the error should name {needle}:\n{err}"
        );
        assert!(
            !err.contains("mock-api-secret"),
            "the secret reached stderr"
        );
    }
    // Nothing was asked of the venue without a key.
    assert!(
        venue.rest.requests().is_empty(),
        "{:?}",
        venue.rest.requests()
    );
}

#[test]
fn a_mistyped_configuration_key_is_named_with_its_file_and_no_journal_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let venue = LiveVenue::binance_spot(&bundled_rows(30), Duration::from_millis(20), &journal);
    let good = live_config(&venue, &journal, free_port(), None, "");
    let cases = [
        (format!("{good}\n[live]\ndead_man = 5\n"), "dead_man"),
        (
            format!("{good}\n[live]\nresend_within = 30\n"),
            "resend_within",
        ),
        (good.replace("private_ws_url", "private_url"), "private_url"),
        (
            good.replace("[failsafe]", "[failsafe]\ndisconnect_after_secs = 1"),
            "disconnect_after_secs",
        ),
        (
            format!("{good}\n[live]\ndead_man_secs = 5\n"),
            "dead_man_secs",
        ),
    ];
    for (i, (text, needle)) in cases.into_iter().enumerate() {
        let config = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&config, &text).unwrap();
        let out = run(&config, &LIVE_ENV);
        let err = assert_refused(&out, &config, &journal, needle);
        assert!(
            err.contains(needle),
            "case {i}: the error should name {needle:?}:\n{err}"
        );
    }
    // Refused before the venue was asked anything.
    assert!(
        venue.rest.requests().is_empty(),
        "{:?}",
        venue.rest.requests()
    );
}

#[test]
fn a_secret_the_venue_refuses_stops_keel_live_before_the_journal_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let venue = LiveVenue::binance_spot(&bundled_rows(30), Duration::from_millis(20), &journal);
    let config = dir.path().join("live.toml");
    std::fs::write(
        &config,
        live_config(&venue, &journal, free_port(), None, ""),
    )
    .unwrap();
    let secret = "wrong-secret-0123456789abcdef";
    let out = run(
        &config,
        &[LIVE_ENV[0], ("KEEL_BINANCE_SPOT_API_SECRET", secret)],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "it ran:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("API key was not accepted"),
        "the error should say the key was refused:\n{err}"
    );
    assert!(!err.contains(secret), "the secret reached stderr:\n{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(secret),
        "the secret reached stdout"
    );
    assert!(!journal.exists(), "the journal was created");
    // The venue saw a signed request, and not the secret.
    let requests = venue.rest.requests();
    assert!(
        requests.iter().any(|r| r.header("x-mbx-apikey").is_some()),
        "{requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.body.contains(secret) || r.query.iter().any(|(_, v)| v.contains(secret))),
        "the secret went over the wire"
    );
}

/// The client order id a placement request carried (query or form body).
fn client_order_id(r: &keel_adapters::mock::RecordedRequest) -> Option<String> {
    if let Some(id) = r.param("newClientOrderId") {
        return Some(id.to_string());
    }
    r.body
        .split('&')
        .find_map(|kv| kv.strip_prefix("newClientOrderId=").map(|v| v.to_string()))
}

/// The checks every live session must pass against the exchange once it stopped: each
/// execution journaled once as the exchange made it, no client order id used twice, the
/// core's open orders the exchange's, the coins the wallet's (up to fee dust), the journal
/// verifying. Returns the journal's BTC.
fn assert_journal_agrees_with_exchange(venue: &LiveVenue, journal: &Path, dir: &Path) -> Fixed {
    // Every execution journaled exactly once.
    let executions = venue.rest.fills();
    let mut by_trade: BTreeMap<(u64, u64), Vec<keel_engine::event::Fill>> = BTreeMap::new();
    let mut fee_fills: BTreeMap<(u64, u64), Vec<Fixed>> = BTreeMap::new();
    for f in fills(journal) {
        let key = (f.venue_order_id, f.trade_id);
        if f.client_id == FEE_IN_BASE_CLIENT_ID {
            fee_fills.entry(key).or_default().push(f.qty);
        } else {
            by_trade.entry(key).or_default().push(f);
        }
    }
    let step = Fixed::parse("0.00001").unwrap();
    let mut dust = Fixed::ZERO;
    for e in &executions {
        let key = (e.order_id, e.trade_id.unwrap());
        let got = by_trade.remove(&key).unwrap_or_default();
        assert_eq!(got.len(), 1, "{e:?} journaled {} times", got.len());
        let f = got[0];
        assert_eq!(format!("k{}", f.client_id), e.client_order_id);
        assert_eq!((f.price, f.qty, f.side), (e.last_price, e.last_qty, e.side));
        if e.commission_asset == "BTC" && !e.commission.is_zero() {
            // Journaled once, rounded up to the lot step; the rest is wallet dust.
            let fee = fee_fills.remove(&key).unwrap_or_default();
            assert_eq!(
                fee.len(),
                1,
                "the fee of {e:?} journaled {} times",
                fee.len()
            );
            let rest = fee[0] - e.commission;
            assert!(rest >= Fixed::ZERO && rest < step, "{e:?}: fee {}", fee[0]);
            dust += rest;
        }
    }
    assert!(
        by_trade.is_empty(),
        "fills the exchange never made: {by_trade:?}"
    );
    assert!(
        fee_fills.is_empty(),
        "fees the exchange never took: {fee_fills:?}"
    );

    // No client order id went to the exchange twice.
    let orders = venue.rest.orders();
    let ids: BTreeSet<&str> = orders.iter().map(|o| o.client_order_id.as_str()).collect();
    assert_eq!(ids.len(), orders.len(), "a client order id was used twice");

    // The core's open orders are the exchange's.
    let core = keel_replay::recover::recover(journal).unwrap().core;
    let core_open: BTreeSet<u64> = core.state().orders.keys().copied().collect();
    let venue_open: BTreeSet<u64> = venue
        .rest
        .open_orders()
        .iter()
        .filter_map(|o| o.client_order_id.strip_prefix('k')?.parse().ok())
        .collect();
    assert_eq!(core_open, venue_open, "open orders: core vs exchange");

    // The coins.
    let (btc, usdt) = journal_balances(journal);
    let b = venue.rest.balance("BTC");
    let u = venue.rest.balance("USDT");
    assert_eq!(
        btc + dust,
        b.free + b.locked,
        "BTC: journal {btc} + dust {dust} vs exchange"
    );
    assert_eq!(usdt, u.free + u.locked, "USDT: journal vs exchange");

    // The journal replays to the same decisions.
    let verify = common::keel(&["replay", "verify", journal.to_str().unwrap()], dir);
    let (out, err) = common::text(&verify);
    assert!(verify.status.success(), "{out}\n{err}");
    assert!(out.contains("0 divergences"), "{out}");
    btc
}

#[test]
fn garbage_and_lost_answers_to_placements_are_reconciled_and_no_order_is_placed_twice() {
    // Long enough to trade on after the garbage answer: an order whose answer is unreadable
    // holds its symbol's entries for about 11 s while keel waits to see if it lands.
    const BARS: usize = 1200;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let rows = bundled_rows(BARS);
    let venue = LiveVenue::binance_spot(&rows, Duration::from_millis(10), &journal);
    // The first placements meet, in turn: a garbage answer (the venue never ran it), a
    // connection closed after the order ran, an answer cut off midway (it ran), a 500 (it did
    // not run). The ones after get normal answers.
    let faults = [
        Fault::Garbage,
        Fault::DropAfterExecution,
        Fault::DropMidResponse,
        Fault::ServerError,
    ];
    for f in &faults {
        venue.rest.inject_on("POST", "/api/v3/order", 1, f.clone());
    }
    let port = free_port();
    let config = dir.path().join("live.toml");
    std::fs::write(&config, live_config(&venue, &journal, port, None, "")).unwrap();
    let err_path = dir.path().join("live.err");
    let mut child = Command::new(KEEL)
        .args(["live", "--config"])
        .arg(&config)
        .envs(LIVE_ENV)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let done = wait_for(Duration::from_secs(90), || {
        (candles(&journal) >= BARS).then_some(())
    });
    // Let the last candle's price reach the exchange and its executions the journal.
    std::thread::sleep(Duration::from_millis(300));
    let quiet = wait_for(Duration::from_secs(30), || {
        let journaled: BTreeSet<(u64, u64)> = fills(&journal)
            .iter()
            .map(|f| (f.venue_order_id, f.trade_id))
            .collect();
        venue
            .rest
            .fills()
            .iter()
            .all(|e| journaled.contains(&(e.order_id, e.trade_id.unwrap())))
            .then_some(())
    });
    let alive = child.try_wait().unwrap().is_none();
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    let log = read(&err_path);
    assert!(alive, "the session died:\n{log}");
    assert!(done.is_some(), "the session never took every bar:\n{log}");
    assert!(quiet.is_some(), "executions never journaled:\n{log}");
    assert!(status.is_some_and(|s| s.success()), "{status:?}:\n{log}");
    assert!(!log.contains("panicked"), "{log}");

    // Every fault was served, to a placement of its own.
    let faulted: Vec<_> = venue
        .rest
        .requests_to("POST", "/api/v3/order")
        .into_iter()
        .filter(|r| r.fault.is_some())
        .collect();
    assert_eq!(
        faulted
            .iter()
            .map(|r| r.fault.clone().unwrap())
            .collect::<Vec<_>>(),
        faults,
        "faults served"
    );
    let decided: BTreeSet<u64> = placed(&journal).iter().map(|r| r.client_id).collect();
    let orders = venue.rest.orders();
    for r in &faulted {
        let id = client_order_id(r).unwrap_or_else(|| panic!("no client order id in {r:?}"));
        let n: u64 = id.strip_prefix('k').unwrap().parse().unwrap();
        assert!(decided.contains(&n), "{id} was never decided");
        let on_exchange = orders.iter().filter(|o| o.client_order_id == id).count();
        let fault = r.fault.clone().unwrap();
        match fault {
            // It ran: the order is on the exchange once, and the journal knows what became of
            // it (its fills are checked with every other execution below).
            Fault::DropAfterExecution | Fault::DropMidResponse => {
                assert_eq!(on_exchange, 1, "{fault:?}: {id} on the exchange");
                let answered = inputs(&journal).iter().any(|e| match e {
                    Event::OrderUpdate(u) => u.client_id == n,
                    Event::Fill(f) => f.client_id == n,
                    _ => false,
                });
                assert!(answered, "{fault:?}: nothing journaled about {id}:\n{log}");
            }
            // It did not run: the client asked, found nothing and sent it again, once; or
            // the order was given up as refused — never both, never twice.
            Fault::ServerError | Fault::Garbage => {
                assert!(
                    on_exchange <= 1,
                    "{fault:?}: {id} placed {on_exchange} times"
                );
                if on_exchange == 0 {
                    // Closed in the core: refused (a 5xx), or — a 200 whose body cannot be
                    // read is taken for a lost answer — found missing by the reconciliation.
                    let refused = inputs(&journal).iter().any(|e| {
                        matches!(e, Event::OrderUpdate(u)
                            if u.client_id == n && u.status == OrderStatus::Rejected)
                    });
                    let core = keel_replay::recover::recover(&journal).unwrap().core;
                    let reconciled = core.state().counters.reconcile_lost > 0
                        && !core.state().orders.contains_key(&n);
                    assert!(
                        refused || reconciled,
                        "{fault:?}: {id} neither placed nor closed:\n{log}"
                    );
                    if fault == Fault::Garbage {
                        assert!(
                            log.contains(&format!("{id}: ")) && log.contains("reconciling"),
                            "a 200 with an unreadable body is an unknown outcome:\n{log}"
                        );
                    }
                }
            }
            _ => unreachable!(),
        }
    }
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.contains("order") || l.contains("reconcil"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let executions = venue.rest.fills();
    assert!(
        executions.len() >= 6,
        "the session traded too little to test: {} executions",
        executions.len()
    );
    assert_journal_agrees_with_exchange(&venue, &journal, dir.path());
}

#[test]
fn when_the_account_stream_goes_away_the_failsafe_flattens_and_the_reconnect_reconciles() {
    // The bars end with the strategy holding a long position (and its stop resting on the
    // exchange): from then on nothing trades but what the failsafe decides.
    const BARS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let rows = bundled_rows(BARS);
    let venue = LiveVenue::binance_spot(&rows, Duration::from_millis(5), &journal);
    let port = free_port();
    let config = dir.path().join("live.toml");
    let text = live_config(&venue, &journal, port, None, "").replace(
        "disconnected_after_secs = 600",
        "disconnected_after_secs = 1\naction = \"flatten\"",
    );
    std::fs::write(&config, text).unwrap();
    let err_path = dir.path().join("live.err");
    let mut child = Command::new(KEEL)
        .args(["live", "--config"])
        .arg(&config)
        .envs(LIVE_ENV)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let log = || read(&err_path);
    let finish = |child: &mut std::process::Child, why: &str| -> ! {
        let _ = child.kill();
        panic!("{why}:\n{}", read(&err_path))
    };
    // Every bar in, every execution journaled, the account stream up.
    let settled = wait_for(Duration::from_secs(60), || {
        if candles(&journal) < BARS {
            return None;
        }
        let journaled: BTreeSet<(u64, u64)> = fills(&journal)
            .iter()
            .map(|f| (f.venue_order_id, f.trade_id))
            .collect();
        let all_in = venue
            .rest
            .fills()
            .iter()
            .all(|e| journaled.contains(&(e.order_id, e.trade_id.unwrap())));
        let live = venue.private.connections().iter().any(|c| c.is_live());
        (all_in && live).then_some(())
    });
    if settled.is_none() {
        finish(&mut child, "the session never took every bar");
    }
    let held = venue.rest.balance("BTC");
    if held.free + held.locked < Fixed::parse("0.001").unwrap() {
        finish(
            &mut child,
            "precondition: the bars should end with a position open (the strategy changed?)",
        );
    }

    // The account stream drops, and the venue refuses the next three authentications: the
    // stream stays down for seconds (the client backs off 0.25 + 0.5 + 1 + 2 s at least).
    let seen = log().len();
    let last_seq = records(&journal).last().map_or(0, |(s, _)| *s);
    venue.private.reject_next_auth(3);
    venue.private.inject(PrivateFault::Drop);

    // The failsafe fires on the outage and journals the kill switch.
    let tripped = wait_for(Duration::from_secs(20), || {
        let t = log();
        t[seen..]
            .contains("failsafe: the account stream disconnected")
            .then_some(())
    });
    if tripped.is_none() {
        finish(&mut child, "the failsafe never fired");
    }
    let kill_switch = wait_for(Duration::from_secs(10), || {
        records(&journal)
            .iter()
            .find(|(s, d)| {
                *s > last_seq && matches!(d, Decoded::Input(Event::Command(Cmd::KillSwitch)))
            })
            .map(|(s, _)| *s)
    });
    let Some(kill_switch) = kill_switch else {
        finish(&mut child, "no kill switch was journaled")
    };
    // The exchange ends flat: no order open, no BTC but the fee dust (each fee taken in BTC
    // leaves less than one lot step, 0.00001, that no order can sell), all by REST (the
    // stream is still down).
    let flat = wait_for(Duration::from_secs(20), || {
        let b = venue.rest.balance("BTC");
        let fees = venue
            .rest
            .fills()
            .iter()
            .filter(|e| e.commission_asset == "BTC")
            .count() as i64;
        let dust = Fixed::parse("0.00001")
            .unwrap()
            .checked_mul(Fixed::from_int(fees))
            .unwrap();
        (b.free + b.locked < dust && venue.rest.open_orders().is_empty()).then_some(())
    });
    let down_while_flattening = !venue.private.connections().iter().any(|c| c.is_live());
    if flat.is_none() {
        finish(&mut child, "the exchange was never flattened");
    }

    // The stream comes back; the reconnect is reconciled; the failsafe clears.
    let reconciled = wait_for(Duration::from_secs(30), || {
        let t = log();
        let after = &t[seen..];
        let at = after.find("failsafe: the account stream disconnected")?;
        let rest = &after[at..];
        let r = rest.find("reconciled (account stream reconnected)")?;
        rest[r..].contains("live: reconciliation: ").then_some(())
    });
    if reconciled.is_none() {
        finish(&mut child, "no reconciliation after the stream came back");
    }
    let resumed = wait_for(Duration::from_secs(10), || {
        records(&journal)
            .iter()
            .any(|(s, d)| {
                *s > kill_switch && matches!(d, Decoded::Input(Event::Command(Cmd::Resume)))
            })
            .then_some(())
    });
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    let text = log();
    assert!(status.is_some_and(|s| s.success()), "{status:?}:\n{text}");
    assert!(
        down_while_flattening,
        "the stream was back before the exchange was flat: the test proves nothing:\n{text}"
    );
    assert!(resumed.is_some(), "the failsafe never cleared:\n{text}");
    assert!(text.contains("authentication refused"), "{text}");
    assert!(
        venue.private.auths().iter().filter(|a| !a.ok).count() == 3,
        "{:?}",
        venue.private.auths()
    );

    // Flat in the journal too, and the journal agrees with the exchange in everything.
    let btc = assert_journal_agrees_with_exchange(&venue, &journal, dir.path());
    assert_eq!(btc, Fixed::ZERO, "the journal still holds BTC");
    assert!(venue.rest.open_orders().is_empty());
}

#[test]
fn venues_whose_orders_keel_cannot_yet_map_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let venue = LiveVenue::binance_spot(&bundled_rows(30), Duration::from_millis(20), &journal);
    let base = live_config(&venue, &journal, free_port(), None, "");
    let cases = [
        (
            base.replace("binance-spot", "kraken")
                .replace("symbol = \"BTCUSDT\"", "symbol = \"BTC/USD\""),
            [
                ("KEEL_KRAKEN_API_KEY", "k"),
                ("KEEL_KRAKEN_API_SECRET", "c2VjcmV0"),
            ],
            "does not trade on Kraken",
        ),
        (
            base.replace("binance-spot", "okx")
                .replace("symbol = \"BTCUSDT\"", "symbol = \"BTC-USDT-SWAP\""),
            [("KEEL_OKX_API_KEY", "k"), ("KEEL_OKX_API_SECRET", "s")],
            "does not trade OKX swaps",
        ),
    ];
    for (i, (text, envs, needle)) in cases.into_iter().enumerate() {
        let config = dir.path().join(format!("live-{i}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut envs = envs.to_vec();
        envs.push(("KEEL_OKX_PASSPHRASE", "p"));
        let out = run(&config, &envs);
        let err = assert_refused(&out, &config, &journal, needle);
        assert!(err.contains(needle), "{needle}:\n{err}");
    }
    assert!(venue.rest.requests().is_empty(), "a request was sent");
}
