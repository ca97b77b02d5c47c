//! Instrument symbols as small inline strings.
//!
//! A `Symbol` is `Copy` and allocation-free so that candles and orders carrying one can be
//! archived, compared and hashed without touching the heap. Venue symbols are ASCII and short
//! (the longest in use, OKX option ids such as `BTC-USD-241227-100000-C`, has 23 bytes).

use core::fmt;

/// Longest symbol accepted, in bytes.
pub const SYMBOL_MAX_LEN: usize = 24;

#[derive(Clone, Copy, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq, Eq, PartialOrd, Ord))]
pub struct Symbol {
    len: u8,
    bytes: [u8; SYMBOL_MAX_LEN],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("symbol is empty")]
    Empty,
    #[error("symbol `{0}` is longer than {SYMBOL_MAX_LEN} bytes")]
    TooLong(String),
    #[error("symbol `{0}` may hold only ASCII letters, digits and - _ . / :")]
    BadChar(String),
    #[error("symbol `{0}` must start with a letter or digit")]
    BadStart(String),
}

impl Symbol {
    pub fn new(text: &str) -> Result<Symbol, SymbolError> {
        if text.is_empty() {
            return Err(SymbolError::Empty);
        }
        if text.len() > SYMBOL_MAX_LEN {
            return Err(SymbolError::TooLong(text.to_string()));
        }
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_./:".contains(&b);
        if !text.bytes().all(ok) {
            return Err(SymbolError::BadChar(text.to_string()));
        }
        // Symbols name directories in the candle store: `.`, `..` and `/x` must not be
        // possible (see `file_name`).
        if !text.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(SymbolError::BadStart(text.to_string()));
        }
        let mut bytes = [0u8; SYMBOL_MAX_LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Ok(Symbol {
            len: text.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        let len = usize::from(self.len).min(SYMBOL_MAX_LEN);
        // Constructed only from validated ASCII; an archived copy that was damaged would be
        // caught by the journal CRC before it got here, but stay total anyway.
        core::str::from_utf8(&self.bytes[..len]).unwrap_or("?")
    }
}

impl Symbol {
    /// The bytes as three big-endian words: comparing them compares the bytes in order
    /// (unused bytes are zero). The core compares symbols on every map lookup; this is the
    /// order the derived `Ord` on `(len, bytes)` had, without a `memcmp` call.
    #[inline]
    fn words(&self) -> [u64; 3] {
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.bytes[8 * i..8 * i + 8]);
            u64::from_be_bytes(b)
        };
        [w(0), w(1), w(2)]
    }
}

impl Symbol {
    /// Writes this symbol's rkyv archive (`ArchivedSymbol`) at the start of `out`, whose bytes
    /// are zero (see [`crate::candle::Candle::write_archive`]).
    pub(crate) fn write_archive(&self, out: &mut [u8]) {
        out[core::mem::offset_of!(ArchivedSymbol, len)] = self.len;
        let b = core::mem::offset_of!(ArchivedSymbol, bytes);
        out[b..b + SYMBOL_MAX_LEN].copy_from_slice(&self.bytes);
    }

    /// Reads a symbol back from its rkyv archive at the start of `bytes` (every bit pattern is
    /// an archive rkyv accepts, so this cannot fail; `as_str` stays total on any of them).
    pub(crate) fn read_archive(bytes: &[u8]) -> Symbol {
        let b = core::mem::offset_of!(ArchivedSymbol, bytes);
        let mut out = [0u8; SYMBOL_MAX_LEN];
        out.copy_from_slice(&bytes[b..b + SYMBOL_MAX_LEN]);
        Symbol {
            len: bytes[core::mem::offset_of!(ArchivedSymbol, len)],
            bytes: out,
        }
    }
}

impl PartialEq for Symbol {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}

impl Eq for Symbol {}

impl core::hash::Hash for Symbol {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.len.hash(state);
        self.bytes.hash(state);
    }
}

impl Ord for Symbol {
    /// Length first, then bytes: the order keel has always used (maps keyed by symbol iterate
    /// in it, so it must not change).
    #[inline]
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.len
            .cmp(&other.len)
            .then_with(|| self.words().cmp(&other.words()))
    }
}

impl PartialOrd for Symbol {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Symbol {
    /// The symbol as one path component: `/` and `:` (Kraken's `XBT/USD`, some option ids)
    /// become `%2F` and `%3A`, so a symbol never names a directory outside its parent.
    pub fn file_name(&self) -> String {
        self.as_str().replace('/', "%2F").replace(':', "%3A")
    }
}

impl ArchivedSymbol {
    pub fn to_symbol(&self) -> Symbol {
        Symbol {
            len: self.len,
            bytes: self.bytes,
        }
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_equality_are_those_of_len_then_bytes() {
        let names = [
            "A",
            "B",
            "AB",
            "BA",
            "BTCUSDT",
            "BTCUSDC",
            "ETHUSDT",
            "BTC-USDT-SWAP",
            "XBT/USD",
            "BTC-USD-241227-100000-C",
            "BTC-USD-241227-100000-P",
            "abcdefghijklmnopqrstuvwx",
            "abcdefghijklmnopqrstuvwy",
            "abcdefgh",
            "abcdefgi",
            "zzzzzzzz1",
            "zzzzzzzz0",
        ];
        for a in names {
            for b in names {
                let (x, y) = (Symbol::new(a).unwrap(), Symbol::new(b).unwrap());
                let want = (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes()));
                assert_eq!(x.cmp(&y), want, "{a} vs {b}");
                assert_eq!(x == y, a == b, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn round_trips_venue_symbols() {
        for s in [
            "BTCUSDT",
            "BTC-USDT-SWAP",
            "XBT/USD",
            "BTC-USD-241227-100000-C",
        ] {
            assert_eq!(Symbol::new(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn rejects_bad_symbols() {
        assert_eq!(Symbol::new(""), Err(SymbolError::Empty));
        assert!(matches!(
            Symbol::new("BTC USDT"),
            Err(SymbolError::BadChar(_))
        ));
        assert!(matches!(
            Symbol::new(&"X".repeat(25)),
            Err(SymbolError::TooLong(_))
        ));
        for path_like in ["..", ".", "/tmp", ".hidden", "-x", ":a"] {
            assert!(Symbol::new(path_like).is_err(), "{path_like}");
        }
    }

    #[test]
    fn file_names_stay_one_path_component() {
        assert_eq!(Symbol::new("XBT/USD").unwrap().file_name(), "XBT%2FUSD");
        assert_eq!(Symbol::new("BTC:PERP").unwrap().file_name(), "BTC%3APERP");
        assert_eq!(Symbol::new("BTCUSDT").unwrap().file_name(), "BTCUSDT");
    }
}
