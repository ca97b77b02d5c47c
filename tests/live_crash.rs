//! Crash recovery of the real binary against the loopback exchange: `keel live` is killed with
//! SIGKILL at pseudo-random moments (while starting and recovering, or while trading) at least
//! 20 times — set KEEL_CRASH_LOOPS for a longer run — and restarted each time. After every
//! restart no journaled record is lost or changed, the core it recovers has exactly the digest
//! of the journal the killed process left, and it reconciles with the exchange. At the end no
//! client order id went to the exchange twice, every execution is journaled exactly once, the
//! core's open orders are the exchange's, the journal's coins are the wallet's, and the journal
//! verifies.
//!
//! The public mock plays its script from the start on every connection; rather than wait for
//! each restart to be streamed every bar again (and skip them), every run gets a fresh public
//! mock whose script starts a few bars before the last candle the journal holds: the overlap
//! still exercises the skip of candles already journaled (by open time).

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/paper.rs"]
mod paper;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{KEEL, keel};
use keel_engine::Fixed;
use keel_engine::event::{Event, FEE_IN_BASE_CLIENT_ID, Side};
use keel_journal::Reader;
use live::*;
use paper::*;

const BARS: usize = 1500;
/// Bars of each run's script that the journal already holds.
const OVERLAP: usize = 3;
/// One frame (two per bar: in progress, then closed) every this long.
const FRAME_EVERY: Duration = Duration::from_millis(5);

type RawRecord = (u64, u16, u16, u64, Vec<u8>);

