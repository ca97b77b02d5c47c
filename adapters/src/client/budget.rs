//! The request-weight budget: a sliding-window limiter that makes a request wait until it fits
//! under every venue limit it counts against, and a block set by the venue itself (a 429/418
//! `Retry-After`, or a used-weight header saying the window is spent).
//!
//! A sliding window is stricter than the fixed windows most venues count in (Binance resets its
//! weight every minute), so a client that stays inside it never exceeds the venue's own count.
//! The logic is pure (`Instant`s are parameters), so it is tested without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::model::Venue;

/// One venue limit: at most `capacity` weight in any `period`, counting the requests whose path
/// is `path` (all requests when `None`; a `path` ending in `/` counts every path under it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// What the venue calls it, for messages.
    pub name: &'static str,
    pub path: Option<&'static str>,
    pub capacity: u32,
    pub period: Duration,
}

impl Limit {
    fn applies_to(&self, path: &str) -> bool {
        self.path
            .is_none_or(|p| p == path || (p.ends_with('/') && path.starts_with(p)))
    }
}

/// The public market-data limits keel budgets for, per venue and per IP. Each figure is the
/// venue's documented one; a venue that answers 429 anyway is honoured through `Retry-After`.
pub fn venue_limits(venue: Venue) -> Vec<Limit> {
    let minute = Duration::from_secs(60);
    match venue {
        // exchangeInfo `rateLimits`: REQUEST_WEIGHT 6000 per MINUTE per IP (spot "LIMITS",
        // developers.binance.com/docs/binance-spot-api-docs/rest-api/limits).
        Venue::BinanceSpot => vec![Limit {
            name: "REQUEST_WEIGHT",
            path: None,
            capacity: 6000,
            period: minute,
        }],
        // USD-M exchangeInfo `rateLimits`: REQUEST_WEIGHT 2400 per MINUTE per IP
        // (developers.binance.com/docs/derivatives/usds-margined-futures/general-info).
        Venue::BinanceUsdm => vec![Limit {
            name: "REQUEST_WEIGHT",
            path: None,
            capacity: 2400,
            period: minute,
        }],
        // "You are allowed to send 600 requests within a 5-second window per IP by default"
        // (bybit-exchange.github.io/docs/v5/rate-limit, HTTP IP limit).
        Venue::Bybit => vec![Limit {
            name: "IP limit",
            path: None,
            capacity: 600,
            period: Duration::from_secs(5),
        }],
        // OKX v5 market data: "Get candlesticks" 40 requests per 2 seconds, "Get candlesticks
        // history" 20 requests per 2 seconds, both by IP (www.okx.com/docs-v5/en/).
        Venue::Okx => vec![
            Limit {
                name: "candles",
                path: Some("/api/v5/market/candles"),
                capacity: 40,
                period: Duration::from_secs(2),
            },
            Limit {
                name: "history-candles",
                path: Some("/api/v5/market/history-candles"),
                capacity: 20,
                period: Duration::from_secs(2),
            },
        ],
        // Public: "Calling the public endpoints at a frequency of 1 per second (or less) would
        // remain within the rate limits" (support.kraken.com, "What are the API rate limits?").
        // Private: a counter of at most 15 that decays by 0.33 per second for the Starter tier
        // (the lowest), i.e. 15 calls per 45 s; budgeted as that window for every private call
        // (order entry included, which the venue counts separately: conservative).
        Venue::Kraken => vec![
            Limit {
                name: "public",
                path: Some("/0/public/"),
                capacity: 1,
                period: Duration::from_secs(1),
            },
            Limit {
                name: "private counter",
                path: Some("/0/private/"),
                capacity: 15,
                period: Duration::from_secs(45),
            },
        ],
    }
}

struct Window {
    limit: Limit,
    /// Requests still inside the window: (sent at, weight), oldest first. Bounded: every entry
    /// weighs at least 1 and the total stays at most `capacity`.
    sent: VecDeque<(Instant, u32)>,
    used: u32,
}

impl Window {
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, w)) = self.sent.front() {
            if now.saturating_duration_since(at) < self.limit.period {
                break;
            }
            self.sent.pop_front();
            self.used -= w;
        }
    }

    /// How long until `weight` more fits (zero when it fits now).
    fn wait_for(&self, now: Instant, weight: u32) -> Duration {
        let mut free = self.limit.capacity - self.used;
        if weight <= free {
            return Duration::ZERO;
        }
        for &(at, w) in &self.sent {
            free += w;
            if weight <= free {
                return (at + self.limit.period).saturating_duration_since(now);
            }
        }
        // Unreachable while weight <= capacity (the caller clamps it); wait a full period.
        self.limit.period
    }
}

/// The budget of one venue's client.
pub struct Budget {
    windows: Vec<Window>,
    blocked_until: Option<Instant>,
}

impl Budget {
    pub fn new(limits: Vec<Limit>) -> Budget {
        let windows = limits
            .into_iter()
            .map(|limit| Window {
                limit,
                sent: VecDeque::new(),
                used: 0,
            })
            .collect();
        Budget {
            windows,
            blocked_until: None,
        }
    }

