//! Internal tick-to-order latency: from a venue WebSocket frame handed to the codec to the
//! signed order request bytes ready to write — Binance USD-M kline frame decoded, the candle
//! journaled, the core and its risk manager applied, the decisions journaled, each order
//! mapped to Binance's `POST /fapi/v1/order` and HMAC-signed.
//!
//! Frames are the bundled real BTC 1-minute bars as closed USD-M klines, offered at a fixed
//! rate (one every `INTERVAL`); each latency is measured from the frame's *intended* send time,
//! so a slow frame delays the ones behind it and they are charged for it (coordinated
//! omission corrected), into an hdrhistogram. The strategy (SMA 2/5 with the default risk
//! manager) trades often; the venue's answers (acknowledgements, market fills, cancels) are
//! applied untimed between frames, as a venue's would arrive, so orders keep flowing.
//!
//! The journal runs with durability `none`: the msync a live session does before an order
//! leaves the process is measured separately (it is a disk flush, not the engine's work).
//!
//! Run: `cargo bench --bench tick_to_order`.

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use keel_adapters::credentials::Credentials;
use keel_adapters::model::{OrderSpec, Venue, VenueEvent};
use keel_engine::event::{
    Decision, Event, Fill, Liquidity, Mode, OrderStatus, OrderUpdate, SessionStart,
};
use keel_engine::{Core, CoreConfig, Fixed, RiskConfig, Sizing, StrategyConfig, Symbol};
use keel_journal::{Durability, Journal, Options};
use keel_replay::engine_loop::{EngineLoop, LoopOptions};

const INTERVAL: Duration = Duration::from_micros(50); // 20,000 frames/s offered

/// The bundled bars as Binance USD-M closed-kline frames.
fn frames() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/btc-perp-20211231-20220201_1m.csv"),
    )
    .expect("bundled data");
    text.lines()
        .skip(1)
        .map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            let (date, time) = f[0].split_once(' ').unwrap();
            let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
            let t: Vec<i64> = time[..8].split(':').map(|x| x.parse().unwrap()).collect();
            let open_ms = (keel_adapters::civil::days_from_civil(d[0], d[1], d[2]) * 86_400
                + t[0] * 3600
                + t[1] * 60
                + t[2])
                * 1000;
            let (vi, vf) = f[5].split_once('.').unwrap_or((f[5], "0"));
            let volume = format!("{vi}.{}", &vf[..vf.len().min(8)]);
            format!(
                r#"{{"stream":"btcusdt@kline_1m","data":{{"e":"kline","E":{},"s":"BTCUSDT","k":{{"t":{open_ms},"T":{},"s":"BTCUSDT","i":"1m","f":1,"L":2,"o":"{}","c":"{}","h":"{}","l":"{}","v":"{volume}","n":10,"x":true,"q":"0","V":"0","Q":"0","B":"0"}}}}}}"#,
                open_ms + 60_000,
                open_ms + 59_999,
                f[1],
                f[4],
                f[2],
                f[3]
            )
        })
        .collect()
}

fn engine(dir: &Path) -> EngineLoop {
    let (journal, _) = Journal::open(
        dir,
        Options {
            durability: Durability::None,
            segment_size: 64 << 20,
            ..Options::default()
        },
    )
    .unwrap();
    let symbol = Symbol::new("BTCUSDT").unwrap();
    let config = CoreConfig {
        symbols: vec![symbol],
        interval_ns: 60_000_000_000,
        strategy_interval_ns: 60_000_000_000,
        starting_balance: Fixed::from_int(100_000),
        strategy: StrategyConfig::SmaCross { fast: 2, slow: 5 },
        sizing: Sizing {
            allocation: Fixed::ONE,
            lot_size: Fixed::parse("0.001").unwrap(),
            cost_reserve: Fixed::parse("0.0005").unwrap(),
        },
        risk: RiskConfig::default(),
        direction: keel_engine::Direction::Long,
        leverage: Fixed::ONE,
        perpetual: true,
    };
    let mut e = EngineLoop::new(
        journal,
        Core::new(),
        LoopOptions {
            sync_before_dispatch: false,
        },
    );
    e.process(
        1,
        Event::SessionStart(SessionStart {
            mode: Mode::Live,
            config,
            config_text: String::new(),
        }),
    )
    .unwrap();
    e
}

