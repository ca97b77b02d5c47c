//! Fixed-point decimals for prices, quantities and money.
//!
//! Every amount in the core is an `i64` count of 10⁻⁸ units (`Fixed::SCALE`), the same
//! resolution venues use for tick and lot sizes, so arithmetic is exact and identical on every
//! machine. Products go through `i128` and are rounded half away from zero, once, at the end.
//! `f64` is used only for indicators and reports, never for balances.

use core::fmt;
use core::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// A decimal with 8 fractional digits stored as an integer count of 1e-8.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct Fixed(pub i64);

/// Why a decimal string could not become a [`Fixed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixedError {
    #[error("empty number")]
    Empty,
    #[error("`{0}` is not a decimal number")]
    Syntax(String),
    #[error("`{0}` has more than 8 decimal places that are not zero")]
    TooPrecise(String),
    #[error("`{0}` is out of range (|x| must be below 92,233,720,368)")]
    Overflow(String),
}

impl Fixed {
    pub const SCALE: i64 = 100_000_000;
    pub const DECIMALS: u32 = 8;
    pub const ZERO: Fixed = Fixed(0);
    pub const ONE: Fixed = Fixed(Self::SCALE);
    pub const MAX: Fixed = Fixed(i64::MAX);

    pub const fn from_raw(raw: i64) -> Fixed {
        Fixed(raw)
    }

    pub const fn raw(self) -> i64 {
        self.0
    }

    pub const fn from_int(units: i64) -> Fixed {
        Fixed(units * Self::SCALE)
    }

    /// Parses `123`, `-0.5`, `1e-3`, `46319.0`, `0.00002853`, rounding to 8 decimals (half
    /// away from zero). Rounding is what float artifacts in real files need: pandas writes
    /// `0.09946999000000001` for `0.09946999`. Use [`Fixed::parse_exact`] where extra digits
    /// must be an error.
    pub fn parse(text: &str) -> Result<Fixed, FixedError> {
        Self::parse_inner(text, true)
    }

    /// Like [`Fixed::parse`], but more than 8 decimals that are not zeros is an error, so no
    /// precision is silently lost.
    pub fn parse_exact(text: &str) -> Result<Fixed, FixedError> {
        Self::parse_inner(text, false)
    }

    fn parse_inner(text: &str, round: bool) -> Result<Fixed, FixedError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(FixedError::Empty);
        }
        let (mantissa, exp) = match s.find(['e', 'E']) {
            Some(i) => (
                &s[..i],
                parse_exponent(&s[i + 1..]).ok_or_else(|| FixedError::Syntax(s.to_string()))?,
            ),
            None => (s, 0),
        };
        let (neg, digits) = match mantissa.as_bytes().first() {
            Some(b'-') => (true, &mantissa[1..]),
            Some(b'+') => (false, &mantissa[1..]),
            _ => (false, mantissa),
        };
        let (int_part, frac_part) = match digits.find('.') {
            Some(i) => (&digits[..i], &digits[i + 1..]),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac_part.is_empty()
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(FixedError::Syntax(s.to_string()));
        }
        // Trailing fractional zeros carry no value (and would only inflate the digit count).
        let frac_part = frac_part.trim_end_matches('0');
        // All digits as one integer, with the decimal point `point` places from the right.
        let mut value: i128 = 0;
        let mut significant = 0usize;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            value = value * 10 + i128::from(b - b'0');
            if value != 0 {
                significant += 1;
            }
            if significant > 30 {
                return Err(FixedError::Overflow(s.to_string()));
            }
        }
        // i64 with a clamped exponent: no text can overflow this arithmetic.
        let point = frac_part.len() as i64 - exp;
        let shift = i64::from(Self::DECIMALS) - point;
        let raw = if value == 0 {
            0
        } else if shift < -38 {
            // Smaller than half of 1e-8 whatever the digits.
            if round {
                0
            } else {
                return Err(FixedError::TooPrecise(s.to_string()));
            }
        } else if shift >= 0 {
            if shift > 30 {
                if value == 0 {
                    0
                } else {
                    return Err(FixedError::Overflow(s.to_string()));
                }
            } else {
                value * 10i128.pow(shift as u32)
            }
        } else {
            let div = 10i128.pow((-shift).min(38) as u32);
            if value % div == 0 {
                value / div
            } else if round {
                div_round(value, div)
            } else {
                return Err(FixedError::TooPrecise(s.to_string()));
            }
        };
        let raw = if neg { -raw } else { raw };
        i64::try_from(raw)
            .map(Fixed)
            .map_err(|_| FixedError::Overflow(s.to_string()))
    }

    /// Nearest representable value to `x` (for converting user configuration).
    pub fn from_f64(x: f64) -> Option<Fixed> {
        let scaled = (x * Self::SCALE as f64).round();
        if scaled.is_finite() && scaled.abs() < i64::MAX as f64 {
            Some(Fixed(scaled as i64))
        } else {
            None
        }
    }

    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn abs(self) -> Fixed {
        Fixed(self.0.saturating_abs())
    }

    pub fn checked_add(self, rhs: Fixed) -> Option<Fixed> {
        self.0.checked_add(rhs.0).map(Fixed)
    }

    pub fn checked_sub(self, rhs: Fixed) -> Option<Fixed> {
        self.0.checked_sub(rhs.0).map(Fixed)
    }

    /// `self × rhs`, rounded half away from zero; `None` on overflow.
    pub fn checked_mul(self, rhs: Fixed) -> Option<Fixed> {
        let p = i128::from(self.0) * i128::from(rhs.0);
        div_round_by(p, Self::SCALE as u32).map(Fixed)
    }

    /// `self ÷ rhs`, rounded half away from zero; `None` on overflow or division by zero.
    pub fn checked_div(self, rhs: Fixed) -> Option<Fixed> {
        if rhs.0 == 0 {
            return None;
        }
        let n = i128::from(self.0) * i128::from(Self::SCALE);
        i64::try_from(div_round(n, i128::from(rhs.0)))
            .ok()
            .map(Fixed)
    }

    /// `self × bps / 10_000`, rounded half away from zero (fees, slippage).
    pub fn mul_bps(self, bps: i64) -> Option<Fixed> {
        let p = i128::from(self.0) * i128::from(bps);
        div_round_by(p, 10_000).map(Fixed)
    }

    /// Largest multiple of `step` not above `self` (lot-size rounding); `self` if `step <= 0`.
    pub fn floor_to(self, step: Fixed) -> Fixed {
        if step.0 <= 0 {
            return self;
        }
        Fixed(self.0.div_euclid(step.0) * step.0)
    }
}

