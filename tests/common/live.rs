//! Helpers for the `keel live` end-to-end tests: the loopback mock venue in full — public
//! kline stream (the bundled real candles), signed REST exchange, private account stream — and
//! a driver that moves the exchange's price to each candle the session journals and streams
//! the exchange's executions on the account stream, as the venue would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keel_adapters::mock::ws::MockWsVenue;
use keel_adapters::mock::ws::private::{MockPrivateConfig, MockPrivateVenue};
use keel_adapters::mock::{
    MOCK_API_KEY, MOCK_SECRET, MockConfig, MockVenue, TradingConfig, bridge,
};
use keel_adapters::model::Venue;
use keel_engine::Fixed;
use keel_engine::event::{Event, Side};
use keel_journal::Reader;
use keel_replay::codec::{Decoded, decode};

use crate::paper::{binance_kline_frames, mock_venue};

/// The three mock servers and the driver thread (stopped on drop).
pub struct LiveVenue {
    pub public: MockWsVenue,
    pub rest: Arc<MockVenue>,
    pub private: Arc<MockPrivateVenue>,
    stop: Arc<AtomicBool>,
    driver: Option<std::thread::JoinHandle<()>>,
}

impl LiveVenue {
    /// Binance spot BTCUSDT: `rows` streamed one closed candle per `every`; the account holds
    /// 10,000 USDT and no BTC; the exchange's price follows the candles `journal` receives.
    pub fn binance_spot(rows: &[String], every: Duration, journal: &Path) -> LiveVenue {
        let first_close = rows[0].split(',').nth(4).unwrap();
        let mut config = MockConfig::new(Venue::BinanceSpot, "BTCUSDT", 60_000, Vec::new());
        let mut trading = TradingConfig::new(true, "BTCUSDT", Fixed::parse(first_close).unwrap());
        trading.balances = vec![("USDT".into(), Fixed::from_int(10_000))];
        config.trading = trading;
        let rest = Arc::new(MockVenue::start(config).unwrap());
        let private = Arc::new(
            MockPrivateVenue::start(MockPrivateConfig::new(
                Venue::BinanceSpot,
                MOCK_API_KEY,
                MOCK_SECRET,
            ))
            .unwrap(),
        );
        let public = mock_venue(binance_kline_frames(rows), every);
        let stop = Arc::new(AtomicBool::new(false));
        let driver = {
            let (rest, private, stop) = (rest.clone(), private.clone(), stop.clone());
            let journal = journal.to_path_buf();
            std::thread::spawn(move || {
                drive_venue(&rest, &private, &journal, &stop, Venue::BinanceSpot)
            })
        };
        LiveVenue {
            public,
            rest,
            private,
            stop,
            driver: Some(driver),
        }
    }
}

impl LiveVenue {
    /// Binance USD-M BTCUSDT: as [`LiveVenue::binance_spot`], with a 10,000 USDT wallet, and
    /// the account stream accepting the listen key the REST mock issues.
    pub fn binance_usdm(rows: &[String], every: Duration, journal: &Path) -> LiveVenue {
        let first_close = rows[0].split(',').nth(4).unwrap();
        let mut config = MockConfig::new(Venue::BinanceUsdm, "BTCUSDT", 60_000, Vec::new());
        let mut trading = TradingConfig::new(false, "BTCUSDT", Fixed::parse(first_close).unwrap());
        trading.balances = vec![("USDT".into(), Fixed::from_int(10_000))];
        config.trading = trading;
        let rest = Arc::new(MockVenue::start(config).unwrap());
        let private = Arc::new(
            MockPrivateVenue::start(MockPrivateConfig::new(
                Venue::BinanceUsdm,
                MOCK_API_KEY,
                MOCK_SECRET,
            ))
            .unwrap(),
        );
        private.accept_listen_key(&rest.usdm_listen_key(MOCK_API_KEY));
        let mut ws = keel_adapters::mock::ws::MockWsConfig::new(
            Venue::BinanceUsdm,
            crate::paper::binance_kline_frames(rows),
        );
        ws.frame_every = every;
        let public = MockWsVenue::start(ws).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let driver = {
            let (rest, private, stop) = (rest.clone(), private.clone(), stop.clone());
            let journal = journal.to_path_buf();
            std::thread::spawn(move || {
                drive_venue(&rest, &private, &journal, &stop, Venue::BinanceUsdm)
            })
        };
        LiveVenue {
            public,
            rest,
            private,
            stop,
            driver: Some(driver),
        }
    }
}