/// Every record as (seq, kind, version, timestamp, payload).
fn raw(dir: &Path) -> Vec<RawRecord> {
    let Ok(mut reader) = Reader::open(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(Some(rec)) = reader.next() {
        out.push((rec.seq, rec.kind, rec.ver, rec.ts_ns, rec.payload.to_vec()));
    }
    out
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// (venue order id, trade id) of every execution on the exchange not yet journaled.
fn unjournaled_executions(venue: &LiveVenue, journal: &Path) -> Vec<(u64, u64)> {
    let journaled: BTreeSet<(u64, u64)> = fills(journal)
        .iter()
        .filter(|f| f.client_id != FEE_IN_BASE_CLIENT_ID)
        .map(|f| (f.venue_order_id, f.trade_id))
        .collect();
    venue
        .rest
        .fills()
        .iter()
        .map(|e| (e.order_id, e.trade_id.unwrap()))
        .filter(|k| !journaled.contains(k))
        .collect()
}

#[test]
fn killed_at_random_moments_a_live_session_loses_nothing_and_places_no_order_twice() {
    let loops: usize = std::env::var("KEEL_CRASH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(20);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let rows = bundled_rows(BARS);
    let mut venue = LiveVenue::binance_spot(&rows, FRAME_EVERY, &journal);
    let port = free_port();
    let config = dir.path().join("live.toml");
    let start = |venue: &mut LiveVenue, n: usize| -> (Child, std::path::PathBuf) {
        // A fresh public stream starting just before the last bar journaled.
        let from = candles(&journal).saturating_sub(OVERLAP);
        venue.public = mock_venue(binance_kline_frames(&rows[from..]), FRAME_EVERY);
        std::fs::write(&config, live_config(venue, &journal, port, None, "")).unwrap();
        let err = dir.path().join(format!("run-{n}.err"));
        let child = Command::new(KEEL)
            .args(["live", "--config"])
            .arg(&config)
            .envs(LIVE_ENV)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        (child, err)
    };
    let started = |t: &str| t.contains("new session") || t.contains("resumed a journal");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // What the previous killed process left: its records, and their replayed digest.
    let mut left: Vec<RawRecord> = Vec::new();
    let mut expected_digest: Option<String> = None;
    let (mut resumed, mut early, mut at_order) = (0, 0, 0);
    let mut repairs: Vec<String> = Vec::new();
    for n in 0..=loops {
        let (mut child, err) = start(&mut venue, n);
        // One run in four is killed at a random moment from its start (opening the journal,
        // recovering, reconciling); one in two right after an order of its reaches the
        // exchange (while the answer, or the next order, is on its way); the others after
        // trading a random while.
        let mode = if n == 0 || n == loops {
            3
        } else {
            xorshift(&mut seed) % 4
        };
        let kill_early = mode == 0;
        let kill_at_order = mode == 1 || mode == 2;
        let check_start = |text: &str| match &expected_digest {
            None => assert!(text.contains("new session"), "run {n}: {text}"),
            Some(digest) => {
                assert!(
                    text.contains("resumed a journal")
                        && text.contains(&format!("replayed digest {digest}")),
                    "run {n}: expected a resumed journal with the digest {digest} of what \
                     the killed process left:\n{text}"
                );
            }
        };
        if kill_early {
            early += 1;
            std::thread::sleep(Duration::from_millis(xorshift(&mut seed) % 300));
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
            let text = read(&err);
            // What it printed before it died must still be right.
            if started(&text) {
                check_start(&text);
                resumed += usize::from(expected_digest.is_some());
            }
        } else {
            // The restarted process reports what it recovered before it trades...
            let text = wait_for(Duration::from_secs(30), || {
                let t = read(&err);
                started(&t).then_some(t)
            })
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("run {n} did not start: {}", read(&err))
            });
            check_start(&text);
            resumed += usize::from(expected_digest.is_some());
            // ... and reconciles with the exchange.
            let text = wait_for(Duration::from_secs(30), || {
                let t = read(&err);
                t.contains("live: reconciliation: ").then_some(t)
            })
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("run {n} never reconciled: {}", read(&err))
            });
            assert!(!text.contains("panicked"), "run {n}: {text}");
            if n == loops {
                // The last run trades to the end of the bars; once every execution on the
                // exchange is journaled it stops cleanly.
                let done = wait_for(Duration::from_secs(90), || {
                    (candles(&journal) >= BARS).then_some(())
                });
                std::thread::sleep(Duration::from_millis(300));
                let quiet = wait_for(Duration::from_secs(30), || {
                    unjournaled_executions(&venue, &journal)
                        .is_empty()
                        .then_some(())
                });
                signal(child.id(), libc::SIGTERM);
                let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
                let text = read(&err);
                assert!(
                    done.is_some(),
                    "the last run did not finish the bars:\n{text}"
                );
                assert!(
                    quiet.is_some(),
                    "executions never journaled: {:?}\n{text}",
                    unjournaled_executions(&venue, &journal)
                );
                assert!(status.is_some_and(|s| s.success()), "{status:?}\n{text}");
                break;
            }
            if kill_at_order {
                // The moment the exchange takes its next order (within a bound).
                let orders = venue.rest.orders().len();
                let until = std::time::Instant::now() + Duration::from_secs(3);
                while venue.rest.orders().len() == orders && std::time::Instant::now() < until {
                    std::thread::yield_now();
                }
                std::thread::sleep(Duration::from_micros(xorshift(&mut seed) % 1000));
                at_order += 1;
            } else {
                // A random while.
                std::thread::sleep(Duration::from_millis(50 + xorshift(&mut seed) % 1200));
            }
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
        // What the kill left for the restart to repair.
        let lost = unjournaled_executions(&venue, &journal).len();
        let sent: BTreeSet<String> = venue
            .rest
            .orders()
            .into_iter()
            .map(|o| o.client_order_id)
            .collect();
        let unsent = placed(&journal)
            .iter()
            .filter(|r| !sent.contains(&format!("k{}", r.client_id)))
            .count();
        if lost + unsent > 0 {
            repairs.push(format!(
                "run {n}: {lost} execution(s) not journaled, {unsent} order(s) decided and not \
                 sent"
            ));
        }
        // Nothing journaled before the kill is gone or changed.
        let now = raw(&journal);
        assert!(
            now.len() >= left.len(),
            "run {n}: records were lost ({} before, {} now)",
            left.len(),
            now.len()
        );
        if let Some(i) = (0..left.len()).find(|&i| now[i] != left[i]) {
            panic!("run {n}: the record at seq {} changed", left[i].0);
        }
        left = now;
        // The digest of an independent replay of what the killed process left.
        expected_digest = if left.is_empty() {
            None // killed before the first record
        } else {
            let copy = dir.path().join(format!("left-{n}"));
            dir_copy(&journal, &copy);
            let outcome = keel_replay::verify::verify(&copy)
                .unwrap_or_else(|e| panic!("run {n}: the journal left does not replay: {e}"));
            // A killed session's journal has no final checkpoint: that alone is expected.
            let real: Vec<_> = outcome
                .divergences
                .iter()
                .filter(|d| !d.what.contains("no checkpoint after the last input"))
                .collect();
            assert!(
                real.is_empty(),
                "run {n}: the journal left diverges: {real:?}"
            );
            let _ = std::fs::remove_dir_all(&copy);
            Some(keel_engine::core::hex(&outcome.final_digest))
        };
    }

    assert!(
        resumed >= loops / 2,
        "only {resumed} of {loops} restarts resumed a journal"
    );
    let log: String = (0..=loops)
        .map(|n| read(&dir.path().join(format!("run-{n}.err"))))
        .collect();
    assert!(
        !log.contains("mock-api-secret"),
        "the secret reached stderr"
    );
    // What the kills left for the restarts to repair (for whoever reads the test's output).
    repairs.extend(
        log.lines()
            .filter(|l| {
                (l.contains("reconciliation: ") && !l.contains("no divergence"))
                    || l.contains("decisions of the last input journaled")
                    || l.contains("never reached the venue")
                    || l.contains("torn tail")
            })
            .map(str::to_string),
    );
    eprintln!(
        "{} runs: {resumed} resumed, {early} killed while starting, {at_order} as an order \
         reached the exchange; left to repair at restart:\n{}",
        loops + 1,
        repairs.join("\n")
    );

    // No client order id went to the exchange twice, nor was decided twice.
    let orders = venue.rest.orders();
    let ids: BTreeSet<&str> = orders.iter().map(|o| o.client_order_id.as_str()).collect();
    assert_eq!(ids.len(), orders.len(), "a client order id was used twice");
    let decided = placed(&journal);
    let decided_ids: BTreeSet<u64> = decided.iter().map(|r| r.client_id).collect();
    assert_eq!(
        decided_ids.len(),
        decided.len(),
        "an order was decided twice"
    );
    for o in &orders {
        let id = o
            .client_order_id
            .strip_prefix('k')
            .and_then(|n| n.parse().ok());
        assert!(
            id.is_some_and(|id| decided_ids.contains(&id)),
            "{} is on the exchange but was never decided",
            o.client_order_id
        );
    }

    // Every execution is journaled exactly once, as the exchange made it.
    let executions = venue.rest.fills();
    assert!(
        executions.len() >= 20,
        "the session traded too little to test: {} executions",
        executions.len()
    );
    let mut by_trade: BTreeMap<(u64, u64), Vec<keel_engine::event::Fill>> = BTreeMap::new();
    for f in fills(&journal)
        .into_iter()
        .filter(|f| f.client_id != FEE_IN_BASE_CLIENT_ID)
    {
        by_trade
            .entry((f.venue_order_id, f.trade_id))
            .or_default()
            .push(f);
    }
    for e in &executions {
        let key = (e.order_id, e.trade_id.unwrap());
        let got = by_trade.remove(&key).unwrap_or_default();
        assert_eq!(got.len(), 1, "{e:?} journaled {} times", got.len());
        let f = got[0];
        assert_eq!(format!("k{}", f.client_id), e.client_order_id);
        assert_eq!((f.price, f.qty, f.side), (e.last_price, e.last_qty, e.side));
    }
    assert!(
        by_trade.is_empty(),
        "fills journaled that the exchange never made: {by_trade:?}"
    );

    // The core's open orders are the exchange's.
    let core = keel_replay::recover::recover(&journal).unwrap().core;
    let core_open: BTreeSet<u64> = core.state().orders.keys().copied().collect();
    let venue_open: BTreeSet<u64> = venue
        .rest
        .open_orders()
        .iter()
        .filter_map(|o| o.client_order_id.strip_prefix('k')?.parse().ok())
        .collect();
    assert_eq!(core_open, venue_open, "open orders: core vs exchange");

    // The journal's coins are the wallet's. Each fee the exchange took in the coin bought is
    // journaled once, beside its fill, rounded up to the lot step (0.00001 BTC): the remainder
    // stays in the wallet as dust no order can sell, and the journal counts it as spent.
    let step = Fixed::parse("0.00001").unwrap();
    let mut dust = Fixed::ZERO;
    let mut fee_fills: BTreeMap<(u64, u64), Vec<Fixed>> = BTreeMap::new();
    for f in fills(&journal)
        .iter()
        .filter(|f| f.client_id == FEE_IN_BASE_CLIENT_ID)
    {
        fee_fills
            .entry((f.venue_order_id, f.trade_id))
            .or_default()
            .push(f.qty);
    }
    for e in executions
        .iter()
        .filter(|e| e.commission_asset == "BTC" && !e.commission.is_zero())
    {
        let key = (e.order_id, e.trade_id.unwrap());
        let got = fee_fills.remove(&key).unwrap_or_default();
        assert_eq!(
            got.len(),
            1,
            "the fee of {e:?} journaled {} times",
            got.len()
        );
        let rest = got[0] - e.commission;
        assert!(
            rest >= Fixed::ZERO && rest < step,
            "the fee of {e:?} journaled as {}",
            got[0]
        );
        dust += rest;
    }
    assert!(
        fee_fills.is_empty(),
        "fees journaled for no fee the exchange took: {fee_fills:?}"
    );
    let (btc, usdt) = journal_balances(&journal);
    let b = venue.rest.balance("BTC");
    let u = venue.rest.balance("USDT");
    assert_eq!(
        btc + dust,
        b.free + b.locked,
        "BTC: journal {btc} + dust {dust} vs exchange"
    );
    assert_eq!(usdt, u.free + u.locked, "USDT: journal vs exchange");
    let symbol = keel_engine::Symbol::new("BTCUSDT").unwrap();
    assert_eq!(
        core.state().portfolio.position(&symbol),
        btc,
        "BTC: core vs its journal's fills"
    );

    // Each candle once, in order; and the journal verifies.
    let opens: Vec<i64> = inputs(&journal)
        .iter()
        .filter_map(|e| match e {
            Event::Candle(c) => Some(c.open_time_ns),
            _ => None,
        })
        .collect();
    assert_eq!(opens.len(), BARS, "candles journaled");
    assert!(
        opens.windows(2).all(|w| w[0] < w[1]),
        "candles out of order"
    );
    let verify = keel(&["replay", "verify", journal.to_str().unwrap()], dir.path());
    let (out, err) = common::text(&verify);
    assert!(verify.status.success(), "{out}\n{err}");
    assert!(out.contains("0 divergences"), "{out}");
}