/// The exponent of scientific notation, clamped to ±1,000,000 (far beyond any value a
/// `Fixed` holds, so the clamp never changes a result). `None` if it is not an integer.
fn parse_exponent(text: &str) -> Option<i64> {
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .trim_start_matches('0')
        .parse::<i64>()
        .unwrap_or(0)
        .min(1_000_000);
    let magnitude = if digits.trim_start_matches('0').len() > 7 {
        1_000_000
    } else {
        magnitude
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// `i64::try_from(div_round(n, d)).ok()` for a constant divisor below 2³², without a 128-bit
/// division (a library call costing more than the rest of a price × quantity): long division
/// of |n| in 32-bit digits, each step a 64-bit division by a constant, which the compiler
/// turns into a multiplication. Property-tested equal to `div_round` in this file's tests.
#[inline(always)]
fn div_round_by(n: i128, d: u32) -> Option<i64> {
    let d = u64::from(d);
    let a = n.unsigned_abs();
    let (hi, lo) = ((a >> 64) as u64, a as u64);
    if hi >= d {
        return None; // |n| / d ≥ 2⁶⁴
    }
    // hi < d < 2³², so each partial dividend fits 64 bits and each digit 32.
    let t1 = (hi << 32) | (lo >> 32);
    let (q1, r1) = (t1 / d, t1 % d);
    let t2 = (r1 << 32) | (lo & 0xffff_ffff);
    let (q2, r2) = (t2 / d, t2 % d);
    let mut q = (q1 << 32) | q2;
    if 2 * r2 >= d {
        q = q.checked_add(1)?; // half away from zero, on the magnitude
    }
    if n < 0 {
        (q <= 1 << 63).then(|| (q as i64).wrapping_neg())
    } else {
        i64::try_from(q).ok()
    }
}

/// Integer division rounding half away from zero.
fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d.abs() {
        if (n < 0) != (d < 0) { q - 1 } else { q + 1 }
    } else {
        q
    }
}

// The operators saturate instead of wrapping: ±92 billion units is far beyond any real
// balance, and a saturated value stays visibly absurd where a wrapped one would flip sign
// and look plausible. Code that must know about overflow uses the `checked_*` methods.

impl Add for Fixed {
    type Output = Fixed;
    fn add(self, rhs: Fixed) -> Fixed {
        Fixed(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Fixed {
    type Output = Fixed;
    fn sub(self, rhs: Fixed) -> Fixed {
        Fixed(self.0.saturating_sub(rhs.0))
    }
}

impl AddAssign for Fixed {
    fn add_assign(&mut self, rhs: Fixed) {
        *self = *self + rhs;
    }
}

impl SubAssign for Fixed {
    fn sub_assign(&mut self, rhs: Fixed) {
        *self = *self - rhs;
    }
}

impl Neg for Fixed {
    type Output = Fixed;
    fn neg(self) -> Fixed {
        Fixed(self.0.saturating_neg())
    }
}

impl fmt::Display for Fixed {
    /// Shortest exact decimal: `46319`, `0.00002853`, `-1.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / Self::SCALE as u64;
        let frac = abs % Self::SCALE as u64;
        if frac == 0 {
            write!(f, "{sign}{int}")
        } else {
            let digits = format!("{frac:08}");
            write!(f, "{sign}{int}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl core::str::FromStr for Fixed {
    type Err = FixedError;
    fn from_str(s: &str) -> Result<Fixed, FixedError> {
        Fixed::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(n: i128, d: u32) -> Option<i64> {
        i64::try_from(div_round(n, i128::from(d))).ok()
    }

    /// Dividends spread over every magnitude, with the edges of the i64 result range and of
    /// rounding (remainders of exactly half) over-represented.
    fn dividend() -> impl Strategy<Value = i128> {
        prop_oneof![
            any::<i64>().prop_map(i128::from),
            (any::<i64>(), any::<i64>()).prop_map(|(a, b)| i128::from(a) * i128::from(b)),
            (any::<i64>(), -3i128..=3).prop_map(|(q, k)| i128::from(q) * 100_000_000 + k),
            (any::<i64>(), -3i128..=3).prop_map(|(q, k)| i128::from(q) * 10_000 + k),
            (-3i128..=3).prop_map(|k| i128::from(i64::MAX) * 100_000_000 + 50_000_000 + k),
            (-3i128..=3).prop_map(|k| i128::from(i64::MIN) * 100_000_000 - 50_000_000 + k),
            (-3i128..=3).prop_map(|k| i128::from(i64::MAX) * 10_000 + 5_000 + k),
            (-3i128..=3).prop_map(|k| i128::from(i64::MIN) * 10_000 - 5_000 + k),
            any::<i128>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn constant_division_equals_the_128_bit_one(n in dividend()) {
            for d in [Fixed::SCALE as u32, 10_000, 1, 7] {
                prop_assert_eq!(div_round_by(n, d), reference(n, d), "{} / {}", n, d);
            }
        }
    }

    #[test]
    fn constant_division_at_the_edges() {
        let s = i128::from(Fixed::SCALE);
        for n in [
            0,
            s / 2,
            -s / 2,
            s / 2 - 1,
            i128::from(i64::MAX) * s,
            i128::from(i64::MAX) * s + s / 2,
            i128::from(i64::MAX) * s + s / 2 - 1,
            i128::from(i64::MIN) * s,
            i128::from(i64::MIN) * s - s / 2,
            i128::from(i64::MIN) * s - s / 2 + 1,
            i128::MAX,
            i128::MIN,
            i128::MIN + 1,
        ] {
            assert_eq!(
                div_round_by(n, Fixed::SCALE as u32),
                reference(n, Fixed::SCALE as u32),
                "{n}"
            );
        }
    }

    #[test]
    fn parses_venue_decimals_exactly() {
        assert_eq!(Fixed::parse("46319.0").unwrap(), Fixed(4_631_900_000_000));
        assert_eq!(Fixed::parse("0.00002853").unwrap(), Fixed(2853));
        assert_eq!(Fixed::parse("-1.5").unwrap(), Fixed(-150_000_000));
        assert_eq!(Fixed::parse("1e-3").unwrap(), Fixed(100_000));
        assert_eq!(Fixed::parse("2.5E2").unwrap(), Fixed(25_000_000_000));
        assert_eq!(Fixed::parse(".5").unwrap(), Fixed(50_000_000));
        assert_eq!(
            Fixed::parse("0.09946999000000001").unwrap(),
            Fixed(9_946_999)
        );
        assert_eq!(Fixed::parse("0.000000015").unwrap(), Fixed(2));
    }

    #[test]
    fn rejects_what_it_cannot_hold() {
        assert!(matches!(Fixed::parse(""), Err(FixedError::Empty)));
        assert!(matches!(Fixed::parse("abc"), Err(FixedError::Syntax(_))));
        assert!(matches!(Fixed::parse("1.2.3"), Err(FixedError::Syntax(_))));
        assert!(matches!(Fixed::parse("-"), Err(FixedError::Syntax(_))));
        assert!(matches!(
            Fixed::parse_exact("0.000000001"),
            Err(FixedError::TooPrecise(_))
        ));
        assert!(matches!(Fixed::parse("1e20"), Err(FixedError::Overflow(_))));
    }

    #[test]
    fn displays_shortest_exact_form() {
        assert_eq!(Fixed(4_631_900_000_000).to_string(), "46319");
        assert_eq!(Fixed(2853).to_string(), "0.00002853");
        assert_eq!(Fixed(-150_000_000).to_string(), "-1.5");
    }

    #[test]
    fn multiplies_and_divides_with_half_away_rounding() {
        let a = Fixed::parse("0.00000003").unwrap();
        let half = Fixed::parse("0.5").unwrap();
        assert_eq!(a.checked_mul(half).unwrap(), Fixed(2)); // 1.5e-8 -> 2e-8
        assert_eq!((-a).checked_mul(half).unwrap(), Fixed(-2));
        let one = Fixed::ONE;
        let three = Fixed::from_int(3);
        assert_eq!(one.checked_div(three).unwrap(), Fixed(33_333_333));
        assert_eq!(
            Fixed::from_int(2).checked_div(three).unwrap(),
            Fixed(66_666_667)
        );
        assert_eq!(
            Fixed::from_int(10_000).mul_bps(4).unwrap(),
            Fixed::from_int(4)
        );
    }

    #[test]
    fn floors_to_lot_size() {
        let q = Fixed::parse("0.123456").unwrap();
        let step = Fixed::parse("0.001").unwrap();
        assert_eq!(q.floor_to(step), Fixed::parse("0.123").unwrap());
    }
}
