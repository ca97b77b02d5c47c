//! Journal payloads for keel's record kinds: rkyv archives, encoded into one reused buffer
//! and decoded with validation (a payload that passed the journal's CRC but does not match
//! its kind's layout is an error, never undefined behaviour).

use keel_engine::candle::ARCHIVED_CANDLE_LEN;
use keel_engine::event::{Checkpoint, Decision, Event};
use keel_engine::{Candle, RecordKind, Symbol};
use rkyv::rancor;
use rkyv::util::AlignedVec;

/// A backtest's bar, journaled by reference: the candle store record it was read from
/// (`store_seq` in series `series` of the run's [`CandleSource`]) and that record's stored
/// CRC, which is the store's hash chain after it, so the reference names the bar's bytes and
/// the whole series before it. A run journal holds one of these (48 bytes a frame) per bar
/// instead of a copy of the candle (120 bytes), and `replay verify` reads the bar back from
/// the store, refusing it if the store no longer holds exactly that record.
///
/// Payload (version 1): `store_seq` u64, `store_crc` u32, `series` u32, little-endian: the
/// layout rkyv gives this struct (tested).
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CandleRef {
    pub store_seq: u64,
    pub store_crc: u32,
    pub series: u32,
}

impl CandleRef {
    pub const LEN: usize = 16;

    /// Writes the payload into `out` (at least [`CandleRef::LEN`] bytes).
    #[inline]
    pub fn write(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.store_seq.to_le_bytes());
        out[8..12].copy_from_slice(&self.store_crc.to_le_bytes());
        out[12..16].copy_from_slice(&self.series.to_le_bytes());
    }

    fn read(payload: &[u8]) -> Option<CandleRef> {
        let b: &[u8; Self::LEN] = payload.try_into().ok()?;
        let [
            s0,
            s1,
            s2,
            s3,
            s4,
            s5,
            s6,
            s7,
            c0,
            c1,
            c2,
            c3,
            i0,
            i1,
            i2,
            i3,
        ] = *b;
        Some(CandleRef {
            store_seq: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            store_crc: u32::from_le_bytes([c0, c1, c2, c3]),
            series: u32::from_le_bytes([i0, i1, i2, i3]),
        })
    }
}

/// Where a run journal's [`CandleRef`]s point, journaled with the first of them (a
/// `first_candle_ref` record: the 16-byte reference, then this archive): the candle store's
/// directory as the run saw it (absolute) and its series, indexed by `CandleRef::series`.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CandleSource {
    pub store: String,
    pub series: Vec<StoreSeries>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoreSeries {
    pub symbol: Symbol,
    pub interval_ns: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record {seq}: unknown record kind {kind}")]
    UnknownKind { seq: u64, kind: u16 },
    #[error("record {seq}: {kind} version {ver} is not one this build understands (1 to {newest})")]
    UnknownVersion {
        seq: u64,
        kind: &'static str,
        ver: u16,
        newest: u16,
    },
    #[error("record {seq}: {kind} payload does not decode: {reason}")]
    Payload {
        seq: u64,
        kind: &'static str,
        reason: String,
    },
    #[error("record {seq}: expected {expected}, found {found}")]
    WrongKind {
        seq: u64,
        expected: &'static str,
        found: &'static str,
    },
}

/// Serializes values into a buffer that is reused, so steady-state encoding allocates
/// nothing.
pub struct Encoder {
    buf: AlignedVec<16>,
    /// rkyv's scratch space, owned here rather than taken from its thread-local pool on every
    /// record (measurably cheaper on the per-bar path).
    arena: rkyv::ser::allocator::Arena,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder {
            buf: AlignedVec::with_capacity(1024),
            arena: rkyv::ser::allocator::Arena::new(),
        }
    }

    fn encode<T>(&mut self, value: &T) -> &[u8]
    where
        T: for<'a> rkyv::Serialize<
                rkyv::api::high::HighSerializer<
                    AlignedVec<16>,
                    rkyv::ser::allocator::ArenaHandle<'a>,
                    rancor::Error,
                >,
            >,
    {
        let mut buf = core::mem::take(&mut self.buf);
        buf.clear();
        match rkyv::api::high::to_bytes_in_with_alloc::<_, _, rancor::Error>(
            value,
            buf,
            self.arena.acquire(),
        ) {
            Ok(b) => self.buf = b,
            // Plain owned data into a growable buffer: cannot fail.
            Err(e) => unreachable!("rkyv serialization failed: {e}"),
        }
        &self.buf
    }

    /// An input event's payload, in the layout `RecordKind::version` names for its kind.
    pub fn event(&mut self, event: &Event) -> &[u8] {
        match event {
            Event::Candle(candle) => self.candle(candle),
            _ => self.encode(event),
        }
    }

    pub fn decision(&mut self, decision: &Decision) -> &[u8] {
        self.encode(decision)
    }

    pub fn checkpoint(&mut self, checkpoint: &Checkpoint) -> &[u8] {
        self.encode(checkpoint)
    }

    /// A `first_candle_ref` payload: `at`, then `source`'s archive (position-independent,
    /// and 16 bytes in keeps its alignment).
    pub fn first_candle_ref(&mut self, at: &CandleRef, source: &CandleSource) -> &[u8] {
        let archive = self.encode(source).to_vec();
        self.buf.clear();
        self.buf.resize(CandleRef::LEN, 0);
        at.write(&mut self.buf);
        self.buf.extend_from_slice(&archive);
        &self.buf
    }

    /// A candle's archive (`Candle::write_archive`: rkyv's bytes, without its serializer).
    pub fn candle(&mut self, candle: &Candle) -> &[u8] {
        self.buf.clear();
        self.buf.resize(ARCHIVED_CANDLE_LEN, 0);
        candle.write_archive(&mut self.buf);
        &self.buf
    }
}

