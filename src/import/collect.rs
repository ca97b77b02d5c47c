//! The checks every format shares, applied row by row in file order.
//!
//! A parser turns a row into (line, open time, OHLCV) or reports why it could not; the
//! [`Collector`] checks the bar itself and its place in the sequence, remembers gaps, and counts
//! problems, keeping only the first [`MAX_REPORTED_PROBLEMS`] so memory stays bounded however
//! broken the file is. Candles are returned only if there was no problem at all.

use keel_engine::{Candle, Fixed, Interval, Symbol};

use super::timestamp::{format_duration, format_ns};
use super::{Gap, ImportError, Imported, Problem};

/// How many problems an [`ImportError::Invalid`] carries; the rest are only counted.
pub const MAX_REPORTED_PROBLEMS: usize = 20;

/// Weekly bars open on Monday (1970-01-05), not on the epoch's Thursday.
const WEEK_NS: i64 = 7 * 86_400 * 1_000_000_000;
const WEEK_ORIGIN_NS: i64 = 4 * 86_400 * 1_000_000_000;

#[derive(Clone, Copy)]
struct Previous {
    open_time_ns: i64,
    line: usize,
    element: Option<usize>,
}

impl Previous {
    /// How a message refers to this row: `line 7`, or `element 17 (line 1)` in JSON.
    fn label(&self) -> String {
        match self.element {
            Some(e) => format!("element {e} (line {})", self.line),
            None => format!("line {}", self.line),
        }
    }
}

pub(super) struct Collector {
    symbol: Symbol,
    interval: Interval,
    origin_ns: i64,
    candles: Vec<Candle>,
    gaps: Vec<Gap>,
    problems: Vec<Problem>,
    problems_total: usize,
    previous: Option<Previous>,
    /// Data rows seen, parsable or not (headers excluded).
    pub rows: usize,
    /// Smallest step between consecutive rows, and the line it ends on.
    spacing_min: Option<(i64, usize)>,
    steps: usize,
    /// Index of the JSON element being read, for formats whose rows share a line.
    element: Option<usize>,
}

/// One row's prices and volume, in file order.
pub(super) struct Ohlcv {
    pub open: Fixed,
    pub high: Fixed,
    pub low: Fixed,
    pub close: Fixed,
    pub volume: Fixed,
}

impl Collector {
    pub fn new(symbol: Symbol, interval: Interval) -> Collector {
        let origin_ns = if interval.ns % WEEK_NS == 0 {
            WEEK_ORIGIN_NS
        } else {
            0
        };
        Collector {
            symbol,
            interval,
            origin_ns,
            candles: Vec::new(),
            gaps: Vec::new(),
            problems: Vec::new(),
            problems_total: 0,
            previous: None,
            rows: 0,
            spacing_min: None,
            steps: 0,
            element: None,
        }
    }

    /// Rows after this are JSON element `element` (freqtrade files are often one line, so
    /// the line alone would not say which row is meant).
    pub fn set_element(&mut self, element: Option<usize>) {
        self.element = element;
    }