impl Drop for LiveVenue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
    }
}

/// Price follows the journal's candles (each journal, even a restarted one, read from its
/// start); executions go out on the account stream.
fn drive_venue(
    rest: &MockVenue,
    private: &MockPrivateVenue,
    journal: &Path,
    stop: &AtomicBool,
    venue: Venue,
) {
    let mut forwarded = 0;
    let mut seen_seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut reader) = Reader::open(journal) {
            while let Ok(Some(rec)) = reader.next() {
                if rec.seq <= seen_seq {
                    continue;
                }
                seen_seq = rec.seq;
                if let Ok(Decoded::Input(Event::Candle(c))) =
                    decode(rec.seq, rec.kind, rec.ver, rec.payload)
                {
                    rest.set_price("BTCUSDT", c.close);
                }
            }
        }
        forwarded = bridge::forward(rest, private, venue, forwarded);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A live session config for BTCUSDT on the mock: a fast SMA cross with a stop, so market
/// entries and exits, stop orders and cancels go to the venue within a few hundred candles.
/// (Spot: a stop and a target on one position would both hold the same coins; see README.)
pub fn live_config(
    venue: &LiveVenue,
    journal: &Path,
    metrics_port: u16,
    telegram: Option<&str>,
    extra: &str,
) -> String {
    let mut text = format!(
        r#"
[data]
symbol = "BTCUSDT"
interval = "1m"

[account]
starting_balance = 10000.0

[strategy]
kind = "sma_cross"
fast = 5
slow = 20

[execution]
taker_fee_bps = 10.0
slippage_bps = 0.0
lot_size = 0.001

[risk]
risk_per_trade = 0.01
stop = "percent"
stop_pct = 0.005
take_profit = "none"

[venue]
name = "binance-spot"
ws_url = "{}"
rest_url = "{}"
private_ws_url = "{}"

[session]
journal = "{}"
snapshot_every = 50
heartbeat_secs = 1

[failsafe]
stale_after_secs = 600
disconnected_after_secs = 600

[metrics]
listen = "127.0.0.1:{metrics_port}"
{extra}
"#,
        venue.public.url(),
        venue.rest.url(),
        venue.private.url(),
        journal.display()
    );
    if let Some(url) = telegram {
        text.push_str(&format!(
            "\n[alerts]\ntelegram_chat_id = \"4242\"\ntelegram_base_url = \"{url}\"\nmin_interval_ms = 1\n"
        ));
    }
    text
}

/// The environment `keel live` reads the mock account's key from.
pub const LIVE_ENV: [(&str, &str); 2] = [
    ("KEEL_BINANCE_SPOT_API_KEY", MOCK_API_KEY),
    ("KEEL_BINANCE_SPOT_API_SECRET", MOCK_SECRET),
];

/// The BTC and USDT the journal's fills leave the account holding (10,000 USDT at the start).
pub fn journal_balances(journal: &Path) -> (Fixed, Fixed) {
    let (mut btc, mut usdt) = (Fixed::ZERO, Fixed::from_int(10_000));
    for f in crate::paper::fills(journal) {
        let notional = f.price.checked_mul(f.qty).unwrap();
        match f.side {
            Side::Buy => {
                btc += f.qty;
                usdt -= notional;
            }
            Side::Sell => {
                btc -= f.qty;
                usdt += notional;
            }
        }
        usdt -= f.fee;
    }
    (btc, usdt)
}

pub fn path(p: &Path) -> PathBuf {
    p.to_path_buf()
}