/// What a journal record holds, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Input(Event),
    Decision(Decision),
    Checkpoint(Checkpoint),
    StoredCandle(Candle),
    /// A candle input by reference; [`crate::resolve::RunReader`] turns it into the candle.
    CandleRef(CandleRef),
    /// The first of a run's references, with where they all point.
    FirstCandleRef {
        at: CandleRef,
        source: CandleSource,
    },
}

fn payload_err(seq: u64, kind: RecordKind, e: rancor::Error) -> DecodeError {
    DecodeError::Payload {
        seq,
        kind: kind.name(),
        reason: e.to_string(),
    }
}

/// A candle archive (`stored_candle`, `candle` version 2), read field by field: the archive is
/// the whole payload (rkyv would find its root at the end of a longer one and decode its tail).
fn candle(seq: u64, kind: RecordKind, payload: &[u8]) -> Result<Candle, DecodeError> {
    Candle::read_archive(payload).ok_or_else(|| DecodeError::Payload {
        seq,
        kind: kind.name(),
        reason: format!(
            "{} bytes, a candle archive has {ARCHIVED_CANDLE_LEN}",
            payload.len()
        ),
    })
}

/// Decodes one record's payload by its kind and version.
pub fn decode(seq: u64, kind: u16, ver: u16, payload: &[u8]) -> Result<Decoded, DecodeError> {
    let k = RecordKind::from_u16(kind).ok_or(DecodeError::UnknownKind { seq, kind })?;
    if ver == 0 || ver > k.version() {
        return Err(DecodeError::UnknownVersion {
            seq,
            kind: k.name(),
            ver,
            newest: k.version(),
        });
    }
    // The journal hands out 8-byte aligned payloads, which is all these layouts need; a
    // payload from elsewhere may not be, so copy it when it is not.
    let aligned;
    let bytes = if (payload.as_ptr() as usize).is_multiple_of(8) {
        payload
    } else {
        let mut v = AlignedVec::<16>::with_capacity(payload.len());
        v.extend_from_slice(payload);
        aligned = v;
        &aligned[..]
    };
    let decoded = match k {
        RecordKind::Decision => Decoded::Decision(
            rkyv::from_bytes::<Decision, rancor::Error>(bytes)
                .map_err(|e| payload_err(seq, k, e))?,
        ),
        RecordKind::Checkpoint => Decoded::Checkpoint(
            rkyv::from_bytes::<Checkpoint, rancor::Error>(bytes)
                .map_err(|e| payload_err(seq, k, e))?,
        ),
        RecordKind::StoredCandle => Decoded::StoredCandle(candle(seq, k, bytes)?),
        RecordKind::CandleRef => {
            Decoded::CandleRef(CandleRef::read(bytes).ok_or_else(|| DecodeError::Payload {
                seq,
                kind: k.name(),
                reason: format!(
                    "{} bytes, a candle reference has {}",
                    bytes.len(),
                    CandleRef::LEN
                ),
            })?)
        }
        RecordKind::FirstCandleRef => {
            let short = || DecodeError::Payload {
                seq,
                kind: k.name(),
                reason: format!("{} bytes, shorter than a candle reference", bytes.len()),
            };
            let at = bytes
                .get(..CandleRef::LEN)
                .and_then(CandleRef::read)
                .ok_or_else(short)?;
            let source = rkyv::from_bytes::<CandleSource, rancor::Error>(&bytes[CandleRef::LEN..])
                .map_err(|e| payload_err(seq, k, e))?;
            Decoded::FirstCandleRef { at, source }
        }
        RecordKind::Candle if ver == 2 => Decoded::Input(Event::Candle(candle(seq, k, bytes)?)),
        _ => {
            let event = rkyv::from_bytes::<Event, rancor::Error>(bytes)
                .map_err(|e| payload_err(seq, k, e))?;
            if event.kind() != k {
                return Err(DecodeError::WrongKind {
                    seq,
                    expected: k.name(),
                    found: event.kind().name(),
                });
            }
            Decoded::Input(event)
        }
    };
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::event::{Command, SignalAction};
    use keel_engine::{Fixed, Symbol};

    #[test]
    fn round_trips_every_kind() {
        let mut enc = Encoder::new();
        let sym = Symbol::new("BTCUSDT").unwrap();
        let candle = Candle {
            symbol: sym,
            open_time_ns: 1,
            interval_ns: 60,
            open: Fixed::ONE,
            high: Fixed::ONE,
            low: Fixed::ONE,
            close: Fixed::ONE,
            volume: Fixed::ZERO,
        };
        let ev = Event::Candle(candle);
        let bytes = enc.event(&ev).to_vec();
        assert_eq!(RecordKind::Candle.version(), 2);
        assert_eq!(
            bytes.len(),
            std::mem::size_of::<keel_engine::candle::ArchivedCandle>(),
            "a candle record holds the candle alone"
        );
        assert_eq!(
            decode(1, RecordKind::Candle as u16, 2, &bytes).unwrap(),
            Decoded::Input(ev.clone())
        );
        // Journals written before version 2 archived the whole event; they still decode.
        let legacy = rkyv::to_bytes::<rancor::Error>(&ev).unwrap();
        assert!(legacy.len() > bytes.len());
        assert_eq!(
            decode(1, RecordKind::Candle as u16, 1, &legacy).unwrap(),
            Decoded::Input(ev.clone())
        );
        // Neither layout is taken for the other.
        assert!(decode(1, RecordKind::Candle as u16, 1, &bytes).is_err());
        assert!(decode(1, RecordKind::Candle as u16, 2, &legacy).is_err());
        let d = Decision::Signal {
            symbol: sym,
            strategy: "s".into(),
            action: SignalAction::EnterLong,
            detail: "why".into(),
        };
        let bytes = enc.decision(&d).to_vec();
        assert_eq!(
            decode(2, RecordKind::Decision as u16, 1, &bytes).unwrap(),
            Decoded::Decision(d)
        );
        let cmd = Event::Command(Command::KillSwitch);
        let bytes = enc.event(&cmd).to_vec();
        assert!(matches!(
            decode(3, RecordKind::Candle as u16, 1, &bytes),
            Err(DecodeError::WrongKind { .. })
        ));
    }

    #[test]
    fn candle_refs_are_rkyv_archives_and_sources_round_trip() {
        let r = CandleRef {
            store_seq: 0x0102_0304_0506_0708,
            store_crc: 0xdead_beef,
            series: 3,
        };
        let mut mine = [0u8; CandleRef::LEN];
        r.write(&mut mine);
        let theirs = rkyv::to_bytes::<rancor::Error>(&r).unwrap();
        assert_eq!(&theirs[..], &mine[..]);
        assert_eq!(
            decode(5, RecordKind::CandleRef as u16, 1, &mine).unwrap(),
            Decoded::CandleRef(r)
        );
        assert!(decode(5, RecordKind::CandleRef as u16, 1, &mine[..15]).is_err());
        let source = CandleSource {
            store: "/data/store".into(),
            series: vec![StoreSeries {
                symbol: Symbol::new("BTCUSDT").unwrap(),
                interval_ns: 60_000_000_000,
            }],
        };
        let mut enc = Encoder::new();
        let bytes = enc.first_candle_ref(&r, &source).to_vec();
        assert_eq!(&bytes[..CandleRef::LEN], &mine[..]);
        assert_eq!(
            decode(1, RecordKind::FirstCandleRef as u16, 1, &bytes).unwrap(),
            Decoded::FirstCandleRef { at: r, source }
        );
        assert!(decode(1, RecordKind::FirstCandleRef as u16, 1, &bytes[..10]).is_err());
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        for len in [0usize, 1, 7, 8, 64, 200] {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for kind in RecordKind::ALL {
                for ver in 0..=3 {
                    let _ = decode(9, kind as u16, ver, &junk);
                }
            }
        }
        assert!(matches!(
            decode(9, 999, 1, &[]),
            Err(DecodeError::UnknownKind { kind: 999, .. })
        ));
        assert!(matches!(
            decode(9, RecordKind::Candle as u16, 7, &[]),
            Err(DecodeError::UnknownVersion { ver: 7, .. })
        ));
    }
}