    pub fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems_total += 1;
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            let mut message = message.into();
            if let Some(e) = self.element.filter(|_| !message.starts_with("element")) {
                message = format!("element {e}: {message}");
            }
            self.problems.push(Problem {
                line,
                message: clip(&message),
            });
        }
    }

    pub fn interval(&self) -> Interval {
        self.interval
    }

    pub fn has_problems(&self) -> bool {
        self.problems_total > 0
    }

    /// A fully parsed row: checks the bar, its alignment and its place after the previous row.
    pub fn row(&mut self, line: usize, open_time_ns: i64, p: Ohlcv) {
        let candle = Candle {
            symbol: self.symbol,
            open_time_ns,
            interval_ns: self.interval.ns,
            open: p.open,
            high: p.high,
            low: p.low,
            close: p.close,
            volume: p.volume,
        };
        if let Err(why) = candle.check() {
            self.problem(line, format!("invalid bar: {why}"));
        }
        self.check_alignment(line, open_time_ns);
        self.check_sequence(line, open_time_ns);
        self.previous = Some(Previous {
            open_time_ns,
            line,
            element: self.element,
        });
        if !self.has_problems() {
            self.candles.push(candle);
        }
    }

    fn misalignment_ns(&self, open_time_ns: i64) -> i64 {
        let off = (i128::from(open_time_ns) - i128::from(self.origin_ns))
            .rem_euclid(i128::from(self.interval.ns));
        // Below interval.ns, so it fits.
        off as i64
    }

    fn check_alignment(&mut self, line: usize, open_time_ns: i64) {
        let off = self.misalignment_ns(open_time_ns);
        if off == 0 {
            return;
        }
        let interval = self.interval.name();
        let mut message = format!(
            "time {} is not on a {interval} bar boundary (it is {} past one)",
            format_ns(open_time_ns),
            format_duration(off),
        );
        if let Some(prev) = self.previous.filter(|p| p.open_time_ns < open_time_ns) {
            let step = open_time_ns.saturating_sub(prev.open_time_ns);
            if step % self.interval.ns != 0 {
                message += &format!(
                    "; it is {} after {}, not a whole number of {interval} bars",
                    format_duration(step),
                    prev.label()
                );
            }
        }
        message += "; timestamps must be bar open times; is --interval right?";
        self.problem(line, message);
    }

    fn check_sequence(&mut self, line: usize, open_time_ns: i64) {
        let Some(prev) = self.previous else { return };
        if open_time_ns == prev.open_time_ns {
            self.problem(
                line,
                format!(
                    "duplicate time {}: {} has the same time",
                    format_ns(open_time_ns),
                    prev.label()
                ),
            );
            return;
        }
        if open_time_ns < prev.open_time_ns {
            self.problem(
                line,
                format!(
                    "out of order: time {} is before {}'s {}; rows must ascend in time",
                    format_ns(open_time_ns),
                    prev.label(),
                    format_ns(prev.open_time_ns)
                ),
            );
            return;
        }
        let step = open_time_ns.saturating_sub(prev.open_time_ns);
        self.steps += 1;
        if self.spacing_min.is_none_or(|(min, _)| step < min) {
            self.spacing_min = Some((step, line));
        }
        let aligned = step % self.interval.ns == 0 && self.misalignment_ns(open_time_ns) == 0;
        let bars = step / self.interval.ns;
        if aligned && bars > 1 {
            self.gaps.push(Gap {
                after_open_time_ns: prev.open_time_ns,
                missing_bars: (bars - 1).unsigned_abs(),
            });
        }
    }

    /// A file where no two rows are one interval apart holds longer bars than --interval says
    /// (5m bars read as 1m would otherwise pass as 1m bars with a gap after every one).
    fn check_interval_is_not_too_short(&mut self) {
        let Some((min, line)) = self.spacing_min else {
            return;
        };
        if self.steps >= 2 && min > self.interval.ns {
            self.problem(
                line,
                format!(
                    "no two rows are {} apart; the closest are {} apart (this line and the one \
                     before): the file holds longer bars, is --interval {} right?",
                    self.interval.name(),
                    format_duration(min),
                    self.interval.name(),
                ),
            );
        }
    }

    pub fn finish(mut self, file: &str) -> Result<Imported, ImportError> {
        if !self.has_problems() {
            self.check_interval_is_not_too_short();
        }
        if self.has_problems() {
            return Err(ImportError::Invalid {
                file: file.to_string(),
                problems: self.problems,
                total: self.problems_total,
            });
        }
        if self.rows == 0 {
            return Err(ImportError::Empty {
                file: file.to_string(),
                detail: "it has no data rows",
            });
        }
        Ok(Imported {
            candles: self.candles,
            gaps: self.gaps,
            rows: self.rows,
        })
    }
}

/// Parses one price or volume field, reporting the column and the text if it is not a number.
pub(super) fn parse_fixed(
    c: &mut Collector,
    line: usize,
    column: &str,
    text: &str,
) -> Option<Fixed> {
    match Fixed::parse(text) {
        Ok(v) => Some(v),
        Err(why) => {
            c.problem(line, format!("column `{column}`: {why}"));
            None
        }
    }
}

/// Messages quote input text; a wrong --format can make one "field" megabytes long.
const QUOTE_MAX_CHARS: usize = 200;

fn clip(message: &str) -> String {
    if message.chars().count() <= QUOTE_MAX_CHARS * 2 {
        return message.to_string();
    }
    let head: String = message.chars().take(QUOTE_MAX_CHARS).collect();
    let tail: String = {
        let t: Vec<char> = message.chars().rev().take(QUOTE_MAX_CHARS / 2).collect();
        t.into_iter().rev().collect()
    };
    format!("{head} …[cut]… {tail}")
}
