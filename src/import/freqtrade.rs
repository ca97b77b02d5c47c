//! freqtrade's candle JSON: `[[time_ms, open, high, low, close, volume], ...]`.
//!
//! Scanned by hand instead of through serde_json so that numbers reach [`Fixed::parse`] as
//! the exact decimal text in the file (no trip through `f64`) and every problem knows its
//! element index and line. A syntax error ends the scan (what follows cannot be trusted);
//! a bad element does not.

use std::io::Read;

use keel_engine::Fixed;

use super::ImportError;
use super::collect::{Collector, Ohlcv};

const FIELDS: [&str; 6] = ["time_ms", "open", "high", "low", "close", "volume"];

pub(super) fn parse(
    mut reader: impl Read,
    file: &str,
    c: &mut Collector,
) -> Result<(), ImportError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|error| ImportError::Io {
            path: file.into(),
            error,
        })?;
    let mut s = Scanner {
        bytes: &bytes,
        pos: 0,
        line: 1,
    };
    let scanned = scan_array(&mut s, c);
    c.set_element(None);
    if let Err(why) = scanned {
        c.problem(s.line, why);
    }
    Ok(())
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Scanner<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
    }

    /// The next non-whitespace byte, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let b = self.bytes.get(self.pos).copied();
        self.pos += usize::from(b.is_some());
        b
    }

    /// Steps back over a byte [`Scanner::next`] returned, so errors can quote it.
    fn unread(&mut self, b: Option<u8>) {
        if b.is_some() {
            self.pos -= 1;
        }
    }

    /// A run of bytes up to the next delimiter: a number, or junk to quote in an error.
    fn token(&mut self) -> &'a [u8] {
        self.skip_whitespace();
        let start = self.pos;
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b',' | b'[' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.pos += 1;
        }
        &self.bytes[start..self.pos]
    }

    /// What is at the cursor, for "expected X, found Y".
    fn found(&self) -> String {
        match self.bytes.get(self.pos..) {
            None | Some([]) => "the end of the file (is it truncated?)".to_string(),
            Some(rest) => {
                let shown = &rest[..rest.len().min(20)];
                format!("`{}`", String::from_utf8_lossy(shown))
            }
        }
    }

    fn expect(&mut self, want: u8, context: &str) -> Result<(), String> {
        self.skip_whitespace();
        if self.bytes.get(self.pos) == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "{context}: expected `{}`, found {}",
                want as char,
                self.found()
            ))
        }
    }
}

fn scan_array(s: &mut Scanner, c: &mut Collector) -> Result<(), String> {
    s.expect(
        b'[',
        "freqtrade JSON is one array of [time_ms, o, h, l, c, v] rows",
    )?;
    s.skip_whitespace();
    if s.bytes.get(s.pos) == Some(&b']') {
        s.pos += 1;
    } else {
        for index in 0usize.. {
            scan_element(s, c, index)?;
            match s.next() {
                Some(b',') => {}
                Some(b']') => break,
                other => {
                    s.unread(other);
                    return Err(format!(
                        "after element {index}: expected `,` or `]`, found {}",
                        s.found()
                    ));
                }
            }
        }
    }
    s.skip_whitespace();
    if s.pos < s.bytes.len() {
        return Err(format!("text after the closing `]`: {}", s.found()));
    }
    Ok(())
}

fn scan_element(s: &mut Scanner, c: &mut Collector, index: usize) -> Result<(), String> {
    s.expect(b'[', &format!("element {index}"))?;
    let line = s.line;
    let mut values: [&[u8]; 6] = [b""; 6];
    let mut count = 0;
    loop {
        let token = s.token();
        if token.is_empty() {
            return Err(format!(
                "element {index}: expected a number, found {}",
                s.found()
            ));
        }
        if let Some(slot) = values.get_mut(count) {
            *slot = token;
        }
        count += 1;
        match s.next() {
            Some(b',') => {}
            Some(b']') => break,
            other => {
                s.unread(other);
                return Err(format!(
                    "element {index}: expected `,` or `]`, found {}",
                    s.found()
                ));
            }
        }
    }
    c.rows += 1;
    c.set_element(Some(index));
    if count != FIELDS.len() {
        c.problem(
            line,
            format!(
                "element {index}: expected 6 numbers [time_ms, open, high, low, close, \
                 volume], found {count}"
            ),
        );
    } else if let Some((open_time_ns, ohlcv)) = parse_values(c, line, index, &values) {
        c.row(line, open_time_ns, ohlcv);
    }
    Ok(())
}

fn parse_values(
    c: &mut Collector,
    line: usize,
    index: usize,
    values: &[&[u8]; 6],
) -> Option<(i64, Ohlcv)> {
    let time = parse_time_ms(values[0]);
    if let Err(why) = &time {
        c.problem(line, format!("element {index}: `time_ms` {why}"));
    }
    let mut prices: [Option<Fixed>; 5] = [None; 5];
    for (i, slot) in prices.iter_mut().enumerate() {
        let text = String::from_utf8_lossy(values[i + 1]);
        match Fixed::parse(&text) {
            Ok(v) => *slot = Some(v),
            Err(why) => c.problem(line, format!("element {index}: `{}` {why}", FIELDS[i + 1])),
        }
    }
    let [Some(open), Some(high), Some(low), Some(close), Some(volume)] = prices else {
        return None;
    };
    let ohlcv = Ohlcv {
        open,
        high,
        low,
        close,
        volume,
    };
    Some((time.ok()?, ohlcv))
}

/// Milliseconds since 1970 as a JSON integer; anything else is reported with its text.
fn parse_time_ms(token: &[u8]) -> Result<i64, String> {
    let text = String::from_utf8_lossy(token);
    let ms: i64 = token
        .iter()
        .all(u8::is_ascii_digit)
        .then(|| text.parse().ok())
        .flatten()
        .ok_or_else(|| format!("`{text}` is not a whole number of milliseconds"))?;
    if !(100_000_000_000..100_000_000_000_000).contains(&ms) {
        return Err(format!(
            "`{text}` is not milliseconds since 1970 (freqtrade stores ms; this looks like \
             another unit)"
        ));
    }
    ms.checked_mul(1_000_000)
        .ok_or_else(|| format!("`{text}` is out of range (after year 2262)"))
}