    /// Records a request of `weight` to `path` as sent at `now` when it fits under every limit
    /// and no block is in force; otherwise returns how long to wait before asking again.
    /// A weight above a limit's capacity counts as the whole capacity (it could never fit).
    pub fn try_acquire(&mut self, now: Instant, path: &str, weight: u32) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        let weight = weight.max(1);
        let mut wait = Duration::ZERO;
        for w in self.windows.iter_mut().filter(|w| w.limit.applies_to(path)) {
            w.expire(now);
            wait = wait.max(w.wait_for(now, weight.min(w.limit.capacity)));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for w in self.windows.iter_mut().filter(|w| w.limit.applies_to(path)) {
            let weight = weight.min(w.limit.capacity);
            w.sent.push_back((now, weight));
            w.used += weight;
        }
        Ok(())
    }

    /// Holds every request until `until` (a venue's `Retry-After`, a ban). A later block
    /// extends an earlier one; an earlier one never shortens it.
    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// The end of the block in force at `now`, if any.
    pub fn blocked_until(&self, now: Instant) -> Option<Instant> {
        self.blocked_until.filter(|u| *u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(capacity: u32, period_ms: u64, path: Option<&'static str>) -> Limit {
        Limit {
            name: "test",
            path,
            capacity,
            period: Duration::from_millis(period_ms),
        }
    }

    #[test]
    fn delays_a_request_that_would_exceed_the_window_until_the_oldest_expires() {
        let t0 = Instant::now();
        let mut b = Budget::new(vec![limit(10, 1000, None)]);
        assert_eq!(b.try_acquire(t0, "/k", 4), Ok(()));
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(b.try_acquire(t1, "/k", 4), Ok(()));
        // 8 used; 4 more needs the first request (sent at t0) to leave the window.
        let t2 = t0 + Duration::from_millis(500);
        assert_eq!(b.try_acquire(t2, "/k", 4), Err(Duration::from_millis(500)));
        // Nothing was recorded by the refused attempt.
        assert_eq!(
            b.try_acquire(t0 + Duration::from_millis(1000), "/k", 4),
            Ok(())
        );
        // Now t1's 4 and this 4 are in the window: 2 more fit, 3 do not until t1 + 1 s.
        let t3 = t0 + Duration::from_millis(1000);
        assert_eq!(b.try_acquire(t3, "/k", 2), Ok(()));
        assert_eq!(b.try_acquire(t3, "/k", 3), Err(Duration::from_millis(300)));
    }

    #[test]
    fn never_sends_more_than_capacity_in_any_window() {
        // Greedy sender: at every millisecond, send when allowed. Check every window.
        let t0 = Instant::now();
        let mut b = Budget::new(vec![limit(5, 100, None)]);
        let mut sent = Vec::new();
        for ms in 0..1000u64 {
            let now = t0 + Duration::from_millis(ms);
            while b.try_acquire(now, "/x", 2).is_ok() {
                sent.push(ms);
            }
        }
        for &start in &sent {
            let in_window = sent
                .iter()
                .filter(|&&s| s >= start && s < start + 100)
                .count();
            assert!(
                in_window * 2 <= 5,
                "{in_window} requests of weight 2 in 100 ms"
            );
        }
        assert!(
            sent.len() >= 15,
            "the budget should not starve: {}",
            sent.len()
        );
    }

    #[test]
    fn limits_count_only_their_own_path() {
        let t0 = Instant::now();
        let mut b = Budget::new(vec![
            limit(1, 1000, Some("/recent")),
            limit(2, 1000, Some("/history")),
        ]);
        assert_eq!(b.try_acquire(t0, "/recent", 1), Ok(()));
        assert!(b.try_acquire(t0, "/recent", 1).is_err());
        assert_eq!(b.try_acquire(t0, "/history", 1), Ok(()));
        assert_eq!(b.try_acquire(t0, "/history", 1), Ok(()));
        assert!(b.try_acquire(t0, "/history", 1).is_err());
    }

    #[test]
    fn a_block_holds_every_request_and_is_only_ever_extended() {
        let t0 = Instant::now();
        let mut b = Budget::new(vec![limit(100, 1000, None)]);
        b.block_until(t0 + Duration::from_secs(2));
        b.block_until(t0 + Duration::from_secs(1));
        assert_eq!(b.try_acquire(t0, "/k", 1), Err(Duration::from_secs(2)));
        assert_eq!(b.blocked_until(t0), Some(t0 + Duration::from_secs(2)));
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(2), "/k", 1), Ok(()));
        assert_eq!(b.blocked_until(t0 + Duration::from_secs(2)), None);
    }

    #[test]
    fn an_oversized_weight_waits_for_an_empty_window_instead_of_forever() {
        let t0 = Instant::now();
        let mut b = Budget::new(vec![limit(3, 1000, None)]);
        assert_eq!(b.try_acquire(t0, "/k", 1), Ok(()));
        assert_eq!(b.try_acquire(t0, "/k", 10), Err(Duration::from_secs(1)));
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(1), "/k", 10), Ok(()));
    }

    #[test]
    fn kraken_budgets_public_and_private_calls_apart() {
        let mut b = Budget::new(venue_limits(Venue::Kraken));
        let t = Instant::now();
        assert_eq!(b.try_acquire(t, "/0/public/OHLC", 1), Ok(()));
        // A second public call waits for the 1-per-second window...
        assert!(b.try_acquire(t, "/0/public/Depth", 1).is_err());
        // ...private calls do not: 15 of them fit, the 16th waits.
        for _ in 0..15 {
            assert_eq!(b.try_acquire(t, "/0/private/AddOrder", 1), Ok(()));
        }
        assert!(b.try_acquire(t, "/0/private/QueryOrders", 1).is_err());
        assert_eq!(
            b.try_acquire(t + Duration::from_secs(1), "/0/public/Depth", 1),
            Ok(())
        );
    }
}
