//! When and how long to wait before sending a request again.
//!
//! Backoff is capped exponential with "equal jitter": attempt `n` waits between half and all of
//! `min(cap, base × 2ⁿ)`, so retries of many clients spread out but never come back sooner than
//! half the nominal delay. The jitter comes from a seeded xorshift generator: it only has to
//! decorrelate clients, not resist prediction, so a dozen lines beat a `rand` dependency, and a
//! fixed seed makes a test's delays reproducible.

use std::time::Duration;

/// How a client retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// Nominal delay before the first retry.
    pub base_delay: Duration,
    /// Largest nominal delay.
    pub max_delay: Duration,
    /// The longest venue-imposed wait (`Retry-After`, a ban) the client sits out; a longer one
    /// fails the request with the time to come back, rather than hang for hours.
    pub max_venue_wait: Duration,
    /// Seed of the jitter generator.
    pub jitter_seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_venue_wait: Duration::from_secs(300),
            jitter_seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// xorshift64* (Vigna): a tiny, fast, seedable generator; plenty for jitter.
#[derive(Clone, Debug)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    pub fn new(seed: u64) -> XorShift64 {
        // Zero is the one state xorshift never leaves.
        XorShift64 {
            state: if seed == 0 {
                0x2545_F491_4F6C_DD1D
            } else {
                seed
            },
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `[0, bound]` (modulo bias is irrelevant for jitter).
    pub fn below_or_equal(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0 for the first retry).
    pub fn backoff(&self, retry: u32, rng: &mut XorShift64) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        let nominal = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let ms = u64::try_from(nominal.as_millis()).unwrap_or(u64::MAX);
        let half = ms / 2;
        Duration::from_millis(half + rng.below_or_equal(ms - half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_equal_jitter() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let mut rng = XorShift64::new(7);
        for _ in 0..200 {
            for (retry, nominal) in [
                (0, 100),
                (1, 200),
                (2, 400),
                (3, 800),
                (4, 1000),
                (40, 1000),
            ] {
                let d = p.backoff(retry, &mut rng).as_millis();
                assert!(
                    d >= nominal / 2 && d <= nominal,
                    "retry {retry}: {d} ms not in [{}, {nominal}]",
                    nominal / 2
                );
            }
        }
    }

    #[test]
    fn jitter_is_reproducible_from_the_seed_and_differs_between_seeds() {
        let p = RetryPolicy::default();
        let run = |seed| {
            let mut rng = XorShift64::new(seed);
            (0..8).map(|r| p.backoff(r, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        // Seed 0 is not stuck at zero.
        let mut z = XorShift64::new(0);
        assert_ne!(z.next_u64(), z.next_u64());
    }
}