fn main() {
    let frames = frames();
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let creds = Credentials::new(
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    );
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut with_order = all.clone();
    let mut signed_bytes = 0usize;
    let mut orders = 0u64;
    let mut pending: Vec<Event> = Vec::new();
    let mut trade_id = 1;
    // Warm-up pass over the first 2,000 frames, then the timed run over the rest.
    let (warm, timed) = frames.split_at(2_000);
    let mut seq_ts = 2u64;
    let mut step = |frame: &str, engine: &mut EngineLoop, pending: &mut Vec<Event>| -> usize {
        let mut bytes = 0;
        let events = keel_adapters::binance::decode_usdm(frame).expect("frame decodes");
        for ev in events {
            let VenueEvent::Candle {
                candle,
                closed: true,
            } = ev
            else {
                continue;
            };
            seq_ts += 1;
            let close = candle.close;
            let (_, decisions) = engine.process(seq_ts, Event::Candle(candle)).unwrap();
            for d in decisions {
                if let Decision::CancelOrder { client_id } = d {
                    pending.push(Event::OrderUpdate(OrderUpdate {
                        client_id: *client_id,
                        venue_order_id: *client_id,
                        status: OrderStatus::Canceled,
                        ts_event_ns: 0,
                        reason: String::new(),
                    }));
                }
                if let Decision::PlaceOrder(r) = d {
                    let spec = OrderSpec::from_core(r);
                    let req = keel_adapters::binance::usdm_place_order(&spec).expect("builds");
                    let signed = keel_adapters::sign::sign_request(
                        Venue::BinanceUsdm,
                        &creds,
                        &req,
                        1_641_000_000_000,
                    )
                    .expect("signs");
                    bytes += signed.url_query.len() + signed.body.map_or(0, |b| b.len()) + 1;
                    pending.push(Event::OrderUpdate(OrderUpdate {
                        client_id: r.client_id,
                        venue_order_id: r.client_id,
                        status: OrderStatus::Accepted,
                        ts_event_ns: 0,
                        reason: String::new(),
                    }));
                    if matches!(r.kind, keel_engine::event::OrderKind::Market) {
                        pending.push(Event::Fill(Fill {
                            client_id: r.client_id,
                            venue_order_id: r.client_id,
                            trade_id: 0,
                            symbol: r.symbol,
                            side: r.side,
                            price: close,
                            qty: r.qty,
                            fee: Fixed::ZERO,
                            liquidity: Liquidity::Taker,
                            ts_event_ns: 0,
                        }));
                    }
                }
            }
        }
        bytes
    };
    // The venue's answers (untimed): acknowledgements, fills of market orders, cancels.
    let mut answer = |engine: &mut EngineLoop, pending: &mut Vec<Event>| {
        for mut e in pending.drain(..) {
            if let Event::Fill(f) = &mut e {
                f.trade_id = trade_id;
                trade_id += 1;
            }
            engine.process(0, e).unwrap();
        }
    };
    for f in warm {
        step(f, &mut engine, &mut pending);
        answer(&mut engine, &mut pending);
    }
    let start = Instant::now();
    for (i, f) in timed.iter().enumerate() {
        let intended = start + INTERVAL * i as u32;
        while Instant::now() < intended {
            std::hint::spin_loop();
        }
        let bytes = step(f, &mut engine, &mut pending);
        let latency = Instant::now().duration_since(intended).as_nanos() as u64;
        all.record(latency.max(1)).unwrap();
        if bytes > 0 {
            with_order.record(latency.max(1)).unwrap();
            signed_bytes += bytes;
            orders += 1;
        }
        answer(&mut engine, &mut pending);
    }
    // The msync a live order waits for, on this machine's disk, measured apart.
    let mut sync = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for _ in 0..200 {
        engine
            .process(
                0,
                Event::Timer(keel_engine::event::Timer {
                    kind: keel_engine::event::TimerKind::Heartbeat,
                }),
            )
            .unwrap();
        let t = Instant::now();
        engine.sync().unwrap();
        sync.record(t.elapsed().as_nanos().max(1) as u64).unwrap();
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "tick-to-order: {} frames at {:.0}/s offered (CO-corrected), {} order-bearing, {} signed bytes",
        timed.len(),
        1.0 / INTERVAL.as_secs_f64(),
        orders,
        signed_bytes
    );
    for (name, h) in [("all frames", &all), ("frames with orders", &with_order)] {
        println!(
            "  {name:<19} p50 {:>7.2} µs  p99 {:>7.2} µs  p99.9 {:>7.2} µs  max {:>8.2} µs",
            us(h, 0.5),
            us(h, 0.99),
            us(h, 0.999),
            h.max() as f64 / 1_000.0
        );
    }
    println!(
        "  journal msync       p50 {:>7.2} µs  p99 {:>7.2} µs  (not included above)",
        us(&sync, 0.5),
        us(&sync, 0.99)
    );
}