/// A live session's fill whose fee the venue took in the coin bought is journaled as two
/// inputs, the fee's fill (`FEE_IN_BASE_CLIENT_ID`) and then the fill, by two appends: a
/// process killed between them leaves a journal that ends with the fee. The restart must still
/// journal the fill (the reconciliation fetches it again) — once — and hold what the wallet
/// holds.
#[test]
fn a_journal_ending_between_a_fee_in_btc_and_its_fill_gets_the_fill_at_restart() {
    const ROWS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let rows = bundled_rows(ROWS);
    let mut venue = LiveVenue::binance_spot(&rows, FRAME_EVERY, &journal);
    let port = free_port();
    let config = dir.path().join("live.toml");
    // No stop: after the first entry nothing goes to the exchange for many bars.
    let write_config = |venue: &LiveVenue| {
        let text = live_config(venue, &journal, port, None, "")
            .replace("stop = \"percent\"\nstop_pct = 0.005", "stop = \"none\"");
        std::fs::write(&config, text).unwrap();
    };
    write_config(&venue);
    let spawn = |n: usize| {
        let err = dir.path().join(format!("run-{n}.err"));
        let child = Command::new(KEEL)
            .args(["live", "--config"])
            .arg(&config)
            .envs(LIVE_ENV)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        (child, err)
    };
    // The first run trades until its first buy is journaled, and is killed.
    let (mut child, err) = spawn(0);
    let first_buy = wait_for(Duration::from_secs(60), || {
        let recs = records(&journal);
        recs.iter().enumerate().find_map(|(i, (_, d))| match d {
            keel_replay::codec::Decoded::Input(Event::Fill(f))
                if f.client_id != FEE_IN_BASE_CLIENT_ID && f.side == Side::Buy =>
            {
                Some((recs.clone(), i))
            }
            _ => None,
        })
    });
    signal(child.id(), libc::SIGKILL);
    let _ = child.wait();
    let Some((recs, at)) = first_buy else {
        panic!("no buy was journaled:\n{}", read(&err))
    };
    let keel_replay::codec::Decoded::Input(Event::Fill(buy)) = recs[at].1 else {
        unreachable!()
    };
    let fee_seq = match &recs[at - 1].1 {
        keel_replay::codec::Decoded::Input(Event::Fill(f))
            if f.client_id == FEE_IN_BASE_CLIENT_ID
                && (f.venue_order_id, f.trade_id) == (buy.venue_order_id, buy.trade_id) =>
        {
            recs[at - 1].0
        }
        other => panic!("precondition: the buy's fee in BTC comes just before it: {other:?}"),
    };
    assert_eq!(
        venue.rest.orders().len(),
        1,
        "precondition: the entry is the only order on the exchange"
    );

    // Cut the journal right after the fee's fill, as a kill between the two appends leaves it:
    // frames are 32 bytes of header and the payload, 8-byte aligned, from byte 64 of the
    // (only) segment; the bytes after the cut are zeroed, as never written. Snapshots go too.
    let segments: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let (mut offset, mut cut, mut end) = (64usize, None, 0usize);
    {
        let mut reader = Reader::open(&journal).unwrap();
        while let Some(rec) = reader.next().unwrap() {
            offset += (32 + rec.payload.len()).div_ceil(8) * 8;
            if rec.seq == fee_seq {
                cut = Some(offset);
            }
            end = offset;
        }
    }
    let cut = cut.unwrap();
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    bytes[cut..end].fill(0);
    std::fs::write(&segments[0], &bytes).unwrap();
    let _ = std::fs::remove_dir_all(journal.join("snapshots"));
    let left = raw(&journal);
    assert_eq!(
        left.last().map(|r| r.0),
        Some(fee_seq),
        "the cut journal ends with the fee"
    );

    // The restart: the entry order is still tracked, so the reconciliation asks the exchange
    // for its fills.
    let from = candles(&journal).saturating_sub(OVERLAP);
    venue.public = mock_venue(binance_kline_frames(&rows[from..]), FRAME_EVERY);
    write_config(&venue);
    let (mut child, err) = spawn(1);
    let text = wait_for(Duration::from_secs(30), || {
        let t = read(&err);
        t.contains("live: reconciliation: ").then_some(t)
    });
    let key = (buy.venue_order_id, buy.trade_id);
    let journaled = |journal: &Path| {
        fills(journal)
            .iter()
            .filter(|f| f.client_id != FEE_IN_BASE_CLIENT_ID)
            .filter(|f| (f.venue_order_id, f.trade_id) == key)
            .count()
    };
    let got = wait_for(Duration::from_secs(10), || {
        (journaled(&journal) > 0).then_some(())
    });
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    let log = read(&err);
    let text = text.unwrap_or_else(|| panic!("the restart never reconciled:\n{log}"));
    assert!(text.contains("resumed a journal"), "{text}");
    assert!(status.is_some_and(|s| s.success()), "{status:?}:\n{log}");
    assert!(
        got.is_some() && journaled(&journal) == 1,
        "the buy {key:?} the exchange made is journaled {} times after the restart:\n{log}",
        journaled(&journal)
    );
    assert!(
        !log.contains("positions differ"),
        "the restart's core disagrees with the wallet:\n{log}"
    );
    let (btc, _) = journal_balances(&journal);
    let b = venue.rest.balance("BTC");
    let dust = b.free + b.locked - btc;
    assert!(
        dust >= Fixed::ZERO
            && dust
                < Fixed::parse("0.00001")
                    .unwrap()
                    .checked_mul(Fixed::from_int(venue.rest.fills().len() as i64))
                    .unwrap(),
        "BTC: journal {btc} vs exchange {}",
        b.free + b.locked
    );
}
